//! ZooKeeper's transaction log (FileTxnLog, layout in the module docs of `zkformat`), decoded
//! into Warren's own [`Txn`].

use super::{adler32, FormatError, LOG_MAGIC};
use crate::proto::jute::{DecodeResult, Reader};
use crate::proto::records::read_acls;
use crate::proto::{op, CreateKind, ErrorCode};
use crate::session::Passwd;
use crate::txn::{ttl_owner, Txn, TxnHeader, TxnOp, CONTAINER_OWNER};

const FILE_HEADER_LEN: usize = 16;
/// checksum i64 + length i32.
const RECORD_PREFIX_LEN: usize = 12;
/// TxnDigest{version i32, treeDigest i64} after the txn in 3.6+.
const TXN_DIGEST_LEN: usize = 12;
const END_OF_RECORD: u8 = b'B';

/// A create whose record predates parentCVersion (3.3 logs): the parent's cversion + 1 is used.
pub const PARENT_CVERSION_UNKNOWN: i32 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Where the record starts in the file.
    pub offset: u64,
    pub txn: Txn,
    /// 3.6+: (digest version, ZooKeeper's digest of the whole tree after this txn).
    pub digest: Option<(i32, i64)>,
}

/// How the records of a log file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// At the end of the file or at preallocated zeros.
    Clean,
    /// A record cut short (a crash while writing it): what ZooKeeper's FileTxnIterator treats
    /// as the end of the file.
    Torn { offset: u64, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    pub dbid: i64,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
}

/// Reads every record of one log file. `passwd` gives a createSession's password (see
/// `import::zookeeper_passwd`).
pub fn parse(bytes: &[u8], passwd: impl Fn(i64) -> Passwd) -> Result<LogScan, FormatError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(FormatError::new(bytes.len(), "the file header is cut short"));
    }
    let mut r = Reader::new(&bytes[..FILE_HEADER_LEN]);
    let magic = r.i32().map_err(|e| FormatError::decode(0, e))?;
    if magic != LOG_MAGIC {
        return Err(FormatError::new(0, format!("not a ZooKeeper log (magic {magic:#x}, expected \"ZKLG\")")));
    }
    let version = r.i32().map_err(|e| FormatError::decode(0, e))?;
    if version != super::FORMAT_VERSION {
        return Err(FormatError::new(4, format!("unsupported log format version {version}")));
    }
    let dbid = r.i64().map_err(|e| FormatError::decode(0, e))?;
    let mut records = Vec::new();
    let mut at = FILE_HEADER_LEN;
    let end = loop {
        match next_record(bytes, at)? {
            Next::Record { entry, next } => {
                let (txn, digest) = decode_entry(entry, &passwd).map_err(|e| FormatError { offset: at as u64, ..e })?;
                records.push(LogRecord { offset: at as u64, txn, digest });
                at = next;
            }
            Next::End(end) => break end,
        }
    };
    Ok(LogScan { dbid, records, end })
}

enum Next<'a> {
    Record { entry: &'a [u8], next: usize },
    End(LogEnd),
}

fn next_record(bytes: &[u8], at: usize) -> Result<Next<'_>, FormatError> {
    let torn = |reason: &str| Ok(Next::End(LogEnd::Torn { offset: at as u64, reason: reason.to_string() }));
    let rest = &bytes[at..];
    if rest.is_empty() {
        return Ok(Next::End(LogEnd::Clean));
    }
    if rest.len() < RECORD_PREFIX_LEN {
        return torn("record header cut short");
    }
    let crc = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
    let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if len == 0 {
        // Preallocated space: the log ends here.
        return Ok(Next::End(LogEnd::Clean));
    }
    if len == -1 {
        return torn("null record");
    }
    if len < 0 {
        return Err(FormatError::new(at + 8, format!("negative record length {len}")));
    }
    let len = len as usize;
    if rest.len() < RECORD_PREFIX_LEN + len + 1 {
        return torn("record cut short");
    }
    let entry = &rest[RECORD_PREFIX_LEN..RECORD_PREFIX_LEN + len];
    if rest[RECORD_PREFIX_LEN + len] != END_OF_RECORD {
        return torn("end-of-record byte missing");
    }
    let expected = adler32(entry) as i64;
    if crc != expected {
        return Err(FormatError::new(
            at,
            format!("record checksum mismatch: the file says {crc:#x}, the record gives {expected:#x}"),
        ));
    }
    Ok(Next::Record { entry, next: at + RECORD_PREFIX_LEN + len + 1 })
}

