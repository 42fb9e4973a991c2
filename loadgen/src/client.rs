//! The pipelined client and the echo server.
//!
//! Each client is one session on plain threads and blocking sockets (Warren's own codec) that
//! keeps `--outstanding` requests in flight, reading every reply that has arrived and writing
//! the requests that replace them in one syscall each. Client `i` starts on server `i % n`
//! (the ZooKeeper paper's round-robin spread); when its connection breaks it resumes its session
//! on the next server that takes it, as ZooKeeper's own clients do with a multi-host connect
//! string, and counts the requests it had in flight as ConnectionLoss.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use warren::acl::open_acl_unsafe;
use warren::proto::{op, ConnectRequest, ConnectResponse, CreateKind, CreateRequest, Request, Stat, Writer};

use crate::stats::{hist, Tally, BUCKET_MS};

pub const CONNECTION_LOSS: i32 = -4;
pub const SESSION_EXPIRED: i32 = -112;
const SESSION_TIMEOUT_MS: i32 = 30_000;
/// `current_server` value while a client has no connection.
pub const DISCONNECTED: usize = usize::MAX;

/// The TLS client configuration of every connection of this process (`--tls-ca`); unset:
/// plaintext. Set once before any client starts.
static TLS: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// Makes every later connection TLS, trusting the CAs of `ca` (PEM), and showing the client
/// certificate `identity` (PEM certificate chain, PEM key) when given.
pub fn use_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<(), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_slice_iter(&read(p)?).collect::<Result<_, _>>().map_err(|e| format!("{}: {e}", p.display()))
    };
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    #[allow(deprecated)] // ring: see engine/src/tls/suites.rs
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| format!("{}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs(cert)?, key).map_err(|e| e.to_string())?
        }
    };
    TLS.set(Arc::new(config)).map_err(|_| "TLS is already configured".to_string())
}

/// A connection to a server: plaintext, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(t)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

pub struct Conn {
    pub s: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// A session to resume on reconnection.
#[derive(Clone, Default)]
pub struct Session {
    pub id: i64,
    pub passwd: Vec<u8>,
    pub last_zxid: i64,
    pub timeout_ms: i32,
}

impl Conn {
    fn wrap(s: Stream) -> Conn {
        Conn { s, buf: vec![0; 1 << 20], start: 0, end: 0 }
    }

    /// Connects and opens (or resumes) `session`. `Ok(None)`: the server refused to resume it
    /// (expired).
    pub fn open(addr: SocketAddr, session: &mut Session) -> io::Result<Option<Conn>> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        tcp.set_nodelay(true)?;
        let mut s = match TLS.get() {
            None => Stream::Plain(tcp),
            Some(config) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let tls = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                Stream::Tls(Box::new(StreamOwned::new(tls, tcp)))
            }
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: session.last_zxid,
            timeout_ms: SESSION_TIMEOUT_MS,
            session_id: session.id,
            passwd: if session.passwd.is_empty() { vec![0; 16] } else { session.passwd.clone() },
            read_only: Some(false),
        };
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(&req.encode())?;
        let mut c = Conn::wrap(s);
        let f = c.frame()?.to_vec();
        let resp = ConnectResponse::decode(&f).map_err(|e| io::Error::other(format!("bad connect response: {e}")))?;
        if resp.timeout_ms <= 0 {
            return Ok(None);
        }
        session.id = resp.session_id;
        session.passwd = resp.passwd;
        session.timeout_ms = resp.timeout_ms;
        c.s.set_read_timeout(Some(Duration::from_millis(100)))?;
        c.s.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Some(c))
    }

    /// The next whole frame's body.
    pub fn frame(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.end - self.start >= 4 {
                let len = u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap()) as usize;
                if self.end - self.start >= 4 + len {
                    let b = self.start + 4;
                    self.start += 4 + len;
                    return Ok(&self.buf[b..b + len]);
                }
                if 4 + len > self.buf.len() {
                    self.buf.resize(4 + len, 0);
                }
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self.s.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
    }

    pub fn has_buffered_frame(&self) -> bool {
        self.end - self.start >= 4 && {
            let len = u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap()) as usize;
            self.end - self.start >= 4 + len
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// xorshift64*: deterministic per client from --seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn key(i: usize) -> String {
    format!("/loadgen/k{i}")
}

