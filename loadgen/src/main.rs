//! loadgen: pipelined getData/setData load against any ZooKeeper-protocol server, and a
//! trivial echo server that answers the same client (the loopback ceiling).
//!
//! The client is plain threads and blocking sockets on Warren's own codec: each client is one
//! session that keeps `--outstanding` requests in flight, reading every reply that has arrived
//! and writing the requests that replace them in one syscall each.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use warren::acl::open_acl_unsafe;
mod target;

use target::{Local, System};
use warren::proto::{op, ConnectRequest, ConnectResponse, CreateKind, CreateRequest, Request, Stat, Writer};

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator for ZooKeeper-protocol servers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a workload against a server.
    Run(RunArgs),
    /// A trivial server answering loadgen's requests with canned replies.
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:2999")]
        listen: SocketAddr,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// A server already running. Without it, `--system` starts one locally.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// What to start locally when --connect is not given (echo = the loopback ceiling).
    #[arg(long, value_enum, default_value = "warren")]
    system: System,
    /// Servers to start locally (1 until Warren has ensembles).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// The warren binary for --system warren (default: beside loadgen).
    #[arg(long)]
    warren_bin: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 100)]
    outstanding: usize,
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write a JSON record of the run here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// A label for the JSON record (e.g. "warren", "zookeeper", "echo").
    #[arg(long, default_value = "")]
    label: String,
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::EchoServer { listen } => echo_server(listen),
        Cmd::Run(a) => match run(&a) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
        },
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    fn open(addr: SocketAddr) -> io::Result<Conn> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        s.write_all(&req.encode())?;
        let mut c = Conn { s, buf: vec![0; 1 << 20], start: 0, end: 0 };
        let f = c.frame()?.to_vec();
        ConnectResponse::decode(&f).map_err(|e| io::Error::other(format!("bad connect response: {e}")))?;
        Ok(c)
    }

    /// The next whole frame's body.
    fn frame(&mut self) -> io::Result<&[u8]> {
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

    fn has_buffered_frame(&self) -> bool {
        self.end - self.start >= 4 && {
            let len = u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap()) as usize;
            self.end - self.start >= 4 + len
        }
    }
}

/// xorshift64*: deterministic per client from --seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Tally {
    reads: u64,
    writes: u64,
    errors: std::collections::BTreeMap<i32, u64>,
    read_lat: Option<Histogram<u64>>,
    write_lat: Option<Histogram<u64>>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

fn key(i: usize) -> String {
    format!("/loadgen/k{i}")
}

fn setup(a: &RunArgs) -> io::Result<()> {
    let mut c = Conn::open(a.connect.expect("set in run"))?;
    let value = vec![b'x'; a.value_size];
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
    for i in 0..a.keys {
        mk(key(i), i as i32 + 2, &mut w);
    }
    c.s.write_all(&w)?;
    for _ in 0..=a.keys {
        c.frame()?; // NodeExists is fine: keys from an earlier run are reused.
    }
    Ok(())
}

fn client_loop(a: &RunArgs, id: usize, go: &Barrier, stop: &AtomicBool, measure_from: Instant) -> io::Result<Tally> {
    let mut c = Conn::open(a.connect.expect("set in run"))?;
    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (id as u64 + 1));
    let value = vec![b'v'; a.value_size];
    let mut inflight: std::collections::VecDeque<(i32, Instant, bool)> = Default::default();
    let mut t = Tally { read_lat: Some(hist()), write_lat: Some(hist()), ..Default::default() };
    let mut xid = 0i32;
    let mut out = Writer::new();
    let mut issue =
        |out: &mut Writer, inflight: &mut std::collections::VecDeque<(i32, Instant, bool)>, rng: &mut Rng| {
            xid = xid.wrapping_add(1).max(1);
            let path = key((rng.next() % a.keys as u64) as usize);
            let read = rng.unit() < a.read_ratio;
            let req = if read {
                Request::GetData { path, watch: false }
            } else {
                Request::SetData { path, data: Some(value.clone()), version: -1 }
            };
            out.buf.extend_from_slice(&req.encode(xid));
            inflight.push_back((xid, Instant::now(), read));
        };
    go.wait();
    for _ in 0..a.outstanding {
        issue(&mut out, &mut inflight, &mut rng);
    }
    c.s.write_all(&out.buf)?;
    out.buf.clear();
    while !stop.load(Ordering::Relaxed) {
        // Read every reply that has arrived (at least one), then refill in one write.
        loop {
            let f = c.frame()?;
            let hxid = i32::from_be_bytes(f[0..4].try_into().unwrap());
            let err = i32::from_be_bytes(f[12..16].try_into().unwrap());
            if hxid < 0 {
                continue; // ping or notification
            }
            let (want, sent, read) = inflight.pop_front().ok_or_else(|| io::Error::other("reply without a request"))?;
            if want != hxid {
                return Err(io::Error::other(format!("reply xid {hxid}, expected {want}: replies out of order")));
            }
            if sent >= measure_from {
                let us = sent.elapsed().as_micros().max(1) as u64;
                if err != 0 {
                    *t.errors.entry(err).or_default() += 1;
                } else if read {
                    t.reads += 1;
                    t.read_lat.as_mut().unwrap().record(us).ok();
                } else {
                    t.writes += 1;
                    t.write_lat.as_mut().unwrap().record(us).ok();
                }
            }
            issue(&mut out, &mut inflight, &mut rng);
            if !c.has_buffered_frame() {
                break;
            }
        }
        c.s.write_all(&out.buf)?;
        out.buf.clear();
    }
    Ok(t)
}

