# Our perftest's --doorbell modes, its JSON report and its duration-mode
# percentiles, on our modules, between two processes on rxe0; and Debian's
# perftest (on Debian's rdma-core 56.1) unchanged on our modules, and on our
# libibverbs and provider (which ring through the page).
# - every mode runs ib_write_lat and ib_write_bw for a few iterations, or
#   is refused before it connects with what it needs; ib_send_lat runs
#   syscall and page (all tests ring from one hook, post_send_method());
#   syscall always runs, page, nic (rung by rxe1, in the namespace "peer")
#   and accel (rung by the peer accelerator: edu and p2p_accel.ko, no
#   IOMMU, its store engine) wherever our rdma-core has the peer doorbell
#   verbs; page, nic and accel runs must move rxe0's db_rings;
# - each report is parsed: the text, and the JSON with a real parser,
#   checked field by field against the text (tests/vm/perftest-parse);
# - -D reports p50 <= p99 <= p99.9 from a non-empty sample, -a one JSON
#   result per message size;
# - bad --doorbell arguments fail with perftest's message.
# Nothing here is timed: figures are the benchmark's (bench/doorbell).
# vm-options: --timeout 900 --pci-switch edu
. "$RDMAP_SRC/tests/vm/lib.sh"
cd "$RDMAP_RESULTS" || exit 1
fail=0
parse=$RDMAP_SRC/tests/vm/perftest-parse
ours=$RDMAP_OURS_BIN
export RDMAP_PERFTEST_TIMEOUT=240

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

# check_run NAME [MODE]: both sides' text parses and their JSON (if any)
# carries every field of it.
check_run() {
	local name=$1 mode=${2:-} side res rc
	for side in server client; do
		if ! res=$("$parse" "$name.$side"); then
			rdmap_fail "$name: the $side's text report does not parse"
			tail -n 20 "$name.$side"
			return 1
		fi
		[ -f "$name.$side.json" ] || continue
		rc=0
		res=$("$parse" --check-json "$name.$side.json" "$name.$side" ${mode:+--mode "$mode"}) || rc=$?
		if [ $rc != 0 ]; then
			rdmap_fail "$name: the $side's JSON report does not match its text"
			cat "$name.$side.json"
			return 1
		fi
	done
	rdmap_ok "$name: $res"
}

# Debian's perftest binaries, built for rdma-core 56.1, on our modules: on
# Debian's rdma-core unchanged ("stock"), and on our libibverbs and rxe
# provider ("stock-on-ours"), which must ring through the doorbell page.
# ib_write_lat only: ib_send_lat posts through the same ibv_post_send().
for t in ib_write_lat; do
	for lib in stock stock-on-ours; do
		name=$lib-$t
		launch=()
		[ "$lib" = stock-on-ours ] && launch=(env LD_LIBRARY_PATH=/opt/rdma-p2p/lib)
		rc=0
		r0=$(rdmap_rxe_counter rxe0 db_rings)
		rdmap_perftest "$name" "${launch[@]}" "/usr/bin/$t" -d rxe0 -s 2 -n 200 -F || rc=$?
		r1=$(rdmap_rxe_counter rxe0 db_rings)
		if [ $rc != 0 ]; then
			rdmap_fail "$name: exit $rc"
			tail -n 15 "$name.client" "$name.server"
			fail=1
		elif [ "$lib" = stock-on-ours ] && ! [ "$r1" -gt "$r0" ] 2>/dev/null; then
			rdmap_fail "$name: our provider did not ring through the page (db_rings '$r0' -> '$r1')"
			fail=1
		else
			check_run "$name" || fail=1
		fi
	done
done

# The accelerator --doorbell=accel rings with (docs/accel-emulator.md).
if insmod "$RDMAP_MODULES/tests/p2p_accel.ko" && [ -c /dev/p2p_accel0 ]; then
	rdmap_ok "p2p_accel loaded: /dev/p2p_accel0"
else
	rdmap_fail "p2p_accel did not load"
	fail=1
fi

