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


# -- locks -----------------------------------------------------------------------------------

def acq(client, attempt, seq, invoke, complete, release, session="0x10", lock="/locks/a", writes=()):
    return {"type": "lock", "client": client, "lock": lock, "attempt": attempt, "node": f"c{client}-a{attempt}-{seq:010d}",
            "seq": seq, "session": session, "invoke": invoke, "granted_read": complete - 1, "complete": complete,
            "outcome": "ok", "release": release, "release_outcome": "ok",
            "writes": [{"invoke": t, "complete": t + 1, "outcome": "ok", "version": v} for t, v in writes]}


def state(client, st, t, session, role="lock"):
    return {"type": "state", "role": role, "client": client, "state": st, "t": t, "session": session}


def test_lock_handover_passes():
    a = acq(0, 1, 1, 0, 10, 50, session="0x10", writes=[(11, 1), (40, 2)])
    b = acq(1, 1, 2, 5, 60, 90, session="0x20", writes=[(61, 3), (80, 4)])
    assert checks.check_locks([a, b], {}, 1000) == []


def test_overlapping_holders_are_caught():
    a = acq(0, 1, 1, 0, 10, 50, session="0x10")
    b = acq(1, 1, 2, 5, 40, 90, session="0x20")
    out = checks.check_locks([a, b], {}, 1000)
    assert len(out) == 1 and "two holders while both sessions were live" in out[0]


def test_tenure_cut_by_suspended_then_another_holder_passes():
    # Client 0 holds from 10, is SUSPENDED at 20 (its session expires at 30 on the servers,
    # it releases at 200 after reconnecting); client 1 holds from 40.
    a = acq(0, 1, 1, 0, 10, 200, session="0x10")
    a["release_outcome"] = "NoNodeError"  # the servers deleted the node with the session
    b = acq(1, 1, 2, 5, 40, 90, session="0x20")
    states = [state(0, "SUSPENDED", 20, "0x10"), state(0, "LOST", 150, "0x10")]
    assert checks.check_locks([a, b] + states, {0x10: [30]}, 1000) == []
    # Without the SUSPENDED (a client that ignores it) the overlap is the client's fault:
    # the servers had ended its session at 30, before client 1 was granted the lock at 40.
    out = checks.check_locks([a, b, states[1]], {0x10: [30]}, 1000)
    assert len(out) == 1 and "client-side" in out[0]


def test_expiry_that_did_not_take_effect_is_ignored():
    # A deposed leader logged an expiry at 30, but the session's release at 200 succeeded:
    # the session lived, so the overlap with client 1 is the servers'.
    a = acq(0, 1, 1, 0, 10, 200, session="0x10")
    b = acq(1, 1, 2, 5, 40, 90, session="0x20")
    out = checks.check_locks([a, b], {0x10: [30]}, 1000)
    assert len(out) == 1 and "two holders" in out[0]


def test_lock_granted_out_of_order_is_caught():
    a = acq(0, 1, 1, 0, 100, 150, session="0x10")
    b = acq(1, 1, 2, 5, 40, 90, session="0x20")
    out = checks.check_locks([a, b], {}, 1000)
    assert len(out) == 1 and "granted out of order" in out[0]
    # Not the servers' fault if client 0's session had ended (at 50) before its deciding read:
    # a lagging follower may still show the node; the overlap is then the client's.
    a["release_outcome"] = "NoNodeError"
    b = acq(1, 1, 2, 5, 40, 120, session="0x20")
    out = checks.check_locks([a, b], {0x10: [50]}, 1000)
    assert len(out) == 1 and "client-side" in out[0]


def test_interleaved_guarded_writes_are_caught():
    a = acq(0, 1, 1, 0, 10, 50, session="0x10", writes=[(11, 1), (40, 3)])
    b = acq(1, 1, 2, 5, 60, 90, session="0x20", writes=[(61, 2)])
    out = checks.check_locks([a, b], {}, 1000)
    assert len(out) == 1 and "interleaved" in out[0]


