"""Online restore (ZooKeeper 3.9's POST /commands/restore, `warren restore --admin`).

- A backup taken under write load, more writes, then the backup restored into the running
  server: the tree equals the backup's state exactly (every node's data, Stat and ACL, compared
  with the same backup restored offline into another server, and every acknowledged write at
  or before the backup's zxid present, none after); client connections are closed and a
  session the backup holds resumes with its ephemeral; the server stands at a new epoch above
  every zxid it had. A restart comes back with the restored state, and new writes go on with
  increasing zxids.
- Refusals, each leaving the server serving its tree unchanged: off by default (503, as
  ZooKeeper answers a disabled command), no credentials (401), wrong ones (403), a damaged or
  truncated body (400), a GET (405), a second restore within admin.rateLimiterIntervalInMS
  (429), an ensemble member (409).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from servers import WarrenServer
from test_backup import admin_server, backup_under_load, client, populate, warren


def post(url, body: bytes, headers=None):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/octet-stream",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def walk(zk: KazooClient, path: str = "/") -> dict[str, tuple]:
    """Every node under `path`: data, the whole Stat, ACLs."""
    out = {}
    data, st = zk.get(path)
    acls = [(a.perms, a.id.scheme, a.id.id) for a in zk.get_acls(path)[0]]
    out[path] = (data, tuple(st), acls)
    for child in zk.get_children(path):
        out.update(walk(zk, f"{path.rstrip('/')}/{child}"))
    return out


def test_online_restore_under_load_survives_a_restart(tmp_path):
    live = admin_server(tmp_path, "live", **{"admin.snapshot.enabled": "true",
                                             "admin.restore.enabled": "true",
                                             "admin.rateLimiterIntervalInMS": "0",
                                             "snapCount": "2000"})
    live.start()
    reference = None
    try:
        zk = client(live)
        populate(zk, bulk=6000)
        # A session the backup will hold, with an ephemeral; and a watch, which the restore drops.
        keeper = client(live)
        keeper.create("/bk/eph-keeper", b"k", ephemeral=True)
        keeper_session = keeper.client_id[0]
        backup = tmp_path / "live.backup"
        zxid, before, after = backup_under_load(live, backup, settle=1.5)  # writes to undo
        # Created after the backup: an ephemeral of a session the backup does not know.
        late = client(live)
        late.create("/bk/eph-late", b"l", ephemeral=True)
        zk.create("/after-backup", b"gone soon")
        old_zxid = zk.exists("/after-backup").czxid
        fired = []
        zk.get("/bk/n0", watch=lambda e: fired.append(e))

        # The same backup restored offline into another server: the reference tree.
        reference = WarrenServer(base_dir=tmp_path / "reference", name="reference")
        warren("restore", backup, reference.data_dir)
        reference.start()
        rc = client(reference)
        expected = walk(rc)
        rc.stop()
        reference.cleanup()
        reference = None

        out = warren("restore", "--admin", live.admin, backup).stdout
        assert f"backup at zxid {zxid:#x}" in out, out
        restored_zxid = int(out.split("stands at zxid ")[1].strip(), 16)
        assert restored_zxid >> 32 > old_zxid >> 32 and restored_zxid & 0xFFFFFFFF == 0, out

        zk2 = client(live)
        got = walk(zk2)
        assert got.keys() == expected.keys(), (sorted(got.keys() - expected.keys())[:5],
                                                sorted(expected.keys() - got.keys())[:5])
        for path in expected:
            assert got[path] == expected[path], path
        last = {}
        for path, value, _ in sorted(before, key=lambda w: w[2]):
            last[path] = value
        for path, value in last.items():
            assert got[path][0] == value, (path, got[path][0], value)
        for path, _, z in after:
            if "/s" in path:
                assert path not in got, f"{path} was created after the backup (zxid {z:#x})"
        assert "/after-backup" not in got and "/bk/eph-late" not in got
        assert "/bk/eph-keeper" in got
        # The keeper's session is in the backup: its client reconnects and keeps it.
        deadline = time.time() + 20
        while time.time() < deadline and not keeper.connected:
            time.sleep(0.1)
        assert keeper.connected and keeper.client_id[0] == keeper_session
        assert keeper.exists("/bk/eph-keeper") is not None
        # The watch was dropped with the old state: a change does not fire it.
        zk2.set("/bk/n0", b"changed after restore")
        time.sleep(1.0)
        assert not [e for e in fired if e.type == "CHANGED"], fired
        zk2.create("/after-restore", b"new")
        new_zxid = zk2.exists("/after-restore").czxid
        assert restored_zxid < new_zxid < restored_zxid + 100, hex(new_zxid)
        for c in (zk, zk2, keeper, late):
            c.stop()

        # The restart comes back with the restored state, plus the writes after it (the
        # keeper's close deleted its ephemeral, changing /bk's Stat).
        live.restart()
        zk3 = client(live)
        again = walk(zk3)
        assert "/bk/eph-keeper" not in again
        for path in expected:
            if path not in ("/bk/n0", "/bk", "/", "/bk/eph-keeper"):
                assert again[path] == expected[path], path
        assert again["/bk/n0"][0] == b"changed after restore"
        assert again["/after-restore"][0] == b"new"
        assert "/after-backup" not in again
        st = zk3.set("/after-restore", b"newer")
        assert st.mzxid > new_zxid
        zk3.stop()
        # Only the restored snapshot and what followed it remain.
        snaps = sorted(p.name for p in (live.data_dir / "version-2").glob("snapshot.*"))
        assert all(int(s.split(".")[1], 16) >= restored_zxid for s in snaps), snaps
    finally:
        live.cleanup()
        if reference is not None:
            reference.cleanup()


def test_online_restore_refusals_leave_the_server_as_it_was(tmp_path):
    src = admin_server(tmp_path, "src", **{"admin.snapshot.enabled": "true"})
    src.start()
    try:
        zk = client(src)
        zk.create("/from-backup", b"b")
        zk.stop()
        good = tmp_path / "good.backup"
        warren("backup", "--admin", src.admin, good)
    finally:
        src.cleanup()
    image = good.read_bytes()

    off = admin_server(tmp_path, "off")
    off.start()
    try:
        status, body = post(f"{off.admin}/commands/restore", image)
        assert status == 503 and "admin.restore.enabled" in json.loads(body)["error"], body
        r = warren("restore", "--admin", off.admin, good, check=False)
        assert r.returncode != 0 and "HTTP 503" in r.stderr, r.stderr
    finally:
        off.cleanup()

    on = admin_server(tmp_path, "on", **{"admin.restore.enabled": "true",
                                         "admin.rateLimiterIntervalInMS": "600000"})
    on.start()
    try:
        zk = client(on)
        zk.create("/mine", b"m")
        zk.add_auth("digest", "admin:pw")
        zk.set_acls("/", [make_digest_acl("admin", "pw", all=True)])
        url = f"{on.admin}/commands/restore"
        auth = {"Authorization": "digest admin:pw"}
        assert post(url, image)[0] == 401
        assert post(url, image, {"Authorization": "digest admin:wrong"})[0] == 403
        n = len(image)
        flipped = image[:n // 2] + bytes([image[n // 2] ^ 1]) + image[n // 2 + 1:]
        for bad in (flipped, image[:-20], b"", b"not a backup at all"):
            status, body = post(url, bad, auth)
            assert status == 400, (status, body)
            assert "nothing was changed" in json.loads(body)["error"]
        req = urllib.request.Request(url, headers=auth)
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("a GET restored")
        except urllib.error.HTTPError as e:
            assert e.code == 405
        # Nothing changed, and the server still serves the old tree on the same connection.
        assert zk.connected and zk.get("/mine")[0] == b"m"
        assert zk.exists("/from-backup") is None
        # A client-side check too: a damaged file is never sent.
        bad_file = tmp_path / "bad.backup"
        bad_file.write_bytes(flipped)
        r = warren("restore", "--admin", on.admin, "--auth", "admin:pw", bad_file, check=False)
        assert r.returncode != 0 and "nothing was sent" in r.stderr, r.stderr
        # The good one goes through, once per interval.
        status, body = post(url, image, auth)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["command"] == "restore" and answer["error"] is None
        assert answer["last_zxid"] >> 32 > answer["backup_zxid"] >> 32
        assert post(url, image, auth)[0] == 429
        zk.stop()
        zk = client(on)
        assert zk.get("/from-backup")[0] == b"b" and zk.exists("/mine") is None
        zk.stop()
    finally:
        on.cleanup()


def test_online_restore_is_refused_in_an_ensemble(tmp_path):
    from ensemble import Ensemble
    from servers import free_port

    src = admin_server(tmp_path, "src", **{"admin.snapshot.enabled": "true"})
    src.start()
    try:
        good = tmp_path / "good.backup"
        warren("backup", "--admin", src.admin, good)
    finally:
        src.cleanup()
    ens = Ensemble("warren", tmp_path / "ens", participants=3, name="restore-ens")
    try:
        port = free_port()
        ens[1].extra_cfg.update({"admin.enableServer": "true", "admin.serverPort": str(port),
                                 "admin.restore.enabled": "true"})
        ens[1]._write_cfg()
        ens.start()
        c = ens.client(sids=[1])
        c.create("/kept", b"k")
        status, body = post(f"http://127.0.0.1:{port}/commands/restore", good.read_bytes())
        assert status == 409 and "ensemble" in json.loads(body)["error"], body
        assert c.get("/kept")[0] == b"k"
    finally:
        ens.close()
