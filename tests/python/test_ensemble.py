"""Black-box ensemble tests with real processes: leader election, replication, leader crash
under load, DIFF / SNAP / TRUNC catch-up, quorum loss, network partition, observers, client
sessions and recipes across a leader kill, recovery latency.

Every test runs against each system in WARREN_ENSEMBLE_SYSTEMS (default
``zookeeper,warren``): Apache ZooKeeper 3.8 validates the tests, Warren is the system under
test. A system that cannot be started (no binary) fails, it is never skipped. Ensembles are
configured exactly like ZooKeeper ensembles (see ``ensemble.py``): ``server.N`` lines,
``myid`` in dataDir, ``peerType=observer`` for observers, tickTime 1000, initLimit 10,
syncLimit 5; roles are read from ``srvr`` (``Mode: leader|follower|observer``).

One ensemble runs at a time; all ports are 127.0.0.1:23000-23999; every process is killed
by pid at teardown (and dies with the test process anyway).

Per-system expectations that Warren's implementers may need to adjust live in tables:
``ensemble.SYNC_LOG_PATTERNS`` (what a leader logs per sync kind),
``ensemble.diff_window_settings`` (``warren.diffWindow``) and ``SYNC_KIND_AFTER_NEW_EPOCH``
below.

    WARREN_ENSEMBLE_SYSTEMS=zookeeper python3 -m pytest tests/python/test_ensemble.py -q
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import threading
import time

import pytest
from kazoo.client import KazooState

from ensemble import (
    DIFF_WINDOW,
    Ensemble,
    EnsembleError,
    check_system_available,
    diff_window_settings,
    kill_leader_under_write_load,
    listening_ports,
    names,
    parse_mode,
    selected_systems,
    wait_for,
    works,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEMS = selected_systems()

# After a server that holds a transaction nobody else committed rejoins a leader that has
# already committed transactions of a newer epoch, ZooKeeper 3.8 cannot TRUNC across the
# epoch boundary (it logs "Cannot send TRUNC to peer sid: N peer zxid is from different
# epoch") and falls back to a SNAP; Warren's design says TRUNC then DIFF.
SYNC_KIND_AFTER_NEW_EPOCH = {"zookeeper": {"SNAP"}, "warren": {"TRUNC"}}

WRITE_TIMEOUT = 30.0   # one acknowledged write, when the ensemble has a quorum
ELECTION_TIMEOUT = 60.0
NO_ACK_WINDOW = 8.0    # how long a write without a quorum is watched for an acknowledgement

# Failures that say the system has no ensemble mode at all: later tests of that system fail
# at once instead of waiting out their timeouts.
_HOPELESS: dict[str, str] = {}
_BASIC_START_FAILURES: dict[str, int] = {}


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(params=SYSTEMS)
def system(request):
    why = check_system_available(request.param)
    if why:
        pytest.fail(f"{request.param}: {why}", pytrace=False)
    if request.param in _HOPELESS:
        pytest.fail(f"not starting another {request.param} ensemble: an earlier one failed "
                    f"with:\n{_HOPELESS[request.param]}", pytrace=False)
    return request.param


def _live_server_registry():
    """conftest's list of live servers, whose log tails it attaches to failing tests."""
    mod = sys.modules.get("conftest")
    return getattr(mod, "_LIVE_SERVERS", None)


