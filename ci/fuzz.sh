#!/usr/bin/env bash
# Runs the cargo-fuzz targets of engine/fuzz (nightly + cargo-fuzz; ci/install-deps.sh
# installs cargo-fuzz when missing). Each target starts from its committed seeds
# (engine/fuzz/seeds/<target>/) and its corpus (engine/fuzz/corpus/<target>/, not committed).
# Usage: bash ci/fuzz.sh time SECONDS [TARGET...]   (CI: a short fixed-time run)
#        bash ci/fuzz.sh runs N [TARGET...]         (the long runs of results/fuzz/)
# Fails when a target finds a crash; the reproducer is in engine/fuzz/artifacts/<target>/.
# FUZZ_PROFILE=dev builds without optimisation and with debug assertions and overflow checks:
# it compiles in about a third of the time of the optimised build (2.5 vs 6.5 minutes from
# scratch on a 2-core CI machine) and executes about a tenth as many inputs per second, the
# right trade for CI's few seconds per target; the long runs use the default, optimised build.
set -euo pipefail
cd "$(dirname "$0")/../engine"
mode=${1:?time|runs}; amount=${2:?}; shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_request machine_session log_scan snapshot_decode config_parse http_request peer_message jaas_parse zk_snapshot zk_txnlog)
case "$mode" in
  time) limit=(-max_total_time="$amount") ;;
  runs) limit=(-runs="$amount") ;;
  *) echo "mode must be time or runs" >&2; exit 2 ;;
esac
case "${FUZZ_PROFILE:-release}" in
  release) profile=(-O) ;;
  dev) profile=(--dev) ;;
  *) echo "FUZZ_PROFILE must be release or dev" >&2; exit 2 ;;
esac
# FUZZ_SANITIZER=none builds without AddressSanitizer (cargo-fuzz's default is address): for
# long runs of safe Rust, where what is sought is a panic, a hang or running out of memory,
# it runs several times as many inputs per second (machine_session: about 9k/s vs 1.6k/s).
case "${FUZZ_SANITIZER:-address}" in
  address) ;;
  none) profile+=(-s none) ;;
  *) echo "FUZZ_SANITIZER must be address or none" >&2; exit 2 ;;
esac
cargo +nightly fuzz build "${profile[@]}" 2>&1 | tail -1
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
  start=$(date +%s)
  out=$(cargo +nightly fuzz run "${profile[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- "${limit[@]}" -print_final_stats=1 2>&1) || {
    echo "$out" | tail -40; echo "FUZZ FAILURE in $t"; exit 1; }
  runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
  echo "$t: ${runs:-?} executions in $(( $(date +%s) - start )) s, no crash"
done
