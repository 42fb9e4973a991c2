#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run) and as a developer runs it on a fresh machine:
#   1. installs what the black-box tests need (Debian's zookeeper packages for the real
#      server, Java zkCli and C client; kazoo and pytest from PyPI) when missing;
#   2. builds everything in release mode once;
#   3. runs the Rust unit, property and integration tests (cargo nextest, or cargo test);
#   4. runs each fuzz target for a few seconds (ci/fuzz.sh);
#   5. checks the core criterion benchmarks against the previous commit (ci/bench-check.sh);
#   6. runs the black-box suite in tests/python against the release `warren` binary, side by
#      side with a real ZooKeeper 3.8 where a test compares the two;
#   7. a short chaos run (ci/chaos.sh: network namespaces, each fault kind once, histories
#      checked for linearizability; skipped when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test dependencies (skipped when present)"
bash ci/install-deps.sh

echo "== formatting (cargo fmt --check)"
cargo fmt --all -- --check

echo "== building (release)"
cargo build --release --workspace --all-targets
# The Debian package too (tests/python/test_packaging.py installs it): its build of the
# workspace without --all-targets may recompile crates, which belongs here, not in a test.
bash ci/build-deb.sh

echo "== Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --release --no-fail-fast
else
    cargo test --workspace --release --no-fail-fast
fi

echo "== fuzzing, a short fixed-time run per target (long runs: results/fuzz/)"
bash ci/fuzz.sh time "${FUZZ_SECONDS:-10}"

echo "== performance regression check (core benchmarks vs the previous commit)"
bash ci/bench-check.sh

echo "== black-box tests (kazoo, zkCli, differential against ZooKeeper 3.8)"
export WARREN_BIN="$PWD/target/release/warren"
python3 -m pytest tests/python -q -p no:cacheprovider

echo "== chaos: a 3-server ensemble in network namespaces, each fault kind once (tests/chaos)"
python3 -m pytest tests/chaos -q -p no:cacheprovider
bash ci/chaos.sh
