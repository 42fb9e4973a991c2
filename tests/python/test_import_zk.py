"""`warren import-zk`: a real ZooKeeper 3.8 writes a data directory (small snapCount, so
several snapshots and logs), Warren imports it, and the whole tree is compared through kazoo
with the same ZooKeeper restarted on its own data: data, every Stat field, ACLs, children, and
the name of the next sequential node under each node.

One input is taken after a clean stop, one after a SIGKILL while a client was writing.
Damaged inputs (a flipped byte in a snapshot or a log record, a log cut inside its header)
must fail with the file, offset and reason and leave the target empty; a snapshot cut short
is skipped for the older one, as ZooKeeper does.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.serialization import Create2, long_struct
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl

from servers import WarrenServer, ZooKeeperServer, stop_clients, warren_bin

pytestmark = pytest.mark.slow

# Container and TTL reaping pushed out of the test's reach on both servers: a reaper that runs
# on one side and not yet on the other would make the trees differ for reasons of timing.
ZK_PROPS = {"zookeeper.extendedTypesEnabled": "true", "znode.container.checkIntervalMs": "3600000"}
ZK_CFG = {"snapCount": "20"}
WARREN_CFG = {"extendedTypesEnabled": "true", "warren.containerCheckIntervalMs": "3600000"}
ALICE = ("digest", "alice:secret")
ALICE_ALL = make_digest_acl("alice", "secret", all=True)
SESSION_TIMEOUT = 30.0
TTL_MS = 3_600_000


class CreateContainer(Create2):
    """createContainer (opcode 19): create2's body with CreateMode.CONTAINER (4)."""
    type = 19


class CreateTTL(Create2):
    """createTTL (opcode 21): create2's body and the TTL (kazoo has no API for it)."""
    type = 21

    def serialize(self):
        return super().serialize() + long_struct.pack(TTL_MS)


def raw_create(c: KazooClient, request) -> str:
    result = c.handler.async_result()
    c._call(request, result)
    return result.get(timeout=10)[0]


def connect(server, auth=True, timeout=10.0) -> KazooClient:
    c = KazooClient(hosts=server.host_port, timeout=timeout)
    c.start(timeout=15)
    if auth:
        c.add_auth(*ALICE)
    return c


def close(*clients):
    stop_clients(clients)


