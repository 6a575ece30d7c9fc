#!/bin/bash
# vm-options: --pci-switch edu --iommu --timeout 900
# vm-allow: DMAR: (DRHD: handling fault|\[DMA Write)
# The peer accelerator (tests/accel, docs/accel-emulator.md): qemu's edu
# behind intel-iommu, driven by p2p_accel.ko through libp2paccel
# (tests/programs/accel_test.c). Rings land by store and by edu DMA; an rxe
# QP's sends are posted and rung by the accelerator; the demo, a GPU-initiated
# put of 1000 RDMA writes into a staged QP after a CPU flag; malformed programs are
# refused; QP destroy, SIGKILL of the exporter and `rdma link del` revoke a
# running program (ENODEV, no late write, a late edu DMA faults in the
# IOMMU: the DMAR lines are allowed only inside the test's expectation
# window); edu rings libibverbs' CPU-proxy shadow doorbell by DMA (N rings,
# N sends): on our kernel the shadow is the kernel's and is revoked like a
# real doorbell by QP destroy and by SIGKILL of its process, on Debian's
# modules it is a heap page that edu keeps, unrevoked, past the QP's
# destroy; unbinding edu
# from p2p_accel while it rings stops the program and detaches the
# importer; two processes are isolated; 100 attach/run/revoke cycles leave
# nothing behind; the module unloads.
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin
t=$bin/accel_test
fail=0

insmod "$RDMAP_MODULES/tests/p2p_accel.ko" fault_inject=1 || { echo "insmod p2p_accel failed"; exit 1; }
[ -c /dev/p2p_accel0 ] || { echo "no /dev/p2p_accel0"; exit 1; }

# run NAME ARGS...: one part of accel_test, bounded, its own status
run() {
	local rc
	echo "# accel_test $*"
	rdmap_bounded 600 "$t" "$@"
	rc=$?
	if [ $rc != 0 ]; then
		rdmap_fail "accel_test $* (status $rc)"
		fail=1
	fi
}

out=$("$bin/p2paccel" info)
rc=$?
echo "$out"
if [ $rc = 0 ] && echo "$out" | grep -qx 'engines store dma'; then
	rdmap_ok "p2paccel info: both ring engines"
else
	rdmap_fail "p2paccel info (status $rc)"
	fail=1
fi
out=$("$bin/p2paccel" ring -e dma -o 8 -w 4 udmabuf 0x1234abcd)
rc=$?
echo "$out"
if [ $rc = 0 ] && echo "$out" | grep -qx 'word 0x1234abcd'; then
	rdmap_ok "p2paccel ring -e dma: the word landed"
else
	rdmap_fail "p2paccel ring -e dma (status $rc)"
	fail=1
fi

run info
run udmabuf
run sends
run put 1000
run reject
run isolation
run revoke-destroy
# libibverbs' CPU proxy: edu rings the kernel's shadow doorbell, revoked
# like a real one (docs/api.md)
run proxy 4 revoked
run revoke-kill
run proxy-kill

# a device of its own to delete
ip link add dummy1 type dummy &&
	ip addr add 203.0.113.1/24 dev dummy1 &&
	ip link set dummy1 up &&
	rdma link add rxe_acc type rxe netdev dummy1 ||
	{ echo "creating rxe_acc failed"; fail=1; }
run revoke-linkdel rxe_acc
ip link delete dummy1

# PCI unbind of edu while it rings, then bound again for what follows
run unplug
run cycles 100

# Debian's modules have no kernel shadow doorbells: the proxy's shadow is a
# system-heap page, which is not revoked
if rdmap_use_modules stock; then
	run proxy 4 orphaned
else
	rdmap_fail "loading Debian's RDMA modules"
	fail=1
fi

stats=$(cat /sys/kernel/debug/p2p_accel/p2p_accel0/stats)
echo "$stats"
rmmod p2p_accel
rc=$?
if [ $rc = 0 ]; then
	rdmap_ok "p2p_accel unloads"
else
	rdmap_fail "rmmod p2p_accel (status $rc)"
	fail=1
fi
exit $fail
