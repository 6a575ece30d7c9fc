# Guest side of bench/run (booted with --no-setup): latency of perftest
# between two processes on rxe0, in one boot, first on Debian's stock
# modules, then on ours, each userspace variant several times. Results as
# JSON lines in $RDMAP_RESULTS/bench.jsonl. Userspace variants: "stock" =
# Debian's perftest and rdma-core; "ours-syscall" = our perftest and
# rdma-core (the kick is still the write() syscall).
# A benchmark, not a test: it reports, it asserts nothing but completion.
. "$RDMAP_SRC/tests/vm/lib.sh"
iters=${1:-2000}
reps=${2:-3}
out=$RDMAP_RESULTS/bench.jsonl
: >"$out"
cd "$RDMAP_RESULTS" || exit 1

variant_bin() {
	case $1 in
	stock) echo /usr/bin ;;
	ours-syscall) echo "$RDMAP_OURS_BIN" ;;
	esac
}

# bench_one TEST VARIANT REP
bench_one() {
	local bin args rc src srv res
	bin=$(variant_bin "$2")/$1
	args="-d rxe0 -s 2 -n $iters -F"
	$bin $args >srv.txt 2>&1 &
	srv=$!
	rdmap_wait_listen 18515
	timeout 300 $bin $args 127.0.0.1 >cli.txt 2>&1
	rc=$?
	wait $srv
	src=$?
	if [ $rc != 0 ] || [ $src != 0 ] ||
		! res=$("$RDMAP_SRC/tests/vm/perftest-parse" cli.txt); then
		echo "bench: $1 $2 run $3 on $RDMAP_MODE modules failed (client exit $rc, server exit $src)" >&2
		cat cli.txt srv.txt >&2
		return 1
	fi
	echo "{\"mode\": \"$RDMAP_MODE\", \"test\": \"$1\", \"variant\": \"$2\", \"rep\": $3, \"result\": $res}" >>"$out"
	echo "$RDMAP_MODE modules, $1 $2 #$3: $res"
}

for RDMAP_MODE in stock ours; do
	export RDMAP_MODE
	if ! rdmap_load_modules || ! rdmap_create_devices; then
		echo "bench: cannot set up the $RDMAP_MODE modules" >&2
		exit 1
	fi
	for test in ib_write_lat ib_send_lat; do
		for v in stock ours-syscall; do
			for r in $(seq 1 "$reps"); do
				bench_one "$test" "$v" "$r" || exit 1
			done
		done
	done
	rdmap_delete_devices
	if ! rdmap_unload_modules; then
		echo "bench: cannot unload the $RDMAP_MODE modules" >&2
		exit 1
	fi
done
