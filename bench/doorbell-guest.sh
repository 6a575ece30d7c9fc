# Guest side of bench/doorbell: every case of one boot, repeated, as JSON
# lines in $RDMAP_RESULTS/bench.jsonl, progress lines ("[progress] ...")
# on stdout for the host to show.
#   doorbell-guest.sh BOOT REPS ITERS BW_ITERS
# BOOT is
#   loopback  one guest (tests/vm/run --no-setup), both module sets in
#          turn: Debian's modules, with Debian's perftest on Debian's
#          rdma-core and rxe (stock, the reference), then ours, with
#          Debian's perftest and rdma-core with doorbells off (db_mode=off)
#          and every --doorbell mode of our perftest (nic rung by rxe1,
#          accel by the peer accelerator, p2p_accel.ko on the boot's edu);
#   pair   two guests (tests/vm/run --pair --no-setup), server in a,
#          client in b, across the link: Debian's modules first, then ours,
#          the same cases as above with ib_write_lat and ib_write_bw.
# Repetitions go round all cases in turn, so that a slow spell of the host
# spreads over the cases instead of landing on one; in the loopback boot
# the module sets take turns in every repetition too (a swap costs about
# 20 s), and every ratio to stock comes from one boot.
# A benchmark, not a test: it asserts nothing but that the runs complete.
. "$RDMAP_SRC/tests/vm/lib.sh"
boot=${1:?boot}
reps=${2:-5}
iters=${3:-1000}
bw_iters=${4:-20000}
out=$RDMAP_RESULTS/bench.jsonl
cd "$RDMAP_RESULTS" || exit 1
: >"$out"
parse=$RDMAP_SRC/tests/vm/perftest-parse
role=${RDMAP_PAIR_ROLE:-}
link=loopback
[ -n "$role" ] && link=wire
counters="db_rings db_syscall_kicks"
hw=/sys/class/infiniband/rxe0/ports/1/hw_counters
export RDMAP_PERFTEST_TIMEOUT=600

progress() { echo "[progress] $*"; }

# The measurements: test, message size, iterations.
tests=("ib_write_lat 2" "ib_write_lat 64" "ib_send_lat 2" "ib_send_lat 64" "ib_write_bw 64")
[ -n "$role" ] && tests=("ib_write_lat 2" "ib_write_lat 64" "ib_write_bw 64")

# A case: name, perftest binary directory, rxe db_mode ("" to leave it),
# extra perftest arguments, what it is.
declare -A case_bin case_db case_args case_what
add_case() {
	case_bin[$1]=$2 case_db[$1]=$3 case_args[$1]=$4 case_what[$1]=$5
}
# cases_for MODULES: the cases of a boot on MODULES, in $cases
cases_for() {
	case $1 in
	stock)
		add_case stock /usr/bin "" "" "Debian perftest, Debian rdma-core, Debian rxe"
		cases=stock ;;
	ours)
		add_case stock-dboff /usr/bin off "" \
			"Debian perftest, Debian rdma-core, our rxe, doorbells off"
		cases=stock-dboff
		for m in syscall page nic accel; do
			add_case "$m" "$RDMAP_OURS_BIN" adaptive "--doorbell=$m" \
				"our perftest --doorbell=$m, our rdma-core, our rxe"
			cases+=" $m"
		done ;;
	esac
}

declare -A refused
# run_case MODULES CASE TEST SIZE REP N/TOTAL
run_case() {
	local modules=$1 c=$2 t=$3 size=$4 rep=$5 count=$6 name n rc=0 res c0 c1 k cnt
	name=$modules-$c-$t-$size-$rep
	n=$iters
	[ "$t" = ib_write_bw ] && n=$bw_iters
	[ -n "${case_db[$c]}" ] && echo "${case_db[$c]}" >/sys/module/rdma_rxe/parameters/db_mode
	declare -A before=()
	for k in $counters; do
		[ -r "$hw/$k" ] && before[$k]=$(cat "$hw/$k")
	done
	# shellcheck disable=SC2086
	rdmap_perftest "$name" "${case_bin[$c]}/$t" -d rxe0 -s "$size" -n "$n" -F \
		${case_args[$c]} || rc=$?
	cnt="{"
	for k in $counters; do
		[ -n "${before[$k]:-}" ] || continue
		cnt+="\"$k\": $(($(cat "$hw/$k") - before[$k])), "
	done
	cnt="${cnt%, }}"
	if [ $rc != 0 ]; then
		if why=$(rdmap_perftest_refused "$name"); then
			refused[$c]=$why
			echo "{\"boot\": \"$boot\", \"modules\": \"$modules\", \"link\": \"$link\", \"role\": \"$role\", \"case\": \"$c\", \"what\": \"${case_what[$c]}\", \"refused\": $(printf '%s' "$why" | sed 's/^ *//' | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$out"
			progress "$boot boot, $modules modules: $c refused: $why"
			return 0
		fi
		echo "bench: $name failed (exit $rc)" >&2
		tail -n 20 "$name.server" "$name.client" 2>/dev/null >&2
		return 1
	fi
	# the client's report (guest b's in a pair); a server has the same
	# latency figures, and no bandwidth ones
	res=
	if [ "$role" != a ]; then
		res=$("$parse" "$name.client") || {
			echo "bench: $name: the report does not parse" >&2
			return 1
		}
	fi
	echo "{\"boot\": \"$boot\", \"modules\": \"$modules\", \"link\": \"$link\", \"role\": \"$role\", \"case\": \"$c\", \"what\": \"${case_what[$c]}\", \"test\": \"$t\", \"size\": $size, \"rep\": $rep, \"iters\": $n, \"counters\": $cnt, \"result\": ${res:-null}}" >>"$out"
	progress "$boot boot, $modules modules, run $count: $c $t -s $size, rep $rep/$reps:" \
		"$(printf '%s' "${res:-server side}" | python3 -c 'import json,sys
r = sys.stdin.read()
try:
    d = json.loads(r)
    print("t_typical %.1f us" % d["t_typical_usec"] if "t_typical_usec" in d else "%.4f Mpps" % d.get("MsgRate_Mpps", 0))
except ValueError:
    print(r)')"
}

