#!/bin/bash
# Our libibverbs and rxe provider on Debian's own rdma_rxe, which has no
# doorbell pages (issue 9): QP creation falls back to the old ABI, every
# QP rings with the system call, the probe says the kernel is too old, and
# old binaries run unchanged against our libibverbs. Staged peer QPs ring
# through libibverbs' CPU proxy (issue 13).
# vm-options: --stock --timeout 600
. "$RDMAP_SRC/tests/vm/lib.sh"

bin=$RDMAP_BUILD/tests/bin
ours=/opt/rdma-p2p/lib
fails=0

fail() {
	rdmap_fail "$*"
	fails=$((fails + 1))
}

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
}

if [ -e /sys/module/rdma_rxe/parameters/db_mode ]; then
	fail "this rdma_rxe has doorbell pages: not Debian's"
fi
run "probe, stock rxe" "$bin/peer_db" rxe0 probe stock
run "sends from 4 threads, no doorbell pages" "$bin/peer_db" rxe0 threads 4 20000 none

# libibverbs' CPU proxy (issue 13): the whole peer flow without doorbell
# pages. Debian's ib_core cannot load our test module: the peer is the CPU,
# through an mmap of the shadow doorbell's dma-buf.
echo "# $bin/peer_example rxe0 16"
"$bin/peer_example" rxe0 16 >/tmp/example.out 2>&1
rc=$?
cat /tmp/example.out
if [ "$rc" = 0 ] && grep -q "^# the peer rings by CPU proxy" /tmp/example.out; then
	rdmap_ok "docs/api.md example, stock rxe: CPU proxy"
else
	fail "docs/api.md example, stock rxe (exit $rc, wanted the CPU proxy)"
fi
run "proxy: staged sends released by the peer's rings" "$bin/peer_proxy" rxe0 flow auto proxy
run "proxy: teardown, fork" "$bin/peer_proxy" rxe0 teardown
run "proxy: a ring beyond the ring" "$bin/peer_proxy" rxe0 garbage

# rdma-core's own test of the peer verbs (tests/test_peer_db.py, patch
# 0021), alone, with rdma-core's runner as vm/pyverbs runs the whole suite
# on our rxe: here, without doorbell pages, its staged tests must run
# through the CPU proxy, not skip.
log=$RDMAP_RESULTS/test_peer_db.log
# The build tree is read-only in the guest: keep Python's caches out of it.
export PYTHONDONTWRITEBYTECODE=1
t0=$SECONDS
rdmap_bounded 120 \
	sh "$RDMAP_BUILD/rdma-core/build/bin/run_tests.py" --dev rxe0 -v \
	tests.test_peer_db >"$log" 2>&1
rc=$?
cat "$log"
# what it costs CI (printed, not asserted)
echo "# test_peer_db.py with the runner: $((SECONDS - t0)) s"
prc=0
python3 - "$log" "$rc" <<'PY' || prc=$?
import re
import sys

text, rc = open(sys.argv[1], errors="replace").read(), int(sys.argv[2])
ran = re.search(r"^Ran (\d+) tests? in ([\d.]+)s\n\n(OK|FAILED)(.*)$", text, re.M)
if rc != 0 or not ran or ran.group(3) != "OK":
    print("not ok - test_peer_db.py: exit %d, %s" % (rc, ran.group(0) if ran else "no summary"))
    sys.exit(1)


def outcome(name):
    """
    The suite passed, so a test that ran passed: what its verbose block
    (up to the next test; warnings may come in between) says is whether
    it was skipped.
    """
    m = re.search(r"^%s \(tests\.test_peer_db\.[^)]*\)$" % name, text, re.M)
    if not m:
        return "missing"
    nxt = re.compile(r"^test_\w+ \(tests\.|^-{20,}$", re.M).search(text, m.end())
    block = text[m.end():nxt.start() if nxt else len(text)]
    return "skipped" if re.search(r"\.\.\. skipped|^skipped '", block, re.M) else "ok"


bad = 0
for name in ("test_staged_cpu_ring", "test_proxy"):
    res = outcome(name)
    print("%s - test_peer_db.py %s through the CPU proxy: %s"
          % ("ok" if res == "ok" else "not ok", name, res))
    bad += res != "ok"
print("test_peer_db.py: ran %s in %s s, %s%s" % ran.groups())
sys.exit(1 if bad else 0)
PY
if [ "$prc" = 0 ]; then
	rdmap_ok "rdma-core's tests/test_peer_db.py on stock rxe: passed, the proxy tests ran"
else
	fail "rdma-core's tests/test_peer_db.py on stock rxe (exit $rc)"
fi

srv_pid=
LD_LIBRARY_PATH=$ours ibv_rc_pingpong -d rxe0 -g 1 -n 200 >/tmp/pp.srv 2>&1 &
srv_pid=$!
rdmap_wait_listen 18515
LD_LIBRARY_PATH=$ours timeout 120 ibv_rc_pingpong -d rxe0 -g 1 -n 200 127.0.0.1 >/tmp/pp.cli 2>&1
rc=$?
wait $srv_pid
src=$?
if [ "$rc" = 0 ] && [ "$src" = 0 ]; then
	rdmap_ok "Debian's ibv_rc_pingpong on our libibverbs, stock rxe"
else
	fail "ibv_rc_pingpong on our libibverbs, stock rxe: client $rc, server $src"
	cat /tmp/pp.cli /tmp/pp.srv
fi
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "all passed"
