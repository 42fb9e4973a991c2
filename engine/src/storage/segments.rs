//! The transaction log's files (format: `crate::log::format`): listing the segments, reading
//! them back with the torn tail repaired ([`read_log`]), truncation after a zxid (the leader's
//! TRUNC), removal (a SNAP installed), and [`LogWriter`], a synchronous writer of the bytes the
//! server's io_uring writer (`server::wal`) writes, in the same rounds: one write of everything
//! pending, then one sync.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::recovery::RecoveryError;
use super::Disk;
use crate::log::format::{self, HEADER_LEN};
use crate::txn::Txn;

/// Bound on one write of a group commit.
pub const BATCH_BYTES_MAX: usize = 8 << 20;

/// Where appends continue: the end of the last record of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub path: PathBuf,
    pub offset: u64,
    pub size: u64,
}

/// The segments in `dir`, oldest first.
pub fn list(disk: &dyn Disk, dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out: Vec<(i64, PathBuf)> = disk
        .list(dir)?
        .into_iter()
        .filter_map(|name| Some((format::parse_segment_name(&name)?, dir.join(name))))
        .collect();
    out.sort();
    Ok(out)
}

/// Whether reading the log may fix what a crash left behind (a torn tail, an empty segment).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Repair {
    Yes,
    No,
}

/// What reading the log found.
#[derive(Debug)]
pub struct LogRead {
    pub tail: Option<Tail>,
    /// The torn tail that ended the last segment (file and why), repaired or not.
    pub torn: Option<String>,
    /// The last zxid handed out, or `after` if none.
    pub last_zxid: i64,
    pub count: usize,
}

/// Reads the log in `log_dir` and hands every record with a zxid above `after` to `each`, in
/// order. Each record must [`format::follows`] its predecessor (from `after` on; zxids before it
/// must still increase); a gap within an epoch or a zxid that goes back is an error, and so is
/// a bad record with a valid one after it (corruption before the tail). With [`Repair::Yes`]
/// the torn tail of the last segment is zeroed, and a last segment with a bad header and no
/// record (a crash while creating it) removed.
///
/// # Errors
/// The refusals above and the disk's errors, as [`RecoveryError`] naming the file.
pub fn read_log(
    disk: &dyn Disk,
    log_dir: &Path,
    after: i64,
    repair: Repair,
    mut each: impl FnMut(Txn),
) -> Result<LogRead, RecoveryError> {
    let segs = list(disk, log_dir).map_err(|source| RecoveryError::List { dir: log_dir.to_path_buf(), source })?;
    let mut last = after;
    let mut seen: Option<i64> = None;
    let mut count = 0;
    let mut tail = None;
    let mut torn = None;
    for (i, (_, path)) in segs.iter().enumerate() {
        let last_segment = i + 1 == segs.len();
        // A segment whose successor starts at or before the resume point holds nothing new
        // (a segment is named after its first record, and records only grow).
        if !last_segment && segs[i + 1].0 <= after + 1 {
            continue;
        }
        let bytes = disk.read(path).map_err(|source| RecoveryError::Read { path: path.clone(), source })?;
        let scan = match format::scan(&bytes) {
            Ok(s) => s,
            Err(format::ScanError::Header(h)) if last_segment && format::holds_no_record(&bytes) => {
                // A crash while creating the segment (its header torn or never written): it
                // never held a record.
                if repair == Repair::Yes {
                    warn!("removing {}: a segment with no record and a bad header ({h})", path.display());
                    disk.remove(path).map_err(|source| RecoveryError::Remove { path: path.clone(), source })?;
                    disk.sync_dir(log_dir)
                        .map_err(|source| RecoveryError::SyncDir { dir: log_dir.to_path_buf(), source })?;
                }
                continue;
            }
            Err(source) => return Err(RecoveryError::Scan { path: path.clone(), source }),
        };
        if let Some(why) = &scan.torn_tail {
            if !last_segment {
                return Err(RecoveryError::TornBeforeEnd { path: path.clone(), why: why.clone() });
            }
            torn = Some(format!("{} at offset {}: {why}", path.display(), scan.end));
            if repair == Repair::Yes {
                warn!("{}: torn tail ({why}); truncating the log at offset {}", path.display(), scan.end);
                zero_range(disk, path, scan.end as u64, bytes.len() as u64)
                    .map_err(|source| RecoveryError::ZeroTail { path: path.clone(), source })?;
            }
        }
        for t in scan.txns {
            let z = t.hdr.zxid;
            if let Some(prev) = seen.filter(|&p| z <= p) {
                return Err(RecoveryError::GoesBack { path: path.clone(), prev, zxid: z });
            }
            seen = Some(z);
            if z <= after {
                continue;
            }
            if !format::follows(last, z) {
                return Err(RecoveryError::Gap { path: path.clone(), last, zxid: z });
            }
            last = z;
            count += 1;
            each(t);
        }
        if last_segment {
            tail = Some(Tail { path: path.clone(), offset: scan.end as u64, size: bytes.len() as u64 });
        }
    }
    Ok(LogRead { tail, torn, last_zxid: last, count })
}

