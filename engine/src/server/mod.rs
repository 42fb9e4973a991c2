//! The I/O shell: the only code that touches glommio, sockets and clocks.
//!
//! One glommio executor per configured core. Every executor accepts client connections on
//! the same port (SO_REUSEPORT) and runs their reader and writer tasks. Executor 0 owns the
//! `Machine` (tree, sessions, watches): connection events from other executors reach it over
//! bounded glommio shared channels, and its output frames travel back the same way. The
//! owner turns timers into `tick`s and hands appended transactions to the log; replies to
//! writes come out of `Machine::durable`, so nothing is acknowledged before the log says so.

mod admin;
mod admission;
mod disk_queue;
pub mod export_zk;
mod frame;
pub mod http;
pub mod import_zk;
mod notify;
mod offload;
mod outbox;
mod owner;
mod peer_tls;
pub mod peers;
pub mod purge;
pub mod resolve;
mod secure;
pub mod wal;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{info, warn};

use crate::machine::{ConnId, MachineConfig};
use crate::proto::{ConnectRequest, Request, RequestHeader};
use crate::storage::{recovery, RealDisk};
use admission::{AcceptBackoff, Admission, LogLimiter, Slot};
use frame::{FrameError, FrameReader};
use outbox::{Backlog, Outbox, ReplyLimits};
pub use owner::{wall_ms as wall_clock_ms, AdminContext};
pub use secure::ClientTls;
use secure::Listener;

/// Everything the shell needs to run, already validated.
#[derive(Clone)]
pub struct Settings {
    /// clientPort: plaintext (or unified, see `tls`). None when only `secureClientPort` is set.
    pub addr: Option<SocketAddr>,
    /// TLS client connections; None when no listener speaks TLS.
    pub tls: Option<ClientTls>,
    /// jute.maxbuffer: the largest frame body accepted.
    pub max_frame_len: u32,
    /// maxClientCnxns: connections per client address, counted from accept; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// maxCnxns: connections from all addresses together; 0 = unlimited.
    pub max_cnxns: u32,
    /// nio.sessionlessCnxnTimeout: how long after accept a connection may take to send its
    /// ConnectRequest (or four-letter word) before it is closed.
    pub handshake_timeout: Duration,
    /// warren.maxQueuedReplyBytes: unwritten reply bytes past which a connection is aborted.
    pub max_queued_reply_bytes: usize,
    pub machine: MachineConfig,
    pub executors: usize,
    pub io_memory_bytes: usize,
    pub admin: Arc<AdminContext>,
    pub storage: Storage,
    /// Set for an ensemble member; None runs standalone.
    pub ensemble: Option<EnsembleSettings>,
}

/// An ensemble member's protocol settings and peers.
#[derive(Clone, Debug)]
pub struct EnsembleSettings {
    pub quorum: crate::quorum::QuorumConfig,
    /// Every member: (myid, quorum address, election address), as the `server.N` lines give
    /// them; host names are resolved by the peer links at each connection attempt.
    pub members: Vec<(crate::quorum::ServerId, resolve::PeerAddr, resolve::PeerAddr)>,
    /// dataDir itself (the epoch files live there, not in version-2).
    pub data_dir: std::path::PathBuf,
    /// Quorum TLS (`sslQuorum`, `portUnification`); None: plaintext links.
    pub tls: Option<peers::PeerTls>,
    /// The ensemble identity told to peers; [`run`] sets it from dataDir after recovery.
    pub identity: crate::storage::identity::Identity,
}

