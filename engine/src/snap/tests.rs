//! Tests of the snapshot format: round trips, damage, fallback, fuzzy snapshots plus replay.

use super::*;
use crate::acl::{self, open_acl_unsafe};
use crate::proto::CreateKind;
use crate::tree::Trigger;
use crate::txn::{ttl_owner, Txn, TxnHeader, TxnOp, CONTAINER_OWNER};

fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn { hdr: TxnHeader { session_id: 5, cxid: 1, zxid, time_ms: 1_000 + zxid }, op }
}

fn create(path: &str, data: Option<Vec<u8>>, owner: i64, parent_cversion: i32) -> TxnOp {
    let acl = if path.ends_with("sec") {
        vec![acl::Acl { perms: 1, id: acl::Id { scheme: "digest".into(), id: "u:x".into() } }]
    } else {
        open_acl_unsafe()
    };
    TxnOp::Create { kind: CreateKind::Create2, path: path.into(), data, acl, ephemeral_owner: owner, parent_cversion }
}

fn sample_tree() -> DataTree {
    let mut t = DataTree::new();
    let mut trig: Vec<Trigger> = Vec::new();
    let ops = vec![
        create("/a", Some(b"a".to_vec()), 0, 1),
        create("/a/null", None, 0, 1),
        create("/a/empty", Some(vec![]), 0, 2),
        create("/a/big", Some(vec![7; 100_000]), 0, 3),
        create("/a/eph", Some(b"e".to_vec()), 5, 4),
        create("/c", None, CONTAINER_OWNER, 2),
        create("/t", None, ttl_owner(1000), 3),
        create("/sec", Some(b"s".to_vec()), 0, 4),
    ];
    for (i, op) in ops.into_iter().enumerate() {
        t.apply(&txn(i as i64 + 1, op), &mut trig);
    }
    t
}

fn sess(id: i64, timeout_ms: i32) -> SessionRecord {
    SessionRecord { id, timeout_ms, passwd: [id as u8 + 1; 16] }
}

fn image(t: &DataTree, start: i64, sessions: &[SessionRecord]) -> rkyv::util::AlignedVec {
    let mut w = SnapshotWriter::new(start, Vec::new()).unwrap();
    let mut paths: Vec<&String> = t.iter().map(|(p, _)| p).collect();
    paths.sort();
    for p in paths {
        w.add_node(p, t.get(p).unwrap()).unwrap();
    }
    w.add_sessions(sessions).unwrap();
    let bytes = w.finish(t.last_zxid).unwrap();
    let mut a = rkyv::util::AlignedVec::<16>::new();
    a.extend_from_slice(&bytes);
    a
}

