//! The peer TLS executor: an in-process TLS terminator for the links between servers, so that
//! quorum TLS costs the owner (executor 0, which runs the whole state machine) no handshake,
//! no encryption and no decryption.
//!
//! Started by [`super::peers::Peers::start`] only when quorum TLS is configured (`sslQuorum` or
//! `portUnification`): a glommio executor on its own thread, `warren-peer-tls`, with the
//! smallest io_uring registration glommio allows ([`IO_MEMORY`]). Plaintext-only ensembles
//! never start it and their links never pass through it.
//!
//! - **Outbound** (`sslQuorum`): the owner resolves the peer's `server.N` host and asks it
//!   ([`Terminator::dial`]) to connect to that address (no lookup runs here) and run the TLS
//!   client handshake (the peer's certificate must chain to the quorum trust store and, with
//!   hostname verification, name the peer's `server.N` host as written). It then hands the
//!   owner one end of a Unix socketpair and pumps the other end to the TLS stream, both ways.
//! - **Inbound**: the election port's listener runs here, from when the owner has bound it
//!   ([`Terminator::listen`]: at start, or, when this server's own host name does not resolve
//!   yet, once it does). On a unified port the first byte tells TLS from plaintext; a
//!   plaintext connection is handed to the owner as its own TCP socket, untouched (no pump, no
//!   extra hop). A TLS connection goes through the server handshake, then its hello is read
//!   here, so that the certificate can be checked against the host of the server the hello
//!   names (as its `server.N` line writes it); the hello (and whatever followed it) is written
//!   into a socketpair whose other end goes to the owner, which reads the hello again as on any
//!   connection. Detection, handshake and hello share one deadline from accept.
//!
//! The owner's link code is the same for every stream; to it a pumped link is a byte stream
//! like a TCP connection. When either side of a pump ends (the TLS connection fails or
//! closes, or the owner closes its end) the pump drops both, so the other side sees its
//! connection end at once: the owner reports `Down`, the remote peer sees EOF.
//!
//! Rejections here (a failed handshake, a certificate for another server) are logged through
//! the same rate limit as the owner's.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future::or;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::{TlsAcceptor, TlsConnector};
use glommio::net::{TcpListener, TcpStream, UnixStream};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use tracing::{debug, warn};

use super::admission::LogLimiter;
use super::peers::{expire, identify, note_rejected, Kill, PeerTls};
use crate::quorum::codec::HELLO_LEN;
use crate::quorum::ServerId;

/// The executor's io_uring registration: glommio's floor. Its sockets need no registered
/// buffers (glommio falls back to the heap), and three rings of this stay well inside the
/// 8 MiB memlock limit next to the other executors (see `io_memory_budget`).
pub(super) const IO_MEMORY: usize = super::IO_MEMORY_MIN;
/// Bytes moved per read in each direction of a pump.
const PUMP_BUF: usize = 64 * 1024;
/// How long stopping waits for the connection tasks to end.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// What the executor needs, from `Peers::start`.
pub(super) struct Setup {
    pub myid: ServerId,
    pub tls: PeerTls,
    pub connect_timeout: Duration,
    pub hello_timeout: Duration,
    /// Shared with the owner: one rate limit for every rejection line.
    pub rejections: Arc<Mutex<LogLimiter>>,
}

/// A connection handed to the owner.
pub(super) struct Handoff {
    /// A Unix socketpair end pumped to a TLS stream, or (plaintext on a unified port) the TCP
    /// connection itself.
    pub fd: OwnedFd,
    pub pumped: bool,
    /// Inbound: the peer's address; outbound: our local address.
    pub addr: String,
    /// When the owner must have read the hello.
    pub deadline: Instant,
}

enum Request {
    Dial {
        peer: ServerId,
        addr: SocketAddr,
        reply: async_channel::Sender<Result<Handoff, String>>,
    },
    /// The bound election port, to accept on (sent once: at start, or once this server's own
    /// host resolves).
    Listen(std::net::TcpListener),
}

/// The owner's handle on the executor. Dropping the last request sender stops it.
pub(super) struct Terminator {
    requests: async_channel::Sender<Request>,
    /// Ends (no sender left) once the executor has closed the listener and every connection.
    done: async_channel::Receiver<()>,
    thread: RefCell<Option<ExecutorJoinHandle<()>>>,
}

