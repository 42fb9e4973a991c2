//! Rebuilding a ZooKeeper database as a Warren tree: the newest complete snapshot, then the
//! log records after it, applied in zxid order. Pure: the caller lists the files and hands
//! over their bytes (`server::import_zk` does the disk work).
//!
//! The choices follow ZooKeeper's own start-up (FileTxnSnapLog.restore):
//! - Snapshots are tried newest first. One that does not end with its seal (cut short while
//!   being written, which is what ZooKeeper's isValidSnapshot checks) is skipped for the next
//!   older one, as ZooKeeper does. One that ends properly but fails its checksum or does not
//!   decode is damage and stops the import (ZooKeeper would quietly fall back; an offline
//!   migration should not).
//! - Logs: every log named after a zxid above the snapshot's, and the newest one at or below
//!   it (it may hold the records right after the snapshot). Records at or below the snapshot's
//!   zxid are skipped (fuzzy snapshots are replayed over, as ZooKeeper does).
//! - A record cut short ends its file (ZooKeeper's torn tail). Unlike ZooKeeper, the zxids
//!   must then continue without a gap: a missing record within an epoch stops the import.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::snapshot::{self, ZkSnapshot};
use super::txnlog::{self, LogEnd, PARENT_CVERSION_UNKNOWN};
use super::{parse_name, Compression, FileName, FormatError};
use crate::log::format::follows;
use crate::session::Passwd;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnOp};

/// What stopped an import: the file, where in it, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", file.display(), offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
pub struct ImportError {
    pub file: PathBuf,
    pub offset: Option<u64>,
    pub reason: String,
}

impl ImportError {
    pub fn new(file: &Path, offset: Option<u64>, reason: impl Into<String>) -> ImportError {
        ImportError { file: file.to_path_buf(), offset, reason: reason.into() }
    }

    fn format(file: &Path, e: FormatError) -> ImportError {
        ImportError::new(file, Some(e.offset), e.reason)
    }
}

/// ZooKeeper's `version-2/` files, as found on disk.
#[derive(Debug, Clone, Default)]
pub struct ZkFiles {
    /// (zxid, compression, path), any order.
    pub snapshots: Vec<(i64, Compression, PathBuf)>,
    /// (first zxid, path), any order.
    pub logs: Vec<(i64, PathBuf)>,
}

impl ZkFiles {
    /// Sorts file names into snapshots and logs; other names are ignored.
    pub fn add(&mut self, path: PathBuf) {
        match path.file_name().and_then(|n| n.to_str()).and_then(parse_name) {
            Some(FileName::Snapshot { zxid, compression }) => self.snapshots.push((zxid, compression, path)),
            Some(FileName::Log { zxid }) => self.logs.push((zxid, path)),
            None => {}
        }
    }
}

/// The imported database and what was read to build it.
#[derive(Debug)]
pub struct Imported {
    pub tree: DataTree,
    /// Session id → timeout (ms): the sessions alive at the last imported zxid.
    pub sessions: BTreeMap<i64, i32>,
    /// The snapshot the tree started from (None: an empty tree and the whole log).
    pub snapshot: Option<(i64, PathBuf)>,
    /// Snapshots skipped because they were cut short, with why.
    pub skipped: Vec<(PathBuf, String)>,
    pub logs: Vec<PathBuf>,
    /// Log records applied after the snapshot, and the zxid range they covered.
    pub applied: usize,
    pub first_applied_zxid: Option<i64>,
    pub last_zxid: i64,
    /// A torn record that ended a log file: (file, offset, reason).
    pub torn: Vec<(PathBuf, u64, String)>,
    /// The zxid whose ZooKeeper tree digest (3.6+) the imported tree was found to match.
    pub digest_checked: Option<i64>,
}

