//! The transaction log's on-disk format: segment names and headers, record framing, the Txn
//! encoding, and the scan that finds a torn tail or corruption. Pure, over bytes: no I/O.
//!
//! A segment file is named `log.<first zxid in lower-case hex>` (ZooKeeper's naming) and is
//! preallocated with zeros. Layout, all integers little-endian:
//!
//! ```text
//! segment header (32 bytes)
//!   0  magic        8 bytes  "WRNLOG01"
//!   8  version      u32      FORMAT_VERSION
//!  12  reserved     u32      0
//!  16  first_zxid   i64      zxid of the first record this segment was created for
//!  24  reserved     u32      0
//!  28  header_crc   u32      crc32c of bytes 0..28
//! records, back to back from offset 32
//!   0  len          u32      payload length, 1..=RECORD_LEN_MAX
//!   4  crc          u32      crc32c of the len field and the payload
//!   8  payload      len bytes: one Txn (see `encode_txn`)
//! zero fill up to the preallocated size
//! ```
//!
//! A record whose length field is zero marks the end of the log (preallocated space is zero).
//! Recovery scans records in order. A bad record (cut short by the end of the file, failing
//! its checksum, or undecodable) after which no valid record can be found is the *torn tail*:
//! a crash interrupted its write, so it is truncated. A bad record with a valid record after it
//! is *corruption before the tail*: committed history may be damaged, so start-up stops with
//! the file, offset and zxid rather than silently dropping it. (A bit flip inside the very last
//! record looks exactly like a torn write and is truncated; ZooKeeper does the same.)
//!
//! The Txn payload uses jute's big-endian primitives: header `session_id i64, cxid i32, zxid
//! i64, time_ms i64`, then the op: `type i32` (ZooKeeper's opcode) and its fields.
//! createSession's fields are `timeout_ms i32` and the session's 16-byte password; a record
//! written before passwords were random ends after the timeout and reads back with
//! `session::UNUSABLE_PASSWD`.

use crate::acl::Acl;
use crate::proto::records::{read_acls, write_acls};
use crate::proto::{op, CreateKind, DecodeError, ErrorCode, Reader, Writer};
use crate::session::{PASSWD_LEN, UNUSABLE_PASSWD};
use crate::txn::{counter_of, epoch_of, Txn, TxnHeader, TxnOp};

pub const MAGIC: &[u8; 8] = b"WRNLOG01";
pub const FORMAT_VERSION: u32 = 1;
pub use crate::header::{HeaderError, HEADER_LEN};
pub const RECORD_HEADER_LEN: usize = 8;
/// A record holds one Txn; the client frame limit (jute.maxbuffer) bounds it far below this.
pub const RECORD_LEN_MAX: u32 = 64 << 20;

pub fn segment_name(first_zxid: i64) -> String {
    format!("log.{first_zxid:x}")
}

/// The first zxid a segment file name claims, or None for other files.
pub fn parse_segment_name(name: &str) -> Option<i64> {
    i64::from_str_radix(name.strip_prefix("log.")?, 16).ok()
}

pub fn encode_header(first_zxid: i64) -> [u8; HEADER_LEN] {
    crate::header::encode(MAGIC, FORMAT_VERSION, first_zxid)
}

/// Validates a segment header and returns its first zxid.
pub fn decode_header(b: &[u8]) -> Result<i64, HeaderError> {
    crate::header::decode(b, MAGIC, FORMAT_VERSION)
}

