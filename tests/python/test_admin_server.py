"""AdminServer (ZooKeeper 3.8's HTTP JSON commands): Warren against a live real ZooKeeper 3.8.

Both servers get ``admin.enableServer=true``, ``admin.serverAddress=127.0.0.1`` and a free
``admin.serverPort``; Warren also gets its own ``admin.commands.whitelist=*`` (without it
Warren refuses the commands that show znode paths or session ids: connections, dump,
watches, watches_by_path). Each pair of servers here is private to this module (not the
shared ``zookeeper``/``warren`` fixtures), so the statistics are the workload's alone.

The same workload (``run_workload``: two kazoo sessions a and b, a few znodes, one
ephemeral, data and exists watches, left open) runs on both; then every command ZooKeeper's
``/commands`` lists is fetched from both, the ``*_reset`` commands last. For each command
the two JSON answers are compared after normalisation (``NORMALISE``): values that must
differ (times, session ids, ports, data directory paths, zxids, latencies, counters that
depend on internals, the version string, JVM facts) become typed placeholders, so their key
and JSON type are still compared; everything else must be equal, recursively (same keys,
same nesting, same JSON types -- an int is not a float -- same values). Session ids become
the labels ``session:a`` / ``session:b``. Deliberate differences go in
``EXPECTED_DIFFERENCES`` (command -> [(key, reason)]); those keys are left out on both
sides.

Reference: the live ZooKeeper 3.8 when its AdminServer starts (Debian's zookeeper.jar needs
/usr/share/java/servlet-api.jar added to the class path; Jetty 9.4 and Jackson come through
the jar's manifest). When it cannot start, the committed answers in fixtures/zk38_admin/
(recorded by fixtures/zk38_admin/record.py on the same workload, with context.json saying
what their ports, paths and session ids were) are the reference instead and the test says
so in its output (WARREN_ADMIN_REFERENCE=fixtures forces that).

ZooKeeper 3.8.0's HTTP behaviour (JettyAdminServer.CommandServlet), required of Warren too:
  * GET <commandURL>/<name or alias> -> 200, Content-Type application/json, a JSON object
    with "command" (the primary name) and "error" (null on success) -- also 200 when the
    command fails: ``leader`` on a standalone server answers {"command": "leader", "error":
    "server is not initialized"}.
  * unknown command -> 200 {"command": "<as given>", "error": "Unknown command: <as given>"}
    (names are case sensitive; "/commands/ruok/extra" is the unknown command "ruok/extra").
  * GET <commandURL> or <commandURL>/ -> 200, no Content-Type, one line
    '<a href="<commandURL>/<name>"><name></a>' then '<br/>' per primary name, sorted.
  * parameters are URL query parameters: /commands/set_trace_mask?traceMask=306.
  * anything outside <commandURL> -> 404 (Jetty's text/html page); POST -> 405; TRACE -> 403.
Warren-only: ``/healthz`` (200 while the process serves HTTP) and ``/readyz`` (200 and
{"ready": true, ...} when serving clients, 503 otherwise), and 403 with a JSON body
{"command", "error"} for a command kept out by ``admin.commands.whitelist``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from servers import (
    LOCALHOST,
    ServerStartError,
    WarrenServer,
    ZooKeeperServer,
    free_port,
    stop_clients,
    target_kind,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zk38_admin"
# Debian's zookeeper.jar names the Jetty and Jackson jars in its manifest Class-Path but not
# the servlet API: without it ZooKeeper logs "Unable to load jetty, not starting
# JettyAdminServer" (NoClassDefFoundError: javax/servlet/Servlet) and serves no admin port.
SERVLET_API_JAR = "/usr/share/java/servlet-api.jar"
WORKLOAD_ROOT = "/admin-wl"
# Session timeout of the workload's clients: long, so that no ping (which changes a
# connection's last operation, cxid and packet counts) falls inside the measurement.
CLIENT_TIMEOUT = 30.0
RESET_COMMANDS = ("connection_stat_reset", "observer_connection_stat_reset", "stat_reset")
TRACE_MASK = "306"  # what a fresh ZooKeeper 3.8 reports: set_trace_mask to it changes nothing
# Commands Warren serves only when admin.commands.whitelist names them (or is "*").
SENSITIVE_COMMANDS = ("connections", "dump", "watches", "watches_by_path")
# alias -> primary name (ZooKeeper 3.8.0 Commands.java); the answer's "command" is the primary.
ALIASES = {
    "mntr": "monitor", "srvr": "server_stats", "stat": "stats", "conf": "configuration",
    "config": "configuration", "cons": "connections", "crst": "connection_stat_reset",
    "env": "environment", "envi": "environment", "gtmk": "get_trace_mask",
    "icfg": "initial_configuration", "isro": "is_read_only", "lsnp": "last_snapshot",
    "lead": "leader", "orst": "observer_connection_stat_reset", "obsr": "observers",
    "srst": "stat_reset", "sysp": "system_properties", "wchs": "watch_summary",
    "wchc": "watches", "wchp": "watches_by_path",
}


# ---------------------------------------------------------------------------------------
# Deliberate differences: command -> [(top-level key or "*", reason)]. The key is left out
# of the comparison on both sides ("*": every key but "command" and "error").
# ---------------------------------------------------------------------------------------
EXPECTED_DIFFERENCES: dict[str, list[tuple[str, str]]] = {
    "get_trace_mask": [
        ("tracemask", "Warren has no ZooTrace trace logging (WARREN_LOG chooses what is logged), "
                      "so its mask is 0, not ZooKeeper's default 306"),
    ],
    "set_trace_mask": [
        ("tracemask", "Warren has no trace logging to mask: a valid traceMask is answered with "
                      "an error naming WARREN_LOG instead of pretending to change a mask "
                      "(ZooKeeper's argument errors are kept)"),
        ("error", "see tracemask"),
    ],
    "system_properties": [
        ("*", "ZooKeeper lists the JVM's system properties (java.*, sun.*, jdk.*, user.*, "
              "zookeeper.* set with -D); Warren is no JVM and lists its own process facts"),
    ],
}


# ---------------------------------------------------------------------------------------
# HTTP and server helpers (also used by fixtures/zk38_admin/record.py)
# ---------------------------------------------------------------------------------------
def http_get(url: str, timeout: float = 5.0, method: str = "GET") -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request; HTTP error statuses are returned, not raised."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers.items()), e.read()


def command_names_from_listing(html: str, base: str = "/commands") -> list[str]:
    """Command names from the body of GET <commandURL> (one <a href> per command)."""
    return re.findall(r'<a href="' + re.escape(base) + r'/([^"/]+)">\1</a>', html)


class _AdminMixin:
    admin_port: int
    command_url = "/commands"

    def admin_url(self, path: str) -> str:
        return f"http://{LOCALHOST}:{self.admin_port}{path}"

    def wait_admin(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / 0.1) + 5):
            try:
                status, _, _ = http_get(self.admin_url(f"{self.command_url}/ruok"), timeout=2.0)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise ServerStartError(f"{self.name}: admin port {self.admin_port} did not answer "
                               f"{self.command_url}/ruok within {timeout}s (last: {last})\n"
                               f"{self.log_tail(40)}")


def admin_cfg(admin_port: int) -> dict[str, str]:
    return {"admin.enableServer": "true", "admin.serverAddress": LOCALHOST,
            "admin.serverPort": str(admin_port)}


class ZooKeeperAdminServer(_AdminMixin, ZooKeeperServer):
    """Real ZooKeeper 3.8 with its Jetty AdminServer on a free port of 127.0.0.1."""

    def __init__(self, *args, admin_port: int | None = None, extra_cfg=None, **kw):
        self.admin_port = admin_port or free_port()
        cfg = admin_cfg(self.admin_port)
        cfg.update(extra_cfg or {})
        self.command_url = cfg.get("admin.commandURL", "/commands")
        super().__init__(*args, extra_cfg=cfg, **kw)

    def command(self) -> list[str]:
        cmd = super().command()
        i = cmd.index("-cp") + 1
        cmd[i] = f"{cmd[i]}:{SERVLET_API_JAR}"
        return cmd


class WarrenAdminServer(_AdminMixin, WarrenServer):
    def __init__(self, *args, admin_port: int | None = None, whitelist: str | None = "*",
                 extra_cfg=None, **kw):
        self.admin_port = admin_port or free_port()
        cfg = admin_cfg(self.admin_port)
        if whitelist is not None:
            cfg["admin.commands.whitelist"] = whitelist
        cfg.update(extra_cfg or {})
        self.command_url = cfg.get("admin.commandURL", "/commands")
        super().__init__(*args, extra_cfg=cfg, **kw)


def run_workload(a, b) -> None:
    """The same small workload on both servers: two kazoo sessions ``a`` and ``b`` (left
    open). Persistent znodes, one ephemeral (a's), a setData, a child watch and a data
    watch from a, an exists watch on a missing node and a data watch from b, then a sync.
    (ZooKeeper 3.8's watches/watches_by_path/watch_summary report data and exists watches,
    not child watches.)"""
    r = WORKLOAD_ROOT
    a.create(r, b"root")
    a.create(f"{r}/a", b"alpha")
    a.create(f"{r}/b", b"beta")
    a.create(f"{r}/c/d", b"delta", makepath=True)
    a.create(f"{r}/eph", b"e", ephemeral=True)
    a.set(f"{r}/c", b"gamma")
    a.get_children(r, watch=lambda ev: None)
    a.get(f"{r}/a", watch=lambda ev: None)
    b.exists(f"{r}/missing", watch=lambda ev: None)
    b.get(f"{r}/b", watch=lambda ev: None)
    b.sync(r)


def server_context(server, a, b) -> dict:
    """What values in the answers refer to, for normalisation."""
    return {
        "client_port": server.port,
        "admin_port": server.admin_port,
        "data_dir": str(server.data_dir),
        "cfg_text": server.cfg_path.read_text(),
        "sessions": {str(a.client_id[0]): "a", str(b.client_id[0]): "b"},
    }


def _start_clients(server, n=2):
    from kazoo.client import KazooClient

    clients = []
    for _ in range(n):
        c = KazooClient(hosts=server.host_port, timeout=CLIENT_TIMEOUT)
        clients.append(c)
        c.start(timeout=15)
    return clients


def fixture_command_names() -> list[str]:
    return command_names_from_listing((FIXTURES / "commands.html").read_text())


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------
class Typed:
    """A value that may differ: only its JSON type is compared."""

    def __init__(self, value, what: str = ""):
        self.type = json_type(value)
        self.what = what

    def __eq__(self, other):
        return isinstance(other, Typed) and other.type == self.type

    def __repr__(self):
        return f"<{self.what + ' ' if self.what else ''}{self.type}>"


def json_type(v) -> str:
    if isinstance(v, Typed):
        return v.type
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def typed(what=""):
    return lambda v, ctx: Typed(v, what)


def session_label(v, ctx):
    return f"session:{ctx['sessions'].get(str(v), '?')}"


def under_data_dir(v, ctx):
    if isinstance(v, str) and v.startswith(ctx["data_dir"]):
        return "<dataDir>/..."
    return v


def equals_ctx(key, what):
    return lambda v, ctx: f"<{what}>" if v == ctx[key] else v


def socket_address(v, ctx):
    if isinstance(v, str) and re.fullmatch(r"127\.0\.0\.1:\d+", v):
        return "127.0.0.1:<port>"
    return v


def zxid_hex(v, ctx):
    if isinstance(v, str) and re.fullmatch(r"[0-9a-f]+", v):
        return "<hex zxid>"
    return v


def epoch_seconds(v, ctx):
    # Any time since 2001 up to a day ahead: the snapshot a server reports can be old (a data
    # directory copied with its files' times kept reports when the copy's original was made;
    # a window of a day around now made this fail a day after the fixtures were recorded).
    if isinstance(v, int) and (v == -1 or 1_000_000_000 <= v <= time.time() + 86400):
        return "<epoch seconds or -1>"
    return v


def cfg_text(v, ctx):
    return "<this server's zoo.cfg>" if v == ctx["cfg_text"] else v


def sorted_list(v, ctx):
    return sorted(v, key=repr) if isinstance(v, list) else v


def _connection_entry(full: bool):
    rules = {
        "remote_socket_address": socket_address,
        "interest_ops": typed("NIO interest set"),
        "packets_received": typed(), "packets_sent": typed(),
    }
    if full:
        rules.update({
            "session_id": session_label, "established": typed("ms"),
            "last_zxid": typed("zxid"), "last_response_time": typed("ms"),
            "last_latency": typed(), "min_latency": typed(), "avg_latency": typed(),
            "max_latency": typed(),
        })
    return rules


def connection_list(full: bool):
    rules = _connection_entry(full)

    def norm(v, ctx):
        if not isinstance(v, list):
            return v
        out = [apply_rules(e, rules, ctx) if isinstance(e, dict) else e for e in v]
        return sorted(out, key=repr)
    return norm


def session_map(value_rule):
    """{session id: x} -> {session label: value_rule(x)}."""
    def norm(v, ctx):
        if not isinstance(v, dict):
            return v
        return {session_label(k, ctx): value_rule(x, ctx) for k, x in v.items()}
    return norm


def expiry_map(v, ctx):
    """dump's {expiry time: [session ids]}: buckets depend on timing; keep the sessions."""
    if not isinstance(v, dict) or not all(re.fullmatch(r"\d+", k) for k in v):
        return v
    labels = sorted(session_label(s, ctx) for ids in v.values() for s in ids)
    return {"<expiry time>": labels}


def path_map(v, ctx):
    """watches_by_path's {path: [session ids]}."""
    if not isinstance(v, dict):
        return v
    return {k: sorted(session_label(s, ctx) for s in ids) for k, ids in v.items()}


def apply_rules(doc: dict, rules: dict, ctx) -> dict:
    out = dict(doc)
    for key, rule in rules.items():
        if key == "*":
            continue
        if key in out:
            out[key] = rule(out[key], ctx)
    if "*" in rules:
        for key in out:
            if key not in rules and key not in ("command", "error"):
                out[key] = rules["*"](out[key], ctx)
    return out


SERVER_STATS = {
    "packets_sent": typed(), "packets_received": typed(),
    "fsync_threshold_exceed_count": typed(),
    "client_response_stats": lambda v, ctx: apply_rules(v, {"*": typed("bytes")}, ctx)
    if isinstance(v, dict) else v,
    "data_dir_size": typed("bytes"), "log_dir_size": typed("bytes"),
    "last_processed_zxid": typed("zxid"), "avg_latency": typed("ms"),
    "max_latency": typed("ms"), "min_latency": typed("ms"), "uptime": typed("ms"),
}


def server_stats_rules(with_connections: bool):
    rules = {
        "version": typed("version"),
        "server_stats": lambda v, ctx: apply_rules(v, SERVER_STATS, ctx)
        if isinstance(v, dict) else v,
        "client_response": lambda v, ctx: apply_rules(v, {"*": typed("bytes")}, ctx)
        if isinstance(v, dict) else v,
    }
    if with_connections:
        rules["connections"] = connection_list(full=False)
        rules["secure_connections"] = connection_list(full=False)
    return rules


# monitor: values that mean the same on both servers after the same workload; every other
# value (latencies, byte counts, internal pipeline counters and summaries) is typed only.
MONITOR_EQUAL = {
    "server_state", "znode_count", "ephemerals_count", "watch_count", "num_alive_connections",
    "outstanding_requests", "global_sessions", "local_sessions", "approximate_data_size",
    "auth_failed_count",
}


def monitor_rules():
    rules = {"version": typed("version"), "*": typed()}
    for k in MONITOR_EQUAL:
        rules[k] = lambda v, ctx: v
    return rules


NORMALISE: dict[str, dict] = {
    "configuration": {
        "client_port": equals_ctx("client_port", "this server's client port"),
        "data_dir": under_data_dir, "data_log_dir": under_data_dir,
    },
    "connections": {"connections": connection_list(full=True),
                    "secure_connections": connection_list(full=True)},
    "dirs": {"datadir_size": typed("bytes"), "logdir_size": typed("bytes")},
    "dump": {"expiry_time_to_session_ids": expiry_map,
             "session_id_to_ephemeral_paths": session_map(sorted_list)},
    "environment": {"*": typed()},
    # ZooKeeper's digest log is empty after a small workload; entries are {zxid, digest}.
    "hash": {"digests": typed("digest log")},
    "initial_configuration": {"initial_configuration": cfg_text},
    "last_snapshot": {"zxid": zxid_hex, "timestamp": epoch_seconds},
    "monitor": monitor_rules(),
    "server_stats": server_stats_rules(with_connections=False),
    "stats": server_stats_rules(with_connections=True),
    "watches": {"session_id_to_watched_paths": session_map(sorted_list)},
    "watches_by_path": {"path_to_session_ids": path_map},
}


# monitor: ZooKeeper-internal keys Warren does not give (the file says why), and Warren's own.
MONITOR_ZOOKEEPER_INTERNAL = {
    ln.strip() for ln in (FIXTURES / "monitor_zookeeper_internal.txt").read_text().splitlines()
    if ln.strip() and not ln.startswith("#")}


def normalise(command: str, doc, ctx):
    if not isinstance(doc, dict):
        return doc
    doc = copy.deepcopy(doc)
    if command == "monitor":
        doc = {k: v for k, v in doc.items()
               if k not in MONITOR_ZOOKEEPER_INTERNAL and not k.startswith("warren_")}
    for key, _reason in EXPECTED_DIFFERENCES.get(command, []):
        if key == "*":
            doc = {k: v for k, v in doc.items() if k in ("command", "error")}
        else:
            doc.pop(key, None)
    return apply_rules(doc, NORMALISE.get(command, {}), ctx)


def diff(ref, got, path="") -> list[str]:
    """Differences between two normalised JSON values, as readable lines."""
    here = path or "<top>"
    if json_type(ref) != json_type(got):
        return [f"{here}: type {json_type(got)} ({got!r:.80}), ZooKeeper has "
                f"{json_type(ref)} ({ref!r:.80})"]
    if isinstance(ref, dict):
        out = []
        for k in sorted(set(ref) - set(got)):
            out.append(f"{path}{k}: missing (ZooKeeper: {ref[k]!r:.80})")
        for k in sorted(set(got) - set(ref)):
            out.append(f"{path}{k}: extra key (value {got[k]!r:.80})")
        for k in sorted(set(ref) & set(got)):
            out.extend(diff(ref[k], got[k], f"{path}{k}."))
        return out
    if isinstance(ref, list):
        if len(ref) != len(got):
            return [f"{here}: {len(got)} elements, ZooKeeper has {len(ref)}: "
                    f"{got!r:.200} vs {ref!r:.200}"]
        out = []
        for i, (r, g) in enumerate(zip(ref, got)):
            out.extend(diff(r, g, f"{path}[{i}]."))
        return out
    if ref != got:
        return [f"{here}: {got!r:.120}, ZooKeeper has {ref!r:.120}"]
    return []


# ---------------------------------------------------------------------------------------
# Fixtures: one server of each kind, the workload, every command's answer
# ---------------------------------------------------------------------------------------
@dataclass
class Side:
    name: str
    live: bool
    ctx: dict
    answers: dict = field(default_factory=dict)  # command -> (status, content type, body)
    server: object = None
    why_not_live: str = ""

    def json(self, command):
        status, ctype, body = self.answers[command]
        return json.loads(body)


def _collect(server, names) -> dict:
    answers = {}
    ordered = [n for n in names if n not in RESET_COMMANDS] + \
              [n for n in names if n in RESET_COMMANDS]
    for name in ordered:
        path = f"{server.command_url}/{name}"
        if name == "set_trace_mask":
            path += f"?traceMask={TRACE_MASK}"
        status, headers, body = http_get(server.admin_url(path))
        answers[name] = (status, headers.get("Content-Type"), body)
    return answers


def _from_fixtures(why: str) -> Side:
    http = json.loads((FIXTURES / "http.json").read_text())
    side = Side("ZooKeeper 3.8 (recorded fixtures)", live=False,
                ctx=json.loads((FIXTURES / "context.json").read_text()), why_not_live=why)
    for name in fixture_command_names():
        path = f"/commands/{name}" + (f"?traceMask={TRACE_MASK}" if name == "set_trace_mask"
                                      else "")
        meta = http.get(path, {"status": 200, "content_type": "application/json"})
        side.answers[name] = (meta["status"], meta["content_type"],
                              (FIXTURES / f"{name}.json").read_bytes())
    return side


@pytest.fixture(scope="module")
def zk_admin(tmp_path_factory):
    """A live ZooKeeper 3.8 with its AdminServer and two clients, or None (with the reason
    of the failure) when it cannot serve its AdminServer here (or when
    WARREN_ADMIN_REFERENCE=fixtures asks for the recorded answers)."""
    if os.environ.get("WARREN_ADMIN_REFERENCE", "").strip().lower() == "fixtures":
        yield None, "WARREN_ADMIN_REFERENCE=fixtures"
        return
    server = ZooKeeperAdminServer(base_dir=tmp_path_factory.mktemp("zk-admin"),
                                  name="zookeeper-admin")
    clients = []
    try:
        server.start()
        server.wait_admin()
        clients = _start_clients(server)
    except Exception as e:  # noqa: BLE001 - reported by the tests that need it
        stop_clients(clients)
        server.cleanup()
        yield None, f"{type(e).__name__}: {e}"
        return
    try:
        yield (server, clients), ""
    finally:
        stop_clients(clients)
        server.cleanup()


@pytest.fixture(scope="module")
def reference(zk_admin) -> Side:
    live, why = zk_admin
    if live is None:
        print(f"\nZooKeeper's AdminServer did not start ({why.splitlines()[0]}); "
              f"comparing with the recorded answers in {FIXTURES}")
        return _from_fixtures(why)
    server, (a, b) = live
    run_workload(a, b)
    side = Side("ZooKeeper 3.8 (live)", live=True, ctx=server_context(server, a, b),
                server=server)
    status, _, body = http_get(server.admin_url("/commands"))
    assert status == 200
    side.answers = _collect(server, command_names_from_listing(body.decode()))
    return side


@pytest.fixture(scope="module")
def warren_admin(tmp_path_factory, reference):
    """The server under test (Warren; a second real ZooKeeper when
    WARREN_TEST_TARGET=zookeeper, to validate the comparison itself) after the workload."""
    if target_kind() == "zookeeper":
        server = ZooKeeperAdminServer(base_dir=tmp_path_factory.mktemp("target-zk-admin"),
                                      name="target(zookeeper)-admin")
    else:
        server = WarrenAdminServer(base_dir=tmp_path_factory.mktemp("warren-admin"),
                                   name="warren-admin")
    clients = []
    try:
        try:
            server.start()
            server.wait_admin()
        except ServerStartError as e:
            pytest.fail(f"could not start {server.name} with its AdminServer: {e}",
                        pytrace=False)
        clients = _start_clients(server)
        a, b = clients
        run_workload(a, b)
        side = Side(server.name, live=True, ctx=server_context(server, a, b), server=server)
        side.answers = _collect(server, list(reference.answers))
        yield side
    finally:
        stop_clients(clients)
        server.cleanup()


# ---------------------------------------------------------------------------------------
# ZooKeeper side: the reference itself (runs without Warren)
# ---------------------------------------------------------------------------------------
def test_zookeeper_admin_server_runs_live(zk_admin):
    live, why = zk_admin
    if why == "WARREN_ADMIN_REFERENCE=fixtures":
        pytest.skip(why)
    assert live is not None, f"ZooKeeper 3.8's AdminServer did not start: {why}"


def test_zookeeper_commands_match_recorded_fixtures(reference):
    """The live answers have the recorded fixtures' shape (so the fixtures are current)."""
    if not reference.live:
        pytest.skip(f"no live ZooKeeper AdminServer: {reference.why_not_live}")
    ctx = json.loads((FIXTURES / "context.json").read_text())
    assert sorted(reference.answers) == sorted(fixture_command_names()) == COMMANDS
    problems = []
    for name in reference.answers:
        recorded = normalise(name, json.loads((FIXTURES / f"{name}.json").read_bytes()), ctx)
        live = normalise(name, reference.json(name), reference.ctx)
        problems += [f"{name}: {d}" for d in diff(recorded, live)]
    assert not problems, "re-record with fixtures/zk38_admin/record.py:\n" + "\n".join(problems)


def test_zookeeper_http_behaviour(zk_admin, reference):
    live, why = zk_admin
    if live is None:
        pytest.skip(f"no live ZooKeeper AdminServer: {why}")
    server, _ = live
    _check_common_http_behaviour(server)
    status, headers, _ = http_get(server.admin_url("/commands"))
    assert status == 200 and "Content-Type" not in headers


# ---------------------------------------------------------------------------------------
# Warren against ZooKeeper
# ---------------------------------------------------------------------------------------
# What ZooKeeper 3.8.0's /commands lists (primary names; see fixtures/zk38_admin/commands.html).
COMMANDS = [
    "configuration", "connection_stat_reset", "connections", "dirs", "dump", "environment",
    "get_trace_mask", "hash", "initial_configuration", "is_read_only", "last_snapshot",
    "leader", "monitor", "observer_connection_stat_reset", "observers", "ruok",
    "server_stats", "set_trace_mask", "stat_reset", "stats", "system_properties",
    "voting_view", "watch_summary", "watches", "watches_by_path", "zabstate",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_matches_zookeeper(command, reference, warren_admin):
    if command not in reference.answers:
        pytest.skip(f"ZooKeeper does not list {command}")
    status, ctype, body = warren_admin.answers[command]
    rstatus, rctype, _ = reference.answers[command]
    assert status == rstatus, (command, status, body[:300])
    assert (ctype or "").split(";")[0].strip() == rctype, (command, ctype)
    try:
        got = json.loads(body)
    except ValueError:
        pytest.fail(f"{command}: Warren's answer is not JSON: {body[:300]!r}")
    ref = normalise(command, reference.json(command), reference.ctx)
    got = normalise(command, got, warren_admin.ctx)
    problems = diff(ref, got)
    assert not problems, (f"{command}: Warren differs from {reference.name}:\n  "
                          + "\n  ".join(problems))


def test_command_listing_matches_zookeeper(reference, warren_admin):
    server = warren_admin.server
    for path in ("/commands", "/commands/"):
        status, headers, body = http_get(server.admin_url(path))
        assert status == 200, path
        names = command_names_from_listing(body.decode())
        assert names == sorted(names), "ZooKeeper lists the names sorted"
        # ZooKeeper 3.8's commands, plus 3.9's snapshot and restore (Warren's online backup).
        want = set(reference.answers) | {"snapshot", "restore"}
        assert set(names) == want, (
            f"missing {sorted(want - set(names))}, extra {sorted(set(names) - want)}")
        lines = [ln for ln in body.decode().splitlines() if ln.strip()]
        assert lines[1::2] == ["<br/>"] * len(names), "one <a href> line then <br/> per command"


def _check_common_http_behaviour(server):
    """What both ZooKeeper and Warren must do (ZooKeeper's behaviour, seen live)."""
    url = server.admin_url
    # liveness, the ZooKeeper way
    status, headers, body = http_get(url("/commands/ruok"))
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert json.loads(body) == {"command": "ruok", "error": None}
    # unknown commands: 200 with the error in the body; names are case sensitive
    for name in ("no_such_command", "RUOK", "ruok/extra"):
        status, headers, body = http_get(url(f"/commands/{name}"))
        assert status == 200, name
        assert headers["Content-Type"].split(";")[0] == "application/json"
        assert json.loads(body) == {"command": name, "error": f"Unknown command: {name}"}
    # parameters are query parameters; unknown ones are ignored
    assert json.loads(http_get(url("/commands/ruok?x=1"))[2]) == {"command": "ruok",
                                                                  "error": None}
    for query, error in (
            ("", "setTraceMask requires long traceMask argument"),
            ("?traceMask=abc", "setTraceMask requires long traceMask argument, got abc")):
        status, _, body = http_get(url(f"/commands/set_trace_mask{query}"))
        assert status == 200
        assert json.loads(body) == {"command": "set_trace_mask", "error": error}
    status, _, body = http_get(url(f"/commands/stmk?traceMask={TRACE_MASK}"))
    if isinstance(server, WarrenAdminServer):
        # Deliberate difference (EXPECTED_DIFFERENCES): no trace logging to mask.
        assert status == 200
        answer = json.loads(body)
        assert answer["command"] == "set_trace_mask" and "WARREN_LOG" in answer["error"]
    else:
        assert json.loads(body) == {"command": "set_trace_mask", "error": None,
                                    "tracemask": int(TRACE_MASK)}
    # a failing command still answers 200
    status, _, body = http_get(url("/commands/leader"))
    assert status == 200
    assert json.loads(body) == {"command": "leader", "error": "server is not initialized"}
    # outside the command URL, and other methods
    assert http_get(url("/no_such_context"))[0] == 404
    assert http_get(url("/"))[0] == 404
    assert http_get(url("/commands/ruok"), method="POST")[0] == 405
    # aliases answer under the primary name
    for alias, primary in ALIASES.items():
        status, _, body = http_get(url(f"/commands/{alias}"))
        assert status == 200, alias
        assert json.loads(body)["command"] == primary, alias


def test_http_behaviour_matches_zookeeper(warren_admin):
    _check_common_http_behaviour(warren_admin.server)


# ---------------------------------------------------------------------------------------
# Warren only: whitelist, probes, admin.commandURL, admin.enableServer
# ---------------------------------------------------------------------------------------
warren_only = pytest.mark.skipif(target_kind() != "warren",
                                 reason="Warren's own settings and URLs")


@pytest.fixture(scope="module")
def warren_no_whitelist(tmp_path_factory):
    server = WarrenAdminServer(base_dir=tmp_path_factory.mktemp("warren-admin-nowl"),
                               whitelist=None, name="warren-admin-no-whitelist")
    try:
        try:
            server.start()
            server.wait_admin()
        except ServerStartError as e:
            pytest.fail(f"could not start Warren with its AdminServer: {e}", pytrace=False)
        yield server
    finally:
        server.cleanup()


@warren_only
@pytest.mark.parametrize("command", SENSITIVE_COMMANDS)
def test_warren_refuses_sensitive_command_unless_whitelisted(command, warren_no_whitelist):
    for name in (command, *[a for a, p in ALIASES.items() if p == command]):
        status, headers, body = http_get(warren_no_whitelist.admin_url(f"/commands/{name}"))
        assert status == 403, (name, status, body[:300])
        assert headers["Content-Type"].split(";")[0] == "application/json"
        doc = json.loads(body)
        assert isinstance(doc.get("error"), str) and doc["error"], doc
        assert doc.get("command") == command, doc


@warren_only
def test_warren_serves_other_commands_without_whitelist(warren_no_whitelist):
    for name in ("ruok", "monitor", "server_stats", "watch_summary", "configuration"):
        status, _, body = http_get(warren_no_whitelist.admin_url(f"/commands/{name}"))
        assert status == 200, (name, body[:300])
        assert json.loads(body)["error"] is None, name


@warren_only
def test_warren_whitelist_names_commands(tmp_path):
    server = WarrenAdminServer(base_dir=tmp_path / "w", whitelist="dump, wchs",
                               name="warren-admin-dump-only")
    try:
        server.start()
        server.wait_admin()
        assert http_get(server.admin_url("/commands/dump"))[0] == 200
        for name in ("connections", "watches", "watches_by_path"):
            assert http_get(server.admin_url(f"/commands/{name}"))[0] == 403, name
    finally:
        server.cleanup()


@warren_only
def test_warren_healthz_and_readyz(warren_admin):
    server = warren_admin.server
    status, _, _ = http_get(server.admin_url("/healthz"))
    assert status == 200
    status, headers, body = http_get(server.admin_url("/readyz"))
    assert status == 200, body[:300]
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert json.loads(body).get("ready") is True


@warren_only
def test_warren_readyz_503_without_quorum(tmp_path):
    """A member of a 3-server ensemble started alone serves HTTP (healthz 200) but no
    clients: readyz 503 (and, like ZooKeeper, ruok still answers)."""
    quorum = [free_port() for _ in range(6)]
    cfg = {"initLimit": "5", "syncLimit": "2"}
    for sid in (1, 2, 3):
        cfg[f"server.{sid}"] = f"{LOCALHOST}:{quorum[2 * sid - 2]}:{quorum[2 * sid - 1]}"
    server = WarrenAdminServer(base_dir=tmp_path / "lonely", extra_cfg=cfg,
                               name="warren-admin-lonely")
    (server.data_dir / "myid").write_text("1\n")
    try:
        server._spawn()  # not start(): that waits for srvr to report a serving server
        server.wait_admin()
        assert http_get(server.admin_url("/healthz"))[0] == 200
        status, _, body = http_get(server.admin_url("/readyz"))
        assert status == 503, body[:300]
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            assert doc.get("ready") is False, doc
    finally:
        server.cleanup()


def test_command_url_setting(tmp_path, zk_admin):
    """admin.commandURL moves the commands (and the links in the listing); both servers."""
    servers = []
    if target_kind() == "warren":
        servers.append(WarrenAdminServer(base_dir=tmp_path / "w",
                                         extra_cfg={"admin.commandURL": "/cmds"},
                                         name="warren-admin-cmds"))
    if zk_admin[0] is not None and shutil.which("java"):
        servers.append(ZooKeeperAdminServer(base_dir=tmp_path / "z",
                                            extra_cfg={"admin.commandURL": "/cmds"},
                                            name="zookeeper-admin-cmds"))
    try:
        for server in reversed(servers):  # ZooKeeper first: it validates the expectation
            server.start()
            server.wait_admin()
            status, _, body = http_get(server.admin_url("/cmds/ruok"))
            assert (status, json.loads(body)) == (200, {"command": "ruok", "error": None})
            status, _, body = http_get(server.admin_url("/cmds"))
            assert status == 200 and "ruok" in command_names_from_listing(body.decode(), "/cmds")
            assert http_get(server.admin_url("/commands/ruok"))[0] == 404, server.name
    finally:
        for server in servers:
            server.cleanup()


@warren_only
def test_admin_server_disabled(tmp_path):
    port = free_port()
    server = WarrenServer(base_dir=tmp_path / "w", name="warren-no-admin",
                          extra_cfg={"admin.serverPort": str(port),
                                     "admin.serverAddress": LOCALHOST})
    try:
        server.start()  # admin.enableServer=false comes from servers.py's zoo.cfg
        with pytest.raises(OSError):
            http_get(f"http://{LOCALHOST}:{port}/commands/ruok", timeout=2.0)
    finally:
        server.cleanup()


def test_monitor_internal_list_stays_true(warren_admin):
    """A key on the ZooKeeper-internal list that Warren starts giving must leave the list
    (and then be compared with ZooKeeper like every other key)."""
    status, _, body = warren_admin.answers["monitor"]
    assert status == 200
    given = set(json.loads(body))
    assert not (given & MONITOR_ZOOKEEPER_INTERNAL), sorted(given & MONITOR_ZOOKEEPER_INTERNAL)
    assert any(k.startswith("warren_") for k in given)
