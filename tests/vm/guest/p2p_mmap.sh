#!/bin/bash
# vm-options: --no-setup --timeout 500 --pci-switch ivshmem,ivshmem
# The p2p mmap-entry layer: the p2p_mmap_test KTAP module (fake ib_device,
# test importers, a vmap holder that ignores revocation, a BAR entry on an
# ivshmem function under a PCIe switch, imported by the second one) driven
# by tests/programs/p2p_mmap_ktest over uverbs. Revocation triggers: entry
# removal, disassociate, context close, SIGKILL, device unregister, module
# unload (rmmod while a process holds imports and a vmap is held).
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin/p2p_mmap_ktest
fail=0

rdmap_load_modules || { echo "loading our modules failed"; exit 1; }
dmesg -n 1
lspci -nn -d 1af4:1110
insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" || { echo "insmod failed"; exit 1; }

# No revocation may wait for the vmap holder, which lets go only when told
# to after the trigger: a trigger that waited would never return.
echo "## userspace driver"
rdmap_bounded 300 "$bin"
rc=$?
[ $rc = 0 ] || { echo "p2p_mmap_ktest failed ($rc)"; fail=1; }

echo "## module unload with imports and a vmap holder"
"$bin" hold >/tmp/hold.out 2>&1 &
holder=$!
rdmap_wait_held /tmp/hold.out || fail=1
rdmap_bounded 120 rmmod p2p_mmap_test
rc=$?
[ $rc = 0 ] || { echo "rmmod p2p_mmap_test failed ($rc)"; fail=1; }
kill -9 "$holder"
wait "$holder" 2>/dev/null

echo "## in-kernel KTAP"
ktap=$(dmesg | sed -e 's/^\[[^]]*\] //' |
	sed -n '/^TAP version 13$/,$p' | grep -E '^(not ok|ok|1\.\.|#)')
echo "$ktap"
plan=$(echo "$ktap" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
count=$(echo "$ktap" | grep -cE '^(not )?ok [0-9]+ ')
if [ -z "$plan" ] || [ "$plan" -ne "$count" ] || [ "$count" -lt 40 ]; then
	echo "KTAP plan '$plan' does not match $count results"
	fail=1
fi
if echo "$ktap" | grep -q '^not ok'; then
	echo "KTAP failures above"
	fail=1
fi
exit $fail
