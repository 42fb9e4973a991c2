"""`warren cli`, the operator shell (docs/cli.md), black-box against a running server.

* one-shot mode and every documented exit status;
* a pseudo-terminal session (pexpect): prompt, tab completion of a command and of a
  path, history kept across runs;
* the zkCli tutorial session through `warren cli` and through the real Java zkCli
  against the same Warren server: normalised transcripts must be equal except for
  EXPECTED_DIFFERENCES;
* `lock` (three processes, one SIGKILLed while holding it), `elect` (leader killed,
  another takes over), `health` against a 3-server Warren ensemble.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time

import pexpect
import pytest

from servers import free_port, warren_bin
from test_zkcli import MARK, Normaliser, is_noise, zkcli_command

SHORT_SESSION_MS = 4000  # the servers' minimum with tickTime=2000


def cli(*args):
    return [str(warren_bin()), "cli", *args]


def run_cli(server, *args, timeout=30, **kw):
    return subprocess.run(cli("-server", server.host_port, *args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------------------------------
# one-shot mode and exit statuses (documented in docs/cli.md)
# ---------------------------------------------------------------------------------------
EXIT = {"ok": 0, "other": 1, "NoNode": 2, "NodeExists": 3, "BadVersion": 4, "NotEmpty": 5,
        "NoAuth": 6, "ConnectionLoss": 7, "SessionExpired": 8}


def test_one_shot_and_exit_statuses(warren, unique_path):
    p = unique_path

    def check(args, status, stdout=None, stderr=None):
        r = run_cli(warren, *args)
        assert r.returncode == EXIT[status], (args, r)
        if stdout is not None:
            assert r.stdout == stdout, (args, r)
        if stderr is not None:
            assert r.stderr == stderr, (args, r)
        return r

    check(["create", p, "hello"], "ok", "", f"Created {p}\n")
    check(["get", p], "ok", "hello\n", "")
    check(["create", p, "again"], "NodeExists", "", f"Node already exists: {p}\n")
    check(["get", f"{p}/nope"], "NoNode", "", f"Node does not exist: {p}/nope\n")
    check(["set", "-v", "7", p, "x"], "BadVersion", "", f"version No is not valid : {p}\n")
    check(["create", f"{p}/kid"], "ok")
    check(["delete", p], "NotEmpty", "", f"Node not empty: {p}\n")
    check(["create", f"{p}/ro", "r", "world:anyone:r"], "ok")
    check(["set", f"{p}/ro", "w"], "NoAuth", "", f"Insufficient permission : {p}/ro\n")
    check(["get"], "other", "", "get [-s] [-w] path\n")
    r = check(["frobnicate"], "other")
    assert r.stderr.endswith("Command not found: Command not found frobnicate\n")
    check(["ls", "nope"], "other", "", "Path must start with / character\n")
    # --json on reads
    r = check(["ls", "-s", "--json", p], "ok")
    v = json.loads(r.stdout)
    assert v["children"] == ["kid", "ro"] and v["stat"]["numChildren"] == 2, v
    v = json.loads(check(["get", "--json", p], "ok").stdout)
    assert v == {"path": p, "data": "hello"}
    v = json.loads(check(["getAllChildrenNumber", "--json", p], "ok").stdout)
    assert v["count"] == 2
    # nothing listens on a fresh port: unable to connect
    r = subprocess.run(cli("-server", f"127.0.0.1:{free_port()}", "-timeout", "3000", "ls", "/"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == EXIT["ConnectionLoss"], r
    assert r.stderr.startswith("Unable to connect to"), r
    check(["deleteall", p], "ok", "", "")
    check(["stat", p], "NoNode")


def test_session_expired_status(warren, unique_path):
    """A `watch` whose process is frozen past its session timeout finds the session
    expired when it runs again: exit status 8."""
    run_cli(warren, "create", unique_path, "x", timeout=30).check_returncode()
    proc = subprocess.Popen(cli("-server", warren.host_port, "-timeout", str(SHORT_SESSION_MS),
                                "watch", unique_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "data = x\n"
        proc.send_signal(signal.SIGSTOP)
        time.sleep(SHORT_SESSION_MS / 1000 * 2)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == EXIT["SessionExpired"], (out, err)
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------
# a terminal session
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def terminal_shell(host, env):
    """`warren cli` on a pseudo-terminal, at its first prompt; quits on leaving."""
    child = pexpect.spawn(str(warren_bin()), ["cli", "-server", host], env=env,
                          encoding="utf-8", timeout=15, dimensions=(40, 200))
    try:
        child.expect_exact(f"[zk: {host}(CONNECTED) 0] ")
        yield child
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_terminal_prompt_completion_history(warren, unique_path, tmp_path):
    hist = tmp_path / "history"
    env = dict(os.environ, WARREN_CLI_HISTORY=str(hist), TERM="xterm")
    host = warren.host_port
    run_cli(warren, "create", unique_path, "").check_returncode()
    run_cli(warren, "create", f"{unique_path}/alpha-node", "").check_returncode()

    with terminal_shell(host, env) as child:
        # a command name: "getAl" is unique
        child.send("getAl\t")
        child.expect_exact("getAllChildrenNumber ")
        child.sendline(unique_path)
        child.expect_exact("1\r\n")
        child.expect_exact(f"[zk: {host}(CONNECTED) 1] ")
        # a path: the server lists the parent's children
        child.send(f"ls {unique_path}/al\t")
        child.expect_exact(f"{unique_path}/alpha-node")
        child.sendline("")
        child.expect_exact("[]")
        child.expect_exact(f"[zk: {host}(CONNECTED) 2] ")
    lines = hist.read_text().splitlines()
    assert f"ls {unique_path}/alpha-node" in lines, lines

    # a second run: the history is there (up arrow twice: "quit", then the ls line)
    with terminal_shell(host, env) as child:
        child.send("\x1b[A")
        child.expect_exact("quit")
        child.send("\x1b[A")
        child.expect_exact(f"ls {unique_path}/alpha-node")
        child.send("\r")
        child.expect_exact("[]")


# ---------------------------------------------------------------------------------------
# the zkCli tutorial, through both shells, against the same Warren server
# ---------------------------------------------------------------------------------------
def tutorial(root):
    return [
        "ls /zookeeper", f"create {root} my_data", f"ls {root}", f"get {root}",
        f"set {root} junk", f"get -s {root}", f"stat {root}",
        f"create -s {root}/seq a", f"create -e {root}/eph b", f"ls -s {root}",
        f"getAcl {root}", f"getAcl -s {root}", f"getEphemerals {root}",
        f"getAllChildrenNumber {root}", f"ls -R {root}",
        f"create {root}/nodata", f"get {root}/nodata",
        f"delete -v 5 {root}/eph", f"delete {root}", f"set -s -v 1 {root} v2",
        f"sync {root}", "whoami", "addauth digest alice:secret", "whoami",
        f"setAcl -s {root} world:anyone:cdrwa", f"create {root}", "ls", "get -s",
        "printwatches", "printwatches off", "printwatches on", "history",
        f"delete {root}/eph", f"deleteall {root}", f"get {root}", f"stat {root}/x",
        "create p", "create /p/", "frobnicate",
    ]


# Deliberate differences, (command, zkCli's lines, warren cli's lines) with the reason.
EXPECTED_DIFFERENCES = {
    # zkCli creates a node given no data with null data, and prints it back as "null";
    # the zookeeper-client crate has no null data: it sends and returns empty bytes.
    "get {root}/nodata": (["null"], [""]),
    # Warren's usage text: its own header line and extra commands (tree, du, watch, ...).
    "frobnicate": None,
}


def run_transcript(argv, commands):
    script = [f"get {MARK}start"]
    for i, c in enumerate(commands):
        script += [c, f"get {MARK}{i}"]
    script.append("quit")
    proc = subprocess.run(argv, input="\n".join(script) + "\n", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)
    outputs, current, tail = {}, None, []
    marks = {f"Node does not exist: {MARK}start": -1}
    marks.update({f"Node does not exist: {MARK}{i}": i for i in range(len(commands))})
    norm = Normaliser()
    for ln in proc.stdout.splitlines():
        if is_noise(ln):
            continue
        if ln in marks:
            current = marks[ln]
            outputs[current + 1] = []
            continue
        if current is None:
            continue
        outputs[current + 1].append(norm.line(ln))
    tail = outputs.pop(len(commands), [])
    assert len(outputs) == len(commands), proc.stdout
    return [outputs[i] for i in range(len(commands))], tail, proc.stdout


def test_tutorial_matches_java_zkcli(warren, unique_path):
    host = warren.host_port
    cmds = tutorial(unique_path)
    ref, ref_tail, ref_raw = run_transcript(zkcli_command(host), cmds)
    got, got_tail, got_raw = run_transcript(cli("-server", host), cmds)
    report = []
    for template_cmd, cmd, a, b in zip(tutorial("{root}"), cmds, ref, got):
        if template_cmd in EXPECTED_DIFFERENCES:
            want = EXPECTED_DIFFERENCES[template_cmd]
            if want is not None and (a, b) != want:
                report.append(f"{cmd}: expected difference changed: zkCli {a} warren {b}")
            continue
        if a != b:
            report.append(f"{cmd}:\n    zkCli:  {a}\n    warren: {b}")
    # both print the session's close on quit
    if ref_tail != got_tail:
        report.append(f"after quit: zkCli {ref_tail} warren {got_tail}")
    assert not report, "\n".join(report) + "\n--- zkCli ---\n" + ref_raw + "\n--- warren ---\n" + got_raw
    # the comparison is not vacuous
    assert got[5][0] == "junk" and got[5][1].startswith("cZxid = "), got[5]


# ---------------------------------------------------------------------------------------
# tree, du, watch
# ---------------------------------------------------------------------------------------
def test_tree_du_watch(warren, unique_path):
    p = unique_path
    for path, data in [(p, ""), (f"{p}/a", "1234567890"), (f"{p}/a/x", "xx"), (f"{p}/b", ""),
                       (f"{p}/b/1", ""), (f"{p}/b/2", ""), (f"{p}/b/3", "")]:
        run_cli(warren, "create", path, data).check_returncode()
    r = run_cli(warren, "tree", p)
    assert r.stdout == (f"{p}\n├── a\n│   └── x\n└── b\n    ├── 1\n    ├── 2\n    └── 3\n"), r
    r = run_cli(warren, "tree", "-d", "1", "-n", "1", p)
    assert r.stdout == f"{p}\n├── a (1 child)\n└── … 1 more\n", r
    r = run_cli(warren, "du", "-n", "1", p)
    lines = r.stdout.splitlines()
    assert lines[0] == f"{p}: 12 bytes in 7 nodes", r.stdout
    assert lines[3].split() == ["12", "2", f"{p}/a"], r.stdout  # largest by bytes
    assert lines[6].split() == ["4", "0", f"{p}/b"], r.stdout   # largest by node count

    proc = subprocess.Popen(cli("-server", warren.host_port, "watch", "-c", "3", f"{p}/a"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "data = 1234567890\n"
        assert proc.stdout.readline() == "children = [x]\n"
        run_cli(warren, "set", f"{p}/a", "new").check_returncode()
        assert proc.stdout.readline() == (
            f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}/a\n")
        assert proc.stdout.readline() == "data = new\n"
        run_cli(warren, "create", f"{p}/a/y").check_returncode()
        assert proc.stdout.readline() == (
            f"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{p}/a\n")
        assert proc.stdout.readline() == "children = [x, y]\n"
        run_cli(warren, "delete", f"{p}/a/x").check_returncode()
        assert proc.stdout.readline() == (
            f"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{p}/a\n")
        assert proc.stdout.readline() == "children = [y]\n"
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------
# lock, elect, health
# ---------------------------------------------------------------------------------------
def test_lock_serialises_and_survives_a_killed_holder(warren, unique_path, tmp_path):
    log = tmp_path / "log"
    log.touch()
    body = f'echo "start $ID" >> {log}; sleep 1; echo "end $ID" >> {log}'

    def contender(name):
        return subprocess.Popen(
            cli("-server", warren.host_port, "-timeout", str(SHORT_SESSION_MS), "lock",
                f"{unique_path}/L", "--", "sh", "-c", body),
            env=dict(os.environ, ID=name), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    first = contender("A")
    deadline = time.monotonic() + 15
    while "start A" not in log.read_text():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.02)
    others = [contender("B"), contender("C")]
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)  # while it holds the lock; its command dies with it
    first.wait()
    killed_at = time.monotonic()
    for p in others:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, (out, err)
    lines = log.read_text().splitlines()
    assert lines[0] == "start A" and "end A" not in lines, lines
    rest = lines[1:]
    assert len(rest) == 4, lines
    # no overlap: each holder's start is followed by its own end
    for i in (0, 2):
        assert rest[i].startswith("start ") and rest[i + 1] == "end " + rest[i][6:], lines
    assert {rest[0][6:], rest[2][6:]} == {"B", "C"}, lines
    assert time.monotonic() - killed_at > 1.0  # waited for A's session to expire
    # the exit status is the command's
    r = run_cli(warren, "lock", f"{unique_path}/L2", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7, r


def read_lines(proc, q):
    for line in proc.stdout:
        q.put(line)


def test_elect_takeover(warren, unique_path):
    procs, queues = [], []
    for name in ("alpha", "beta"):
        p = subprocess.Popen(cli("-server", warren.host_port, "-timeout", str(SHORT_SESSION_MS),
                                 "elect", f"{unique_path}/E", name),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        q = queue.Queue()
        threading.Thread(target=read_lines, args=(p, q), daemon=True).start()
        procs.append(p)
        queues.append(q)
        if name == "alpha":
            assert q.get(timeout=15).startswith("alpha is the leader ("), "alpha never led"
    try:
        time.sleep(0.5)
        assert queues[1].empty(), "two leaders"
        procs[0].send_signal(signal.SIGKILL)
        line = queues[1].get(timeout=SHORT_SESSION_MS / 1000 * 3 + 5)
        assert line.startswith("beta is the leader ("), line
        # a clean stop (SIGTERM) steps down and exits 0
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=10) == 0
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_health_of_a_warren_ensemble(tmp_path):
    from ensemble import Ensemble
    with Ensemble("warren", tmp_path / "ens", participants=3) as ens:
        ens.start(timeout=60)
        r = subprocess.run(cli("health", "-server", ens.hosts()), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0, r
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["ADDRESS", "ROLE", "ZXID", "LAG", "LATENCY", "ERRORS"]
        rows = [ln.split() for ln in lines[1:]]
        assert len(rows) == 3, r.stdout
        assert sorted(row[1] for row in rows) == ["follower", "follower", "leader"], r.stdout
        assert {row[0] for row in rows} == set(ens.hosts().split(","))
        for row in rows:
            assert row[2].startswith("0x") and row[3].isdigit() and row[4].endswith("ms"), row
            assert row[5] == "-", row
        # a member that is down shows up with an error and status 7
        ens.kill(ens.followers(ens.leader())[0])
        r = subprocess.run(cli("-timeout", "3000", "health", "-server", ens.hosts()),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == EXIT["ConnectionLoss"], r
        assert sum("refused" in ln or "Unable" in ln for ln in r.stdout.splitlines()) == 1, r.stdout
