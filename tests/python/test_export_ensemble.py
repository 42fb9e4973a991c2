"""A 3-server Warren ensemble moved back to a 3-server ZooKeeper 3.8 ensemble with
`warren export-zk` (docs/migration.md, "Moving a Warren ensemble back to ZooKeeper").

The Warren ensemble runs the import test's workload (every node kind, world/digest/ip ACLs,
sequential nodes after deletes, multi, binary and null data, ephemerals of a session that
stays open) and stops. Every member's data directory is exported; the export with the highest
last zxid goes into the matching ZooKeeper member's dataDir with its myid, the other two
ZooKeeper members start with only their myid. ZooKeeper must start cleanly on the exported
epoch files (a member whose currentEpoch is below its snapshot's epoch refuses to start), the
seeded member must lead, the empty ones must get a SNAP from it, and every member must serve
the tree Warren served (data, every Stat field, ACLs, children; /zookeeper aside, which holds
each system's own configuration). The ZooKeeper ensemble then takes writes in a new epoch:
the next sequential name under every node is the one Warren gives on its own data, and every
member sees the writes.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ensemble import Ensemble
from servers import stop_clients
from test_export_zk import WARREN_EXPORT_CFG, assert_next_sequential, export_zk
from test_import_ensemble import user_tree
from test_import_zk import (SESSION_TIMEOUT, ZK_CFG, ZK_PROPS, assert_same_tree, close, connect,
                            next_sequential, read_tree, workload)

pytestmark = pytest.mark.slow


def exported_zxid(out: Path) -> int:
    """The last zxid of an export: its one snapshot's name."""
    snaps = list((out / "version-2").glob("snapshot.*"))
    assert len(snaps) == 1, snaps
    return int(snaps[0].name.split(".")[1], 16)


def synced_tree(member) -> dict:
    c = connect(member)
    try:
        c.sync("/")
        return read_tree(c)
    finally:
        close(c)


def test_a_warren_ensemble_moves_back_to_a_zookeeper_ensemble(tmp_path):
    wr = Ensemble("warren", tmp_path / "warren", participants=3, name="back", extra_cfg=WARREN_EXPORT_CFG)
    zk = Ensemble("zookeeper", tmp_path / "zk", participants=3, name="back", extra_cfg=ZK_CFG,
                  jvm_props=ZK_PROPS)
    owner = None
    try:
        wr.start()
        c, owner = connect(wr[1]), connect(wr[2], timeout=SESSION_TIMEOUT)
        workload(c, owner, random.Random(31))
        close(c)
        served = synced_tree(wr[3])
        assert "/imp/eph-1" in served and "/imp/short-lived" not in served
        for sid in wr.sids:
            wr.stop(sid)

        # Export every member, keep the highest last zxid (as the forward procedure does).
        zxids = {}
        for sid in wr.sids:
            out = tmp_path / f"export{sid}"
            r = export_zk(wr[sid].data_dir, out)
            assert r.returncode == 0, r.stderr
            zxids[sid] = exported_zxid(out)
        best = max(wr.sids, key=lambda s: zxids[s])
        epoch = zxids[best] >> 32
        assert epoch >= 1, hex(zxids[best])
        for name in ("acceptedEpoch", "currentEpoch"):
            assert (tmp_path / f"export{best}" / "version-2" / name).read_text().strip() == str(epoch)

        seed = zk[best].data_dir
        shutil.rmtree(seed)
        shutil.copytree(tmp_path / f"export{best}", seed)
        zk[best].write_myid()
        for sid in zk.sids:
            if sid != best:
                assert sorted(p.name for p in zk[sid].data_dir.iterdir()) == ["myid"]
        leader = zk.start(first=best)
        assert leader == best, f"the member with Warren's history leads\n{zk.describe()}"
        for sid in zk.sids:
            log = zk[sid].log_since(0)
            assert "is older than the last zxid" not in log and "Unable to load database" not in log, \
                log[-3000:]
            if sid != best:
                assert zk.learner_sync_kinds_logged(sid, 0) == {"SNAP"}, zk[sid].log_since(0)[-3000:]
        assert len(re.findall(r"Sending snapshot last zxid of peer is 0x0,", zk[best].log_since(0))) == 2, \
            zk[best].log_since(0)[-3000:]
        # The leader's epoch files moved past the exported epoch.
        assert int((seed / "version-2" / "currentEpoch").read_text()) > epoch

        trees = {sid: synced_tree(zk[sid]) for sid in zk.sids}
        for sid in zk.sids:
            assert_same_tree(user_tree(served), user_tree(trees[sid]))
        # The owner's session came along: its ephemerals are there (until it expires).
        assert trees[best]["/imp/eph-1"]["data"][1][7] == owner._session_id

        # Writes: the next sequential name under every node, on the leader and a follower.
        cz = connect(zk[best])
        try:
            zk_next = next_sequential(cz, served)
            cz.create("/after-export", b"z")
            st = cz.exists("/after-export")
            assert st.czxid >> 32 > epoch, (hex(st.czxid), epoch)
        finally:
            close(cz)
        follower = next(s for s in zk.sids if s != best)
        cf = connect(zk[follower])
        try:
            cf.sync("/after-export")
            assert cf.get("/after-export")[0] == b"z"
            written = [v for v in zk_next.values() if isinstance(v, str)]
            assert len(written) > 10, zk_next
            assert all(cf.exists(p) is not None for p in written)
        finally:
            close(cf)
        zk.close()

        # Warren, restarted on its own (untouched) data, gives the same next names.
        wr.start()
        assert_next_sequential(wr[1], served, zk_next)
    finally:
        if owner is not None:
            stop_clients([owner])
        zk.close()
        wr.close()
