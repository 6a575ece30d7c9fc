# shellcheck shell=bash
# Helpers for guest test scripts (sourced in the guest).
# RDMAP_MODE is "ours" or "stock"; RDMAP_MODULES holds our built modules.

# The RDMA modules a test needs, Debian's names.
RDMAP_STOCK_MODULES="rdma_rxe ib_uverbs rdma_ucm ib_umad"

# request_module() guard: while our modules are in use, refuse to autoload
# any of Debian's drivers/infiniband modules alongside them.
rdmap_install_modprobe_guard() {
	cat >/run/modprobe-guard <<'G'
#!/bin/sh
for a; do name=$a; done
if /sbin/modprobe --show-depends -q -- "$name" 2>/dev/null | grep -q /drivers/infiniband/; then
	echo "modprobe-guard: refused to load Debian's $name next to ours" >/dev/kmsg
	exit 1
fi
exec /sbin/modprobe "$@"
G
	chmod +x /run/modprobe-guard
	echo /run/modprobe-guard >/proc/sys/kernel/modprobe
}

rdmap_load_modules() {
	local m
	if [ "$RDMAP_MODE" = stock ]; then
		for m in $RDMAP_STOCK_MODULES; do
			modprobe "$m" || return 1
		done
		return 0
	fi
	rdmap_install_modprobe_guard
	# Dependencies of ours that live outside drivers/infiniband (e.g. the
	# ipv6 udp tunnel helpers) come from Debian.
	for m in $(cat "$RDMAP_MODULES/load-order"); do
		[ -d "/sys/module/$m" ] && continue
		for d in $(modinfo -F depends "$RDMAP_MODULES/$m.ko" | tr , ' '); do
			[ -f "$RDMAP_MODULES/$d.ko" ] || modprobe "$d" || return 1
		done
		insmod "$RDMAP_MODULES/$m.ko" || {
			echo "insmod $m failed" >&2
			return 1
		}
	done
}

# rdmap_use_modules ours|stock: make that set of RDMA modules the loaded
# one, with rxe0 and rxe1; whatever RDMA devices and modules there are
# (either set) go first. For scripts that compare both sets in one boot.
rdmap_use_modules() {
	rdmap_delete_devices
	rdmap_unload_modules || return 1
	RDMAP_MODE=$1
	export RDMAP_MODE
	rdmap_load_modules && rdmap_create_devices
}

# Unload every loaded RDMA module, ours or Debian's: repeatedly remove
# those nothing holds any more, until none is left.
rdmap_unload_modules() {
	local m left progress
	while :; do
		left= progress=
		for m in $(rdmap_loaded_rdma_modules); do
			if [ "$(cat "/sys/module/$m/refcnt" 2>/dev/null)" = 0 ] &&
				rmmod "$m" 2>/dev/null; then
				progress=1
			else
				left="$left $m"
			fi
		done
		[ -z "$left" ] && return 0
		if [ -z "$progress" ]; then
			echo "cannot unload:$left" >&2
			return 1
		fi
	done
}

# The loaded modules that are ours or live in Debian's drivers/infiniband.
rdmap_loaded_rdma_modules() {
	local m
	for m in $(cut -d' ' -f1 /proc/modules); do
		if [ -f "$RDMAP_MODULES/$m.ko" ] ||
			modinfo -n "$m" 2>/dev/null | grep -q /drivers/infiniband/; then
			echo "$m"
		fi
	done
}

# rxe0 on a dummy netdev (in a guest pair: on the link to the other
# guest); rxe1 on one end of a veth pair whose other end lives in the
# namespace "peer", so two-NIC traffic crosses a wire.
# Addresses are from the documentation and benchmarking ranges.
rdmap_create_devices() {
	if [ -n "${RDMAP_PAIR_ROLE:-}" ]; then
		rdma link add rxe0 type rxe netdev "$RDMAP_PAIR_IF" || return 1
	else
		ip link add dummy0 type dummy &&
			ip addr add 192.0.2.1/24 dev dummy0 &&
			ip link set dummy0 up &&
			rdma link add rxe0 type rxe netdev dummy0 || return 1
	fi
	ip netns add peer &&
		ip link add veth0 type veth peer name veth1 &&
		ip link set veth1 netns peer &&
		ip addr add 198.18.0.1/24 dev veth0 &&
		ip link set veth0 up &&
		ip -n peer addr add 198.18.0.2/24 dev veth1 &&
		ip -n peer link set veth1 up &&
		ip -n peer link set lo up &&
		ip netns exec peer rdma link add rxe1 type rxe netdev veth1 || return 1
}

