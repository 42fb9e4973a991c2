#!/usr/bin/env bash
# Regenerates results/sweep/ and results/README.md: Warren vs Apache ZooKeeper 3.8 at 1, 3, 5
# and 13 servers, read ratios 0, 0.5, 0.9, 1.0, the loopback (echo) ceiling, and leader-kill
# recovery, all on this machine, cell by cell with the two systems alternating.
#
#   bash ci/bench-sweep.sh                 # the published sweep (about 10 minutes on 2 cores)
#   bash ci/bench-sweep.sh --sizes 1,3     # extra flags go to `loadgen sweep` (see --help)
#
# WARREN_SIZES (default 1,3,5,13) limits the sizes Warren runs at; cells not run show as "–".
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
cargo build --release -q -p warren -p loadgen
WARREN_SIZES="${WARREN_SIZES:-1,3,5,13}"
CMD=(./target/release/loadgen sweep --sizes 1,3,5,13 --ratios 0,0.5,0.9,1 --systems warren,zookeeper
     --warren-sizes "$WARREN_SIZES" --clients 26 --outstanding 32 --duration 3 --warmup 1
     --kill-trials 3 --kill-ratio 0.5 --kill-duration 4.5
     --out results/sweep --readme results/README.md "$@")
exec "${CMD[@]}" --cite "WARREN_SIZES=$WARREN_SIZES ${CMD[*]:1}"
