//! The TCP links between the servers of an ensemble.
//!
//! **One connection per ordered pair.** Every server dials the *election* port of every other
//! member and only writes on that connection; what it receives comes in on the connections
//! the others dialled to it, which it only reads. So messages from A to B always travel on A's
//! outbound connection to B's election port, in order. ZooKeeper uses two ports (2888 for
//! follower ↔ leader traffic, 3888 for election); Warren carries both kinds of message over
//! this single link per direction. The quorum port is still bound, so that a port clash is
//! detected at start-up, but peers never use it: a connection to it is accepted and closed.
//!
//! A connection opens with a hello ([`codec::encode_hello`]: magic, the dialler's myid, its
//! ensemble id and whether it holds no data); anything else (a ZooKeeper server, a port
//! scanner, a member id that is not configured) is logged and closed without affecting the
//! links. Then frames follow ([`codec::encode`]).
//!
//! **Ensemble identity** ([`identity::admit`]). A hello naming another ensemble than this
//! server's is refused with a log line naming both, unless one of the two holds no data: so a
//! member of an ensemble that lost its quorum, coming back with its old data after the
//! survivors were recovered (`warren recover-quorum`), never links with them, while a new
//! member with an empty dataDir joins them. A member without data that admits a peer of
//! another ensemble takes on that ensemble's id first: it writes `ensembleId` durably (a small
//! blocking write on this executor, once in the member's life) and drops any link it had
//! admitted from a member of its former identity that holds data.
//!
//! **Up and Down.** A peer is *up* when both directions are connected: our outbound connection
//! to it and its (hello-identified) inbound connection to us. The events for a peer alternate
//! `Up`, `Down`, `Up`, ... (starting down). Whenever a peer goes down, for whatever reason
//! (connect refused, read or write error, EOF, a bad frame, a newer inbound connection
//! replacing the current one), *both* of its connections are closed, queued messages are
//! dropped, and a fresh pair is set up in the background (retrying with a backoff from 20 ms
//! to 500 ms). Hence the guarantee the protocol relies on: between `Up(p)` and `Down(p)`,
//! messages sent to `p` and received from `p` are delivered in order, without gaps or
//! duplicates. [`Peers::send`] drops messages while the peer is down, and no `Message` from a
//! peer is reported while it is down. Because the dialler marks its outbound connection as
//! connected before it writes its hello, and the other side only counts the connection once
//! that hello is read, a message a server sends right after its `Up` reaches a peer that
//! already reported `Up` too.
//!
//! **Host names** ([`PeerAddr`], [`resolve`]). Members are given as their `server.N` lines
//! write them. Each outbound attempt resolves the peer's host afresh (off the executor; an IP
//! literal needs no lookup), so a peer whose name resolves only later, or that comes back
//! under a new address, is found at a later attempt; a name that does not resolve is a failed
//! attempt like a refused connection (same backoff, same rate-limited log line), never a dial
//! of `0.0.0.0`. Inbound connections are identified by their hello, not by their source
//! address. This server's own ports are bound in [`Peers::start`] when its host resolves there
//! (a clash is then an error, as before names were resolved per attempt); when it does not, a
//! task looks it up and binds with the same backoff until both ports are bound, and nothing is
//! bound meanwhile.
//!
//! **TLS** (`sslQuorum`, `portUnification`, [`PeerTls`]). With `sslQuorum=true` every
//! outbound connection is a TLS client showing this server's certificate; the election port
//! then takes TLS only, or, with `portUnification=true`, TLS and plaintext told apart by the
//! first byte (0x16 opens a TLS handshake; a plaintext hello starts with `W`). With
//! `portUnification=true` alone, connections are dialled in plaintext and both are accepted:
//! the middle steps of a rolling switch. Both ends verify the other's certificate against the
//! quorum trust store; with `ssl.quorum.hostnameVerification` the dialler checks that the
//! certificate names the host of the peer's `server.N` line, and the acceptor, once the hello
//! says which server dialled, that the certificate names *that* server's host, so that one
//! member's certificate cannot speak for another.
//!
//! No TLS work runs here, on the owner's executor: with quorum TLS configured, `Peers` starts
//! the peer TLS executor (`peer_tls`, thread `warren-peer-tls`), which holds the election
//! port (from when it is bound: at start, or once this server's host resolves), dials the
//! addresses this code resolved (it looks up no names), runs every handshake, and encrypts
//! and decrypts every TLS link, pumping its plaintext through a Unix socketpair whose other
//! end this code reads and writes like a TCP connection.
//! Plaintext connections on a unified port are handed over as their own TCP socket. Detection,
//! handshake and hello share one deadline from accept (the hello deadline); a rejected
//! connection is logged there or here through one shared limit (at most once per
//! `REJECT_LOG_EVERY`, with a count of the others) and closed. A pump ends, closing both of
//! its sides, as soon as either does, so the guarantees above hold unchanged over TLS. Without
//! quorum TLS there is no such executor and no socketpair: plaintext links are TCP
//! connections on this executor, the same code as before TLS existed.
//!
//! Not detected here: a peer that stops reading without closing (a hung process, a partition
//! that drops packets silently). Its queue grows and its writes stall until TCP gives up; the
//! protocol's own timeouts (syncLimit) notice first and call [`Peers::reset`].
//!
//! The event channel is a glommio unbounded local channel
//! ([`glommio::channels::local_channel`]): every `Peers` lives on one executor, with its owner.
//! The peer TLS executor talks to it over `async_channel`s (a dial request and its answer,
//! accepted connections), which carry only file descriptors, never link traffic.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future::or;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream, UnixStream};
use glommio::Task;
use rustls_pki_types::ServerName;
use tracing::{debug, error, info, warn};

