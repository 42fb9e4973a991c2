"""Byte-level differential test: hand-built request frames on raw sockets (wire.py, no
kazoo), the same scripted scenario against real ZooKeeper 3.8 (the reference) and against
the target (Warren, or a second ZooKeeper with WARREN_TEST_TARGET=zookeeper), every frame
the servers send compared byte for byte after a narrow normalisation.

Why: test_differential.py compares what kazoo decodes, so a reply with a missing or extra
body, or a wrong xid, passes there and still breaks the Java client (ClientCnxn reads a body
whenever err == 0 and the request expects one; it matches replies to requests by xid).

Each scenario (one pytest test each) runs on a fresh root path, the same string on both
servers, on module-scoped servers started for this file with the same settings
(extendedTypesEnabled, so createTTL works; container/TTL reaping pushed out to an hour so
no background transaction moves zxids while the file runs). What is recorded, per named
step and per connection: every frame read (replies, notifications with xid -1, frames on a
socket we only expected to close), EOF, "timeout" (a reply or a close that did not come
within the wait), send errors.

What may differ, and nothing else (wire.Joint; every other byte is compared raw, and raw
frame lengths are compared too):
  * zxids: ReplyHeader.zxid and Stat czxid/mzxid/pzxid. Each zxid stands for its rank of
    first appearance in the scenario on that server; a zxid on the target must correspond
    one-to-one, and in the same order, to the reference's zxid in the same field of the
    aligned frame, for the whole scenario. When no frame is missing that is exactly "equal
    ranks of first appearance"; the pairing just keeps one missing frame from shifting all
    later ranks. 0 and -1 are compared raw (-1 is a notification's zxid in 3.8, auth and
    sasl replies carry 0). Frames within a step are aligned on (connection, kind, request
    answered) before comparing, so a missing or extra frame is one difference.
  * Stat ctime/mtime: replaced by a flag (0 stays 0, anything else is "set").
  * session ids: ConnectResponse.sessionId pairs up the two servers' sessions; a
    Stat.ephemeralOwner that is a session's id must be the paired session's; 0 and values
    that are no session's id (a container's or TTL node's ephemeralOwner encoding) are
    compared raw.
  * ConnectResponse.passwd: its bytes (not its length) are replaced unless all zero (a
    refused session gets 16 zero bytes from ZooKeeper).
  * getChildren/getChildren2/getEphemerals name lists (also inside multiRead) and whoAmI's
    ClientInfo list: compared as sorted lists, because ZooKeeper returns a HashSet's
    iteration order, which clients cannot rely on (the count is compared raw; seen: the
    same auth sequence gives [digest, ip] or [ip, digest] depending on the digest's hash).

Every reference frame must decode completely with the layout of the reply it answers
(zookeeper.jute, MultiResponse.java); bytes a decoder cannot account for on the target are
shown as a "trailing" field and compared raw. A failure names the step and prints both
servers' frames in hex side by side with the decoded fields (raw -> normalised), '!!'
marking what differs.

Intended differences go in EXPECTED_DIFFERENCES, each with its reason and as narrow as the
difference (named steps, and the frames it allows); docs/design.md lists the same.

Scenarios (one test each): session (handshake with and without the readOnly byte, timeout
negotiation, resume with the right / a wrong password, lastZxidSeen ahead, a closed session,
closeSession and what follows it), create (every mode through create / create2 /
createContainer / createTTL, and their errors), data (reads, writes, versions, check,
getAllChildrenNumber, getEphemerals, sync, /zookeeper), acl (NoAuth, auth with xid -4 and an
ordinary xid, whoAmI, InvalidACL, AuthFailed), bad_paths (15 kinds of bad path through 17
request types), multi (success, per-op errors, multiRead, malformed op lists), watches (data,
exists, child, persistent, recursive; checkWatches / removeWatches; ordering of notifications
and replies), set_watches (setWatches and setWatches2, with xid -8 and an ordinary xid,
watches that fire at once and later), misc (ping, sync, reconfig, sasl, deleteContainer,
unknown and internal opcodes, odd xids, truncated bodies), pipeline (eleven requests in one
write). ZooKeeper 3.8 quirks the reference shows, kept as the reference: a standalone check
(13) that succeeds is never answered (the step waits 1 s); a failed write consumes a zxid; a
reconnect attempt with a wrong password closes the session's live connection; read requests
do not validate paths (the empty path reads the root).

test_wire_bytes_on_a_follower runs the same scenarios on a follower of a 3-server ZooKeeper
ensemble and of a 3-server Warren ensemble (writes forwarded to the leader, sessions created
through it, /zookeeper/config holding the membership); the standalone check(13) steps are left
out there, because on a ZooKeeper follower they stall its request pipeline for good.

Run (from the repository root; about 12 s standalone and ensembles, server starts included):
  python3 -m pytest tests/python/test_wire_bytes.py -q                  # ZooKeeper vs Warren
  WARREN_TEST_TARGET=zookeeper python3 -m pytest tests/python/test_wire_bytes.py -q
                                                      # ZooKeeper vs ZooKeeper: must pass
  WARREN_BIN=/path/to/warren ...                      # another Warren binary
Environment: WIRE_DUMP=<dir> writes each server's normalised transcript per scenario there;
WIRE_FULL_STEPS=N (default 30) differing steps are printed in full, the rest one line each.
test_normaliser_is_strict_enough replays recorded ZooKeeper runs against altered copies of
themselves to show the normalisation hides only what it should.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import conftest as _cf  # the module pytest loaded: _start/_finish attach log tails on failure
from servers import WarrenServer, ZooKeeperServer, target_kind
from wire import (
    OP,
    OPEN_ACL,
    PERM_ALL,
    XID_AUTH,
    XID_SET_WATCHES,
    Conn,
    Event,
    Recorder,
    auth_body,
    buf,
    compare,
    create_body,
    create_ttl_body,
    decode_frame,
    i32,
    i64,
    multi_body,
    normalise_events,
    path_version,
    path_watch,
    reconfig_body,
    set_acl_body,
    set_data_body,
    set_watches2_body,
    set_watches_body,
    ustr,
)

RUN_ID = uuid.uuid4().hex[:6]
TTL_MS = 3_600_000

# zoo.cfg / JVM settings: the same behaviour on both servers.
ZK_JVM_PROPS = {
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "3600000",
}
WARREN_CFG = {
    "extendedTypesEnabled": "true",
    "warren.containerCheckIntervalMs": "3600000",
}


@dataclass
class ExpectedDifference:
    """An intended difference: `applies(step, ref_event, target_event)` says whether this
    entry explains a mismatching pair."""
    name: str
    reason: str
    applies: Callable[[str, Event | None, Event | None], bool]


STAT_LEN = 68  # czxid mzxid ctime mtime (4 x i64), version cversion aversion (3 x i32),
# ephemeralOwner (i64), dataLength numChildren (2 x i32), pzxid (i64)


def _reply_err(e: Event | None) -> int | None:
    """The error code of a recorded reply frame; None for anything else."""
    if e is None or e.kind != "frame" or e.ctx is None or e.ctx.kind != "reply" or len(e.raw) < 20:
        return None
    return int.from_bytes(e.raw[16:20], "big", signed=True)


def _first_multi_result_err(e: Event | None) -> int | None:
    """The err of a multi reply's first result (MultiHeader{type, done, err} after the reply
    header); None for anything else."""
    if _reply_err(e) is None or e.ctx.opcode != OP["multi"] or len(e.raw) < 29:
        return None
    return int.from_bytes(e.raw[25:29], "big", signed=True)


def _config_node_same_but_ports(a: Event | None, b: Event | None) -> bool:
    """Two getData replies for /zookeeper/config from two ensembles: the same membership text
    once every port number is replaced (each ensemble has its own ports), and the same Stat
    apart from mtime (a time) and dataLength (port digits)."""
    def split(e):
        if _reply_err(e) != 0 or e.ctx.opcode != OP["getData"] or len(e.raw) < 24:
            return None
        n = int.from_bytes(e.raw[20:24], "big", signed=True)
        if n < 0 or len(e.raw) != 24 + n + STAT_LEN:
            return None
        stat = e.raw[24 + n:]
        return re.sub(rb":[0-9]+", b":PORT", e.raw[24:24 + n]), stat[:24] + stat[32:52] + stat[56:]
    x, y = split(a), split(b)
    return x is not None and x == y


def _step_is(*names: str) -> Callable[[str], bool]:
    """The named steps, and the ': then' step that follows each (what happens next on that
    connection)."""
    wanted = set(names) | {n + ": then" for n in names}
    return lambda step: step in wanted


_MALFORMED = _step_is(
    "multi with a getData op (a read in multi)",
    "multiRead with a create op",
    "multiRead with getChildren2 (not a multiRead op)",
    "multi with an unknown op type 99",
    "setData with a truncated body",
)
_CREATE2_IN_MULTI = _step_is(
    "multi success: create, create2, setData, check, delete, createContainer, createTTL",
    "multi sequential and ephemeral creates",
)
_WRONG_PASSWORD = _step_is(
    "a2: after the refused connections (the wrong-password attempt on its session)",
    "a2: the old socket once its session moved again",
)


def _bad_path_step(step: str) -> bool:
    labels = [label for label, _ in BAD_PATHS if label != "invalid UTF-8 byte"]  # defined below
    return any(f" path {label} " in step for label in labels) \
        or step == "create sequential trailing slash under a missing parent"


# Where Warren differs from ZooKeeper 3.8 on purpose (docs/design.md lists the same), each
# entry as narrow as the difference: named steps, and the frames it allows.
EXPECTED_DIFFERENCES: list[ExpectedDifference] = [
    ExpectedDifference(
        "bad paths are BadArguments",
        "Warren validates the path of every request, reads included, and answers -8; ZooKeeper "
        "validates only writes, so a read of a malformed path gets NoNode (or, for sync and "
        "addWatch, Ok: a watch on a path that can never exist; the empty path even reads the "
        "root). No node can exist at a malformed path, and a client that sends one has a bug "
        "it should hear about.",
        lambda step, a, b: _bad_path_step(step) and _reply_err(a) is not None and (
            _reply_err(b) == -8
            or _first_multi_result_err(b) == -8 and _first_multi_result_err(a) not in (None, 0)),
    ),
    ExpectedDifference(
        "invalid UTF-8 closes the connection",
        "A path that is not UTF-8 is a malformed frame: Warren closes that connection with a log "
        "line (the session lives on; the script reconnects). Java decodes such bytes leniently "
        "(U+FFFD) and answers NoNode or BadArguments. Only raw or C clients can send them.",
        lambda step, a, b: " path invalid UTF-8 byte " in step,
    ),
    ExpectedDifference(
        "malformed requests close the connection",
        "A request whose body does not parse (a read op inside multi, a write op inside "
        "multiRead, an unknown op type inside multi, a truncated setData) closes that one "
        "connection with a log line, Warren's rule for malformed frames; ZooKeeper answers "
        "MarshallingError (-5) and keeps it. Real clients never send these.",
        lambda step, a, b: _MALFORMED(step),
    ),
    ExpectedDifference(
        "create2 inside multi returns its Stat",
        "ZooKeeper 3.8.0 answers a create2 op inside multi as a plain create (type 1, path "
        "only: ZOOKEEPER-4026, fixed in later releases); Warren answers type 15 with path and "
        "Stat, as the fix does. Clients decode results by their type, so both work.",
        lambda step, a, b: _CREATE2_IN_MULTI(step) and _reply_err(a) == 0 and _reply_err(b) == 0
        and len(b.raw) > len(a.raw) and (len(b.raw) - len(a.raw)) % STAT_LEN == 0,
    ),
    ExpectedDifference(
        "each ensemble has its own ports",
        "Not a difference between the servers: /zookeeper/config lists the ensemble's members "
        "with their quorum and election ports, and the two ensembles under test listen on "
        "different ports. Everything else in the reply must match.",
        lambda step, a, b: step == "getData /zookeeper/config" and _config_node_same_but_ports(a, b),
    ),
    ExpectedDifference(
        "a standalone check is answered",
        "ZooKeeper 3.8.0 never answers a check (13) outside multi that succeeds (its request "
        "pipeline cannot log a check transaction); Warren answers Ok.",
        lambda step, a, b: step.startswith("check(13) standalone, ") and (a is None or a.kind == "timeout")
        and _reply_err(b) == 0,
    ),
    ExpectedDifference(
        "a wrong password does not disconnect the session's client",
        "ZooKeeper closes a session's live connection when someone else tries to attach to "
        "that session with a wrong password. Warren refuses the attempt the same way but "
        "leaves the live connection alone: otherwise anyone who knows a session id (they are "
        "sequential) could disconnect its client at will.",
        lambda step, a, b: _WRONG_PASSWORD(step),
    ),
    ExpectedDifference(
        "ZooKeeper may answer a request pipelined behind closeSession",
        "Seen both ways on ZooKeeper 3.8 from run to run (a race in its pipeline): the getData "
        "sent in the same write after closeSession is sometimes answered before the socket "
        "closes. Warren answers closeSession and closes. Allowed: only that reply, only on "
        "ZooKeeper.",
        lambda step, a, b: step == "f: closeSession pipelined with a getData in the same write"
        and b is None and a is not None and a.ctx is not None and a.ctx.opcode == OP["getData"],
    ),
]


# --------------------------------------------------------------------------------------
# servers


def _zk(tmp_path_factory, name):
    return ZooKeeperServer(base_dir=tmp_path_factory.mktemp(name), name=name,
                           jvm_props=ZK_JVM_PROPS)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    server = _zk(tmp_path_factory, "wire-zookeeper")
    _cf._start(server)
    yield server
    _cf._finish(server)


@pytest.fixture(scope="module")
def tgt(tmp_path_factory):
    if target_kind() == "zookeeper":
        server = _zk(tmp_path_factory, "wire-target-zookeeper")
    else:
        server = WarrenServer(base_dir=tmp_path_factory.mktemp("wire-warren"),
                              name="wire-warren", extra_cfg=WARREN_CFG)
    _cf._start(server)
    yield server
    _cf._finish(server)


# --------------------------------------------------------------------------------------
# scripting

CREATE, DELETE, EXISTS, GET, SET = (OP[k] for k in ("create", "delete", "exists", "getData",
                                                   "setData"))
GETACL, SETACL, CHILDREN, SYNC, CHILDREN2 = (OP[k] for k in ("getACL", "setACL", "getChildren",
                                                             "sync", "getChildren2"))
CHECK, MULTI, CREATE2, RECONFIG = (OP[k] for k in ("check", "multi", "create2", "reconfig"))
CHECKW, REMOVEW, CONTAINER, DELCONTAINER = (OP[k] for k in ("checkWatches", "removeWatches",
                                                            "createContainer", "deleteContainer"))
TTL, MULTIREAD, AUTH, SETW, SASL = (OP[k] for k in ("createTTL", "multiRead", "auth",
                                                    "setWatches", "sasl"))
EPHEMERALS, ALLCHILDREN, SETW2, ADDWATCH, WHOAMI = (OP[k] for k in (
    "getEphemerals", "getAllChildrenNumber", "setWatches2", "addWatch", "whoAmI"))
CLOSE = OP["closeSession"]


def digest_id(user_password: str) -> str:
    user = user_password.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(user_password.encode()).digest()).decode()


ALICE = "alice:secret"
ALICE_ACL = [(PERM_ALL, "digest", digest_id(ALICE))]


class Script:
    """What a scenario sees: named steps, connections that record into the same Recorder."""

    def __init__(self, server, root: str, rec: Recorder, follower: bool = False):
        self.server = server
        self.root = root
        self.rec = rec
        self.conns: list[Conn] = []
        # On a follower of ZooKeeper 3.8 a standalone check(13) stalls that server's request
        # pipeline for good (every later request on it goes unanswered), so scenarios leave
        # it out there.
        self.follower = follower

    def step(self, name: str) -> None:
        self.rec.begin(name)

    def connect(self, name: str, **kw) -> Conn:
        c = Conn(self.rec, name, self.server.host, self.server.port)
        self.conns.append(c)
        c.handshake(**kw)
        return c

    def p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def close_session(self, c: Conn) -> None:
        """closeSession, then whatever the server sends until it closes the socket."""
        if c.closed:
            return
        c.call(CLOSE)
        c.expect_close()

    def end_session(self, name: str, c: Conn) -> None:
        """Close a session whose socket the server already closed: resume it on a new
        socket with its password, then closeSession (so no session is left to expire in
        the background and move zxids under a later scenario)."""
        if not c.session_id:
            return
        r = self.connect(name, session_id=c.session_id, passwd=c.passwd, last_zxid=0)
        self.close_session(r)

    def ensure(self, c: Conn) -> Conn:
        """After a step that may have made the server close the connection: if it did,
        end that session and open a new one under the same connection name, continuing its
        xids, so later steps line up with the other server's."""
        if not c.closed:
            return c
        self.end_session(c.name + "-end", c)
        n = self.connect(c.name)
        n.next_xid = c.next_xid
        return n

    def close_all(self) -> None:
        for c in self.conns:
            c.close()


