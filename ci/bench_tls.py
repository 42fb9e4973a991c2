#!/usr/bin/env python3
"""TLS against plaintext on one standalone Warren, interleaved in the same run: the server
listens on clientPort (plaintext) and secureClientPort (TLS, ssl.clientAuth=need), and the
same pipelined client (loadgen run) alternates between the two ports, round after round.

With --baseline-bin, a second Warren built from an older commit (plaintext only) joins the
rotation, so that the plaintext path of this build can be compared with the one before TLS.

Usage: python3 ci/bench_tls.py [--duration 8] [--warmup 2] [--rounds 3] [--ratios 0.9,0.0]
       [--out results/tls] [--baseline-bin PATH --baseline-label TEXT]
Builds nothing: run `cargo build --release -p warren -p loadgen` first (ci/bench-tls.sh does).
"""
import argparse, datetime, json, os, platform, shlex, statistics, subprocess, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
import servers  # noqa: E402
from pki import Pki  # noqa: E402

LOADGEN = REPO / "target" / "release" / "loadgen"


def loadgen(port, ratio, args, label, json_path, tls=None):
    cmd = [str(LOADGEN), "run", "--connect", f"127.0.0.1:{port}", "--read-ratio", str(ratio),
           "--clients", str(args.clients), "--outstanding", str(args.outstanding),
           "--value-size", str(args.value_size),
           "--duration", str(args.duration), "--warmup", str(args.warmup), "--quiet",
           "--label", label, "--json", str(json_path)]
    if tls is not None:
        cmd += ["--tls-ca", tls.ca_file, "--tls-cert", str(tls.dir / "alice.crt"),
                "--tls-key", str(tls.dir / "alice.key")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + args.warmup + 120)
    sys.stdout.write(f"--- {label} read-ratio {ratio}\n{out.stdout}{out.stderr}")
    if out.returncode != 0:
        raise SystemExit(f"loadgen failed against {label}")
    # --json appends one line per run.
    return json.loads(json_path.read_text().splitlines()[-1])


