//! `warren recover-quorum`: the surviving members of an ensemble that lost a majority for good,
//! restarted as a new, smaller ensemble (docs/operations.md, "When a server is lost").
//!
//! The steps, all on stopped servers:
//! 1. [`lock_all`]: every survivor's dataDir lock ([`super::dir_lock`]) is taken, so the
//!    directories of a running server are refused, and no server starts on them meanwhile.
//! 2. [`inspect`] each survivor, changing nothing: its epochs, its ensemble id, its newest valid
//!    snapshot and every log record after it, committed or not (any record a member holds may
//!    have been acknowledged to a client: the leader commits on a majority, and this member may
//!    be the only one of that majority left). A damaged log or snapshot is refused.
//! 3. [`check_membership`]: every survivor votes in the new ensemble, and the members that are
//!    not survivors are too few to make a majority without one.
//! 4. [`choose`] the most complete survivor: the highest last logged zxid, ties by current then
//!    accepted epoch, then the higher id. Its log holds every write any survivor holds that
//!    may have been acknowledged: a record in another survivor's log that it lacks belongs to an
//!    epoch it has moved past, and a leader of that later epoch held every committed record.
//! 5. [`apply`]: the winner's snapshots and log segments copied to every other survivor (its
//!    own files moved aside, not deleted), then on every survivor a new `ensembleId` and
//!    `acceptedEpoch` = `currentEpoch` = [`new_epoch`], above every epoch any survivor has seen.
//!
//! Why copy rather than let the election pick the winner: with identical logs on every
//! survivor, any majority of the new ensemble (which holds a survivor, step 3) starts from the
//! whole history, even one that forms while the winner is still down. The election then
//! compares equal (epoch, zxid) claims among survivors, and a member without data, at
//! (0, 0), never wins over them. The new epoch makes the next leader's epoch (one above the
//! highest accepted) larger than any epoch of the lost ensemble; the new ensemble id keeps a
//! member of the lost ensemble that comes back with its data out ([`super::identity`]).
//!
//! A crash while applying leaves every survivor inspectable: copies are written under temp
//! names, the old files moved aside, then the copies renamed, snapshots first and log segments
//! oldest first (a snapshot and a prefix of the winner's log are a valid shorter history); the
//! winner itself only gets its epoch and id files. Running the command again finishes the job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::dir_lock::{self, DirLock};
use super::member::MemberDirs;
use super::recovery::{check_fallback, RecoveryError};
use super::segments::{self, read_log, Repair};
use super::{epochs, identity, snapshots, Disk};
use crate::quorum::{Epochs, ServerId};
use crate::txn::epoch_of;

/// Suffix of a copied file not yet renamed into place.
const COPY_SUFFIX: &str = ".recover";

/// A survivor and its directories, as its zoo.cfg gives them ([`MemberDirs::of_config`]; the
/// dataDir also holds `ensembleId` and the lock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub myid: ServerId,
    pub dirs: MemberDirs,
}

/// What a survivor's directories hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub myid: ServerId,
    pub epochs: Epochs,
    /// The `ensembleId` file's value (None: no file, the original ensemble).
    pub ensemble: Option<u64>,
    /// The newest valid snapshot's zxid (0: none).
    pub snapshot_zxid: i64,
    /// A newer snapshot skipped as damaged (the log still covers it, or inspection fails).
    pub skipped_snapshot: Option<i64>,
    /// The last logged zxid, committed or not (the snapshot's when no record follows it).
    pub last_zxid: i64,
    /// Log records after the snapshot.
    pub records: usize,
    /// A torn tail ending the log (left as it is: the server repairs it when it starts).
    pub torn: Option<String>,
}

