"""Server process helpers for Warren's black-box tests.

Two interchangeable server classes with one interface:

* ``ZooKeeperServer`` -- a real standalone Apache ZooKeeper 3.8 (Debian package), used as
  the reference implementation and to validate the tests themselves.
* ``WarrenServer`` -- the server under test, ``$WARREN_BIN start-foreground <dir>/zoo.cfg``.

Both write the same ``zoo.cfg`` into a private temporary directory, bind 127.0.0.1 only,
wait until the server answers the ``srvr`` four-letter word over a plain socket, and stop
it on teardown. Each exposes ``host``, ``port``, ``host_port`` ("127.0.0.1:PORT"),
``data_dir``, ``base_dir``, ``log_tail()``, ``start()``, ``stop()``, ``kill()`` and
``restart()`` (same port, same data directory).

Every wait loop here is bounded in time and in iterations.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ZK_JAVA_DIR = Path("/usr/share/java")
ZK_JAR = ZK_JAVA_DIR / "zookeeper.jar"
# zookeeper.jar's manifest Class-Path brings jute, netty, slf4j-api etc.; the two logging
# jars are needed or the server logs nothing.
ZK_SERVER_CLASSPATH = [
    str(ZK_JAR),
    str(ZK_JAVA_DIR / "slf4j-log4j12.jar"),
    str(ZK_JAVA_DIR / "log4j-1.2.jar"),
]
LOCALHOST = "127.0.0.1"

ZK_START_TIMEOUT = 60.0
WARREN_START_TIMEOUT = 20.0
STOP_GRACE = 10.0


class ServerStartError(RuntimeError):
    pass


def die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it dies, so servers
    never outlive a test run that was cut short (e.g. by a hard timeout)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def four_letter(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send a four-letter word over a plain socket; return the whole text answer.

    Raises OSError (e.g. ConnectionRefusedError, socket.timeout) when the server does not
    answer. Reading stops at EOF, after ``timeout`` seconds overall, or after 4 MiB.
    """
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    total = 0
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode("ascii"))
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while total < 4 * 1024 * 1024:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"four-letter word {word!r}: no EOF within {timeout}s")
            s.settimeout(remaining)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
            total += len(data)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """Common lifecycle: config, spawn, readiness poll, stop."""

    kind = "abstract"
    start_timeout = 20.0

    def __init__(self, base_dir: str | os.PathLike | None = None, port: int | None = None,
                 extra_cfg: dict[str, str] | None = None, name: str | None = None):
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix=f"{self.kind}-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.name = name or self.kind
        self.host = LOCALHOST
        self.port = port or free_port()
        self.data_dir = self.base_dir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.cfg_path = self.base_dir / "zoo.cfg"
        self.extra_cfg = dict(extra_cfg or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._write_cfg()

    # -- public interface -------------------------------------------------------------
    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host_port} dir={self.base_dir}>"

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "_Server":
        if self.is_running():
            return self
        self.starts += 1
        self._spawn()
        try:
            self._wait_ready(self.start_timeout)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate (SIGTERM), then SIGKILL after a grace period."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_GRACE)
            except ProcessLookupError:
                pass
        self._close_files()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to flush anything."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_GRACE)
        self._close_files()
        self.proc = None

    def restart(self) -> "_Server":
        """Stop and start again on the same port with the same data directory."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        raise NotImplementedError

    def status(self) -> str:
        if self.proc is None:
            return "not running"
        code = self.proc.poll()
        return f"running (pid {self.proc.pid})" if code is None else f"EXITED with code {code}"

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        return four_letter(self.host, self.port, word, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- internals --------------------------------------------------------------------
    def cfg_lines(self) -> dict[str, str]:
        cfg = {
            "tickTime": "2000",
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": LOCALHOST,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "60",
        }
        cfg.update(self.extra_cfg)
        return cfg

    def _write_cfg(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self.cfg_lines().items())
        self.cfg_path.write_text(text)

    def _spawn(self) -> None:
        raise NotImplementedError

    def _close_files(self) -> None:
        pass

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        for _ in range(int(timeout / 0.05) + 10):
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ServerStartError(
                    f"{self.name} exited with code {code} before answering srvr\n"
                    f"--- log tail ---\n{self.log_tail()}")
            try:
                answer = four_letter(self.host, self.port, "srvr", timeout=2.0)
                if answer.strip() and "not currently serving" not in answer:
                    return
                last = answer.strip() or "empty answer"
            except OSError as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise ServerStartError(
            f"{self.name} did not answer srvr on {self.host_port} within {timeout}s "
            f"(last: {last})\n--- log tail ---\n{self.log_tail()}")


class ZooKeeperServer(_Server):
    """Real standalone Apache ZooKeeper 3.8 from the Debian package."""

    kind = "zookeeper"
    start_timeout = ZK_START_TIMEOUT
    heap = "256m"

    def __init__(self, *args, jvm_props: dict[str, str] | None = None,
                 extra_classpath: list[str] | None = None, **kw):
        super().__init__(*args, **kw)
        self.jvm_props = dict(jvm_props or {})
        self.extra_classpath = list(extra_classpath or [])
        self.log_path = self.base_dir / "zookeeper.log"
        self.out_path = self.base_dir / "zookeeper.out"
        self.log4j_path = self.base_dir / "log4j.properties"
        self.log4j_path.write_text(
            "log4j.rootLogger=INFO, FILE\n"
            "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
            f"log4j.appender.FILE.File={self.log_path}\n"
            "log4j.appender.FILE.Append=true\n"
            "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.FILE.layout.ConversionPattern="
            "%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n")
        self._out = None

    def command(self) -> list[str]:
        props = [f"-D{k}={v}" for k, v in self.jvm_props.items()]
        return [
            "java", f"-Xmx{self.heap}", "-XX:-UsePerfData", "-XX:+UseSerialGC",
            f"-Dlog4j.configuration=file:{self.log4j_path}",
            "-Dzookeeper.jmx.log4j.disable=true",
            *props,
            "-cp", ":".join([str(self.base_dir), *ZK_SERVER_CLASSPATH, *self.extra_classpath]),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.cfg_path),
        ]

    def _spawn(self) -> None:
        if not ZK_JAR.exists():
            raise ServerStartError(f"{ZK_JAR} missing: run ci/install-deps.sh")
        self._out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)

    def _close_files(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def log_tail(self, lines: int = 60) -> str:
        return (f"[{self.log_path}]\n{_tail(self.log_path, lines)}\n"
                f"[{self.out_path}]\n{_tail(self.out_path, 20)}")


def stop_clients(clients) -> None:
    """Stops and closes kazoo clients, ignoring the errors of ones already gone."""
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def warren_bin() -> Path:
    return Path(os.environ.get("WARREN_BIN") or REPO_ROOT / "target" / "release" / "warren")


class WarrenServer(_Server):
    """The server under test: ``$WARREN_BIN start-foreground <dir>/zoo.cfg``."""

    kind = "warren"
    start_timeout = WARREN_START_TIMEOUT

    def __init__(self, *args, binary: str | os.PathLike | None = None, **kw):
        super().__init__(*args, **kw)
        self.binary = Path(binary) if binary else warren_bin()
        self.out_path = self.base_dir / "warren.out"
        self._out = None

    def command(self) -> list[str]:
        return [str(self.binary), "start-foreground", str(self.cfg_path)]

    def _spawn(self) -> None:
        if not self.binary.exists():
            raise ServerStartError(
                f"Warren binary {self.binary} not found: build it (cargo build --release) or "
                f"set WARREN_BIN; to validate the tests on real ZooKeeper instead set "
                f"WARREN_TEST_TARGET=zookeeper")
        self._out = open(self.out_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=die_with_parent)

    def _close_files(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def stop(self) -> None:
        # Warren gets a short grace period: a server that ignores SIGTERM is killed.
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def log_tail(self, lines: int = 60) -> str:
        return f"[{self.out_path}]\n{_tail(self.out_path, lines)}"


SERVER_KINDS = {"zookeeper": ZooKeeperServer, "warren": WarrenServer}


def target_kind() -> str:
    kind = os.environ.get("WARREN_TEST_TARGET", "warren").strip().lower() or "warren"
    if kind not in SERVER_KINDS:
        raise ValueError(f"WARREN_TEST_TARGET must be one of {sorted(SERVER_KINDS)}, got {kind!r}")
    return kind


def make_server(kind: str, **kw) -> _Server:
    return SERVER_KINDS[kind](**kw)
