"""The recipe workloads: ephemeral-sequential locks and persistent watches (issue 16).

Both run beside the register clients of ``workload.py``, in the same process, on the same
clock, each client with its own kazoo session connected to every server (its own first).
What they record (``history.jsonl``; the linearizability checker skips these record types):

``{"type": "lock", ...}``, one per acquisition attempt (``LockClient``)
    ``client``, ``lock`` (``/locks/a``), ``attempt``, ``invoke`` (before the create),
    ``node`` and ``seq`` (the lock node's name and its sequence number), ``session`` (the
    node's ``ephemeralOwner`` as the server returned it with Create2: the server's own record
    of whose node it is), ``granted_read`` (invocation of the getChildren that showed the
    node lowest), ``complete`` (acquired; null if not), ``outcome`` (``ok``, or ``abandoned``
    with ``error``: timeout, connection trouble while waiting, node gone), ``writes`` (the
    guarded writes made while holding: invoke, complete, outcome ``ok`` / ``fenced`` /
    ``unknown``, the owner node's version and mzxid), ``release`` (invocation of the delete
    of the lock node; null if never) and ``release_outcome``.
``{"type": "state", "role": "lock"|"watch", "client": ..., "state": "SUSPENDED"|"LOST"|"CONNECTED"|"CLOSED", "t", "session"}``
    Every connection-state change of a lock or watch client, from kazoo's state listener
    (called in kazoo's connection thread as it happens). ``session``: the session the change
    is about (for LOST, the one that was lost). CLOSED: the harness closed the client at the end.
``{"type": "watch", "watcher", "conn", "n", "t", "what", ...}`` (``Watcher``)
    What one watcher's connection delivered, in the exact order it came off the socket
    (``n`` counts per watcher): ``connected`` (a new TCP connection with ``session``),
    ``added`` (the reply to addWatch PERSISTENT on ``key``), ``event`` (a notification:
    ``key``, ``event``), ``read`` (the reply to a getData of ``key``: ``version``, and
    ``phase``).

The lock recipe (ZooKeeper's, written out here rather than kazoo's ``Lock`` so every step is
recorded): create an ephemeral sequential node ``c<client>-a<attempt>-NNNNNNNNNN`` under the
lock; list the children; lowest number holds the lock; otherwise watch the next lower node
(exists with a watch, re-listing at least every 0.5 s since kazoo does not re-set watches
after a reconnect) and list again. A client that sees SUSPENDED or LOST while waiting abandons
the attempt (deletes its node when it can); one that sees either while holding stops acting as
holder at once (no more guarded writes) and releases when it can. Holding lasts 20-200 ms,
with a guarded write at its start and end: a multi of check(own lock node, version 0) and
setData(``<lock>-owner``), so the write happens only while the node, and so the lock, is ours.

The watcher: one kazoo session; on every new connection it adds a PERSISTENT watch (opcode 106,
ZooKeeper 3.6+; kazoo 2.11 has no call for it, so ``AddWatch`` below is the request) on every
register, then reads each; then reads each register every 0.5 s. kazoo never sends setWatches,
so a reconnect loses the server's watches: the watcher adds them again and reads again. To
record events and replies in socket order, three methods of this client's kazoo connection
handler are wrapped (``_connect``, ``_read_watch_event``, ``_read_response``; kazoo calls them
in its connection thread as each message is read). Notifications carry no zxid here (the
reply header's zxid is -1 in ZooKeeper 3.8 and in Warren), so nothing depends on it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.protocol.serialization import GetData, Watch, int_struct, write_string
from kazoo.protocol.states import KazooState

from workload import History, session_hex

LOCKS = ("/locks/a", "/locks/b")
ACQUIRE_TIMEOUT_S = 6.0
PERSISTENT = 0  # AddWatchMode.PERSISTENT


class AddWatch(namedtuple("AddWatch", "path mode")):
    """ZooKeeper's addWatch request (OpCode.addWatch = 106): path, mode. The reply has no body."""

    type = 106

    def serialize(self):
        b = bytearray(write_string(self.path))
        b.extend(int_struct.pack(self.mode))
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        return True


def owner_path(lock: str) -> str:
    return lock + "-owner"


def seq_of(name: str) -> int:
    return int(name[-10:])


class StateRecorder:
    """kazoo state listener that records every change with the session it concerns."""

    def __init__(self, zk: KazooClient, history: History, role: str, client: int):
        self.zk, self.history, self.role, self.client = zk, history, role, client
        self.session = None  # the session of the last CONNECTED
        self.epoch = 0  # bumped on every SUSPENDED / LOST
        self.closing = False  # set by close(): the LOST that follows is recorded as CLOSED
        zk.add_listener(self)

    def __call__(self, state) -> None:
        if state == KazooState.CONNECTED:
            self.session = session_hex(self.zk, 0)
        else:
            self.epoch += 1
        name = "CLOSED" if self.closing and state == KazooState.LOST else str(state)
        self.history.event("state", role=self.role, client=self.client, state=name, session=self.session)


