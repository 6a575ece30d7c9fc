# Two guests joined by a virtual Ethernet link (tests/vm/run --pair), rxe0
# on the link in each: one ib_write_lat per --doorbell mode crosses it,
# guest a the server, guest b the client, and Debian's perftest too. Each
# run completes and its reports parse (the JSON checked against the text);
# a mode the stack cannot run is refused on both sides. Both guests run
# this script in step (rdmap_perftest meets at a barrier per run).
# vm-options: --pair --timeout 900
. "$RDMAP_SRC/tests/vm/lib.sh"
cd "$RDMAP_RESULTS" || exit 1
fail=0
parse=$RDMAP_SRC/tests/vm/perftest-parse
side=$([ "$RDMAP_PAIR_ROLE" = a ] && echo server || echo client)
export RDMAP_PERFTEST_TIMEOUT=240

echo "guest $RDMAP_PAIR_ROLE ($(rdmap_pair_ip "$RDMAP_PAIR_ROLE")) on $RDMAP_PAIR_IF, rxe0 on it:"
rdma link show rxe0/1

# check NAME [MODE]: this guest's side of run NAME parses, JSON included.
check() {
	local res rc=0
	if ! res=$("$parse" "$1.$side"); then
		rdmap_fail "$1: the $side's text report does not parse"
		tail -n 20 "$1.$side"
		return 1
	fi
	if [ -f "$1.$side.json" ]; then
		res=$("$parse" --check-json "$1.$side.json" "$1.$side" ${2:+--mode "$2"}) || rc=$?
		if [ $rc != 0 ]; then
			rdmap_fail "$1: the $side's JSON report does not match its text"
			cat "$1.$side.json"
			return 1
		fi
	fi
	rdmap_ok "$1 across the link ($side): $res"
}

rc=0
rdmap_perftest stock-ib_write_lat /usr/bin/ib_write_lat -d rxe0 -s 2 -n 200 -F || rc=$?
if [ $rc = 0 ]; then
	check stock-ib_write_lat || fail=1
else
	rdmap_fail "stock-ib_write_lat: exit $rc"
	tail -n 15 "stock-ib_write_lat.$side"
	fail=1
fi

for mode in syscall page nic accel; do
	name=ib_write_lat-$mode
	rc=0
	rdmap_perftest "$name" "$RDMAP_OURS_BIN/ib_write_lat" -d rxe0 -s 2 -n 200 -F \
		--doorbell="$mode" --out_json || rc=$?
	v=0
	rdmap_perftest_verdict "$name" $rc "$mode" || v=$?
	case $v in
	0) check "$name" "$mode" || fail=1 ;;
	1) fail=1 ;;
	esac
done

# Both guests stay up until both are done (the other may still need us).
rdmap_pair_barrier done || fail=1
exit $fail
