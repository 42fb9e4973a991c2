"""Four-letter words over a plain socket (the server config whitelists all of them)."""

from __future__ import annotations

import re

from servers import four_letter


def test_ruok(target):
    assert four_letter(target.host, target.port, "ruok") == "imok"


def test_isro(target):
    assert four_letter(target.host, target.port, "isro") == "rw"


def test_srvr(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    c.create(unique_path, b"x")
    text = four_letter(target.host, target.port, "srvr")
    lines = dict(ln.split(": ", 1) for ln in text.strip().splitlines() if ": " in ln)
    assert lines["Mode"] == "standalone"
    assert re.fullmatch(r"0x[0-9a-f]+", lines["Zxid"])
    assert int(lines["Zxid"], 16) >= c.exists(unique_path).czxid
    assert int(lines["Node count"]) >= 5  # /, /zookeeper, /zookeeper/config, /zookeeper/quota, ours
    for key in ("Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
                "Outstanding"):
        assert key in lines, (key, text)


def test_unknown_word_closes_connection(target):
    # ZooKeeper treats an unknown 4-byte prefix as the length of a connect request; with
    # "zzzz" (a huge length) it just closes the connection without an answer.
    assert four_letter(target.host, target.port, "zzzz") == ""
    assert four_letter(target.host, target.port, "ruok") == "imok"  # still serving


def test_mntr_core_keys(target, kazoo_client, unique_path):
    c = kazoo_client(target)
    c.create(unique_path, b"x", ephemeral=True)
    text = four_letter(target.host, target.port, "mntr")
    stats = dict(ln.split("\t", 1) for ln in text.strip().splitlines() if "\t" in ln)
    assert stats["zk_server_state"] == "standalone"
    assert int(stats["zk_znode_count"]) >= 5
    assert int(stats["zk_ephemerals_count"]) >= 1
    assert int(stats["zk_num_alive_connections"]) >= 1
    assert "zk_version" in stats and "zk_watch_count" in stats
