#!/usr/bin/env python3
"""Standalone throughput, side by side in one run: Warren, Apache ZooKeeper 3.8, and the
loopback ceiling (loadgen's echo server), driven by the same pipelined client (loadgen run).

Usage: python3 ci/bench_standalone.py [--duration 8] [--warmup 2] [--reps 2] [--out results/standalone]
Builds nothing: run `cargo build --release -p warren -p loadgen` first (ci/bench-standalone.sh does).
Both servers fsync their log before acknowledging a write (ZooKeeper's default forceSync=yes).
"""
import argparse, datetime, json, os, platform, shlex, shutil, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
import servers  # noqa: E402

LOADGEN = REPO / "target" / "release" / "loadgen"


class BenchZooKeeper(servers.ZooKeeperServer):
    """ZooKeeper with a benchmark-sized heap and the JVM's default collector."""
    heap = "1g"

    def command(self):
        return [a for a in super().command() if a != "-XX:+UseSerialGC"]


def loadgen(port, ratio, args, label, json_path):
    cmd = [str(LOADGEN), "run", "--connect", f"127.0.0.1:{port}", "--read-ratio", str(ratio),
           "--clients", str(args.clients), "--outstanding", str(args.outstanding),
           "--duration", str(args.duration), "--warmup", str(args.warmup),
           "--label", label, "--json", str(json_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + args.warmup + 120)
    sys.stdout.write(f"--- {label} read-ratio {ratio}\n{out.stdout}{out.stderr}")
    if out.returncode != 0:
        raise SystemExit(f"loadgen failed against {label}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--outstanding", type=int, default=100)
    p.add_argument("--ratios", default="1.0,0.9,0.5,0.0")
    p.add_argument("--out", default=str(REPO / "results" / "standalone"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "runs.jsonl"
    raw.unlink(missing_ok=True)
    ratios = [float(r) for r in args.ratios.split(",")]

    base = Path(tempfile.mkdtemp(prefix="bench-standalone-"))
    warren = servers.WarrenServer(base / "warren", extra_cfg={"maxClientCnxns": "0"})
    zk = BenchZooKeeper(base / "zookeeper", extra_cfg={"maxClientCnxns": "0"})
    echo_port = servers.free_port()
    echo = subprocess.Popen([str(LOADGEN), "echo-server", "--listen", f"127.0.0.1:{echo_port}"],
                            stderr=subprocess.DEVNULL)
    try:
        warren.start()
        zk.start()
        time.sleep(0.5)
        # Interleaved: each read ratio is measured on all three targets back to back, twice.
        for rep in range(args.reps):
            for ratio in ratios:
                loadgen(warren.port, ratio, args, "warren", raw)
                loadgen(zk.port, ratio, args, "zookeeper", raw)
                loadgen(echo_port, ratio, args, "echo", raw)
    finally:
        echo.kill()
        warren.stop()
        zk.stop()
        # Write-heavy cells leave gigabytes of log behind.
        shutil.rmtree(base, ignore_errors=True)
    write_report(out, raw, args, ratios)


def write_report(out, raw, args, ratios):
    runs = [json.loads(l) for l in raw.read_text().splitlines()]
    by = {}
    for r in runs:
        by.setdefault((r["label"], r["read_ratio"]), []).append(r)
    def best(label, ratio, key):
        xs = by.get((label, ratio), [])
        return max((x[key] for x in xs), default=0)
    lines = []
    cmd = "python3 ci/bench_standalone.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    kernel = platform.release()
    lines += [
        "# Standalone throughput: Warren vs ZooKeeper 3.8 vs the loopback ceiling",
        "",
        f"Command: `bash ci/bench-standalone.sh` (runs `{cmd}`), {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC.",
        f"Machine: {os.cpu_count()} cores, Linux {kernel}; client and servers share it.",
        f"Workload: loadgen, {args.clients} sessions x {args.outstanding} requests in flight, getData/setData "
        f"of 1 KiB values on 1000 keys, {args.warmup:g} s warm-up + {args.duration:g} s measured, "
        f"{args.reps} interleaved repetitions (best shown; all runs in `runs.jsonl`).",
        "Both servers are standalone and fsync their transaction log before acknowledging a write "
        "(ZooKeeper's default forceSync=yes; Warren's group commit). ZooKeeper: OpenJDK 17, -Xmx1g.",
        "The echo server answers the same client with canned replies: what client + loopback can do at all.",
        "",
        "| read ratio | Warren ops/s | ZooKeeper ops/s | echo ceiling ops/s | Warren / ZooKeeper | Warren / ceiling | ZooKeeper / ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ratio in ratios:
        w, z, e = (best(l, ratio, "ops_per_s") for l in ("warren", "zookeeper", "echo"))
        f = lambda a, b: f"{a / b:.2f}" if b else "-"
        lines.append(f"| {ratio:g} | {w:,.0f} | {z:,.0f} | {e:,.0f} | {f(w, z)} | {f(w, e)} | {f(z, e)} |")
    lines += ["", "Latency (best run by throughput; microseconds):", "",
              "| read ratio | system | read p50 | read p99 | write p50 | write p99 |", "| --- | --- | --- | --- | --- | --- |"]
    for ratio in ratios:
        for label in ("warren", "zookeeper", "echo"):
            xs = by.get((label, ratio), [])
            if not xs:
                continue
            x = max(xs, key=lambda r: r["ops_per_s"])
            lines.append(f"| {ratio:g} | {label} | {x['read_p50_us']} | {x['read_p99_us']} | {x['write_p50_us']} | {x['write_p99_us']} |")
    errors = sum(r["errors"] for r in runs)
    lines += ["", f"Errors seen by clients over all runs: {errors}."]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
