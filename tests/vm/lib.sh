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

# rxe0 on a dummy netdev; rxe1 on one end of a veth pair whose other end
# lives in the namespace "peer", so two-NIC traffic crosses a wire.
# Addresses are from the documentation and benchmarking ranges.
rdmap_create_devices() {
	ip link add dummy0 type dummy &&
		ip addr add 192.0.2.1/24 dev dummy0 &&
		ip link set dummy0 up &&
		rdma link add rxe0 type rxe netdev dummy0 || return 1
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
