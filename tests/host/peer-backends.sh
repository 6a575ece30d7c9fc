# The peer doorbell backends of mlx5 and EFA (issue 13), which no machine
# here can run: each compiles with -Werror with the exact command of the
# rdma-core build, and each provider's verbs table dispatches every peer
# doorbell op to its backend: the table's relocation at the op's offset in
# struct verbs_context_ops points at the backend's function.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
bld=$BUILD_DIR/rdma-core/build
[ -f "$bld/build.ninja" ] || { echo "not ok - build rdma-core first"; exit 1; }
fails=0
ops="peer_create_qp peer_export_db peer_probe_db peer_query_cq peer_query_sq"

# provider table-symbol source-object
for spec in "mlx5 mlx5_ctx_common_ops mlx5_peer" "efa efa_ctx_ops efa_peer"; do
	set -- $spec
	prov=$1 table=$2 stem=$3
	obj=providers/$prov/CMakeFiles/$prov.dir/$stem.c.o
	cmd=$(ninja -C "$bld" -t commands "$obj" | tail -n 1)
	if [ -z "$cmd" ]; then
		echo "not ok - $prov: $stem.c is not part of the rdma-core build"
		fails=$((fails + 1))
		continue
	fi
	out=$(run_in_sysroot "$BUILD_DIR" -- bash -c \
		"cd '$bld' && ${cmd/ -o $obj / -o /tmp/werror.o } -Werror" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok - $prov: $stem.c compiles with -Werror in the rdma-core build"
	else
		echo "not ok - $prov: $stem.c with -Werror (exit $rc)"
		echo "$out" | head -n 30
		fails=$((fails + 1))
	fi

	lib=$(ls "$bld"/lib/lib$prov.so.1.* 2>/dev/null | head -n 1)
	if [ -z "$lib" ]; then
		echo "not ok - $prov: no lib$prov.so in the build"
		fails=$((fails + 1))
		continue
	fi
	# offsets of the ops in struct verbs_context_ops, from our driver.h
	offs=$(run_in_sysroot "$BUILD_DIR" -- bash -c "
		cat >/tmp/off.c <<'C'
#include <stdio.h>
#include <stddef.h>
#include <infiniband/driver.h>
#define P(op) printf(#op \" %zu\n\", offsetof(struct verbs_context_ops, op));
int main(void)
{
	P(peer_create_qp) P(peer_export_db) P(peer_probe_db)
	P(peer_query_cq) P(peer_query_sq)
	return 0;
}
C
		gcc -I'$bld/include' -o /tmp/off /tmp/off.c && /tmp/off")
	syms=$(run_in_sysroot "$BUILD_DIR" -- readelf -sW "$lib")
	relocs=$(run_in_sysroot "$BUILD_DIR" -- readelf -rW "$lib")
	taddr=$(echo "$syms" | awk -v s="$table" '$8 == s && !f { print $2; f = 1 }')
	if [ -z "$taddr" ]; then
		echo "not ok - $prov: no symbol $table in $lib"
		fails=$((fails + 1))
		continue
	fi
	for op in $ops; do
		off=$(echo "$offs" | awk -v o="$op" '$1 == o { print $2 }')
		fn=${stem}_${op#peer_}
		faddr=$(echo "$syms" | awk -v s="$fn" '$8 == s && !f { print $2; f = 1 }')
		slot=$(printf '%x' $((0x$taddr + off)))
		target=$(echo "$relocs" | awk -v a="$slot" '
			{ x = $1; sub(/^0+/, "", x); if (x == a && !f) { print $NF; f = 1 } }')
		if [ -n "$faddr" ] && [ -n "$target" ] &&
		   [ "$((0x${target#0x}))" = "$((0x$faddr))" ]; then
			echo "ok - $prov: $table.$op dispatches to $fn"
		else
			echo "not ok - $prov: $table.$op (slot $slot -> '$target'), $fn at '$faddr'"
			fails=$((fails + 1))
		fi
	done
done
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
