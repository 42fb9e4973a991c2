"""Quorum TLS (``sslQuorum``, ``portUnification``, ``ssl.quorum.*``) on real Warren ensembles:
a TLS quorum forms, serves kazoo and loses no acknowledged write when its leader is killed
under load; a server whose certificate the others do not trust (another CA, a certificate
for another host, or none at all) cannot join, the others say so in their logs and keep
serving with two; and ZooKeeper's rolling switch (plaintext, then portUnification on every
server, then sslQuorum one by one, then portUnification off one by one) keeps serving
throughout without losing an acknowledged write; and with `sslQuorumReloadCertFiles` a renewed
certificate is used without a restart. The TLS work runs on a `warren-peer-tls` thread of its
own, never on the owner (executor 0), and a plaintext ensemble has no such thread; a follower
killed and restarted goes down and comes back up through that thread's pumped links.

Warren only: ZooKeeper's peers use the same keys but Java key stores and its own handshake,
and the brief of these tests is Warren's transport. Certificates come from ``pki.py``
(peer certificates carry both serverAuth and clientAuth, as an ensemble member both dials and
accepts). Ports 127.0.0.1:23000-23999, as the other ensemble tests.

    python3 -m pytest tests/python/test_quorum_tls.py -q
"""
from __future__ import annotations

import re
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest

from ensemble import (Ensemble, SeqWriter, check_no_acked_write_lost, kill_leader_under_write_load, names,
                      wait_for)
from pki import Pki

ELECTION_TIMEOUT = 60.0
# The hello a plaintext Warren peer sends first (quorum/codec.rs): magic, myid, ensemble id,
# flags.
PLAINTEXT_HELLO = b"WRNPEER3" + (9).to_bytes(8, "big") + (0).to_bytes(8, "big") + b"\x00"


@pytest.fixture
def pki(tmp_path):
    p = Pki(tmp_path / "pki")
    for sid in (1, 2, 3):
        p.write_server_cert(f"server-{sid}", p.dir / f"peer{sid}.pem", peer=True)
    # The same CA's certificate, but for a host no server.N line names.
    p.write_server_cert("elsewhere", p.dir / "elsewhere.pem", hosts=("10.9.9.9",), peer=True)
    return p


@pytest.fixture
def rogue(tmp_path):
    """Another CA, with a peer certificate of its own for 127.0.0.1."""
    p = Pki(tmp_path / "rogue")
    p.write_server_cert("server-3", p.dir / "peer3.pem", peer=True)
    return p


@pytest.fixture
def ensembles():
    made: list[Ensemble] = []
    yield made
    for e in made:
        e.close()


def quorum_tls(pki: Pki, sid: int, *, ssl_quorum=True, unified=False, key_store=None) -> dict:
    return {
        "sslQuorum": str(ssl_quorum).lower(),
        "portUnification": str(unified).lower(),
        "ssl.quorum.keyStore.location": str(key_store or pki.dir / f"peer{sid}.pem"),
        "ssl.quorum.trustStore.location": pki.ca_file,
    }


def new_ensemble(tmp_path, made, per_server: dict[int, dict]) -> Ensemble:
    ens = Ensemble("warren", tmp_path / f"qtls{len(made)}", name=f"qtls{len(made)}", participants=3)
    made.append(ens)
    for sid, cfg in per_server.items():
        set_cfg(ens, sid, cfg)
    return ens


def set_cfg(ens: Ensemble, sid: int, cfg: dict) -> None:
    """Replaces server `sid`'s quorum TLS keys (read at its next start)."""
    m = ens[sid]
    for k in [k for k in m.extra_cfg if k in ("sslQuorum", "portUnification") or k.startswith("ssl.quorum.")]:
        del m.extra_cfg[k]
    m.extra_cfg.update(cfg)
    m._write_cfg()


def log(ens: Ensemble, sid: int) -> str:
    return ens[sid].log_since(0)


def data_at(ens: Ensemble, sid: int, path: str) -> bytes:
    c = ens.client([sid])
    try:
        c.sync(path)
        return c.get(path)[0]
    finally:
        ens.discard_client(c)


