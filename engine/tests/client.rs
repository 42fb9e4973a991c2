//! Warren driven by the Rust `zookeeper-client` crate, a complete client we did not write, plus
//! raw-socket checks (our codec) for what that client hides: frame order, handshakes with
//! chosen passwords, per-op multi errors.
//!
//! Expected behaviour is ZooKeeper 3.8's (see /work/shared/ZOOKEEPER_FACTS.md); where a case
//! was checked against a real ZooKeeper 3.8.0 server the comment says so.

mod common;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{create2_req, create_req, is_closed, Frame, Raw, Server};
use warren::proto::{ErrorCode, MultiOp, MultiResult, Request, WatcherEvent};
use zk::{Acl, Acls, AddWatchMode, AuthId, CreateMode, EventType, Permission};
use zookeeper_client as zk;

/// Upper bound for anything a test awaits; far above what a healthy run needs.
const TIMEOUT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

async fn client(s: &Server) -> zk::Client {
    connect(s, zk::Client::connector().with_session_timeout(Duration::from_secs(10))).await
}

async fn connect(s: &Server, c: zk::Connector) -> zk::Client {
    match within("connect", c.connect(&s.connect_string())).await {
        Ok(c) => c,
        Err(e) => panic!("connect: {e}\n{}", s.log()),
    }
}

fn open() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn mode(m: CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(Acls::anyone_all())
}

/// The 10-digit suffix of a sequential node's name.
fn seq_suffix(name: &str) -> i64 {
    let digits = &name[name.len() - 10..];
    assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{name}: suffix is not 10 digits");
    digits.parse().unwrap()
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn next_event(w: &mut zk::PersistentWatcher) -> (EventType, String) {
    let ev = within("persistent watch event", w.changed()).await;
    (ev.event_type, ev.path)
}

// ---- create modes, errors, stats --------------------------------------------------------

#[tokio::test]
async fn create_in_every_mode() {
    let s = Server::start(&["extendedTypesEnabled=true"]);
    let c = client(&s).await;
    let sid = c.session_id().0;
    c.create("/modes", b"", &open()).await.unwrap();

    let (st, _) = c.create("/modes/p", b"p", &open()).await.unwrap();
    assert_eq!(st.ephemeral_owner, 0, "persistent");
    let (st, _) = c.create("/modes/e", b"e", &mode(CreateMode::Ephemeral)).await.unwrap();
    assert_eq!(st.ephemeral_owner, sid, "ephemeral owner is the session");
    let (st, n) = c.create("/modes/ps-", b"", &mode(CreateMode::PersistentSequential)).await.unwrap();
    assert_eq!((st.ephemeral_owner, n.into_i64()), (0, 2));
    let (st, n) = c.create("/modes/es-", b"", &mode(CreateMode::EphemeralSequential)).await.unwrap();
    assert_eq!((st.ephemeral_owner, n.into_i64()), (sid, 3));
    let (st, _) = c.create("/modes/c", b"", &mode(CreateMode::Container)).await.unwrap();
    assert_eq!(st.ephemeral_owner, 0, "a container shows no owner");
    let ttl = open().with_ttl(Duration::from_secs(3600));
    let (st, _) = c.create("/modes/t", b"", &ttl).await.unwrap();
    assert_eq!(st.ephemeral_owner, 0, "a TTL node shows no owner");
    let ttl_seq = mode(CreateMode::PersistentSequential).with_ttl(Duration::from_secs(3600));
    let (st, n) = c.create("/modes/ts-", b"", &ttl_seq).await.unwrap();
    assert_eq!((st.ephemeral_owner, n.into_i64()), (0, 6));

    let mut names = c.list_children("/modes").await.unwrap();
    names.sort();
    assert_eq!(names, ["c", "e", "es-0000000003", "p", "ps-0000000002", "t", "ts-0000000006"]);
    // A sequential node may end in '/': the name is the number alone.
    let (_, n) = c.create("/modes/", b"", &mode(CreateMode::PersistentSequential)).await.unwrap();
    assert_eq!(n.into_i64(), 7);
    assert!(c.check_stat("/modes/0000000007").await.unwrap().is_some());
    let (data, _) = c.get_data("/modes/e").await.unwrap();
    assert_eq!(data, b"e");
}

#[tokio::test]
async fn errors_of_create_get_set_delete() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let (st0, _) = c.create("/a", b"one", &open()).await.unwrap();
    assert_eq!(c.create("/a", b"", &open()).await.unwrap_err(), zk::Error::NodeExists);
    assert_eq!(c.create("/x/y", b"", &open()).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.get_data("/x").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.set_data("/x", b"", None).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.delete("/x", None).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.get_children("/x").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.get_acl("/x").await.unwrap_err(), zk::Error::NoNode);
    assert!(c.check_stat("/x").await.unwrap().is_none());

    assert_eq!(c.set_data("/a", b"x", Some(7)).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(c.delete("/a", Some(3)).await.unwrap_err(), zk::Error::BadVersion);
    let st1 = c.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(st1.version, 1);
    let st2 = c.set_data("/a", b"three", None).await.unwrap();
    assert_eq!(st2.version, 2, "no expected version (-1) matches any");

    c.create("/a/b", b"", &open()).await.unwrap();
    assert_eq!(c.delete("/a", None).await.unwrap_err(), zk::Error::NotEmpty);
    assert_eq!(c.delete("/a", Some(2)).await.unwrap_err(), zk::Error::NotEmpty);

    c.create("/a/e", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    assert_eq!(c.create("/a/e/c", b"", &open()).await.unwrap_err(), zk::Error::NoChildrenForEphemerals);
    assert_eq!(
        c.create("/a/e/s-", b"", &mode(CreateMode::EphemeralSequential)).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    assert_eq!(c.create("/a/e", b"", &open()).await.unwrap_err(), zk::Error::NodeExists, "exists before ephemeral");

    // The failures changed nothing.
    let (data, st) = c.get_data("/a").await.unwrap();
    assert_eq!((data.as_slice(), st.version, st.czxid, st.num_children), (&b"three"[..], 2, st0.czxid, 2));
    c.delete("/a/b", Some(0)).await.unwrap();
    c.delete("/a/e", None).await.unwrap();
    c.delete("/a", Some(2)).await.unwrap();
    assert!(c.check_stat("/a").await.unwrap().is_none());
}

#[tokio::test]
async fn stat_fields_follow_zookeeper_rules() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let before = wall_ms();
    let (p, _) = c.create("/p", b"12345", &open()).await.unwrap();
    assert_eq!((p.czxid, p.mzxid, p.pzxid), (p.czxid, p.czxid, p.czxid), "all three zxids at creation");
    assert_eq!(p.ctime, p.mtime);
    assert!((before - 1000..=wall_ms() + 1000).contains(&p.ctime), "ctime is wall-clock ms: {}", p.ctime);
    assert_eq!((p.version, p.cversion, p.aversion, p.ephemeral_owner), (0, 0, 0, 0));
    assert_eq!((p.data_length, p.num_children), (5, 0));

    let (child, _) = c.create("/p/c", b"", &open()).await.unwrap();
    assert!(child.czxid > p.czxid);
    assert_eq!(child.data_length, 0);
    let after_create = c.check_stat("/p").await.unwrap().unwrap();
    assert_eq!((after_create.cversion, after_create.num_children, after_create.pzxid), (1, 1, child.czxid));
    assert_eq!((after_create.version, after_create.mzxid), (0, p.mzxid), "a child does not touch the data");

    let set = c.set_data("/p", b"ab", None).await.unwrap();
    assert!(set.mzxid > child.czxid);
    assert!(set.mtime >= p.mtime);
    assert_eq!((set.version, set.data_length, set.czxid, set.ctime, set.pzxid), (1, 2, p.czxid, p.ctime, child.czxid));

    c.delete("/p/c", None).await.unwrap();
    let after_delete = c.check_stat("/p").await.unwrap().unwrap();
    assert_eq!((after_delete.cversion, after_delete.num_children), (2, 0), "a delete counts in cversion");
    assert!(after_delete.pzxid > set.mzxid, "pzxid moves to the delete");
    assert_eq!(after_delete.mzxid, set.mzxid);

    let acl_stat = c.set_acl("/p", &Acls::anyone_all(), Some(0)).await.unwrap();
    assert_eq!((acl_stat.aversion, acl_stat.version, acl_stat.mzxid), (1, 1, set.mzxid), "setACL only bumps aversion");
    let (later, _) = c.create("/q", b"", &open()).await.unwrap();
    assert!(later.czxid > after_delete.pzxid, "zxids keep increasing");

    // Empty data has length 0 and getData agrees with exists.
    let (data, st) = c.get_data("/q").await.unwrap();
    assert!(data.is_empty());
    assert_eq!(Some(st), c.check_stat("/q").await.unwrap());
    let (_, root) = c.get_children("/").await.unwrap();
    assert_eq!(root.num_children, 3, "/p, /q and /zookeeper");
}

#[tokio::test]
async fn sequential_names_are_ten_digits_and_never_repeat() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    c.create("/seq", b"", &open()).await.unwrap();
    let mut last = -1;
    let mut seen = Vec::new();
    for i in 0..12 {
        let m = if i % 3 == 2 { CreateMode::EphemeralSequential } else { CreateMode::PersistentSequential };
        let prefix = if i % 2 == 0 { "/seq/a-" } else { "/seq/b-" };
        let (_, n) = c.create(prefix, b"", &mode(m)).await.unwrap();
        let name = format!("{}{n}", &prefix[5..]);
        assert_eq!(seq_suffix(&name), n.into_i64());
        assert!(n.into_i64() > last, "{name} after {last}");
        last = n.into_i64();
        seen.push(name.clone());
        if i % 4 == 1 {
            c.delete(&format!("/seq/{name}"), None).await.unwrap();
            seen.pop();
        }
    }
    let mut listed = c.list_children("/seq").await.unwrap();
    listed.sort_by_key(|n| seq_suffix(n));
    assert_eq!(listed, seen);
    // Both prefixes share the parent's counter.
    assert_eq!(seq_suffix(&listed[0]), 0);
}

#[tokio::test]
async fn children_listing_stat_and_counts() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let other = client(&s).await;
    c.create("/l", b"", &open()).await.unwrap();
    for n in ["b", "a", "c"] {
        c.create(&format!("/l/{n}"), b"", &open()).await.unwrap();
    }
    c.create("/l/a/x", b"", &open()).await.unwrap();
    c.create("/l/e1", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    c.create("/l/a/e2", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    other.create("/l/theirs", b"", &mode(CreateMode::Ephemeral)).await.unwrap();

    let (mut names, st) = c.get_children("/l").await.unwrap();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "e1", "theirs"]);
    assert_eq!(Some(st), c.check_stat("/l").await.unwrap());
    assert_eq!(st.num_children, 5);
    assert!(c.list_children("/l/b").await.unwrap().is_empty());
    assert_eq!(c.count_descendants_number("/l").await.unwrap(), 7);
    assert_eq!(c.count_descendants_number("/l/a").await.unwrap(), 2);
    let mut mine = c.list_ephemerals("/l").await.unwrap();
    mine.sort();
    assert_eq!(mine, ["/l/a/e2", "/l/e1"], "getEphemerals lists this session's only");
    assert_eq!(c.list_ephemerals("/l/a").await.unwrap(), ["/l/a/e2"]);
    assert_eq!(other.list_ephemerals("/").await.unwrap(), ["/l/theirs"]);
}

