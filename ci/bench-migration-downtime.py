#!/usr/bin/env python3
"""Moves a running 3-server ZooKeeper 3.8 ensemble to a 3-server Warren ensemble by the
procedure of docs/migration.md ("Moving a running ZooKeeper ensemble to Warren"), or with
`--direction back` a running Warren ensemble to ZooKeeper ("Moving a Warren ensemble back to
ZooKeeper"), and measures the downtime a writing client sees.

    python3 ci/bench-migration-downtime.py [--direction forward|back] [--znodes 5000] [--trials 3] [--json FILE]

Each trial: the old ensemble (ZooKeeper 3.8 from the Debian packages, or Warren) with
`--znodes` znodes and a writer client that creates /writes/<n> one after another (kazoo, all
three client ports in its connect string, retrying at once on failure). Then the procedure:
stop every old server; `warren import-zk` (forward) or `warren export-zk` (back) each member's
dataDir in parallel and keep the result with the highest last zxid; put it into that member's
new dataDir (the others empty) with its myid; start the new ensemble on the same client ports.
Downtime = last acknowledged write on the old ensemble -> first acknowledged write on the new
one, as the writer timed them. Afterwards every acknowledged write must be on the new ensemble
(none lost) and the bulk znodes intact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.retry import KazooRetry  # noqa: E402

from ensemble import Ensemble  # noqa: E402
from servers import warren_bin  # noqa: E402


class Writer(threading.Thread):
    """Creates /writes/0, /writes/1, ... and records when each was acknowledged."""

    def __init__(self, hosts: str):
        super().__init__(daemon=True)
        retry = dict(max_tries=-1, delay=0.02, backoff=1.2, max_delay=0.1)
        self.zk = KazooClient(hosts=hosts, timeout=10, connection_retry=KazooRetry(**retry))
        self.zk.start(timeout=30)
        self.acked: list[tuple[int, float]] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                self.zk.create(f"/writes/{n}", b"w")
                self.acked.append((n, time.monotonic()))
            except Exception:  # noqa: BLE001 - outcome unknown: the next write takes a new name
                self.failed += 1
                time.sleep(0.005)
            n += 1

    def finish(self):
        self.stop.set()
        self.join(timeout=30)
        self.zk.stop()
        self.zk.close()


def convert(command: str, src: Path, dst: Path) -> int:
    """`warren import-zk|export-zk SRC DST`; returns the last zxid of what it wrote (both
    write exactly one snapshot, named after it)."""
    r = subprocess.run([str(warren_bin()), command, str(src), str(dst)], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{command} {src}: {r.stderr}")
    snaps = list((dst / "version-2").glob("snapshot.*"))
    return max(int(p.name.split(".")[1], 16) for p in snaps)


# direction -> (system moved from, system moved to, the command, the words in the results)
DIRECTIONS = {
    "forward": ("zookeeper", "warren", "import-zk",
                dict(old="zookeeper", new="warren", conv="import", by="imported")),
    "back": ("warren", "zookeeper", "export-zk",
             dict(old="warren", new="zookeeper", conv="export", by="exported")),
}
NAMES = {"zookeeper": "ZooKeeper", "warren": "Warren"}


def trial(base: Path, znodes: int, direction: str) -> dict:
    old_sys, new_sys, command, w = DIRECTIONS[direction]
    old = Ensemble(old_sys, base / old_sys, participants=3, name="mig")
    new = Ensemble(new_sys, base / new_sys, participants=3, name="mig")
    writer = None
    try:
        old.start()
        hosts = old.hosts()
        for sid in new.sids:  # the same client ports
            new[sid].port = old[sid].port
            new[sid]._write_cfg()
        c = KazooClient(hosts=hosts, timeout=10)
        c.start(timeout=30)
        c.ensure_path("/writes")
        c.ensure_path("/bulk")
        for lo in range(0, znodes, 1000):
            for r in [c.create_async(f"/bulk/{i}", b"x" * 64) for i in range(lo, min(znodes, lo + 1000))]:
                r.get(timeout=60)
        c.stop()
        c.close()
        writer = Writer(hosts)
        writer.start()
        time.sleep(3.0)

        # The procedure.
        t_stop = time.monotonic()
        for sid in old.sids:
            old.stop(sid)
        t_stopped = time.monotonic()
        converted = base / "converted"
        converted.mkdir()
        with ThreadPoolExecutor(3) as pool:
            got = dict(zip(old.sids, pool.map(
                lambda s: convert(command, old[s].data_dir, converted / f"{old_sys}{s}"), old.sids)))
        best = max(old.sids, key=lambda s: got[s])
        t_converted = time.monotonic()
        seed = new[best].data_dir
        shutil.rmtree(seed)
        shutil.move(str(converted / f"{old_sys}{best}"), str(seed))
        new[best].write_myid()
        # The seeded member and one empty one first, the third once the seed leads
        # (docs/migration.md, step 5): started all at once the two empty members can elect
        # one of themselves and truncate the seed.
        leader = new.start(first=best)
        t_serving = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [a for a in writer.acked if a[1] > t_stopped]:
            time.sleep(0.01)
        time.sleep(2.0)
        writer.finish()
        # The old ensemble serves until its quorum is stopped; the new one starts after every
        # old server has exited.
        before = [a for a in writer.acked if a[1] < t_stopped]
        after = [a for a in writer.acked if a[1] > t_stopped]
        if not before or not after:
            raise RuntimeError(f"no write on one side: {len(before)} on {NAMES[old_sys]}, "
                               f"{len(after)} on {NAMES[new_sys]}")

        c = KazooClient(hosts=new.hosts(), timeout=10)
        c.start(timeout=30)
        c.sync("/writes")
        present = set(int(x) for x in c.get_children("/writes"))
        lost = sorted(n for n, _ in writer.acked if n not in present)
        bulk = c.get("/bulk")[1].numChildren
        c.stop()
        c.close()
        if lost or bulk != znodes:
            raise RuntimeError(f"lost acknowledged writes {lost[:10]} ({len(lost)}), bulk {bulk}/{znodes}")
        out = {"direction": direction} if direction != "forward" else {}
        out.update({
            "znodes": znodes,
            "downtime_ms": round((after[0][1] - before[-1][1]) * 1000),
            "stop_ms": round((t_stopped - t_stop) * 1000),
            f"{w['conv']}_ms": round((t_converted - t_stopped) * 1000),
            "start_ms": round((t_serving - t_converted) * 1000),
            f"{w['by']}_from": best,
            f"{w['by']}_zxids": {s: hex(z) for s, z in got.items()},
            f"{w['new']}_leader": leader,
            f"acked_on_{w['old']}": len(before),
            f"acked_on_{w['new']}": len(after),
            "failed_attempts": writer.failed,
            "lost": len(lost),
        })
        return out
    finally:
        if writer is not None and writer.is_alive():
            writer.finish()
        old.close()
        new.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=5000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--direction", choices=sorted(DIRECTIONS), default="forward",
                    help="forward: ZooKeeper to Warren (import-zk); back: Warren to ZooKeeper (export-zk)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench-migration")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    results = []
    try:
        for i in range(args.trials):
            r = trial(args.work / f"t{i}", args.znodes, args.direction)
            print(json.dumps(r), flush=True)
            results.append(r)
            shutil.rmtree(args.work / f"t{i}", ignore_errors=True)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    d = [r["downtime_ms"] for r in results]
    old, new = (NAMES[x] for x in DIRECTIONS[args.direction][:2])
    print(f"downtime (last ack on {old} -> first ack on {new}): median {statistics.median(d)} ms, "
          f"min {min(d)}, max {max(d)} over {len(d)} trials; acknowledged writes lost: "
          f"{sum(r['lost'] for r in results)}")
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