/// Where and how the log and snapshots are kept.
#[derive(Clone, Debug)]
pub struct Storage {
    /// `dataDir/version-2`: snapshots.
    pub snap_dir: std::path::PathBuf,
    /// `dataLogDir/version-2`: log segments.
    pub log_dir: std::path::PathBuf,
    /// preAllocSize: bytes preallocated per log segment.
    pub segment_size: u64,
    pub force_sync: bool,
    /// fsync.warningthresholdms.
    pub slow_fsync: std::time::Duration,
    /// snapCount: a snapshot is taken after a random number of transactions in
    /// [snapCount/2 + 1, snapCount], so that servers of an ensemble do not snapshot together.
    pub snap_count: u64,
    /// snapSizeLimitInKb in bytes (0: no size trigger).
    pub snap_size_limit_bytes: u64,
    /// autopurge.snapRetainCount.
    pub purge_retain: usize,
    /// autopurge.purgeInterval; None disables automatic purging.
    pub purge_interval: Option<std::time::Duration>,
}

/// A connection event, sent from the connection's executor to the owner. `Open` and
/// `FourLetter` carry the connection's reply backlog, which the owner charges as it routes
/// frames to a connection on another executor (see `outbox`).
pub enum Event {
    /// `ids`: the auth ids the connection starts with besides `ip:` (a client certificate's).
    Open {
        conn: ConnId,
        ip: IpAddr,
        ids: Vec<crate::acl::Id>,
        backlog: Arc<Backlog>,
    },
    Connect {
        conn: ConnId,
        req: ConnectRequest,
    },
    Request {
        conn: ConnId,
        hdr: RequestHeader,
        req: Request,
    },
    Closed {
        conn: ConnId,
    },
    FourLetter {
        conn: ConnId,
        word: String,
        backlog: Arc<Backlog>,
    },
}

/// An output for a connection, sent from the owner to the connection's executor.
pub enum Out {
    Frame(ConnId, Vec<u8>),
    Close(ConnId),
}

/// Bits of a ConnId that name the executor that holds the socket.
const EXECUTOR_SHIFT: u32 = 48;
const CHANNEL_CAPACITY: usize = 8192;
/// How long a closing connection may take to flush what is queued for it (a four-letter
/// word's answer, the reply to closeSession), and how long a four-letter word may wait for the
/// owner's answer. A client that stopped reading is cut off after this.
const LINGER: Duration = Duration::from_secs(10);
/// Refused connections are logged at most once per this interval (with a count of the others).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

fn executor_of(conn: ConnId) -> usize {
    (conn >> EXECUTOR_SHIFT) as usize
}

/// A queue drained by a task that awaits a cross-executor send for each item.
struct Forwarder<T> {
    queue: RefCell<VecDeque<T>>,
    waker: RefCell<Option<Waker>>,
}