impl Terminator {
    /// Starts the executor thread; inbound connections arrive on the returned receiver.
    pub(super) fn start(setup: Setup) -> io::Result<(Terminator, async_channel::Receiver<Handoff>)> {
        let (requests, requests_rx) = async_channel::unbounded();
        let (handoffs, handoffs_rx) = async_channel::bounded(64);
        let (done_tx, done) = async_channel::bounded::<()>(1);
        let thread = LocalExecutorBuilder::new(Placement::Unbound)
            .name("warren-peer-tls")
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                let _done = done_tx;
                run(setup, requests_rx, handoffs).await
            })
            .map_err(|e| io::Error::other(format!("cannot start the peer TLS executor: {e}")))?;
        Ok((Terminator { requests, done, thread: RefCell::new(Some(thread)) }, handoffs_rx))
    }

    /// Hands over the bound election port: accepted connections arrive on the receiver
    /// `start` returned. Fails once the executor is stopping (the listener is then closed).
    pub(super) fn listen(&self, election: std::net::TcpListener) -> io::Result<()> {
        self.requests.try_send(Request::Listen(election)).map_err(|_| io::Error::other(stopped()))
    }

    /// Connects to `peer` (an address the owner resolved) with TLS; the handoff is our end of the pumped socketpair.
    pub(super) async fn dial(&self, peer: ServerId, addr: SocketAddr) -> Result<Handoff, String> {
        let (reply, answer) = async_channel::bounded(1);
        self.requests.try_send(Request::Dial { peer, addr, reply }).map_err(|_| stopped())?;
        answer.recv().await.map_err(|_| stopped())?
    }

    /// Tells the executor to close its listener and connections and exit.
    pub(super) fn stop(&self) {
        self.requests.close();
    }

    /// Waits until the executor has closed everything, then for its thread.
    pub(super) async fn stopped(&self) {
        self.stop();
        let _ = self.done.recv().await;
        if let Some(thread) = self.thread.borrow_mut().take() {
            // Its run future has returned: the thread only tears the executor down.
            if let Err(e) = thread.join() {
                warn!("the peer TLS executor ended with an error: {e}");
            }
        }
    }
}

fn stopped() -> String {
    "the peer TLS executor has stopped".to_string()
}

/// The executor's state.
struct Side {
    myid: ServerId,
    tls: PeerTls,
    connect_timeout: Duration,
    hello_timeout: Duration,
    rejections: Arc<Mutex<LogLimiter>>,
    handoffs: async_channel::Sender<Handoff>,
    /// Every running connection task (dials, handshakes, pumps), to close them on stop.
    tasks: RefCell<HashMap<u64, Rc<Kill>>>,
    next_task: Cell<u64>,
    closed: Cell<bool>,
}

impl Side {
    /// Registers a connection task; it leaves the registry when the guard drops.
    fn track(self: &Rc<Self>) -> (Rc<Kill>, Tracked) {
        let id = self.next_task.get();
        self.next_task.set(id + 1);
        let kill = Rc::new(Kill::default());
        self.tasks.borrow_mut().insert(id, kill.clone());
        (kill, Tracked { side: self.clone(), id })
    }
}

struct Tracked {
    side: Rc<Side>,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.side.tasks.borrow_mut().remove(&self.id);
    }
}

