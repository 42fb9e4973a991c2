//! Tests of prep: pipelined writes, sequential suffixes, ZooKeeper's error order, multis, TTLs.

use super::*;
use crate::acl::{open_acl_unsafe, AuthInfo};
use crate::proto::CreateKind;

fn create(path: &str, flags: i32) -> WriteOp {
    WriteOp::Create(CreateRequest {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(vec![]),
        acl: open_acl_unsafe(),
        flags,
        ttl_ms: -1,
    })
}

const OPTS: PrepOptions = PrepOptions { ttl_enabled: true };

#[test]
fn pipelined_creates_see_each_other() {
    let tree = DataTree::new();
    let mut pending = Pending::default();
    let auth = AuthInfo::empty();
    let who = Caller { session_id: 1, auth: &auth, super_digest: None, ephemeral_refusal: None };
    let mut p = Prep::new(&tree, &mut pending, 1, OPTS);
    assert!(p.op(&create("/a", 0), &who).is_ok());
    p.commit();
    let mut p = Prep::new(&tree, &mut pending, 2, OPTS);
    assert_eq!(p.op(&create("/a", 0), &who), Err(ErrorCode::NodeExists));
    assert!(p.op(&create("/a/b", 0), &who).is_ok());
    p.commit();
    pending.applied(2);
    assert!(pending.is_empty());
}

#[test]
fn sequential_suffix_comes_from_parent_cversion() {
    let tree = DataTree::new();
    let mut pending = Pending::default();
    let auth = AuthInfo::empty();
    let who = Caller { session_id: 1, auth: &auth, super_digest: None, ephemeral_refusal: None };
    let mut p = Prep::new(&tree, &mut pending, 1, OPTS);
    p.op(&create("/q", 0), &who).unwrap();
    p.commit();
    for (z, want) in [(2, "/q/s0000000000"), (3, "/q/s0000000001")] {
        let mut p = Prep::new(&tree, &mut pending, z, OPTS);
        let TxnOp::Create { path, .. } = p.op(&create("/q/s", 2), &who).unwrap() else { panic!() };
        assert_eq!(path, want);
        p.commit();
    }
}

#[test]
fn error_order_matches_zookeeper() {
    let tree = DataTree::new();
    let mut pending = Pending::default();
    let auth = AuthInfo::empty();
    let who = Caller { session_id: 1, auth: &auth, super_digest: None, ephemeral_refusal: None };
    let mut p = Prep::new(&tree, &mut pending, 1, OPTS);
    assert_eq!(p.op(&create("/a/b", 0), &who), Err(ErrorCode::NoNode));
    assert_eq!(p.op(&create("/a/", 0), &who), Err(ErrorCode::BadArguments));
    assert_eq!(p.op(&create("/a", 9), &who), Err(ErrorCode::BadArguments));
    assert_eq!(p.op(&create("/", 0), &who), Err(ErrorCode::NodeExists));
    assert_eq!(p.op(&WriteOp::Delete { path: "/zookeeper".into(), version: -1 }, &who), Err(ErrorCode::BadArguments));
    assert_eq!(p.op(&WriteOp::Delete { path: "/nope".into(), version: -1 }, &who), Err(ErrorCode::NoNode));
    p.op(&create("/e", 1), &who).unwrap();
    assert_eq!(p.op(&create("/e/x", 0), &who), Err(ErrorCode::NoChildrenForEphemerals));
    assert_eq!(
        p.op(&WriteOp::SetData { path: "/e".into(), data: Some(vec![]), version: 3 }, &who),
        Err(ErrorCode::BadVersion)
    );
    // A sequential create may end in '/': the suffix makes it valid.
    assert!(p.op(&create("/e2/", 2), &who).is_err()); // parent /e2 missing
    assert!(p.op(&create("/", 2), &who).is_ok());
}

#[test]
fn failed_multi_reports_ok_code_inconsistency_and_leaves_no_trace() {
    let tree = DataTree::new();
    let mut pending = Pending::default();
    let auth = AuthInfo::empty();
    let who = Caller { session_id: 1, auth: &auth, super_digest: None, ephemeral_refusal: None };
    let mut p = Prep::new(&tree, &mut pending, 1, OPTS);
    let ops = vec![create("/m", 0), WriteOp::Check { path: "/m".into(), version: 5 }, create("/n", 0)];
    let TxnOp::Multi(r) = p.multi(&ops, &who) else { panic!() };
    assert_eq!(
        r,
        vec![
            TxnOp::Error(ErrorCode::Ok),
            TxnOp::Error(ErrorCode::BadVersion),
            TxnOp::Error(ErrorCode::RuntimeInconsistency)
        ]
    );
    assert!(p.record("/m").is_none());
}

#[test]
fn ttl_rules() {
    let tree = DataTree::new();
    let mut pending = Pending::default();
    let auth = AuthInfo::empty();
    let who = Caller { session_id: 1, auth: &auth, super_digest: None, ephemeral_refusal: None };
    let ttl = |ttl_ms, flags| {
        WriteOp::Create(CreateRequest {
            kind: CreateKind::Ttl,
            path: "/t".into(),
            data: Some(vec![]),
            acl: open_acl_unsafe(),
            flags,
            ttl_ms,
        })
    };
    let mut p = Prep::new(&tree, &mut pending, 1, OPTS);
    assert_eq!(p.op(&ttl(0, 5), &who), Err(ErrorCode::BadArguments));
    assert_eq!(p.op(&ttl(100, 0), &who), Err(ErrorCode::BadArguments));
    assert!(p.op(&ttl(100, 5), &who).is_ok());
    let mut p = Prep::new(&tree, &mut pending, 1, PrepOptions { ttl_enabled: false });
    assert_eq!(p.op(&ttl(100, 5), &who), Err(ErrorCode::Unimplemented));
}
