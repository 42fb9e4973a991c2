//! Tells systemd (`Type=notify`) how the server is doing, through the datagram socket named by
//! `NOTIFY_SOCKET`; nothing at all without it.
//!
//! - `READY=1` once the data is loaded and every executor listens on the client port. An
//!   ensemble member is ready then too, before it has a quorum: `systemctl start` on the first
//!   server of an ensemble must not wait for the others to come up. Whether it serves clients
//!   is what `STATUS=` says and the AdminServer's `/readyz` answers.
//! - `STATUS=` whenever the server's role changes (serving standalone, leading, following,
//!   looking for a leader, refusing writes after a log failure).
//! - `WATCHDOG=1` when the unit sets `WatchdogSec=`, at half that period, but only while the
//!   owner publishes its figures (the liveness rule of `/healthz`): a stalled owner stops the
//!   pings and systemd restarts the server.
//!
//! A thread of its own, polling the metrics the owner publishes: nothing on the serving path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::warn;

use super::admin::LIVENESS_STALE_MS;
use super::owner::wall_ms;
use crate::metrics::Metrics;

const POLL: Duration = Duration::from_millis(100);

/// Starts the notifier thread when systemd asked for notifications.
/// `ports` names the client ports for the status line.
pub(crate) fn start(metrics: Arc<Metrics>, executors: usize, ensemble: bool, ports: String) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let spawned = std::thread::Builder::new()
        .name("warren-notify".into())
        .spawn(move || run(&metrics, executors, ensemble, &ports, watchdog));
    if let Err(e) = spawned {
        warn!("cannot start the systemd notifier thread: {e}; systemd will not hear that Warren is ready");
    }
}

fn run(m: &Metrics, executors: usize, ensemble: bool, ports: &str, watchdog: Option<Duration>) {
    let mut ready = false;
    let mut told = String::new();
    let mut next_ping = Instant::now();
    loop {
        std::thread::sleep(POLL);
        if !ready {
            if m.client_listeners.get() < executors as i64 {
                continue;
            }
            ready = true;
            told = status(m, ensemble, ports);
            send(&[NotifyState::Ready, NotifyState::Status(&told)]);
        }
        let now = status(m, ensemble, ports);
        if now != told {
            send(&[NotifyState::Status(&now)]);
            told = now;
        }
        if let Some(every) = watchdog {
            if Instant::now() >= next_ping && wall_ms() - m.heartbeat_wall_ms.get() <= LIVENESS_STALE_MS {
                send(&[NotifyState::Watchdog]);
                next_ping = Instant::now() + every;
            }
        }
    }
}

/// The one-line state `systemctl status` shows.
fn status(m: &Metrics, ensemble: bool, ports: &str) -> String {
    let role = match (ensemble, m.is_leader.get() == 1, m.serving.get() == 1) {
        (false, _, _) => "standalone",
        (true, true, _) => "leading",
        (true, false, true) => "following",
        (true, false, false) if m.read_only.get() == 1 => {
            return format!("looking for a leader; read-only mode: reads of read-only clients served on {ports}")
        }
        (true, false, false) => return format!("looking for a leader; clients on {ports} wait"),
    };
    if m.read_only.get() == 1 {
        return format!("{role}; the log failed: writes refused, reads served on {ports}");
    }
    format!("{role}; serving clients on {ports}")
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd ({e})");
    }
}
