"""docs/operations.md: every command in its `sh` blocks runs, against a real Warren.

Blocks are fenced ```sh (run, each must exit 0), ```sh start (the server's start command:
run in the background, then the test waits for the server), ```sh env (the variables the
doc uses: replaced by this server's values) and ```sh norun (commands that need systemd or
root on a real host: covered elsewhere, e.g. test_packaging.py, and listed here so that a
new one is a deliberate choice).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from servers import LOCALHOST, REPO_ROOT, four_letter, free_port, warren_bin

DOC = REPO_ROOT / "docs" / "operations.md"
PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
# The commands of `sh norun` blocks, each needing a real host's systemd or root.
NORUN_ALLOWED = {
    "sudo dpkg -i target/debian/warren_*.deb",
    "sudo systemctl enable --now warren",
    "systemctl status warren",
}


def blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block whose info string starts with sh."""
    return [(m.group(1).strip(), m.group(2))
            for m in re.finditer(r"^```(sh[^\n]*)\n(.*?)^```", text, re.M | re.S)]


def test_doc_has_the_blocks_the_test_expects():
    kinds = [info for info, _ in blocks(DOC.read_text())]
    assert kinds.count("sh env") == 1 and kinds.count("sh start") == 1
    assert kinds.count("sh") >= 8, kinds
    norun = [ln.strip() for info, body in blocks(DOC.read_text()) if info == "sh norun"
             for ln in body.splitlines() if ln.strip()]
    assert set(norun) == NORUN_ALLOWED, norun


def test_every_command_runs(tmp_path):
    text = DOC.read_text()
    env_block = next(body for info, body in blocks(text) if info == "sh env")
    names = re.findall(r"^(\w+)=", env_block, re.M)
    assert names == ["CFG", "ZK", "ADMIN", "METRICS", "DATA"], names
    port, admin, metrics = free_port(), free_port(), free_port()
    data = tmp_path / "data"
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress={LOCALHOST}\n"
                   f"admin.serverPort={admin}\nmetricsProvider.className={PROVIDER}\n"
                   f"metricsProvider.httpHost={LOCALHOST}\nmetricsProvider.httpPort={metrics}\n"
                   "snapCount=2\nadmin.snapshot.enabled=true\nadmin.restore.enabled=true\n"
                   "admin.rateLimiterIntervalInMS=0\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "warren").symlink_to(warren_bin())
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", CFG=str(cfg),
               ZK=f"{LOCALHOST}:{port}", ADMIN=f"http://{LOCALHOST}:{admin}",
               METRICS=f"http://{LOCALHOST}:{metrics}", DATA=str(data))
    start = next(body for info, body in blocks(text) if info == "sh start")
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(["bash", "-c", "exec " + start.strip()], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if four_letter(LOCALHOST, port, "ruok", timeout=1) == "imok":
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the doc's start command did not serve"
            time.sleep(0.1)
        # A few writes so that the log and snapshot commands have files to show.
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=f"{LOCALHOST}:{port}")
        zk.start(timeout=10)
        for i in range(5):
            zk.create(f"/ops-{i}", b"x")
        zk.stop()
        zk.close()
        ran = 0
        for info, body in blocks(text):
            if info != "sh":
                continue
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], env=env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"block failed:\n{body}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
            ran += 1
        assert ran >= 8
    finally:
        server.kill()
        server.wait(timeout=10)
        log.close()
