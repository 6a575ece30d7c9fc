#!/bin/bash
# vm-options: --no-setup --timeout 400
# The p2p mmap-entry layer: the p2p_mmap_test KTAP module (fake ib_device,
# test importer) driven by tests/programs/p2p_mmap_ktest over uverbs.
# Revocation triggers: entry removal, disassociate, context close, SIGKILL,
# device unregister, module unload (rmmod while a process holds an import).
set -u
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin/p2p_mmap_ktest
fail=0

rdmap_load_modules || { echo "loading our modules failed"; exit 1; }
dmesg -n 1
insmod "$RDMAP_MODULES/tests/p2p_mmap_test.ko" || { echo "insmod failed"; exit 1; }

echo "## userspace driver"
"$bin" || { echo "p2p_mmap_ktest failed"; fail=1; }

echo "## module unload with an import held"
"$bin" hold >/tmp/hold.out 2>&1 &
holder=$!
for _ in $(seq 100); do
	grep -q '^held' /tmp/hold.out && break
	sleep 0.2
done
grep -q '^held' /tmp/hold.out || { echo "hold: $(cat /tmp/hold.out)"; fail=1; }
rmmod p2p_mmap_test || { echo "rmmod p2p_mmap_test failed"; fail=1; }
kill -9 "$holder"
wait "$holder" 2>/dev/null

echo "## in-kernel KTAP"
ktap=$(dmesg | sed -e 's/^\[[^]]*\] //' |
	sed -n '/^TAP version 13$/,$p' | grep -E '^(not ok|ok|1\.\.|#)')
echo "$ktap"
plan=$(echo "$ktap" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
count=$(echo "$ktap" | grep -cE '^(not )?ok [0-9]+ ')
if [ -z "$plan" ] || [ "$plan" -ne "$count" ] || [ "$count" -lt 20 ]; then
	echo "KTAP plan '$plan' does not match $count results"
	fail=1
fi
if echo "$ktap" | grep -q '^not ok'; then
	echo "KTAP failures above"
	fail=1
fi
exit $fail
