#!/usr/bin/env bash
# Installs what the black-box test harness (tests/python) needs: the real Apache ZooKeeper
# (reference server + Java zkCli), Apache Curator and a JDK (tests/java/CuratorSuite.java,
# compiled by tests/python/test_curator.py), iptables (the chaos harness's packet-loss faults,
# tests/chaos/net.py) and the Python client/test tools. Idempotent and
# quiet: prints one line per thing it installs, nothing when all is present.
set -euo pipefail

PY="${PYTHON:-python3}"

APT_PACKAGES="zookeeper zookeeper-bin netcat-openbsd libservlet-api-java libcurator-recipes-java libcurator-framework-java libcurator-client-java default-jdk-headless iptables"
if [ ! -f /usr/share/java/zookeeper.jar ] || [ ! -f /usr/share/java/curator-recipes.jar ] \
        || ! command -v javac >/dev/null 2>&1 || [ ! -e /usr/sbin/iptables-restore ]; then
    log="$(mktemp)"
    # shellcheck disable=SC2086  # a list of package names
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends $APT_PACKAGES; } >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; exit 1
    fi
    rm -f "$log"
    echo "installed: $APT_PACKAGES (apt)"
fi

pip_install() { # module-to-import  pip-requirement
    if ! "$PY" -c "import $1" >/dev/null 2>&1; then
        local log; log="$(mktemp)"
        if ! "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$2" >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"; exit 1
        fi
        rm -f "$log"
        echo "installed: $2 (pip)"
    fi
}

pip_install kazoo 'kazoo==2.11.0'
pip_install pytest 'pytest==8.*'
pip_install pytest_timeout 'pytest-timeout'
pip_install prometheus_client 'prometheus-client'
pip_install puresasl 'pure-sasl'
pip_install pexpect 'pexpect'
pip_install cryptography 'cryptography'

cargo_install() { # subcommand  crate  why
    if ! cargo "$1" --version >/dev/null 2>&1; then
        local log; log="$(mktemp)"
        if ! cargo install -q "$2" --locked >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"; exit 1
        fi
        rm -f "$log"
        echo "installed: $2 (cargo)"
    fi
}

# cargo-fuzz for the fuzz targets (engine/fuzz, ci/fuzz.sh); they build with the nightly
# toolchain, which this machine image has.
cargo_install fuzz cargo-fuzz
# cargo-deb for the Debian package (ci/build-deb.sh, tests/python/test_packaging.py).
cargo_install deb cargo-deb
