//! Scripted scenarios against the pure state machine: connect, write, "fsync", read.

use super::*;
use crate::acl::open_acl_unsafe;
use crate::proto::{CreateKind, CreateRequest, Reader, Stat};
use crate::watch::add_watch_mode;
use std::net::Ipv4Addr;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Harness {
    m: Machine,
    now: Now,
    log: Vec<Txn>,
    /// Frames received per connection, decoded lazily by the tests.
    inbox: HashMap<ConnId, Vec<Vec<u8>>>,
    closed: Vec<ConnId>,
    /// When false, appended txns stay "unsynced" until `sync()`.
    auto_sync: bool,
    /// Each session's password, as its ConnectResponse gave it.
    passwds: HashMap<i64, Vec<u8>>,
    /// Everything the machine emitted, in the order it emitted it.
    trail: Vec<Out>,
    /// Requests a follower's machine handed to its leader, in order.
    forwards: Vec<Forward>,
}

/// One item of a `Ready`, for comparing what two machines emitted.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Append(Txn),
    Send(ConnId, Vec<u8>),
    Close(ConnId),
}

impl Harness {
    fn new() -> Harness {
        Harness::with(MachineConfig::default())
    }

    fn with(cfg: MachineConfig) -> Harness {
        let now = Now::from_ms(1_000, 1_700_000_000_000);
        Harness {
            m: Machine::new(cfg, DataTree::new(), now),
            now,
            log: vec![],
            inbox: HashMap::new(),
            closed: vec![],
            auto_sync: true,
            passwds: HashMap::new(),
            trail: vec![],
            forwards: vec![],
        }
    }

    fn pump(&mut self) {
        loop {
            let r = self.m.take_ready();
            if r.is_empty() {
                return;
            }
            let last = r.appends.last().map(|t| t.hdr.zxid);
            self.trail.extend(r.appends.iter().cloned().map(Out::Append));
            self.trail.extend(r.sends.iter().map(|(c, f)| Out::Send(*c, f.clone())));
            self.trail.extend(r.closes.iter().copied().map(Out::Close));
            self.log.extend(r.appends);
            self.forwards.extend(r.forwards);
            for (c, f) in r.sends {
                self.inbox.entry(c).or_default().push(f);
            }
            self.closed.extend(r.closes);
            if let (Some(z), true) = (last, self.auto_sync) {
                self.m.durable(z, self.now);
            }
        }
    }

    fn sync(&mut self) {
        let z = self.log.last().map(|t| t.hdr.zxid).unwrap_or(0);
        self.m.durable(z, self.now);
        self.pump();
    }

    fn connect(&mut self, conn: ConnId) -> i64 {
        assert!(self.m.open(conn, IP, self.now));
        let req = connect_req(0, 0, vec![0; 16], Some(false));
        self.m.connect(conn, req, self.now);
        self.pump();
        let f = self.take(conn).remove(0);
        let resp = ConnectResponse::decode(&f[4..]).unwrap();
        assert_eq!(resp.timeout_ms, 10_000);
        self.passwds.insert(resp.session_id, resp.passwd);
        resp.session_id
    }

    fn send(&mut self, conn: ConnId, xid: i32, req: Request) {
        self.m.request(conn, RequestHeader { xid, op: req.opcode() }, req, self.now);
        self.pump();
    }

    fn take(&mut self, conn: ConnId) -> Vec<Vec<u8>> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Sends one request and returns (reply header, body reader bytes).
    fn call(&mut self, conn: ConnId, xid: i32, req: Request) -> (ReplyHeader, Vec<u8>) {
        self.send(conn, xid, req);
        let frames = self.take(conn);
        let f = frames.into_iter().find(|f| header(f).xid == xid).expect("reply");
        (header(&f), f[20..].to_vec())
    }
}

/// A ConnectRequest with a 10 s timeout.
fn connect_req(last_zxid_seen: i64, session_id: i64, passwd: Vec<u8>, read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest { protocol_version: 0, last_zxid_seen, timeout_ms: 10_000, session_id, passwd, read_only }
}

fn header(f: &[u8]) -> ReplyHeader {
    let mut r = Reader::new(&f[4..]);
    ReplyHeader { xid: r.i32().unwrap(), zxid: r.i64().unwrap(), err: r.i32().unwrap() }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: open_acl_unsafe(),
        flags,
        ttl_ms: -1,
    })
}

fn stat_of(body: &[u8]) -> Stat {
    Stat::read(&mut Reader::new(body)).unwrap()
}

#[test]
fn session_creation_consumes_a_zxid() {
    let mut h = Harness::new();
    h.connect(1);
    assert_eq!(h.log.len(), 1);
    assert_eq!(h.m.last_zxid(), 1);
    let (hdr, _) = h.call(1, 1, create("/a", 0));
    assert_eq!((hdr.err, hdr.zxid), (0, 2));
}

#[test]
fn write_is_answered_only_after_durable() {
    let mut h = Harness::new();
    h.connect(1);
    h.auto_sync = false;
    h.send(1, 1, create("/a", 0));
    h.send(1, 2, Request::Exists { path: "/a".into(), watch: false });
    assert!(h.take(1).is_empty(), "nothing may be answered before the fsync");
    h.sync();
    let frames = h.take(1);
    assert_eq!(frames.len(), 2);
    assert_eq!(header(&frames[0]).xid, 1);
    // The read waited for its own session's write and sees it.
    assert_eq!((header(&frames[1]).xid, header(&frames[1]).err), (2, 0));
}

#[test]
fn reads_of_other_sessions_do_not_wait() {
    let mut h = Harness::new();
    h.connect(1);
    h.connect(2);
    h.auto_sync = false;
    h.send(1, 1, create("/a", 0));
    let (hdr, _) = h.call(2, 1, Request::Exists { path: "/a".into(), watch: false });
    assert_eq!(hdr.err, ErrorCode::NoNode.code(), "unsynced writes are invisible to others");
}

#[test]
fn failed_write_consumes_a_zxid_and_reports_error() {
    let mut h = Harness::new();
    h.connect(1);
    let (hdr, _) = h.call(1, 1, create("/x/y", 0));
    assert_eq!((hdr.err, hdr.zxid), (ErrorCode::NoNode.code(), 2));
}

#[test]
fn watch_event_precedes_reply_and_fires_once() {
    let mut h = Harness::new();
    h.connect(1);
    h.connect(2);
    h.call(1, 1, create("/w", 0));
    h.call(2, 1, Request::GetData { path: "/w".into(), watch: true });
    h.send(1, 2, Request::SetData { path: "/w".into(), data: Some(b"n".to_vec()), version: -1 });
    let f2 = h.take(2);
    assert_eq!(f2.len(), 1);
    let mut r = Reader::new(&f2[0][4..]);
    assert_eq!(r.i32().unwrap(), xid::NOTIFICATION);
    r.i64().unwrap();
    r.i32().unwrap();
    let ev = WatcherEvent::read(&mut r).unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (event::NODE_DATA_CHANGED, "/w"));
    h.call(1, 3, Request::SetData { path: "/w".into(), data: Some(b"m".to_vec()), version: -1 });
    assert!(h.take(2).is_empty(), "one-shot watch fired twice");
}

