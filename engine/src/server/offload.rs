//! Blocking work taken off an io_uring executor: a plain thread runs it and the executor
//! awaits the result, serving its clients meanwhile.
//!
//! One thread per job. The jobs sent here are rare (a four-letter report, the epoch files
//! written at an election, a TRUNC, a SNAP installation, an online restore) and each costs
//! far more than starting a thread, so a long-lived worker would buy nothing and would need
//! shutting down. Order between jobs is the caller's: every caller awaits one job before it
//! starts the next that must follow it.

use std::io;

/// Runs `job` on a thread named `name` and awaits its result.
///
/// # Errors
/// The thread could not be started, or it ended without an answer (the job panicked).
pub(crate) async fn off_the_executor<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = tx.send_blocking(job());
    })?;
    rx.recv().await.map_err(|_| io::Error::other(format!("the {name} thread ended without finishing its work")))
}

/// [`off_the_executor`] for blocking file I/O.
///
/// # Errors
/// The job's, or the thread's (see [`off_the_executor`]).
pub(crate) async fn blocking_io<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    off_the_executor(name, job).await?
}
