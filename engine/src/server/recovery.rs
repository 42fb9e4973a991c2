//! Start-up recovery: newest valid snapshot, then the log replayed from it. Runs before the
//! executors start, with plain blocking file I/O.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::wal::{sync_dir, Tail};
use crate::log::format;
use crate::machine::{Machine, MachineConfig, Now};
use crate::tree::DataTree;

/// What a snapshot gives recovery: the tree, the sessions, and the zxid the log resumes after.
pub struct SnapshotState {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub start_zxid: i64,
}

pub struct Recovered {
    pub machine: Machine,
    pub tail: Option<Tail>,
    pub last_zxid: i64,
    pub replayed: usize,
}

/// The segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Some(z) = e.file_name().to_str().and_then(format::parse_segment_name) {
            out.push((z, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Rebuilds the machine from disk. `snapshot` is the newest valid snapshot, if any.
pub fn recover(
    log_dir: &Path,
    snapshot: Option<SnapshotState>,
    cfg: MachineConfig,
    now: Now,
) -> Result<Recovered, String> {
    let (tree, sessions, start_zxid) = match snapshot {
        Some(s) => (s.tree, s.sessions, s.start_zxid),
        None => (DataTree::new(), Vec::new(), 0),
    };
    let mut machine = Machine::new(cfg, tree, now);
    machine.restore_sessions(&sessions, now);
    let segs = segments(log_dir).map_err(|e| format!("cannot list {}: {e}", log_dir.display()))?;
    let mut expected = start_zxid + 1;
    let mut replayed = 0;
    let mut tail = None;
    for (i, (_, path)) in segs.iter().enumerate() {
        let last_segment = i + 1 == segs.len();
        // A segment whose successor starts at or before the resume point holds nothing new.
        if !last_segment && segs[i + 1].0 <= expected {
            continue;
        }
        let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let scan = match format::scan(&bytes) {
            Ok(s) => s,
            Err(format::ScanError::Header(h)) if last_segment && bytes.iter().all(|&b| b == 0) => {
                // A crash while creating the segment: it never held a record.
                warn!("removing {} : empty segment with no header ({h})", path.display());
                fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                continue;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if let Some(why) = &scan.torn_tail {
            if !last_segment {
                return Err(format!(
                    "{}: {why}, but later segments exist, so this is corruption of committed history",
                    path.display()
                ));
            }
            warn!("{}: torn tail ({why}); truncating the log at offset {}", path.display(), scan.end);
            zero_from(path, scan.end as u64, bytes.len() as u64)?;
        }
        for t in &scan.txns {
            if t.hdr.zxid < expected {
                continue;
            }
            if t.hdr.zxid != expected {
                return Err(format!(
                    "{}: log jumps from zxid {:#x} to {:#x}: transactions are missing",
                    path.display(),
                    expected - 1,
                    t.hdr.zxid
                ));
            }
            machine.replay(t, now);
            expected += 1;
            replayed += 1;
        }
        if last_segment {
            tail = Some(Tail { path: path.clone(), offset: scan.end as u64, size: bytes.len() as u64 });
        }
    }
    info!(
        "recovered to zxid {:#x}: snapshot at {:#x} + {replayed} transactions from the log",
        expected - 1,
        start_zxid
    );
    Ok(Recovered { machine, tail, last_zxid: expected - 1, replayed })
}

/// Overwrites a torn tail with zeros (keeping the preallocation) and syncs it.
fn zero_from(path: &Path, from: u64, to: u64) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot truncate the torn tail of {}: {e}", path.display());
    let mut f = fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    f.seek(SeekFrom::Start(from)).map_err(err)?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = to.saturating_sub(from);
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n]).map_err(err)?;
        left -= n as u64;
    }
    f.sync_data().map_err(err)?;
    Ok(())
}

/// Creates the `version-2` directories (ZooKeeper's layout) and syncs their parents.
pub fn prepare_dirs(dirs: &[&Path]) -> Result<(), String> {
    for d in dirs {
        fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        if let Some(p) = d.parent() {
            let _ = sync_dir(p);
        }
    }
    Ok(())
}