# ---------------------------------------------------------------------------------------
# the workload
# ---------------------------------------------------------------------------------------
def workload(c: KazooClient, owner: KazooClient, rng: random.Random) -> None:
    """Every node kind, ACL kind and txn kind; enough transactions for several snapshots."""
    c.create("/imp", b"root")
    c.create("/imp/data")
    for i, size in enumerate([0, 1, 100, 4096, 65536, 1_000_000]):
        data = bytes(rng.getrandbits(8) for _ in range(size)) if size <= 65536 else rng.randbytes(size)
        if size > 1:
            data = b"\x00" + data[1:]
        c.create(f"/imp/data/n{i}", data)
    c.create("/imp/data/null", None)
    for v in range(5):
        c.set("/imp/data/n3", b"version %d" % v)
    c.create("/imp/acl-digest", b"d", acl=[ALICE_ALL])
    c.create("/imp/acl-ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    c.create("/imp/acl-world-read", b"w", acl=[ACL(1, Id("world", "anyone"))])
    c.create("/imp/acl-mixed", b"m", acl=[ALICE_ALL, ACL(1 | 4, Id("world", "anyone"))])
    c.create("/imp/acl-changed", b"a")
    c.set_acls("/imp/acl-changed", [ALICE_ALL, ACL(1, Id("ip", "127.0.0.0/8"))])
    # Sequential nodes with deletes in between: the suffix follows the parent's cversion.
    c.create("/imp/seq")
    made = [c.create("/imp/seq/s-", b"", sequence=True) for _ in range(8)]
    for p in made[1:7:2]:
        c.delete(p)
    for _ in range(4):
        c.create("/imp/seq/s-", b"x", sequence=True)
    # Ephemerals of a session that stays open, and of one that closes (closeSession deletes).
    owner.create("/imp/eph-1", b"mine", ephemeral=True)
    owner.create("/imp/seq/e-", b"", ephemeral=True, sequence=True)
    short = KazooClient(hosts=",".join(f"{h}:{p}" for h, p in c.hosts), timeout=SESSION_TIMEOUT)
    short.start(timeout=15)
    short.create("/imp/short-lived", b"", ephemeral=True)
    close(short)
    # Containers (one with a child, one that never had one) and TTL nodes.
    raw_create(c, CreateContainer("/imp/ctr", b"c", OPEN_ACL_UNSAFE, 4))
    c.create("/imp/ctr/child", b"")
    raw_create(c, CreateContainer("/imp/ctr-empty", b"", OPEN_ACL_UNSAFE, 4))
    raw_create(c, CreateTTL("/imp/ttl", b"t", OPEN_ACL_UNSAFE, 5))
    raw_create(c, CreateTTL("/imp/ttl-seq-", b"", OPEN_ACL_UNSAFE, 6))
    # Multis: one that commits, one that fails (logged as error txns).
    t = c.transaction()
    t.create("/imp/multi", b"")
    t.create("/imp/multi/a", b"1")
    t.set_data("/imp", b"root2")
    t.check("/imp/seq", 0)
    t.commit()
    t = c.transaction()
    t.create("/imp/multi/b", b"")
    t.check("/imp/seq", 99)
    t.commit()
    # Churn: many creates and deletes, across several snapshots and log files.
    c.create("/imp/churn")
    for i in range(120):
        p = c.create("/imp/churn/n-", b"%d" % i, sequence=True)
        if i % 3:
            c.delete(p)
        else:
            c.set(p, b"set %d" % i)
    c.create("/imp/gone")
    c.delete("/imp/gone")


# ---------------------------------------------------------------------------------------
# comparing trees
# ---------------------------------------------------------------------------------------
def outcome(f):
    try:
        return f()
    except Exception as e:  # noqa: BLE001 - the error kind is part of what is compared
        return ("error", type(e).__name__)


def read_tree(c: KazooClient) -> dict:
    tree = {}
    stack = ["/"]
    while stack:
        p = stack.pop()
        data = outcome(lambda: c.get(p))
        if isinstance(data, tuple) and len(data) == 2 and data[0] != "error":
            data = (data[0], tuple(data[1]))
        acls = outcome(lambda: c.get_acls(p))
        if acls and acls[0] != "error":
            acls = ([(a.perms, a.id.scheme, a.id.id) for a in acls[0]], tuple(acls[1]))
        children = outcome(lambda: sorted(c.get_children(p)))
        tree[p] = {"data": data, "acls": acls, "children": children}
        if isinstance(children, list):
            stack.extend(f"{p.rstrip('/')}/{ch}" for ch in children)
    return tree


def next_sequential(c: KazooClient, tree: dict) -> dict:
    """Creates one sequential node under every node outside /zookeeper; returns the names."""
    out = {}
    for p in sorted(tree):
        if p == "/zookeeper" or p.startswith("/zookeeper/"):
            continue
        out[p] = outcome(lambda: c.create(f"{p.rstrip('/')}/next-", b"", sequence=True))
    return out


def assert_same_tree(zk_tree: dict, warren_tree: dict) -> None:
    assert sorted(zk_tree) == sorted(warren_tree), "different node sets"
    diffs = [(p, k, zk_tree[p][k], warren_tree[p][k]) for p in sorted(zk_tree) for k in zk_tree[p]
             if zk_tree[p][k] != warren_tree[p][k]]
    shown = [(p, k, str(a)[:300], str(b)[:300]) for p, k, a, b in diffs[:10]]
    assert not diffs, f"{len(diffs)} differences (path, field, zookeeper, warren): {shown}"


def compare(zk: ZooKeeperServer, warren: WarrenServer) -> dict:
    cz, cw = connect(zk), connect(warren)
    try:
        zk_tree, warren_tree = read_tree(cz), read_tree(cw)
        assert "/imp" in zk_tree
        assert_same_tree(zk_tree, warren_tree)
        zk_next, warren_next = next_sequential(cz, zk_tree), next_sequential(cw, warren_tree)
        assert zk_next == warren_next
        return zk_tree
    finally:
        close(cz, cw)


# ---------------------------------------------------------------------------------------
# helpers around the command
# ---------------------------------------------------------------------------------------
def import_zk(zk_data: Path, target: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(warren_bin()), "import-zk", str(zk_data), str(target)],
                          capture_output=True, text=True, timeout=120)


def copy_sparse(src: Path, dst: Path) -> None:
    # ZooKeeper's logs are 64 MiB preallocated files, mostly holes.
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dst)], check=True)


def version2(data: Path) -> Path:
    return data / "version-2"


