# Guest side of bench/rxe-doorbell (booted with --no-setup): the doorbell
# engine's figures (issue 8), see tests/programs/rxe_db_bench.c.
#   rxe-doorbell-guest.sh ITERS REPS SECTION...
# Sections: writelat lat stock dbkick peer idle scale breakdown engines
# nic2nic, and v:name=value[,name=value...] for an engine variant.
# One JSON object per line in $RDMAP_RESULTS/bench.jsonl, each with the
# modules (ours/stock), the vCPU count, the section, the engine parameters
# and the result. On Debian's modules only writelat and lat (the kick
# path) run. A benchmark, not a test: it reports, it asserts nothing but
# completion.
. "$RDMAP_SRC/tests/vm/lib.sh"
iters=$1 reps=$2
shift 2
out=$RDMAP_RESULTS/bench.jsonl
prog=$RDMAP_BUILD/tests/bin/rxe_db_bench
# the responder QPs libibverbs makes for rxe_db_bench need no doorbell (rxe(7))
export RXE_DOORBELL=syscall
params=/sys/module/rdma_rxe/parameters
cd "$RDMAP_RESULTS" || exit 1
: >"$out"
rdmap_load_modules && rdmap_create_devices || exit 1
smp=$(nproc)

# the engine's parameters as a JSON object ({} on Debian's modules)
params_json() {
	local p sep=
	printf '{'
	for p in "$params"/db_*; do
		[ -e "$p" ] || continue
		printf '%s"%s": "%s"' "$sep" "${p##*/}" "$(cat "$p")"
		sep=", "
	done
	printf '}'
}

# record SECTION REP JSON
record() {
	echo "{\"modules\": \"$RDMAP_MODE\", \"smp\": $smp, \"section\": \"$1\", \"rep\": $2, \"params\": $(params_json), \"result\": $3}" >>"$out"
	echo "$RDMAP_MODE/$smp vCPUs $1 #$2: $3"
}

# bench ARGS...: run rxe_db_bench on rxe0, stop the benchmark on failure
bench() {
	local res
	if ! res=$("$prog" rxe0 "$@"); then
		echo "bench: rxe_db_bench $* failed" >&2
		exit 1
	fi
	echo "$res"
}

setp() { # NAME VALUE
	echo "$2" >"$params/$1" || exit 1
}

defaults() {
	setp db_mode adaptive
	for p in db_idle_us db_peer_scan_us db_spin_us db_inline; do
		[ -e "$params/$p" ] && setp "$p" "$(cat "$RDMAP_RESULTS/default.$p")"
	done
}

# perftest's ib_write_lat -s 2 between two processes (each busy-polls for
# the other's write): Debian's perftest on both boots, and on ours our
# perftest in page and syscall mode (perftest sets RXE_DOORBELL for its
# mode; Debian's provider ignores it; rxe_db_bench's syscall is overridden).
writelat() { # REP CASE BINARY [ARGS...]
	local rep=$1 case=$2 res
	shift 2
	if RXE_DOORBELL=page rdmap_perftest "wl-$case-$rep" "$@" -d rxe0 -s 2 -n "$iters" -F &&
		res=$("$RDMAP_SRC/tests/vm/perftest-parse" "wl-$case-$rep.client"); then
		record writelat "$rep" "$(printf '%s' "$res" |
			python3 -c 'import json,sys; d=json.load(sys.stdin); d["case"]=sys.argv[1]; print(json.dumps(d))' "$case")"
	else
		echo "bench: ib_write_lat ($case) failed" >&2
		tail -n 5 "wl-$case-$rep.client" "wl-$case-$rep.server" >&2
		exit 1
	fi
}

s_writelat() {
	local r
	for r in $(seq "$reps"); do
		writelat "$r" debian /usr/bin/ib_write_lat
		[ "$RDMAP_MODE" = ours ] || continue
		writelat "$r" page "$RDMAP_OURS_BIN/ib_write_lat" --doorbell=page
		writelat "$r" syscall "$RDMAP_OURS_BIN/ib_write_lat" --doorbell=syscall
	done
}

s_lat() {
	local r paths=page,kick,peer
	[ "$RDMAP_MODE" = stock ] && paths=kick
	for r in $(seq "$reps"); do
		record lat "$r" "$(bench lat "$iters" "$paths")"
	done
}

# Debian's own modules in this same boot: ours are unloaded, Debian's
# ib_core, ib_uverbs and rdma_rxe loaded with modprobe, the kick paths
# (writelat, lat) measured on them, and ours loaded again. Two boots have
# differed by 1.3x for the same binary on the same modules (TCG), more than
# the differences that goals 1 and 5 are about; in one boot that part of
# the noise is gone (perftest still varies between runs).
s_stock() {
	rdmap_use_modules stock || exit 1
	if [ -e "$params/db_mode" ]; then
		echo "bench: the stock section loaded a doorbell rdma_rxe" >&2
		exit 1
	fi
	s_writelat
	s_lat
	rdmap_use_modules ours || exit 1
	defaults
}

# The system call kick on a doorbell QP: with db_mode=off the slot always
# asks for a kick, so the provider's protocol kicks every ring.
s_dbkick() {
	local r
	setp db_mode off
	for r in $(seq "$reps"); do
		record dbkick "$r" "$(bench lat "$iters" page,kick)"
	done
	defaults
}

