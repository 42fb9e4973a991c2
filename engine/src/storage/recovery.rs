//! Start-up recovery: the newest valid snapshot, then the log replayed from it (standalone,
//! [`recover`]) or read without applying it (ensemble member, [`recover_ensemble`]). Runs
//! before the executors start, through the [`Disk`] it is given.

use std::io;
use std::path::{Path, PathBuf};

use tracing::info;

use super::segments::{read_log, Repair, Tail};
use super::{epochs, snapshots, Disk};
use crate::log::format::ScanError;
use crate::machine::{Machine, MachineConfig, Now};
use crate::quorum::NodeInit;
use crate::tree::DataTree;

/// Why recovery (or reading the log) refused to go on. Each variant keeps what a caller or a
/// test may want to look at (the file, the zxids, the underlying error); the text is what an
/// operator reads when the server refuses to start, so it names the file and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A directory (the log's or the snapshots') could not be listed.
    #[error("cannot list {}: {source}", dir.display())]
    List { dir: PathBuf, source: io::Error },
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// Removing a last segment that never held a record (a crash while creating it).
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error("cannot sync {}: {source}", dir.display())]
    SyncDir { dir: PathBuf, source: io::Error },
    /// Zeroing the torn tail of the last segment failed.
    #[error("cannot truncate the torn tail of {}: {source}", path.display())]
    ZeroTail { path: PathBuf, source: io::Error },
    /// A segment's header is bad (and it holds records, or is not the last), or a corrupt
    /// record has valid ones after it.
    #[error("{}: {source}", path.display())]
    Scan { path: PathBuf, source: ScanError },
    /// A segment other than the last ends in a torn record.
    #[error("{}: {why}, but later segments exist, so this is corruption of committed history", path.display())]
    TornBeforeEnd { path: PathBuf, why: String },
    /// A zxid at or below its predecessor's.
    #[error("{}: log goes back from zxid {prev:#x} to {zxid:#x}: the log is out of order", path.display())]
    GoesBack { path: PathBuf, prev: i64, zxid: i64 },
    /// A zxid that does not [`format::follows`](crate::log::format::follows) its predecessor.
    #[error("{}: log jumps from zxid {last:#x} to {zxid:#x}: transactions are missing", path.display())]
    Gap { path: PathBuf, last: i64, zxid: i64 },
    /// The epoch files could not be read or parsed (the message names the file).
    #[error("{0}")]
    Epochs(#[source] io::Error),
    /// See [`check_fallback`]: `damaged` is the damaged snapshot's zxid, `used` the one
    /// recovery would start from (0: an empty tree).
    #[error(
        "snapshot {} is damaged and the log does not reach back to zxid {damaged:#x}: starting from {} \
         would lose the state it held. Replace it from a backup or from another server's snapshot \
         (or remove it and the log to resynchronise this member from its leader)",
        snapshots::file_name(*damaged),
        if *used == 0 { "an empty tree".to_string() } else { snapshots::file_name(*used) }
    )]
    DamagedSnapshot { damaged: i64, used: i64 },
}

/// What a snapshot gives recovery: the tree, the sessions, and the zxid the log resumes after.
pub struct SnapshotState {
    pub tree: DataTree,
    pub sessions: Vec<crate::snap::SessionRecord>,
    pub start_zxid: i64,
}

pub struct Recovered {
    pub machine: Machine,
    pub tail: Option<Tail>,
    pub last_zxid: i64,
    pub replayed: usize,
}

