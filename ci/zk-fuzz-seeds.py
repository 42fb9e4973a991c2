#!/usr/bin/env python3
"""Writes the seeds of the zk_snapshot and zk_txnlog fuzz targets (engine/fuzz/seeds/) from a
real ZooKeeper 3.8 (ci/install-deps.sh installs it): a few nodes of every kind, ACLs, a
multi, a closed session, so the seeds reach every record type the readers know. Logs are cut
after their last record (ZooKeeper preallocates 64 MiB of zeros); a few zero bytes are kept so
the end-of-log path is seeded too.

Usage: python3 ci/zk-fuzz-seeds.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl  # noqa: E402

from servers import ZooKeeperServer, stop_clients  # noqa: E402
from test_import_zk import CreateContainer, CreateTTL, log_records, raw_create  # noqa: E402

SEEDS = ROOT / "engine" / "fuzz" / "seeds"


def workload(c: KazooClient) -> None:
    c.create("/a", b"\x00\x01binary")
    c.create("/a/null", None)
    c.create("/a/digest", b"d", acl=[make_digest_acl("u", "p", all=True)])
    c.create("/a/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    seq = c.create("/a/s-", b"", sequence=True)
    c.set("/a", b"v2")
    c.set_acls("/a/ip", [ACL(1, Id("world", "anyone"))])
    c.create("/a/e", b"", ephemeral=True)
    raw_create(c, CreateContainer("/ctr", b"", OPEN_ACL_UNSAFE, 4))
    raw_create(c, CreateTTL("/ttl", b"t", OPEN_ACL_UNSAFE, 5))
    ok = c.transaction()
    ok.create("/m", b"")
    ok.delete(seq)
    ok.commit()
    failing = c.transaction()
    failing.set_data("/a", b"never", version=99)
    failing.commit()
    c.delete("/m")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="zk-seeds-") as tmp:
        zk = ZooKeeperServer(base_dir=Path(tmp), extra_cfg={"snapCount": "8"},
                             jvm_props={"zookeeper.extendedTypesEnabled": "true"}, name="zookeeper(seeds)")
        try:
            zk.start()
            c = KazooClient(hosts=zk.host_port, timeout=10)
            c.start(timeout=15)
            workload(c)
            stop_clients([c])
            zk.stop()
            v2 = zk.data_dir / "version-2"
            for kind, target in (("snapshot", "zk_snapshot"), ("log", "zk_txnlog")):
                out = SEEDS / target
                out.mkdir(parents=True, exist_ok=True)
                for f in sorted(v2.glob(f"{kind}.*")):
                    b = f.read_bytes()
                    if kind == "log":
                        recs = log_records(f)
                        end = recs[-1][0] + 13 + recs[-1][1] if recs else 16
                        b = b[:end + 16]
                    if len(b) > 16 and len(b) < 64 * 1024:
                        (out / f.name).write_bytes(b)
                        print(f"{out / f.name}: {len(b)} bytes")
        finally:
            zk.cleanup()


if __name__ == "__main__":
    main()
