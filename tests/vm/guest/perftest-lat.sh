# Stock (Debian's rdma-core 56.1 + perftest) and our-built (rdma-core 65 +
# perftest 25.01) ib_write_lat and ib_send_lat, and Debian's binaries on our
# libibverbs, run between two processes on rxe0 and print a parsable result;
# our provider rings through the doorbell page. In our-modules mode, the loaded modules
# must be ours (build id in /sys/module/NAME/version).
# vm-options: --timeout 600
. "$RDMAP_SRC/tests/vm/lib.sh"
fail=0

if [ "$RDMAP_MODE" = ours ]; then
	want=$(cat "$RDMAP_BUILD/kernel/build-id")
	for m in ib_core ib_uverbs rdma_rxe; do
		got=$(cat "/sys/module/$m/version" 2>/dev/null)
		if [ "$got" = "$want" ]; then
			rdmap_ok "module $m is ours ($got)"
		else
			rdmap_fail "module $m is not ours: version '$got', want '$want'"
			fail=1
		fi
	done
fi

# run_pair NAME BIN: server and client of one perftest binary on rxe0
run_pair() {
	local name=$1 bin=$2 args="-d rxe0 -s 2 -n 500 -F"
	local out=$RDMAP_RESULTS/$name
	$bin $args >"$out.server" 2>&1 &
	local srv=$!
	rdmap_wait_listen 18515
	timeout 120 $bin $args 127.0.0.1 >"$out.client" 2>&1
	local rc=$?
	wait $srv
	local src=$?
	if [ $rc != 0 ] || [ $src != 0 ]; then
		rdmap_fail "$name: client exit $rc, server exit $src"
		tail -n 15 "$out.client" "$out.server"
		return 1
	fi
	if ! "$RDMAP_SRC/tests/vm/perftest-parse" "$out.client" >"$out.json"; then
		rdmap_fail "$name: output does not parse"
		cat "$out.client"
		return 1
	fi
	rdmap_ok "$name $(cat "$out.json")"
}

rings0=$(rdmap_rxe_counter rxe0 db_rings)
for t in ib_write_lat ib_send_lat; do
	run_pair "stock-$t" "/usr/bin/$t" || fail=1
	run_pair "ours-$t" "$RDMAP_OURS_BIN/$t" || fail=1
	# Debian's perftest binary on our libibverbs and rxe provider
	run_pair "stock-on-ours-$t" "env LD_LIBRARY_PATH=/opt/rdma-p2p/lib /usr/bin/$t" || fail=1
done
if [ "$RDMAP_MODE" = ours ]; then
	rings=$(rdmap_rxe_counter rxe0 db_rings)
	if [ -n "$rings0" ] && [ -n "$rings" ] && [ "$rings" -gt "$rings0" ]; then
		rdmap_ok "our provider rang through the doorbell page: db_rings $rings0 -> $rings"
	else
		rdmap_fail "our provider did not ring through the page: db_rings '$rings0' -> '$rings'"
		fail=1
	fi
fi
exit $fail
