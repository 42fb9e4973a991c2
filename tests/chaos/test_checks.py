"""The Python checkers on doctored histories: each must reject the anomaly it names, and pass
the same history without it. (The linearizability checker's doctored histories are Rust
tests in engine/tests/chaos_history.rs.)  python3 -m pytest tests/chaos -q"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checks  # noqa: E402


def op(id, f, key="/r0", outcome="ok", phase="main", session="0x1", invoke=0, complete=1, **kw):
    return {"type": "seq" if f == "seq" else "op", "id": id, "f": f, "key": key, "outcome": outcome,
            "phase": phase, "session": session, "invoke": invoke, "complete": complete, **kw}


def final_read(id, version, value, session="0x1"):
    return op(id, "read", phase="final", session=session, invoke=100, complete=101,
              version=version, read_value=value)


def test_lost_write_is_caught():
    w1 = op(1, "write", value="a", version=1, zxid=5)
    w2 = op(2, "cas", value="b", expected_version=1, version=2, zxid=6, invoke=2, complete=3)
    assert checks.check_lost_writes([w1, w2, final_read(3, 2, "b")]) == []
    lost = checks.check_lost_writes([w1, w2, final_read(3, 1, "a")])
    assert len(lost) == 1 and "acknowledged write lost" in lost[0]
    replaced = checks.check_lost_writes([w1, w2, final_read(3, 2, "x")])
    assert len(replaced) == 1 and "acknowledged write lost" in replaced[0]


def test_disagreeing_final_reads_are_caught():
    w1 = op(1, "write", value="a", version=1, zxid=5)
    out = checks.check_lost_writes([w1, final_read(2, 1, "a"), final_read(3, 0, "init", session="0x2")])
    assert len(out) == 1 and "disagree" in out[0]


def seq(id, name, invoke, complete):
    return op(id, "seq", key="/seq", name=name, invoke=invoke, complete=complete)


def test_sequential_anomalies_are_caught():
    good = [seq(1, "s-0000000000", 0, 10), seq(2, "s-0000000001", 20, 30), seq(3, "s-0000000002", 5, 25)]
    names = [o["name"] for o in good]
    assert checks.check_sequential(good, names) == []
    dup = good + [seq(4, "s-0000000001", 40, 50)]
    assert any("acknowledged twice" in a for a in checks.check_sequential(dup, names))
    assert any("missing" in a for a in checks.check_sequential(good, names[:2]))
    backwards = [seq(1, "s-0000000005", 0, 10), seq(2, "s-0000000003", 20, 30)]
    out = checks.check_sequential(backwards, ["s-0000000005", "s-0000000003"])
    assert len(out) == 1 and "real time" in out[0]


def test_requests_answered_after_session_expired_are_caught():
    expired = op(1, "write", outcome="unknown", complete=None, value="a", error="SessionExpiredError",
                 invoke=10, error_at=11)
    before = op(2, "read", invoke=5, complete=6, version=0, read_value="init", zxid=1)
    assert checks.check_expired_sessions([before, expired]) == []
    after = op(3, "read", invoke=20, complete=21, version=0, read_value="init", zxid=1)
    out = checks.check_expired_sessions([before, expired, after])
    assert len(out) == 1 and "yet 1 later requests succeeded" in out[0]