/// Reads and replays ZooKeeper's files. `read` returns a file's bytes.
pub fn import(
    files: &ZkFiles,
    mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Imported, ImportError> {
    let mut read = |p: &Path| read(p).map_err(|e| ImportError::new(p, None, format!("cannot read: {e}")));
    let mut snaps = files.snapshots.clone();
    snaps.sort_by(|a, b| b.0.cmp(&a.0));
    let mut skipped = Vec::new();
    let mut base: Option<(i64, PathBuf, ZkSnapshot)> = None;
    for (zxid, compression, path) in &snaps {
        let bytes = match decompress(path, *compression, read(path)?)? {
            Ok(b) if snapshot::looks_complete(&b) => b,
            Ok(b) => {
                skipped.push((path.clone(), format!("cut short ({} bytes, no closing seal)", b.len())));
                continue;
            }
            Err(why) => {
                skipped.push((path.clone(), why));
                continue;
            }
        };
        let s = snapshot::parse(&bytes).map_err(|e| ImportError::format(path, e))?;
        base = Some((*zxid, path.clone(), s));
        break;
    }
    let mut base_digest = None;
    let (start_zxid, mut tree, mut sessions, snapshot) = match base {
        Some((zxid, path, s)) => {
            base_digest = s.digest;
            let nodes = s.nodes.into_iter().map(|n| (n.path, n.data, n.acl, n.stat));
            let tree = DataTree::from_nodes(nodes, zxid).map_err(|e| ImportError::new(&path, None, e))?;
            (zxid, tree, s.sessions.into_iter().collect(), Some((zxid, path)))
        }
        None => (0, DataTree::new(), BTreeMap::new(), None),
    };
    let mut out = Imported {
        tree: DataTree::new(),
        sessions: BTreeMap::new(),
        snapshot,
        skipped,
        logs: Vec::new(),
        applied: 0,
        first_applied_zxid: None,
        last_zxid: start_zxid,
        torn: Vec::new(),
        digest_checked: None,
    };
    // (zxid, version, digest, file) of the newest digest ZooKeeper wrote for the tree.
    let mut expected_digest = match &base_digest {
        Some(d) if d.zxid == start_zxid => d.digest.map(|v| (d.zxid, d.version, v, out.snapshot.clone().map(|s| s.1))),
        _ => None,
    };
    for path in logs_after(&files.logs, start_zxid) {
        let bytes = read(&path)?;
        let scan = txnlog::parse(&bytes, zookeeper_passwd).map_err(|e| ImportError::format(&path, e))?;
        for rec in scan.records {
            let zxid = rec.txn.hdr.zxid;
            if zxid <= start_zxid {
                continue;
            }
            if !follows(out.last_zxid, zxid) {
                return Err(ImportError::new(
                    &path,
                    Some(rec.offset),
                    format!(
                        "zxid {zxid:#x} does not follow {:#x}: transactions are missing (a log file cut short or removed)",
                        out.last_zxid
                    ),
                ));
            }
            expected_digest = rec.digest.map(|(version, v)| (zxid, version, v, Some(path.clone())));
            apply(&mut tree, &mut sessions, rec.txn);
            out.applied += 1;
            out.first_applied_zxid.get_or_insert(zxid);
            out.last_zxid = zxid;
        }
        if let LogEnd::Torn { offset, reason } = scan.end {
            out.torn.push((path.clone(), offset, reason));
        }
        out.logs.push(path);
    }
    if let Some((zxid, ZK_DIGEST_VERSION, expected, file)) = expected_digest {
        let actual = zookeeper_digest(&tree);
        if actual != expected {
            return Err(ImportError::new(
                &file.unwrap_or_default(),
                None,
                format!(
                    "ZooKeeper's digest of the tree after zxid {zxid:#x} is {expected:#x}, the imported tree gives \
                     {actual:#x}: the input does not replay to the tree ZooKeeper had"
                ),
            ));
        }
        out.digest_checked = Some(zxid);
    }
    tree.last_zxid = out.last_zxid;
    out.tree = tree;
    out.sessions = sessions;
    Ok(out)
}

/// The logs ZooKeeper reads after a snapshot at `zxid` (FileTxnLog.getLogFiles): the newest
/// one starting at or below it, and every later one, oldest first.
fn logs_after(logs: &[(i64, PathBuf)], zxid: i64) -> Vec<PathBuf> {
    let mut sorted = logs.to_vec();
    sorted.sort();
    let first = sorted.iter().rposition(|(z, _)| *z <= zxid).unwrap_or(0);
    sorted.into_iter().skip(first).map(|(_, p)| p).collect()
}

/// The snapshot's stream, or (inner Err) why it is cut short: a compressed stream that ends
/// early is a snapshot ZooKeeper was still writing (it stops without waiting for its snapshot
/// thread), which ZooKeeper skips too.
fn decompress(path: &Path, compression: Compression, bytes: Vec<u8>) -> Result<Result<Vec<u8>, String>, ImportError> {
    match compression {
        Compression::None => Ok(Ok(bytes)),
        Compression::Gzip => {
            let mut out = Vec::new();
            match flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out) {
                Ok(_) => Ok(Ok(out)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Ok(Err(format!("cut short (the gzip stream ends early after {} bytes)", out.len())))
                }
                Err(e) => Err(ImportError::new(path, None, format!("gzip stream damaged: {e}"))),
            }
        }
        Compression::Snappy => snappy_stream(&bytes).map_err(|(offset, why)| ImportError::new(path, Some(offset), why)),
    }
}

