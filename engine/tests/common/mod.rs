//! Shared by the integration tests: start the real `warren` binary on a free loopback port, and
//! a raw client on our own codec for the cases a well-behaved client library never produces.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warren::acl::open_acl_unsafe;
use warren::proto::{
    ConnectRequest, ConnectResponse, CreateKind, CreateRequest, Reader, ReplyHeader, Request, Stat, WatcherEvent,
};

/// How long the server may take to answer `ruok` after it was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of every raw socket: a reply that never comes fails the test, not hangs it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A `warren start-foreground` child process with its own data directory and port.
pub struct Server {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
    /// RLIMIT_NOFILE for the process (soft and hard), when set.
    nofile: Option<u64>,
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, read, dropped).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts a server with `tickTime=1000` (unless `extra` sets it), a fresh dataDir, the
    /// loopback address, every four-letter word allowed, and the `extra` zoo.cfg lines.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_inner(extra, None)
    }

    /// As [`Server::start`], with the process's open-file limit (RLIMIT_NOFILE) set to `nofile`.
    pub fn start_with_nofile(extra: &[&str], nofile: u64) -> Server {
        Self::start_inner(extra, Some(nofile))
    }

    fn start_inner(extra: &[&str], nofile: Option<u64>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            nofile,
        };
        // The port is chosen before the server binds it: another process may take it in
        // between. Rare, so a few attempts with fresh ports are enough.
        for attempt in 0.. {
            s.addr.set_port(free_port());
            match s.spawn() {
                Ok(()) => return s,
                Err(log) if attempt < 4 && log.contains("cannot listen") => continue,
                Err(log) => panic!("warren did not start:\n{log}"),
            }
        }
        unreachable!()
    }

    fn config_text(&self) -> String {
        let mut text = String::new();
        if !self.extra.iter().any(|l| l.starts_with("tickTime")) {
            text.push_str("tickTime=1000\n");
        }
        text.push_str(&format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n",
            self.dir.path().join("data").display(),
            self.addr.port()
        ));
        for l in &self.extra {
            text.push_str(l);
            text.push('\n');
        }
        text
    }

    /// Spawns the binary and waits for `imok`. Err carries the log when it did not come up.
    fn spawn(&mut self) -> Result<(), String> {
        let cfg = self.dir.path().join("zoo.cfg");
        std::fs::write(&cfg, self.config_text()).unwrap();
        // Append: a restarted server keeps the earlier log lines.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.arg("start-foreground")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env("WARREN_LOG", std::env::var("WARREN_LOG").unwrap_or_else(|_| "info".into()));
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
            // SAFETY: setrlimit is async-signal-safe and touches nothing but the child's limits.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.four_letter("ruok").as_deref() == Some("imok") {
                return Ok(());
            }
            if !self.is_alive() {
                self.child = None;
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(format!("no imok within {START_TIMEOUT:?}\n{}", self.log()))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("warren.log")
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`: a line may be written a moment after
    /// the event a test observed.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process is still running (it did not panic or exit).
    pub fn is_alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process and starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.spawn() {
            panic!("warren did not restart:\n{log}");
        }
    }

    /// The process id (panics when the server is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server's resident set size (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// How many file descriptors the server has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).unwrap().count()
    }

    /// How many lines of the log contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word and returns the whole answer.
    pub fn four_letter(&self, word: &str) -> Option<String> {
        four_letter(self.addr, word)
    }
}

/// Sends a four-letter word to `addr` and returns the whole answer.
pub fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- last lines of the warren log ({}) ----", self.addr);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A reply frame: header and body bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    pub hdr: ReplyHeader,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn err(&self) -> i32 {
        self.hdr.err
    }

    pub fn reader(&self) -> Reader<'_> {
        Reader::new(&self.body)
    }

    /// The body of an exists / setData / setACL reply.
    pub fn stat(&self) -> Stat {
        let mut r = self.reader();
        let st = Stat::read(&mut r).expect("stat body");
        r.finish().expect("nothing after the stat");
        st
    }

    /// The body of a create (op 1) or sync reply.
    pub fn path(&self) -> String {
        let mut r = self.reader();
        r.string().expect("path body")
    }

    /// The body of a create2 / createContainer / createTTL reply.
    pub fn path_and_stat(&self) -> (String, Stat) {
        let mut r = self.reader();
        let p = r.string().expect("path");
        let st = Stat::read(&mut r).expect("stat");
        r.finish().expect("nothing after the stat");
        (p, st)
    }

    /// The body of a getData reply.
    pub fn data_and_stat(&self) -> (Option<Vec<u8>>, Stat) {
        let mut r = self.reader();
        let d = r.opt_buffer().expect("data");
        let st = Stat::read(&mut r).expect("stat");
        r.finish().expect("nothing after the stat");
        (d, st)
    }

    /// The body of a getChildren (op 8) reply.
    pub fn children(&self) -> Vec<String> {
        let mut r = self.reader();
        r.strings().expect("children")
    }
}

/// One frame from the server after the handshake.
#[derive(Debug, Clone)]
pub enum Frame {
    Reply(Reply),
    Event(WatcherEvent),
}

/// A client speaking the wire protocol directly, one request at a time or pipelined.
pub struct Raw {
    pub s: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    /// Watch notifications read while waiting for a reply, in arrival order.
    pub events: VecDeque<WatcherEvent>,
}

pub fn connect_request(timeout_ms: i32, session_id: i64, passwd: Vec<u8>) -> ConnectRequest {
    ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout_ms, session_id, passwd, read_only: Some(false) }
}

impl Raw {
    /// A plain TCP connection with read and write timeouts.
    pub fn tcp(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// A new session with a 30 s timeout.
    pub fn connect(addr: SocketAddr) -> Raw {
        Self::connect_with_timeout(addr, 30_000)
    }

    pub fn connect_with_timeout(addr: SocketAddr, timeout_ms: i32) -> Raw {
        Self::handshake(addr, &connect_request(timeout_ms, 0, vec![0; 16])).expect("a new session")
    }

    /// Handshake for an existing session. Err carries the response when the server refused
    /// it (session 0).
    pub fn resume(addr: SocketAddr, session_id: i64, passwd: Vec<u8>) -> Result<Raw, (ConnectResponse, TcpStream)> {
        Self::handshake(addr, &connect_request(30_000, session_id, passwd))
    }

    /// A plain TCP connection from the local address `src` (any of 127.0.0.0/8 works on
    /// loopback), with the same timeouts as [`Raw::tcp`]: a second client address for tests of
    /// per-address limits.
    pub fn tcp_from(src: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
        use std::os::fd::FromRawFd;
        let (IpAddr::V4(src), SocketAddr::V4(dst)) = (src, addr) else {
            panic!("tcp_from is IPv4 only");
        };
        let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: plain socket calls on a descriptor this function owns; it is handed to
        // TcpStream (which closes it) or closed here on error.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let s = TcpStream::from_raw_fd(fd);
            let local = sockaddr(src, 0);
            if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let remote = sockaddr(*dst.ip(), dst.port());
            if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            s.set_nodelay(true)?;
            Ok(s)
        }
    }

    /// A new session (30 s timeout) on a connection from the local address `src`.
    pub fn connect_from(src: IpAddr, addr: SocketAddr) -> Raw {
        let s = Self::tcp_from(src, addr).expect("a connection");
        Self::handshake_on(s, &connect_request(30_000, 0, vec![0; 16])).expect("a new session")
    }

    pub fn handshake(addr: SocketAddr, req: &ConnectRequest) -> Result<Raw, (ConnectResponse, TcpStream)> {
        Self::handshake_on(Self::tcp(addr), req)
    }

    /// The handshake on a connection that is already open.
    pub fn handshake_on(mut s: TcpStream, req: &ConnectRequest) -> Result<Raw, (ConnectResponse, TcpStream)> {
        s.write_all(&req.encode()).unwrap();
        let frame = read_frame(&mut s).expect("a ConnectResponse");
        let resp = ConnectResponse::decode(&frame).unwrap();
        if resp.session_id == 0 {
            return Err((resp, s));
        }
        Ok(Raw {
            s,
            session_id: resp.session_id,
            passwd: resp.passwd,
            timeout_ms: resp.timeout_ms,
            events: VecDeque::new(),
        })
    }

    pub fn send(&mut self, xid: i32, req: &Request) {
        self.s.write_all(&req.encode(xid)).unwrap();
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Sends and returns the reply to `xid` (notifications on the way go to `events`).
    pub fn call(&mut self, xid: i32, req: &Request) -> Reply {
        self.send(xid, req);
        self.reply(xid)
    }

    /// The next frame, or None when the server closed the connection.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let f = read_frame(&mut self.s)?;
        let mut r = Reader::new(&f);
        let hdr = ReplyHeader { xid: r.i32().unwrap(), zxid: r.i64().unwrap(), err: r.i32().unwrap() };
        if hdr.xid == -1 {
            let ev = WatcherEvent::read(&mut r).expect("a WatcherEvent");
            return Some(Frame::Event(ev));
        }
        Some(Frame::Reply(Reply { hdr, body: f[16..].to_vec() }))
    }

    /// Reads until the reply to `xid`, keeping notifications; panics on a closed connection.
    pub fn reply(&mut self, xid: i32) -> Reply {
        loop {
            match self.next_frame() {
                Some(Frame::Event(ev)) => self.events.push_back(ev),
                Some(Frame::Reply(r)) if r.hdr.xid == xid => return r,
                Some(Frame::Reply(_)) => continue,
                None => panic!("connection closed while waiting for the reply to xid {xid}"),
            }
        }
    }

    /// Sends a ping and collects every frame up to its reply: a barrier that shows which
    /// notifications were already sent.
    pub fn ping_barrier(&mut self) -> Vec<WatcherEvent> {
        self.send(-2, &Request::Ping);
        let mut got = Vec::new();
        loop {
            match self.next_frame().expect("connection open") {
                Frame::Event(ev) => got.push(ev),
                Frame::Reply(r) if r.hdr.xid == -2 => return got,
                Frame::Reply(_) => {}
            }
        }
    }

    /// Closes the session cleanly (closeSession, then the socket).
    pub fn close_session(mut self) {
        let r = self.call(0x7fff_0000, &Request::CloseSession);
        assert_eq!(r.err(), 0);
        let _ = self.s.shutdown(Shutdown::Both);
    }
}

/// One length-prefixed frame, or None when the peer closed (or reset) the connection.
pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Reads until the server has closed this socket. True on EOF or reset; false if it is still
/// open after the read timeout (a WouldBlock/TimedOut error).
pub fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A create request (op 1 unless the flags ask for a container or TTL node).
pub fn create_req(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: open_acl_unsafe(),
        flags,
        ttl_ms: -1,
    })
}

/// A create2 request (reply carries the Stat).
pub fn create2_req(path: &str, data: &[u8], flags: i32) -> Request {
    match create_req(path, data, flags) {
        Request::Create(mut c) => {
            c.kind = CreateKind::Create2;
            Request::Create(c)
        }
        _ => unreachable!(),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures replay exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Polls `f` every 20 ms until it returns Some, for at most `timeout`.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
