"""pytest fixtures for Warren's black-box tests.

Servers:
  zookeeper        session-scoped real Apache ZooKeeper 3.8 (the reference)
  warren           session-scoped Warren ($WARREN_BIN, default <repo>/target/release/warren)
  target           the server under test: Warren, or a second independent real ZooKeeper when
                   WARREN_TEST_TARGET=zookeeper (to validate the tests themselves)
  fresh_target     function-scoped server of the target's kind, empty tree
  fresh_zookeeper  function-scoped real ZooKeeper, empty tree

Clients:
  kazoo_client     factory: kazoo_client(server, timeout=10.0, **kw) -> started KazooClient,
                   stopped and closed at teardown
  unique_path      a fresh root path for this test ("/t-<test>-<random>"); prefer it to a
                   fresh server (a server start costs about a second)

When a test fails, the tail of every live server's log is attached to the report.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
import threading
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ensemble import check_system_available, selected_systems  # noqa: E402
from servers import (  # noqa: E402
    ServerStartError,
    WarrenServer,
    ZooKeeperServer,
    four_letter,  # noqa: F401  (re-exported for tests)
    free_port,  # noqa: F401
    make_server,
    target_kind,
)

_LIVE_SERVERS: list = []
# kind -> why it could not start: later fixtures of that kind fail at once instead of
# waiting out the start timeout again for every test
_START_FAILURES: dict[str, str] = {}


def _start(server):
    if server.kind in _START_FAILURES:
        pytest.fail(f"not starting {server.name}: an earlier {server.kind} start failed:\n"
                    f"{_START_FAILURES[server.kind]}", pytrace=False)
    _LIVE_SERVERS.append(server)
    error = None
    try:
        server.start()
    except ServerStartError as e:
        error = str(e)
    if error is not None:
        server.cleanup()
        _LIVE_SERVERS.remove(server)
        _START_FAILURES[server.kind] = error
        pytest.fail(f"could not start {server.name}: {error}", pytrace=False)
    return server


def _finish(server):
    try:
        server.cleanup()
    finally:
        if server in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(server)


def _serving(server):
    """A fixture's body: start the server, hand it out, stop it after."""
    _start(server)
    yield server
    _finish(server)


def pytest_report_header(config):
    kind = target_kind()
    extra = ""
    if kind == "warren":
        extra = f" ({os.environ.get('WARREN_BIN') or 'target/release/warren'})"
    return f"warren black-box tests: target = {kind}{extra}"


# pytest-timeout (signal method) raises once, in the test's main thread. A test that then
# blocks again in its own cleanup (a client library's stop() joining a thread that never
# ends) would hold the suite until the whole-run deadline in ci/test.sh. This watchdog gives
# each test its timeout plus a minute for cleanup; past that it prints every thread's stack
# and interrupts the run (SIGINT: pytest still prints its summary), and exits hard if even
# that does not end it.
WATCHDOG_GRACE = 60.0


def _watchdog_fire(config, nodeid: str, limit: float) -> None:
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:  # pytest holds fd 2 while a test runs: let the dump through
        capman.suspend_global_capture(in_=False)
    sys.__stderr__.write(f"\nwatchdog: {nodeid} still running {limit:.0f} s after it began "
                         f"(its timeout plus {WATCHDOG_GRACE:.0f} s); every thread's stack:\n")
    faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
    sys.__stderr__.flush()
    hard = threading.Timer(30.0, lambda: os._exit(3))
    hard.daemon = True
    hard.start()
    os.kill(os.getpid(), signal.SIGINT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    marker = item.get_closest_marker("timeout")
    limit = None
    if marker is not None and marker.args:
        limit = float(marker.args[0])
    elif marker is not None and "timeout" in marker.kwargs:
        limit = float(marker.kwargs["timeout"])
    else:
        try:
            ini = item.config.getini("timeout")  # registered by pytest-timeout
        except ValueError:
            ini = None
        limit = float(ini) if ini else None
    timer = None
    if limit:
        limit += WATCHDOG_GRACE
        timer = threading.Timer(limit, _watchdog_fire, (item.config, item.nodeid, limit))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@pytest.fixture(params=selected_systems())
def ensemble_system(request):
    """Each system an ensemble test runs on ($WARREN_ENSEMBLE_SYSTEMS, default both), failing
    at once when one cannot run here."""
    why = check_system_available(request.param)
    if why:
        pytest.fail(f"{request.param}: {why}", pytrace=False)
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _LIVE_SERVERS:
        for s in list(_LIVE_SERVERS):
            try:
                report.sections.append((f"log tail of {s.name} {s.host_port}, {s.status()}",
                                        s.log_tail(40)))
            except Exception as e:  # pragma: no cover - diagnostics only
                report.sections.append((f"log tail of {s.name}", f"<unavailable: {e!r}>"))


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory):
    server = ZooKeeperServer(base_dir=tmp_path_factory.mktemp("zookeeper"), name="zookeeper")
    yield from _serving(server)


@pytest.fixture(scope="session")
def warren(tmp_path_factory):
    server = WarrenServer(base_dir=tmp_path_factory.mktemp("warren"), name="warren")
    yield from _serving(server)


@pytest.fixture(scope="session")
def target(request, tmp_path_factory):
    if target_kind() == "warren":
        yield request.getfixturevalue("warren")
        return
    # A second, independent real ZooKeeper: the differential tests then compare two
    # separate servers exactly as they will compare ZooKeeper with Warren.
    server = ZooKeeperServer(base_dir=tmp_path_factory.mktemp("target-zookeeper"),
                             name="target(zookeeper)")
    yield from _serving(server)


@pytest.fixture(scope="module")
def module_zookeeper(tmp_path_factory):
    """A real ZooKeeper of this test module's own. For tests whose results depend on the
    server's whole history, not only on their own paths: a sequential create at "/" is
    numbered by the root's cversion, which every other module's creates move."""
    server = ZooKeeperServer(base_dir=tmp_path_factory.mktemp("module-zookeeper"),
                             name="module-zookeeper")
    yield from _serving(server)


@pytest.fixture(scope="module")
def module_target(tmp_path_factory):
    """The server under test, started for this test module alone (see module_zookeeper)."""
    kind = target_kind()
    server = make_server(kind, base_dir=tmp_path_factory.mktemp(f"module-{kind}"),
                         name=f"module-target({kind})")
    yield from _serving(server)


@pytest.fixture
def fresh_target(tmp_path):
    kind = target_kind()
    server = make_server(kind, base_dir=tmp_path / f"fresh-{kind}", name=f"fresh-target({kind})")
    yield from _serving(server)


@pytest.fixture
def fresh_zookeeper(tmp_path):
    server = ZooKeeperServer(base_dir=tmp_path / "fresh-zookeeper", name="fresh-zookeeper")
    yield from _serving(server)


@pytest.fixture
def kazoo_client():
    from kazoo.client import KazooClient

    clients = []

    def make(server, timeout: float = 10.0, start_timeout: float = 15.0, **kw):
        client = KazooClient(hosts=server.host_port, timeout=timeout, **kw)
        clients.append(client)
        client.start(timeout=start_timeout)
        return client

    yield make
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def unique_path(request):
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:40]
    return f"/t-{name}-{uuid.uuid4().hex[:8]}"


def pytest_collection_modifyitems(config, items):
    # Tests that start their own servers or wait on session timeouts are "slow".
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if {"fresh_target", "fresh_zookeeper"} & names:
            item.add_marker(pytest.mark.slow)
