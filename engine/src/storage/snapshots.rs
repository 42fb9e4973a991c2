//! Snapshot files (format: `crate::snap`): `snapshot.<hex zxid>` in the snapshot directory,
//! written durably through a temp file, listed newest first, loaded newest valid first, and
//! the offline install of a backup (`warren restore`).

use std::io;
use std::path::{Path, PathBuf};

use super::Disk;
use crate::quorum::Epochs;
use crate::snap::{self, LoadedSnapshot, SnapError};

/// What an unfinished snapshot's file name ends with.
pub const TEMP_SUFFIX: &str = ".tmp";

pub fn file_name(start_zxid: i64) -> String {
    format!("snapshot.{start_zxid:x}")
}

/// `snapshot.<hex zxid>` files in `dir`, newest first.
pub fn list(disk: &dyn Disk, dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out: Vec<(i64, PathBuf)> = disk
        .list(dir)?
        .into_iter()
        .filter_map(|name| {
            let z = i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            Some((z, dir.join(name)))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(out)
}

/// Writes a finished snapshot image durably: temp file, sync, rename, sync of the directory.
/// A failure (ENOSPC, EIO) removes the temp file: nothing half-written stays behind.
pub fn write(disk: &dyn Disk, dir: &Path, start_zxid: i64, image: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(file_name(start_zxid));
    let tmp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(start_zxid)));
    let result =
        disk.write_synced(&tmp, image).and_then(|()| disk.rename(&tmp, &path)).and_then(|()| disk.sync_dir(dir));
    if result.is_err() {
        let _ = disk.remove(&tmp);
    }
    result.map(|()| path)
}

/// Reads and validates one snapshot file.
pub fn load(disk: &dyn Disk, path: &Path) -> Result<LoadedSnapshot, SnapError> {
    snap::decode(&disk.read_image(path)?)
}

/// The newest snapshot that validates (None if there is none), and the newest snapshot skipped
/// because it did not (None if the newest validated). Snapshots are written whole before they
/// are named (temp file, sync, rename), so a named snapshot that fails to validate was damaged
/// on the medium: the caller must not fall back past it unless the log still covers its state
/// ([`recovery::check_fallback`](super::recovery::check_fallback)).
pub struct Newest {
    pub snapshot: Option<LoadedSnapshot>,
    pub skipped: Option<i64>,
}

/// Loads the newest snapshot that validates; invalid ones are logged and skipped (see
/// [`Newest`]). An error if the directory cannot be listed.
pub fn load_newest_valid(disk: &dyn Disk, dir: &Path) -> io::Result<Newest> {
    let mut skipped = None;
    for (at, path) in list(disk, dir)? {
        match load(disk, &path) {
            Ok(s) => {
                tracing::info!(
                    "loaded snapshot {} ({} nodes, zxid {:#x})",
                    path.display(),
                    s.tree.node_count(),
                    s.start_zxid
                );
                return Ok(Newest { snapshot: Some(s), skipped });
            }
            Err(e) => {
                tracing::warn!("skipping snapshot {}: {e}; trying an older one", path.display());
                skipped = skipped.or(Some(at));
            }
        }
    }
    Ok(Newest { snapshot: None, skipped })
}

/// Removes the snapshots older than `z` and syncs the directory; returns their zxids. For a
/// state replaced wholesale at `z` (a SNAP installed, a backup restored): the log those
/// snapshots belonged to is gone, so recovery must never fall back to them.
pub fn remove_before(disk: &dyn Disk, dir: &Path, z: i64) -> io::Result<Vec<i64>> {
    let older: Vec<(i64, PathBuf)> = list(disk, dir)?.into_iter().filter(|(at, _)| *at < z).collect();
    if older.is_empty() {
        return Ok(Vec::new());
    }
    for (_, path) in &older {
        disk.remove(path)?;
    }
    disk.sync_dir(dir)?;
    Ok(older.into_iter().map(|(at, _)| at).collect())
}

/// Whether `name` is an unfinished snapshot's temp file.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with("snapshot.") && name.ends_with(TEMP_SUFFIX)
}