/// The executor's main future: serves dial requests (and accepts once given the election
/// port) until the owner stops it, then closes the listener and every connection.
async fn run(setup: Setup, requests: async_channel::Receiver<Request>, handoffs: async_channel::Sender<Handoff>) {
    let side = Rc::new(Side {
        myid: setup.myid,
        tls: setup.tls,
        connect_timeout: setup.connect_timeout,
        hello_timeout: setup.hello_timeout,
        rejections: setup.rejections,
        handoffs,
        tasks: RefCell::new(HashMap::new()),
        next_task: Cell::new(1),
        closed: Cell::new(false),
    });
    // The listener's fd and its accept task, once given.
    let mut accepting = None;
    // Requests queued before `stop` are still received (a listener among them is closed below).
    while let Ok(request) = requests.recv().await {
        match request {
            Request::Dial { peer, addr, reply } => {
                glommio::spawn_local(dial(side.clone(), peer, addr, reply)).detach();
            }
            Request::Listen(election) if accepting.is_none() => {
                let fd = election.as_raw_fd();
                // SAFETY: `into_raw_fd` hands over a bound, listening socket that nothing else owns.
                let listener = unsafe { TcpListener::from_raw_fd(election.into_raw_fd()) };
                accepting = Some((fd, glommio::spawn_local(accept(side.clone(), listener))));
            }
            Request::Listen(_) => warn!("the peer TLS executor was given a second election port; closed it"),
        }
    }
    side.closed.set(true);
    if let Some((fd, task)) = accepting {
        // Wakes a pending accept, so that the socket closes once the task is cancelled.
        // SAFETY: the listener owning this fd is alive (in the accept task, cancelled below).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        task.cancel().await;
    }
    let kills: Vec<Rc<Kill>> = side.tasks.borrow().values().cloned().collect();
    for k in kills {
        k.fire();
    }
    let deadline = Instant::now() + STOP_WAIT;
    while !side.tasks.borrow().is_empty() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

// ---- outbound ---------------------------------------------------------------------------------

async fn dial(side: Rc<Side>, peer: ServerId, addr: SocketAddr, reply: async_channel::Sender<Result<Handoff, String>>) {
    let (kill, _tracked) = side.track();
    let connect = async {
        let stream = TcpStream::connect_timeout(addr, side.connect_timeout).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().map_or("?".to_string(), |a| a.to_string());
        let name = side.tls.hosts.get(&peer).cloned().ok_or_else(|| format!("no host name for server {peer}"))?;
        let connector = TlsConnector::from(side.tls.configs.current().client.clone());
        let handshake =
            async { connector.connect(name, stream).await.map_err(|e| format!("TLS handshake failed: {e}")) };
        let stream = or(handshake, expire(side.hello_timeout, "TLS handshake not finished in time")).await?;
        let (ours, theirs) = socketpair()?;
        let handoff = Handoff { fd: theirs, pumped: true, addr: local, deadline: Instant::now() + side.hello_timeout };
        Ok((stream, ours, handoff))
    };
    let killed = async {
        kill.wait().await;
        Err("stopped".to_string())
    };
    let (stream, ours, handoff) = match or(connect, killed).await {
        Ok(x) => x,
        Err(e) => {
            let _ = reply.send(Err(e)).await;
            return;
        }
    };
    // The owner gave up waiting (it is shutting down): the socketpair closes with `ours`.
    if reply.send(Ok(handoff)).await.is_err() {
        return;
    }
    let why = or(pump(stream, ours), async {
        kill.wait().await;
        "stopped".to_string()
    })
    .await;
    debug!("TLS link to peer {peer} at {addr} ended: {why}");
}

// ---- inbound ----------------------------------------------------------------------------------

async fn accept(side: Rc<Side>, listener: TcpListener) {
    super::peers::accept_each(
        &listener,
        "election port",
        || side.closed.get(),
        |stream| {
            glommio::spawn_local(inbound(side.clone(), stream, Instant::now())).detach();
        },
    )
    .await
}

/// What became of an accepted connection.
enum Opened {
    /// Handed to the owner as it is (plaintext on a unified port).
    Plain,
    /// TLS, identified, its other end handed to the owner: pump it.
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>, UnixStream),
}

async fn inbound(side: Rc<Side>, stream: TcpStream, accepted: Instant) {
    let from = stream.peer_addr().map_or("?".to_string(), |a| a.to_string());
    let (kill, _tracked) = side.track();
    let _ = stream.set_nodelay(true);
    let killed = async {
        kill.wait().await;
        Err("stopped".to_string())
    };
    match or(open_inbound(&side, stream, &from, accepted), killed).await {
        Ok(Opened::Plain) => {}
        Ok(Opened::Tls(stream, ours)) => {
            let why = or(pump(stream, ours), async {
                kill.wait().await;
                "stopped".to_string()
            })
            .await;
            debug!("TLS link from {from} ended: {why}");
        }
        Err(why) if !side.closed.get() => note_rejected(&side.rejections, &from, &why),
        Err(_) => {}
    }
}

