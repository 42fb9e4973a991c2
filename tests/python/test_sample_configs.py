"""The sample ensemble configurations a user starts from: ``conf/ensemble-3`` and
``conf/ensemble-5``, started exactly as the README says (``ci/ensemble.sh start N``), with
their fixed ports (clients 2181.., quorum 2888.., election 3888..) and data directories
(/tmp/warren-ensemble-N/<id>).

Under write load through every follower, the leader is killed with SIGKILL; a new leader
must be elected among the survivors, no acknowledged write may be lost, the writers must get
writes through again, and the old leader, restarted by the same script, must rejoin as a
follower holding everything. Warren only: these files are Warren's samples.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from ensemble import SeqWriter, _close_client, names, parse_mode, wait_for, works
from servers import four_letter

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "ensemble.sh"
TIMEOUT = 60.0


def members(n: int) -> dict[int, tuple[int, Path]]:
    """id -> (client port, dataDir), read from the sample files themselves."""
    out = {}
    for i in range(1, n + 1):
        text = (ROOT / "conf" / f"ensemble-{n}" / f"zoo{i}.cfg").read_text()
        data = Path(re.search(r"^dataDir=(.*)$", text, re.M).group(1).strip())
        port = int(re.search(rf"^server\.{i}=[^;\n]*;[^:\n]*:(\d+)$", text, re.M).group(1))
        out[i] = (port, data)
    return out


def mode(port: int) -> str | None:
    try:
        return parse_mode(four_letter("127.0.0.1", port, "srvr", timeout=2.0))
    except OSError:
        return None


def script(cmd: str, n: int) -> str:
    env = dict(os.environ, WARREN=os.environ.get("WARREN_BIN", str(ROOT / "target/release/warren")))
    r = subprocess.run(["bash", str(SCRIPT), cmd, str(n)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"ci/ensemble.sh {cmd} {n} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def wait_stable(ms: dict[int, tuple[int, Path]], ids: list[int]) -> int:
    """The leader, once exactly one of `ids` leads and all the others follow."""
    def leader():
        modes = {i: mode(ms[i][0]) for i in ids}
        leaders = [i for i, m in modes.items() if m == "leader"]
        if len(leaders) == 1 and all(m == "follower" for i, m in modes.items() if i != leaders[0]):
            return leaders[0]
        return None

    return wait_for(leader, TIMEOUT, what=f"a stable ensemble among {ids}")


def pid_of(data: Path) -> int:
    return int((data / "warren.pid").read_text())


def ports_free(ms) -> bool:
    for port, _ in ms.values():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [3, 5])
def test_sample_ensemble_survives_a_leader_kill_under_load(n):
    ms = members(n)
    assert ports_free(ms), f"a client port of conf/ensemble-{n} (2181..) is taken: stop what runs there"
    for _, data in ms.values():
        shutil.rmtree(data, ignore_errors=True)
    clients: list[KazooClient] = []
    try:
        print(script("start", n))
        ids = sorted(ms)
        leader = wait_stable(ms, ids)
        followers = [i for i in ids if i != leader]
        hosts = ",".join(f"127.0.0.1:{ms[i][0]}" for i in ids)

        # A session on the leader, with every server listed: it must move to a survivor
        # and keep its ephemeral.
        owner = KazooClient(hosts=f"127.0.0.1:{ms[leader][0]}," + hosts, timeout=10,
                            randomize_hosts=False)
        owner.start(timeout=TIMEOUT)
        clients.append(owner)
        session = owner.client_id[0]
        owner.ensure_path("/sample")
        owner.create("/sample/member", b"", ephemeral=True)
        # One writer per follower, each connected there first, with every server listed.
        writers = []
        for f in followers:
            c = KazooClient(hosts=f"127.0.0.1:{ms[f][0]}," + hosts, timeout=10, randomize_hosts=False)
            c.start(timeout=TIMEOUT)
            clients.append(c)
            writers.append(SeqWriter(c, f"/sample/via{f}-"))
        for w in writers:
            w.start()
        wait_for(lambda: all(len(w.acked) >= 50 for w in writers), TIMEOUT,
                 what="50 acknowledged writes per writer")

        t_kill = time.monotonic()
        os.kill(pid_of(ms[leader][1]), signal.SIGKILL)
        new_leader = wait_stable(ms, followers)
        elected_ms = (time.monotonic() - t_kill) * 1000
        wait_for(lambda: all(w.acked_after(t_kill) >= 50 for w in writers), TIMEOUT,
                 what="writes to resume after the leader kill")
        acked = set()
        for w in writers:
            acked |= names(w.finish())
        print(f"{n} servers: killed leader {leader}, server {new_leader} leading "
              f"{elected_ms:.0f} ms later; {len(acked)} acknowledged writes")

        # The restarted old leader (the script starts only the missing member) rejoins.
        print(script("start", n))
        assert wait_stable(ms, ids) == new_leader
        assert mode(ms[leader][0]) == "follower"
        # answered once the session has moved to a survivor
        wait_for(lambda: works(owner, "/sample"), TIMEOUT, what="the leader's client to reconnect")
        assert owner.client_id[0] == session, "the leader's client got a new session"
        for i in ids:
            c = KazooClient(hosts=f"127.0.0.1:{ms[i][0]}", timeout=10)
            c.start(timeout=TIMEOUT)
            clients.append(c)
            c.sync("/sample")
            have = set(c.get_children("/sample"))
            lost = acked - have
            assert not lost, f"server {i} lacks {len(lost)} acknowledged writes: {sorted(lost)[:5]}"
            assert "member" in have, f"server {i}: the moved session's ephemeral is gone"
            assert c.get("/sample/member")[1].ephemeralOwner == session
    finally:
        for c in clients:
            _close_client(c)
        subprocess.run(["bash", str(SCRIPT), "stop", str(n)], cwd=ROOT, capture_output=True, timeout=60)
        for _, data in ms.values():
            shutil.rmtree(data, ignore_errors=True)
