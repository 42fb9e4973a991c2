#!/usr/bin/env python3
"""Compares criterion results saved as base1, base2, ... (the baseline commit) and cur1,
cur2, ... (the current tree), each run a separate process, runs of the two sides interleaved.

    bench_compare.py CRITERION_HOME [--flagged FILE]

A benchmark regresses when both hold:
- every current run is slower than every baseline run (their point estimates do not
  interleave), so the difference is bigger than the run-to-run noise this run itself showed;
- the best current run is more than THRESHOLD slower than the best baseline run.

Why both: on this shared 2-core machine one binary's figure for a 1M-znode tree benchmark
moved between 1.08 and 1.50 µs from one process to the next (noisy neighbours, memory
placement), so a single pair of runs, or best-of-two, called a 40 % "regression" in a commit
that did not touch the tree. The order condition adapts to that noise; the threshold keeps
small, real but unimportant differences from failing CI. The names of regressed benchmarks
go to --flagged FILE (one per line) so that ci/bench-check.sh can measure them again before
failing.
"""
import json
import re
import sys
from pathlib import Path

THRESHOLD = 0.35


def load(home: Path, side: str):
    """bench -> sorted mean estimates of its runs named side<N>."""
    out: dict[str, list[float]] = {}
    for est in home.glob("**/estimates.json"):
        if not re.fullmatch(rf"{side}\d+", est.parent.name):
            continue
        bench = str(est.parent.parent.relative_to(home))
        out.setdefault(bench, []).append(json.loads(est.read_text())["mean"]["point_estimate"])
    return {k: sorted(v) for k, v in out.items()}


def main(argv):
    home = Path(argv[1])
    flagged_file = Path(argv[argv.index("--flagged") + 1]) if "--flagged" in argv else None
    base, cur = load(home, "base"), load(home, "cur")
    if not base or not cur:
        print("bench-compare: no results found")
        return 1
    fails = []
    print(f"{'benchmark':<40} {'baseline':>10} {'current':>10} {'change':>8}   "
          f"runs (baseline | current, ns)")
    for k in sorted(cur):
        c = cur[k]
        if k not in base:
            print(f"{k:<40} {'-':>10} {c[0]:>8.0f}ns {'new':>8}")
            continue
        b = base[k]
        change = c[0] / b[0] - 1
        regressed = change > THRESHOLD and c[0] > b[-1]
        runs = " ".join(f"{x:.0f}" for x in b) + " | " + " ".join(f"{x:.0f}" for x in c)
        mark = "  REGRESSION" if regressed else ""
        print(f"{k:<40} {b[0]:>8.0f}ns {c[0]:>8.0f}ns {change:>+7.1%}   {runs}{mark}")
        if regressed:
            fails.append(k)
    if flagged_file is not None:
        flagged_file.write_text("".join(f"{k}\n" for k in fails))
    if fails:
        print(f"bench-check: {len(fails)} benchmark(s) slower than the baseline in every run and by "
              f"more than {THRESHOLD:.0%} best against best: {', '.join(fails)}")
        return 1
    print(f"bench-check: no regression (a regression: every current run slower than every "
          f"baseline run, and by more than {THRESHOLD:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