def zxid_of(p: Path) -> int:
    return int(p.name.split(".")[1], 16)


def newest(data: Path, prefix: str) -> Path:
    return max(version2(data).glob(f"{prefix}.*"), key=zxid_of)


def warren_on(base: Path, imported: Path) -> WarrenServer:
    w = WarrenServer(base_dir=base, extra_cfg=WARREN_CFG, name="warren(imported)")
    shutil.rmtree(w.data_dir)
    shutil.copytree(imported, w.data_dir)
    return w


def log_records(path: Path) -> list[tuple[int, int, int]]:
    """(offset, length, zxid) of each record of a ZooKeeper log (for aiming damage)."""
    b = path.read_bytes()
    out, at = [], 16
    while at + 12 <= len(b):
        length = int.from_bytes(b[at + 8:at + 12], "big", signed=True)
        if length <= 0 or at + 13 + length > len(b):
            break
        zxid = int.from_bytes(b[at + 12 + 12:at + 12 + 20], "big")
        out.append((at, length, zxid))
        at += 13 + length
    return out


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def zookeeper_after_workload(base: Path, seed: int, props=None, name="zookeeper"):
    """A real ZooKeeper that ran the workload; the owner of the ephemerals stays connected.
    Yields (zk, client, owner); everything is stopped and removed afterwards."""
    zk = ZooKeeperServer(base_dir=base, extra_cfg=ZK_CFG, jvm_props=dict(ZK_PROPS, **(props or {})), name=name)
    zk.start()
    c = owner = None
    try:
        c, owner = connect(zk), connect(zk, timeout=SESSION_TIMEOUT)
        workload(c, owner, random.Random(seed))
        yield zk, c, owner
    finally:
        close(*(x for x in (c, owner) if x is not None))
        zk.cleanup()


def import_and_compare(zk: ZooKeeperServer, tmp_path: Path, source: Path | None = None) -> tuple[str, dict]:
    """Imports the stopped ZooKeeper's dataDir (or `source`, a copy of it) into
    tmp_path/imported, starts Warren on the result and ZooKeeper on its own data, and compares
    them. Returns the import's output and the tree."""
    target = tmp_path / "imported"
    r = import_zk(source or zk.data_dir, target)
    assert r.returncode == 0, r.stderr
    warren = warren_on(tmp_path / "warren", target)
    try:
        warren.start()
        zk.start()
        return r.stdout, compare(zk, warren)
    finally:
        warren.cleanup()
        zk.stop()


@pytest.fixture(scope="module")
def clean_stop(tmp_path_factory):
    """ZooKeeper after the workload and a clean stop; a pristine copy of its dataDir."""
    base = tmp_path_factory.mktemp("zk-clean")
    with zookeeper_after_workload(base / "zk", 13, name="zookeeper(clean)") as (zk, c, owner):
        close(c)
        zk.stop()
        copy_sparse(zk.data_dir, base / "pristine")
        yield zk, base / "pristine", owner


def assert_target_empty(target: Path) -> None:
    assert not target.exists() or not any(target.iterdir()), f"{target} holds {list(target.iterdir())}"
    leftovers = [p.name for p in target.parent.iterdir() if ".import-" in p.name]
    assert not leftovers, leftovers


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------
def test_clean_stop_imports_the_whole_tree(clean_stop, tmp_path):
    zk, pristine, _owner = clean_stop
    snapshots = list(version2(pristine).glob("snapshot.*"))
    logs = list(version2(pristine).glob("log.*"))
    assert len(snapshots) >= 3 and len(logs) >= 3, (snapshots, logs)
    out, tree = import_and_compare(zk, tmp_path, source=pristine)
    # ZooKeeper stops without waiting for a snapshot it is writing: one cut short is skipped.
    skipped = {line.split()[2].rstrip(":") for line in out.splitlines() if line.startswith("skipped snapshot")}
    usable = max((s for s in snapshots if str(s) not in skipped), key=zxid_of)
    assert f"snapshot: {usable}" in out, out
    assert "transactions applied:" in out, out
    # ZooKeeper 3.8 logs its tree digest with every transaction: the import checks it.
    assert "digest: the imported tree matches ZooKeeper's digest at zxid" in out, out
    # One session holds ephemerals (the owner); the short-lived one closed.
    assert "1 sessions (2 ephemerals)" in out, out
    assert tree["/imp/eph-1"]["data"][1][7] != 0  # an ephemeral, owned by a live session
    target = tmp_path / "imported"
    assert (target / "currentEpoch").read_text().strip() == "0"
    # A second import into the now non-empty target is refused and changes nothing.
    before = sorted(p.name for p in target.rglob("*"))
    r2 = import_zk(pristine, target)
    assert r2.returncode != 0 and "not empty" in r2.stderr, r2.stderr
    assert sorted(p.name for p in target.rglob("*")) == before


