"""Apache Curator (the Java client most ZooKeeper users run) against Warren, and against real
ZooKeeper 3.8 to validate the checks themselves.

The Java side is ``tests/java/CuratorSuite.java``: compiled here with ``javac`` against
Debian's jars (libcurator-{recipes,framework,client}-java 5.4, zookeeper 3.8) into
``target/curator-java/<hash of the sources>/`` and run as
``java -Xmx256m -cp ... CuratorSuite <scenario> connect=...``; it prints ``PASS name`` /
``FAIL name: why`` per check and exits non-zero on any failure (details on its stderr,
saved next to the client's log4j log in the test's tmp dir).

Deployments (module-scoped, one at a time): Warren standalone, Warren 3-server ensemble,
ZooKeeper 3.8 standalone, ZooKeeper 3.8 3-server ensemble (``ensemble.Ensemble``); all with
TTL nodes enabled (Warren: ``extendedTypesEnabled`` in zoo.cfg; ZooKeeper: the JVM property
``zookeeper.extendedTypesEnabled``) and container / TTL reaping every 500 ms
(``warren.containerCheckIntervalMs`` / ``znode.container.checkIntervalMs``).
``WARREN_ENSEMBLE_SYSTEMS=warren`` (or ``zookeeper``) limits the systems, as in
test_ensemble.py; the ensemble deployments are marked ``slow``.

* ``test_recipe[<deployment>-<recipe>]``: one Java run per deployment executes every recipe
  check (InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreV2,
  InterProcessSemaphoreMutex, LeaderLatch, LeaderSelector, DistributedAtomicLong,
  SharedCount, PathChildrenCache, TreeCache, NodeCache, CuratorCache, DistributedQueue,
  DistributedPriorityQueue, DistributedDelayQueue, DistributedBarrier,
  DistributedDoubleBarrier, PersistentNode, PersistentTtlNode, GroupMember, transactions and
  multiRead, one-shot / persistent / recursive watches); each recipe is reported as a test.
* ``test_reconnect_keeps_session``: a Curator client behind ``tcpproxy.ProxyHub`` links (one
  per server) holds a lock, an ephemeral, a CuratorCache and one-shot watches while the test
  cuts its connection; it must come back RECONNECTED with the same session, and everything
  must keep working. Standalone: three drops in a row. Ensemble: every link cut, then a move
  (only the link to its server cut), then a leader kill with the client forced onto the
  leader first (ZooKeeper keeps the session there too).
* ``test_session_expiry_is_a_clean_loss`` (slow): the same client cut off for longer than its
  4 s session: LOST, the server expires the session (ephemeral, lock and latch go to the
  other client), then the client works again under a new session.

About 3 minutes for the whole file on 2 cores (each deployment's recipe run about 30 s).

    python3 -m pytest tests/python/test_curator.py -q
    WARREN_ENSEMBLE_SYSTEMS=warren python3 -m pytest tests/python/test_curator.py -q -m "not slow"
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ensemble import PORTS, Ensemble, check_system_available, selected_systems
from servers import REPO_ROOT, ZK_JAVA_DIR, die_with_parent, make_server
from tcpproxy import ProxyHub

JAVA_SOURCES = REPO_ROOT / "tests" / "java"
CLASSES_CACHE = REPO_ROOT / "target" / "curator-java"
CURATOR_CLASSPATH = [str(ZK_JAVA_DIR / j) for j in (
    "curator-recipes.jar", "curator-framework.jar", "curator-client.jar", "zookeeper.jar",
    "zookeeper-jute.jar", "guava.jar", "slf4j-api.jar")]
LOGGING_CLASSPATH = [str(ZK_JAVA_DIR / j) for j in ("slf4j-log4j12.jar", "log4j-1.2.jar")]

# the checks CuratorSuite's "recipes" scenario runs (its RECIPES list; compared at build time)
RECIPES = [
    "mutex", "readwritelock", "semaphore", "semaphoremutex", "leaderlatch", "leaderselector",
    "atomiclong", "sharedcount", "pathchildrencache", "treecache", "nodecache", "curatorcache",
    "queue", "priorityqueue", "delayqueue", "barrier", "doublebarrier", "persistentnode",
    "persistentttlnode", "groupmember", "transaction", "watches",
]

# TTL nodes on, container / TTL reaping every 500 ms: (zoo.cfg keys, JVM properties)
SERVER_SETTINGS = {
    "warren": ({"extendedTypesEnabled": "true", "warren.containerCheckIntervalMs": "500"}, {}),
    "zookeeper": ({}, {"zookeeper.extendedTypesEnabled": "true",
                       "znode.container.checkIntervalMs": "500"}),
}

RECIPES_DEADLINE = 240      # s, the Java run's own hard limit (it prints FAIL deadline)
RECONNECT_DEADLINE = 240
LINE_TIMEOUT = 120.0        # s, longest wait for one protocol line from the Java side
# Session timeouts asked for: standalone tickTime 2000 allows 4-40 s, ensembles (tickTime
# 1000) 2-20 s. Long enough that no drop here comes near them.
SESSION_MS = {"standalone": 20000, "ensemble": 15000}


# ---------------------------------------------------------------------------------------
# deployments
# ---------------------------------------------------------------------------------------
def _deployment_params():
    params = []
    for system in selected_systems():
        params.append(pytest.param((system, "standalone"), id=f"{system}-standalone"))
        params.append(pytest.param((system, "ensemble"), id=f"{system}-ensemble",
                                   marks=pytest.mark.slow))
    return params


def _live_server_registry() -> list:
    """conftest's list of live servers, whose log tails it attaches to failing tests."""
    mod = sys.modules.get("conftest")
    registry = getattr(mod, "_LIVE_SERVERS", None)
    return registry if registry is not None else []


