//! Byte formats of peer messages ([`Msg`]) and of the hello that opens a peer connection.
//! Encoding and decoding only, no I/O.
//!
//! A connection starts with a hello, then carries frames back to back:
//!
//! ```text
//! hello   "WRNPEER3" (8 bytes: magic and version) | myid u64 | ensemble u64 | flags u8
//!                                                                        25 bytes, unframed
//! frame   len u32 (bytes that follow, 1..=MAX_FRAME) | type u8 | body
//! ```
//!
//! All integers are big-endian. In the bodies below `txn` is `len u32 | encode_txn bytes` (the
//! log's Txn payload, see `crate::log::format`), `bytes` is `len u32 | bytes`, `str` is
//! `len u32 | UTF-8`, and `bool` is one byte, 0 or 1 (anything else is an error).
//!
//! | type | message        | body                                                              |
//! |------|----------------|-------------------------------------------------------------------|
//! | 1    | `Vote`         | leader u64, zxid i64, epoch u32, round u64, state u8 (*)          |
//! | 2    | `FollowerInfo` | accepted_epoch u32, last_zxid i64, observer bool                  |
//! | 3    | `LeaderInfo`   | epoch u32                                                         |
//! | 4    | `AckEpoch`     | current_epoch u32, last_zxid i64, base i64, count u32,            |
//! |      |                | count × epoch_end i64 (a `LogSummary`: ascending, above base,     |
//! |      |                | one per epoch)                                                    |
//! | 5    | `Trunc`        | zxid i64                                                          |
//! | 6    | `Snap`         | zxid i64, image bytes                                             |
//! | 7    | `Txns`         | count u32, count × txn                                            |
//! | 8    | `NewLeader`    | epoch u32, zxid i64                                               |
//! | 9    | `AckNewLeader` | zxid i64                                                          |
//! | 10   | `UpToDate`     | committed i64                                                     |
//! | 11   | `Proposal`     | txn                                                               |
//! | 12   | `Ack`          | zxid i64                                                          |
//! | 13   | `Commit`       | zxid i64                                                          |
//! | 14   | `Inform`       | txn                                                               |
//! | 15   | `Ping`         | (empty)                                                           |
//! | 16   | `Pong`         | count u32, count × session_id i64                                 |
//! | 17   | `Forward`      | session_id i64, cxid i32, op u8, then by op:                      |
//! |      |                | 0 CreateSession: timeout_ms i32, password 16 bytes;               |
//! |      |                | 1 CloseSession: -;                                                |
//! |      |                | 2 Write: frame bytes, count u32, count × (scheme str, id str);    |
//! |      |                | 3 Sync: -                                                         |
//! | 18   | `SyncDone`     | session_id i64, cxid i32                                          |
//! | 19   | `SessionOwner` | session_id i64                                                    |
//! | 20   | `AckEpoch`, not counted | as type 4                                                |
//!
//! (*) `PeerState`: 0 Looking, 1 Following, 2 Leading, 3 Observing.
//!
//! Version 2 of the hello added the `LogSummary` to `AckEpoch`. Version 3 added the ensemble
//! identity to the hello: `ensemble` is the id in the sender's `ensembleId` file (0 when it has
//! none: an ensemble never recovered with `warren recover-quorum`), and flag bit 0 says the
//! sender holds no data at all (no epoch, no log record, no snapshot, no `ensembleId`), so it
//! may join whichever ensemble its `server.N` lines lead it to; the other flag bits are zero.
//! A server refuses a connection whose hello names another ensemble, unless one of the two
//! holds no data (see `server::peers`). Servers speaking different versions refuse each
//! other's connections with a log line naming both versions.
//!
//! Decoding never trusts a length or count: each is checked against the bytes that remain
//! before anything is allocated, every byte of a frame must be consumed, and no input panics.

use thiserror::Error;

use super::{Forward, ForwardOp, LogSummary, Msg, PeerState, ServerId, Vote};
use crate::acl::Id;
use crate::log::format::{decode_txn, encode_txn};
use crate::proto::{DecodeError, Writer};
use crate::session::UNUSABLE_PASSWD;
use crate::txn::Txn;

/// The largest frame (type byte and body) accepted; a `Snap` carries a whole snapshot image.
pub const MAX_FRAME: usize = 1 << 30;
/// Magic and version opening every peer connection.
pub const HELLO_MAGIC: &[u8; 8] = b"WRNPEER3";
pub const HELLO_LEN: usize = 25;
/// Hello flag: the sender holds no data (see the module doc).
const HELLO_EMPTY: u8 = 1;

/// What a hello says about the server that dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub myid: ServerId,
    /// The sender's ensemble id (0: none recorded).
    pub ensemble: u64,
    /// The sender holds no data and may adopt the ensemble id of the peers it meets.
    pub empty: bool,
}