def test_imported_session_can_be_resumed_by_its_owner(clean_stop, tmp_path):
    """The owner's session id and ZooKeeper's password for it carry over: a client holding
    them reconnects to Warren and still owns its ephemeral."""
    _zk, pristine, owner = clean_stop
    target = tmp_path / "imported"
    assert import_zk(pristine, target).returncode == 0
    session_id, passwd = owner._session_id, owner._session_passwd
    warren = warren_on(tmp_path / "warren", target)
    c = None
    try:
        warren.start()
        c = KazooClient(hosts=warren.host_port, timeout=SESSION_TIMEOUT, client_id=(session_id, passwd))
        c.start(timeout=15)
        assert c.client_id[0] == session_id
        _, st = c.get("/imp/eph-1")
        assert st.ephemeralOwner == session_id
    finally:
        if c is not None:
            close(c)
        warren.cleanup()


def test_sigkill_mid_write_imports_what_zookeeper_recovers(tmp_path):
    stop = threading.Event()
    written = []

    def writer(zk):
        w = connect(zk)
        rng = random.Random(7)
        i = 0
        try:
            while not stop.is_set():
                size = rng.choice([0, 10, 1000, 100_000])
                w.create(f"/imp/churn/k-{i}", rng.randbytes(size))
                w.set("/imp", b"%d" % i)
                written.append(i)
                i += 1
        except Exception:
            pass
        finally:
            close(w)

    with zookeeper_after_workload(tmp_path / "zk", 14, name="zookeeper(killed)") as (zk, _c, _owner):
        try:
            t = threading.Thread(target=writer, args=(zk,), daemon=True)
            t.start()
            # Generous: the machine may be busy; the writes are what make the kill land mid-write.
            deadline = time.monotonic() + 60
            while len(written) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            zk.kill()
        finally:
            stop.set()
        t.join(timeout=30)
        assert len(written) >= 40, f"only {len(written)} writes within 60 s"
        assert not t.is_alive(), "the writer did not stop after the kill"
        out, tree = import_and_compare(zk, tmp_path)
        assert any(p.startswith("/imp/churn/k-") for p in tree)
        assert "digest: the imported tree matches" in out, out


def damaged_copy(clean_stop, tmp_path) -> Path:
    _zk, pristine, _owner = clean_stop
    copy = tmp_path / "zkdata"
    copy_sparse(pristine, copy)
    return copy


def test_flipped_byte_in_the_snapshot_stops_the_import(clean_stop, tmp_path):
    data = damaged_copy(clean_stop, tmp_path)
    snap = newest(data, "snapshot")
    b = bytearray(snap.read_bytes())
    at = len(b) // 2
    b[at] ^= 0x20
    snap.write_bytes(bytes(b))
    target = tmp_path / "target"
    target.mkdir()
    r = import_zk(data, target)
    assert r.returncode != 0
    assert str(snap) in r.stderr and "offset" in r.stderr, r.stderr
    assert_target_empty(target)