/// One entry: TxnHeader, the txn of its type, an optional TxnDigest. Offsets in errors are
/// relative to the record (the caller rebases them).
fn decode_entry(entry: &[u8], passwd: &impl Fn(i64) -> Passwd) -> Result<(Txn, Option<(i32, i64)>), FormatError> {
    let mut r = Reader::new(entry);
    let d = |e| FormatError::decode(RECORD_PREFIX_LEN, e);
    let hdr = TxnHeader { session_id: r.i64().map_err(d)?, cxid: r.i32().map_err(d)?, zxid: 0, time_ms: 0 };
    let hdr = TxnHeader { zxid: r.i64().map_err(d)?, time_ms: r.i64().map_err(d)?, ..hdr };
    let ty = r.i32().map_err(d)?;
    let body_at = r.position();
    let body = &entry[body_at..];
    let (op, used) = match ty {
        op::CREATE_SESSION => {
            let mut b = Reader::new(body);
            let timeout_ms = b.i32().map_err(d)?;
            (TxnOp::CreateSession { timeout_ms, passwd: passwd(hdr.session_id) }, b.position())
        }
        // The paths to delete are the session's ephemerals, which the tree knows, so they are
        // read past, not used. Before 3.6 (or with closeSessionTxn disabled) there is no list.
        op::CLOSE_SESSION => {
            let mut b = Reader::new(body);
            let used =
                if b.strings().is_ok() && matches!(b.remaining(), 0 | TXN_DIGEST_LEN) { b.position() } else { 0 };
            (TxnOp::CloseSession, used)
        }
        op::MULTI => {
            let mut b = Reader::new(body);
            let subs = b.vec(8, |b| Ok((b.i32()?, b.buffer()?))).map_err(d)?;
            let mut ops = Vec::with_capacity(subs.len());
            for (sub_ty, data) in subs {
                let mut s = Reader::new(&data);
                let sub = decode_op(sub_ty, hdr.session_id, &mut s).map_err(|e| FormatError::decode(0, e))?;
                ops.push(sub.ok_or_else(|| FormatError::new(0, format!("txn type {sub_ty} inside a multi")))?);
            }
            (TxnOp::Multi(failed_multi_as_errors(ops)), b.position())
        }
        _ => {
            let mut b = Reader::new(body);
            match decode_op(ty, hdr.session_id, &mut b) {
                Ok(Some(op)) => (op, b.position()),
                Ok(None) => {
                    return Err(FormatError::new(0, format!("unsupported txn type {ty} (zxid {:#x})", hdr.zxid)))
                }
                // A 3.3 create: CreateTxnV0 has no parentCVersion.
                Err(_) if matches!(ty, op::CREATE | op::CREATE2) => {
                    let mut b = Reader::new(body);
                    (create_v0(ty, hdr.session_id, &mut b).map_err(d)?, b.position())
                }
                Err(e) => return Err(FormatError::decode(RECORD_PREFIX_LEN + body_at, e)),
            }
        }
    };
    let mut rest = Reader::new(&body[used..]);
    let digest = match rest.remaining() {
        0 => None,
        TXN_DIGEST_LEN => Some((rest.i32().map_err(d)?, rest.i64().map_err(d)?)),
        n => return Err(FormatError::new(0, format!("{n} unexpected bytes after txn {:#x}", hdr.zxid))),
    };
    Ok((Txn { hdr, op }, digest))
}

