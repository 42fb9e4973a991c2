#!/usr/bin/env python3
"""Quorum TLS against plaintext quorum links on a 3-server Warren ensemble, in the same run:
each round starts a fresh ensemble per mode (plaintext links; sslQuorum=true with
ssl.quorum.* PEM stores), points loadgen at a follower (so every write crosses two links:
follower -> leader, then the proposal to both followers), records throughput, p99 and the
three servers' CPU per op, and deletes the ensemble's data before the next one starts.
It also splits out the CPU of two threads per server: the owner (executor 0, `warren-0-*`,
which runs the state machine) and, under quorum TLS, the peer TLS executor
(`warren-peer-tls-*`, which does the links' TLS), to show which thread pays for encryption.

With --baseline-bin, a third mode runs plaintext links on an ensemble of another Warren
binary (say, one built before quorum TLS), to compare this build's plaintext links with it;
with --baseline-tls 1 as well, that ensemble runs TLS links instead (say, a build whose owner
did the TLS work itself), to compare with this build's TLS links.

Usage: python3 ci/bench_quorum_tls.py [--duration 8] [--warmup 2] [--rounds 3] [--ratios 0.9,0.0]
       [--out results/tls] [--workdir DIR] [--baseline-bin PATH --baseline-label TEXT [--baseline-tls 1]]
Builds nothing: run `cargo build --release -p warren -p loadgen` first.
"""
import datetime, json, os, platform, shlex, shutil, statistics, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(HERE))
from bench_tls import cpu_seconds, loadgen, parse_args, prepare, summary_of  # noqa: E402
from ensemble import Ensemble  # noqa: E402
from pki import Pki  # noqa: E402



