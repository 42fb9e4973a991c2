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
#      checked for linearizability; skipped when not root), then the planted bugs the chaos
#      harness must catch (ci/planted.sh: a `warren` built with the planted-bugs feature).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's heading says how long the run has taken so far, so a slow CI log shows where
# its time went.
started=$SECONDS
phase() { printf '== [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$1"; }

phase "installing test dependencies (skipped when present)"
bash ci/install-deps.sh

phase "formatting (cargo fmt --check)"
cargo fmt --all -- --check

phase "building (release)"
cargo build --release --workspace --all-targets
# The Debian package too (tests/python/test_packaging.py installs it): its build of the
# workspace without --all-targets may recompile crates, which belongs here, not in a test.
bash ci/build-deb.sh

phase "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --release --no-fail-fast
else
    cargo test --workspace --release --no-fail-fast
fi

phase "fuzzing, a short fixed-time run per target (long runs: results/fuzz/)"
FUZZ_PROFILE=${FUZZ_PROFILE:-dev} bash ci/fuzz.sh time "${FUZZ_SECONDS:-10}"

phase "performance regression check (core benchmarks vs the previous commit)"
bash ci/bench-check.sh

phase "black-box tests (kazoo, zkCli, differential against ZooKeeper 3.8)"
export WARREN_BIN="$PWD/target/release/warren"
# Unbuffered, so a CI log cut short still shows how far the run got; a whole-suite deadline
# (SIGINT: pytest stops and still prints its summary of failures) so that a test that hangs
# past its own timeout ends the run with a report instead of using up CI's time (CI stops
# the whole run at 60 minutes; this suite takes about 12 and the chaos phase about 9). Each
# test also has its own watchdog (tests/python/conftest.py).
timeout -s INT -k 60 "${PYTEST_DEADLINE:-1500}" \
    python3 -u -m pytest tests/python -q -p no:cacheprovider --durations=15

phase "chaos: a 3-server ensemble in network namespaces, each fault kind once (tests/chaos)"
timeout -s INT -k 60 "${CHAOS_PYTEST_DEADLINE:-900}" python3 -u -m pytest tests/chaos -q -p no:cacheprovider \
    --ignore=tests/chaos/test_planted.py
bash ci/chaos.sh
phase "chaos: planted bugs the harness must catch (ci/planted.sh)"
bash ci/planted.sh
phase "done"