#[test]
fn ephemerals_vanish_on_close_and_on_expiry() {
    let mut h = Harness::new();
    let s1 = h.connect(1);
    h.connect(2);
    let (hdr, body) = h.call(1, 1, create("/e", 1));
    assert_eq!(hdr.err, 0);
    let mut r = Reader::new(&body);
    assert_eq!(r.string().unwrap(), "/e");
    assert_eq!(Stat::read(&mut r).unwrap().ephemeral_owner, s1);
    h.call(2, 1, Request::Exists { path: "/e".into(), watch: true });
    let (hdr, _) = h.call(1, 2, Request::CloseSession);
    assert_eq!(hdr.err, 0);
    assert!(h.closed.contains(&1));
    assert!(h.m.tree().get("/e").is_none());
    assert_eq!(h.take(2).len(), 1, "NodeDeleted delivered");

    let s3 = h.connect(3);
    h.call(3, 1, create("/e3", 1));
    h.m.disconnected(3);
    h.now.mono_ms += 30_000;
    h.m.tick(h.now);
    h.pump();
    assert!(h.m.tree().get("/e3").is_none());
    assert!(h.m.sessions().get(s3).is_none());
}

#[test]
fn reconnect_with_wrong_password_is_refused_and_right_one_resumes() {
    let mut h = Harness::new();
    let s = h.connect(1);
    h.m.disconnected(1);
    assert!(h.m.open(2, IP, h.now));
    let bad = connect_req(0, s, vec![1; 16], None);
    h.m.connect(2, bad.clone(), h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(2)[0][4..]).unwrap();
    assert_eq!((resp.session_id, resp.timeout_ms, resp.read_only), (0, 0, None));
    assert!(h.closed.contains(&2));
    assert!(h.m.open(3, IP, h.now));
    h.m.connect(3, ConnectRequest { passwd: h.passwds[&s].clone(), ..bad }, h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(3)[0][4..]).unwrap();
    assert_eq!(resp.session_id, s);
}

/// Session ids are sequential, so a password that could be computed from the id would let
/// anyone take over (or close) another client's session. Another session's password, or the
/// one ZooKeeper would derive, does not open it; the password is in the createSession
/// transaction, so a restart (replay) keeps it.
#[test]
fn session_passwords_are_random_and_survive_replay() {
    let mut h = Harness::new();
    let (a, b) = (h.connect(1), h.connect(2));
    assert_eq!(b, a + 1);
    assert_ne!(h.passwds[&a], h.passwds[&b]);
    assert_eq!(h.passwds[&a].len(), session::PASSWD_LEN);
    for (conn, passwd) in [(3, h.passwds[&b].clone()), (4, vec![0; 16]), (5, zookeeper_password(a))] {
        assert!(h.m.open(conn, IP, h.now));
        h.m.connect(conn, connect_req(0, a, passwd, None), h.now);
        h.pump();
        let resp = ConnectResponse::decode(&h.take(conn)[0][4..]).unwrap();
        assert_eq!(resp.session_id, 0, "session {a:#x} opened with a password that is not its own");
    }
    // A fresh machine that replays the log knows the same password.
    let mut again = Machine::new(MachineConfig::default(), DataTree::new(), h.now);
    for t in &h.log {
        again.replay(t, h.now);
    }
    assert_eq!(again.sessions().get(a).unwrap().passwd.to_vec(), h.passwds[&a]);
}

/// ZooKeeper's password for a session id: java.util.Random seeded with id ^ 0xB3415C00L,
/// 16 bytes from nextBytes. Anyone can compute it; Warren must not accept it.
fn zookeeper_password(id: i64) -> Vec<u8> {
    let mut seed = ((id ^ 0xB341_5C00) ^ 0x5_DEEC_E66D) & ((1 << 48) - 1);
    let mut next_int = || {
        seed = (seed.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        (seed >> 16) as i32
    };
    let mut out = Vec::with_capacity(16);
    while out.len() < 16 {
        let mut r = next_int();
        for _ in 0..4.min(16 - out.len()) {
            out.push(r as u8);
            r >>= 8;
        }
    }
    out
}

#[test]
fn client_ahead_of_server_is_refused() {
    let mut h = Harness::new();
    assert!(h.m.open(1, IP, h.now));
    let req = connect_req(99, 0, vec![0; 16], None);
    h.m.connect(1, req, h.now);
    h.pump();
    assert!(h.closed.contains(&1));
    assert!(h.take(1).is_empty());
}

#[test]
fn connection_limits_are_the_shells() {
    // maxClientCnxns and maxCnxns are enforced when a connection is accepted, before it sends
    // a byte (server/admission.rs); whatever reaches the machine is already admitted.
    let mut h = Harness::new();
    for c in 0..100 {
        assert!(h.m.open(c, IP, h.now));
    }
}

#[test]
fn sequential_and_stat_rules() {
    let mut h = Harness::new();
    h.connect(1);
    h.call(1, 1, create("/abc", 0));
    let (_, b) = h.call(1, 2, create("/abc/aaa", 2));
    assert_eq!(Reader::new(&b).string().unwrap(), "/abc/aaa0000000000");
    let (_, b) = h.call(1, 3, create("/abc/aaa", 2));
    assert_eq!(Reader::new(&b).string().unwrap(), "/abc/aaa0000000001");
    let (_, b) = h.call(1, 4, Request::Exists { path: "/abc".into(), watch: false });
    let s = stat_of(&b);
    assert_eq!((s.cversion, s.num_children, s.pzxid), (2, 2, 4));
}

#[test]
fn setwatches_fires_missed_changes() {
    let mut h = Harness::new();
    h.connect(1);
    h.call(1, 1, create("/a", 0));
    let zxid_before = h.m.last_zxid();
    h.call(1, 2, Request::SetData { path: "/a".into(), data: Some(vec![]), version: -1 });
    let sw = SetWatches {
        relative_zxid: zxid_before,
        data: vec!["/a".into(), "/gone".into()],
        exist: vec!["/a".into(), "/later".into()],
        ..Default::default()
    };
    let frames = {
        h.send(1, xid::SET_WATCHES, Request::SetWatches(sw));
        h.take(1)
    };
    // NodeDataChanged(/a), NodeDeleted(/gone), NodeCreated(/a), then the reply.
    assert_eq!(frames.len(), 4);
    assert_eq!(header(&frames[3]).xid, xid::SET_WATCHES);
    h.call(1, 3, create("/later", 0));
}

/// The Java client sends setWatches (101) and setWatches2 (105) with an ordinary xid and
/// drops the connection when the reply carries another; the C client and kazoo send -8.
/// Either way the reply echoes the request's xid and has no body.
#[test]
fn setwatches_reply_echoes_the_request_xid() {
    let mut h = Harness::new();
    h.connect(1);
    for (xid, persistent) in [(7, false), (8, true), (xid::SET_WATCHES, false), (xid::SET_WATCHES, true)] {
        let sw = SetWatches {
            relative_zxid: h.m.last_zxid(),
            exist: vec!["/nothing".into()],
            // A persistent watch makes it a setWatches2.
            persistent: if persistent { vec!["/nothing".into()] } else { vec![] },
            ..Default::default()
        };
        h.send(1, xid, Request::SetWatches(sw));
        let frames = h.take(1);
        assert_eq!(frames.len(), 1);
        assert_eq!(header(&frames[0]), ReplyHeader { xid, zxid: h.m.last_zxid(), err: 0 });
        assert_eq!(frames[0].len(), 4 + 16, "setWatches replies carry no body");
    }
}

/// ZooKeeper answers addWatch (106) with the reply header and an ErrorResponse{err: 0}: the
/// Java client reads those 4 bytes, and a frame without them ends its connection.
#[test]
fn add_watch_reply_carries_an_error_response_body() {
    let mut h = Harness::new();
    h.connect(1);
    for mode in [add_watch_mode::PERSISTENT, add_watch_mode::PERSISTENT_RECURSIVE] {
        h.send(1, 5 + mode, Request::AddWatch { path: "/".into(), mode });
        let f = h.take(1).remove(0);
        assert_eq!(header(&f).err, 0);
        assert_eq!(&f[..4], &20u32.to_be_bytes(), "frame length: 16-byte header + 4-byte err");
        assert_eq!(&f[20..], &0i32.to_be_bytes());
    }
    // A bad mode is a MarshallingError with a bare header, as in ZooKeeper 3.8.
    h.send(1, 9, Request::AddWatch { path: "/".into(), mode: 7 });
    let f = h.take(1).remove(0);
    assert_eq!(header(&f).err, ErrorCode::MarshallingError.code());
    assert_eq!(f.len(), 4 + 16);
}

#[test]
fn auth_failure_closes_and_digest_acl_protects() {
    let mut h = Harness::new();
    h.connect(1);
    h.send(1, xid::AUTH, Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"u:p".to_vec() });
    assert_eq!(header(&h.take(1)[0]).err, 0);
    let acl = vec![crate::acl::Acl { perms: 31, id: crate::acl::Id { scheme: "auth".into(), id: "".into() } }];
    let req = Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/sec".into(),
        data: Some(b"s".to_vec()),
        acl,
        flags: 0,
        ttl_ms: -1,
    });
    assert_eq!(h.call(1, 1, req).0.err, 0);
    h.connect(2);
    let (hdr, _) = h.call(2, 1, Request::GetData { path: "/sec".into(), watch: false });
    assert_eq!(hdr.err, ErrorCode::NoAuth.code());
    h.send(2, xid::AUTH, Request::Auth { auth_type: 0, scheme: "bogus".into(), auth: vec![] });
    assert_eq!(header(&h.take(2)[0]).err, ErrorCode::AuthFailed.code());
    assert!(h.closed.contains(&2));
}