rdmap_delete_devices() {
	rdma link delete rxe0 2>/dev/null
	ip netns exec peer rdma link delete rxe1 2>/dev/null
	ip link delete dummy0 2>/dev/null
	ip link delete veth0 2>/dev/null
	ip netns delete peer 2>/dev/null
	return 0
}

# Our userspace (rdma-core 65 + perftest) lives in /opt/rdma-p2p; its
# binaries carry an rpath there, so they find our libibverbs and providers.
RDMAP_OURS_BIN=/opt/rdma-p2p/bin

# rdmap_wait_listen PORT [SECONDS]: wait until a TCP server listens on PORT
# (perftest and the pingpong examples exchange QP data over TCP first).
rdmap_wait_listen() {
	local i
	for ((i = 0; i < ${2:-60} * 10; i++)); do
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1 after ${2:-60}s" >&2
	return 1
}

# rdmap_rxe_counter DEV NAME: one counter of "rdma statistic" for port 1.
rdmap_rxe_counter() {
	rdma statistic show link "$1/1" | tr ' ' '\n' |
		awk -v n="$2" 'p { print; exit } $0 == n { p = 1 }'
}

# ok/not ok lines in KTAP style for the runner's log.
rdmap_ok() { echo "ok - $*"; }
rdmap_fail() { echo "not ok - $*"; }

