"""Ensemble members named by host names that resolve late and move (issue 15, "Host names").

Three Warren servers on loopback addresses 127.A.B.1-4 (A, B random per run). Every member's
``zoo.cfg`` lists servers 1 and 2 by IP and server 3 as ``warren-late-peer-<random>.test``, a
name that resolves nowhere at first. Server 3's own line uses the name too (rather than its IP),
as a pod's configuration would: that way one run covers both halves of the behaviour, the peers
dialling a name that resolves late and a server binding its own ports once its own name
resolves. The name is then added to /etc/hosts for 127.A.B.3, server 3 joins; later it stops,
the name moves to 127.A.B.4, server 3 starts there and rejoins.

Shown: servers 1 and 2 serve while the name does not resolve, server 3 does not (and binds no
port in place of its name); once the name resolves, a write through server 1 is read through
server 3, whose ``srvr`` says follower; after the move, server 3 serves at the new address with
the data, including a write made while it was away. Server 1's log names the unresolved name,
reports the new address, and never mentions 0.0.0.0 (an unresolved name used to become
``0.0.0.0:port``, which on one host even reaches the right server, so the log is the witness).

Run in plaintext and with quorum TLS (``sslQuorum``, hostname verification on: each certificate
names its server's host as its ``server.N`` line writes it, server 3's the name). Under TLS the
peer TLS executor dials the address the links resolved, and server 3, whose name resolves only
after start, hands its late-bound election port to that executor.

Needs root and a writable /etc/hosts (skipped otherwise). /etc/hosts is written in place and
restored byte for byte in ``finally``. glibc reads /etc/hosts at each lookup (no nscd here):
the test checks that with ``getaddrinfo`` after each edit rather than assuming it.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from ensemble import PORTS, parse_mode
from pki import Pki
from servers import WarrenServer, four_letter

HOSTS = Path("/etc/hosts")
JOIN_TIMEOUT = 90.0  # the machine is shared and slow: wide margins


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the test adds a name to /etc/hosts"
    if not os.access(HOSTS, os.W_OK):
        return f"{HOSTS} is not writable"
    return None


class Member(WarrenServer):
    """A Warren ensemble member on its own loopback address (no readiness wait at start)."""

    def __init__(self, sid: int, ip: str, servers: dict[int, str], base_dir: Path, extra: dict | None = None):
        self.sid, self.ip, self.servers = sid, ip, servers
        super().__init__(base_dir=base_dir, port=PORTS.take(1)[0], extra_cfg=extra, name=f"warren-{sid}")
        self.host = ip
        (self.data_dir / "myid").write_text(f"{sid}\n")
        self._write_cfg()

    def cfg_lines(self) -> dict[str, str]:
        cfg = super().cfg_lines()
        cfg.update({"tickTime": "1000", "initLimit": "10", "syncLimit": "5",
                    "clientPortAddress": self.ip})
        for sid, line in sorted(self.servers.items()):
            cfg[f"server.{sid}"] = line
        return cfg

    def move_to(self, ip: str) -> None:
        self.ip = self.host = ip
        self._write_cfg()

    def mode(self) -> str | None:
        try:
            return parse_mode(four_letter(self.ip, self.port, "srvr", timeout=3.0))
        except OSError:
            return None

    def log(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""


def wait_for(what: str, timeout: float, cond, members) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for m in members:
            assert m.proc is None or m.proc.poll() is None, f"{m.name} exited:\n{m.log_tail()}"
        time.sleep(0.25)
    tails = "\n".join(m.log_tail(30) for m in members)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")


def resolves_to(name: str) -> str | None:
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror:
        return None


def point(name: str, ip: str | None, original: bytes) -> None:
    """/etc/hosts as found, plus `ip name` (written in place: same inode and mode)."""
    extra = f"{ip} {name}\n".encode() if ip else b""
    sep = b"" if not original or original.endswith(b"\n") else b"\n"
    with open(HOSTS, "wb") as f:
        f.write(original + (sep + extra if extra else b""))
    seen = resolves_to(name)
    assert seen == ip, f"after editing {HOSTS}, {name} resolves to {seen}, not {ip}: is a cache (nscd) in the way?"


def read(ip: str, port: int, paths: list[str]) -> list[bytes]:
    c = KazooClient(hosts=f"{ip}:{port}", timeout=10.0)
    try:
        c.start(timeout=30.0)
        c.sync(paths[0])
        return [c.get(p)[0] for p in paths]
    finally:
        c.stop()
        c.close()


def write(ip: str, port: int, path: str, data: bytes) -> None:
    c = KazooClient(hosts=f"{ip}:{port}", timeout=10.0)
    try:
        c.start(timeout=30.0)
        c.create(path, data)
    finally:
        c.stop()
        c.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("quorum_tls", [False, True], ids=["plaintext", "tls"])
def test_a_peer_named_by_a_late_and_moving_host_name_joins_and_rejoins(quorum_tls):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    net = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    ip1, ip2, ip3, ip3_moved = (f"{net}.{k}" for k in (1, 2, 3, 4))
    name = f"warren-late-peer-{uuid.uuid4().hex[:10]}.test"
    assert resolves_to(name) is None, f"{name} resolves before the test adds it"
    q1, e1, q2, e2, q3, e3 = PORTS.take(6)
    servers = {1: f"{ip1}:{q1}:{e1}", 2: f"{ip2}:{q2}:{e2}", 3: f"{name}:{q3}:{e3}"}

    original = HOSTS.read_bytes()
    root = Path(tempfile.mkdtemp(prefix="warren-hostnames-"))
    members: list[Member] = []
    try:
        extra: dict[int, dict] = {1: {}, 2: {}, 3: {}}
        if quorum_tls:
            pki = Pki(root / "pki")
            for sid, host in ((1, ip1), (2, ip2), (3, name)):
                pki.write_server_cert(f"server-{sid}", pki.dir / f"peer{sid}.pem", hosts=(host,), peer=True)
                extra[sid] = {"sslQuorum": "true", "ssl.quorum.hostnameVerification": "true",
                              "ssl.quorum.keyStore.location": str(pki.dir / f"peer{sid}.pem"),
                              "ssl.quorum.trustStore.location": pki.ca_file}
        s1, s2, s3 = (Member(sid, ip, servers, root / f"s{sid}", extra[sid])
                      for sid, ip in ((1, ip1), (2, ip2), (3, ip3)))
        members = [s1, s2, s3]
        for m in members:
            m._spawn()

        # 1 and 2 form a quorum and serve; 3 cannot: its own name does not resolve.
        wait_for("servers 1 and 2 to elect a leader", JOIN_TIMEOUT,
                 lambda: {s1.mode(), s2.mode()} == {"leader", "follower"}, members)
        write(ip1, s1.port, "/hostnames-1", b"before the name resolved")
        wait_for("server 3 to log that its own name does not resolve", JOIN_TIMEOUT,
                 lambda: name in s3.log() and "cannot resolve host" in s3.log(), members)
        assert s3.mode() is None, f"server 3 serves before its name resolves:\n{s3.log_tail()}"
        for port in (q3, e3):
            with socket.socket() as probe:  # nothing listens on the port, on any address
                probe.bind((ip3, port))

        point(name, ip3, original)
        wait_for("server 3 to join as a follower", JOIN_TIMEOUT, lambda: s3.mode() == "follower", members)
        assert read(ip3, s3.port, ["/hostnames-1"]) == [b"before the name resolved"]

        # The name moves: server 3 stops, comes back on another address under the same name.
        s3.stop()
        point(name, ip3_moved, original)
        write(ip1, s1.port, "/hostnames-2", b"while server 3 was away")
        s3.move_to(ip3_moved)
        s3._spawn()
        wait_for("server 3 to rejoin at its new address", JOIN_TIMEOUT, lambda: s3.mode() == "follower", members)
        assert read(ip3_moved, s3.port, ["/hostnames-1", "/hostnames-2"]) == [
            b"before the name resolved", b"while server 3 was away"]
        assert {s1.mode(), s2.mode()} == {"leader", "follower"}

        log1 = s1.log()
        assert "0.0.0.0" not in log1, f"server 1 mentions 0.0.0.0:\n{s1.log_tail(80)}"
        unresolved = [ln for ln in log1.splitlines() if "cannot connect to peer 3" in ln and name in ln]
        assert unresolved and "cannot resolve host" in unresolved[0], f"no unresolved-name line:\n{s1.log_tail(80)}"
        assert f"peer 3: {name} now resolves to {ip3_moved}:{e3} (was {ip3}:{e3})" in log1, s1.log_tail(80)
    finally:
        with open(HOSTS, "wb") as f:
            f.write(original)
        for m in members:
            m.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert HOSTS.read_bytes() == original
