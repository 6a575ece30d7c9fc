# Guest side of bench/rxe-doorbell (booted with --no-setup): one QP rung
# through its doorbell page against one kicked with the POST_SEND system
# call, alternating blocks in the same process, same boot (see
# tests/programs/rxe_doorbell.c, "bench"). Run for each way the engine can
# drive the send path. JSON lines in $RDMAP_RESULTS/bench.jsonl.
# A benchmark, not a test: it reports, it asserts nothing but completion.
. "$RDMAP_SRC/tests/vm/lib.sh"
iters=${1:-2000}
reps=${2:-3}
out=$RDMAP_RESULTS/bench.jsonl
params=/sys/module/rdma_rxe/parameters
: >"$out"
rdmap_load_modules && rdmap_create_devices || exit 1
for inline in Y N; do
	echo $inline >"$params/db_inline"
	for rep in $(seq "$reps"); do
		res=$("$RDMAP_BUILD/tests/bin/rxe_doorbell" rxe0 bench "$iters") || exit 1
		echo "{\"db_inline\": \"$inline\", \"db_idle_us\": $(cat $params/db_idle_us), \"rep\": $rep, \"result\": $res}" >>"$out"
		echo "db_inline=$inline #$rep: $res"
	done
done
rdma statistic show link rxe0/1
rdmap_delete_devices
rdmap_unload_modules