impl<T: Send + 'static> Forwarder<T> {
    fn new() -> Rc<Self> {
        Rc::new(Forwarder { queue: RefCell::new(VecDeque::new()), waker: RefCell::new(None) })
    }

    fn push(&self, item: T) {
        self.queue.borrow_mut().push_back(item);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn run(self: Rc<Self>, tx: ConnectedSender<T>) {
        loop {
            let batch: Vec<T> = poll_fn(|cx| {
                let mut q = self.queue.borrow_mut();
                if q.is_empty() {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(q.drain(..).collect())
                }
            })
            .await;
            for item in batch {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Per-executor state: the outboxes of the connections this executor holds, and where to
/// send events.
pub(crate) struct ExecCtx {
    index: usize,
    next_conn: Cell<u64>,
    outboxes: RefCell<HashMap<ConnId, Rc<Outbox>>>,
    owner: RefCell<Option<Rc<owner::Owner>>>,
    to_owner: RefCell<Option<Rc<Forwarder<Event>>>>,
    /// Connection counts, shared by every executor.
    admission: Arc<Admission>,
    reply_limits: ReplyLimits,
    settings: Settings,
    tls_failures: secure::FailureLog,
}

impl ExecCtx {
    fn submit(&self, ev: Event) {
        if let Some(o) = self.owner.borrow().as_ref() {
            o.dispatch(ev);
            return;
        }
        if let Some(f) = self.to_owner.borrow().as_ref() {
            f.push(ev);
        }
    }

    /// Delivers an owner output to a connection held by this executor.
    pub(crate) fn deliver(&self, out: Out) {
        match out {
            Out::Frame(conn, f) => {
                if let Some(o) = self.outboxes.borrow().get(&conn) {
                    // The owner charged frames for other executors when it routed them.
                    if self.index == 0 {
                        o.push(f);
                    } else {
                        o.push_counted(f);
                    }
                }
            }
            Out::Close(conn) => {
                if let Some(o) = self.outboxes.borrow_mut().remove(&conn) {
                    o.close();
                }
            }
        }
    }
}

/// Takes the dataDir lock (`storage::dir_lock`), to be held for the life of the process (the
/// kernel releases it when the process ends). Like `refuse_if_taken`, it gives a server that
/// is still exiting two seconds to let go.
fn lock_data_dir(dir: &std::path::Path) -> io::Result<crate::storage::dir_lock::DirLock> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if let Some(l) = crate::storage::dir_lock::try_lock(dir)? {
            return Ok(l);
        }
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "another process holds {}: a server is already running on dataDir {}",
                crate::storage::dir_lock::LOCK_FILE,
                dir.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// An ensemble member's identity for the peer hello: the `ensembleId` file's id (0 without
/// one), and whether the member holds no data at all (no such file, no epoch, no snapshot, no
/// log record), in which case it may join a recovered ensemble (see `peers`).
fn ensemble_identity(
    data_dir: &std::path::Path,
    r: &recovery::EnsembleRecovered,
) -> io::Result<crate::storage::identity::Identity> {
    let id = crate::storage::identity::load(&RealDisk, data_dir)?;
    let empty =
        id.is_none() && r.init.epochs == crate::quorum::Epochs::default() && r.snapshot_zxid == 0 && r.last_zxid == 0;
    let identity = crate::storage::identity::Identity { ensemble: id.unwrap_or(0), empty };
    info!(
        "ensemble identity: {}{}",
        identity.ensemble,
        if empty { " (no data yet: this server may join a recovered ensemble and take on its id)" } else { "" }
    );
    Ok(identity)
}

/// Runs the server until the process is killed.
pub fn run(mut settings: Settings) -> io::Result<()> {
    let n = settings.executors.max(1);
    if settings.addr.is_none() && settings.tls.as_ref().and_then(|t| t.secure_addr).is_none() {
        return Err(io::Error::other("neither clientPort nor secureClientPort is set: clients could not connect"));
    }
    for (addr, _) in listeners(&settings) {
        refuse_if_taken(addr)?;
    }
    std::mem::forget(lock_data_dir(&settings.admin.data_dir)?);
    let st = &settings.storage;
    recovery::prepare_dirs(&RealDisk, &[&st.snap_dir, &st.log_dir]).map_err(io::Error::other)?;
    let now = owner::now();
    let started = std::time::Instant::now();
    let mut identity = None;
    let recovered = match &settings.ensemble {
        None => {
            let r = recovery::recover(&RealDisk, &st.snap_dir, &st.log_dir, settings.machine.clone(), now)
                .map_err(|e| io::Error::other(format!("cannot recover the data in {}: {e}", st.log_dir.display())))?;
            owner::Start::Standalone(r)
        }
        Some(e) => {
            let r = recovery::recover_ensemble(&RealDisk, &e.data_dir, &st.snap_dir, &st.log_dir)
                .map_err(|e| io::Error::other(format!("cannot recover the data in {}: {e}", st.log_dir.display())))?;
            identity = Some(ensemble_identity(&e.data_dir, &r)?);
            owner::Start::Ensemble(r)
        }
    };
    if let (Some(e), Some(id)) = (settings.ensemble.as_mut(), identity) {
        e.identity = id;
    }
    info!("data loaded in {} ms", started.elapsed().as_millis());
    let mut to_owner_rx: Vec<SharedReceiver<Event>> = Vec::new();
    let mut to_owner_tx: Vec<Option<SharedSender<Event>>> = vec![None];
    let mut from_owner_tx: Vec<Option<SharedSender<Out>>> = vec![None];
    let mut from_owner_rx: Vec<Option<SharedReceiver<Out>>> = vec![None];
    for _ in 1..n {
        let (tx, rx) = shared_channel::new_bounded(CHANNEL_CAPACITY);
        to_owner_tx.push(Some(tx));
        to_owner_rx.push(rx);
        let (tx, rx) = shared_channel::new_bounded(CHANNEL_CAPACITY);
        from_owner_tx.push(Some(tx));
        from_owner_rx.push(Some(rx));
    }
    // Quorum TLS adds the peer TLS executor, with the smallest registration (see `peer_tls`).
    let peer_tls = settings.ensemble.as_ref().is_some_and(|e| e.tls.is_some());
    let reserved = if peer_tls { RINGS_PER_EXECUTOR * peer_tls::IO_MEMORY } else { 0 };
    let io_memory = io_memory_budget(settings.io_memory_bytes, n, memlock_limit().map(|l| l.saturating_sub(reserved)));
    info!(
        "starting {n} executor(s); io_uring registered memory {} KiB per executor ({} KiB locked in all: \
         glommio registers it in 3 rings; memlock limit {})",
        io_memory / 1024,
        io_memory * RINGS_PER_EXECUTOR * n / 1024,
        memlock_limit().map_or("unlimited".to_string(), |l| format!("{} KiB", l / 1024)),
    );
    if let Some(every) = st.purge_interval {
        let (snap_dir, log_dir, retain) = (st.snap_dir.clone(), st.log_dir.clone(), st.purge_retain);
        info!("autopurge: keeping {retain} snapshots, purging every {} h", every.as_secs() / 3600);
        std::thread::Builder::new().name("warren-purge".into()).spawn(move || loop {
            std::thread::sleep(every);
            match purge::purge(&snap_dir, &log_dir, retain) {
                Ok(removed) => info!("autopurge removed {} file(s)", removed.len()),
                Err(e) => warn!("autopurge failed: {e}"),
            }
        })?;
    }
    let (admin_tx, admin_rx) = async_channel::bounded(16);
    admin::start(&settings.admin, admin_tx);
    let mut admin_rx = Some(admin_rx);
    let ports: Vec<String> = listeners(&settings)
        .into_iter()
        .map(|(addr, kind)| if kind == Listener::Secure { format!("{addr} (TLS)") } else { addr.to_string() })
        .collect();
    notify::start(settings.admin.metrics.clone(), n, settings.ensemble.is_some(), ports.join(", "));
    let admission = Admission::new(admission::Limits { per_ip: settings.max_client_cnxns, total: settings.max_cnxns });
    info!(
        "connections: maxClientCnxns {}, maxCnxns {}, handshake within {} ms, at most {} reply bytes queued each",
        settings.max_client_cnxns,
        settings.max_cnxns,
        settings.handshake_timeout.as_millis(),
        settings.max_queued_reply_bytes
    );
    let mut handles = Vec::new();
    let mut owner_parts = Some((to_owner_rx, from_owner_tx));
    let mut recovered_slot = Some(recovered);
    for k in 0..n {
        let s = settings.clone();
        let adm = admission.clone();
        let builder = LocalExecutorBuilder::new(Placement::Unbound).name(&format!("warren-{k}")).io_memory(io_memory);
        let handle = if k == 0 {
            let (rx, tx) = owner_parts.take().expect("once");
            let r = recovered_slot.take().expect("once");
            let arx = admin_rx.take().expect("once");
            builder.spawn(move || async move { owner_main(s, adm, r, rx, tx, arx).await })
        } else {
            let tx = to_owner_tx[k].take().expect("once");
            let rx = from_owner_rx[k].take().expect("once");
            builder.spawn(move || async move { worker_main(k, s, adm, tx, rx).await })
        };
        handles.push(handle.map_err(|e| io::Error::other(format!("cannot start executor {k}: {e}")))?);
    }
    for h in handles {
        h.join().map_err(|e| io::Error::other(format!("executor failed: {e}")))??;
    }
    Ok(())
}

/// The client listeners `settings` asks for.
fn listeners(settings: &Settings) -> Vec<(SocketAddr, Listener)> {
    let unified = settings.tls.as_ref().is_some_and(|t| t.unified);
    let mut out = Vec::new();
    if let Some(addr) = settings.addr {
        out.push((addr, if unified { Listener::Unified } else { Listener::Plain }));
    }
    if let Some(addr) = settings.tls.as_ref().and_then(|t| t.secure_addr) {
        out.push((addr, Listener::Secure));
    }
    out
}

/// The executors bind with SO_REUSEPORT, which would let a second server on the same port
/// start and quietly share it. (A plain bind cannot tell: connections of a killed server
/// linger in TIME_WAIT with SO_REUSEPORT and make it fail.) So: is anyone listening?
fn refuse_if_taken(addr: SocketAddr) -> io::Result<()> {
    let mut probe = addr;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // A server killed a moment ago may still be closing its listener: give it two seconds.
    let listening = || std::net::TcpStream::connect_timeout(&probe, std::time::Duration::from_millis(500)).is_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while listening() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if listening() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("cannot listen on {addr}: another process is listening there"),
        ));
    }
    Ok(())
}

/// glommio registers each executor's I/O memory with its main, poll and latency rings, and
/// each registration is charged against RLIMIT_MEMLOCK.
const RINGS_PER_EXECUTOR: usize = 3;
/// glommio's own floor.
const IO_MEMORY_MIN: usize = 64 * 1024;

/// The configured per-executor I/O memory, shrunk so that every executor's registrations fit
/// under the memlock limit: past it, registration fails and glommio silently falls back to
/// unregistered buffers (seen here: two executors of 2 MiB under an 8 MiB limit).
fn io_memory_budget(configured: usize, executors: usize, limit: Option<usize>) -> usize {
    let Some(limit) = limit else {
        return configured.max(IO_MEMORY_MIN);
    };
    // Keep a quarter of the limit for everything else that locks memory.
    let share = (limit - limit / 4) / (RINGS_PER_EXECUTOR * executors.max(1));
    configured.min(share / 4096 * 4096).max(IO_MEMORY_MIN)
}

/// RLIMIT_MEMLOCK in bytes, None when unlimited or unknown (read from /proc: no libc needed).
fn memlock_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max locked memory"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn new_ctx(index: usize, settings: Settings, admission: Arc<Admission>) -> Rc<ExecCtx> {
    Rc::new(ExecCtx {
        index,
        next_conn: Cell::new(1),
        outboxes: RefCell::new(HashMap::new()),
        owner: RefCell::new(None),
        to_owner: RefCell::new(None),
        admission,
        reply_limits: ReplyLimits::new(settings.max_queued_reply_bytes),
        settings,
        tls_failures: secure::FailureLog::new(),
    })
}