def plaintext_hello_to(ens: Ensemble, sid: int) -> None:
    """Connects to `sid`'s election port as a plaintext peer would and sends a hello."""
    with socket.create_connection(("127.0.0.1", ens[sid].election_port), timeout=5) as s:
        s.sendall(PLAINTEXT_HELLO)
        time.sleep(0.3)


@pytest.mark.timeout(300)
def test_tls_quorum_serves_and_keeps_acknowledged_writes_across_a_leader_kill(tmp_path, pki, ensembles):
    ens = new_ensemble(tmp_path, ensembles, {sid: quorum_tls(pki, sid) for sid in (1, 2, 3)})
    leader = ens.start(timeout=ELECTION_TIMEOUT)
    for sid in (1, 2, 3):
        text = log(ens, sid)
        assert "quorum TLS: dialling TLS peer connections, accepting TLS only" in text, text[-2000:]
        assert "peer certificates must name their server.N host" in text
    c = ens.client()
    c.create("/tls", b"over an encrypted quorum")
    for sid in (1, 2, 3):
        assert data_at(ens, sid, "/tls") == b"over an encrypted quorum"

    # A plaintext peer is refused by a TLS-only election port, with a log line.
    offset = ens[leader].log_size()
    plaintext_hello_to(ens, leader)
    wait_for(lambda: "rejected a connection to the election port" in ens[leader].log_since(offset),
             10, what="the plaintext connection's rejection in the leader's log")
    assert "TLS handshake failed" in ens[leader].log_since(offset)

    root = "/tls-load"
    leader, new_leader, _, acked, survivors = kill_leader_under_write_load(ens, root, ELECTION_TIMEOUT)

    ens.restart(leader)
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == new_leader
    full = ens.converged_view(root)
    assert full == survivors
    assert acked <= set(full["children"])


def _cannot_join(ens: Ensemble, outsider: int, insiders: list[int], expect: str, offsets: dict) -> None:
    """`outsider` stays out of the quorum; each insider logs why it was rejected."""
    for sid in insiders:
        wait_for(lambda: expect in ens[sid].log_since(offsets[sid]), 40,
                 what=f"server.{sid} logging {expect!r} about server.{outsider}")
    time.sleep(3)  # long enough for a trusted server to have joined (it takes < 1 s here)
    mode = ens[outsider].mode()
    assert mode not in ("leader", "follower"), f"server.{outsider} joined the quorum as {mode}"
    assert ens.wait_stable(sids=insiders, timeout=ELECTION_TIMEOUT) in insiders
    c = ens.client(insiders)
    path = c.create("/still-serving-", b"", sequence=True)
    for sid in insiders:
        assert path.rsplit("/", 1)[1] in ens.view(sid, "/")["children"]
    ens.discard_client(c)


@pytest.mark.timeout(300)
def test_a_server_without_a_trusted_certificate_cannot_join(tmp_path, pki, rogue, ensembles):
    ens = new_ensemble(tmp_path, ensembles, {sid: quorum_tls(pki, sid) for sid in (1, 2)})
    insiders = [1, 2]

    # 1. Server 3 with a certificate of another CA (and trusting only that CA).
    set_cfg(ens, 3, {**quorum_tls(rogue, 3)})
    for sid in (1, 2, 3):
        ens[sid].spawn()
    offsets = {1: 0, 2: 0}
    _cannot_join(ens, 3, insiders, "TLS handshake failed", offsets)
    assert "rejected a connection to the election port from" in log(ens, 1)

    # 2. No certificate at all: server 3 speaks plaintext to TLS-only ports.
    ens.stop(3)
    offsets = {sid: ens[sid].log_size() for sid in insiders}
    set_cfg(ens, 3, {})
    ens.restart(3)
    # Rejections are logged at most once per 10 s, with a count of the others: _cannot_join
    # waits 40 s for the line.
    _cannot_join(ens, 3, insiders, "TLS handshake failed", offsets)

    # 3. The right CA, but a certificate for a host that is not server.3's.
    ens.stop(3)
    offsets = {sid: ens[sid].log_size() for sid in insiders}
    set_cfg(ens, 3, quorum_tls(pki, 3, key_store=pki.dir / "elsewhere.pem"))
    ens.restart(3)
    _cannot_join(ens, 3, insiders, "its certificate is not valid for server 3", offsets)

    # And with its own certificate it joins: the rejections were about the certificates.
    ens.stop(3)
    set_cfg(ens, 3, quorum_tls(pki, 3))
    ens.restart(3)
    ens.wait_stable(timeout=ELECTION_TIMEOUT)
    assert ens[3].mode() in ("leader", "follower")