@dataclass
class Deployment:
    system: str
    topology: str
    members: list                    # servers (standalone: one)
    ensemble: Ensemble | None = None

    @property
    def id(self) -> str:
        return f"{self.system}-{self.topology}"

    @property
    def connect(self) -> str:
        return ",".join(m.host_port for m in self.members)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(f"--- {m.name} {m.host_port} ({m.status()}) ---\n{m.log_tail(lines)}"
                         for m in self.members)


_START_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="module", params=_deployment_params())
def deployment(request, tmp_path_factory):
    system, topology = request.param
    key = f"{system}-{topology}"
    why = check_system_available(system)
    if why:
        pytest.fail(f"{system}: {why}", pytrace=False)
    if key in _START_FAILURES:
        pytest.fail(f"{key} could not be started: {_START_FAILURES[key]}", pytrace=False)
    cfg, props = SERVER_SETTINGS[system]
    base = tmp_path_factory.mktemp(f"curator-{key}")
    registry = _live_server_registry()
    dep: Deployment | None = None
    try:
        if topology == "standalone":
            kw = {"jvm_props": props} if system == "zookeeper" else {}
            server = make_server(system, base_dir=base / system, extra_cfg=cfg,
                                 name=f"curator-{system}", **kw)
            dep = Deployment(system, topology, [server])
            registry.append(server)
            server.start()
        else:
            ens = Ensemble(system, base, participants=3, extra_cfg=cfg, jvm_props=props,
                           name="curator-ens")
            dep = Deployment(system, topology, [ens[sid] for sid in ens.sids], ensemble=ens)
            registry.extend(dep.members)
            ens.start(timeout=90)
    except Exception as e:  # noqa: BLE001 - reported as a failure of every test using it
        _START_FAILURES[key] = str(e)
        _teardown(dep, registry)
        pytest.fail(f"could not start {key}: {e}", pytrace=False)
    yield dep
    _teardown(dep, registry)


def _teardown(dep: Deployment | None, registry: list) -> None:
    if dep is None:
        return
    try:
        if dep.ensemble is not None:
            dep.ensemble.close()
        else:
            for m in dep.members:
                m.cleanup()
    finally:
        for m in dep.members:
            if m in registry:
                registry.remove(m)


