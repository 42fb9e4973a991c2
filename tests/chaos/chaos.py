#!/usr/bin/env python3
"""Chaos run: a Warren ensemble of real processes in network namespaces, faults on a seeded
schedule, clients recording a history, checkers at the end. See README.md.

    sudo python3 tests/chaos/chaos.py --seed 7 --duration 120 [--faults pause-leader,kill-all]

Exit status 0: every checker passed; 1: an anomaly (printed, and in <out>/report.json);
2: skipped (not root, no network namespaces, no binary); 3: the run broke down (e.g. the
ensemble never became stable: a finding too, look at <out>/servers/n*/warren.out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import checks  # noqa: E402
import net  # noqa: E402
from servers import ZooKeeperServer, die_with_parent, four_letter  # noqa: E402
from recipes import LOCKS, LockClient, Watcher, owner_path  # noqa: E402
from workload import INITIAL, Client, Clock, History  # noqa: E402

# New kinds go at the end: a --cycle schedule of the earlier kinds then stays what it was.
FAULT_KINDS = ("isolate-leader", "partition-leader", "partition-random", "bridge",
               "kill-one", "kill-all", "pause-leader", "pause-follower", "loss-leader", "loss-all",
               "ring")
LOSS_KINDS = ("loss-leader", "loss-all")
# Packet loss per link (net.lose): drawn per fault from this range. At 0.1 a TCP exchange
# through one lossy link has a 19 % chance that the request or its answer is lost and waits
# for a retransmission (>= 200 ms), so replies slow down but few time out; at 0.3 that is 51 %,
# retransmission timers back off (0.2, 0.4, 0.8, 1.6, 3.2 s...) and stalls of seconds are
# common: operations time out (3 s), pings miss (sessions of 4 s), peers miss syncLimit, yet
# most packets still pass, so it is not a partition. Above that a TCP connection spends most
# of its time backed off (measured in tests/chaos/README.md).
LOSS_RANGE = (0.1, 0.3)
CLIENT_PORT = 2181
TICK_MS = 1000
SESSION_TIMEOUT_S = 4.0


class Server:
    """One ensemble member in its namespace: Warren, or ZooKeeper 3.8 started exactly as
    tests/python/servers.py starts it (its java command line, heap, log4j file)."""

    def __init__(self, sid: int, n: int, base: Path, binary: Path, system: str, extra: dict | None = None):
        self.sid, self.n, self.binary, self.system = sid, n, binary, system
        self.dir = base / f"n{sid}"
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        # Writes its own zoo.cfg (replaced below) and log4j.properties into self.dir.
        self.zk = ZooKeeperServer(base_dir=self.dir, port=CLIENT_PORT) if system == "zookeeper" else None
        if self.zk is not None:
            self.zk.heap = "160m"
        (self.dir / "data" / "myid").write_text(f"{sid}\n")
        cfg = {"tickTime": TICK_MS, "initLimit": 10, "syncLimit": 5,
               "dataDir": self.dir / "data", "clientPort": CLIENT_PORT,
               "clientPortAddress": net.server_ip(sid), "admin.enableServer": "false",
               "4lw.commands.whitelist": "*", "maxClientCnxns": 0}
        if system == "warren":
            cfg["warren.cores"] = 1
        cfg.update(extra or {})
        for j in range(1, n + 1):
            cfg[f"server.{j}"] = f"{net.server_ip(j)}:2888:3888"
        self.cfg = self.dir / "zoo.cfg"
        self.cfg.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        self.proc: subprocess.Popen | None = None
        self.paused = False

    def start(self) -> None:
        if self.running():
            return
        out = open(self.dir / f"{self.system}.out", "ab")
        env = dict(os.environ, RUST_BACKTRACE="1")
        if self.zk is not None:
            command = self.zk.command()
        else:
            command = [str(self.binary), "start-foreground", str(self.cfg)]
        # `ip netns exec` execs in place: the pid is the server's, so signals reach it.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.ns_name(self.sid), *command],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            preexec_fn=die_with_parent)
        out.close()
        self.paused = False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.proc.pid, sig)
        self.paused = sig == signal.SIGSTOP

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.paused = False

    def mode(self) -> str | None:
        if not self.running() or self.paused:
            return None
        try:
            text = four_letter(net.server_ip(self.sid), CLIENT_PORT, "srvr", timeout=1.0)
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None


class Cluster:
    def __init__(self, n: int, base: Path, binary: Path, system: str, log, extra: dict | None = None):
        self.n, self.log = n, log
        self.servers = {i: Server(i, n, base, binary, system, extra) for i in range(1, n + 1)}

    def hosts_for(self, first: int) -> str:
        order = [first] + [i for i in self.servers if i != first]
        return ",".join(f"{net.server_ip(i)}:{CLIENT_PORT}" for i in order)

    def modes(self) -> dict[int, str | None]:
        return {i: s.mode() for i, s in self.servers.items()}

    def leader(self) -> int | None:
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_stable(self, timeout: float) -> int:
        """All servers answer; one leader, the rest followers."""
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            modes = self.modes()
            roles = sorted(m or "-" for m in modes.values())
            if roles == ["follower"] * (self.n - 1) + ["leader"]:
                return next(i for i, m in modes.items() if m == "leader")
            time.sleep(0.2)
        raise RuntimeError(f"ensemble not stable within {timeout}s: {modes}")

    def heal_all(self) -> None:
        net.heal(self.n)
        for s in self.servers.values():
            if s.paused:
                s.signal(signal.SIGCONT)
            if not s.running():
                s.start()

    def stop(self) -> None:
        for s in self.servers.values():
            if s.paused:
                s.signal(signal.SIGCONT)
            s.kill()


def make_schedule(rng: random.Random, kinds: list[str], duration: float, cycle: bool) -> list[dict]:
    """The faults in order, each with how long it lasts and the quiet time after it. Targets
    given by role ("leader") are resolved when the fault starts; others are fixed here."""
    sched, t, k = [], 0.0, 0
    while True:
        kind = kinds[k % len(kinds)] if cycle else rng.choice(kinds)
        k += 1
        hold = rng.uniform(8.0, 12.0) if kind.startswith("pause") else rng.uniform(4.0, 10.0)
        if kind == "kill-all":
            hold = rng.uniform(1.0, 4.0)
        quiet = rng.uniform(4.0, 8.0)
        # --cycle: every kind once, however long that takes (the run lasts at least as long);
        # otherwise as many faults as fit in the duration.
        if (cycle and k > len(kinds)) or (not cycle and t + hold + quiet > duration):
            return sched
        fault = {"kind": kind, "hold_s": round(hold, 2), "quiet_s": round(quiet, 2),
                 "pick": rng.randrange(1 << 30)}
        if kind in LOSS_KINDS:
            # Drawn only for these kinds, so schedules without them are unchanged.
            fault["loss"] = round(rng.uniform(*LOSS_RANGE), 2)
        sched.append(fault)
        t += hold + quiet + 1.0


def inject(cluster: Cluster, fault: dict) -> str:
    """Starts the fault; returns a description of its target."""
    kind, n, pick = fault["kind"], cluster.n, fault["pick"]
    sids = list(range(1, n + 1))
    leader = cluster.leader()
    if kind in ("isolate-leader", "partition-leader", "pause-leader", "loss-leader") and leader is None:
        leader = sids[pick % n]  # no single leader right now: hit anyone
    if kind == "isolate-leader":
        net.isolate(leader)
        return f"n{leader} (leader) link down"
    if kind == "partition-leader":
        net.cut([[leader], [i for i in sids if i != leader]])
        return f"n{leader} (leader) | rest"
    if kind == "partition-random":
        minority = random.Random(pick).sample(sids, (n - 1) // 2)
        net.cut([minority, [i for i in sids if i not in minority]])
        return f"{minority} | rest"
    if kind == "bridge":
        # Two halves that cannot talk, and one server (the bridge) that talks to both.
        order = random.Random(pick).sample(sids, n)
        bridge, rest = order[0], order[1:]
        a, b = rest[: len(rest) // 2], rest[len(rest) // 2:]
        for i in a:
            for j in b:
                net.cut([[i], [j]])
        return f"{a} x {b}, bridge n{bridge}"
    if kind == "ring":
        # Each server talks only to its two neighbours in a random ring: with 5 servers each
        # sees a majority (itself and its neighbours), no two the same one. With 3 every pair
        # is neighbours, so it is a line instead: the two ends cannot talk.
        order = random.Random(pick).sample(sids, n)
        if n <= 3:
            net.cut([[order[0]], [order[-1]]])
            return "line " + "-".join(f"n{i}" for i in order)
        for x in range(n):
            for y in range(x + 1, n):
                if (y - x) % n not in (1, n - 1):
                    net.cut([[order[x]], [order[y]]])
        return "ring " + "-".join(f"n{i}" for i in order)
    if kind == "loss-leader":
        net.lose([leader], fault["loss"])
        return f"n{leader} (leader) loses {fault['loss']:.2f} of packets each way"
    if kind == "loss-all":
        net.lose(sids, fault["loss"])
        return f"all servers lose {fault['loss']:.2f} of packets on every link"
    if kind == "kill-one":
        victim = sids[pick % n]
        cluster.servers[victim].kill()
        return f"n{victim} kill -9"
    if kind == "kill-all":
        for s in cluster.servers.values():
            s.kill()
        return "all kill -9"
    if kind == "pause-leader":
        cluster.servers[leader].signal(signal.SIGSTOP)
        return f"n{leader} (leader) SIGSTOP"
    if kind == "pause-follower":
        followers = [i for i in sids if i != leader]
        victim = followers[pick % len(followers)]
        cluster.servers[victim].signal(signal.SIGSTOP)
        return f"n{victim} (follower) SIGSTOP"
    raise ValueError(kind)


def parse_kinds(spec: str) -> list[str]:
    """--faults: "all" or a comma-separated list of FAULT_KINDS (order kept: --cycle uses it)."""
    kinds = list(FAULT_KINDS) if spec == "all" else [k.strip() for k in spec.split(",") if k.strip()]
    for k in kinds:
        if k not in FAULT_KINDS:
            raise ValueError(f"unknown fault {k}; known: {', '.join(FAULT_KINDS)}")
    if not kinds:
        raise ValueError("no fault kind given")
    return kinds


def lock_summary(records: list[dict], expiries: dict) -> dict:
    attempts = [r for r in records if r["type"] == "lock"]
    writes: dict[str, int] = {}
    for r in attempts:
        for w in r["writes"]:
            writes[w["outcome"]] = writes.get(w["outcome"], 0) + 1
    states: dict[str, int] = {}
    for r in records:
        if r["type"] == "state" and r["role"] == "lock":
            states[r["state"]] = states.get(r["state"], 0) + 1
    states_recs = [r for r in records if r["type"] == "state"]
    sessions = {r["session"] for r in attempts if r.get("session")}
    sessions |= {r["session"] for r in states_recs if r["role"] == "lock" and r.get("session")}
    return {"attempts": len(attempts), "acquisitions": sum(1 for r in attempts if r["outcome"] == "ok"),
            "guarded_writes": writes, "state_changes": states, "sessions": len(sessions),
            "sessions_ended_by_servers": len(checks.session_ends(attempts, states_recs, expiries))}


def watch_summary(records: list[dict]) -> dict:
    recs = [r for r in records if r["type"] == "watch"]
    return {"events": sum(1 for r in recs if r["what"] == "event"),
            "reads": sum(1 for r in recs if r["what"] == "read"),
            "connections": sum(1 for r in recs if r["what"] == "connected")}


def run(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "servers", ignore_errors=True)  # a fresh ensemble every run
    logf = open(out / "run.log", "w")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    rng = random.Random(args.seed)
    kinds = parse_kinds(args.faults)
    schedule = make_schedule(rng, kinds, args.duration, args.cycle)
    log(f"seed {args.seed}; replay: python3 tests/chaos/chaos.py --seed {args.seed} "
        f"--duration {args.duration} --faults {','.join(kinds)}{' --cycle' if args.cycle else ''} "
        f"--servers {args.servers} --clients {args.clients} --keys {args.keys} --op-timeout {args.op_timeout} "
        f"--lock-clients {args.lock_clients} --watchers {args.watchers} "
        f"--system {args.system}"
        + "".join(f" --set {kv}" for kv in args.set))
    for f in schedule:
        log(f"schedule: {json.dumps(f)}")

    checker = checks.checker_binary()
    log(f"checker {checker}")
    clock = Clock()
    history = History(clock)
    # The clock's wall-clock origin, so the servers' log stamps can be placed on it again later.
    history.add({"type": "clock", "wall0": clock.wall0})
    keys = [f"/r{i}" for i in range(args.keys)]
    for k in keys:
        history.add({"type": "init", "key": k, "value": INITIAL})
    extra = dict(kv.split("=", 1) for kv in args.set)
    cluster = Cluster(args.servers, out / "servers", Path(args.binary), args.system, log, extra)
    clients: list[Client] = []
    lockers: list[LockClient] = []
    watchers: list[Watcher] = []
    stop = threading.Event()
    stop_watchers = threading.Event()  # watchers go on through the final phase
    faults: list[dict] = []
    workload_end = 0
    report: dict = {"seed": args.seed, "schedule": schedule, "anomalies": []}
    try:
        net.setup(args.servers)
        for s in cluster.servers.values():
            s.start()
        log(f"leader n{cluster.wait_stable(60)}")
        for i in range(args.clients):
            first = 1 + i % args.servers
            c = Client(i, cluster.hosts_for(first), keys, history, rng.randrange(1 << 30),
                       SESSION_TIMEOUT_S, args.op_timeout, stop)
            c.start_session(30)
            clients.append(c)
        setup = clients[0].zk
        for k in keys:
            setup.create(k, INITIAL.encode())
        setup.create("/seq")
        for lock in LOCKS:
            setup.create(lock, makepath=True)
            setup.create(owner_path(lock))
        for i in range(args.lock_clients):
            lc = LockClient(i, cluster.hosts_for(1 + i % args.servers), history, rng.randrange(1 << 30),
                            SESSION_TIMEOUT_S, args.op_timeout, stop)
            lc.start_session(30)
            lockers.append(lc)
        for i in range(args.watchers):
            w = Watcher(i, cluster.hosts_for(1 + (i + 1) % args.servers), keys, history,
                        SESSION_TIMEOUT_S, args.op_timeout, stop_watchers)
            w.start_session(30)
            watchers.append(w)
        for c in clients + lockers + watchers:
            c.start()

        for f in schedule:
            rec = history.event("fault", kind=f["kind"])
            rec["target"] = inject(cluster, f)
            rec["start"] = rec["t"]
            log(f"fault {f['kind']}: {rec['target']} for {f['hold_s']}s")
            time.sleep(f["hold_s"])
            cluster.heal_all()
            rec["end"] = clock.now_us()
            faults.append(rec)
            log(f"healed; quiet {f['quiet_s']}s")
            time.sleep(f["quiet_s"])
            try:
                cluster.wait_stable(30)
            except RuntimeError as e:
                log(f"not stable after heal: {e}")
        # Let the workload run to the end of the duration.
        left = args.duration - clock.now_us() / 1e6
        if left > 0:
            time.sleep(left)
        stop.set()
        workload_end = clock.now_us()
        for c in clients:
            c.join(timeout=args.op_timeout + 5)
            if c.is_alive():
                report["anomalies"].append(f"client {c.cid} did not stop within {args.op_timeout + 5}s")
        for lc in lockers:
            lc.join(timeout=3 * args.op_timeout + 5)
            if lc.is_alive():
                report["anomalies"].append(f"lock client {lc.cid} did not stop within {3 * args.op_timeout + 5}s")

        # Final phase: healed ensemble, every client syncs and reads every register.
        cluster.heal_all()
        log(f"final: leader n{cluster.wait_stable(60)}")
        for c in clients:
            c.phase = "final"
            deadline = time.monotonic() + 30
            while not c.zk.connected and time.monotonic() < deadline:
                time.sleep(0.1)
            c.sync(keys[0])
            for k in keys:
                c.read(k)
        # Watchers: until their events (or a fresh connection's reads) reach the final versions.
        final_versions = {}
        for op in history.ops():
            if op.get("phase") == "final" and op["f"] == "read" and op["outcome"] == "ok":
                final_versions[op["key"]] = max(final_versions.get(op["key"], -1), op["version"])
        for w in watchers:
            w.wait_final(final_versions, 20)
        stop_watchers.set()
        for w in watchers:
            w.join(timeout=args.op_timeout + 5)
        try:
            children = clients[0].zk.get_children("/seq")
        except Exception as e:
            log(f"listing /seq failed: {e}")
            children = None
    finally:
        stop.set()
        stop_watchers.set()
        for c in clients + lockers + watchers:
            c.close()
        cluster.stop()
        net.cleanup()
        history.write(out / "history.jsonl")

    ops = history.ops()
    counts: dict[str, int] = {}
    for op in ops:
        counts[f"{op['f']}:{op['outcome']}"] = counts.get(f"{op['f']}:{op['outcome']}", 0) + 1
    report["ops"] = counts
    report["faults"] = {k: sum(1 for f in faults if f["kind"] == k) for k in kinds}
    lin_anoms, summary = checks.check_linearizable(checker, out / "history.jsonl",
                                                   timeout=max(600.0, args.duration))
    report["linearizability"] = summary
    report["anomalies"] += lin_anoms
    report["anomalies"] += checks.check_lost_writes(ops)
    report["anomalies"] += checks.check_sequential(ops, children)
    report["anomalies"] += checks.check_expired_sessions(ops)
    # Locks and watches (recipes.py).
    recipe_recs = history.of_types("lock", "state", "watch")
    logs = sorted((out / "servers").glob("n*/warren.out")) + sorted((out / "servers").glob("n*/zookeeper.log"))
    expiries = checks.parse_expiries(logs, clock.wall_to_us)
    report["locks"] = lock_summary(recipe_recs, expiries)
    report["watches"] = watch_summary(recipe_recs)
    if lockers:
        report["anomalies"] += checks.check_locks(recipe_recs, expiries, clock.now_us())
    if watchers:
        report["anomalies"] += checks.check_watches(recipe_recs, ops)
    report["availability"] = checks.availability(ops, faults, workload_end or clock.now_us())
    report["availability_by_kind"] = checks.availability_by_kind(report["availability"])
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"ops {json.dumps(counts)}")
    log(f"faults {json.dumps(report['faults'])}")
    log(f"linearizability checker: {json.dumps(summary)}")
    log(f"locks {json.dumps(report['locks'])}")
    log(f"watches {json.dumps(report['watches'])}")
    for a in report["availability"]:
        log(f"availability {json.dumps(a)}")
    for kind, a in report["availability_by_kind"].items():
        log(f"availability {kind}: {json.dumps(a)}")
    if report["anomalies"]:
        for a in report["anomalies"]:
            log(f"ANOMALY {a}")
        log(f"FAILED seed {args.seed}: {len(report['anomalies'])} anomalies (history {out / 'history.jsonl'})")
        return 1
    log(f"PASSED seed {args.seed}: no anomaly")
    if not args.keep:
        shutil.rmtree(out / "servers", ignore_errors=True)  # data dirs; the history stays
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of workload")
    p.add_argument("--faults", default="all", help=f"comma-separated, from: {', '.join(FAULT_KINDS)}")
    p.add_argument("--cycle", action="store_true", help="each fault kind once, in the order given (the run lasts at least until the last one healed)")
    p.add_argument("--system", choices=("warren", "zookeeper"), default="warren",
                   help="zookeeper: Debian's ZooKeeper 3.8 (ci/install-deps.sh), same namespaces and faults")
    p.add_argument("--servers", type=int, default=3)
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--keys", type=int, default=3)
    p.add_argument("--op-timeout", type=float, default=3.0)
    p.add_argument("--lock-clients", type=int, default=3,
                   help="clients contending for the locks of recipes.py (0: no lock workload)")
    p.add_argument("--watchers", type=int, default=2,
                   help="clients with a persistent watch on every register (0: no watch workload)")
    p.add_argument("--binary", default=os.environ.get("WARREN_BIN", str(checks.REPO / "target/release/warren")))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a zoo.cfg key for every server (repeatable), e.g. --set warren.peerTimeoutMs=0")
    p.add_argument("--keep", action="store_true", help="keep the servers' data and logs after a passing run")
    p.add_argument("--out", default=None, help="run directory (default /tmp/wchaos-<seed>)")
    p.add_argument("--net", type=int, default=0, metavar="ID",
                   help="private network 0-99 (10.77.ID.0/24, wchaos[ID]-*): runs with different ids go on side by side")
    args = p.parse_args()
    try:
        kinds = parse_kinds(args.faults)
    except ValueError as e:
        p.error(str(e))
    net.use_network(args.net)
    # The servers run inside the namespaces from their own directories: a relative path
    # would not resolve there.
    args.binary = os.path.abspath(args.binary)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    for kv in args.set:
        if "=" not in kv or not kv.split("=", 1)[0].strip():
            p.error(f"--set {kv!r}: expected KEY=VALUE")
    if args.out is None:
        args.out = f"/tmp/wchaos-{args.seed}"
    if os.geteuid() != 0:
        print("chaos: SKIPPED: needs root (network namespaces, a bridge)")
        return 2
    why = net.available()
    if why:
        print(f"chaos: SKIPPED: network namespaces unavailable: {why}")
        return 2
    why = net.loss_available() if set(kinds) & set(LOSS_KINDS) else None
    if why:
        print(f"chaos: SKIPPED: packet loss faults ({', '.join(k for k in kinds if k in LOSS_KINDS)}) "
              f"cannot be made here: {why}")
        return 2
    if args.system == "warren" and not Path(args.binary).exists():
        print(f"chaos: no warren binary at {args.binary} (cargo build --release, or --binary)")
        return 2
    try:
        return run(args)
    except RuntimeError as e:
        print(f"chaos: run failed: {e}")
        return 3


if __name__ == "__main__":
    sys.exit(main())
