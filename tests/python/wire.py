"""Raw ZooKeeper wire protocol for byte-level tests (plain sockets and struct, no kazoo).

Three parts:

* encoders for request bodies (jute: big-endian ints, ``ustring`` = int length + UTF-8 or -1
  for null, ``buffer`` = int length + bytes or -1, ``vector`` = int count + items);
* ``Conn``: one TCP connection that performs the ConnectRequest handshake itself, sends
  hand-built request frames (4-byte big-endian length + RequestHeader{xid, type} + body) and
  reads reply frames raw, recording every frame, EOF and timeout into a ``Recorder``;
* decoders: ``decode_frame(raw, ctx)`` walks a recorded frame (length prefix included) with
  the layout of the reply it answers and returns its ``Field`` list (name, byte span, kind,
  value); ``compare`` (through ``Joint``) rewrites, in place, only the fields that
  legitimately differ between two servers (kinds ``zxid``, ``time``, ``session``,
  ``passwd``, ``strset``) and leaves every other byte as sent; ``Normaliser`` does the same
  for one server's transcript. Bytes a decoder could not account for become one
  ``trailing`` field, compared raw.

The layouts follow apache/zookeeper's zookeeper.jute (3.8) and MultiResponse.java.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------
# constants (ZooDefs.OpCode, special xids, KeeperException.Code)

OP = {
    "notification": 0, "create": 1, "delete": 2, "exists": 3, "getData": 4, "setData": 5,
    "getACL": 6, "setACL": 7, "getChildren": 8, "sync": 9, "ping": 11, "getChildren2": 12,
    "check": 13, "multi": 14, "create2": 15, "reconfig": 16, "checkWatches": 17,
    "removeWatches": 18, "createContainer": 19, "deleteContainer": 20, "createTTL": 21,
    "multiRead": 22, "auth": 100, "setWatches": 101, "sasl": 102, "getEphemerals": 103,
    "getAllChildrenNumber": 104, "setWatches2": 105, "addWatch": 106, "whoAmI": 107,
    "createSession": -10, "closeSession": -11, "error": -1,
}
OP_NAME = {v: k for k, v in OP.items()}

XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

ERR = {
    0: "Ok", -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented", -7: "OperationTimeout",
    -8: "BadArguments", -12: "UnknownSession", -13: "NewConfigNoQuorum",
    -14: "ReconfigInProgress", -100: "APIError", -101: "NoNode", -102: "NoAuth",
    -103: "BadVersion", -108: "NoChildrenForEphemerals", -110: "NodeExists", -111: "NotEmpty",
    -112: "SessionExpired", -113: "InvalidCallback", -114: "InvalidACL", -115: "AuthFailed",
    -118: "SessionMoved", -119: "NotReadOnly", -120: "EphemeralOnLocalSession",
    -121: "NoWatcher", -122: "RequestTimeout", -123: "ReconfigDisabled", -125: "QuotaExceeded",
    -127: "ThrottledOp",
}

EVENT = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
         4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
         7: "PersistentWatchRemoved"}
STATE = {0: "Disconnected", 3: "SyncConnected", 4: "AuthFailed", 5: "ConnectedReadOnly",
         7: "Closed", -112: "Expired"}

PERM_ALL = 31
WORLD_ANYONE = (PERM_ALL, "world", "anyone")
OPEN_ACL = [WORLD_ANYONE]

# --------------------------------------------------------------------------------------
# encoders


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def ustr(s: str | bytes | None) -> bytes:
    """jute ustring; bytes are sent as given (to send invalid UTF-8), None as length -1."""
    if s is None:
        return i32(-1)
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return i32(len(b)) + b


def buf(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def vec(items, enc) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def acl(entry) -> bytes:
    perms, scheme, ident = entry
    return i32(perms) + ustr(scheme) + ustr(ident)


def acls(entries) -> bytes:
    return vec(entries, acl)


def create_body(path, data=b"", acl_list=OPEN_ACL, flags=0) -> bytes:
    return ustr(path) + buf(data) + acls(acl_list) + i32(flags)


def create_ttl_body(path, data=b"", acl_list=OPEN_ACL, flags=5, ttl=3_600_000) -> bytes:
    return create_body(path, data, acl_list, flags) + i64(ttl)


def path_watch(path, watch=False) -> bytes:
    return ustr(path) + boolean(watch)


def path_version(path, version=-1) -> bytes:
    return ustr(path) + i32(version)


def set_data_body(path, data, version=-1) -> bytes:
    return ustr(path) + buf(data) + i32(version)


def set_acl_body(path, acl_list, version=-1) -> bytes:
    return ustr(path) + acls(acl_list) + i32(version)


def auth_body(scheme, auth: bytes, type_=0) -> bytes:
    return i32(type_) + ustr(scheme) + buf(auth)


def set_watches_body(rel_zxid, data=(), exist=(), child=()) -> bytes:
    return i64(rel_zxid) + vec(list(data), ustr) + vec(list(exist), ustr) + vec(list(child), ustr)


def set_watches2_body(rel_zxid, data=(), exist=(), child=(), persistent=(), recursive=()) -> bytes:
    return (set_watches_body(rel_zxid, data, exist, child)
            + vec(list(persistent), ustr) + vec(list(recursive), ustr))


def multi_body(ops) -> bytes:
    """ops: list of (opcode, body bytes). MultiHeader{type, done=false, err=-1} + body each,
    then MultiHeader{-1, true, -1}."""
    out = b""
    for opcode, body in ops:
        out += i32(opcode) + boolean(False) + i32(-1) + body
    return out + i32(-1) + boolean(True) + i32(-1)


def reconfig_body(joining=None, leaving=None, new_members=None, cur_config=-1) -> bytes:
    return ustr(joining) + ustr(leaving) + ustr(new_members) + i64(cur_config)


def connect_body(protocol_version=0, last_zxid=0, timeout=30000, session_id=0,
                 passwd=b"\x00" * 16, read_only: bool | None = False) -> bytes:
    body = i32(protocol_version) + i64(last_zxid) + i32(timeout) + i64(session_id) + buf(passwd)
    if read_only is not None:
        body += boolean(read_only)
    return body


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


# --------------------------------------------------------------------------------------
# decoding


class DecodeError(Exception):
    pass


@dataclass
class Field:
    name: str
    start: int
    end: int
    kind: str  # int long bool ustr buf zxid time session passwd trailing
    value: Any

    def show(self) -> str:
        v = self.value
        if self.kind in ("zxid", "session", "long") and isinstance(v, int):
            return f"0x{v & 0xFFFFFFFFFFFFFFFF:x}"
        if self.kind == "time":
            return str(v)
        if self.kind in ("buf", "passwd", "trailing") and isinstance(v, (bytes, bytearray)):
            return "null" if v is None else (v.hex() if len(v) <= 24 else v[:24].hex() + "…")
        if self.name.endswith("err") and isinstance(v, int):
            return f"{v} ({ERR.get(v, '?')})"
        if self.name.endswith("event.type") and isinstance(v, int):
            return f"{v} ({EVENT.get(v, '?')})"
        if self.name.endswith("event.state") and isinstance(v, int):
            return f"{v} ({STATE.get(v, '?')})"
        if self.name.endswith(".type") and isinstance(v, int):
            return f"{v} ({OP_NAME.get(v, '?')})"
        return repr(v)


class Reader:
    def __init__(self, raw: bytes, pos: int = 0):
        self.raw = raw
        self.pos = pos
        self.fields: list[Field] = []

    def remaining(self) -> int:
        return len(self.raw) - self.pos

    def _take(self, n: int, name: str) -> bytes:
        if n < 0 or self.pos + n > len(self.raw):
            raise DecodeError(f"{name}: need {n} bytes at offset {self.pos}, "
                              f"frame has {len(self.raw)}")
        b = self.raw[self.pos:self.pos + n]
        self.pos += n
        return b

    def _add(self, name, start, kind, value):
        self.fields.append(Field(name, start, self.pos, kind, value))
        return value

    def int(self, name, kind="int"):
        s = self.pos
        return self._add(name, s, kind, struct.unpack(">i", self._take(4, name))[0])

    def long(self, name, kind="long"):
        s = self.pos
        return self._add(name, s, kind, struct.unpack(">q", self._take(8, name))[0])

    def bool(self, name):
        s = self.pos
        return self._add(name, s, "bool", self._take(1, name)[0])

    def _len(self, name) -> int:
        n = struct.unpack(">i", self._take(4, name + ".len"))[0]
        if n > self.remaining():
            raise DecodeError(f"{name}: length {n} exceeds the {self.remaining()} bytes left")
        return n

    def ustr(self, name):
        s = self.pos
        n = self._len(name)
        if n < 0:
            return self._add(name, s, "ustr", None)
        b = self._take(n, name)
        return self._add(name, s, "ustr", b.decode("utf-8", errors="backslashreplace"))

    def buf(self, name, kind="buf"):
        s = self.pos
        n = self._len(name)
        if n < 0:
            return self._add(name, s, kind, None)
        return self._add(name, s, kind, self._take(n, name))

    def vec(self, name, item):
        s = self.pos
        n = self._len(name)
        self._add(name + ".count", s, "int", n)
        out = []
        for i in range(max(n, 0)):
            out.append(item(f"{name}[{i}]"))
        return out

    def strset(self, name, item=None):
        """A vector whose order ZooKeeper does not define (it iterates a HashSet): the count
        is one field, the items together one 'strset' field (raw item encodings), compared
        as a sorted list."""
        item = item or self.ustr
        s = self.pos
        n = self._len(name)
        self._add(name + ".count", s, "int", n)
        s = self.pos
        items = []
        for i in range(max(n, 0)):
            a = self.pos
            before = len(self.fields)
            item(f"{name}[{i}]")
            del self.fields[before:]
            items.append(self.raw[a:self.pos])
        return self._add(name, s, "strset", items)

    def stat(self, name="stat"):
        self.long(f"{name}.czxid", "zxid")
        self.long(f"{name}.mzxid", "zxid")
        self.long(f"{name}.ctime", "time")
        self.long(f"{name}.mtime", "time")
        self.int(f"{name}.version")
        self.int(f"{name}.cversion")
        self.int(f"{name}.aversion")
        self.long(f"{name}.ephemeralOwner", "session")
        self.int(f"{name}.dataLength")
        self.int(f"{name}.numChildren")
        self.long(f"{name}.pzxid", "zxid")

    def acl(self, name):
        self.int(f"{name}.perms")
        self.ustr(f"{name}.scheme")
        self.ustr(f"{name}.id")

    def client_info(self, name):
        self.ustr(f"{name}.authScheme")
        self.ustr(f"{name}.user")


def _decode_body(r: Reader, opcode: int, prefix: str = "") -> None:
    """Reads the success (err == 0) body of a reply to `opcode`.

    Every reply starts with ReplyHeader{xid int, zxid long*, err int}; after it, when err is
    0 (fields marked * are normalised, everything else is compared raw):

      create(1)                      CreateResponse{path}
      create2(15), createContainer(19), createTTL(21)
                                     Create2Response{path, Stat}
      exists(3), setData(5), setACL(7)  Stat
      getData(4)                     GetDataResponse{data buffer, Stat}
      getACL(6)                      GetACLResponse{vector<ACL{perms, scheme, id}>, Stat}
      getChildren(8), getEphemerals(103)  vector<ustring> (order-free: compared sorted)
      getChildren2(12)               vector<ustring> (sorted), Stat
      sync(9)                        SyncResponse{path}
      getAllChildrenNumber(104)      int totalNumber
      addWatch(106)                  ErrorResponse{err int}
      sasl(102)                      SetSASLResponse{token buffer}
      whoAmI(107)                    vector<ClientInfo{authScheme, user}> (order-free:
                                     ZooKeeper's authInfo is a set; compared sorted)
      reconfig(16)                   GetDataResponse (only on success)
      multi(14), multiRead(22)       MultiResponse: per op MultiHeader{type, done=false, err}
                                     + that op's body (ErrorResponse{err} for type -1), then
                                     MultiHeader{-1, true, -1}
      delete(2), check(13), ping(11), checkWatches(17), removeWatches(18),
      deleteContainer(20), auth(100), setWatches(101), setWatches2(105),
      closeSession(-11)              nothing
      notification (xid -1)          WatcherEvent{type, state, path}; its zxid is -1 in 3.8
      ConnectResponse                protocolVersion, timeOut, sessionId*, passwd buffer*
                                     (16 bytes), then readOnly byte when the request had one
      Stat                           czxid*, mzxid*, ctime*, mtime*, version, cversion,
                                     aversion, ephemeralOwner* (session ids only), dataLength,
                                     numChildren, pzxid*
    """
    p = prefix
    if opcode == OP["create"]:
        r.ustr(p + "path")
    elif opcode in (OP["create2"], OP["createContainer"], OP["createTTL"]):
        r.ustr(p + "path")
        r.stat(p + "stat")
    elif opcode == OP["exists"] or opcode == OP["setData"] or opcode == OP["setACL"]:
        r.stat(p + "stat")
    elif opcode == OP["getData"] or opcode == OP["reconfig"]:
        r.buf(p + "data")
        r.stat(p + "stat")
    elif opcode == OP["getACL"]:
        r.vec(p + "acl", r.acl)
        r.stat(p + "stat")
    elif opcode in (OP["getChildren"], OP["getEphemerals"]):
        r.strset(p + "children")
    elif opcode == OP["getChildren2"]:
        r.strset(p + "children")
        r.stat(p + "stat")
    elif opcode == OP["sync"]:
        r.ustr(p + "path")
    elif opcode == OP["getAllChildrenNumber"]:
        r.int(p + "totalNumber")
    elif opcode == OP["addWatch"]:
        r.int(p + "ErrorResponse.err")
    elif opcode == OP["sasl"]:
        r.buf(p + "token")
    elif opcode == OP["whoAmI"]:
        r.strset(p + "clientInfo", r.client_info)
    elif opcode in (OP["multi"], OP["multiRead"]):
        _decode_multi(r, p)
    # delete, check, ping, checkWatches, removeWatches, deleteContainer, auth, setWatches,
    # setWatches2, closeSession: no body


def _decode_multi(r: Reader, p: str) -> None:
    i = 0
    while True:
        h = f"{p}result[{i}]"
        typ = r.int(h + ".type")
        done = r.bool(h + ".done")
        r.int(h + ".err")
        if done:
            return
        if typ == OP["error"]:
            r.int(h + ".ErrorResponse.err")
        elif typ in (OP["create"], OP["create2"], OP["createContainer"], OP["createTTL"],
                     OP["setData"], OP["getData"], OP["getChildren"]):
            _decode_body(r, typ, h + ".")
        elif typ in (OP["delete"], OP["check"]):
            pass
        else:
            raise DecodeError(f"{h}: type {typ} has no known MultiResponse body")
        i += 1
        if i > 10_000:
            raise DecodeError("runaway multi response")


@dataclass
class Ctx:
    """What a recorded frame answers: kind 'connect' (ConnectResponse), 'reply' (to opcode)
    or 'notification'."""
    kind: str
    opcode: int | None = None
    req_xid: int | None = None

    def label(self) -> str:
        if self.kind == "reply":
            return f"reply to {OP_NAME.get(self.opcode, self.opcode)}({self.opcode}) xid {self.req_xid}"
        return self.kind


def decode_frame(raw: bytes, ctx: Ctx) -> tuple[list[Field], str | None]:
    """Fields of a whole frame (length prefix included) and the decode error, if any. Bytes
    not accounted for end up in a final 'trailing' field."""
    r = Reader(raw)
    error = None
    try:
        r.int("frame.len")
        if ctx.kind == "connect":
            r.int("protocolVersion")
            r.int("timeOut")
            r.long("sessionId", "session")
            r.buf("passwd", "passwd")
            if r.remaining() >= 1:
                r.bool("readOnly")
        else:
            xid = r.int("hdr.xid")
            r.long("hdr.zxid", "zxid")
            err = r.int("hdr.err")
            if xid == XID_NOTIFICATION:
                r.int("event.type")
                r.int("event.state")
                r.ustr("event.path")
            elif err == 0 and ctx.opcode is not None:
                _decode_body(r, ctx.opcode)
            elif ctx.opcode is not None and r.remaining() > 0:
                # A body after an error (ZooKeeper sends one in a few cases, e.g. an empty
                # MultiResponse with MarshallingError): decoded when it fits the success
                # layout exactly, otherwise left as 'trailing'.
                sub = Reader(raw, r.pos)
                try:
                    _decode_body(sub, ctx.opcode, "errbody.")
                    if sub.remaining() == 0:
                        r.fields.extend(sub.fields)
                        r.pos = sub.pos
                except DecodeError:
                    pass
    except DecodeError as e:
        error = str(e)
    if r.pos < len(raw):
        r.fields.append(Field("trailing", r.pos, len(raw), "trailing", raw[r.pos:]))
    return r.fields, error


def _show_items(items: list[bytes]) -> str:
    """Raw encodings of ustrings (or records of ustrings) as readable text."""
    out = []
    for x in items:
        parts, pos = [], 0
        while pos + 4 <= len(x):
            n = struct.unpack(">i", x[pos:pos + 4])[0]
            if n < 0 or pos + 4 + n > len(x):
                break
            parts.append(x[pos + 4:pos + 4 + n].decode("utf-8", "backslashreplace"))
            pos += 4 + n
        out.append(":".join(parts) if pos == len(x) else x.hex())
    return repr(out)


def _normalise_unordered_or_secret(f: Field, out: bytearray) -> str | None:
    """Normalises a name list (sorted: ZooKeeper returns a HashSet's order) or a password
    (bytes hidden unless all zero) in `out`; returns what to display, None for no change."""
    if f.kind == "strset":
        out[f.start:f.end] = b"".join(sorted(f.value))
        disp = _show_items(f.value)
        return disp + " (sorted)" if list(f.value) != sorted(f.value) else disp
    if f.kind == "passwd" and f.value:
        if any(f.value):
            out[f.start + 4:f.end] = b"\xaa" * (f.end - f.start - 4)
            return f"<{len(f.value)} bytes> -> set"
        return f"<{len(f.value)} zero bytes>"
    return None


class Normaliser:
    """Per server and scenario: zxids -> rank of first appearance (0 and -1 kept), times ->
    0/1 flag, session ids -> label of first appearance in a ConnectResponse (0 and values
    that are no session's id, such as a container's or TTL node's ephemeralOwner, kept),
    passwords -> 0xAA bytes unless all zero."""

    def __init__(self):
        self.zxids: dict[int, int] = {}
        self.sessions: dict[int, int] = {}

    def zxid(self, v: int) -> int:
        if v in (0, -1):
            return v
        if v not in self.zxids:
            self.zxids[v] = len(self.zxids) + 1
        return self.zxids[v]

    def session(self, v: int, register: bool) -> int:
        if v == 0:
            return 0
        if register and v not in self.sessions:
            self.sessions[v] = len(self.sessions) + 1
        if v in self.sessions:
            return 0x5E55_0000_0000_0000 | self.sessions[v]
        return v

    def apply(self, raw: bytes, fields: list[Field]) -> tuple[bytes, list[tuple[Field, str]]]:
        """Normalised copy of raw, and each field with its normalised display value."""
        out = bytearray(raw)
        shown = []
        for f in fields:
            disp = f.show()
            if f.kind == "zxid":
                n = self.zxid(f.value)
                out[f.start:f.end] = i64(n)
                disp = f"{f.show()} -> z{n}" if n not in (0, -1) else f.show()
            elif f.kind == "time":
                n = 0 if f.value == 0 else 1
                out[f.start:f.end] = i64(n)
                disp = f"{f.value} -> {'set' if n else '0'}"
            elif f.kind == "session":
                n = self.session(f.value, register=(f.name == "sessionId"))
                out[f.start:f.end] = i64(n)
                if n != f.value:
                    disp = f"{f.show()} -> s{n & 0xFFFF}"
            elif f.kind in ("strset", "passwd"):
                disp = _normalise_unordered_or_secret(f, out) or disp
            shown.append((f, disp))
        return bytes(out), shown


# --------------------------------------------------------------------------------------
# connections and recording


@dataclass
class Event:
    step: str
    conn: str
    kind: str  # frame | eof | timeout | send-error | connect-error
    raw: bytes = b""
    ctx: Ctx | None = None
    note: str = ""


class Recorder:
    def __init__(self, name: str):
        self.name = name
        self.events: list[Event] = []
        self.step = "(start)"
        self.steps: list[str] = []

    def begin(self, step: str) -> None:
        if step in self.steps:
            raise ValueError(f"duplicate step name {step!r}")
        self.step = step
        self.steps.append(step)

    def add(self, conn: str, kind: str, raw: bytes = b"", ctx: Ctx | None = None, note: str = ""):
        self.events.append(Event(self.step, conn, kind, raw, ctx, note))


class Closed(Exception):
    pass


@dataclass
class Reply:
    xid: int
    zxid: int
    err: int
    fields: list[Field] = field(default_factory=list)

    def get(self, name):
        for f in self.fields:
            if f.name == name:
                return f.value
        raise KeyError(name)


class Conn:
    """One client connection. Every frame read is recorded; the reply to the oldest
    outstanding request is the next frame whose xid is not -1 (ZooKeeper answers in order),
    matched to a pending request with that xid when there is one."""

    READ_TIMEOUT = 5.0

    def __init__(self, rec: Recorder, name: str, host: str, port: int):
        self.rec = rec
        self.name = name
        self.sock = socket.create_connection((host, port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending: deque[tuple[int, int]] = deque()
        self.next_xid = 1
        self.closed = False
        self.session_id = 0
        self.passwd = b"\x00" * 16
        self.timeout = 0
        self.last_zxid = 0
        self._buf = b""

    # -- low level ----------------------------------------------------------------------
    def send_raw(self, data: bytes) -> bool:
        if self.closed:
            self.rec.add(self.name, "send-error", note="not sent: connection already closed")
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError as e:
            self.rec.add(self.name, "send-error", note=type(e).__name__)
            return False

    def _recv_exact(self, n: int, deadline: float) -> bytes | None:
        while len(self._buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def read_frame(self, timeout: float) -> bytes:
        """One whole frame (length prefix included). Raises Closed on EOF (recorded) and
        TimeoutError (not recorded)."""
        if self.closed:
            raise Closed
        deadline = time.monotonic() + timeout
        head = self._recv_exact(4, deadline)
        if head is None:
            self._eof()
        n = struct.unpack(">i", head)[0]
        if n < 0 or n > 16 * 1024 * 1024:
            self.rec.add(self.name, "frame", head, Ctx("garbage"), note=f"bad length {n}")
            self._eof(note="after a bad length")
        body = self._recv_exact(n, deadline)
        if body is None:
            partial, self._buf = self._buf, b""
            self.rec.add(self.name, "frame", head + partial, Ctx("garbage"),
                         note=f"EOF inside a frame of length {n}")
            self._eof()
        return head + body

    def _eof(self, note=""):
        self.closed = True
        leftover, self._buf = self._buf, b""
        if leftover:
            self.rec.add(self.name, "frame", leftover, Ctx("garbage"), note="partial frame")
        self.rec.add(self.name, "eof", note=note)
        try:
            self.sock.close()
        except OSError:
            pass
        raise Closed

    # -- handshake ----------------------------------------------------------------------
    def handshake(self, **kw) -> Reply | None:
        if not self.send_raw(frame(connect_body(**kw))):
            return None
        try:
            raw = self.read_frame(self.READ_TIMEOUT)
        except Closed:
            return None
        except TimeoutError:
            self.rec.add(self.name, "timeout", note="no ConnectResponse")
            return None
        ctx = Ctx("connect")
        self.rec.add(self.name, "frame", raw, ctx)
        fields, _ = decode_frame(raw, ctx)
        rep = Reply(0, 0, 0, fields)
        try:
            self.session_id = rep.get("sessionId")
            self.passwd = rep.get("passwd") or b""
            self.timeout = rep.get("timeOut")
        except KeyError:
            pass
        return rep

    # -- requests -----------------------------------------------------------------------
    def send(self, opcode: int, body: bytes = b"", xid: int | None = None) -> int:
        if xid is None:
            xid = self.next_xid
            self.next_xid += 1
        self.pending.append((xid, opcode))
        self.send_raw(frame(i32(xid) + i32(opcode) + body))
        return xid

    def collect(self, replies: int = 1, timeout: float | None = None) -> list[Reply]:
        """Reads frames until `replies` non-notification frames have arrived (or EOF, or a
        timeout, both recorded). Returns the replies read."""
        out: list[Reply] = []
        timeout = self.READ_TIMEOUT if timeout is None else timeout
        while len(out) < replies:
            try:
                raw = self.read_frame(timeout)
            except Closed:
                break
            except TimeoutError:
                self.rec.add(self.name, "timeout",
                             note=f"waited {timeout}s for {replies - len(out)} more repl(y/ies)")
                break
            rep = self._record(raw)
            if rep is not None:
                out.append(rep)
        return out

    def _record(self, raw: bytes) -> Reply | None:
        """Records one frame with what it answers; returns it as a Reply unless it is a
        notification."""
        xid = struct.unpack(">i", raw[4:8])[0] if len(raw) >= 8 else None
        if xid == XID_NOTIFICATION:
            ctx = Ctx("notification")
        else:
            match = None
            for p in self.pending:
                if p[0] == xid:
                    match = p
                    break
            if match is None and self.pending:
                match = self.pending[0]
            if match is not None:
                self.pending.remove(match)
                ctx = Ctx("reply", match[1], match[0])
            else:
                ctx = Ctx("unsolicited")
        self.rec.add(self.name, "frame", raw, ctx)
        if ctx.kind == "notification":
            return None
        fields, _ = decode_frame(raw, ctx)
        rep = Reply(xid, 0, 0, fields)
        try:
            rep.zxid = rep.get("hdr.zxid")
            rep.err = rep.get("hdr.err")
        except KeyError:
            pass
        if rep.zxid > 0:
            self.last_zxid = max(self.last_zxid, rep.zxid)
        return rep

    def call(self, opcode: int, body: bytes = b"", xid: int | None = None,
             timeout: float | None = None) -> Reply | None:
        self.send(opcode, body, xid)
        got = self.collect(1, timeout)
        return got[0] if got else None

    def ping(self) -> Reply | None:
        """A ping (xid -2): everything the server queued for this connection before it
        answers the ping is read and recorded (a barrier for notifications)."""
        return self.call(OP["ping"], b"", XID_PING)

    def expect_close(self, timeout: float = 2.0) -> None:
        """Records frames until EOF; records 'timeout' if the socket is still open."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                raw = self.read_frame(remaining)
            except Closed:
                return
            except TimeoutError:
                self.rec.add(self.name, "timeout", note=f"socket still open after {timeout}s")
                return
            self._record(raw)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------
# comparison
#
# Both runs are compared step by step. Within a step the two event lists are aligned on
# (connection, kind, what the frame answers) so that a missing or extra frame shows up as
# one difference instead of shifting every later frame. zxids and session ids are compared
# through a joint mapping built while walking aligned pairs: a reference zxid and the
# target zxid in the same field of an aligned pair must correspond one-to-one, and in the
# same order (a < a' exactly when b < b'), for the whole scenario. That is what "map each
# zxid to its rank of first appearance per server" checks when nothing is missing, but a
# missing frame does not shift the ranks of all later ones. Displayed as z<rank> (rank of
# first appearance on the reference); a target zxid that has no consistent counterpart
# shows as z?<its own rank>.


@dataclass
class Norm:
    """One recorded event after normalisation."""
    event: Event
    norm: bytes
    shown: list[tuple[Field, str]]
    decode_error: str | None

    def key(self):
        e = self.event
        return (e.conn, e.kind, self.norm, len(e.raw))


def normalise_events(events: list[Event]) -> list[Norm]:
    """One server's events on their own (zxids by rank of first appearance): transcripts."""
    n = Normaliser()
    out = []
    for e in events:
        if e.kind == "frame" and e.ctx is not None:
            fields, err = decode_frame(e.raw, e.ctx)
            norm, shown = n.apply(e.raw, fields)
            out.append(Norm(e, norm, shown, err))
        else:
            out.append(Norm(e, b"", [], None))
    return out


UNPAIRED = 0x7E00_0000_0000_0000
SESSION_MARK = 0x5E55_0000_0000_0000


class Joint:
    """Joint normalisation of a reference run and a target run (see the comment above)."""

    def __init__(self):
        self.z_r2t: dict[int, int] = {}
        self.z_t2r: dict[int, int] = {}
        self.z_rank: dict[int, int] = {}    # reference zxid -> rank of first appearance
        self.z_rank_t: dict[int, int] = {}  # target's own ranks, for display only
        self.s_r2t: dict[int, int] = {}
        self.s_t2r: dict[int, int] = {}
        self.s_label: dict[int, int] = {}
        self.s_label_t: dict[int, int] = {}

    @staticmethod
    def _rank(table: dict[int, int], v: int) -> int:
        if v not in table:
            table[v] = len(table) + 1
        return table[v]

    def _pair_zxid(self, a: int, b: int) -> None:
        if a in (0, -1) or b in (0, -1):
            return
        if a in self.z_r2t or b in self.z_t2r:
            return
        for a2, b2 in self.z_r2t.items():
            if (a2 < a) != (b2 < b):
                return  # order would disagree: leave unpaired, so it shows as a difference
        self.z_r2t[a] = b
        self.z_t2r[b] = a

    def _pair_session(self, a: int, b: int) -> None:
        if a == 0 or b == 0 or a in self.s_r2t or b in self.s_t2r:
            return
        self.s_r2t[a] = b
        self.s_t2r[b] = a

    def _norm_side(self, raw: bytes, fields: list[Field], ref: bool):
        out = bytearray(raw)
        shown = []
        for f in fields:
            disp = f.show()
            if f.kind == "zxid":
                v = f.value
                if v in (0, -1):
                    n = v
                elif ref:
                    n = self._rank(self.z_rank, v)
                    disp = f"{f.show()} -> z{n}"
                elif v in self.z_t2r:
                    n = self._rank(self.z_rank, self.z_t2r[v])
                    disp = f"{f.show()} -> z{n}"
                else:
                    own = self._rank(self.z_rank_t, v)
                    n = UNPAIRED | own
                    disp = f"{f.show()} -> z?{own} (no consistent counterpart)"
                out[f.start:f.end] = i64(n)
            elif f.kind == "time":
                n = 0 if f.value == 0 else 1
                out[f.start:f.end] = i64(n)
                disp = f"{f.value} -> {'set' if n else '0'}"
            elif f.kind == "session":
                v = f.value
                n = v
                if v != 0:
                    if ref:
                        if f.name == "sessionId":
                            self._rank(self.s_label, v)
                        if v in self.s_label:
                            n = SESSION_MARK | self.s_label[v]
                            disp = f"{f.show()} -> s{self.s_label[v]}"
                    else:
                        if f.name == "sessionId":
                            self._rank(self.s_label_t, v)
                        if v in self.s_t2r and self.s_t2r[v] in self.s_label:
                            lab = self.s_label[self.s_t2r[v]]
                            n = SESSION_MARK | lab
                            disp = f"{f.show()} -> s{lab}"
                        elif v in self.s_label_t:
                            n = UNPAIRED | SESSION_MARK | self.s_label_t[v]
                            disp = f"{f.show()} -> s?{self.s_label_t[v]} (no counterpart)"
                out[f.start:f.end] = i64(n)
            elif f.kind in ("strset", "passwd"):
                disp = _normalise_unordered_or_secret(f, out) or disp
            shown.append((f, disp))
        return bytes(out), shown

    def pair(self, a: Event | None, b: Event | None) -> tuple[Norm | None, Norm | None]:
        def dec(e):
            if e is None or e.kind != "frame" or e.ctx is None:
                return [], None
            return decode_frame(e.raw, e.ctx)

        fa, ea = dec(a)
        fb, eb = dec(b)
        if a is not None and b is not None and _signature(a) == _signature(b):
            tb = {f.name: f for f in fb}
            for f in fa:
                g = tb.get(f.name)
                if g is None or g.kind != f.kind:
                    continue
                if f.kind == "zxid":
                    self._pair_zxid(f.value, g.value)
                elif f.kind == "session" and f.name == "sessionId":
                    self._pair_session(f.value, g.value)
        na = nb = None
        if a is not None:
            raw, shown = self._norm_side(a.raw, fa, True) if fa else (b"", [])
            na = Norm(a, raw, shown, ea)
        if b is not None:
            raw, shown = self._norm_side(b.raw, fb, False) if fb else (b"", [])
            nb = Norm(b, raw, shown, eb)
        return na, nb


def _signature(e: Event):
    c = e.ctx
    return (e.conn, e.kind, c.kind if c else None, c.opcode if c else None,
            c.req_xid if c else None)


def _align(xa: list[Event], xb: list[Event]) -> list[tuple[Event | None, Event | None]]:
    import difflib
    sa = [_signature(e) for e in xa]
    sb = [_signature(e) for e in xb]
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_opcodes():
        if tag == "equal" or tag == "replace":
            n = max(i2 - i1, j2 - j1)
            for k in range(n):
                out.append((xa[i1 + k] if i1 + k < i2 else None,
                            xb[j1 + k] if j1 + k < j2 else None))
        elif tag == "delete":
            out.extend((xa[i], None) for i in range(i1, i2))
        else:
            out.extend((None, xb[j]) for j in range(j1, j2))
    return out


def _hex_rows(b: bytes, width: int = 16) -> list[str]:
    if not b:
        return ["(no bytes)"]
    return [b[i:i + width].hex(" ") for i in range(0, len(b), width)]


def same(a: Norm | None, b: Norm | None) -> bool:
    return a is not None and b is not None and a.key() == b.key()


def render_pair(ref_name: str, ref: Norm | None, tgt_name: str, tgt: Norm | None) -> str:
    """Both events side by side: raw hex, then the decoded fields with raw and normalised
    values, differing fields marked '!!'."""
    col = 49
    lines = []

    def head(n: Norm | None) -> str:
        if n is None:
            return "(nothing)"
        e = n.event
        s = f"{e.conn}: {e.kind}"
        if e.kind == "frame":
            s += f" len {len(e.raw)} [{e.ctx.label() if e.ctx else '?'}]"
        if e.note:
            s += f" ({e.note.splitlines()[0]})"
        return s

    lines.append(f"    {ref_name:<{col}} | {tgt_name}")
    lines.append(f"    {head(ref):<{col}} | {head(tgt)}")
    a = _hex_rows(ref.event.raw) if ref and ref.event.kind == "frame" else []
    b = _hex_rows(tgt.event.raw) if tgt and tgt.event.kind == "frame" else []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ""
        y = b[i] if i < len(b) else ""
        mark = "  " if x == y else "!!"
        lines.append(f"  {mark}{x:<{col}} | {y}")
    fa = {f.name: (f, d) for f, d in (ref.shown if ref else [])}
    fb = {f.name: (f, d) for f, d in (tgt.shown if tgt else [])}
    names = list(fa)
    for k in fb:
        if k not in fa:
            names.append(k)
    if names:
        lines.append("    fields (raw -> normalised):")
    for k in names:
        x = fa.get(k)
        y = fb.get(k)
        xn = ref.norm[x[0].start:x[0].end] if x else None
        yn = tgt.norm[y[0].start:y[0].end] if y else None
        ok = x is not None and y is not None and xn == yn
        mark = "  " if ok else "!!"
        lines.append(f"  {mark}  {k:<28} {x[1] if x else '(absent)':<30} | "
                     f"{y[1] if y else '(absent)'}")
    for n, nm in ((ref, ref_name), (tgt, tgt_name)):
        if n and n.decode_error:
            lines.append(f"    decode error on {nm}: {n.decode_error}")
    return "\n".join(lines)


@dataclass
class StepDiff:
    step: str
    pairs: list[tuple[Norm | None, Norm | None]]

    def bad_pairs(self):
        return [(a, b) for a, b in self.pairs if not same(a, b)]

    def render(self, ref_name: str, tgt_name: str) -> str:
        out = [f"  step {self.step!r}:"]
        for a, b in self.bad_pairs():
            out.append(render_pair(ref_name, a, tgt_name, b))
        return "\n".join(out)


def compare(ref_events: list[Event], tgt_events: list[Event]) -> list[StepDiff]:
    """Step by step: the same events (aligned as described above), frames equal in raw
    length and in normalised bytes."""
    steps: list[str] = []
    for e in ref_events + tgt_events:
        if e.step not in steps:
            steps.append(e.step)
    joint = Joint()
    diffs = []
    for s in steps:
        xa = [e for e in ref_events if e.step == s]
        xb = [e for e in tgt_events if e.step == s]
        pairs = [joint.pair(a, b) for a, b in _align(xa, xb)]
        d = StepDiff(s, pairs)
        if d.bad_pairs():
            diffs.append(d)
    return diffs