# ---------------------------------------------------------------------------------------
# the Java program
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def curator_classes() -> Path:
    """tests/java/*.java compiled (once per content) into target/curator-java/<hash>/."""
    missing = [j for j in CURATOR_CLASSPATH + LOGGING_CLASSPATH if not os.path.exists(j)]
    javac, java = shutil.which("javac"), shutil.which("java")
    if missing or not javac or not java:
        pytest.fail(f"Curator test prerequisites missing ({', '.join(missing) or 'javac/java'}): "
                    f"run ci/install-deps.sh", pytrace=False)
    sources = sorted(JAVA_SOURCES.glob("*.java"))
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    out = CLASSES_CACHE / digest.hexdigest()[:16]
    if not (out / "CuratorSuite.class").exists():
        tmp = CLASSES_CACHE / f"{out.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [javac, "-nowarn", "-Xlint:-path", "-encoding", "UTF-8", "-d", str(tmp),
               "-cp", ":".join(CURATOR_CLASSPATH), *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.fail(f"javac failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                        pytrace=False)
        try:
            tmp.rename(out)
        except OSError:  # compiled concurrently by another run
            shutil.rmtree(tmp, ignore_errors=True)
        for old in CLASSES_CACHE.iterdir():  # classes of earlier versions of the sources
            if old != out and ".tmp" not in old.name:
                shutil.rmtree(old, ignore_errors=True)
    listed = subprocess.run(java_command(out, "list"), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    names = listed.stdout.split()
    if names != RECIPES:
        pytest.fail(f"CuratorSuite.RECIPES {names} and test_curator.RECIPES {RECIPES} differ",
                    pytrace=False)
    return out


def java_command(classes: Path, scenario: str, log_dir: Path | None = None, **opts) -> list[str]:
    cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:-UsePerfData",
           "-XX:TieredStopAtLevel=1"]
    if log_dir is not None:
        props = log_dir / "log4j.properties"
        props.write_text(
            "log4j.rootLogger=INFO, FILE\n"
            "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
            f"log4j.appender.FILE.File={log_dir / 'client.log'}\n"
            "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n\n")
        cmd.append(f"-Dlog4j.configuration=file:{props}")
    cmd += ["-cp", ":".join([str(classes), *CURATOR_CLASSPATH, *LOGGING_CLASSPATH]),
            "CuratorSuite", scenario, *(f"{k}={v}" for k, v in opts.items())]
    return cmd


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:])


