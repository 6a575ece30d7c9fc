# The perftest report checker and the benchmark report, on the host:
# - tests/vm/perftest-parse reads perftest's text (latency, bandwidth, -D),
#   and its --check-json accepts our perftest's JSON for the same run
#   (reports from a vm/perftest-modes run, tests/host/perftest-report/) and
#   rejects each way a report can go wrong: not JSON, a value, a header
#   field, an address line, a result line or a unit that differs from the
#   text, another doorbell mode;
# - bench/doorbell-report turns runs into a table, a JSON summary and plot
#   data: ratios against stock of the same link, refused modes as "not run";
#   runs whose figure is inf, nan or missing (perftest's failed calibration)
#   stay out of medians, spreads and the plot and are shown as not finite,
#   the JSON holds no Infinity/NaN, and bench/doorbell-plot writes the PNG
#   from such data and from a run without the pair boot (in the sysroot's
#   gnuplot, when the sysroot is built).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
parse=$top/tests/vm/perftest-parse
data=$top/tests/host/perftest-report
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; fail=1; }

# the text parses, with the keys other scripts use
for f in write_lat write_bw write_lat_D; do
	if out=$("$parse" "$data/$f.txt"); then
		ok "$f text parses: $out"
	else
		not_ok "$f text does not parse"
	fi
done
out=$("$parse" "$data/write_lat.txt")
for k in t_typical_usec p99_usec p99.9_usec bytes iterations; do
	echo "$out" | python3 -c "import json,sys; sys.exit('$k' not in json.load(sys.stdin))" ||
		not_ok "write_lat text has no $k"
done
out=$("$parse" "$data/write_lat_D.txt")
for k in t_avg_usec tps_average p50_usec p99_usec p99.9_usec; do
	echo "$out" | python3 -c "import json,sys; sys.exit('$k' not in json.load(sys.stdin))" ||
		not_ok "-D text has no $k"
done

# the real reports match their text
for f in write_lat write_bw write_lat_D; do
	if "$parse" --check-json "$data/$f.json" "$data/$f.txt" --mode syscall >/dev/null; then
		ok "$f JSON carries every field of its text"
	else
		not_ok "$f JSON is rejected against its own text"
	fi
done

# reject CASE MESSAGE PYTHON-EDIT: the edited write_lat JSON (or text) fails
# the check, saying MESSAGE
reject() {
	local what=$1 msg=$2 rc=0
	cp "$data/write_lat.json" "$tmp/r.json"
	cp "$data/write_lat.txt" "$tmp/r.txt"
	python3 - "$tmp/r.json" "$tmp/r.txt" <<<"$3" || { not_ok "$what: the edit failed"; return; }
	"$parse" --check-json "$tmp/r.json" "$tmp/r.txt" --mode syscall >"$tmp/out" 2>&1 || rc=$?
	if [ $rc != 0 ] && grep -q -- "$msg" "$tmp/out"; then
		ok "$what: rejected ($(grep -m1 -- "$msg" "$tmp/out"))"
	else
		not_ok "$what: not rejected with \"$msg\" (exit $rc)"
		cat "$tmp/out"
	fi
}
reject "not JSON (a trailing comma)" "is not valid JSON" '
import sys
p = sys.argv[1]; s = open(p).read()
open(p, "w").write(s.replace("\"n_iterations\": 200", "\"n_iterations\": 200,", 1))'
reject "inf written as a bare word" "is not valid JSON" '
import sys
p = sys.argv[1]; s = open(p).read()
open(p, "w").write(s.replace("\"t_min\": 119.84", "\"t_min\": inf", 1))'
reject "a result value differs" "t_typical text" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
for r in [d["results"]] + d["all_results"]: r["t_typical"] += 1
json.dump(d, open(p, "w"))'
reject "a unit differs" "in usec in the text" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
for r in [d["results"]] + d["all_results"]: r["t_unit"] = "cycles"
json.dump(d, open(p, "w"))'
reject "a header field is missing" "header field .Max_inline_data" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
del d["test_info"]["Max_inline_data"]
json.dump(d, open(p, "w"))'
reject "an address line differs" "remote address QPN" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["connection"]["remote"][0]["QPN"] += 1
json.dump(d, open(p, "w"))'
reject "a result line is missing" "result lines in the text" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["all_results"] = []
json.dump(d, open(p, "w"))'
reject "another doorbell mode" "test_info.Doorbell is" '
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["test_info"]["Doorbell"] = "page"
json.dump(d, open(p, "w"))'
reject "a second result line in the text only" "result lines in the text" '
import sys
p = sys.argv[2]; lines = open(p).read().splitlines()
i = next(i for i, l in enumerate(lines) if l.strip().startswith("#bytes"))
lines.insert(i + 2, lines[i + 1])
open(p, "w").write("\n".join(lines) + "\n")'

