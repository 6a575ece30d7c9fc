#!/bin/bash
# Our libibverbs and rxe provider on Debian's own rdma_rxe, which has no
# doorbell pages (issue 9): QP creation falls back to the old ABI, every
# QP rings with the system call, the probe says the kernel is too old, and
# old binaries run unchanged against our libibverbs. Staged peer QPs ring
# through libibverbs' CPU proxy (issue 13).
# vm-options: --stock --timeout 600
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin
ours=/opt/rdma-p2p/lib
fails=0

fail() {
	rdmap_fail "$*"
	fails=$((fails + 1))
}

run() {
	local name=$1 rc
	shift
	echo "# $*"
	"$@"
	rc=$?
	if [ "$rc" = 0 ]; then
		rdmap_ok "$name"
	else
		fail "$name (exit $rc)"
	fi
}

if [ -e /sys/module/rdma_rxe/parameters/db_mode ]; then
	fail "this rdma_rxe has doorbell pages: not Debian's"
fi
run "probe, stock rxe" "$bin/peer_db" rxe0 probe stock
run "sends from 4 threads, no doorbell pages" "$bin/peer_db" rxe0 threads 4 20000 none

# libibverbs' CPU proxy (issue 13): the whole peer flow without doorbell
# pages. Debian's ib_core cannot load our test module: the peer is the CPU,
# through an mmap of the shadow doorbell's dma-buf.
echo "# $bin/peer_example rxe0 16"
"$bin/peer_example" rxe0 16 >/tmp/example.out 2>&1
rc=$?
cat /tmp/example.out
if [ "$rc" = 0 ] && grep -q "^# the peer rings by CPU proxy" /tmp/example.out; then
	rdmap_ok "docs/api.md example, stock rxe: CPU proxy"
else
	fail "docs/api.md example, stock rxe (exit $rc, wanted the CPU proxy)"
fi
run "proxy: staged sends released by the peer's rings" "$bin/peer_proxy" rxe0 flow auto proxy
run "proxy: teardown, fork" "$bin/peer_proxy" rxe0 teardown
run "proxy: a ring beyond the ring" "$bin/peer_proxy" rxe0 garbage

srv_pid=
LD_LIBRARY_PATH=$ours ibv_rc_pingpong -d rxe0 -g 1 -n 200 >/tmp/pp.srv 2>&1 &
srv_pid=$!
rdmap_wait_listen 18515
LD_LIBRARY_PATH=$ours timeout 120 ibv_rc_pingpong -d rxe0 -g 1 -n 200 127.0.0.1 >/tmp/pp.cli 2>&1
rc=$?
wait $srv_pid
src=$?
if [ "$rc" = 0 ] && [ "$src" = 0 ]; then
	rdmap_ok "Debian's ibv_rc_pingpong on our libibverbs, stock rxe"
else
	fail "ibv_rc_pingpong on our libibverbs, stock rxe: client $rc, server $src"
	cat /tmp/pp.cli /tmp/pp.srv
fi
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "all passed"
