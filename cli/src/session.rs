//! The shell's connection: one ZooKeeper session at a time (`connect`, `close`), the
//! watches it set (for `removewatches`), and zkCli's printing of watch and state events.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use zookeeper_client::{Client, EventType, OneshotWatcher, PersistentWatcher, SessionState, WatchedEvent};

use crate::error::{CliError, CliResult, Status};

/// How long closing a session may take before we give up waiting for the server.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Writes `text` to stdout and flushes: watch events arrive from other tasks, and output
/// must keep the order in which it was produced.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// The same on stderr, where zkCli prints errors and `Created …`.
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}

/// `WatchedEvent state:… type:… path:…` as the Java client's `WatchedEvent.toString()`.
pub fn event_line(state: SessionState, kind: &str, path: Option<&str>) -> String {
    format!("WatchedEvent state:{state} type:{kind} path:{}", path.unwrap_or("null"))
}

pub fn event_text(ev: &WatchedEvent) -> String {
    if ev.event_type == EventType::Session {
        event_line(ev.session_state, "None", None)
    } else {
        event_line(ev.session_state, &ev.event_type.to_string(), Some(&ev.path))
    }
}

/// zkCli prints each event as `\nWATCHER::\n` then `\n<event>\n`.
pub fn print_watcher(line: &str) {
    out(&format!("\nWATCHER::\n\n{line}\n"));
}

/// Which watch a `removewatches` flag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Data,
    Child,
    Persistent,
}

struct WatchEntry {
    path: String,
    kind: WatchKind,
    cancel: oneshot::Sender<()>,
}

/// Watches this shell set, so that `removewatches` can drop them (the client crate sends
/// RemoveWatches to the server when the last watcher of a kind on a path is dropped).
#[derive(Default)]
pub struct Watches {
    next_id: AtomicU64,
    entries: Mutex<BTreeMap<u64, WatchEntry>>,
}

/// Upper bound on watches one shell keeps (a limit on everything).
const MAX_WATCHES: usize = 100_000;

impl Watches {
    fn add(&self, path: &str, kind: WatchKind) -> Option<(u64, oneshot::Receiver<()>)> {
        let mut entries = self.entries.lock().ok()?;
        if entries.len() >= MAX_WATCHES {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        entries.insert(id, WatchEntry { path: path.to_string(), kind, cancel: tx });
        Some((id, rx))
    }

    fn done(&self, id: u64) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(&id);
        }
    }

    /// Cancels the watches on `path` of the given kinds; how many there were.
    pub fn remove(&self, path: &str, kinds: &[WatchKind]) -> usize {
        let Ok(mut entries) = self.entries.lock() else { return 0 };
        let ids: Vec<u64> =
            entries.iter().filter(|(_, e)| e.path == path && kinds.contains(&e.kind)).map(|(id, _)| *id).collect();
        for id in &ids {
            if let Some(e) = entries.remove(id) {
                let _ = e.cancel.send(());
            }
        }
        ids.len()
    }

    fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }
}

/// What a watch task needs: its registry entry and the printwatches switch.
struct Tracked {
    id: u64,
    cancel: oneshot::Receiver<()>,
    watches: Arc<Watches>,
    print: Arc<AtomicBool>,
    path: String,
}

/// The state shared by every command of one shell (or of one one-shot run).
pub struct Ctx {
    pub server: String,
    pub timeout_ms: u64,
    pub readonly: bool,
    /// Shell mode: print the connection's state changes like zkCli's default watcher.
    pub interactive: bool,
    pub printwatches: Arc<AtomicBool>,
    /// Also read by the completer, from the line-editor thread.
    pub client: Arc<Mutex<Option<Client>>>,
    pub watches: Arc<Watches>,
    /// zkCli's numbered history (`history`, `redo`).
    pub history: Vec<String>,
    pub quit: bool,
}

impl Ctx {
    pub fn new(server: String, timeout_ms: u64, readonly: bool, interactive: bool) -> Ctx {
        Ctx {
            server,
            timeout_ms,
            readonly,
            interactive,
            printwatches: Arc::new(AtomicBool::new(true)),
            client: Arc::new(Mutex::new(None)),
            watches: Arc::new(Watches::default()),
            history: Vec::new(),
            quit: false,
        }
    }

    /// The live client, or zkCli's `Not connected`.
    pub fn client(&self) -> CliResult<Client> {
        let c = self.client.lock().ok().and_then(|c| c.clone());
        match c {
            Some(c) if !c.state().is_terminated() => Ok(c),
            _ => Err(CliError::Message("Not connected".into(), Status::ConnectionLoss)),
        }
    }

