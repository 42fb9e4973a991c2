#!/usr/bin/env python3
"""Standalone throughput of two Warren binaries side by side in one run: a baseline (the build
of an older commit) and the current one, driven by the same pipelined client (loadgen run),
runs of the two interleaved so that a noisy minute hits both.

Usage: python3 ci/bench_standalone_vs.py --base-bin OLD/warren [--cur-bin target/release/warren]
           [--duration 8] [--warmup 2] [--reps 3] [--ratios 1.0,0.9,0.5,0.0] [--json runs.jsonl]
Builds nothing: build both binaries and loadgen first. Each binary serves from a fresh data
directory of its own; both fsync their log before acknowledging a write.

Beside throughput it reports each server's CPU time per operation (user + system time of the
server process over a run, warm-up included, divided by the operations of the whole run):
on a shared machine throughput moves with what else runs, the work per operation much less.
"""
import argparse, json, os, shutil, statistics, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "ci"))
import servers  # noqa: E402
from bench_standalone import loadgen  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-bin", required=True)
    p.add_argument("--cur-bin", default=str(REPO / "target" / "release" / "warren"))
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--outstanding", type=int, default=100)
    p.add_argument("--ratios", default="1.0,0.9,0.5,0.0")
    p.add_argument("--json", default=None, help="where the raw loadgen runs go (default: a temporary file)")
    args = p.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-vs-"))
    raw = Path(args.json) if args.json else tmp / "runs.jsonl"
    raw.unlink(missing_ok=True)
    cfg = {"maxClientCnxns": "0"}
    systems = {
        "base": servers.WarrenServer(tmp / "base", binary=args.base_bin, extra_cfg=cfg),
        "current": servers.WarrenServer(tmp / "current", binary=args.cur_bin, extra_cfg=cfg),
    }
    cpu = {(label, ratio): [] for label in systems for ratio in ratios}
    try:
        for s in systems.values():
            s.start()
        time.sleep(0.5)
        for rep in range(args.reps):
            for ratio in ratios:
                # Alternate which side goes first, so neither always runs on the warmer minute.
                order = list(systems.items()) if rep % 2 == 0 else list(reversed(systems.items()))
                for label, s in order:
                    before = cpu_seconds(s.proc.pid)
                    loadgen(s.port, ratio, args, label, raw)
                    cpu[(label, ratio)].append(cpu_seconds(s.proc.pid) - before)
    finally:
        for s in systems.values():
            s.stop()
        # Write-heavy cells leave gigabytes of log behind.
        shutil.rmtree(tmp / "base", ignore_errors=True)
        shutil.rmtree(tmp / "current", ignore_errors=True)
    runs = [json.loads(l) for l in raw.read_text().splitlines()]
    # Operations of a whole run (warm-up included), matched to that run's CPU time: runs of
    # one (label, ratio) are in the order they were made.
    for label in systems:
        for ratio in ratios:
            xs = [r for r in runs if r["label"] == label and r["read_ratio"] == ratio]
            for r, c in zip(xs, cpu[(label, ratio)]):
                r["server_cpu_us_per_op"] = c * 1e6 / (r["ops_per_s"] * (args.duration + args.warmup))
    print()
    print("| read ratio | baseline ops/s (median) | current ops/s (median) | current / baseline | "
          "baseline runs | current runs | write p99 µs (base / current, median) | "
          "server CPU µs/op (base / current, median) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ratio in ratios:
        by = {l: [r for r in runs if r["label"] == l and r["read_ratio"] == ratio] for l in systems}
        med = {l: statistics.median(r["ops_per_s"] for r in xs) for l, xs in by.items()}
        p99 = {l: statistics.median(r["write_p99_us"] for r in xs) for l, xs in by.items()}
        cpu_op = {l: statistics.median(r["server_cpu_us_per_op"] for r in xs) for l, xs in by.items()}
        runs_of = lambda l: " ".join(f"{r['ops_per_s'] / 1000:.0f}k" for r in by[l])
        print(f"| {ratio:g} | {med['base']:,.0f} | {med['current']:,.0f} | {med['current'] / med['base']:.2f} | "
              f"{runs_of('base')} | {runs_of('current')} | {p99['base']:.0f} / {p99['current']:.0f} | "
              f"{cpu_op['base']:.2f} / {cpu_op['current']:.2f} |")
    errors = sum(r["errors"] for r in runs)
    print(f"\nErrors seen by clients over all runs: {errors}.")


if __name__ == "__main__":
    main()