async fn owner_main(
    settings: Settings,
    admission: Arc<Admission>,
    recovered: owner::Start,
    rxs: Vec<SharedReceiver<Event>>,
    txs: Vec<Option<SharedSender<Out>>>,
    admin_rx: async_channel::Receiver<admin::ToOwner>,
) -> io::Result<()> {
    let ctx = new_ctx(0, settings.clone(), admission);
    // Channel ends pair up in the order the workers connect theirs: each worker connects its
    // sender to us first, then its receiver. Connecting in another order deadlocks.
    let mut receivers = Vec::new();
    for rx in rxs {
        receivers.push(rx.connect().await);
    }
    let mut remotes = vec![None];
    for tx in txs.into_iter().flatten() {
        let f = Forwarder::new();
        glommio::spawn_local(f.clone().run(tx.connect().await)).detach();
        remotes.push(Some(f));
    }
    let owner = owner::Owner::new(settings.clone(), recovered, ctx.clone(), remotes);
    *ctx.owner.borrow_mut() = Some(owner.clone());
    if let Some(e) = &settings.ensemble {
        let cfg = peers::PeerConfig {
            myid: e.quorum.myid,
            members: e.members.clone(),
            connect_timeout: std::time::Duration::from_millis(settings.machine.tick_ms.clamp(200, 5000) as u64),
            tls: e.tls.clone(),
            identity: e.identity,
            data_dir: e.data_dir.clone(),
        };
        owner.start_peers(cfg).await?;
    }
    for rx in receivers {
        let rx: ConnectedReceiver<Event> = rx;
        let owner = owner.clone();
        glommio::spawn_local(async move {
            while let Some(ev) = rx.recv().await {
                owner.dispatch(ev);
            }
        })
        .detach();
    }
    glommio::spawn_local(owner.clone().ticker()).detach();
    glommio::spawn_local(owner.clone().publisher()).detach();
    glommio::spawn_local(owner.clone().serve_admin(admin_rx)).detach();
    listen(ctx).await
}