@pytest.fixture
def make_ensemble(system, tmp_path, request):
    """make_ensemble(participants=3, observers=0, proxied=False, **kw) -> started Ensemble
    (one leader, everybody else following / observing). Killed at teardown."""
    made: list[Ensemble] = []
    registry = _live_server_registry()
    test_name = request.node.name

    def make(start_timeout: float = 60.0, **kw) -> Ensemble:
        ens = Ensemble(system, tmp_path / f"ensemble{len(made)}", name=f"ens{len(made)}", **kw)
        made.append(ens)
        if registry is not None:
            registry.extend(ens)
        try:
            ens.start(timeout=start_timeout)
        except EnsembleError as e:
            basic = (kw.get("participants", 3) == 3 and not kw.get("observers")
                     and not kw.get("proxied"))
            if basic:
                _BASIC_START_FAILURES[system] = _BASIC_START_FAILURES.get(system, 0) + 1
            if "Mode: standalone" in str(e) or _BASIC_START_FAILURES.get(system, 0) >= 2:
                # no ensemble mode, or plain 3-server ensembles repeatedly fail to form:
                # every later test of this system would wait out its timeouts for nothing
                _HOPELESS[system] = f"{test_name}: {e}"
            raise
        return ens

    yield make
    for ens in made:
        ens.close()
        if registry is not None:
            for m in ens:
                if m in registry:
                    registry.remove(m)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def write_batch(client, paths, data: bytes = b"", timeout: float = WRITE_TIMEOUT) -> list[str]:
    """Pipelined creates; every one must be acknowledged."""
    results = [client.create_async(p, data) for p in paths]
    return [r.get(timeout=timeout) for r in results]


def never_acked(result) -> bool:
    """True unless the async write completed successfully."""
    return not (result.ready() and result.successful())


def assert_sync_kind(ens: Ensemble, leader: int, learner: int, mark: int, expected: set[str],
                     forbidden: set[str] = frozenset(), learner_mark: int | None = None):
    """The leader's log (after offset `mark`) names one of `expected` for `learner` and
    none of `forbidden`; for systems with learner-side patterns, the learner's too."""
    kinds: set[str] = set()

    def seen():
        nonlocal kinds
        kinds = ens.sync_kinds_logged(leader, learner, mark)
        return kinds & expected

    try:
        wait_for(seen, timeout=15.0, interval=0.2, what=f"sync kind {sorted(expected)} in log")
    except EnsembleError:
        pytest.fail(f"{ens.system}: leader server.{leader}'s log does not name a "
                    f"{'/'.join(sorted(expected))} sync for server.{learner} (found "
                    f"{sorted(kinds) or 'none'}; patterns in ensemble.SYNC_LOG_PATTERNS); "
                    f"log: {ens[leader].main_log}", pytrace=False)
    assert not kinds & forbidden, (
        f"leader server.{leader} logged {sorted(kinds)} for server.{learner}, "
        f"expected only {sorted(expected)}")
    print(f"leader server.{leader} logged sync kinds {sorted(kinds)} for server.{learner}")
    if learner_mark is not None:
        lk = ens.learner_sync_kinds_logged(learner, learner_mark)
        print(f"learner server.{learner} logged sync kinds {lk}")
        if lk is not None:
            assert lk & expected and not lk & forbidden, (
                f"learner server.{learner} logged sync kinds {sorted(lk)}, expected "
                f"{sorted(expected)}; log: {ens[learner].main_log}")
    return kinds


