#!/usr/bin/env bash
# Performance regression check: the core criterion benchmarks (bench/benches/core.rs) of the
# current tree against a baseline commit (default: the previous commit), both built and run in
# this same job on this same machine, interleaved (base, current, base, current, ...:
# BENCH_ROUNDS rounds, default 3). Fails when a benchmark is slower than the baseline by the
# rule in ci/bench_compare.py, in the first rounds and again in as many rounds of just the
# flagged benchmarks.
# BENCHES (default "core") names other criterion benches of bench/benches to compare instead,
# e.g. BENCHES="log_append snapshot" bash ci/bench-check.sh <commit before a change>.
# Usage: bash ci/bench-check.sh [BASE_REV=HEAD~1]
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:-HEAD~1}
if ! git rev-parse --verify -q "$base_rev^{commit}" >/dev/null; then
  echo "bench-check: no baseline commit ($base_rev); nothing to compare"; exit 0
fi
benches=${BENCHES:-core}
for b in $benches; do
  if ! git cat-file -e "$base_rev:bench/benches/$b.rs" 2>/dev/null; then
    echo "bench-check: $base_rev has no $b benchmark; nothing to compare"; exit 0
  fi
done
work=$(mktemp -d)
cleanup() { git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git worktree add --detach -q "$work/base" "$base_rev"

bench_bin() { # manifest-dir target-dir bench -> path of the built bench binary
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench -q -p warren-bench --bench "$3" --no-run --message-format=json 2>/dev/null) |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$3"
}
cur_target=${CARGO_TARGET_DIR:-$PWD/target}
# The baseline's build starts from a copy of this tree's release artifacts: the dependencies
# it shares with the current tree are then not compiled again (minutes on a fresh CI machine),
# and cargo still rebuilds every workspace crate from the baseline's own sources.
if [ -d "$cur_target/release" ]; then
  mkdir -p "$work/target-base" && cp -a "$cur_target/release" "$work/target-base/release"
fi
echo "bench-check: building baseline $(git rev-parse --short "$base_rev") and current"
declare -A base_bin cur_bin
for b in $benches; do
  base_bin[$b]=$(bench_bin "$work/base" "$work/target-base" "$b")
  cur_bin[$b]=$(bench_bin "$PWD" "$cur_target" "$b")
done
export CRITERION_HOME="$work/criterion"
rounds=${BENCH_ROUNDS:-3}
# run ROUND [FILTER]: one baseline and one current process, each saving its estimates.
run() {
  for b in $benches; do
    "${base_bin[$b]}" --bench --save-baseline "base$1" ${2:+"$2"} >/dev/null 2>&1
    "${cur_bin[$b]}" --bench --save-baseline "cur$1" ${2:+"$2"} >/dev/null 2>&1
  done
}
for round in $(seq 1 "$rounds"); do run "$round"; done
if python3 ci/bench_compare.py "$CRITERION_HOME" --flagged "$work/flagged"; then exit 0; fi
# Something looked slower: measure just those benchmarks for as many rounds again, and fail
# only if the verdict holds over all the runs (a burst of load on a shared machine can make
# every run of one side slow).
filter="^($(paste -sd'|' "$work/flagged"))\$"
echo "bench-check: measuring the flagged benchmarks again ($rounds more rounds)"
for round in $(seq $((rounds + 1)) $((2 * rounds))); do run "$round" "$filter"; done
python3 ci/bench_compare.py "$CRITERION_HOME"
