#!/usr/bin/env bash
# Planted bugs the chaos harness must catch (tests/chaos/README.md, "Planted bugs"): builds
# `warren` with the `planted-bugs` feature into target/planted (a copy of target/release made
# once, so target/release/warren, the binary every other test uses, is not touched), then
# tests/chaos/test_planted.py runs each planted bug under the fixed schedule that exposes it
# and asserts the harness reports it, and the same schedule without the bug passes. Four
# chaos runs of about 32 s each (about 2 minutes once ci/chaos.sh has built the checker), plus
# the build: 57 s from a fresh copy of target/release (the copy 3.5 s; warren, glommio and two
# crossbeam crates recompile), measured 2026-12-07 on 2 busy cores. Skipped, with the reason, when not root or when network namespaces cannot
# be made here.
#   bash ci/planted.sh
#   CHAOS_NET=2 bash ci/planted.sh     # chaos.py --net 2 (runs side by side with others)
set -euo pipefail
cd "$(dirname "$0")/.."

target="$PWD/target/planted"
if [ ! -d "$target/release" ] && [ -d target/release ]; then
    mkdir -p "$target" && cp -a target/release "$target/release"
fi
# The simulator's planted bug in library code (engine/tests/simulation.rs,
# planted_replay_past_corrupt: the log reader trusting a record whose checksum fails). It
# needs no root; nextest runs it in a process of its own (the bug is selected per process).
started=$SECONDS
CARGO_TARGET_DIR="$target" timeout 1200 cargo nextest run --release --workspace --features warren/planted-bugs --test simulation \
    -E 'binary(simulation) & test(planted_replay_past_corrupt)' --no-capture 2>&1 | grep -E '^(seed|total)|PASS|FAIL|panicked' | cut -c1-300
test "${PIPESTATUS[0]}" = 0
echo "planted: simulator test in $((SECONDS - started))s"

if [ "$(id -u)" != 0 ]; then
    echo "planted: SKIPPED: needs root (network namespaces and a bridge)"
    exit 0
fi
if ! ip netns list >/dev/null 2>&1; then
    echo "planted: SKIPPED: 'ip netns' does not work here"
    exit 0
fi
started=$SECONDS
# --workspace: dependencies get the same features as in the workspace build, so only warren
# and the few crates whose features differ with dev-dependencies left out recompile.
CARGO_TARGET_DIR="$target" cargo build --release --workspace --bin warren --features warren/planted-bugs
echo "planted: binary built in $((SECONDS - started))s"
export WARREN_PLANTED_BIN="$target/release/warren"
timeout -s INT -k 60 900 python3 -u -m pytest tests/chaos/test_planted.py -q -p no:cacheprovider -rs --durations=4
