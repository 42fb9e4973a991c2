//! Who may connect, and when to try accepting again.
//!
//! A connection counts against `maxClientCnxns` (per client address) and `maxCnxns` (all
//! addresses) from the moment it is accepted, before it has sent a byte, as in ZooKeeper's
//! `NIOServerCnxnFactory.doAccept`: idle and half-open connections hold a slot like any other,
//! and a refused one is closed at once, without costing the owner anything. The counts are
//! shared by every executor (each accepts on the shared port) behind one mutex, taken once
//! when a connection is accepted and once when it ends, never per request.
//!
//! `AcceptBackoff` paces the accept loop when accepting fails for lack of resources (the
//! open-file limit): retries slow down to `ACCEPT_BACKOFF_MAX` and the failure is logged once
//! per episode, not at every retry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The connection limits, as configured. 0 means unlimited (ZooKeeper's meaning for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `maxClientCnxns`: connections from one client address.
    pub per_ip: u32,
    /// `maxCnxns`: connections from all addresses together.
    pub total: u32,
}

/// Why a connection was refused; `Display` gives ZooKeeper's log wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `maxCnxns` reached: (connections, limit).
    Total(u32, u32),
    /// `maxClientCnxns` reached for this address.
    PerIp(IpAddr, u32),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Total(n, max) => write!(f, "Too many connections {n} - max is {max} (maxCnxns)"),
            Refusal::PerIp(ip, max) => write!(f, "Too many connections from {ip} - max is {max}"),
        }
    }
}

/// Open connections, in all and per address (pure bookkeeping).
#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
}

impl Counts {
    fn admit(&mut self, ip: IpAddr, limits: Limits) -> Result<(), Refusal> {
        if limits.total != 0 && self.total >= limits.total {
            return Err(Refusal::Total(self.total, limits.total));
        }
        let here = self.per_ip.get(&ip).copied().unwrap_or(0);
        if limits.per_ip != 0 && here >= limits.per_ip {
            return Err(Refusal::PerIp(ip, limits.per_ip));
        }
        self.total += 1;
        self.per_ip.insert(ip, here + 1);
        Ok(())
    }

    fn release(&mut self, ip: IpAddr) {
        self.total = self.total.checked_sub(1).expect("a release without an admission");
        let n = self.per_ip.get_mut(&ip).expect("a release for an address with no admission");
        *n -= 1;
        if *n == 0 {
            self.per_ip.remove(&ip);
        }
    }
}

/// The admission counts every executor shares.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission { limits, counts: Mutex::new(Counts::default()) })
    }

    /// A slot for a connection from `ip` just accepted, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        self.lock().admit(ip, self.limits)?;
        Ok(Slot { admission: self.clone(), ip })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one statement.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.lock().release(self.ip);
    }
}

/// The longest pause between accept attempts while they fail.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// Paces an accept loop whose accepts fail: 10 ms after the first failure, doubling up to
/// `ACCEPT_BACKOFF_MAX`, back to nothing after a success. Counts the failures of an episode
/// so that the loop logs its start and its end, not every attempt.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u64,
    delay: Duration,
}

impl AcceptBackoff {
    /// An accept failed: how long to wait before the next attempt, and whether this failure
    /// starts an episode (the one to log).
    pub fn failed(&mut self) -> (Duration, bool) {
        self.failures += 1;
        self.delay = if self.failures == 1 { ACCEPT_BACKOFF_MIN } else { (self.delay * 2).min(ACCEPT_BACKOFF_MAX) };
        (self.delay, self.failures == 1)
    }

    /// An accept succeeded: the number of failures of the episode it ends, if one was running.
    pub fn succeeded(&mut self) -> Option<u64> {
        let failures = std::mem::take(&mut self.failures);
        self.delay = Duration::ZERO;
        (failures > 0).then_some(failures)
    }
}