# Every mode of every test: it runs, or is refused (rdmap_perftest_verdict).
# A run rung through the doorbell page (by the CPU, rxe1 or the
# accelerator) must move the doorbell counters.
# ib_send_lat rings from the same hook as ib_write_lat (post_send_method()
# in perftest_resources.c): its peer modes (nic, accel) would add only two
# perftest start-ups of about 20 s each under TCG.
for t in ib_write_lat ib_send_lat ib_write_bw; do
	for mode in syscall page nic accel; do
		[ $t = ib_send_lat ] && [ $mode != syscall ] && [ $mode != page ] && continue
		name=$t-$mode
		rc=0
		r0=$(rdmap_rxe_counter rxe0 db_rings)
		rdmap_perftest "$name" "$ours/$t" -d rxe0 -s 2 -n 200 -F --doorbell="$mode" --out_json || rc=$?
		r1=$(rdmap_rxe_counter rxe0 db_rings)
		v=0
		rdmap_perftest_verdict "$name" $rc "$mode" || v=$?
		if [ $v = 0 ] && [ "$mode" != syscall ] && ! [ "$r1" -gt "$r0" ] 2>/dev/null; then
			rdmap_fail "$name: no ring through the page (db_rings '$r0' -> '$r1')"
			v=1
		fi
		case $v in
		0) check_run "$name" "$mode" || fail=1 ;;
		1) fail=1 ;;
		esac
	done
done

# -D: percentiles from the round trips of the sample window.
for mode in syscall page; do
	name=ib_write_lat-duration-$mode
	rc=0
	rdmap_perftest "$name" "$ours/ib_write_lat" -d rxe0 -s 2 -D 3 -F --doorbell="$mode" --out_json || rc=$?
	v=0
	rdmap_perftest_verdict "$name" $rc "$mode" || v=$?
	[ $v = 1 ] && fail=1
	[ $v = 0 ] || continue
	check_run "$name" "$mode" || { fail=1; continue; }
	if python3 - "$name.client.json" <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1]))["results"]
p = [r.get(k) for k in ("percentile_50", "percentile_99", "percentile_99.9")]
ok = all(isinstance(x, (int, float)) for x in p) and p[0] <= p[1] <= p[2] \
    and r.get("percentile_samples", 0) > 0 and r["n_iterations"] > 0
print("-D percentiles", p, "from", r.get("percentile_samples"), "round trips", "" if ok else "NOT ORDERED/EMPTY")
sys.exit(0 if ok else 1)
PY
		rdmap_ok "$name: p50 <= p99 <= p99.9 from a non-empty sample"
	else
		rdmap_fail "$name: duration-mode percentiles missing or out of order"
		fail=1
	fi
done

# -a: one JSON result per message size, every one like the text's.
name=ib_write_lat-all
rc=0
rdmap_perftest "$name" "$ours/ib_write_lat" -d rxe0 -a -n 5 -F --doorbell=syscall --out_json || rc=$?
if [ $rc != 0 ]; then
	rdmap_fail "$name: exit $rc"
	tail -n 15 "$name.client" "$name.server"
	fail=1
elif check_run "$name" syscall; then
	n=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["all_results"]))' "$name.client.json")
	if [ "$n" = 23 ]; then
		rdmap_ok "$name: 23 message sizes in all_results"
	else
		rdmap_fail "$name: $n message sizes in all_results, want 23"
		fail=1
	fi
else
	fail=1
fi

# Bad arguments: perftest's message and a non-zero exit, before any device
# or connection work.
# expect_refusal WHAT MESSAGE CMD...
expect_refusal() {
	local what=$1 msg=$2 rc=0
	shift 2
	timeout 60 "$@" >bad.out 2>&1 || rc=$?
	if [ $rc != 0 ] && [ $rc != 124 ] && grep -q -- "$msg" bad.out; then
		rdmap_ok "$what: exit $rc, \"$(grep -m1 -- "$msg" bad.out | sed 's/^ *//')\""
	else
		rdmap_fail "$what: exit $rc, want a non-zero exit and \"$msg\""
		cat bad.out
		fail=1
	fi
}
expect_refusal "unknown mode" "Invalid doorbell mode bogus" "$ours/ib_write_lat" -d rxe0 --doorbell=bogus
expect_refusal "empty mode" "Invalid doorbell mode" "$ours/ib_write_bw" -d rxe0 --doorbell=
expect_refusal "a test without doorbell modes" "supported in ib_write_lat, ib_send_lat and ib_write_bw only" \
	"$ours/ib_read_lat" -d rxe0 --doorbell=page
if "$ours/ib_write_lat" --help 2>&1 | grep -q -- "--doorbell=<mode>"; then
	rdmap_ok "--help lists --doorbell"
else
	rdmap_fail "--help does not list --doorbell"
	fail=1
fi

# Nothing of the accel runs holds the accelerator any more.
rc=0
rmmod p2p_accel || rc=$?
if [ $rc = 0 ]; then
	rdmap_ok "rmmod p2p_accel"
else
	rdmap_fail "rmmod p2p_accel (status $rc)"
	fail=1
fi
exit $fail