# rdmap_bounded SECONDS CMD...: run CMD and return its status, or 124 with
# the kernel stacks of its tasks if it has not finished after SECONDS (a
# task stuck in the kernel cannot be killed; the stacks say where it is).
rdmap_bounded() {
	local limit=$1 pid t i
	shift
	"$@" &
	pid=$!
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "still running after ${limit}s: $*" >&2
		for t in /proc/"$pid"/task/*; do
			echo "--- $t" >&2
			cat "$t/stack" >&2 2>/dev/null
		done
		return 124
	fi
	wait "$pid"
}

# rdmap_wait_held FILE: wait up to 20 s until FILE has a line "held" (what
# the tests' holder programs print once they hold what they hold).
rdmap_wait_held() {
	local i
	for i in $(seq 100); do
		grep -q '^held' "$1" && return 0
		sleep 0.2
	done
	echo "no holder: $(cat "$1")" >&2
	return 1
}

# rdmap_expect_begin / rdmap_expect_end: mark the step of a test that must
# cause a kernel report which the script allows on a "# vm-allow: ERE" line
# (an IOMMU fault of the accelerator's late DMA). Outside the markers the
# same line still fails the run (tests/vm/scan-kernel-log).
rdmap_expect_begin() { echo "rdmap-expect: begin $*" >/dev/kmsg; }
rdmap_expect_end() { echo "rdmap-expect: end $*" >/dev/kmsg; }

# ---- guest pairs (tests/vm/run --pair) ----
# Guest a is 198.51.100.1, guest b 198.51.100.2, on the virtio-net NIC the
# runner joined to the other guest's (RDMAP_PAIR_IF once up).
RDMAP_PAIR_NET=198.51.100
rdmap_pair_ip() { [ "$1" = a ] && echo "$RDMAP_PAIR_NET.1" || echo "$RDMAP_PAIR_NET.2"; }
# the other guest's address
rdmap_pair_peer() { rdmap_pair_ip "$([ "$RDMAP_PAIR_ROLE" = a ] && echo b || echo a)"; }

# Bring up the link to the other guest and wait until it answers.
rdmap_pair_link_up() {
	local d i
	modprobe virtio_net || return 1
	for ((i = 0; i < 100; i++)); do
		for d in /sys/class/net/*; do
			[ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = virtio_net ] &&
				RDMAP_PAIR_IF=$(basename "$d") && break 2
		done
		sleep 0.1
	done
	[ -n "${RDMAP_PAIR_IF:-}" ] || { echo "no virtio-net NIC for the pair's link" >&2; return 1; }
	export RDMAP_PAIR_IF
	ip addr add "$(rdmap_pair_ip "$RDMAP_PAIR_ROLE")/24" dev "$RDMAP_PAIR_IF" &&
		ip link set "$RDMAP_PAIR_IF" up || return 1
	# the other guest may still be booting
	rdmap_pair_barrier link-up 180 || {
		echo "the other guest ($(rdmap_pair_peer)) does not answer on $RDMAP_PAIR_IF" >&2
		return 1
	}
}

# rdmap_pair_barrier NAME [SECONDS]: return when the other guest reached the
# barrier of the same name (0), or fail after SECONDS (default 300).
rdmap_pair_barrier() {
	python3 "$RDMAP_SRC/tests/vm/pair-barrier" "$RDMAP_PAIR_ROLE" \
		"$(rdmap_pair_ip a)" "$1" "${2:-300}"
}

# ---- perftest runs ----
# rdmap_perftest NAME BIN ARGS...: a perftest server and its client, both
# on this guest's rxe0 (client to 127.0.0.1), or across a guest pair
# (guest a the server, guest b the client to a's address; both guests call
# it with the same arguments, in the same order). With --out_json among
# ARGS each side writes its own report. Output in $RDMAP_RESULTS:
# NAME.server, NAME.client (text), NAME.server.json, NAME.client.json.
# Returns 0 when every side this guest ran exited 0 (rdmap_perftest_refused
# tells a mode the stack cannot run from a failure). Never waits longer
# than RDMAP_PERFTEST_TIMEOUT seconds (default 300) for a side.
rdmap_perftest() {
	local name=$1 bin=$2
	shift 2
	local out=$RDMAP_RESULTS/$name to=${RDMAP_PERFTEST_TIMEOUT:-300}
	local json_srv=() json_cli=() srv=-1 rc_srv=0 rc_cli=0 i role=${RDMAP_PAIR_ROLE:-}
	if [[ " $* " == *" --out_json "* ]]; then
		json_srv=("--out_json_file=$out.server.json")
		json_cli=("--out_json_file=$out.client.json")
	fi
	if [ "$role" != b ]; then
		timeout "$to" "$bin" "$@" "${json_srv[@]}" >"$out.server" 2>&1 &
		srv=$!
		# until it listens, or stopped without listening
		for ((i = 0; i < 600; i++)); do
			ss -Hltn "sport = :18515" 2>/dev/null | grep -q . && break
			kill -0 "$srv" 2>/dev/null || break
			sleep 0.1
		done
	fi
	[ -z "$role" ] || rdmap_pair_barrier "$name" || return 1
	if [ "$role" != a ]; then
		timeout "$to" "$bin" "$@" "${json_cli[@]}" \
			"$([ "$role" = b ] && rdmap_pair_ip a || echo 127.0.0.1)" >"$out.client" 2>&1 || rc_cli=$?
	fi
	[ "$srv" = -1 ] || wait "$srv" || rc_srv=$?
	[ $rc_srv = 0 ] && [ $rc_cli = 0 ]
}

# rdmap_perftest_refused NAME: every side of run NAME on this guest stopped
# because its --doorbell mode cannot run here (perftest's message, which
# names what the mode needs, is printed).
rdmap_perftest_refused() {
	local f out=$RDMAP_RESULTS/$1 seen=
	for f in "$out.server" "$out.client"; do
		[ -f "$f" ] || continue
		grep -q "Doorbell mode .* is not available" "$f" || return 1
		seen=$(grep -m1 "Doorbell mode .* is not available" "$f")
	done
	[ -n "$seen" ] && echo "$seen"
}

# rdmap_doorbell_must_run MODE: whether this stack must run perftest's
# --doorbell=MODE: syscall always; page where our rdma-core has the peer
# doorbell verbs and our modules are loaded; nic there too when a second
# rxe device exists (rxe1); accel there too when the peer accelerator is
# present (/dev/p2p_accel0). Elsewhere perftest may refuse them (it says
# what they need).
rdmap_doorbell_must_run() {
	local ours=
	[ -f /opt/rdma-p2p/include/infiniband/peer_db.h ] && [ "${RDMAP_MODE:-ours}" = ours ] && ours=1
	case $1 in
	syscall) return 0 ;;
	page) [ -n "$ours" ] ;;
	nic) [ -n "$ours" ] && [ -e /sys/class/infiniband/rxe1 ] ;;
	accel) [ -n "$ours" ] && [ -c /dev/p2p_accel0 ] ;;
	*) return 1 ;;
	esac
}

# rdmap_perftest_verdict NAME RC MODE: the outcome of rdmap_perftest NAME
# (exit RC) run with --doorbell=MODE. Returns 0 when it ran (check its
# reports next), 2 when perftest refused a mode this stack may lack (an ok
# line says why), 1 on failure (a not-ok line and the reports' tails).
rdmap_perftest_verdict() {
	local name=$1 rc=$2 mode=$3 why
	[ "$rc" = 0 ] && return 0
	if why=$(rdmap_perftest_refused "$name"); then
		if rdmap_doorbell_must_run "$mode"; then
			rdmap_fail "$name: a mode this stack must run was refused: $why"
			return 1
		fi
		rdmap_ok "$name: refused cleanly: $why"
		return 2
	fi
	rdmap_fail "$name: exit $rc"
	tail -n 15 "$RDMAP_RESULTS/$name.server" "$RDMAP_RESULTS/$name.client" 2>/dev/null
	return 1
}
