"""The Debian package and the systemd integration.

- sd_notify, with the built binary and a datagram socket standing in for systemd's
  NOTIFY_SOCKET: READY=1 once the client port listens, STATUS= with the role, WATCHDOG=1 at
  half of WATCHDOG_USEC; an ensemble member is READY before it has a quorum (a rolling start
  must not wait for the others) and its STATUS says it is looking for a leader.
- The package (ci/build-deb.sh, cargo-deb): `dpkg -i` installs the binary, the unit, the
  conffile and the warren user with its /var/lib/warren; `systemd-analyze verify` accepts the
  unit without a warning; the installed binary runs as that user with the packaged zoo.cfg
  (ports changed) under systemd's default 8 MiB memlock limit, tells the notify socket it is
  ready and serves a client; `dpkg --purge` removes the binary, the unit and /etc/warren and
  leaves the data and the user, as docs/operations.md says.

The package tests need root and dpkg (CI has both); they leave the machine as they found it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from servers import LOCALHOST, REPO_ROOT, free_port, warren_bin

PACKAGE = "warren"
MEMLOCK_DEFAULT = 8 * 1024 * 1024  # systemd's default LimitMEMLOCK


class NotifySocket:
    """A datagram socket where a service's sd_notify messages arrive, readable by any user
    (the server may run as warren)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="warren-notify-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.path = self.dir / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.path.chmod(0o777)

    def messages(self, until, timeout: float = 20.0) -> list[dict[str, str]]:
        """Every message received until `until(messages)` holds; fails after `timeout`."""
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + timeout
        while not until(got):
            left = deadline - time.monotonic()
            assert left > 0, f"no such notification within {timeout} s; got {got}"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            got.append(dict(line.split("=", 1) for line in data.splitlines() if "=" in line))
        return got

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def start(cmd, cfg: Path, notify: NotifySocket, log: Path, watchdog_usec: int | None = None,
          user: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    prefix = ["prlimit", f"--memlock={MEMLOCK_DEFAULT}:{MEMLOCK_DEFAULT}"]
    if user is not None:
        prefix += ["runuser", "-u", user, "--"]
    return subprocess.Popen(prefix + [str(cmd), "start-foreground", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)


def stop(proc: subprocess.Popen):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_notify_ready_status_and_watchdog(tmp_path, notify):
    port = free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort={port}\n"
                   f"clientPortAddress={LOCALHOST}\nadmin.enableServer=false\n")
    proc = start(warren_bin(), cfg, notify, tmp_path / "log", watchdog_usec=400_000)
    try:
        got = notify.messages(lambda m: sum("WATCHDOG" in x for x in m) >= 3)
        first = got[0]
        assert first.get("READY") == "1", got
        assert first.get("STATUS") == f"standalone; serving clients on {LOCALHOST}:{port}", got
        # READY means the client port takes connections.
        socket.create_connection((LOCALHOST, port), timeout=5).close()
        assert all("READY" not in m for m in got[1:]), got
    finally:
        stop(proc)


def test_no_notify_socket_no_messages(tmp_path, notify):
    """Without NOTIFY_SOCKET (not under systemd) the server sends nothing anywhere."""
    port = free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort={port}\n"
                   f"clientPortAddress={LOCALHOST}\nadmin.enableServer=false\n")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen([str(warren_bin()), "start-foreground", str(cfg)], env=env,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((LOCALHOST, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        notify.sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            notify.sock.recv(4096)
    finally:
        stop(proc)


def test_ensemble_member_is_ready_before_a_quorum(tmp_path, notify):
    """One member of a 3-server ensemble whose peers never start: READY=1 anyway (systemctl
    start must not wait for the other servers), and its status says it has no leader."""
    client = free_port()
    peers = [(free_port(), free_port()) for _ in range(3)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "myid").write_text("1\n")
    servers = "".join(f"server.{i + 1}={LOCALHOST}:{q}:{e}\n" for i, (q, e) in enumerate(peers))
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                   f"clientPort={client}\nclientPortAddress={LOCALHOST}\n"
                   f"admin.enableServer=false\n{servers}")
    proc = start(warren_bin(), cfg, notify, tmp_path / "log")
    try:
        got = notify.messages(lambda m: any(x.get("READY") == "1" for x in m))
        ready = next(x for x in got if x.get("READY") == "1")
        assert ready.get("STATUS", "").startswith("looking for a leader"), got
    finally:
        stop(proc)


# --- the Debian package ---------------------------------------------------------------------

def _run(*cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, **kw)


def _installed() -> bool:
    r = _run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


@pytest.fixture(scope="module")
def deb():
    if os.geteuid() != 0 or shutil.which("dpkg") is None:
        pytest.skip("installing a Debian package needs root and dpkg (CI has both)")
    if _installed():
        pytest.fail("a warren package is already installed on this machine: the test would "
                    "replace it; remove it first (dpkg --purge warren)")
    had_user = _run("getent", "passwd", "warren", check=False).returncode == 0
    had_dir = Path("/var/lib/warren").exists()
    r = _run("bash", str(REPO_ROOT / "ci" / "build-deb.sh"), check=False, cwd=REPO_ROOT)
    assert r.returncode == 0, f"ci/build-deb.sh failed:\n{r.stdout}\n{r.stderr}"
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb", r.stdout
    yield path
    # Leave the machine as it was found.
    if _installed():
        _run("dpkg", "--purge", PACKAGE, check=False)
    if not had_user:
        _run("userdel", "warren", check=False)
        _run("groupdel", "warren", check=False)
    if not had_dir:
        shutil.rmtree("/var/lib/warren", ignore_errors=True)


# The timeout covers the `deb` fixture: ci/build-deb.sh builds the workspace without
# --all-targets, which on a fresh checkout can recompile crates whose features differ (ci/test.sh
# builds the package beforehand, so there it is quick; run alone it may not be).
@pytest.mark.timeout(900)
def test_package_installs_runs_as_warren_and_purges(deb, tmp_path, notify):
    contents = _run("dpkg-deb", "-c", str(deb)).stdout
    for f in ("./usr/bin/warren", "./usr/lib/systemd/system/warren.service",
              "./etc/warren/zoo.cfg", "./usr/share/doc/warren/operations.md"):
        assert f in contents, contents
    assert _run("dpkg-deb", "-f", str(deb), "Package").stdout.strip() == PACKAGE

    r = _run("dpkg", "-i", str(deb), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    unit = Path("/usr/lib/systemd/system/warren.service")
    assert unit.is_file() and Path("/usr/bin/warren").is_file()
    assert "/etc/warren/zoo.cfg" in _run("dpkg-query", "-W", "-f=${Conffiles}", PACKAGE).stdout
    user = _run("getent", "passwd", "warren").stdout.split(":")
    assert user[5] == "/var/lib/warren" and user[6].strip().endswith("nologin"), user
    st = os.stat("/var/lib/warren")
    assert (st.st_uid, st.st_mode & 0o777) == (int(user[2]), 0o750)

    # The unit: systemd-analyze exits 0 even on unknown keys or bad values, so any output at
    # all is a failure.
    if shutil.which("systemd-analyze"):
        v = _run("systemd-analyze", "verify", str(unit), check=False)
        assert v.returncode == 0 and not (v.stdout + v.stderr).strip(), v.stdout + v.stderr
    settings = [ln.strip() for ln in unit.read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    for line in ("Type=notify", "User=warren",
                 "ExecStart=/usr/bin/warren start-foreground /etc/warren/zoo.cfg"):
        assert line in settings, line
    # systemd's default memlock limit, and io_uring's system calls allowed
    assert not [s for s in settings if s.startswith(("LimitMEMLOCK=", "SystemCallFilter="))]

    out = _run("/usr/bin/warren", "version").stdout
    assert "built on unknown" not in out and "git commit:" in out, out

    # The packaged zoo.cfg as the unit runs it, as the warren user, with this test's ports
    # (the packaged 2181 and 8080 may be taken on a test machine).
    port = free_port()
    packaged = Path("/etc/warren/zoo.cfg").read_text()
    assert "dataDir=/var/lib/warren" in packaged.splitlines()
    cfg_dir = Path(tempfile.mkdtemp(prefix="warren-pkg-", dir="/tmp"))
    cfg_dir.chmod(0o755)
    cfg = cfg_dir / "zoo.cfg"
    cfg.write_text(packaged.replace("clientPort=2181", f"clientPort={port}")
                   + f"\nclientPortAddress={LOCALHOST}\nadmin.enableServer=false\n")
    cfg.chmod(0o644)
    proc = start("/usr/bin/warren", cfg, notify, tmp_path / "log", user="warren")
    try:
        got = notify.messages(lambda m: any(x.get("READY") == "1" for x in m))
        assert any(x.get("STATUS", "").startswith("standalone; serving") for x in got), got
        owner = _run("ps", "-o", "user=", "--ppid", str(proc.pid), "-p", str(proc.pid)).stdout
        assert set(owner.split()) >= {"warren"}, owner
        zk = KazooClient(hosts=f"{LOCALHOST}:{port}", timeout=10)
        zk.start(timeout=15)
        try:
            zk.create("/packaged", b"served")
            assert zk.get("/packaged")[0] == b"served"
        finally:
            zk.stop()
            zk.close()
        files = [p for p in Path("/var/lib/warren").rglob("*") if p.is_file()]
        assert files, "nothing written to /var/lib/warren"
        assert all(p.stat().st_uid == int(user[2]) for p in files), files
    finally:
        stop(proc)
        shutil.rmtree(cfg_dir, ignore_errors=True)
    log = (tmp_path / "log").read_text()
    assert "locked" in log and "memlock limit 8192 KiB" in log, log[-2000:]

    r = _run("dpkg", "--purge", PACKAGE, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not Path("/usr/bin/warren").exists() and not unit.exists()
    assert not Path("/etc/warren").exists()
    # The data and the user stay (docs/operations.md, "Remove").
    assert Path("/var/lib/warren").is_dir()
    assert _run("getent", "passwd", "warren", check=False).returncode == 0
