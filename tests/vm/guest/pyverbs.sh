# rdma-core's own regression suite (pyverbs, tests/run_tests.py) on rxe0,
# built from the pinned rdma-core with our patches, against our modules.
# Prints the run/skipped/failed counts; fails on any failure or error not
# listed in tests/vm/pyverbs-expected-failures.txt, or if our rxe provider
# did not ring through the doorbell page while it ran.
# vm-options: --timeout 1200
. "$RDMAP_SRC/tests/vm/lib.sh"
log=$RDMAP_RESULTS/pyverbs.log
rings0=$(rdmap_rxe_counter rxe0 db_rings)
# The build tree is read-only in the guest: keep Python's caches out of it.
export PYTHONDONTWRITEBYTECODE=1
sh "$RDMAP_BUILD/rdma-core/build/bin/run_tests.py" --dev rxe0 -v >"$log" 2>&1
rc=$?
prc=0
python3 - "$log" "$RDMAP_SRC/tests/vm/pyverbs-expected-failures.txt" "$rc" <<'PY' || prc=$?
import re
import sys

log, expected_file, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(log, errors="replace").read()
ran = re.search(r"^Ran (\d+) tests? in ([\d.]+)s", text, re.M)
skipped = re.search(r"skipped=(\d+)", text)
expected = {}
for line in open(expected_file):
    line = line.strip()
    if line and not line.startswith("#"):
        tid, _, reason = line.partition("#")
        expected[tid.strip()] = reason.strip()
bad = re.findall(r"^(?:FAIL|ERROR): (\S+) \(([^)]+)\)", text, re.M)
failed = sorted({"%s.%s" % (cls.rsplit(".", 1)[0] if cls.endswith(name) else cls, name)
                 if not cls.endswith("." + name) else cls for name, cls in bad})
if not ran:
    print("not ok - pyverbs: the suite did not run to the end (exit %d)" % rc)
    print(text[-3000:])
    sys.exit(1)
n, secs = int(ran.group(1)), float(ran.group(2))
s = int(skipped.group(1)) if skipped else 0
print("pyverbs: ran %d, skipped %d, failed %d (%d expected), %.0f s"
      % (n, s, len(failed), len([f for f in failed if f in expected]), secs))
new = [f for f in failed if f not in expected]
for f in failed:
    print("%s - %s%s" % ("not ok" if f in new else "ok", f,
                         "  # expected: " + expected[f] if f in expected else ""))
if new:
    print("not ok - pyverbs: %d unexpected failures" % len(new))
    for m in re.finditer(r"^(=+\n(?:FAIL|ERROR): .*?)(?=^=+\n|^-+\nRan )", text, re.M | re.S):
        print(m.group(1)[:2000])
    sys.exit(1)
if n == 0:
    print("not ok - pyverbs: no test ran")
    sys.exit(1)
print("ok - pyverbs")
PY
rings=$(rdmap_rxe_counter rxe0 db_rings)
if [ -n "$rings0" ] && [ -n "$rings" ] && [ "$rings" -gt "$rings0" ]; then
	rdmap_ok "pyverbs rang through the doorbell page: db_rings $rings0 -> $rings"
else
	rdmap_fail "pyverbs did not ring through the doorbell page: db_rings '$rings0' -> '$rings'"
	prc=1
fi
exit $prc
