"""kazoo 2.11 recipes and basic API against the server under test (`target`).

Every test works under its own unique root path, so they all share one server. Clients are
separate KazooClient instances, hence separate sessions. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    LockTimeout,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    ReconfigDisabledError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, ZnodeStat
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
    make_digest_acl_credential,
)

from servers import die_with_parent

WAIT = 10.0  # generous bound for "should happen promptly"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
class Worker(threading.Thread):
    """Daemon thread that keeps its result or exception; join() is always bounded."""

    def __init__(self, fn, *args, name=None):
        super().__init__(daemon=True, name=name)
        self.fn, self.args = fn, args
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout=WAIT):
        self.join(timeout)
        assert not self.is_alive(), f"worker {self.name} still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result


def wait_until(pred, timeout=WAIT, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        if pred():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def nchildren(client, path) -> int:
    try:
        return len(client.get_children(path))
    except NoNodeError:
        return 0


def session_id(client) -> int:
    return client.client_id[0]


# ---------------------------------------------------------------------------------------
# Lock
# ---------------------------------------------------------------------------------------
def test_lock_mutual_exclusion(target, kazoo_client, unique_path):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/lock"
    state = {"holders": 0, "max": 0, "entries": []}
    guard = threading.Lock()

    def contender(i, client):
        lock = client.Lock(path, f"c{i}")
        for _ in range(3):
            assert lock.acquire(timeout=WAIT), f"c{i} could not acquire"
            try:
                with guard:
                    state["holders"] += 1
                    state["max"] = max(state["max"], state["holders"])
                    state["entries"].append(i)
                time.sleep(0.02)
                with guard:
                    state["holders"] -= 1
            finally:
                lock.release()

    workers = [Worker(contender, i, c, name=f"c{i}") for i, c in enumerate(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.finish(30)
    assert state["max"] == 1
    assert sorted(state["entries"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert clients[0].get_children(path) == []


def test_lock_fifo_order_and_contenders(target, kazoo_client, unique_path):
    a, b, c = (kazoo_client(target) for _ in range(3))
    path = unique_path + "/lock"
    la, lb, lc = a.Lock(path, "A"), b.Lock(path, "B"), c.Lock(path, "C")
    assert la.acquire(timeout=WAIT)
    order = []
    wb = Worker(lambda: (lb.acquire(timeout=WAIT * 2), order.append("B")), name="B")
    wb.start()
    wait_until(lambda: len(a.get_children(path)) == 2, what="B's contender node")
    wc = Worker(lambda: (lc.acquire(timeout=WAIT * 2), order.append("C")), name="C")
    wc.start()
    wait_until(lambda: len(a.get_children(path)) == 3, what="C's contender node")
    assert la.contenders() == ["A", "B", "C"]
    time.sleep(0.2)
    assert order == []
    la.release()
    wb.finish()
    assert order == ["B"]
    assert lb.contenders() == ["B", "C"]
    lb.release()
    wc.finish()
    assert order == ["B", "C"]
    lc.release()
    assert a.get_children(path) == []


def test_lock_released_when_holder_session_closes(target, kazoo_client, unique_path):
    a, b = kazoo_client(target), kazoo_client(target)
    path = unique_path + "/lock"
    assert a.Lock(path, "A").acquire(timeout=WAIT)
    lb = b.Lock(path, "B")
    with pytest.raises(LockTimeout):
        lb.acquire(timeout=0.3)
    w = Worker(lambda: lb.acquire(timeout=WAIT))
    w.start()
    wait_until(lambda: len(b.get_children(path)) == 2, what="B waiting")
    a.stop()  # closes the session: its ephemeral lock node goes away
    assert w.finish() is True
    assert lb.contenders() == ["B"]
    lb.release()


def test_semaphore_limits_holders(target, kazoo_client, unique_path):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/sem"
    sems = [c.Semaphore(path, identifier=f"s{i}", max_leases=2) for i, c in enumerate(clients)]
    assert sems[0].acquire(timeout=WAIT)
    assert sems[1].acquire(timeout=WAIT)
    with pytest.raises(LockTimeout):
        sems[2].acquire(timeout=0.5)
    assert sorted(sems[0].lease_holders()) == ["s0", "s1"]
    sems[0].release()
    assert sems[2].acquire(timeout=WAIT)
    assert sorted(sems[1].lease_holders()) == ["s1", "s2"]
    sems[1].release()
    sems[2].release()


# ---------------------------------------------------------------------------------------
# Election
# ---------------------------------------------------------------------------------------
def test_election_leader_and_successor(target, kazoo_client, unique_path):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/election"
    leaders = []
    release = {i: threading.Event() for i in range(3)}
    cond = threading.Lock()

    def lead(i):
        with cond:
            leaders.append(i)
        release[i].wait(WAIT * 3)

    def run(i):
        try:
            clients[i].Election(path, f"n{i}").run(lead, i)
        except Exception:
            # the leader's client is stopped under it: releasing its lock then fails
            if not clients[i].connected:
                return
            raise

    workers = []
    for i in range(3):
        workers.append(Worker(run, i, name=f"n{i}"))
        workers[-1].start()
        wait_until(lambda: nchildren(clients[0], path) == i + 1, what=f"n{i} enrolled")
    wait_until(lambda: len(leaders) == 1, what="a leader")
    assert leaders == [0]
    assert clients[1].Election(path).contenders() == ["n0", "n1", "n2"]
    time.sleep(0.2)
    assert leaders == [0]

    clients[0].stop()  # leader's session closes
    wait_until(lambda: len(leaders) == 2, what="the next leader")
    assert leaders == [0, 1]
    assert clients[2].Election(path).contenders() == ["n1", "n2"]

    release[1].set()  # leader 1 steps down voluntarily
    wait_until(lambda: len(leaders) == 3, what="the third leader")
    assert leaders == [0, 1, 2]
    release[2].set()
    release[0].set()
    for w in workers:
        w.finish()


# ---------------------------------------------------------------------------------------
# Barriers
# ---------------------------------------------------------------------------------------
def test_barrier(target, kazoo_client, unique_path):
    owner, w1, w2 = (kazoo_client(target) for _ in range(3))
    path = unique_path + "/barrier"
    owner.Barrier(path).create()
    assert w1.Barrier(path).wait(timeout=0.3) is False
    waiters = [Worker(c.Barrier(path).wait, WAIT) for c in (w1, w2)]
    for w in waiters:
        w.start()
    time.sleep(0.3)
    assert all(w.is_alive() for w in waiters)
    assert owner.Barrier(path).remove() is True
    assert [w.finish() for w in waiters] == [True, True]
    assert w1.Barrier(path).wait(timeout=0.3) is True  # no barrier: passes at once
    assert owner.Barrier(path).remove() is False


def test_double_barrier(target, kazoo_client, unique_path):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/dbarrier"
    entered = []
    left = []
    go_leave = threading.Event()

    def participant(i):
        b = clients[i].DoubleBarrier(path, 3, identifier=f"p{i}")
        b.enter()
        assert b.participating
        entered.append(i)
        go_leave.wait(WAIT)
        b.leave()
        left.append(i)

    workers = []
    for i in range(2):
        workers.append(Worker(participant, i))
        workers[-1].start()
    wait_until(lambda: nchildren(clients[0], path) == 2, what="two participants")
    time.sleep(0.3)
    assert entered == []  # only 2 of 3 arrived
    workers.append(Worker(participant, 2))
    workers[-1].start()
    wait_until(lambda: len(entered) == 3, what="all three entered")
    assert "ready" in clients[0].get_children(path)
    go_leave.set()
    for w in workers:
        w.finish()
    assert sorted(left) == [0, 1, 2]
    assert clients[0].get_children(path) == []


# ---------------------------------------------------------------------------------------
# Counter, queues, party
# ---------------------------------------------------------------------------------------
def test_counter_concurrent_increments(target, kazoo_client, unique_path):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/counter"
    n = 15

    def incr(client):
        counter = client.Counter(path)
        for _ in range(n):
            counter += 1

    workers = [Worker(incr, c) for c in clients]
    for w in workers:
        w.start()
    for w in workers:
        w.finish(60)
    counter = clients[0].Counter(path)
    assert counter.value == 3 * n
    data, stat = clients[0].get(path)
    assert data == str(3 * n).encode()
    assert stat.version == 3 * n  # exactly one successful versioned set per increment
    counter -= 5
    assert counter.value == 3 * n - 5
    fc = clients[1].Counter(unique_path + "/fcounter", default=0.5)
    fc += 2.25
    assert fc.value == 2.75


def test_queue_priority_and_concurrent_consumers(target, kazoo_client, unique_path):
    producer, c1, c2 = (kazoo_client(target) for _ in range(3))
    path = unique_path + "/queue"
    q = producer.Queue(path)
    q.put(b"low", priority=200)
    q.put(b"high", priority=10)
    q.put(b"mid-1")
    q.put(b"mid-2")
    assert len(q) == 4
    assert [q.get() for _ in range(4)] == [b"high", b"mid-1", b"mid-2", b"low"]
    assert q.get() is None

    items = [f"item-{i:02d}".encode() for i in range(30)]
    for it in items:
        q.put(it)
    got = {0: [], 1: []}

    def consume(i, client):
        cq = client.Queue(path)
        for _ in range(100):
            v = cq.get()
            if v is None:
                return
            got[i].append(v)

    ws = [Worker(consume, 0, c1), Worker(consume, 1, c2)]
    for w in ws:
        w.start()
    for w in ws:
        w.finish(30)
    assert sorted(got[0] + got[1]) == items  # each item exactly once
    assert got[0] == sorted(got[0]) and got[1] == sorted(got[1])
    assert len(q) == 0


def test_locking_queue(target, kazoo_client, unique_path):
    a, b = kazoo_client(target), kazoo_client(target)
    path = unique_path + "/lqueue"
    qa, qb = a.LockingQueue(path), b.LockingQueue(path)
    qa.put(b"one")
    qa.put_all([b"two", b"three"], priority=50)
    qa.put(b"urgent", priority=1)
    assert len(qa) == 4

    assert qa.get(timeout=WAIT) == b"urgent"
    assert qa.holds_lock()
    # b skips the entry a has locked
    assert qb.get(timeout=WAIT) == b"two"
    assert qb.release()  # back into the queue, unconsumed
    assert qa.consume()
    assert len(qa) == 3
    assert qb.get(timeout=WAIT) == b"two"
    assert qb.consume()
    assert qa.get(timeout=WAIT) == b"three"
    # a's session dies while holding "three": its lock (ephemeral) goes, the entry stays
    a.stop()
    assert qb.get(timeout=WAIT) == b"three"
    assert qb.consume()
    assert qb.get(timeout=WAIT) == b"one"
    assert qb.consume()
    assert len(qb) == 0
    assert qb.get(timeout=0.3) is None

    # a blocked get is woken by a put from another session
    w = Worker(qb.get, WAIT)
    w.start()
    time.sleep(0.2)
    c = kazoo_client(target)
    c.LockingQueue(path).put(b"late")
    assert w.finish() == b"late"
    assert qb.consume()


@pytest.mark.parametrize("kind", ["Party", "ShallowParty"])
def test_party(target, kazoo_client, unique_path, kind):
    clients = [kazoo_client(target) for _ in range(3)]
    path = unique_path + "/party"
    parties = [getattr(c, kind)(path, f"member-{i}") for i, c in enumerate(clients)]
    for p in parties:
        p.join()
    watcher = getattr(clients[0], kind)(path)
    assert len(watcher) == 3
    assert sorted(watcher) == ["member-0", "member-1", "member-2"]
    parties[1].leave()
    assert sorted(watcher) == ["member-0", "member-2"]
    clients[2].stop()  # ephemeral membership ends with the session
    assert list(watcher) == ["member-0"]
    parties[0].leave()
    assert len(watcher) == 0


# ---------------------------------------------------------------------------------------
# Watch recipes
# ---------------------------------------------------------------------------------------
def test_data_watch_sequence(target, kazoo_client, unique_path):
    watcher, writer = kazoo_client(target), kazoo_client(target)
    writer.ensure_path(unique_path)
    path = unique_path + "/dw"
    seen = []
    lock = threading.Condition()

    @watcher.DataWatch(path)
    def _cb(data, stat, event):
        with lock:
            seen.append((data, None if stat is None else stat.version,
                         None if event is None else event.type))
            lock.notify_all()

    def expect(n):
        with lock:
            assert lock.wait_for(lambda: len(seen) >= n, WAIT), f"saw only {seen}"

    expect(1)
    writer.create(path, b"v0")
    expect(2)
    writer.set(path, b"v1")
    expect(3)
    writer.set(path, b"v2")
    expect(4)
    writer.delete(path)
    expect(5)
    writer.create(path, b"again")
    expect(6)
    time.sleep(0.2)
    assert seen == [
        (None, None, None),
        (b"v0", 0, EventType.CREATED),
        (b"v1", 1, EventType.CHANGED),
        (b"v2", 2, EventType.CHANGED),
        (None, None, EventType.DELETED),
        (b"again", 0, EventType.CREATED),
    ]


def test_children_watch_sequence(target, kazoo_client, unique_path):
    watcher, writer = kazoo_client(target), kazoo_client(target)
    path = unique_path + "/cw"
    writer.ensure_path(path)
    seen = []
    lock = threading.Condition()

    @watcher.ChildrenWatch(path, send_event=True)
    def _cb(children, event):
        with lock:
            seen.append((sorted(children), None if event is None else event.type))
            lock.notify_all()

    def expect(n):
        with lock:
            assert lock.wait_for(lambda: len(seen) >= n, WAIT), f"saw only {seen}"

    expect(1)
    writer.create(path + "/a")
    expect(2)
    writer.create(path + "/b", ephemeral=True)
    expect(3)
    writer.set(path + "/a", b"data changes are not child events")
    writer.delete(path + "/a")
    expect(4)
    writer.stop()  # the ephemeral /b goes with the session
    expect(5)
    time.sleep(0.2)
    assert seen == [
        ([], None),
        (["a"], EventType.CHILD),
        (["a", "b"], EventType.CHILD),
        (["b"], EventType.CHILD),
        ([], EventType.CHILD),
    ]


# ---------------------------------------------------------------------------------------
# Transactions (multi)
# ---------------------------------------------------------------------------------------
def test_transaction_commit(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    c.create(unique_path, b"root")
    c.create(unique_path + "/old", b"x")
    t = c.transaction()
    t.create(unique_path + "/new", b"n")
    t.create(unique_path + "/seq-", b"s", sequence=True)
    t.set_data(unique_path, b"root2", version=0)
    t.check(unique_path + "/old", 0)
    t.delete(unique_path + "/old", version=0)
    results = t.commit()
    assert results[0] == unique_path + "/new"
    assert results[1] == unique_path + "/seq-0000000002"
    assert isinstance(results[2], ZnodeStat)
    assert results[2].version == 1 and results[2].dataLength == 5
    assert results[3:] == [True, True]
    assert sorted(c.get_children(unique_path)) == ["new", "seq-0000000002"]
    data, stat = c.get(unique_path)
    assert data == b"root2"
    # every op of one multi shares one zxid
    assert stat.mzxid == c.exists(unique_path + "/new").czxid == stat.pzxid
    assert c.transaction().commit() == []


def test_transaction_failure_is_atomic(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    c.create(unique_path, b"root")
    before = c.get(unique_path)
    t = c.transaction()
    t.create(unique_path + "/a", b"1")
    t.set_data(unique_path, b"changed")
    t.check(unique_path, 0)  # fails: the set above bumped the version to 1
    t.delete(unique_path + "/a")
    t.create(unique_path + "/b")
    results = t.commit()
    assert [type(r) for r in results] == [
        RolledBackError, RolledBackError, BadVersionError, RuntimeInconsistency,
        RuntimeInconsistency]
    assert c.get_children(unique_path) == []
    assert c.get(unique_path) == before

    t = c.transaction()
    t.create(unique_path + "/dup")
    t.create(unique_path + "/dup")
    assert [type(r) for r in t.commit()] == [RolledBackError, NodeExistsError]
    t = c.transaction()
    t.delete(unique_path + "/missing")
    t.create(unique_path + "/x")
    assert [type(r) for r in t.commit()] == [NoNodeError, RuntimeInconsistency]
    t = c.transaction()
    t.create(unique_path + "/y")
    t.delete(unique_path)  # not empty, because of /y created in the same multi
    assert [type(r) for r in t.commit()] == [RolledBackError, NotEmptyError]
    assert c.get_children(unique_path) == []


# ---------------------------------------------------------------------------------------
# Basic API
# ---------------------------------------------------------------------------------------
def test_create_modes_and_sequence_names(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    assert c.create(unique_path, b"r") == unique_path
    p = unique_path
    assert c.create(p + "/pers", b"d") == p + "/pers"
    assert c.create(p + "/eph", b"e", ephemeral=True) == p + "/eph"
    assert c.create(p + "/s-", sequence=True) == p + "/s-0000000002"
    assert c.create(p + "/es-", ephemeral=True, sequence=True) == p + "/es-0000000003"
    assert c.create(p + "/s-", sequence=True) == p + "/s-0000000004"
    c.delete(p + "/s-0000000004")
    nxt = c.create(p + "/s-", sequence=True)
    assert nxt > p + "/s-0000000004"  # never reused, always increasing
    # sequence suffix directly after the parent's slash
    assert c.create(p + "/pers/", sequence=True) == p + "/pers/0000000000"
    path, stat = c.create(p + "/with-stat", b"abc", include_data=True)
    assert path == p + "/with-stat"
    assert (stat.version, stat.cversion, stat.aversion, stat.dataLength,
            stat.numChildren, stat.ephemeralOwner) == (0, 0, 0, 3, 0, 0)
    assert stat.czxid == stat.mzxid == stat.pzxid and stat.ctime == stat.mtime > 0

    assert c.exists(p + "/eph").ephemeralOwner == session_id(c)
    assert c.exists(p + "/es-0000000003").ephemeralOwner == session_id(c)
    assert c.exists(p + "/pers").ephemeralOwner == 0
    with pytest.raises(NodeExistsError):
        c.create(p + "/pers")
    with pytest.raises(NoNodeError):
        c.create(p + "/missing/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        c.create(p + "/eph/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        c.create(p + "/eph/child", sequence=True)
    assert c.create(p + "/deep/er/path", b"x", makepath=True) == p + "/deep/er/path"
    assert c.get(p + "/deep/er") == (b"", c.exists(p + "/deep/er"))
    root_stat = c.exists(p)
    assert root_stat.numChildren == len(c.get_children(p))


def test_get_set_delete_with_versions(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    p = unique_path
    c.create(p, b"v0")
    data, stat = c.get(p)
    assert data == b"v0" and stat.version == 0 and stat.dataLength == 2
    s1 = c.set(p, b"v1", version=0)
    assert s1.version == 1 and s1.mzxid > stat.mzxid and s1.czxid == stat.czxid
    assert s1.mtime >= stat.mtime and s1.ctime == stat.ctime
    with pytest.raises(BadVersionError):
        c.set(p, b"nope", version=0)
    assert c.set(p, b"", version=-1).version == 2
    assert c.get(p)[0] == b""
    big = os.urandom(100_000)
    assert c.set(p, big).dataLength == len(big)
    assert c.get(p)[0] == big
    with pytest.raises(NoNodeError):
        c.set(p + "/missing", b"x")
    with pytest.raises(NoNodeError):
        c.get(p + "/missing")
    c.create(p + "/child")
    with pytest.raises(NotEmptyError):
        c.delete(p)
    with pytest.raises(BadVersionError):
        c.delete(p + "/child", version=5)
    c.delete(p + "/child", version=0)
    with pytest.raises(NoNodeError):
        c.delete(p + "/child")
    with pytest.raises(BadVersionError):
        c.delete(p, version=1)
    c.delete(p, version=3)
    assert c.exists(p) is None
    with pytest.raises(BadArgumentsError):
        c.delete("/")


def test_parent_stat_bookkeeping(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    p = unique_path
    c.create(p)
    s0 = c.exists(p)
    c.create(p + "/a")
    s1 = c.exists(p)
    assert (s1.cversion, s1.numChildren) == (1, 1)
    assert s1.pzxid == c.exists(p + "/a").czxid
    assert s1.mzxid == s0.mzxid and s1.version == 0  # children do not touch data
    c.set(p + "/a", b"x")
    assert c.exists(p).pzxid == s1.pzxid  # data change of a child: no pzxid change
    c.delete(p + "/a")
    s2 = c.exists(p)
    assert (s2.cversion, s2.numChildren) == (2, 0)
    assert s2.pzxid > s1.pzxid


def test_exists_and_get_watches(target, kazoo_client, unique_path):
    c, w = kazoo_client(target), kazoo_client(target)
    c.ensure_path(unique_path)
    p = unique_path + "/n"
    events = []
    got = threading.Event()

    def cb(ev):
        events.append((ev.type, ev.path))
        got.set()

    assert w.exists(p, watch=cb) is None
    c.create(p, b"1")
    assert got.wait(WAIT)
    got.clear()
    w.get(p, watch=cb)
    c.set(p, b"2")
    assert got.wait(WAIT)
    got.clear()
    c.set(p, b"3")  # watch is one-shot: no event
    w.exists(p, watch=cb)
    c.delete(p)
    assert got.wait(WAIT)
    time.sleep(0.2)
    assert events == [(EventType.CREATED, p), (EventType.CHANGED, p), (EventType.DELETED, p)]


def test_get_children_with_stat_and_watch(target, kazoo_client, unique_path):
    c, w = kazoo_client(target), kazoo_client(target)
    p = unique_path
    c.create(p, b"xyz")
    for name in ("b", "a", "c"):
        c.create(f"{p}/{name}")
    children, stat = c.get_children(p, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert stat == c.exists(p)
    assert stat.numChildren == 3 and stat.cversion == 3 and stat.dataLength == 3
    got = threading.Event()
    events = []

    def cb(ev):
        events.append((ev.type, ev.path))
        got.set()

    w.get_children(p, watch=cb)
    c.set(p, b"data change: no child event")
    c.create(p + "/d")
    assert got.wait(WAIT)
    time.sleep(0.1)
    assert events == [(EventType.CHILD, p)]
    with pytest.raises(NoNodeError):
        c.get_children(p + "/missing")
    assert c.get_children(p + "/a") == []


def test_ensure_path_and_sync(target, kazoo_client, unique_path):
    c, other = kazoo_client(target), kazoo_client(target)
    assert c.ensure_path(unique_path + "/x/y/z")
    assert c.ensure_path(unique_path + "/x/y/z")  # idempotent
    assert c.exists(unique_path + "/x/y/z") is not None
    other.set(unique_path + "/x", b"fresh")
    assert c.sync(unique_path + "/x") == unique_path + "/x"
    assert c.get(unique_path + "/x")[0] == b"fresh"
    assert c.sync(unique_path + "/does-not-exist") == unique_path + "/does-not-exist"


def test_acls_digest_auth(target, kazoo_client, unique_path):
    owner = kazoo_client(target, auth_data=[("digest", "alice:secret")])
    anon = kazoo_client(target)
    bob = kazoo_client(target)
    bob.add_auth("digest", "bob:pw")
    p = unique_path
    owner.create(p)

    alice_all = make_digest_acl("alice", "secret", all=True)
    assert alice_all.id.id == make_digest_acl_credential("alice", "secret")
    owner.create(p + "/secret", b"s3cr3t", acl=[alice_all])
    assert owner.get(p + "/secret")[0] == b"s3cr3t"
    with pytest.raises(NoAuthError):
        anon.get(p + "/secret")
    with pytest.raises(NoAuthError):
        bob.set(p + "/secret", b"x")
    with pytest.raises(NoAuthError):
        anon.create(p + "/secret/child")
    assert anon.exists(p + "/secret") is not None  # exists is not ACL-checked
    with pytest.raises(NoAuthError):  # getACL is: it needs READ or ADMIN
        anon.get_acls(p + "/secret")
    acls, stat = owner.get_acls(p + "/secret")
    assert acls == [alice_all] and stat.aversion == 0
    anon.delete(p + "/secret")  # delete needs DELETE on the parent only
    assert owner.exists(p + "/secret") is None

    # read-only node
    owner.create(p + "/ro", b"r", acl=READ_ACL_UNSAFE)
    assert anon.get(p + "/ro")[0] == b"r"
    with pytest.raises(NoAuthError):
        anon.set(p + "/ro", b"w")

    # CREATOR_ALL_ACL: needs an authenticated creator, expands to its identity
    with pytest.raises(InvalidACLError):
        anon.create(p + "/creator", acl=CREATOR_ALL_ACL)
    bob.create(p + "/creator", b"b", acl=CREATOR_ALL_ACL)
    acls, _ = bob.get_acls(p + "/creator")
    assert acls == [ACL(Permissions.ALL, Id("digest", make_digest_acl_credential("bob", "pw")))]
    with pytest.raises(NoAuthError):
        owner.get(p + "/creator")

    # selective permissions: read + write but no delete on children
    rw = make_digest_acl("alice", "secret", read=True, write=True, create=True)
    owner.create(p + "/rw", acl=[rw])
    owner.create(p + "/rw/kid")
    with pytest.raises(NoAuthError):
        owner.delete(p + "/rw/kid")


def test_get_set_acls_versions(target, kazoo_client, unique_path):
    c, other = kazoo_client(target), kazoo_client(target)
    p = unique_path
    c.create(p, b"x")
    c.create(p + "/open")
    acls, stat = c.get_acls(p)
    assert acls == OPEN_ACL_UNSAFE
    assert (acls[0].perms, acls[0].id.scheme, acls[0].id.id) == (31, "world", "anyone")
    assert stat == c.exists(p)
    with pytest.raises(BadVersionError):
        c.set_acls(p, READ_ACL_UNSAFE, version=1)
    s1 = c.set_acls(p, READ_ACL_UNSAFE, version=0)
    assert s1.aversion == 1 and s1.version == 0 and s1.mzxid == stat.mzxid
    assert c.get_acls(p)[0] == READ_ACL_UNSAFE
    with pytest.raises(NoAuthError):
        other.set(p, b"y")
    # set_acls needs ADMIN, which READ_ACL_UNSAFE lacks; the permission check comes
    # before the version check (a wrong version still answers NoAuth)
    with pytest.raises(NoAuthError):
        c.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    with pytest.raises(NoAuthError):
        c.set_acls(p, OPEN_ACL_UNSAFE)
    with pytest.raises(NoNodeError):
        c.get_acls(p + "/missing")
    with pytest.raises(InvalidACLError):
        c.set_acls(p + "/open", [])
    with pytest.raises(InvalidACLError):
        c.set_acls(p + "/open", [ACL(31, Id("nosuchscheme", "x"))])
    s = c.set_acls(p + "/open", [make_digest_acl("u", "p", all=True)], version=-1)
    assert s.aversion == 1


def test_reconfig_is_disabled(target, kazoo_client):
    c = kazoo_client(target)
    before = c.get("/zookeeper/config")
    with pytest.raises(ReconfigDisabledError):
        c.reconfig(joining=None, leaving="1", new_members=None)
    with pytest.raises(ReconfigDisabledError):
        c.reconfig(joining="server.9=127.0.0.1:2888:3888;2181", leaving=None,
                   new_members=None)
    assert c.get("/zookeeper/config") == before


def test_zookeeper_system_nodes(target, kazoo_client):
    c = kazoo_client(target)
    assert {"zookeeper"} <= set(c.get_children("/"))
    assert sorted(c.get_children("/zookeeper")) == ["config", "quota"]
    assert c.get_acls("/")[0] == OPEN_ACL_UNSAFE
    with pytest.raises(BadArgumentsError):
        c.delete("/zookeeper")


# ---------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------
_CHILD = r"""
import sys, time
from kazoo.client import KazooClient
c = KazooClient(hosts=sys.argv[1], timeout=float(sys.argv[3]))
c.start(timeout=15)
c.create(sys.argv[2], b"mine", ephemeral=True)
print("%d %d" % (c.client_id[0], c._session_timeout), flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_session_expires_when_client_vanishes(target, kazoo_client, unique_path):
    """A client process is SIGKILLed (no closeSession): its ephemeral survives a while,
    then disappears once the session times out, firing the watch of another session."""
    observer = kazoo_client(target)
    observer.ensure_path(unique_path)
    eph = unique_path + "/eph"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, target.host_port, eph, "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent)
    try:
        line = proc.stdout.readline()
        assert line, f"child failed: {proc.stderr.read() if proc.poll() is not None else ''}"
        sid, negotiated = (int(x) for x in line.split())
        assert negotiated == 4000  # 2 x tickTime, the minimum
        stat = observer.exists(eph)
        assert stat is not None and stat.ephemeralOwner == sid
        deleted = threading.Event()
        observer.exists(eph, watch=lambda ev: ev.type == EventType.DELETED and deleted.set())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(1.0)
        assert observer.exists(eph) is not None, "ephemeral vanished long before the timeout"
        assert deleted.wait(4.0 + 6.0), "ephemeral outlived its session timeout + 6 s"
        elapsed = time.monotonic() - t0
        assert observer.exists(eph) is None
        assert 2.0 <= elapsed <= 10.0, elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


class Proxy:
    """A TCP proxy 127.0.0.1:<port> -> server that can cut every connection and refuse
    new ones (``down()``) and accept again (``up()``). Bounded: it stops when closed."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.accepting = True
        self.closed = False
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def host_port(self):
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self):
        deadline = time.monotonic() + 300
        while not self.closed and time.monotonic() < deadline:
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            if not self.accepting:
                s.close()
                continue
            try:
                u = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                s.close()
                continue
            with self.lock:
                self.conns += [s, u]
            for a, b in ((s, u), (u, s)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        a.settimeout(None)
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        self.accepting = False
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def up(self):
        self.accepting = True

    def close(self):
        self.down()
        self.closed = True
        self.lsock.close()
        self.thread.join(2)


@pytest.mark.slow
def test_session_survives_short_disconnect_and_expires_after_long_one(target, kazoo_client,
                                                                      unique_path):
    """Through a proxy: a cut shorter than the session timeout resumes the same session
    (ephemeral kept); a cut longer than the timeout makes the server refuse the old session
    on reconnect (kazoo: LOST, then a new session).

    kazoo 2.11 never sends SetWatches: on a disconnect it drops its watchers, calling them
    with a NONE event, so watch re-registration cannot be tested with it."""
    observer = kazoo_client(target)
    observer.ensure_path(unique_path)
    proxy = Proxy(target.port)
    try:
        states = []
        c = KazooClient(hosts=proxy.host_port, timeout=4.0,
                        connection_retry={"max_tries": -1, "delay": 0.2, "max_delay": 0.5})
        c.add_listener(lambda st: states.append(st))
        c.start(timeout=15)
        try:
            sid = session_id(c)
            eph = unique_path + "/eph"
            c.create(eph, b"x", ephemeral=True)
            fired = threading.Event()
            events = []
            c.exists(unique_path + "/later", watch=lambda ev: (events.append(ev), fired.set()))

            proxy.down()
            wait_until(lambda: KazooState.SUSPENDED in states, what="SUSPENDED")
            observer.create(unique_path + "/later")  # while c is disconnected
            time.sleep(0.5)
            proxy.up()
            wait_until(lambda: c.connected, what="reconnect")
            assert session_id(c) == sid
            assert fired.wait(WAIT)
            assert [(e.type, e.path) for e in events] == [(EventType.NONE, None)]
            assert observer.exists(eph).ephemeralOwner == sid
            assert c.exists(unique_path + "/later") is not None
            assert c.get(eph)[0] == b"x"
            assert KazooState.LOST not in states

            proxy.down()
            deleted = threading.Event()
            observer.exists(eph, watch=lambda ev: deleted.set())
            assert deleted.wait(4.0 + 6.0), "ephemeral outlived its session"
            proxy.up()
            wait_until(lambda: KazooState.LOST in states, what="LOST after expiry")
            wait_until(lambda: c.connected, what="new session")
            assert session_id(c) != sid
        finally:
            c.stop()
            c.close()
    finally:
        proxy.close()