/// Why the command refuses (nothing changed) or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("no survivor given")]
    NoSurvivor,
    #[error("server {0} is given twice")]
    Twice(ServerId),
    #[error("servers {a} and {b} have the same dataDir {}", dir.display())]
    SameDataDir { a: ServerId, b: ServerId, dir: PathBuf },
    #[error("server {myid}: a server is running on {}: stop it first (it holds {})", dir.display(), dir_lock::LOCK_FILE)]
    Running { myid: ServerId, dir: PathBuf },
    #[error("server {myid}: {source}")]
    Lock { myid: ServerId, source: std::io::Error },
    #[error(
        "server {myid}: its data is damaged: {source}. Nothing was changed. Repair it (a backup, \
         or the file from another server), or leave this server out of the recovery"
    )]
    Damaged { myid: ServerId, source: RecoveryError },
    #[error("server {myid}: {source}")]
    Unreadable { myid: ServerId, source: std::io::Error },
    #[error(
        "the new zoo.cfg files list different members: server {a}'s lists {a_members}, server {b}'s lists {b_members}"
    )]
    Memberships { a: ServerId, b: ServerId, a_members: String, b_members: String },
    #[error("survivor {0} is not a member of the new ensemble: its zoo.cfg must have a server.{0} line")]
    NotAMember(ServerId),
    #[error("survivor {0} is an observer in the new ensemble: every survivor must be a participant")]
    NotAVoter(ServerId),
    #[error(
        "the new members {new:?} are {} of {voters} voters: they could make a majority ({quorum}) \
         without any survivor and elect an empty leader. Start with fewer new members and add \
         the others once the recovered ensemble serves (an unchanged zoo.cfg still lists the lost \
         servers)",
        new.len()
    )]
    NewMembersOutvote { new: Vec<ServerId>, voters: usize, quorum: usize },
    #[error("no survivor holds any transaction or snapshot: there is nothing to recover")]
    Nothing,
    #[error("epoch {0} is the highest a survivor has seen: no new epoch is left")]
    EpochsExhausted(u32),
    #[error("{what}: {source}")]
    Apply { what: String, source: std::io::Error },
}

/// Takes every survivor's dataDir lock (held until the returned locks are dropped).
///
/// # Errors
/// [`RecoverError::Running`] when a server holds one; a lock file that cannot be made.
pub fn lock_all(survivors: &[Survivor]) -> Result<Vec<DirLock>, RecoverError> {
    let mut held = Vec::new();
    for s in survivors {
        match dir_lock::try_lock(&s.dirs.data) {
            Ok(Some(l)) => held.push(l),
            Ok(None) => return Err(RecoverError::Running { myid: s.myid, dir: s.dirs.data.clone() }),
            Err(source) => return Err(RecoverError::Lock { myid: s.myid, source }),
        }
    }
    Ok(held)
}

/// Reads what a stopped survivor holds, changing nothing.
///
/// # Errors
/// [`RecoverError::Damaged`]: a log that recovery would refuse (corruption before its tail, a
/// gap, a zxid going back), or a damaged newest snapshot the log does not cover;
/// [`RecoverError::Unreadable`]: epoch or ensemble id files that cannot be read.
pub fn inspect(disk: &dyn Disk, s: &Survivor) -> Result<Found, RecoverError> {
    let damaged = |source| RecoverError::Damaged { myid: s.myid, source };
    let unreadable = |source| RecoverError::Unreadable { myid: s.myid, source };
    let epochs = epochs::load(disk, &s.dirs.data).map_err(unreadable)?;
    let ensemble = identity::load(disk, &s.dirs.data).map_err(unreadable)?;
    let newest = snapshots::load_newest_valid(disk, &s.dirs.snap)
        .map_err(|source| damaged(RecoveryError::List { dir: s.dirs.snap.clone(), source }))?;
    let snapshot_zxid = newest.snapshot.as_ref().map_or(0, |n| n.start_zxid);
    let mut first = None;
    let log = read_log(disk, &s.dirs.log, snapshot_zxid, Repair::No, |t| {
        first = first.or(Some(t.hdr.zxid));
    })
    .map_err(damaged)?;
    check_fallback(newest.skipped, snapshot_zxid, first).map_err(damaged)?;
    Ok(Found {
        myid: s.myid,
        epochs,
        ensemble,
        snapshot_zxid,
        skipped_snapshot: newest.skipped,
        last_zxid: log.last_zxid,
        records: log.count,
        torn: log.torn,
    })
}

