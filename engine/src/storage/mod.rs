//! What a server keeps on disk, behind one interface: [`Disk`], the file operations that log
//! segments, snapshots and the epoch files are made of. Two implementations: [`RealDisk`]
//! (the operating system's files) and [`FaultyDisk`] (in memory, failing the way disks fail,
//! deterministic from a seed) for unit tests of recovery and for the simulator.
//!
//! Built on it, with no other I/O: [`epochs`] (the `acceptedEpoch`/`currentEpoch` files),
//! [`segments`] (the log's files: listing, reading back with torn-tail repair, truncation, and
//! [`segments::LogWriter`], a synchronous writer of the same bytes the glommio `server::wal`
//! writes), [`snapshots`] (writing, listing and loading snapshot files) and [`recovery`]
//! (start-up: newest valid snapshot, then the log), [`identity`] (the `ensembleId` file) and
//! [`recover_quorum`] (`warren recover-quorum`). [`dir_lock`], the lock a running server holds
//! on its dataDir, is the one piece that uses the operating system directly. The hot append path of a running server
//! stays on io_uring (`server::wal`); everything else it does to its files goes through here.
//!
//! ## Durability model
//! A write reaches the file's data durably only after [`Disk::sync`] of that file; a created,
//! renamed or removed name is durable only after [`Disk::sync_dir`] of its directory. What a
//! crash may leave of the rest is [`FaultyDisk::crash`]'s fault model.

pub mod dir_lock;
pub mod epochs;
pub mod faulty;
pub mod identity;
pub mod member;
pub mod real;
pub mod recover_quorum;
pub mod recovery;
pub mod segments;
pub mod snapshots;
#[cfg(test)]
mod tests;

use std::io;
use std::ops::Deref;
use std::path::Path;

pub use faulty::{Faults, FaultyDisk};
pub use real::RealDisk;

/// The file operations the server's durable state is built from. Blocking; paths are whole
/// paths. Every method that changes something reports failure as the operating system would
/// (EIO, ENOSPC, NotFound), and a caller must treat a failed `sync` as data never made durable.
pub trait Disk {
    /// Names of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates `path` (replacing any file of that name) holding `len` zero bytes, reserved on
    /// disk (fallocate) so that later writes within it change no file size.
    fn create(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Writes `data` at `offset` of an existing file, growing it if needed.
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// fdatasync: the file's data written so far is durable when this returns Ok.
    fn sync(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names created, renamed or removed in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Creates `path` holding `data`, synced. The real disk flushes a large file as it goes,
    /// so that the log's own fdatasyncs do not queue behind one huge flush at the end.
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.create(path, 0)?;
        self.write_at(path, 0, data)?;
        self.sync(path)
    }

    /// A snapshot image, aligned for its archive: mapped by the real disk, copied otherwise.
    fn read_image(&self, path: &Path) -> io::Result<Image> {
        Ok(Image::Owned(crate::snap::aligned_copy(&self.read(path)?)))
    }
}

/// The bytes of a file read for decoding in place.
pub enum Image {
    Mapped(memmap2::Mmap),
    Owned(rkyv::util::AlignedVec<16>),
}

impl Deref for Image {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Image::Mapped(m) => m,
            Image::Owned(v) => v,
        }
    }
}