use super::admission::{AcceptBackoff, LogLimiter};
use super::outbox::Outbox;
use super::peer_tls::{self, Handoff, Terminator};
use super::resolve::{self, PeerAddr};
use crate::quorum::codec::{self, Hello, HELLO_LEN, MAX_FRAME};
use crate::quorum::{Msg, ServerId};
use crate::storage::identity::{self, Admit, Identity};
use crate::storage::RealDisk;

/// The first retry delay after a link breaks; doubled per failed attempt up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// A link that stayed up this long resets the backoff.
const STABLE: Duration = Duration::from_secs(1);
/// Repeated connect failures to one peer are logged at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// A connection must send its hello within this time (at least).
const HELLO_TIMEOUT_MIN: Duration = Duration::from_secs(1);
const READ_BUF_INITIAL: usize = 64 * 1024;
/// Rejected connections to the election port (bad hello, failed TLS handshake, a certificate
/// for another host) are logged at most this often, with a count of the others.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct PeerConfig {
    pub myid: ServerId,
    /// Every member, myself included: `(myid, quorum address, election address)` as the
    /// `server.N` lines give them; host names are resolved at each use (see the module doc).
    pub members: Vec<(ServerId, PeerAddr, PeerAddr)>,
    pub connect_timeout: Duration,
    /// None: plaintext only (neither `sslQuorum` nor `portUnification`).
    pub tls: Option<PeerTls>,
    /// This server's ensemble identity, as its dataDir gave it at start-up.
    pub identity: Identity,
    /// dataDir, where an adopted ensemble id is written (`ensembleId`).
    pub data_dir: std::path::PathBuf,
}