async fn worker_main(
    index: usize,
    settings: Settings,
    admission: Arc<Admission>,
    tx: SharedSender<Event>,
    rx: SharedReceiver<Out>,
) -> io::Result<()> {
    let ctx = new_ctx(index, settings, admission);
    let f = Forwarder::new();
    glommio::spawn_local(f.clone().run(tx.connect().await)).detach();
    *ctx.to_owner.borrow_mut() = Some(f);
    let rx = rx.connect().await;
    let c = ctx.clone();
    glommio::spawn_local(async move {
        while let Some(out) = rx.recv().await {
            c.deliver(out);
        }
    })
    .detach();
    listen(ctx).await
}

/// A client listener shared by the executors (SO_REUSEPORT, as glommio's own `bind`) that
/// also sets SO_REUSEADDR, which glommio's does not: without it, the connections another
/// process (a ZooKeeper just stopped, in a migration) left in TIME_WAIT on the port make the
/// bind fail for a minute. `refuse_if_taken` has checked that nobody listens there.
fn bind_client_port(addr: SocketAddr) -> io::Result<TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let domain = if addr.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let sk = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    sk.set_reuse_port(true)?;
    sk.bind(&addr.into())?;
    sk.listen(1024)?;
    sk.set_nonblocking(true)?;
    // SAFETY: `into_raw_fd` hands over a bound, listening socket that nothing else owns.
    Ok(unsafe { TcpListener::from_raw_fd(sk.into_raw_fd()) })
}