# ---------------------------------------------------------------------------------------
# 1. election and replication
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_elects_one_leader_and_replicates_writes(make_ensemble, system):
    ens = make_ensemble(participants=3)
    modes = ens.modes()
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    leader = ens.leader()

    for sid, member in ens.members.items():
        want = modes[sid]
        stat = member.four_letter("stat")
        assert parse_mode(stat) == want, f"server.{sid} stat: {stat!r}"
        mntr = member.four_letter("mntr")
        assert (f"zk_server_state\t{want}" in mntr or f"Mode: {want}" in mntr), (
            f"server.{sid} mntr does not report {want}: {mntr[:400]!r}")
        if system == "warren":
            out = member.status_cli()
            assert f"Mode: {want}" in out, f"`warren status` for server.{sid}: {out!r}"

    # each server binds the ports of its own server.N line (the proxy tests rely on it):
    # the election port always, the quorum port at least while leading
    listening = listening_ports()
    for sid, member in ens.members.items():
        assert member.election_port in listening, f"server.{sid} election port not bound"
    assert ens[leader].quorum_port in listening, f"leader server.{leader} quorum port not bound"

    root = "/ens-replication"
    for sid in ens.sids:
        c = ens.client([sid])
        c.ensure_path(root)
        c.create(f"{root}/via-{sid}", f"written through server.{sid}".encode())
        c.set(root, f"last set through server.{sid}".encode())
        ens.discard_client(c)

    for sid in ens.sids:
        c = ens.client([sid])
        c.sync(root)
        assert sorted(c.get_children(root)) == [f"via-{s}" for s in ens.sids], f"server.{sid}"
        for s in ens.sids:
            assert c.get(f"{root}/via-{s}")[0] == f"written through server.{s}".encode()
        data, stat = c.get(root)
        assert data == f"last set through server.{ens.sids[-1]}".encode()
        assert stat.version == len(ens.sids)
        ens.discard_client(c)

    views = {sid: ens.view(sid, root) for sid in ens.sids}
    assert all(v == views[leader] for v in views.values()), views


# ---------------------------------------------------------------------------------------
# 2. leader crash under write load
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_leader_kill_under_write_load_loses_no_acknowledged_write(make_ensemble):
    ens = make_ensemble(participants=3)
    root = "/ens-load"
    leader, new_leader, followers, acked, survivors_view = kill_leader_under_write_load(
        ens, root, ELECTION_TIMEOUT)

    ens.restart(leader)
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == new_leader
    assert ens.modes()[leader] == "follower"
    full = ens.converged_view(root)
    assert full == survivors_view
    assert acked <= set(full["children"])


# ---------------------------------------------------------------------------------------
# 3. DIFF / SNAP / TRUNC
# ---------------------------------------------------------------------------------------
def _catch_up(make_ensemble, system, writes: int, expected: str, before_writes: int = 10,
              extra_cfg: dict | None = None, before_stop=None):
    cfg, props = diff_window_settings(system)
    ens = make_ensemble(participants=3, extra_cfg={**cfg, **(extra_cfg or {})}, jvm_props=props)
    leader = ens.leader()
    lagger = ens.followers(leader)[0]
    root = "/ens-catchup"
    c = ens.client([leader])
    c.ensure_path(root)
    before = write_batch(c, [f"{root}/before-{i:04d}" for i in range(before_writes)])
    if before_stop is not None:
        before_stop(ens, lagger)

    ens.stop(lagger)
    during = write_batch(c, [f"{root}/during-{i:05d}" for i in range(writes)])
    marks = ens.log_marks()
    ens.restart(lagger)
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == leader
    view = ens.converged_view(root)
    assert names(before + during) <= set(view["children"])
    assert len(view["children"]) == before_writes + writes

    kinds = {"DIFF", "SNAP", "TRUNC"}
    assert_sync_kind(ens, leader, lagger, marks[leader], {expected}, kinds - {expected},
                     learner_mark=marks[lagger])
    return ens, leader, lagger, len(before) + len(during) + 1


@pytest.mark.timeout(180)
def test_lagging_follower_catches_up_with_diff(make_ensemble, system):
    """A follower stopped for 300 transactions (inside the leader's 500-txn window) gets a
    DIFF."""
    _catch_up(make_ensemble, system, writes=300, expected="DIFF")