/// Overwrites bytes `from..to` of a file with zeros (keeping its size) and syncs it.
pub fn zero_range(disk: &dyn Disk, path: &Path, from: u64, to: u64) -> io::Result<()> {
    // Large pieces: each write is a call through the interface (an open on the real disk).
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK);
        disk.write_at(path, at, &zeros[..n as usize])?;
        at += n;
    }
    disk.sync(path)
}

/// Drops every record above `zxid` from the segments in `dir` and returns where appends
/// continue: the end of the last record kept, or None when no segment is left. The segment
/// holding the cut is zeroed after it (so a later scan ends exactly there) and synced; later
/// segments, and one left with no record, are removed, and the directory synced. Segments
/// before the one holding the cut are not read.
pub fn truncate_after(disk: &dyn Disk, dir: &Path, zxid: i64) -> io::Result<Option<Tail>> {
    let segs = list(disk, dir)?;
    let mut tail = None;
    let mut removed = false;
    for (first, path) in segs.into_iter().rev() {
        if first > zxid {
            // Named after its first record: every record in it is above zxid.
            disk.remove(&path)?;
            removed = true;
            continue;
        }
        let bytes = disk.read(&path)?;
        let cut = match format::scan(&bytes) {
            Ok(scan) => scan.txns.iter().position(|t| t.hdr.zxid > zxid).map_or(scan.end, |i| scan.offsets[i]),
            // Created but its header never (wholly) written: holds nothing.
            Err(format::ScanError::Header(_)) if format::holds_no_record(&bytes) => HEADER_LEN,
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        };
        if cut <= HEADER_LEN {
            disk.remove(&path)?;
            removed = true;
            continue;
        }
        let written_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        if written_end > cut {
            zero_range(disk, &path, cut as u64, written_end as u64)?;
        }
        tail = Some(Tail { path, offset: cut as u64, size: bytes.len() as u64 });
        break;
    }
    if removed {
        disk.sync_dir(dir)?;
    }
    Ok(tail)
}

/// Removes every segment in `dir` and syncs it; returns how many there were.
pub fn remove_all(disk: &dyn Disk, dir: &Path) -> io::Result<usize> {
    let segs = list(disk, dir)?;
    for (_, path) in &segs {
        disk.remove(path)?;
    }
    disk.sync_dir(dir)?;
    Ok(segs.len())
}

/// Splits a batch of encoded records at record boundaries into pieces of at most
/// [`BATCH_BYTES_MAX`] (a piece holds at least one record).
pub fn split_batch(batch: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < batch.len() {
        let len = u32::from_le_bytes(batch[pos..pos + 4].try_into().expect("framed")) as usize;
        let next = pos + format::RECORD_HEADER_LEN + len;
        if next - start > BATCH_BYTES_MAX && pos > start {
            out.push(&batch[start..pos]);
            start = pos;
        }
        pos = next;
    }
    out.push(&batch[start..]);
    out
}

/// The log writer on a [`Disk`], in the rounds of the server's writer: [`LogWriter::append`]
/// queues, [`LogWriter::write_round`] writes everything queued with one write per segment
/// (rolling to a new preallocated segment named after its first record when the current one is
/// full), and [`LogWriter::sync`] makes it durable. A failure poisons the writer: nothing more
/// is written or reported durable.
pub struct LogWriter {
    dir: PathBuf,
    segment_size: u64,
    pending: Vec<u8>,
    pending_last: i64,
    /// The open segment (path, end of the last record, size), or where the log was recovered.
    tail: Option<Tail>,
    /// The last zxid written by a round and not yet synced.
    written: Option<i64>,
    /// The open segment has writes not yet synced.
    dirty: bool,
    poisoned: Option<String>,
}