#[test]
fn containers_are_swept_once_emptied() {
    let mut h = Harness::with(MachineConfig { container_check_interval_ms: 5_000, ..MachineConfig::default() });
    h.connect(1);
    let mut req = create("/c", 4);
    if let Request::Create(c) = &mut req {
        c.kind = CreateKind::Container;
    }
    h.call(1, 1, req);
    h.now.mono_ms += 6_000;
    h.m.tick(h.now);
    h.pump();
    assert!(h.m.tree().get("/c").is_some(), "never-used container stays");
    h.call(1, 2, create("/c/x", 0));
    h.call(1, 3, Request::Delete { path: "/c/x".into(), version: -1 });
    h.now.mono_ms += 6_000;
    h.m.tick(h.now);
    h.pump();
    assert!(h.m.tree().get("/c").is_none());
}

/// Observed on ZooKeeper 3.8.0: create /u/c, delete it → cversion 2; the next sequential child
/// is s0000000001 (suffixes count creates) and cversion then reads 3. A session close that
/// removes an ephemeral child behaves the same.
#[test]
fn sequence_suffix_counts_creates_while_cversion_counts_changes() {
    let mut h = Harness::new();
    h.connect(1);
    h.call(1, 1, create("/u", 0));
    h.call(1, 2, create("/u/c", 0));
    h.call(1, 3, Request::Delete { path: "/u/c".into(), version: -1 });
    let (_, b) = h.call(1, 4, Request::Exists { path: "/u".into(), watch: false });
    assert_eq!(stat_of(&b).cversion, 2);
    let (_, b) = h.call(1, 5, create("/u/s", 2));
    assert_eq!(Reader::new(&b).string().unwrap(), "/u/s0000000001");
    let (_, b) = h.call(1, 6, Request::Exists { path: "/u".into(), watch: false });
    assert_eq!(stat_of(&b).cversion, 3);

    h.call(1, 7, create("/t", 0));
    h.connect(2);
    h.call(2, 1, create("/t/e", 1));
    h.call(2, 2, Request::CloseSession);
    let (_, b) = h.call(1, 8, Request::Exists { path: "/t".into(), watch: false });
    assert_eq!(stat_of(&b).cversion, 2);
    let (_, b) = h.call(1, 9, create("/t/s", 2));
    assert_eq!(Reader::new(&b).string().unwrap(), "/t/s0000000001");
}

/// A watcher that may not READ a node is not told of its changes (ZooKeeper 3.8 with the
/// CVE-2024-23944 fix), and its one-shot watch is used up all the same.
#[test]
fn watch_events_need_read_permission() {
    let mut h = Harness::new();
    h.connect(1);
    h.send(1, xid::AUTH, Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"u:p".to_vec() });
    h.take(1);
    let acl = vec![crate::acl::Acl { perms: 31, id: crate::acl::Id { scheme: "auth".into(), id: "".into() } }];
    let req = Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/p".into(),
        data: None,
        acl,
        flags: 0,
        ttl_ms: -1,
    });
    assert_eq!(h.call(1, 1, req).0.err, 0);
    h.connect(2);
    h.call(2, 1, Request::Exists { path: "/p".into(), watch: true });
    h.call(1, 2, Request::Delete { path: "/p".into(), version: -1 });
    assert!(h.take(2).is_empty(), "no event without READ");
    assert_eq!(h.m.watches().watch_count(), 0, "the watch was consumed");
}

#[test]
fn null_data_stays_null() {
    let mut h = Harness::new();
    h.connect(1);
    let req = Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/n".into(),
        data: None,
        acl: open_acl_unsafe(),
        flags: 0,
        ttl_ms: -1,
    });
    h.call(1, 1, req);
    let (_, body) = h.call(1, 2, Request::GetData { path: "/n".into(), watch: false });
    let mut r = Reader::new(&body);
    assert_eq!(r.opt_buffer().unwrap(), None);
    assert_eq!(Stat::read(&mut r).unwrap().data_length, 0);
}