def test_flipped_byte_in_a_log_record_stops_the_import(clean_stop, tmp_path):
    data = damaged_copy(clean_stop, tmp_path)
    log = newest(data, "log")
    records = log_records(log)
    assert records
    offset, length, _ = records[len(records) // 2]
    b = bytearray(log.read_bytes())
    b[offset + 12 + length // 2] ^= 0x01
    log.write_bytes(bytes(b))
    target = tmp_path / "target"
    r = import_zk(data, target)
    assert r.returncode != 0
    assert f"{log} at offset {offset}" in r.stderr and "checksum" in r.stderr, r.stderr
    assert_target_empty(target)


def test_log_cut_inside_its_header_stops_the_import(clean_stop, tmp_path):
    data = damaged_copy(clean_stop, tmp_path)
    log = newest(data, "log")
    with open(log, "r+b") as f:
        f.truncate(10)
    target = tmp_path / "target"
    r = import_zk(data, target)
    assert r.returncode != 0
    assert str(log) in r.stderr and "header" in r.stderr, r.stderr
    assert_target_empty(target)


def test_snapshot_cut_short_falls_back_to_the_older_one(clean_stop, tmp_path):
    """ZooKeeper skips a snapshot that lacks its end (a crash while writing it) for an older
    one and replays more of the log; the import does the same and reaches the same tree."""
    _zk, pristine, _owner = clean_stop
    reference = tmp_path / "reference"
    assert import_zk(pristine, reference).returncode == 0
    data = damaged_copy(clean_stop, tmp_path)
    snap = newest(data, "snapshot")
    with open(snap, "r+b") as f:
        f.truncate(snap.stat().st_size // 2)
    target = tmp_path / "target"
    r = import_zk(data, target)
    assert r.returncode == 0, r.stderr
    assert f"skipped snapshot {snap}" in r.stdout, r.stdout
    ours = list(version2(target).glob("snapshot.*"))
    theirs = list(version2(reference).glob("snapshot.*"))
    assert [p.name for p in ours] == [p.name for p in theirs]
    assert ours[0].read_bytes() == theirs[0].read_bytes()


def test_replaying_the_whole_log_reaches_the_same_import(clean_stop, tmp_path):
    """Without the newer snapshots, the import starts from ZooKeeper's first snapshot and
    replays every transaction of the workload (every txn kind, the closed session, the failed
    multi): the Warren snapshot it writes must be the same, byte for byte."""
    _zk, pristine, _owner = clean_stop
    reference = tmp_path / "reference"
    assert import_zk(pristine, reference).returncode == 0
    data = damaged_copy(clean_stop, tmp_path)
    oldest = min(version2(data).glob("snapshot.*"), key=zxid_of)
    for s in version2(data).glob("snapshot.*"):
        if s != oldest:
            s.unlink()
    target = tmp_path / "target"
    r = import_zk(data, target)
    assert r.returncode == 0, r.stderr
    assert f"snapshot: {oldest}" in r.stdout, r.stdout
    applied = int(r.stdout.split("transactions applied: ")[1].split()[0])
    assert applied > 200, r.stdout
    ours = list(version2(target).glob("snapshot.*"))
    theirs = list(version2(reference).glob("snapshot.*"))
    assert [p.name for p in ours] == [p.name for p in theirs]
    assert ours[0].read_bytes() == theirs[0].read_bytes()


@pytest.mark.parametrize("method,suffix", [("gz", ".gz"), ("snappy", ".snappy")])
def test_compressed_snapshots_are_imported(tmp_path, method, suffix):
    """zookeeper.snapshot.compression.method=gz or snappy: ZooKeeper writes
    snapshot.<zxid>.gz (gzip) or .snappy (snappy-java's stream framing)."""
    props = {"zookeeper.snapshot.compression.method": method}
    with zookeeper_after_workload(tmp_path / "zk", 15, props, name=f"zookeeper({method})") as (zk, _c, _owner):
        zk.stop()
        snaps = sorted(p.name for p in version2(zk.data_dir).glob(f"snapshot.*{suffix}"))
        assert len(snaps) >= 3, snaps
        out, _tree = import_and_compare(zk, tmp_path)
        assert f"{suffix} (zxid" in out, out


def test_damaged_snappy_snapshot_stops_the_import(tmp_path):
    """A flipped bit in a snappy block's length (after the 16-byte stream header): the import
    names the file and the offset and writes nothing."""
    props = dict(ZK_PROPS, **{"zookeeper.snapshot.compression.method": "snappy"})
    zk = ZooKeeperServer(base_dir=tmp_path / "zk", extra_cfg=ZK_CFG, jvm_props=props, name="zookeeper(snappy)")
    try:
        zk.start()
        c = connect(zk)
        for i in range(50):
            c.create(f"/s{i}", b"x" * 100)
        close(c)
        zk.stop()
        snaps = sorted(version2(zk.data_dir).glob("snapshot.*.snappy"), key=zxid_of)
        assert snaps
        raw = bytearray(snaps[-1].read_bytes())
        raw[16] ^= 0x80
        snaps[-1].write_bytes(bytes(raw))
        target = tmp_path / "target"
        r = import_zk(zk.data_dir, target)
        assert r.returncode != 0, r.stdout
        assert snaps[-1].name in r.stderr and "offset 16" in r.stderr and "snappy" in r.stderr, r.stderr
        assert_target_empty(target)
    finally:
        zk.cleanup()