def test_parse_expiries_reads_both_log_formats(tmp_path):
    warren = tmp_path / "warren.out"
    warren.write_text("2026-12-07T12:36:24.033810Z  INFO Expiring session 0x1a250812bd20000, timeout of 4000ms exceeded\n"
                      "2026-12-07T12:36:24.033810Z  INFO something else\n")
    zk = tmp_path / "zookeeper.log"
    zk.write_text("2026-12-07 12:36:25,500 - INFO  [SessionTracker:o.a.z.s.ZooKeeperServer@123] - "
                  "Expiring session 0x100000abc, timeout of 4000ms exceeded\n")
    out = checks.parse_expiries([warren, zk], lambda wall: int(wall))
    assert set(out) == {0x1a250812bd20000, 0x100000abc}


# -- watches ---------------------------------------------------------------------------------

def wrec(n, what, t, conn=1, watcher=0, **kw):
    return {"type": "watch", "watcher": watcher, "conn": conn, "n": n, "what": what, "t": t, **kw}


def writes_to(versions, key="/r0"):
    return [op(100 + v, "write", key=key, value=f"v{v}", version=v, zxid=v, invoke=v * 10, complete=v * 10 + 1)
            for v in versions]


def watch_history(events_between):
    """connected, added, read v1, then the given records, with final version 4."""
    recs = [wrec(1, "connected", 0, session="0x5"), wrec(2, "added", 1, key="/r0"),
            wrec(3, "read", 12, key="/r0", version=1)]
    for i, (what, kw) in enumerate(events_between):
        recs.append(wrec(4 + i, what, 50 + i, key="/r0", **kw))
    return recs


def test_complete_watch_stream_passes():
    ops = writes_to([1, 2, 3, 4]) + [final_read(200, 4, "v4")]
    recs = watch_history([("event", {"event": "NodeDataChanged"}), ("event", {"event": "NodeDataChanged"}),
                          ("read", {"version": 3}), ("event", {"event": "NodeDataChanged"})])
    assert checks.check_watches(recs, ops) == []


def test_missed_event_is_caught():
    ops = writes_to([1, 2, 3, 4]) + [final_read(200, 4, "v4")]
    recs = watch_history([("event", {"event": "NodeDataChanged"}), ("read", {"version": 3}),
                          ("event", {"event": "NodeDataChanged"})])
    out = checks.check_watches(recs, ops)
    assert len(out) == 1 and "missed 1 change" in out[0]


def test_out_of_order_event_is_caught():
    # The event of version 3 comes after the read that already showed version 3.
    ops = writes_to([1, 2, 3, 4]) + [final_read(200, 4, "v4")]
    recs = watch_history([("event", {"event": "NodeDataChanged"}), ("read", {"version": 3}),
                          ("event", {"event": "NodeDataChanged"}), ("read", {"version": 3}),
                          ("event", {"event": "NodeDataChanged"})])
    out = checks.check_watches(recs, ops)
    assert any("missed 1 change" in a for a in out) and any("too many" in a for a in out)


def test_phantom_events_are_caught():
    # Only versions 1 and 2 were ever written: a second event after version 1 claims version 3.
    ops = writes_to([1, 2]) + [final_read(200, 2, "v2")]
    recs = watch_history([("event", {"event": "NodeDataChanged"}), ("event", {"event": "NodeDataChanged"})])
    out = checks.check_watches(recs, ops)
    assert any("phantom event" in a for a in out)
    # A deletion of a register that is never deleted.
    recs = watch_history([("event", {"event": "NodeDataChanged"}), ("event", {"event": "NodeDeleted"})])
    out = checks.check_watches(recs, ops)
    assert len(out) == 1 and "phantom NodeDeleted" in out[0]
    # An event on a connection where no watch was added.
    recs = watch_history([("event", {"event": "NodeDataChanged"})])
    recs = [r for r in recs if r["what"] != "added"]
    out = checks.check_watches(recs, ops)
    assert any("no watch added" in a for a in out)
    # An event that came before the write it would reflect was even invoked (version 2 at 20).
    early = [wrec(1, "connected", 0, session="0x5"), wrec(2, "added", 1, key="/r0"),
             wrec(3, "read", 12, key="/r0", version=1), wrec(4, "event", 15, key="/r0", event="NodeDataChanged")]
    out = checks.check_watches(early, ops)
    assert len(out) == 1 and "could not exist yet" in out[0]