/// Checks the survivors against the new membership: each survivor is a participant, and the
/// participants that are not survivors cannot make a majority on their own.
///
/// # Errors
/// [`RecoverError::NotAMember`], [`RecoverError::NotAVoter`], [`RecoverError::NewMembersOutvote`].
pub fn check_membership(
    survivors: &[ServerId],
    voters: &[ServerId],
    observers: &[ServerId],
) -> Result<(), RecoverError> {
    for &id in survivors {
        if observers.contains(&id) {
            return Err(RecoverError::NotAVoter(id));
        }
        if !voters.contains(&id) {
            return Err(RecoverError::NotAMember(id));
        }
    }
    let new: Vec<ServerId> = voters.iter().copied().filter(|v| !survivors.contains(v)).collect();
    let quorum = voters.len() / 2 + 1;
    if new.len() >= quorum {
        return Err(RecoverError::NewMembersOutvote { new, voters: voters.len(), quorum });
    }
    Ok(())
}

/// Refuses a survivor given twice, or two survivors sharing a dataDir.
///
/// # Errors
/// [`RecoverError::NoSurvivor`], [`RecoverError::Twice`], [`RecoverError::SameDataDir`].
pub fn check_distinct(survivors: &[Survivor]) -> Result<(), RecoverError> {
    if survivors.is_empty() {
        return Err(RecoverError::NoSurvivor);
    }
    for (i, a) in survivors.iter().enumerate() {
        for b in &survivors[i + 1..] {
            if a.myid == b.myid {
                return Err(RecoverError::Twice(a.myid));
            }
            if a.dirs.data == b.dirs.data {
                return Err(RecoverError::SameDataDir { a: a.myid, b: b.myid, dir: a.dirs.data.clone() });
            }
        }
    }
    Ok(())
}

/// The index of the most complete survivor: the highest last logged zxid, then current epoch,
/// then accepted epoch, then the higher id (so the choice never depends on argument order).
///
/// # Errors
/// [`RecoverError::Nothing`]: no survivor holds a record or a snapshot.
pub fn choose(found: &[Found]) -> Result<usize, RecoverError> {
    let best = (0..found.len())
        .max_by_key(|&i| {
            let f = &found[i];
            (f.last_zxid, f.epochs.current, f.epochs.accepted, f.myid)
        })
        .ok_or(RecoverError::Nothing)?;
    if found[best].last_zxid == 0 {
        return Err(RecoverError::Nothing);
    }
    Ok(best)
}

/// One above every epoch a survivor has seen: accepted, current, and those of its zxids.
///
/// # Errors
/// [`RecoverError::EpochsExhausted`] when that would leave no room for the leader's own next
/// epoch below 2^31 (zxids stay positive).
pub fn new_epoch(found: &[Found]) -> Result<u32, RecoverError> {
    let seen = found
        .iter()
        .flat_map(|f| [f.epochs.accepted, f.epochs.current, epoch_of(f.last_zxid), epoch_of(f.snapshot_zxid)])
        .max()
        .unwrap_or(0);
    if seen >= (i32::MAX as u32) - 2 {
        return Err(RecoverError::EpochsExhausted(seen));
    }
    Ok(seen + 1)
}

/// Makes the survivors the new ensemble (see the module doc): the winner's files copied to the
/// others, then every survivor's `ensembleId` and epochs. Returns what it did, one line each.
///
/// # Errors
/// [`RecoverError::Apply`], naming the file; run the command again once the cause is fixed.
pub fn apply(
    disk: &dyn Disk,
    survivors: &[Survivor],
    winner: usize,
    epoch: u32,
    ensemble: u64,
) -> Result<Vec<String>, RecoverError> {
    let mut done = Vec::new();
    let from = &survivors[winner];
    let snaps = listed(snapshots::list(disk, &from.dirs.snap), &from.dirs.snap)?;
    let logs = listed(segments::list(disk, &from.dirs.log), &from.dirs.log)?;
    for (_, to) in survivors.iter().enumerate().filter(|(i, _)| *i != winner) {
        copy_files(disk, &snaps, &logs, to, epoch)?;
        done.push(format!(
            "server {}: holds server {}'s {} snapshot(s) and {} log segment(s); its own files are in {}",
            to.myid,
            from.myid,
            snaps.len(),
            logs.len(),
            aside_dir(&to.dirs.log, epoch).display()
        ));
    }
    for s in survivors {
        identity::store(disk, &s.dirs.data, ensemble).map_err(|source| apply_err(&s.dirs.data, source))?;
        epochs::store(disk, &s.dirs.data, Epochs { accepted: epoch, current: epoch })
            .map_err(|source| apply_err(&s.dirs.data, source))?;
        done.push(format!("server {}: ensembleId {ensemble}, acceptedEpoch and currentEpoch {epoch}", s.myid));
    }
    Ok(done)
}