#[test]
fn failed_log_drops_unacknowledged_writes_and_serves_reads() {
    let mut h = Harness::new();
    let s = h.connect(1);
    h.connect(3);
    h.call(1, 1, create("/kept", 0));
    h.auto_sync = false;
    h.send(1, 2, create("/lost", 0));
    h.m.log_failed("fdatasync: EIO");
    h.pump();
    assert!(h.take(1).is_empty(), "the unsynced write is never acknowledged");
    assert!(h.closed.contains(&1));
    assert!(h.m.tree().get("/lost").is_none());
    assert!(h.m.tree().get("/kept").is_some());
    // An existing session: a write is answered at once with NotReadOnly, and the ping and
    // the read behind it are answered too (a write waiting for the log used to hold them).
    h.send(3, 4, Request::SetData { path: "/kept".into(), data: Some(vec![1]), version: -1 });
    h.send(3, xid::PING, Request::Ping);
    h.send(3, 5, Request::Exists { path: "/kept".into(), watch: false });
    let frames = h.take(3);
    let hdrs: Vec<(i32, i32)> = frames.iter().map(|f| (header(f).xid, header(f).err)).collect();
    assert_eq!(hdrs, vec![(4, ErrorCode::NotReadOnly.code()), (xid::PING, 0), (5, 0)]);
    // The session whose write was lost can still resume (nothing needs logging for that),
    // and learns the server is read-only.
    assert!(h.m.open(2, IP, h.now));
    h.m.connect(2, connect_req(0, s, h.passwds[&s].clone(), Some(false)), h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(2)[0][4..]).unwrap();
    assert_eq!((resp.session_id, resp.read_only), (s, Some(true)));
    // A new session is this server's alone (nothing can log it): it reads, cannot write,
    // and closes without a transaction.
    assert!(h.m.open(4, IP, h.now));
    h.m.connect(4, connect_req(0, 0, vec![0; 16], Some(true)), h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(4)[0][4..]).unwrap();
    assert!(resp.session_id != 0 && resp.read_only == Some(true));
    let (r, _) = h.call(4, 1, Request::GetData { path: "/kept".into(), watch: false });
    assert_eq!(r.err, 0);
    let (r, _) = h.call(4, 2, create("/new", 0));
    assert_eq!(r.err, ErrorCode::NotReadOnly.code());
    let appended = h.log.len();
    let (r, _) = h.call(4, 3, Request::CloseSession);
    assert_eq!(r.err, 0);
    assert!(h.closed.contains(&4));
    assert!(h.m.sessions().get(resp.session_id).is_none());
    assert_eq!(h.log.len(), appended, "nothing was appended to the failed log");
}

/// A client may pipeline its auth packet right behind the ConnectRequest; the auth reply must
/// not overtake the ConnectResponse (which waits for the session's fsync).
#[test]
fn auth_sent_before_the_session_is_durable_is_answered_after_it() {
    let mut h = Harness::new();
    h.auto_sync = false;
    assert!(h.m.open(1, IP, h.now));
    let req = connect_req(0, 0, vec![0; 16], Some(false));
    h.m.connect(1, req, h.now);
    h.send(1, xid::AUTH, Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"u:p".to_vec() });
    assert!(h.take(1).is_empty());
    h.sync();
    let frames = h.take(1);
    assert_eq!(frames.len(), 2);
    assert!(ConnectResponse::decode(&frames[0][4..]).is_ok());
    assert_eq!(header(&frames[1]).xid, xid::AUTH);
}

/// warren.maxWatchesPerSession: a request that would take a session past it closes the
/// connection with a log line instead of being answered; other sessions are not affected.
/// (One session set a million watches, 653 MB, before there was a bound.)
#[test]
fn watches_per_session_are_bounded() {
    let mut h = Harness::with(MachineConfig { max_watches_per_session: 3, ..MachineConfig::default() });
    h.connect(1);
    h.connect(2);
    h.call(1, 1, create("/w", 0));
    for (xid, path) in [(2, "/w"), (3, "/x"), (4, "/y")] {
        let (r, _) = h.call(1, xid, Request::Exists { path: path.into(), watch: true });
        assert!(r.err == 0 || r.err == ErrorCode::NoNode.code());
    }
    assert_eq!(h.m.watches().count_of(1), 3);
    // Reads without a watch are still answered.
    let (r, _) = h.call(1, 5, Request::GetData { path: "/w".into(), watch: false });
    assert_eq!(r.err, 0);
    h.send(1, 6, Request::GetData { path: "/w".into(), watch: true });
    assert!(h.take(1).is_empty(), "the request past the bound is not answered");
    assert!(h.closed.contains(&1));
    assert_eq!(h.m.watches().count_of(1), 0, "its watches went with its connection");
    // A setWatches past the bound (a persistent watch counts two) is refused the same way.
    let sw = SetWatches {
        relative_zxid: h.m.last_zxid(),
        exist: vec!["/a".into()],
        persistent: vec!["/b".into()],
        ..Default::default()
    };
    h.send(2, 1, Request::SetWatches(sw.clone()));
    assert_eq!(header(&h.take(2)[0]).err, 0, "three watches fit");
    h.send(2, 2, Request::AddWatch { path: "/c".into(), mode: add_watch_mode::PERSISTENT });
    assert!(h.closed.contains(&2));
}

fn sasl_users() -> MachineConfig {
    let users: HashMap<String, String> = [("bob".to_string(), "pw".to_string())].into_iter().collect();
    MachineConfig { sasl_users: Some(std::sync::Arc::new(users)), ..MachineConfig::default() }
}

/// Runs a DIGEST-MD5 exchange as `user`/`pw` on `conn`; returns the last reply's header.
fn sasl_login(h: &mut Harness, conn: ConnId, user: &str, pw: &str) -> ReplyHeader {
    let (hdr, body) = h.call(conn, 1, Request::Sasl { token: vec![] });
    assert_eq!((hdr.err, hdr.zxid), (0, 0));
    let challenge = String::from_utf8(Reader::new(&body).buffer().unwrap()).unwrap();
    let (resp, rspauth) = crate::sasl::tests::client_response(&challenge, user, pw, "c1");
    let (hdr, body) = h.call(conn, 2, Request::Sasl { token: resp.into_bytes() });
    if hdr.err == 0 {
        assert_eq!(
            Reader::new(&body).buffer().unwrap(),
            rspauth.into_bytes(),
            "the server proves it knows the password"
        );
    }
    hdr
}

#[test]
fn sasl_without_jaas_answers_an_empty_token() {
    let mut h = Harness::new();
    h.connect(1);
    let (hdr, body) = h.call(1, 1, Request::Sasl { token: b"x".to_vec() });
    assert_eq!((hdr.err, hdr.zxid), (0, 0));
    assert_eq!(Reader::new(&body).opt_buffer().unwrap(), None);
}

#[test]
fn sasl_digest_md5_adds_a_sasl_id_that_acls_honour() {
    let mut h = Harness::with(sasl_users());
    h.connect(1);
    assert_eq!(sasl_login(&mut h, 1, "bob", "pw").err, 0);
    let acl = vec![crate::acl::Acl { perms: 31, id: crate::acl::Id { scheme: "sasl".into(), id: "bob".into() } }];
    let req = Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/bob".into(),
        data: Some(b"s".to_vec()),
        acl,
        flags: 0,
        ttl_ms: -1,
    });
    assert_eq!(h.call(1, 3, req).0.err, 0);
    assert_eq!(h.call(1, 4, Request::GetData { path: "/bob".into(), watch: false }).0.err, 0);
    h.connect(2);
    let (hdr, _) = h.call(2, 1, Request::GetData { path: "/bob".into(), watch: false });
    assert_eq!(hdr.err, ErrorCode::NoAuth.code());
}

#[test]
fn sasl_wrong_password_fails_and_closes() {
    let mut h = Harness::with(sasl_users());
    h.connect(1);
    assert_eq!(sasl_login(&mut h, 1, "bob", "guess").err, ErrorCode::AuthFailed.code());
    assert!(h.closed.contains(&1));
}

