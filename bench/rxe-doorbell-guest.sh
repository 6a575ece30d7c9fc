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
cd "$RDMAP_RESULTS" || exit 1
params=/sys/module/rdma_rxe/parameters
: >"$out"
rdmap_load_modules && rdmap_create_devices || exit 1
# stock ib_write_lat in the same boot, for scale
/usr/bin/ib_write_lat -d rxe0 -s 2 -n "$iters" -F >wl.srv 2>&1 &
srv=$!
rdmap_wait_listen 18515
timeout 300 /usr/bin/ib_write_lat -d rxe0 -s 2 -n "$iters" -F 127.0.0.1 >wl.cli 2>&1
rc=$?
wait $srv
src=$?
if [ $rc = 0 ] && [ $src = 0 ] && res=$("$RDMAP_SRC/tests/vm/perftest-parse" wl.cli); then
	echo "{\"stock_ib_write_lat\": $res}" >>"$out"
	echo "stock ib_write_lat: $res"
else
	echo "stock ib_write_lat failed (client exit $rc, server exit $src)" >&2
	cat wl.cli wl.srv >&2
fi
for variant in adaptive:Y adaptive:N always:Y; do
	echo "${variant%:*}" >"$params/db_mode"
	echo "${variant#*:}" >"$params/db_inline"
	for rep in $(seq "$reps"); do
		res=$("$RDMAP_BUILD/tests/bin/rxe_doorbell" rxe0 bench "$iters") || exit 1
		echo "{\"db_mode\": \"${variant%:*}\", \"db_inline\": \"${variant#*:}\", \"db_idle_us\": $(cat $params/db_idle_us), \"rep\": $rep, \"result\": $res}" >>"$out"
		echo "$variant #$rep: $res"
	done
done
# NIC to NIC (docs/rxe-import.md): rxe1 RDMA-writes the producer index into
# rxe0's doorbell page through a dma-buf MR, against the CPU storing it into
# the same peer slot; default engine settings.
echo adaptive >"$params/db_mode"
echo Y >"$params/db_inline"
for rep in $(seq "$reps"); do
	"$RDMAP_BUILD/tests/bin/rxe_nic2nic" rxe0 rxe1 bench "$iters" >nic2nic.out
	rc=$?
	[ $rc = 0 ] || { cat nic2nic.out; exit 1; }
	res=$(tail -1 nic2nic.out)
	echo "{\"nic2nic\": true, \"rep\": $rep, \"result\": $res}" >>"$out"
	echo "nic2nic #$rep: $res"
done
rdma statistic show link rxe0/1
rdmap_delete_devices
rdmap_unload_modules
