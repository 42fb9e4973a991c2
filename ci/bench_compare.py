#!/usr/bin/env python3
"""Compares criterion results saved as base1/base2 (baseline) and cur1/cur2 (current).

The threshold is 35%: comparing a commit with itself in CI showed up to +20% on a
microbenchmark (shared 2-core machine), so a smaller margin would make CI flaky.

For each benchmark the better (lower mean) of the two runs of each side is taken, which
discards a run disturbed by other load on a shared machine. A benchmark regresses when the
current best mean is more than THRESHOLD slower than the baseline's AND the current run's 95%
confidence interval lies entirely above the baseline's: both a large and a clear slowdown.
"""
import json
import sys
from pathlib import Path

THRESHOLD = 0.35


def load(home: Path, name: str):
    out = {}
    for est in home.glob(f"**/{name}/estimates.json"):
        bench = str(est.parent.parent.relative_to(home))
        mean = json.loads(est.read_text())["mean"]
        ci = mean["confidence_interval"]
        out[bench] = (mean["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    return out


def best(*runs):
    merged = {}
    for r in runs:
        for k, v in r.items():
            if k not in merged or v[0] < merged[k][0]:
                merged[k] = v
    return merged


def main():
    home = Path(sys.argv[1])
    base = best(load(home, "base1"), load(home, "base2"))
    cur = best(load(home, "cur1"), load(home, "cur2"))
    if not base or not cur:
        print("bench-compare: no results found")
        return 1
    fails = []
    print(f"{'benchmark':<40} {'baseline':>12} {'current':>12} {'change':>8}")
    for k in sorted(cur):
        if k not in base:
            print(f"{k:<40} {'-':>12} {cur[k][0]:>10.0f}ns {'new':>8}")
            continue
        b, c = base[k], cur[k]
        change = c[0] / b[0] - 1
        regressed = change > THRESHOLD and c[1] > b[2]
        mark = "  REGRESSION" if regressed else ""
        print(f"{k:<40} {b[0]:>10.0f}ns {c[0]:>10.0f}ns {change:>+7.1%}{mark}")
        if regressed:
            fails.append(k)
    if fails:
        print(f"bench-check: {len(fails)} benchmark(s) slower than the baseline by more than "
              f"{THRESHOLD:.0%} with non-overlapping confidence intervals: {', '.join(fails)}")
        return 1
    print(f"bench-check: no regression beyond {THRESHOLD:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