fn run(a: &RunArgs) -> io::Result<()> {
    let mut a = a.clone();
    let _local = match a.connect {
        Some(_) => None,
        None => {
            let bin = a.warren_bin.clone().unwrap_or_else(|| {
                std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("warren"))).unwrap_or_default()
            });
            let local = Local::start(a.system, &bin, a.nodes)?;
            eprintln!("started {:?} on {}", a.system, local.addr);
            a.connect = Some(local.addr);
            if a.label.is_empty() {
                a.label = format!("{:?}", a.system).to_lowercase();
            }
            Some(local)
        }
    };
    let a = &a;
    setup(a)?;
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(Barrier::new(a.clients + 1));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let mut handles = Vec::new();
    for id in 0..a.clients {
        let (a, go, stop) = (a.clone(), go.clone(), stop.clone());
        handles.push(std::thread::spawn(move || client_loop(&a, id, &go, &stop, measure_from)));
    }
    go.wait();
    std::thread::sleep(Duration::from_secs_f64(a.warmup + a.duration));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally { read_lat: Some(hist()), write_lat: Some(hist()), ..Default::default() };
    for h in handles {
        let t = h.join().map_err(|_| io::Error::other("client thread panicked"))??;
        total.reads += t.reads;
        total.writes += t.writes;
        for (k, v) in t.errors {
            *total.errors.entry(k).or_default() += v;
        }
        total.read_lat.as_mut().unwrap().add(t.read_lat.unwrap()).ok();
        total.write_lat.as_mut().unwrap().add(t.write_lat.unwrap()).ok();
    }
    report(a, &total)
}

fn pct(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".into();
    }
    format!(
        "p50 {} p90 {} p99 {} p99.9 {} max {} (us)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

fn report(a: &RunArgs, t: &Tally) -> io::Result<()> {
    let secs = a.duration;
    let (r, w) = (t.reads as f64 / secs, t.writes as f64 / secs);
    println!(
        "target {}  clients {}  outstanding {}  read-ratio {}  value {} B",
        a.connect.expect("set in run"),
        a.clients,
        a.outstanding,
        a.read_ratio,
        a.value_size
    );
    println!("total   {:>10.0} ops/s", r + w);
    println!("reads   {:>10.0} ops/s  {}", r, pct(t.read_lat.as_ref().unwrap()));
    println!("writes  {:>10.0} ops/s  {}", w, pct(t.write_lat.as_ref().unwrap()));
    if !t.errors.is_empty() {
        println!("errors  {:?}", t.errors);
    }
    if let Some(path) = &a.json {
        let h = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        let (rl, wl) = (t.read_lat.as_ref().unwrap(), t.write_lat.as_ref().unwrap());
        let json = format!(
            "{{\"command\":\"{}\",\"machine\":{},\"label\":\"{}\",\"target\":\"{}\",\"clients\":{},\"outstanding\":{},\"read_ratio\":{},\"value_size\":{},\"duration_s\":{},\"ops_per_s\":{:.0},\"reads_per_s\":{:.0},\"writes_per_s\":{:.0},\"read_p50_us\":{},\"read_p99_us\":{},\"write_p50_us\":{},\"write_p99_us\":{},\"errors\":{}}}\n",
            std::env::args().collect::<Vec<_>>().join(" ").replace('"', "'"),
            target::machine(),
            a.label,
            a.connect.expect("set in run"),
            a.clients, a.outstanding, a.read_ratio, a.value_size, secs, r + w, r, w,
            h(rl, 0.5), h(rl, 0.99), h(wl, 0.5), h(wl, 0.99), t.errors.values().sum::<u64>()
        );
        std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(json.as_bytes())?;
    }
    Ok(())
}

/// One thread per connection; answers with the shapes loadgen expects.
fn echo_server(listen: SocketAddr) {
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
    let mut c = Conn { s, buf: vec![0; 1 << 20], start: 0, end: 0 };
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