/// Appends one framed record holding `txn` to `out`.
pub fn append_record(out: &mut Vec<u8>, txn: &Txn) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    let mut w = Writer { buf: std::mem::take(out) };
    encode_txn(&mut w, txn);
    *out = w.buf;
    let len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..start + 4]), &out[start + RECORD_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The result of scanning one segment's bytes.
#[derive(Debug)]
pub struct Scan {
    pub txns: Vec<Txn>,
    /// Offset of each record of `txns` in the segment (where a truncation before it cuts).
    pub offsets: Vec<usize>,
    /// Offset just past the last good record: where appends continue.
    pub end: usize,
    /// Set when a torn tail was found at `end` (the caller truncates/zeroes it and logs).
    pub torn_tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("bad segment header: {0}")]
    Header(#[from] HeaderError),
    #[error("corrupt record at offset {offset} (after zxid {last_zxid:#x}): {what}; later records follow, so committed history may be damaged")]
    Corrupt { offset: usize, last_zxid: i64, what: String },
}

/// Reads every record of a segment, detecting the torn tail and refusing corruption before it.
pub fn scan(b: &[u8]) -> Result<Scan, ScanError> {
    decode_header(b)?;
    let mut pos = HEADER_LEN;
    let mut txns: Vec<Txn> = Vec::new();
    let mut offsets = Vec::new();
    loop {
        let last_zxid = txns.last().map_or(0, |t| t.hdr.zxid);
        if b.len() - pos < RECORD_HEADER_LEN {
            let torn = b[pos..].iter().any(|&x| x != 0);
            return Ok(Scan {
                txns,
                offsets,
                end: pos,
                torn_tail: torn.then(|| format!("partial record header at offset {pos}")),
            });
        }
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len == 0 && crc == 0 {
            // End of the written log. Anything non-zero after it was a torn write.
            let torn = b[pos..].iter().any(|&x| x != 0);
            return Ok(Scan {
                txns,
                offsets,
                end: pos,
                torn_tail: torn.then(|| format!("stray bytes after the end at offset {pos}")),
            });
        }
        let body_start = pos + RECORD_HEADER_LEN;
        let fits = len <= RECORD_LEN_MAX && (len as usize) <= b.len() - body_start;
        let bad = if !fits {
            Some(format!("record length {len} runs past the end of the segment"))
        } else {
            let body = &b[body_start..body_start + len as usize];
            let want = crc32c::crc32c_append(crc32c::crc32c(&b[pos..pos + 4]), body);
            // PLANTED BUG replay-past-corrupt (engine/src/planted.rs): a record whose checksum
            // fails is used anyway when it still decodes.
            #[cfg(feature = "planted-bugs")]
            let want = if crate::planted::active(crate::planted::Bug::ReplayPastCorrupt) && decode_txn(body).is_ok() {
                crc
            } else {
                want
            };
            if want != crc {
                Some("checksum mismatch".to_string())
            } else {
                match decode_txn(body) {
                    Ok(t) => {
                        txns.push(t);
                        offsets.push(pos);
                        pos = body_start + len as usize;
                        continue;
                    }
                    Err(e) => Some(format!("undecodable transaction: {e}")),
                }
            }
        };
        let what = bad.expect("set above");
        // A torn write is the last thing ever written to a segment (a failed write poisons
        // the log), so a bad record is a torn tail exactly when no valid record follows it.
        return match valid_record_after(b, pos + 1) {
            None => Ok(Scan { txns, offsets, end: pos, torn_tail: Some(format!("{what} at offset {pos}")) }),
            Some(next) => Err(ScanError::Corrupt {
                offset: pos,
                last_zxid,
                what: format!("{what}; a valid record follows at offset {next}"),
            }),
        };
    }
}

/// Whether a log record with zxid `next` may directly follow one with zxid `prev`: the next
/// zxid of the same epoch, or the first zxid (counter 1) of a later epoch. zxids are
/// `epoch << 32 | counter`. Every producer of records starts an epoch at counter 1: a new
/// leader's first proposal is `make_zxid(epoch, 1)` (`Node::maybe_established`), an online
/// restore installs its snapshot at `(epoch, 0)` (`backup::restored_zxid`), ZooKeeper's
/// leaders do the same (the NEWLEADER zxid is `(epoch, 0)` and is never logged), and a
/// learner is synced with every record after its last one (DIFF, or TRUNC/SNAP then the rest).
/// So a later epoch entered at any other counter means records are missing: for example an
/// older snapshot (an earlier epoch) followed by the log that began at a newer one.
pub fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (epoch_of(next) > epoch_of(prev) && counter_of(next) == 1)
}

/// The zxid of a framed record (`bytes` starts at its record header), read without decoding
/// the rest: the payload begins with the Txn header `session_id i64, cxid i32, zxid i64`.
pub fn record_zxid(bytes: &[u8]) -> Option<i64> {
    let at = RECORD_HEADER_LEN + 12;
    Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Whether a segment whose header is bad holds no record at all: nothing valid from where the
/// first record would start. Records are written only after the header is synced, so such a
/// segment is one a crash interrupted while creating it (its header torn or never written),
/// and never held an acknowledged record.
pub fn holds_no_record(b: &[u8]) -> bool {
    b.len() <= HEADER_LEN || valid_record_after(b, HEADER_LEN).is_none()
}

/// Upper bound on checksum work when searching past a bad record: past it, assume the worst
/// (corruption) rather than scan forever.
const SEARCH_BYTES_MAX: usize = 256 << 20;

/// The offset of the first position at or after `from` holding a whole record with a valid
/// checksum, if any. Only runs on damaged segments.
fn valid_record_after(b: &[u8], from: usize) -> Option<usize> {
    let mut budget = SEARCH_BYTES_MAX;
    let mut pos = from;
    while pos + RECORD_HEADER_LEN <= b.len() {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let body = pos + RECORD_HEADER_LEN;
        if len > 0 && len <= b.len() - body && len as u32 <= RECORD_LEN_MAX {
            if budget < len {
                return Some(pos);
            }
            budget -= len;
            let crc = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().expect("4 bytes"));
            if crc == crc32c::crc32c_append(crc32c::crc32c(&b[pos..pos + 4]), &b[body..body + len]) {
                return Some(pos);
            }
        }
        pos += 1;
    }
    None
}

