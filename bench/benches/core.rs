//! Micro-benchmarks of the pure core: codec decode/encode and tree operations on a large tree.
//! `cargo bench -p warren-bench --bench core`. CI's regression check (`ci/bench-check.sh`)
//! runs these against the previous commit.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use warren::acl::open_acl_unsafe;
use warren::proto::{encode_reply, CreateKind, ReplyHeader, Request, Response, Stat};
use warren::tree::DataTree;
use warren::txn::{Txn, TxnHeader, TxnOp};
use warren_bench::tree_of;

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(1));
    let get = Request::GetData { path: "/app/config/service-42".into(), watch: true }.encode(7);
    g.bench_function("decode_get_data", |b| b.iter(|| Request::decode(black_box(&get[4..])).unwrap()));
    let set =
        Request::SetData { path: "/app/config/service-42".into(), data: Some(vec![b'v'; 1024]), version: -1 }.encode(8);
    g.bench_function("decode_set_data_1k", |b| b.iter(|| Request::decode(black_box(&set[4..])).unwrap()));
    let body = Response::GetData { data: Some(vec![b'v'; 1024]), stat: Stat::default() };
    g.bench_function("encode_get_data_reply_1k", |b| {
        b.iter(|| encode_reply(ReplyHeader { xid: 7, zxid: 99, err: 0 }, black_box(&body)))
    });
    g.finish();
}

fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn { hdr: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 1 }, op }
}

fn tree_ops(c: &mut Criterion) {
    let n = 1_000_000;
    let mut tree: DataTree = tree_of(n);
    let mut g = c.benchmark_group("tree_1m");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % (n - 200);
            black_box(tree.get(&format!("/bench/p{}/n{i}", i % 100)).map(|node| node.stat()))
        })
    });
    let mut zxid = tree.last_zxid;
    let mut trig = Vec::new();
    g.bench_function("set_data", |b| {
        b.iter(|| {
            zxid += 1;
            i = (i + 7919) % (n - 200);
            let op = TxnOp::SetData { path: format!("/bench/p{}/n{i}", i % 100), data: Some(vec![1; 100]), version: 1 };
            trig.clear();
            black_box(tree.apply(&txn(zxid, op), &mut trig))
        })
    });
    // A create and a delete of a fresh name, cycling over 4096 names under all 100 parents:
    // one fixed name would land in one hash bucket chosen by the process's random hash
    // seed, and that luck alone moved the figure by 40 % between runs of the same binary.
    let mut k = 0usize;
    g.bench_function("create_delete_spread", |b| {
        b.iter(|| {
            k = (k + 1) % 4096;
            let parent = format!("/bench/p{}", k % 100);
            let path = format!("{parent}/tmp{k}");
            zxid += 1;
            let cversion = tree.get(&parent).unwrap().stat.cversion + 1;
            let create = TxnOp::Create {
                kind: CreateKind::Create2,
                path: path.clone(),
                data: None,
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: cversion,
            };
            trig.clear();
            tree.apply(&txn(zxid, create), &mut trig);
            zxid += 1;
            black_box(tree.apply(&txn(zxid, TxnOp::Delete { path }), &mut trig))
        })
    });
    g.finish();
}

criterion_group!(benches, codec, tree_ops);
criterion_main!(benches);
