"""Durability across restarts of a fresh target (same port, same data directory).

ZooKeeper logs (and by default fsyncs) every transaction before it answers, so anything
acknowledged survives a clean stop and a SIGKILL alike.
"""

from __future__ import annotations

import pytest
from kazoo.exceptions import NoNodeError


def _state(client, paths):
    out = {}
    for p in paths:
        try:
            data, st = client.get(p)
            out[p] = (data, st.czxid, st.mzxid, st.pzxid, st.version, st.cversion,
                      st.aversion, st.ephemeralOwner, st.numChildren, st.ctime, st.mtime)
        except NoNodeError:
            out[p] = None
    return out


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_tree_survives_restart(fresh_target, kazoo_client, how):
    c = kazoo_client(fresh_target)
    c.create("/p", b"one")
    c.create("/p/a", b"x" * 1000)
    c.set("/p", b"two")
    c.set_acls("/p/a", c.get_acls("/p/a")[0])
    seq1 = c.create("/p/s-", sequence=True)
    c.delete(seq1)
    t = c.transaction()
    t.create("/p/m1", b"m")
    t.create("/p/m2", b"m")
    t.commit()
    c.create("/p/gone", b"")
    c.delete("/p/gone")
    eph_owner = kazoo_client(fresh_target)
    eph_owner.create("/p/eph-closed", ephemeral=True)
    eph_owner.stop()  # closed before the restart: must stay gone
    paths = ["/p", "/p/a", "/p/m1", "/p/m2", "/p/gone", "/p/eph-closed", seq1]
    before = _state(c, paths)
    last_zxid = max(v[2] for v in before.values() if v)
    c.stop()

    if how == "stop":
        fresh_target.restart()
    else:
        fresh_target.kill()
        fresh_target.start()

    c2 = kazoo_client(fresh_target)
    assert _state(c2, paths) == before
    assert sorted(c2.get_children("/p")) == ["a", "m1", "m2"]
    # zxids keep increasing and sequence numbers are not reused after the restart
    n = c2.create("/p/new", include_data=True)[1]
    assert n.czxid > last_zxid
    seq2 = c2.create("/p/s-", sequence=True)
    assert seq2 > seq1