/// Quorum TLS, as the links need it (see the module doc).
#[derive(Clone)]
pub struct PeerTls {
    /// The server and client configurations; replaced when `sslQuorumReloadCertFiles` is set
    /// and the store files change. A link uses the configuration current when it opened.
    pub configs: Arc<crate::tls::Reloadable<crate::tls::PeerConfigs>>,
    /// `sslQuorum`: dial with TLS.
    pub dial: bool,
    /// `portUnification`: the election port also accepts plaintext.
    pub unified: bool,
    /// `ssl.quorum.hostnameVerification`.
    pub hostname_verification: bool,
    /// Every other member's `server.N` host, as the name its certificate must carry.
    pub hosts: HashMap<ServerId, ServerName<'static>>,
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`: how long a unified port waits for the
    /// first byte (never longer than the hello deadline).
    pub detection_timeout: Duration,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("dial", &self.dial)
            .field("unified", &self.unified)
            .field("hostname_verification", &self.hostname_verification)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    Up(ServerId),
    Down(ServerId),
    Message(ServerId, Msg),
}

/// The links to the other members. Lives on the executor that called [`Peers::start`].
pub struct Peers {
    shared: Rc<Shared>,
    /// Accept loops (or the task that binds once this server's host resolves) and outbound
    /// links; cancelled by `shutdown` (or on drop).
    tasks: RefCell<Vec<Task<()>>>,
}

impl Peers {
    /// Binds the quorum and election ports of `myid` and starts the accept loops and the
    /// outbound links; events go to the returned receiver. Must run inside a glommio executor.
    /// A bind that fails (a port clash) is an error; a host name of `myid` that does not
    /// resolve yet is not: the ports are bound in the background once it does.
    pub async fn start(cfg: PeerConfig) -> io::Result<(Rc<Peers>, LocalReceiver<PeerEvent>)> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let mut seen = std::collections::HashSet::new();
        for (id, _, _) in &cfg.members {
            if !seen.insert(*id) {
                return Err(invalid(format!("server id {id} is listed twice")));
            }
        }
        let (_, quorum, election) = cfg
            .members
            .iter()
            .find(|m| m.0 == cfg.myid)
            .cloned()
            .ok_or_else(|| invalid(format!("myid {} is not a member", cfg.myid)))?;
        if cfg.connect_timeout.is_zero() {
            return Err(invalid("the peer connect timeout must not be zero".into()));
        }
        if let Some(t) = &cfg.tls {
            if let Some((id, _, _)) = cfg.members.iter().find(|m| m.0 != cfg.myid && !t.hosts.contains_key(&m.0)) {
                return Err(invalid(format!("quorum TLS: no host name for server {id}")));
            }
        }
        let hello_timeout = cfg.connect_timeout.max(HELLO_TIMEOUT_MIN);
        let rejections = Arc::new(Mutex::new(LogLimiter::new(REJECT_LOG_EVERY)));
        // Looked up off the executor; a literal needs no lookup. Bound at once when it
        // resolves, so that a port clash is an error here.
        let own = match (resolve::resolve(&quorum).await, resolve::resolve(&election).await) {
            (Ok(q), Ok(e)) => Some(bind_ports(cfg.myid, q, e)?),
            (Err(why), _) | (_, Err(why)) => {
                warn!(
                    "server {} (this server): {why}; binding its quorum port {quorum} and election port {election} \
                     once it resolves, retrying in the background",
                    cfg.myid
                );
                None
            }
        };
        // Quorum TLS: the election port (once bound) and every TLS stream live on the peer TLS
        // executor, which dials from the start, whether or not this server's ports are bound.
        let (terminator, handoffs) = match &cfg.tls {
            None => (None, None),
            Some(tls) => {
                let setup = peer_tls::Setup {
                    myid: cfg.myid,
                    tls: tls.clone(),
                    connect_timeout: cfg.connect_timeout,
                    hello_timeout,
                    rejections: rejections.clone(),
                };
                let (terminator, handoffs) = Terminator::start(setup)?;
                (Some(terminator), Some(handoffs))
            }
        };

        let (tx, rx) = local_channel::new_unbounded();
        let links = cfg
            .members
            .iter()
            .filter(|m| m.0 != cfg.myid)
            .map(|(id, _, addr)| {
                (
                    *id,
                    Link {
                        addr: addr.clone(),
                        dialled: None,
                        moves: LogLimiter::new(REPORT_EVERY),
                        out: None,
                        inbound: None,
                        up: false,
                    },
                )
            })
            .collect();
        let shared = Rc::new(Shared {
            myid: cfg.myid,
            links: RefCell::new(links),
            events: tx,
            next_gen: Cell::new(1),
            conns: RefCell::new(HashMap::new()),
            closed: Cell::new(false),
            hello_timeout,
            tls: cfg.tls,
            identity: Cell::new(cfg.identity),
            data_dir: cfg.data_dir,
            rejections,
            terminator,
            listeners: RefCell::new(Vec::new()),
        });
        let mut tasks = vec![match own {
            Some(ports) => glommio::spawn_local(listen(&shared, ports)?),
            None => glommio::spawn_local(listen_when_resolved(shared.clone(), quorum, election)),
        }];
        if let Some(handoffs) = handoffs {
            tasks.push(glommio::spawn_local(accept_handoffs(shared.clone(), handoffs)));
        }
        for (id, _, addr) in cfg.members.iter().filter(|m| m.0 != cfg.myid) {
            tasks.push(glommio::spawn_local(outbound(shared.clone(), *id, addr.clone(), cfg.connect_timeout)));
        }
        let peers = Peers { shared, tasks: RefCell::new(tasks) };
        Ok((Rc::new(peers), rx))
    }

    /// Queues a message to a peer; never blocks. Dropped when the peer is down (or unknown):
    /// the owner was told `Down` and the protocol recovers.
    pub fn send(&self, to: ServerId, msg: &Msg) {
        if !self.is_up(to) {
            return;
        }
        let mut frame = Vec::new();
        codec::encode(msg, &mut frame);
        if frame.len() - 4 > MAX_FRAME {
            // Dropping it silently would leave a gap in the stream: break the link instead.
            error!(
                "cannot send a {} byte message to peer {to}: over the {MAX_FRAME} byte frame limit; resetting the link",
                frame.len() - 4
            );
            self.reset(to);
            return;
        }
        let links = self.shared.links.borrow();
        if let Some(Link { up: true, out: Some(out), .. }) = links.get(&to) {
            out.outbox.push(frame);
        }
    }

    /// Closes both connections with `peer` (reporting `Down` if it was up); they are set up
    /// again in the background.
    pub fn reset(&self, peer: ServerId) {
        let mut links = self.shared.links.borrow_mut();
        if let Some(l) = links.get_mut(&peer) {
            self.shared.teardown(l);
            self.shared.settle(peer, l);
        }
    }

    /// True between `Up(peer)` and `Down(peer)`.
    pub fn is_up(&self, peer: ServerId) -> bool {
        self.shared.links.borrow().get(&peer).is_some_and(|l| l.up)
    }

    pub fn myid(&self) -> ServerId {
        self.shared.myid
    }

    /// Closes the listeners and every connection, and stops reconnecting. The ports are free
    /// once this returns. No events are sent after it (the receiver then sees the channel
    /// end once this `Peers` is dropped).
    pub async fn shutdown(&self) {
        self.close_now();
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in tasks {
            t.cancel().await;
        }
        // Inbound connections were told to close; wait (briefly) for their tasks to end.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.shared.conns.borrow().is_empty() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        self.shared.listeners.borrow_mut().clear();
        if let Some(t) = &self.shared.terminator {
            t.stopped().await;
        }
        info!("peer links of server {} shut down", self.shared.myid);
    }

    /// The synchronous part of shutting down: no more events, listeners and links closing.
    fn close_now(&self) {
        if self.shared.closed.replace(true) {
            return;
        }
        for (_, fd) in self.shared.listeners.borrow().iter() {
            // Wakes a pending accept; the socket itself closes when the last Rc goes.
            // SAFETY: the listener owning this fd is alive (held in `shared.listeners`).
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
        if let Some(t) = &self.shared.terminator {
            t.stop();
        }
        for l in self.shared.links.borrow_mut().values_mut() {
            self.shared.teardown(l);
            l.up = false;
        }
        for k in self.shared.conns.borrow().values() {
            k.fire();
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.close_now();
        // Dropping the tasks cancels them; inbound tasks still ending may hold `shared`, so
        // the listening sockets are let go here.
        self.tasks.borrow_mut().clear();
        self.shared.listeners.borrow_mut().clear();
    }
}

/// This server's quorum and election ports, bound but not yet accepting.
struct Ports {
    quorum: std::net::TcpListener,
    election: std::net::TcpListener,
}

/// Binds the quorum and election ports; a clash is an error.
fn bind_ports(myid: ServerId, quorum: SocketAddr, election: SocketAddr) -> io::Result<Ports> {
    let (q, quorum_addr) = bind(quorum, "quorum")?;
    let (e, election_addr) = bind(election, "election")?;
    info!("peer links: server {myid} on quorum port {quorum_addr} and election port {election_addr}");
    Ok(Ports { quorum: q, election: e })
}

/// Starts accepting on bound ports: the listeners on this executor are registered in
/// `shared` (so that shutting down closes them); with quorum TLS the election listener goes to
/// the peer TLS executor (which closes it when stopped). The returned future runs the accept
/// loops on this executor.
fn listen(shared: &Rc<Shared>, ports: Ports) -> io::Result<impl Future<Output = ()>> {
    let election = match &shared.terminator {
        Some(t) => {
            t.listen(ports.election)?;
            None
        }
        None => {
            let (e, e_fd) = glommio_listener(ports.election);
            shared.listeners.borrow_mut().push((e.clone(), e_fd));
            Some(accept_election(shared.clone(), e))
        }
    };
    let (q, q_fd) = glommio_listener(ports.quorum);
    shared.listeners.borrow_mut().push((q.clone(), q_fd));
    let quorum = accept_quorum(shared.clone(), q);
    Ok(async move {
        match election {
            Some(election) => {
                futures_lite::future::zip(quorum, election).await;
            }
            None => quorum.await,
        }
    })
}

/// This server's own host did not resolve at start: looks it up and binds, retrying (with the
/// links' backoff, logged as their connect failures are) until both ports are bound; then
/// accepts. A failed lookup never falls back to a wildcard address.
async fn listen_when_resolved(shared: Rc<Shared>, quorum: PeerAddr, election: PeerAddr) {
    let mut backoff = BACKOFF_MIN;
    // `Peers::start` logged the first failure.
    let mut failures = Failures { count: 1, last_report: Some(Instant::now()) };
    while !shared.closed.get() {
        let attempt = async {
            let q = resolve::resolve(&quorum).await.map_err(|e| e.to_string())?;
            let e = resolve::resolve(&election).await.map_err(|e| e.to_string())?;
            if shared.closed.get() {
                return Err("shut down".to_string());
            }
            bind_ports(shared.myid, q, e).and_then(|ports| listen(&shared, ports)).map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(accepting) => return accepting.await,
            Err(e) => {
                if let Some(n) = failures.note(Instant::now()) {
                    warn!(
                        "server {} (this server): still cannot bind {quorum} and {election} ({n} attempts): {e}",
                        shared.myid
                    );
                }
            }
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The failed attempts of a retry loop, and which of them to log: the first, then at most one
/// per `REPORT_EVERY` (with the count), so that a peer down for hours costs a line per period.
#[derive(Default)]
struct Failures {
    count: u64,
    last_report: Option<Instant>,
}

impl Failures {
    /// Counts a failure; Some(failures so far) when this one is to be logged.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self.last_report.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return None;
        }
        self.last_report = Some(now);
        Some(self.count)
    }
}

/// A standard (SO_REUSEADDR, not SO_REUSEPORT) listener handed to glommio: glommio's own
/// `bind` sets SO_REUSEPORT, with which a second server on the same port would not fail.
fn bind(addr: SocketAddr, what: &str) -> io::Result<(std::net::TcpListener, SocketAddr)> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on the {what} port {addr}: {e}")))?;
    l.set_nonblocking(true)?;
    let bound = l.local_addr()?;
    Ok((l, bound))
}

/// A bound listener handed to glommio, and its fd (to shut it down).
fn glommio_listener(l: std::net::TcpListener) -> (Rc<TcpListener>, RawFd) {
    let fd = l.as_raw_fd();
    // SAFETY: `into_raw_fd` hands over a bound, listening socket that nothing else owns.
    (Rc::new(unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) }), fd)
}

/// Tells one connection's task to close it.
#[derive(Default)]
pub(super) struct Kill {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Kill {
    pub(super) fn fire(&self) {
        self.fired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(super) async fn wait(&self) {
        poll_fn(|cx| {
            if self.fired.get() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

struct OutConn {
    gen: u64,
    outbox: Rc<Outbox>,
    kill: Rc<Kill>,
}

struct InConn {
    gen: u64,
    kill: Rc<Kill>,
    /// The identity its hello gave.
    who: Identity,
}

/// What is known about one peer.
struct Link {
    /// Its election address as configured, which we resolve and dial.
    addr: PeerAddr,
    /// What its host resolved to at the last attempt (reported when it changes).
    dialled: Option<SocketAddr>,
    /// Rate limit of the "now resolves to" line: a name whose DNS answers rotate among
    /// several addresses must not log one per attempt.
    moves: LogLimiter,
    /// Our connection to it, once connected.
    out: Option<OutConn>,
    /// Its connection to us, once its hello was read.
    inbound: Option<InConn>,
    /// Reported `Up` (and not `Down` since).
    up: bool,
}

struct Shared {
    myid: ServerId,
    links: RefCell<HashMap<ServerId, Link>>,
    events: LocalSender<PeerEvent>,
    /// Numbers connections, so a late report about a replaced connection is ignored.
    next_gen: Cell<u64>,
    /// Every accepted connection still open, identified or not.
    conns: RefCell<HashMap<u64, Rc<Kill>>>,
    closed: Cell<bool>,
    hello_timeout: Duration,
    tls: Option<PeerTls>,
    /// This server's identity; changes once at most, when a member without data adopts the
    /// ensemble id of a peer ([`Shared::adopt`]).
    identity: Cell<Identity>,
    data_dir: std::path::PathBuf,
    /// Rate limit of the rejected-connection log line (shared with the peer TLS executor).
    rejections: Arc<Mutex<LogLimiter>>,
    /// The peer TLS executor, with quorum TLS.
    terminator: Option<Terminator>,
    /// The listening sockets on this executor, once bound (with quorum TLS, the quorum port
    /// only: the election port is the peer TLS executor's); fds to shut them down (waking
    /// their accept loops).
    listeners: RefCell<Vec<(Rc<TcpListener>, RawFd)>>,
}

impl Shared {
    fn gen(&self) -> u64 {
        let g = self.next_gen.get();
        self.next_gen.set(g + 1);
        g
    }

    /// Remembers what a peer's host resolved to, saying so (rate-limited) when it is a name
    /// that resolves to another address than at the previous attempt.
    fn note_resolved(&self, id: ServerId, to: SocketAddr) {
        let mut links = self.links.borrow_mut();
        let Some(l) = links.get_mut(&id) else { return };
        match l.dialled.replace(to) {
            Some(before) if before != to => {
                if let Some(held_back) = l.moves.allow(Instant::now()) {
                    let more =
                        if held_back > 0 { format!("; {held_back} changes not logged before") } else { String::new() };
                    info!("peer {id}: {} now resolves to {to} (was {before}{more})", l.addr.host());
                }
            }
            None if l.addr.literal().is_none() => info!("peer {id}: {} resolves to {to}", l.addr.host()),
            _ => {}
        }
    }

    fn emit(&self, ev: PeerEvent) {
        if !self.closed.get() {
            let _ = self.events.try_send(ev);
        }
    }

    /// Closes both connections of a link (their tasks notice and end).
    fn teardown(&self, l: &mut Link) {
        if let Some(o) = l.out.take() {
            o.kill.fire();
        }
        if let Some(i) = l.inbound.take() {
            i.kill.fire();
        }
    }

    /// Reports a change of the link's state; going down closes both directions.
    fn settle(&self, id: ServerId, l: &mut Link) {
        let now = l.out.is_some() && l.inbound.is_some();
        if l.up && !now {
            l.up = false;
            self.teardown(l);
            info!("peer {id} ({}) is down", l.addr);
            self.emit(PeerEvent::Down(id));
        } else if !l.up && now {
            l.up = true;
            info!("peer {id} ({}) is up", l.addr);
            self.emit(PeerEvent::Up(id));
        }
    }

    fn out_open(&self, id: ServerId, conn: OutConn) {
        let mut links = self.links.borrow_mut();
        let Some(l) = links.get_mut(&id) else { return };
        if self.closed.get() {
            conn.kill.fire();
            return;
        }
        if let Some(old) = l.out.replace(conn) {
            old.kill.fire();
        }
        self.settle(id, l);
    }

    fn out_closed(&self, id: ServerId, gen: u64) {
        let mut links = self.links.borrow_mut();
        let Some(l) = links.get_mut(&id) else { return };
        if l.out.as_ref().is_some_and(|o| o.gen == gen) {
            l.out = None;
            self.settle(id, l);
        }
    }

    /// Takes on `ensemble` as this server's identity, durably, then drops the links admitted
    /// from members of another ensemble that hold data (admitted while this server held none).
    fn adopt(&self, ensemble: u64) -> io::Result<()> {
        identity::store(&RealDisk, &self.data_dir, ensemble)?;
        let before = self.identity.replace(Identity { ensemble, empty: false });
        info!("this server held no data: it joins ensemble {ensemble} (was {})", before.ensemble);
        let mut links = self.links.borrow_mut();
        for (id, l) in links.iter_mut() {
            if l.inbound.as_ref().is_some_and(|i| !i.who.empty && i.who.ensemble != ensemble) {
                info!("dropping the link with peer {id}: it belongs to another ensemble");
                if let Some(i) = l.inbound.take() {
                    i.kill.fire();
                }
                self.settle(*id, l);
            }
        }
        Ok(())
    }

    /// Whether a peer whose hello says `h` may link; adopts its ensemble id when this server
    /// holds no data. Err: why it is refused.
    fn admit(&self, h: &Hello) -> Result<(), String> {
        let mine = self.identity.get();
        match identity::admit(mine, Identity { ensemble: h.ensemble, empty: h.empty }) {
            Admit::Yes => Ok(()),
            Admit::Adopt(ensemble) => self.adopt(ensemble).map_err(|e| {
                format!("server {} belongs to ensemble {ensemble}, which this server cannot join: {e}", h.myid)
            }),
            Admit::No => Err(format!(
                "server {} belongs to ensemble {} and this server to ensemble {}: a member of another \
                 ensemble (one that lost its quorum and was recovered with `warren recover-quorum`, or an \
                 old member of it) never links with this one",
                h.myid, h.ensemble, mine.ensemble
            )),
        }
    }

    /// A connection from `id` said hello; it replaces any older one.
    fn in_open(&self, id: ServerId, gen: u64, kill: Rc<Kill>, who: Identity) {
        let mut links = self.links.borrow_mut();
        let Some(l) = links.get_mut(&id) else { return };
        if self.closed.get() {
            kill.fire();
            return;
        }
        if let Some(old) = l.inbound.take() {
            // The peer gave up on the old connection, so messages may have been lost.
            old.kill.fire();
            self.settle(id, l);
        }
        l.inbound = Some(InConn { gen, kill, who });
        self.settle(id, l);
    }

    fn in_closed(&self, id: ServerId, gen: u64) {
        let mut links = self.links.borrow_mut();
        let Some(l) = links.get_mut(&id) else { return };
        if l.inbound.as_ref().is_some_and(|i| i.gen == gen) {
            l.inbound = None;
            self.settle(id, l);
        }
    }

    /// Reports a message read on connection `gen` from `id`. False once that connection is
    /// no longer the peer's current one (the reader then stops).
    fn deliver(&self, id: ServerId, gen: u64, msg: Msg) -> bool {
        let links = self.links.borrow();
        let Some(l) = links.get(&id) else { return false };
        if l.inbound.as_ref().is_none_or(|i| i.gen != gen) {
            return false;
        }
        if l.up {
            self.emit(PeerEvent::Message(id, msg));
        }
        true
    }
}

/// Logs a rejected inbound connection, rate-limited.
pub(super) fn note_rejected(limiter: &Mutex<LogLimiter>, from: &str, why: &str) {
    // A poisoned lock still holds a usable limiter: its holder only counts.
    let allowed = limiter.lock().unwrap_or_else(|p| p.into_inner()).allow(Instant::now());
    if let Some(held_back) = allowed {
        let more =
            if held_back > 0 { format!(" ({held_back} more rejected since the last line)") } else { String::new() };
        warn!("rejected a connection to the election port from {from}: {why}{more}");
    }
}

/// What a hello says about who dialled; Err (why the connection is rejected) for a malformed
/// hello, this server's own id, or an id `is_member` does not know.
pub(super) fn identify(
    hello: &[u8],
    myid: ServerId,
    is_member: impl FnOnce(ServerId) -> bool,
) -> Result<Hello, String> {
    let h = codec::decode_hello(hello).map_err(|e| e.to_string())?;
    let id = h.myid;
    if id == myid {
        return Err(format!("it claims to be this server ({id})"));
    }
    if !is_member(id) {
        return Err(format!("server {id} is not a member"));
    }
    Ok(h)
}

// ---- outbound ---------------------------------------------------------------------------------

/// Keeps a connection to `peer` open for as long as the `Peers` lives. Each attempt resolves
/// the peer's host afresh: a name that did not resolve, or moved, is found at a later one.
async fn outbound(shared: Rc<Shared>, peer: ServerId, addr: PeerAddr, timeout: Duration) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = Failures::default();
    while !shared.closed.get() {
        let since = Instant::now();
        match connect_and_run(&shared, peer, &addr, timeout, &mut failures).await {
            Err(e) => match failures.note(Instant::now()) {
                Some(1) => info!("cannot connect to peer {peer} at {addr}: {e}; retrying in the background"),
                Some(n) => info!("still cannot connect to peer {peer} at {addr} ({n} attempts): {e}"),
                None => {}
            },
            Ok(reason) => {
                if !shared.closed.get() {
                    info!("link to peer {peer} at {addr} closed: {reason}");
                }
                if since.elapsed() >= STABLE {
                    backoff = BACKOFF_MIN;
                }
            }
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Resolves `peer`'s host, connects (through the peer TLS executor under `sslQuorum`, which
/// dials the resolved address) and runs the connection until it breaks; `Err` when no
/// connection was made. The failure count restarts once one is made.
async fn connect_and_run(
    shared: &Rc<Shared>,
    peer: ServerId,
    addr: &PeerAddr,
    timeout: Duration,
    failures: &mut Failures,
) -> Result<String, String> {
    let target = resolve::resolve(addr).await.map_err(|e| e.to_string())?;
    shared.note_resolved(peer, target);
    let on_target = |e: String| match addr.literal() {
        Some(_) => e,
        None => format!("{target}: {e}"),
    };
    if let Some(t) = shared.terminator.as_ref().filter(|_| shared.tls.as_ref().is_some_and(|t| t.dial)) {
        let h = t.dial(peer, target).await.map_err(on_target)?;
        *failures = Failures::default();
        // SAFETY: the handoff owns this fd, our end of a connected socketpair.
        let stream = unsafe { UnixStream::from_raw_fd(h.fd.into_raw_fd()) };
        return Ok(run_outbound(shared, peer, stream, h.addr).await);
    }
    let stream = TcpStream::connect_timeout(target, timeout).await.map_err(|e| on_target(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_or("?".to_string(), |a| a.to_string());
    *failures = Failures::default();
    Ok(run_outbound(shared, peer, stream, local).await)
}

/// Waits `after`, then fails with `why`: raced against an operation that must not hang.
pub(super) async fn expire<T>(after: Duration, why: &str) -> Result<T, String> {
    glommio::timer::sleep(after).await;
    Err(why.to_string())
}

/// Runs one outbound connection until it breaks or is closed; returns why it ended.
async fn run_outbound<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Rc<Shared>,
    peer: ServerId,
    stream: S,
    local: String,
) -> String {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let outbox = Rc::new(Outbox::unbounded());
    let mut hello = Vec::with_capacity(HELLO_LEN);
    let me = shared.identity.get();
    codec::encode_hello(&Hello { myid: shared.myid, ensemble: me.ensemble, empty: me.empty }, &mut hello);
    outbox.push(hello);
    let kill = Rc::new(Kill::default());
    let gen = shared.gen();
    debug!("connected to peer {peer} from {local}");
    // Marked connected before the hello is written: see the module doc.
    shared.out_open(peer, OutConn { gen, outbox: outbox.clone(), kill: kill.clone() });

    let writer = async {
        let mut buf = Vec::with_capacity(64 * 1024);
        while outbox.next_batch(&mut buf).await {
            // flush: TLS may keep encrypted bytes buffered (a no-op on plain TCP).
            if let Err(e) = wr.write_all(&buf).await {
                return format!("write error: {e}");
            }
            if let Err(e) = wr.flush().await {
                return format!("write error: {e}");
            }
            outbox.written(buf.len());
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = Vec::with_capacity(64 * 1024);
            }
        }
        "closed".to_string()
    };
    // The peer never writes on this connection: any read result means it is gone.
    let watch = async {
        let mut b = [0u8; 64];
        match rd.read(&mut b).await {
            Ok(0) => "the peer closed the connection".to_string(),
            Ok(_) => "the peer wrote on a write-only connection".to_string(),
            Err(e) => format!("read error: {e}"),
        }
    };
    let killed = async {
        kill.wait().await;
        "closed with the peer's other link".to_string()
    };
    let reason = or(writer, or(watch, killed)).await;
    shared.out_closed(peer, gen);
    reason
}

// ---- inbound ----------------------------------------------------------------------------------

/// Peers do not use the quorum port: it is bound to detect clashes; connections are closed.
/// Accepts connections on `listener`, handing each to `each`, until an accept fails once
/// `closed` says the links are shutting down. Out of file descriptors and the like, it pauses
/// (logged once) and keeps accepting. Shared by the owner's ports and the peer TLS executor's.
pub(super) async fn accept_each(
    listener: &TcpListener,
    what: &str,
    closed: impl Fn() -> bool,
    mut each: impl FnMut(TcpStream),
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        match listener.accept().await {
            Ok(stream) => {
                backoff.on_success(what);
                each(stream);
            }
            Err(e) => {
                if closed() {
                    return;
                }
                if let Some(pause) = backoff.on_error(&std::io::Error::from(e), what) {
                    glommio::timer::sleep(pause).await;
                }
            }
        }
    }
}

async fn accept_quorum(shared: Rc<Shared>, listener: Rc<TcpListener>) {
    accept_each(
        &listener,
        "quorum port",
        || shared.closed.get(),
        |stream| {
            let from = stream.peer_addr().map_or("?".to_string(), |a| a.to_string());
            info!("closing a connection from {from} to the quorum port: Warren peers only use the election port");
        },
    )
    .await
}

async fn accept_election(shared: Rc<Shared>, listener: Rc<TcpListener>) {
    accept_each(
        &listener,
        "election port",
        || shared.closed.get(),
        |stream| {
            let deadline = Instant::now() + shared.hello_timeout;
            let from = stream.peer_addr().map_or("?".to_string(), |a| a.to_string());
            let _ = stream.set_nodelay(true);
            spawn_inbound(&shared, stream, from, deadline);
        },
    )
    .await
}

/// Takes the election port's connections from the peer TLS executor (quorum TLS): TLS ones
/// pumped through a socketpair, plaintext ones (on a unified port) as they were accepted.
async fn accept_handoffs(shared: Rc<Shared>, handoffs: async_channel::Receiver<Handoff>) {
    while let Ok(h) = handoffs.recv().await {
        let fd = h.fd.into_raw_fd();
        // SAFETY: the handoff owned this fd, a connected socket of the kind `pumped` says.
        if h.pumped {
            spawn_inbound(&shared, unsafe { UnixStream::from_raw_fd(fd) }, h.addr, h.deadline);
        } else {
            spawn_inbound(&shared, unsafe { TcpStream::from_raw_fd(fd) }, h.addr, h.deadline);
        }
    }
}

/// Runs an inbound connection in its own task; its hello must be read by `deadline`.
fn spawn_inbound<S: AsyncRead + Unpin + 'static>(shared: &Rc<Shared>, stream: S, from: String, deadline: Instant) {
    let gen = shared.gen();
    let kill = Rc::new(Kill::default());
    shared.conns.borrow_mut().insert(gen, kill.clone());
    glommio::spawn_local(inbound(shared.clone(), stream, from, deadline, gen, kill)).detach();
}

/// Forgets an inbound connection when its task ends or is cancelled.
struct ConnGuard {
    shared: Rc<Shared>,
    gen: u64,
    peer: Rc<Cell<Option<ServerId>>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.conns.borrow_mut().remove(&self.gen);
        if let Some(id) = self.peer.get() {
            self.shared.in_closed(id, self.gen);
        }
    }
}

async fn inbound<S: AsyncRead + Unpin>(
    shared: Rc<Shared>,
    stream: S,
    from: String,
    deadline: Instant,
    gen: u64,
    kill: Rc<Kill>,
) {
    let peer = Rc::new(Cell::new(None));
    let _guard = ConnGuard { shared: shared.clone(), gen, peer: peer.clone() };
    let killed = async {
        kill.wait().await;
        Ended::Closed("closed with the peer's other link".into())
    };
    match or(read_inbound(&shared, stream, deadline, gen, &kill, &peer), killed).await {
        Ended::Rejected(why) => note_rejected(&shared.rejections, &from, &why),
        Ended::Closed(why) => {
            if let (Some(id), false) = (peer.get(), shared.closed.get()) {
                info!("link from peer {id} at {from} closed: {why}");
            }
        }
    }
}

enum Ended {
    /// Not a member (bad hello, unknown id, timeout).
    Rejected(String),
    Closed(String),
}

/// Reads a connection's hello (by `deadline`) and then its frames. On a TLS link the peer
/// TLS executor has already checked the certificate against the hello's server.
async fn read_inbound<S: AsyncRead + Unpin>(
    shared: &Shared,
    mut stream: S,
    deadline: Instant,
    gen: u64,
    kill: &Rc<Kill>,
    peer: &Cell<Option<ServerId>>,
) -> Ended {
    let mut rb = ReadBuf::new();
    let timeout = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        Err(ReadError::Timeout)
    };
    if let Err(e) = or(rb.fill(&mut stream, HELLO_LEN), timeout).await {
        return Ended::Rejected(format!("no hello: {e}"));
    }
    let (hello, addr) = {
        let links = shared.links.borrow();
        match identify(rb.take(HELLO_LEN), shared.myid, |id| links.contains_key(&id)) {
            Ok(h) => (h, links[&h.myid].addr.clone()),
            Err(why) => return Ended::Rejected(why),
        }
    };
    if let Err(why) = shared.admit(&hello) {
        return Ended::Rejected(why);
    }
    let id = hello.myid;
    peer.set(Some(id));
    debug!("peer {id} (election address {addr}) connected");
    shared.in_open(id, gen, kill.clone(), Identity { ensemble: hello.ensemble, empty: hello.empty });
    loop {
        match rb.fill(&mut stream, 4).await {
            Ok(()) => {}
            Err(ReadError::Eof) => return Ended::Closed("the peer closed the connection".into()),
            Err(e) => return Ended::Closed(e.to_string()),
        }
        let prefix = rb.take(4).try_into().expect("4 bytes");
        let len = match codec::frame_len(prefix) {
            Ok(n) => n,
            Err(e) => return Ended::Closed(format!("bad frame from peer {id}: {e}")),
        };
        if let Err(e) = rb.fill(&mut stream, len).await {
            let e = if matches!(e, ReadError::Eof) { ReadError::Truncated } else { e };
            return Ended::Closed(e.to_string());
        }
        let msg = match codec::decode(rb.take(len)) {
            Ok(m) => m,
            Err(e) => return Ended::Closed(format!("bad frame from peer {id}: {e}")),
        };
        if !shared.deliver(id, gen, msg) {
            return Ended::Closed("replaced by a newer connection".into());
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("the peer closed the connection")]
    Eof,
    #[error("the peer closed the connection in the middle of a frame")]
    Truncated,
    #[error("timed out")]
    Timeout,
    #[error("read error: {0}")]
    Io(io::Error),
}

/// A read buffer that grows only as bytes arrive, so a peer announcing a huge frame costs
/// memory in proportion to what it actually sends.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> Self {
        ReadBuf { buf: vec![0; READ_BUF_INITIAL], start: 0, end: 0 }
    }

    /// Makes `n` bytes available (from `start`).
    async fn fill<R: AsyncRead + Unpin>(&mut self, rd: &mut R, n: usize) -> Result<(), ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 4 * READ_BUF_INITIAL {
                self.buf = vec![0; READ_BUF_INITIAL];
            }
        }
        while self.end - self.start < n {
            if self.start > 0 && self.buf.len() - self.start < n {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let want = (self.start + n).min((self.buf.len() * 2).max(READ_BUF_INITIAL));
                self.buf.resize(want, 0);
            }
            let got = rd.read(&mut self.buf[self.end..]).await.map_err(ReadError::Io)?;
            if got == 0 {
                return Err(if self.end == self.start { ReadError::Eof } else { ReadError::Truncated });
            }
            self.end += got;
        }
        Ok(())
    }

    /// Consumes `n` bytes made available by `fill`.
    fn take(&mut self, n: usize) -> &[u8] {
        let s = self.start;
        self.start += n;
        &self.buf[s..s + n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_failures_are_logged_first_then_once_per_period_with_the_count() {
        let t0 = Instant::now();
        let mut f = Failures::default();
        assert_eq!(f.note(t0), Some(1));
        assert_eq!(f.note(t0 + Duration::from_millis(500)), None);
        assert_eq!(f.note(t0 + REPORT_EVERY - Duration::from_millis(1)), None);
        assert_eq!(f.note(t0 + REPORT_EVERY), Some(4));
        assert_eq!(f.note(t0 + REPORT_EVERY + Duration::from_secs(1)), None);
        f = Failures::default();
        assert_eq!(f.note(t0 + REPORT_EVERY + Duration::from_secs(2)), Some(1), "a connection resets the count");
    }
}