@pytest.mark.timeout(600)
def test_rolling_switch_from_plaintext_to_tls_keeps_serving(tmp_path, pki, ensembles):
    ens = new_ensemble(tmp_path, ensembles, {})
    ens.start(timeout=ELECTION_TIMEOUT)
    root = "/rolling"
    setup = ens.client()
    setup.ensure_path(root)
    ens.discard_client(setup)
    writers = [SeqWriter(ens.client(), f"{root}/w{i}-") for i in range(2)]
    for w in writers:
        w.start()
    wait_for(lambda: all(len(w.acked) >= 50 for w in writers), 60, what="writes before the switch")

    steps = [
        ("portUnification=true, sslQuorum=false", dict(ssl_quorum=False, unified=True)),
        ("sslQuorum=true", dict(ssl_quorum=True, unified=True)),
        ("portUnification=false", dict(ssl_quorum=True, unified=False)),
    ]
    for what, keys in steps:
        for sid in (1, 2, 3):
            ens.stop(sid)
            set_cfg(ens, sid, quorum_tls(pki, sid, **keys))
            ens.restart(sid)
            ens.wait_stable(timeout=ELECTION_TIMEOUT)
            before = [len(w.acked) for w in writers]
            wait_for(lambda: all(len(w.acked) >= b + 20 for w, b in zip(writers, before)), 60,
                     what=f"writes after server.{sid} restarted with {what}")
            print(f"server.{sid}: {what}; modes {ens.modes()}")

    acked = set()
    for w in writers:
        acked |= names(w.finish())
    print(f"{len(acked)} acknowledged writes, {sum(w.unknown for w in writers)} with unknown outcome")
    check_no_acked_write_lost(ens, [1, 2, 3], root, acked)
    # The end state is TLS only: a plaintext peer is refused.
    leader = ens.leader()
    offset = ens[leader].log_size()
    plaintext_hello_to(ens, leader)
    wait_for(lambda: "rejected a connection to the election port" in ens[leader].log_since(offset),
             15, what="the plaintext connection's rejection")
    for sid in (1, 2, 3):
        assert "quorum TLS: dialling TLS peer connections, accepting TLS only" in log(ens, sid)


@pytest.mark.timeout(180)
def test_hostname_verification_off_accepts_a_certificate_for_another_host(tmp_path, pki, rogue, ensembles):
    """ssl.quorum.hostnameVerification=false: server 3's certificate names another host and
    it joins; a certificate of another CA is still refused."""
    off = {"ssl.quorum.hostnameVerification": "false"}
    cfg = {sid: {**quorum_tls(pki, sid), **off} for sid in (1, 2)}
    cfg[3] = {**quorum_tls(pki, 3, key_store=pki.dir / "elsewhere.pem"), **off}
    ens = new_ensemble(tmp_path, ensembles, cfg)
    ens.start(timeout=ELECTION_TIMEOUT)
    assert ens[3].mode() in ("leader", "follower")
    assert "peer certificates must name" not in log(ens, 1)

    ens.stop(3)
    offsets = {sid: ens[sid].log_size() for sid in (1, 2)}
    set_cfg(ens, 3, {**quorum_tls(rogue, 3), **off})
    ens.restart(3)
    _cannot_join(ens, 3, [1, 2], "TLS handshake failed", offsets)


