#!/usr/bin/env bash
# TLS against plaintext on one standalone Warren, interleaved; writes results/tls/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
cargo build --release -p warren -p loadgen
python3 ci/bench_tls.py "$@"