/// Binds every client listener of this executor, then accepts on all of them.
async fn listen(ctx: Rc<ExecCtx>) -> io::Result<()> {
    let mut loops = Vec::new();
    for (addr, kind) in listeners(&ctx.settings) {
        let listener = bind_client_port(addr)
            .map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, format!("cannot listen on {addr}: {e}")))?;
        if ctx.index == 0 {
            match kind {
                Listener::Plain => info!("binding to port {addr}"),
                Listener::Secure => info!("binding to port {addr} (TLS only)"),
                Listener::Unified => info!("binding to port {addr} (plaintext and TLS: client.portUnification)"),
            }
        }
        loops.push(glommio::spawn_local(accept_loop(ctx.clone(), listener, kind)));
    }
    // Every client port of this executor is listening (systemd's READY=1 waits for all).
    ctx.settings.admin.metrics.client_listeners.add(1);
    for l in loops {
        l.await;
    }
    Ok(())
}

async fn accept_loop(ctx: Rc<ExecCtx>, listener: TcpListener, kind: Listener) {
    let what = if kind == Listener::Secure { "secure client port" } else { "client port" };
    let mut backoff = AcceptBackoff::default();
    let mut refusals = LogLimiter::new(REFUSAL_LOG_INTERVAL);
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                if let Some(pause) = backoff.on_error(&io::Error::from(e), what) {
                    glommio::timer::sleep(pause).await;
                }
                continue;
            }
        };
        let accepted = Instant::now();
        backoff.on_success(what);
        let Ok(peer) = stream.peer_addr() else { continue };
        let slot = match ctx.admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                // Dropping the stream closes it: a refused connection costs nothing more.
                if let Some(held_back) = refusals.allow(Instant::now()) {
                    let more = if held_back > 0 {
                        format!(" ({held_back} more refused since the last line)")
                    } else {
                        String::new()
                    };
                    warn!("{refusal}: closing the connection from {peer}{more}");
                }
                continue;
            }
        };
        let id = ctx.next_conn.get();
        ctx.next_conn.set(id + 1);
        let conn = ((ctx.index as u64) << EXECUTOR_SHIFT) | id;
        let _ = stream.set_nodelay(true);
        match kind {
            Listener::Plain => {
                glommio::spawn_local(serve(ctx.clone(), stream, conn, peer, slot, accepted, Vec::new())).detach()
            }
            Listener::Secure | Listener::Unified => {
                glommio::spawn_local(secure::serve_secure(ctx.clone(), stream, conn, peer, slot, kind, accepted))
                    .detach()
            }
        };
    }
}