def election_port_cn(ens: Ensemble, sid: int, pki: Pki, client_pem) -> str:
    """The common name of the certificate `sid`'s election port shows a TLS peer."""
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    ctx.load_cert_chain(certfile=str(client_pem))
    with socket.create_connection(("127.0.0.1", ens[sid].election_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            return subject["commonName"]


@pytest.mark.timeout(300)
def test_quorum_certificates_reload_without_a_restart(tmp_path, pki, ensembles):
    """sslQuorumReloadCertFiles=true: server 1's key store file is replaced by a renewed
    certificate; its election port shows the new one without a restart, a broken file keeps
    the last good one (with a log line), and the quorum keeps serving throughout."""
    store = tmp_path / "peer1-live.pem"
    shutil.copy(pki.dir / "peer1.pem", store)
    per_server = {sid: {**quorum_tls(pki, sid), "sslQuorumReloadCertFiles": "true"} for sid in (1, 2, 3)}
    per_server[1]["ssl.quorum.keyStore.location"] = str(store)
    ens = new_ensemble(tmp_path, ensembles, per_server)
    ens.start(timeout=ELECTION_TIMEOUT)
    peer2 = pki.dir / "peer2.pem"
    assert election_port_cn(ens, 1, pki, peer2) == "server-1"

    renewed = tmp_path / "renewed.pem"
    pki.write_server_cert("server-1-renewed", renewed, peer=True)
    shutil.copy(renewed, store)
    wait_for(lambda: election_port_cn(ens, 1, pki, peer2) == "server-1-renewed", 30, 0.2,
             "the election port to show the renewed certificate")

    offset = ens[1].log_size()
    store.write_text("not a key store\n")
    wait_for(lambda: "keeping the previous certificates" in ens[1].log_since(offset), 30, 0.2, "the broken key store to be reported")
    assert election_port_cn(ens, 1, pki, peer2) == "server-1-renewed"

    # The links of server 1, dialled and accepted with the reloaded configuration, still carry
    # the quorum: restart the other two so that every link is made anew, then write.
    for sid in (2, 3):
        ens.stop(sid)
    for sid in (2, 3):
        ens.restart(sid)
    ens.wait_stable(timeout=ELECTION_TIMEOUT)
    c = ens.client()
    c.create("/after-reload", b"ok")
    for sid in (1, 2, 3):
        assert data_at(ens, sid, "/after-reload") == b"ok"


def thread_names(ens: Ensemble, sid: int) -> list[str]:
    """The names (comm) of server `sid`'s threads."""
    names = []
    for task in Path(f"/proc/{ens[sid].pid}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def peer_tls_threads(ens: Ensemble, sid: int) -> int:
    # glommio names the thread `warren-peer-tls-<n>` (comm keeps its first 15 bytes), and the
    # executor's helper thread for blocking calls after it.
    return sum(1 for n in thread_names(ens, sid) if n.startswith("warren-peer-tls"))


@pytest.mark.timeout(300)
def test_tls_runs_on_the_peer_tls_thread_and_a_killed_follower_comes_back(tmp_path, pki, ensembles):
    """A plaintext ensemble runs no peer TLS executor; a TLS one runs one per server (its
    links' handshakes and encryption happen there, not on the owner). A follower killed with
    SIGKILL: the others' pumped links to it end and the leader reports it down at once,
    the two keep serving, and when it restarts it is reported up and catches up."""
    plain = new_ensemble(tmp_path, ensembles, {})
    plain.start(timeout=ELECTION_TIMEOUT)
    for sid in (1, 2, 3):
        names = thread_names(plain, sid)
        assert any(n.startswith("warren-0") for n in names), names
        assert peer_tls_threads(plain, sid) == 0, names
    plain.close()

    ens = new_ensemble(tmp_path, ensembles, {sid: quorum_tls(pki, sid) for sid in (1, 2, 3)})
    leader = ens.start(timeout=ELECTION_TIMEOUT)
    for sid in (1, 2, 3):
        assert peer_tls_threads(ens, sid) >= 1, thread_names(ens, sid)
    c = ens.client([leader])
    c.create("/before", b"1")

    follower = ens.followers(leader)[0]
    offset = ens[leader].log_size()
    ens.kill(follower)
    wait_for(lambda: re.search(rf"peer {follower} \([^)]*\) is down", ens[leader].log_since(offset)), 10,
             what=f"the leader reporting server.{follower} down")
    c.create("/while-down", b"2")

    offset = ens[leader].log_size()
    ens.restart(follower)
    wait_for(lambda: re.search(rf"peer {follower} \([^)]*\) is up", ens[leader].log_since(offset)), 30,
             what=f"the leader reporting server.{follower} up again")
    assert ens.wait_stable(timeout=ELECTION_TIMEOUT) == leader
    assert peer_tls_threads(ens, follower) >= 1
    assert data_at(ens, follower, "/while-down") == b"2"
    c.create("/after", b"3")
    for sid in (1, 2, 3):
        assert data_at(ens, sid, "/after") == b"3"
