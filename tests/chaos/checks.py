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
- ``check_locks`` (records of ``recipes.LockClient``): no two tenures of one lock overlap
  while both holders' sessions are live in the servers' view (a tenure ends at the release,
  the holder's first SUSPENDED or LOST, or the end of its session as the servers' logs and
  the session's later writes show); an overlap only because the servers had already ended a
  holder's session is reported as client-side; sequence numbers unique and granted in order;
  acknowledged guarded writes of two acquisitions never interleaved.
- ``check_watches`` (records of ``recipes.Watcher``): per watcher connection and register,
  after the baseline read each NodeDataChanged is the next version, so every later read must
  equal the last read's version plus the events since (more: a missed change; less: an extra
  event); no event of another type, without a watch, or for a version no write could have
  made yet; no read below a version known earlier in the session; and after healing every
  watcher knows every final version.
- ``availability``: per fault, the longest stretch without any acknowledged write.
Each returns a list of anomaly strings (empty: passed) except ``availability``.
"""

from __future__ import annotations

import bisect
import datetime
import json
import math
import os
import re
import statistics
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
    of the workload if sooner; and the rate of acknowledged writes while the fault lasted
    (a fault that slows the ensemble down without stopping it, packet loss, shows there)."""
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
        during = bisect.bisect_right(acks, f["end"]) - bisect.bisect_left(acks, lo)
        out.append({"kind": f["kind"], "target": f.get("target"), "start_s": round(lo / 1e6, 1),
                    "fault_s": round((f["end"] - lo) / 1e6, 1), "max_write_gap_s": round(gap / 1e6, 2),
                    "writes_per_s": round(during / max(f["end"] - lo, 1) * 1e6, 1)})
    return out


def availability_by_kind(avail: list[dict]) -> dict[str, dict]:
    """``availability()`` summed up per fault kind: how many faults, and the median, 90th
    percentile (nearest rank) and maximum of their longest write gaps, and the median write
    rate while they lasted."""
    def rank(xs: list[float], q: float) -> float:
        return xs[max(0, math.ceil(q * len(xs)) - 1)]

    by: dict[str, list[dict]] = {}
    for a in avail:
        by.setdefault(a["kind"], []).append(a)
    out = {}
    for kind in sorted(by):
        gaps = sorted(a["max_write_gap_s"] for a in by[kind])
        rates = sorted(a["writes_per_s"] for a in by[kind] if "writes_per_s" in a)
        out[kind] = {"faults": len(gaps), "gap_median_s": round(statistics.median(gaps), 2),
                     "gap_p90_s": rank(gaps, 0.9), "gap_max_s": gaps[-1]}
        if rates:
            out[kind]["writes_per_s_median"] = round(statistics.median(rates), 1)
    return out


# -- ephemeral locks -------------------------------------------------------------------------

_EXPIRY = re.compile(r"^(\S+ \S+|\S+)\s.*Expiring session (0x[0-9a-fA-F]+)")


def parse_expiries(log_paths, wall_to_us) -> dict[int, list[int]]:
    """Session -> the times (harness clock, µs) at which some server logged that it expires
    it: Warren's and ZooKeeper 3.8's wording is the same, "Expiring session 0x..., timeout of
    ...ms exceeded"; Warren stamps RFC 3339 UTC, ZooKeeper's log4j ISO 8601 local time."""
    out: dict[int, list[int]] = {}
    for path in log_paths:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            m = _EXPIRY.match(line)
            if not m:
                continue
            stamp = m.group(1)
            try:
                if stamp.endswith("Z"):
                    wall = datetime.datetime.fromisoformat(stamp[:-1]).replace(
                        tzinfo=datetime.timezone.utc).timestamp()
                else:
                    wall = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            out.setdefault(int(m.group(2), 16), []).append(wall_to_us(wall))
    for times in out.values():
        times.sort()
    return out


def _lock_steps(locks: list[dict]) -> dict[int, list[int]]:
    """Session -> invocation times of its acknowledged lock-client writes that need its lock
    node to exist (guarded writes, the release's delete): each proves the session was live
    when it took effect (closing a session deletes its ephemerals at once). Reads prove
    nothing: a lagging follower may still show a node the leader has deleted."""
    steps: dict[int, list[int]] = {}
    for r in locks:
        if r.get("session") is None:
            continue
        s = steps.setdefault(int(r["session"], 16), [])
        s += [w["invoke"] for w in r["writes"] if w["outcome"] == "ok"]
        if r.get("release_outcome") == "ok":
            s.append(r["release"])
    return steps