/// Detects, handshakes and identifies an inbound connection, and hands it to the owner.
async fn open_inbound(side: &Side, stream: TcpStream, from: &str, accepted: Instant) -> Result<Opened, String> {
    let tls = &side.tls;
    let deadline = accepted + side.hello_timeout;
    if tls.unified {
        match super::secure::detect(&stream, tls.detection_timeout.min(side.hello_timeout)).await {
            Ok(true) => {}
            Ok(false) => {
                // SAFETY: the fd is `stream`'s, open for as long as it lives; the copy is ours.
                let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }
                    .try_clone_to_owned()
                    .map_err(|e| format!("cannot hand the connection over: {e}"))?;
                drop(stream);
                handoff(side, Handoff { fd, pumped: false, addr: from.to_string(), deadline }).await?;
                return Ok(Opened::Plain);
            }
            Err(e) => return Err(format!("nothing received: {e}")),
        }
    }
    let acceptor = TlsAcceptor::from(tls.configs.current().server.clone());
    let handshake = async { acceptor.accept(stream).await.map_err(|e| format!("TLS handshake failed: {e}")) };
    let left = deadline.saturating_duration_since(Instant::now());
    let mut stream = or(handshake, expire(left, "TLS handshake not finished in time")).await?;
    // rustls required and verified a certificate (clientAuth need); kept for the host check.
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("TLS without a peer certificate")?;
    let mut first = vec![0u8; PUMP_BUF];
    let left = deadline.saturating_duration_since(Instant::now());
    let got = or(read_at_least(&mut stream, &mut first, HELLO_LEN), expire(left, "no hello: timed out")).await?;
    let id = identify(&first[..HELLO_LEN], side.myid, |id| tls.hosts.contains_key(&id))?.myid;
    if tls.hostname_verification {
        let host = tls.hosts.get(&id).ok_or_else(|| format!("no host name for server {id}"))?;
        crate::tls::certificate_names_host(&leaf, host)
            .map_err(|e| format!("its certificate is not valid for server {id}: {e} (server.{id} is {host:?})"))?;
    }
    let (mut ours, theirs) = socketpair()?;
    // The owner reads the hello as on any connection; a fresh socketpair takes these bytes.
    ours.write_all(&first[..got]).await.map_err(|e| format!("cannot hand the connection over: {e}"))?;
    let deadline = Instant::now() + side.hello_timeout;
    handoff(side, Handoff { fd: theirs, pumped: true, addr: from.to_string(), deadline }).await?;
    Ok(Opened::Tls(Box::new(stream), ours))
}

async fn handoff(side: &Side, h: Handoff) -> Result<(), String> {
    side.handoffs.send(h).await.map_err(|_| "the peer links are shutting down".to_string())
}

/// Reads until `buf` holds at least `n` bytes; returns how many it holds.
async fn read_at_least<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut [u8], n: usize) -> Result<usize, String> {
    let mut got = 0;
    while got < n {
        match rd.read(&mut buf[got..]).await {
            Ok(0) => return Err("no hello: the peer closed the connection".to_string()),
            Ok(k) => got += k,
            Err(e) => return Err(format!("no hello: read error: {e}")),
        }
    }
    Ok(got)
}

// ---- the pump ---------------------------------------------------------------------------------

/// A connected Unix socketpair: our end (on this executor) and the owner's.
fn socketpair() -> Result<(UnixStream, OwnedFd), String> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("cannot make a socketpair: {e}"))?;
    // SAFETY: `into_raw_fd` hands over a connected socket that nothing else owns.
    let ours = unsafe { UnixStream::from_raw_fd(ours.into_raw_fd()) };
    Ok((ours, OwnedFd::from(theirs)))
}

/// Moves bytes both ways between a TLS stream and the owner's socketpair until either side
/// ends; then both are dropped, which closes the other. Returns why it ended.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(tls: S, local: UnixStream) -> String {
    let (tls_rd, tls_wr) = futures_lite::io::split(tls);
    let (local_rd, local_wr) = futures_lite::io::split(local);
    let out = copy(local_rd, tls_wr, "this server closed the link", "the peer");
    let into = copy(tls_rd, local_wr, "the peer closed the connection", "this server");
    or(out, into).await
}

/// Copies until EOF or an error; flushes after every write (TLS buffers a record's tail).
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(mut rd: R, mut wr: W, eof: &str, to: &str) -> String {
    let mut buf = vec![0u8; PUMP_BUF];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return eof.to_string(),
            Ok(n) => n,
            Err(e) => return format!("read error: {e}"),
        };
        if let Err(e) = wr.write_all(&buf[..n]).await {
            return format!("write error towards {to}: {e}");
        }
        if let Err(e) = wr.flush().await {
            return format!("write error towards {to}: {e}");
        }
    }
}