// ---- watches ------------------------------------------------------------------------------

#[tokio::test]
async fn one_shot_watches_report_the_right_event() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let w = client(&s).await;

    let (none, exists) = w.check_and_watch_stat("/n").await.unwrap();
    assert!(none.is_none());
    c.create("/n", b"", &open()).await.unwrap();
    let ev = within("exists watch", exists.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/n"));

    let (_, exists) = w.check_and_watch_stat("/n").await.unwrap();
    let (_, _, data) = w.get_and_watch_data("/n").await.unwrap();
    let (_, _, children) = w.get_and_watch_children("/n").await.unwrap();
    // A child create fires the child watch only: the data watch's first event is the set.
    c.create("/n/k", b"", &open()).await.unwrap();
    let ev = within("child watch", children.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/n"));
    c.set_data("/n", b"v", None).await.unwrap();
    let ev = within("data watch", data.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDataChanged, "/n"));
    let ev = within("exists watch on an existing node", exists.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);

    let (_, _, children) = w.get_and_watch_children("/n").await.unwrap();
    c.delete("/n/k", None).await.unwrap();
    assert_eq!(within("child delete", children.changed()).await.event_type, EventType::NodeChildrenChanged);

    let (_, _, data) = w.get_and_watch_data("/n").await.unwrap();
    let (_, _, children) = w.get_and_watch_children("/n").await.unwrap();
    c.delete("/n", None).await.unwrap();
    let ev = within("data watch on delete", data.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/n"));
    let ev = within("child watch on delete", children.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/n"));
}

#[test]
fn a_one_shot_watch_fires_once() {
    let s = Server::start(&[]);
    let mut w = Raw::connect(s.addr);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/o", b"", 0)).err(), 0);
    // Two watches of the same kind from one connection are one watch.
    assert_eq!(w.call(1, &Request::GetData { path: "/o".into(), watch: true }).err(), 0);
    assert_eq!(w.call(2, &Request::Exists { path: "/o".into(), watch: true }).err(), 0);
    for (i, v) in [b"1", b"2", b"3"].iter().enumerate() {
        let r = c.call(2 + i as i32, &Request::SetData { path: "/o".into(), data: Some(v.to_vec()), version: -1 });
        assert_eq!(r.err(), 0);
    }
    let events = w.ping_barrier();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].event_type, events[0].path.as_str()), (3, "/o"));
    assert_eq!(events[0].state, 3, "SyncConnected");
    // getData on a missing node sets no watch (exists does).
    assert_eq!(w.call(3, &Request::GetData { path: "/missing".into(), watch: true }).err(), -101);
    assert_eq!(w.call(4, &Request::Exists { path: "/missing2".into(), watch: true }).err(), -101);
    assert_eq!(c.call(9, &create_req("/missing", b"", 0)).err(), 0);
    assert_eq!(c.call(10, &create_req("/missing2", b"", 0)).err(), 0);
    let events = w.ping_barrier();
    let got: Vec<(i32, &str)> = events.iter().map(|e| (e.event_type, e.path.as_str())).collect();
    assert_eq!(got, [(1, "/missing2")]);
}