/// Rebuilds a standalone server's machine from disk: the newest valid snapshot in `snap_dir`
/// (leftover temporary files removed first), then the log in `log_dir` replayed after it, a
/// torn tail repaired. A start that fell back past a damaged snapshot the log does not reach
/// back to is refused ([`check_fallback`]).
pub fn recover(
    disk: &dyn Disk,
    snap_dir: &Path,
    log_dir: &Path,
    cfg: MachineConfig,
    now: Now,
) -> Result<Recovered, RecoveryError> {
    snapshots::remove_leftover_temp_files(disk, snap_dir);
    let newest = snapshots::load_newest_valid(disk, snap_dir)
        .map_err(|source| RecoveryError::List { dir: snap_dir.to_path_buf(), source })?;
    let (tree, sessions, start_zxid) = match newest.snapshot {
        Some(s) => (s.tree, s.sessions, s.start_zxid),
        None => (DataTree::new(), Vec::new(), 0),
    };
    let mut machine = Machine::new(cfg, tree, now);
    machine.restore_sessions(&sessions, now);
    let mut first_replayed = None;
    let log = read_log(disk, log_dir, start_zxid, Repair::Yes, |t| {
        first_replayed = first_replayed.or(Some(t.hdr.zxid));
        machine.replay(&t, now)
    })?;
    check_fallback(newest.skipped, start_zxid, first_replayed)?;
    info!(
        "recovered to zxid {:#x}: snapshot at {:#x} + {} transactions from the log",
        log.last_zxid, start_zxid, log.count
    );
    Ok(Recovered { machine, tail: log.tail, last_zxid: log.last_zxid, replayed: log.count })
}

/// What a stopped server's data replays to, for `warren export-zk`: [`recover`] without
/// touching the files (a torn tail ends the log but is not zeroed, an empty last segment is
/// left alone). Returns the tree, the sessions and the last zxid, and the torn tail if any.
pub fn replay_read_only(
    disk: &dyn Disk,
    log_dir: &Path,
    snapshot: Option<SnapshotState>,
) -> Result<(Machine, i64, usize, Option<String>), RecoveryError> {
    let (tree, sessions, start_zxid) = match snapshot {
        Some(s) => (s.tree, s.sessions, s.start_zxid),
        None => (DataTree::new(), Vec::new(), 0),
    };
    let now = Now::from_ms(0, 0);
    let mut machine = Machine::new(MachineConfig::default(), tree, now);
    machine.restore_sessions(&sessions, now);
    let log = read_log(disk, log_dir, start_zxid, Repair::No, |t| machine.replay(&t, now))?;
    Ok((machine, log.last_zxid, log.count, log.torn))
}

/// What an ensemble member starts from, see [`recover_ensemble`].
pub struct EnsembleRecovered {
    /// Epochs, snapshot tree and sessions, and the unapplied log records after the snapshot.
    pub init: NodeInit,
    /// Where the log writer resumes (None: no segment left, the next append creates one).
    pub tail: Option<Tail>,
    /// The zxid the snapshot was taken at (0 without a snapshot).
    pub snapshot_zxid: i64,
    /// The last zxid in the log (the snapshot's when the log holds nothing after it).
    pub last_zxid: i64,
}

/// Reads what an ensemble member starts from: its epochs (`data_dir`), the newest valid
/// snapshot in `snap_dir` (or an empty tree), and every log record after the snapshot's zxid,
/// checked for continuity like [`recover`] but NOT applied to the tree: whether they were
/// committed is learnt from the leader. A torn tail is repaired as in [`recover`].
pub fn recover_ensemble(
    disk: &dyn Disk,
    data_dir: &Path,
    snap_dir: &Path,
    log_dir: &Path,
) -> Result<EnsembleRecovered, RecoveryError> {
    let epochs = epochs::load(disk, data_dir).map_err(RecoveryError::Epochs)?;
    snapshots::remove_leftover_temp_files(disk, snap_dir);
    let newest = snapshots::load_newest_valid(disk, snap_dir)
        .map_err(|source| RecoveryError::List { dir: snap_dir.to_path_buf(), source })?;
    let (tree, sessions, snapshot_zxid) = match newest.snapshot {
        Some(s) => (s.tree, s.sessions, s.start_zxid),
        None => (DataTree::new(), Vec::new(), 0),
    };
    let mut txns: Vec<crate::txn::Txn> = Vec::new();
    let log = read_log(disk, log_dir, snapshot_zxid, Repair::Yes, |t| txns.push(t))?;
    check_fallback(newest.skipped, snapshot_zxid, txns.first().map(|t| t.hdr.zxid))?;
    info!(
        "ensemble recovery: epochs accepted {} current {}, snapshot at {:#x}, {} log records after it up to {:#x}",
        epochs.accepted, epochs.current, snapshot_zxid, log.count, log.last_zxid
    );
    Ok(EnsembleRecovered {
        init: NodeInit { epochs, tree, sessions, log: txns },
        tail: log.tail,
        snapshot_zxid,
        last_zxid: log.last_zxid,
    })
}