/// The smallest encoded Txn (header 28 bytes and an opcode), used to bound counts.
const MIN_TXN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("peer frame truncated: {what} needs {needed} bytes, {remaining} remain")]
    Truncated { what: &'static str, needed: usize, remaining: usize },
    #[error("empty peer frame (no message type)")]
    Empty,
    #[error("peer frame length {0} is zero or over the limit of {MAX_FRAME} bytes")]
    BadLength(u64),
    #[error("unknown peer message type {0}")]
    UnknownType(u8),
    #[error("invalid {what} value {value}")]
    BadValue { what: &'static str, value: u64 },
    #[error("{0} trailing bytes after the peer message")]
    TrailingBytes(usize),
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("bad transaction in peer message: {0}")]
    Txn(DecodeError),
    #[error("not a Warren peer: hello starts with {0:02x?}, expected \"WRNPEER3\"")]
    BadMagic([u8; 8]),
    #[error(
        "a Warren peer speaking peer protocol {:?}; this server speaks \"WRNPEER3\" (every server of an ensemble must run the same protocol version)",
        String::from_utf8_lossy(.0)
    )]
    OtherVersion([u8; 8]),
    #[error("peer hello is {0} bytes, expected {HELLO_LEN}")]
    HelloLength(usize),
}

mod ty {
    pub const VOTE: u8 = 1;
    pub const FOLLOWER_INFO: u8 = 2;
    pub const LEADER_INFO: u8 = 3;
    pub const ACK_EPOCH: u8 = 4;
    pub const TRUNC: u8 = 5;
    pub const SNAP: u8 = 6;
    pub const TXNS: u8 = 7;
    pub const NEW_LEADER: u8 = 8;
    pub const ACK_NEW_LEADER: u8 = 9;
    pub const UP_TO_DATE: u8 = 10;
    pub const PROPOSAL: u8 = 11;
    pub const ACK: u8 = 12;
    pub const COMMIT: u8 = 13;
    pub const INFORM: u8 = 14;
    pub const PING: u8 = 15;
    pub const PONG: u8 = 16;
    pub const FORWARD: u8 = 17;
    pub const SYNC_DONE: u8 = 18;
    pub const SESSION_OWNER: u8 = 19;
    pub const ACK_EPOCH_UNCOUNTED: u8 = 20;
}

mod fwd {
    pub const CREATE_SESSION: u8 = 0;
    pub const CLOSE_SESSION: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const SYNC: u8 = 3;
}

// ---- encoding ---------------------------------------------------------------------------------

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

fn put_txn(out: &mut Vec<u8>, t: &Txn) {
    let at = out.len();
    put_u32(out, 0);
    let mut w = Writer { buf: std::mem::take(out) };
    encode_txn(&mut w, t);
    *out = w.buf;
    let n = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&n.to_be_bytes());
}