/// A multi that failed at prep is logged with the ops prepared before the failure still in
/// it, then the error: none of it applies (DataTree.processTxn turns every op into an error,
/// Ok before the failing one, RuntimeInconsistency after), as Warren's own failed multis say.
fn failed_multi_as_errors(ops: Vec<TxnOp>) -> Vec<TxnOp> {
    let Some(first_error) = ops.iter().position(|o| matches!(o, TxnOp::Error(_))) else {
        return ops;
    };
    ops.into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            TxnOp::Error(e) => TxnOp::Error(e),
            _ if i > first_error => TxnOp::Error(ErrorCode::RuntimeInconsistency),
            _ => TxnOp::Error(ErrorCode::Ok),
        })
        .collect()
}

/// The txn records that appear both alone and inside a multi. None: not such a type.
fn decode_op(ty: i32, session_id: i64, r: &mut Reader) -> DecodeResult<Option<TxnOp>> {
    let create = |kind, r: &mut Reader, owner_of: &dyn Fn(&mut Reader) -> DecodeResult<(i64, i32)>| {
        let path = r.string()?;
        let data = r.opt_buffer()?;
        let acl = read_acls(r)?;
        let (ephemeral_owner, parent_cversion) = owner_of(r)?;
        Ok(Some(TxnOp::Create { kind, path, data, acl, ephemeral_owner, parent_cversion }))
    };
    match ty {
        op::CREATE | op::CREATE2 => {
            let kind = if ty == op::CREATE { CreateKind::Create } else { CreateKind::Create2 };
            create(kind, r, &|r| {
                let ephemeral = r.bool()?;
                Ok((if ephemeral { session_id } else { 0 }, r.i32()?))
            })
        }
        op::CREATE_CONTAINER => create(CreateKind::Container, r, &|r| Ok((CONTAINER_OWNER, r.i32()?))),
        op::CREATE_TTL => create(CreateKind::Ttl, r, &|r| {
            let parent_cversion = r.i32()?;
            Ok((ttl_owner(r.i64()?), parent_cversion))
        }),
        op::DELETE => Ok(Some(TxnOp::Delete { path: r.string()? })),
        op::DELETE_CONTAINER => Ok(Some(TxnOp::DeleteContainer { path: r.string()? })),
        op::SET_DATA | op::RECONFIG => {
            Ok(Some(TxnOp::SetData { path: r.string()?, data: r.opt_buffer()?, version: r.i32()? }))
        }
        op::SET_ACL => Ok(Some(TxnOp::SetAcl { path: r.string()?, acl: read_acls(r)?, version: r.i32()? })),
        op::CHECK => {
            let path = r.string()?;
            r.i32()?;
            Ok(Some(TxnOp::Check { path }))
        }
        op::ERROR => {
            let code = r.i32()?;
            Ok(Some(TxnOp::Error(ErrorCode::from_code(code).unwrap_or(ErrorCode::SystemError))))
        }
        _ => Ok(None),
    }
}