def reply_path(rep, default):
    try:
        return rep.get("path") or default
    except (KeyError, AttributeError):
        return default


# --------------------------------------------------------------------------------------
# scenarios


def one_request_alone(s: Script, name: str, conn: str, opcode: int, body: bytes,
                      xid: int | None = None) -> None:
    """Step `name`: one request on a fresh connection, then a ping if it is still open; step
    `name: then`: the session ends (closeSession, or a new connection that closes it when
    the server dropped the first)."""
    s.step(name)
    c = s.connect(conn)
    c.call(opcode, body, xid=xid)
    if not c.closed:
        c.ping()
    s.step(name + ": then")
    if c.closed:
        s.end_session(f"{conn}-end", c)
    else:
        s.close_session(c)


def sc_session(s: Script) -> None:
    s.step("connect a (ConnectRequest with readOnly byte)")
    a = s.connect("a")
    s.step("connect b (no readOnly byte, a 3.3-era ConnectRequest)")
    b = s.connect("b", read_only=None)
    s.step("b: ping")
    b.ping()
    s.step("a: create root")
    a.call(CREATE, create_body(s.root))
    s.step("b: exists root (a Stat on a connection without readOnly)")
    b.call(EXISTS, path_watch(s.root))
    s.step("a: create ephemeral")
    a.call(CREATE, create_body(s.p("e"), b"x", flags=1))
    s.step("connect g (timeOut 1000, below minSessionTimeout)")
    g = s.connect("g", timeout=1000)
    s.step("g: closeSession")
    s.close_session(g)
    s.step("connect h (timeOut 1000000, above maxSessionTimeout)")
    h = s.connect("h", timeout=1_000_000)
    s.step("h: closeSession")
    s.close_session(h)
    s.step("a2: resume a's session on a new socket with the right password")
    a2 = s.connect("a2", session_id=a.session_id, passwd=a.passwd, last_zxid=a.last_zxid)
    s.step("a: the old socket once its session moved")
    a.expect_close()
    s.step("a2: exists ephemeral (ephemeralOwner is a's session)")
    a2.call(EXISTS, path_watch(s.p("e")))
    s.step("c: a's session with a wrong password")
    c = s.connect("c", session_id=a.session_id, passwd=b"\x01" * 16, last_zxid=a2.last_zxid)
    c.expect_close()
    s.step("d: a new session with lastZxidSeen ahead of the server")
    d = s.connect("d", last_zxid=a2.last_zxid + (1 << 32))
    d.expect_close()
    s.step("a2: after the refused connections (the wrong-password attempt on its session)")
    a2.ping()
    s.step("a3: resume a's session again with the right password")
    a3 = s.connect("a3", session_id=a.session_id, passwd=a.passwd, last_zxid=a.last_zxid)
    s.step("a2: the old socket once its session moved again")
    a2.expect_close()
    a2 = a3
    s.step("b: closeSession")
    s.close_session(b)
    s.step("e: resume b's closed session")
    e = s.connect("e", session_id=b.session_id, passwd=b.passwd, last_zxid=a2.last_zxid)
    e.expect_close()
    s.step("f: closeSession pipelined with a getData in the same write")
    f = s.connect("f")
    f.pending.append((f.next_xid, CLOSE))
    f.pending.append((f.next_xid + 1, GET))
    xid = f.next_xid
    f.next_xid += 2
    f.send_raw(i32(8) + i32(xid) + i32(CLOSE)
               + i32(8 + len(path_watch(s.root))) + i32(xid + 1) + i32(GET) + path_watch(s.root))
    f.expect_close()
    s.step("a2: closeSession (its ephemeral goes)")
    s.close_session(a2)
    s.step("k: the ephemeral is gone")
    k = s.connect("k")
    k.call(EXISTS, path_watch(s.p("e")))
    k.call(CHILDREN, path_watch(s.root))
    s.step("k: closeSession")
    s.close_session(k)