fn assert_same(a: &DataTree, b: &DataTree) {
    assert_eq!(a.node_count(), b.node_count());
    for (p, n) in a.iter() {
        let m = b.get(p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!((n.stat(), &n.data, &n.acl, &n.children), (m.stat(), &m.data, &m.acl, &m.children), "{p}");
    }
    assert_eq!(tree_digest(a), tree_digest(b));
}

#[test]
fn round_trip_every_node_kind_and_sessions() {
    let t = sample_tree();
    let img = image(&t, t.last_zxid, &[sess(5, 30_000), sess(6, 4_000)]);
    let s = decode(&img).unwrap();
    assert_same(&t, &s.tree);
    assert_eq!(s.sessions, vec![sess(5, 30_000), sess(6, 4_000)]);
    assert_eq!((s.start_zxid, s.end_zxid), (t.last_zxid, t.last_zxid));
    assert_eq!(s.digest, tree_digest(&t));
    assert_eq!(s.tree.ephemerals_of(5).count(), 1);
    assert_eq!(s.tree.containers().count(), 1);
    assert_eq!(s.tree.ttls().count(), 1);
    assert!(s.tree.get("/a/null").unwrap().data.is_none());
    assert_eq!(s.tree.get("/a/empty").unwrap().data, Some(vec![]));
}

#[test]
fn any_flipped_bit_or_truncation_is_rejected() {
    let t = sample_tree();
    let img = image(&t, 8, &[sess(5, 30_000)]);
    let step = (img.len() / 997).max(1);
    for pos in (0..img.len()).step_by(step).chain(0..HEADER_LEN + 32) {
        let mut b = rkyv::util::AlignedVec::<16>::new();
        b.extend_from_slice(&img);
        b[pos] ^= 0x10;
        assert!(decode(&b).is_err(), "flip at {pos} accepted");
    }
    for cut in (0..img.len()).step_by(step) {
        let mut b = rkyv::util::AlignedVec::<16>::new();
        b.extend_from_slice(&img[..cut]);
        assert!(decode(&b).is_err(), "cut at {cut} accepted");
    }
}

/// The property fuzzy snapshots rely on: capturing nodes at different moments while
/// transactions apply, then replaying the log from the start zxid, yields the live tree.
#[test]
fn fuzzy_snapshot_plus_replay_equals_the_live_tree() {
    for seed in 0..40u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut live = DataTree::new();
        let mut trig = Vec::new();
        let mut log: Vec<Txn> = Vec::new();
        let mut zxid = 0;
        let mut step = |live: &mut DataTree, log: &mut Vec<Txn>, r: u64| {
            zxid += 1;
            let name = format!("/n{}", r % 12);
            let child = format!("{name}/c{}", (r >> 8) % 3);
            let op = match (r >> 16) % 5 {
                0 | 1 if live.get(&name).is_none() => {
                    let pc = live.get("/").unwrap().stat.cversion + 1;
                    create(&name, Some(vec![r as u8]), 0, pc)
                }
                0 if live.get(&child).is_none() => {
                    let pc = live.get(&name).unwrap().stat.cversion + 1;
                    create(&child, None, if r % 2 == 0 { 5 } else { 0 }, pc)
                }
                2 if live.get(&name).is_some() => TxnOp::SetData {
                    path: name.clone(),
                    data: Some(vec![r as u8; 3]),
                    version: live.get(&name).unwrap().stat.version + 1,
                },
                3 if live.get(&child).is_some() => TxnOp::Delete { path: child },
                4 if r % 7 == 0 => TxnOp::CloseSession,
                _ => TxnOp::Check { path: "/".into() },
            };
            let t = txn(zxid, op);
            live.apply(&t, &mut Vec::new());
            log.push(t);
        };
        for _ in 0..30 {
            let r = next();
            step(&mut live, &mut log, r);
        }
        // Start a fuzzy snapshot; interleave captures of nodes with more transactions.
        let start = live.last_zxid;
        let mut paths: Vec<String> = live.iter().map(|(p, _)| p.clone()).collect();
        paths.sort();
        let mut w = SnapshotWriter::new(start, Vec::new()).unwrap();
        for p in paths {
            if next() % 2 == 0 {
                let r = next();
                step(&mut live, &mut log, r);
            }
            if let Some(n) = live.get(&p) {
                w.add_node(&p, n).unwrap();
            }
        }
        for _ in 0..5 {
            let r = next();
            step(&mut live, &mut log, r);
        }
        let bytes = w.finish(live.last_zxid).unwrap();
        let mut img = rkyv::util::AlignedVec::<16>::new();
        img.extend_from_slice(&bytes);
        let mut restored = decode(&img).unwrap().tree;
        for t in log.iter().filter(|t| t.hdr.zxid > start) {
            restored.apply(t, &mut trig);
        }
        assert_same(&live, &restored);
    }
}

/// Big nodes flush chunks by size, not only by count, so no chunk can outgrow its u32 length.
#[test]
fn big_nodes_are_split_into_size_bounded_chunks() {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    for i in 0..40 {
        t.apply(&txn(i + 1, create(&format!("/big{i}"), Some(vec![i as u8; 1 << 20]), 0, i as i32 + 2)), &mut trig);
    }
    let img = image(&t, t.last_zxid, &[]);
    let chunks = {
        let mut pos = HEADER_LEN;
        let mut n = 0;
        while pos < img.len() {
            let len = u32::from_le_bytes(img[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 16 + len + (16 - len % 16) % 16;
            n += 1;
        }
        n
    };
    assert!(chunks >= 4, "40 MiB of data in {chunks} chunks");
    assert_same(&t, &decode(&img).unwrap().tree);
}

/// A snapshot written before passwords were random (session chunk kind 2) still loads; its
/// sessions get a password that matches nothing.
#[test]
fn sessions_without_passwords_load_as_unusable() {
    let t = sample_tree();
    let mut w = SnapshotWriter::new(t.last_zxid, Vec::new()).unwrap();
    let mut paths: Vec<&String> = t.iter().map(|(p, _)| p).collect();
    paths.sort();
    for p in paths {
        w.add_node(p, t.get(p).unwrap()).unwrap();
    }
    let old = vec![SessionRecordNoPasswd { id: 5, timeout_ms: 30_000 }];
    let bytes = rkyv::to_bytes::<RkyvError>(&old).unwrap();
    w.session_count += 1;
    w.chunk(KIND_SESSIONS_NO_PASSWD, &bytes).unwrap();
    let mut a = rkyv::util::AlignedVec::<16>::new();
    a.extend_from_slice(&w.finish(t.last_zxid).unwrap());
    let s = decode(&a).unwrap();
    assert_eq!(s.sessions, vec![SessionRecord { id: 5, timeout_ms: 30_000, passwd: crate::session::UNUSABLE_PASSWD }]);
}
