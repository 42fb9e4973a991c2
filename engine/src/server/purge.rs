//! Purging old snapshots and log segments (ZooKeeper's PurgeTxnLog and autopurge).
//!
//! Keeps the newest `retain` snapshots (at least 3) and every log segment that may hold a
//! transaction after the oldest of them: the segment whose first zxid is at or below that
//! snapshot's zxid (it can straddle it) and all later ones. Everything older goes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::storage::{segments, snapshots, RealDisk};

pub const RETAIN_MIN: usize = 3;

/// What a purge would remove (pure decision over file lists, for tests and dry runs).
pub fn plan(snaps: &[(i64, PathBuf)], segs: &[(i64, PathBuf)], retain: usize) -> Vec<PathBuf> {
    let retain = retain.max(RETAIN_MIN);
    if snaps.len() <= retain {
        return Vec::new();
    }
    let oldest_kept = snaps[retain - 1].0;
    let mut doomed: Vec<PathBuf> = snaps[retain..].iter().map(|(_, p)| p.clone()).collect();
    // The newest segment starting at or before the oldest kept snapshot may straddle it.
    let straddle = segs.iter().rposition(|(first, _)| *first <= oldest_kept);
    if let Some(i) = straddle {
        doomed.extend(segs[..i].iter().map(|(_, p)| p.clone()));
    }
    doomed
}

/// A snapshot temp file untouched for this long was left by an interrupted snapshot (a
/// running one writes and flushes every 8 MiB).
pub const ABANDONED_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes what `plan` says, and snapshot temp files abandoned by an interrupted snapshot;
/// returns the removed files.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut doomed = plan(&snapshots::list(&RealDisk, snap_dir)?, &segments::list(&RealDisk, log_dir)?, retain);
    doomed.extend(stale_temp_files(snap_dir, ABANDONED_TEMP_AGE));
    for p in &doomed {
        fs::remove_file(p)?;
    }
    Ok(doomed)
}

/// Snapshot temp files in `dir` (`snapshot.<zxid>.tmp`) not modified for `min_age`: what an
/// interrupted snapshot (kill -9, power loss) left behind. (At start-up every temp file goes:
/// `storage::snapshots::remove_leftover_temp_files`.)
pub fn stale_temp_files(dir: &Path, min_age: std::time::Duration) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now();
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| snapshots::is_temp_name(&e.file_name().to_string_lossy()))
        .filter(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap_or(now);
            now.duration_since(modified).unwrap_or_default() >= min_age
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(prefix: &str, zxids: &[i64]) -> Vec<(i64, PathBuf)> {
        zxids.iter().map(|z| (*z, PathBuf::from(format!("{prefix}.{z:x}")))).collect()
    }

    #[test]
    fn keeps_retained_snapshots_and_the_logs_after_the_oldest() {
        let snaps = files("snapshot", &[500, 400, 300, 200, 100]);
        let segs = files("log", &[1, 150, 290, 350, 450]);
        let doomed = plan(&snaps, &segs, 3);
        let names: Vec<String> = doomed.iter().map(|p| p.display().to_string()).collect();
        // Snapshots 200 and 100 go; logs 1 and 150 go; log 290 straddles snapshot 300.
        assert_eq!(names, vec!["snapshot.c8", "snapshot.64", "log.1", "log.96"]);
    }

    /// purge (the command and autopurge) also removes snapshot temp files an interrupted
    /// snapshot left, once they have not been written for a minute.
    #[test]
    fn abandoned_snapshot_temp_files_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("snapshot.5.tmp");
        let fresh = dir.path().join("snapshot.6.tmp");
        for p in [&old, &fresh] {
            fs::write(p, b"partial").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - ABANDONED_TEMP_AGE * 2;
        fs::File::options().write(true).open(&old).unwrap().set_modified(long_ago).unwrap();
        let removed = purge(dir.path(), dir.path(), 3).unwrap();
        assert_eq!(removed, vec![old.clone()]);
        assert!(!old.exists() && fresh.exists());
    }

    #[test]
    fn never_below_three_snapshots() {
        let snaps = files("snapshot", &[300, 200, 100]);
        let segs = files("log", &[1, 150]);
        assert!(plan(&snaps, &segs, 1).is_empty());
    }
}
