"""TLS for clients: kazoo over TLS against Warren and against a real ZooKeeper 3.8 configured
with the same certificates and the same zoo.cfg TLS keys, with the same expected outcome.

The certificates are made by ``pki.py`` (python ``cryptography``): a CA, a server certificate for
127.0.0.1 and localhost, two client certificates of that CA (alice, bob), and a rogue CA with
a client certificate of its own (mallory). Stores are PEM, which both servers read:
``ssl.keyStore.location`` holds the server's key and certificate, ``ssl.trustStore.location``
the CA.

ZooKeeper needs its Netty connection layer for TLS; Debian's zookeeper.jar manifest lacks
two of Netty's jars, named here on its class path.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import ssl
import struct
import time
import uuid
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from pki import Pki
from servers import ZK_JAR, ZK_JAVA_DIR, WarrenServer, ZooKeeperServer, free_port

KINDS = ["warren", "zookeeper"]
NETTY_JARS = [str(ZK_JAVA_DIR / "netty-codec.jar"), str(ZK_JAVA_DIR / "netty-resolver.jar")]
# How long a client that must fail is given before the test calls it failed.
FAIL_WITHIN = 4.0

ALICE_DN = "CN=alice,OU=clients,O=Warren Test"
BOB_DN = "CN=bob,OU=clients,O=Warren Test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


# ---- servers -----------------------------------------------------------------------------

def tls_cfg(pki: Pki, client_auth: str, secure_port: int | None, unified: bool = False,
            server_pem: Path | None = None) -> dict:
    cfg = {
        "ssl.keyStore.location": str(server_pem or pki.server_pem),
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": pki.ca_file,
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
        "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    }
    if secure_port is not None:
        cfg["secureClientPort"] = str(secure_port)
        cfg["secureClientPortAddress"] = "127.0.0.1"
    if unified:
        cfg["client.portUnification"] = "true"
    return cfg


def make_tls_server(kind: str, base: Path, cfg: dict):
    if kind == "zookeeper":
        return ZooKeeperServer(base_dir=base, extra_cfg=cfg, extra_classpath=NETTY_JARS,
                               jvm_props={"zookeeper.serverCnxnFactory":
                                          "org.apache.zookeeper.server.NettyServerCnxnFactory"})
    return WarrenServer(base_dir=base, extra_cfg=cfg)


class Servers:
    """One started server per (kind, clientAuth) for the module, each with a TLS-only port
    beside its plaintext one (the plaintext port answers the readiness check)."""

    def __init__(self, pki: Pki, root: Path):
        self.pki, self.root, self.started = pki, root, {}

    def get(self, kind: str, client_auth: str):
        key = (kind, client_auth)
        if key not in self.started:
            secure = free_port()
            s = make_tls_server(kind, self.root / f"{kind}-{client_auth}", tls_cfg(self.pki, client_auth, secure))
            s.secure_port = secure
            s.start()
            self.started[key] = s
        return self.started[key]

    def stop_all(self):
        for s in self.started.values():
            s.cleanup()


@pytest.fixture(scope="module")
def servers(pki, tmp_path_factory):
    s = Servers(pki, tmp_path_factory.mktemp("tls-servers"))
    yield s
    s.stop_all()


def tls_client(port: int, pki: Pki, who: str | None, ca: str | None = None, timeout: float = 10.0):
    """A kazoo client over TLS (not started)."""
    return KazooClient(hosts=f"127.0.0.1:{port}", timeout=timeout, use_ssl=True, verify_certs=True,
                       ca=ca or pki.ca_file, **pki.client_files(who))


def connects(client: KazooClient, within: float = FAIL_WITHIN) -> bool:
    """Whether `client` gets a session within `within` seconds; stops it either way."""
    try:
        client.start(timeout=within)
        client.get("/")
        return True
    except Exception:
        return False
    finally:
        client.stop()
        client.close()


# ---- tests -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client_auth,who,expected", [
    ("need", "alice", True),
    ("need", None, False),
    ("want", "alice", True),
    ("want", None, True),
    ("none", None, True),
    ("none", "alice", True),
])
def test_kazoo_over_tls(servers, pki, kind, client_auth, who, expected):
    s = servers.get(kind, client_auth)
    zk = tls_client(s.secure_port, pki, who)
    if not expected:
        assert not connects(zk), f"{kind}: clientAuth={client_auth} let a client without a certificate in"
        return
    zk.start(timeout=15)
    try:
        path = f"/tls-{uuid.uuid4().hex}"
        zk.create(path, b"over tls " * 1000)
        assert zk.get(path)[0] == b"over tls " * 1000
        zk.set(path, b"changed")
        assert zk.get(path)[0] == b"changed"
        zk.delete(path)
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("kind", KINDS)
def test_x509_acl_only_the_named_certificate_reads(servers, pki, kind):
    s = servers.get(kind, "need")
    path = f"/x509-{uuid.uuid4().hex}"
    alice = tls_client(s.secure_port, pki, "alice")
    bob = tls_client(s.secure_port, pki, "bob")
    alice.start(timeout=15)
    bob.start(timeout=15)
    try:
        alice.create(path, b"alice only", acl=[make_acl("x509", ALICE_DN, all=True)])
        assert alice.get(path)[0] == b"alice only"
        acl, _ = alice.get_acls(path)
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", ALICE_DN)]
        with pytest.raises(NoAuthError):
            bob.get(path)
        # The `auth` scheme expands to the session's certificate id.
        path2 = path + "-auth"
        bob.create(path2, b"bob", acl=[make_acl("auth", "", all=True)])
        acl, _ = bob.get_acls(path2)
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", BOB_DN)]
        with pytest.raises(NoAuthError):
            alice.get(path2)
    finally:
        for c in (alice, bob):
            c.stop()
            c.close()


def _connect_request() -> bytes:
    body = struct.pack(">iqiqi16sB", 0, 0, 30000, 0, 16, b"\0" * 16, 0)
    return struct.pack(">i", len(body)) + body


@pytest.mark.parametrize("kind", KINDS)
def test_plaintext_client_on_tls_only_port_fails(servers, pki, kind):
    s = servers.get(kind, "need")
    plain = KazooClient(hosts=f"127.0.0.1:{s.secure_port}", timeout=5)
    assert not connects(plain), f"{kind}: a plaintext client got a session on the TLS-only port"
    # On the wire: a ConnectRequest gets no ConnectResponse, only a closed connection (or a
    # TLS alert record, content type 21, which is no ZooKeeper frame).
    with socket.create_connection(("127.0.0.1", s.secure_port), timeout=FAIL_WITHIN) as sock:
        sock.sendall(_connect_request())
        try:
            answer = sock.recv(64)
        except (ConnectionResetError, socket.timeout):
            answer = b""
        assert answer == b"" or answer[0] == 21, answer
    # The server still serves TLS clients.
    assert connects(tls_client(s.secure_port, pki, "alice"), within=15)


@pytest.mark.parametrize("kind", KINDS)
def test_untrusted_client_certificate_is_refused(servers, pki, kind):
    s = servers.get(kind, "need")
    assert not connects(tls_client(s.secure_port, pki, "mallory")), f"{kind}: accepted a rogue CA's client"
    assert connects(tls_client(s.secure_port, pki, "alice"), within=15)


@pytest.mark.parametrize("kind", KINDS)
def test_expired_client_certificate_is_refused(servers, pki, kind):
    s = servers.get(kind, "need")
    assert not connects(tls_client(s.secure_port, pki, "expired")), f"{kind}: accepted an expired certificate"


@pytest.mark.parametrize("kind", KINDS)
def test_server_certificate_for_another_host_fails_hostname_checks(pki, tmp_path, kind):
    store = tmp_path / "elsewhere.pem"
    pki.write_server_cert("elsewhere", store, hosts=("elsewhere.example",))
    secure = free_port()
    s = make_tls_server(kind, tmp_path / kind, tls_cfg(pki, "need", secure, server_pem=store))
    s.start()
    try:
        checked = KazooClient(hosts=f"127.0.0.1:{secure}", timeout=10, use_ssl=True, verify_certs=True,
                              check_hostname=True, ca=pki.ca_file, **pki.client_files("alice"))
        assert not connects(checked), f"{kind}: a certificate for elsewhere.example passed for 127.0.0.1"
        # The same certificate without the host check: the chain itself is good.
        assert connects(tls_client(secure, pki, "alice"), within=15)
    finally:
        s.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_client_that_does_not_trust_the_server_fails(servers, pki, kind):
    s = servers.get(kind, "need")
    zk = tls_client(s.secure_port, pki, "alice", ca=str(pki.dir / "rogue-ca.pem"))
    assert not connects(zk)


@pytest.mark.parametrize("kind", KINDS)
def test_port_unification_takes_plaintext_and_tls(pki, tmp_path, kind):
    s = make_tls_server(kind, tmp_path / kind, tls_cfg(pki, "need", None, unified=True))
    s.start()
    try:
        plain = KazooClient(hosts=s.host_port, timeout=10)
        plain.start(timeout=15)
        path = f"/unified-{uuid.uuid4().hex}"
        plain.create(path, b"plain")
        secure = tls_client(s.port, pki, "alice")
        secure.start(timeout=15)
        assert secure.get(path)[0] == b"plain"
        secure.set(path, b"tls")
        assert plain.get(path)[0] == b"tls"
        for c in (plain, secure):
            c.stop()
            c.close()
        # The four-letter words keep working on the unified port.
        assert "Mode: standalone" in s.four_letter("srvr")
        # Still TLS rules on TLS connections: no certificate, no session.
        assert not connects(tls_client(s.port, pki, None))
    finally:
        s.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_pkcs12_key_store(pki, tmp_path, kind):
    store = tmp_path / "server.p12"
    pki.write_pkcs12_key_store(store, "s3cret")
    secure = free_port()
    cfg = tls_cfg(pki, "need", secure)
    cfg.update({"ssl.keyStore.location": str(store), "ssl.keyStore.type": "PKCS12",
                "ssl.keyStore.password": "s3cret"})
    s = make_tls_server(kind, tmp_path / kind, cfg)
    s.start()
    try:
        assert _server_cn(secure, pki) == "server-1"
        assert connects(tls_client(secure, pki, "alice"), within=15)
    finally:
        s.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_pkcs12_trust_store(pki, tmp_path, kind):
    """A trust store made by keytool (PKCS12, the CA as a trusted-certificate entry): a client
    certificate from that CA gets a session, one from another CA does not."""
    store = tmp_path / "trust.p12"
    pki.write_pkcs12_trust_store(store, "trust5tore")
    secure = free_port()
    cfg = tls_cfg(pki, "need", secure)
    cfg.update({"ssl.trustStore.location": str(store), "ssl.trustStore.type": "PKCS12",
                "ssl.trustStore.password": "trust5tore"})
    s = make_tls_server(kind, tmp_path / kind, cfg)
    s.start()
    try:
        assert connects(tls_client(secure, pki, "alice"), within=15)
        assert not connects(tls_client(secure, pki, "mallory"))
    finally:
        s.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_x509_super_user_reads_everything(pki, tmp_path, kind):
    secure = free_port()
    cfg = tls_cfg(pki, "need", secure)
    cfg["X509AuthenticationProvider.superUser"] = BOB_DN
    s = make_tls_server(kind, tmp_path / kind, cfg)
    s.start()
    clients = []
    try:
        alice, bob = tls_client(secure, pki, "alice"), tls_client(secure, pki, "bob")
        clients = [alice, bob]
        for c in clients:
            c.start(timeout=15)
        alice.create("/alice-only", b"secret", acl=[make_acl("x509", ALICE_DN, read=True, write=True)])
        assert bob.get("/alice-only")[0] == b"secret"
        bob.set_acls("/alice-only", [make_acl("x509", BOB_DN, all=True)])
        with pytest.raises(NoAuthError):
            alice.get("/alice-only")
    finally:
        for c in clients:
            c.stop()
            c.close()
        s.cleanup()


def _server_cn(port: int, pki: Pki) -> str:
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.load_cert_chain(**{"certfile": str(pki.dir / "alice.crt"), "keyfile": str(pki.dir / "alice.key")})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            return subject["commonName"]


def test_certificate_reload_without_restart(pki, tmp_path):
    """Replace the server's key store file: new connections see the new certificate, the
    server never restarts, and an established session carries on."""
    store = tmp_path / "server.pem"
    shutil.copy(pki.server_pem, store)
    secure = free_port()
    s = WarrenServer(base_dir=tmp_path / "warren", extra_cfg=tls_cfg(pki, "need", secure, server_pem=store))
    s.start()
    try:
        assert _server_cn(secure, pki) == "server-1"
        zk = tls_client(secure, pki, "alice")
        zk.start(timeout=15)
        pid = s.proc.pid
        fresh = tmp_path / "fresh.pem"
        pki.write_server_cert("server-2", fresh)
        fresh.replace(store)
        deadline = time.monotonic() + 15
        seen = "server-1"
        while time.monotonic() < deadline and seen != "server-2":
            time.sleep(0.5)
            seen = _server_cn(secure, pki)
        assert seen == "server-2", s.log_tail()
        assert s.proc.pid == pid and s.is_running()
        assert zk.get("/")[1] is not None
        zk.stop()
        zk.close()
        assert connects(tls_client(secure, pki, "alice"), within=15)
        # A broken replacement is refused and the last good certificate stays in use.
        store.write_text("not a certificate\n")
        time.sleep(5)
        assert _server_cn(secure, pki) == "server-2"
        assert "cannot be used" in s.log_tail(200)
    finally:
        s.cleanup()


def test_failed_handshakes_are_logged_rate_limited_and_harmless(servers, pki):
    s = servers.get("warren", "need")
    time.sleep(1.1)  # past the rate limit's interval for the failures of earlier tests
    before = s.out_path.stat().st_size
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", s.secure_port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello")
            try:
                sock.recv(64)
            except (ConnectionResetError, socket.timeout):
                pass
    time.sleep(0.2)
    log = s.out_path.read_bytes()[before:].decode(errors="replace")
    lines = [l for l in log.splitlines() if "TLS handshake with" in l]
    # 30 failures in well under 5 s: one line a second at most, the others counted.
    assert 1 <= len(lines) <= 5, lines
    assert "InvalidContentType" in lines[0] or "corrupt" in lines[0], lines[0]
    assert s.is_running()
    assert connects(tls_client(s.secure_port, pki, "alice"), within=15)


def test_tls_client_closing_without_close_notify_is_an_ordinary_close(servers, pki):
    """Most ZooKeeper clients just close the socket; that is no error worth a log line."""
    s = servers.get("warren", "need")
    before = s.out_path.stat().st_size
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.load_cert_chain(certfile=str(pki.dir / "alice.crt"), keyfile=str(pki.dir / "alice.key"))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", s.secure_port), timeout=5) as raw:
            tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(_connect_request())
            assert len(tls.recv(4)) == 4  # the ConnectResponse's length
            # Closing the TCP socket under the TLS one: no close_notify is sent.
    time.sleep(0.5)
    log = s.out_path.read_bytes()[before:].decode(errors="replace")
    assert "close_notify" not in log and "closing connection" not in log, log


@pytest.mark.parametrize("client_auth", ["need", "want"])
def test_secure_only_server(pki, tmp_path, client_auth):
    """secureClientPort without clientPort: no plaintext port at all (ZooKeeper allows it), and
    `warren status` asks the secure port over TLS."""
    secure = free_port()

    class SecureOnly(WarrenServer):
        def cfg_lines(self):
            cfg = super().cfg_lines()
            del cfg["clientPort"], cfg["clientPortAddress"]
            return cfg

        def _wait_ready(self, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log_tail())
                try:
                    _server_cn(secure, pki)
                    return
                except OSError:
                    time.sleep(0.1)
            raise RuntimeError(self.log_tail())

    # With clientAuth=need, status shows the server's own certificate: one fit for client use
    # too, as an ensemble member's is.
    store = tmp_path / "server.pem"
    pki.write_server_cert("server-1", store, peer=client_auth == "need")
    s = SecureOnly(base_dir=tmp_path / "warren", extra_cfg=tls_cfg(pki, client_auth, secure, server_pem=store))
    s.start()

    def status():
        return subprocess.run([str(s.binary), "status", str(s.cfg_path)], capture_output=True, text=True, timeout=30)
    try:
        assert connects(tls_client(secure, pki, "alice"), within=15)
        binds = [l for l in s.log_tail(200).splitlines() if "binding to port" in l]
        assert len(binds) == 1 and "TLS only" in binds[0], binds
        r = status()
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"Client port found: {secure}. Client address: 127.0.0.1. Client SSL: true." in r.stdout, r.stdout
        assert "Mode: standalone" in r.stdout, r.stdout
    finally:
        s.cleanup()
    r = status()
    assert r.returncode == 1 and "probably not running" in r.stdout, r.stdout


@pytest.mark.parametrize("key,value,needle", [
    ("ssl.quorum.crl", "true", "ssl.quorum.crl"),
    ("ssl.keyStore.type", "JKS", "keytool -importkeystore"),
])
def test_refused_settings_stop_the_start(pki, tmp_path, key, value, needle):
    cfg = tls_cfg(pki, "need", free_port())
    cfg[key] = value
    s = WarrenServer(base_dir=tmp_path / "warren", extra_cfg=cfg)
    with pytest.raises(Exception):
        s.start()
    assert needle in s.log_tail(50)
    assert s.proc is None or not s.is_running()


def zkcli_tls(port: int, pki: Pki, who: str, commands: list[str]) -> str:
    """The Java zkCli over TLS (its Netty client socket), one command a line on stdin."""
    props = {
        "zookeeper.clientCnxnSocket": "org.apache.zookeeper.ClientCnxnSocketNetty",
        "zookeeper.client.secure": "true",
        "zookeeper.ssl.keyStore.location": str(pki.dir / f"{who}.pem"),
        "zookeeper.ssl.keyStore.type": "PEM",
        "zookeeper.ssl.trustStore.location": pki.ca_file,
        "zookeeper.ssl.trustStore.type": "PEM",
    }
    cmd = ["java", "-Xmx128m", "-XX:-UsePerfData", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
           *[f"-D{k}={v}" for k, v in props.items()],
           "-cp", ":".join([str(ZK_JAR), *NETTY_JARS]), "org.apache.zookeeper.ZooKeeperMain",
           "-waitforconnection", "-timeout", "10000", "-server", f"127.0.0.1:{port}"]
    proc = subprocess.run(cmd, input="\n".join([*commands, "quit"]) + "\n", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=90)
    return proc.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_java_zkcli_over_tls_with_x509_identity(servers, pki, kind):
    s = servers.get(kind, "need")
    path = f"/zkcli-tls-{uuid.uuid4().hex}"
    out = zkcli_tls(s.secure_port, pki, "alice", [f"create {path} hello-over-tls", f"get {path}", "whoami"])
    lines = out.splitlines()
    assert f"Created {path}" in lines, out
    assert "hello-over-tls" in lines, out
    # whoami (opcode 107) lists the connection's ids: the certificate's subject among them.
    assert f"x509: {ALICE_DN}" in lines, out
