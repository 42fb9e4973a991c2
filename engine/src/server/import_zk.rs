//! `warren import-zk`: the disk side of importing a ZooKeeper data directory (the reading and
//! replaying is `zkformat::import`, pure).
//!
//! What a Warren server needs to start on the result, and nothing else:
//! - `WARREN_DATA_DIR/version-2/snapshot.<zxid>`: the imported tree and sessions, named after the
//!   last imported zxid. The log directory stays empty; the first write gets the next zxid.
//! - `WARREN_DATA_DIR/acceptedEpoch` and `currentEpoch`: the epoch of that zxid, so an ensemble
//!   member started on it joins with the imported history (standalone servers ignore them).
//!   The other members of a new ensemble start empty and catch up by SNAP.
//!
//! The target must be missing or empty. Everything is written into a temporary sibling
//! directory, synced, and renamed onto the target at the end: a failed import leaves the target
//! as it was.

use std::fs;
use std::path::{Path, PathBuf};

use crate::quorum::{epoch_of, Epochs};
use crate::snap::{SessionRecord, SnapshotWriter};
use crate::storage::{epochs, snapshots, Disk, RealDisk};
use crate::zkformat::export::PROGRESS_EVERY;
use crate::zkformat::import::{import, zookeeper_passwd, ImportError, Imported, ZkFiles};

/// Where a data directory's files are: the snapshot and log `version-2` directories (the
/// same layout for ZooKeeper's and Warren's).
pub struct Source {
    pub snap_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Source {
    /// The dataDir (and dataLogDir, when logs live apart); either the directory or its
    /// `version-2` is accepted.
    pub fn new(data_dir: &Path, log_dir: Option<&Path>) -> Source {
        let v2 = |d: &Path| if d.ends_with("version-2") { d.to_path_buf() } else { d.join("version-2") };
        Source { snap_dir: v2(data_dir), log_dir: v2(log_dir.unwrap_or(data_dir)) }
    }
}

/// Imports `source` into the missing or empty directory `target`. Returns what was read.
/// `progress` gets (nodes written, nodes in all) while the Warren snapshot is written.
pub fn run(source: &Source, target: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Imported, ImportError> {
    check_target(target)?;
    let mut files = ZkFiles::default();
    let mut dirs = vec![&source.snap_dir];
    if source.log_dir != source.snap_dir {
        dirs.push(&source.log_dir);
    }
    for dir in dirs {
        let entries = fs::read_dir(dir).map_err(|e| ImportError::new(dir, None, format!("cannot list: {e}")))?;
        for e in entries {
            let e = e.map_err(|e| ImportError::new(dir, None, format!("cannot list: {e}")))?;
            files.add(e.path());
        }
    }
    if source.snap_dir != source.log_dir {
        // Each directory contributes only its own kind of file.
        files.snapshots.retain(|(_, _, p)| p.starts_with(&source.snap_dir));
        files.logs.retain(|(_, p)| p.starts_with(&source.log_dir));
    }
    if files.snapshots.is_empty() && files.logs.is_empty() {
        return Err(ImportError::new(&source.snap_dir, None, "no ZooKeeper snapshot or log found"));
    }
    let imported = import(&files, |p| fs::read(p))?;
    write_target(&imported, target, progress)?;
    Ok(imported)
}

/// Refuses a target directory that exists and holds anything (import and export write only
/// into a missing or empty one).
pub(super) fn check_target(target: &Path) -> Result<(), ImportError> {
    match fs::read_dir(target) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(ImportError::new(target, None, "the target directory is not empty")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImportError::new(target, None, format!("cannot read the target directory: {e}"))),
    }
}

fn write_target(imported: &Imported, target: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), ImportError> {
    write_through_temp(target, "import", "the Warren data directory", |tmp| write_into(imported, tmp, progress))
}

/// Fills a temporary sibling of `target` with `fill`, then renames it onto `target` (missing
/// or empty) and syncs the parent: the target ends up whole or untouched. `what` names the
/// written directory in the error.
pub(super) fn write_through_temp(
    target: &Path,
    tag: &str,
    what: &str,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), ImportError> {
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(".{name}.{tag}-{}", std::process::id()));
    let result = fill(&tmp).and_then(|()| {
        // rename(2) replaces an empty directory; a missing one is simply created.
        fs::rename(&tmp, target)?;
        RealDisk.sync_dir(&parent)
    });
    result.map_err(|e| {
        let _ = fs::remove_dir_all(&tmp);
        ImportError::new(target, None, format!("cannot write {what}: {e}"))
    })
}

fn write_into(imported: &Imported, dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> std::io::Result<()> {
    let v2 = dir.join("version-2");
    fs::create_dir_all(&v2)?;
    let zxid = imported.last_zxid;
    let mut w = SnapshotWriter::new(zxid, Vec::new())?;
    let mut paths: Vec<&String> = imported.tree.iter().map(|(p, _)| p).collect();
    // Parents before children, and the same bytes for the same input.
    paths.sort();
    let total = paths.len() as u64;
    for (i, p) in paths.into_iter().enumerate() {
        w.add_node(p, imported.tree.get(p).expect("listed above"))?;
        if (i as u64).is_multiple_of(PROGRESS_EVERY) {
            progress(i as u64, total);
        }
    }
    progress(total, total);
    let sessions: Vec<SessionRecord> = imported
        .sessions
        .iter()
        .map(|(&id, &timeout_ms)| SessionRecord { id, timeout_ms, passwd: zookeeper_passwd(id) })
        .collect();
    w.add_sessions(&sessions)?;
    let image = w.finish(zxid)?;
    snapshots::write(&RealDisk, &v2, zxid, &image)?;
    let epoch = epoch_of(zxid);
    epochs::store(&RealDisk, dir, Epochs { accepted: epoch, current: epoch })?;
    RealDisk.sync_dir(&v2)?;
    RealDisk.sync_dir(dir)
}
