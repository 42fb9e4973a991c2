//! Log append throughput: Warren's group-commit WAL (glommio, io_uring, fallocate'd segments)
//! against a plain pwrite + fdatasync loop on the same file system, at 1, 8, 64 and 256
//! records per fsync. `cargo bench -p warren-bench --bench log_append`.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::channels::local_channel;
use glommio::{LocalExecutorBuilder, Placement};
use warren::log::format::{append_record, encode_header, HEADER_LEN};
use warren::server::wal::Wal;
use warren_bench::set_data_txn;

const BATCHES: [usize; 4] = [1, 8, 64, 256];
const SEGMENT: u64 = 256 << 20;
const VALUE: usize = 1024;

/// Benchmarks write to disk, not tmpfs: a directory beside the build.
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var("WARREN_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    tempfile::tempdir_in(base).unwrap()
}

/// One group per batch size, Warren's WAL and the plain loop back to back, so both see the
/// same disk conditions (fsync latency here varies several-fold over minutes).
fn log_append(c: &mut Criterion) {
    let ex = LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().unwrap();
    for batch in BATCHES {
        let mut g = c.benchmark_group(format!("log_append/{batch}_per_fsync"));
        g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Elements(batch as u64));
        warren_wal(&mut g, &ex, batch);
        plain_write_fdatasync(&mut g, batch);
        g.finish();
    }
}

fn warren_wal(
    g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    ex: &glommio::LocalExecutor,
    batch: usize,
) {
    {
        g.bench_with_input(BenchmarkId::new("warren_wal", batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                ex.run(async move {
                    let dir = bench_dir();
                    let wal = Wal::new(dir.path().to_path_buf(), SEGMENT, true, Duration::from_secs(10), None);
                    // The durable callback wakes the benchmark through a channel, as the
                    // server's owner is woken: no polling.
                    let (tx, rx) = local_channel::new_unbounded::<i64>();
                    glommio::spawn_local(wal.clone().run(move |z| drop(tx.try_send(z)), |e| panic!("{e}"))).detach();
                    let mut zxid = 0i64;
                    let mut commit = |n: usize| {
                        let txns: Vec<_> = (0..n)
                            .map(|_| {
                                zxid += 1;
                                set_data_txn(zxid, VALUE)
                            })
                            .collect();
                        wal.append(&txns);
                        zxid
                    };
                    // Warm-up batch: creates the segment outside the timed loop.
                    let first = commit(1);
                    while rx.recv().await.unwrap() < first {}
                    let start = Instant::now();
                    for _ in 0..iters {
                        let last = commit(batch);
                        while rx.recv().await.unwrap() < last {}
                    }
                    start.elapsed()
                })
            })
        });
    }
}

/// The same records, written with pwrite and made durable with fdatasync, one batch at a time.
fn plain_write_fdatasync(g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>, batch: usize) {
    {
        g.bench_with_input(BenchmarkId::new("plain_write_fdatasync", batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let dir = bench_dir();
                let f = std::fs::File::create(dir.path().join("log.1")).unwrap();
                // SAFETY: plain fallocate(2) on a file we own, as the WAL does.
                let rc = unsafe { libc::fallocate(std::os::unix::io::AsRawFd::as_raw_fd(&f), 0, 0, SEGMENT as i64) };
                assert_eq!(rc, 0);
                f.write_all_at(&encode_header(1), 0).unwrap();
                f.sync_all().unwrap();
                let mut pos = HEADER_LEN as u64;
                let mut zxid = 0i64;
                let mut buf = Vec::new();
                let start = Instant::now();
                for _ in 0..iters {
                    buf.clear();
                    for _ in 0..batch {
                        zxid += 1;
                        append_record(&mut buf, &set_data_txn(zxid, VALUE));
                    }
                    if pos + buf.len() as u64 > SEGMENT {
                        pos = HEADER_LEN as u64;
                    }
                    f.write_all_at(&buf, pos).unwrap();
                    f.sync_data().unwrap();
                    pos += buf.len() as u64;
                }
                start.elapsed()
            })
        });
    }
}

criterion_group!(benches, log_append);
criterion_main!(benches);