#[test]
fn enforced_auth_refuses_requests_until_authenticated() {
    let cfg = MachineConfig { enforce_auth_schemes: vec!["sasl".into()], ..sasl_users() };
    let mut h = Harness::with(cfg.clone());
    h.connect(1);
    let (hdr, _) = h.call(1, 1, Request::GetData { path: "/".into(), watch: false });
    assert_eq!(hdr.err, ErrorCode::SessionClosedRequireSaslAuth.code());
    assert!(h.closed.contains(&1));
    h.connect(2);
    assert_eq!(sasl_login(&mut h, 2, "bob", "pw").err, 0);
    assert_eq!(h.call(2, 3, Request::GetData { path: "/".into(), watch: false }).0.err, 0);
    // A failed exchange under sasl enforcement answers SessionClosedRequireSaslAuth.
    h.connect(3);
    assert_eq!(sasl_login(&mut h, 3, "bob", "nope").err, ErrorCode::SessionClosedRequireSaslAuth.code());
    // Digest enforcement: addauth first, then requests pass.
    let mut h =
        Harness::with(MachineConfig { enforce_auth_schemes: vec!["digest".into()], ..MachineConfig::default() });
    h.connect(1);
    h.send(1, xid::AUTH, Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"u:p".to_vec() });
    assert_eq!(header(&h.take(1)[0]).err, 0);
    assert_eq!(h.call(1, 1, Request::Exists { path: "/".into(), watch: false }).0.err, 0);
}

/// The online backup's tap: the paths changed by every transaction applied to the tree between
/// start_tap and take_tap, and only those (a write logged but not yet durable is not applied;
/// a closing session's ephemerals are changed by its close).
#[test]
fn backup_tap_notes_exactly_the_paths_applied_meanwhile() {
    let mut h = Harness::new();
    h.connect(1);
    let s2 = h.connect(2);
    h.send(1, 1, create("/before", 0));
    h.send(2, 1, create("/before/eph", 1));
    h.m.start_tap();
    h.send(1, 2, create("/during", 0));
    h.call(2, 2, Request::CloseSession);
    h.auto_sync = false;
    h.send(1, 3, create("/not-yet-durable", 0));
    let (paths, txns) = h.m.take_tap();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_eq!(paths, ["/", "/before", "/before/eph", "/during"], "session {s2:#x}");
    assert_eq!(txns, 2);
    h.sync();
    assert!(h.m.take_tap().0.is_empty(), "the tap stops at take_tap");
}

/// Online restore: every connection closed, writes in flight forgotten, watches dropped, the
/// backup's tree and sessions installed; a backed-up session resumes with its password, a
/// client that saw the old state's zxids is not refused, and the next write follows `zxid`.
#[test]
fn restore_replaces_the_state_and_closes_every_connection() {
    let mut h = Harness::new();
    let kept = h.connect(1);
    h.call(1, 1, create("/backed-up", 0));
    let image = crate::snap::encode_tree(h.m.tree(), &[], h.m.last_zxid());
    let backup_tree = crate::snap::decode(&crate::snap::aligned_copy(&image)).unwrap().tree;
    let backup_sessions = h.m.session_records();
    let other = h.connect(2);
    h.call(2, 1, create("/later", 0));
    h.call(2, 2, Request::GetData { path: "/backed-up".into(), watch: true });
    h.auto_sync = false;
    h.send(1, 2, create("/in-flight", 0));
    let seen = h.m.last_prepared_zxid();
    let zxid = 1 << 32;
    h.m.restore(backup_tree, &backup_sessions, zxid, h.now);
    h.pump();
    assert!(h.closed.contains(&1) && h.closed.contains(&2));
    assert_eq!(h.m.last_zxid(), zxid);
    assert!(h.m.tree().get("/backed-up").is_some());
    assert!(h.m.tree().get("/later").is_none() && h.m.tree().get("/in-flight").is_none());
    assert!(h.m.sessions().get(kept).is_some() && h.m.sessions().get(other).is_none());
    // The in-flight write's "fsync" arrives late: it is not applied to the restored state.
    h.sync();
    assert!(h.m.tree().get("/in-flight").is_none());
    h.auto_sync = true;
    // The kept session resumes, though its client saw zxids of the old state.
    assert!(h.m.open(3, IP, h.now));
    h.m.connect(3, connect_req(seen, kept, h.passwds[&kept].clone(), None), h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(3)[0][4..]).unwrap();
    assert_eq!(resp.session_id, kept);
    let (hdr, _) = h.call(3, 1, Request::SetData { path: "/backed-up".into(), data: None, version: -1 });
    assert_eq!((hdr.err, hdr.zxid), (0, zxid + 1));
    assert!(h.take(2).is_empty() && h.take(3).iter().all(|f| header(f).xid != xid::NOTIFICATION));
}

/// A leader expires a session, but its closeSession never commits (the leader loses its
/// quorum; the next leader's sync truncates it). When this server leads again the session is
/// live: its client's writes are served, not answered SessionExpired while its reads go on,
/// and it still expires when its client goes away (found by tests/chaos, seed 1).
#[test]
fn an_expiry_that_never_commits_leaves_the_session_live() {
    use crate::txn::make_zxid;
    let mut h = Harness::new();
    h.m.stop_serving();
    h.m.start_leading(make_zxid(1, 1), h.now);
    let s = h.connect(1);
    h.m.disconnected(1);
    h.auto_sync = false;
    h.now.mono_ms += 30_000;
    h.m.tick(h.now);
    h.pump();
    assert!(matches!(h.log.last().map(|t| &t.op), Some(TxnOp::CloseSession)), "the expiry was proposed");
    h.m.stop_serving();
    h.log.pop();
    h.m.start_leading(make_zxid(2, 1), h.now);
    h.auto_sync = true;
    assert!(h.m.open(2, IP, h.now));
    h.m.connect(2, connect_req(0, s, h.passwds[&s].clone(), None), h.now);
    h.pump();
    let resp = ConnectResponse::decode(&h.take(2)[0][4..]).unwrap();
    assert_eq!(resp.session_id, s, "the session resumes");
    let (hdr, _) = h.call(2, 1, create("/after", 0));
    assert_eq!(hdr.err, 0, "a write of the resumed session");
    h.m.disconnected(2);
    h.now.mono_ms += 30_000;
    h.m.tick(h.now);
    h.pump();
    assert!(h.m.sessions().get(s).is_none(), "it expires once its client is gone");
}

/// How a scenario closes the connections left open.
type Ending = fn(&mut Harness);

/// Many sessions, each on its own connection, watching the same paths (past the few watchers
/// a path keeps in a vector, so the watch table holds them in a hash map) and owning
/// ephemerals; a change fans out to all of them; half the sessions expire in one tick; then
/// `end` closes the remaining connections. Returns everything the machine emitted and the
/// session table as a snapshot stores it.
fn fan_out_scenario(end: Ending) -> (Vec<Out>, Vec<SessionRecord>) {
    const CONNS: u64 = 64;
    let mut h = Harness::with(MachineConfig { password_seed: Some(7), myid: 1, ..MachineConfig::default() });
    let conns: Vec<ConnId> = (0..CONNS).map(|i| 1 + i * 7919 % 1009).collect();
    for &c in &conns {
        h.connect(c);
    }
    h.call(conns[0], 1, create("/dir", 0));
    for (i, &c) in conns.iter().enumerate() {
        h.send(c, 2, Request::Exists { path: "/shared".into(), watch: true });
        h.send(c, 3, Request::GetChildren { path: "/dir".into(), watch: true });
        h.send(c, 4, Request::AddWatch { path: "/".into(), mode: add_watch_mode::PERSISTENT_RECURSIVE });
        h.send(c, 5, create(&format!("/dir/e{i}"), 1));
    }
    h.send(conns[0], 6, create("/shared", 0));
    h.send(conns[1], 7, Request::SetData { path: "/shared".into(), data: None, version: -1 });
    // Half the sessions stay active; the others expire together.
    h.now.mono_ms += 5_000;
    for &c in conns.iter().step_by(2) {
        h.send(c, 8, Request::Ping);
    }
    h.now.mono_ms += 6_000;
    h.m.tick(h.now);
    h.pump();
    assert_eq!(h.m.sessions().len(), CONNS as usize / 2, "half the sessions expired");
    let records = h.m.session_records();
    end(&mut h);
    h.pump();
    assert_eq!(h.closed.len(), CONNS as usize, "every connection closed");
    (h.trail, records)
}

