"""A full disk: the log stops, and the server keeps serving everything that needs no log.

Warren runs with its data directory on a small tmpfs that the test fills. Once a write fails:
  * writes get a prompt NotReadOnly error (they used to hang, holding every later request of
    their connection, pings included, until the client gave up on the server);
  * the client's session stays alive past several session timeouts (pings answered) and reads
    are answered;
  * a new client gets a (read-only) session and reads;
  * no snapshot temp file is left behind, not by a snapshot that hit ENOSPC and not by a kill;
  * the same after a restart on the still-full disk.
Nothing acknowledged is lost: every write the client saw succeed is there after the restart.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NotReadOnlyCallError

from servers import WarrenServer

SESSION_TIMEOUT = 4.0


def _mount_tmpfs(where: Path, size_mb: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], check=True)


def _fill(where: Path, leave_bytes: int) -> None:
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    with open(where / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))


def _temp_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "version-2").glob("snapshot.*.tmp"))


def _client(server, **kw) -> KazooClient:
    c = KazooClient(hosts=server.host_port, timeout=SESSION_TIMEOUT, **kw)
    c.start(timeout=15)
    return c


def _check_serving_without_a_log(server, path: str, acked: int) -> None:
    """Reads, pings and new sessions work; writes fail fast with NotReadOnly."""
    c = _client(server)
    try:
        assert c.get(path)[1].version == acked
        t = time.monotonic()
        with pytest.raises(NotReadOnlyCallError):
            c.set(path, b"refused")
        assert time.monotonic() - t < 2.0, "a write on a full disk must fail at once"
        sid = c.client_id[0]
        # Several session timeouts with the connection idle but for kazoo's pings.
        time.sleep(SESSION_TIMEOUT * 2.5)
        assert c.connected and c.client_id[0] == sid, "the session did not survive (pings unanswered?)"
        assert c.get(path)[1].version == acked
    finally:
        c.stop()
        c.close()


@pytest.mark.slow
def test_a_full_disk_stops_writes_but_not_reads_pings_or_new_sessions(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    server = WarrenServer(base_dir=tmp_path / "server", name="full-disk-warren", extra_cfg={
        # 1 MiB log segments and frequent snapshots, so both meet the full disk.
        "preAllocSize": "1024",
        "snapCount": "400",
    })
    # Only the data directory is on the small disk (the server's own output is not).
    disk = Path(server.data_dir)
    _mount_tmpfs(disk, 48)
    try:
        server.start()
        path = "/full"
        writer = _client(server)
        writer.create(path, b"")
        _fill(disk, 2 * 1024 * 1024)

        acked = 0
        deadline = time.monotonic() + 30
        failure = None
        while time.monotonic() < deadline:
            try:
                writer.set(path, os.urandom(1000))
                acked += 1
            except (ConnectionLoss, NotReadOnlyCallError) as e:
                failure = e
                break
        assert failure is not None, f"the disk never filled ({acked} writes)"
        assert acked > 0
        assert "transaction log failed" in server.log_tail(200), server.log_tail(60)
        writer.stop()
        writer.close()

        _check_serving_without_a_log(server, path, acked)
        assert _temp_files(server.data_dir) == []

        # A kill in the middle of nothing in particular, a temp file as a killed snapshot
        # would leave it, and a restart on the disk that is still full.
        (Path(server.data_dir) / "version-2" / "snapshot.ffff.tmp").write_bytes(b"half a snapshot")
        server.kill()
        server.start()
        assert _temp_files(server.data_dir) == [], "a leftover snapshot temp file survived a restart"
        _check_serving_without_a_log(server, path, acked)
    finally:
        server.kill()
        subprocess.run(["umount", "-l", str(disk)], check=False)