# bench/doorbell-report: synthetic runs of every kind of row
python3 - "$tmp/runs.jsonl" <<'PY'
import json, sys
rows = []
def run(link, modules, case, test, size, rep, v, counters=None):
    res = {"t_typical_usec": v, "p99_usec": 2 * v} if test.endswith("lat") else {"MsgRate_Mpps": v}
    rows.append({"boot": "t", "modules": modules, "link": link, "role": "", "case": case,
                 "what": case, "test": test, "size": size, "rep": rep, "iters": 100,
                 "counters": counters or {}, "result": res})
for rep, f in enumerate((1.0, 1.1, 0.9), 1):
    for link in ("loopback", "wire"):
        run(link, "stock", "stock", "ib_write_lat", 2, rep, 100 * f)
        run(link, "stock", "stock", "ib_write_bw", 64, rep, 0.02 * f)
        run(link, "ours", "page", "ib_write_lat", 2, rep, 50 * f,
            {"db_rings": 200, "db_syscall_kicks": 2})
        run(link, "ours", "page", "ib_write_bw", 64, rep, 0.04 * f,
            {"db_rings": 100, "db_syscall_kicks": 0})
rows.append({"boot": "t", "modules": "ours", "link": "loopback", "role": "", "case": "nic",
             "what": "nic", "refused": "Doorbell mode nic is not available on rxe0: needs X"})
# the peer ring paths (issue 13)
for rep, f in enumerate((1.0, 1.2, 0.8), 1):
    for modules, case, v in (("ours", "peer-direct", 100), ("ours", "peer-proxy", 150),
                             ("stock", "peer-proxy", 300)):
        rows.append({"kind": "peer", "boot": modules, "modules": modules, "case": case,
                     "rep": rep, "rounds": 100,
                     "result": {"method": "m", "rounds": 100, "median_us": v * f,
                                "p90_us": 2 * v * f}})
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
if python3 "$top/bench/doorbell-report" "$tmp/runs.jsonl" "$tmp/out" --meta reps=3 iters=100 bw_iters=100 commit=t; then
	if python3 - "$tmp/out.json" "$tmp/out.md" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read()
rows = {(r["link"], r["case"]): r for r in d["rows"]}
page = rows[("loopback", "page")]["cells"]
assert abs(page["ib_write_lat -s 2"]["ratio_to_stock"] - 0.5) < 1e-9, page
assert abs(page["ib_write_bw -s 64"]["ratio_to_stock"] - 2.0) < 1e-9, page
assert round(page["ib_write_lat -s 2"]["min"], 6) == 45 and round(page["ib_write_lat -s 2"]["max"], 6) == 55, page
assert abs(rows[("loopback", "page")]["rings_per_post"] - 1.0) < 1e-9, rows[("loopback", "page")]
assert rows[("wire", "stock")]["cells"]["ib_write_lat -s 2"]["ratio_to_stock"] == 1.0
assert "refused" in rows[("loopback", "nic")]
assert "not run: needs X" in md and "50.0 µs [45.0–55.0] 0.50×" in md, md
assert len(d["runs"]) == 34
peer = d["peer"]
assert peer["ours/peer-direct"]["median_us"] == 100 and peer["stock/peer-proxy"]["max_us"] == 360, peer
assert "| 150.0 µs [120.0–180.0] | 300.0 µs | 1.50× |" in md, md
PY
		ok "bench/doorbell-report: medians, spreads, ratios to stock per link, evidence, refused rows, peer ring paths"
	else
		not_ok "bench/doorbell-report: wrong summary"
		cat "$tmp/out.md"
	fi
