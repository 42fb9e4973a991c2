#!/usr/bin/env bash
# `warren import-zk` and `warren export-zk` on real ZooKeeper data: for each size N, a real
# ZooKeeper 3.8 (ci/install-deps.sh) is loaded with N znodes of 16 bytes by a pipelined kazoo
# client (1,000 parents of N/1,000 children each), stopped with SIGTERM, and its dataDir
# (snapshots + logs, as ZooKeeper wrote them) is imported; the Warren data is exported back,
# and a ZooKeeper is started on the export. Wall time and peak RSS (/usr/bin/time -v) of both
# commands, and ZooKeeper's start-up time (process start to `srvr` answering) on the export
# and on its own original data.
# Usage: bash ci/bench-migration.sh [N...]    (default: 100000 1000000)
# Scratch data lives under ${BENCH_DIR:-/tmp} and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
cargo build --release -q -p warren
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}" bench-migration.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"

for n in "${sizes[@]}"; do
  rm -rf "${work:?}"/*
  python3 - "$work" "$n" <<'PY'
import sys, time
from pathlib import Path
sys.path.insert(0, "tests/python")
from kazoo.client import KazooClient
from servers import ZooKeeperServer, stop_clients

work, n = Path(sys.argv[1]), int(sys.argv[2])
zk = ZooKeeperServer(base_dir=work / "zk", name="zookeeper(load)")
zk.heap = "3g"
zk.start()
c = KazooClient(hosts=zk.host_port, timeout=30)
c.start(timeout=30)
t0 = time.monotonic()
parents = 1000
c.create("/bench")
for p in range(parents):
    c.create(f"/bench/p{p}")
window, pending = 2000, []
for i in range(n):
    pending.append(c.create_async(f"/bench/p{i % parents}/n{i}", b"0123456789abcdef"))
    if len(pending) >= window:
        for r in pending:
            r.get(timeout=60)
        pending = []
for r in pending:
    r.get(timeout=60)
print(f"loaded {n} znodes into ZooKeeper in {time.monotonic() - t0:.0f} s")
stop_clients([c])
zk.stop()
PY
  zkdata="$work/zk/data"
  echo "N=$n: ZooKeeper dataDir $(du -sh --apparent-size "$zkdata/version-2" | cut -f1) apparent," \
       "$(ls "$zkdata/version-2" | grep -c snapshot) snapshots, $(ls "$zkdata/version-2" | grep -c '^log') logs"
  for step in import export; do
    if [ $step = import ]; then args=(import-zk "$zkdata" "$work/warren"); else args=(export-zk "$work/warren" "$work/exported"); fi
    /usr/bin/time -v ./target/release/warren "${args[@]}" > "$work/$step.out" 2> "$work/$step.time"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$step.time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$step.time")
    echo "N=$n: $step-zk wall $wall, peak RSS $((rss / 1024)) MiB; $(grep -E '^(imported|wrote .*/snapshot)' "$work/$step.out" | cut -c1-200)"
  done
  python3 - "$work" "$n" <<'PY'
import shutil, sys, time
from pathlib import Path
sys.path.insert(0, "tests/python")
from servers import ZooKeeperServer

work, n = Path(sys.argv[1]), int(sys.argv[2])
for what, data in (("exported", work / "exported"), ("original", work / "zk" / "data")):
    zk = ZooKeeperServer(base_dir=work / f"zk-{what}", name=f"zookeeper({what})")
    zk.heap = "3g"
    if what == "exported":
        shutil.rmtree(zk.data_dir)
        shutil.copytree(data, zk.data_dir)
    else:
        zk.data_dir.rmdir()
        zk.data_dir = data
        zk._write_cfg()
    t0 = time.monotonic()
    zk.start()
    ms = (time.monotonic() - t0) * 1000
    nodes = [l for l in zk.four_letter("mntr").splitlines() if l.startswith("zk_znode_count")]
    log = zk.log_path.read_text(errors="replace")
    assert "not matching" not in log.lower(), "ZooKeeper reported a digest mismatch"
    print(f"N={n}: ZooKeeper start-up on the {what} data: {ms:.0f} ms to serving ({nodes[0] if nodes else '?'})")
    zk.stop()
    shutil.rmtree(work / f"zk-{what}")
PY
done