impl LogWriter {
    pub fn new(dir: PathBuf, segment_size: u64, tail: Option<Tail>) -> LogWriter {
        LogWriter {
            dir,
            segment_size,
            pending: Vec::new(),
            pending_last: 0,
            tail,
            written: None,
            dirty: false,
            poisoned: None,
        }
    }

    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The last zxid a round wrote that is not synced yet.
    pub fn last_written(&self) -> Option<i64> {
        self.written
    }

    /// Queues records for the next round.
    pub fn append(&mut self, txns: &[Txn]) {
        if self.poisoned.is_some() {
            return;
        }
        for t in txns {
            format::append_record(&mut self.pending, t);
            self.pending_last = t.hdr.zxid;
        }
    }

    /// Writes everything queued; returns the last zxid written (None: nothing was queued).
    pub fn write_round(&mut self, disk: &dyn Disk) -> io::Result<Option<i64>> {
        self.check()?;
        if self.pending.is_empty() {
            return Ok(None);
        }
        let batch = std::mem::take(&mut self.pending);
        let res = self.write_batch(disk, &batch);
        self.fail_on(res)?;
        self.written = Some(self.pending_last);
        Ok(self.written)
    }

    /// Syncs what the last rounds wrote; returns the last zxid now durable (None: nothing was
    /// written since the last sync).
    pub fn sync(&mut self, disk: &dyn Disk) -> io::Result<Option<i64>> {
        self.check()?;
        let Some(z) = self.written else {
            return Ok(None);
        };
        let path = self.tail.as_ref().expect("a round wrote to a segment").path.clone();
        let res = disk.sync(&path);
        self.fail_on(res)?;
        self.written = None;
        self.dirty = false;
        Ok(Some(z))
    }

    /// The leader's TRUNC: drops every record above `zxid`. Whatever was queued is dropped too
    /// (the caller truncates only between rounds, as the server's writer does).
    pub fn truncate_after(&mut self, disk: &dyn Disk, zxid: i64) -> io::Result<()> {
        self.check()?;
        // What was written stays ordered before the cut: make it durable first, as the
        // server's writer does (its rounds are synced before a rewind may start).
        if let Some(t) = self.tail.as_ref().filter(|_| self.dirty) {
            let res = disk.sync(&t.path);
            self.fail_on(res)?;
        }
        self.pending.clear();
        self.written = None;
        self.dirty = false;
        let res = truncate_after(disk, &self.dir, zxid);
        self.tail = self.fail_on(res)?;
        Ok(())
    }

    /// A snapshot was installed: every segment goes, the next append starts a new one.
    pub fn restart(&mut self, disk: &dyn Disk) -> io::Result<()> {
        self.check()?;
        self.pending.clear();
        self.written = None;
        self.dirty = false;
        self.tail = None;
        let res = remove_all(disk, &self.dir);
        self.fail_on(res)?;
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        match &self.poisoned {
            Some(why) => Err(io::Error::other(format!("the transaction log has failed: {why}"))),
            None => Ok(()),
        }
    }

    fn fail_on<T>(&mut self, res: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &res {
            self.poisoned = Some(e.to_string());
            self.pending.clear();
        }
        res
    }

    fn write_batch(&mut self, disk: &dyn Disk, batch: &[u8]) -> io::Result<()> {
        let pieces = split_batch(batch);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let first = format::record_zxid(piece).expect("a piece starts with a record");
            let len = piece.len() as u64;
            if self.tail.as_ref().is_none_or(|t| t.offset + len > t.size) {
                if let Some(old) = self.tail.as_ref().filter(|_| self.dirty) {
                    // What this or an earlier round wrote to the old segment is synced here:
                    // the round's final sync covers only the segment it ends in.
                    disk.sync(&old.path)?;
                    self.dirty = false;
                }
                let size = self.segment_size.max(HEADER_LEN as u64 + len);
                let path = self.dir.join(format::segment_name(first));
                disk.create(&path, size)?;
                disk.write_at(&path, 0, &format::encode_header(first))?;
                disk.sync(&path)?;
                disk.sync_dir(&self.dir)?;
                info!("Creating new log file: {}", path.display());
                self.tail = Some(Tail { path, offset: HEADER_LEN as u64, size });
            }
            let t = self.tail.as_mut().expect("a segment is open");
            disk.write_at(&t.path, t.offset, piece)?;
            t.offset += len;
            self.dirty = true;
            if i < last {
                // One unsynced write at a time, as the server's writer does between the pieces
                // of a round: a torn piece before a whole later one would read as corruption.
                disk.sync(&t.path)?;
                self.dirty = false;
            }
        }
        Ok(())
    }
}
