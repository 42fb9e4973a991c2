//! Shared fixtures for the criterion benchmarks in `benches/`.

use warren::acl::open_acl_unsafe;
use warren::proto::CreateKind;
use warren::tree::DataTree;
use warren::txn::{Txn, TxnHeader, TxnOp};

/// A setData of `value_size` bytes, the log's typical record.
pub fn set_data_txn(zxid: i64, value_size: usize) -> Txn {
    Txn {
        hdr: TxnHeader { session_id: 0x1234_5678, cxid: zxid as i32, zxid, time_ms: 1_700_000_000_000 },
        op: TxnOp::SetData { path: format!("/bench/k{}", zxid % 1000), data: Some(vec![b'v'; value_size]), version: 1 },
    }
}

/// A tree of `n` znodes under 100 parents, 100-byte values.
pub fn tree_of(n: usize) -> DataTree {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    let mut zxid = 0;
    let mut apply = |t: &mut DataTree, path: String, parent_cversion: i32| {
        zxid += 1;
        let op = TxnOp::Create {
            kind: CreateKind::Create,
            path,
            data: Some(vec![b'd'; 100]),
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion,
        };
        t.apply(&Txn { hdr: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 1 }, op }, &mut trig);
    };
    apply(&mut t, "/bench".into(), 1);
    let parents = 100;
    for p in 0..parents {
        apply(&mut t, format!("/bench/p{p}"), p as i32 + 1);
    }
    for i in 0..n.saturating_sub(parents + 1) {
        let p = i % parents;
        apply(&mut t, format!("/bench/p{p}/n{i}"), (i / parents) as i32 + 1);
    }
    t
}
