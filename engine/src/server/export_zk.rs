//! `warren export-zk`: the disk side of moving a stopped Warren's data back to ZooKeeper (the
//! snapshot bytes are `zkformat::export`, pure).
//!
//! Reading is the server's own recovery ([`recovery::replay_read_only`]): the newest Warren
//! snapshot, then the log replayed after it. Unlike the server, the export does not touch the
//! source (a torn tail is reported, not zeroed) and does not fall back to an older snapshot
//! when the newest one is damaged: it stops, naming the file and the reason. A snapshot that
//! was never finished (no trailer, a crash while writing it) is skipped, as the server does.
//!
//! What ZooKeeper 3.8 needs to start on the result, and nothing else, in `ZK_DATA_DIR`:
//! - `version-2/snapshot.<zxid>`: the tree and sessions at the last zxid. No transaction log:
//!   ZooKeeper starts from the snapshot alone, replays nothing, and writes its own snapshot of
//!   the same zxid at start-up.
//! - `version-2/acceptedEpoch` and `version-2/currentEpoch` (ZooKeeper keeps them beside its
//!   snapshots, unlike Warren): the epoch of that zxid. A standalone ZooKeeper ignores them; an
//!   ensemble member created without them would write the same values itself, and one whose
//!   `currentEpoch` is below its snapshot's epoch refuses to start ("The current epoch, 0, is
//!   older than the last zxid"). tests/python/test_export_ensemble.py starts a 3-server
//!   ZooKeeper ensemble on one member's export (the others empty, caught up by SNAP).
//! - No `myid`: which server of a ZooKeeper ensemble gets the data is the operator's choice.
//!
//! The target must be missing or empty; everything is written into a temporary sibling
//! directory, synced, and renamed onto it at the end, as `import_zk` does.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::import_zk::{check_target, write_through_temp, Source};
use crate::quorum::{epoch_of, Epochs};
use crate::snap::SnapError;
use crate::storage::recovery::{self, SnapshotState};
use crate::storage::{epochs, segments, snapshots, Disk, RealDisk};
use crate::tree::DataTree;
use crate::txn::{owner_kind, OwnerKind};
use crate::zkformat::export::{write_snapshot, ExportSummary};
use crate::zkformat::import::ImportError;

/// A stopped Warren's data, replayed.
pub struct WarrenState {
    pub tree: DataTree,
    /// Session id → timeout (ms).
    pub sessions: BTreeMap<i64, i32>,
    pub last_zxid: i64,
    /// The Warren snapshot the tree started from (None: an empty tree and the whole log).
    pub snapshot: Option<(i64, PathBuf)>,
    /// Unfinished snapshots skipped for an older one, with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Log records applied after the snapshot.
    pub replayed: usize,
    /// A torn tail that ended the log (left as it is on disk).
    pub torn: Option<String>,
}

impl WarrenState {
    /// (ephemerals, containers, TTL nodes).
    pub fn kinds(&self) -> (usize, usize, usize) {
        let mut k = (0, 0, 0);
        for (_, n) in self.tree.iter() {
            match owner_kind(n.stat.ephemeral_owner) {
                OwnerKind::Ephemeral(_) => k.0 += 1,
                OwnerKind::Container => k.1 += 1,
                OwnerKind::Ttl(_) => k.2 += 1,
                OwnerKind::Persistent => {}
            }
        }
        k
    }
}

/// What was written.
pub struct Exported {
    pub file: PathBuf,
    pub summary: ExportSummary,
}

/// Reads Warren's data directory as the server recovers it, without changing it.
pub fn read(source: &Source) -> Result<WarrenState, ImportError> {
    let dir = &source.snap_dir;
    if !dir.is_dir() {
        return Err(ImportError::new(dir, None, "no such directory (not a Warren data directory?)"));
    }
    let mut skipped = Vec::new();
    let mut base = None;
    let listed = snapshots::list(&RealDisk, dir).map_err(|e| ImportError::new(dir, None, e.to_string()))?;
    for (zxid, path) in listed {
        match snapshots::load(&RealDisk, &path) {
            Ok(s) => {
                base = Some((zxid, path, s));
                break;
            }
            Err(SnapError::Incomplete) => skipped.push((path, SnapError::Incomplete.to_string())),
            Err(SnapError::Corrupt { offset, what }) => return Err(ImportError::new(&path, Some(offset), what)),
            Err(e) => return Err(ImportError::new(&path, None, e.to_string())),
        }
    }
    let has_log = segments::list(&RealDisk, &source.log_dir).is_ok_and(|s| !s.is_empty());
    if base.is_none() && !has_log {
        return Err(ImportError::new(dir, None, "no Warren snapshot or log found"));
    }
    let snapshot = base.as_ref().map(|(z, p, _)| (*z, p.clone()));
    let state = base.map(|(_, _, s)| SnapshotState { tree: s.tree, sessions: s.sessions, start_zxid: s.start_zxid });
    let (machine, last_zxid, replayed, torn) = recovery::replay_read_only(&RealDisk, &source.log_dir, state)
        .map_err(|e| ImportError::new(&source.log_dir, None, e.to_string()))?;
    let sessions = machine.session_records().iter().map(|s| (s.id, s.timeout_ms)).collect();
    let mut tree = machine.into_tree();
    tree.last_zxid = last_zxid;
    Ok(WarrenState { tree, sessions, last_zxid, snapshot, skipped, replayed, torn })
}

