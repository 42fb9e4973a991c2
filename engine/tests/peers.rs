//! The links between servers (`warren::server::peers`): three `Peers` on 127.0.0.1 in one
//! glommio executor. Links come up, carry thousands of messages (a 10 MB snapshot among them)
//! in order, report a stopped server within a second, find it again when it restarts on the
//! same ports, and shrug off strangers and bad frames. With quorum TLS, links come up between
//! servers of one CA and never with a server of another.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement, Task};
use warren::acl::{Acl, Id};
use warren::proto::CreateKind;
use warren::quorum::codec;
use warren::quorum::{LogSummary, Msg, ServerId};
use warren::server::peers::{PeerConfig, PeerEvent, PeerTls, Peers};
use warren::server::resolve::PeerAddr;
use warren::storage::identity::Identity;
use warren::txn::{Txn, TxnHeader, TxnOp};

type Members = Vec<(ServerId, SocketAddr, SocketAddr)>;
/// Members as `server.N` lines give them: a host name or an IP literal, and a port.
type Named = Vec<(ServerId, PeerAddr, PeerAddr)>;

/// A host name that never resolves (RFC 6761 reserves `.invalid`).
const NOWHERE: &str = "warren-peers-test.invalid";

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::INFO).try_init();
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("test body");
}

/// A free port below the ephemeral range, so that no outgoing connection (of this test or
/// another) can take it between now and the moment a `Peers` binds it.
fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    assert!(low > 12000, "ephemeral ports start at {low}");
    let mut taken = TAKEN.lock().unwrap();
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(taken.len());
        let port = 10000 + (h.finish() % (low as u64 - 10000)) as u16;
        if !taken.contains(&port) && StdListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
}

/// `n` members with distinct free ports on 127.0.0.1.
fn members(n: u64) -> Members {
    let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
    (1..=n).map(|id| (id, addr(free_port()), addr(free_port()))).collect()
}

struct Node {
    peers: Rc<Peers>,
    log: Rc<RefCell<Vec<PeerEvent>>>,
    _collector: Task<()>,
}

impl Node {
    /// Starts server `id`, retrying while its ports are still held by a previous instance.
    async fn start(id: ServerId, members: &Members) -> Node {
        Node::start_with(id, members, None).await
    }

    async fn start_with(id: ServerId, members: &Members, tls: Option<PeerTls>) -> Node {
        let named: Named = members.iter().map(|&(id, q, e)| (id, q.into(), e.into())).collect();
        Node::start_named(id, &named, tls).await
    }

    async fn start_named(id: ServerId, members: &Named, tls: Option<PeerTls>) -> Node {
        Node::launch(id, members, tls, Identity::default(), std::path::PathBuf::new()).await
    }

    /// Starts server `id` telling `identity` in its hellos; an adopted ensemble id goes to
    /// `data_dir`.
    async fn start_as(id: ServerId, members: &Members, identity: Identity, data_dir: &std::path::Path) -> Node {
        let named: Named = members.iter().map(|&(id, q, e)| (id, q.into(), e.into())).collect();
        Node::launch(id, &named, None, identity, data_dir.to_path_buf()).await
    }

    async fn launch(
        id: ServerId,
        members: &Named,
        tls: Option<PeerTls>,
        identity: Identity,
        data_dir: std::path::PathBuf,
    ) -> Node {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (peers, rx) = loop {
            let cfg = PeerConfig {
                myid: id,
                members: members.clone(),
                connect_timeout: Duration::from_millis(500),
                tls: tls.clone(),
                identity,
                data_dir: data_dir.clone(),
            };
            match Peers::start(cfg).await {
                Ok(x) => break x,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("start {id}: {e}; retrying");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot start server {id}: {e}"),
            }
        };
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let collector = glommio::spawn_local(async move {
            while let Some(ev) = rx.recv().await {
                l.borrow_mut().push(ev);
            }
        });
        Node { peers, log, _collector: collector }
    }

    fn ups(&self, p: ServerId) -> usize {
        self.log.borrow().iter().filter(|e| **e == PeerEvent::Up(p)).count()
    }

    fn downs(&self, p: ServerId) -> usize {
        self.log.borrow().iter().filter(|e| **e == PeerEvent::Down(p)).count()
    }

