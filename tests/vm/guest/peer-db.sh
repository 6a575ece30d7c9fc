#!/bin/bash
# The rxe provider rings through the doorbell page, and the peer doorbell
# verbs (issue 9), on our modules, through libibverbs only
# (tests/programs/peer_db.c, peer_example.c). The peer that imports a
# doorbell dma-buf and rings it is the p2p_mmap_test module.
#   peer-db.sh [TEST...]   default: all
# vm-options: --timeout 900
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin
params=/sys/module/rdma_rxe/parameters
ours=/opt/rdma-p2p/lib
fails=0

fail() {
	rdmap_fail "$*"
	fails=$((fails + 1))
}

# run NAME CMD...: a TAP-printing program, which must exit 0
run() {
	local name=$1 rc
	shift
	echo "# $*"
	"$@"
	rc=$?
	if [ "$rc" = 0 ]; then
		rdmap_ok "$name"
	else
		fail "$name (exit $rc)"
	fi
	return $rc
}

check_grew() { # WHAT BEFORE AFTER
	if [ -n "$2" ] && [ -n "$3" ] && [ "$3" -gt "$2" ]; then
		rdmap_ok "$1: $2 -> $3"
	else
		fail "$1 did not grow: '$2' -> '$3'"
	fi
}

check_same() { # WHAT BEFORE AFTER
	if [ -n "$2" ] && [ "$3" = "$2" ]; then
		rdmap_ok "$1 unchanged: $2"
	else
		fail "$1 changed: '$2' -> '$3'"
	fi
}

# need or may: a kernel feature is required once rxe's source uses its
# create-QP flag; until then a kernel that refuses it skips the subtest.
need_of() {
	if grep -rqs "$1" "$RDMAP_SRC/kernel/drivers/infiniband/sw/rxe/"; then
		echo need
	else
		echo may
	fi
}

# Old binaries, built against Debian's rdma-core 56.1, run unchanged on our
# libibverbs and rxe provider, which ring through the page.
t_oldabi() {
	local srv rc src r0
	if LD_LIBRARY_PATH=$ours ldd /usr/bin/ibv_rc_pingpong | grep -q "$ours/libibverbs.so.1"; then
		rdmap_ok "Debian's ibv_rc_pingpong resolves our libibverbs"
	else
		fail "LD_LIBRARY_PATH=$ours does not give ibv_rc_pingpong our libibverbs"
	fi
	r0=$(rdmap_rxe_counter rxe0 db_rings)
	LD_LIBRARY_PATH=$ours ibv_rc_pingpong -d rxe0 -g 1 -n 500 >/tmp/pp.srv 2>&1 &
	srv=$!
	rdmap_wait_listen 18515
	LD_LIBRARY_PATH=$ours timeout 120 ibv_rc_pingpong -d rxe0 -g 1 -n 500 127.0.0.1 >/tmp/pp.cli 2>&1
	rc=$?
	wait $srv
	src=$?
	if [ "$rc" = 0 ] && [ "$src" = 0 ]; then
		rdmap_ok "Debian's ibv_rc_pingpong on our libibverbs"
	else
		fail "ibv_rc_pingpong on our libibverbs: client $rc, server $src"
		cat /tmp/pp.cli /tmp/pp.srv
	fi
	check_grew "doorbell rings during it" "$r0" "$(rdmap_rxe_counter rxe0 db_rings)"
}

t_threads() {
	local s0 r0
	echo 200 >"$params/db_idle_us"
	s0=$(rdmap_rxe_counter rxe0 db_engine_sleeps)
	r0=$(rdmap_rxe_counter rxe0 db_rings)
	run "10^5 sends, 4 threads, page mode" "$bin/peer_db" rxe0 threads 4 100000 page
	check_grew "engine idle transitions" "$s0" "$(rdmap_rxe_counter rxe0 db_engine_sleeps)"
	check_grew "doorbell rings" "$r0" "$(rdmap_rxe_counter rxe0 db_rings)"

	r0=$(rdmap_rxe_counter rxe0 db_rings)
	RXE_DOORBELL=syscall run "10^5 sends, 4 threads, RXE_DOORBELL=syscall" \
		"$bin/peer_db" rxe0 threads 4 100000 none
	check_same "doorbell rings in syscall mode" "$r0" "$(rdmap_rxe_counter rxe0 db_rings)"
	echo 2000 >"$params/db_idle_us"
}