/// Creates /loadgen and its keys through `addr` (NodeExists is fine: an earlier run's keys are
/// reused), then reads the last key back through every server so followers have caught up.
pub fn setup(servers: &[SocketAddr], keys: usize, value_size: usize) -> io::Result<()> {
    let mut session = Session::default();
    let mut c = Conn::open(servers[0], &mut session)?.ok_or_else(|| io::Error::other("session refused"))?;
    c.s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let value = vec![b'x'; value_size];
    let mut w = Vec::new();
    let mk = |path: String, xid: i32, w: &mut Vec<u8>| {
        let req = Request::Create(CreateRequest {
            kind: CreateKind::Create,
            path,
            data: Some(value.clone()),
            acl: open_acl_unsafe(),
            flags: 0,
            ttl_ms: -1,
        });
        w.extend_from_slice(&req.encode(xid));
    };
    mk("/loadgen".into(), 1, &mut w);
    for i in 0..keys {
        mk(key(i), i as i32 + 2, &mut w);
    }
    c.s.write_all(&w)?;
    let mut n = 0;
    while n <= keys {
        let f = c.frame()?;
        if i32::from_be_bytes(f[0..4].try_into().unwrap()) >= 0 {
            n += 1;
        }
    }
    for &addr in &servers[1..] {
        let mut s = session.clone();
        let Some(mut c) = Conn::open(addr, &mut s)? else { continue };
        c.s.set_read_timeout(Some(Duration::from_secs(30)))?;
        c.s.write_all(&Request::Sync { path: "/loadgen".into() }.encode(1))?;
        c.s.write_all(&Request::GetData { path: key(keys - 1), watch: false }.encode(2))?;
        let mut got = 0;
        while got < 2 {
            let f = c.frame()?;
            if i32::from_be_bytes(f[0..4].try_into().unwrap()) >= 0 {
                got += 1;
            }
        }
    }
    Ok(())
}

/// What a phase shares with its clients.
pub struct Shared {
    pub stop: AtomicBool,
    /// Nanoseconds after `start` at which the leader was killed (u64::MAX: not yet).
    pub kill_at_ns: AtomicU64,
    /// Successful operations so far (for the progress bar).
    pub done: AtomicU64,
    /// Per client: the index of the server it is connected to, or DISCONNECTED.
    pub current: Vec<AtomicUsize>,
    /// Per client: it has completed a write (an op, for read-only loads) issued after the kill.
    pub recovered: Vec<AtomicBool>,
    pub start: Instant,
    pub measure_from: Instant,
    /// Operations sent from here on are not counted (the recovery tail after a kill).
    pub measure_until: Instant,
    pub go: Barrier,
}

impl Shared {
    pub fn new(clients: usize, warmup: Duration, duration: Duration) -> Shared {
        let start = Instant::now();
        Shared {
            stop: AtomicBool::new(false),
            kill_at_ns: AtomicU64::new(u64::MAX),
            done: AtomicU64::new(0),
            current: (0..clients).map(|_| AtomicUsize::new(DISCONNECTED)).collect(),
            recovered: (0..clients).map(|_| AtomicBool::new(false)).collect(),
            start,
            measure_from: start + warmup,
            measure_until: start + warmup + duration,
            go: Barrier::new(clients + 1),
        }
    }

    fn kill_at(&self) -> Option<Instant> {
        let ns = self.kill_at_ns.load(Ordering::Acquire);
        (ns != u64::MAX).then(|| self.start + Duration::from_nanos(ns))
    }
}

pub struct Workload {
    pub read_ratio: f64,
    pub outstanding: usize,
    pub value_size: usize,
    pub keys: usize,
    pub seed: u64,
    /// Buckets to keep (phase length / BUCKET_MS, plus slack).
    pub buckets: usize,
}

/// What one client saw in one phase.
pub struct ClientResult {
    pub tally: Tally,
    /// Successful completions per BUCKET_MS since the phase's start.
    pub buckets: Vec<u64>,
    /// After the kill: the first successful write (issued after it) and op of any kind.
    pub first_write_after_kill: Option<Duration>,
    pub first_op_after_kill: Option<Duration>,
    /// Times the client lost its connection, and whether it ended the phase without one.
    pub disconnects: u64,
    pub dropped: bool,
}