/// Runs a connection, plaintext or TLS alike, from its first byte until it closes. `accepted`
/// starts its handshake deadline; `ids` are auth ids it holds from the start (a client
/// certificate's).
async fn serve<S>(
    ctx: Rc<ExecCtx>,
    stream: S,
    conn: ConnId,
    peer: SocketAddr,
    slot: Slot,
    accepted: Instant,
    ids: Vec<crate::acl::Id>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let outbox = Rc::new(Outbox::new(ctx.reply_limits, Some(slot)));
    ctx.outboxes.borrow_mut().insert(conn, outbox.clone());

    let writer_box = outbox.clone();
    let writer = glommio::spawn_local(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        while writer_box.next_batch(&mut buf).await {
            // A TLS stream may keep the tail of a record until flushed (a no-op in plaintext).
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                break;
            }
            writer_box.written(buf.len());
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = Vec::with_capacity(64 * 1024);
            }
        }
        let _ = wr.close().await;
    });

    // Reading stops as soon as the connection is closing (closed by the owner, refused, or
    // over its reply cap), even while the client sends nothing.
    let reading = read_loop(&ctx, &mut rd, conn, peer, &outbox, accepted, ids);
    let closed = async {
        outbox.closed().await;
        Ok(Ended::PeerDone)
    };
    match futures_lite::future::or(reading, closed).await {
        Ok(Ended::PeerDone) => {}
        // The answer comes from the owner, possibly on another executor: wait for it, but
        // not forever (the owner closes the outbox right after the text).
        Ok(Ended::AwaitOwner) => {
            futures_lite::future::or(outbox.closed(), glommio::timer::sleep(LINGER)).await;
        }
        Err(msg) => info!("closing connection {conn:#x} from {peer}: {msg}"),
    }
    ctx.submit(Event::Closed { conn });
    if let Some(o) = ctx.outboxes.borrow_mut().remove(&conn) {
        o.close();
    }
    outbox.close();
    if outbox.overflowed() {
        warn!(
            "closing connection {conn:#x} from {peer}: {} bytes of replies wait to be written, past \
             warren.maxQueuedReplyBytes ({}); the client does not read what it is sent",
            outbox.backlog().bytes(),
            outbox.limits().cap
        );
        // Dropping the writer cancels a write that waits on a client that does not read.
        drop(writer);
        return;
    }
    // Flush what is queued, but a client that stopped reading gets no more than LINGER.
    futures_lite::future::or(writer, glommio::timer::sleep(LINGER)).await;
}

/// How a connection's reading ended, when it ended cleanly.
enum Ended {
    PeerDone,
    /// A four-letter word was asked; the owner answers and closes.
    AwaitOwner,
}

