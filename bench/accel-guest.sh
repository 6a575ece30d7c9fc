# Guest side of bench/accel: REPS runs of `accel_test bench ITERS` (a CPU
# page ring against the accelerator's store ring, alternating blocks on one
# peer doorbell QP), one JSON object per line in $RDMAP_RESULTS/bench.jsonl.
# A benchmark, not a test: it asserts nothing but completion.
#   accel-guest.sh ITERS REPS
. "$RDMAP_SRC/tests/vm/lib.sh"
iters=$1 reps=$2
out=$RDMAP_RESULTS/bench.jsonl
: >"$out"
insmod "$RDMAP_MODULES/tests/p2p_accel.ko" || exit 1
for ((r = 1; r <= reps; r++)); do
	res=$("$RDMAP_BUILD/tests/bin/accel_test" bench "$iters") || {
		echo "bench: accel_test bench failed" >&2
		exit 1
	}
	echo "{\"rep\": $r, \"smp\": $(nproc), \"result\": $res}" >>"$out"
	echo "#$r: $res"
done
rmmod p2p_accel
