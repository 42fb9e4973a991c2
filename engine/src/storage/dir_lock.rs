//! The lock a running server holds on its dataDir: an exclusive `flock` on `dataDir/warren.lock`,
//! taken at start-up and held until the process ends (the kernel drops it then, also after a
//! kill -9). It stops a second server from starting on the same files, and lets offline tools
//! that rewrite a member's files (`warren recover-quorum`) tell a stopped server's directories
//! from a running one's. The file's content is not used; it is never removed.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const LOCK_FILE: &str = "warren.lock";

/// A held lock; dropping it (closing the file) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the lock on `data_dir` without waiting. Ok(None): another process holds it.
///
/// # Errors
/// The lock file cannot be created or locked for another reason; the message names it.
pub fn try_lock(data_dir: &Path) -> io::Result<Option<DirLock>> {
    let path = data_dir.join(LOCK_FILE);
    let named = |e: io::Error| io::Error::new(e.kind(), format!("cannot lock {}: {e}", path.display()));
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(named)?;
    // SAFETY: flock on a descriptor `file` owns and keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(DirLock { _file: file }));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(None);
    }
    Err(named(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = try_lock(dir.path()).expect("lock").expect("free");
        // flock locks belong to the open file: a second open is refused, as another process is.
        assert!(try_lock(dir.path()).expect("lock").is_none());
        drop(held);
        assert!(try_lock(dir.path()).expect("lock").is_some());
        let e = try_lock(&dir.path().join("absent")).expect_err("no directory");
        assert!(e.to_string().contains(LOCK_FILE), "{e}");
    }
}
