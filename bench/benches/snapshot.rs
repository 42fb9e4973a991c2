//! Snapshot write (to memory, and to a file including fsync and rename) and load (mmap +
//! validation + tree rebuild) at 100k and 1M znodes.
//! `cargo bench -p warren-bench --bench snapshot`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use warren::snap::SnapshotWriter;
use warren::tree::DataTree;
use warren_bench::tree_of;

const SIZES: [usize; 2] = [100_000, 1_000_000];

fn image(t: &DataTree) -> Vec<u8> {
    let mut w = SnapshotWriter::new(t.last_zxid, Vec::new()).unwrap();
    for (p, n) in t.iter() {
        w.add_node(p, n).unwrap();
    }
    w.add_sessions(&[warren::snap::SessionRecord { id: 1, timeout_ms: 30_000, passwd: [1; 16] }]).unwrap();
    w.finish(t.last_zxid).unwrap()
}

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var("WARREN_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    tempfile::tempdir_in(base).unwrap()
}

fn snapshots(c: &mut Criterion) {
    for n in SIZES {
        let tree = tree_of(n);
        let mut g = c.benchmark_group(format!("snapshot/{n}"));
        g.sample_size(10).measurement_time(Duration::from_secs(if n > 200_000 { 20 } else { 5 }));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("write", "memory"), |b| b.iter(|| image(&tree)));
        let dir = bench_dir();
        g.bench_function(BenchmarkId::new("write", "file+fsync"), |b| {
            b.iter(|| {
                warren::storage::snapshots::write(&warren::storage::RealDisk, dir.path(), tree.last_zxid, &image(&tree))
                    .unwrap()
            })
        });
        let path =
            warren::storage::snapshots::write(&warren::storage::RealDisk, dir.path(), tree.last_zxid, &image(&tree))
                .unwrap();
        g.bench_function(BenchmarkId::new("load", "mmap+validate"), |b| {
            b.iter(|| {
                let s = warren::storage::snapshots::load(&warren::storage::RealDisk, &path).unwrap();
                assert_eq!(s.tree.node_count(), tree.node_count());
                s
            })
        });
        g.finish();
    }
}

criterion_group!(benches, snapshots);
criterion_main!(benches);
