//! `loadgen sessions`: how fast servers open (and close) sessions, the cost that local sessions
//! (`localSessionsEnabled`) remove. Each of `--clients` threads loops: connect to the next
//! server, send a ConnectRequest, read the ConnectResponse, then (unless `--keep`) send
//! closeSession and read its reply, and close the socket. With `--keep` the sessions are left
//! open when the socket closes (they live until their timeout): a way to load an ensemble with
//! many sessions before measuring something else.
//!
//! Prints one JSON object: sessions opened per second, open and close latency percentiles (ms),
//! failures.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use warren::proto::Request;

use crate::client::{Conn, Session};
use crate::stats::hist;

#[derive(clap::Args, Clone, Debug)]
pub struct SessionsArgs {
    /// Servers, `host:port[,host:port...]`; client i starts at server i and moves on by one
    /// server per session.
    #[arg(long)]
    pub connect: String,
    /// Concurrent clients (threads), each opening one session at a time.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Stop after this many seconds...
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// ...or after this many sessions in all, whichever comes first (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Leave each session open (no closeSession) when its socket closes.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(a: &SessionsArgs) -> Result<(), String> {
    let servers: Vec<SocketAddr> = a
        .connect
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("--connect {s:?}: {e}")))
        .collect::<Result<_, _>>()?;
    if servers.is_empty() || a.clients == 0 {
        return Err("need at least one server and one client".into());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let taken = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let open_lat = Mutex::new(hist());
    let close_lat = Mutex::new(hist());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..a.clients {
            let (servers, taken, failures, open_lat, close_lat) = (&servers, &taken, &failures, &open_lat, &close_lat);
            scope.spawn(move || {
                let (mut opens, mut closes) = (hist(), hist());
                let mut next = c;
                while Instant::now() < deadline {
                    if a.count > 0 && taken.fetch_add(1, Ordering::Relaxed) >= a.count {
                        break;
                    }
                    let addr = servers[next % servers.len()];
                    next += 1;
                    match one_session(addr, a.keep) {
                        Ok((open_us, close_us)) => {
                            opens.saturating_record(open_us.max(1));
                            if let Some(us) = close_us {
                                closes.saturating_record(us.max(1));
                            }
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                open_lat.lock().unwrap_or_else(|e| e.into_inner()).add(&opens).expect("same bounds");
                close_lat.lock().unwrap_or_else(|e| e.into_inner()).add(&closes).expect("same bounds");
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let opens = open_lat.into_inner().unwrap_or_else(|e| e.into_inner());
    let closes = close_lat.into_inner().unwrap_or_else(|e| e.into_inner());
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let out = json!({
        "servers": a.connect,
        "clients": a.clients,
        "keep": a.keep,
        "seconds": (secs * 100.0).round() / 100.0,
        "sessions": opens.len(),
        "sessions_per_s": (opens.len() as f64 / secs).round(),
        "open_ms": {"p50": ms(&opens, 0.5), "p99": ms(&opens, 0.99), "max": ms(&opens, 1.0)},
        "close_ms": {"p50": ms(&closes, 0.5), "p99": ms(&closes, 0.99), "max": ms(&closes, 1.0)},
        "failures": failures.load(Ordering::Relaxed),
    });
    println!("{out}");
    Ok(())
}

/// Opens a session on `addr` and, unless `keep`, closes it: (open µs, close µs).
fn one_session(addr: SocketAddr, keep: bool) -> std::io::Result<(u64, Option<u64>)> {
    let t0 = Instant::now();
    let mut session = Session::default();
    let Some(mut conn) = Conn::open(addr, &mut session)? else {
        return Err(std::io::Error::other("session refused"));
    };
    let open_us = t0.elapsed().as_micros() as u64;
    if keep {
        return Ok((open_us, None));
    }
    let t1 = Instant::now();
    conn.s.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.s.write_all(&Request::CloseSession.encode(1))?;
    let frame = conn.frame()?;
    // A reply header: xid (4 bytes), zxid (8), err (4).
    let err = frame.get(12..16).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
    if err != Some(0) {
        return Err(std::io::Error::other(format!("closeSession answered {err:?}")));
    }
    Ok((open_us, Some(t1.elapsed().as_micros() as u64)))
}
