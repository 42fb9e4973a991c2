"""ci/bench_compare.py decides CI's performance verdict: check it flags a clear slowdown and
tolerates noise."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "bench_compare.py"


def save(home, bench, run, mean, half_width):
    d = home / bench / run
    d.mkdir(parents=True, exist_ok=True)
    ci = {"lower_bound": mean - half_width, "upper_bound": mean + half_width}
    (d / "estimates.json").write_text(json.dumps({"mean": {"point_estimate": mean, "confidence_interval": ci}}))


def verdict(tmp_path, base, cur):
    for run in ("base1", "base2"):
        save(tmp_path, "g/b", run, *base)
    for run in ("cur1", "cur2"):
        save(tmp_path, "g/b", run, *cur)
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)


def test_clear_slowdown_fails(tmp_path):
    r = verdict(tmp_path, (100.0, 2.0), (150.0, 2.0))
    assert r.returncode == 1 and "REGRESSION" in r.stdout


def test_noise_passes(tmp_path):
    assert verdict(tmp_path, (100.0, 2.0), (110.0, 2.0)).returncode == 0


def test_large_but_overlapping_passes(tmp_path):
    # 40% slower on average but the intervals overlap: too noisy to call.
    assert verdict(tmp_path, (100.0, 30.0), (140.0, 30.0)).returncode == 0


def test_one_disturbed_current_run_is_discarded(tmp_path):
    save(tmp_path, "g/b", "base1", 100.0, 2.0)
    save(tmp_path, "g/b", "base2", 101.0, 2.0)
    save(tmp_path, "g/b", "cur1", 300.0, 2.0)   # disturbed by other load
    save(tmp_path, "g/b", "cur2", 102.0, 2.0)
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
