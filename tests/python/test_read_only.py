"""Read-only mode (``readonlymode.enabled``) on a real 3-server ensemble, ZooKeeper 3.8 and
Warren side by side: the same steps, the same expected outcomes.

A member cut off from its quorum serves, after a grace period of max(2000 ms, tickTime),
clients that connect with the readOnly flag: reads from its own state, NotReadOnly for every
write and for sync; ``isro`` answers ``ro``, ``srvr`` ``Mode: read-only``. A client without the
flag is refused, and so is a session the quorum knows (ZooKeeper 3.8:
"Refusing global session reconnection in RO mode"). Once the others are back the member
rejoins the ensemble, closing its read-only connections, and the clients are read-write again.
A raw read-only session compares the bytes too: the ConnectResponse and the replies to a
getData, a create, a setData, a sync and a ping (only session ids, passwords, zxids and times
normalised).

How each system is switched on (``READ_ONLY_SETTINGS``):

* ZooKeeper reads ``readonlymode.enabled`` only as a JVM system property
  (``-Dreadonlymode.enabled=true``; in zoo.cfg the key would become
  ``zookeeper.readonlymode.enabled``, which nothing reads). Its 3.8.0
  ReadOnlyRequestProcessor also refuses a createSession that is not a local session, so a
  read-only ZooKeeper 3.8.0 accepts no new session unless ``localSessionsEnabled=true``.
  ZooKeeper therefore runs with both.
* Warren reads ``readonlymode.enabled=true`` from zoo.cfg (or ``SERVER_JVMFLAGS``); its
  read-only sessions are always this server's alone (local sessions), with or without
  ``localSessionsEnabled`` (tests/python/test_local_sessions.py covers that key).

The client whose session predates the failure creates an ephemeral node, so that its session
is global in both systems (ZooKeeper upgrades a local session that creates an ephemeral).

    WARREN_ENSEMBLE_SYSTEMS=warren python3 -m pytest -q tests/python/test_read_only.py
"""

from __future__ import annotations

import socket
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError, NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

from ensemble import FAST_RETRY, Ensemble
from servers import LOCALHOST, four_letter, stop_clients
from wire import OP, XID_PING, connect_body, create_body, frame, i32, path_watch, set_data_body


# (extra zoo.cfg keys, JVM system properties) per system.
READ_ONLY_SETTINGS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "zookeeper": ({"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": "true"},
                  {"readonlymode.enabled": "true"}),
    "warren": ({"readonlymode.enabled": "true"}, {}),
}

START_TIMEOUT = 60.0
READ_ONLY_TIMEOUT = 30.0   # from stopping the others to `isro` answering `ro`
RECOVERY_TIMEOUT = 60.0    # from restarting them to read-write clients again
GLOBAL_REFUSED_WINDOW = 3.0  # how long the global session is watched not to reconnect


