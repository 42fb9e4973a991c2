#!/usr/bin/env bash
# Online backup (/commands/snapshot through `warren backup`): how fast it streams, and what it
# costs the clients of the server being backed up. For each tree size, interleaved rounds of
# the same loadgen workload without and with back-to-back backups running; reports the
# workload's throughput and p99 each time and every backup's size and time.
# Usage: bash ci/bench-backup.sh [NODES="100000 1000000"] [SECONDS=10] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"100000 1000000"}
secs=${2:-10}
rounds=${3:-2}
cargo build --release -q -p warren -p loadgen -p warren-bench
base=$(mktemp -d)
trap 'pkill -f "$base/" 2>/dev/null || true; rm -rf "$base"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for n in $sizes; do
  ./target/release/mkdata "$base/seed-$n" "$n" >/dev/null
  for round in $(seq "$rounds"); do
    for mode in without-backups with-backups; do
      dir="$base/$n-$round-$mode"; rm -rf "$dir"; cp -r "$base/seed-$n" "$dir"
      port=$(free_port); admin=$(free_port)
      printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.serverPort=%s\nadmin.snapshot.enabled=true\nadmin.rateLimiterIntervalInMS=0\n' \
        "$dir" "$port" "$admin" > "$dir.cfg"
      ./target/release/warren start-foreground "$dir.cfg" 2> "$dir.log" &
      pid=$!
      for _ in $(seq 300); do (printf ruok | nc -N 127.0.0.1 "$port" 2>/dev/null | grep -q imok) && break; sleep 0.1; done
      ./target/release/loadgen run --connect "127.0.0.1:$port" --read-ratio 0.9 --duration "$secs" --warmup 2 \
        --no-record --quiet > "$dir.load" 2>&1 &
      load=$!
      backups=0
      if [ "$mode" = with-backups ]; then
        sleep 2  # the warmup
        end=$(( $(date +%s) + secs ))
        while [ "$(date +%s)" -lt "$end" ] && kill -0 "$load" 2>/dev/null; do
          ./target/release/warren backup --admin "http://127.0.0.1:$admin" "$dir.backup" >> "$dir.backups"
          backups=$((backups + 1))
        done
      fi
      wait "$load"
      echo "== $n znodes, round $round, $mode"
      grep -E "ops/s|^total" "$dir.load" || cat "$dir.load"
      if [ "$backups" -gt 0 ]; then
        python3 - "$dir.backups" <<'PY'
import re, sys
rows = [re.search(r"(\d+) nodes, .* (\d+) bytes, .* in (\d+) ms", l) for l in open(sys.argv[1])]
rows = [(int(a), int(b), int(c)) for a, b, c in (r.groups() for r in rows if r)]
mb = sum(b for _, b, _ in rows) / 1e6
s = sum(c for _, _, c in rows) / 1e3
print(f"backups: {len(rows)}, {rows[-1][0]} nodes, {rows[-1][1] / 1e6:.1f} MB each, "
      f"{min(c for *_, c in rows)}-{max(c for *_, c in rows)} ms each, {mb / s:.0f} MB/s")
PY
      fi
      kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
  done
done
