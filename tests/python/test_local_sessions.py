"""Local sessions (``localSessionsEnabled``, ``localSessionsUpgradingEnabled``) on a real
3-server ensemble, ZooKeeper 3.8 and Warren side by side: the same steps, the same expected
outcomes.

A local session is created by the member its client connects to, without a transaction; the
quorum never hears of it. It reads and writes like any session (its writes go through the
leader under its id), but it cannot create an ephemeral node: without upgrading that create
fails with EphemeralOnLocalSession; with upgrading the member first makes the session global
(a createSession transaction), then creates the node. Without upgrading, a multi with an
ephemeral create reaches the leader, which does not know the session and answers that op
SessionExpired, as ZooKeeper's does. A local session cannot move: another member does not
know it and tells its client the session expired. A global (upgraded) session moves as
usual, and its ephemerals go when it closes.

    WARREN_ENSEMBLE_SYSTEMS=warren python3 -m pytest -q tests/python/test_local_sessions.py
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from kazoo.client import KazooClient

from ensemble import FAST_RETRY, Ensemble
from servers import LOCALHOST, four_letter, stop_clients
from wire import connect_body, frame

START_TIMEOUT = 60.0


def settings(upgrading: bool) -> dict[str, str]:
    return {"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": str(upgrading).lower()}


def resume(port: int, session_id: int, passwd: bytes, timeout: float = 10.0) -> tuple[int, int]:
    """Asks the server on `port` to resume a session: (session id, timeout) of its answer;
    (0, 0) is ZooKeeper's "expired"."""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        s.sendall(frame(connect_body(timeout=10000, session_id=session_id, passwd=passwd)))
        got = b""
        while len(got) < 4 or len(got) < 4 + int.from_bytes(got[:4], "big"):
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError(f"closed without a ConnectResponse (got {got!r})")
            got += chunk
    _, negotiated, sid = struct.unpack(">iiq", got[4:20])
    return sid, negotiated


def outcome_of(call) -> str:
    try:
        call()
        return "ok"
    except Exception as e:  # the kazoo exception's name is the outcome
        return type(e).__name__


def mntr_value(port: int, key: str) -> str | None:
    for line in four_letter(LOCALHOST, port, "mntr").splitlines():
        name, _, value = line.partition("\t")
        if name == key:
            return value
    return None


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("upgrading", [False, True], ids=["no-upgrading", "upgrading"])
def test_local_sessions_match_zookeeper(ensemble_system, upgrading, tmp_path):
    system = ensemble_system
    ens = Ensemble(system, tmp_path / system, participants=3, extra_cfg=settings(upgrading), name="ls")
    clients: list[KazooClient] = []
    outcome: dict[str, object] = {}

    def client(sid: int, **kw) -> KazooClient:
        c = KazooClient(hosts=ens[sid].host_port, timeout=10.0, connection_retry=dict(FAST_RETRY), **kw)
        clients.append(c)
        c.start(timeout=30.0)
        return c

    try:
        leader = ens.start(timeout=START_TIMEOUT)
        member, other = ens.followers(leader)[:2]
        c = client(member)
        sid, passwd = c.client_id
        outcome["local sessions on the member"] = mntr_value(ens[member].port, "zk_local_sessions")
        outcome["create"] = outcome_of(lambda: c.create("/ls", b"v"))
        outcome["set"] = outcome_of(lambda: c.set("/ls", b"w"))
        reader = client(other)
        reader.sync("/ls")
        outcome["value on another member after sync"] = reader.get("/ls")[0]

        def ephemeral_multi():
            """The multi's outcome: raised, or each op's result kind (kazoo returns a failed
            op's error inside the result list)."""
            t = c.transaction()
            t.create("/ls/m", b"", ephemeral=True)
            t.create("/ls/m2", b"")
            try:
                return [type(r).__name__ for r in t.commit()]
            except Exception as e:
                return type(e).__name__

        if upgrading:
            outcome["ephemeral create"] = outcome_of(lambda: c.create("/ls/e", b"", ephemeral=True))
            outcome["ephemeral in a multi"] = ephemeral_multi()
            outcome["local sessions on the member after upgrading"] = mntr_value(ens[member].port,
                                                                                 "zk_local_sessions")
            # Global now: it moves to another member, and keeps its ephemerals.
            outcome["resumed on another member"] = resume(ens[other].port, sid, passwd)[0] == sid
            moved = client(other, client_id=(sid, passwd))
            outcome["same session after the move"] = moved.client_id[0] == sid
            outcome["ephemeral owner"] = moved.exists("/ls/e").ephemeralOwner == sid
            moved.stop()
            moved.close()
            watcher = client(leader)
            deadline = time.monotonic() + 20
            while watcher.exists("/ls/e") is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            outcome["ephemerals after close"] = sorted(watcher.get_children("/ls"))
        else:
            outcome["ephemeral create"] = outcome_of(lambda: c.create("/ls/e", b"", ephemeral=True))
            outcome["ephemeral in a multi"] = ephemeral_multi()
            outcome["persistent child"] = outcome_of(lambda: c.create("/ls/p", b""))
            # A local session cannot move: another member says it expired.
            outcome["resumed on another member"] = resume(ens[other].port, sid, passwd)
            # It resumes on its own member.
            outcome["resumed on its member"] = resume(ens[member].port, sid, passwd)[0] == sid
            outcome["children"] = sorted(reader.get_children("/ls"))
    finally:
        stop_clients(clients)
        ens.close()

    expected: dict[str, object] = {
        "local sessions on the member": "1",
        "create": "ok",
        "set": "ok",
        "value on another member after sync": b"w",
    }
    if upgrading:
        expected.update({
            "ephemeral create": "ok",
            "ephemeral in a multi": ["str", "str"],
            "local sessions on the member after upgrading": "0",
            "resumed on another member": True,
            "same session after the move": True,
            "ephemeral owner": True,
            "ephemerals after close": ["m2"],
        })
    else:
        expected.update({
            "ephemeral create": "EphemeralOnLocalSessionError",
            # The multi reaches the leader, which does not know the session: its ephemeral
            # create fails there (ZooKeeper's checkGlobalSession), the rest is not applied.
            "ephemeral in a multi": ["SessionExpiredError", "RuntimeInconsistency"],
            "persistent child": "ok",
            "resumed on another member": (0, 0),
            "resumed on its member": True,
            "children": ["p"],
        })
    assert outcome == expected, f"{system}: {outcome}"