@pytest.mark.timeout(180)
def test_far_behind_follower_catches_up_with_snap(make_ensemble, system):
    """A follower stopped for more transactions than the leader's diff window gets a SNAP.

    Warren: with a small snapCount the follower holds snapshots of its own from before it
    stopped; installing the SNAP removes them, since the log they belonged to is gone (a
    recovery falling back to one of them would replay later records over an older tree)."""
    small = {"snapCount": "40"} if system == "warren" else {}

    def own_snapshot_written(ens, lagger):
        # Snapshots are written in the background: stopping the follower in the middle of
        # its first one would leave it only a .tmp (removed at its restart), nothing to test.
        deadline = time.monotonic() + 20
        while not [p for p in ens[lagger].data_dir.rglob("snapshot.*") if not p.name.endswith(".tmp")]:
            assert time.monotonic() < deadline, "the follower wrote no snapshot of its own"
            time.sleep(0.05)

    ens, leader, lagger, _ = _catch_up(make_ensemble, system, writes=DIFF_WINDOW + 300, expected="SNAP",
                                       before_writes=60, extra_cfg=small,
                                       before_stop=own_snapshot_written if system == "warren" else None)
    if system != "warren":
        return
    found = re.findall(rf"sync with follower {lagger}: SNAP \(its last zxid 0x[0-9a-f]+, mine (0x[0-9a-f]+)\)",
                       ens[leader].log_since(0))
    assert found, ens[leader].log_since(0)[-3000:]
    snap_zxid = int(found[-1], 16)
    snaps = {int(p.name.split(".", 1)[1], 16): p for p in ens[lagger].data_dir.rglob("snapshot.*")}
    assert snap_zxid in snaps, (hex(snap_zxid), sorted(map(hex, snaps)))
    older = sorted(hex(z) for z in snaps if z < snap_zxid)
    assert not older, f"snapshots older than the installed SNAP at {snap_zxid:#x} are still there: {older}"
    assert "replaced its state and log" in ens[lagger].log_since(0), "the follower had no older snapshot to remove"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("new_epoch_writes_first", [False, True],
                         ids=["rejoin-before-new-writes", "rejoin-after-new-writes"])
def test_uncommitted_txn_of_old_leader_is_truncated(make_ensemble, system,
                                                    new_epoch_writes_first):
    """The leader is cut off from both followers (proxy blackhole), takes a write it can
    never commit (logged only by itself) and is killed; the followers elect a new leader.
    The old leader restarts: it must drop that transaction (TRUNC) and converge; the write
    appears nowhere.

    A kill -STOP of the followers instead of the proxy would not do: the leader's proposal
    still lands in the stopped followers' socket buffers, they log it on SIGCONT, and the
    new leader commits it.

    rejoin-before-new-writes: the old leader rejoins before the new leader commits anything
    (ZooKeeper logs "Sending TRUNC to follower zxidToSend=..." at DEBUG). Nothing may open
    a session meanwhile (a session is a transaction).
    rejoin-after-new-writes: the new leader takes writes first (ZooKeeper then sends a SNAP,
    see SYNC_KIND_AFTER_NEW_EPOCH)."""
    cfg, props = diff_window_settings(system)
    ens = make_ensemble(participants=3, proxied=True, extra_cfg=cfg, jvm_props=props)
    old = ens.leader()
    followers = ens.followers(old)
    root = "/ens-trunc"
    c0 = ens.client(followers)
    c0.ensure_path(root)
    committed = write_batch(c0, [f"{root}/committed-{i:03d}" for i in range(20)])
    ens.discard_client(c0)

    c_old = ens.client([old], timeout=20.0)
    c_old.exists(root)
    ens.isolate(old)
    pending = c_old.create_async(f"{root}/uncommitted", b"must never be acknowledged")
    time.sleep(1.5)  # the old leader logs its proposal
    assert never_acked(pending), "a leader without a quorum acknowledged a write"
    ens.kill(old)
    ens.heal()
    ens.discard_client(c_old)
    assert never_acked(pending)

    new = ens.wait_stable(sids=followers, timeout=ELECTION_TIMEOUT)
    new_writes = []
    if new_epoch_writes_first:
        c1 = ens.client(followers)
        new_writes = write_batch(c1, [f"{root}/new-epoch-{i:03d}" for i in range(20)])
        ens.discard_client(c1)
        expected = SYNC_KIND_AFTER_NEW_EPOCH[system]
    else:
        expected = {"TRUNC"}

    marks = ens.log_marks()
    ens.restart(old)
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == new
    assert_sync_kind(ens, new, old, marks[new], expected, {"DIFF", "SNAP", "TRUNC"} - expected
                     - ({"DIFF"} if "TRUNC" in expected else set()),
                     learner_mark=marks[old])

    if not new_epoch_writes_first:
        c1 = ens.client(followers)
        new_writes = write_batch(c1, [f"{root}/new-epoch-{i:03d}" for i in range(20)])
        ens.discard_client(c1)
    c2 = ens.client([old])
    more = write_batch(c2, [f"{root}/via-old-{i:03d}" for i in range(5)])
    ens.discard_client(c2)

    view = ens.converged_view(root)
    assert "uncommitted" not in view["children"], \
        "the old leader's uncommitted transaction survived"
    assert set(view["children"]) == names(committed + new_writes + more)
    assert never_acked(pending)