/// The machine's outputs depend on its inputs alone, never on the iteration order of its
/// hash maps (std gives every map its own random seed, so two identical machines built in one
/// process iterate differently): the deterministic simulator replays a seed exactly only if
/// this holds.
#[test]
fn outputs_do_not_depend_on_hash_order() {
    let ends: [(&str, Ending); 2] = [
        ("stop_serving", |h| h.m.stop_serving()),
        ("restore", |h| {
            let zxid = h.m.last_prepared_zxid() + 1;
            h.m.restore(DataTree::new(), &[], zxid, h.now)
        }),
    ];
    for (name, end) in ends {
        let (first, first_records) = fan_out_scenario(end);
        for _ in 0..4 {
            let (trail, records) = fan_out_scenario(end);
            assert_eq!(trail.len(), first.len(), "{name}: as many outputs");
            if let Some(i) = (0..trail.len()).find(|&i| trail[i] != first[i]) {
                panic!("{name}: output {i} of {} differs: {:?} vs {:?}", trail.len(), first[i], trail[i]);
            }
            assert_eq!(records, first_records, "{name}: session records in the same order");
        }
    }
}

// ---- read-only mode (an ensemble member without a quorum, `readonlymode.enabled`) ----------

/// A server with a global session (conn 1) and `/ro` holding "v", then put in read-only mode
/// as an ensemble member without a quorum is (`stop_serving`, then `start_read_only`): the
/// global session's connection is closed by the stop.
fn read_only_harness() -> (Harness, i64) {
    let mut h = Harness::new();
    let global = h.connect(1);
    h.call(1, 1, create("/ro", 0));
    h.m.stop_serving();
    h.pump();
    assert!(h.closed.contains(&1));
    assert!(!h.m.read_only());
    h.m.start_read_only();
    assert_eq!(h.m.role(), Role::ReadOnly);
    assert!(h.m.read_only());
    (h, global)
}

/// Opens `conn` and sends a ConnectRequest; returns the frames it got and whether it was closed.
fn ro_connect(
    h: &mut Harness,
    conn: ConnId,
    session_id: i64,
    passwd: Vec<u8>,
    read_only: Option<bool>,
) -> Vec<Vec<u8>> {
    assert!(h.m.open(conn, IP, h.now), "read-only mode takes connections");
    h.m.connect(conn, connect_req(0, session_id, passwd, read_only), h.now);
    h.pump();
    h.take(conn)
}

/// A new read-only session on `conn`: (session id, password).
fn ro_session(h: &mut Harness, conn: ConnId) -> (i64, Vec<u8>) {
    let frames = ro_connect(h, conn, 0, vec![0; 16], Some(true));
    assert_eq!(frames.len(), 1, "one ConnectResponse");
    let resp = ConnectResponse::decode(&frames[0][4..]).unwrap();
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.read_only, Some(true), "the reply's readOnly byte says read-only");
    assert_eq!(resp.timeout_ms, 10_000);
    (resp.session_id, resp.passwd)
}

#[test]
fn read_only_mode_refuses_clients_that_are_not_read_only() {
    let (mut h, _) = read_only_harness();
    let appended = h.log.len();
    for (conn, flag) in [(2, Some(false)), (3, None)] {
        let frames = ro_connect(&mut h, conn, 0, vec![0; 16], flag);
        assert!(frames.is_empty(), "{flag:?}: no answer");
        assert!(h.closed.contains(&conn), "{flag:?}: connection closed");
    }
    assert_eq!(h.log.len(), appended);
    // Outside read-only mode the same requests are served.
    let mut h = Harness::new();
    let frames = ro_connect(&mut h, 2, 0, vec![0; 16], Some(false));
    assert_eq!(ConnectResponse::decode(&frames[0][4..]).unwrap().read_only, Some(false));
}

#[test]
fn read_only_mode_creates_local_sessions_never_logged() {
    let (mut h, global) = read_only_harness();
    let appended = h.log.len();
    let zxid = h.m.last_zxid();
    let (s, _) = ro_session(&mut h, 2);
    assert_ne!(s, global);
    assert!(h.m.sessions().is_live(s));
    assert_eq!(h.log.len(), appended, "a read-only session is never logged");
    assert_eq!(h.m.last_zxid(), zxid, "nor consumes a zxid");
    // A client that saw a later zxid than this server's is refused, as in every mode.
    assert!(h.m.open(4, IP, h.now));
    h.m.connect(4, connect_req(zxid + 1, 0, vec![0; 16], Some(true)), h.now);
    h.pump();
    assert!(h.take(4).is_empty() && h.closed.contains(&4), "a client ahead of the server is refused");
}

#[test]
fn read_only_mode_answers_every_write_and_sync_not_read_only() {
    let (mut h, _) = read_only_harness();
    ro_session(&mut h, 2);
    let appended = h.log.len();
    let zxid = h.m.last_zxid();
    let kinds = [CreateKind::Create, CreateKind::Create2, CreateKind::Container, CreateKind::Ttl];
    let mut writes: Vec<Request> = kinds
        .into_iter()
        .map(|kind| {
            Request::Create(CreateRequest {
                kind,
                path: "/new".into(),
                data: Some(vec![]),
                acl: open_acl_unsafe(),
                flags: if kind == CreateKind::Container { 4 } else { 0 },
                ttl_ms: if kind == CreateKind::Ttl { 1000 } else { -1 },
            })
        })
        .collect();
    writes.extend([
        Request::Delete { path: "/ro".into(), version: -1 },
        Request::DeleteContainer { path: "/ro".into() },
        Request::SetData { path: "/ro".into(), data: Some(b"w".to_vec()), version: -1 },
        Request::SetAcl { path: "/ro".into(), acl: open_acl_unsafe(), version: -1 },
        Request::Unimplemented(op::RECONFIG),
        Request::Multi(vec![MultiOp::Check { path: "/ro".into(), version: -1 }]),
        Request::Check { path: "/ro".into(), version: -1 },
        Request::Sync { path: "/ro".into() },
    ]);
    for (i, req) in writes.into_iter().enumerate() {
        let opcode = req.opcode();
        let (hdr, body) = h.call(2, 10 + i as i32, req);
        assert_eq!(hdr.err, ErrorCode::NotReadOnly.code(), "opcode {opcode}");
        assert_eq!(hdr.zxid, zxid, "opcode {opcode}: the reply carries the server's last zxid");
        assert!(body.is_empty(), "opcode {opcode}");
    }
    assert!(!h.closed.contains(&2), "the connection stays open");
    assert_eq!(h.log.len(), appended, "nothing was logged");
    assert_eq!(h.m.tree().get("/ro").unwrap().data, Some(b"v".to_vec()));
    assert!(h.m.tree().get("/new").is_none());
}

