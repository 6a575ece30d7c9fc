# Our man pages (pandoc markdown in userspace/, and the rxe(7) section our
# series adds) were built by the rdma-core build and render with man -l,
# inside the sysroot (Debian's pandoc and man-db), without groff warnings.
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
man=$BUILD_DIR/stage/opt/rdma-p2p/share/man
pages=(man3/ibv_peer_create_qp.3 man3/ibv_peer_query_sq.3 man3/ibv_peer_query_cq.3
	man3/ibv_peer_export_db.3 man3/ibv_peer_probe_db.3
	man3/ibv_peer_db_reason_str.3 man3/ibv_peer_db_method_str.3
	man7/rxe_peer_wqe.7 man7/rxe.7 man7/mlx5_peer_db.7 man7/efa_peer_db.7)
fail=0
for p in "${pages[@]}"; do
	if [ ! -e "$man/$p" ]; then
		echo "not ok - $p was not built or installed"
		fail=1
		continue
	fi
	rc=0
	out=$(run_in_sysroot "$BUILD_DIR" -- env MANWIDTH=80 man --warnings -l "$man/$p" 2>&1) || rc=$?
	name=$(basename "$p")
	if [ "$rc" = 0 ] && grep -q '^NAME' <<<"$out" &&
		! grep -qE '^(troff|groff|man|preconv):|warning:' <<<"$out"; then
		echo "ok - $name renders ($(wc -l <<<"$out") lines)"
	else
		echo "not ok - $name (man exit $rc)"
		head -n 20 <<<"$out"
		fail=1
	fi
done
exit $fail