def summary_of(rec):
    """(ops/s, p99 µs, server CPU µs/op): p99 of reads when the mix has reads, else of writes."""
    p99 = rec["read_p99_us"] if rec["read_ratio"] > 0 else rec["write_p99_us"]
    return rec["ops_per_s"], p99, rec["server_cpu_us_per_op"]


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, kind, default in (("--duration", float, 8), ("--warmup", float, 2), ("--rounds", int, 3),
                                ("--clients", int, 8), ("--outstanding", int, 100),
                                ("--value-size", int, 1024), ("--ratios", str, "0.9,0.0"),
                                ("--out", str, str(REPO / "results" / "tls")),
                                ("--baseline-bin", str, None), ("--baseline-label", str, "baseline")):
        p.add_argument(flag, type=kind, default=default)
    args = p.parse_args()
    args.load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    ratios = [float(r) for r in args.ratios.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "runs.jsonl"
    raw.unlink(missing_ok=True)

    base = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    pki = Pki(base / "pki")
    secure = servers.free_port()
    warren = servers.WarrenServer(base / "warren", extra_cfg={
        "maxClientCnxns": "0",
        "secureClientPort": str(secure),
        "secureClientPortAddress": "127.0.0.1",
        "ssl.keyStore.location": str(pki.server_pem),
        "ssl.trustStore.location": pki.ca_file,
        "ssl.clientAuth": "need",
    })
    baseline = None
    modes = ["plaintext", "tls"]
    if args.baseline_bin:
        baseline = servers.WarrenServer(base / "baseline", binary=args.baseline_bin, extra_cfg={"maxClientCnxns": "0"})
        modes.append("baseline")
    results = {}  # (ratio, mode) -> [(ops, p99)]
    try:
        warren.start()
        if baseline:
            baseline.start()
        for r in range(1, args.rounds + 1):
            for ratio in ratios:
                # Rotate the order each round, so no mode always runs first or last.
                for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                    port, tls = {"plaintext": (warren.port, None), "tls": (secure, pki),
                                 "baseline": (baseline and baseline.port, None)}[mode]
                    pid = (baseline if mode == "baseline" else warren).proc.pid
                    cpu0 = cpu_seconds(pid)
                    rec = loadgen(port, ratio, args, f"warren-{mode}", base / "run.json", tls)
                    # The server's CPU over the whole run (warm-up and set-up included) per
                    # measured op: steadier than ops/s on a machine shared with other work.
                    ops = rec["ops_per_s"] * args.duration * (1 + args.warmup / args.duration)
                    rec["server_cpu_us_per_op"] = (cpu_seconds(pid) - cpu0) * 1e6 / max(ops, 1)
                    rec["round"], rec["mode"] = r, mode
                    with raw.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                    results.setdefault((ratio, mode), []).append(summary_of(rec))
    finally:
        warren.cleanup()
        if baseline:
            baseline.cleanup()

    cmd = "python3 ci/bench_tls.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "# TLS against plaintext, standalone Warren, same run",
        "",
        f"Command: `{cmd}` (after `cargo build --release -p warren -p loadgen`), "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores shared with other work.",
        "",
        f"One Warren (1 executor) with clientPort and secureClientPort (TLSv1.2, ECDSA P-256 "
        f"certificates, ssl.clientAuth=need, the client shows a certificate); loadgen "
        f"{args.clients} clients x {args.outstanding} outstanding, {args.value_size} B values, "
        f"{args.warmup} s warm-up then {args.duration} s measured per run; {args.rounds} rounds, "
        f"the modes in rotation (the order rotates each round). Figures: median over rounds "
        f"(min-max); p99 is of reads when the mix has reads, of writes when it has none. CPU µs/op: "
        f"the server process's user+system CPU time over a run divided by the ops of warm-up and "
        f"measurement (warm-up ops estimated at the measured rate): it is less disturbed than ops/s "
        f"by the other work sharing the machine.",
        *([f"Baseline: plaintext on a Warren built from {args.baseline_label}, a separate server "
           f"running beside this one, in the same rotation."] if baseline else []),
        "",
        "| read ratio | plaintext ops/s | TLS ops/s | TLS / plaintext | plaintext p99 µs | TLS p99 µs "
        "| plaintext CPU µs/op | TLS CPU µs/op |"
        + (" baseline ops/s | baseline p99 µs | baseline CPU µs/op | plaintext / baseline ops/s |" if baseline else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- | --- | --- |" if baseline else ""),
    ]
    verdicts = []
    for ratio in ratios:
        pl, tl = results[(ratio, "plaintext")], results[(ratio, "tls")]
        med = lambda xs: statistics.median(xs)  # noqa: E731
        rng = lambda xs: f"{min(xs):.0f}-{max(xs):.0f}"  # noqa: E731
        p_ops, t_ops = [x[0] for x in pl], [x[0] for x in tl]
        p_p99, t_p99 = [x[1] for x in pl], [x[1] for x in tl]
        ratio_tls = med(t_ops) / med(p_ops)
        verdicts.append(ratio_tls)
        cpu = lambda xs: f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"  # noqa: E731
        row = (f"| {ratio} | {med(p_ops):.0f} ({rng(p_ops)}) | {med(t_ops):.0f} ({rng(t_ops)}) | "
               f"{ratio_tls:.2f} | {med(p_p99):.0f} ({rng(p_p99)}) | {med(t_p99):.0f} ({rng(t_p99)}) | "
               f"{cpu([x[2] for x in pl])} | {cpu([x[2] for x in tl])} |")
        if baseline:
            b = results[(ratio, "baseline")]
            b_ops, b_p99 = [x[0] for x in b], [x[1] for x in b]
            row += (f" {med(b_ops):.0f} ({rng(b_ops)}) | {med(b_p99):.0f} ({rng(b_p99)}) | "
                    f"{cpu([x[2] for x in b])} | {med(p_ops) / med(b_ops):.2f} |")
        lines.append(row)
    lines += ["", f"Requirement (issue 14): TLS keeps at least 0.7 of plaintext throughput: "
              f"{'met' if min(verdicts) >= 0.7 else 'NOT met'} (lowest {min(verdicts):.2f}).",
              "", "Every run's loadgen record: `runs.jsonl`. `uptime` before the run: " + args.load + "."]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
