#!/bin/bash
# vm-options: --timeout 900 --pci-switch ivshmem,ivshmem
# rxe as a dma-buf importer (docs/rxe-import.md): MRs registered with
# ibv_reg_dmabuf_mr() through the rxe provider over
#  - udmabuf and the system dma-heap: RDMA WRITE, READ, atomics, SEND and
#    RECV through them, bounds, registration errors;
#  - every kind of p2p export of the p2p_mmap_test module: host pages and a
#    BAR page (I/O memory) that grant read and write, a vmalloc page and a
#    write-combining BAR page that grant peers writes only (reads, atomics
#    and local reads refused); a move (re-mapped) and a revocation (remote
#    access error, nothing lands) while registered;
#  - pyverbs' dma-buf MR tests, which used to skip on rxe;
#  - NIC to NIC: rxe1 (netns peer) RDMA-writes rxe0's doorbell through an
#    MR over its dma-buf: N rings, N sends in order; revocation while
#    ringing by QP destroy, kill and `rdma link del rxe0` (last).
# Usage: rxe-import.sh [SUBTEST...]; default: all of them.
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin
fail=0

run() {
	local name=$1 rc
	shift
	echo "## $name"
	rdmap_bounded 300 "$@"
	rc=$?
	if [ $rc = 0 ]; then
		rdmap_ok "$name"
	else
		rdmap_fail "$name (status $rc)"
		fail=1
	fi
}

t_udmabuf() { run udmabuf "$bin/rxe_dmabuf_mr" rxe0 udmabuf; }
t_heap() { run heap "$bin/rxe_dmabuf_mr" rxe0 heap; }

# The module's exports, imported by rxe; the module's KTAP results too.
t_p2p() {
	local ktap rc
	insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" ||
		{ rdmap_fail "p2p: insmod p2p_mmap_test"; fail=1; return; }
	run p2p "$bin/p2p_mmap_ktest" rxe rxe0 "$bin/rxe_dmabuf_mr"
	rdmap_bounded 120 rmmod p2p_mmap_test
	rc=$?
	[ $rc = 0 ] || { rdmap_fail "p2p: rmmod p2p_mmap_test ($rc)"; fail=1; }
	ktap=$(dmesg | sed -e 's/^\[[^]]*\] //' |
		sed -n '/^TAP version 13$/,$p' | grep -E '^(not ok|ok) [0-9]+ ')
	echo "$ktap"
	if [ -z "$ktap" ] || echo "$ktap" | grep -q '^not ok'; then
		rdmap_fail "p2p: the module's checks"
		fail=1
	fi
}

# pyverbs' dma-buf MR tests (DmaBuf allocates from the system dma-heap
# without a GPU): every one of them must run, none skip.
t_pyverbs() {
	local log=$RDMAP_RESULTS/pyverbs-dmabuf.log rc
	export PYTHONDONTWRITEBYTECODE=1
	echo "## pyverbs"
	rdmap_bounded 300 sh "$RDMAP_BUILD/rdma-core/build/bin/run_tests.py" \
		--dev rxe0 -v tests.test_mr.DmaBufMRTest \
		tests.test_mr.DmaBufTestCase >"$log" 2>&1
	rc=$?
	tail -3 "$log"
	if [ $rc != 0 ] || ! grep -q '^OK$' "$log" || grep -q skipped "$log" ||
		! grep -q '^Ran 10 tests' "$log"; then
		cat "$log"
		rdmap_fail "pyverbs dma-buf MR tests (status $rc)"
		fail=1
	else
		rdmap_ok "pyverbs dma-buf MR tests ran, none skipped"
	fi
}

t_nic2nic() { run nic2nic "$bin/rxe_nic2nic" rxe0 rxe1 rings "${RINGS:-10000}"; }
t_revdestroy() { run revoke-destroy "$bin/rxe_nic2nic" rxe0 rxe1 revoke destroy; }
t_revkill() { run revoke-kill "$bin/rxe_nic2nic" rxe0 rxe1 revoke kill; }

# rxe0 deleted while rxe1 rings its doorbell: the program waits on its own;
# we delete the device once the ringer says it rings. Then rxe0 comes back.
t_revlinkdel() {
	local out=$RDMAP_RESULTS/revoke-linkdel.log pid rc i
	echo "## revoke-linkdel"
	rdmap_bounded 300 "$bin/rxe_nic2nic" rxe0 rxe1 revoke linkdel >"$out" 2>&1 &
	pid=$!
	for i in $(seq 600); do
		grep -q '^# ringing' "$out" && break
		sleep 0.1
	done
	rdma link del rxe0
	rc=$?
	wait $pid
	local prc=$?
	cat "$out"
	if [ $rc = 0 ] && [ $prc = 0 ]; then
		rdmap_ok "revoke-linkdel"
	else
		rdmap_fail "revoke-linkdel (rdma link del: $rc, program: $prc)"
		fail=1
	fi
	rdma link add rxe0 type rxe netdev dummy0
	rc=$?
	[ $rc = 0 ] || { rdmap_fail "rxe0 back after linkdel ($rc)"; fail=1; }
}

# Not a test (not in the default list): the NIC-to-NIC latency figures of
# bench/rxe-doorbell's nic2nic section, for a quick look.
t_bench() { run bench "$bin/rxe_nic2nic" rxe0 rxe1 bench "${ITERS:-1000}"; }

subtests=${*:-udmabuf heap p2p pyverbs nic2nic revdestroy revkill revlinkdel}
for t in $subtests; do
	"t_$t"
done
exit $fail