/// The framing snappy-java's `SnappyOutputStream` writes (ZooKeeper's
/// `zookeeper.snapshot.compression.method=snappy`): a 16-byte header (magic `\x82SNAPPY\0`,
/// version, compatible version: big-endian i32s), then blocks of a big-endian i32 length and
/// that many bytes of raw snappy. A header may recur where a block would start (concatenated
/// streams). Err: (offset, why) for damage; inner Err: the stream is cut short, as a snapshot
/// ZooKeeper was still writing.
fn snappy_stream(bytes: &[u8]) -> Result<Result<Vec<u8>, String>, (u64, String)> {
    const MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
    const HEADER: usize = 16;
    let mut out = Vec::new();
    let mut at = 0;
    let mut decoder = snap::raw::Decoder::new();
    if !bytes.starts_with(MAGIC) {
        return Err((0, "not a snappy-java stream (no \\x82SNAPPY header)".into()));
    }
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(MAGIC) || (rest.len() < MAGIC.len() && MAGIC.starts_with(rest)) {
            if rest.len() < HEADER {
                return Ok(Err(format!("cut short (a snappy header ends early after {} bytes)", out.len())));
            }
            let compatible = i32::from_be_bytes(rest[12..16].try_into().expect("4 bytes"));
            if compatible > 1 {
                return Err((
                    at as u64,
                    format!("snappy-java stream format {compatible} is newer than this reader's 1"),
                ));
            }
            at += HEADER;
            continue;
        }
        if rest.len() < 4 {
            return Ok(Err(format!("cut short (a snappy block length ends early after {} bytes)", out.len())));
        }
        let len = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let len = usize::try_from(len).map_err(|_| (at as u64, format!("negative snappy block length {len}")))?;
        let Some(block) = rest.get(4..4 + len) else {
            return Ok(Err(format!("cut short (a snappy block ends early after {} bytes)", out.len())));
        };
        let block = decoder.decompress_vec(block).map_err(|e| (at as u64, format!("snappy block damaged: {e}")))?;
        out.extend_from_slice(&block);
        at += 4 + len;
    }
    Ok(Ok(out))
}

/// Applies one ZooKeeper txn: the tree as ZooKeeper's DataTree.processTxn, the session table
/// as FileTxnSnapLog.processTransaction.
fn apply(tree: &mut DataTree, sessions: &mut BTreeMap<i64, i32>, mut txn: Txn) {
    match &txn.op {
        TxnOp::CreateSession { timeout_ms, .. } => {
            sessions.insert(txn.hdr.session_id, *timeout_ms);
        }
        TxnOp::CloseSession => {
            sessions.remove(&txn.hdr.session_id);
        }
        _ => {}
    }
    resolve_parent_cversion(tree, &mut txn.op);
    // Failures (a node a fuzzy snapshot already has, ...) are ignored, as ZooKeeper does.
    let _ = tree.apply(&txn, &mut Vec::new());
}