else
	not_ok "bench/doorbell-report failed"
fi

# Not-finite figures, and no wire rows (bench/doorbell --no-pair).
python3 - "$tmp/inf.jsonl" <<'PY'
import json, sys
rows = []
def run(case, test, rep, v, modules="ours"):
    res = {"t_typical_usec": v, "p99_usec": v} if test.endswith("lat") else {"MsgRate_Mpps": v}
    rows.append({"boot": "t", "modules": modules, "link": "loopback", "role": "", "case": case,
                 "what": case, "test": test, "size": 2 if test.endswith("lat") else 64,
                 "rep": rep, "iters": 100, "counters": {}, "result": res})
for rep, v in enumerate((100.0, 110.0, 90.0), 1):
    run("stock", "ib_write_lat", rep, v, "stock")
    run("stock", "ib_write_bw", rep, 0.01, "stock")
# page: one run inf, one nan, one finite; accel: every run inf; nic: no figure
for rep, v in enumerate((float("inf"), float("nan"), 200.0), 1):
    run("page", "ib_write_lat", rep, v)
    run("accel", "ib_write_lat", rep, float("inf"))
    run("nic", "ib_write_lat", rep, None)
# json.dumps writes Infinity/NaN, as the guest's bench.jsonl may hold them
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
if python3 "$top/bench/doorbell-report" "$tmp/inf.jsonl" "$tmp/inf" --meta reps=3; then
	if python3 - "$tmp/inf.json" "$tmp/inf.md" "$tmp/inf.gpplots" "$tmp/inf.dat" <<'PY'; then
import json, sys
def no_const(c):
    raise ValueError("not-finite constant %s in the JSON" % c)
d = json.loads(open(sys.argv[1]).read(), parse_constant=no_const)
md = open(sys.argv[2]).read()
rows = {r["case"]: r for r in d["rows"]}
page = rows["page"]["cells"]["ib_write_lat -s 2"]
assert page["median"] == 200 and page["reps"] == 1 and page["not_finite"] == 2, page
assert abs(page["ratio_to_stock"] - 2.0) < 1e-9, page
acc = rows["accel"]["cells"]["ib_write_lat -s 2"]
assert acc["median"] is None and acc["ratio_to_stock"] is None and acc["not_finite"] == 3, acc
assert "ib_write_lat -s 2" not in rows["nic"]["cells"], rows["nic"]
assert "200.0 µs [200.0–200.0] 2.00× (2 of 3 runs not finite)" in md, md
assert "not finite (3 runs)" in md, md
# two panels (no wire rows), one series each (ib_write_lat 2B, one guest)
v = open(sys.argv[3]).read()
# (gnuplot numbers only the blocks with data: the message rate is index 1)
assert "layout 1,2 " in v and v.count("index 0 using") == 1 \
    and v.count("index 1 using") == 1 and "index 2" not in v, v
dat = open(sys.argv[4]).read().lower()
assert "inf" not in dat and '"accel"' not in dat, dat
PY
		ok "bench/doorbell-report: inf, nan and missing figures kept out of medians and plot, strict JSON"
	else
		not_ok "bench/doorbell-report: wrong summary of not-finite figures"
		cat "$tmp/inf.md"
	fi
else
	not_ok "bench/doorbell-report failed on not-finite figures"
fi

# The PNG, from that data and from the full synthetic run above.
. "$top/scripts/lib.sh"
# (gnuplot is an alternatives link, absolute inside the sysroot)
if [ -L "$SYSROOT/usr/bin/gnuplot" ] || [ -x "$SYSROOT/usr/bin/gnuplot" ]; then
	for o in inf out; do
		if "$top/bench/doorbell-plot" "$tmp/$o" && [ -s "$tmp/$o.png" ]; then
			ok "bench/doorbell-plot wrote $o.png ($(stat -c %s "$tmp/$o.png") bytes)"
		else
			not_ok "bench/doorbell-plot wrote no $o.png"
			cat "$tmp/$o-gnuplot.log"
		fi
	done
else
	echo "# no sysroot with gnuplot ($SYSROOT): the plot is not checked"
fi
exit $fail