def session_ends(locks: list[dict], states: list[dict], expiries: dict[int, list[int]]) -> dict[int, int]:
    """When the ensemble ended each lock session, in the servers' own view: the earliest
    logged expiry of the session after which no write of the session that needs its lock
    node was invoked and succeeded (``_lock_steps``; a leader that is deposed before its expiry commits logs one that never takes
    effect: the session goes on), else, if its client saw LOST for it, that time (the servers
    had ended it by then)."""
    steps = _lock_steps(locks)
    lost: dict[int, int] = {}
    for st in states:
        if st["role"] == "lock" and st["state"] == "LOST" and st.get("session"):
            lost.setdefault(int(st["session"], 16), st["t"])
    ends = {}
    for sid in set(steps) | set(lost):
        later = steps.get(sid, [])
        for t in expiries.get(sid, []):
            if not any(s > t for s in later):
                ends[sid] = t
                break
        else:
            if sid in lost:
                ends[sid] = lost[sid]
    return ends


def lock_tenures(records: list[dict], expiries: dict[int, list[int]], end_us: int) -> list[dict]:
    """One tenure per acquisition: ``start`` = acquire complete; ``client_end`` = the earliest
    of the release's invocation, the holder's first SUSPENDED or LOST since it invoked the
    acquire, and ``end_us``; ``server_end`` = that, or the end of its session in the servers'
    view (``session_ends``) if sooner. Empty tenures (a state change between the invocation
    and the grant) are kept, with end <= start."""
    locks = [r for r in records if r["type"] == "lock"]
    states = [r for r in records if r["type"] == "state"]
    cuts: dict[int, list[int]] = {}
    for st in states:
        if st["role"] == "lock" and st["state"] in ("SUSPENDED", "LOST"):
            cuts.setdefault(st["client"], []).append(st["t"])
    for c in cuts.values():
        c.sort()
    ends = session_ends(locks, states, expiries)
    out = []
    for r in locks:
        if r["outcome"] != "ok":
            continue
        end = r["release"] if r.get("release") is not None else end_us
        how = "release" if r.get("release") is not None else "run end"
        c = cuts.get(r["client"], [])
        k = bisect.bisect_left(c, r["invoke"])
        if k < len(c) and c[k] < end:
            end, how = c[k], "SUSPENDED/LOST"
        s_end = ends.get(int(r["session"], 16))
        server_end, server_how = (s_end, "session expired") if s_end is not None and s_end < end else (end, how)
        out.append({"rec": r, "lock": r["lock"], "start": r["complete"], "client_end": end, "client_how": how,
                    "server_end": server_end, "server_how": server_how})
    return out


def _overlaps(tenures: list[dict], end_key: str) -> list[tuple[dict, dict]]:
    """Pairs of tenures of one lock whose [start, end) intersect (each tenure against the
    latest-ending earlier one)."""
    pairs = []
    by_lock: dict[str, list[dict]] = {}
    for t in tenures:
        if t[end_key] > t["start"]:
            by_lock.setdefault(t["lock"], []).append(t)
    for ts in by_lock.values():
        ts.sort(key=lambda t: t["start"])
        widest = None
        for t in ts:
            if widest is not None and t["start"] < widest[end_key]:
                pairs.append((widest, t))
            if widest is None or t[end_key] > widest[end_key]:
                widest = t
    return pairs


def _tenure_text(t: dict) -> str:
    r = t["rec"]
    return (f"client {r['client']} session {r['session']} node {r['node']} held "
            f"{t['start']}..{t['client_end']} ({t['client_how']}), server view to {t['server_end']} "
            f"({t['server_how']})")


