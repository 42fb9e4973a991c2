//! [`RealDisk`]: the storage interface on the operating system's files (std::fs, blocking).

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::{Disk, Image};

/// Bytes written between writeback kicks in [`Disk::write_synced`].
const WRITEBACK_BYTES: usize = 8 << 20;

/// The operating system's files.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir)? {
            // A name that is not UTF-8 is nothing this server wrote.
            if let Ok(name) = e?.file_name().into_string() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn create(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = fs::File::create(path)?;
        if len > 0 {
            // SAFETY: fallocate(2) on a descriptor we own; mode 0 reserves the blocks and sets
            // the size, the new range reads as zeros.
            let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        fs::OpenOptions::new().write(true).open(path)?.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = fs::File::create(path)?;
        // Flush as we go, 8 MiB at a time (sync_file_range, waiting for each piece), so the log's
        // fdatasyncs interleave with small flushes instead of queueing behind one 200+ MB flush
        // at the end (measured in docs/design.md).
        let mut at = 0usize;
        for piece in data.chunks(WRITEBACK_BYTES) {
            f.write_all(piece)?;
            // SAFETY: plain sync_file_range(2) on a file descriptor we own. Its error must be
            // returned: waiting on writeback consumes the file's error, so the final fsync
            // could otherwise report success after an I/O error.
            let rc = unsafe {
                libc::sync_file_range(
                    f.as_raw_fd(),
                    at as i64,
                    piece.len() as i64,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            at += piece.len();
        }
        f.sync_all()
    }

    fn read_image(&self, path: &Path) -> io::Result<Image> {
        let f = fs::File::open(path)?;
        // SAFETY: the mapping is read-only and private to its holder; a concurrent writer could
        // only change bytes under us, which validation then rejects (checksums before any
        // archive read).
        Ok(Image::Mapped(unsafe { memmap2::Mmap::map(&f)? }))
    }
}