impl AcceptBackoff {
    /// After a failed accept on `port` (a name for the log): the pause before the next attempt,
    /// or None for an error that concerns only the connection (retry at once). The first
    /// failure of an episode is logged as a warning, the others not at all.
    pub fn on_error(&mut self, e: &std::io::Error, port: &str) -> Option<Duration> {
        if is_transient_accept_error(e) {
            tracing::debug!("accept on the {port} failed: {e}");
            return None;
        }
        // Out of file descriptors and the like: the pending connection stays queued and every
        // retry fails the same way until something is closed.
        let (pause, first) = self.failed();
        if first {
            tracing::warn!(
                "accept on the {port} failed: {e}; retrying with pauses growing to {} ms, serving the \
                 connections already open (logged again once accepting works)",
                ACCEPT_BACKOFF_MAX.as_millis()
            );
        }
        Some(pause)
    }

    /// After a successful accept: logs the end of a failure episode.
    pub fn on_success(&mut self, port: &str) {
        if let Some(failures) = self.succeeded() {
            tracing::info!("accepting connections on the {port} again after {failures} failed attempts");
        }
    }
}

/// Lets a repeated log line through at most once per interval, counting the ones it held
/// back, so that a flood of refused connections costs a few lines, not one each.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter { interval, last: None, held_back: 0 }
    }

    /// Some(lines held back since the last one) when a line may be logged at `now`.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// Whether an accept error is about the connection rather than the server: the client reset
/// it before it was accepted, or the like. Such errors need no pause and no warning.
pub fn is_transient_accept_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EINTR | libc::EAGAIN | libc::EPROTO | libc::EPERM | libc::ENETDOWN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn per_address_limit() {
        let adm = Admission::new(Limits { per_ip: 60, total: 0 });
        let mut held: Vec<Slot> = (0..60).map(|_| adm.admit(A).unwrap()).collect();
        assert_eq!(adm.admit(A).unwrap_err(), Refusal::PerIp(A, 60));
        assert!(adm.admit(B).is_ok(), "another address is not affected");
        held.pop();
        assert!(adm.admit(A).is_ok(), "a freed slot can be taken again");
    }

    #[test]
    fn total_limit_counts_every_address() {
        let adm = Admission::new(Limits { per_ip: 0, total: 3 });
        let a1 = adm.admit(A).unwrap();
        let _a2 = adm.admit(A).unwrap();
        let _b1 = adm.admit(B).unwrap();
        assert_eq!(adm.admit(B).unwrap_err(), Refusal::Total(3, 3));
        assert_eq!(Refusal::Total(3, 3).to_string(), "Too many connections 3 - max is 3 (maxCnxns)");
        drop(a1);
        assert!(adm.admit(B).is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_counts_return_to_zero() {
        let adm = Admission::new(Limits { per_ip: 0, total: 0 });
        let slots: Vec<Slot> = (0..1000).map(|i| adm.admit(if i % 2 == 0 { A } else { B }).unwrap()).collect();
        assert_eq!(adm.lock().total, 1000);
        drop(slots);
        let c = adm.lock();
        assert_eq!(c.total, 0);
        assert!(c.per_ip.is_empty(), "no entry is left behind for an address that is gone");
    }

    #[test]
    fn backoff_grows_to_a_second_and_logs_once_per_episode() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.succeeded(), None);
        assert_eq!(b.failed(), (Duration::from_millis(10), true));
        assert_eq!(b.failed(), (Duration::from_millis(20), false));
        let delays: Vec<Duration> = (0..10).map(|_| b.failed().0).collect();
        assert_eq!(*delays.last().unwrap(), ACCEPT_BACKOFF_MAX);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(b.succeeded(), Some(12));
        assert_eq!(b.failed(), (Duration::from_millis(10), true), "a new episode starts over");
    }

    #[test]
    fn log_limiter_lets_one_line_a_second_through() {
        let mut l = LogLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        for ms in [1, 10, 500, 999] {
            assert_eq!(l.allow(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_millis(1000)), Some(4));
        assert_eq!(l.allow(t0 + Duration::from_millis(1001)), None);
    }

    #[test]
    fn resource_errors_are_not_transient() {
        let e = |n| std::io::Error::from_raw_os_error(n);
        assert!(is_transient_accept_error(&e(libc::ECONNABORTED)));
        assert!(!is_transient_accept_error(&e(libc::EMFILE)));
        assert!(!is_transient_accept_error(&e(libc::ENFILE)));
        assert!(!is_transient_accept_error(&e(libc::ENOBUFS)));
    }
}
