#!/usr/bin/env bash
# Builds the Debian package of Warren into target/debian/ (cargo-deb; ci/install-deps.sh
# installs it): /usr/bin/warren, the systemd unit (conf/systemd/warren.service),
# /etc/warren/zoo.cfg (conf/zoo.cfg, a conffile), docs and sample ensemble configs, and a
# postinst that creates the warren user. Prints the .deb's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

# The same build as ci/test.sh (the whole workspace, every target, release), so the packaged
# binary is the one the tests ran against: building without --all-targets (or only the engine
# package) unifies dependency features differently and recompiles half the dependencies.
cargo build --release --workspace --all-targets --quiet
# Stripped: the release profile keeps line tables (debug = 1) for profiling; the package does not need them.
# Reproducible: file dates in the package are the last commit's.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
cargo deb --package warren --no-build --strip --quiet 2>&1 | tail -n 1
