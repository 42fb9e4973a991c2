#!/usr/bin/env bash
# Leader-kill recovery on 3 servers, Warren and Apache ZooKeeper 3.8 side by side in one run:
# from the leader's SIGKILL to the first successful write by a client connected to a surviving
# follower, and to a survivor reporting `Mode: leader` (tests/python/recovery_latency.py; both
# with tickTime=2000, ZooKeeper's default). The systems alternate trial blocks so that drift in
# machine load hits both. Writes results/recovery/{warren,zookeeper}-N.json and prints the
# summaries.
#
#   bash ci/bench-recovery.sh          # 2 rounds x 4 trials per system (8 trials each)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
cargo build --release -q -p warren
export WARREN_BIN="$PWD/target/release/warren"
ROUNDS="${ROUNDS:-2}"
TRIALS="${TRIALS:-4}"
out=results/recovery
mkdir -p "$out"
for round in $(seq 1 "$ROUNDS"); do
    for system in warren zookeeper; do
        echo "== round $round: $system"
        python3 tests/python/recovery_latency.py --system "$system" --trials "$TRIALS" --json "$out/$system-$round.json"
    done
done
python3 - "$out" <<'PY'
import json, glob, statistics, sys
out = sys.argv[1]
rows = {}
for system in ("warren", "zookeeper"):
    w, l = [], []
    for f in sorted(glob.glob(f"{out}/{system}-*.json")):
        for t in json.load(open(f))["trials"]:
            w.append(t["write_recovery_s"] * 1000)
            l.append(t["leader_elected_s"] * 1000)
    rows[system] = (w, l)
    print(f"{system}: {len(w)} trials; write again median {statistics.median(w):.0f} ms max {max(w):.0f} ms; "
          f"leader median {statistics.median(l):.0f} ms max {max(l):.0f} ms")
(ww, wl), (zw, zl) = rows["warren"], rows["zookeeper"]
print(f"ZooKeeper / Warren, median write recovery: {statistics.median(zw) / statistics.median(ww):.1f}x")
PY