def sc_create(s: Script) -> None:
    s.step("connect")
    c = s.connect("c")
    s.step("create root")
    c.call(CREATE, create_body(s.root))
    modes = [(0, "persistent"), (1, "ephemeral"), (2, "persistent sequential"),
             (3, "ephemeral sequential")]
    for opcode, opname in ((CREATE, "create"), (CREATE2, "create2")):
        for flags, label in modes:
            s.step(f"{opname}({opcode}) {label} (flags {flags})")
            c.call(opcode, create_body(s.p(f"{opname}-{flags}-"), b"data", flags=flags))
    s.step("createContainer(19) flags 4")
    c.call(CONTAINER, create_body(s.p("container"), b"c", flags=4))
    s.step("getData container (ephemeralOwner encodes the container type)")
    c.call(GET, path_watch(s.p("container")))
    s.step("createTTL(21) persistent with TTL (flags 5)")
    c.call(TTL, create_ttl_body(s.p("ttl"), b"t", flags=5, ttl=TTL_MS))
    s.step("createTTL(21) persistent sequential with TTL (flags 6)")
    seq_ttl = reply_path(c.call(TTL, create_ttl_body(s.p("ttlseq-"), b"t", flags=6, ttl=TTL_MS)),
                         s.p("ttlseq-0000000000"))
    s.step("getData TTL node (ephemeralOwner encodes the TTL)")
    c.call(GET, path_watch(s.p("ttl")))
    bad = [
        ("createTTL ttl 0", TTL, create_ttl_body(s.p("t0"), ttl=0)),
        ("createTTL ttl -1", TTL, create_ttl_body(s.p("t1"), ttl=-1)),
        ("createTTL ttl 2^40 (above the maximum)", TTL, create_ttl_body(s.p("t2"), ttl=1 << 40)),
        ("createTTL flags 0 (not a TTL mode)", TTL, create_ttl_body(s.p("t3"), flags=0)),
        ("createTTL flags 4 (container)", TTL, create_ttl_body(s.p("t4"), flags=4)),
        ("createTTL flags 1 (ephemeral)", TTL, create_ttl_body(s.p("t5"), flags=1)),
        ("create flags 5 (TTL mode through create)", CREATE, create_body(s.p("c5"), flags=5)),
        ("create2 flags 5 (TTL mode through create2)", CREATE2, create_body(s.p("c25"), flags=5)),
        ("create flags 4 (container through create)", CREATE, create_body(s.p("c4"), flags=4)),
        ("create2 flags 4 (container through create2)", CREATE2, create_body(s.p("c24"), flags=4)),
        ("createContainer flags 0", CONTAINER, create_body(s.p("k0"), flags=0)),
        ("create flags 7 (no such mode)", CREATE, create_body(s.p("c7"), flags=7)),
        ("create flags -1 (no such mode)", CREATE, create_body(s.p("cm1"), flags=-1)),
        ("create NodeExists", CREATE, create_body(s.p("create-0-"))),
        ("create2 NodeExists", CREATE2, create_body(s.p("create-0-"))),
        ("createContainer NodeExists", CONTAINER, create_body(s.p("container"), flags=4)),
        ("createTTL NodeExists", TTL, create_ttl_body(s.p("ttl"))),
        ("create under a missing parent (NoNode)", CREATE, create_body(s.p("nope", "x"))),
        ("create2 under a missing parent", CREATE2, create_body(s.p("nope", "x"))),
        ("createContainer under a missing parent", CONTAINER, create_body(s.p("nope", "x"), flags=4)),
        ("createTTL under a missing parent", TTL, create_ttl_body(s.p("nope", "x"))),
        ("create under an ephemeral (NoChildrenForEphemerals)", CREATE,
         create_body(s.p("create-1-", "x"))),
        ("create2 sequential under an ephemeral", CREATE2,
         create_body(s.p("create-1-", "x"), flags=2)),
        ("create ephemeral under an ephemeral", CREATE, create_body(s.p("create-1-", "x"), flags=1)),
        ("create with an empty ACL (InvalidACL)", CREATE, create_body(s.p("noacl"), acl_list=[])),
        ("create with a null ACL vector", CREATE,
         ustr(s.p("nullacl")) + buf(b"") + i32(-1) + i32(0)),
        ("create the root / (NodeExists or BadArguments)", CREATE, create_body("/")),
    ]
    for name, opcode, body in bad:
        s.step(name)
        c.call(opcode, body)
    s.step("create with null data")
    c.call(CREATE, ustr(s.p("nulldata")) + buf(None) + b"".join(
        [i32(1), i32(PERM_ALL), ustr("world"), ustr("anyone")]) + i32(0))
    s.step("getData a node created with null data")
    c.call(GET, path_watch(s.p("nulldata")))
    s.step("create parent for trailing-slash sequential")
    c.call(CREATE, create_body(s.p("seqdir")))
    s.step("create sequential with a trailing slash (allowed for sequential)")
    c.call(CREATE, create_body(s.p("seqdir") + "/", b"", flags=2))
    s.step("create2 persistent with a trailing slash (BadArguments)")
    c.call(CREATE2, create_body(s.p("seqdir") + "/", b"", flags=0))
    s.step("getChildren2 seqdir")
    c.call(CHILDREN2, path_watch(s.p("seqdir")))
    s.step("sequential numbering after a delete")
    c.call(CREATE, create_body(s.p("seqdir", "n-"), flags=2))
    c.call(DELETE, path_version(s.p("seqdir", "n-0000000001")))
    c.call(CREATE, create_body(s.p("seqdir", "n-"), flags=2))
    c.call(CHILDREN2, path_watch(s.p("seqdir")))
    s.step("getChildren2 root")
    c.call(CHILDREN2, path_watch(s.root))
    s.step("delete the container and the TTL nodes")
    c.call(DELETE, path_version(s.p("container")))
    c.call(DELETE, path_version(s.p("ttl")))
    c.call(DELETE, path_version(seq_ttl))
    s.step("closeSession")
    s.close_session(c)


