#!/usr/bin/env python3
"""TLS against plaintext on one standalone Warren, interleaved in the same run: the server
listens on clientPort (plaintext) and secureClientPort (TLS, ssl.clientAuth=need), and the
same pipelined client (loadgen run) alternates between the two ports, round after round.

With --handshake-seconds N, full TLS handshakes per second are measured too (`openssl s_time
-new`, one client process, client certificate shown), against this Warren and against a
ZooKeeper 3.8 (Netty, the same certificates), alternating.

With --baseline-bin, a second Warren built from an older commit (plaintext only) joins the
rotation, so that the plaintext path of this build can be compared with the one before TLS.

Usage: python3 ci/bench_tls.py [--duration 8] [--warmup 2] [--rounds 3] [--ratios 0.9,0.0]
       [--out results/tls] [--baseline-bin PATH --baseline-label TEXT]
Builds nothing: run `cargo build --release -p warren -p loadgen` first (ci/bench-tls.sh does).
"""
import argparse, datetime, json, os, platform, re, shlex, shutil, statistics, subprocess, sys, tempfile, time
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


def handshakes(port, pki, seconds):
    """Full handshakes per wall-clock second of `openssl s_time -new` against `port`."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(int(seconds)),
           "-CAfile", pki.ca_file, "-cert", str(pki.dir / "alice.crt"), "-key", str(pki.dir / "alice.key")]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    elapsed = time.monotonic() - t0
    m = re.search(r"(\d+) connections in [\d.]+s", out)
    if not m:
        raise SystemExit(f"openssl s_time gave no count:\n{out[-2000:]}")
    return int(m.group(1)) / elapsed


def measure_handshakes(args, base, pki):
    """[(system, handshakes/s), ...] for Warren and ZooKeeper, alternating."""
    secure = {"warren": servers.free_port(), "zookeeper": servers.free_port()}
    cfg = lambda kind: {"ssl.keyStore.location": str(pki.server_pem), "ssl.trustStore.location": pki.ca_file,  # noqa: E731
                        "ssl.clientAuth": "need", "maxClientCnxns": "0",
                        "secureClientPort": str(secure[kind]), "secureClientPortAddress": "127.0.0.1"}
    jars = [str(servers.ZK_JAVA_DIR / "netty-codec.jar"), str(servers.ZK_JAVA_DIR / "netty-resolver.jar")]
    started = {
        "warren": servers.WarrenServer(base / "hs-warren", extra_cfg=cfg("warren")),
        "zookeeper": servers.ZooKeeperServer(
            base / "hs-zookeeper", extra_cfg=cfg("zookeeper"), extra_classpath=jars,
            jvm_props={"zookeeper.serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory"}),
    }
    out = []
    try:
        for s in started.values():
            s.start()
        for kind in started:  # warm-up (the JVM above all)
            handshakes(secure[kind], pki, 2)
        for r in range(args.handshake_rounds):
            for kind in (("warren", "zookeeper") if r % 2 == 0 else ("zookeeper", "warren")):
                out.append((kind, handshakes(secure[kind], pki, args.handshake_seconds)))
                print(f"--- handshakes {kind}: {out[-1][1]:.0f}/s")
    finally:
        for s in started.values():
            s.cleanup()
    return out


def parse_args(description, extra_flags=()):
    """The flags both TLS benchmarks take (and `extra_flags`); `load` is `uptime` now and
    `ratio_list` the read ratios."""
    p = argparse.ArgumentParser(description=description)
    for flag, kind, default in (("--duration", float, 8), ("--warmup", float, 2), ("--rounds", int, 3),
                                ("--clients", int, 8), ("--outstanding", int, 100),
                                ("--value-size", int, 1024), ("--ratios", str, "0.9,0.0"),
                                ("--out", str, str(REPO / "results" / "tls")),
                                ("--baseline-bin", str, None), ("--baseline-label", str, "baseline"),
                                ("--workdir", str, None), *extra_flags):
        p.add_argument(flag, type=kind, default=default)
    args = p.parse_args()
    args.load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    args.ratio_list = [float(r) for r in args.ratios.split(",")]
    return args


def prepare(args, raw_name, prefix):
    """(output folder, its fresh raw-records file, a new work folder, certificates in it)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / raw_name
    raw.unlink(missing_ok=True)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=args.workdir)).resolve()
    return out, raw, base, Pki(base / "pki")


def main():
    args = parse_args(__doc__.splitlines()[0],
                      (("--handshake-seconds", float, 0), ("--handshake-rounds", int, 2)))
    ratios = args.ratio_list
    out, raw, base, pki = prepare(args, "runs.jsonl", "bench-tls-")
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
                    try:
                        rec = loadgen(port, ratio, args, f"warren-{mode}", base / "run.json", tls)
                    except SystemExit:
                        for srv in (warren, baseline):
                            if srv is not None:
                                print(f"--- {srv.name} {srv.status()}\n{srv.log_tail(80)}")
                        raise
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
        # The servers' data (the write-only mix logs ~80 MB/s: a full run leaves 10-20 GB) goes;
        # their logs were printed above if loadgen failed.
        for d in ("warren", "baseline"):
            shutil.rmtree(base / d / "data", ignore_errors=True)
    hs = measure_handshakes(args, base, pki) if args.handshake_seconds > 0 else []

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
              *(["", "Full TLS handshakes per second (`openssl s_time -new`, one client process on the "
                 f"same machine, client certificate shown, ssl.clientAuth=need; {args.handshake_rounds} "
                 f"rounds of {args.handshake_seconds:.0f} s alternating, after a 2 s warm-up each): "
                 + "; ".join(f"{k} " + ", ".join(f"{v:.0f}" for kk, v in hs if kk == k) for k in ("warren", "zookeeper"))
                 + " handshakes/s (the client's own handshake work shares the 2 cores)."] if hs else []),
              "", "Every run's loadgen record: `runs.jsonl`. `uptime` before the run: " + args.load + ".",
              "", "Quorum TLS (TLS between the servers of a 3-server ensemble) is measured by "
              "`ci/bench_quorum_tls.py`: `quorum.md`."]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