# ---------------------------------------------------------------------------------------
# 4. quorum: a minority down keeps writes going, a majority down stops them
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(240)
@pytest.mark.parametrize("size", [3, 5])
def test_writes_need_a_majority(make_ensemble, size):
    ens = make_ensemble(participants=size)
    leader = ens.leader()
    followers = ens.followers(leader)
    minority = followers[: (size - 1) // 2]
    extra = followers[(size - 1) // 2]
    root = "/ens-quorum"
    c = ens.client([leader])
    c.ensure_path(root)

    for s in minority:
        ens.kill(s)
    acked = write_batch(c, [f"{root}/minority-down-{i:03d}" for i in range(20)])
    live_followers = [s for s in followers if s not in minority]
    c_f = ens.client(live_followers)
    acked += write_batch(c_f, [f"{root}/via-follower-{i:03d}" for i in range(10)])
    ens.discard_client(c_f)

    ens.kill(extra)  # now a majority is down
    pending = c.create_async(f"{root}/majority-down", b"no quorum")
    deadline = time.monotonic() + NO_ACK_WINDOW
    while time.monotonic() < deadline:
        assert never_acked(pending), "a write was acknowledged while a majority was down"
        time.sleep(0.1)
    print(f"majority down: the write {'failed: ' + repr(pending.exception) if pending.ready() else 'is unanswered'}"
          f" after {NO_ACK_WINDOW}s")

    ens.restart(extra)  # a majority again
    back = sorted(ens.running())
    ens.wait_stable(sids=back, timeout=ELECTION_TIMEOUT)
    c2 = ens.client(back)
    acked += write_batch(c2, [f"{root}/majority-back-{i:03d}" for i in range(20)])
    ens.discard_client(c2)
    partial = ens.converged_view(root, sids=back)
    assert names(acked) <= set(partial["children"])

    for s in minority:
        ens.restart(s)
    ens.wait_stable(timeout=ELECTION_TIMEOUT)
    full = ens.converged_view(root)
    assert full == partial, "the restarted minority did not converge"
    # the unacknowledged write is present everywhere or nowhere (converged_view checked)
    assert set(full["children"]) - names(acked) <= {"majority-down"}


# ---------------------------------------------------------------------------------------
# 5. partition the leader away (fault-injecting proxy between peers)
# ---------------------------------------------------------------------------------------
class OldSideProber(threading.Thread):
    """Keeps issuing writes through a client pinned to the isolated old leader and records
    when any of them succeeded."""

    def __init__(self, client, root: str):
        super().__init__(daemon=True, name="old-side-prober")
        self.client, self.root = client, root
        self.stop_event = threading.Event()
        self.results: list = []
        self.acked_at: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def run(self):
        n = 0
        while not self.stop_event.is_set():
            n += 1
            path = f"{self.root}/old-side-{n:03d}"
            try:
                r = self.client.create_async(path, b"isolated")
            except Exception:  # noqa: BLE001 - closed client etc.
                break
            r.rawlink(lambda res, p=path: self._done(res, p))
            self.results.append(r)
            self.stop_event.wait(0.5)

    def _done(self, res, path):
        if res.successful():
            with self.lock:
                self.acked_at.append((path, time.monotonic()))

    def acked_before(self, t: float) -> list[str]:
        with self.lock:
            return [p for p, at in self.acked_at if at < t]


@pytest.mark.timeout(240)
def test_partitioned_leader_stops_acknowledging_and_rejoins(make_ensemble):
    ens = make_ensemble(participants=3, proxied=True)
    old = ens.leader()
    followers = ens.followers(old)
    root = "/ens-partition"
    c_maj = ens.client(followers)
    c_maj.ensure_path(root)
    acked = write_batch(c_maj, [f"{root}/before-{i:03d}" for i in range(10)])
    c_old = ens.client([old], timeout=10.0)
    acked += write_batch(c_old, [f"{root}/before-via-old-{i:03d}" for i in range(10)])

    ens.isolate(old)
    prober = OldSideProber(c_old, root)
    prober.start()
    new = ens.wait_stable(sids=followers, timeout=ELECTION_TIMEOUT)
    acked += write_batch(c_maj, [f"{root}/majority-{i:03d}" for i in range(20)])
    # the isolated old leader gives up leadership (it cannot hear a quorum)
    wait_for(lambda: ens[old].mode() != "leader", 30,
             what=f"isolated server.{old} to stop reporting Mode: leader")
    time.sleep(2.0)  # let the prober try a few more writes against the isolated side

    prober.stop_event.set()
    prober.join(10.0)
    t_heal = time.monotonic()
    bad = prober.acked_before(t_heal)
    print(f"isolated server.{old}; new leader server.{new}; the prober issued "
          f"{len(prober.results)} writes through the isolated side, "
          f"{sum(1 for r in prober.results if r.ready() and not r.successful())} failed, "
          f"{sum(1 for r in prober.results if not r.ready())} unanswered")
    assert not bad, f"the isolated old leader acknowledged writes: {bad}"
    assert prober.results, "the prober issued no writes"
    ens.heal()

    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == new
    assert ens.modes()[old] == "follower"
    c_after = ens.client([old])
    acked += write_batch(c_after, [f"{root}/after-heal-via-old-{i:03d}" for i in range(5)])
    view = ens.converged_view(root)
    assert names(acked) <= set(view["children"])
    unacked = set(view["children"]) - names(acked)
    assert all(n.startswith("old-side-") for n in unacked), sorted(unacked)


# ---------------------------------------------------------------------------------------
# 6. observers
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_observer_serves_writes_and_reports_its_mode(make_ensemble):
    ens = make_ensemble(participants=4, observers=1)
    obs = max(ens.sids)
    modes = ens.modes()
    assert modes[obs] == "observer", modes
    assert sorted(m for s, m in modes.items() if s != obs) == \
        ["follower", "follower", "follower", "leader"], modes
    assert parse_mode(ens[obs].four_letter("stat")) == "observer"

    root = "/ens-observer"
    c_obs = ens.client([obs])
    c_obs.ensure_path(root)
    acked = write_batch(c_obs, [f"{root}/via-observer-{i:03d}" for i in range(20)])
    c_obs.set(root, b"set through the observer")
    leader = ens.leader()
    follower = ens.followers(leader)[0]
    c_f = ens.client([follower])
    acked += write_batch(c_f, [f"{root}/via-follower-{i:03d}" for i in range(10)])

    c_obs.sync(root)
    assert names(acked) <= set(c_obs.get_children(root))
    view = ens.converged_view(root)
    assert set(view["children"]) == names(acked)
    for sid in ens.sids:
        c = ens.client([sid])
        c.sync(root)
        assert c.get(root)[0] == b"set through the observer", f"server.{sid}"
        ens.discard_client(c)


# ---------------------------------------------------------------------------------------
# 7. sessions, ephemerals and recipes across a leader kill
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_session_ephemeral_and_recipes_survive_leader_kill(make_ensemble):
    ens = make_ensemble(participants=3)
    leader = ens.leader()
    followers = ens.followers(leader)
    root = "/ens-session"
    states_a: list = []
    # A lists every server, the leader first (so its session lives on the server we kill)
    a = ens.client([leader] + followers, randomize=False, timeout=10.0)
    a.add_listener(states_a.append)
    b = ens.client(followers + [leader], randomize=False, timeout=10.0)
    try:
        peer_port = a._connection._socket.getpeername()[1]
    except Exception:  # noqa: BLE001 - kazoo internals; the SUSPENDED check below suffices
        peer_port = None
    if peer_port is not None:
        assert peer_port == ens[leader].port, "client A is not connected to the leader"

    session = a.client_id[0]
    a.ensure_path(root)
    a.create(f"{root}/eph", b"A", ephemeral=True)
    lock_a = a.Lock(f"{root}/lock", "A")
    assert lock_a.acquire(timeout=10)
    lock_b = b.Lock(f"{root}/lock", "B")
    b_got_lock = threading.Event()

    def b_acquire():
        if lock_b.acquire(timeout=120):
            b_got_lock.set()

    tb = threading.Thread(target=b_acquire, daemon=True)
    tb.start()
    wait_for(lambda: lock_b.contenders() == ["A", "B"], 15, what="B queued behind A")

    leading: list[str] = []
    stop_a = threading.Event()

    def a_leads():
        leading.append("A")
        stop_a.wait(120)

    ta = threading.Thread(target=lambda: a.Election(f"{root}/election", "A").run(a_leads),
                          daemon=True)
    ta.start()
    wait_for(lambda: leading == ["A"], 15, what="A elected")
    election_b = b.Election(f"{root}/election", "B")
    tb2 = threading.Thread(target=lambda: election_b.run(leading.append, "B"), daemon=True)
    tb2.start()
    wait_for(lambda: election_b.contenders() == ["A", "B"], 15, what="B contending")

    ens.kill(leader)
    new = ens.wait_stable(sids=followers, timeout=ELECTION_TIMEOUT)
    assert new in followers

    wait_for(lambda: works(a, root), 30, interval=0.1, what="client A to reconnect")
    assert KazooState.SUSPENDED in states_a, "A never lost its connection (was it on the leader?)"
    assert KazooState.LOST not in states_a, f"A's session was lost: {states_a}"
    assert a.client_id[0] == session, "A's session id changed"
    data, stat = a.get(f"{root}/eph")
    assert data == b"A" and stat.ephemeralOwner == session
    b.sync(root)
    assert b.exists(f"{root}/eph").ephemeralOwner == session

    # the lock is still A's, B still waits; then B gets it once A releases
    assert lock_a.is_acquired
    assert not b_got_lock.is_set()
    assert lock_b.contenders() == ["A", "B"]
    lock_a.release()
    assert b_got_lock.wait(30), "B did not get the lock after A released it"
    assert lock_a.contenders() == ["B"]
    lock_b.release()

    # the election: A still leads; when A steps down, B leads
    assert leading == ["A"]
    stop_a.set()
    wait_for(lambda: leading == ["A", "B"], 30, what="B elected after A stepped down")
    ta.join(10)
    tb.join(10)
    tb2.join(10)

    ens.restart(leader)
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == new
    c = ens.client([leader])
    c.sync(root)
    assert c.exists(f"{root}/eph").ephemeralOwner == session


# ---------------------------------------------------------------------------------------
# 7b. session expiry in an ensemble: owned by the leader, liveness relayed by followers
# ---------------------------------------------------------------------------------------
EXPIRY_TIMEOUT_MS = 4000   # tickTime 1000: ZooKeeper negotiates within [2000, 20000]


@pytest.mark.timeout(240)
def test_sessions_expire_through_the_leader(make_ensemble):
    from recovery_latency import RawClient

    ens = make_ensemble(participants=3)
    leader = ens.leader()
    f1, f2 = ens.followers(leader)
    root = "/ens-expiry"
    timeout_s = EXPIRY_TIMEOUT_MS / 1000
    watcher = ens.client([leader])
    watcher.ensure_path(root)

    # A live session on a follower keeps its ephemeral for many timeouts: the follower
    # relays its pings to the leader, which owns expiry.
    alive = ens.client([f1], timeout=timeout_s)
    alive_session = alive.client_id[0]
    alive.create(f"{root}/alive", b"", ephemeral=True)
    t_alive = time.monotonic()

    # A client that vanishes from the other follower: its session outlives the broken
    # connection, then the leader expires it and its ephemeral goes everywhere.
    gone = RawClient(ens[f2].port, timeout_ms=EXPIRY_TIMEOUT_MS)
    gone.connect()
    assert gone.negotiated_ms == EXPIRY_TIMEOUT_MS
    assert gone.create(f"{root}/gone", b"", flags=1) == 0
    deleted = threading.Event()
    watcher.sync(root)
    assert watcher.exists(f"{root}/gone", watch=lambda ev: deleted.set()) is not None
    t_close = time.monotonic()
    gone.close()
    assert deleted.wait(timeout_s + 15), "the vanished session was never expired"
    waited = time.monotonic() - t_close
    assert waited >= timeout_s - 1.0, f"expired {waited:.1f} s after its client went: before its timeout"
    print(f"vanished session on server.{f2} expired {waited:.2f} s after its client went")
    for sid in ens.sids:
        assert "gone" not in ens.view(sid, root)["children"], f"server.{sid} still has it"

    while time.monotonic() - t_alive < 3 * timeout_s:
        time.sleep(0.2)
    watcher.sync(root)
    stat = watcher.exists(f"{root}/alive")
    assert stat is not None and stat.ephemeralOwner == alive_session, (
        "a live session on a follower was expired: its liveness did not reach the leader")

    # The leader dies holding a session whose client cannot reach anyone else: the new leader
    # expires it after a timeout; the live session on the follower survives the change.
    orphan = RawClient(ens[leader].port, timeout_ms=EXPIRY_TIMEOUT_MS)
    orphan.connect()
    assert orphan.create(f"{root}/orphan", b"", flags=1) == 0
    ens.kill(leader)
    orphan.close()
    new = ens.wait_stable(sids=[f1, f2], timeout=ELECTION_TIMEOUT)
    c = ens.client([new])
    wait_for(lambda: c.exists(f"{root}/orphan") is None, timeout_s + 30, interval=0.2,
             what="the dead leader's orphaned session to expire")

    wait_for(lambda: works(alive, root), 30, interval=0.1,
             what="the live client to reconnect to its follower")
    assert alive.client_id[0] == alive_session
    c.sync(root)
    stat = c.exists(f"{root}/alive")
    assert stat is not None and stat.ephemeralOwner == alive_session, "the live session was lost"


# ---------------------------------------------------------------------------------------
# 8. recovery latency (the numbers are reported, only correctness is asserted)
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_recovery_latency_script(system, tmp_path):
    out = tmp_path / "latency.json"
    cmd = [sys.executable, os.path.join(HERE, "recovery_latency.py"), "--system", system,
           "--trials", "2", "--json", str(out), "--deadline", "30"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280,
                          stdin=subprocess.DEVNULL)
    print(proc.stdout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text())
    assert len(result["trials"]) == 2
    for t in result["trials"]:
        assert t["write_recovery_s"] is not None and t["write_recovery_s"] <= 30.0, t
        assert t["leader_elected_s"] is not None and t["leader_elected_s"] <= 30.0, t