def threads_cpu_seconds(pid, prefix):
    """User + system CPU time so far of a process's threads whose name starts with `prefix`
    (an executor's thread and the helper thread glommio gives it carry its name)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().startswith(prefix):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:  # the thread ended meanwhile
            pass
    return total / os.sysconf("SC_CLK_TCK")


OWNER, PEER_TLS = "warren-0-", "warren-peer-tls"


def quorum_keys(pki, sid):
    return {"sslQuorum": "true", "ssl.quorum.keyStore.location": str(pki.dir / f"peer{sid}.pem"),
            "ssl.quorum.trustStore.location": pki.ca_file}


def one_run(mode, ratio, args, base, pki, label_round):
    d = base / f"{mode}-{label_round}-{ratio}"
    ens = Ensemble("warren", d, participants=3, name=f"bench-{mode}",
                   extra_cfg={"maxClientCnxns": "0"})
    try:
        for sid in (1, 2, 3):
            if mode == "tls" or (mode == "baseline" and args.baseline_tls):
                ens[sid].extra_cfg.update(quorum_keys(pki, sid))
                ens[sid]._write_cfg()
            if mode == "baseline":
                ens[sid].binary = Path(args.baseline_bin).resolve()
        leader = ens.start(timeout=90)
        follower = ens.followers(leader)[0]
        pids = [ens[s].pid for s in (1, 2, 3)]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        owner0 = [threads_cpu_seconds(p, OWNER) for p in pids]
        tls0 = sum(threads_cpu_seconds(p, PEER_TLS) for p in pids)
        try:
            rec = loadgen(ens[follower].port, ratio, args, f"quorum-{mode}", base / "run.json")
        except SystemExit:
            for s in (1, 2, 3):
                print(f"--- server.{s}\n{ens[s].log_since(max(0, ens[s].log_size() - 6000))}")
            raise
        ops = rec["ops_per_s"] * args.duration * (1 + args.warmup / args.duration)
        rec["server_cpu_us_per_op"] = (sum(cpu_seconds(p) for p in pids) - cpu0) * 1e6 / max(ops, 1)
        owner = [threads_cpu_seconds(p, OWNER) - o for p, o in zip(pids, owner0)]
        rec["owner_cpu_us_per_op"] = sum(owner) * 1e6 / max(ops, 1)
        # The busiest owner (the leader's, as a rule) as a share of one core over the run.
        rec["owner_busiest_core_share"] = max(owner) / (args.warmup + args.duration)
        tls = sum(threads_cpu_seconds(p, PEER_TLS) for p in pids) - tls0
        rec["peer_tls_cpu_us_per_op"] = tls * 1e6 / max(ops, 1)
        return rec
    finally:
        ens.close()
        # The write-only mix logs tens of MB/s on each of three servers: never keep it.
        shutil.rmtree(d, ignore_errors=True)


def main():
    args = parse_args(__doc__.splitlines()[0], (("--baseline-tls", int, 0),))
    load, ratios = args.load, args.ratio_list
    out, raw, base, pki = prepare(args, "quorum-runs.jsonl", "bench-qtls-")
    for sid in (1, 2, 3):
        pki.write_server_cert(f"server-{sid}", pki.dir / f"peer{sid}.pem", peer=True)
    modes = ["plaintext", "tls"] + (["baseline"] if args.baseline_bin else [])
    results = {}
    try:
        for r in range(1, args.rounds + 1):
            for ratio in ratios:
                # Rotate the order each round, so no mode always runs first or last.
                for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                    rec = one_run(mode, ratio, args, base, pki, r)
                    rec["round"], rec["mode"] = r, mode
                    with raw.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                    threads = (rec["owner_cpu_us_per_op"], rec["owner_busiest_core_share"],
                               rec["peer_tls_cpu_us_per_op"])
                    results.setdefault((ratio, mode), []).append(summary_of(rec) + threads)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    cmd = "python3 ci/bench_quorum_tls.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    med = statistics.median
    rng = lambda xs: f"{min(xs):.0f}-{max(xs):.0f}"  # noqa: E731
    cpu = lambda xs: f"{med(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"  # noqa: E731
    lines = [
        "# Quorum TLS against plaintext quorum links, 3-server Warren ensemble, same run",
        "",
        f"Command: `{cmd}` (after `cargo build --release -p warren -p loadgen`), "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores shared with other work (the three servers and loadgen "
        f"on the same cores).",
        "",
        f"Per round and mode a fresh 3-server ensemble on 127.0.0.1 (tickTime 1000, 1 executor each): "
        f"plaintext peer links, or sslQuorum=true (TLSv1.2, ECDSA P-256 PEM stores, mutual "
        f"authentication, hostname verification on). loadgen against a follower: {args.clients} "
        f"clients x {args.outstanding} outstanding, {args.value_size} B values, {args.warmup} s "
        f"warm-up then {args.duration} s measured; {args.rounds} rounds, the order alternating. "
        f"Client connections are plaintext in both modes. Figures: median over rounds (min-max); p99 "
        f"of reads when the mix has reads, else of writes. CPU µs/op: the three servers' user+system "
        f"CPU over the run per op. Owner CPU µs/op: the same for the three owner threads "
        f"(executor 0, `warren-0-*`), the busiest of them also as a share of one core over the run; "
        f"peer TLS CPU µs/op: the three `warren-peer-tls` threads (none in plaintext).",
        *([f"Baseline: {'TLS' if args.baseline_tls else 'plaintext'} links on an ensemble of "
           f"{args.baseline_label}, in the same rotation."]
          if args.baseline_bin else []),
        "",
        "| read ratio | plaintext ops/s | TLS ops/s | TLS / plaintext | plaintext p99 µs | TLS p99 µs "
        "| plaintext CPU µs/op | TLS CPU µs/op | plaintext owner CPU µs/op | TLS owner CPU µs/op "
        "| plaintext busiest owner, core share | TLS busiest owner, core share | TLS peer TLS CPU µs/op |"
        + (f" baseline ops/s | baseline p99 µs | baseline CPU µs/op | baseline owner CPU µs/op "
           f"| baseline busiest owner, core share | {'TLS' if args.baseline_tls else 'plaintext'} / baseline ops/s |"
           if args.baseline_bin else ""),
        "| --- " * 13 + "|" + (" --- |" * 6 if args.baseline_bin else ""),
    ]
    for ratio in ratios:
        pl, tl = results[(ratio, "plaintext")], results[(ratio, "tls")]
        p_ops, t_ops = [x[0] for x in pl], [x[0] for x in tl]
        p_p99, t_p99 = [x[1] for x in pl], [x[1] for x in tl]
        row = (f"| {ratio} | {med(p_ops):.0f} ({rng(p_ops)}) | {med(t_ops):.0f} ({rng(t_ops)}) | "
               f"{med(t_ops) / med(p_ops):.2f} | {med(p_p99):.0f} ({rng(p_p99)}) | "
               f"{med(t_p99):.0f} ({rng(t_p99)}) | {cpu([x[2] for x in pl])} | {cpu([x[2] for x in tl])} | "
               f"{cpu([x[3] for x in pl])} | {cpu([x[3] for x in tl])} | {cpu([x[4] for x in pl])} | "
               f"{cpu([x[4] for x in tl])} | {cpu([x[5] for x in tl])} |")
        if args.baseline_bin:
            b = results[(ratio, "baseline")]
            b_ops, b_p99 = [x[0] for x in b], [x[1] for x in b]
            row += (f" {med(b_ops):.0f} ({rng(b_ops)}) | {med(b_p99):.0f} ({rng(b_p99)}) | "
                    f"{cpu([x[2] for x in b])} | {cpu([x[3] for x in b])} | {cpu([x[4] for x in b])} | "
                    f"{med((t_ops if args.baseline_tls else p_ops)) / med(b_ops):.2f} |")
        lines.append(row)
    lines += ["", "Every run's loadgen record: `quorum-runs.jsonl`. `uptime` before the run: " + load + "."]
    (out / "quorum.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