fn create_v0(ty: i32, session_id: i64, r: &mut Reader) -> DecodeResult<TxnOp> {
    let kind = if ty == op::CREATE { CreateKind::Create } else { CreateKind::Create2 };
    let path = r.string()?;
    let data = r.opt_buffer()?;
    let acl = read_acls(r)?;
    let ephemeral_owner = if r.bool()? { session_id } else { 0 };
    Ok(TxnOp::Create { kind, path, data, acl, ephemeral_owner, parent_cversion: PARENT_CVERSION_UNKNOWN })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::acl::{Acl, Id};
    use crate::proto::jute::Writer;

    fn hdr(w: &mut Writer, session: i64, zxid: i64, ty: i32) {
        w.i64(session).i32(1).i64(zxid).i64(1_700_000_000_000).i32(ty);
    }

    fn acl(w: &mut Writer) {
        w.i32(1).i32(31).string("world").string("anyone");
    }

    /// Frames entries as FileTxnLog does, after the file header.
    pub(crate) fn log_file(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(LOG_MAGIC).i32(2).i64(0);
        for e in entries {
            w.i64(adler32(e) as i64).buffer(e);
            w.buf.push(b'B');
        }
        w.buf
    }

    /// One entry of every kind, zxids 1..=9 from session 0x100, each with a TxnDigest of
    /// version 1 (not compared by the import; see `import::tests` for version 2).
    pub(crate) fn entries() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut push = |f: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new();
            f(&mut w);
            w.i32(1).i64(0x55);
            out.push(w.buf);
        };
        push(&|w| {
            hdr(w, 0x100, 1, op::CREATE_SESSION);
            w.i32(30_000);
        });
        push(&|w| {
            hdr(w, 0x100, 2, op::CREATE2);
            w.string("/p").opt_buffer(Some(b"v"));
            acl(w);
            w.bool(false).i32(1);
        });
        push(&|w| {
            hdr(w, 0x100, 3, op::CREATE);
            w.string("/p/e").opt_buffer(None);
            acl(w);
            w.bool(true).i32(1);
        });
        push(&|w| {
            hdr(w, 0x100, 4, op::CREATE_CONTAINER);
            w.string("/c").opt_buffer(Some(b""));
            acl(w);
            w.i32(3);
        });
        push(&|w| {
            hdr(w, 0x100, 5, op::CREATE_TTL);
            w.string("/t").opt_buffer(Some(b""));
            acl(w);
            w.i32(4).i64(5000);
        });
        push(&|w| {
            hdr(w, 0x100, 6, op::SET_DATA);
            w.string("/p").opt_buffer(Some(b"w")).i32(1);
        });
        push(&|w| {
            hdr(w, 0x100, 7, op::SET_ACL);
            w.string("/p");
            w.i32(1).i32(1).string("ip").string("127.0.0.1");
            w.i32(1);
        });
        push(&|w| {
            hdr(w, 0x100, 8, op::MULTI);
            let mut a = Writer::new();
            a.string("/p").i32(2);
            let mut b = Writer::new();
            b.string("/c");
            w.i32(2).i32(op::CHECK).buffer(&a.buf).i32(op::DELETE).buffer(&b.buf);
        });
        push(&|w| {
            hdr(w, 0x100, 9, op::CLOSE_SESSION);
            w.strings(&["/p/e".to_string()]);
        });
        out
    }

    #[test]
    fn decodes_every_txn_kind() {
        let bytes = log_file(&entries());
        let scan = parse(&bytes, |id| [id as u8; 16]).expect("parse");
        assert_eq!(scan.end, LogEnd::Clean);
        let ops: Vec<&TxnOp> = scan.records.iter().map(|r| &r.txn.op).collect();
        assert_eq!(scan.records.iter().map(|r| r.txn.hdr.zxid).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
        assert_eq!(ops[0], &TxnOp::CreateSession { timeout_ms: 30_000, passwd: [0; 16] });
        let world = vec![Acl::new(31, Id::new("world", "anyone"))];
        assert_eq!(
            ops[1],
            &TxnOp::Create {
                kind: CreateKind::Create2,
                path: "/p".into(),
                data: Some(b"v".to_vec()),
                acl: world.clone(),
                ephemeral_owner: 0,
                parent_cversion: 1
            }
        );
        assert!(matches!(ops[2], TxnOp::Create { ephemeral_owner: 0x100, data: None, .. }));
        assert!(matches!(
            ops[3],
            TxnOp::Create { kind: CreateKind::Container, ephemeral_owner: CONTAINER_OWNER, parent_cversion: 3, .. }
        ));
        assert!(matches!(ops[4], TxnOp::Create { kind: CreateKind::Ttl, parent_cversion: 4, .. }));
        if let TxnOp::Create { ephemeral_owner, .. } = ops[4] {
            assert_eq!(*ephemeral_owner, ttl_owner(5000));
        }
        assert_eq!(ops[5], &TxnOp::SetData { path: "/p".into(), data: Some(b"w".to_vec()), version: 1 });
        assert_eq!(
            ops[6],
            &TxnOp::SetAcl { path: "/p".into(), acl: vec![Acl::new(1, Id::new("ip", "127.0.0.1"))], version: 1 }
        );
        assert_eq!(
            ops[7],
            &TxnOp::Multi(vec![TxnOp::Check { path: "/p".into() }, TxnOp::Delete { path: "/c".into() }])
        );
        assert_eq!(ops[8], &TxnOp::CloseSession);
        assert_eq!(scan.records[1].txn.hdr.time_ms, 1_700_000_000_000);
        assert!(scan.records.iter().all(|r| r.digest == Some((1, 0x55))));
    }

    #[test]
    fn a_failed_multi_applies_none_of_its_ops() {
        let mut w = Writer::new();
        hdr(&mut w, 0x100, 1, op::MULTI);
        let mut create = Writer::new();
        create.string("/m/b").opt_buffer(Some(b"")).i32(0).bool(false).i32(1);
        let mut err = Writer::new();
        err.i32(ErrorCode::BadVersion as i32);
        let mut later = Writer::new();
        later.string("/m");
        w.i32(3).i32(op::CREATE).buffer(&create.buf).i32(op::ERROR).buffer(&err.buf);
        w.i32(op::DELETE).buffer(&later.buf);
        let scan = parse(&log_file(&[w.buf]), |_| [0; 16]).expect("parse");
        assert_eq!(
            scan.records[0].txn.op,
            TxnOp::Multi(vec![
                TxnOp::Error(ErrorCode::Ok),
                TxnOp::Error(ErrorCode::BadVersion),
                TxnOp::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
    }

    #[test]
    fn preallocated_zeros_end_the_log_cleanly() {
        let mut bytes = log_file(&entries());
        bytes.resize(bytes.len() + 4096, 0);
        let scan = parse(&bytes, |_| [0; 16]).expect("parse");
        assert_eq!(scan.records.len(), 9);
        assert_eq!(scan.end, LogEnd::Clean);
    }

    #[test]
    fn a_torn_last_record_ends_the_log_where_it_starts() {
        let bytes = log_file(&entries());
        let full = parse(&bytes, |_| [0; 16]).expect("parse");
        let last = full.records[8].offset as usize;
        for cut in last + 1..bytes.len() {
            let scan = parse(&bytes[..cut], |_| [0; 16]).expect("torn tail is not damage");
            assert_eq!(scan.records.len(), 8, "cut at {cut}");
            assert!(matches!(scan.end, LogEnd::Torn { offset, .. } if offset as usize == last), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_inside_a_record_is_damage_at_that_record() {
        let bytes = log_file(&entries());
        let full = parse(&bytes, |_| [0; 16]).expect("parse");
        let rec = full.records[3].offset as usize;
        let mut b = bytes.clone();
        b[rec + RECORD_PREFIX_LEN + 20] ^= 1;
        let e = parse(&b, |_| [0; 16]).unwrap_err();
        assert_eq!(e.offset as usize, rec);
        assert!(e.reason.contains("checksum"), "{e}");
        // No flipped byte panics; each is an error, a torn end, or (in a length) a shorter log.
        // Bytes 8..16 are the dbid, which nothing checks (ZooKeeper neither).
        for i in (0..bytes.len()).filter(|i| !(8..16).contains(i)) {
            let mut b = bytes.clone();
            b[i] ^= 0x81;
            match parse(&b, |_| [0; 16]) {
                Err(_) => {}
                Ok(s) => assert!(s.records.len() < 9 || s.records != full.records, "flip at {i} unnoticed"),
            }
        }
    }

    #[test]
    fn a_short_header_or_wrong_magic_is_damage() {
        assert!(parse(b"ZKLG", |_| [0; 16]).unwrap_err().reason.contains("header"));
        let mut bytes = log_file(&[]);
        bytes[1] = b'X';
        assert!(parse(&bytes, |_| [0; 16]).unwrap_err().reason.contains("ZKLG"));
    }

    #[test]
    fn a_3_3_create_without_parent_cversion_is_read() {
        let mut w = Writer::new();
        hdr(&mut w, 5, 1, op::CREATE);
        w.string("/old").opt_buffer(Some(b"x"));
        acl(&mut w);
        w.bool(false);
        let scan = parse(&log_file(&[w.buf]), |_| [0; 16]).expect("parse");
        assert!(matches!(scan.records[0].txn.op, TxnOp::Create { parent_cversion: PARENT_CVERSION_UNKNOWN, .. }));
    }
}
