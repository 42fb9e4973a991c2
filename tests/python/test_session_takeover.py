"""Session takeover: can a client that knows only another session's id take it over?

ZooKeeper 3.8 derives a session's password from the id and a constant
(``new java.util.Random(sessionId ^ 0xB3415C00L).nextBytes(passwd)``), and session ids are
sequential, so anyone who can reach the client port can compute any session's password,
attach to the session and close it: its ephemerals (locks, leader latches, group members)
vanish. The test runs the attack against the real ZooKeeper, where it must succeed (that
proves the attack is computed correctly, so that its failure on Warren means something), and
against Warren, where the attacker must be refused and the victim keep its session and its
ephemeral.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import time

import pytest

from servers import ZooKeeperServer

MASK48 = (1 << 48) - 1
CLOSE_SESSION = -11


def zookeeper_password(session_id: int) -> bytes:
    """ZooKeeper's password for a session id: java.util.Random seeded with
    id ^ 0xB3415C00, then nextBytes(16)."""
    seed = ((session_id ^ 0xB3415C00) ^ 0x5DEECE66D) & MASK48
    out = bytearray()
    while len(out) < 16:
        seed = (seed * 0x5DEECE66D + 0xB) & MASK48
        r = seed >> 16  # next(32), as an unsigned 32-bit value
        for _ in range(min(4, 16 - len(out))):
            out.append(r & 0xFF)
            r >>= 8
    return bytes(out)


def early_warren_password(session_id: int) -> bytes:
    """What Warren used before passwords were random: SHA-1 of a constant from its public
    source and the id. The attacker tries it too (and the test fails on that build)."""
    return hashlib.sha1(b"warren-session-secret-v1" + struct.pack(">q", session_id)).digest()[:16]


KNOWN_FORMULAS = (zookeeper_password, early_warren_password)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def attach(host: str, port: int, session_id: int, passwd: bytes):
    """Sends a ConnectRequest for `session_id` with `passwd`; returns (socket, session id the
    server granted, timeout). A refused session comes back as id 0, timeout 0."""
    s = socket.create_connection((host, port), timeout=10)
    body = struct.pack(">iqiq", 0, 0, 30000, session_id) + struct.pack(">i", len(passwd)) + passwd + b"\x00"
    s.sendall(_frame(body))
    (n,) = struct.unpack(">i", _recv_exact(s, 4))
    resp = _recv_exact(s, n)
    _proto, timeout, granted = struct.unpack(">iiq", resp[:16])
    return s, granted, timeout


def close_session(s: socket.socket) -> None:
    s.sendall(_frame(struct.pack(">ii", 1, CLOSE_SESSION)))
    try:
        (n,) = struct.unpack(">i", _recv_exact(s, 4))
        _recv_exact(s, n)
    except (ConnectionError, OSError):
        pass


@pytest.mark.parametrize("system", ["zookeeper", "target"])
def test_another_sessions_password_cannot_be_computed(system, request, kazoo_client, unique_path):
    server = request.getfixturevalue(system)
    victim = kazoo_client(server)
    victim.create(unique_path, b"held", ephemeral=True)
    sid = victim.client_id[0]
    real_zookeeper = isinstance(server, ZooKeeperServer)
    if real_zookeeper:
        assert victim.client_id[1] == zookeeper_password(sid), "the password formula is wrong"

    attacker, granted, timeout = attach(server.host, server.port, sid, zookeeper_password(sid))
    try:
        if real_zookeeper:
            # ZooKeeper's weakness, shown so that Warren's refusal below means something.
            assert granted == sid and timeout > 0
            close_session(attacker)
            observer = kazoo_client(server)
            deadline = time.monotonic() + 10
            while observer.exists(unique_path) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert observer.exists(unique_path) is None, "the attacker's closeSession took the ephemeral"
            return
        assert (granted, timeout) == (0, 0), "the attacker was given the victim's session"
        # Refused means closed: nothing the attacker sends reaches the session.
        attacker.settimeout(5)
        assert attacker.recv(1) == b""
    finally:
        attacker.close()

    # No other formula that was ever public, and no neighbouring id (sessions are numbered
    # in order), is any easier.
    for other in (sid - 1, sid, sid + 1):
        for formula in KNOWN_FORMULAS:
            s, granted, _ = attach(server.host, server.port, other, formula(other))
            s.close()
            assert granted == 0, f"{formula.__name__} opened session {other:#x}"
    # The victim keeps its session and its ephemeral.
    assert victim.client_id[0] == sid
    assert victim.get(unique_path)[0] == b"held"
    assert victim.get(unique_path)[1].ephemeralOwner == sid


def test_the_real_password_still_resumes_the_session(target, kazoo_client, unique_path):
    """The password the server handed out (and only it) resumes the session on a new
    connection, with its ephemeral."""
    victim = kazoo_client(target)
    victim.create(unique_path, b"x", ephemeral=True)
    sid, passwd = victim.client_id
    assert len(passwd) == 16
    wrong = bytes([passwd[0] ^ 1]) + passwd[1:]
    s, granted, _ = attach(target.host, target.port, sid, wrong)
    s.close()
    assert granted == 0
    s, granted, timeout = attach(target.host, target.port, sid, passwd)
    try:
        assert granted == sid and timeout > 0
    finally:
        s.close()
    other = kazoo_client(target)
    assert other.client_id[1] != passwd
    assert other.get(unique_path)[1].ephemeralOwner == sid
