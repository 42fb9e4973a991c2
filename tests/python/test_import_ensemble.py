"""A 3-server Warren ensemble seeded from an imported ZooKeeper 3.8 data directory.

A real ZooKeeper 3.8 runs the import test's workload (every node kind, ACLs, sequential nodes
after deletes, multi, binary data, live ephemerals) and stops; its dataDir is imported with
`warren import-zk` into server 1's emptied data directory (then its `myid` written back), and
servers 2 and 3 start empty. Server 1 holds the newest zxid, so it leads, and the others
catch up by SNAP: every member serves the tree ZooKeeper serves (data, every Stat field, ACLs,
children; /zookeeper aside, which holds each system's own configuration), and the ensemble
accepts writes in a new epoch that every member sees.
"""

from __future__ import annotations

import shutil

import pytest

from ensemble import Ensemble
from test_import_zk import (WARREN_CFG, assert_same_tree, close, connect, copy_sparse,
                            import_zk, read_tree, zookeeper_after_workload)

pytestmark = pytest.mark.slow


def user_tree(tree: dict) -> dict:
    """The tree without /zookeeper (each system's own quota and config nodes)."""
    out = {p: dict(v) for p, v in tree.items() if p != "/zookeeper" and not p.startswith("/zookeeper/")}
    out["/"]["children"] = [c for c in out["/"]["children"] if c != "zookeeper"]
    # The root's Stat counts /zookeeper's children too; its data, ACLs and children compare.
    out["/"]["data"] = out["/"]["data"][0]
    out["/"]["acls"] = out["/"]["acls"][0]
    return out


def test_an_imported_data_dir_seeds_a_three_server_ensemble(tmp_path):
    pristine = tmp_path / "pristine"
    with zookeeper_after_workload(tmp_path / "zk", 29, name="zookeeper(seed)") as (zk, c, _owner):
        close(c)
        zk.stop()
        copy_sparse(zk.data_dir, pristine)
        zk.start()
        cz = connect(zk)
        zk_tree = read_tree(cz)
        close(cz)
        zk.stop()
    assert "/imp" in zk_tree

    ens = Ensemble("warren", tmp_path / "ens", participants=3, name="imported",
                   extra_cfg=WARREN_CFG)
    try:
        seed = ens[1].data_dir
        shutil.rmtree(seed)
        r = import_zk(pristine, seed)
        assert r.returncode == 0, r.stderr
        ens[1].write_myid()
        for sid in (2, 3):
            assert not list((ens[sid].data_dir).glob("version-2/*")), "members 2 and 3 start empty"
        leader = ens.start(first=1)
        assert leader == 1, f"the member with the imported history leads\n{ens.describe()}"
        trees = {}
        for sid in ens.sids:
            c = connect(ens[sid])
            c.sync("/")
            trees[sid] = read_tree(c)
            close(c)
        for sid in ens.sids:
            assert_same_tree(user_tree(zk_tree), user_tree(trees[sid]))
        # Each member writes /zookeeper/config itself at start (its mtime differs), the
        # rest is the same everywhere.
        assert user_tree(trees[1]) == user_tree(trees[2]) == user_tree(trees[3])
        assert len({t["/zookeeper/config"]["data"][0] for t in trees.values()}) == 1
        # The ensemble takes writes, in an epoch above the imported one, seen everywhere.
        imported_zxid = max(v["data"][1][1] for v in zk_tree.values()
                            if isinstance(v["data"], tuple) and v["data"][0] != "error")
        w = connect(ens[2])
        w.create("/after-import", b"w")
        st = w.exists("/after-import")
        assert st.czxid >> 32 > imported_zxid >> 32, (hex(st.czxid), hex(imported_zxid))
        close(w)
        for sid in ens.sids:
            c = connect(ens[sid])
            c.sync("/after-import")
            assert c.get("/after-import")[0] == b"w", sid
            close(c)
    finally:
        ens.close()