def sc_data(s: Script) -> None:
    s.step("connect")
    c = s.connect("c")
    s.step("create root and n")
    c.call(CREATE, create_body(s.root))
    c.call(CREATE, create_body(s.p("n"), b"v1"))
    for name, opcode, body in [
        ("getData n", GET, path_watch(s.p("n"))),
        ("exists n", EXISTS, path_watch(s.p("n"))),
        ("exists missing (NoNode)", EXISTS, path_watch(s.p("missing"))),
        ("getData missing (NoNode)", GET, path_watch(s.p("missing"))),
        ("setData n version -1", SET, set_data_body(s.p("n"), b"v2", -1)),
        ("setData n version 1 (right)", SET, set_data_body(s.p("n"), b"v3", 1)),
        ("setData n version 7 (BadVersion)", SET, set_data_body(s.p("n"), b"v4", 7)),
        ("setData missing (NoNode)", SET, set_data_body(s.p("missing"), b"x", -1)),
        ("setData n empty data", SET, set_data_body(s.p("n"), b"", -1)),
        ("setData n null data", SET, ustr(s.p("n")) + buf(None) + i32(-1)),
        ("getData n after null data", GET, path_watch(s.p("n"))),
        ("setData n back", SET, set_data_body(s.p("n"), b"v5", -1)),
    ]:
        s.step(name)
        c.call(opcode, body)
    # ZooKeeper 3.8 never answers a standalone check(13) that succeeds (it consumes a zxid
    # and sends nothing); a short wait keeps the file fast.
    checks = [] if s.follower else [("right version", 5), ("wrong version", 9), ("version -1", -1)]
    for name, version in checks:
        s.step(f"check(13) standalone, {name}")
        c.call(CHECK, path_version(s.p("n"), version), timeout=1.0)
    if not s.follower:
        s.step("check(13) standalone, missing node")
        c.call(CHECK, path_version(s.p("missing"), 0))
    for name, opcode, body in [
        ("getChildren n (none)", CHILDREN, path_watch(s.p("n"))),
        ("getChildren2 n (none)", CHILDREN2, path_watch(s.p("n"))),
        ("getChildren missing", CHILDREN, path_watch(s.p("missing"))),
        ("getChildren2 missing", CHILDREN2, path_watch(s.p("missing"))),
        ("create n/c1", CREATE, create_body(s.p("n", "c1"), b"1")),
        ("create n/c2", CREATE, create_body(s.p("n", "c2"), b"2")),
        ("create n/c3 ephemeral", CREATE, create_body(s.p("n", "c3"), b"3", flags=1)),
        ("create root/eph ephemeral", CREATE, create_body(s.p("eph"), b"", flags=1)),
        ("getChildren n", CHILDREN, path_watch(s.p("n"))),
        ("getChildren2 n", CHILDREN2, path_watch(s.p("n"))),
        ("getAllChildrenNumber root", ALLCHILDREN, ustr(s.root)),
        ("getAllChildrenNumber n/c1 (leaf)", ALLCHILDREN, ustr(s.p("n", "c1"))),
        ("getAllChildrenNumber missing", ALLCHILDREN, ustr(s.p("missing"))),
        ("getEphemerals root prefix", EPHEMERALS, ustr(s.root)),
        ("getEphemerals /", EPHEMERALS, ustr("/")),
        ("getEphemerals root/n/c prefix (a name prefix, not a path)", EPHEMERALS, ustr(s.p("n", "c"))),
        ("getEphemerals no match", EPHEMERALS, ustr(s.p("zzz"))),
        ("delete n (NotEmpty)", DELETE, path_version(s.p("n"))),
        ("delete n/c1 version 5 (BadVersion)", DELETE, path_version(s.p("n", "c1"), 5)),
        ("delete n/c1 version 0", DELETE, path_version(s.p("n", "c1"), 0)),
        ("delete missing (NoNode)", DELETE, path_version(s.p("missing"))),
        ("delete missing with a version", DELETE, path_version(s.p("missing"), 3)),
        ("delete n/c2", DELETE, path_version(s.p("n", "c2"))),
        ("getChildren2 n after deletes", CHILDREN2, path_watch(s.p("n"))),
        ("exists n after deletes (pzxid, cversion)", EXISTS, path_watch(s.p("n"))),
        ("sync root", SYNC, ustr(s.root)),
        ("sync missing", SYNC, ustr(s.p("missing"))),
        ("sync /", SYNC, ustr("/")),
        ("exists /zookeeper", EXISTS, path_watch("/zookeeper")),
        ("getChildren /zookeeper", CHILDREN, path_watch("/zookeeper")),
        ("getData /zookeeper/quota", GET, path_watch("/zookeeper/quota")),
        # Every Curator client reads (and watches) /zookeeper/config.
        ("getData /zookeeper/config", GET, path_watch("/zookeeper/config", True)),
        ("getACL /zookeeper/config", GETACL, ustr("/zookeeper/config")),
        ("getACL /zookeeper", GETACL, ustr("/zookeeper")),
        ("getAllChildrenNumber /zookeeper", ALLCHILDREN, ustr("/zookeeper")),
        ("create under /zookeeper", CREATE, create_body("/zookeeper/x")),
        ("delete /zookeeper", DELETE, path_version("/zookeeper")),
        ("setData /zookeeper", SET, set_data_body("/zookeeper", b"x")),
    ]:
        s.step(name)
        c.call(opcode, body)
    s.step("closeSession")
    s.close_session(c)


def sc_acl(s: Script) -> None:
    s.step("connect c (unauthenticated) and u")
    c = s.connect("c")
    u = s.connect("u")
    s.step("c: create root and a digest-protected node")
    c.call(CREATE, create_body(s.root))
    c.call(CREATE, create_body(s.p("secret"), b"s", ALICE_ACL))
    c.call(CREATE, create_body(s.p("open"), b"o"))
    unauth = [
        ("c: getData protected (NoAuth)", GET, path_watch(s.p("secret"))),
        ("c: exists protected (not ACL-checked)", EXISTS, path_watch(s.p("secret"))),
        ("c: getChildren protected", CHILDREN, path_watch(s.p("secret"))),
        ("c: getChildren2 protected", CHILDREN2, path_watch(s.p("secret"))),
        ("c: setData protected", SET, set_data_body(s.p("secret"), b"x")),
        ("c: getACL protected", GETACL, ustr(s.p("secret"))),
        ("c: setACL protected", SETACL, set_acl_body(s.p("secret"), OPEN_ACL)),
        ("c: create under protected", CREATE, create_body(s.p("secret", "x"))),
        ("c: delete a missing child of protected", DELETE, path_version(s.p("secret", "x"))),
        ("c: getAllChildrenNumber protected", ALLCHILDREN, ustr(s.p("secret"))),
        ("c: check protected", CHECK, path_version(s.p("secret"), 0)),
        ("c: addWatch protected", ADDWATCH, ustr(s.p("secret")) + i32(0)),
        ("c: whoAmI unauthenticated", WHOAMI, b""),
    ]
    for name, opcode, body in unauth:
        s.step(name)
        c.call(opcode, body)
    s.step("u: auth digest alice with xid -4")
    u.call(AUTH, auth_body("digest", ALICE.encode()), xid=XID_AUTH)
    s.step("u: whoAmI as alice")
    u.call(WHOAMI)
    for name, opcode, body in [
        ("u: getData protected", GET, path_watch(s.p("secret"))),
        ("u: setData protected", SET, set_data_body(s.p("secret"), b"s2")),
        ("u: getACL protected", GETACL, ustr(s.p("secret"))),
        ("u: setACL protected version 0", SETACL,
         set_acl_body(s.p("secret"), ALICE_ACL + [(1, "world", "anyone")], 0)),
        ("u: setACL protected bad version (BadVersion)", SETACL,
         set_acl_body(s.p("secret"), ALICE_ACL, 7)),
    ]:
        s.step(name)
        u.call(opcode, body)
    s.step("c: getData protected now world-readable")
    c.call(GET, path_watch(s.p("secret")))
    s.step("u: auth digest bob with an ordinary xid")
    u.call(AUTH, auth_body("digest", b"bob:pw"))
    s.step("u: whoAmI as alice and bob")
    u.call(WHOAMI)
    s.step("u: create with the auth scheme (expands to every digest id)")
    u.call(CREATE2, create_body(s.p("authacl"), b"", [(PERM_ALL, "auth", "")]))
    s.step("u: getACL auth-scheme node")
    u.call(GETACL, ustr(s.p("authacl")))
    s.step("u: auth ip scheme")
    u.call(AUTH, auth_body("ip", b"127.0.0.1"))
    s.step("u: auth digest without a colon")
    u.call(AUTH, auth_body("digest", b"nocolon"))
    s.step("u: whoAmI after ip and nocolon")
    u.call(WHOAMI)
    invalid = [
        ("c: create with the auth scheme unauthenticated (InvalidACL)",
         CREATE, create_body(s.p("a1"), b"", [(PERM_ALL, "auth", "")])),
        ("c: create with an empty ACL", CREATE, create_body(s.p("a2"), b"", [])),
        ("c: create with an unknown scheme", CREATE, create_body(s.p("a3"), b"", [(31, "bogus", "x")])),
        ("c: create with a digest id without a colon", CREATE,
         create_body(s.p("a4"), b"", [(31, "digest", "nocolon")])),
        ("c: create with a bad ip", CREATE, create_body(s.p("a5"), b"", [(31, "ip", "1.2.3.999")])),
        ("c: create with world:nobody", CREATE, create_body(s.p("a6"), b"", [(31, "world", "nobody")])),
        ("c: create with perms 0", CREATE2, create_body(s.p("a7"), b"", [(0, "world", "anyone")])),
        ("c: getData a perms-0 node", GET, path_watch(s.p("a7"))),
        ("c: create with ip 127.0.0.1", CREATE2, create_body(s.p("a8"), b"", [(31, "ip", "127.0.0.1")])),
        ("c: getData ip 127.0.0.1 node", GET, path_watch(s.p("a8"))),
        ("c: create with ip 10.0.0.0/8", CREATE2, create_body(s.p("a9"), b"", [(31, "ip", "10.0.0.0/8")])),
        ("c: getData ip 10.0.0.0/8 node", GET, path_watch(s.p("a9"))),
        ("c: create with perms beyond ALL", CREATE2, create_body(s.p("a10"), b"", [(255, "world", "anyone")])),
        ("c: getACL perms beyond ALL", GETACL, ustr(s.p("a10"))),
        ("c: setACL empty (InvalidACL)", SETACL, set_acl_body(s.p("open"), [])),
        ("c: setACL missing (NoNode)", SETACL, set_acl_body(s.p("missing"), OPEN_ACL)),
        ("c: setACL bad version", SETACL, set_acl_body(s.p("open"), OPEN_ACL, 3)),
        ("c: setACL open version 0", SETACL, set_acl_body(s.p("open"), [(1, "world", "anyone")], 0)),
        ("c: getACL open", GETACL, ustr(s.p("open"))),
        ("c: getACL missing", GETACL, ustr(s.p("missing"))),
    ]
    for name, opcode, body in invalid:
        s.step(name)
        c.call(opcode, body)
    s.step("v: auth digest alice with a wrong password (accepted), then getData protected")
    v = s.connect("v")
    v.call(AUTH, auth_body("digest", b"alice:wrong"), xid=XID_AUTH)
    v.call(GET, path_watch(s.p("secret")))
    v.call(SET, set_data_body(s.p("secret"), b"v"))
    v.call(WHOAMI)
    s.step("v: closeSession")
    s.close_session(v)
    s.step("b: auth with an unknown scheme (AuthFailed)")
    b = s.connect("b")
    b.call(AUTH, auth_body("foo", b"bar"), xid=XID_AUTH)
    b.expect_close()
    s.step("b: end the session (resume and closeSession)")
    s.end_session("b2", b)
    s.step("closeSession c and u")
    s.close_session(c)
    s.close_session(u)