t_format() {
	run "WQE builder = provider" "$bin/peer_db" rxe0 wqe-format
}

t_flow() {
	run "peer flow" "$bin/peer_db" rxe0 flow 12
}

t_export() {
	run "export" "$bin/peer_db" rxe0 export
}

t_pages() {
	run "shared page export" "$bin/peer_db" rxe0 shared
	run "dedicated page export" "$bin/peer_db" rxe0 dedicated "$(need_of RXE_CREATE_QP_DOORBELL_DEDICATED)"
}

t_staged() {
	local k0
	k0=$(rdmap_rxe_counter rxe0 db_syscall_kicks)
	run "staged sends" "$bin/peer_db" rxe0 staged "$(need_of RXE_CREATE_QP_DOORBELL_STAGED)"
	# posts to a staged QP never kick: only a ring releases them
	check_same "kicks during staged posts" "$k0" "$(rdmap_rxe_counter rxe0 db_syscall_kicks)"
}

t_probe() {
	run "probe, rxe with doorbells" "$bin/peer_db" rxe0 probe doorbells
	echo off >"$params/db_mode"
	run "probe, db_mode=off" "$bin/peer_db" rxe0 probe off
	echo adaptive >"$params/db_mode"
	# the pristine rdma-core 65.0 rxe provider: no peer ops at all
	RDMAV_DRIVERS=$RDMAP_BUILD/rdma-core/noops/librxe-noops \
		run "probe, a provider without the ops" "$bin/peer_db" rxe0 probe noops
}

# run_example NAME METHOD [ENV...]: the docs/api.md example program,
# which must complete and say that the peer rang by METHOD
run_example() {
	local name=$1 method=$2 rc
	shift 2
	echo "# $* $bin/peer_example rxe0 16"
	env "$@" "$bin/peer_example" rxe0 16 >/tmp/example.out 2>&1
	rc=$?
	cat /tmp/example.out
	if [ "$rc" = 0 ] && grep -q "^# the peer rings by $method" /tmp/example.out; then
		rdmap_ok "$name: $method"
	else
		fail "$name (exit $rc, wanted $method)"
	fi
}

t_example() {
	run_example "docs/api.md example" dma-buf
	# the same program on a provider without the peer ops: the CPU proxy
	run_example "docs/api.md example, a provider without the ops" "CPU proxy" \
		RDMAV_DRIVERS=$RDMAP_BUILD/rdma-core/noops/librxe-noops
}

# libibverbs' CPU proxy (issue 13), forced on rxe with doorbells; the peer
# is the p2p_mmap_test module, importing the proxy's shadow dma-buf
t_proxy() {
	run "proxy: staged sends released by the peer's rings" "$bin/peer_proxy" rxe0 flow force proxy
	run "proxy not asked for: the direct path" "$bin/peer_proxy" rxe0 flow auto dma-buf
	run "proxy: teardown, fork" "$bin/peer_proxy" rxe0 teardown
	run "proxy: a ring beyond the ring" "$bin/peer_proxy" rxe0 garbage
}

# The device goes while a process holds a peer QP: the export says EIO.
t_removed() {
	local pid rc
	rm -f /tmp/removed.in
	mkfifo /tmp/removed.in
	"$bin/peer_db" rxe0 removed </tmp/removed.in >/tmp/removed.out 2>&1 &
	pid=$!
	exec 7>/tmp/removed.in
	for _ in $(seq 100); do
		grep -q ready /tmp/removed.out && break
		sleep 0.1
	done
	rdma link delete rxe0 || fail "rdma link delete rxe0"
	echo go >&7
	exec 7>&-
	wait $pid
	rc=$?
	cat /tmp/removed.out
	[ "$rc" = 0 ] && rdmap_ok "after device removal" || fail "after device removal (exit $rc)"
	rdma link add rxe0 type rxe netdev dummy0 || fail "rdma link add rxe0"
}

tests=${*:-oldabi threads format flow export pages staged probe example proxy removed}
insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" || { rdmap_fail "insmod p2p_mmap_test"; exit 1; }
for t in $tests; do
	echo "## $t"
	"t_$t"
done
rmmod p2p_mmap_test || fail "rmmod p2p_mmap_test"
rdma statistic show link rxe0/1
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "all passed"
