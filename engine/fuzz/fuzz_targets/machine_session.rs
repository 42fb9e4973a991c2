//! Arbitrary request frames from two clients, interleaved with log syncs, clock ticks and
//! reconnects, through the real state machine (request preparation, the tree, watches,
//! sessions, multi, ACLs). The server never panics on client input.
//!
//! Input: a sequence of steps. A step starts with a u16 (little endian): values below
//! 0xF000 are the length of a request frame body that follows (from client 0 or 1 by the
//! length's low bit); 0xF000.. are control steps: sync the log, advance the clock by a tick,
//! close client 1's connection and open a new one (a reconnect gets a new session).
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use warren::machine::{Machine, MachineConfig, Now};
use warren::proto::{ConnectRequest, Request};
use warren::tree::DataTree;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Run {
    m: Machine,
    now: Now,
    last_appended: i64,
    /// Connections the machine closed: the shell sends nothing more on them.
    closed: Vec<u64>,
    /// Each client's current connection (a new id per connection, as the shell gives).
    ids: [u64; 2],
    next_id: u64,
}

impl Run {
    fn pump(&mut self) {
        loop {
            let r = self.m.take_ready();
            if r.is_empty() {
                return;
            }
            if let Some(t) = r.appends.last() {
                self.last_appended = t.hdr.zxid;
            }
            for c in r.closes {
                // As the shell does: the socket goes, the machine hears of it once.
                if !self.closed.contains(&c) {
                    self.closed.push(c);
                    self.m.disconnected(c);
                }
            }
        }
    }

    /// A new connection for client `slot` (0 or 1).
    fn connect(&mut self, slot: usize) {
        self.next_id += 1;
        let conn = self.next_id;
        self.ids[slot] = conn;
        if self.m.open(conn, IP, self.now) {
            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            };
            self.m.connect(conn, req, self.now);
        } else {
            self.closed.push(conn);
        }
        self.pump();
        self.sync();
    }

    fn sync(&mut self) {
        self.m.durable(self.last_appended, self.now);
        self.pump();
    }
}

fuzz_target!(|data: &[u8]| {
    let cfg = MachineConfig { ttl_enabled: true, ..MachineConfig::default() };
    let now = Now::from_ms(1_000, 1_700_000_000_000);
    let mut run = Run {
        m: Machine::new(cfg, DataTree::new(), now),
        now,
        last_appended: 0,
        closed: Vec::new(),
        ids: [0; 2],
        next_id: 0,
    };
    run.connect(0);
    run.connect(1);
    let mut rest = data;
    let mut steps = 0;
    while rest.len() >= 2 && steps < 256 {
        steps += 1;
        let word = u16::from_le_bytes([rest[0], rest[1]]);
        rest = &rest[2..];
        if word >= 0xF000 {
            match word % 3 {
                0 => run.sync(),
                1 => {
                    run.now = Now::from_ms(run.now.mono_ms + 2_000, run.now.wall_ms + 2_000);
                    run.m.tick(run.now);
                    run.pump();
                }
                _ => {
                    let old = run.ids[1];
                    if !run.closed.contains(&old) {
                        run.closed.push(old);
                        run.m.disconnected(old);
                        run.pump();
                    }
                    run.connect(1);
                }
            }
            continue;
        }
        let len = (word as usize >> 1).min(rest.len());
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        if let Ok((hdr, req)) = Request::decode(frame) {
            let slot = (word & 1) as usize;
            if run.closed.contains(&run.ids[slot]) {
                run.connect(slot);
                if run.closed.contains(&run.ids[slot]) {
                    continue;
                }
            }
            run.m.request(run.ids[slot], hdr, req, run.now);
            run.pump();
        }
    }
    run.sync();
});