    fn messages_from(&self, p: ServerId) -> Vec<Msg> {
        self.log
            .borrow()
            .iter()
            .filter_map(|e| match e {
                PeerEvent::Message(from, m) if *from == p => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Checks that the events alternate Up, Down per peer (from down), with messages only while up.
    fn check_alternation(&self) {
        let mut up = std::collections::HashMap::new();
        for e in self.log.borrow().iter() {
            match e {
                PeerEvent::Up(p) => assert!(!up.insert(*p, true).unwrap_or(false), "Up({p}) twice"),
                PeerEvent::Down(p) => assert!(up.insert(*p, false).unwrap_or(false), "Down({p}) while down"),
                PeerEvent::Message(p, _) => assert!(up.get(p).copied().unwrap_or(false), "Message from down {p}"),
            }
        }
    }
}

async fn wait_until(what: &str, timeout: Duration, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
}

async fn all_up(nodes: &[&Node], timeout: Duration) {
    wait_until("all links up", timeout, || {
        nodes.iter().all(|a| {
            nodes.iter().all(|b| {
                let p = b.peers.myid();
                // Both the state and the event the owner will read (collected asynchronously).
                a.peers.myid() == p || (a.peers.is_up(p) && a.ups(p) > a.downs(p))
            })
        })
    })
    .await;
}

fn txn(zxid: i64, size: usize) -> Txn {
    Txn {
        hdr: TxnHeader { session_id: 0x100, cxid: zxid as i32, zxid, time_ms: 1 },
        op: TxnOp::Create {
            kind: CreateKind::Create,
            path: format!("/n{zxid}"),
            data: Some(vec![zxid as u8; size]),
            acl: vec![Acl { perms: 31, id: Id::new("world", "anyone") }],
            ephemeral_owner: 0,
            parent_cversion: 1,
        },
    }
}

const SNAP_LEN: usize = 10 << 20;

/// The `i`th message of the stream from `from` to `to`.
fn msg(from: ServerId, to: ServerId, i: u32) -> Msg {
    let tag = ((from as i64) << 48) | ((to as i64) << 40) | i as i64;
    match i % 500 {
        _ if i == 1500 => {
            Msg::Snap { zxid: tag, image: (0..SNAP_LEN).map(|k| (k as u64 * 7 + from * 3 + to) as u8).collect() }
        }
        499 => Msg::Txns((0..20).map(|k| txn(tag + k, 100)).collect()),
        99 => Msg::Proposal(txn(tag, 4000)),
        _ => Msg::Ack { zxid: tag },
    }
}

#[test]
fn links_come_up_and_carry_ordered_messages() {
    run(|| async {
        let m = members(3);
        let mut nodes = Vec::new();
        for id in 1..=3 {
            nodes.push(Node::start(id, &m).await);
        }
        let refs: Vec<&Node> = nodes.iter().collect();
        let t = Instant::now();
        all_up(&refs, Duration::from_secs(10)).await;
        eprintln!("all up in {:?}", t.elapsed());
        for a in &nodes {
            for b in &nodes {
                let (i, j) = (a.peers.myid(), b.peers.myid());
                if i != j {
                    assert_eq!(a.ups(j), 1, "server {i} saw Up({j}) once");
                }
            }
        }
        const N: u32 = 3000;
        let t = Instant::now();
        for i in 0..N {
            for a in &nodes {
                for to in 1..=3 {
                    if to != a.peers.myid() {
                        a.peers.send(to, &msg(a.peers.myid(), to, i));
                    }
                }
            }
            if i % 100 == 0 {
                glommio::yield_if_needed().await;
            }
        }
        wait_until("every message delivered", Duration::from_secs(60), || {
            nodes
                .iter()
                .all(|b| (1..=3).all(|from| from == b.peers.myid() || b.messages_from(from).len() == N as usize))
        })
        .await;
        eprintln!("{} messages (six 10 MB snapshots among them) in {:?}", 6 * N, t.elapsed());
        for b in &nodes {
            let to = b.peers.myid();
            for from in (1..=3).filter(|&f| f != to) {
                let got = b.messages_from(from);
                for (i, g) in got.iter().enumerate() {
                    assert!(*g == msg(from, to, i as u32), "message {i} from {from} to {to} differs");
                }
            }
            assert!(b.log.borrow().iter().all(|e| !matches!(e, PeerEvent::Down(_))), "no link went down");
            b.check_alternation();
        }
        for n in &nodes {
            n.peers.shutdown().await;
        }
    });
}

#[test]
fn stopped_peer_goes_down_and_is_found_again() {
    run(|| stop_and_restart_server_3(members(3), Rc::new(|_| None)));
}

/// The same over TLS links, where each link is pumped through the peer TLS executor of both
/// ends: the stopped server's links end on the others' TLS side first, and that must reach
/// their owners as `Down` just as fast. Restarting on the same ports shows that stopping the
/// TLS executor freed the election port.
#[test]
fn stopped_tls_peer_goes_down_and_is_found_again() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "ca");
        let m = members(3);
        let hosts = m.clone();
        let tls: Rc<TlsFor> = Rc::new(move |id| Some(ca.peer_tls(id, &hosts, true, id == 2)));
        stop_and_restart_server_3(m, tls).await;
    });
}