#[test]
fn read_only_mode_serves_reads_from_the_applied_state() {
    let (mut h, _) = read_only_harness();
    ro_session(&mut h, 2);
    let zxid = h.m.last_zxid();
    let reads = [
        Request::GetData { path: "/ro".into(), watch: true },
        Request::Exists { path: "/ro".into(), watch: true },
        Request::GetChildren { path: "/".into(), watch: true },
        Request::GetChildren2 { path: "/".into(), watch: false },
        Request::GetAcl { path: "/ro".into() },
        Request::MultiRead(vec![MultiOp::GetData { path: "/ro".into() }]),
        Request::GetAllChildrenNumber { path: "/".into() },
        Request::AddWatch { path: "/ro".into(), mode: add_watch_mode::PERSISTENT },
        Request::SetWatches(SetWatches { relative_zxid: zxid, data: vec!["/ro".into()], ..SetWatches::default() }),
        Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"u:p".to_vec() },
        Request::WhoAmI,
    ];
    for (i, req) in reads.into_iter().enumerate() {
        let opcode = req.opcode();
        let (hdr, _) = h.call(2, 10 + i as i32, req);
        assert_eq!((hdr.err, hdr.zxid), (0, if opcode == op::AUTH { 0 } else { zxid }), "opcode {opcode}");
    }
    let (hdr, body) = h.call(2, 30, Request::GetData { path: "/ro".into(), watch: false });
    assert_eq!(hdr.err, 0);
    let mut r = Reader::new(&body);
    assert_eq!(r.buffer().unwrap(), b"v".to_vec());
    h.send(2, xid::PING, Request::Ping);
    assert_eq!(header(&h.take(2)[0]).xid, xid::PING);
    // closeSession of a read-only session: answered, no transaction, the session is gone.
    let appended = h.log.len();
    let s = h.m.connections().find(|c| c.0 == 2).unwrap().2;
    let (hdr, _) = h.call(2, 40, Request::CloseSession);
    assert_eq!(hdr.err, 0);
    assert!(h.closed.contains(&2));
    assert!(h.m.sessions().get(s).is_none());
    assert_eq!(h.log.len(), appended);
}

#[test]
fn read_only_mode_refuses_global_sessions_and_resumes_its_own() {
    let (mut h, global) = read_only_harness();
    // The quorum's session: the connection is closed without an answer (ZooKeeper 3.8's
    // "Refusing global session reconnection in RO mode"), right password or not.
    let passwd = h.passwds[&global].clone();
    assert!(ro_connect(&mut h, 2, global, passwd, Some(true)).is_empty());
    assert!(h.closed.contains(&2));
    assert!(h.m.sessions().is_live(global), "the session lives on for the quorum");
    // An unknown session is told it expired.
    let frames = ro_connect(&mut h, 3, 0x7777, vec![0; 16], Some(true));
    let resp = ConnectResponse::decode(&frames[0][4..]).unwrap();
    assert_eq!((resp.session_id, resp.timeout_ms), (0, 0));
    assert!(h.closed.contains(&3));
    // A read-only session resumes on a new connection, still read-only.
    let (s, passwd) = ro_session(&mut h, 4);
    let frames = ro_connect(&mut h, 5, s, passwd, Some(true));
    let resp = ConnectResponse::decode(&frames[0][4..]).unwrap();
    assert_eq!((resp.session_id, resp.read_only), (s, Some(true)));
    assert!(h.closed.contains(&4), "the old connection of the session is closed");
}

#[test]
fn read_only_sessions_expire_and_end_with_read_only_mode() {
    let (mut h, global) = read_only_harness();
    let (short, _) = ro_session(&mut h, 2);
    let (kept, _) = ro_session(&mut h, 3);
    // Session 3 keeps pinging; session 2 goes quiet.
    for _ in 0..12 {
        h.now.mono_ms += 1_000;
        h.send(3, xid::PING, Request::Ping);
        h.m.tick(h.now);
        h.pump();
    }
    assert!(h.m.sessions().get(short).is_none(), "a silent read-only session expires");
    assert!(h.closed.contains(&2));
    assert!(h.m.sessions().is_live(kept));
    assert!(h.m.sessions().is_live(global), "only the leader expires the quorum's sessions");
    let appended = h.log.len();
    // Leaving read-only mode (the node leaves the election): connections closed, its
    // sessions forgotten, no client accepted until the node serves again.
    h.m.stop_serving();
    h.pump();
    assert!(h.closed.contains(&3));
    assert!(h.m.sessions().get(kept).is_none());
    assert!(h.m.sessions().is_live(global));
    assert!(!h.m.read_only());
    assert!(!h.m.open(9, IP, h.now));
    assert_eq!(h.log.len(), appended);
}

// ---- local sessions (`localSessionsEnabled`, `localSessionsUpgradingEnabled`) --------------

/// An ensemble member with local sessions on, serving as `role` (the leader, myid 1, or a
/// follower, myid 2).
fn local_harness(role: Role, upgrading: bool) -> Harness {
    use crate::txn::make_zxid;
    let myid = if role == Role::Leader { 1 } else { 2 };
    let cfg =
        MachineConfig { myid, local_sessions: true, local_sessions_upgrading: upgrading, ..MachineConfig::default() };
    let mut h = Harness::with(cfg);
    h.m.stop_serving();
    match role {
        Role::Leader => h.m.start_leading(make_zxid(1, 1), h.now),
        _ => h.m.start_following(),
    }
    h
}

/// The leader's machine takes what the follower forwarded; what it appends is committed on
/// both (the follower applies it as a committed transaction and answers its client).
fn relay(follower: &mut Harness, leader: &mut Harness) {
    for f in std::mem::take(&mut follower.forwards) {
        leader.m.forwarded(2, f, leader.now);
    }
    let before = leader.log.len();
    leader.pump();
    for txn in leader.log[before..].to_vec() {
        follower.m.apply_committed(&txn, follower.now);
    }
    follower.pump();
}

#[test]
fn a_local_session_is_never_logged_and_closes_where_it_lives() {
    let mut h = local_harness(Role::Leader, false);
    let s = h.connect(1);
    assert!(h.log.is_empty(), "no createSession transaction");
    assert_eq!(crate::session::server_of(s), 1, "made here: myid in the top byte");
    assert_eq!(h.m.local_session_count(), 1);
    assert!(h.m.session_records().is_empty(), "a local session is never in a snapshot");
    // Writes that need no global session are logged as the session's.
    let (hdr, _) = h.call(1, 1, create("/p", 0));
    assert_eq!(hdr.err, 0);
    assert_eq!(h.log.last().unwrap().hdr.session_id, s);
    // An ephemeral create without upgrading: EphemeralOnLocalSession at once, nothing logged;
    // in a multi, that op fails.
    let logged = h.log.len();
    let (hdr, _) = h.call(1, 2, create("/e", 1));
    assert_eq!(hdr.err, ErrorCode::EphemeralOnLocalSession.code());
    assert_eq!(h.log.len(), logged);
    let ephemeral_in_multi = Request::Multi(vec![MultiOp::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/m".into(),
        data: Some(vec![]),
        acl: open_acl_unsafe(),
        flags: 3,
        ttl_ms: -1,
    })]);
    let (hdr, body) = h.call(1, 3, ephemeral_in_multi);
    assert_eq!(hdr.err, 0, "a multi is answered op by op");
    let mut r = Reader::new(&body);
    let code = ErrorCode::EphemeralOnLocalSession.code();
    assert_eq!((r.i32().unwrap(), r.bool().unwrap(), r.i32().unwrap()), (op::ERROR, false, code));
    assert_eq!(r.i32().unwrap(), code);
    assert!(h.m.tree().get("/m").is_none());
    let logged = h.log.len(); // the failed multi is logged, as ZooKeeper logs it
                              // closeSession: answered here, no transaction, the session is gone.
    let (hdr, _) = h.call(1, 4, Request::CloseSession);
    assert_eq!(hdr.err, 0);
    assert!(h.closed.contains(&1));
    assert!(h.m.sessions().get(s).is_none());
    assert_eq!((h.log.len(), h.m.local_session_count()), (logged, 0));
}