fn state_code(s: PeerState) -> u8 {
    match s {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

/// Appends one frame holding `msg`: `[len u32][type u8][body]`. The frame is not checked
/// against [`MAX_FRAME`]; the sender checks (see [`frame_len`]) before writing.
pub fn encode(msg: &Msg, out: &mut Vec<u8>) {
    let start = out.len();
    put_u32(out, 0);
    encode_body(msg, out);
    let n = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&n.to_be_bytes());
}

fn encode_body(msg: &Msg, out: &mut Vec<u8>) {
    match msg {
        Msg::Vote(v) => {
            out.push(ty::VOTE);
            put_u64(out, v.leader);
            put_i64(out, v.zxid);
            put_u32(out, v.epoch);
            put_u64(out, v.round);
            out.push(state_code(v.state));
        }
        Msg::FollowerInfo { accepted_epoch, last_zxid, observer } => {
            out.push(ty::FOLLOWER_INFO);
            put_u32(out, *accepted_epoch);
            put_i64(out, *last_zxid);
            out.push(*observer as u8);
        }
        Msg::LeaderInfo { epoch } => {
            out.push(ty::LEADER_INFO);
            put_u32(out, *epoch);
        }
        Msg::AckEpoch { current_epoch, last_zxid, counted, log } => {
            out.push(if *counted { ty::ACK_EPOCH } else { ty::ACK_EPOCH_UNCOUNTED });
            put_u32(out, *current_epoch);
            put_i64(out, *last_zxid);
            put_i64(out, log.base);
            put_u32(out, log.epoch_ends.len() as u32);
            for z in &log.epoch_ends {
                put_i64(out, *z);
            }
        }
        Msg::Trunc { zxid } => {
            out.push(ty::TRUNC);
            put_i64(out, *zxid);
        }
        Msg::Snap { zxid, image } => {
            out.push(ty::SNAP);
            put_i64(out, *zxid);
            put_bytes(out, image);
        }
        Msg::Txns(txns) => {
            out.push(ty::TXNS);
            put_u32(out, txns.len() as u32);
            for t in txns {
                put_txn(out, t);
            }
        }
        Msg::NewLeader { epoch, zxid } => {
            out.push(ty::NEW_LEADER);
            put_u32(out, *epoch);
            put_i64(out, *zxid);
        }
        Msg::AckNewLeader { zxid } => {
            out.push(ty::ACK_NEW_LEADER);
            put_i64(out, *zxid);
        }
        Msg::UpToDate { committed } => {
            out.push(ty::UP_TO_DATE);
            put_i64(out, *committed);
        }
        Msg::Proposal(t) => {
            out.push(ty::PROPOSAL);
            put_txn(out, t);
        }
        Msg::Ack { zxid } => {
            out.push(ty::ACK);
            put_i64(out, *zxid);
        }
        Msg::Commit { zxid } => {
            out.push(ty::COMMIT);
            put_i64(out, *zxid);
        }
        Msg::Inform(t) => {
            out.push(ty::INFORM);
            put_txn(out, t);
        }
        Msg::Ping => out.push(ty::PING),
        Msg::Pong { touched } => {
            out.push(ty::PONG);
            put_u32(out, touched.len() as u32);
            for s in touched {
                put_i64(out, *s);
            }
        }
        Msg::Forward(f) => {
            out.push(ty::FORWARD);
            put_i64(out, f.session_id);
            put_i32(out, f.cxid);
            match &f.op {
                ForwardOp::CreateSession { timeout_ms, passwd } => {
                    out.push(fwd::CREATE_SESSION);
                    put_i32(out, *timeout_ms);
                    out.extend_from_slice(passwd);
                }
                ForwardOp::CloseSession => out.push(fwd::CLOSE_SESSION),
                ForwardOp::Write { frame, auth } => {
                    out.push(fwd::WRITE);
                    put_bytes(out, frame);
                    put_u32(out, auth.len() as u32);
                    for id in auth {
                        put_bytes(out, id.scheme.as_bytes());
                        put_bytes(out, id.id.as_bytes());
                    }
                }
                ForwardOp::Sync => out.push(fwd::SYNC),
            }
        }
        Msg::SyncDone { session_id, cxid } => {
            out.push(ty::SYNC_DONE);
            put_i64(out, *session_id);
            put_i32(out, *cxid);
        }
        Msg::SessionOwner { session_id } => {
            out.push(ty::SESSION_OWNER);
            put_i64(out, *session_id);
        }
    }
}

/// Appends the hello ([`HELLO_LEN`] bytes) that opens a connection.
pub fn encode_hello(h: &Hello, out: &mut Vec<u8>) {
    out.extend_from_slice(HELLO_MAGIC);
    put_u64(out, h.myid);
    put_u64(out, h.ensemble);
    out.push(if h.empty { HELLO_EMPTY } else { 0 });
}

// ---- decoding ---------------------------------------------------------------------------------

/// Validates a hello (exactly [`HELLO_LEN`] bytes) and returns what it says.
pub fn decode_hello(b: &[u8]) -> Result<Hello, CodecError> {
    if b.len() != HELLO_LEN {
        return Err(CodecError::HelloLength(b.len()));
    }
    if &b[..8] != HELLO_MAGIC {
        let mut m = [0u8; 8];
        m.copy_from_slice(&b[..8]);
        if m[..7] == HELLO_MAGIC[..7] {
            return Err(CodecError::OtherVersion(m));
        }
        return Err(CodecError::BadMagic(m));
    }
    let word = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(a)
    };
    let flags = b[24];
    if flags & !HELLO_EMPTY != 0 {
        return Err(CodecError::BadValue { what: "hello flags", value: u64::from(flags) });
    }
    Ok(Hello { myid: word(8), ensemble: word(16), empty: flags & HELLO_EMPTY != 0 })
}

/// A `LogSummary`, checked: epoch ends ascend above the base, one per epoch (the leader plans
/// a sync from it, so a summary that cannot describe a log is refused here).
fn log_summary(c: &mut Cur<'_>) -> Result<LogSummary, CodecError> {
    let base = c.i64("log base")?;
    let n = c.count("epoch end count", 8)?;
    let mut epoch_ends = Vec::with_capacity(capacity(n));
    let mut prev = base;
    for i in 0..n {
        let z = c.i64("epoch end")?;
        let ascends = z > prev && (i == 0 || (z >> 32) > (prev >> 32));
        if !ascends {
            return Err(CodecError::BadValue { what: "epoch end (not ascending by epoch)", value: z as u64 });
        }
        epoch_ends.push(z);
        prev = z;
    }
    Ok(LogSummary { base, epoch_ends })
}

/// The frame length announced by a frame's first 4 bytes, checked against [`MAX_FRAME`].
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, CodecError> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n == 0 || n > MAX_FRAME {
        return Err(CodecError::BadLength(n as u64));
    }
    Ok(n)
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated { what, needed: n, remaining: self.remaining() });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(CodecError::BadValue { what, value: v as u64 }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.arr(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.arr(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.arr(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.arr(what)?))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| CodecError::InvalidUtf8 { what })
    }

    /// A count of elements of at least `min_elem` encoded bytes each, checked against the rest.
    fn count(&mut self, what: &'static str, min_elem: usize) -> Result<usize, CodecError> {
        let n = self.u32(what)? as usize;
        let needed = n.saturating_mul(min_elem);
        if needed > self.remaining() {
            return Err(CodecError::Truncated { what, needed, remaining: self.remaining() });
        }
        Ok(n)
    }

    fn txn(&mut self) -> Result<Txn, CodecError> {
        decode_txn(self.bytes("transaction")?).map_err(CodecError::Txn)
    }
}