# run_rep MODULES REP I TOTAL: every case and test of MODULES once, as
# repetition REP; runs are numbered from I + 1 of TOTAL.
run_rep() {
	local modules=$1 rep=$2 i=$3 total=$4 c t cases
	cases_for "$modules"
	for c in $cases; do
		for t in "${tests[@]}"; do
			i=$((i + 1))
			[ -n "${refused[$c]:-}" ] && continue
			run_case "$modules" "$c" ${t% *} ${t#* } "$rep" "$i/$total" || return 1
		done
	done
}

# runs_of MODULES: how many runs a repetition of MODULES makes
runs_of() {
	local cases
	cases_for "$1"
	echo $(($(echo "$cases" | wc -w) * ${#tests[@]}))
}

# run_boot MODULES: every case and test of MODULES, REPS times round.
run_boot() {
	local modules=$1 rep n
	n=$(runs_of "$modules")
	for ((rep = 1; rep <= reps; rep++)); do
		run_rep "$modules" "$rep" $(((rep - 1) * n)) $((reps * n)) || return 1
	done
}

# The peer ring paths (issue 13): a peer rings a staged QP's exported
# doorbell, one send per round, ring to completion
# (tests/programs/peer_proxy lat). On our modules the direct path (the
# p2p_mmap_test module imports rxe's doorbell dma-buf and stores) and the
# CPU proxy forced; on Debian's, the proxy, with the CPU as the peer
# through an mmap of its shadow dma-buf (our test module cannot load).
# One JSON line per repetition: {"kind": "peer", ...}.
# run_peer MODULES REP
run_peer() {
	local modules=$1 rep=$2 c mode res rc loaded=
	if [ "$modules" = ours ] && insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko"; then
		loaded=1
	fi
	for c in peer-direct peer-proxy; do
		mode=auto
		[ "$c" = peer-proxy ] && mode=force
		[ "$modules" = stock ] && [ "$c" = peer-direct ] && continue
		res=$("$RDMAP_BUILD/tests/bin/peer_proxy" rxe0 lat "$iters" "$mode" 2>"peer-$c-$rep.err")
		rc=$?
		if [ $rc != 0 ]; then
			echo "bench: peer_proxy lat $mode failed (exit $rc)" >&2
			cat "peer-$c-$rep.err" >&2
			[ -n "$loaded" ] && rmmod p2p_mmap_test
			return 1
		fi
		echo "{\"kind\": \"peer\", \"boot\": \"$boot\", \"modules\": \"$modules\", \"case\": \"$c\", \"rep\": $rep, \"rounds\": $iters, \"result\": $res}" >>"$out"
		progress "$boot boot, $modules modules: $c, rep $rep/$reps: $res"
	done
	# it holds our ib_uverbs: out before the module sets swap
	[ -n "$loaded" ] && { rmmod p2p_mmap_test || return 1; }
	return 0
}

# setup_modules MODULES: load them, and create the devices, in place of
# whatever RDMA modules and devices there are.
setup_modules() {
	rdmap_use_modules "$1" || {
		echo "bench: cannot set up the $1 modules" >&2
		return 1
	}
}

# run_loopback: REPS repetitions; in each, Debian's modules, then ours,
# run every case once, then the peer paths.
run_loopback() {
	local rep modules i=0 total=0
	local -A n
	for modules in stock ours; do
		n[$modules]=$(runs_of "$modules")
		total=$((total + reps * n[$modules]))
	done
	for ((rep = 1; rep <= reps; rep++)); do
		for modules in stock ours; do
			setup_modules "$modules" || return 1
			progress "$boot boot, rep $rep/$reps, $modules modules: $(rdma link show rxe0/1)"
			run_rep "$modules" "$rep" "$i" "$total" || return 1
			i=$((i + n[$modules]))
			run_peer "$modules" "$rep" || return 1
		done
	done
}

rc=0
case $boot in
loopback)
	# --doorbell=accel's peer accelerator (edu: bench/doorbell boots with
	# it); without it perftest refuses the mode and the row says why. It
	# needs no RDMA module, so it stays across the swaps.
	accel=
	if [ -f "$RDMAP_MODULES/tests/p2p_accel.ko" ] &&
		lspci -n 2>/dev/null | grep -q '1234:11e8' &&
		insmod "$RDMAP_MODULES/tests/p2p_accel.ko"; then
		accel=1
	fi
	run_loopback || rc=1
	rdmap_delete_devices
	[ -n "$accel" ] && { rmmod p2p_accel || rc=1; } ;;
pair)
	for modules in stock ours; do
		setup_modules "$modules" || { rc=1; break; }
		rdmap_pair_barrier "modules-$modules" || { rc=1; break; }
		progress "pair boot, guest $role, $modules modules: $(rdma link show rxe0/1)"
		run_boot "$modules" || { rc=1; break; }
		rdmap_pair_barrier "done-$modules" || { rc=1; break; }
		rdmap_delete_devices
		rdmap_unload_modules || { rc=1; break; }
	done
	rdmap_pair_barrier finished || rc=1 ;;
*)
	echo "bench: unknown boot $boot" >&2
	rc=1 ;;
esac
exit $rc