/// Quorum TLS settings for server `id` (None: plaintext).
type TlsFor = dyn Fn(ServerId) -> Option<PeerTls>;

/// Three servers link up; server 3 stops (Down at the others within a second), the others
/// keep talking, server 3 restarts on the same ports and every link carries ordered traffic;
/// a link reset at one end is seen at the other within a second.
async fn stop_and_restart_server_3(m: Members, tls: Rc<TlsFor>) {
    let n1 = Node::start_with(1, &m, tls(1)).await;
    let n2 = Node::start_with(2, &m, tls(2)).await;
    let n3 = Node::start_with(3, &m, tls(3)).await;
    all_up(&[&n1, &n2, &n3], Duration::from_secs(10)).await;

    n3.peers.shutdown().await;
    // Its ports are free once shutdown returns, the election port included (which the peer
    // TLS executor holds under TLS).
    for (what, addr) in [("quorum", m[2].1), ("election", m[2].2)] {
        drop(StdListener::bind(addr).unwrap_or_else(|e| panic!("server 3's {what} port after shutdown: {e}")));
    }
    let took =
        wait_until("Down(3) at servers 1 and 2", Duration::from_secs(5), || n1.downs(3) == 1 && n2.downs(3) == 1).await;
    eprintln!("Down(3) seen after {took:?}");
    assert!(took < Duration::from_secs(1), "Down took {took:?}");
    assert!(!n1.peers.is_up(3) && !n2.peers.is_up(3));
    assert!(n3.log.borrow().iter().all(|e| !matches!(e, PeerEvent::Down(_))), "no events after shutdown");
    drop(n3);
    // Sends to a down peer are dropped quietly.
    n1.peers.send(3, &Msg::Ping);

    // Servers 1 and 2 keep talking meanwhile.
    n1.peers.send(2, &Msg::Commit { zxid: 1 });
    wait_until("1 -> 2 while 3 is down", Duration::from_secs(5), || n2.messages_from(1).len() == 1).await;

    let t = Instant::now();
    let n3 = Node::start_with(3, &m, tls(3)).await;
    all_up(&[&n1, &n2, &n3], Duration::from_secs(10)).await;
    eprintln!("restarted server 3 linked up in {:?}", t.elapsed());
    wait_until("Up(3) reported again", Duration::from_secs(5), || n1.ups(3) == 2 && n2.ups(3) == 2).await;
    for i in 0..100 {
        n1.peers.send(3, &msg(1, 3, i));
        n3.peers.send(1, &msg(3, 1, i));
        n2.peers.send(3, &msg(2, 3, i));
    }
    wait_until("traffic after the restart", Duration::from_secs(10), || {
        n3.messages_from(1).len() == 100 && n1.messages_from(3).len() == 100 && n3.messages_from(2).len() == 100
    })
    .await;
    let want = |f, t| (0..100).map(|i| msg(f, t, i)).collect::<Vec<_>>();
    assert_eq!(n3.messages_from(1), want(1, 3));
    assert_eq!(n1.messages_from(3), want(3, 1));
    assert_eq!(n3.messages_from(2), want(2, 3));
    assert_eq!(n1.downs(2) + n2.downs(1), 0, "the 1-2 link stayed up");

    // Server 1 resets its link to 2 (its owner closes both connections; under TLS that ends
    // the pumps, which close the TLS connections): server 2 sees Down at once, then both
    // find each other again and talk in order.
    n1.peers.reset(2);
    let took = wait_until("Down(1) at server 2 after a reset at 1", Duration::from_secs(5), || n2.downs(1) == 1).await;
    assert!(took < Duration::from_secs(1), "Down took {took:?}");
    all_up(&[&n1, &n2, &n3], Duration::from_secs(10)).await;
    n1.peers.send(2, &Msg::Commit { zxid: 2 });
    wait_until("1 -> 2 after the reset", Duration::from_secs(5), || n2.messages_from(1).len() == 2).await;
    assert_eq!(n2.messages_from(1), vec![Msg::Commit { zxid: 1 }, Msg::Commit { zxid: 2 }]);
    for n in [&n1, &n2, &n3] {
        n.check_alternation();
        n.peers.shutdown().await;
    }
}

