//! Warren driven by the Rust `zookeeper-client` crate, a complete client we did not write.

mod common;

use std::time::Duration;

use common::Server;
use zk::{Acls, AddWatchMode, CreateMode, EventType};
use zookeeper_client as zk;

const TIMEOUT: Duration = Duration::from_secs(20);

async fn client(s: &Server) -> zk::Client {
    tokio::time::timeout(
        TIMEOUT,
        zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&s.connect_string()),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test]
async fn crud_errors_and_stat_rules() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let (st, _) = c.create("/a", b"one", &persistent()).await.unwrap();
    assert_eq!((st.version, st.cversion, st.data_length, st.num_children), (0, 0, 3, 0));
    assert_eq!(st.czxid, st.mzxid);
    assert_eq!(st.czxid, st.pzxid);
    assert!(matches!(c.create("/a", b"", &persistent()).await, Err(zk::Error::NodeExists)));
    assert!(matches!(c.create("/x/y", b"", &persistent()).await, Err(zk::Error::NoNode)));
    let st2 = c.set_data("/a", b"two!", Some(0)).await.unwrap();
    assert_eq!((st2.version, st2.data_length, st2.czxid), (1, 4, st.czxid));
    assert!(st2.mzxid > st.mzxid);
    assert!(matches!(c.set_data("/a", b"x", Some(7)).await, Err(zk::Error::BadVersion)));
    let (data, st3) = c.get_data("/a").await.unwrap();
    assert_eq!((data.as_slice(), st3), (&b"two!"[..], st2));
    c.create("/a/b", b"", &persistent()).await.unwrap();
    assert!(matches!(c.delete("/a", None).await, Err(zk::Error::NotEmpty)));
    let (children, parent) = c.get_children("/a").await.unwrap();
    assert_eq!((children, parent.num_children, parent.cversion), (vec!["b".to_string()], 1, 1));
    c.delete("/a/b", Some(0)).await.unwrap();
    let parent = c.check_stat("/a").await.unwrap().unwrap();
    assert_eq!((parent.num_children, parent.cversion), (0, 2), "a delete shows in cversion");
    assert!(parent.pzxid > st2.mzxid);
    c.delete("/a", None).await.unwrap();
    assert!(c.check_stat("/a").await.unwrap().is_none());
    assert!(s.log().contains("binding to port"));
}

#[tokio::test]
async fn sequential_ephemeral_and_session_close() {
    let s = Server::start(&[]);
    let c1 = client(&s).await;
    let c2 = client(&s).await;
    c1.create("/q", b"", &persistent()).await.unwrap();
    let seq = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, n0) = c1.create("/q/n-", b"", &seq).await.unwrap();
    let (_, n1) = c1.create("/q/n-", b"", &seq).await.unwrap();
    assert_eq!((n0.into_i64(), n1.into_i64()), (0, 1));
    assert_eq!(c2.list_children("/q").await.unwrap(), vec!["n-0000000000", "n-0000000001"]);
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let (st, _) = c1.create("/q/e", b"", &eph).await.unwrap();
    assert_eq!(st.ephemeral_owner, c1.session_id().0);
    assert!(matches!(c1.create("/q/e/child", b"", &persistent()).await, Err(zk::Error::NoChildrenForEphemerals)));
    let (_, _, watcher) = c2.get_and_watch_children("/q").await.unwrap();
    drop(c1); // closes the session
    let ev = tokio::time::timeout(TIMEOUT, watcher.changed()).await.expect("child event");
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/q"));
    let left = tokio::time::timeout(TIMEOUT, async {
        loop {
            let l = c2.list_children("/q").await.unwrap();
            if l.is_empty() {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("ephemerals removed");
    assert!(left.is_empty());
}

#[tokio::test]
async fn one_shot_persistent_and_recursive_watches() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let w = client(&s).await;
    let exists = w.check_and_watch_stat("/w").await.unwrap();
    c.create("/w", b"", &persistent()).await.unwrap();
    let ev = tokio::time::timeout(TIMEOUT, exists.1.changed()).await.unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/w"));
    let (_, _, data_watch) = w.get_and_watch_data("/w").await.unwrap();
    c.set_data("/w", b"1", None).await.unwrap();
    let ev = tokio::time::timeout(TIMEOUT, data_watch.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);

    let mut recursive = w.watch("/w", AddWatchMode::PersistentRecursive).await.unwrap();
    let mut persistent_w = w.watch("/w", AddWatchMode::Persistent).await.unwrap();
    c.create("/w/x", b"", &persistent()).await.unwrap();
    c.set_data("/w/x", b"2", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(TIMEOUT, recursive.changed()).await.unwrap();
        seen.push((ev.event_type, ev.path));
    }
    assert_eq!(
        seen,
        vec![(EventType::NodeCreated, "/w/x".to_string()), (EventType::NodeDataChanged, "/w/x".to_string())]
    );
    let ev = tokio::time::timeout(TIMEOUT, persistent_w.changed()).await.unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/w"));
    c.set_data("/w", b"3", None).await.unwrap();
    let ev = tokio::time::timeout(TIMEOUT, persistent_w.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged, "persistent watches stay");
}

#[tokio::test]
async fn multi_write_and_read() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let mut w = c.new_multi_writer();
    w.add_create("/m", b"m", &persistent()).unwrap();
    w.add_create("/m/1", b"one", &persistent()).unwrap();
    w.add_set_data("/m", b"mm", Some(0)).unwrap();
    w.add_check_version("/m", 1).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    let mut w = c.new_multi_writer();
    w.add_create("/m/2", b"", &persistent()).unwrap();
    w.add_check_version("/m", 99).unwrap();
    match w.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!((index, source), (1, zk::Error::BadVersion));
        }
        other => panic!("expected the check to fail: {other:?}"),
    }
    assert!(c.check_stat("/m/2").await.unwrap().is_none(), "all or nothing");
    let mut r = c.new_multi_reader();
    r.add_get_data("/m/1").unwrap();
    r.add_get_children("/m").unwrap();
    r.add_get_data("/nope").unwrap();
    let results = r.commit().await.unwrap();
    assert!(matches!(&results[0], zk::MultiReadResult::Data { data, .. } if data == b"one"));
    assert!(matches!(&results[1], zk::MultiReadResult::Children { children } if children == &vec!["1".to_string()]));
    assert!(matches!(&results[2], zk::MultiReadResult::Error { err: zk::Error::NoNode }));
    c.sync("/m").await.unwrap();
    assert_eq!(c.count_descendants_number("/m").await.unwrap(), 1);
}