/// Reads frames until the reply to `xid`; returns every frame in arrival order.
fn frames_until(r: &mut Raw, xid: i32) -> Vec<Frame> {
    let mut out = Vec::new();
    loop {
        let f = r.next_frame().expect("connection open");
        let done = matches!(&f, Frame::Reply(rep) if rep.hdr.xid == xid);
        out.push(f);
        if done {
            return out;
        }
    }
}

fn check_event_precedes_reply(extra: &[&str]) {
    let s = Server::start(extra);
    let mut setup = Raw::connect(s.addr);
    assert_eq!(setup.call(1, &create_req("/w", b"0", 0)).err(), 0);
    for round in 0..15 {
        // New connections each round, so with several executors they land on different ones.
        let mut a = Raw::connect(s.addr);
        let mut b = Raw::connect(s.addr);
        // Another session's write: A hears the event before a read that shows the new data.
        assert_eq!(a.call(1, &Request::GetData { path: "/w".into(), watch: true }).err(), 0);
        let v = format!("b{round}");
        let r = b.call(1, &Request::SetData { path: "/w".into(), data: Some(v.clone().into_bytes()), version: -1 });
        assert_eq!(r.err(), 0);
        a.send(2, &Request::GetData { path: "/w".into(), watch: false });
        let frames = frames_until(&mut a, 2);
        assert_eq!(frames.len(), 2, "round {round}: one event, then the reply: {frames:?}");
        assert!(matches!(&frames[0], Frame::Event(WatcherEvent { event_type: 3, .. })), "{frames:?}");
        let Frame::Reply(rep) = &frames[1] else { unreachable!() };
        assert_eq!(rep.data_and_stat().0, Some(v.into_bytes()));

        // The session's own write: the event comes before the write's reply.
        assert_eq!(a.call(3, &Request::Exists { path: "/w".into(), watch: true }).err(), 0);
        a.send(4, &Request::SetData { path: "/w".into(), data: Some(b"a".to_vec()), version: -1 });
        let frames = frames_until(&mut a, 4);
        assert_eq!(frames.len(), 2, "round {round}: {frames:?}");
        assert!(matches!(&frames[0], Frame::Event(WatcherEvent { event_type: 3, .. })), "{frames:?}");

        // A child watch and a create by the other session, read back with getChildren.
        assert_eq!(a.call(5, &Request::GetChildren { path: "/w".into(), watch: true }).err(), 0);
        assert_eq!(b.call(2, &create_req(&format!("/w/c{round}"), b"", 0)).err(), 0);
        a.send(6, &Request::GetChildren { path: "/w".into(), watch: false });
        let frames = frames_until(&mut a, 6);
        assert!(matches!(&frames[0], Frame::Event(WatcherEvent { event_type: 4, .. })), "{frames:?}");
        let Frame::Reply(rep) = &frames[frames.len() - 1] else { unreachable!() };
        assert!(rep.children().contains(&format!("c{round}")));
    }
}

#[test]
fn a_watch_event_arrives_before_the_reply_that_shows_the_change() {
    check_event_precedes_reply(&[]);
}

#[test]
fn a_watch_event_arrives_before_the_reply_that_shows_the_change_on_two_executors() {
    check_event_precedes_reply(&["warren.cores=2"]);
}

#[tokio::test]
async fn persistent_watch_sees_every_change_on_its_node() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let w = client(&s).await;
    let mut pw = w.watch("/pw", AddWatchMode::Persistent).await.unwrap();
    c.create("/pw", b"", &open()).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeCreated, "/pw".into()));
    c.create("/pw/k", b"", &open()).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeChildrenChanged, "/pw".into()));
    c.set_data("/pw/k", b"not ours", None).await.unwrap(); // a child's data: no event
    c.create("/pw/k/deep", b"", &open()).await.unwrap(); // a grandchild: no event
    c.set_data("/pw", b"1", None).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeDataChanged, "/pw".into()));
    c.set_data("/pw", b"2", None).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeDataChanged, "/pw".into()), "it stays");
    c.delete("/pw/k/deep", None).await.unwrap();
    c.delete("/pw/k", None).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeChildrenChanged, "/pw".into()));
    c.delete("/pw", None).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeDeleted, "/pw".into()));
    c.create("/pw", b"", &open()).await.unwrap();
    assert_eq!(next_event(&mut pw).await, (EventType::NodeCreated, "/pw".into()), "it outlives the node");
}

#[tokio::test]
async fn recursive_watch_sees_the_whole_subtree_but_no_child_events() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let w = client(&s).await;
    c.create("/r", b"", &open()).await.unwrap();
    let mut rw = w.watch("/r", AddWatchMode::PersistentRecursive).await.unwrap();
    c.create("/rx", b"", &open()).await.unwrap(); // shares the prefix, not the subtree
    c.create("/r/a", b"", &open()).await.unwrap();
    c.create("/r/a/b", b"", &open()).await.unwrap();
    c.set_data("/rx", b"no", None).await.unwrap();
    c.set_data("/r/a/b", b"1", None).await.unwrap();
    c.delete("/r/a/b", None).await.unwrap();
    c.set_data("/r", b"top", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_event(&mut rw).await);
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeCreated, "/r/a".to_string()),
            (EventType::NodeCreated, "/r/a/b".to_string()),
            (EventType::NodeDataChanged, "/r/a/b".to_string()),
            (EventType::NodeDeleted, "/r/a/b".to_string()),
            (EventType::NodeDataChanged, "/r".to_string()),
        ]
    );
    // Ephemerals removed by a session close are seen too.
    let e = client(&s).await;
    e.create("/r/a/eph", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    assert_eq!(next_event(&mut rw).await, (EventType::NodeCreated, "/r/a/eph".into()));
    drop(e);
    assert_eq!(next_event(&mut rw).await, (EventType::NodeDeleted, "/r/a/eph".into()));
}

#[test]
fn check_and_remove_watches() {
    let s = Server::start(&[]);
    let mut w = Raw::connect(s.addr);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/cw", b"", 0)).err(), 0);
    let data = 2; // WatcherType DATA
    let children = 1;
    let any = 3;
    let check = |path: &str, t: i32| Request::CheckWatches { path: path.into(), watch_type: t };
    assert_eq!(w.call(1, &check("/cw", data)).err(), ErrorCode::NoWatcher.code());
    assert_eq!(w.call(2, &Request::Exists { path: "/cw".into(), watch: true }).err(), 0);
    assert_eq!(w.call(3, &check("/cw", data)).err(), 0);
    assert_eq!(w.call(4, &check("/cw", children)).err(), ErrorCode::NoWatcher.code());
    assert_eq!(w.call(5, &check("/cw", any)).err(), 0);
    assert_eq!(c.call(2, &check("/cw", data)).err(), ErrorCode::NoWatcher.code(), "watches are per connection");
    let remove = Request::RemoveWatches { path: "/cw".into(), watch_type: any };
    assert_eq!(w.call(6, &remove).err(), 0);
    assert_eq!(w.call(7, &remove).err(), ErrorCode::NoWatcher.code());
    assert_eq!(c.call(3, &Request::SetData { path: "/cw".into(), data: None, version: -1 }).err(), 0);
    assert!(w.ping_barrier().is_empty(), "a removed watch does not fire");
}

// ---- multi, check, sync -------------------------------------------------------------------

