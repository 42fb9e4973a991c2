#!/usr/bin/env bash
# Write latency with fuzzy snapshots running vs without, on a tree of N znodes.
# Usage: bash ci/bench-snapshot-impact.sh [N=1000000] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
secs=${2:-10}
cargo build --release -q -p warren -p loadgen -p warren-bench
base=$(mktemp -d)
trap 'pkill -f "$base/" 2>/dev/null || true; rm -rf "$base"' EXIT
./target/release/mkdata "$base/seed" "$n" >/dev/null
for mode in with-snapshots without-snapshots; do
  rm -rf "$base/$mode"; cp -r "$base/seed" "$base/$mode"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$mode" = with-snapshots ]; then snap="snapCount=100000"; else snap=$'snapCount=1000000000\nsnapSizeLimitInKb=0'; fi
  printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n%s\n' "$base/$mode" "$port" "$snap" > "$base/$mode.cfg"
  ./target/release/warren start-foreground "$base/$mode.cfg" 2> "$base/$mode.log" &
  for _ in $(seq 100); do (printf ruok | nc -N 127.0.0.1 "$port" 2>/dev/null | grep -q imok) && break; sleep 0.1; done
  echo "== $mode ($n znodes)"
  ./target/release/loadgen run --connect "127.0.0.1:$port" --read-ratio 0 --duration "$secs" --warmup 2 | grep -E "writes"
  echo "snapshots taken: $(grep -c 'Snapshot .* taken' "$base/$mode.log" || true)"
  grep 'Snapshot .* taken' "$base/$mode.log" | tail -1 | sed 's/.*INFO //' || true
  kill %1 2>/dev/null || pkill -f "$base/$mode.cfg"; wait 2>/dev/null || true
done