fn apply_err(path: &Path, source: std::io::Error) -> RecoverError {
    RecoverError::Apply { what: path.display().to_string(), source }
}

fn listed(l: std::io::Result<Vec<(i64, PathBuf)>>, dir: &Path) -> Result<Vec<(i64, PathBuf)>, RecoverError> {
    l.map_err(|source| apply_err(dir, source))
}

/// Where a survivor's own log and snapshot files go when the winner's replace them.
pub fn aside_dir(dir: &Path, epoch: u32) -> PathBuf {
    let name = dir.file_name().map_or("version-2".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.before-recover-quorum-{epoch}"))
}

/// The winner's snapshots and segments into `to`'s directories: copies under temp names
/// (synced), `to`'s own files moved aside, then the copies renamed: snapshots first, then log
/// segments oldest first, so that a crash between two renames leaves a valid, shorter history.
fn copy_files(
    disk: &dyn Disk,
    snaps: &[(i64, PathBuf)],
    logs: &[(i64, PathBuf)],
    to: &Survivor,
    epoch: u32,
) -> Result<(), RecoverError> {
    let dirs: BTreeSet<&Path> = [to.dirs.snap.as_path(), to.dirs.log.as_path()].into_iter().collect();
    for dir in &dirs {
        disk.create_dir_all(dir).map_err(|e| apply_err(dir, e))?;
        for name in disk.list(dir).map_err(|e| apply_err(dir, e))? {
            if name.ends_with(COPY_SUFFIX) {
                disk.remove(&dir.join(&name)).map_err(|e| apply_err(&dir.join(&name), e))?;
            }
        }
    }
    // The copies, under temp names that neither recovery nor purge reads.
    let mut renames = Vec::new();
    for (files, dir) in [(snaps, &to.dirs.snap), (logs, &to.dirs.log)] {
        for (_, src) in files {
            let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = dir.join(format!("{name}{COPY_SUFFIX}"));
            let bytes = disk.read(src).map_err(|e| apply_err(src, e))?;
            disk.write_synced(&tmp, &bytes).map_err(|e| apply_err(&tmp, e))?;
            renames.push((tmp, dir.join(name)));
        }
    }
    for dir in &dirs {
        disk.sync_dir(dir).map_err(|e| apply_err(dir, e))?;
    }
    // Its own files aside: the directory then holds no data until the renames below.
    for dir in &dirs {
        let own: Vec<PathBuf> = listed(snapshots::list(disk, dir), dir)?
            .into_iter()
            .chain(listed(segments::list(disk, dir), dir)?)
            .map(|(_, p)| p)
            .collect();
        let aside = aside_dir(dir, epoch);
        disk.create_dir_all(&aside).map_err(|e| apply_err(&aside, e))?;
        for p in own {
            let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            disk.rename(&p, &aside.join(name)).map_err(|e| apply_err(&p, e))?;
        }
        disk.sync_dir(&aside).map_err(|e| apply_err(&aside, e))?;
        disk.sync_dir(dir).map_err(|e| apply_err(dir, e))?;
        if let Some(parent) = aside.parent() {
            disk.sync_dir(parent).map_err(|e| apply_err(parent, e))?;
        }
    }
    for (tmp, path) in renames {
        disk.rename(&tmp, &path).map_err(|e| apply_err(&tmp, e))?;
        if let Some(dir) = path.parent() {
            disk.sync_dir(dir).map_err(|e| apply_err(dir, e))?;
        }
    }
    Ok(())
}

/// What [`recover`] found and did.
#[derive(Debug)]
pub struct Report {
    /// Per survivor, in the order given.
    pub found: Vec<Found>,
    /// Index into `found` of the most complete survivor.
    pub winner: usize,
    pub epoch: u32,
    pub ensemble: u64,
    /// What was changed, one line each (empty for a dry run).
    pub done: Vec<String>,
}

/// The whole command over `survivors` (see the module doc), with `voters` and `observers` the
/// new membership and `ensemble` the new ensemble id (nonzero); with `dry_run`, everything but
/// [`apply`]. The locks are held until it returns.
///
/// # Errors
/// Every refusal of the steps; nothing is changed unless the error is [`RecoverError::Apply`].
pub fn recover(
    disk: &dyn Disk,
    survivors: &[Survivor],
    voters: &[ServerId],
    observers: &[ServerId],
    ensemble: u64,
    dry_run: bool,
) -> Result<Report, RecoverError> {
    check_distinct(survivors)?;
    let ids: Vec<ServerId> = survivors.iter().map(|s| s.myid).collect();
    check_membership(&ids, voters, observers)?;
    let _locks = lock_all(survivors)?;
    let found = survivors.iter().map(|s| inspect(disk, s)).collect::<Result<Vec<Found>, RecoverError>>()?;
    let winner = choose(&found)?;
    let epoch = new_epoch(&found)?;
    let done = if dry_run { Vec::new() } else { apply(disk, survivors, winner, epoch, ensemble)? };
    Ok(Report { found, winner, epoch, ensemble, done })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use super::*;
    use crate::log::format::HEADER_LEN;
    use crate::storage::recovery::recover_ensemble;
    use crate::storage::segments::LogWriter;
    use crate::storage::RealDisk;
    use crate::txn::{make_zxid, Txn, TxnHeader, TxnOp};

    fn found(myid: ServerId, last_zxid: i64, current: u32, accepted: u32) -> Found {
        Found {
            myid,
            epochs: Epochs { accepted, current },
            ensemble: None,
            snapshot_zxid: 0,
            skipped_snapshot: None,
            last_zxid,
            records: 0,
            torn: None,
        }
    }

    #[test]
    fn the_most_complete_log_is_chosen_whatever_the_epochs_and_the_order() {
        // A longer log wins over a higher current epoch (the member that accepted a new
        // leader's epoch but never received its history).
        let a = found(1, make_zxid(3, 9), 3, 3);
        let b = found(2, make_zxid(3, 4), 5, 5);
        let c = found(3, make_zxid(2, 40), 2, 2);
        for order in [vec![a.clone(), b.clone(), c.clone()], vec![c.clone(), b.clone(), a.clone()]] {
            assert_eq!(order[choose(&order).expect("choose")].myid, 1);
        }
        // Ties on the zxid: the current epoch, then the accepted one, then the higher id.
        let tie = [found(1, make_zxid(3, 9), 3, 4), found(2, make_zxid(3, 9), 4, 4), found(3, make_zxid(3, 9), 3, 5)];
        assert_eq!(tie[choose(&tie).expect("choose")].myid, 2);
        let tie = [found(4, make_zxid(3, 9), 3, 4), found(2, make_zxid(3, 9), 3, 5)];
        assert_eq!(tie[choose(&tie).expect("choose")].myid, 2);
        let tie = [found(4, make_zxid(3, 9), 3, 3), found(2, make_zxid(3, 9), 3, 3)];
        assert_eq!(tie[choose(&tie).expect("choose")].myid, 4);
        // Nothing to recover.
        assert!(matches!(choose(&[]), Err(RecoverError::Nothing)));
        assert!(matches!(choose(&[found(1, 0, 2, 2), found(2, 0, 0, 0)]), Err(RecoverError::Nothing)));
    }

    #[test]
    fn the_new_epoch_is_above_every_epoch_any_survivor_saw() {
        assert_eq!(new_epoch(&[found(1, make_zxid(3, 9), 3, 3), found(2, make_zxid(2, 1), 2, 7)]).expect("epoch"), 8);
        assert_eq!(new_epoch(&[found(1, make_zxid(9, 1), 3, 3)]).expect("epoch"), 10);
        let mut snap = found(1, make_zxid(4, 1), 1, 1);
        snap.snapshot_zxid = make_zxid(6, 0);
        assert_eq!(new_epoch(&[snap]).expect("epoch"), 7);
        let worn = found(1, 1, i32::MAX as u32 - 2, i32::MAX as u32 - 2);
        assert!(matches!(new_epoch(&[worn]), Err(RecoverError::EpochsExhausted(_))));
    }

    #[test]
    fn the_new_membership_must_hold_every_survivor_as_a_voter_and_not_be_outvoted_by_new_members() {
        assert!(check_membership(&[1, 2], &[1, 2, 6], &[]).is_ok());
        assert!(check_membership(&[1, 2], &[1, 2, 6, 7], &[9]).is_ok());
        assert!(check_membership(&[1, 2], &[1, 2], &[]).is_ok());
        assert!(matches!(check_membership(&[1, 2], &[1, 6, 7], &[]), Err(RecoverError::NotAMember(2))));
        assert!(matches!(check_membership(&[1, 2], &[1, 6], &[2]), Err(RecoverError::NotAVoter(2))));
        // Three new voters of five make a majority without a survivor.
        let e = check_membership(&[1, 2], &[1, 2, 6, 7, 8], &[]).expect_err("outvoted");
        assert!(matches!(&e, RecoverError::NewMembersOutvote { new, voters: 5, quorum: 3 } if new == &vec![6, 7, 8]));
        assert!(e.to_string().contains("[6, 7, 8]"), "{e}");
        let twice = |a: u64, b: u64, da: &str, db: &str| {
            check_distinct(&[
                Survivor { myid: a, dirs: MemberDirs { data: da.into(), snap: "s".into(), log: "l".into() } },
                Survivor { myid: b, dirs: MemberDirs { data: db.into(), snap: "s".into(), log: "l".into() } },
            ])
        };
        assert!(twice(1, 2, "/a", "/b").is_ok());
        assert!(matches!(twice(1, 1, "/a", "/b"), Err(RecoverError::Twice(1))));
        assert!(matches!(twice(1, 2, "/a", "/a"), Err(RecoverError::SameDataDir { .. })));
        assert!(matches!(check_distinct(&[]), Err(RecoverError::NoSurvivor)));
    }

    fn txn(zxid: i64) -> Txn {
        let hdr = TxnHeader { session_id: 0x5, cxid: 2, zxid, time_ms: 1_800_000_000_000 };
        Txn { hdr, op: TxnOp::CreateSession { timeout_ms: 4_000, passwd: [3; 16] } }
    }

    /// A survivor under `root` holding `zxids` in its log (one segment per epoch run given) and
    /// the epochs given.
    fn survivor(root: &Path, myid: ServerId, segments: &[&[i64]], e: Epochs) -> Survivor {
        let data = root.join(format!("s{myid}"));
        let s = Survivor { myid, dirs: MemberDirs::of_config(&data, None) };
        fs::create_dir_all(&s.dirs.log).expect("dirs");
        fs::write(s.dirs.data.join("myid"), myid.to_string()).expect("myid");
        epochs::store(&RealDisk, &s.dirs.data, e).expect("epochs");
        let mut w = LogWriter::new(s.dirs.log.clone(), 1 << 16, None);
        for seg in segments {
            w.append(&seg.iter().map(|&z| txn(z)).collect::<Vec<_>>());
            w.write_round(&RealDisk).expect("write");
            w.sync(&RealDisk).expect("sync");
            // The next run starts a segment of its own.
            w = LogWriter::new(s.dirs.log.clone(), 1 << 16, None);
        }
        s
    }

    /// Every file under `dir` with its bytes.
    fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for e in fs::read_dir(dir).expect("ls").map(|e| e.expect("entry")) {
            let p = e.path();
            if p.is_dir() {
                out.extend(contents(&p));
            } else if p.file_name().is_some_and(|n| n != dir_lock::LOCK_FILE) {
                out.insert(p.clone(), fs::read(&p).expect("read"));
            }
        }
        out
    }

    fn logged(s: &Survivor) -> (Epochs, Vec<i64>) {
        let r = recover_ensemble(&RealDisk, &s.dirs.data, &s.dirs.snap, &s.dirs.log).expect("recoverable");
        (r.init.epochs, r.init.log.iter().map(|t| t.hdr.zxid).collect())
    }

    #[test]
    fn recovery_gives_every_survivor_the_longest_log_a_new_epoch_and_a_new_identity() {
        let root = tempfile::tempdir().expect("tempdir");
        let long: Vec<i64> = (1..=5).map(|c| make_zxid(1, c)).chain((1..=3).map(|c| make_zxid(2, c))).collect();
        let short: Vec<i64> = (1..=4).map(|c| make_zxid(1, c)).collect();
        let a = survivor(root.path(), 1, &[&long[..5], &long[5..]], Epochs { accepted: 2, current: 2 });
        // b accepted epoch 3 from a leader that never sent it anything.
        let b = survivor(root.path(), 2, &[&short], Epochs { accepted: 3, current: 1 });
        let r = recover(&RealDisk, &[b.clone(), a.clone()], &[1, 2, 6], &[], 77, false).expect("recover");
        assert_eq!(r.found[r.winner].myid, 1);
        assert_eq!((r.found[1].last_zxid, r.found[1].records), (make_zxid(2, 3), 8));
        assert_eq!(r.found[0].last_zxid, make_zxid(1, 4));
        assert_eq!(r.epoch, 4);
        let want = Epochs { accepted: 4, current: 4 };
        assert_eq!(logged(&a), (want, long.clone()));
        assert_eq!(logged(&b), (want, long.clone()));
        for s in [&a, &b] {
            assert_eq!(identity::load(&RealDisk, &s.dirs.data).expect("id"), Some(77));
        }
        // b's own log is kept aside, whole.
        let aside = aside_dir(&b.dirs.log, 4);
        let kept = segments::list(&RealDisk, &aside).expect("aside");
        assert_eq!(kept.len(), 1);
        let mut old = Vec::new();
        read_log(&RealDisk, &aside, 0, Repair::No, |t| old.push(t.hdr.zxid)).expect("aside log");
        assert_eq!(old, short);
        // Run again (as after a crash): same history, a newer epoch and id.
        let r = recover(&RealDisk, &[a.clone(), b.clone()], &[1, 2], &[], 78, false).expect("again");
        assert_eq!(r.epoch, 5);
        assert_eq!(logged(&b), (Epochs { accepted: 5, current: 5 }, long));
    }

    #[test]
    fn refusals_change_nothing() {
        let root = tempfile::tempdir().expect("tempdir");
        let e = Epochs { accepted: 1, current: 1 };
        let a = survivor(root.path(), 1, &[&[make_zxid(1, 1), make_zxid(1, 2), make_zxid(1, 3)]], e);
        let b = survivor(root.path(), 2, &[&[make_zxid(1, 1), make_zxid(1, 2)]], e);
        let before = contents(root.path());
        let unchanged = || assert_eq!(contents(root.path()), before);

        // A dry run reports and changes nothing.
        let r = recover(&RealDisk, &[a.clone(), b.clone()], &[1, 2, 3], &[], 9, true).expect("dry run");
        assert_eq!((r.found[r.winner].myid, r.epoch, r.done.len()), (1, 2, 0));
        unchanged();

        // A running server (it holds its dataDir's lock).
        let held = dir_lock::try_lock(&b.dirs.data).expect("lock").expect("free");
        let err = recover(&RealDisk, &[a.clone(), b.clone()], &[1, 2, 3], &[], 9, false).expect_err("running");
        assert!(matches!(err, RecoverError::Running { myid: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("a server is running"), "{err}");
        drop(held);
        unchanged();

        // A survivor missing from the new membership.
        let err = recover(&RealDisk, &[a.clone(), b.clone()], &[1, 3, 4], &[], 9, false).expect_err("not a member");
        assert!(matches!(err, RecoverError::NotAMember(2)), "{err:?}");
        unchanged();

        // Damaged data: a flipped byte in the first record of b's log (a valid one follows).
        let (_, seg) = segments::list(&RealDisk, &b.dirs.log).expect("ls").remove(0);
        let mut bytes = fs::read(&seg).expect("read");
        bytes[HEADER_LEN + 12] ^= 0x40;
        fs::write(&seg, &bytes).expect("write");
        let before = contents(root.path());
        let err = recover(&RealDisk, &[a.clone(), b.clone()], &[1, 2, 3], &[], 9, false).expect_err("damaged");
        assert!(matches!(err, RecoverError::Damaged { myid: 2, .. }), "{err:?}");
        assert!(err.to_string().contains(&seg.display().to_string()), "{err}");
        assert_eq!(contents(root.path()), before);

        // An unreadable epoch file.
        fs::write(a.dirs.data.join("currentEpoch"), "two").expect("write");
        let err = recover(&RealDisk, &[a.clone()], &[1, 2], &[], 9, false).expect_err("epochs");
        assert!(matches!(err, RecoverError::Unreadable { myid: 1, .. }), "{err:?}");
    }
}