#[tokio::test]
async fn multi_is_all_or_nothing() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let w = client(&s).await;
    let mut m = c.new_multi_writer();
    m.add_create("/m", b"m", &open()).unwrap();
    m.add_create("/m/1", b"one", &open()).unwrap();
    m.add_create("/m/s-", b"", &mode(CreateMode::PersistentSequential)).unwrap();
    m.add_set_data("/m", b"mm", Some(0)).unwrap();
    m.add_check_version("/m", 1).unwrap();
    m.add_delete("/m/1", Some(0)).unwrap();
    let results = within("multi", m.commit()).await.unwrap();
    assert_eq!(results.len(), 6);
    match &results[2] {
        zk::MultiWriteResult::Create { path, stat } => {
            assert_eq!(path, "/m/s-0000000001");
            // ZooKeeper 3.8.0 omits the Stat of a create inside a multi (ZOOKEEPER-4026).
            if !stat.is_invalid() {
                assert_eq!(stat.czxid, stat.mzxid);
            }
        }
        other => panic!("{other:?}"),
    }
    let zk::MultiWriteResult::SetData { stat } = &results[3] else { panic!("{:?}", results[3]) };
    assert_eq!(stat.version, 1);
    assert!(matches!(results[4], zk::MultiWriteResult::Check));
    assert!(matches!(results[5], zk::MultiWriteResult::Delete));
    let (data, st) = c.get_data("/m").await.unwrap();
    assert_eq!((data.as_slice(), st.version, st.num_children), (&b"mm"[..], 1, 1));
    assert_eq!(st.czxid, st.mzxid, "one multi is one transaction: one zxid");

    // A failing multi applies nothing and fires no watch.
    let (_, _, data_watch) = w.get_and_watch_data("/m").await.unwrap();
    let mut m = c.new_multi_writer();
    m.add_create("/m/2", b"", &open()).unwrap();
    m.add_set_data("/m", b"lost", None).unwrap();
    m.add_check_version("/m", 99).unwrap();
    m.add_delete("/m", None).unwrap();
    match within("failing multi", m.commit()).await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!((index, source), (2, zk::Error::BadVersion))
        }
        other => panic!("expected the check to fail: {other:?}"),
    }
    assert!(c.check_stat("/m/2").await.unwrap().is_none(), "all or nothing");
    let (data, st2) = c.get_data("/m").await.unwrap();
    assert_eq!((data.as_slice(), st2), (&b"mm"[..], st));
    let mut m = c.new_multi_writer();
    m.add_create("/m/dup", b"", &open()).unwrap();
    m.add_create("/m/dup", b"", &open()).unwrap();
    match within("duplicate create", m.commit()).await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!((index, source), (1, zk::Error::NodeExists))
        }
        other => panic!("{other:?}"),
    }
    c.set_data("/m", b"after", None).await.unwrap();
    let ev = within("data watch", data_watch.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDataChanged, "the first event is the later set");

    // A check writer: the check guards the writes.
    let mut cw = c.new_check_writer("/m", Some(2)).unwrap();
    cw.add_set_data("/m", b"guarded", None).unwrap();
    assert!(within("check writer", cw.commit()).await.is_ok());
    let mut cw = c.new_check_writer("/m", Some(2)).unwrap();
    cw.add_set_data("/m", b"stale", None).unwrap();
    assert!(within("stale check writer", cw.commit()).await.is_err());
    assert_eq!(c.get_data("/m").await.unwrap().0, b"guarded");
    // An empty multi is fine.
    assert!(within("empty multi", c.new_multi_writer().commit()).await.unwrap().is_empty());
}

#[test]
fn failed_multi_reports_every_op() {
    let s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let ops = vec![
        MultiOp::Create(match create_req("/f", b"", 0) {
            Request::Create(cr) => cr,
            _ => unreachable!(),
        }),
        MultiOp::Check { path: "/nope".into(), version: 3 },
        MultiOp::Delete { path: "/f".into(), version: -1 },
    ];
    let r = c.call(1, &Request::Multi(ops));
    // Checked against ZooKeeper 3.8.0: header err 0; Ok, NoNode, RuntimeInconsistency.
    assert_eq!(r.err(), 0);
    let results = warren::proto::read_multi_results(&mut r.reader()).unwrap();
    assert_eq!(
        results,
        [
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency)
        ]
    );
    assert_eq!(c.call(2, &Request::Exists { path: "/f".into(), watch: false }).err(), -101);
    // A successful multi answers op by op; its create is named like any sequential create.
    let ops = vec![
        MultiOp::Create(match create_req("/g", b"", 0) {
            Request::Create(cr) => cr,
            _ => unreachable!(),
        }),
        MultiOp::SetData { path: "/g".into(), data: Some(b"x".to_vec()), version: 0 },
        MultiOp::Check { path: "/g".into(), version: 1 },
        MultiOp::Delete { path: "/g".into(), version: 1 },
    ];
    let r = c.call(3, &Request::Multi(ops));
    assert_eq!(r.err(), 0);
    let results = warren::proto::read_multi_results(&mut r.reader()).unwrap();
    assert!(matches!(&results[0], MultiResult::Create { path } if path == "/g"), "{results:?}");
    assert!(matches!(&results[1], MultiResult::SetData { stat } if stat.version == 1), "{results:?}");
    assert_eq!(results[2..], [MultiResult::Check, MultiResult::Delete]);
}

#[tokio::test]
async fn multi_read_sync_and_counts() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    c.create("/m", b"", &open()).await.unwrap();
    c.create("/m/1", b"one", &open()).await.unwrap();
    let mut r = c.new_multi_reader();
    r.add_get_data("/m/1").unwrap();
    r.add_get_children("/m").unwrap();
    r.add_get_data("/nope").unwrap();
    r.add_get_children("/nope").unwrap();
    let results = within("multi read", r.commit()).await.unwrap();
    assert!(matches!(&results[0], zk::MultiReadResult::Data { data, stat } if data == b"one" && stat.data_length == 3));
    assert!(matches!(&results[1], zk::MultiReadResult::Children { children } if children == &["1".to_string()]));
    assert!(matches!(&results[2], zk::MultiReadResult::Error { err: zk::Error::NoNode }));
    assert!(matches!(&results[3], zk::MultiReadResult::Error { err: zk::Error::NoNode }));
    c.sync("/m").await.unwrap();
    c.sync("/").await.unwrap();
    // ZooKeeper 3.8.0 answers a sync on a missing path with Ok, echoing the path.
    c.sync("/missing/path").await.unwrap();
    let mut raw = Raw::connect(s.addr);
    let r = raw.call(1, &Request::Sync { path: "/missing/path".into() });
    assert_eq!((r.err(), r.path()), (0, "/missing/path".to_string()));
}

// ---- ACLs and auth --------------------------------------------------------------------------