/// A peer whose host does not resolve is retried, and never dialled at a wildcard: a dial of
/// `0.0.0.0:port` (what an unresolved name used to become) reaches a listener on that port of
/// any local address, here the trap on 127.0.0.1.
#[test]
fn an_unresolvable_peer_is_retried_never_dialled_at_a_wildcard() {
    run(|| async {
        let trap = StdListener::bind(("127.0.0.1", free_port())).expect("bind the trap");
        trap.set_nonblocking(true).unwrap();
        let trap_port = trap.local_addr().unwrap().port();
        let mut named: Named = members(2).into_iter().map(|(id, q, e)| (id, q.into(), e.into())).collect();
        named.push((3, PeerAddr::new(NOWHERE, free_port()), PeerAddr::new(NOWHERE, trap_port)));
        let n1 = Node::start_named(1, &named, None).await;
        let n2 = Node::start_named(2, &named, None).await;
        all_up(&[&n1, &n2], Duration::from_secs(10)).await;
        // Several attempts each (the backoff reaches 500 ms after about a second).
        glommio::timer::sleep(Duration::from_secs(2)).await;
        assert!(!n1.peers.is_up(3) && !n2.peers.is_up(3));
        match trap.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!("server 3's unresolvable name was dialled as a wildcard (from {from})"),
            Err(e) => panic!("accept on the trap: {e}"),
        }
        n1.peers.send(2, &Msg::Commit { zxid: 7 });
        wait_until("1 -> 2 meanwhile", Duration::from_secs(5), || n2.messages_from(1).len() == 1).await;
        for n in [&n1, &n2] {
            n.check_alternation();
            n.peers.shutdown().await;
        }
    });
}

/// This server's own host does not resolve: the links start (so that the server can come up
/// and wait for its name), nothing is bound, on any address, until it does, and shutting down
/// stops the retries. The same under quorum TLS, where the peer TLS executor runs (dialling)
/// without an election port until then, and shutting down stops it.
#[test]
fn an_unresolvable_own_host_starts_without_binding_a_wildcard() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "ca");
        for tls in [false, true] {
            let (quorum, election) = (free_port(), free_port());
            let m = members(2);
            let mut named: Named = m.iter().map(|&(id, q, e)| (id, q.into(), e.into())).collect();
            named[0] = (1, PeerAddr::new(NOWHERE, quorum), PeerAddr::new(NOWHERE, election));
            let n1 = Node::start_named(1, &named, tls.then(|| ca.peer_tls(1, &m, true, false))).await;
            glommio::timer::sleep(Duration::from_millis(500)).await;
            for port in [quorum, election] {
                // Fails while anything listens on the port, whatever its address.
                StdListener::bind(("0.0.0.0", port))
                    .unwrap_or_else(|e| panic!("port {port} was bound (tls: {tls}): {e}"));
            }
            let t = Instant::now();
            n1.peers.shutdown().await;
            assert!(t.elapsed() < Duration::from_secs(3), "shutdown took {:?} (tls: {tls})", t.elapsed());
            assert!(n1.log.borrow().is_empty(), "no peer came up: {:?}", n1.log.borrow());
        }
    });
}

/// Connects, writes `bytes`, and waits for the server to close the connection.
fn closed_by_server(addr: SocketAddr, bytes: &[u8]) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = StdStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => Ok(t.elapsed()),
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut => {
            Ok(t.elapsed())
        }
        Ok(n) => Err(format!("server wrote {n} bytes")),
        Err(e) => Err(format!("connection not closed: {e}")),
    }
}