class LockClient(threading.Thread):
    def __init__(self, cid: int, hosts: str, history: History, seed: int, session_timeout: float,
                 op_timeout: float, stop: threading.Event):
        super().__init__(name=f"lock-{cid}", daemon=True)
        self.cid, self.history, self.op_timeout, self.stop_ev = cid, history, op_timeout, stop
        self.rng = random.Random(seed)
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout, randomize_hosts=False,
                              connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0})
        self.states = StateRecorder(self.zk, history, "lock", cid)
        self.attempt = 0
        self.granted_epoch = 0  # the state epoch at the last grant: holding ends when it moves on

    def now(self) -> int:
        return self.history.clock.now_us()

    def start_session(self, timeout: float) -> None:
        self.zk.start(timeout=timeout)

    def call(self, async_result):
        return async_result.get(timeout=self.op_timeout)

    def run(self) -> None:
        while not self.stop_ev.is_set():
            lock = self.rng.choice(LOCKS)
            try:
                rec = self.acquire(lock)
                if rec is not None:
                    self.hold(rec)
            except Exception:
                pass  # recorded in the attempt's record; go on with the next attempt
            if not self.zk.connected:
                self.stop_ev.wait(0.2)
            self.stop_ev.wait(self.rng.uniform(0.0, 0.05))

    def acquire(self, lock: str) -> dict | None:
        self.attempt += 1
        prefix = f"c{self.cid}-a{self.attempt}-"
        epoch = self.states.epoch
        rec = {"type": "lock", "client": self.cid, "lock": lock, "attempt": self.attempt,
               "session": None, "invoke": self.now(), "complete": None, "outcome": "abandoned",
               "release": None, "writes": []}
        self.history.add(rec)
        try:
            path, stat = self.call(self.zk.create_async(f"{lock}/{prefix}", b"", ephemeral=True,
                                                        sequence=True, include_data=True))
            rec.update(node=path.rsplit("/", 1)[1], seq=seq_of(path), session=hex(stat.ephemeralOwner))
            deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
            while True:
                if self.states.epoch != epoch:
                    raise RuntimeError("connection lost while waiting")
                if self.stop_ev.is_set() or time.monotonic() > deadline:
                    raise RuntimeError("timeout")
                read_at = self.now()
                children = self.call(self.zk.get_children_async(lock))
                if rec["node"] not in children:
                    raise RuntimeError("lock node gone")
                for c in children:  # our own nodes left by abandoned attempts
                    if c.startswith(f"c{self.cid}-") and c != rec["node"]:
                        self.zk.delete_async(f"{lock}/{c}")
                lower = sorted((seq_of(c), c) for c in children if seq_of(c) < rec["seq"])
                if not lower:
                    break
                woke = threading.Event()
                if self.call(self.zk.exists_async(f"{lock}/{lower[-1][1]}", watch=lambda e: woke.set())):
                    woke.wait(0.5)
            rec["granted_read"] = read_at
            rec["complete"] = self.now()
            rec["outcome"] = "ok"
            self.granted_epoch = epoch
            return rec
        except Exception as e:
            rec["error"] = str(e) or type(e).__name__
            rec["error_at"] = self.now()
            self.cleanup(lock)
            return None

    def guarded_write(self, rec: dict, i: int) -> None:
        w = {"invoke": self.now(), "complete": None, "outcome": "unknown"}
        rec["writes"].append(w)
        t = self.zk.transaction()
        t.check(f"{rec['lock']}/{rec['node']}", 0)
        t.set_data(owner_path(rec["lock"]), f"c{self.cid}-a{rec['attempt']}-w{i}".encode())
        try:
            results = self.call(t.commit_async())
        except Exception as e:
            w["error"] = type(e).__name__
            return
        w["complete"] = self.now()
        if any(isinstance(r, Exception) for r in results):
            w["outcome"] = "fenced"  # our lock node is gone (or the check failed): not ours
            w["error"] = " ".join(type(r).__name__ for r in results)
        else:
            w.update(outcome="ok", version=results[1].version, zxid=results[1].mzxid)

    def hold(self, rec: dict) -> None:
        until = time.monotonic() + self.rng.uniform(0.02, 0.2)
        for i in range(2):
            if self.states.epoch != self.granted_epoch:
                break  # SUSPENDED or LOST: not the holder any more
            self.guarded_write(rec, i)
            if i == 0:
                time.sleep(max(0.0, until - time.monotonic()))
        self.release(rec)

    def release(self, rec: dict) -> None:
        rec["release"] = self.now()
        try:
            self.call(self.zk.delete_async(f"{rec['lock']}/{rec['node']}"))
            rec["release_outcome"] = "ok"
            rec["release_complete"] = self.now()
        except Exception as e:
            rec["release_outcome"] = type(e).__name__
            self.cleanup(rec["lock"])

    def cleanup(self, lock: str) -> None:
        """Deletes this client's nodes under ``lock`` (an abandoned attempt's, a failed
        release's), retrying while the session lasts; after an expiry they are gone anyway."""
        session = self.zk._session_id
        for _ in range(20):
            if self.stop_ev.is_set() or self.zk._session_id != session:
                return
            try:
                for c in self.call(self.zk.get_children_async(lock)):
                    if c.startswith(f"c{self.cid}-"):
                        try:
                            self.call(self.zk.delete_async(f"{lock}/{c}"))
                        except Exception as e:
                            if type(e).__name__ != "NoNodeError":
                                raise
                return
            except Exception:
                self.stop_ev.wait(0.2)

    def close(self) -> None:
        self.states.closing = True
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass


class Watcher(threading.Thread):
    def __init__(self, wid: int, hosts: str, keys: list[str], history: History,
                 session_timeout: float, op_timeout: float, stop: threading.Event):
        super().__init__(name=f"watcher-{wid}", daemon=True)
        self.wid, self.keys, self.history, self.op_timeout, self.stop_ev = wid, keys, history, op_timeout, stop
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout, randomize_hosts=False,
                              connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0})
        self.states = StateRecorder(self.zk, history, "watch", wid)
        self.conn = 0  # connections so far; touched only in kazoo's connection thread
        self.n = 0
        self.armed_conn = None  # the connection on which every key's watch was added
        self.phase = "main"
        self.final = threading.Event()  # final phase: no more periodic reads
        self.known: dict[str, int] = {}  # last read + events since, on the current connection
        self._hook(self.zk._connection)

    def _record(self, what: str, **fields) -> None:
        self.n += 1
        self.history.event("watch", watcher=self.wid, conn=self.conn, n=self.n, what=what, **fields)

    def _hook(self, conn) -> None:
        """Wraps the connection handler's per-message methods (see the module docstring)."""
        connect, read_event, read_response = conn._connect, conn._read_watch_event, conn._read_response
        client = self.zk

        def _connect(*args, **kwargs):
            result = connect(*args, **kwargs)
            self.conn += 1
            self.known = {}
            self._record("connected", session=session_hex(client, 0))
            return result

        def _read_watch_event(buffer, offset):
            watch, _ = Watch.deserialize(buffer, offset)
            kind = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}
            if watch.path in self.known:
                self.known[watch.path] += 1
            self._record("event", key=watch.path, event=kind.get(watch.type, str(watch.type)))
            return read_event(buffer, offset)

        def _read_response(header, buffer, offset):
            request, async_object = (client._pending[0][:2] if client._pending else (None, None))
            result = read_response(header, buffer, offset)
            if header.err == 0 and isinstance(request, AddWatch):
                self._record("added", key=request.path)
            elif header.err == 0 and isinstance(request, GetData) and request.path in self.keys:
                version = async_object.value[1].version
                self.known[request.path] = version
                self._record("read", key=request.path, version=version, phase=self.phase)
            return result

        conn._connect, conn._read_watch_event, conn._read_response = _connect, _read_watch_event, _read_response

    def start_session(self, timeout: float) -> None:
        self.zk.start(timeout=timeout)

    def add_watch(self, path: str):
        result = self.zk.handler.async_result()
        self.zk._call(AddWatch(path, PERSISTENT), result)
        return result

    def run(self) -> None:
        while not self.stop_ev.is_set():
            try:
                conn = self.conn
                if self.armed_conn != conn:
                    for k in self.keys:
                        self.add_watch(k).get(timeout=self.op_timeout)
                    for k in self.keys:
                        self.zk.get_async(k).get(timeout=self.op_timeout)
                    self.armed_conn = conn
                elif not self.final.is_set():
                    for k in self.keys:
                        self.zk.get_async(k).get(timeout=self.op_timeout)
            except Exception:
                pass
            self.stop_ev.wait(0.5 if self.zk.connected else 0.2)

    def wait_final(self, versions: dict[str, int], timeout: float) -> None:
        """Final phase: no periodic reads; wait until the events (or the reads of a fresh
        connection) have brought the watcher to ``versions``, or ``timeout``."""
        self.phase = "final"
        self.final.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.armed_conn == self.conn and all(self.known.get(k) == v for k, v in versions.items()):
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.states.closing = True
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass
