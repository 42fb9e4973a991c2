//! A small in-process ensemble with a perfect network and instant disks (each member's files on
//! its own fault-free [`FaultyDisk`], through the storage code the server uses): the protocol's
//! happy paths. The seeded simulator with faults lives in `engine/tests/simulation.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::machine::MachineConfig;
use crate::proto::{ConnectRequest, CreateKind, CreateRequest, Request, RequestHeader};
use crate::quorum::{Epochs, Msg, PeerState, QuorumConfig, ServerId};
use crate::storage::member::{MemberDirs, MemberStore};
use crate::storage::{Faults, FaultyDisk};
use crate::tree::DataTree;

/// A member's disk, and its storage while it runs.
struct Disk {
    disk: FaultyDisk,
    store: Option<MemberStore>,
}

impl Disk {
    /// Performs a step at once, durably (an append is synced before this returns); returns
    /// what to report: `Node::rewound` for a rewind, `Node::synced` for an append.
    fn perform(&mut self, step: DiskStep) -> Option<Zxid> {
        let store = self.store.as_mut().expect("running");
        let rewound = store.perform(&self.disk, step).expect("a fault-free disk");
        store.write_round(&self.disk).expect("a fault-free disk");
        rewound.or_else(|| store.sync(&self.disk).expect("a fault-free disk"))
    }
}

struct Cluster {
    nodes: HashMap<ServerId, Option<Node>>,
    disks: HashMap<ServerId, Disk>,
    net: VecDeque<(ServerId, ServerId, Msg)>,
    replies: HashMap<(ServerId, u64), Vec<Vec<u8>>>,
    now: Now,
    n: u64,
    observers: Vec<ServerId>,
    /// syncLimit (ticks) and warren.peerTimeoutMs of every node started from now on.
    sync_limit: u32,
    peer_timeout_ms: i64,
    /// Client connections each node closed.
    closed: Vec<(ServerId, u64)>,
    /// `readonlymode.enabled` with this tickTime (ms) for nodes started from now on.
    read_only_tick_ms: Option<i64>,
}

fn qcfg(myid: ServerId, n: u64, observers: &[ServerId]) -> QuorumConfig {
    QuorumConfig {
        myid,
        voters: (1..=n).collect(),
        observers: observers.to_vec(),
        init_limit: 10,
        sync_limit: 5,
        peer_timeout_ms: 0,
        max_inflight: 1000,
        diff_window: 50,
    }
}

fn mcfg(myid: ServerId) -> MachineConfig {
    MachineConfig { tick_ms: 100, min_session_timeout_ms: 200, myid: myid as u8, ..Default::default() }
}

impl Cluster {
    fn new(n: u64, observers: &[ServerId]) -> Cluster {
        Cluster::with_limits(n, observers, 5, 0)
    }

    fn with_limits(n: u64, observers: &[ServerId], sync_limit: u32, peer_timeout_ms: i64) -> Cluster {
        Cluster::build(n, observers, sync_limit, peer_timeout_ms, None)
    }

    /// `n` voters with `readonlymode.enabled` and a tickTime of `tick_ms` (the cluster still
    /// ticks every 100 ms; only the read-only grace period depends on it).
    fn with_read_only(n: u64, tick_ms: i64) -> Cluster {
        Cluster::build(n, &[], 5, 0, Some(tick_ms))
    }

    fn build(
        n: u64,
        observers: &[ServerId],
        sync_limit: u32,
        peer_timeout_ms: i64,
        read_only_tick_ms: Option<i64>,
    ) -> Cluster {
        let mut c = Cluster {
            nodes: HashMap::new(),
            disks: HashMap::new(),
            net: VecDeque::new(),
            replies: HashMap::new(),
            now: Now::from_ms(1000, 1_700_000_000_000),
            n,
            observers: observers.to_vec(),
            sync_limit,
            peer_timeout_ms,
            closed: Vec::new(),
            read_only_tick_ms,
        };
        let ids: Vec<ServerId> = (1..=n).chain(observers.iter().copied()).collect();
        for id in ids {
            c.disks.insert(id, Disk { disk: FaultyDisk::new(id, Faults::default()), store: None });
            c.start(id);
        }
        c
    }

    fn start(&mut self, id: ServerId) {
        let d = self.disks.get_mut(&id).unwrap();
        let (store, rec) = MemberStore::open(&d.disk, MemberDirs::under("/m"), 1 << 20).expect("recovers");
        d.store = Some(store);
        let init = rec.init;
        let q = QuorumConfig {
            sync_limit: self.sync_limit,
            peer_timeout_ms: self.peer_timeout_ms,
            ..qcfg(id, self.n, &self.observers)
        };
        let mut m = mcfg(id);
        if let Some(tick_ms) = self.read_only_tick_ms {
            m.read_only_mode = true;
            m.tick_ms = tick_ms;
        }
        let node = Node::new(m, q, init, self.now);
        self.nodes.insert(id, Some(node));
        let others: Vec<ServerId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        for o in others {
            if let Some(Some(n)) = self.nodes.get_mut(&o) {
                n.peer_up(id, self.now);
            }
        }
        self.drain(id);
    }

    fn crash(&mut self, id: ServerId) {
        self.nodes.insert(id, None);
        let d = self.disks.get_mut(&id).unwrap();
        d.store = None;
        d.disk.crash();
        self.net.retain(|(f, t, _)| *f != id && *t != id);
        let others: Vec<ServerId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        for o in others {
            if let Some(Some(n)) = self.nodes.get_mut(&o) {
                n.peer_down(id, self.now);
            }
            self.drain(o);
        }
    }

    fn node(&mut self, id: ServerId) -> &mut Node {
        self.nodes.get_mut(&id).unwrap().as_mut().expect("running")
    }

    /// Performs a node's Ready: disks are instant and durable.
    fn drain(&mut self, id: ServerId) {
        loop {
            let Some(Some(node)) = self.nodes.get_mut(&id) else { return };
            let r = node.take_ready();
            if r.is_empty() {
                return;
            }
            let mut r = r;
            let d = self.disks.get_mut(&id).unwrap();
            let mut reports = Vec::new();
            for step in r.take_disk_steps() {
                let rewind = matches!(step, DiskStep::Truncate(_) | DiskStep::Snapshot(..));
                if let Some(z) = d.perform(step) {
                    reports.push((rewind, z));
                }
            }
            for (to, m) in r.sends {
                self.net.push_back((id, to, m));
            }
            for (conn, f) in r.client_sends {
                self.replies.entry((id, conn)).or_default().push(f);
            }
            self.closed.extend(r.closes.iter().map(|&c| (id, c)));
            let now = self.now;
            for (rewind, z) in reports {
                if rewind {
                    self.node(id).rewound(z, now);
                } else {
                    self.node(id).synced(z, now);
                }
            }
        }
    }

    fn deliver_all(&mut self) {
        let mut steps = 0;
        while let Some((from, to, m)) = self.net.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "message storm");
            let now = self.now;
            if let Some(Some(n)) = self.nodes.get_mut(&to) {
                n.peer_message(from, m, now);
                self.drain(to);
            }
        }
    }

    fn tick_all(&mut self) {
        self.now.mono_ms += 100;
        self.now.wall_ms += 100;
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            if let Some(Some(n)) = self.nodes.get_mut(&id) {
                n.tick(self.now);
                self.drain(id);
            }
        }
        self.deliver_all();
    }

    fn settle(&mut self) {
        self.deliver_all();
        for _ in 0..30 {
            if self.nodes.values().flatten().all(|n| n.serving()) {
                return;
            }
            self.tick_all();
        }
        panic!("no stable leader: {:?}", self.states());
    }

    fn states(&self) -> Vec<(ServerId, PeerState, Option<ServerId>)> {
        let mut v: Vec<_> =
            self.nodes.iter().filter_map(|(id, n)| n.as_ref().map(|n| (*id, n.state(), n.leader()))).collect();
        v.sort_by_key(|x| x.0);
        v
    }

    fn leader(&self) -> ServerId {
        let leaders: Vec<ServerId> = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.as_ref().filter(|n| n.state() == PeerState::Leading).map(|_| *id))
            .collect();
        assert_eq!(leaders.len(), 1, "{:?}", self.states());
        leaders[0]
    }

    /// Advances time by `ms` in 10 ms steps, as the shell's timer does: `tick` on every
    /// 100 ms (tickTime) boundary, `sweep` at every step.
    fn run_for(&mut self, ms: i64) {
        for _ in 0..ms / 10 {
            self.now.mono_ms += 10;
            self.now.wall_ms += 10;
            let now = self.now;
            let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
            for id in ids {
                if let Some(Some(n)) = self.nodes.get_mut(&id) {
                    if now.mono_ms % 100 == 0 {
                        n.tick(now);
                    }
                    n.sweep(now);
                    self.drain(id);
                }
            }
            self.deliver_all();
        }
    }

    /// Connects a client to `server`, returning its connection id and session.
    fn session(&mut self, server: ServerId, conn: u64) -> i64 {
        self.session_with_timeout(server, conn, 30_000)
    }

    fn session_with_timeout(&mut self, server: ServerId, conn: u64, timeout_ms: i32) -> i64 {
        let now = self.now;
        assert!(self.node(server).open(conn, IpAddr::V4(Ipv4Addr::LOCALHOST), now));
        let req = ConnectRequest { timeout_ms, ..connect_request(0, vec![0; 16]) };
        self.node(server).connect(conn, req, now);
        self.drain(server);
        self.deliver_all();
        let frames = self.replies.remove(&(server, conn)).expect("connect response");
        let f = &frames[0];
        i64::from_be_bytes(f[12..20].try_into().unwrap())
    }

    /// Sends a request; returns the reply's error code once delivered.
    fn call(&mut self, server: ServerId, conn: u64, xid: i32, req: Request) -> i32 {
        let now = self.now;
        let hdr = RequestHeader { xid, op: req.opcode() };
        self.node(server).request(conn, hdr, req, now);
        self.drain(server);
        self.deliver_all();
        let frames = self.replies.remove(&(server, conn)).unwrap_or_default();
        let f = frames.iter().find(|f| i32::from_be_bytes(f[4..8].try_into().unwrap()) == xid).expect("a reply");
        i32::from_be_bytes(f[16..20].try_into().unwrap())
    }
}

fn connect_request(session_id: i64, passwd: Vec<u8>) -> ConnectRequest {
    ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout_ms: 30_000, session_id, passwd, read_only: None }
}

fn create(path: &str) -> Request {
    create_with_flags(path, 0)
}

fn create_with_flags(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: path.to_string(),
        data: Some(b"v".to_vec()),
        acl: crate::acl::open_acl_unsafe(),
        flags,
        ttl_ms: 0,
    })
}

fn paths(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n.machine().tree().iter().map(|(p, _)| p.clone()).collect();
    v.sort();
    v
}

#[test]
fn three_servers_elect_the_highest_id_and_replicate_writes_through_a_follower() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    assert_eq!(c.leader(), 3);
    let s = c.session(1, 100);
    assert_ne!(s, 0);
    assert_eq!(c.call(1, 100, 1, create("/a")), 0);
    assert_eq!(c.call(1, 100, 2, create("/a")), -110, "NodeExists");
    for id in 1..=3 {
        assert!(c.node(id).machine().tree().get("/a").is_some(), "server {id}");
    }
    // The session is global: every server knows it.
    for id in 1..=3 {
        assert!(c.node(id).machine().sessions().is_live(s), "server {id}");
    }
}

#[test]
fn a_new_leader_takes_over_and_the_old_one_rejoins_with_a_diff() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    c.session(1, 100);
    c.call(1, 100, 1, create("/before"));
    c.crash(3);
    c.settle();
    assert_eq!(c.leader(), 2);
    c.session(1, 101);
    assert_eq!(c.call(1, 101, 1, create("/after")), 0);
    c.start(3);
    c.settle();
    assert_eq!(c.leader(), 2);
    assert_eq!(c.node(2).last_sync.get(&3), Some(&SyncKind::Diff));
    let want = paths(c.node(2));
    assert!(want.contains(&"/after".to_string()));
    assert_eq!(paths(c.node(3)), want);
    assert_eq!(paths(c.node(1)), want);
}

#[test]
fn a_follower_far_behind_gets_a_snapshot() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    c.crash(1);
    c.settle();
    c.session(2, 100);
    for i in 0..120 {
        assert_eq!(c.call(2, 100, i + 1, create(&format!("/n{i}"))), 0);
    }
    c.start(1);
    c.settle();
    assert_eq!(c.node(3).last_sync.get(&1), Some(&SyncKind::Snap));
    assert_eq!(paths(c.node(1)), paths(c.node(3)));
    // After a restart it recovers from the installed snapshot plus its log.
    c.crash(1);
    c.start(1);
    c.settle();
    assert_eq!(paths(c.node(1)), paths(c.node(3)));
}

#[test]
fn an_uncommitted_proposal_is_truncated_when_its_leader_comes_back() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    c.session(3, 100);
    c.call(3, 100, 1, create("/kept"));
    // The leader prepares a write, logs it, but its proposals never leave.
    let now = c.now;
    let hdr = RequestHeader { xid: 2, op: crate::proto::op::CREATE };
    c.node(3).request(100, hdr, create("/lost"), now);
    let r = c.node(3).take_ready();
    assert_eq!(r.appends.len(), 1);
    c.disks.get_mut(&3).unwrap().perform(DiskStep::Append(r.appends));
    c.crash(3);
    c.settle();
    assert_eq!(c.leader(), 2);
    c.session(2, 101);
    assert_eq!(c.call(2, 101, 1, create("/new")), 0);
    c.start(3);
    c.settle();
    assert_eq!(c.node(2).last_sync.get(&3), Some(&SyncKind::Trunc));
    let p3 = paths(c.node(3));
    assert!(!p3.contains(&"/lost".to_string()));
    assert!(p3.contains(&"/new".to_string()));
    assert_eq!(p3, paths(c.node(2)));
}

#[test]
fn without_a_quorum_nothing_is_acknowledged() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    c.session(3, 100);
    c.crash(1);
    c.crash(2);
    // The leader steps down at once: both links are gone.
    assert_ne!(c.node(3).state(), PeerState::Leading);
    assert!(!c.node(3).serving());
}

#[test]
fn an_observer_learns_commits_and_forwards_writes() {
    let mut c = Cluster::new(3, &[4]);
    c.settle();
    assert_eq!(c.node(4).state(), PeerState::Observing);
    c.session(4, 100);
    assert_eq!(c.call(4, 100, 1, create("/o")), 0);
    for id in 1..=4 {
        assert!(c.node(id).machine().tree().get("/o").is_some(), "server {id}");
    }
}

#[test]
fn a_session_that_moved_gets_session_moved_on_its_old_server() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    let s = c.session(1, 100);
    assert_eq!(c.call(1, 100, 1, create("/m")), 0);
    // The same session connects to server 2 (its old connection on server 1 stays open).
    let now = c.now;
    assert!(c.node(2).open(200, IpAddr::V4(Ipv4Addr::LOCALHOST), now));
    let passwd = c.node(1).machine().sessions().get(s).expect("live").passwd;
    c.node(2).connect(200, connect_request(s, passwd.to_vec()), now);
    c.drain(2);
    c.deliver_all();
    assert!(c.replies.remove(&(2, 200)).is_some(), "connect response");
    // A write through the old server is refused, as ZooKeeper does; through the new one it works.
    assert_eq!(c.call(1, 100, 2, create("/m/old")), -118, "SessionMoved");
    assert_eq!(c.call(2, 200, 3, create("/m/new")), 0);
    assert!(c.node(3).machine().tree().get("/m/old").is_none());
}

#[test]
fn a_follower_holding_the_dead_leaders_last_proposal_leads() {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    c.session(3, 100);
    c.call(3, 100, 1, create("/a"));
    // The leader's next proposal reaches follower 1 only, then the leader dies.
    let now = c.now;
    let hdr = RequestHeader { xid: 2, op: crate::proto::op::CREATE };
    c.node(3).request(100, hdr, create("/b"), now);
    let r = c.node(3).take_ready();
    for (to, m) in r.sends {
        if to == 1 {
            c.net.push_back((3, 1, m));
        }
    }
    c.disks.get_mut(&3).unwrap().perform(DiskStep::Append(r.appends));
    c.deliver_all();
    c.crash(3);
    c.settle();
    assert_eq!(c.leader(), 1);
    c.session(2, 101);
    assert_eq!(c.call(2, 101, 1, create("/c")), 0);
    let p1 = paths(c.node(1));
    assert_eq!(paths(c.node(2)), p1);
    assert!(p1.contains(&"/b".to_string()), "the proposal a quorum logged is kept");
}

#[test]
fn the_leader_expires_a_vanished_session_on_a_follower_soon_after_its_timeout() {
    // At every phase of the tick the client may vanish at.
    for phase_ms in (0..100).step_by(10) {
        let mut c = Cluster::new(3, &[]);
        c.settle();
        assert_eq!(c.leader(), 3);
        let live = c.session_with_timeout(2, 200, 400);
        let gone = c.session_with_timeout(1, 100, 400);
        c.run_for(100 - c.now.mono_ms % 100 + phase_ms);
        assert_eq!(c.call(1, 100, 1, create_with_flags("/gone", 1)), 0);
        let t0 = c.now.mono_ms;
        c.node(1).disconnected(100);
        c.drain(1);
        let mut expired_after = None;
        let mut xid = 1;
        while c.now.mono_ms - t0 < 1500 {
            c.run_for(10);
            if (c.now.mono_ms - t0) % 100 == 0 {
                // The other client keeps its session alive through follower 2.
                xid += 1;
                assert_eq!(c.call(2, 200, xid, Request::Exists { path: "/".into(), watch: false }), 0);
            }
            if expired_after.is_none() && !c.node(3).machine().sessions().is_live(gone) {
                expired_after = Some(c.now.mono_ms - t0);
            }
        }
        let after = expired_after.expect("the vanished session was never expired");
        // Never before its timeout; at most a tick late for its expiry bucket, half a tick
        // for the follower's report of its last activity, and one timer step.
        assert!(
            (400..=400 + 100 + 50 + 10).contains(&after),
            "phase {phase_ms}: expired {after} ms after its client went"
        );
        assert!(c.node(3).machine().sessions().is_live(live), "a live session on a follower was expired");
        for id in 1..=3 {
            assert!(c.node(id).machine().tree().get("/gone").is_none(), "server {id} kept the ephemeral");
            assert!(!c.node(id).machine().sessions().is_live(gone), "server {id} kept the session");
        }
    }
}

/// A session's random password is chosen by the server the client connected to (here a
/// follower), travels in the createSession transaction, and is the same on every server, so
/// the client can resume the session anywhere; a wrong password is refused everywhere.
#[test]
fn session_passwords_are_replicated_and_checked_on_every_server() {
    let mut c = Cluster::new(3, &[4]);
    c.settle();
    let follower = (1..=3).find(|&id| c.node(id).state() == PeerState::Following).expect("a follower");
    let s = c.session(follower, 100);
    let passwd = c.node(follower).machine().sessions().get(s).expect("live").passwd;
    assert_ne!(passwd, crate::session::UNUSABLE_PASSWD);
    for id in 1..=4 {
        assert_eq!(c.node(id).machine().sessions().get(s).expect("replicated").passwd, passwd, "server {id}");
    }
    let now = c.now;
    for (id, conn) in [(1, 300), (2, 301), (3, 302), (4, 303)] {
        assert!(c.node(id).open(conn, IpAddr::V4(Ipv4Addr::LOCALHOST), now));
        let mut wrong = passwd;
        wrong[15] ^= 1;
        c.node(id).connect(conn, connect_request(s, wrong.to_vec()), now);
        c.drain(id);
        assert!(c.node(id).machine().sessions().is_live(s));
    }
    c.deliver_all();
    for (id, conn) in [(1, 300), (2, 301), (3, 302), (4, 303)] {
        let frames = c.replies.remove(&(id, conn)).unwrap_or_default();
        let resp = crate::proto::ConnectResponse::decode(&frames[0][4..]).expect("a connect response");
        assert_eq!((resp.session_id, resp.timeout_ms), (0, 0), "server {id} accepted a wrong password");
    }
    // The right password resumes it on another server, and the session still works there.
    let other = (1..=3).find(|&id| id != follower).expect("another server");
    assert!(c.node(other).open(400, IpAddr::V4(Ipv4Addr::LOCALHOST), now));
    c.node(other).connect(400, connect_request(s, passwd.to_vec()), now);
    c.drain(other);
    c.deliver_all();
    let frames = c.replies.remove(&(other, 400)).expect("connect response");
    let resp = crate::proto::ConnectResponse::decode(&frames[0][4..]).expect("a connect response");
    assert_eq!((resp.session_id, resp.passwd), (s, passwd.to_vec()));
    assert_eq!(c.call(other, 400, 1, create("/resumed")), 0);
}

/// A leader that stops (SIGSTOP: its links stay up, it just goes silent) is given up on after
/// `peer_timeout_ms`, not after syncLimit × tickTime; without the setting, syncLimit alone.
#[test]
fn a_silent_leader_is_replaced_after_the_peer_timeout() {
    for (peer_timeout_ms, replaced) in [(300, true), (0, false)] {
        // syncLimit 50 ticks of 100 ms: 5 s.
        let mut c = Cluster::with_limits(3, &[], 50, peer_timeout_ms);
        c.settle();
        assert_eq!(c.leader(), 3);
        c.session(1, 100);
        assert_eq!(c.call(1, 100, 1, create("/before")), 0);
        // Paused: it runs nothing and what is sent to it goes unread.
        let paused = c.nodes.insert(3, None).flatten().expect("running");
        c.run_for(1_000);
        let states = c.states();
        if replaced {
            assert_eq!(c.leader(), 2, "{states:?}");
            c.session(1, 101);
            assert_eq!(c.call(1, 101, 1, create("/after")), 0, "a write commits on the majority side");
        } else {
            assert!(
                states.iter().all(|(_, st, leader)| *st == PeerState::Following && *leader == Some(3)),
                "before syncLimit, followers still follow the silent leader: {states:?}"
            );
        }
        drop(paused);
    }
}

/// The leader drops a follower that goes silent for `peer_timeout_ms`, and steps down when
/// that leaves it without a quorum, instead of waiting for syncLimit.
#[test]
fn a_leader_cut_off_from_its_followers_steps_down_after_the_peer_timeout() {
    let mut c = Cluster::with_limits(3, &[], 50, 300);
    c.settle();
    assert_eq!(c.leader(), 3);
    let f1 = c.nodes.insert(1, None).flatten().expect("running");
    let f2 = c.nodes.insert(2, None).flatten().expect("running");
    c.run_for(1_000);
    assert_ne!(c.node(3).state(), PeerState::Leading, "{:?}", c.states());
    drop((f1, f2));
}

// ---- invariants: each check fires on the state it forbids ------------------------------------

/// A three-server ensemble that elected a leader and committed a write.
fn settled_with_a_write() -> (Cluster, ServerId) {
    let mut c = Cluster::new(3, &[]);
    c.settle();
    let s = c.session(1, 100);
    assert_ne!(s, 0);
    assert_eq!(c.call(1, 100, 1, create("/a")), 0);
    let leader = c.leader();
    c.node(leader).take_ready();
    (c, leader)
}

#[test]
#[should_panic(expected = "invariant broken: durable")]
fn the_invariants_refuse_a_durable_point_past_the_log() {
    let (mut c, leader) = settled_with_a_write();
    let n = c.node(leader);
    n.durable = n.logged + 1;
    n.take_ready();
}

#[test]
#[should_panic(expected = "invariant broken: the commit point moved back")]
fn the_invariants_refuse_a_commit_point_that_moves_back() {
    let (mut c, _) = settled_with_a_write();
    // A follower: its commit point is only ever raised by the leader's messages.
    let n = c.node(1);
    let Phase::Following(f) = &mut n.phase else { panic!("server 1 follows") };
    assert!(f.commit > 0);
    f.commit -= 1;
    n.take_ready();
}

#[test]
#[should_panic(expected = "invariant broken: leader applied")]
fn the_invariants_refuse_a_leader_applying_past_its_commit() {
    let (mut c, leader) = settled_with_a_write();
    let n = c.node(leader);
    let Phase::Leading(l) = &mut n.phase else { panic!("leads") };
    l.commit -= 1;
    n.inv.commit = 0;
    n.take_ready();
}

#[test]
#[should_panic(expected = "invariant broken: epoch 1 has two leaders, 3 and 2")]
fn the_invariants_refuse_two_leaders_in_one_epoch() {
    let (mut c, leader) = settled_with_a_write();
    assert_eq!(leader, 3);
    let n = c.node(1);
    assert_eq!(n.epochs.current, 1);
    // Server 1 took on leader 3's epoch 1; another leader of epoch 1 is impossible.
    n.inv.epoch_led_by(1, 1, 3);
    n.inv.epoch_led_by(1, 1, 2);
}

// ---- one acknowledgement per epoch -------------------------------------------------------------

fn lone_node(id: ServerId, epochs: Epochs) -> Node {
    let init = NodeInit { epochs, tree: DataTree::new(), sessions: vec![], log: vec![] };
    Node::new(mcfg(id), qcfg(id, 3, &[]), init, Now::from_ms(1000, 1_700_000_000_000))
}

/// Follows `leader`, takes its LeaderInfo for `epoch`, and returns the AckEpoch it answered.
fn ack_epoch_to(n: &mut Node, leader: ServerId, epoch: u32) -> Msg {
    n.look("test");
    n.elected(leader);
    n.take_ready();
    let now = n.now;
    n.peer_message(leader, Msg::LeaderInfo { epoch }, now);
    let sends = n.take_ready().sends;
    let acks: Vec<Msg> =
        sends.into_iter().filter(|(to, m)| *to == leader && matches!(m, Msg::AckEpoch { .. })).map(|x| x.1).collect();
    assert_eq!(acks.len(), 1, "one AckEpoch to {leader}");
    acks.into_iter().next().unwrap()
}

fn counted(m: &Msg) -> bool {
    matches!(m, Msg::AckEpoch { counted: true, .. })
}

#[test]
fn a_follower_counts_for_one_leader_per_epoch() {
    let mut n = lone_node(1, Epochs::default());
    assert!(counted(&ack_epoch_to(&mut n, 3, 5)), "a new epoch counts");
    assert_eq!(n.epochs.accepted, 5);
    // Another leader offering the epoch I already acknowledged: synced, not counted.
    assert!(!counted(&ack_epoch_to(&mut n, 2, 5)), "the same epoch for another leader");
    // Back to the leader I acknowledged it for: counts again (it keys acks by server).
    assert!(counted(&ack_epoch_to(&mut n, 3, 5)));
    assert!(counted(&ack_epoch_to(&mut n, 2, 6)), "a later epoch counts for anyone");
    // After a restart I cannot tell whom I acknowledged the accepted epoch for.
    let mut restarted = lone_node(1, Epochs { accepted: 6, current: 4 });
    assert!(!counted(&ack_epoch_to(&mut restarted, 2, 6)));
}

#[test]
fn a_leader_chose_its_epoch_and_then_counts_for_no_other_leader_of_it() {
    let mut n = lone_node(3, Epochs { accepted: 4, current: 4 });
    n.elected(3);
    let now = n.now;
    n.peer_message(1, Msg::FollowerInfo { accepted_epoch: 4, last_zxid: 0, observer: false }, now);
    n.take_ready();
    let Phase::Leading(l) = &n.phase else { panic!("leads") };
    assert_eq!(l.epoch, 5);
    assert!(!counted(&ack_epoch_to(&mut n, 2, 5)), "server 3 chose epoch 5 for itself");
}

#[test]
fn an_uncounted_epoch_acknowledgement_does_not_establish_the_epoch() {
    let mut n = lone_node(3, Epochs { accepted: 4, current: 4 });
    n.elected(3);
    let now = n.now;
    n.peer_message(1, Msg::FollowerInfo { accepted_epoch: 4, last_zxid: 0, observer: false }, now);
    n.take_ready();
    n.peer_message(
        1,
        Msg::AckEpoch { current_epoch: 4, last_zxid: 0, counted: false, log: LogSummary::default() },
        now,
    );
    n.take_ready();
    assert_eq!(n.epochs.current, 4, "one counted voter (me) of three is no quorum");
    n.peer_message(1, Msg::AckEpoch { current_epoch: 4, last_zxid: 0, counted: true, log: LogSummary::default() }, now);
    n.take_ready();
    assert_eq!(n.epochs.current, 5, "established with server 1's counted acknowledgement");
}

// ---- sync plans: only records the leader lacks are ever removed ---------------------------------

/// A log record (its operation does not matter to the sync plan).
fn rec(zxid: Zxid) -> Txn {
    Txn {
        hdr: crate::txn::TxnHeader { session_id: 0, cxid: 0, zxid, time_ms: 0 },
        op: crate::txn::TxnOp::Error(crate::proto::ErrorCode::NoNode),
    }
}

/// Records `from..=to` (counters) of `epoch`.
fn recs(epoch: u32, from: u32, to: u32) -> Vec<Txn> {
    (from..=to).map(|c| rec(make_zxid(epoch, c))).collect()
}

/// A server just restarted with `log` and an empty snapshot: it applies its log only once a
/// quorum commits it, so its applied state is still the empty tree.
fn restarted_with(log: Vec<Txn>, diff_window: usize) -> Node {
    let init = NodeInit { epochs: Epochs { accepted: 5, current: 4 }, tree: DataTree::new(), sessions: vec![], log };
    let q = QuorumConfig { diff_window, ..qcfg(1, 3, &[]) };
    Node::new(mcfg(1), q, init, Now::from_ms(1000, 1_700_000_000_000))
}

fn summary(base: Zxid, ends: &[Zxid]) -> LogSummary {
    LogSummary { base, epoch_ends: ends.to_vec() }
}

/// The simulator's seed 932350: a restarted leader (log 1.1..1.30 then 2.1..2.18, nothing
/// applied) and a follower whose log ends in an epoch the leader never saw (3.1). A SNAP of
/// the leader's applied state (the empty tree) would make the follower drop every record it
/// held durably, committed ones included, and a crash before the records after the snapshot
/// were synced lost a committed write. The plan truncates after the newest shared record.
#[test]
fn a_follower_ahead_in_an_epoch_the_leader_lacks_is_truncated_to_the_newest_shared_record() {
    let leader = restarted_with([recs(1, 1, 30), recs(2, 1, 18)].concat(), 1000);
    assert_eq!(leader.applied, 0);
    let z = |e, c| make_zxid(e, c);
    // Its log: 1.1..1.26 then 3.1 (epoch 3's leader had not seen epoch 2's records).
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 26), z(3, 1)])), (SyncKind::Trunc, z(1, 26)));
    // The same from a snapshot at 1.26 with only 3.1 in its log.
    assert_eq!(leader.plan_sync(&summary(z(1, 26), &[z(3, 1)])), (SyncKind::Trunc, z(1, 26)));
    // Behind in my history: DIFF from its last record.
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 10)])), (SyncKind::Diff, z(1, 10)));
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 30), z(2, 18)])), (SyncKind::Diff, z(2, 18)));
    assert_eq!(leader.plan_sync(&summary(0, &[])), (SyncKind::Diff, 0));
    // Further than me in an epoch we share: truncated to my last record of it.
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 40)])), (SyncKind::Trunc, z(1, 30)));
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 30), z(2, 25)])), (SyncKind::Trunc, z(2, 18)));
    // Epochs I lack in between and after: the newest shared record still wins.
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 28), z(3, 4), z(4, 9)])), (SyncKind::Trunc, z(1, 28)));
}

/// When the newest shared record lies before my history, only a snapshot can bring the
/// follower over; it is taken at my applied point, which is past that record, so the
/// follower still loses nothing committed that it held.
#[test]
fn a_follower_sharing_only_what_lies_before_my_history_gets_a_snapshot_past_it() {
    let mut leader = restarted_with([recs(1, 1, 30), recs(2, 1, 18)].concat(), 10);
    leader.apply_history(make_zxid(2, 10));
    assert_eq!(leader.applied, make_zxid(2, 10));
    assert!(leader.history_base > make_zxid(1, 30), "history trimmed to the newest 10 applied records");
    let z = |e, c| make_zxid(e, c);
    for theirs in [summary(0, &[z(1, 26), z(3, 1)]), summary(z(1, 5), &[z(1, 29)]), summary(0, &[z(3, 1)])] {
        let (kind, at) = leader.plan_sync(&theirs);
        assert_eq!((kind, at), (SyncKind::Snap, leader.applied), "{theirs:?}");
    }
    // Inside my history window it is still a DIFF or a TRUNC.
    assert_eq!(leader.plan_sync(&summary(0, &[z(1, 30), z(2, 12)])), (SyncKind::Diff, z(2, 12)));
    assert_eq!(leader.plan_sync(&summary(z(2, 9), &[z(2, 12), z(3, 1)])), (SyncKind::Trunc, z(2, 12)));
}

// ---- read-only mode --------------------------------------------------------------------------

/// Opens `conn` on `server` and sends a new session's ConnectRequest with `read_only`: None
/// when the node refused the connection, else the frames it answered (none when it closed it).
fn read_only_connect(c: &mut Cluster, server: ServerId, conn: u64, read_only: Option<bool>) -> Option<Vec<Vec<u8>>> {
    read_only_reconnect(c, server, conn, 0, read_only)
}

fn read_only_reconnect(
    c: &mut Cluster,
    server: ServerId,
    conn: u64,
    session_id: i64,
    read_only: Option<bool>,
) -> Option<Vec<Vec<u8>>> {
    let now = c.now;
    if !c.node(server).open(conn, IpAddr::V4(Ipv4Addr::LOCALHOST), now) {
        return None;
    }
    let req = ConnectRequest { timeout_ms: 400, read_only, ..connect_request(session_id, vec![0; 16]) };
    c.node(server).connect(conn, req, now);
    c.drain(server);
    Some(c.replies.remove(&(server, conn)).unwrap_or_default())
}

/// Kills the other two members of a 3-server read-only cluster whose server 1 holds `/ro`
/// and a global session; returns that session. Server 1 starts looking at `c.now`.
fn lose_the_quorum(c: &mut Cluster) -> i64 {
    c.settle();
    let s = c.session(1, 100);
    assert_eq!(c.call(1, 100, 1, create("/ro")), 0);
    c.crash(2);
    c.crash(3);
    assert_eq!(c.node(1).state(), PeerState::Looking);
    assert!(c.closed.contains(&(1, 100)), "its clients are closed when it starts looking");
    s
}

#[test]
fn a_member_without_a_quorum_serves_read_only_clients_after_the_grace_period() {
    let mut c = Cluster::with_read_only(3, 100);
    let global = lose_the_quorum(&mut c);
    let logged = c.node(1).last_logged();
    // Not before max(2000 ms, tickTime) of looking.
    c.run_for(1990);
    assert!(!c.node(1).read_only());
    assert_eq!(read_only_connect(&mut c, 1, 200, Some(true)), None, "refused while electing");
    c.run_for(10);
    assert!(c.node(1).read_only());
    assert_eq!(c.node(1).state(), PeerState::Looking);
    // A client without the readOnly flag is closed without an answer.
    assert_eq!(read_only_connect(&mut c, 1, 201, Some(false)), Some(vec![]));
    assert_eq!(read_only_connect(&mut c, 1, 202, None), Some(vec![]));
    assert!(c.closed.contains(&(1, 201)) && c.closed.contains(&(1, 202)));
    // A read-only client gets a session of this server's, flagged read-only.
    let frames = read_only_connect(&mut c, 1, 203, Some(true)).expect("accepted");
    let resp = crate::proto::ConnectResponse::decode(&frames[0][4..]).unwrap();
    assert_eq!(resp.read_only, Some(true));
    let ro = resp.session_id;
    assert!(ro != 0 && ro != global);
    assert_eq!(c.call(1, 203, 1, Request::GetData { path: "/ro".into(), watch: false }), 0);
    assert_eq!(c.call(1, 203, 2, Request::Exists { path: "/ro".into(), watch: true }), 0);
    assert_eq!(c.call(1, 203, 3, create("/new")), -119, "NotReadOnly");
    assert_eq!(c.call(1, 203, 4, Request::Sync { path: "/".into() }), -119, "NotReadOnly");
    assert_eq!(c.node(1).last_logged(), logged, "nothing logged");
    // The quorum's session may not resume here.
    assert_eq!(read_only_reconnect(&mut c, 1, 204, global, Some(true)), Some(vec![]));
    assert!(c.closed.contains(&(1, 204)));
    // Read-only sessions expire here (400 ms), unless used.
    let quiet = read_only_connect(&mut c, 1, 205, Some(true)).expect("accepted");
    let quiet = crate::proto::ConnectResponse::decode(&quiet[0][4..]).unwrap().session_id;
    for _ in 0..10 {
        c.run_for(100);
        assert_eq!(c.call(1, 203, -2, Request::Ping), 0);
    }
    assert!(c.closed.contains(&(1, 205)), "the silent session expired");
    assert!(c.node(1).machine().sessions().get(quiet).is_none());
    assert!(!c.closed.contains(&(1, 203)));
    // The others come back: leaving the election ends read-only mode and its connections.
    c.start(2);
    c.start(3);
    c.settle();
    assert!(c.closed.contains(&(1, 203)));
    assert!(!c.node(1).read_only());
    assert!(c.node(1).machine().sessions().get(ro).is_none(), "read-only sessions die with the mode");
    assert!(c.node(1).machine().sessions().is_live(global));
    c.session(1, 300);
    assert_eq!(c.call(1, 300, 1, create("/after")), 0);
}

#[test]
fn the_read_only_grace_period_is_the_tick_time_when_that_is_longer() {
    let mut c = Cluster::with_read_only(3, 3000);
    lose_the_quorum(&mut c);
    c.run_for(2990);
    assert!(!c.node(1).read_only());
    c.run_for(10);
    assert!(c.node(1).read_only());
}

#[test]
fn without_read_only_mode_a_member_without_a_quorum_refuses_every_client() {
    let mut c = Cluster::new(3, &[]);
    lose_the_quorum(&mut c);
    c.run_for(10_000);
    assert!(!c.node(1).read_only());
    assert_eq!(read_only_connect(&mut c, 1, 200, Some(true)), None);
}
