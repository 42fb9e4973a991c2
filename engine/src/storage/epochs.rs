//! The persisted epochs of an ensemble member: ZooKeeper's `acceptedEpoch` and `currentEpoch`
//! files in dataDir (beside `myid`, not in `version-2`).
//!
//! Each file holds the epoch as decimal text without a newline, as ZooKeeper writes it
//! (`QuorumPeer.writeLongToFile`); a trailing newline or surrounding spaces are accepted when
//! reading. A missing file is epoch 0: a server that never took part in an ensemble.
//!
//! [`store`] replaces each file atomically (temp file, fsync, rename, fsync of the directory),
//! `acceptedEpoch` first: current never exceeds accepted, so a crash between the two leaves
//! the pair in an order the protocol can also reach (accepted a new epoch, not yet synced).

use std::io;
use std::path::Path;

use super::Disk;
use crate::quorum::Epochs;

pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";

/// Reads both epochs from `data_dir`; a missing file counts as 0.
///
/// # Errors
/// A file that cannot be read or does not hold a decimal epoch (0..=2^32-1); the message names
/// the file.
pub fn load(disk: &dyn Disk, data_dir: &Path) -> io::Result<Epochs> {
    Ok(Epochs {
        accepted: read_epoch(disk, data_dir, ACCEPTED_EPOCH_FILE)?,
        current: read_epoch(disk, data_dir, CURRENT_EPOCH_FILE)?,
    })
}

/// Writes both epochs durably. A file that already holds its value is left alone (no fsync).
pub fn store(disk: &dyn Disk, data_dir: &Path, e: Epochs) -> io::Result<()> {
    write_epoch(disk, data_dir, ACCEPTED_EPOCH_FILE, e.accepted)?;
    write_epoch(disk, data_dir, CURRENT_EPOCH_FILE, e.current)
}

fn read_epoch(disk: &dyn Disk, dir: &Path, name: &str) -> io::Result<u32> {
    Ok(read_number(disk, dir, name)?.unwrap_or(0))
}

/// Reads a file holding one decimal number (surrounding whitespace accepted); None when the
/// file does not exist. Shared with the `ensembleId` file ([`super::identity`]).
pub(super) fn read_number<T: std::str::FromStr + std::fmt::Display + Bounded>(
    disk: &dyn Disk,
    dir: &Path,
    name: &str,
) -> io::Result<Option<T>> {
    let path = dir.join(name);
    let text = match disk.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
    };
    let text = String::from_utf8_lossy(&text);
    text.trim().parse::<T>().map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: malformed value {:?}: expected a decimal number from 0 to {}", path.display(), text, T::MAX),
        )
    })
}

/// The largest value a number file may hold, for the error message.
pub(super) trait Bounded {
    const MAX: Self;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}
impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}

fn write_epoch(disk: &dyn Disk, dir: &Path, name: &str, epoch: u32) -> io::Result<()> {
    write_number(disk, dir, name, u64::from(epoch))
}

/// Replaces a file holding one decimal number atomically and durably (temp file, fsync,
/// rename, fsync of the directory); a file that already holds the value is left alone.
pub(super) fn write_number(disk: &dyn Disk, dir: &Path, name: &str, value: u64) -> io::Result<()> {
    let path = dir.join(name);
    let text = value.to_string();
    if disk.read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    let named = |e: io::Error| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()));
    let tmp = dir.join(format!("{name}.tmp"));
    disk.write_synced(&tmp, text.as_bytes()).map_err(named)?;
    disk.rename(&tmp, &path).map_err(named)?;
    disk.sync_dir(dir).map_err(named)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::storage::RealDisk;

    fn load(dir: &Path) -> io::Result<Epochs> {
        super::load(&RealDisk, dir)
    }
    fn store(dir: &Path, e: Epochs) -> io::Result<()> {
        super::store(&RealDisk, dir, e)
    }

    #[test]
    fn missing_files_are_epoch_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("load"), Epochs::default());
    }

    #[test]
    fn store_then_load_round_trips_as_zookeeper_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Epochs { accepted: 7, current: 6 };
        store(dir.path(), e).expect("store");
        assert_eq!(load(dir.path()).expect("load"), e);
        // ZooKeeper's format: decimal, no newline.
        assert_eq!(fs::read_to_string(dir.path().join("acceptedEpoch")).expect("read"), "7");
        assert_eq!(fs::read_to_string(dir.path().join("currentEpoch")).expect("read"), "6");
        let big = Epochs { accepted: u32::MAX, current: u32::MAX };
        store(dir.path(), big).expect("store");
        assert_eq!(load(dir.path()).expect("load"), big);
        // No temp files are left behind.
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn one_missing_file_is_zero_and_whitespace_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("acceptedEpoch"), "12\n").expect("write");
        assert_eq!(load(dir.path()).expect("load"), Epochs { accepted: 12, current: 0 });
    }

    #[test]
    fn malformed_file_is_an_error_naming_it() {
        for bad in ["", "x", "-1", "4294967296", "1 2", "0x10"] {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::write(dir.path().join("currentEpoch"), bad).expect("write");
            let e = load(dir.path()).expect_err(bad);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
            assert!(e.to_string().contains("currentEpoch"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn store_into_a_missing_directory_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = store(&dir.path().join("absent"), Epochs { accepted: 1, current: 1 }).expect_err("no dir");
        assert!(e.to_string().contains("acceptedEpoch"), "{e}");
    }

    #[test]
    fn a_crash_during_store_leaves_old_or_new_epochs_never_current_above_accepted() {
        use crate::storage::{Faults, FaultyDisk};
        let dir = Path::new("/data");
        for seed in 0..300 {
            let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
            d.create_dir_all(dir).expect("dir");
            super::store(&d, dir, Epochs { accepted: 3, current: 3 }).expect("store");
            // The process dies at a random step of the next store (or not at all).
            d.crash_after(d.draw(12));
            let _ = super::store(&d, dir, Epochs { accepted: 4, current: 4 });
            d.crash();
            let e = super::load(&d, dir).expect("epochs readable after any crash");
            assert!(e.current <= e.accepted, "seed {seed}: {e:?}");
            assert!(e.accepted == 3 || e.accepted == 4, "seed {seed}: {e:?}");
            assert!(e.current == 3 || e.current == 4, "seed {seed}: {e:?}");
        }
    }
}