#[tokio::test]
async fn digest_acls() {
    let s = Server::start(&[]);
    let owner = match zk::Client::connector().with_auth("digest", b"alice:secret").connect(&s.connect_string()).await {
        Ok(c) => c,
        Err(e) => panic!("connect with auth: {e}\n{}", s.log()),
    };
    owner.create("/sec", b"s", &CreateMode::Persistent.with_acls(Acls::creator_all())).await.unwrap();
    let (acl, st) = owner.get_acl("/sec").await.unwrap();
    assert_eq!(acl[0].auth_id().scheme(), "digest");
    assert_eq!(st.aversion, 0);
    let other = client(&s).await;
    assert!(matches!(other.get_data("/sec").await, Err(zk::Error::NoAuth)));
    assert!(matches!(other.set_data("/sec", b"x", None).await, Err(zk::Error::NoAuth)));
    assert!(other.check_stat("/sec").await.unwrap().is_some(), "exists is not ACL-checked");
    let st = owner.set_acl("/sec", &Acls::anyone_read(), Some(0)).await.unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(other.get_data("/sec").await.unwrap().0, b"s");
    let users = owner.list_auth_users().await.unwrap();
    assert!(users.iter().any(|u| u.scheme() == "digest" && u.user() == "alice"), "{users:?}");
}

#[tokio::test]
async fn expired_session_loses_its_ephemerals() {
    let s = Server::start(&[]);
    let watcher = client(&s).await;
    let short = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .with_detached()
        .connect(&s.connect_string())
        .await
        .unwrap();
    short.create("/gone", b"", &CreateMode::Ephemeral.with_acls(Acls::anyone_all())).await.unwrap();
    let (_, exists) = watcher.check_and_watch_stat("/gone").await.unwrap();
    // Freeze the client's process side: without pings the server must expire the session.
    let session = short.into_session();
    std::mem::forget(session);
    let ev = tokio::time::timeout(Duration::from_secs(30), exists.changed()).await.expect("expiry within the timeout");
    assert_eq!(ev.event_type, EventType::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_executors_serve_one_consistent_tree() {
    let s = Server::start(&["warren.cores=2"]);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(client(&s).await);
    }
    clients[0].create("/mc", b"", &persistent()).await.unwrap();
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for j in 0..25 {
                let p = format!("/mc/c{i}-{j}");
                c.create(&p, p.as_bytes(), &persistent()).await.unwrap();
                assert_eq!(c.get_data(&p).await.unwrap().0, p.as_bytes(), "read your own write");
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    for c in &clients {
        assert_eq!(c.list_children("/mc").await.unwrap().len(), 200);
    }
}

#[tokio::test]
async fn containers_and_ttl_nodes_are_reaped() {
    let s = Server::start(&["warren.containerCheckIntervalMs=100", "extendedTypesEnabled=true"]);
    let c = client(&s).await;
    c.create("/box", b"", &CreateMode::Container.with_acls(Acls::anyone_all())).await.unwrap();
    c.create("/box/item", b"", &persistent()).await.unwrap();
    let ttl = CreateMode::Persistent.with_acls(Acls::anyone_all()).with_ttl(Duration::from_millis(200));
    let (st, _) = c.create("/ttl", b"", &ttl).await.unwrap();
    assert_eq!(st.ephemeral_owner, 0, "TTL nodes show no owner");
    c.delete("/box/item", None).await.unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while c.check_stat("/box").await.unwrap().is_some() || c.check_stat("/ttl").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("empty container and expired TTL node removed");
}

#[tokio::test]
async fn ttl_is_unimplemented_unless_enabled() {
    let s = Server::start(&[]);
    let c = client(&s).await;
    let ttl = CreateMode::Persistent.with_acls(Acls::anyone_all()).with_ttl(Duration::from_secs(5));
    assert!(matches!(c.create("/ttl", b"", &ttl).await, Err(zk::Error::Unimplemented)));
}

#[tokio::test]
async fn writes_survive_a_restart() {
    let mut s = Server::start(&[]);
    {
        let c = client(&s).await;
        for i in 0..50 {
            c.create(&format!("/d{i}"), format!("v{i}").as_bytes(), &persistent()).await.unwrap();
        }
        c.set_data("/d7", b"changed", None).await.unwrap();
    }
    s.restart();
    let c = client(&s).await;
    assert_eq!(c.list_children("/").await.unwrap().len(), 51);
    assert_eq!(c.get_data("/d7").await.unwrap().0, b"changed");
    assert!(s.log().contains("recovered to zxid"));
}
