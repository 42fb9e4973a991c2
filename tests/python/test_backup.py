"""Online backup and offline restore (ZooKeeper 3.9's /commands/snapshot, `warren backup`,
`warren restore`).

- Under write load, a backup taken with `warren backup` and restored into a new data
  directory holds exactly the state at the backup's zxid: every acknowledged write at or
  before it, none after (each write's zxid is known from the Stat it returned).
- `warren snap-dump` reads a backup; `streaming=false` saves the snapshot in the data directory.
- The command is off by default (503), needs ALL on "/" (401 without credentials, 403 with
  wrong ones, as ZooKeeper 3.9 asks), and is rate limited (429).
- A damaged backup or a data directory that is not empty: restore refuses and writes nothing.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from servers import WarrenServer, free_port, warren_bin


def admin_server(tmp_path, name, **extra) -> WarrenServer:
    port = free_port()
    cfg = {"admin.enableServer": "true", "admin.serverPort": str(port), **extra}
    server = WarrenServer(base_dir=tmp_path / name, extra_cfg=cfg, name=name)
    server.admin = f"http://127.0.0.1:{port}"
    return server


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def warren(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(warren_bin()), *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def client(server) -> KazooClient:
    zk = KazooClient(hosts=server.host_port, timeout=10)
    zk.start(timeout=15)
    return zk


def populate(zk: KazooClient, bulk: int) -> None:
    """/bk/n0../bk/n199 (the writers' targets) and `bulk` nodes under /bulk."""
    zk.create("/bk")
    for i in range(200):
        zk.create(f"/bk/n{i}", b"0")
    zk.create("/bulk")
    for lo in range(0, bulk, 2000):
        for r in [zk.create_async(f"/bulk/{i}", b"b" * 100) for i in range(lo, min(bulk, lo + 2000))]:
            r.get(timeout=30)


def backup_zxid(out: str) -> int:
    """The zxid `warren backup` printed."""
    return int(out.split("zxid ")[1].split(",")[0], 16)


def backup_under_load(server, backup, settle: float):
    """Two writers set /bk/n* and create sequential nodes; `warren backup` runs after 1 s, the
    writers go on for `settle` s more. Returns the backup's zxid and the acknowledged writes
    (path, value, zxid) at or before it and after it; both must be there."""
    writes: list[tuple[str, bytes, int]] = []
    stop = threading.Event()

    def writer(k):
        w = client(server)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                path, value = f"/bk/n{(n * 7 + k) % 200}", f"{k}-{n}".encode()
                st = w.set(path, value)
                writes.append((path, value, st.mzxid))
                if n % 10 == 0:
                    p = w.create(f"/bk/s{k}-", b"seq", sequence=True)
                    writes.append((p, b"seq", w.exists(p).czxid))
        finally:
            w.stop()
            w.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    try:
        zxid = backup_zxid(warren("backup", "--admin", server.admin, backup).stdout)
        time.sleep(settle)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    before = [w for w in writes if w[2] <= zxid]
    after = [w for w in writes if w[2] > zxid]
    assert before and after, f"the backup did not fall inside the load ({len(writes)} writes)"
    return zxid, before, after


def test_backup_under_load_restores_the_state_at_its_zxid(tmp_path):
    live = admin_server(tmp_path, "live", **{"admin.snapshot.enabled": "true",
                                             "admin.rateLimiterIntervalInMS": "0"})
    live.start()
    restored = None
    try:
        zk = client(live)
        # Enough nodes for a capture of several chunks (4096 nodes each), with yields between
        # them where the writers' transactions land: those are replayed over the capture.
        populate(zk, bulk=20000)
        backup = tmp_path / "live.backup"
        zxid, before, after = backup_under_load(live, backup, settle=0.5)

        dump = warren("snap-dump", backup).stdout
        assert dump.startswith(f"Warren snapshot: start zxid {zxid:#x}, end zxid {zxid:#x}")

        restored = WarrenServer(base_dir=tmp_path / "restored", name="restored")
        print(warren("restore", backup, restored.data_dir).stdout)
        restored.start()
        rz = client(restored)
        expected: dict[str, bytes] = {}
        for path, value, mz in sorted(before, key=lambda w: w[2]):
            expected[path] = value
        for path, value in expected.items():
            data, st = rz.get(path)
            assert data == value and st.mzxid <= zxid, (path, data, value, st.mzxid, zxid)
        created_after = {p for p, _, z in after if "/s" in p}
        for p in created_after:
            assert rz.exists(p) is None, f"{p} was created after the backup's zxid"
        # The restored server continues from the backup's zxid.
        assert rz.exists("/bk").mzxid <= zxid
        st = rz.set("/bk", b"after restore")
        assert st.mzxid > zxid
        rz.stop()
        zk.stop()
    finally:
        live.cleanup()
        if restored is not None:
            restored.cleanup()


def test_off_by_default_auth_rate_limit_and_saving_in_place(tmp_path):
    off = admin_server(tmp_path, "off")
    off.start()
    try:
        status, _, body = get(f"{off.admin}/commands/snapshot")
        assert status == 503 and "admin.snapshot.enabled" in json.loads(body)["error"]
    finally:
        off.cleanup()

    on = admin_server(tmp_path, "on", **{"admin.snapshot.enabled": "true",
                                         "admin.rateLimiterIntervalInMS": "600000"})
    on.start()
    try:
        zk = client(on)
        zk.add_auth("digest", "admin:pw")
        zk.set_acls("/", [make_digest_acl("admin", "pw", all=True)])
        status, _, _ = get(f"{on.admin}/commands/snapshot")
        assert status == 401
        status, _, _ = get(f"{on.admin}/commands/snapshot",
                           {"Authorization": "digest admin:wrong"})
        assert status == 403
        status, headers, body = get(f"{on.admin}/commands/snap?streaming=false",
                                    {"Authorization": "digest admin:pw"})
        assert status == 200, body
        assert json.loads(body) == {"command": "snapshot", "error": None}
        zxid = int(headers["last_zxid"], 16)
        assert int(headers["snapshot_size"]) > 0
        saved = on.data_dir / "version-2" / f"snapshot.{zxid:x}"
        assert saved.is_file() and saved.stat().st_size == int(headers["snapshot_size"])
        # the next one within admin.rateLimiterIntervalInMS
        status, _, _ = get(f"{on.admin}/commands/snapshot", {"Authorization": "digest admin:pw"})
        assert status == 429
        # a restart recovers from the saved snapshot like from any other
        zk.stop()
        on.restart()
        zk = client(on)
        zk.add_auth("digest", "admin:pw")
        assert zk.get_acls("/")[0][0].id.scheme == "digest"
        zk.stop()
    finally:
        on.cleanup()


def test_restore_refuses_damage_and_a_used_directory(tmp_path):
    live = admin_server(tmp_path, "src", **{"admin.snapshot.enabled": "true"})
    live.start()
    try:
        zk = client(live)
        zk.create("/r", b"x" * 1000)
        zk.stop()
        good = tmp_path / "good.backup"
        warren("backup", "--admin", live.admin, good)
    finally:
        live.cleanup()
    image = good.read_bytes()
    for name, bad in [("flipped", image[:len(image) // 2] + bytes([image[len(image) // 2] ^ 1])
                       + image[len(image) // 2 + 1:]),
                      ("truncated", image[:-20])]:
        f = tmp_path / f"{name}.backup"
        f.write_bytes(bad)
        target = tmp_path / f"target-{name}"
        r = warren("restore", f, target, check=False)
        assert r.returncode != 0 and "restore failed" in r.stderr, r.stderr
        assert not target.exists() or not any(target.rglob("*")), list(target.rglob("*"))
    target = tmp_path / "target-used"
    warren("restore", good, target)
    r = warren("restore", good, target, check=False)
    assert r.returncode != 0 and "restore into an empty data directory" in r.stderr
    # backup from a server whose command is off: a clear error, no file
    off = admin_server(tmp_path, "off2")
    off.start()
    try:
        out = tmp_path / "never.backup"
        r = warren("backup", "--admin", off.admin, out, check=False)
        assert r.returncode != 0 and "HTTP 503" in r.stderr, r.stderr
        assert not out.exists()
    finally:
        off.cleanup()


def test_restore_one_ensemble_member_and_the_others_catch_up(tmp_path):
    """A standalone server's backup restored into server 1 of a new 3-server ensemble; 2 and 3
    start empty. Server 1 has the newest zxid, so it leads and the others receive the tree by
    SNAP: every member serves the restored data, and writes go on from there."""
    from ensemble import Ensemble

    src = admin_server(tmp_path, "standalone", **{"admin.snapshot.enabled": "true"})
    src.start()
    try:
        zk = client(src)
        zk.create("/app/config", b"v1", makepath=True)
        for i in range(50):
            zk.create(f"/app/item-", str(i).encode(), sequence=True)
        zk.stop()
        backup = tmp_path / "standalone.backup"
        zxid = backup_zxid(warren("backup", "--admin", src.admin, backup).stdout)
    finally:
        src.cleanup()
    ens = Ensemble("warren", tmp_path / "ens", participants=3, name="restored")
    try:
        warren("restore", backup, ens[1].data_dir)
        leader = ens.start()
        assert leader == 1, ens.describe()
        for sid in ens.sids:
            c = ens.client(sids=[sid])
            assert c.get("/app/config")[0] == b"v1", sid
            assert len(c.get_children("/app")) == 51, sid
        c = ens.client(sids=[2])
        st = c.set("/app/config", b"v2")
        assert st.mzxid >> 32 > zxid >> 32, "a new epoch after the restored one"
        c3 = ens.client(sids=[3])
        c3.sync("/app/config")
        assert c3.get("/app/config")[0] == b"v2"
    finally:
        ens.close()