def check_locks(records: list[dict], expiries: dict[int, list[int]], end_us: int) -> list[str]:
    """Lock safety (see ``lock_tenures``):

    - two tenures of one lock overlap while both sessions were live in the servers' view: a
      server-side violation ("two holders");
    - two client tenures overlap, but only after one holder's session had been ended by the
      ensemble: a client-side violation (the client went on holding a lock it no longer had),
      reported as such;
    - lock node sequence numbers are unique, and grant the lock in order: a node with a higher
      number that was granted (its acquire completed) before a lower one's deciding
      getChildren was even invoked means the lower node existed, vanished and reappeared
      (unless the lower one's session had already ended: a lagging follower may still show it);
    - the guarded writes (multi: check own lock node, setData owner node) that were
      acknowledged never interleave: ordered by the owner node's version, each acquisition's
      writes are consecutive (they happen only while its node exists)."""
    anomalies = []
    tenures = lock_tenures(records, expiries, end_us)
    server_pairs = _overlaps(tenures, "server_end")
    for a, b in server_pairs:
        anomalies.append(f"lock {a['lock']}: two holders while both sessions were live: "
                         f"{_tenure_text(a)}; {_tenure_text(b)}")
    seen = {(id(a), id(b)) for a, b in server_pairs}
    for a, b in _overlaps(tenures, "client_end"):
        both_live = max(a["start"], b["start"]) < min(a["server_end"], b["server_end"])
        if (id(a), id(b)) not in seen and not both_live:
            anomalies.append(f"lock {a['lock']}: client-side: a client held the lock after the ensemble "
                             f"had ended its session: {_tenure_text(a)}; {_tenure_text(b)}")
    locks = [r for r in records if r["type"] == "lock" and r.get("seq") is not None]
    ends = session_ends(locks, [r for r in records if r["type"] == "state"], expiries)
    by_lock: dict[str, list[dict]] = {}
    for r in locks:
        by_lock.setdefault(r["lock"], []).append(r)
    for lock, rs in sorted(by_lock.items()):
        nums: dict[int, dict] = {}
        for r in rs:
            if r["seq"] in nums:
                anomalies.append(f"lock {lock}: sequence number {r['seq']} given twice: "
                                 f"{nums[r['seq']]['node']} {r['node']}")
            nums[r["seq"]] = r
        granted = sorted((r for r in rs if r["outcome"] == "ok"), key=lambda r: -r["seq"])
        first_higher = None  # the earliest-completing grant among higher numbers
        for r in granted:
            end = ends.get(int(r["session"], 16))
            if end is not None and end <= r["granted_read"]:
                # Its session was already over: a follower that has not yet applied the
                # closeSession may still show the node (reads are not linearizable). Any
                # overlap this causes is reported above, as client-side.
                continue
            if first_higher is not None and first_higher["complete"] < r["granted_read"]:
                anomalies.append(f"lock {lock}: granted out of order: {first_higher['node']} was granted at "
                                 f"{first_higher['complete']}, before {r['node']} (lower) was found lowest "
                                 f"by a getChildren invoked at {r['granted_read']}")
            if first_higher is None or r["complete"] < first_higher["complete"]:
                first_higher = r
        writes = sorted(((w["version"], r["attempt"], r["client"], r["node"]) for r in rs
                         for w in r["writes"] if w["outcome"] == "ok"))
        last_of: dict[str, int] = {}
        for i, (version, _, _, node) in enumerate(writes):
            if node in last_of and last_of[node] != i - 1:
                between = writes[last_of[node] + 1]
                anomalies.append(f"lock {lock}: guarded writes interleaved: {node}'s acknowledged writes at "
                                 f"owner versions {writes[last_of[node]][0]} and {version}, {between[3]}'s at "
                                 f"{between[0]} between them")
            last_of[node] = i
    return anomalies


# -- watches ---------------------------------------------------------------------------------

def _possible(ops: list[dict]):
    """possible(key, version, t): could ``version`` of ``key`` exist at time ``t``? Versions
    1..version must each come from a distinct write invoked before ``t``: every acknowledged
    write with a version up to it was invoked before ``t``, and the indeterminate writes
    invoked before ``t`` are enough for the versions no acknowledged write accounts for."""
    acked: dict[str, dict[int, int]] = {}
    unknown: dict[str, list[int]] = {}
    for op in ops:
        if op["type"] != "op" or op["f"] not in ("write", "cas"):
            continue
        if op["outcome"] == "ok":
            acked.setdefault(op["key"], {})[op["version"]] = op["invoke"]
        elif op["outcome"] == "unknown":
            unknown.setdefault(op["key"], []).append(op["invoke"])
    # Per key: versions ascending with the latest invocation among acknowledged ones up to each.
    table = {}
    for key, vs in acked.items():
        versions = sorted(vs)
        latest, running = [], -1
        for v in versions:
            running = max(running, vs[v])
            latest.append(running)
        table[key] = (versions, latest)
    for u in unknown.values():
        u.sort()

    def possible(key: str, version: int, t: int) -> str | None:
        versions, latest = table.get(key, ([], []))
        k = bisect.bisect_right(versions, version)
        if k and latest[k - 1] >= t:
            return f"an acknowledged write of a version <= {version} was invoked only at {latest[k - 1]}"
        missing = version - k
        available = bisect.bisect_left(unknown.get(key, []), t)
        if missing > available:
            return (f"{missing} of versions 1..{version} were made by no acknowledged write, and only "
                    f"{available} indeterminate writes had been invoked by then")
        return None
    return possible