/// What a connection opened with.
enum Hello {
    /// The peer closed the connection before sending anything.
    Nothing,
    FourLetter,
    Connect(ConnectRequest),
}

/// Reads until the peer goes away or sends something malformed. `Err` carries the log line.
async fn read_loop<R: AsyncRead + Unpin>(
    ctx: &ExecCtx,
    rd: &mut R,
    conn: ConnId,
    peer: SocketAddr,
    outbox: &Outbox,
    accepted: Instant,
    ids: Vec<crate::acl::Id>,
) -> Result<Ended, String> {
    let mut frames = FrameReader::new();
    let max = ctx.settings.max_frame_len;
    let limit = ctx.settings.handshake_timeout;
    let handshake = async {
        let first = match frames.peek4(rd).await {
            Ok(b) => b,
            Err(_) => return Ok(Hello::Nothing),
        };
        if let Some(word) = crate::admin::parse_word(first) {
            let backlog = outbox.backlog().clone();
            ctx.submit(Event::FourLetter { conn, word: word.as_str().to_string(), backlog });
            return Ok(Hello::FourLetter);
        }
        ctx.submit(Event::Open { conn, ip: peer.ip(), ids, backlog: outbox.backlog().clone() });
        let body = frames.next(rd, max).await.map_err(|e| describe(e, max))?;
        let req = ConnectRequest::decode(body).map_err(|e| format!("malformed ConnectRequest: {e}"))?;
        Ok::<_, String>(Hello::Connect(req))
    };
    // A deadline, not an idle timeout: a client trickling a byte at a time gets no longer.
    let expired = async {
        glommio::timer::sleep(limit.saturating_sub(accepted.elapsed())).await;
        Err(format!("no ConnectRequest within {} ms (nio.sessionlessCnxnTimeout)", limit.as_millis()))
    };
    let req = match futures_lite::future::or(handshake, expired).await? {
        Hello::Nothing => return Ok(Ended::PeerDone),
        Hello::FourLetter => return Ok(Ended::AwaitOwner),
        Hello::Connect(req) => req,
    };
    ctx.submit(Event::Connect { conn, req });
    loop {
        if outbox.is_closing() {
            return Ok(Ended::PeerDone);
        }
        if outbox.should_pause() {
            // Backpressure: take no request while the client has not read its replies.
            outbox.drained().await;
            continue;
        }
        let body = match frames.next(rd, max).await {
            Ok(b) => b,
            Err(FrameError::Eof) => return Ok(Ended::PeerDone),
            Err(e) => return Err(describe(e, max)),
        };
        let (hdr, req) = crate::proto::Request::decode(body).map_err(|e| format!("malformed request: {e}"))?;
        tracing::trace!("connection {conn:#x}: xid {} op {}", hdr.xid, hdr.op);
        ctx.submit(Event::Request { conn, hdr, req });
    }
}

fn describe(e: FrameError, max: u32) -> String {
    match e {
        FrameError::Eof => "peer closed the connection".into(),
        FrameError::Io(e) => format!("read error: {e}"),
        FrameError::BadLength(n) => {
            format!("Len error {n}: greater than jute.maxbuffer ({max}) or negative")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_memory_fits_under_memlock() {
        let mib = 1024 * 1024;
        // One executor of 2 MiB: 6 MiB locked, under 8 MiB with room to spare.
        assert_eq!(io_memory_budget(2 * mib, 1, Some(8 * mib)), 2 * mib);
        // Two executors must shrink: 3 rings x 2 x budget <= 6 MiB.
        let b = io_memory_budget(2 * mib, 2, Some(8 * mib));
        assert!(b * RINGS_PER_EXECUTOR * 2 <= 6 * mib && b >= mib, "{b}");
        assert_eq!(io_memory_budget(2 * mib, 64, Some(8 * mib)), IO_MEMORY_MIN);
        assert_eq!(io_memory_budget(2 * mib, 2, None), 2 * mib);
    }
}