BAD_PATHS: list[tuple[str, Callable[[str], str | bytes]]] = [
    ("no leading slash", lambda r: "a"),
    ("no leading slash, an existing node's name", lambda r: r[1:]),
    ("trailing slash, missing parent", lambda r: "/wirebad-missing/"),
    ("trailing slash, existing parent", lambda r: r + "/"),
    ("empty", lambda r: ""),
    ("//", lambda r: "//"),
    ("double slash inside", lambda r: r + "//b"),
    ("/./ inside", lambda r: r + "/./b"),
    ("/../ inside", lambda r: r + "/../b"),
    ("ends in /.", lambda r: r + "/."),
    ("ends in /..", lambda r: r + "/.."),
    ("NUL", lambda r: r + "/a\x00b"),
    ("control char U+0001", lambda r: r + "/a\x01b"),
    ("U+FFFF", lambda r: r + "/a\uffffb"),
    ("invalid UTF-8 byte", lambda r: (r + "/a").encode() + b"\xff"),
]


def sc_bad_paths(s: Script) -> None:
    s.step("connect")
    c = s.connect("c")
    s.step("create root")
    c.call(CREATE, create_body(s.root))
    ops = [
        ("create", CREATE, lambda p: create_body(p)),
        ("create2", CREATE2, lambda p: create_body(p)),
        ("createContainer", CONTAINER, lambda p: create_body(p, flags=4)),
        ("createTTL", TTL, lambda p: create_ttl_body(p)),
        ("delete", DELETE, lambda p: path_version(p)),
        ("exists", EXISTS, lambda p: path_watch(p)),
        ("getData", GET, lambda p: path_watch(p)),
        ("setData", SET, lambda p: set_data_body(p, b"x")),
        ("getACL", GETACL, lambda p: ustr(p)),
        ("setACL", SETACL, lambda p: set_acl_body(p, OPEN_ACL)),
        ("getChildren", CHILDREN, lambda p: path_watch(p)),
        ("getChildren2", CHILDREN2, lambda p: path_watch(p)),
        ("sync", SYNC, lambda p: ustr(p)),
        ("check", CHECK, lambda p: path_version(p, 0)),
        ("getAllChildrenNumber", ALLCHILDREN, lambda p: ustr(p)),
        ("addWatch", ADDWATCH, lambda p: ustr(p) + i32(0)),
        ("multi create", MULTI, lambda p: multi_body([(CREATE, create_body(p))])),
    ]
    for label, make in BAD_PATHS:
        path = make(s.root)
        for opname, opcode, body in ops:
            s.step(f"{opname} path {label} {path!r}")
            # check(13) on an existing node is never answered by ZooKeeper 3.8 (see sc_data)
            c.call(opcode, body(path), timeout=1.0 if opcode == CHECK else None)
            c = s.ensure(c)
    s.step("create sequential trailing slash under a missing parent")
    c.call(CREATE, create_body("/wirebad-missing-" + RUN_ID + "/", flags=2))
    s.step("closeSession")
    s.close_session(c)


def sc_multi(s: Script) -> None:
    s.step("connect")
    c = s.connect("c")
    s.step("create root, m1, protected")
    c.call(CREATE, create_body(s.root))
    c.call(CREATE, create_body(s.p("m1"), b"a"))
    c.call(CREATE, create_body(s.p("prot"), b"p", ALICE_ACL))
    steps = [
        ("multi success: create, create2, setData, check, delete, createContainer, createTTL",
         MULTI, [(CREATE, create_body(s.p("m2"), b"2")),
                 (CREATE2, create_body(s.p("m3"), b"3")),
                 (SET, set_data_body(s.p("m1"), b"b", 0)),
                 (CHECK, path_version(s.p("m1"), 1)),
                 (DELETE, path_version(s.p("m2"))),
                 (CONTAINER, create_body(s.p("m4"), b"", flags=4)),
                 (TTL, create_ttl_body(s.p("m5"), b"", flags=5))]),
        ("multi sequential and ephemeral creates", MULTI,
         [(CREATE, create_body(s.p("q-"), flags=2)),
          (CREATE2, create_body(s.p("q-"), flags=3)),
          (CREATE, create_body(s.p("e1"), flags=1))]),
        ("multi failing in the middle (check bad version)", MULTI,
         [(CREATE, create_body(s.p("m6"))),
          (CHECK, path_version(s.p("m1"), 99)),
          (SET, set_data_body(s.p("m1"), b"c")),
          (DELETE, path_version(s.p("missing")))]),
        ("multi failing at the first op (NodeExists)", MULTI,
         [(CREATE, create_body(s.p("m1"))), (SET, set_data_body(s.p("m1"), b"d"))]),
        ("multi failing at the last op (NoNode)", MULTI,
         [(SET, set_data_body(s.p("m1"), b"e")), (DELETE, path_version(s.p("missing")))]),
        ("multi with a bad path", MULTI, [(CREATE, create_body("bad"))]),
        ("multi with NoAuth", MULTI, [(SET, set_data_body(s.p("prot"), b"x"))]),
        ("multi with NotEmpty", MULTI, [(DELETE, path_version(s.root))]),
        ("multi with BadVersion on delete", MULTI, [(DELETE, path_version(s.p("m3"), 5))]),
        ("multi with NoChildrenForEphemerals", MULTI, [(CREATE, create_body(s.p("e1", "x")))]),
        ("multi with InvalidACL", MULTI, [(CREATE, create_body(s.p("m7"), b"", []))]),
        ("multi create then delete the same node", MULTI,
         [(CREATE, create_body(s.p("m8"))), (DELETE, path_version(s.p("m8")))]),
        ("multi empty", MULTI, []),
        ("multiRead getData, getChildren, missing getData, missing getChildren", MULTIREAD,
         [(GET, path_watch(s.p("m1"))), (CHILDREN, path_watch(s.p("m3"))),
          (GET, path_watch(s.p("missing"))), (CHILDREN, path_watch(s.p("missing")))]),
        ("multiRead with NoAuth", MULTIREAD, [(GET, path_watch(s.p("prot"))),
                                              (GET, path_watch(s.p("m1")))]),
        ("multiRead empty", MULTIREAD, []),
    ]
    for name, opcode, ops in steps:
        s.step(name)
        c.call(opcode, multi_body(ops))
        c = s.ensure(c)
    s.step("state after the multis")
    c.call(GET, path_watch(s.p("m1")))
    c.call(EXISTS, path_watch(s.p("m6")))
    c.call(EXISTS, path_watch(s.p("m4")))
    c.call(EXISTS, path_watch(s.p("m5")))
    c.call(CHILDREN2, path_watch(s.root))
    s.step("delete container and TTL node")
    c.call(DELETE, path_version(s.p("m4")))
    c.call(DELETE, path_version(s.p("m5")))
    s.step("closeSession")
    s.close_session(c)
    # Op lists no client library builds; the server may close the connection over them,
    # so each gets its own session.
    for i, (name, opcode, ops) in enumerate([
        ("multi with a getData op (a read in multi)", MULTI, [(GET, path_watch(s.p("m1")))]),
        ("multiRead with a create op", MULTIREAD, [(CREATE, create_body(s.p("m9")))]),
        ("multiRead with getChildren2 (not a multiRead op)", MULTIREAD,
         [(CHILDREN2, path_watch(s.p("m1")))]),
        ("multi with an unknown op type 99", MULTI, [(99, ustr(s.p("m1")))]),
    ]):
        one_request_alone(s, name, f"r{i}", opcode, multi_body(ops))