/// Runs `f` on a plain thread (blocking sockets) while the executor keeps serving.
async fn off_executor<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    loop {
        match rx.try_recv() {
            Ok(v) => return v,
            Err(mpsc::TryRecvError::Empty) => glommio::timer::sleep(Duration::from_millis(5)).await,
            Err(mpsc::TryRecvError::Disconnected) => panic!("helper thread panicked"),
        }
    }
}

#[test]
fn members_of_another_ensemble_never_link_and_a_member_without_data_joins_and_takes_the_id() {
    run(|| async {
        let m = members(3);
        let recovered = Identity { ensemble: 7, empty: false };
        let n1 = Node::start_as(1, &m, recovered, std::path::Path::new("/nonexistent")).await;
        let n2 = Node::start_as(2, &m, recovered, std::path::Path::new("/nonexistent")).await;
        // Server 3 comes back with the data of the ensemble before the recovery (id 0).
        let old = Identity { ensemble: 0, empty: false };
        let n3 = Node::start_as(3, &m, old, std::path::Path::new("/nonexistent")).await;
        wait_until("1 and 2 up", Duration::from_secs(10), || n1.ups(2) == 1 && n2.ups(1) == 1).await;
        glommio::timer::sleep(Duration::from_millis(1500)).await;
        assert_eq!((n1.ups(3), n2.ups(3), n3.ups(1), n3.ups(2)), (0, 0, 0, 0), "no link with the old member");
        n3.peers.shutdown().await;
        drop(n3);

        // Server 3 with an empty dataDir: it links, and writes the ensemble's id first.
        let dir = tempfile::tempdir().expect("tempdir");
        let n3 = Node::start_as(3, &m, Identity { ensemble: 0, empty: true }, dir.path()).await;
        all_up(&[&n1, &n2, &n3], Duration::from_secs(10)).await;
        let id = std::fs::read_to_string(dir.path().join("ensembleId")).expect("ensembleId written");
        assert_eq!(id, "7");
        n1.peers.send(3, &Msg::Ping);
        wait_until("1 -> 3", Duration::from_secs(5), || n3.messages_from(1) == vec![Msg::Ping]).await;
        for n in [&n1, &n2, &n3] {
            n.peers.shutdown().await;
        }
    });
}

