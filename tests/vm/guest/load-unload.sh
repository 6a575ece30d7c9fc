# Our modules load, create devices, carry traffic and unload, three times
# in one boot, with a clean kernel log (the runner scans it). Each round
# takes 30-45 s under TCG; a leak or a refcount bug shows from the second.
# vm-options: --no-setup --timeout 900
. "$RDMAP_SRC/tests/vm/lib.sh"
rounds=${1:-3}
fail=0
for i in $(seq 1 "$rounds"); do
	if ! rdmap_load_modules; then
		rdmap_fail "round $i: loading the modules"
		exit 1
	fi
	if ! rdmap_create_devices; then
		rdmap_fail "round $i: creating rxe0 and rxe1"
		exit 1
	fi
	# Traffic: an RC ping-pong between two processes on rxe0, from our
	# rdma-core (ibv_rc_pingpong picks the RoCE v2 IPv4 GID with -g 1).
	$RDMAP_OURS_BIN/ibv_rc_pingpong -d rxe0 -g 1 -n 20 >"$RDMAP_RESULTS/srv.$i" 2>&1 &
	srv=$!
	rdmap_wait_listen 18515
	if timeout 60 $RDMAP_OURS_BIN/ibv_rc_pingpong -d rxe0 -g 1 -n 20 127.0.0.1 \
		>"$RDMAP_RESULTS/cli.$i" 2>&1 && wait $srv; then
		:
	else
		rdmap_fail "round $i: ibv_rc_pingpong"
		cat "$RDMAP_RESULTS/cli.$i" "$RDMAP_RESULTS/srv.$i"
		kill $srv 2>/dev/null
		fail=1
	fi
	rdmap_delete_devices
	if ! rdmap_unload_modules; then
		rdmap_fail "round $i: unloading the modules"
		lsmod
		exit 1
	fi
	for m in $(cat "$RDMAP_MODULES/load-order"); do
		if [ -d "/sys/module/$m" ]; then
			rdmap_fail "round $i: $m still loaded"
			fail=1
		fi
	done
	[ $fail = 0 ] && rdmap_ok "round $i: load, traffic, unload"
done
exit $fail