#[test]
fn a_local_session_becomes_global_before_its_first_ephemeral() {
    let mut h = local_harness(Role::Leader, true);
    let s = h.connect(1);
    let (hdr, _) = h.call(1, 1, create("/e", 1));
    assert_eq!(hdr.err, 0);
    let ops: Vec<&TxnOp> = h.log.iter().map(|t| &t.op).collect();
    assert!(matches!(ops[..], [TxnOp::CreateSession { .. }, TxnOp::Create { .. }]), "{ops:?}");
    assert!(h.log.iter().all(|t| t.hdr.session_id == s));
    assert_eq!(h.m.local_session_count(), 0);
    assert_eq!(h.m.session_records().iter().map(|r| r.id).collect::<Vec<_>>(), vec![s]);
    // A global session now: its expiry is a transaction that removes its ephemeral.
    h.m.disconnected(1);
    h.now.mono_ms += 30_000;
    h.m.tick(h.now);
    h.pump();
    assert!(matches!(h.log.last().unwrap().op, TxnOp::CloseSession));
    assert!(h.m.tree().get("/e").is_none());
}

#[test]
fn a_followers_local_session_writes_through_the_leader_and_upgrades_in_order() {
    let mut leader = local_harness(Role::Leader, true);
    let mut f = local_harness(Role::Follower, true);
    let s = f.connect(7);
    assert!(f.forwards.is_empty(), "no createSession goes to the leader");
    assert!(f.m.take_touched().is_empty(), "nor any touch of it");
    // A plain write: the leader takes it from a session it does not know (another member's
    // local session), as ZooKeeper's leader does.
    f.send(7, 1, create("/p", 0));
    relay(&mut f, &mut leader);
    assert_eq!(header(&f.take(7)[0]).err, 0);
    assert!(leader.m.sessions().get(s).is_none());
    // An ephemeral: the session is upgraded first, on the same link, then the create.
    f.send(7, 2, create("/p/e", 1));
    let kinds: Vec<&ForwardOp> = f.forwards.iter().map(|x| &x.op).collect();
    assert!(matches!(kinds[..], [ForwardOp::CreateSession { .. }, ForwardOp::Write { .. }]), "{kinds:?}");
    relay(&mut f, &mut leader);
    let replies = f.take(7);
    assert_eq!(replies.len(), 1, "one answer, the create's");
    assert_eq!((header(&replies[0]).xid, header(&replies[0]).err), (2, 0));
    assert!(leader.m.sessions().is_live(s), "global now");
    assert_eq!(f.m.local_session_count(), 0);
    assert_eq!(f.m.take_touched(), vec![s], "the leader hears it is alive");
    assert_eq!(f.m.tree().get("/p/e").unwrap().stat.ephemeral_owner, s);
}

#[test]
fn a_leader_refuses_what_a_local_session_it_does_not_know_cannot_do() {
    let mut leader = local_harness(Role::Leader, true);
    let write = |req: Request, sid: i64| {
        let framed = req.encode(5);
        Forward { session_id: sid, cxid: 5, op: ForwardOp::Write { frame: framed[4..].to_vec(), auth: vec![] } }
    };
    let foreign = crate::session::initial_session_id(2, 1_700_000_000_000);
    let ours = crate::session::initial_session_id(1, 1_700_000_000_000) + 99;
    leader.m.forwarded(2, write(create("/e", 1), foreign), leader.now);
    leader.m.forwarded(2, write(create("/p", 0), ours), leader.now);
    leader.pump();
    let errs: Vec<&TxnOp> = leader.log.iter().map(|t| &t.op).collect();
    assert!(
        matches!(errs[..], [TxnOp::Error(ErrorCode::SessionExpired), TxnOp::Error(ErrorCode::SessionExpired)]),
        "an ephemeral needs a global session; an unknown session made here has expired: {errs:?}"
    );
}

#[test]
fn local_sessions_expire_where_they_live_and_end_when_serving_stops() {
    let mut f = local_harness(Role::Follower, false);
    let quiet = f.connect(1);
    let kept = f.connect(2);
    for _ in 0..12 {
        f.now.mono_ms += 1_000;
        f.send(2, xid::PING, Request::Ping);
        f.m.tick(f.now);
        f.pump();
    }
    assert!(f.m.sessions().get(quiet).is_none(), "a silent local session expires on its server");
    assert!(f.closed.contains(&1));
    assert!(f.forwards.is_empty(), "without a word to the leader");
    assert!(f.m.sessions().is_live(kept));
    f.m.stop_serving();
    f.pump();
    assert!(f.m.sessions().get(kept).is_none(), "local sessions end with the role that made them");
    assert_eq!(f.m.local_session_count(), 0);
    // Back as a follower, the old id is unknown: its client is told it expired.
    f.m.start_following();
    assert!(f.m.open(3, IP, f.now));
    f.m.connect(3, connect_req(0, kept, vec![0; 16], None), f.now);
    f.pump();
    let resp = ConnectResponse::decode(&f.take(3)[0][4..]).unwrap();
    assert_eq!((resp.session_id, resp.timeout_ms), (0, 0));
}

/// A follower loses its leader while a session's upgrade is in flight: the createSession may
/// never commit, so the session is dropped with the local ones, and comes back only if the
/// createSession does commit (applied when the follower syncs with the next leader).
#[test]
fn an_upgrade_cut_short_by_an_election_leaves_no_phantom_session() {
    let mut leader = local_harness(Role::Leader, true);
    let mut f = local_harness(Role::Follower, true);
    let s = f.connect(7);
    f.send(7, 1, create("/e", 1));
    assert_eq!(f.forwards.len(), 2, "createSession and the create, not yet sent");
    assert!(f.m.session_records().is_empty(), "not in a snapshot while the upgrade is in flight");
    f.m.stop_serving();
    f.pump();
    assert!(f.m.sessions().get(s).is_none(), "dropped: its createSession may never commit");
    // The next leader has it after all (it had been replicated): applying it brings it back.
    for fw in std::mem::take(&mut f.forwards) {
        leader.m.forwarded(2, fw, leader.now);
    }
    leader.pump();
    f.m.start_following();
    for txn in leader.log.clone() {
        f.m.apply_committed(&txn, f.now);
    }
    f.pump();
    assert!(f.m.sessions().is_live(s));
    assert_eq!(f.m.session_records().iter().map(|r| r.id).collect::<Vec<_>>(), vec![s]);
    assert_eq!(f.m.tree().get("/e").unwrap().stat.ephemeral_owner, s);
}