/// At start-up, before anything writes a snapshot: removes every snapshot temp file.
pub fn remove_leftover_temp_files(disk: &dyn Disk, dir: &Path) {
    for name in disk.list(dir).unwrap_or_default().into_iter().filter(|n| is_temp_name(n)) {
        let p = dir.join(name);
        match disk.remove(&p) {
            Ok(()) => tracing::info!("removed {}, left by an interrupted snapshot", p.display()),
            Err(e) => tracing::warn!("could not remove {}: {e}", p.display()),
        }
    }
}

/// `warren restore`: installs a backup into an empty data directory, offline. The snapshot
/// goes to `data_dir/version-2` (written durably: temp file, sync, rename), and the epoch
/// files get the backup's epoch so that an ensemble member starts on it too. Refuses a data
/// directory (or log directory) that holds snapshots or logs already.
pub fn restore_backup(
    disk: &dyn Disk,
    image: &[u8],
    data_dir: &Path,
    log_dir: Option<&Path>,
) -> Result<(i64, PathBuf), String> {
    let loaded = snap::backup::check(image)?;
    let snap_dir = data_dir.join("version-2");
    for dir in [Some(data_dir), log_dir].into_iter().flatten() {
        let v2 = dir.join("version-2");
        let names = disk.list(&v2).unwrap_or_default();
        if let Some(n) = names.iter().find(|n| n.starts_with("snapshot.") || n.starts_with("log.")) {
            return Err(format!("{} already holds {n}: restore into an empty data directory", v2.display()));
        }
    }
    disk.create_dir_all(&snap_dir).map_err(|e| format!("{}: {e}", snap_dir.display()))?;
    let zxid = loaded.start_zxid;
    let epoch = (zxid >> 32) as u32;
    super::epochs::store(disk, data_dir, Epochs { accepted: epoch, current: epoch })
        .map_err(|e| format!("{}: writing the epoch files: {e}", data_dir.display()))?;
    let path = write(disk, &snap_dir, zxid, image).map_err(|e| format!("{}: {e}", snap_dir.display()))?;
    Ok((zxid, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;
    use crate::proto::CreateKind;
    use crate::storage::RealDisk;
    use crate::tree::DataTree;
    use crate::txn::{Txn, TxnHeader, TxnOp};

    fn tree_at(zxid: i64) -> (DataTree, Vec<u8>) {
        let mut t = DataTree::new();
        let op = TxnOp::Create {
            kind: CreateKind::Create,
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        };
        t.apply(&Txn { hdr: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 0 }, op }, &mut Vec::new());
        let image = snap::encode_tree(&t, &[], zxid);
        (t, image)
    }

    #[test]
    fn newest_invalid_snapshot_falls_back_to_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        write(&RealDisk, dir.path(), 3, &tree_at(3).1).unwrap();
        let newest = write(&RealDisk, dir.path(), 9, &tree_at(9).1).unwrap();
        let mut bytes = std::fs::read(&newest).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 1;
        std::fs::write(&newest, bytes).unwrap();
        let newest_valid = load_newest_valid(&RealDisk, dir.path()).unwrap();
        assert_eq!(newest_valid.skipped, Some(9), "the damaged one is reported");
        let s = newest_valid.snapshot.expect("the older snapshot");
        assert_eq!(s.start_zxid, 3);
        assert_eq!(s.tree.get("/a").map(|n| n.data.clone()), Some(Some(b"x".to_vec())));
        std::fs::remove_file(dir.path().join(file_name(3))).unwrap();
        let none = load_newest_valid(&RealDisk, dir.path()).unwrap();
        assert!(none.snapshot.is_none() && none.skipped == Some(9));
        assert!(load_newest_valid(&RealDisk, &dir.path().join("absent")).is_err(), "an unlistable directory");
    }

    /// A snapshot whose write fails (here its rename: a directory holds the final name) leaves
    /// no temp file behind; one left by a killed server is removed at start-up.
    #[test]
    fn failed_and_interrupted_snapshots_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join(file_name(7));
        std::fs::create_dir(&blocker).unwrap();
        std::fs::write(blocker.join("x"), b"x").unwrap();
        assert!(write(&RealDisk, dir.path(), 7, &tree_at(7).1).is_err());
        let names = RealDisk.list(dir.path()).unwrap();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");

        let leftover = dir.path().join("snapshot.9.tmp");
        std::fs::write(&leftover, b"half a snapshot").unwrap();
        remove_leftover_temp_files(&RealDisk, dir.path());
        assert!(!leftover.exists());
    }
}