def wait_for(what: str, predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (KazooException, OSError) as e:  # retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")


def writes(c: KazooClient, path: str) -> bool:
    """Creates `path`; a NodeExists means an earlier attempt did (its reply was lost)."""
    try:
        c.create(path, b"")
    except NodeExistsError:
        pass
    return True


def multi_check(c: KazooClient) -> list:
    t = c.transaction()
    t.check("/ro", 0)
    return t.commit()


def isro(port: int) -> str:
    try:
        return four_letter(LOCALHOST, port, "isro", 2.0)
    except OSError as e:
        return repr(e)


def raw_connect(port: int, read_only: bool | None, timeout: float = 5.0) -> bytes:
    """Sends a new session's ConnectRequest (readOnly byte `read_only`, or none at all as a
    3.3-era client); returns the answer frame, or b"" when the server closed the connection
    without one (refused)."""
    body = connect_body(timeout=10000, read_only=read_only)
    got = b""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        s.sendall(frame(body))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(got) >= 4 and len(got) >= 4 + int.from_bytes(got[:4], "big"):
                return got
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        else:
            raise AssertionError(f"neither an answer nor a close within {timeout}s (got {got!r})")
    return got


def read_frame(s: socket.socket, deadline: float) -> bytes:
    got = b""
    while time.monotonic() < deadline:
        if len(got) >= 4 and len(got) >= 4 + int.from_bytes(got[:4], "big"):
            return got[:4 + int.from_bytes(got[:4], "big")]
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    raise AssertionError(f"no whole frame (got {got!r})")


def raw_read_only_exchange(port: int, zxid_of_ro: int) -> dict:
    """A read-only session on the wire: the ConnectResponse and the reply to a getData, a
    create, a setData, a sync and a ping, byte for byte, with the fields that differ between
    runs (session id, password, zxids) replaced by what they must equal or by their width."""
    out = {}
    with socket.create_connection((LOCALHOST, port), timeout=5.0) as s:
        deadline = time.monotonic() + 10
        s.sendall(frame(connect_body(timeout=10000, read_only=True)))
        r = read_frame(s, deadline)
        # length | protocolVersion | timeOut | sessionId | passwd (len + 16 bytes) | readOnly
        out["connect"] = (r[:12].hex(), len(r[12:20]), r[20:24].hex(), len(r[24:40]), r[40:].hex())
        requests = [
            ("getData", 1, path_watch("/ro")),
            ("create", 2, create_body("/ro-new", b"x")),
            ("setData", 3, set_data_body("/ro", b"w")),
            ("sync", 4, i32(len("/ro")) + b"/ro"),
            ("ping", XID_PING, b""),
        ]
        for name, xid, body in requests:
            s.sendall(frame(i32(xid) + i32(OP[name]) + body))
            r = read_frame(s, deadline)
            zxid = int.from_bytes(r[8:16], "big", signed=True)
            # length | xid | zxid | err | body
            body = r[16:].hex()
            if name == "getData" and len(r) == 4 + 12 + 4 + 4 + 1 + 68:
                # err | data | Stat: zxids and times vary; versions, owner, sizes must not.
                stat = r[25:]
                body = (r[16:25].hex(), stat[32:56].hex(), stat[56:60].hex())
            out[name] = (r[:8].hex(), "last zxid" if zxid == zxid_of_ro else zxid, body)
    return out


def test_a_member_without_quorum_serves_read_only_clients(ensemble_system, tmp_path):
    system = ensemble_system
    extra_cfg, jvm_props = READ_ONLY_SETTINGS[system]
    ens = Ensemble(system, tmp_path / system, participants=3, extra_cfg=extra_cfg, jvm_props=jvm_props,
                   name="ro")
    outcome: dict[str, object] = {}
    clients: list[KazooClient] = []

    def client(read_only: bool, start_timeout: float) -> KazooClient:
        c = KazooClient(hosts=ens[member].host_port, timeout=10.0, read_only=read_only,
                        connection_retry=dict(FAST_RETRY))
        clients.append(c)
        c.start(timeout=start_timeout)
        return c

    try:
        leader = ens.start(timeout=START_TIMEOUT)
        member = ens.followers(leader)[0]
        others = [s for s in ens.participants() if s != member]
        port = ens[member].port

        # A read-only-capable client of the healthy ensemble; its session becomes global.
        old = client(read_only=True, start_timeout=30.0)
        outcome["first connection"] = old.client_state
        old.create("/ro", b"v")
        old.create("/ro/child", b"c")
        old.create("/ro-lock", b"", ephemeral=True)
        old_session = old.client_id[0]
        outcome["isro while serving"] = isro(port)

        stopping = time.monotonic()  # the member cannot start looking before this
        for sid in others:
            ens.stop(sid)
        wait_for("isro answers ro", lambda: isro(port) == "ro", READ_ONLY_TIMEOUT)
        outcome["read-only after the grace period"] = time.monotonic() - stopping >= 2.0

        srvr = four_letter(LOCALHOST, port, "srvr")
        outcome["srvr mode"] = next((l for l in srvr.splitlines() if l.startswith("Mode:")), None)
        outcome["srvr read-only line"] = "READ-ONLY mode; serving only read-only clients" in srvr.splitlines()
        mntr = four_letter(LOCALHOST, port, "mntr")
        outcome["mntr server_state"] = next((l for l in mntr.splitlines()
                                             if l.startswith("zk_server_state")), None)

        # A new read-only client gets a session and reads the member's state.
        ro = client(read_only=True, start_timeout=READ_ONLY_TIMEOUT)
        outcome["new read-only client"] = ro.client_state
        outcome["reads"] = (ro.get("/ro")[0], sorted(ro.get_children("/ro")), ro.exists("/ro-lock") is not None)

        def refused(call) -> str:
            try:
                call()
                return "served"
            except NotReadOnlyCallError:
                return "NotReadOnly"

        outcome["writes"] = {
            "create": refused(lambda: ro.create("/new", b"x")),
            "set": refused(lambda: ro.set("/ro", b"w")),
            "delete": refused(lambda: ro.delete("/ro/child")),
            "sync": refused(lambda: ro.sync("/ro")),
            "multi": refused(lambda: multi_check(ro)),
        }
        outcome["value after the writes"] = ro.get("/ro")[0]

        # Clients without the readOnly flag are refused: closed without an answer.
        outcome["raw connect, readOnly=false"] = raw_connect(port, read_only=False)
        outcome["raw connect, no readOnly byte"] = raw_connect(port, read_only=None)
        outcome["raw connect, readOnly=true answered"] = len(raw_connect(port, read_only=True)) > 0
        last_zxid = int(next(l for l in srvr.splitlines() if l.startswith("Zxid:")).split()[1], 16)
        outcome["wire"] = raw_read_only_exchange(port, last_zxid)
        try:
            client(read_only=False, start_timeout=4.0)
            outcome["kazoo client without read_only"] = "connected"
        except Exception as e:  # kazoo's timeout
            outcome["kazoo client without read_only"] = type(e).__name__

        # The session the quorum knows is refused here: that client stays disconnected.
        time.sleep(GLOBAL_REFUSED_WINDOW)
        outcome["global session while read-only"] = old.client_state

        # The others come back: the member rejoins, and both clients are read-write again.
        for sid in others:
            ens.restart(sid)
        ens.wait_stable(timeout=RECOVERY_TIMEOUT)
        for name, c in (("old", old), ("ro", ro)):
            wait_for(f"the {name} client is read-write", lambda: c.client_state == KeeperState.CONNECTED,
                     RECOVERY_TIMEOUT)
            wait_for(f"the {name} client writes", lambda: writes(c, f"/after-{name}"), RECOVERY_TIMEOUT,
                     interval=0.5)
        outcome["old session kept"] = old.client_id[0] == old_session
        outcome["ephemeral kept"] = old.exists("/ro-lock") is not None
        outcome["isro after recovery"] = isro(port)
    finally:
        stop_clients(clients)
        ens.close()

    expected = {
        "first connection": KeeperState.CONNECTED,
        "isro while serving": "rw",
        "read-only after the grace period": True,
        "srvr mode": "Mode: read-only",
        "srvr read-only line": True,
        "mntr server_state": "zk_server_state\tread-only",
        "new read-only client": KeeperState.CONNECTED_RO,
        "reads": (b"v", ["child"], True),
        "writes": {w: "NotReadOnly" for w in ("create", "set", "delete", "sync", "multi")},
        "value after the writes": b"v",
        "raw connect, readOnly=false": b"",
        "raw connect, no readOnly byte": b"",
        "raw connect, readOnly=true answered": True,
        "kazoo client without read_only": "KazooTimeoutError",
        # Byte for byte, as ZooKeeper 3.8 answers (ConnectResponse of 0x25 bytes, readOnly
        # byte 1; NotReadOnly, -119 = 0xffffff89, with no body; a reply zxid that is the
        # member's last).
        "wire": {
            "connect": ("000000250000000000002710", 8, "00000010", 16, "01"),
            "getData": ("0000005900000001", "last zxid",
                        ("000000000000000176", "000000000000000100000000000000000000000000000001", "00000001")),
            "create": ("0000001000000002", "last zxid", "ffffff89"),
            "setData": ("0000001000000003", "last zxid", "ffffff89"),
            "sync": ("0000001000000004", "last zxid", "ffffff89"),
            "ping": ("00000010fffffffe", "last zxid", "00000000"),
        },
        "global session while read-only": KeeperState.CONNECTING,
        "old session kept": True,
        "ephemeral kept": True,
        "isro after recovery": "rw",
    }
    assert outcome == expected, f"{system}: {outcome}"