    /// Connects to `self.server`, replacing any session this shell had.
    pub async fn connect(&mut self) -> CliResult {
        self.close().await;
        let client = connect(&self.server, self.timeout_ms, self.readonly).await?;
        if self.interactive {
            spawn_state_printer(&client, self.printwatches.clone());
            if self.printwatches.load(Ordering::Relaxed) {
                print_watcher(&event_line(SessionState::SyncConnected, "None", None));
            }
        }
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(client);
        }
        Ok(())
    }

    /// Closes the session (if any) and waits, briefly, for the server to confirm.
    pub async fn close(&mut self) {
        let client = self.client.lock().ok().and_then(|mut c| c.take());
        self.watches.clear();
        if let Some(c) = client {
            close_client(c).await;
            // zkCli's default watcher reports the close, as every other state change.
            if self.interactive && self.printwatches.load(Ordering::Relaxed) {
                print_watcher(&event_line(SessionState::Closed, "None", None));
            }
        }
    }

    /// Registers a watch for `removewatches`; None (and a message) past the limit.
    fn register(&self, path: &str, kind: WatchKind) -> Option<Tracked> {
        let Some((id, cancel)) = self.watches.add(path, kind) else {
            err("too many watches in this shell: this one is not tracked\n");
            return None;
        };
        Some(Tracked { id, cancel, watches: self.watches.clone(), print: self.printwatches.clone(), path: path.into() })
    }

    /// `get -w`, `stat -w`, `ls -w`: prints the event when it fires (if printwatches is on).
    pub fn track_oneshot(&self, path: &str, kind: WatchKind, watcher: OneshotWatcher) {
        let Some(Tracked { id, cancel, watches, print, path }) = self.register(path, kind) else { return };
        tokio::spawn(async move {
            tokio::select! {
                ev = watcher.changed() => {
                    if print.load(Ordering::Relaxed) && ev.event_type != EventType::Session {
                        print_watcher(&event_text(&ev));
                    }
                }
                _ = cancel => print_removed(&print, &path, kind),
            }
            watches.done(id);
        });
    }

    /// `addWatch`: every event until the watch is removed or the session ends.
    pub fn track_persistent(&self, path: &str, mut watcher: PersistentWatcher) {
        let Some(Tracked { id, mut cancel, watches, print, path }) = self.register(path, WatchKind::Persistent) else {
            return;
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = watcher.changed() => {
                        if ev.event_type == EventType::Session {
                            if ev.session_state.is_terminated() {
                                break;
                            }
                            continue;
                        }
                        if print.load(Ordering::Relaxed) {
                            print_watcher(&event_text(&ev));
                        }
                    }
                    _ = &mut cancel => {
                        print_removed(&print, &path, WatchKind::Persistent);
                        break;
                    }
                }
            }
            watches.done(id);
        });
    }
}

/// The Java client tells a watcher that it was removed with a local event; so do we.
fn print_removed(print: &AtomicBool, path: &str, kind: WatchKind) {
    if print.load(Ordering::Relaxed) {
        let t = match kind {
            WatchKind::Data => "DataWatchRemoved",
            WatchKind::Child => "ChildWatchRemoved",
            WatchKind::Persistent => "PersistentWatchRemoved",
        };
        print_watcher(&event_line(SessionState::SyncConnected, t, Some(path)));
    }
}

fn spawn_state_printer(client: &Client, print: Arc<AtomicBool>) {
    let mut states = client.state_watcher();
    tokio::spawn(async move {
        loop {
            let s = states.changed().await;
            if print.load(Ordering::Relaxed) && s != SessionState::Closed {
                print_watcher(&event_line(s, "None", None));
            }
            if s.is_terminated() {
                break;
            }
        }
    });
}

/// Resolves when the session reaches a terminal state (at once if it already has).
pub async fn session_end(client: &Client) -> SessionState {
    let mut states = client.state_watcher();
    loop {
        let s = states.state();
        if s.is_terminated() {
            return s;
        }
        states.changed().await;
    }
}

/// Waits until the session is connected again (Ok) or over (Err with its end state).
pub async fn settle(client: &Client) -> Result<(), SessionState> {
    let mut states = client.state_watcher();
    loop {
        match states.state() {
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => return Ok(()),
            s if s.is_terminated() => return Err(s),
            _ => {
                states.changed().await;
            }
        }
    }
}

/// The error a command reports when its session ended in `state`.
pub fn ended(state: SessionState, path: &str) -> CliError {
    let err = match state {
        SessionState::Expired => zookeeper_client::Error::SessionExpired,
        SessionState::AuthFailed => zookeeper_client::Error::AuthFailed,
        _ => zookeeper_client::Error::ConnectionLoss,
    };
    CliError::zk(err, path)
}

/// Opens a session: every server in `server` is tried once, and the whole attempt is
/// bounded by the session timeout.
pub async fn connect(server: &str, timeout_ms: u64, readonly: bool) -> CliResult<Client> {
    let timeout = Duration::from_millis(timeout_ms);
    let connector = Client::connector().with_session_timeout(timeout).with_readonly(readonly).with_fail_eagerly();
    match tokio::time::timeout(timeout, connector.connect(server)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(CliError::Message(format!("Unable to connect to {server}: {e}"), Status::ConnectionLoss)),
        Err(_) => Err(CliError::Message(
            format!("Unable to connect to {server}: no session within {timeout_ms} ms"),
            Status::ConnectionLoss,
        )),
    }
}

/// Drops the client (the crate then sends closeSession) and waits for the session to end,
/// so that ephemerals are gone when the command returns, as with zkCli.
pub async fn close_client(client: Client) {
    let mut states = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            if states.changed().await.is_terminated() {
                break;
            }
        }
    })
    .await;
}

/// zkCli's prompt word for a session state (ZooKeeper.States).
pub fn prompt_state(client: Option<&Client>) -> &'static str {
    match client.map(|c| c.state()) {
        Some(SessionState::SyncConnected) => "CONNECTED",
        Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
        Some(SessionState::Disconnected) => "CONNECTING",
        Some(SessionState::AuthFailed) => "AUTH_FAILED",
        Some(SessionState::Expired) | Some(SessionState::Closed) | None => "CLOSED",
    }
}
