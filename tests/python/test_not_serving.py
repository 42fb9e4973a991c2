"""A member without a quorum (one of three started) is not serving: the four-letter words
that report the database answer ZooKeeper's not-serving text. The bytes are compared with
ZooKeeper 3.8 in the same situation.

Known difference, kept out of the comparison: ZooKeeper answers the not-serving text (``null``
for ``isro``) for every word that needs the database; Warren does so for ``srvr``, ``stat``,
``mntr`` and ``isro`` only, and answers the others from its state as when serving."""

from __future__ import annotations

import time

from ensemble import Ensemble, selected_systems
from servers import LOCALHOST, four_letter

WORDS = ("srvr", "stat", "mntr")


def lone_member_replies(system: str, base) -> dict[str, str]:
    ens = Ensemble(system, base / system, participants=3, name="ns")
    try:
        ens[1].spawn()
        deadline = time.monotonic() + 60
        while True:
            try:
                if four_letter(LOCALHOST, ens[1].port, "srvr", 2.0):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{system}: the lone member never answered srvr"
            time.sleep(0.2)
        return {w: four_letter(LOCALHOST, ens[1].port, w, 5.0) for w in (*WORDS, "isro")}
    finally:
        ens.close()


def test_a_member_without_quorum_answers_as_zookeeper(tmp_path):
    replies = {s: lone_member_replies(s, tmp_path) for s in selected_systems()}
    for system, got in replies.items():
        for w in WORDS:
            assert got[w] == "This ZooKeeper instance is not currently serving requests\n", (system, w, got[w])
        assert got["isro"] == "null", (system, got["isro"])
    if len(replies) == 2:
        assert replies["warren"] == replies["zookeeper"]