#[test]
fn strangers_are_rejected_without_harm() {
    run(|| async {
        let m = members(3);
        let n1 = Node::start(1, &m).await;
        let n2 = Node::start(2, &m).await;
        let n3 = Node::start(3, &m).await;
        all_up(&[&n1, &n2, &n3], Duration::from_secs(10)).await;
        let (quorum, election) = (m[0].1, m[0].2);
        let results = off_executor(move || {
            let mut zk = Vec::new();
            zk.extend_from_slice(&(-65536i64).to_be_bytes()); // ZooKeeper's election protocol version
            zk.extend_from_slice(&2i64.to_be_bytes());
            zk.extend_from_slice(&[0, 0, 0, 14]);
            zk.extend_from_slice(b"127.0.0.1:3888");
            let hello = |id| {
                let mut h = Vec::new();
                codec::encode_hello(&codec::Hello { myid: id, ensemble: 0, empty: false }, &mut h);
                h
            };
            // A Warren of peer protocol 1 (before the log summary in AckEpoch).
            let mut older_warren = b"WRNPEER1".to_vec();
            older_warren.extend_from_slice(&2u64.to_be_bytes());
            older_warren.extend_from_slice(&[0; 9]); // the rest of a hello's length
            vec![
                ("http", closed_by_server(election, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
                ("zookeeper", closed_by_server(election, &zk)),
                ("unknown id", closed_by_server(election, &hello(99))),
                ("own id", closed_by_server(election, &hello(1))),
                ("silent", closed_by_server(election, b"")),
                ("short hello", closed_by_server(election, b"WRNPEER3")),
                ("older warren", closed_by_server(election, &older_warren)),
                ("quorum port", closed_by_server(quorum, &hello(2))),
            ]
        })
        .await;
        for (what, r) in results {
            let took = r.unwrap_or_else(|e| panic!("{what}: {e}"));
            eprintln!("{what}: closed after {took:?}");
        }
        for n in [&n1, &n2, &n3] {
            assert!(n.log.borrow().iter().all(|e| !matches!(e, PeerEvent::Down(_))), "no link went down");
        }
        for to in [2, 3] {
            n1.peers.send(to, &Msg::LeaderInfo { epoch: 7 });
        }
        let ack = Msg::AckEpoch {
            current_epoch: 7,
            last_zxid: 9,
            counted: true,
            log: LogSummary { base: 3, epoch_ends: vec![9] },
        };
        n2.peers.send(1, &ack);
        wait_until("traffic after the strangers", Duration::from_secs(5), || {
            n2.messages_from(1) == vec![Msg::LeaderInfo { epoch: 7 }]
                && n3.messages_from(1) == vec![Msg::LeaderInfo { epoch: 7 }]
                && n1.messages_from(2) == vec![ack.clone()]
        })
        .await;
        for n in [&n1, &n2, &n3] {
            n.peers.shutdown().await;
        }
    });
}

/// Server 3 is played by this test with blocking sockets: it accepts the links of servers
/// 1 and 2 (checking their hello), dials server 1, sends a good frame, then a bad one.
#[test]
fn bad_frame_closes_the_link_and_it_comes_back() {
    run(|| async {
        let m = members(3);
        let fake = StdListener::bind(m[2].2).expect("bind server 3's election port");
        let stop = Arc::new(AtomicBool::new(false));
        let hellos = Arc::new(AtomicUsize::new(0));
        let eofs = Arc::new(AtomicUsize::new(0));
        // Accepts the links dialled to "server 3" and reads them until they close.
        let acceptor = {
            let (stop, hellos, eofs) = (stop.clone(), hellos.clone(), eofs.clone());
            fake.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut s, _)) = fake.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let (hellos, eofs) = (hellos.clone(), eofs.clone());
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        let mut h = [0u8; codec::HELLO_LEN];
                        if s.read_exact(&mut h).is_ok()
                            && matches!(codec::decode_hello(&h), Ok(codec::Hello { myid: 1 | 2, .. }))
                        {
                            hellos.fetch_add(1, Ordering::SeqCst);
                        }
                        let mut b = vec![0u8; 1 << 16];
                        while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                        eofs.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        };
        let n1 = Node::start(1, &m).await;
        let n2 = Node::start(2, &m).await;
        wait_until("1 and 2 dial server 3", Duration::from_secs(10), || hellos.load(Ordering::SeqCst) >= 2).await;

        let election1 = m[0].2;
        let frame = |msg: &Msg| {
            let mut f = Vec::new();
            codec::encode(msg, &mut f);
            f
        };
        for (round, bad) in [vec![0, 0, 0, 1, 0xee], 0xffff_ffffu32.to_be_bytes().to_vec()].into_iter().enumerate() {
            let ups = round + 1;
            let (to_thread, cmds) = mpsc::channel::<Vec<u8>>();
            let mut hello = Vec::new();
            codec::encode_hello(&codec::Hello { myid: 3, ensemble: 0, empty: false }, &mut hello);
            let ping = frame(&Msg::Ping);
            let dialer = std::thread::spawn(move || {
                let mut s = StdStream::connect(election1).unwrap();
                s.write_all(&hello).unwrap();
                for bytes in cmds {
                    s.write_all(&bytes).unwrap();
                }
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut b = [0u8; 16];
                matches!(s.read(&mut b), Ok(0) | Err(_))
            });
            wait_until("server 1 sees Up(3)", Duration::from_secs(10), || n1.ups(3) == ups).await;
            to_thread.send(ping).unwrap();
            wait_until("Ping from 3", Duration::from_secs(5), || n1.messages_from(3).len() == ups).await;
            let eofs_before = eofs.load(Ordering::SeqCst);
            to_thread.send(bad).unwrap();
            wait_until("Down(3) after a bad frame", Duration::from_secs(5), || n1.downs(3) == ups).await;
            drop(to_thread);
            // Both connections of the pair closed: the one from 1, and the one to 1.
            let closed = off_executor(move || dialer.join().unwrap()).await;
            assert!(closed, "server 1 closed the connection that sent the bad frame");
            wait_until("server 1's link to 3 closed", Duration::from_secs(5), || {
                eofs.load(Ordering::SeqCst) > eofs_before
            })
            .await;
        }
        assert_eq!(n1.messages_from(3), vec![Msg::Ping, Msg::Ping]);
        assert_eq!(n1.downs(2) + n2.downs(1), 0, "the 1-2 link stayed up");
        n1.check_alternation();
        n1.peers.shutdown().await;
        n2.peers.shutdown().await;
        stop.store(true, Ordering::SeqCst);
        off_executor(move || acceptor.join().unwrap()).await;
    });
}

