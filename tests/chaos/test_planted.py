"""Planted bugs the harness must catch (issue 16): a `warren` built with the `planted-bugs`
cargo feature, each bug selected at run time by WARREN_PLANTED_BUG, run by chaos.py under a
fixed schedule whose faults expose it. The run must report the anomaly the bug causes (exit
status 1, the checker that owns that kind of anomaly); the control, the same binary and
schedule with WARREN_PLANTED_BUG unset, must pass. README.md, "Planted bugs".

    sudo python3 -m pytest tests/chaos/test_planted.py -q      # or: bash ci/planted.sh

The planted binary is built into target/planted (a copy of target/release made once, so
only the crates whose features differ recompile; target/release/warren is left alone), or
taken from WARREN_PLANTED_BIN. CHAOS_NET picks chaos.py's --net (default 0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import net  # noqa: E402

NET_ID = int(os.environ.get("CHAOS_NET", "0"))

# Each bug: the schedule that exposes it, and the linearizability rules (engine/tests/sim/lin.rs)
# or harness checks (checks.py) that name the anomaly it causes.
#
# ack-before-quorum: the leader, cut off from its followers while its clients still reach it
# (partition-leader), acknowledges writes only it has; the majority elects a new leader and
# writes the same versions. The deposed leader cannot take the new leader's TRUNC (it applied
# past it) and keeps re-electing until the kill-all restarts it.
# stale-follower-reads: a follower cut off from the leader (partition-random: seed 16 cuts
# n2, then n1; n3 leads) answers sync and reads from its old state.
LOST_WRITE_RULES = ("DuplicateVersion", "WritesNotLinearizable", "WriteRealTimeOrder", "WriteZxidOrder")
LOST_WRITE_CHECKS = ("acknowledged write lost", "acknowledged twice", "missing after healing")
STALE_READ_RULES = ("ReadMissedSyncedWrite", "ReadWentBack", "ZxidWentBack")
CASES = {
    "ack-before-quorum": {"args": ["--seed", "1", "--duration", "30", "--cycle",
                                   "--faults", "partition-leader,kill-all"]},
    "stale-follower-reads": {"args": ["--seed", "16", "--duration", "30", "--faults", "partition-random"]},
}


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and a bridge)"
    if shutil.which("ip") is None:
        return "no 'ip' command"
    net.use_network(NET_ID)
    why = net.available()
    return f"network namespaces unavailable: {why}" if why else None


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=f"chaos: {SKIP}")


@pytest.fixture(scope="module")
def planted_binary() -> Path:
    given = os.environ.get("WARREN_PLANTED_BIN")
    if given:
        path = Path(given).resolve()
        assert path.is_file(), f"WARREN_PLANTED_BIN={given} does not exist"
        return path
    target = REPO / "target" / "planted"
    release = REPO / "target" / "release"
    started = time.monotonic()
    if not (target / "release").exists() and release.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(release), str(target / "release")], check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    subprocess.run(["cargo", "build", "--release", "-p", "warren", "--bin", "warren", "--features", "planted-bugs"],
                   cwd=REPO, env=env, check=True, timeout=3600)
    print(f"planted binary built in {time.monotonic() - started:.0f}s")
    return target / "release" / "warren"


def run_chaos(binary: Path, out: Path, args: list[str], bug: str | None) -> tuple[int, dict, str]:
    env = dict(os.environ)
    env.pop("WARREN_PLANTED_BUG", None)
    if bug:
        env["WARREN_PLANTED_BUG"] = bug
    cmd = [sys.executable, str(HERE / "chaos.py"), "--net", str(NET_ID), "--binary", str(binary),
           "--out", str(out), *args]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode == 2:
        pytest.skip(f"chaos.py skipped: {r.stdout.strip()[-300:]}")
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return r.returncode, report, r.stdout + r.stderr


def server_logs(out: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(out.glob("servers/n*/warren.out")))


def lin_rule(report: dict) -> str | None:
    """The rule the linearizability checker says the history broke, or None if it passed."""
    lin = report.get("linearizability") or {}
    if lin.get("ok", False):
        return None
    return str(lin.get("violation", "?")).split(":", 1)[0]


def lost_write_evidence(report: dict) -> list[str]:
    found = []
    if lin_rule(report) in LOST_WRITE_RULES:
        found.append(f"linearizability: {lin_rule(report)}")
    found += [a[:200] for a in report.get("anomalies", []) if any(k in a for k in LOST_WRITE_CHECKS)]
    return found


@pytest.mark.parametrize("bug", sorted(CASES))
def test_planted_bug_is_caught(planted_binary, tmp_path, bug):
    rc, report, output = run_chaos(planted_binary, tmp_path / "run", CASES[bug]["args"] + ["--keep"], bug)
    tail = output[-3000:]
    assert f"PLANTED BUG {bug} active" in server_logs(tmp_path / "run"), \
        f"the servers did not run with the plant (not built with --features planted-bugs?)\n{tail}"
    assert rc == 1, f"expected anomalies (exit 1), got exit {rc}\n{tail}"
    assert "ANOMALY" in output
    if bug == "ack-before-quorum":
        # Writes only the deposed leader had: acknowledged, then lost (the new leader reused
        # their versions and sequence numbers).
        assert lost_write_evidence(report), f"no lost acknowledged write reported: {report.get('anomalies')}"
    else:
        # A read after a sync on the cut-off follower missed writes the majority had acknowledged
        # before the sync; nothing acknowledged was lost.
        assert lin_rule(report) in STALE_READ_RULES, f"linearizability: {report.get('linearizability')}"
        assert not lost_write_evidence(report), f"unexpected lost writes: {lost_write_evidence(report)}"


@pytest.mark.parametrize("bug", sorted(CASES))
def test_same_schedule_passes_without_the_bug(planted_binary, tmp_path, bug):
    out = tmp_path / "run"
    rc, report, output = run_chaos(planted_binary, out, CASES[bug]["args"] + ["--keep"], None)
    assert "PLANTED BUG" not in server_logs(out)
    assert rc == 0, f"control run (WARREN_PLANTED_BUG unset) failed with exit {rc}\n{output[-3000:]}"
    assert report.get("anomalies") == [] and (report.get("linearizability") or {}).get("ok") is True
