#!/usr/bin/env bash
# Standalone Warren vs ZooKeeper 3.8 vs the loopback ceiling; writes results/standalone/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
cargo build --release -p warren -p loadgen
python3 ci/bench_standalone.py "$@"
