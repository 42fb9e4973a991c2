#!/usr/bin/env bash
# How the number of sessions changes throughput on this machine (3-server ensembles, read
# ratio 0.9, 100 outstanding each): the measurement behind loadgen's --clients default.
# Writes results/clients/<system>-<clients>.json; results/clients/README.md has the table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p warren -p loadgen
mkdir -p results/clients
for c in 8 64 250; do
  for s in warren zookeeper echo; do
    n=3; [ "$s" = echo ] && n=1
    ./target/release/loadgen --system "$s" --nodes "$n" --clients "$c" --read-ratio 0.9 \
      --duration 3 --warmup 1 --quiet --record "results/clients/$s-$c.json" |
      grep -E "^total|errors" | sed "s/^/$s $c: /"
  done
done
