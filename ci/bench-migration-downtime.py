#!/usr/bin/env python3
"""Moves a running 3-server ZooKeeper 3.8 ensemble to a 3-server Warren ensemble by the
procedure of docs/migration.md ("Moving a running ZooKeeper ensemble to Warren") and measures
the downtime a writing client sees.

    python3 ci/bench-migration-downtime.py [--znodes 5000] [--trials 3] [--json FILE]

Each trial: ZooKeeper 3.8 (Debian packages) with `--znodes` znodes and a writer client that
creates /writes/<n> one after another (kazoo, all three client ports in its connect string,
retrying at once on failure). Then the procedure: stop every ZooKeeper server; `warren
import-zk` each member's dataDir (in parallel) and keep the import with the highest zxid; put
it into that member's Warren dataDir (the others empty) with its myid; start the Warren
ensemble on the same client ports. Downtime = last acknowledged write on ZooKeeper -> first
acknowledged write on Warren, as the writer timed them. Afterwards every acknowledged write
must be on Warren (none lost) and the bulk znodes intact.
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


def import_zk(src: Path, dst: Path) -> tuple[int, str]:
    r = subprocess.run([str(warren_bin()), "import-zk", str(src), str(dst)], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"import-zk {src}: {r.stderr}")
    return last_zxid(dst), r.stdout


def last_zxid(warren_data: Path) -> int:
    snaps = list((warren_data / "version-2").glob("snapshot.*"))
    return max(int(p.name.split(".")[1], 16) for p in snaps)


def trial(base: Path, znodes: int) -> dict:
    zk = Ensemble("zookeeper", base / "zk", participants=3, name="mig")
    wr = Ensemble("warren", base / "warren", participants=3, name="mig")
    writer = None
    try:
        zk.start()
        hosts = zk.hosts()
        for sid in wr.sids:  # the same client ports
            wr[sid].port = zk[sid].port
            wr[sid]._write_cfg()
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
        for sid in zk.sids:
            zk.stop(sid)
        t_stopped = time.monotonic()
        imports = base / "imports"
        imports.mkdir()
        with ThreadPoolExecutor(3) as pool:
            got = dict(zip(zk.sids, pool.map(lambda s: import_zk(zk[s].data_dir, imports / f"zk{s}"), zk.sids)))
        best = max(zk.sids, key=lambda s: got[s][0])
        t_imported = time.monotonic()
        seed = wr[best].data_dir
        shutil.rmtree(seed)
        shutil.move(str(imports / f"zk{best}"), str(seed))
        wr[best].write_myid()
        leader = wr.start()
        t_serving = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [a for a in writer.acked if a[1] > t_stopped]:
            time.sleep(0.01)
        time.sleep(2.0)
        writer.finish()
        # ZooKeeper serves until its quorum is stopped; Warren starts after every ZooKeeper
        # server has exited.
        on_zk = [a for a in writer.acked if a[1] < t_stopped]
        on_warren = [a for a in writer.acked if a[1] > t_stopped]
        if not on_zk or not on_warren:
            raise RuntimeError(f"no write on one side: {len(on_zk)} on ZooKeeper, {len(on_warren)} on Warren")
        last_zk, first_warren = on_zk[-1][1], on_warren[0][1]

        c = KazooClient(hosts=wr.hosts(), timeout=10)
        c.start(timeout=30)
        c.sync("/writes")
        present = set(int(x) for x in c.get_children("/writes"))
        lost = sorted(n for n, _ in writer.acked if n not in present)
        bulk = c.get("/bulk")[1].numChildren
        c.stop()
        c.close()
        if lost or bulk != znodes:
            raise RuntimeError(f"lost acknowledged writes {lost[:10]} ({len(lost)}), bulk {bulk}/{znodes}")
        return {
            "znodes": znodes,
            "downtime_ms": round((first_warren - last_zk) * 1000),
            "stop_ms": round((t_stopped - t_stop) * 1000),
            "import_ms": round((t_imported - t_stopped) * 1000),
            "start_ms": round((t_serving - t_imported) * 1000),
            "imported_from": best,
            "imported_zxids": {s: hex(z) for s, (z, _) in got.items()},
            "warren_leader": leader,
            "acked_on_zookeeper": len(on_zk),
            "acked_on_warren": len(on_warren),
            "failed_attempts": writer.failed,
            "lost": len(lost),
        }
    finally:
        if writer is not None and writer.is_alive():
            writer.finish()
        zk.close()
        wr.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=5000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench-migration")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    results = []
    try:
        for i in range(args.trials):
            r = trial(args.work / f"t{i}", args.znodes)
            print(json.dumps(r), flush=True)
            results.append(r)
            shutil.rmtree(args.work / f"t{i}", ignore_errors=True)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    d = [r["downtime_ms"] for r in results]
    print(f"downtime (last ack on ZooKeeper -> first ack on Warren): median {statistics.median(d)} ms, "
          f"min {min(d)}, max {max(d)} over {len(d)} trials; acknowledged writes lost: "
          f"{sum(r['lost'] for r in results)}")
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