/// A 3.3 create carries no parentCVersion: ZooKeeper uses the parent's cversion + 1.
fn resolve_parent_cversion(tree: &DataTree, op: &mut TxnOp) {
    match op {
        TxnOp::Create { path, parent_cversion, .. } if *parent_cversion == PARENT_CVERSION_UNKNOWN => {
            if let Some(parent) = tree.get(crate::path::parent(path)) {
                *parent_cversion = parent.stat.cversion.wrapping_add(1);
            }
        }
        TxnOp::Multi(ops) => ops.iter_mut().for_each(|o| resolve_parent_cversion(tree, o)),
        _ => {}
    }
}

/// The version of ZooKeeper's tree digest that [`zookeeper_digest`] computes (3.6 to 3.9).
pub const ZK_DIGEST_VERSION: i32 = 2;

/// ZooKeeper's digest of a tree (DigestCalculator, version 2): the wrapping sum over every node
/// outside `/zookeeper/` of the CRC32 of its path ("" for the root), its data, and czxid, mzxid,
/// pzxid, ctime, mtime (i64), version, cversion, aversion (i32), ephemeralOwner (i64), big-endian.
/// Each log record of 3.6+ carries it for the tree after that record.
pub fn zookeeper_digest(tree: &DataTree) -> i64 {
    tree.iter().filter(|(p, _)| !p.starts_with("/zookeeper/")).fold(0i64, |sum, (p, n)| {
        let mut crc = flate2::Crc::new();
        crc.update(if p == "/" { b"" } else { p.as_bytes() });
        if let Some(d) = &n.data {
            crc.update(d);
        }
        let s = &n.stat;
        let mut b = Vec::with_capacity(60);
        for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        for v in [s.version, s.cversion, s.aversion] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&s.ephemeral_owner.to_be_bytes());
        crc.update(&b);
        sum.wrapping_add(crc.sum() as i64)
    })
}

