"""SASL DIGEST-MD5 with users from a JAAS file, side by side with ZooKeeper 3.8.

Both servers get the same JAAS file (`Server { DigestLoginModule required user_bob="…"; }`):
ZooKeeper through -Djava.security.auth.login.config and authProvider.1=SASLAuthenticationProvider,
Warren through the same names in zoo.cfg. Checked on both: kazoo (pure-sasl) authenticates
and a `sasl:bob` ACL lets it in and keeps others out; a wrong password fails the connection;
with sessionRequireClientSASLAuth an unauthenticated client is refused while an authenticated
one works; the Java client (zkCli with a JAAS Client section) authenticates too.
"""

from __future__ import annotations

import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, KazooException, NoAuthError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_acl

from servers import ServerStartError, WarrenServer, ZooKeeperServer

pytest.importorskip("puresasl", reason="pure-sasl (ci/install-deps.sh) drives kazoo's SASL")

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
JAAS_SERVER = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bob-secret";
};
"""


def start(system: str, base, jaas, extra: dict[str, str] | None = None):
    cfg = {"authProvider.1": SASL_PROVIDER}
    if system == "warren":
        cfg["java.security.auth.login.config"] = str(jaas)
        cfg.update(extra or {})
        server = WarrenServer(base_dir=base, extra_cfg=cfg, name=f"sasl-{system}")
    else:
        props = {"java.security.auth.login.config": str(jaas)}
        props.update({f"zookeeper.{k}": v for k, v in (extra or {}).items()})
        server = ZooKeeperServer(base_dir=base, extra_cfg=cfg, jvm_props=props, name=f"sasl-{system}")
    try:
        server.start()
    except ServerStartError as e:
        server.cleanup()
        pytest.fail(f"{system} did not start: {e}", pytrace=False)
    return server


def client(server, user: str | None = None, password: str | None = None) -> KazooClient:
    opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password} if user else None
    zk = KazooClient(hosts=server.host_port, sasl_options=opts, timeout=5, connection_retry={"max_tries": 0})
    zk.start(timeout=10)
    return zk


@pytest.fixture(params=["warren", "zookeeper"])
def system(request):
    return request.param


@pytest.fixture
def jaas(tmp_path):
    p = tmp_path / "jaas.conf"
    p.write_text(JAAS_SERVER)
    return p


def test_digest_md5_login_and_sasl_acl(system, tmp_path, jaas):
    server = start(system, tmp_path / system, jaas)
    try:
        bob = client(server, "bob", "bob-secret")
        bob.create("/bob", b"mine", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get("/bob")[0] == b"mine"
        anon = client(server)
        with pytest.raises(NoAuthError):
            anon.get("/bob")
        anon.stop()
        bob.stop()
    finally:
        server.cleanup()


def test_wrong_password_fails(system, tmp_path, jaas):
    server = start(system, tmp_path / system, jaas)
    try:
        with pytest.raises((AuthFailedError, KazooTimeoutError, KazooException)):
            zk = client(server, "bob", "wrong")
            zk.get("/")
    finally:
        server.cleanup()


def test_required_sasl_refuses_unauthenticated_sessions(system, tmp_path, jaas):
    server = start(system, tmp_path / system, jaas, {"sessionRequireClientSASLAuth": "true"})
    try:
        bob = client(server, "bob", "bob-secret")
        assert bob.exists("/") is not None
        bob.stop()
        with pytest.raises((KazooException, KazooTimeoutError)):
            anon = client(server)
            anon.get("/")
    finally:
        server.cleanup()


def test_java_client_authenticates(system, tmp_path, jaas):
    server = start(system, tmp_path / system, jaas)
    client_jaas = tmp_path / "client.jaas"
    client_jaas.write_text('Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n'
                           ' username="bob" password="bob-secret";\n};\n')
    try:
        bob = client(server, "bob", "bob-secret")
        bob.create("/java", b"seen", acl=[make_acl("sasl", "bob", all=True)])
        bob.stop()
        cmd = ["java", "-Xmx128m", "-XX:-UsePerfData", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
               f"-Djava.security.auth.login.config={client_jaas}", "-cp", "/usr/share/java/zookeeper.jar",
               "org.apache.zookeeper.ZooKeeperMain", "-waitforconnection", "-server", server.host_port,
               "get", "/java"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert "seen" in out.stdout.splitlines(), out.stdout + out.stderr
    finally:
        server.cleanup()