def check_watches(records: list[dict], ops: list[dict]) -> list[str]:
    """Watch completeness, per watcher, per connection, per key (records of ``recipes.Watcher``
    in the order they came off the socket).

    The watch is registered on a connection from the reply to its addWatch; the first read of
    the key after that is the baseline. ZooKeeper's ordering guarantee (a client sees the
    notification of a change before any reply that reflects it) and one NodeDataChanged per
    setData of a persistently watched node mean: after a read of version v, the i-th event is
    the change to version v+i, and the next read on the connection returns exactly v + (number
    of events since). So:

    - missed: a read returns more than that (a change the watcher was not told about), or less
      (more events than changes: a duplicate or phantom event; an event that came out of order,
      after a read that already showed its change, shows as one of each);
    - phantom: an event of another type (the registers are never created or deleted again), an
      event on a key with no watch on this connection, or an event whose version (v+i) could
      not exist when it was received (``_possible``: not enough writes invoked by then);
    - order across connections: within one session, no read returns a version lower than one
      already known (reads or events) on an earlier connection of the session;
    - caught up: after healing, on its last connection, the watcher's knowledge (last read plus
      events since) of every key equals the final version (the register clients' final reads
      after sync).

    Not checked, with reasons: changes between two connections of a session are not events at
    all here (kazoo sends no setWatches; ZooKeeper would deliver one NodeDataChanged for them
    on reconnect), so a reconnect is a fresh baseline; events between the addWatch reply and
    the baseline read cannot be given versions, so only their types are checked."""
    anomalies = []
    possible = _possible(ops)
    final: dict[str, int] = {}
    for op in ops:
        if op.get("phase") == "final" and op["f"] == "read" and op["outcome"] == "ok":
            final[op["key"]] = max(final.get(op["key"], -1), op["version"])
    watch = sorted((r for r in records if r["type"] == "watch"), key=lambda r: (r["watcher"], r["n"]))
    by_watcher: dict[int, list[dict]] = {}
    for r in watch:
        by_watcher.setdefault(r["watcher"], []).append(r)
    for w, rs in sorted(by_watcher.items()):
        known_in_session: dict[tuple[str, str], int] = {}
        session, conn = None, None
        armed: set[str] = set()
        base: dict[str, int] = {}
        count: dict[str, int] = {}

        def note(key, v):
            known_in_session[(session, key)] = max(v, known_in_session.get((session, key), v))

        for r in rs:
            if r["conn"] != conn:
                conn, armed, base, count = r["conn"], set(), {}, {}
                conn_known: dict[str, int] = {}
            what, key = r["what"], r.get("key")
            where = f"watcher {w} connection {conn} (session {session}) {key} at {r['t']}"
            if what == "connected":
                session = r["session"]
                conn_known = {k: v for (s, k), v in known_in_session.items() if s == session}
            elif what == "added":
                armed.add(key)
            elif what == "read":
                v = r["version"]
                if key in base:
                    expected = base[key] + count[key]
                    if v > expected:
                        anomalies.append(f"{where}: missed {v - expected} change(s): read version {v} "
                                         f"after version {base[key]} and {count[key]} events")
                    elif v < expected:
                        anomalies.append(f"{where}: {expected - v} event(s) too many: read version {v} "
                                         f"after version {base[key]} and {count[key]} events")
                if key in conn_known and v < conn_known[key]:
                    anomalies.append(f"{where}: read version {v} after version {conn_known[key]} was "
                                     f"known on an earlier connection of the session")
                if key in armed:
                    base[key], count[key] = v, 0
                note(key, v)
            elif what == "event":
                if r["event"] != "NodeDataChanged":
                    anomalies.append(f"{where}: phantom {r['event']} event")
                elif key not in armed:
                    anomalies.append(f"{where}: event with no watch added on this connection")
                elif key in base:
                    count[key] += 1
                    version = base[key] + count[key]
                    why = possible(key, version, r["t"])
                    if why:
                        anomalies.append(f"{where}: phantom event: it would be version {version}, "
                                         f"which could not exist yet: {why}")
                    note(key, version)
        for key, v in sorted(final.items()):
            knows = base[key] + count[key] if key in base else None
            if knows != v:
                anomalies.append(f"watcher {w}: did not catch up on {key}: its last connection knows "
                                 f"version {knows}, the final version is {v}")
    return anomalies