#[tokio::test]
async fn digest_acls_guard_every_operation_but_exists() {
    let s = Server::start(&[]);
    let owner = connect(&s, zk::Client::connector().with_auth("digest", b"alice:secret")).await;
    owner.create("/sec", b"s", &CreateMode::Persistent.with_acls(Acls::creator_all())).await.unwrap();
    owner.create("/sec/child", b"", &open()).await.unwrap();
    let (acl, st) = owner.get_acl("/sec").await.unwrap();
    let alice = warren::acl::digest("alice:secret");
    assert_eq!(acl, [Acl::new(Permission::ALL, AuthId::new("digest", &alice))], "auth expands to the digest id");
    assert_eq!(st.aversion, 0);

    let other = client(&s).await;
    assert_eq!(other.get_data("/sec").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.set_data("/sec", b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.get_children("/sec").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.get_acl("/sec").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.set_acl("/sec", &Acls::anyone_all(), None).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.create("/sec/new", b"", &open()).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.delete("/sec/child", None).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(other.get_and_watch_data("/sec").await.unwrap_err(), zk::Error::NoAuth);
    assert!(other.check_stat("/sec").await.unwrap().is_some(), "exists is not ACL-checked");
    let mut r = other.new_multi_reader();
    r.add_get_data("/sec").unwrap();
    let results = within("multi read", r.commit()).await.unwrap();
    assert!(matches!(&results[0], zk::MultiReadResult::Error { err: zk::Error::NoAuth }), "{results:?}");
    let mut m = other.new_multi_writer();
    m.add_check_version("/sec", 0).unwrap();
    match within("check without READ", m.commit()).await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!((index, source), (0, zk::Error::NoAuth))
        }
        other => panic!("a check needs READ: {other:?}"),
    }

    assert_eq!(owner.set_acl("/sec", &Acls::anyone_read(), Some(5)).await.unwrap_err(), zk::Error::BadVersion);
    let st = owner.set_acl("/sec", &Acls::anyone_read(), Some(0)).await.unwrap();
    assert_eq!((st.aversion, st.version), (1, 0));
    assert_eq!(other.get_data("/sec").await.unwrap().0, b"s");
    assert_eq!(other.set_data("/sec", b"x", None).await.unwrap_err(), zk::Error::NoAuth, "read only");

    // Authenticating later in the session grants what the id is allowed.
    owner.create("/alice", b"", &CreateMode::Persistent.with_acls(Acls::creator_all())).await.unwrap();
    assert_eq!(other.set_data("/alice", b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    other.auth("digest", b"alice:secret").await.unwrap();
    other.set_data("/alice", b"x", None).await.unwrap();
    other.auth("digest", b"bob:pw").await.unwrap();
    let mut users: Vec<(String, String)> =
        other.list_auth_users().await.unwrap().iter().map(|u| (u.scheme().to_string(), u.user().to_string())).collect();
    users.sort();
    let expected = [("digest", "alice"), ("digest", "bob"), ("ip", "127.0.0.1")].map(|(a, b)| (a.into(), b.into()));
    assert_eq!(users, expected, "whoAmI shows digest user names and the peer address");
}

#[tokio::test]
async fn invalid_acls_are_refused() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let creator = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(c.create("/x", b"", &creator).await.unwrap_err(), zk::Error::InvalidAcl, "auth ids need an auth");
    for (scheme, id) in [("world", "someone"), ("nosuch", "x"), ("digest", "nocolon"), ("ip", "300.1.1.1")] {
        let acl = [Acl::new(Permission::ALL, AuthId::new(scheme, id))];
        let opts = CreateMode::Persistent.with_acls(Acls::new(&acl));
        assert_eq!(c.create("/x", b"", &opts).await.unwrap_err(), zk::Error::InvalidAcl, "{scheme}:{id}");
    }
    c.create("/x", b"", &open()).await.unwrap();
    let bad = [Acl::new(Permission::ALL, AuthId::new("world", "nobody"))];
    assert_eq!(c.set_acl("/x", &Acls::new(&bad), None).await.unwrap_err(), zk::Error::InvalidAcl);
    let ip = [Acl::new(Permission::READ, AuthId::new("ip", "127.0.0.0/8"))];
    c.set_acl("/x", &Acls::new(&ip), None).await.unwrap();
    assert_eq!(c.get_data("/x").await.unwrap().0, b"", "an ip ACL matches this loopback client");
    assert_eq!(c.set_data("/x", b"w", None).await.unwrap_err(), zk::Error::NoAuth);

    // An empty list (the crate refuses to send one) is InvalidACL too, checked against 3.8.0.
    let mut raw = Raw::connect(s.addr);
    let empty = match create_req("/y", b"", 0) {
        Request::Create(mut cr) => {
            cr.acl.clear();
            Request::Create(cr)
        }
        _ => unreachable!(),
    };
    assert_eq!(raw.call(1, &empty).err(), ErrorCode::InvalidAcl.code());
    let set_empty = Request::SetAcl { path: "/x".into(), acl: vec![], version: -1 };
    assert_eq!(raw.call(2, &set_empty).err(), ErrorCode::InvalidAcl.code());
}

#[tokio::test]
async fn the_super_digest_bypasses_acls() {
    let super_digest = warren::acl::digest("super:letmein");
    let line = format!("superDigest={super_digest}");
    let s = Server::start(&[&line]);
    let alice = connect(&s, zk::Client::connector().with_auth("digest", b"alice:secret")).await;
    alice.create("/private", b"p", &CreateMode::Persistent.with_acls(Acls::creator_all())).await.unwrap();
    let root = connect(&s, zk::Client::connector().with_auth("digest", b"super:letmein")).await;
    assert_eq!(root.get_data("/private").await.unwrap().0, b"p");
    root.set_data("/private", b"q", None).await.unwrap();
    let wrong = connect(&s, zk::Client::connector().with_auth("digest", b"super:wrong")).await;
    assert_eq!(wrong.get_data("/private").await.unwrap_err(), zk::Error::NoAuth);
}

/// ZooKeeper 3.8.0 accepts `addauth digest <text without a colon>`: its provider hashes the
/// text and adds `digest:<text>:<hash>` (checked against a real 3.8.0 server: reply err 0, the
/// connection stays). zkCli users can type this; Warren must not drop their connection.
#[test]
fn digest_auth_without_a_colon_or_utf8_is_accepted_like_zookeeper() {
    let s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let r = c.call(-4, &Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"nocolon".to_vec() });
    assert_eq!(r.err(), 0, "ZooKeeper answers Ok");
    let r = c.call(1, &Request::WhoAmI);
    assert_eq!(r.err(), 0, "the connection stays usable");
    let mut rd = r.reader();
    let n = rd.i32().unwrap();
    let ids: Vec<(String, String)> = (0..n).map(|_| (rd.string().unwrap(), rd.string().unwrap())).collect();
    assert!(ids.contains(&("digest".to_string(), "nocolon".to_string())), "{ids:?}");
    // Bytes that are not UTF-8 are decoded lossily (Java's new String), also answered Ok by
    // 3.8.0.
    let r = c.call(-4, &Request::Auth { auth_type: 0, scheme: "digest".into(), auth: vec![0xff, b':', 0xfe] });
    assert_eq!(r.err(), 0);
    assert_eq!(c.call(2, &Request::Exists { path: "/".into(), watch: false }).err(), 0);
}

// ---- sessions -------------------------------------------------------------------------------

