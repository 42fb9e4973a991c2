//! Shared by the integration tests: start the real `warren` binary, and a raw client on our
//! codec for the cases a well-behaved client library never produces.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warren::proto::{ConnectRequest, ConnectResponse, Reader, ReplyHeader, Request};

pub struct Server {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts `warren start-foreground` with a fresh data dir; `extra` are more zoo.cfg lines.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let cfg = self.dir.path().join("zoo.cfg");
        let mut text = format!(
            "tickTime=1000\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n",
            self.dir.path().join("data").display(),
            self.addr.port()
        );
        for l in &self.extra {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&cfg, text).unwrap();
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .arg("start-foreground")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .env("WARREN_LOG", std::env::var("WARREN_LOG").unwrap_or_else(|_| "info".into()))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.four_letter("ruok").as_deref() == Some("imok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("warren did not start:\n{}", self.log());
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("warren.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
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

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn four_letter(&self, word: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client speaking the wire protocol directly.
pub struct Raw {
    pub s: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
}

impl Raw {
    pub fn tcp(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    pub fn connect(addr: SocketAddr) -> Raw {
        Self::resume(addr, 0, vec![0; 16]).expect("session")
    }

    /// Handshake for a new (session 0) or existing session. Err carries the response when the
    /// server refused it.
    pub fn resume(addr: SocketAddr, session_id: i64, passwd: Vec<u8>) -> Result<Raw, ConnectResponse> {
        let mut s = Self::tcp(addr);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id,
            passwd,
            read_only: Some(false),
        };
        s.write_all(&req.encode()).unwrap();
        let frame = read_frame(&mut s).expect("connect response");
        let resp = ConnectResponse::decode(&frame).unwrap();
        if resp.session_id == 0 {
            return Err(resp);
        }
        Ok(Raw { s, session_id: resp.session_id, passwd: resp.passwd })
    }

    pub fn send(&mut self, xid: i32, req: &Request) {
        self.s.write_all(&req.encode(xid)).unwrap();
    }

    /// Sends and returns the reply to `xid` (skipping notifications): header and body bytes.
    pub fn call(&mut self, xid: i32, req: &Request) -> (ReplyHeader, Vec<u8>) {
        self.send(xid, req);
        self.reply(xid)
    }

    pub fn reply(&mut self, xid: i32) -> (ReplyHeader, Vec<u8>) {
        loop {
            let f = read_frame(&mut self.s).expect("reply frame");
            let mut r = Reader::new(&f);
            let h = ReplyHeader { xid: r.i32().unwrap(), zxid: r.i64().unwrap(), err: r.i32().unwrap() };
            if h.xid == xid {
                return (h, f[16..].to_vec());
            }
        }
    }
}

/// One length-prefixed frame, or None when the peer closed.
pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// True once the server has closed this socket (read returns EOF or an error).
pub fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}