def test_indeterminate_write_can_explain_an_event():
    ops = writes_to([1]) + [op(300, "write", key="/r0", value="x", outcome="unknown", complete=None, invoke=30),
                            final_read(200, 2, "x")]
    recs = watch_history([("event", {"event": "NodeDataChanged"})])
    assert checks.check_watches(recs, ops) == []


def test_watcher_that_did_not_catch_up_is_caught():
    ops = writes_to([1, 2, 3, 4]) + [final_read(200, 4, "v4")]
    recs = watch_history([("event", {"event": "NodeDataChanged"})])
    out = checks.check_watches(recs, ops)
    assert len(out) == 1 and "did not catch up" in out[0]


def test_reconnect_is_a_new_baseline_but_not_a_step_back():
    ops = writes_to([1, 2, 3, 4]) + [final_read(200, 4, "v4")]
    recs = watch_history([("event", {"event": "NodeDataChanged"})])  # knows 2 on connection 1
    again = [wrec(10, "connected", 60, conn=2, session="0x5"), wrec(11, "added", 61, conn=2, key="/r0"),
             wrec(12, "read", 62, conn=2, key="/r0", version=4)]
    assert checks.check_watches(recs + again, ops) == []
    back = again[:2] + [wrec(12, "read", 62, conn=2, key="/r0", version=1),
                        wrec(13, "event", 63, conn=2, key="/r0", event="NodeDataChanged"),
                        wrec(14, "event", 64, conn=2, key="/r0", event="NodeDataChanged"),
                        wrec(15, "event", 65, conn=2, key="/r0", event="NodeDataChanged")]
    out = checks.check_watches(recs + back, ops)
    assert len(out) == 1 and "earlier connection" in out[0]


def test_availability_per_fault_and_per_kind():
    def w(t_s):
        return op(int(t_s * 10), "write", invoke=int(t_s * 1e6) - 1000, complete=int(t_s * 1e6), version=1)
    ops = [w(t) for t in (0.5, 1.0, 1.5, 2.0, 9.0, 9.5, 10.0, 21.0, 21.5, 22.0, 30.0)]
    faults = [{"kind": "loss-leader", "target": "n1 (leader) loses 0.20", "start": 1_000_000, "end": 5_000_000},
              {"kind": "loss-all", "target": "all servers lose 0.30", "start": 11_000_000, "end": 15_000_000},
              {"kind": "loss-leader", "target": "n2 (leader) loses 0.10", "start": 20_000_000, "end": 24_000_000}]
    avail = checks.availability(ops, faults, workload_end_us=30_000_000, horizon_us=3_000_000)
    assert [a["kind"] for a in avail] == ["loss-leader", "loss-all", "loss-leader"]
    # 2.0 -> 8.0 (the fault's end + 3 s horizon); 11 -> 18 with no write; 22.0 -> 27.0.
    assert [a["max_write_gap_s"] for a in avail] == [6.0, 7.0, 5.0]
    # Writes acknowledged while the fault lasted: 1.0, 1.5, 2.0 in 4 s; none; 21.0-22.0.
    assert [a["writes_per_s"] for a in avail] == [0.8, 0.0, 0.8]
    by = checks.availability_by_kind(avail)
    assert list(by) == ["loss-all", "loss-leader"]
    assert by["loss-leader"] == {"faults": 2, "gap_median_s": 5.5, "gap_p90_s": 6.0, "gap_max_s": 6.0,
                                 "writes_per_s_median": 0.8}
    assert by["loss-all"]["faults"] == 1 and by["loss-all"]["gap_max_s"] == 7.0
