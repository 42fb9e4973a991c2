#!/usr/bin/env python3
"""What local sessions save: session creation rate, and leader-failover recovery with many
sessions open, for Warren and ZooKeeper 3.8 with and without `localSessionsEnabled`, in one run
(the four configurations interleaved, so that a noisy minute hits all of them).

Usage: python3 ci/bench_sessions.py [--reps 2] [--warmup 8] [--duration 10] [--clients 16]
           [--sessions 10000] [--json runs.jsonl]
Needs target/release/warren and target/release/loadgen (cargo build --release) and ZooKeeper
3.8 (bash ci/install-deps.sh). Each configuration gets a fresh 3-server ensemble on 127.0.0.1
(tickTime 1000, so session timeouts of 2-20 s), both systems at their defaults otherwise
(ZooKeeper's JVM with its default heap; the caps are the same for both: none).

Per configuration and repetition:
  1. warm-up: `loadgen sessions` for --warmup seconds (a JVM needs it; Warren does not), then
     the measured run: --clients threads open and close sessions round-robin over the three
     servers for --duration seconds (sessions/s, open and close latency);
  2. recovery: --sessions sessions opened round-robin and left open (`--keep`), then the leader
     is killed (SIGKILL) and a client on a follower retries a create every 5 ms: the time from
     the kill to its first successful write.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
from ensemble import Ensemble  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException, NodeExistsError  # noqa: E402

LOADGEN = REPO / "target" / "release" / "loadgen"


def sessions(hosts: str, duration: float, clients: int, count: int = 0, keep: bool = False) -> dict:
    cmd = [str(LOADGEN), "sessions", "--connect", hosts, "--clients", str(clients),
           "--duration", str(duration), "--count", str(count)] + (["--keep"] if keep else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def recovery_ms(ens: Ensemble, leader: int) -> float:
    follower = ens.followers(leader)[0]
    c = KazooClient(hosts=ens[follower].host_port, timeout=20.0,
                    connection_retry=dict(max_tries=-1, delay=0.005, max_delay=0.05))
    c.start(timeout=30)
    try:
        c.create("/probe-before", b"")
        killed = time.monotonic()
        ens.kill(leader)
        n = 0
        while time.monotonic() - killed < 60:
            n += 1
            try:
                c.create(f"/probe-{n}", b"")
                return (time.monotonic() - killed) * 1000
            except NodeExistsError:
                return (time.monotonic() - killed) * 1000
            except KazooException:
                time.sleep(0.005)
        raise RuntimeError("no write within 60 s of the kill")
    finally:
        c.stop()
        c.close()


def one(system: str, local: bool, a, base: Path) -> dict:
    cfg = {"localSessionsEnabled": str(local).lower()}
    d = base / f"{system}-{int(local)}"
    ens = Ensemble(system, d, participants=3, extra_cfg=cfg, name="bs")
    try:
        leader = ens.start(timeout=90)
        hosts = ",".join(f"127.0.0.1:{ens[s].port}" for s in ens.participants())
        sessions(hosts, a.warmup, a.clients)
        rate = sessions(hosts, a.duration, a.clients)
        opened = sessions(hosts, 120, a.clients, count=a.sessions, keep=True)
        rec = recovery_ms(ens, leader)
        return {"system": system, "local": local, "rate": rate, "opened_before_kill": opened["sessions"],
                "recovery_ms": round(rec, 1)}
    finally:
        ens.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--warmup", type=float, default=8)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--json")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    runs = []
    try:
        for rep in range(a.reps):
            for system in ("warren", "zookeeper"):
                for local in (False, True):
                    r = one(system, local, a, base)
                    r["rep"] = rep
                    runs.append(r)
                    print(json.dumps(r), flush=True)
                    if a.json:
                        with open(a.json, "a") as f:
                            f.write(json.dumps(r) + "\n")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n| system | localSessionsEnabled | sessions/s (open+close) | open p50 / p99 ms | "
          "close p50 / p99 ms | failures | leader kill -> first write, ms (10k sessions open) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for system in ("warren", "zookeeper"):
        for local in (False, True):
            rs = [r for r in runs if r["system"] == system and r["local"] == local]
            med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
            print(f"| {system} | {str(local).lower()} | {med(lambda r: r['rate']['sessions_per_s']):.0f} | "
                  f"{med(lambda r: r['rate']['open_ms']['p50']):.2f} / {med(lambda r: r['rate']['open_ms']['p99']):.2f} | "
                  f"{med(lambda r: r['rate']['close_ms']['p50']):.2f} / {med(lambda r: r['rate']['close_ms']['p99']):.2f} | "
                  f"{sum(r['rate']['failures'] for r in rs)} | "
                  f"{', '.join(str(r['recovery_ms']) for r in rs)} |")


if __name__ == "__main__":
    main()