def _section(path: Path, name: str, limit: int = 80) -> str:
    """The lines of the Java stderr between '=== name (' and '=== name took'."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    out, inside = [], False
    for line in lines:
        if f"=== {name} (" in line:
            inside = True
        if inside:
            out.append(line)
        if inside and f"=== {name} took" in line:
            inside = False
    for i, line in enumerate(lines):  # the failure's stack trace follows "check NAME failed:"
        if f"check {name} failed:" in line:
            out += lines[i:i + 25]
            break
    return "\n".join(out[-limit:])


# ---------------------------------------------------------------------------------------
# recipes
# ---------------------------------------------------------------------------------------
@dataclass
class RecipeRun:
    results: dict[str, tuple[bool, str]]
    stdout: str
    returncode: int | None
    log_dir: Path
    elapsed: float
    error: str | None = None


@pytest.fixture(scope="module")
def recipe_run(deployment, curator_classes, tmp_path_factory) -> RecipeRun:
    log_dir = tmp_path_factory.mktemp(f"curator-recipes-{deployment.id}")
    cmd = java_command(curator_classes, "recipes", log_dir, connect=deployment.connect, ttl=1,
                       session=SESSION_MS[deployment.topology], deadline=RECIPES_DEADLINE)
    t0 = time.monotonic()
    error, stdout, rc = None, "", None
    with open(log_dir / "stderr.txt", "wb") as err:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                  stdin=subprocess.DEVNULL, timeout=RECIPES_DEADLINE + 30,
                                  preexec_fn=die_with_parent)
            stdout, rc = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            error = f"the Java run did not end within {RECIPES_DEADLINE + 30} s"
    elapsed = time.monotonic() - t0
    results: dict[str, tuple[bool, str]] = {}
    for line in stdout.splitlines():
        m = re.match(r"(PASS|FAIL) (\S+?)(?:: (.*))?$", line)
        if m:
            results[m.group(2)] = (m.group(1) == "PASS", m.group(3) or "")
    print(f"{deployment.id}: Curator recipes ran in {elapsed:.1f} s, exit {rc}")
    return RecipeRun(results, stdout, rc, log_dir, elapsed, error)


@pytest.mark.timeout(RECIPES_DEADLINE + 200)
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe(recipe, recipe_run, deployment):
    run = recipe_run
    result = run.results.get(recipe)
    context = (f"\n--- Java stderr for {recipe} ({run.log_dir / 'stderr.txt'}) ---\n"
               f"{_section(run.log_dir / 'stderr.txt', recipe)}"
               f"\n--- client log tail ({run.log_dir / 'client.log'}) ---\n"
               f"{_tail(run.log_dir / 'client.log', 30)}")
    if result is None:
        pytest.fail(f"{deployment.id}: no result for {recipe} (exit {run.returncode}"
                    f"{', ' + run.error if run.error else ''}); output:\n{run.stdout}{context}"
                    f"\n{deployment.log_tails()}", pytrace=False)
    ok, why = result
    if not ok:
        pytest.fail(f"{deployment.id}: Curator {recipe}: {why}{context}", pytrace=False)
    if "deadline" in run.results:
        pytest.fail(f"{deployment.id}: the Java run hit its deadline: {run.results['deadline'][1]}",
                    pytrace=False)


# ---------------------------------------------------------------------------------------
# reconnects
# ---------------------------------------------------------------------------------------
class JavaDriver:
    """A CuratorSuite process spoken to over stdin/stdout, one line at a time."""

    def __init__(self, cmd: list[str], log_dir: Path):
        self.log_dir = log_dir
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._err = open(log_dir / "stderr.txt", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1,
                                     preexec_fn=die_with_parent)
        threading.Thread(target=self._read, daemon=True, name="java-stdout").start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def diagnostics(self) -> str:
        return (f"Java output so far:\n  " + "\n  ".join(self.lines)
                + f"\n--- Java stderr tail ({self.log_dir / 'stderr.txt'}) ---\n"
                f"{_tail(self.log_dir / 'stderr.txt', 40)}"
                f"\n--- client log tail ({self.log_dir / 'client.log'}) ---\n"
                f"{_tail(self.log_dir / 'client.log', 40)}")

    def expect(self, prefix: str, timeout: float = LINE_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.01, left))
            except queue.Empty:
                pytest.fail(f"no {prefix!r} line from the Java side within {timeout} s\n"
                            f"{self.diagnostics()}", pytrace=False)
            if line is None:
                self._queue.put(None)
                pytest.fail(f"the Java side ended (exit {self.proc.poll()}) while "
                            f"{prefix!r} was expected\n{self.diagnostics()}", pytrace=False)
            self.lines.append(line)
            if line.startswith(prefix):
                return line
            if line.startswith(("FAIL", "DONE")):
                pytest.fail(f"Curator: {line}\n{self.diagnostics()}", pytrace=False)

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the next expect() reports what the Java side said before it ended

    def finish(self, timeout: float = 60.0) -> int:
        self.expect("DONE", timeout)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the Java side did not exit after DONE\n{self.diagnostics()}",
                        pytrace=False)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        self._err.close()


def _client_links(dep: Deployment, hub: ProxyHub) -> tuple[dict, str]:
    """One proxy link per server's client port: {0: link} standalone, {sid: link} ensemble;
    and the connect string that goes through them."""
    keys = dep.ensemble.sids if dep.ensemble is not None else [0]
    links = {key: hub.add_link(f"client->{member.name}", PORTS.take(1)[0], member.port,
                               dst=key, kind="client")
             for key, member in zip(keys, dep.members)}
    return links, ",".join(f"127.0.0.1:{link.listen_port}" for link in links.values())


def _remote(line: str) -> int | None:
    m = re.search(r"remote=(\d+)", line)
    return int(m.group(1)) if m else None


@dataclass
class Steering:
    deployment: Deployment
    hub: ProxyHub
    driver: JavaDriver
    links: dict = field(default_factory=dict)   # member index (standalone 0, ensemble sid) -> Link

    def link_at(self, port: int | None):
        for key, link in self.links.items():
            if link.listen_port == port:
                return key, link
        pytest.fail(f"the client is on port {port}, which is none of the proxies "
                    f"{[l.listen_port for l in self.links.values()]}\n{self.driver.diagnostics()}",
                    pytrace=False)

    def cut(self, keys) -> None:
        self.hub.set_state([self.links[k] for k in keys], "cut")

    def heal(self) -> None:
        self.hub.heal()

    def steer_to(self, r: int, key) -> None:
        """Cut every other link until the client reports it is on `key`'s link, then heal."""
        target = self.links[key].listen_port
        self.cut([k for k in self.links if k != key])
        deadline = time.monotonic() + 60
        try:
            while True:
                self.driver.send("where")
                at = _remote(self.driver.expect(f"AT {r} "))
                if at == target:
                    return
                if time.monotonic() > deadline:
                    pytest.fail(f"the client did not move to port {target} within 60 s "
                                f"(still on {at})\n{self.driver.diagnostics()}", pytrace=False)
                time.sleep(0.2)
        finally:
            self.heal()


def _drop_round(st: Steering, r: int, keys, heal_before_changes: bool = False) -> int | None:
    """Cut the links `keys`; the Java side waits for SUSPENDED and changes things; heal;
    the Java side checks everything. Returns the port the client ended on."""
    st.driver.expect(f"READY {r} ")
    st.cut(keys)
    if heal_before_changes:  # a reset: the client may be back before the changes are made
        time.sleep(0.2)
        st.heal()
    st.driver.send("dropped")
    st.driver.expect(f"CHANGED {r}")
    st.heal()
    st.driver.send("go")
    st.driver.expect(f"PASS round-{r}")
    return _remote(st.driver.expect(f"ROUND_DONE {r} "))


