"""Checkers over a recorded history (records as ``workload.py`` writes them).

- ``check_linearizable``: the simulator's checker (``engine/tests/sim/lin.rs``) through
  ``engine/tests/chaos_history.rs``.
- ``check_lost_writes``: after healing, every client syncs and reads every register; an
  acknowledged write with a version above the final one, or with the final version but another
  value, was lost; and the final reads of all clients must agree.
- ``check_sequential``: acknowledged sequential creates have distinct numbers, are all in the
  final listing of ``/seq``, and follow real time (a create that completed before another was
  invoked has the smaller number).
- ``check_expired_sessions``: a session that was answered SessionExpired is gone: no later
  request of that session may succeed (ZooKeeper closes the connection with the error).
- ``availability``: per fault, the longest stretch without any acknowledged write.
Each returns a list of anomaly strings (empty: passed) except ``availability``.
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def checker_binary(timeout: float = 1800.0) -> Path:
    """Builds engine/tests/chaos_history.rs (before a run, so a rebuild never lands in the
    middle of one) and returns its test executable."""
    cmd = ["cargo", "test", "--release", "-p", "warren", "--test", "chaos_history", "--no-run",
           "--message-format=json"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("target", {}).get("name") == "chaos_history" and msg.get("executable"):
            return Path(msg["executable"])
    raise RuntimeError(f"building the checker failed (rc {r.returncode}):\n{r.stderr[-3000:]}")


def check_linearizable(binary: Path, history_path: Path, timeout: float = 600.0) -> tuple[list[str], dict]:
    env = dict(os.environ, WARREN_CHAOS_HISTORY=str(history_path))
    cmd = [str(binary), "recorded_history", "--exact", "--nocapture"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    for line in r.stdout.splitlines():
        if line.startswith("chaos-check "):
            summary = json.loads(line[len("chaos-check "):])
            return ([] if summary.get("ok") else [summary["violation"]]), summary
    return [f"checker did not report (rc {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"], {}


def check_lost_writes(ops: list[dict]) -> list[str]:
    anomalies = []
    final: dict[str, set[tuple[int, str]]] = {}
    for op in ops:
        if op.get("phase") == "final" and op["f"] == "read" and op["outcome"] == "ok":
            final.setdefault(op["key"], set()).add((op["version"], op["read_value"]))
    keys = {op["key"] for op in ops if op["type"] == "op" and op["f"] in ("write", "cas")}
    for key in sorted(keys):
        seen = final.get(key)
        if not seen:
            anomalies.append(f"{key}: no final read succeeded")
            continue
        if len(seen) > 1:
            anomalies.append(f"{key}: final reads after sync disagree: {sorted(seen)}")
        version, value = max(seen)
        for op in ops:
            if op["key"] != key or op["f"] not in ("write", "cas") or op["outcome"] != "ok":
                continue
            if op["version"] > version or (op["version"] == version and op["value"] != value):
                anomalies.append(f"{key}: acknowledged write lost (final version {version} "
                                 f"value {value!r}): {json.dumps(op)}")
    return anomalies


def check_sequential(ops: list[dict], final_children: list[str] | None) -> list[str]:
    acked = [op for op in ops if op["f"] == "seq" and op["outcome"] == "ok"]
    anomalies = []
    by_name: dict[str, dict] = {}
    for op in acked:
        if op["name"] in by_name:
            anomalies.append(f"sequential name {op['name']} acknowledged twice: "
                             f"{json.dumps(by_name[op['name']])} {json.dumps(op)}")
        by_name[op["name"]] = op
    if final_children is None:
        anomalies.append("/seq could not be listed after healing")
    else:
        present = set(final_children)
        for name in sorted(set(by_name) - present):
            anomalies.append(f"acknowledged sequential node {name} missing after healing")
    # Real-time order: sweep by completion; the max number completed before each invocation.
    num = {op["id"]: int(op["name"].rsplit("-", 1)[1]) for op in acked}
    done = sorted(acked, key=lambda o: o["complete"])
    completes = [o["complete"] for o in done]
    prefix_max, best = [], None
    for o in done:
        best = o if best is None or num[o["id"]] > num[best["id"]] else best
        prefix_max.append(best)
    for op in acked:
        k = bisect.bisect_left(completes, op["invoke"])
        if k and num[prefix_max[k - 1]["id"]] >= num[op["id"]]:
            anomalies.append(f"sequential numbers against real time: {json.dumps(prefix_max[k - 1])} "
                             f"completed before {json.dumps(op)} was invoked")
    return anomalies


def check_expired_sessions(ops: list[dict], limit: int = 5) -> list[str]:
    expired_at: dict[str, dict] = {}
    for op in sorted(ops, key=lambda o: o.get("error_at") or o["invoke"]):
        if op.get("error") == "SessionExpiredError":
            expired_at.setdefault(op["session"], op)
    late: dict[str, list[dict]] = {}
    for op in ops:
        first = expired_at.get(op["session"])
        if first and op["outcome"] == "ok" and op["invoke"] > first["error_at"]:
            late.setdefault(op["session"], []).append(op)
    anomalies = []
    for session, answered in sorted(late.items()):
        first = expired_at[session]
        failed = sum(1 for o in ops if o["session"] == session and o.get("error") == "SessionExpiredError")
        anomalies.append(
            f"session {session} was answered SessionExpired ({failed} requests) yet {len(answered)} later "
            f"requests succeeded: first expiry {json.dumps(first)}; "
            f"later: {' '.join(json.dumps(o) for o in answered[:limit])}")
    return anomalies


def availability(ops: list[dict], faults: list[dict], workload_end_us: int,
                 horizon_us: int = 15_000_000) -> list[dict]:
    """For each fault: the longest gap between acknowledged writes (any client) from the
    fault's start to ``horizon_us`` after it healed, or to the next fault's start or the end
    of the workload if sooner."""
    acks = sorted(op["complete"] for op in ops
                  if op["type"] == "op" and op["f"] in ("write", "cas") and op["outcome"] == "ok")
    out = []
    starts = [f["start"] for f in faults[1:]] + [None]
    for f, next_start in zip(faults, starts):
        lo, hi = f["start"], min(f["end"] + horizon_us, workload_end_us)
        if next_start is not None:
            hi = min(hi, next_start)
        inside = acks[bisect.bisect_left(acks, lo):bisect.bisect_right(acks, hi)]
        points = [lo] + inside + [hi]
        gap = max(b - a for a, b in zip(points, points[1:]))
        out.append({"kind": f["kind"], "target": f.get("target"), "start_s": round(lo / 1e6, 1),
                    "fault_s": round((f["end"] - lo) / 1e6, 1), "max_write_gap_s": round(gap / 1e6, 2)})
    return out