type Inflight = std::collections::VecDeque<(i32, Instant, bool)>;

pub fn client_loop(w: &Workload, servers: &[SocketAddr], id: usize, sh: &Shared) -> ClientResult {
    let mut rng = Rng(w.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (id as u64 + 1));
    let value = vec![b'v'; w.value_size];
    let mut inflight = Inflight::new();
    let mut res = ClientResult {
        tally: Tally { read_lat: Some(hist()), write_lat: Some(hist()), ..Default::default() },
        buckets: vec![0; w.buckets],
        first_write_after_kill: None,
        first_op_after_kill: None,
        disconnects: 0,
        dropped: false,
    };
    let mut xid = 0i32;
    let mut out = Writer::new();
    let mut session = Session::default();
    let mut cur = id % servers.len();
    let mut conn: Option<Conn> = None;
    let mut issue = |out: &mut Writer, inflight: &mut Inflight, rng: &mut Rng| {
        xid = xid.wrapping_add(1).max(1);
        let path = key((rng.next() % w.keys as u64) as usize);
        let read = rng.unit() < w.read_ratio;
        let req = if read {
            Request::GetData { path, watch: false }
        } else {
            Request::SetData { path, data: Some(value.clone()), version: -1 }
        };
        out.buf.extend_from_slice(&req.encode(xid));
        inflight.push_back((xid, Instant::now(), read));
    };
    let mut last_recv = Instant::now();
    let mut first = true;
    'outer: while !sh.stop.load(Ordering::Relaxed) {
        // (Re)connect: the home server first, then round-robin over the others.
        let Some(c) = conn.as_mut() else {
            let mut tried = 0;
            let give_up = Instant::now() + Duration::from_secs(30);
            while conn.is_none() && !sh.stop.load(Ordering::Relaxed) && !(first && Instant::now() > give_up) {
                match Conn::open(servers[cur], &mut session) {
                    Ok(Some(c)) => conn = Some(c),
                    Ok(None) => {
                        // The session expired: count it and start a new one at once.
                        if (sh.measure_from..sh.measure_until).contains(&Instant::now()) {
                            *res.tally.errors.entry(SESSION_EXPIRED).or_default() += 1;
                        }
                        session = Session { last_zxid: session.last_zxid, ..Default::default() };
                        continue;
                    }
                    Err(_) => {
                        cur = (cur + 1) % servers.len();
                        tried += 1;
                        if tried % servers.len() == 0 {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }
            if first {
                first = false;
                sh.go.wait();
            }
            let Some(c) = conn.as_mut() else { break };
            sh.current[id].store(cur, Ordering::Release);
            last_recv = Instant::now();
            out.buf.clear(); // requests of a lost connection were counted as ConnectionLoss
            for _ in 0..w.outstanding {
                issue(&mut out, &mut inflight, &mut rng);
            }
            if c.s.write_all(&out.buf).is_err() {
                lose(&mut conn, &mut inflight, &mut res, sh, id);
            }
            out.buf.clear();
            continue;
        };
        // Read every reply that has arrived (at least one), then refill in one write.
        let mut completed = 0u64;
        loop {
            let f = match c.frame() {
                Ok(f) => f,
                Err(e) if is_timeout(&e) => {
                    // ZooKeeper's client gives up on a server silent for 2/3 of the session timeout.
                    if last_recv.elapsed() > Duration::from_millis(session.timeout_ms as u64 * 2 / 3) {
                        sh.done.fetch_add(completed, Ordering::Relaxed);
                        lose(&mut conn, &mut inflight, &mut res, sh, id);
                        cur = (cur + 1) % servers.len();
                        continue 'outer;
                    }
                    if completed > 0 {
                        break;
                    }
                    continue 'outer;
                }
                Err(_) => {
                    lose(&mut conn, &mut inflight, &mut res, sh, id);
                    cur = (cur + 1) % servers.len();
                    continue 'outer;
                }
            };
            last_recv = Instant::now();
            let hxid = i32::from_be_bytes(f[0..4].try_into().unwrap());
            let zxid = i64::from_be_bytes(f[4..12].try_into().unwrap());
            let err = i32::from_be_bytes(f[12..16].try_into().unwrap());
            if zxid > session.last_zxid {
                session.last_zxid = zxid;
            }
            if hxid < 0 {
                continue; // ping or notification
            }
            let Some((want, sent, read)) = inflight.pop_front() else {
                lose(&mut conn, &mut inflight, &mut res, sh, id);
                continue 'outer;
            };
            if want != hxid {
                eprintln!("loadgen: client {id}: reply xid {hxid}, expected {want}: replies out of order");
                lose(&mut conn, &mut inflight, &mut res, sh, id);
                continue 'outer;
            }
            let now = Instant::now();
            if err == 0 {
                completed += 1;
                let b = (now - sh.start).as_millis() as usize / BUCKET_MS as usize;
                if b < res.buckets.len() {
                    res.buckets[b] += 1;
                }
                if let Some(k) = sh.kill_at() {
                    if sent >= k {
                        let after = now - k;
                        res.first_op_after_kill.get_or_insert(after);
                        if !read {
                            res.first_write_after_kill.get_or_insert(after);
                        }
                        if !read || w.read_ratio >= 1.0 {
                            sh.recovered[id].store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            if sent >= sh.measure_from && sent < sh.measure_until {
                let us = (now - sent).as_micros().max(1) as u64;
                if err != 0 {
                    *res.tally.errors.entry(err).or_default() += 1;
                } else if read {
                    res.tally.reads += 1;
                    res.tally.read_lat.as_mut().unwrap().record(us).ok();
                } else {
                    res.tally.writes += 1;
                    res.tally.write_lat.as_mut().unwrap().record(us).ok();
                }
            }
            issue(&mut out, &mut inflight, &mut rng);
            if !c.has_buffered_frame() {
                break;
            }
        }
        sh.done.fetch_add(completed, Ordering::Relaxed);
        if c.s.write_all(&out.buf).is_err() {
            lose(&mut conn, &mut inflight, &mut res, sh, id);
            cur = (cur + 1) % servers.len();
        }
        out.buf.clear();
    }
    if first {
        sh.go.wait();
    }
    res.dropped = conn.is_none();
    res
}

/// The connection broke: everything in flight is lost (ConnectionLoss).
fn lose(conn: &mut Option<Conn>, inflight: &mut Inflight, res: &mut ClientResult, sh: &Shared, id: usize) {
    *conn = None;
    sh.current[id].store(DISCONNECTED, Ordering::Release);
    res.disconnects += 1;
    let lost = inflight.iter().filter(|(_, sent, _)| (sh.measure_from..sh.measure_until).contains(sent)).count() as u64;
    if lost > 0 {
        *res.tally.errors.entry(CONNECTION_LOSS).or_default() += lost;
    }
    inflight.clear();
}

/// One thread per connection; answers with the shapes loadgen expects.
pub fn echo_server(listen: SocketAddr) {
    let l = TcpListener::bind(listen).expect("bind");
    eprintln!("echo server on {listen}");
    for s in l.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = echo_conn(s);
        });
    }
}

fn echo_conn(s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut c = Conn::wrap(Stream::Plain(s));
    c.frame()?;
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id: 1,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    c.s.write_all(&resp.encode())?;
    let value = vec![b'v'; 1024];
    let stat = Stat::default();
    let mut out = Writer::new();
    loop {
        loop {
            let f = c.frame()?;
            let xid = i32::from_be_bytes(f[0..4].try_into().unwrap());
            let opcode = i32::from_be_bytes(f[4..8].try_into().unwrap());
            let mut w = Writer::framed();
            w.i32(xid).i64(1).i32(0);
            match opcode {
                op::GET_DATA => {
                    w.buffer(&value);
                    stat.write(&mut w);
                }
                op::SET_DATA => stat.write(&mut w),
                op::CREATE => {
                    w.string("/loadgen");
                }
                _ => {}
            }
            out.buf.extend_from_slice(&w.finish_frame());
            if !c.has_buffered_frame() {
                break;
            }
        }
        c.s.write_all(&out.buf)?;
        out.buf.clear();
    }
}
