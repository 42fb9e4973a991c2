//! An ensemble member's files driven by its node's [`DiskStep`]s, on any [`Disk`]: start-up
//! recovery into a [`NodeInit`], then each step performed in the order the node hands them
//! out, with the durability each requires. The simulator and the quorum tests keep their
//! members' storage here, on a [`super::FaultyDisk`]; the server performs the same steps with
//! its io_uring log writer for appends (`server::owner`, `server::wal`) and these functions for
//! the rest (epoch files, truncation, snapshot installation, recovery).

use std::io;
use std::path::PathBuf;

use tracing::info;

use super::recovery::{self, EnsembleRecovered, RecoveryError};
use super::segments::LogWriter;
use super::{epochs, snapshots, Disk};
use crate::quorum::{DiskStep, NodeInit, Zxid};

/// Where a member keeps its files (ZooKeeper's layout: epochs in the data directory, the log
/// and snapshots in their `version-2` directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDirs {
    pub data: PathBuf,
    pub log: PathBuf,
    pub snap: PathBuf,
}

impl MemberDirs {
    /// The layout a zoo.cfg gives: `myid` and the epoch files in `data_dir`, snapshots in
    /// `data_dir/version-2`, the log in `data_log_dir/version-2` (`data_dir`'s without one).
    pub fn of_config(data_dir: &std::path::Path, data_log_dir: Option<&std::path::Path>) -> MemberDirs {
        MemberDirs {
            data: data_dir.to_path_buf(),
            snap: data_dir.join("version-2"),
            log: data_log_dir.unwrap_or(data_dir).join("version-2"),
        }
    }

    /// The layout under one directory: `<root>/data`, `<root>/data/version-2` for the log,
    /// `<root>/snap/version-2` for snapshots.
    pub fn under(root: impl Into<PathBuf>) -> MemberDirs {
        let root = root.into();
        MemberDirs {
            log: root.join("data").join("version-2"),
            snap: root.join("snap").join("version-2"),
            data: root.join("data"),
        }
    }
}

/// A member's storage between two crashes.
pub struct MemberStore {
    dirs: MemberDirs,
    log: LogWriter,
}

impl MemberStore {
    /// Recovers what the member starts from (creating its directories on a first start), and
    /// the writer that appends after the last record recovered.
    ///
    /// # Errors
    /// What recovery refuses: a corrupt record before the log's tail, a gap, unreadable epoch
    /// files, an I/O error.
    pub fn open(
        disk: &dyn Disk,
        dirs: MemberDirs,
        segment_size: u64,
    ) -> Result<(MemberStore, Recovered), RecoveryError> {
        recovery::prepare_dirs(disk, &[&dirs.data, &dirs.log, &dirs.snap])?;
        let r: EnsembleRecovered = recovery::recover_ensemble(disk, &dirs.data, &dirs.snap, &dirs.log)?;
        let log = LogWriter::new(dirs.log.clone(), segment_size, r.tail);
        let rec = Recovered { init: r.init, snapshot_zxid: r.snapshot_zxid, last_zxid: r.last_zxid };
        Ok((MemberStore { dirs, log }, rec))
    }

    pub fn dirs(&self) -> &MemberDirs {
        &self.dirs
    }

    /// Performs one step. Epochs, a truncation and a snapshot installation are durable when
    /// this returns; for the last two it returns the zxid to report with `Node::rewound`.
    /// An append is only queued: [`MemberStore::write_round`] writes what is queued and
    /// [`MemberStore::sync`] makes it durable, in rounds like the server's group commit (one
    /// round written and synced before the next is written).
    ///
    /// # Errors
    /// The disk's. After a failed log write, sync or rewind the writer is poisoned: the member
    /// must stop (the server exits, the simulator crashes it).
    pub fn perform(&mut self, disk: &dyn Disk, step: DiskStep) -> io::Result<Option<Zxid>> {
        match step {
            DiskStep::Epochs(e) => epochs::store(disk, &self.dirs.data, e).map(|()| None),
            DiskStep::Truncate(z) => {
                // The appends queued before it come first, as the server's writer does.
                self.flush(disk)?;
                self.log.truncate_after(disk, z)?;
                Ok(Some(z))
            }
            DiskStep::Snapshot(z, image) => {
                // The order of `server::owner`'s installation: the image durable first, then
                // the log it replaces removed, then the snapshots that log belonged to.
                self.flush(disk)?;
                snapshots::write(disk, &self.dirs.snap, z, &image)?;
                self.log.restart(disk)?;
                for gone in snapshots::remove_before(disk, &self.dirs.snap, z)? {
                    info!("removed snapshot {gone:#x}: the snapshot installed at {z:#x} replaced it");
                }
                Ok(Some(z))
            }
            DiskStep::Append(txns) => {
                self.log.append(&txns);
                Ok(None)
            }
        }
    }

    /// Writes everything queued (one write per segment); returns the last zxid written (None:
    /// nothing was queued).
    pub fn write_round(&mut self, disk: &dyn Disk) -> io::Result<Option<Zxid>> {
        self.log.write_round(disk)
    }

    fn flush(&mut self, disk: &dyn Disk) -> io::Result<()> {
        self.log.write_round(disk)?;
        self.log.sync(disk)?;
        Ok(())
    }

    /// Makes everything written durable; returns the last zxid it covers, to report with
    /// `Node::synced` (None: nothing was written since the last sync).
    pub fn sync(&mut self, disk: &dyn Disk) -> io::Result<Option<Zxid>> {
        self.log.sync(disk)
    }
}

/// What recovery found, for the node and for whoever watches it.
pub struct Recovered {
    pub init: NodeInit,
    /// The newest valid snapshot's zxid (0: none).
    pub snapshot_zxid: Zxid,
    /// The last zxid in the log (the snapshot's when the log holds nothing after it).
    pub last_zxid: Zxid,
}