/// The password ZooKeeper gave a session: 16 bytes of `java.util.Random(id ^ 0xB3415C00)`
/// (ZooKeeperServer.generatePasswd). Imported sessions keep it so that their clients can
/// reconnect and keep their ephemerals; sessions Warren creates get random passwords.
pub fn zookeeper_passwd(session_id: i64) -> Passwd {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) as u64 ^ MULTIPLIER) & MASK;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        let mut rnd = (seed >> 16) as u32;
        for b in chunk {
            *b = rnd as u8;
            rnd >>= 8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snappy-java stream of `parts`, one block each, with a second header before the last.
    fn snappy_java(parts: &[&[u8]]) -> Vec<u8> {
        let header = |v: &mut Vec<u8>| {
            v.extend_from_slice(b"\x82SNAPPY\0");
            v.extend_from_slice(&1i32.to_be_bytes());
            v.extend_from_slice(&1i32.to_be_bytes());
        };
        let mut v = Vec::new();
        header(&mut v);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && i + 1 == parts.len() {
                header(&mut v);
            }
            let block = snap::raw::Encoder::new().compress_vec(p).expect("compress");
            v.extend_from_slice(&(block.len() as i32).to_be_bytes());
            v.extend_from_slice(&block);
        }
        v
    }

    #[test]
    fn snappy_java_streams_decode_and_their_damage_is_named() {
        let parts: [&[u8]; 3] = [b"ZKSN and more", &[7u8; 40_000], b"the end"];
        let stream = snappy_java(&parts);
        assert_eq!(snappy_stream(&stream).expect("framing").expect("whole"), parts.concat());
        for cut in [10, 18, stream.len() - 1] {
            let r = snappy_stream(&stream[..cut]).expect("a cut is not damage");
            assert!(r.expect_err("cut short").contains("cut short"));
        }
        assert_eq!(snappy_stream(b"ZKSN").expect_err("no header").0, 0);
        let mut negative = stream.clone();
        negative[16] ^= 0x80;
        let (at, why) = snappy_stream(&negative).expect_err("negative length");
        assert_eq!(at, 16, "{why}");
        let mut newer = stream.clone();
        newer[15] = 2;
        assert!(snappy_stream(&newer).expect_err("newer format").1.contains("newer"));
    }
    use crate::tree::NodeStat;
    use crate::zkformat::snapshot::tests::sample as sample_snapshot;
    use crate::zkformat::txnlog::tests::{entries, log_file};
    use std::collections::HashMap;

    fn run(files: &[(&str, Vec<u8>)]) -> Result<Imported, ImportError> {
        let mut zk = ZkFiles::default();
        let map: HashMap<PathBuf, Vec<u8>> = files.iter().map(|(n, b)| (PathBuf::from(n), b.clone())).collect();
        for (n, _) in files {
            zk.add(PathBuf::from(n));
        }
        import(&zk, |p| Ok(map[p].clone()))
    }

    #[test]
    fn java_random_password_matches_zookeeper() {
        // new Random(0 ^ 0xB3415C00L).nextBytes(new byte[16]), computed with a JVM.
        let p = zookeeper_passwd(0);
        // Check the generator itself against java.util.Random(42).nextInt() = -1170105035.
        let mut seed = (42u64 ^ 0x5_DEEC_E66D) & ((1 << 48) - 1);
        seed = (seed.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        assert_eq!((seed >> 16) as u32 as i32, -1_170_105_035);
        assert_ne!(p, [0; 16]);
        assert_eq!(zookeeper_passwd(0x100), zookeeper_passwd(0x100));
    }

    #[test]
    fn log_replay_from_an_empty_tree_builds_every_node_kind() {
        let imp = run(&[("log.1", log_file(&entries()))]).expect("import");
        assert_eq!(imp.applied, 9);
        assert_eq!(imp.last_zxid, 9);
        let p = imp.tree.get("/p").expect("/p");
        assert_eq!(p.data.as_deref(), Some(&b"w"[..]));
        assert_eq!((p.stat.version, p.stat.aversion, p.stat.czxid, p.stat.mzxid), (1, 1, 2, 6));
        // The ephemeral went with its session's close, /c with the multi.
        assert!(imp.tree.get("/p/e").is_none());
        assert!(imp.tree.get("/c").is_none());
        assert!(imp.tree.get("/t").is_some());
        assert!(imp.sessions.is_empty());
        assert_eq!(p.stat.cversion, 1);
        assert_eq!(p.stat.pzxid, 9);
    }

    #[test]
    fn the_digest_of_the_last_record_is_checked_against_the_imported_tree() {
        let tree = run(&[("log.1", log_file(&entries()))]).expect("import").tree;
        let with_digest = |d: i64| {
            let mut e = entries();
            let last = e.last_mut().expect("entries");
            let at = last.len() - 12;
            last.truncate(at);
            last.extend_from_slice(&ZK_DIGEST_VERSION.to_be_bytes());
            last.extend_from_slice(&d.to_be_bytes());
            log_file(&e)
        };
        let good = zookeeper_digest(&tree);
        let imp = run(&[("log.1", with_digest(good))]).expect("matching digest");
        assert_eq!(imp.digest_checked, Some(9));
        let e = run(&[("log.1", with_digest(good ^ 1))]).unwrap_err();
        assert!(e.reason.contains("digest") && e.reason.contains("0x9"), "{e}");
        assert_eq!(e.file, PathBuf::from("log.1"));
    }

    #[test]
    fn zookeeper_digest_covers_path_data_and_stat_but_not_the_zookeeper_subtree() {
        let base = zookeeper_digest(&DataTree::new());
        let mut t = DataTree::new();
        let mut config = t.get("/zookeeper/config").expect("config").clone();
        config.data = Some(b"changed".to_vec());
        let nodes = t.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.acl.to_vec(), n.stat)).collect::<Vec<_>>();
        let nodes =
            nodes.into_iter().map(
                |(p, d, a, s)| if p == "/zookeeper/config" { (p, config.data.clone(), a, s) } else { (p, d, a, s) },
            );
        t = DataTree::from_nodes(nodes, 0).expect("tree");
        assert_eq!(zookeeper_digest(&t), base);
        let nodes = t.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.acl.to_vec(), NodeStat { mtime: 5, ..n.stat }));
        let t2 = DataTree::from_nodes(nodes.collect::<Vec<_>>(), 0).expect("tree");
        assert_ne!(zookeeper_digest(&t2), base);
    }

    #[test]
    fn records_covered_by_the_snapshot_are_skipped_and_sessions_carried() {
        // The sample snapshot holds /a and /a/e (owned by session 0x100) at zxid 9.
        let mut e = entries();
        e.truncate(1); // createSession 0x100 at zxid 1: covered by the snapshot.
        let imp = run(&[("snapshot.9", sample_snapshot()), ("log.1", log_file(&e))]).expect("import");
        assert_eq!(imp.snapshot.as_ref().map(|s| s.0), Some(9));
        assert_eq!(imp.applied, 0);
        assert_eq!(imp.sessions.get(&0x100), Some(&30_000));
        assert_eq!(imp.tree.get("/a/e").expect("ephemeral").stat.ephemeral_owner, 0x100);
    }

    #[test]
    fn a_cut_short_newest_snapshot_falls_back_to_the_older_one() {
        let good = sample_snapshot();
        let cut = good[..good.len() / 2].to_vec();
        let imp = run(&[("snapshot.9", good), ("snapshot.20", cut)]).expect("import");
        assert_eq!(imp.snapshot.as_ref().map(|s| s.0), Some(9));
        assert_eq!(imp.skipped.len(), 1);
    }

    #[test]
    fn a_damaged_snapshot_stops_with_file_and_offset() {
        let mut bad = sample_snapshot();
        bad[40] ^= 1;
        let e = run(&[("snapshot.9", bad)]).unwrap_err();
        assert_eq!(e.file, PathBuf::from("snapshot.9"));
        assert!(e.offset.is_some(), "{e}");
    }

    #[test]
    fn a_gap_in_the_log_stops_the_import() {
        let mut e = entries();
        e.remove(4);
        let err = run(&[("log.1", log_file(&e))]).unwrap_err();
        assert!(err.reason.contains("missing"), "{err}");
        assert!(err.to_string().contains("log.1 at offset"), "{err}");
    }

    #[test]
    fn a_torn_tail_is_reported_not_fatal() {
        let bytes = log_file(&entries());
        let imp = run(&[("log.1", bytes[..bytes.len() - 3].to_vec())]).expect("import");
        assert_eq!(imp.applied, 8);
        assert_eq!(imp.torn.len(), 1);
    }

    #[test]
    fn logs_are_chosen_as_zookeeper_chooses_them() {
        let logs = vec![(1, PathBuf::from("a")), (50, PathBuf::from("b")), (90, PathBuf::from("c"))];
        assert_eq!(logs_after(&logs, 60), vec![PathBuf::from("b"), PathBuf::from("c")]);
        assert_eq!(logs_after(&logs, 0), vec![PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c")]);
        assert_eq!(logs_after(&logs, 90), vec![PathBuf::from("c")]);
    }

    #[test]
    fn gzip_snapshots_are_read() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&sample_snapshot()).expect("gzip");
        let gz = enc.finish().expect("gzip");
        let imp = run(&[("snapshot.9.gz", gz.clone())]).expect("import");
        assert!(imp.tree.get("/a").is_some());
        // Cut short: skipped for the older snapshot, as ZooKeeper does.
        let imp =
            run(&[("snapshot.9", sample_snapshot()), ("snapshot.20.gz", gz[..gz.len() / 2].to_vec())]).expect("import");
        assert_eq!(imp.snapshot.as_ref().map(|s| s.0), Some(9));
        assert!(imp.skipped[0].1.contains("gzip"), "{:?}", imp.skipped);
        // Damaged inside: stops.
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 1] ^= 0xff;
        let e = run(&[("snapshot.9.gz", bad)]).unwrap_err();
        assert_eq!(e.file, PathBuf::from("snapshot.9.gz"));
    }
}
