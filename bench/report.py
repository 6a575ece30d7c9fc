#!/usr/bin/env python3
"""Print the latency table from bench/run's JSON lines.

Each row is one (modules, userspace) variant of one perftest; the figure is
the median over repetitions of t_typical, and the ratio is against stock
(Debian's modules and Debian's perftest) for the same test.
"""
import json
import statistics
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    groups = {}
    for r in rows:
        k = (r["test"], r["mode"], r["variant"])
        groups.setdefault(k, []).append(r["result"]["t_typical_usec"])
    print("%-14s %-8s %-14s %6s %14s %10s" % ("test", "modules", "userspace", "runs",
                                              "t_typical[us]", "vs stock"))
    for test in sorted({k[0] for k in groups}):
        base = groups.get((test, "stock", "stock"))
        base_med = statistics.median(base) if base else None
        for (t, mode, variant), vals in sorted(groups.items()):
            if t != test:
                continue
            med = statistics.median(vals)
            ratio = "%9.2fx" % (base_med / med) if base_med else "n/a"
            print("%-14s %-8s %-14s %6d %14.2f %10s" % (t, mode, variant, len(vals), med, ratio))
    print("vs stock: stock t_typical / this t_typical (above 1 is faster than stock)")


if __name__ == "__main__":
    main()