/// A CA whose peer certificates (for 127.0.0.1) are written as PEM key stores in `dir`.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    dir: std::path::PathBuf,
}

impl TestCa {
    fn new(dir: &std::path::Path, name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
        TestCa { issuer, dir }
    }

    /// Server `id`'s quorum TLS settings: its certificate, this CA as trust store.
    fn peer_tls(&self, id: ServerId, members: &Members, dial: bool, unified: bool) -> PeerTls {
        use warren::config::tls::{Store, StoreType, TlsConfig};
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_store = self.dir.join(format!("peer{id}.pem"));
        std::fs::write(&key_store, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        let pem = |location: std::path::PathBuf| Store { location, password: String::new(), kind: StoreType::Pem };
        let cfg = TlsConfig {
            key_store: Some(pem(key_store)),
            trust_store: Some(pem(self.dir.join("ca.pem"))),
            ..TlsConfig::default()
        };
        let localhost = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        PeerTls {
            configs: warren::tls::Reloadable::new(warren::tls::peer_configs(&cfg).unwrap()),
            dial,
            unified,
            hostname_verification: true,
            hosts: members.iter().map(|m| (m.0, localhost.clone())).collect(),
            detection_timeout: Duration::from_millis(500),
        }
    }
}

/// Sends `bytes` and reads until the server closes (what it writes first, a TLS alert say,
/// is skipped); Err when it keeps the connection open for 10 s.
fn eventually_closed(addr: SocketAddr, bytes: &[u8]) -> Result<(), String> {
    let mut s = StdStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("connection not closed: {e}"))
            }
            Err(_) => return Ok(()),
        }
    }
}

#[test]
fn tls_links_come_up_within_one_ca_only() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (ca, rogue) = (TestCa::new(dir.path(), "ca"), TestCa::new(dir.path(), "rogue"));
        let m = members(3);
        // Server 1 TLS only, server 2 unified (dials TLS, accepts both), server 3 another CA.
        let n1 = Node::start_with(1, &m, Some(ca.peer_tls(1, &m, true, false))).await;
        let n2 = Node::start_with(2, &m, Some(ca.peer_tls(2, &m, true, true))).await;
        let n3 = Node::start_with(3, &m, Some(rogue.peer_tls(3, &m, true, false))).await;
        all_up(&[&n1, &n2], Duration::from_secs(10)).await;
        for i in 0..200 {
            n1.peers.send(2, &msg(1, 2, i));
            n2.peers.send(1, &msg(2, 1, i));
        }
        wait_until("200 messages each way over TLS", Duration::from_secs(10), || {
            n2.messages_from(1).len() == 200 && n1.messages_from(2).len() == 200
        })
        .await;
        assert_eq!(n2.messages_from(1), (0..200).map(|i| msg(1, 2, i)).collect::<Vec<_>>());
        // Several reconnection rounds of server 3 (backoff at most 500 ms): never up.
        glommio::timer::sleep(Duration::from_secs(2)).await;
        for (n, p) in [(&n1, 3), (&n2, 3), (&n3, 1), (&n3, 2)] {
            assert!(!n.peers.is_up(p) && n.ups(p) == 0, "server {} saw {p} up", n.peers.myid());
        }
        // A plaintext stranger's hello: server 2 (unified) reads it as plaintext and rejects
        // the unknown id; server 1 (TLS only) fails the handshake. Neither link suffers.
        let mut hello = Vec::new();
        codec::encode_hello(&codec::Hello { myid: 9, ensemble: 0, empty: false }, &mut hello);
        for addr in [m[0].2, m[1].2] {
            let h = hello.clone();
            off_executor(move || eventually_closed(addr, &h)).await.expect("closed by the server");
        }
        n1.peers.send(2, &Msg::Ping);
        wait_until("a message after the strangers", Duration::from_secs(5), || n2.messages_from(1).len() == 201).await;
        n1.check_alternation();
        n2.check_alternation();
    });
}