/// Initial capacity for `n` decoded elements: the count is bounded by the input, but an
/// element may be much larger in memory than on the wire, so large vectors grow as they fill.
fn capacity(n: usize) -> usize {
    n.min(1024)
}

/// Decodes one frame without its length prefix (type byte and body).
pub fn decode(frame_body: &[u8]) -> Result<Msg, CodecError> {
    let Some((&t, body)) = frame_body.split_first() else {
        return Err(CodecError::Empty);
    };
    let mut c = Cur { b: body, pos: 0 };
    let msg = match t {
        ty::VOTE => Msg::Vote(Vote {
            leader: c.u64("vote leader")?,
            zxid: c.i64("vote zxid")?,
            epoch: c.u32("vote epoch")?,
            round: c.u64("vote round")?,
            state: match c.u8("vote state")? {
                0 => PeerState::Looking,
                1 => PeerState::Following,
                2 => PeerState::Leading,
                3 => PeerState::Observing,
                v => return Err(CodecError::BadValue { what: "vote state", value: v as u64 }),
            },
        }),
        ty::FOLLOWER_INFO => Msg::FollowerInfo {
            accepted_epoch: c.u32("accepted epoch")?,
            last_zxid: c.i64("last zxid")?,
            observer: c.bool("observer flag")?,
        },
        ty::LEADER_INFO => Msg::LeaderInfo { epoch: c.u32("epoch")? },
        ty::ACK_EPOCH | ty::ACK_EPOCH_UNCOUNTED => Msg::AckEpoch {
            current_epoch: c.u32("current epoch")?,
            last_zxid: c.i64("last zxid")?,
            counted: t == ty::ACK_EPOCH,
            log: log_summary(&mut c)?,
        },
        ty::TRUNC => Msg::Trunc { zxid: c.i64("zxid")? },
        ty::SNAP => Msg::Snap { zxid: c.i64("zxid")?, image: c.bytes("snapshot image")?.to_vec() },
        ty::TXNS => {
            let n = c.count("transaction count", 4 + MIN_TXN)?;
            let mut txns = Vec::with_capacity(capacity(n));
            for _ in 0..n {
                txns.push(c.txn()?);
            }
            Msg::Txns(txns)
        }
        ty::NEW_LEADER => Msg::NewLeader { epoch: c.u32("epoch")?, zxid: c.i64("zxid")? },
        ty::ACK_NEW_LEADER => Msg::AckNewLeader { zxid: c.i64("zxid")? },
        ty::UP_TO_DATE => Msg::UpToDate { committed: c.i64("committed zxid")? },
        ty::PROPOSAL => Msg::Proposal(c.txn()?),
        ty::ACK => Msg::Ack { zxid: c.i64("zxid")? },
        ty::COMMIT => Msg::Commit { zxid: c.i64("zxid")? },
        ty::INFORM => Msg::Inform(c.txn()?),
        ty::PING => Msg::Ping,
        ty::PONG => {
            let n = c.count("session count", 8)?;
            let mut touched = Vec::with_capacity(n);
            for _ in 0..n {
                touched.push(c.i64("session id")?);
            }
            Msg::Pong { touched }
        }
        ty::FORWARD => {
            let session_id = c.i64("session id")?;
            let cxid = c.i32("cxid")?;
            let op = match c.u8("forward op")? {
                fwd::CREATE_SESSION => {
                    let timeout_ms = c.i32("session timeout")?;
                    // A peer from before random passwords sends none: its sessions cannot be resumed.
                    let passwd = if c.remaining() == 0 { UNUSABLE_PASSWD } else { c.arr("session password")? };
                    ForwardOp::CreateSession { timeout_ms, passwd }
                }
                fwd::CLOSE_SESSION => ForwardOp::CloseSession,
                fwd::WRITE => {
                    let frame = c.bytes("forwarded request")?.to_vec();
                    let n = c.count("auth id count", 8)?;
                    let mut auth = Vec::with_capacity(capacity(n));
                    for _ in 0..n {
                        let scheme = c.string("auth scheme")?;
                        let id = c.string("auth id")?;
                        auth.push(Id { scheme, id });
                    }
                    ForwardOp::Write { frame, auth }
                }
                fwd::SYNC => ForwardOp::Sync,
                v => return Err(CodecError::BadValue { what: "forward op", value: v as u64 }),
            };
            Msg::Forward(Forward { session_id, cxid, op })
        }
        ty::SYNC_DONE => Msg::SyncDone { session_id: c.i64("session id")?, cxid: c.i32("cxid")? },
        ty::SESSION_OWNER => Msg::SessionOwner { session_id: c.i64("session id")? },
        other => return Err(CodecError::UnknownType(other)),
    };
    match c.remaining() {
        0 => Ok(msg),
        n => Err(CodecError::TrailingBytes(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Acl;
    use crate::proto::{CreateKind, ErrorCode};
    use crate::txn::{make_zxid, TxnHeader, TxnOp};
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn frame(msg: &Msg) -> Vec<u8> {
        let mut out = Vec::new();
        encode(msg, &mut out);
        out
    }

    fn round_trip(msg: &Msg) {
        let f = frame(msg);
        let len = frame_len(f[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, f.len() - 4, "{msg:?}");
        assert_eq!(decode(&f[4..]).as_ref(), Ok(msg));
    }

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn { hdr: TxnHeader { session_id: 0x0100_0000_0000_0001, cxid: 7, zxid, time_ms: 1_700_000_000_000 }, op }
    }

    fn create(zxid: i64) -> Txn {
        txn(
            zxid,
            TxnOp::Create {
                kind: CreateKind::Create,
                path: "/a/b".into(),
                data: Some(b"hello".to_vec()),
                acl: vec![Acl { perms: 31, id: Id::new("world", "anyone") }],
                ephemeral_owner: 0,
                parent_cversion: 3,
            },
        )
    }

    fn all_states() -> [PeerState; 4] {
        [PeerState::Looking, PeerState::Following, PeerState::Leading, PeerState::Observing]
    }

    fn examples() -> Vec<Msg> {
        let mut v = Vec::new();
        for state in all_states() {
            v.push(Msg::Vote(Vote { leader: 3, zxid: 0x5_0000_0007, epoch: 5, round: u64::MAX, state }));
        }
        v.extend([
            Msg::FollowerInfo { accepted_epoch: 4, last_zxid: -1, observer: false },
            Msg::FollowerInfo { accepted_epoch: u32::MAX, last_zxid: i64::MAX, observer: true },
            Msg::LeaderInfo { epoch: 9 },
            Msg::AckEpoch { current_epoch: 8, last_zxid: 0x8_0000_0010, counted: true, log: LogSummary::default() },
            Msg::AckEpoch {
                current_epoch: 8,
                last_zxid: 0x8_0000_0010,
                counted: false,
                log: LogSummary { base: 0x1_0000_0004, epoch_ends: vec![0x1_0000_0009, 0x3_0000_0001, 0x8_0000_0010] },
            },
            Msg::Trunc { zxid: 0x2_0000_0003 },
            Msg::Snap { zxid: 77, image: Vec::new() },
            Msg::Snap { zxid: 78, image: (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect() },
            Msg::Txns(Vec::new()),
            Msg::Txns(vec![
                create(1),
                txn(2, TxnOp::CreateSession { timeout_ms: 30000, passwd: [3; 16] }),
                txn(3, TxnOp::Multi(vec![TxnOp::Delete { path: "/x".into() }, TxnOp::Check { path: "/y".into() }])),
                txn(4, TxnOp::Error(ErrorCode::NoNode)),
                txn(5, TxnOp::SetData { path: "/a".into(), data: None, version: 2 }),
            ]),
            Msg::NewLeader { epoch: 6, zxid: 0x6_0000_0000 },
            Msg::AckNewLeader { zxid: 0x6_0000_0000 },
            Msg::UpToDate { committed: 12 },
            Msg::Proposal(create(13)),
            Msg::Ack { zxid: 13 },
            Msg::Commit { zxid: 13 },
            Msg::Inform(txn(14, TxnOp::CloseSession)),
            Msg::Ping,
            Msg::Pong { touched: Vec::new() },
            Msg::Pong { touched: vec![1, -2, i64::MIN, i64::MAX] },
            Msg::Forward(Forward {
                session_id: 1,
                cxid: 0,
                op: ForwardOp::CreateSession { timeout_ms: 4000, passwd: [4; 16] },
            }),
            Msg::Forward(Forward { session_id: 2, cxid: 5, op: ForwardOp::CloseSession }),
            Msg::Forward(Forward {
                session_id: 3,
                cxid: 6,
                op: ForwardOp::Write { frame: Vec::new(), auth: Vec::new() },
            }),
            Msg::Forward(Forward {
                session_id: 4,
                cxid: -3,
                op: ForwardOp::Write {
                    frame: vec![0, 0, 0, 1, 0, 0, 0, 5, 1, 2, 3],
                    auth: vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:Sk3=="), Id::new("", "")],
                },
            }),
            Msg::Forward(Forward { session_id: 5, cxid: 9, op: ForwardOp::Sync }),
            Msg::SyncDone { session_id: 5, cxid: 9 },
            Msg::SessionOwner { session_id: 6 },
        ]);
        v
    }

    /// The fuzz target `peer_message` starts from one frame body per example (the 3 MB
    /// snapshot left out) in `fuzz/seeds/peer_message/`. This test checks that every seed
    /// there still decodes, so that a codec change cannot leave the fuzzer starting from
    /// garbage; `WARREN_WRITE_FUZZ_SEEDS=1` (re)writes them.
    #[test]
    fn fuzz_seeds_decode() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/peer_message");
        if std::env::var_os("WARREN_WRITE_FUZZ_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (i, m) in examples().iter().enumerate().filter(|(_, m)| frame(m).len() < 4096) {
                std::fs::write(dir.join(format!("{i:02}")), &frame(m)[4..]).unwrap();
            }
        }
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            assert!(decode(&body).is_ok(), "{} no longer decodes: rewrite the seeds", path.display());
            seen += 1;
        }
        assert!(seen >= examples().len() - 1, "{seen} seeds in {}", dir.display());
    }

    #[test]
    fn every_variant_round_trips() {
        for m in examples() {
            round_trip(&m);
        }
    }

    #[test]
    fn frames_concatenate() {
        let msgs = examples();
        let mut out = Vec::new();
        for m in &msgs {
            encode(m, &mut out);
        }
        let mut pos = 0;
        for m in &msgs {
            let len = frame_len(out[pos..pos + 4].try_into().unwrap()).unwrap();
            assert_eq!(&decode(&out[pos + 4..pos + 4 + len]).unwrap(), m);
            pos += 4 + len;
        }
        assert_eq!(pos, out.len());
    }

    #[test]
    fn layout_is_as_documented() {
        let f = frame(&Msg::Vote(Vote { leader: 2, zxid: 3, epoch: 4, round: 5, state: PeerState::Leading }));
        let mut want = vec![0, 0, 0, 30, 1];
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(&3i64.to_be_bytes());
        want.extend_from_slice(&4u32.to_be_bytes());
        want.extend_from_slice(&5u64.to_be_bytes());
        want.push(2);
        assert_eq!(f, want);
        assert_eq!(frame(&Msg::Ping), vec![0, 0, 0, 1, 15]);
        assert_eq!(frame(&Msg::Ack { zxid: 1 }), vec![0, 0, 0, 9, 12, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[0]), Err(CodecError::UnknownType(0)));
        assert_eq!(decode(&[200]), Err(CodecError::UnknownType(200)));
        assert!(matches!(decode(&[12, 0, 0]), Err(CodecError::Truncated { .. })));
        assert_eq!(decode(&[15, 0]), Err(CodecError::TrailingBytes(1)));
        // A bad enum value.
        let mut f = frame(&Msg::Vote(Vote { leader: 1, zxid: 1, epoch: 1, round: 1, state: PeerState::Looking }));
        *f.last_mut().unwrap() = 4;
        assert_eq!(decode(&f[4..]), Err(CodecError::BadValue { what: "vote state", value: 4 }));
        let mut f = frame(&Msg::FollowerInfo { accepted_epoch: 1, last_zxid: 1, observer: true });
        *f.last_mut().unwrap() = 2;
        assert!(matches!(decode(&f[4..]), Err(CodecError::BadValue { .. })));
        // Huge lengths and counts are rejected without allocating.
        let mut snap = vec![ty::SNAP];
        snap.extend_from_slice(&0i64.to_be_bytes());
        snap.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&snap), Err(CodecError::Truncated { .. })));
        for t in [ty::TXNS, ty::PONG] {
            let mut f = vec![t];
            f.extend_from_slice(&u32::MAX.to_be_bytes());
            assert!(matches!(decode(&f), Err(CodecError::Truncated { .. })), "type {t}");
        }
        // A transaction that does not decode.
        let mut f = vec![ty::PROPOSAL];
        f.extend_from_slice(&4u32.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        assert!(matches!(decode(&f), Err(CodecError::Txn(_))));
        // Invalid UTF-8 in an auth id.
        let mut f = frame(&Msg::Forward(Forward {
            session_id: 1,
            cxid: 1,
            op: ForwardOp::Write { frame: vec![], auth: vec![Id::new("ip", "x")] },
        }));
        *f.last_mut().unwrap() = 0xff;
        assert_eq!(decode(&f[4..]), Err(CodecError::InvalidUtf8 { what: "auth id" }));
    }

    #[test]
    fn frame_length_limits() {
        assert_eq!(frame_len([0, 0, 0, 0]), Err(CodecError::BadLength(0)));
        assert_eq!(frame_len([0x40, 0, 0, 0]), Ok(MAX_FRAME));
        assert_eq!(frame_len([0x40, 0, 0, 1]), Err(CodecError::BadLength(MAX_FRAME as u64 + 1)));
        assert!(frame_len([0xff; 4]).is_err());
    }

    #[test]
    fn hello_round_trips_and_rejects_strangers() {
        for (myid, ensemble, empty) in [(0, 0, false), (1, 0, true), (255, 7, false), (u64::MAX, u64::MAX, true)] {
            let h = Hello { myid, ensemble, empty };
            let mut b = Vec::new();
            encode_hello(&h, &mut b);
            assert_eq!(b.len(), HELLO_LEN);
            assert_eq!(decode_hello(&b), Ok(h));
        }
        // Unknown flag bits are refused, not ignored.
        let mut b = Vec::new();
        encode_hello(&Hello { myid: 1, ensemble: 2, empty: true }, &mut b);
        b[24] = 3;
        assert_eq!(decode_hello(&b), Err(CodecError::BadValue { what: "hello flags", value: 3 }));
        // What a ZooKeeper 3.5+ server sends first on the election port: protocol version
        // -65536 as a long, then its sid, then the length of its address and the address.
        let mut zk = Vec::new();
        zk.extend_from_slice(&(-65536i64).to_be_bytes());
        zk.extend_from_slice(&1i64.to_be_bytes());
        zk.extend_from_slice(&9i32.to_be_bytes());
        zk.extend_from_slice(b"127.0");
        assert_eq!(zk.len(), HELLO_LEN);
        assert!(matches!(decode_hello(&zk), Err(CodecError::BadMagic(_))));
        assert_eq!(decode_hello(b"GET / HTTP/1.1\r\nHost: x\r\n"), Err(CodecError::BadMagic(*b"GET / HT")));
        assert_eq!(decode_hello(b"WRNPEER3"), Err(CodecError::HelloLength(8)));
        let msg = CodecError::BadMagic(*b"GET / HT").to_string();
        assert!(msg.contains("not a Warren peer"), "{msg}");
        // An older Warren (its 16-byte hello followed by the first frame's bytes): named as
        // such, with both versions.
        let mut old = b"WRNPEER2".to_vec();
        old.extend_from_slice(&3u64.to_be_bytes());
        old.extend_from_slice(&[0; 9]);
        let e = decode_hello(&old).unwrap_err();
        assert_eq!(e, CodecError::OtherVersion(*b"WRNPEER2"));
        let msg = e.to_string();
        assert!(msg.contains("\"WRNPEER2\"") && msg.contains("\"WRNPEER3\""), "{msg}");
    }

    #[test]
    fn a_log_summary_that_cannot_describe_a_log_is_refused() {
        let bad = [
            // an end at or below the base
            LogSummary { base: 0x2_0000_0005, epoch_ends: vec![0x2_0000_0005] },
            // two ends of one epoch
            LogSummary { base: 0, epoch_ends: vec![0x1_0000_0002, 0x1_0000_0009] },
            // descending
            LogSummary { base: 0, epoch_ends: vec![0x3_0000_0001, 0x2_0000_0009] },
        ];
        for log in bad {
            let f = frame(&Msg::AckEpoch { current_epoch: 3, last_zxid: 0x3_0000_0001, counted: true, log });
            assert!(matches!(decode(&f[4..]), Err(CodecError::BadValue { .. })), "{f:02x?}");
        }
        // A count larger than the bytes that follow is refused before anything is allocated.
        let mut f = frame(&Msg::AckEpoch { current_epoch: 3, last_zxid: 3, counted: true, log: LogSummary::default() });
        let n = f.len();
        f[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&f[4..]), Err(CodecError::Truncated { .. })));
    }

    // ---- properties ---------------------------------------------------------------------------

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![3 => "(/[a-z0-9]{1,6}){0,3}", 1 => any::<String>().prop_map(|s| s.chars().take(8).collect())]
    }

    fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(vec(any::<u8>(), 0..32))
    }

    fn acls() -> impl Strategy<Value = Vec<Acl>> {
        vec(
            (any::<i32>(), "[a-z]{0,6}", "[a-z0-9:=]{0,10}").prop_map(|(perms, s, i)| Acl { perms, id: Id::new(s, i) }),
            0..3,
        )
    }

    fn simple_op() -> impl Strategy<Value = TxnOp> {
        let kind = prop_oneof![
            Just(CreateKind::Create),
            Just(CreateKind::Create2),
            Just(CreateKind::Container),
            Just(CreateKind::Ttl)
        ];
        let error = prop_oneof![
            Just(ErrorCode::NoNode),
            Just(ErrorCode::NodeExists),
            Just(ErrorCode::BadVersion),
            Just(ErrorCode::Ok)
        ];
        prop_oneof![
            (any::<i32>(), any::<[u8; 16]>())
                .prop_map(|(timeout_ms, passwd)| TxnOp::CreateSession { timeout_ms, passwd }),
            Just(TxnOp::CloseSession),
            (kind, text(), data(), acls(), any::<i64>(), any::<i32>()).prop_map(
                |(kind, path, data, acl, ephemeral_owner, parent_cversion)| TxnOp::Create {
                    kind,
                    path,
                    data,
                    acl,
                    ephemeral_owner,
                    parent_cversion
                }
            ),
            text().prop_map(|path| TxnOp::Delete { path }),
            text().prop_map(|path| TxnOp::DeleteContainer { path }),
            (text(), data(), any::<i32>()).prop_map(|(path, data, version)| TxnOp::SetData { path, data, version }),
            (text(), acls(), any::<i32>()).prop_map(|(path, acl, version)| TxnOp::SetAcl { path, acl, version }),
            text().prop_map(|path| TxnOp::Check { path }),
            error.prop_map(TxnOp::Error),
        ]
    }

    fn arb_txn() -> impl Strategy<Value = Txn> {
        let op = prop_oneof![4 => simple_op(), 1 => vec(simple_op(), 0..4).prop_map(TxnOp::Multi)];
        (any::<i64>(), any::<i32>(), any::<i64>(), any::<i64>(), op).prop_map(
            |(session_id, cxid, zxid, time_ms, op)| Txn { hdr: TxnHeader { session_id, cxid, zxid, time_ms }, op },
        )
    }

    fn state() -> impl Strategy<Value = PeerState> {
        prop_oneof![
            Just(PeerState::Looking),
            Just(PeerState::Following),
            Just(PeerState::Leading),
            Just(PeerState::Observing)
        ]
    }

    fn forward_op() -> impl Strategy<Value = ForwardOp> {
        prop_oneof![
            (any::<i32>(), any::<[u8; 16]>())
                .prop_map(|(timeout_ms, passwd)| ForwardOp::CreateSession { timeout_ms, passwd }),
            Just(ForwardOp::CloseSession),
            (vec(any::<u8>(), 0..64), vec((text(), text()).prop_map(|(s, i)| Id::new(s, i)), 0..3))
                .prop_map(|(frame, auth)| ForwardOp::Write { frame, auth }),
            Just(ForwardOp::Sync),
        ]
    }

    /// Valid summaries: epoch ends ascending by epoch above the base.
    fn log_summary() -> impl Strategy<Value = LogSummary> {
        (0u32..1000, 0u32..100, vec((1u32..3, 1u32..1000), 0..6)).prop_map(|(e0, c0, steps)| {
            let base = make_zxid(e0, c0);
            let mut e = e0;
            let epoch_ends = steps
                .into_iter()
                .map(|(de, c)| {
                    e += de;
                    make_zxid(e, c)
                })
                .collect();
            LogSummary { base, epoch_ends }
        })
    }

    fn arb_msg() -> impl Strategy<Value = Msg> {
        prop_oneof![
            (any::<u64>(), any::<i64>(), any::<u32>(), any::<u64>(), state())
                .prop_map(|(leader, zxid, epoch, round, state)| Msg::Vote(Vote { leader, zxid, epoch, round, state })),
            (any::<u32>(), any::<i64>(), any::<bool>()).prop_map(|(accepted_epoch, last_zxid, observer)| {
                Msg::FollowerInfo { accepted_epoch, last_zxid, observer }
            }),
            any::<u32>().prop_map(|epoch| Msg::LeaderInfo { epoch }),
            (any::<u32>(), any::<i64>(), any::<bool>(), log_summary()).prop_map(
                |(current_epoch, last_zxid, counted, log)| Msg::AckEpoch { current_epoch, last_zxid, counted, log }
            ),
            any::<i64>().prop_map(|zxid| Msg::Trunc { zxid }),
            (any::<i64>(), vec(any::<u8>(), 0..256)).prop_map(|(zxid, image)| Msg::Snap { zxid, image }),
            vec(arb_txn(), 0..5).prop_map(Msg::Txns),
            (any::<u32>(), any::<i64>()).prop_map(|(epoch, zxid)| Msg::NewLeader { epoch, zxid }),
            any::<i64>().prop_map(|zxid| Msg::AckNewLeader { zxid }),
            any::<i64>().prop_map(|committed| Msg::UpToDate { committed }),
            arb_txn().prop_map(Msg::Proposal),
            any::<i64>().prop_map(|zxid| Msg::Ack { zxid }),
            any::<i64>().prop_map(|zxid| Msg::Commit { zxid }),
            arb_txn().prop_map(Msg::Inform),
            Just(Msg::Ping),
            vec(any::<i64>(), 0..8).prop_map(|touched| Msg::Pong { touched }),
            (any::<i64>(), any::<i32>(), forward_op()).prop_map(|(session_id, cxid, op)| Msg::Forward(Forward {
                session_id,
                cxid,
                op
            })),
            (any::<i64>(), any::<i32>()).prop_map(|(session_id, cxid)| Msg::SyncDone { session_id, cxid }),
            any::<i64>().prop_map(|session_id| Msg::SessionOwner { session_id }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_messages_round_trip(m in arb_msg()) {
            let f = frame(&m);
            prop_assert_eq!(frame_len(f[..4].try_into().unwrap()), Ok(f.len() - 4));
            prop_assert_eq!(decode(&f[4..]), Ok(m));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..128), t in 0u8..=20) {
            let _ = decode(&b);
            // Also with a valid type byte, so the bodies' decoders see random input.
            let mut f = vec![t];
            f.extend_from_slice(&b);
            let _ = decode(&f);
            let _ = decode_hello(&b);
        }

        #[test]
        fn mutated_frames_never_panic(
            m in arb_msg(),
            edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let f = frame(&m);
            let mut body = f[4..].to_vec();
            for (at, v) in &edits {
                let i = at.index(body.len());
                body[i] = *v;
            }
            if let Ok(d) = decode(&body) {
                // Whatever decodes encodes back to the same bytes: nothing is silently
                // ignored. (Transactions excepted: jute reads a null string as empty.)
                let again = frame(&d);
                prop_assert_eq!(decode(&again[4..]), Ok(d.clone()));
                if !matches!(d, Msg::Txns(_) | Msg::Proposal(_) | Msg::Inform(_)) {
                    prop_assert_eq!(&again[4..], &body[..]);
                }
            }
            let _ = decode(&body[..cut.index(body.len() + 1)]);
        }
    }
}