@pytest.mark.timeout(RECONNECT_DEADLINE + 120)
def test_reconnect_keeps_session(deployment, curator_classes, tmp_path):
    """A Curator client's connection is cut (three times in a row; on an ensemble: every
    link, then only its server's link so it must move, then its server -- the leader -- is
    killed). Every time it must come back RECONNECTED with the same session, still holding
    its InterProcessMutex (the other client still queued) and its ephemeral; the watches it
    set before the drop fire for changes made while it was away; its CuratorCache reports
    those changes and the ones made after it came back."""
    dep = deployment
    hub = ProxyHub()
    driver = None
    try:
        links, proxied = _client_links(dep, hub)
        rounds = 3
        cmd = java_command(curator_classes, "reconnect", tmp_path, connect=proxied,
                           direct=dep.connect, rounds=rounds,
                           session=SESSION_MS[dep.topology], deadline=RECONNECT_DEADLINE)
        driver = JavaDriver(cmd, tmp_path)
        st = Steering(dep, hub, driver, links)
        driver.expect("PASS setup")
        t0 = time.monotonic()
        if dep.ensemble is None:
            _drop_round(st, 1, [0])                               # a drop held while B writes
            _drop_round(st, 2, [0])
            _drop_round(st, 3, [0], heal_before_changes=True)     # a reset
        else:
            ens = dep.ensemble
            _drop_round(st, 1, list(links))                       # every server unreachable
            # a move: only the link to the client's server is cut
            line = driver.expect("READY 2 ")
            was, _ = st.link_at(_remote(line))
            st.cut([was])
            driver.send("dropped")
            driver.expect("CHANGED 2")
            driver.send("go")
            driver.expect("PASS round-2")
            now, _ = st.link_at(_remote(driver.expect("ROUND_DONE 2 ")))
            assert now != was, f"the client is still on server.{was} although its link was cut"
            st.heal()
            # a leader kill, with the client on the leader
            leader = ens.wait_stable(timeout=60)
            line = driver.expect("READY 3 ")
            on, _ = st.link_at(_remote(line))
            if on != leader:
                st.steer_to(3, leader)
            ens.kill(leader)
            driver.send("dropped")
            driver.expect("CHANGED 3")
            driver.send("go")
            driver.expect("PASS round-3")
            now, _ = st.link_at(_remote(driver.expect("ROUND_DONE 3 ")))
            assert now != leader
            followers = [s for s in ens.sids if s != leader]
            new_leader = ens.wait_stable(sids=followers, timeout=60)
            print(f"{dep.id}: killed leader server.{leader}; server.{new_leader} leads; "
                  f"the client moved to server.{now}")
            ens.restart(leader)
            ens.wait_stable(timeout=60)
        driver.expect("PASS final")
        rc = driver.finish()
        print(f"{dep.id}: {rounds} reconnect rounds in {time.monotonic() - t0:.1f} s; "
              f"Java said: {' | '.join(driver.lines)}")
        assert rc == 0, f"CuratorSuite exited {rc}\n{driver.diagnostics()}"
    finally:
        if driver is not None:
            driver.close()
        hub.close()


EXPIRY_SESSION_MS = 4000   # the smallest timeout a standalone server (tickTime 2000) grants


@pytest.mark.slow
@pytest.mark.timeout(RECONNECT_DEADLINE + 120)
def test_session_expiry_is_a_clean_loss(deployment, curator_classes, tmp_path):
    """The client's link stays cut for longer than its session timeout (4 s): Curator reports
    LOST, the server expires the session (the ephemeral, the lock node and the LeaderLatch
    node go; the other client gets the lock and the leadership), and once the link is back
    the client works again under a new session: its CuratorCache rebuilds and keeps
    delivering events, its LeaderLatch takes part again behind the new leader."""
    dep = deployment
    hub = ProxyHub()
    driver = None
    try:
        links, proxied = _client_links(dep, hub)
        cmd = java_command(curator_classes, "expiry", tmp_path, connect=proxied,
                           direct=dep.connect, session=EXPIRY_SESSION_MS,
                           deadline=RECONNECT_DEADLINE)
        driver = JavaDriver(cmd, tmp_path)
        driver.expect("PASS setup")
        driver.expect("READY 1 ")
        t0 = time.monotonic()
        hub.set_state(list(links.values()), "cut")
        driver.send("dropped")
        driver.expect("CHANGED 1")
        print(f"{dep.id}: session LOST and expired {time.monotonic() - t0:.1f} s after the cut")
        hub.heal()
        driver.send("go")
        driver.expect("PASS expiry")
        rc = driver.finish()
        assert rc == 0, f"CuratorSuite exited {rc}\n{driver.diagnostics()}"
    finally:
        if driver is not None:
            driver.close()
        hub.close()
