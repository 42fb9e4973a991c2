//! Tests of the DataTree: applying each kind of Txn, the indexes, and `from_nodes`.

use super::*;
use crate::txn::{TxnHeader, CONTAINER_OWNER};

fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn { hdr: TxnHeader { session_id: 7, cxid: 1, zxid, time_ms: 1000 + zxid }, op }
}

fn create(path: &str, owner: i64, parent_cversion: i32) -> TxnOp {
    TxnOp::Create {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: acl::open_acl_unsafe(),
        ephemeral_owner: owner,
        parent_cversion,
    }
}

#[test]
fn fresh_tree_has_system_nodes() {
    let t = DataTree::new();
    assert_eq!(t.get("/").unwrap().children.iter().collect::<Vec<_>>(), vec!["zookeeper"]);
    let zk = t.get(ZOOKEEPER).unwrap();
    assert_eq!(zk.children.iter().cloned().collect::<Vec<_>>(), vec!["config", "quota"]);
    assert_eq!(t.node_count(), 4);
}

#[test]
fn create_sets_stat_and_parent() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    let r = t.apply(&txn(5, create("/a", 0, 1)), &mut trig);
    let OpResult::Created { stat, .. } = r else { panic!("{r:?}") };
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime), (5, 5, 5, 1005, 1005));
    assert_eq!((stat.version, stat.cversion, stat.aversion, stat.data_length), (0, 0, 0, 1));
    let root = t.get("/").unwrap().stat();
    // "/zookeeper" was never counted as a create: a fresh root shows cversion -1, as in ZooKeeper.
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 5, 2));
    assert_eq!(trig.len(), 2);
    assert_eq!(t.last_zxid, 5);
}

#[test]
fn delete_shows_in_cversion_and_moves_pzxid() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    t.apply(&txn(1, create("/a", 0, 1)), &mut trig);
    t.apply(&txn(2, create("/a/b", 0, 1)), &mut trig);
    assert_eq!(t.apply(&txn(3, TxnOp::Delete { path: "/a/b".into() }), &mut trig), OpResult::Deleted);
    let a = t.get("/a").unwrap();
    // One create stored; shown as create + delete.
    assert_eq!(a.stat.cversion, 1);
    let a = a.stat();
    assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 3, 0));
    assert_eq!(t.apply(&txn(4, TxnOp::Delete { path: "/a/b".into() }), &mut trig), OpResult::Error(ErrorCode::NoNode));
}

#[test]
fn set_data_and_acl() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    t.apply(&txn(1, create("/a", 0, 1)), &mut trig);
    let r = t.apply(&txn(2, TxnOp::SetData { path: "/a".into(), data: Some(b"xyz".to_vec()), version: 1 }), &mut trig);
    let OpResult::SetData(s) = r else { panic!() };
    assert_eq!((s.version, s.mzxid, s.czxid, s.data_length, s.mtime), (1, 2, 1, 3, 1002));
    let r = t.apply(&txn(3, TxnOp::SetAcl { path: "/a".into(), acl: acl::read_acl_unsafe(), version: 1 }), &mut trig);
    let OpResult::SetAcl(s) = r else { panic!() };
    assert_eq!((s.aversion, s.mzxid), (1, 2));
}

#[test]
fn ephemerals_containers_and_session_close() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    t.apply(&txn(1, create("/e", 7, 1)), &mut trig);
    t.apply(&txn(2, create("/c", CONTAINER_OWNER, 2)), &mut trig);
    assert_eq!(t.ephemerals_of(7).count(), 1);
    assert_eq!(t.containers().count(), 1);
    assert_eq!(t.get("/c").unwrap().stat().ephemeral_owner, 0, "clients see 0 for containers");
    trig.clear();
    assert_eq!(t.apply(&txn(3, TxnOp::CloseSession), &mut trig), OpResult::SessionClosed);
    assert!(t.get("/e").is_none());
    assert_eq!(t.ephemerals_of(7).count(), 0);
    assert_eq!((trig[0].path.as_str(), trig[0].event_type), ("/e", event::NODE_DELETED));
    assert_eq!(*trig[0].acl, acl::open_acl_unsafe());
}

#[test]
fn descendant_count_counts_all_levels() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    t.apply(&txn(1, create("/a", 0, 1)), &mut trig);
    t.apply(&txn(2, create("/a/b", 0, 1)), &mut trig);
    t.apply(&txn(3, create("/a/b/c", 0, 1)), &mut trig);
    assert_eq!(t.descendant_count("/a"), 2);
    assert_eq!(t.descendant_count("/"), 6);
}

#[test]
fn from_nodes_rebuilds_indexes_and_rejects_orphans() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    t.apply(&txn(1, create("/a", 0, 1)), &mut trig);
    t.apply(&txn(2, create("/a/e", 7, 1)), &mut trig);
    t.apply(&txn(3, create("/c", CONTAINER_OWNER, 2)), &mut trig);
    let parts: Vec<_> = t.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.acl.to_vec(), n.stat)).collect();
    let r = DataTree::from_nodes(parts.clone(), t.last_zxid).unwrap();
    assert_eq!(r.node_count(), t.node_count());
    assert_eq!(r.get("/a").unwrap().stat(), t.get("/a").unwrap().stat());
    assert_eq!(r.ephemerals_of(7).count(), 1);
    assert_eq!(r.containers().count(), 1);
    assert_eq!(r.approximate_data_size(), t.approximate_data_size());
    let orphan: Vec<_> = parts.into_iter().filter(|(p, ..)| p != "/a").collect();
    let err = DataTree::from_nodes(orphan, 3).unwrap_err();
    assert_eq!(err, TreeError::NoParent { path: "/a/e".into(), parent: "/a".into() });
    assert_eq!(err.to_string(), "node /a/e has no parent /a");
}