def sc_watches(s: Script) -> None:
    s.step("connect w (watcher) and m (mutator)")
    w = s.connect("w")
    m = s.connect("m")
    s.step("m: create root, n, p, q")
    m.call(CREATE, create_body(s.root))
    for x in ("n", "p", "q", "x", "y", "p2", "q2", "p3", "q3"):
        m.call(CREATE, create_body(s.p(x), b"0"))
    s.step("w: getData n watch, exists missing watch, getChildren n watch, getChildren2 y watch")
    w.call(GET, path_watch(s.p("n"), True))
    w.call(EXISTS, path_watch(s.p("new"), True))
    w.call(CHILDREN, path_watch(s.p("n"), True))
    w.call(CHILDREN2, path_watch(s.p("y"), True))
    s.step("w: checkWatches n data(2) / children(1) / any(3), x any")
    w.call(CHECKW, ustr(s.p("n")) + i32(2))
    w.call(CHECKW, ustr(s.p("n")) + i32(1))
    w.call(CHECKW, ustr(s.p("n")) + i32(3))
    w.call(CHECKW, ustr(s.p("x")) + i32(3))
    s.step("m: setData n (w's data watch fires)")
    m.call(SET, set_data_body(s.p("n"), b"1"))
    s.step("w: getData n after the remote write (notification comes first)")
    w.call(GET, path_watch(s.p("n")))
    s.step("m: create new (exists watch fires NodeCreated)")
    m.call(CREATE, create_body(s.p("new")))
    s.step("w: ping barrier 1")
    w.ping()
    s.step("m: create n/c (child watch fires)")
    m.call(CREATE, create_body(s.p("n", "c")))
    s.step("w: ping barrier 2")
    w.ping()
    s.step("m: setData n again (no watch left)")
    m.call(SET, set_data_body(s.p("n"), b"2"))
    s.step("w: ping barrier 3")
    w.ping()
    s.step("w: own-connection ordering: getData x watch then setData x")
    w.call(GET, path_watch(s.p("x"), True))
    w.call(SET, set_data_body(s.p("x"), b"1"))
    s.step("w: exists x watch, getChildren x watch, then m deletes x")
    w.call(EXISTS, path_watch(s.p("x"), True))
    w.call(CHILDREN, path_watch(s.p("x"), True))
    m.call(DELETE, path_version(s.p("x")))
    w.ping()
    s.step("w: getChildren root watch, getData y watch; m deletes y (parent and node fire)")
    w.call(CHILDREN, path_watch(s.root, True))
    w.call(GET, path_watch(s.p("y"), True))
    m.call(DELETE, path_version(s.p("y")))
    w.ping()
    s.step("w: removeWatches: data watch on n")
    w.call(GET, path_watch(s.p("n"), True))
    w.call(REMOVEW, ustr(s.p("n")) + i32(2))
    s.step("w: removeWatches: none left (NoWatcher)")
    w.call(REMOVEW, ustr(s.p("n")) + i32(2))
    s.step("w: removeWatches any on a missing path")
    w.call(REMOVEW, ustr(s.p("missing")) + i32(3))
    s.step("w: checkWatches after remove")
    w.call(CHECKW, ustr(s.p("n")) + i32(2))
    s.step("m: setData n after removeWatches (nothing fires)")
    m.call(SET, set_data_body(s.p("n"), b"3"))
    w.ping()
    s.step("w: addWatch persistent(0) on p")
    w.call(ADDWATCH, ustr(s.p("p")) + i32(0))
    s.step("w: addWatch persistent recursive(1) on q")
    w.call(ADDWATCH, ustr(s.p("q")) + i32(1))
    s.step("w: addWatch persistent on a missing path")
    w.call(ADDWATCH, ustr(s.p("later")) + i32(0))
    s.step("w: addWatch bad mode 2")
    w.call(ADDWATCH, ustr(s.p("p")) + i32(2))
    w = s.ensure(w)
    s.step("w: checkWatches p any / data / children after addWatch")
    for typ in (3, 2, 1, 4, 5):
        w.call(CHECKW, ustr(s.p("p")) + i32(typ))
    s.step("w: checkWatches q (recursive) any / data / children / persistent / recursive")
    for typ in (3, 2, 1, 4, 5):
        w.call(CHECKW, ustr(s.p("q")) + i32(typ))
    for name, opcode, body in [
        ("m: setData p (persistent fires)", SET, set_data_body(s.p("p"), b"1")),
        ("m: setData p again (still fires)", SET, set_data_body(s.p("p"), b"2")),
        ("m: create p/c (NodeChildrenChanged)", CREATE, create_body(s.p("p", "c"))),
        ("m: setData p/c (nothing: not recursive)", SET, set_data_body(s.p("p", "c"), b"1")),
        ("m: delete p/c", DELETE, path_version(s.p("p", "c"))),
        ("m: create later (persistent on a missing path)", CREATE, create_body(s.p("later"))),
        ("m: create q/a (recursive: NodeCreated)", CREATE, create_body(s.p("q", "a"))),
        ("m: setData q/a", SET, set_data_body(s.p("q", "a"), b"1")),
        ("m: create q/a/b", CREATE, create_body(s.p("q", "a", "b"))),
        ("m: delete q/a/b", DELETE, path_version(s.p("q", "a", "b"))),
        ("m: setData q", SET, set_data_body(s.p("q"), b"1")),
        ("m: multi on q/a and p", MULTI, multi_body([(SET, set_data_body(s.p("q", "a"), b"2")),
                                                     (SET, set_data_body(s.p("p"), b"3"))])),
    ]:
        s.step(name)
        m.call(opcode, body)
        w.ping()
    s.step("w: own write under a recursive watch (notification before reply)")
    w.call(SET, set_data_body(s.p("q", "a"), b"3"))
    s.step("w: removeWatches persistent p with type any(3)")
    w.call(REMOVEW, ustr(s.p("p")) + i32(3))
    s.step("w: removeWatches recursive q with type data(2)")
    w.call(REMOVEW, ustr(s.p("q")) + i32(2))
    s.step("m: setData p and q/a after the removals")
    m.call(SET, set_data_body(s.p("p"), b"4"))
    m.call(SET, set_data_body(s.p("q", "a"), b"4"))
    w.ping()
    s.step("m: delete later (persistent watch on a deleted node)")
    m.call(DELETE, path_version(s.p("later")))
    w.ping()
    for node, mode, typ, label in [("p2", 0, 4, "persistent(4)"), ("q2", 1, 5, "recursive(5)"),
                                   ("p3", 0, 1, "children(1)"), ("q3", 1, 4, "persistent(4)")]:
        s.step(f"w: addWatch mode {mode} on {node}, removeWatches type {label}")
        w.call(ADDWATCH, ustr(s.p(node)) + i32(mode))
        w.call(REMOVEW, ustr(s.p(node)) + i32(typ))
        s.step(f"m: setData {node} after removeWatches type {label}")
        m.call(SET, set_data_body(s.p(node), b"1"))
        w.ping()
    s.step("closeSession w and m")
    s.close_session(w)
    s.close_session(m)


def _set_watches_variant(s: Script, tag: str, v2: bool, xid: int | None) -> None:
    base = s.p(tag)
    s.step(f"{tag}: m connects and creates c, u, d, cp, pp, rp")
    m = s.connect(f"m-{tag}")
    m.call(CREATE, create_body(base))
    for x in ("c", "u", "d", "cp", "cu", "pp", "rp"):
        m.call(CREATE, create_body(f"{base}/{x}", b"0"))
    zxid0 = m.last_zxid
    s.step(f"{tag}: m changes c, creates n, adds a child to cp, deletes d, touches pp and rp/k")
    m.call(SET, set_data_body(f"{base}/c", b"1"))
    m.call(CREATE, create_body(f"{base}/n"))
    m.call(CREATE, create_body(f"{base}/cp/x"))
    m.call(DELETE, path_version(f"{base}/d"))
    m.call(SET, set_data_body(f"{base}/pp", b"1"))
    m.call(CREATE, create_body(f"{base}/rp/k"))
    s.step(f"{tag}: w connects (lastZxidSeen = now)")
    w = s.connect(f"w-{tag}", last_zxid=m.last_zxid)
    s.step(f"{tag}: w sends {'setWatches2' if v2 else 'setWatches'} relative to before the changes")
    data = [f"{base}/c", f"{base}/u", f"{base}/d"]
    exist = [f"{base}/n", f"{base}/missing"]
    child = [f"{base}/cp", f"{base}/cu"]
    if v2:
        body = set_watches2_body(zxid0, data, exist, child, [f"{base}/pp"], [f"{base}/rp"])
        w.call(SETW2, body, xid=xid)
    else:
        w.call(SETW, set_watches_body(zxid0, data, exist, child), xid=xid)
    s.step(f"{tag}: w ping after setWatches")
    w.ping()
    s.step(f"{tag}: m changes the watched-but-unchanged nodes")
    m.call(SET, set_data_body(f"{base}/u", b"1"))
    m.call(CREATE, create_body(f"{base}/cu/x"))
    m.call(CREATE, create_body(f"{base}/missing"))
    m.call(SET, set_data_body(f"{base}/c", b"2"))
    m.call(SET, set_data_body(f"{base}/pp", b"2"))
    m.call(SET, set_data_body(f"{base}/rp/k", b"1"))
    s.step(f"{tag}: w ping after the second round")
    w.ping()
    s.step(f"{tag}: w setWatches relative to now (nothing fires at once)")
    w.call(SETW2 if v2 else SETW,
           (set_watches2_body(m.last_zxid, [f"{base}/u"], [f"{base}/n2"], [f"{base}/cu"],
                              [f"{base}/pp"], [f"{base}/rp"]) if v2
            else set_watches_body(m.last_zxid, [f"{base}/u"], [f"{base}/n2"], [f"{base}/cu"])),
           xid=xid)
    w.ping()
    s.step(f"{tag}: m triggers them")
    m.call(SET, set_data_body(f"{base}/u", b"2"))
    m.call(CREATE, create_body(f"{base}/n2"))
    m.call(CREATE, create_body(f"{base}/cu/y"))
    w.ping()
    s.step(f"{tag}: closeSession w and m")
    s.close_session(w)
    s.close_session(m)


def sc_set_watches(s: Script) -> None:
    s.step("connect r")
    r = s.connect("r")
    s.step("create root")
    r.call(CREATE, create_body(s.root))
    s.step("close r")
    s.close_session(r)
    _set_watches_variant(s, "sw1-xid-8", False, XID_SET_WATCHES)
    _set_watches_variant(s, "sw1-xid-ordinary", False, None)
    _set_watches_variant(s, "sw2-xid-8", True, XID_SET_WATCHES)
    _set_watches_variant(s, "sw2-xid-ordinary", True, None)


def sc_misc(s: Script) -> None:
    s.step("connect")
    c = s.connect("c")
    s.step("create root and an ephemeral")
    c.call(CREATE, create_body(s.root))
    c.call(CREATE, create_body(s.p("e"), flags=1))
    for name, opcode, body, xid in [
        ("ping (xid -2)", OP["ping"], b"", -2),
        ("ping with an ordinary xid", OP["ping"], b"", None),
        ("sync root", SYNC, ustr(s.root), None),
        ("whoAmI", WHOAMI, b"", None),
        ("getEphemerals root", EPHEMERALS, ustr(s.root), None),
        ("reconfig (disabled)", RECONFIG, reconfig_body(None, None, "server.1=127.0.0.1:1:2", -1), None),
        ("reconfig empty", RECONFIG, reconfig_body(), None),
        ("setData root (a write after the reconfigs)", SET, set_data_body(s.root, b"r"), None),
        ("checkWatches with nothing watched", CHECKW, ustr(s.root) + i32(3), None),
        ("removeWatches with nothing watched", REMOVEW, ustr(s.root) + i32(3), None),
        ("checkWatches bad type 9", CHECKW, ustr(s.root) + i32(9), None),
        ("getData with xid 0", GET, path_watch(s.root), 0),
        ("getData with a large xid", GET, path_watch(s.root), 0x7FFFFFF0),
        ("getData with a negative xid -77", GET, path_watch(s.root), -77),
    ]:
        s.step(name)
        c.call(opcode, body, xid=xid)
    s.step("closeSession c")
    s.close_session(c)
    # Requests ZooKeeper may answer by closing the connection: one session each, ended.
    for i, (name, opcode, body, xid) in enumerate([
        ("sasl (no SASL configured)", SASL, buf(b"token"), None),
        ("deleteContainer (20) sent by a client", DELCONTAINER, ustr(s.root), None),
        ("unknown opcode 99", 99, b"", None),
        ("unknown opcode 200 with a body", 200, ustr(s.root), None),
        ("notification opcode 0 as a request", 0, b"", None),
        ("createSession opcode -10 after the handshake", -10, b"", None),
        ("error opcode -1 as a request", -1, b"", None),
        ("setData with a truncated body", SET, ustr(s.root)[:6], None),
        ("auth with xid -4 and an empty scheme", AUTH, auth_body("", b""), XID_AUTH),
    ]):
        one_request_alone(s, name, f"k{i}", opcode, body, xid)


def sc_pipeline(s: Script) -> None:
    s.step("connect p and o")
    p = s.connect("p")
    o = s.connect("o")
    s.step("p: create root")
    p.call(CREATE, create_body(s.root))
    s.step("o: getData-watch a missing node and exists-watch a")
    o.call(EXISTS, path_watch(s.p("a"), True))
    o.call(CHILDREN, path_watch(s.root, True))
    s.step("p: ten requests in one write, then read everything")
    reqs = [
        (CREATE, create_body(s.p("a"), b"1"), None),
        (GET, path_watch(s.p("a"), True), None),
        (EXISTS, path_watch(s.p("a"), True), None),
        (SET, set_data_body(s.p("a"), b"2"), None),
        (OP["ping"], b"", -2),
        (CHILDREN2, path_watch(s.root, True), None),
        (CREATE, create_body(s.p("b"), b"", flags=1), None),
        (SYNC, ustr(s.root), None),
        (MULTI, multi_body([(SET, set_data_body(s.p("a"), b"3")),
                            (DELETE, path_version(s.p("b")))]), None),
        (DELETE, path_version(s.p("a")), None),
        (EXISTS, path_watch(s.p("a")), None),
    ]
    data = b""
    for opcode, body, xid in reqs:
        if xid is None:
            xid = p.next_xid
            p.next_xid += 1
        p.pending.append((xid, opcode))
        payload = i32(xid) + i32(opcode) + body
        data += i32(len(payload)) + payload
    p.send_raw(data)
    p.collect(len(reqs))
    s.step("o: ping (its notifications first)")
    o.ping()
    s.step("closeSession p and o")
    s.close_session(p)
    s.close_session(o)


SCENARIOS: dict[str, Callable[[Script], None]] = {
    "session": sc_session,
    "create": sc_create,
    "data": sc_data,
    "acl": sc_acl,
    "bad_paths": sc_bad_paths,
    "multi": sc_multi,
    "watches": sc_watches,
    "set_watches": sc_set_watches,
    "misc": sc_misc,
    "pipeline": sc_pipeline,
}


# --------------------------------------------------------------------------------------
# running and comparing


