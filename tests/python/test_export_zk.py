"""`warren export-zk`: a Warren that served a workload (every node kind, world/digest/ip ACLs,
sequential nodes after deletes, multis, data from null and 0 bytes to 1 MB, an open session
owning ephemerals) is stopped and exported; a real ZooKeeper 3.8 started on the result must
serve the same tree through kazoo: data, every Stat field, ACLs, children, and the name of
the next sequential node under each node. ZooKeeper must also have read the digest section
(its log names it) without reporting a mismatch.

The round trip ZooKeeper -> import-zk -> export-zk -> ZooKeeper must give back the tree the
first ZooKeeper had, and a client of the first ZooKeeper keeps its session on the last one
(ZooKeeper's session password is derived from the id, so it survives both moves).

An export into a non-empty directory, and one whose newest Warren snapshot is damaged, must
fail with the reason (file and offset for the damage) and write nothing.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from servers import WarrenServer, ZooKeeperServer, stop_clients, warren_bin
from test_import_zk import (SESSION_TIMEOUT, WARREN_CFG, ZK_CFG, ZK_PROPS, close, connect, import_zk,
                            next_sequential, read_tree, assert_same_tree, version2, workload,
                            zookeeper_after_workload)

pytestmark = pytest.mark.slow

# Small: Warren writes several snapshots during the workload, so the export reads a snapshot
# and replays the log after it.
WARREN_EXPORT_CFG = dict(WARREN_CFG, snapCount="50")
BIGGEST = 1_048_000  # close to the largest value jute.maxbuffer lets a client send


def export_zk(warren_data: Path, target: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(warren_bin()), "export-zk", str(warren_data), str(target)],
                          capture_output=True, text=True, timeout=120)


def zookeeper_on(base: Path, exported: Path, name: str) -> ZooKeeperServer:
    zk = ZooKeeperServer(base_dir=base, extra_cfg=ZK_CFG, jvm_props=ZK_PROPS, name=name)
    shutil.rmtree(zk.data_dir)
    shutil.copytree(exported, zk.data_dir)
    return zk


def zk_log(zk: ZooKeeperServer) -> str:
    return zk.log_path.read_text(errors="replace")


def assert_digest_read(zk: ZooKeeperServer, out: str) -> None:
    """ZooKeeper logs the digest it read from the snapshot and compares it with its own."""
    digest = int(out.split("digest ")[1].split()[0], 16)
    digest = digest - (1 << 64) if digest >= 1 << 63 else digest
    log = zk_log(zk)
    assert f"and digest value as {digest}" in log, log[-3000:]
    assert "not matching" not in log.lower(), log[-3000:]


def tree_and_next(server) -> tuple[dict, dict]:
    c = connect(server)
    try:
        tree = read_tree(c)
        return tree, next_sequential(c, tree)
    finally:
        close(c)


def assert_next_sequential(server, served: dict, expected: dict) -> None:
    """`server` (synced) gives the names `expected` to the next sequential node under each
    node of `served`."""
    c = connect(server)
    try:
        c.sync("/")
        assert next_sequential(c, served) == expected
    finally:
        close(c)


def test_warren_tree_served_by_zookeeper_after_export(tmp_path):
    warren = WarrenServer(base_dir=tmp_path / "warren", extra_cfg=WARREN_EXPORT_CFG, name="warren")
    owner = None
    try:
        warren.start()
        c, owner = connect(warren), connect(warren, timeout=SESSION_TIMEOUT)
        workload(c, owner, random.Random(21))
        c.create("/imp/data/biggest", random.Random(3).randbytes(BIGGEST))
        close(c)
        c = connect(warren)
        served = read_tree(c)
        close(c)
        warren.stop()
        snapshots = list(version2(warren.data_dir).glob("snapshot.*"))
        assert snapshots, "Warren wrote no snapshot: the test would not exercise snapshot + log"
        target = tmp_path / "exported"
        r = export_zk(warren.data_dir, target)
        assert r.returncode == 0, r.stderr
        assert "transactions replayed" in r.stdout and "1 sessions" in r.stdout, r.stdout
        assert "\r" not in r.stderr and "nodes (" not in r.stderr, r.stderr  # no bar without a terminal
        names = sorted(p.name for p in version2(target).iterdir())
        assert names[0] == "acceptedEpoch" and names[1] == "currentEpoch" and names[2].startswith("snapshot."), names
        assert len(names) == 3, names
        zk = zookeeper_on(tmp_path / "zk", target, "zookeeper(exported)")
        try:
            zk.start()
            assert_digest_read(zk, r.stdout)
            # The owner's session is in the snapshot: ZooKeeper keeps its ephemerals (until it
            # expires, the client cannot resume it with Warren's random password).
            assert f"0x{owner._session_id:x}" in zk.four_letter("dump"), zk.four_letter("dump")
            cz = connect(zk)
            try:
                assert_same_tree(served, read_tree(cz))
                zk_next = next_sequential(cz, served)
            finally:
                close(cz)
        finally:
            zk.cleanup()
        # The next sequential names: Warren restarted on its own (untouched) data.
        warren.start()
        assert_next_sequential(warren, served, zk_next)
    finally:
        if owner is not None:
            stop_clients([owner])
        warren.cleanup()


def test_round_trip_zookeeper_warren_zookeeper(tmp_path):
    with zookeeper_after_workload(tmp_path / "zk", 22, name="zookeeper(original)") as (zk, c, owner):
        close(c)
        zk.stop()
        imported, exported = tmp_path / "imported", tmp_path / "exported"
        ri = import_zk(zk.data_dir, imported)
        assert ri.returncode == 0, ri.stderr
        re_ = export_zk(imported, exported)
        assert re_.returncode == 0, re_.stderr
        back = zookeeper_on(tmp_path / "zk-back", exported, "zookeeper(round trip)")
        try:
            back.start()
            assert_digest_read(back, re_.stdout)
            tree_back, next_back = tree_and_next(back)
            zk.start()
            tree_orig, next_orig = tree_and_next(zk)
            assert_same_tree(tree_orig, tree_back)
            assert next_orig == next_back
            # The owner comes back with ZooKeeper's password: the same session, its ephemeral.
            sid, passwd = owner._session_id, owner._session_passwd
            resumed = KazooClient(hosts=back.host_port, timeout=SESSION_TIMEOUT, client_id=(sid, passwd))
            resumed.start(timeout=15)
            try:
                assert resumed.client_id[0] == sid
                assert resumed.get("/imp/eph-1")[1].ephemeralOwner == sid
            finally:
                stop_clients([resumed])
        finally:
            back.cleanup()


def test_non_empty_target_is_refused_and_left_alone(tmp_path):
    zk_like = tmp_path / "warren"
    warren = WarrenServer(base_dir=zk_like, extra_cfg=WARREN_EXPORT_CFG, name="warren")
    try:
        warren.start()
        c = connect(warren, auth=False)
        c.create("/x", b"1")
        close(c)
        warren.stop()
        target = tmp_path / "target"
        target.mkdir()
        (target / "keep").write_text("mine")
        r = export_zk(warren.data_dir, target)
        assert r.returncode != 0 and "not empty" in r.stderr, r.stderr
        assert sorted(p.name for p in target.iterdir()) == ["keep"]
        assert not [p for p in tmp_path.iterdir() if ".export-" in p.name]
    finally:
        warren.cleanup()


def test_damaged_warren_snapshot_stops_the_export(tmp_path):
    with zookeeper_after_workload(tmp_path / "zk", 23, name="zookeeper") as (zk, c, _owner):
        close(c)
        zk.stop()
        imported = tmp_path / "imported"
        assert import_zk(zk.data_dir, imported).returncode == 0
    snap = next(version2(imported).glob("snapshot.*"))
    b = bytearray(snap.read_bytes())
    b[len(b) // 2] ^= 0x08
    snap.write_bytes(bytes(b))
    target = tmp_path / "target"
    r = export_zk(imported, target)
    assert r.returncode != 0
    assert str(snap) in r.stderr and "offset" in r.stderr and "nothing written" in r.stderr, r.stderr
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if ".export-" in p.name]