/// Refuses a start that fell back past a damaged snapshot (`skipped`, see
/// [`snapshots::Newest`]) to an older state (`used`, 0 for none) when the log replayed after it
/// (`first_replayed`, its first zxid) does not reach back to the damaged snapshot's zxid: the
/// state that snapshot held would be silently lost. Found by the simulator with a bit flipped
/// in the snapshot a SNAP installed (the log restarts after it, so nothing else holds it).
///
/// # Errors
/// [`RecoveryError::DamagedSnapshot`], whose text says what to do.
pub fn check_fallback(skipped: Option<i64>, used: i64, first_replayed: Option<i64>) -> Result<(), RecoveryError> {
    let Some(bad) = skipped.filter(|&bad| bad > used) else { return Ok(()) };
    if first_replayed.is_some_and(|first| first <= bad) {
        return Ok(());
    }
    Err(RecoveryError::DamagedSnapshot { damaged: bad, used })
}

/// Creates the `version-2` directories (ZooKeeper's layout) and syncs their parents.
pub fn prepare_dirs(disk: &dyn Disk, dirs: &[&Path]) -> Result<(), RecoveryError> {
    for d in dirs {
        disk.create_dir_all(d).map_err(|source| RecoveryError::CreateDir { dir: d.to_path_buf(), source })?;
        if let Some(p) = d.parent() {
            let _ = disk.sync_dir(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn falling_back_past_a_damaged_snapshot_needs_the_log_to_reach_back_to_it() {
        // No damaged snapshot, or one older than the snapshot used: nothing to check.
        assert!(check_fallback(None, 0, None).is_ok());
        assert!(check_fallback(Some(5), 9, None).is_ok());
        // The log replayed from the older state reaches back to the damaged one's zxid.
        assert!(check_fallback(Some(0x1_0000_0010), 0x1_0000_0004, Some(0x1_0000_0005)).is_ok());
        assert!(check_fallback(Some(0x1_0000_0010), 0, Some(0x1_0000_0010)).is_ok());
        // A SNAP install restarts the log after its snapshot: falling back past it to an empty
        // tree, or to an older snapshot, loses its state (also across an epoch start, which
        // the log's own continuity check lets through).
        let e = check_fallback(Some(0x3_0000_0016), 0, None).expect_err("nothing replayed");
        assert!(matches!(e, RecoveryError::DamagedSnapshot { damaged: 0x3_0000_0016, used: 0 }), "{e:?}");
        // The operator's message names the damaged snapshot and what recovery would start from.
        let text = e.to_string();
        assert!(text.contains("snapshot.300000016") && text.contains("an empty tree"), "{text}");
        assert!(check_fallback(Some(0x3_0000_0016), 0, Some(0x3_0000_0017)).is_err());
        assert!(check_fallback(Some(0x3_0000_0016), 0x2_0000_0001, Some(0x4_0000_0001)).is_err());
    }
    use crate::log::format;
    use crate::storage::RealDisk;
    use crate::txn::make_zxid;
    use crate::txn::Txn;
    use crate::txn::{TxnHeader, TxnOp};

    fn txn(zxid: i64) -> Txn {
        Txn {
            hdr: TxnHeader { session_id: 0x77, cxid: 1, zxid, time_ms: 1_700_000_000_000 },
            op: TxnOp::CreateSession { timeout_ms: 30_000, passwd: [9; 16] },
        }
    }

    /// A preallocated-looking segment named after its first record.
    fn write_segment(dir: &Path, zxids: &[i64]) -> PathBuf {
        let mut b = format::encode_header(zxids[0]).to_vec();
        for &z in zxids {
            format::append_record(&mut b, &txn(z));
        }
        b.resize(b.len() + 4096, 0);
        let path = dir.join(format::segment_name(zxids[0]));
        fs::write(&path, b).expect("write segment");
        path
    }

    fn read_all(dir: &Path, after: i64) -> Result<Vec<i64>, RecoveryError> {
        let mut out = Vec::new();
        let log = read_log(&RealDisk, dir, after, Repair::Yes, |t| out.push(t.hdr.zxid))?;
        assert_eq!(log.count, out.len());
        assert_eq!(log.last_zxid, out.last().copied().unwrap_or(after));
        Ok(out)
    }

    #[test]
    fn follows_accepts_the_next_counter_or_the_first_of_a_later_epoch() {
        assert!(format::follows(0, 1));
        assert!(format::follows(make_zxid(1, 7), make_zxid(1, 8)));
        assert!(format::follows(make_zxid(1, 7), make_zxid(2, 1)));
        assert!(format::follows(make_zxid(1, 7), make_zxid(5, 1)), "epochs without records in between");
        assert!(!format::follows(make_zxid(1, 7), make_zxid(5, 3)), "a later epoch entered past its first record");
        assert!(!format::follows(make_zxid(1, 7), make_zxid(2, 0)));
        assert!(format::follows(0, make_zxid(1, 1)));
        assert!(!format::follows(make_zxid(1, 7), make_zxid(1, 9)));
        assert!(!format::follows(make_zxid(1, 7), make_zxid(1, 7)));
        assert!(!format::follows(make_zxid(2, 1), make_zxid(1, 8)));
    }

    #[test]
    fn epoch_jumps_are_accepted_within_and_across_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = [1, 2, 3, make_zxid(1, 1), make_zxid(1, 2)];
        let b = [make_zxid(3, 1), make_zxid(3, 2), make_zxid(4, 1)];
        write_segment(dir.path(), &a);
        write_segment(dir.path(), &b);
        let all: Vec<i64> = a.iter().chain(&b).copied().collect();
        assert_eq!(read_all(dir.path(), 0).expect("read"), all);
        // Resuming after a snapshot inside the first segment, and exactly at its end.
        assert_eq!(read_all(dir.path(), 3).expect("read"), all[3..]);
        assert_eq!(read_all(dir.path(), make_zxid(1, 2)).expect("read"), b);
        // A snapshot at the end of epoch 1 followed by a later epoch's first record.
        assert_eq!(read_all(dir.path(), make_zxid(1, 9)).expect("read"), b);
    }

    #[test]
    fn a_later_epoch_entered_past_its_first_record_is_a_gap() {
        // A log that restarted at a snapshot taken inside epoch 3 (a SNAP from the leader)
        // cannot be replayed over an older snapshot of epoch 1: the records of epoch 3 up to
        // its snapshot are missing.
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), &[make_zxid(3, 6), make_zxid(3, 7)]);
        let e = read_all(dir.path(), make_zxid(1, 9)).expect_err("gap across epochs");
        assert!(matches!(e, RecoveryError::Gap { last: 0x1_0000_0009, zxid: 0x3_0000_0006, .. }), "{e:?}");
        assert!(e.to_string().contains("jumps from zxid 0x100000009 to 0x300000006"), "{e}");
        // From the snapshot the log restarted at, it replays.
        assert_eq!(read_all(dir.path(), make_zxid(3, 5)).expect("read"), vec![make_zxid(3, 6), make_zxid(3, 7)]);
        // Within one segment too.
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), &[make_zxid(1, 1), make_zxid(1, 2), make_zxid(2, 4)]);
        let e = read_all(dir.path(), 0).expect_err("gap across epochs");
        assert!(matches!(e, RecoveryError::Gap { last: 0x1_0000_0002, zxid: 0x2_0000_0004, .. }), "{e:?}");
    }

    #[test]
    fn gaps_within_an_epoch_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), &[make_zxid(1, 1), make_zxid(1, 2), make_zxid(1, 4)]);
        let e = read_all(dir.path(), 0).expect_err("gap");
        assert!(matches!(e, RecoveryError::Gap { last: 0x1_0000_0002, zxid: 0x1_0000_0004, .. }), "{e:?}");
        // A gap between the snapshot and the log.
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), &[5, 6, 7]);
        let e = read_all(dir.path(), 3).expect_err("gap after the snapshot");
        assert!(matches!(e, RecoveryError::Gap { last: 3, zxid: 5, .. }), "{e:?}");
        // ... but a snapshot inside the log is fine, and one past its end leaves nothing.
        assert_eq!(read_all(dir.path(), 5).expect("read"), vec![6, 7]);
        assert_eq!(read_all(dir.path(), 9).expect("read"), Vec::<i64>::new());
    }

    #[test]
    fn backwards_and_repeated_zxids_are_refused() {
        for zxids in [
            vec![1, 2, 3, 2],
            vec![1, 2, 2],
            vec![make_zxid(2, 1), make_zxid(1, 5)],
            vec![make_zxid(1, 1), make_zxid(1, 2), 3],
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            write_segment(dir.path(), &zxids);
            let e = read_all(dir.path(), 0).expect_err("backwards");
            assert!(matches!(e, RecoveryError::GoesBack { .. }), "{zxids:?}: {e:?}");
            // Also when the repeat is at or before the snapshot.
            let e = read_all(dir.path(), zxids[zxids.len() - 1]).expect_err("backwards");
            assert!(matches!(e, RecoveryError::GoesBack { .. }), "{zxids:?}: {e:?}");
        }
    }

    #[test]
    fn standalone_recover_still_replays_contiguous_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), &[1, 2, 3]);
        let snaps = tempfile::tempdir().expect("tempdir");
        let r = recover(&RealDisk, snaps.path(), dir.path(), MachineConfig::default(), Now::from_ms(0, 0))
            .expect("recover");
        assert_eq!((r.last_zxid, r.replayed), (3, 3));
        let t = r.tail.expect("tail");
        assert!(t.path.ends_with("log.1"));
        write_segment(dir.path(), &[5]);
        let e = recover(&RealDisk, snaps.path(), dir.path(), MachineConfig::default(), Now::from_ms(0, 0))
            .err()
            .expect("gap");
        assert!(matches!(e, RecoveryError::Gap { last: 3, zxid: 5, .. }), "{e:?}");
    }

    #[test]
    fn recover_ensemble_does_not_apply_the_log() {
        let data = tempfile::tempdir().expect("tempdir");
        let (snap_dir, log_dir) = (data.path().join("snap"), data.path().join("log"));
        prepare_dirs(&RealDisk, &[&snap_dir, &log_dir]).expect("dirs");
        let fresh = recover_ensemble(&RealDisk, data.path(), &snap_dir, &log_dir).expect("fresh");
        assert_eq!(fresh.init.epochs, crate::quorum::Epochs::default());
        assert!(fresh.init.log.is_empty() && fresh.tail.is_none());
        assert_eq!((fresh.snapshot_zxid, fresh.last_zxid), (0, 0));

        epochs::store(&RealDisk, data.path(), crate::quorum::Epochs { accepted: 2, current: 1 }).expect("epochs");
        write_segment(&log_dir, &[make_zxid(1, 1), make_zxid(1, 2), make_zxid(2, 1)]);
        let r = recover_ensemble(&RealDisk, data.path(), &snap_dir, &log_dir).expect("recover");
        assert_eq!(r.init.epochs, crate::quorum::Epochs { accepted: 2, current: 1 });
        let zxids: Vec<i64> = r.init.log.iter().map(|t| t.hdr.zxid).collect();
        assert_eq!(zxids, vec![make_zxid(1, 1), make_zxid(1, 2), make_zxid(2, 1)]);
        assert_eq!(r.last_zxid, make_zxid(2, 1));
        // Not applied: the sessions the records create are not in the tree's session list.
        assert!(r.init.sessions.is_empty());
        assert_eq!(r.init.tree.node_count(), DataTree::new().node_count());
        assert!(r.tail.is_some());

        fs::write(data.path().join("currentEpoch"), "one").expect("write");
        let e = recover_ensemble(&RealDisk, data.path(), &snap_dir, &log_dir).err().expect("bad epoch");
        assert!(matches!(e, RecoveryError::Epochs(_)), "{e:?}");
        assert!(e.to_string().contains("currentEpoch"), "{e}");
    }
}
