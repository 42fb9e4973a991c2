"""Clients and the recorded history.

Each client is one thread with one kazoo session, connected to every server (its own server
first, ``randomize_hosts=False``), doing one operation at a time on a few registers
(``/r0``..): read (getData), write (setData version -1), compare-and-set (setData with the
version the client last saw), sync, and sequential creates under ``/seq``. Every operation is
one JSON record (``history.jsonl``, the format in ``engine/tests/chaos_history.rs``):

- ok: the reply; for reads the value, the Stat version and the reply header's zxid (kazoo's
  ``last_zxid`` right after the reply: one request in flight per client, and kazoo takes
  pings' zxids elsewhere), for writes the Stat's version and mzxid;
- fail: a definite failure (BadVersion: the write did not happen);
- unknown: no answer within ``op_timeout`` or ConnectionLoss / SessionExpired / anything
  else: the operation may or may not have taken effect. ``complete`` is null.

Times are microseconds on one monotonic clock shared by all clients (one process).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError
from kazoo.handlers.threading import KazooTimeoutError

INITIAL = "init"
BAD_VERSION = -103

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


class Clock:
    def __init__(self):
        self.t0 = time.monotonic_ns()
        self.wall0 = time.time()  # the same instant on the wall clock, for the servers' logs

    def now_us(self) -> int:
        return (time.monotonic_ns() - self.t0) // 1000

    def wall_to_us(self, wall: float) -> int:
        """A wall-clock time (seconds; e.g. a server's log stamp: the namespaces share the
        host's clock) on this clock."""
        return int((wall - self.wall0) * 1e6)


class History:
    """Thread-safe record list; written out sorted by invocation (per-session issue order)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.ids = itertools.count(1)

    def add(self, rec: dict) -> None:
        with self.lock:
            self.records.append(rec)

    def event(self, rtype: str, **fields) -> dict:
        rec = {"type": rtype, "t": self.clock.now_us(), **fields}
        self.add(rec)
        return rec

    def write(self, path) -> None:
        with self.lock:
            recs = sorted(self.records, key=lambda r: (r.get("invoke", r.get("t", 0)), r.get("id", 0)))
        with open(path, "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")

    def ops(self) -> list[dict]:
        with self.lock:
            return [r for r in self.records if r["type"] in ("op", "seq")]

    def of_types(self, *types: str) -> list[dict]:
        with self.lock:
            return [r for r in self.records if r["type"] in types]


def session_hex(client: KazooClient, cid: int) -> str:
    """The client's current session, also while it reconnects (``client_id`` is None then).
    Before its first session, or between an expiry and the next one, a made-up id unique to
    the client (high bits 0xfff0 + client), so two clients never share a session."""
    sid = client._session_id
    return hex(sid) if sid else hex((0xFFF0 + cid) << 48)


class Client(threading.Thread):
    def __init__(self, cid: int, hosts: str, keys: list[str], history: History, seed: int,
                 session_timeout: float, op_timeout: float, stop: threading.Event):
        super().__init__(name=f"client-{cid}", daemon=True)
        self.cid = cid
        self.keys = keys
        self.history = history
        self.rng = random.Random(seed)
        self.op_timeout = op_timeout
        self.stop_ev = stop
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout, randomize_hosts=False,
                              connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0})
        self.seen_version = {k: 0 for k in keys}
        self.n = 0
        self.phase = "main"

    def start_session(self, timeout: float) -> None:
        self.zk.start(timeout=timeout)

    # -- one operation ----------------------------------------------------------------------
    def _record(self, f: str, key: str, start, **call) -> dict:
        rec = {"type": "seq" if f == "seq" else "op", "id": next(self.history.ids), "client": self.cid, "phase": self.phase,
               "session": session_hex(self.zk, self.cid), "f": f, "key": key, **call,
               "invoke": self.history.clock.now_us(), "complete": None, "outcome": "unknown"}
        try:
            result = start().get(timeout=self.op_timeout)
            rec["complete"] = self.history.clock.now_us()
            rec["outcome"] = "ok"
            # The session that answered (it differs from the one at invocation only if the
            # request waited in kazoo's queue across an expiry).
            rec["session"] = session_hex(self.zk, self.cid)
            self._fill(rec, f, result)
        except BadVersionError:
            rec["complete"] = self.history.clock.now_us()
            rec.update(outcome="fail", code=BAD_VERSION, zxid=self.zk.last_zxid)
        except KazooTimeoutError:
            rec["error"] = "timeout"
        except Exception as e:  # ConnectionLoss, SessionExpired, ...: indeterminate
            rec["error"] = type(e).__name__
            rec["error_at"] = self.history.clock.now_us()
        self.history.add(rec)
        return rec

    def _fill(self, rec: dict, f: str, result) -> None:
        if f == "read":
            data, stat = result
            rec.update(read_value=data.decode(), version=stat.version, zxid=self.zk.last_zxid)
            self.seen_version[rec["key"]] = stat.version
        elif f in ("write", "cas"):
            rec.update(version=result.version, zxid=result.mzxid)
            self.seen_version[rec["key"]] = result.version
        elif f == "sync":
            rec.update(zxid=self.zk.last_zxid)
        elif f == "seq":
            rec.update(name=result.rsplit("/", 1)[1])

    def read(self, key: str) -> dict:
        return self._record("read", key, lambda: self.zk.get_async(key))

    def sync(self, key: str) -> dict:
        return self._record("sync", key, lambda: self.zk.sync_async(key))

    def step(self) -> None:
        self.n += 1
        key = self.rng.choice(self.keys)
        value = f"c{self.cid}-{self.n}"
        r = self.rng.random()
        if r < 0.45:
            self.read(key)
        elif r < 0.65:
            self._record("write", key, lambda: self.zk.set_async(key, value.encode(), -1), value=value)
        elif r < 0.85:
            v = self.seen_version[key]
            self._record("cas", key, lambda: self.zk.set_async(key, value.encode(), v),
                         value=value, expected_version=v)
        elif r < 0.92:
            self.sync(key)
        else:
            # Sequential creates: not a register; checked by checks.check_sequential.
            self._record("seq", "/seq", lambda: self.zk.create_async("/seq/s-", b"", sequence=True))

    def run(self) -> None:
        while not self.stop_ev.is_set():
            self.step()
            if not self.zk.connected:
                # Do not pile up doomed requests while the client reconnects.
                self.stop_ev.wait(0.2)

    def close(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass
