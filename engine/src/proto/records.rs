//! Request and response records and their jute encodings. Pure, no I/O.

use super::jute::{DecodeError, DecodeResult, Reader, Writer};
use super::{op, ErrorCode};
use crate::acl::{Acl, Id};

/// A znode's metadata, in wire order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// Encoded size of a Stat: 6 longs and 5 ints.
pub const STAT_LEN: usize = 6 * 8 + 5 * 4;

impl Stat {
    pub fn write(&self, w: &mut Writer) {
        w.i64(self.czxid).i64(self.mzxid).i64(self.ctime).i64(self.mtime);
        w.i32(self.version).i32(self.cversion).i32(self.aversion);
        w.i64(self.ephemeral_owner).i32(self.data_length).i32(self.num_children).i64(self.pzxid);
    }

    pub fn read(r: &mut Reader) -> DecodeResult<Stat> {
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }
}

pub fn write_acls(w: &mut Writer, acls: &[Acl]) {
    w.i32(acls.len() as i32);
    for a in acls {
        w.i32(a.perms).string(&a.id.scheme).string(&a.id.id);
    }
}

pub fn read_acls(r: &mut Reader) -> DecodeResult<Vec<Acl>> {
    r.vec(12, |r| {
        let perms = r.i32()?;
        let scheme = r.string()?;
        let id = r.string()?;
        Ok(Acl { perms, id: Id { scheme, id } })
    })
}

/// The first packet of a session. `read_only` is absent from 3.3-era clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn decode(frame: &[u8]) -> DecodeResult<ConnectRequest> {
        let mut r = Reader::new(frame);
        let req = ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 { Some(r.bool()?) } else { None },
        };
        r.finish()?;
        Ok(req)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::framed();
        w.i32(self.protocol_version).i64(self.last_zxid_seen).i32(self.timeout_ms).i64(self.session_id);
        w.buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.finish_frame()
    }
}

/// The server's answer to a ConnectRequest; `read_only` is echoed only if the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::framed();
        w.i32(self.protocol_version).i32(self.timeout_ms).i64(self.session_id).buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.finish_frame()
    }

    pub fn decode(frame: &[u8]) -> DecodeResult<ConnectResponse> {
        let mut r = Reader::new(frame);
        let resp = ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 { Some(r.bool()?) } else { None },
        };
        r.finish()?;
        Ok(resp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

/// Which create opcode a create came in as: it decides the reply's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// op 1: reply is the path only.
    Create,
    /// op 15: reply is path and Stat.
    Create2,
    /// op 19: container node; reply is path and Stat.
    Container,
    /// op 21: TTL node; reply is path and Stat.
    Ttl,
}

impl CreateKind {
    pub fn opcode(self) -> i32 {
        match self {
            CreateKind::Create => op::CREATE,
            CreateKind::Create2 => op::CREATE2,
            CreateKind::Container => op::CREATE_CONTAINER,
            CreateKind::Ttl => op::CREATE_TTL,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub kind: CreateKind,
    pub path: String,
    /// None is jute's null buffer (length -1): ZooKeeper keeps it and reads it back as null.
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// Only for CreateKind::Ttl.
    pub ttl_ms: i64,
}

/// The watch lists a reconnecting client re-registers (setWatches and setWatches2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub persistent_recursive: Vec<String>,
}

/// One operation inside a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Delete { path: String, version: i32 },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    Check { path: String, version: i32 },
    GetData { path: String },
    GetChildren { path: String },
}

/// A decoded client request (everything after the RequestHeader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    DeleteContainer {
        path: String,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    CheckWatches {
        path: String,
        watch_type: i32,
    },
    RemoveWatches {
        path: String,
        watch_type: i32,
    },
    Auth {
        auth_type: i32,
        scheme: String,
        auth: Vec<u8>,
    },
    SetWatches(SetWatches),
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
    /// `GetSASLRequest{token}`: one step of a SASL exchange (a null token reads as empty).
    Sasl {
        token: Vec<u8>,
    },
    /// Known opcodes Warren answers with Unimplemented (reconfig) or unknown ones.
    Unimplemented(i32),
}

impl Request {
    /// Decodes a whole frame (header and body). Errors mean a malformed frame.
    pub fn decode(frame: &[u8]) -> DecodeResult<(RequestHeader, Request)> {
        let mut r = Reader::new(frame);
        let hdr = RequestHeader { xid: r.i32()?, op: r.i32()? };
        let req = Self::decode_body(hdr.op, &mut r)?;
        // Unimplemented opcodes carry bodies we do not parse; everything else must be exact.
        if !matches!(req, Request::Unimplemented(_)) {
            r.finish()?;
        }
        Ok((hdr, req))
    }

    fn decode_body(opcode: i32, r: &mut Reader) -> DecodeResult<Request> {
        Ok(match opcode {
            op::CREATE => Request::Create(read_create(r, CreateKind::Create)?),
            op::CREATE2 => Request::Create(read_create(r, CreateKind::Create2)?),
            op::CREATE_CONTAINER => Request::Create(read_create(r, CreateKind::Container)?),
            op::CREATE_TTL => Request::Create(read_create(r, CreateKind::Ttl)?),
            op::DELETE => Request::Delete { path: r.string()?, version: r.i32()? },
            op::DELETE_CONTAINER => Request::DeleteContainer { path: r.string()? },
            op::EXISTS => Request::Exists { path: r.string()?, watch: r.bool()? },
            op::GET_DATA => Request::GetData { path: r.string()?, watch: r.bool()? },
            op::SET_DATA => Request::SetData { path: r.string()?, data: r.opt_buffer()?, version: r.i32()? },
            op::GET_ACL => Request::GetAcl { path: r.string()? },
            op::SET_ACL => Request::SetAcl { path: r.string()?, acl: read_acls(r)?, version: r.i32()? },
            op::GET_CHILDREN => Request::GetChildren { path: r.string()?, watch: r.bool()? },
            op::GET_CHILDREN2 => Request::GetChildren2 { path: r.string()?, watch: r.bool()? },
            op::SYNC => Request::Sync { path: r.string()? },
            op::PING => Request::Ping,
            op::CHECK => Request::Check { path: r.string()?, version: r.i32()? },
            op::MULTI => Request::Multi(read_multi(r, false)?),
            op::MULTI_READ => Request::MultiRead(read_multi(r, true)?),
            op::CHECK_WATCHES => Request::CheckWatches { path: r.string()?, watch_type: r.i32()? },
            op::REMOVE_WATCHES => Request::RemoveWatches { path: r.string()?, watch_type: r.i32()? },
            op::AUTH => Request::Auth { auth_type: r.i32()?, scheme: r.string()?, auth: r.buffer()? },
            op::SET_WATCHES => Request::SetWatches(SetWatches {
                relative_zxid: r.i64()?,
                data: r.strings()?,
                exist: r.strings()?,
                child: r.strings()?,
                ..Default::default()
            }),
            op::SET_WATCHES2 => Request::SetWatches(SetWatches {
                relative_zxid: r.i64()?,
                data: r.strings()?,
                exist: r.strings()?,
                child: r.strings()?,
                persistent: r.strings()?,
                persistent_recursive: r.strings()?,
            }),
            op::GET_EPHEMERALS => Request::GetEphemerals { prefix: r.string()? },
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber { path: r.string()? },
            op::ADD_WATCH => Request::AddWatch { path: r.string()?, mode: r.i32()? },
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            op::SASL => Request::Sasl { token: r.opt_buffer()?.unwrap_or_default() },
            other => Request::Unimplemented(other),
        })
    }

    /// Encodes a request frame (used by tests, the load generator and the Rust client side).
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let mut w = Writer::framed();
        w.i32(xid).i32(self.opcode());
        self.write_body(&mut w);
        w.finish_frame()
    }

    pub fn opcode(&self) -> i32 {
        match self {
            Request::Create(c) => c.kind.opcode(),
            Request::Delete { .. } => op::DELETE,
            Request::DeleteContainer { .. } => op::DELETE_CONTAINER,
            Request::Exists { .. } => op::EXISTS,
            Request::GetData { .. } => op::GET_DATA,
            Request::SetData { .. } => op::SET_DATA,
            Request::GetAcl { .. } => op::GET_ACL,
            Request::SetAcl { .. } => op::SET_ACL,
            Request::GetChildren { .. } => op::GET_CHILDREN,
            Request::GetChildren2 { .. } => op::GET_CHILDREN2,
            Request::Sync { .. } => op::SYNC,
            Request::Ping => op::PING,
            Request::Check { .. } => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::CheckWatches { .. } => op::CHECK_WATCHES,
            Request::RemoveWatches { .. } => op::REMOVE_WATCHES,
            Request::Auth { .. } => op::AUTH,
            Request::SetWatches(sw) => {
                if sw.persistent.is_empty() && sw.persistent_recursive.is_empty() {
                    op::SET_WATCHES
                } else {
                    op::SET_WATCHES2
                }
            }
            Request::GetEphemerals { .. } => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber { .. } => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch { .. } => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::Sasl { .. } => op::SASL,
            Request::Unimplemented(o) => *o,
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            Request::Create(c) => write_create(w, c),
            Request::Delete { path, version } | Request::Check { path, version } => {
                w.string(path).i32(*version);
            }
            Request::DeleteContainer { path }
            | Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetAllChildrenNumber { path }
            | Request::GetEphemerals { prefix: path } => {
                w.string(path);
            }
            Request::Exists { path, watch }
            | Request::GetData { path, watch }
            | Request::GetChildren { path, watch }
            | Request::GetChildren2 { path, watch } => {
                w.string(path).bool(*watch);
            }
            Request::SetData { path, data, version } => {
                w.string(path).opt_buffer(data.as_deref()).i32(*version);
            }
            Request::SetAcl { path, acl, version } => {
                w.string(path);
                write_acls(w, acl);
                w.i32(*version);
            }
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi(w, ops),
            Request::CheckWatches { path, watch_type } | Request::RemoveWatches { path, watch_type } => {
                w.string(path).i32(*watch_type);
            }
            Request::Auth { auth_type, scheme, auth } => {
                w.i32(*auth_type).string(scheme).buffer(auth);
            }
            Request::SetWatches(sw) => {
                w.i64(sw.relative_zxid).strings(&sw.data).strings(&sw.exist).strings(&sw.child);
                if !(sw.persistent.is_empty() && sw.persistent_recursive.is_empty()) {
                    w.strings(&sw.persistent).strings(&sw.persistent_recursive);
                }
            }
            Request::AddWatch { path, mode } => {
                w.string(path).i32(*mode);
            }
            Request::Sasl { token } => {
                w.buffer(token);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession | Request::Unimplemented(_) => {}
        }
    }
}

fn read_create(r: &mut Reader, kind: CreateKind) -> DecodeResult<CreateRequest> {
    let path = r.string()?;
    let data = r.opt_buffer()?;
    let acl = read_acls(r)?;
    let flags = r.i32()?;
    let ttl_ms = if kind == CreateKind::Ttl { r.i64()? } else { -1 };
    Ok(CreateRequest { kind, path, data, acl, flags, ttl_ms })
}

fn write_create(w: &mut Writer, c: &CreateRequest) {
    w.string(&c.path).opt_buffer(c.data.as_deref());
    write_acls(w, &c.acl);
    w.i32(c.flags);
    if c.kind == CreateKind::Ttl {
        w.i64(c.ttl_ms);
    }
}

/// Upper bound on ops in one multi: each op needs at least a 9-byte MultiHeader, so the frame
/// limit already bounds it; this makes the bound explicit.
pub const MULTI_OPS_MAX: usize = 1 << 17;

fn read_multi(r: &mut Reader, read_only: bool) -> DecodeResult<Vec<MultiOp>> {
    let mut ops = Vec::new();
    loop {
        let opcode = r.i32()?;
        let done = r.bool()?;
        let _err = r.i32()?;
        if done {
            return Ok(ops);
        }
        if ops.len() >= MULTI_OPS_MAX {
            return Err(DecodeError::Invalid("too many operations in multi"));
        }
        let op = match (opcode, read_only) {
            (op::CREATE, false) => MultiOp::Create(read_create(r, CreateKind::Create)?),
            (op::CREATE2, false) => MultiOp::Create(read_create(r, CreateKind::Create2)?),
            (op::CREATE_CONTAINER, false) => MultiOp::Create(read_create(r, CreateKind::Container)?),
            (op::CREATE_TTL, false) => MultiOp::Create(read_create(r, CreateKind::Ttl)?),
            (op::DELETE, false) => MultiOp::Delete { path: r.string()?, version: r.i32()? },
            (op::SET_DATA, false) => MultiOp::SetData { path: r.string()?, data: r.opt_buffer()?, version: r.i32()? },
            (op::CHECK, false) => MultiOp::Check { path: r.string()?, version: r.i32()? },
            (op::GET_DATA, true) => {
                let path = r.string()?;
                let _watch = r.bool()?;
                MultiOp::GetData { path }
            }
            (op::GET_CHILDREN, true) => {
                let path = r.string()?;
                let _watch = r.bool()?;
                MultiOp::GetChildren { path }
            }
            (other, _) => return Err(DecodeError::UnknownOpcode(other)),
        };
        ops.push(op);
    }
}

fn write_multi(w: &mut Writer, ops: &[MultiOp]) {
    for o in ops {
        let opcode = match o {
            MultiOp::Create(c) => c.kind.opcode(),
            MultiOp::Delete { .. } => op::DELETE,
            MultiOp::SetData { .. } => op::SET_DATA,
            MultiOp::Check { .. } => op::CHECK,
            MultiOp::GetData { .. } => op::GET_DATA,
            MultiOp::GetChildren { .. } => op::GET_CHILDREN,
        };
        w.i32(opcode).bool(false).i32(-1);
        match o {
            MultiOp::Create(c) => write_create(w, c),
            MultiOp::Delete { path, version } | MultiOp::Check { path, version } => {
                w.string(path).i32(*version);
            }
            MultiOp::SetData { path, data, version } => {
                w.string(path).opt_buffer(data.as_deref()).i32(*version);
            }
            MultiOp::GetData { path } | MultiOp::GetChildren { path } => {
                w.string(path).bool(false);
            }
        }
    }
    w.i32(-1).bool(true).i32(-1);
}

/// One result inside a multi reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Reply to op 1 inside a multi: the created path.
    Create {
        path: String,
    },
    /// Reply to ops 15/19/21: path and Stat.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    Error(ErrorCode),
}

/// A reply body (what follows a ReplyHeader with err 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create {
        path: String,
    },
    Create2 {
        path: String,
        stat: Stat,
    },
    Stat(Stat),
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    Children(Vec<String>),
    Children2 {
        children: Vec<String>,
        stat: Stat,
    },
    Sync {
        path: String,
    },
    Multi(Vec<MultiResult>),
    Ephemerals(Vec<String>),
    AllChildrenNumber(i32),
    WhoAmI(Vec<(String, String)>),
    /// ZooKeeper's `SetSASLResponse{token}`: a sasl answer (a null token without SASL).
    SaslToken(Option<Vec<u8>>),
    /// ZooKeeper's `ErrorResponse{err}` record: the body of a successful addWatch (err 0).
    /// The Java client reads it; a reply without it ends its connection.
    ErrorBody(i32),
}

impl Response {
    pub fn write(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create { path } | Response::Sync { path } => {
                w.string(path);
            }
            Response::Create2 { path, stat } => {
                w.string(path);
                stat.write(w);
            }
            Response::Stat(s) => s.write(w),
            Response::GetData { data, stat } => {
                w.opt_buffer(data.as_deref());
                stat.write(w);
            }
            Response::SaslToken(token) => {
                w.opt_buffer(token.as_deref());
            }
            Response::GetAcl { acl, stat } => {
                write_acls(w, acl);
                stat.write(w);
            }
            Response::Children(c) | Response::Ephemerals(c) => {
                w.strings(c);
            }
            Response::Children2 { children, stat } => {
                w.strings(children);
                stat.write(w);
            }
            Response::Multi(results) => write_multi_results(w, results),
            Response::AllChildrenNumber(n) | Response::ErrorBody(n) => {
                w.i32(*n);
            }
            Response::WhoAmI(infos) => {
                w.i32(infos.len() as i32);
                for (scheme, user) in infos {
                    w.string(scheme).string(user);
                }
            }
        }
    }
}

fn write_multi_results(w: &mut Writer, results: &[MultiResult]) {
    for r in results {
        let (opcode, err) = match r {
            MultiResult::Create { .. } => (op::CREATE, 0),
            MultiResult::Create2 { .. } => (op::CREATE2, 0),
            MultiResult::Delete => (op::DELETE, 0),
            MultiResult::SetData { .. } => (op::SET_DATA, 0),
            MultiResult::Check => (op::CHECK, 0),
            MultiResult::GetData { .. } => (op::GET_DATA, 0),
            MultiResult::GetChildren { .. } => (op::GET_CHILDREN, 0),
            MultiResult::Error(e) => (op::ERROR, e.code()),
        };
        w.i32(opcode).bool(false).i32(err);
        match r {
            MultiResult::Create { path } => {
                w.string(path);
            }
            MultiResult::Create2 { path, stat } => {
                w.string(path);
                stat.write(w);
            }
            MultiResult::SetData { stat } => stat.write(w),
            MultiResult::GetData { data, stat } => {
                w.opt_buffer(data.as_deref());
                stat.write(w);
            }
            MultiResult::GetChildren { children } => {
                w.strings(children);
            }
            MultiResult::Error(e) => {
                w.i32(e.code());
            }
            MultiResult::Delete | MultiResult::Check => {}
        }
    }
    w.i32(-1).bool(true).i32(-1);
}

/// Decodes a multi reply body (used by tests and the load generator).
pub fn read_multi_results(r: &mut Reader) -> DecodeResult<Vec<MultiResult>> {
    let mut out = Vec::new();
    loop {
        let opcode = r.i32()?;
        let done = r.bool()?;
        let err = r.i32()?;
        if done {
            return Ok(out);
        }
        out.push(match opcode {
            op::CREATE => MultiResult::Create { path: r.string()? },
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                MultiResult::Create2 { path: r.string()?, stat: Stat::read(r)? }
            }
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData { stat: Stat::read(r)? },
            op::CHECK => MultiResult::Check,
            op::GET_DATA => MultiResult::GetData { data: r.opt_buffer()?, stat: Stat::read(r)? },
            op::GET_CHILDREN => MultiResult::GetChildren { children: r.strings()? },
            op::ERROR => {
                let code = r.i32()?;
                let _ = err;
                MultiResult::Error(ErrorCode::from_code(code).ok_or(DecodeError::Invalid("error code"))?)
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        });
    }
}

/// Encodes a full reply frame: header, then the body only when err is 0.
pub fn encode_reply(hdr: ReplyHeader, body: &Response) -> Vec<u8> {
    let mut w = Writer::framed();
    w.i32(hdr.xid).i64(hdr.zxid).i32(hdr.err);
    if hdr.err == 0 {
        body.write(&mut w);
    }
    w.finish_frame()
}

/// A watch notification: xid -1, zxid -1, then WatcherEvent{type, state, path}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

impl WatcherEvent {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::framed();
        w.i32(super::xid::NOTIFICATION).i64(-1).i32(0);
        w.i32(self.event_type).i32(self.state).string(&self.path);
        w.finish_frame()
    }

    pub fn read(r: &mut Reader) -> DecodeResult<WatcherEvent> {
        Ok(WatcherEvent { event_type: r.i32()?, state: r.i32()?, path: r.string()? })
    }
}
