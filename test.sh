#!/usr/bin/env bash
# README command (2): install what is missing, build everything, run the
# tests (host tests and VM tests, each VM test in a boot of its own, as
# many at once as there are guest slots).
#   bash test.sh [ctest arguments, e.g. -L host or -R vm/pyverbs]
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/install-prereqs"
cmake -S "$top" -B "$top/build" -GNinja >/dev/null
cmake --build "$top/build"
log=$top/build/ctest.log
# As many tests at once as the VM runner has guest slots (tests/vm/run
# queues a guest until a slot is free; a pair takes two).
export CTEST_PARALLEL_LEVEL=${CTEST_PARALLEL_LEVEL:-${RDMAP_VM_SLOTS:-$(nproc)}}
rc=0
ctest --test-dir "$top/build" --output-on-failure "$@" 2>&1 | tee "$log" || rc=$?
# The regression gate's counts (from the pyverbs VM test's log), then
# ctest's summary again so that it stays the last word.
grep -h '^pyverbs: ran' "$top"/build/vm-results/pyverbs/test.log 2>/dev/null || true
grep -E 'tests passed|tests failed' "$log" | tail -n1
exit $rc
