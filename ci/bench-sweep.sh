#!/usr/bin/env bash
# Regenerates results/sweep/ and results/README.md (Warren vs Apache ZooKeeper 3.8 at 1, 3, 5
# and 13 servers, read ratios 0, 0.5, 0.9, 1.0, the loopback (echo) ceiling, and leader-kill
# recovery, cell by cell with the two systems alternating), then results/curve/ (throughput
# against latency at 3 servers as the offered load rises). Every load cell and every curve is
# measured warm: the same load runs first, unmeasured, until 5 consecutive 1 s windows are within
# 10 % of the highest of them (at most 60 s; 5 % proved too tight on this shared machine),
# because a fresh ZooKeeper JVM is several times slower in its first seconds than once its JIT
# has compiled the request path. Leader kills keep the fixed 1 s warm-up: they measure recovery.
#
#   bash ci/bench-sweep.sh                 # the published sweep and curve (about 30 minutes on 2 cores)
#   bash ci/bench-sweep.sh --ratios 0.9    # extra flags go to `loadgen sweep` (see --help)
#
# SIZES (default 1,3,5,13) are the ensemble sizes of the sweep; WARREN_SIZES (default: SIZES)
# limits the sizes Warren runs at (cells not run show as "–"); CURVE_RATIOS (default 0.9,0.5)
# the read ratios of the curve, CURVE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
cargo build --release -q -p warren -p loadgen
SIZES="${SIZES:-1,3,5,13}"
WARREN_SIZES="${WARREN_SIZES:-$SIZES}"
STABLE=(--stable-windows 5 --stable-tolerance 0.1 --stable-max 60)
CMD=(./target/release/loadgen sweep --sizes "$SIZES" --ratios 0,0.5,0.9,1 --systems warren,zookeeper
     --warren-sizes "$WARREN_SIZES" --clients 26 --outstanding 32 --duration 3 --warmup 1
     --warmup-until-stable "${STABLE[@]}"
     --kill-trials 3 --kill-ratio 0.5 --kill-duration 4.5
     --out results/sweep --readme results/README.md "$@")
"${CMD[@]}" --cite "SIZES=$SIZES WARREN_SIZES=$WARREN_SIZES ${CMD[*]:1}"
if [ "${CURVE:-1}" != 0 ]; then
    CURVE_RATIOS="${CURVE_RATIOS:-0.9,0.5}"
    CMD=(./target/release/loadgen curve --nodes 3 --ratios "$CURVE_RATIOS" --systems warren,zookeeper
         --steps 1x1,2x4,4x8,8x8,16x16,26x32,32x64,48x64,64x128 --duration 3 --settle 1 --warm-load 26x32
         "${STABLE[@]}" --out results/curve)
    "${CMD[@]}" --cite "CURVE_RATIOS=$CURVE_RATIOS ${CMD[*]:1}"
fi