#[tokio::test]
async fn closing_a_session_removes_its_ephemerals_and_fires_watches() {
    let s = Server::start(&[]);
    let c1 = client(&s).await;
    let c2 = client(&s).await;
    c1.create("/q", b"", &open()).await.unwrap();
    c1.create("/q/e1", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    c1.create("/q/e2-", b"", &mode(CreateMode::EphemeralSequential)).await.unwrap();
    c1.create("/q/kept", b"", &open()).await.unwrap();
    let (_, exists) = c2.check_and_watch_stat("/q/e1").await.unwrap();
    let (_, _, data) = c2.get_and_watch_data("/q/e2-0000000001").await.unwrap();
    let (_, _, children) = c2.get_and_watch_children("/q").await.unwrap();
    drop(c1); // the crate sends closeSession
    let ev = within("exists watch", exists.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/q/e1"));
    let ev = within("data watch", data.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/q/e2-0000000001"));
    let ev = within("child watch", children.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/q"));
    let (names, st) = c2.get_children("/q").await.unwrap();
    assert_eq!((names, st.num_children), (vec!["kept".to_string()], 1));
}

#[test]
fn a_session_whose_connection_drops_expires_after_its_timeout() {
    let s = Server::start(&["tickTime=1000"]);
    let mut doomed = Raw::connect_with_timeout(s.addr, 4000);
    assert_eq!(doomed.timeout_ms, 4000);
    assert_eq!(doomed.call(1, &create_req("/gone", b"", 1)).err(), 0);
    let mut w = Raw::connect(s.addr);
    assert_eq!(w.call(1, &Request::Exists { path: "/gone".into(), watch: true }).err(), 0);
    let (id, passwd) = (doomed.session_id, doomed.passwd.clone());
    let dropped = Instant::now();
    drop(doomed); // no closeSession
    assert_eq!(w.call(2, &Request::Exists { path: "/gone".into(), watch: false }).err(), 0, "the session lives on");
    w.s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let ev = match w.next_frame() {
        Some(Frame::Event(ev)) => ev,
        other => panic!("expected the deletion event, got {other:?}"),
    };
    let waited = dropped.elapsed();
    assert_eq!((ev.event_type, ev.path.as_str()), (2, "/gone"));
    assert!(waited >= Duration::from_millis(3000), "expired too early: {waited:?}");
    assert!(waited <= Duration::from_millis(8000), "expired too late: {waited:?}");
    assert!(s.log().contains("Expiring session"), "{}", s.log());
    // The expired session cannot be resumed: timeout 0, session 0, then close.
    let (resp, mut sock) = Raw::resume(s.addr, id, passwd).err().expect("refused");
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert!(is_closed(&mut sock));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_client_session_expires() {
    let s = Server::start(&["tickTime=1000"]);
    let watcher = client(&s).await;
    let short =
        connect(&s, zk::Client::connector().with_session_timeout(Duration::from_millis(2000)).with_detached()).await;
    short.create("/gone", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    let (_, exists) = watcher.check_and_watch_stat("/gone").await.unwrap();
    drop(short.into_session()); // drops the connection, not the session
    let ev = within("expiry", exists.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);
}

#[test]
fn a_silent_connection_is_expired_and_closed() {
    let s = Server::start(&["tickTime=1000"]);
    let mut quiet = Raw::connect_with_timeout(s.addr, 2000);
    assert_eq!(quiet.call(1, &create_req("/quiet", b"", 1)).err(), 0);
    // No pings: the server expires the session and closes its connection.
    quiet.s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    assert!(is_closed(&mut quiet.s), "the connection of an expired session is closed");
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &Request::Exists { path: "/quiet".into(), watch: false }).err(), -101);
}

#[test]
fn pings_keep_a_session_alive() {
    let s = Server::start(&["tickTime=1000"]);
    let mut c = Raw::connect_with_timeout(s.addr, 2000);
    assert_eq!(c.call(1, &create_req("/alive", b"", 1)).err(), 0);
    let until = Instant::now() + Duration::from_millis(5000);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500)); // a client pings at a third of the timeout
        assert!(c.ping_barrier().is_empty());
    }
    let mut other = Raw::connect(s.addr);
    let r = other.call(1, &Request::Exists { path: "/alive".into(), watch: false });
    assert_eq!(r.err(), 0, "a pinged session outlives twice its timeout");
    assert_eq!(r.stat().ephemeral_owner, c.session_id);
}

#[test]
fn negotiated_timeout_is_clamped_to_two_and_twenty_ticks() {
    let s = Server::start(&["tickTime=1000"]);
    // Checked against ZooKeeper 3.8.0 with tickTime=1000.
    for (asked, got) in [(100, 2000), (-5, 2000), (3000, 3000), (100_000, 20_000)] {
        assert_eq!(Raw::connect_with_timeout(s.addr, asked).timeout_ms, got, "asked {asked}");
    }
}

#[test]
fn reconnecting_with_the_right_password_resumes_the_session() {
    let s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/eph", b"mine", 1)).err(), 0);
    let (id, passwd) = (c.session_id, c.passwd.clone());
    assert_eq!(passwd.len(), 16);
    drop(c);

    let mut again = Raw::resume(s.addr, id, passwd.clone()).ok().expect("resumed");
    assert_eq!(again.session_id, id);
    assert_eq!(again.passwd, passwd);
    let r = again.call(1, &Request::Exists { path: "/eph".into(), watch: false });
    assert_eq!((r.err(), r.stat().ephemeral_owner), (0, id), "the ephemeral survived the reconnect");
    assert_eq!(again.call(2, &create_req("/eph2", b"", 1)).err(), 0);

    // A wrong password: ConnectResponse with timeout 0 and session 0, then the socket closes.
    let mut wrong = passwd.clone();
    wrong[0] ^= 0xff;
    let (resp, mut sock) = Raw::resume(s.addr, id, wrong).err().expect("refused");
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert!(is_closed(&mut sock));
    // An unknown session id is answered the same way.
    let (resp, mut sock) = Raw::resume(s.addr, id ^ 0x5555, passwd.clone()).err().expect("refused");
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert!(is_closed(&mut sock));

    // The session moves to a newer connection; the older one is closed.
    let mut moved = Raw::resume(s.addr, id, passwd.clone()).ok().expect("resumed again");
    again.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(is_closed(&mut again.s), "the session's previous connection is closed");
    let r = moved.call(1, &Request::GetEphemerals { prefix: "/".into() });
    let mut ephemerals = r.reader().strings().unwrap();
    ephemerals.sort();
    assert_eq!(ephemerals, ["/eph", "/eph2"]);
    moved.close_session();
    let mut other = Raw::connect(s.addr);
    assert_eq!(other.call(1, &Request::Exists { path: "/eph".into(), watch: false }).err(), -101);
    // After a close the session is gone for good.
    let (resp, _) = Raw::resume(s.addr, id, passwd).err().expect("closed session refused");
    assert_eq!(resp.session_id, 0);
}

#[test]
fn ephemerals_still_in_flight_at_close_are_removed_too() {
    let s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    // Creates and the close in one TCP write: the close is prepared while the creates may
    // still be on their way to the log.
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.extend_from_slice(&create_req(&format!("/inflight{i}"), b"", 1).encode(i + 1));
    }
    burst.extend_from_slice(&Request::CloseSession.encode(100));
    c.send_bytes(&burst);
    for i in 0..20 {
        assert_eq!(c.reply(i + 1).err(), 0);
    }
    assert_eq!(c.reply(100).err(), 0);
    assert!(is_closed(&mut c.s), "closed after the closeSession reply");
    let mut other = Raw::connect(s.addr);
    let r = other.call(1, &Request::GetChildren { path: "/".into(), watch: false });
    let left: Vec<String> = r.children().into_iter().filter(|n| n.starts_with("inflight")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_restored_session_that_never_comes_back_expires() {
    let mut s = Server::start(&["tickTime=1000"]);
    let mut c = Raw::connect_with_timeout(s.addr, 4000);
    assert_eq!(c.call(1, &create_req("/orphan", b"", 1)).err(), 0);
    s.restart(); // SIGKILL, then start again on the same data
    drop(c);
    let mut w = Raw::connect(s.addr);
    let r = w.call(1, &Request::Exists { path: "/orphan".into(), watch: true });
    assert_eq!(r.err(), 0, "the session is restored with the tree");
    w.s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    match w.next_frame() {
        Some(Frame::Event(ev)) => assert_eq!((ev.event_type, ev.path.as_str()), (2, "/orphan")),
        other => panic!("expected the orphan's deletion, got {other:?}"),
    }
}

#[test]
fn null_data_stays_null() {
    let s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let null = match create_req("/null", b"", 0) {
        Request::Create(mut cr) => {
            cr.data = None;
            Request::Create(cr)
        }
        _ => unreachable!(),
    };
    assert_eq!(c.call(1, &null).err(), 0);
    // ZooKeeper 3.8.0 keeps the null and returns it (length -1); dataLength is 0.
    let (data, st) = c.call(2, &Request::GetData { path: "/null".into(), watch: false }).data_and_stat();
    assert_eq!((data, st.data_length), (None, 0));
    assert_eq!(c.call(3, &create_req("/empty", b"", 0)).err(), 0);
    let (data, _) = c.call(4, &Request::GetData { path: "/empty".into(), watch: false }).data_and_stat();
    assert_eq!(data, Some(vec![]));
    let set = Request::SetData { path: "/empty".into(), data: None, version: 0 };
    assert_eq!(c.call(5, &set).stat().version, 1);
    let (data, _) = c.call(6, &Request::GetData { path: "/empty".into(), watch: false }).data_and_stat();
    assert_eq!(data, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crate_resumes_a_detached_session() {
    let s = Server::start(&[]);
    let first =
        connect(&s, zk::Client::connector().with_session_timeout(Duration::from_secs(10)).with_detached()).await;
    first.create("/keep", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    let id = first.session_id();
    let info = first.into_session();
    let second = connect(&s, zk::Client::connector().with_session(info)).await;
    assert_eq!(second.session_id(), id);
    let st = second.check_stat("/keep").await.unwrap().expect("still there");
    assert_eq!(st.ephemeral_owner, id.0);
    drop(second); // not detached: closes the session
    let c = client(&s).await;
    let gone = within("close removes the ephemeral", async {
        loop {
            if c.check_stat("/keep").await.unwrap().is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone);
}

// ---- several executors, containers, TTL, restart ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_on_two_executors_see_one_tree() {
    let s = Server::start(&["warren.cores=2"]);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(client(&s).await);
    }
    clients[0].create("/mc", b"", &open()).await.unwrap();
    let watcher = client(&s).await;
    let mut rw = watcher.watch("/mc", AddWatchMode::PersistentRecursive).await.unwrap();
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut last_zxid = 0;
            for j in 0..25 {
                let p = format!("/mc/c{i}-{j}");
                let (st, _) = c.create(&p, p.as_bytes(), &open()).await.unwrap();
                assert!(st.czxid > last_zxid, "a session's writes get increasing zxids");
                last_zxid = st.czxid;
                assert_eq!(c.get_data(&p).await.unwrap().0, p.as_bytes(), "read your own write");
                if j % 5 == 0 {
                    let (children, parent) = c.get_children("/mc").await.unwrap();
                    assert!(children.len() >= j + 1 && parent.pzxid >= st.czxid, "{} {}", children.len(), j);
                }
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(within("writers", t).await.unwrap());
    }
    for (i, c) in clients.iter().enumerate() {
        c.sync("/mc").await.unwrap();
        let (children, st) = c.get_children("/mc").await.unwrap();
        assert_eq!((children.len(), st.num_children, st.cversion), (200, 200, 200), "client {i}");
        let p = format!("/mc/c{}-{}", (i + 3) % 8, i);
        assert_eq!(c.get_data(&p).await.unwrap().0, p.as_bytes(), "another client's write");
    }
    let mut created = std::collections::HashSet::new();
    while created.len() < 200 {
        let (t, p) = next_event(&mut rw).await;
        assert_eq!(t, EventType::NodeCreated);
        assert!(created.insert(p), "one event per create");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_removed_after_their_last_child_goes() {
    let s = Server::start(&["warren.containerCheckIntervalMs=200"]);
    let c = client(&s).await;
    c.create("/box", b"", &mode(CreateMode::Container)).await.unwrap();
    c.create("/never-used", b"", &mode(CreateMode::Container)).await.unwrap();
    c.create("/box/a", b"", &open()).await.unwrap();
    c.create("/box/b", b"", &open()).await.unwrap();
    let (_, exists) = c.check_and_watch_stat("/box").await.unwrap();
    c.delete("/box/a", None).await.unwrap();
    c.delete("/box/b", None).await.unwrap();
    let ev = within("container removal", exists.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/box"));
    assert!(c.check_stat("/box").await.unwrap().is_none());
    // The sweep that removed /box also saw /never-used: a container that never had a child stays.
    assert!(c.check_stat("/never-used").await.unwrap().is_some());
    // A container with a child is kept.
    c.create("/kept", b"", &mode(CreateMode::Container)).await.unwrap();
    c.create("/kept/x", b"", &open()).await.unwrap();
    c.create("/box2", b"", &mode(CreateMode::Container)).await.unwrap();
    c.create("/box2/x", b"", &open()).await.unwrap();
    c.delete("/box2/x", None).await.unwrap();
    until_deleted(&c, "/box2").await;
    assert!(c.check_stat("/kept").await.unwrap().is_some());
}

/// Waits until `path` is gone, through an exists watch (no polling).
async fn until_deleted(c: &zk::Client, path: &str) {
    let (st, watch) = c.check_and_watch_stat(path).await.unwrap();
    if st.is_some() {
        let ev = within(&format!("{path} removed"), watch.changed()).await;
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, path));
    }
    assert!(c.check_stat(path).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_expire_unless_they_have_children() {
    let s = Server::start(&["warren.containerCheckIntervalMs=200", "extendedTypesEnabled=true"]);
    let c = client(&s).await;
    let ttl = open().with_ttl(Duration::from_millis(300));
    // Parent and child in one transaction: no sweep can come between them.
    let mut m = c.new_multi_writer();
    m.add_create("/parent", b"", &ttl).unwrap();
    m.add_create("/parent/child", b"", &open()).unwrap();
    within("multi", m.commit()).await.unwrap();
    c.create("/lonely", b"", &ttl).await.unwrap();
    until_deleted(&c, "/lonely").await;
    // /parent's TTL ran out no later than /lonely's: only its child keeps it.
    assert!(c.check_stat("/parent").await.unwrap().is_some());
    c.delete("/parent/child", None).await.unwrap();
    until_deleted(&c, "/parent").await;
    let seq = mode(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(300));
    let (_, n) = c.create("/s-", b"", &seq).await.unwrap();
    until_deleted(&c, &format!("/s-{n}")).await;
}

#[tokio::test]
async fn ttl_is_unimplemented_unless_enabled() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let ttl = open().with_ttl(Duration::from_secs(5));
    assert_eq!(c.create("/ttl", b"", &ttl).await.unwrap_err(), zk::Error::Unimplemented);
    assert!(c.check_stat("/ttl").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_sessions_and_watches_survive_a_restart() {
    let mut s = Server::start(&[]);
    {
        let c = client(&s).await;
        for i in 0..50 {
            c.create(&format!("/d{i}"), format!("v{i}").as_bytes(), &open()).await.unwrap();
        }
        c.set_data("/d7", b"changed", None).await.unwrap();
        c.delete("/d9", None).await.unwrap();
    }
    let live = connect(&s, zk::Client::connector().with_session_timeout(Duration::from_secs(20))).await;
    live.create("/mine", b"", &mode(CreateMode::Ephemeral)).await.unwrap();
    let (_, _, data_watch) = live.get_and_watch_data("/d8").await.unwrap();
    s.restart();
    let c = client(&s).await;
    let mut names = c.list_children("/").await.unwrap();
    names.sort();
    assert_eq!(names.len(), 51, "{names:?}"); // 49 /d nodes, /mine, /zookeeper
    assert_eq!(c.get_data("/d7").await.unwrap().0, b"changed");
    assert!(c.check_stat("/d9").await.unwrap().is_none());
    let st = c.check_stat("/mine").await.unwrap().expect("a live session's ephemeral survives a restart");
    assert_eq!(st.ephemeral_owner, live.session_id().0);
    // The old client reconnects to its session and re-registers its watch.
    within("the old client reconnects", async {
        while live.check_stat("/mine").await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    c.set_data("/d8", b"after", None).await.unwrap();
    let ev = within("watch set before the restart", data_watch.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDataChanged, "/d8"));
    assert!(s.log().contains("recovered to zxid"), "{}", s.log());
}

/// Every node under "/" except /zookeeper: path → (data, stat, acl), read over one connection.
fn dump_tree(
    c: &mut Raw,
) -> std::collections::BTreeMap<String, (Option<Vec<u8>>, warren::proto::Stat, Vec<warren::acl::Acl>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec!["/".to_string()];
    let mut xid = 1000;
    while let Some(p) = todo.pop() {
        xid += 3;
        let (data, st) = c.call(xid, &Request::GetData { path: p.clone(), watch: false }).data_and_stat();
        let r = c.call(xid + 1, &Request::GetAcl { path: p.clone() });
        let acl = warren::proto::read_acls(&mut r.reader()).unwrap();
        for k in c.call(xid + 2, &Request::GetChildren { path: p.clone(), watch: false }).children() {
            let child = if p == "/" { format!("/{k}") } else { format!("{p}/{k}") };
            if child != "/zookeeper" {
                todo.push(child);
            }
        }
        out.insert(p, (data, st, acl));
    }
    out
}

#[test]
fn state_survives_snapshots_and_a_restart() {
    let mut s = Server::start(&["snapCount=10", "extendedTypesEnabled=true", "warren.containerCheckIntervalMs=200"]);
    let mut c = Raw::connect(s.addr);
    let mut live = Raw::connect(s.addr);
    let mut xid = 0;
    let mut call = |c: &mut Raw, req: Request| {
        xid += 1;
        let r = c.call(xid, &req);
        assert_eq!(r.err(), 0, "{req:?}");
        r
    };
    call(&mut c, create_req("/app", b"root", 0));
    for i in 0..30 {
        call(&mut c, create_req(&format!("/app/n{i}"), format!("v{i}").as_bytes(), 0));
        if i % 3 == 0 {
            call(&mut c, Request::SetData { path: format!("/app/n{i}"), data: Some(b"changed".to_vec()), version: 0 });
        }
        if i % 5 == 0 {
            call(&mut c, Request::Delete { path: format!("/app/n{i}"), version: -1 });
        }
    }
    call(&mut c, create_req("/seq", b"", 0));
    for _ in 0..7 {
        call(&mut c, create_req("/seq/s-", b"", 2));
    }
    call(&mut c, Request::Delete { path: "/seq/s-0000000006".into(), version: -1 });
    call(&mut live, create_req("/app/live-eph", b"e", 1));
    call(&mut c, create2_req("/box", b"", 4));
    call(&mut c, create_req("/box/item", b"", 0));
    let ttl = Request::Create(warren::proto::CreateRequest {
        kind: warren::proto::CreateKind::Ttl,
        path: "/ttl".into(),
        data: None,
        acl: warren::acl::open_acl_unsafe(),
        flags: 5,
        ttl_ms: 400,
    });
    call(&mut c, ttl);
    call(&mut c, create_req("/ttl/child", b"", 0));
    let read_only = vec![warren::acl::Acl::new(1, warren::acl::Id::new("world", "anyone"))];
    call(&mut c, Request::SetAcl { path: "/app/n1".into(), acl: read_only, version: 0 });
    let ops = vec![
        MultiOp::SetData { path: "/app".into(), data: Some(b"multi".to_vec()), version: -1 },
        MultiOp::Delete { path: "/app/n2".into(), version: -1 },
        MultiOp::Check { path: "/app".into(), version: 1 },
    ];
    call(&mut c, Request::Multi(ops));
    let before = dump_tree(&mut c);
    assert!(s.wait_for_log("snapshot", Duration::from_secs(10)), "snapCount=10 wrote a snapshot\n{}", s.log());

    s.restart();
    let log = s.log();
    let recovered = log.lines().filter(|l| l.contains("recovered to zxid")).last().unwrap_or_default().to_string();
    assert!(!recovered.contains("snapshot at 0x0 "), "recovery started from a snapshot: {recovered}");
    drop(live); // its session was restored; it stays until it expires (30 s) or closes
    let mut c = Raw::connect(s.addr);
    let after = dump_tree(&mut c);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (p, b) in &before {
        assert_eq!(b, &after[p], "{p} changed across the restart");
    }
    // Sequence numbers go on from where they were, never repeating.
    let r = c.call(1, &create_req("/seq/s-", b"", 2));
    assert_eq!(r.path(), "/seq/s-0000000007");
    // The container and TTL indexes were rebuilt: both are reaped once their child goes.
    let mut w = Raw::connect(s.addr);
    assert_eq!(w.call(1, &Request::Exists { path: "/box".into(), watch: true }).err(), 0);
    assert_eq!(w.call(2, &Request::Exists { path: "/ttl".into(), watch: true }).err(), 0);
    assert_eq!(c.call(2, &Request::Delete { path: "/box/item".into(), version: -1 }).err(), 0);
    assert_eq!(c.call(3, &Request::Delete { path: "/ttl/child".into(), version: -1 }).err(), 0);
    w.s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut gone = Vec::new();
    while gone.len() < 2 {
        match w.next_frame() {
            Some(Frame::Event(ev)) if ev.event_type == 2 => gone.push(ev.path),
            other => panic!("waiting for the container and TTL node to go: {other:?}"),
        }
    }
    gone.sort();
    assert_eq!(gone, ["/box", "/ttl"]);
}

#[test]
fn four_letter_words_answer_and_close() {
    let s = Server::start(&[]);
    assert_eq!(s.four_letter("ruok").as_deref(), Some("imok"));
    let srvr = s.four_letter("srvr").unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/x", b"", 0)).err(), 0);
    let stat = s.four_letter("stat").unwrap();
    assert!(stat.contains("Node count:"), "{stat}");
    let mntr = s.four_letter("mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
}
