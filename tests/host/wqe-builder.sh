# <infiniband/rxe_peer_wqe.h> is plain C99 with no libc: its code compiles
# with -std=c99 -pedantic-errors (the kernel uapi header it takes the WQE
# layout from is included as a system header: it uses the anonymous union
# every compiler of Linux headers accepts), and every function, compiled
# freestanding at each optimisation level, references no symbol outside
# itself (no memset, no memcpy, no allocation), with and without the
# qualifier and fence hooks defined.
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
inc=$BUILD_DIR/rdma-core/build/include
[ -f "$inc/infiniband/rxe_peer_wqe.h" ] || { echo "not ok - build rdma-core first"; exit 1; }
tmp=$(mktemp -d "$BUILD_DIR/wqe-builder.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/infiniband"
cp "$inc/infiniband/rxe_peer_wqe.h" "$tmp/infiniband/"
cat >"$tmp/use.c" <<'C'
#ifdef HOOK
#define RXE_PEER_WQE_QUALIFIERS __attribute__((unused))
#define RXE_PEER_WQE_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#include <infiniband/rxe_peer_wqe.h>

/* what a device kernel does: build two WQEs, publish, ring */
void post2(struct rxe_peer_sq *sq, const void *data, uint64_t raddr,
	   uint32_t rkey, uint64_t laddr, uint32_t lkey);
void post2(struct rxe_peer_sq *sq, const void *data, uint64_t raddr,
	   uint32_t rkey, uint64_t laddr, uint32_t lkey)
{
	struct rxe_send_wqe *w = rxe_peer_sq_next(sq);

	if (!w || rxe_peer_sq_room(sq) < 2)
		return;
	rxe_peer_wqe_start(w, 0, 1, 2);
	rxe_peer_wqe_set_rdma(w, raddr, rkey);
	rxe_peer_wqe_add_sge(w, laddr, 8, lkey);
	w = rxe_peer_sq_wqe(sq, sq->prod + 1);
	rxe_peer_wqe_start(w, 3, 2, 10);
	rxe_peer_wqe_set_imm(w, 7);
	rxe_peer_wqe_set_inline(w, data, 16);
	rxe_peer_wqe_set_atomic(w, raddr, rkey, 1, 2);
	rxe_peer_sq_produce(sq, 2);
	rxe_peer_sq_ring(sq);
	rxe_peer_ring(sq->db, 5);
}
C
fail=0
for hook in "" -DHOOK; do
	for o in -O0 -O1 -O2 -O3 -Os; do
		what="C99 freestanding $o${hook:+ with the qualifier and fence hooks}"
		if ! run_in_sysroot "$BUILD_DIR" -- gcc -std=c99 -pedantic-errors -Wall -Wextra \
			-Werror -ffreestanding $o $hook -I"$tmp" -isystem "$inc" -c "$tmp/use.c" \
			-o "$tmp/use.o" >"$tmp/log" 2>&1; then
			echo "not ok - $what: does not compile"
			cat "$tmp/log"
			fail=1
			continue
		fi
		undef=$(run_in_sysroot "$BUILD_DIR" -- nm -u "$tmp/use.o")
		if [ -z "$undef" ]; then
			echo "ok - $what: no outside symbol"
		else
			echo "not ok - $what: references $undef"
			fail=1
		fi
	done
done
exit $fail