def run_scenario(server, name: str, root: str, reference: bool, follower: bool = False) -> Recorder:
    rec = Recorder(server.name)
    s = Script(server, root, rec, follower)
    try:
        SCENARIOS[name](s)
    except Exception as e:
        if reference:
            raise
        rec.add("script", "script-error", note=f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        s.close_all()
    return rec


def reference_problems(rec: Recorder) -> list[str]:
    """The reference's frames must decode completely: otherwise a decoder is wrong."""
    out = []
    for e in rec.events:
        if e.kind != "frame":
            continue
        if e.ctx is None or e.ctx.kind in ("garbage", "unsolicited"):
            if e.ctx is not None and e.ctx.kind == "unsolicited" and len(e.raw) >= 8:
                continue  # a frame after the last request (e.g. on a socket being closed)
            out.append(f"{e.step}: {e.conn}: undecodable frame {e.raw.hex()}")
            continue
        fields, err = decode_frame(e.raw, e.ctx)
        if err or any(f.kind == "trailing" for f in fields):
            out.append(f"{e.step}: {e.conn}: {e.ctx.label()}: {err or 'trailing bytes'}: "
                       f"{e.raw.hex()}")
    return out


def transcript(rec: Recorder) -> str:
    lines = []
    for n in normalise_events(rec.events):
        e = n.event
        if e.kind == "frame":
            lines.append(f"[{e.step}] {e.conn} {e.ctx.label() if e.ctx else '?'} "
                         f"len {len(e.raw)}: {e.raw.hex(' ')}")
            lines.append("    " + ", ".join(f"{f.name}={d}" for f, d in n.shown
                                            if f.name != "frame.len"))
        else:
            lines.append(f"[{e.step}] {e.conn} {e.kind} {e.note}".rstrip())
    return "\n".join(lines) + "\n"


FULL_STEPS = int(os.environ.get("WIRE_FULL_STEPS", "30"))


def _summary(d) -> str:
    """One line for a differing step: per differing pair, the fields whose normalised
    bytes differ (ref -> target), or what is missing on one side."""
    parts = []
    for a, b in d.bad_pairs():
        if a is None or b is None:
            n = a or b
            side = "only on the reference" if b is None else "only on the target"
            parts.append(f"{n.event.conn} {n.event.kind}"
                         f"{' [' + n.event.ctx.label() + ']' if n.event.ctx else ''} {side}")
            continue
        fa = {f.name: (f, s) for f, s in a.shown}
        fb = {f.name: (f, s) for f, s in b.shown}
        diff = []
        for k in list(fa) + [k for k in fb if k not in fa]:
            x, y = fa.get(k), fb.get(k)
            xn = a.norm[x[0].start:x[0].end] if x else None
            yn = b.norm[y[0].start:y[0].end] if y else None
            if xn != yn and k != "frame.len":
                diff.append(f"{k} {x[1] if x else '(absent)'} -> {y[1] if y else '(absent)'}")
        if not diff:
            diff.append(f"{a.event.kind} vs {b.event.kind}")
        parts.append(f"{a.event.conn}: " + "; ".join(diff))
    return " | ".join(parts)


def _explained(step: str, a: Event | None, b: Event | None) -> bool:
    return any(d.applies(step, a, b) for d in EXPECTED_DIFFERENCES)


def diff_report(ref_rec: Recorder, tgt_rec: Recorder, ref_name: str, tgt_name: str) -> str:
    diffs = compare(ref_rec.events, tgt_rec.events)
    out: list[str] = []
    brief: list[str] = []
    shown = 0
    for d in diffs:
        if all(_explained(d.step, a.event if a else None, b.event if b else None)
               for a, b in d.bad_pairs()):
            continue
        if shown < FULL_STEPS:
            out.append(d.render(ref_name, tgt_name))
        else:
            brief.append(f"  step {d.step!r}: {_summary(d)}")
        shown += 1
    if brief:
        out.append(f"  ... {len(brief)} more differing steps, one line each (WIRE_FULL_STEPS=N "
                   f"prints more in full; WIRE_DUMP=dir writes both transcripts):\n"
                   + "\n".join(brief))
    for e in tgt_rec.events:
        if e.kind == "script-error":
            out.append(f"  the scenario script failed on {tgt_name} in step {e.step!r}:\n{e.note}")
    return "\n\n".join(out)


def check_scenario(scenario: str, ref, tgt, root: str, follower: bool = False) -> None:
    ref_rec = run_scenario(ref, scenario, root, reference=True, follower=follower)
    problems = reference_problems(ref_rec)
    assert not problems, "decoders do not fit the reference's frames:\n" + "\n".join(problems)
    tgt_rec = run_scenario(tgt, scenario, root, reference=False, follower=follower)
    tag = ".follower" if follower else ""
    dump = os.environ.get("WIRE_DUMP")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        Path(dump, f"{scenario}{tag}.ref.txt").write_text(transcript(ref_rec))
        Path(dump, f"{scenario}{tag}.target.txt").write_text(transcript(tgt_rec))
    report = diff_report(ref_rec, tgt_rec, f"REFERENCE {ref.name}", f"TARGET {tgt.name}")
    if report:
        pytest.fail(f"scenario {scenario!r}: {tgt.name} differs from ZooKeeper 3.8 on the wire "
                    f"(root {root}):\n{report}", pytrace=False)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_wire_bytes(scenario, ref, tgt):
    check_scenario(scenario, ref, tgt, f"/wire-{scenario}-{RUN_ID}")


# --------------------------------------------------------------------------------------
# the same scenarios on a follower of a 3-server ensemble: writes are forwarded to the
# leader and answered from the committed transaction, sessions are created through the
# leader, sync waits for the leader; the reply bytes must not change.


def _follower_of(system: str, tmp_path_factory, cfg: dict, jvm: dict | None):
    from ensemble import Ensemble

    ens = Ensemble(system, tmp_path_factory.mktemp(f"wire-ens-{system}"), participants=3,
                   extra_cfg=cfg, jvm_props=jvm, name=f"wire-ens-{system}")
    try:
        leader = ens.start()
    except Exception:
        ens.close()
        raise
    return ens, ens[ens.followers(leader)[0]]


@pytest.fixture(scope="module")
def ref_follower(tmp_path_factory):
    ens, member = _follower_of("zookeeper", tmp_path_factory, {}, ZK_JVM_PROPS)
    yield member
    ens.close()


@pytest.fixture(scope="module")
def tgt_follower(tmp_path_factory):
    if target_kind() == "zookeeper":
        ens, member = _follower_of("zookeeper", tmp_path_factory, {}, ZK_JVM_PROPS)
    else:
        ens, member = _follower_of("warren", tmp_path_factory, WARREN_CFG, None)
    yield member
    ens.close()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_wire_bytes_on_a_follower(scenario, ref_follower, tgt_follower):
    check_scenario(scenario, ref_follower, tgt_follower, f"/wire-f-{scenario}-{RUN_ID}", follower=True)


# --------------------------------------------------------------------------------------
# the normalisation itself: generous enough for two ZooKeepers, strict about real fields


def _mutate(events: list[Event], pick: Callable[[Event, list], bytes | None]) -> list[Event]:
    out = []
    for e in events:
        if e.kind == "frame" and e.ctx is not None:
            fields, _ = decode_frame(e.raw, e.ctx)
            new = pick(e, fields)
            if new is not None:
                e = Event(e.step, e.conn, e.kind, new, e.ctx, e.note)
        out.append(e)
    return out


def _set(raw: bytes, f, value: bytes) -> bytes:
    return raw[:f.start] + value + raw[f.end:]


def test_normaliser_is_strict_enough(ref):
    """Replays recorded ZooKeeper runs against altered copies of themselves: consistent
    renumbering of zxids, other times, other session ids and passwords, and children in
    another order must compare equal; any change to a real field, a missing or extra body,
    a changed xid, a zxid reused out of order, a dropped or reordered notification, another
    session as an ephemeral's owner must not."""
    runs = {name: run_scenario(ref, name, f"/wire-normcheck-{name}-{RUN_ID}",
                               reference=True).events
            for name in ("data", "watches", "session")}

    def renumber(e, fields):
        raw = e.raw
        for f in fields:
            if f.kind == "zxid" and f.value not in (0, -1):
                raw = _set(raw, f, i64(f.value + (7 << 32)))
            elif f.kind == "time" and f.value:
                raw = _set(raw, f, i64(f.value + 12345))
            elif f.kind == "session" and f.value and f.value >> 56 == 0x01:
                raw = _set(raw, f, i64(f.value ^ 0x00AB_0000_0000_0000))
            elif f.kind == "passwd" and f.value and any(f.value):
                raw = _set(raw, f, i32(len(f.value)) + bytes(255 - x for x in f.value))
            elif f.kind == "strset" and len(f.value) > 1:
                raw = _set(raw, f, b"".join(reversed(f.value)))
        return raw

    for name, base in runs.items():
        diffs = compare(base, _mutate(base, renumber))
        assert diffs == [], f"{name}: consistent renumbering compared unequal:\n" + "\n".join(
            d.render("original", "renumbered") for d in diffs)

    def first(pred):
        state = {"done": False}

        def pick(e, fields):
            if state["done"]:
                return None
            r = pred(e, fields)
            if r is not None:
                state["done"] = True
            return r
        return pick

    def field_edit(name, fn, when=lambda e: True):
        def pred(e, fields):
            if not when(e):
                return None
            for f in fields:
                if f.name == name:
                    return _set(e.raw, f, fn(f))
        return pred

    def reply_to(opcode):
        return lambda e: e.ctx.kind == "reply" and e.ctx.opcode == opcode

    sessions = [f.value for e in runs["session"] if e.kind == "frame" and e.ctx.kind == "connect"
                for f in decode_frame(e.raw, e.ctx)[0] if f.name == "sessionId" and f.value]

    def other_owner(f):
        return i64(next(s for s in sessions if s != f.value))

    mutations = [
        ("data", "Stat.version", field_edit("stat.version", lambda f: i32(f.value + 1))),
        ("data", "Stat.numChildren", field_edit("stat.numChildren", lambda f: i32(f.value + 1))),
        ("data", "Stat.dataLength", field_edit("stat.dataLength", lambda f: i32(f.value + 1))),
        ("data", "trailing bytes after a delete reply",
         lambda e, fields: (i32(len(e.raw)) + e.raw[4:] + i32(0)) if reply_to(DELETE)(e) else None),
        ("data", "xid", lambda e, fields: (e.raw[:4] + i32(-8) + e.raw[8:])
         if reply_to(SET)(e) else None),
        ("data", "err", field_edit("hdr.err", lambda f: i32(-101), reply_to(DELETE))),
        ("data", "missing sync body",
         lambda e, fields: (i32(16) + e.raw[4:20]) if reply_to(SYNC)(e) else None),
        ("data", "stale zxid on a create", field_edit(
            "hdr.zxid", lambda f: i64(f.value - 1),
            lambda e: reply_to(CREATE)(e) and e.step == "create n/c2")),
        ("data", "data byte", field_edit("data", lambda f: i32(len(f.value)) + b"X" * len(f.value),
                                         lambda e: reply_to(GET)(e) and e.step == "getData n")),
        ("watches", "event type", field_edit("event.type", lambda f: i32(f.value ^ 1))),
        ("watches", "event path", field_edit(
            "event.path", lambda f: i32(len(f.value.encode())) + f.value.encode()[:-1] + b"Z")),
        ("watches", "a child's name", field_edit(
            "children", lambda f: b"".join(f.value[:-1]) + f.value[-1][:-1] + b"Z",
            lambda e: reply_to(CHILDREN)(e) and e.step.startswith("w: getChildren root"))),
        ("watches", "addWatch ErrorResponse", field_edit(
            "ErrorResponse.err", lambda f: i32(-1), reply_to(ADDWATCH))),
        ("session", "another session as ephemeralOwner", field_edit(
            "stat.ephemeralOwner", other_owner, lambda e: e.step.startswith("a2: exists"))),
        ("session", "ConnectResponse timeOut", field_edit("timeOut", lambda f: i32(f.value + 1))),
    ]
    for scenario, label, pred in mutations:
        base = runs[scenario]
        mutated = _mutate(base, first(pred))
        assert mutated != base, f"mutation {label!r} found nothing to change"
        assert compare(base, mutated), f"a changed {label} compared equal after normalisation"

    # dropped and reordered notifications
    base = runs["watches"]
    notes = [i for i, e in enumerate(base) if e.kind == "frame" and e.ctx.kind == "notification"]
    dropped = base[:notes[0]] + base[notes[0] + 1:]
    assert compare(base, dropped), "a dropped notification compared equal"
    pair = next(i for i in notes if i + 1 in notes)
    swapped = base[:pair] + [base[pair + 1], base[pair]] + base[pair + 2:]
    assert compare(base, swapped), "two notifications in another order compared equal"