s_peer() {
	local r
	setp db_idle_us 1000
	for r in $(seq "$reps"); do
		record peer "$r" "$(bench peer-sleep 40 "$(cat "$params/db_peer_scan_us")")"
	done
	defaults
}

# The engine's cost with 64 idle doorbell QPs: its thread's time, and the
# guest's busy time against a baseline without doorbell QPs (the peer scan
# runs in softirq context, which this kernel charges to what it interrupts).
s_idle() {
	local kind r
	for r in $(seq "$reps"); do
		record idle "$r" "$(bench idle 0 5)"
		for kind in cpu peer; do
			record idle "$r" "$(bench idle 64 5 "$kind")"
		done
	done
}

s_scale() {
	local r n
	for r in $(seq "$reps"); do
		for n in 0 63 1023; do
			record scale "$r" "$(bench scale "$iters" "$n")"
		done
	done
}

# Where the time goes: the function tracer over the send path.
s_breakdown() {
	local t=/sys/kernel/tracing f path res
	[ -e $t/trace ] || mount -t tracefs nodev $t || exit 1
	echo 0 >$t/tracing_on
	echo mono >$t/trace_clock
	echo 32768 >$t/buffer_size_kb
	: >$t/set_ftrace_filter
	for f in rxe_post_send rxe_run_task rxe_sched_task rxe_requester rxe_rcv \
		rxe_receiver rxe_completer rxe_cq_post; do
		echo "$f" >>$t/set_ftrace_filter 2>/dev/null ||
			echo "breakdown: $f cannot be traced" >&2
	done
	echo function >$t/current_tracer
	for path in page kick; do
		: >$t/trace
		echo 1 >$t/tracing_on
		res=$(bench lat 1000 "$path" "times.$path")
		echo 0 >$t/tracing_on
		cat $t/trace >"trace.$path"
		record breakdown-raw 1 "$res"
		res=$(python3 "$RDMAP_SRC/bench/rxe-doorbell-breakdown" "trace.$path" "times.$path" \
			--json "breakdown.$path.json") || exit 1
		echo "$res"
		record breakdown 1 "{\"path\": \"$path\", \"trace\": $(cat "breakdown.$path.json")}"
	done
	echo nop >$t/current_tracer
}

# Two devices at once (a process ringing a QP on rxe0 and one on rxe1,
# each over loopback): one engine thread per device (db_shared=N) against
# one for both (db_shared=Y, a load-time parameter: the module is loaded
# again for it).
s_engines() {
	local shared r a b
	for shared in N Y; do
		rdmap_delete_devices
		rmmod rdma_rxe || exit 1
		insmod "$RDMAP_MODULES/rdma_rxe.ko" db_shared=$shared || exit 1
		rdmap_create_devices || exit 1
		for r in $(seq "$reps"); do
			"$prog" rxe0 lat "$iters" page >eng.rxe0 &
			a=$!
			"$prog" rxe1 lat "$iters" page >eng.rxe1 &
			b=$!
			wait $a || exit 1
			wait $b || exit 1
			record "engines" "$r" "{\"db_shared\": \"$shared\", \"rxe0\": $(cat eng.rxe0), \"rxe1\": $(cat eng.rxe1)}"
		done
	done
	rdmap_delete_devices
	rmmod rdma_rxe || exit 1
	insmod "$RDMAP_MODULES/rdma_rxe.ko" || exit 1
	rdmap_create_devices || exit 1
	defaults
}

# NIC to NIC (docs/rxe-import.md): rxe1 RDMA-writes the producer index
# into rxe0's doorbell page through a dma-buf MR, against the CPU storing
# it into the same (staged, peer) slot, alternating blocks on one QP.
s_nic2nic() {
	local r rc
	for r in $(seq "$reps"); do
		"$RDMAP_BUILD/tests/bin/rxe_nic2nic" rxe0 rxe1 bench "$iters" >nic2nic.out
		rc=$?
		if [ $rc != 0 ]; then
			echo "bench: rxe_nic2nic bench failed ($rc)" >&2
			cat nic2nic.out >&2
			exit 1
		fi
		# its JSON line, between TAP lines
		record nic2nic "$r" "$(grep '^{' nic2nic.out | tail -1)"
	done
}

# One engine variant, SPEC = name=value[,name=value...]: the page ring and
# the kick with those parameters.
s_variant() {
	local kv r
	defaults
	for kv in ${1//,/ }; do
		setp "${kv%%=*}" "${kv#*=}"
	done
	for r in $(seq "$reps"); do
		record "variant" "$r" "$(bench lat "$iters" page,kick)"
	done
	defaults
}

for p in db_idle_us db_peer_scan_us db_spin_us db_inline; do
	[ -e "$params/$p" ] && cat "$params/$p" >"$RDMAP_RESULTS/default.$p"
done
for s in "$@"; do
	if [ "$RDMAP_MODE" = stock ] && [ "$s" != writelat ] && [ "$s" != lat ]; then
		# Debian's rxe has no doorbells: only the kick can be measured
		continue
	fi
	echo "## $s"
	case $s in
	v:*) s_variant "${s#v:}" ;;
	*) "s_$s" ;;
	esac
done
[ "$RDMAP_MODE" = ours ] && rdma statistic show link rxe0/1
rdmap_delete_devices
rdmap_unload_modules