/// Writes `state` as ZooKeeper's data directory `target` (missing or empty). `progress` gets
/// the number of nodes written so far.
pub fn write(state: &WarrenState, target: &Path, progress: &mut dyn FnMut(u64)) -> Result<Exported, ImportError> {
    check_target(target)?;
    let name = snapshots::file_name(state.last_zxid);
    let mut summary = None;
    write_through_temp(target, "export", "the ZooKeeper data directory", |tmp| {
        let v2 = tmp.join("version-2");
        fs::create_dir_all(&v2)?;
        let file = fs::File::create(v2.join(&name))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let (out, s) = write_snapshot(&state.tree, &state.sessions, state.last_zxid, out, progress)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let epoch = epoch_of(state.last_zxid);
        epochs::store(&RealDisk, &v2, Epochs { accepted: epoch, current: epoch })?;
        RealDisk.sync_dir(&v2)?;
        RealDisk.sync_dir(tmp)?;
        summary = Some(s);
        Ok(())
    })?;
    let summary = summary.expect("set by a successful write");
    Ok(Exported { file: target.join("version-2").join(name), summary })
}

/// Reads and writes in one go (no progress report).
pub fn run(source: &Source, target: &Path) -> Result<(WarrenState, Exported), ImportError> {
    check_target(target)?;
    let state = read(source)?;
    let exported = write(&state, target, &mut |_| {})?;
    Ok((state, exported))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zkformat::import::{import, ZkFiles};

    fn warren_data_with_log() -> tempfile::TempDir {
        use crate::log::format;
        use crate::txn::{Txn, TxnHeader, TxnOp};
        let dir = tempfile::tempdir().expect("tempdir");
        let v2 = dir.path().join("version-2");
        fs::create_dir_all(&v2).expect("mkdir");
        let hdr = |zxid| TxnHeader { session_id: 0x77, cxid: 1, zxid, time_ms: 1_700_000_000_000 };
        let txns = [
            Txn { hdr: hdr(1), op: TxnOp::CreateSession { timeout_ms: 12_000, passwd: [9; 16] } },
            Txn {
                hdr: hdr(2),
                op: TxnOp::Create {
                    kind: crate::proto::CreateKind::Create2,
                    path: "/e".into(),
                    data: Some(b"x".to_vec()),
                    acl: crate::acl::open_acl_unsafe(),
                    ephemeral_owner: 0x77,
                    parent_cversion: 1,
                },
            },
        ];
        let mut b = format::encode_header(1).to_vec();
        for t in &txns {
            format::append_record(&mut b, t);
        }
        b.resize(b.len() + 4096, 0);
        fs::write(v2.join(format::segment_name(1)), b).expect("write");
        dir
    }

    #[test]
    fn export_then_import_gives_the_same_tree_and_sessions() {
        let data = warren_data_with_log();
        let out = tempfile::tempdir().expect("tempdir");
        let target = out.path().join("zk");
        let (state, exported) = run(&Source::new(data.path(), None), &target).expect("export");
        assert_eq!((state.last_zxid, state.replayed), (2, 2));
        assert_eq!(exported.summary.sessions, 1);
        assert!(exported.file.ends_with("version-2/snapshot.2"), "{}", exported.file.display());
        assert_eq!(fs::read_to_string(target.join("version-2/currentEpoch")).expect("epoch"), "0");
        let mut files = ZkFiles::default();
        files.add(exported.file.clone());
        let back = import(&files, |p| fs::read(p)).expect("import");
        assert_eq!(back.sessions, BTreeMap::from([(0x77, 12_000)]));
        assert_eq!(back.tree.get("/e").expect("/e").stat, state.tree.get("/e").expect("/e").stat);
        assert_eq!(back.tree.node_count(), state.tree.node_count());
        // A second export into the now non-empty target is refused.
        let e = run(&Source::new(data.path(), None), &target).err().expect("refused");
        assert!(e.reason.contains("not empty"), "{e}");
    }

    #[test]
    fn a_damaged_snapshot_stops_the_export_and_writes_nothing() {
        let data = warren_data_with_log();
        let v2 = data.path().join("version-2");
        let tree = DataTree::new();
        let image = crate::snap::encode_tree(&tree, &[], 2);
        let path = snapshots::write(&RealDisk, &v2, 2, &image).expect("snapshot");
        let mut bytes = fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        fs::write(&path, bytes).expect("write");
        let out = tempfile::tempdir().expect("tempdir");
        let target = out.path().join("zk");
        let e = run(&Source::new(data.path(), None), &target).err().expect("damage");
        assert_eq!(e.file, path);
        assert!(!target.exists());
        assert_eq!(fs::read_dir(out.path()).expect("ls").count(), 0, "no temporary directory left");
    }

    #[test]
    fn a_missing_data_directory_is_named() {
        let out = tempfile::tempdir().expect("tempdir");
        let e = run(&Source::new(&out.path().join("nope"), None), &out.path().join("zk")).err().expect("missing");
        assert!(e.reason.contains("no such directory"), "{e}");
    }
}