pub fn encode_txn(w: &mut Writer, t: &Txn) {
    w.i64(t.hdr.session_id).i32(t.hdr.cxid).i64(t.hdr.zxid).i64(t.hdr.time_ms);
    encode_op(w, &t.op);
}

fn encode_op(w: &mut Writer, o: &TxnOp) {
    match o {
        TxnOp::CreateSession { timeout_ms, passwd } => {
            w.i32(op::CREATE_SESSION).i32(*timeout_ms);
            w.buf.extend_from_slice(passwd);
        }
        TxnOp::CloseSession => {
            w.i32(op::CLOSE_SESSION);
        }
        TxnOp::Create { kind, path, data, acl, ephemeral_owner, parent_cversion } => {
            w.i32(kind.opcode()).string(path).opt_buffer(data.as_deref());
            write_acls(w, acl);
            w.i64(*ephemeral_owner).i32(*parent_cversion);
        }
        TxnOp::Delete { path } => {
            w.i32(op::DELETE).string(path);
        }
        TxnOp::DeleteContainer { path } => {
            w.i32(op::DELETE_CONTAINER).string(path);
        }
        TxnOp::SetData { path, data, version } => {
            w.i32(op::SET_DATA).string(path).opt_buffer(data.as_deref()).i32(*version);
        }
        TxnOp::SetAcl { path, acl, version } => {
            w.i32(op::SET_ACL).string(path);
            write_acls(w, acl);
            w.i32(*version);
        }
        TxnOp::Check { path } => {
            w.i32(op::CHECK).string(path);
        }
        TxnOp::Multi(ops) => {
            w.i32(op::MULTI).i32(ops.len() as i32);
            for o in ops {
                encode_op(w, o);
            }
        }
        TxnOp::Error(e) => {
            w.i32(op::ERROR).i32(e.code());
        }
    }
}

pub fn decode_txn(b: &[u8]) -> Result<Txn, DecodeError> {
    let mut r = Reader::new(b);
    let hdr = TxnHeader { session_id: r.i64()?, cxid: r.i32()?, zxid: r.i64()?, time_ms: r.i64()? };
    let op = decode_op(&mut r, 0)?;
    r.finish()?;
    Ok(Txn { hdr, op })
}

fn decode_op(r: &mut Reader, depth: u8) -> Result<TxnOp, DecodeError> {
    let code = r.i32()?;
    let create = |kind: CreateKind, r: &mut Reader| -> Result<TxnOp, DecodeError> {
        let path = r.string()?;
        let data = r.opt_buffer()?;
        let acl: Vec<Acl> = read_acls(r)?;
        Ok(TxnOp::Create { kind, path, data, acl, ephemeral_owner: r.i64()?, parent_cversion: r.i32()? })
    };
    Ok(match code {
        op::CREATE_SESSION => {
            let timeout_ms = r.i32()?;
            // Records written before passwords were random end after the timeout.
            let passwd = if r.remaining() == 0 { UNUSABLE_PASSWD } else { r.fixed::<PASSWD_LEN>()? };
            TxnOp::CreateSession { timeout_ms, passwd }
        }
        op::CLOSE_SESSION => TxnOp::CloseSession,
        op::CREATE => create(CreateKind::Create, r)?,
        op::CREATE2 => create(CreateKind::Create2, r)?,
        op::CREATE_CONTAINER => create(CreateKind::Container, r)?,
        op::CREATE_TTL => create(CreateKind::Ttl, r)?,
        op::DELETE => TxnOp::Delete { path: r.string()? },
        op::DELETE_CONTAINER => TxnOp::DeleteContainer { path: r.string()? },
        op::SET_DATA => TxnOp::SetData { path: r.string()?, data: r.opt_buffer()?, version: r.i32()? },
        op::SET_ACL => TxnOp::SetAcl { path: r.string()?, acl: read_acls(r)?, version: r.i32()? },
        op::CHECK => TxnOp::Check { path: r.string()? },
        op::MULTI if depth == 0 => {
            let n = r.i32()?;
            if n < 0 || n as usize > r.remaining() / 4 {
                return Err(DecodeError::Invalid("multi op count"));
            }
            let mut ops = Vec::with_capacity(n as usize);
            for _ in 0..n {
                ops.push(decode_op(r, depth + 1)?);
            }
            TxnOp::Multi(ops)
        }
        op::ERROR => TxnOp::Error(ErrorCode::from_code(r.i32()?).ok_or(DecodeError::Invalid("error code"))?),
        other => return Err(DecodeError::UnknownOpcode(other)),
    })
}

#[cfg(test)]
mod tests;
