//! Log append throughput at 1, 8, 64 and 256 records per fsync, 1 KiB setData records:
//!
//! - `warren_wal`: Warren's group-commit WAL (`server/wal.rs`: glommio BufferedFile, io_uring
//!   write + fdatasync, segments preallocated with fallocate and rolled by the WAL itself);
//! - `plain_write_fdatasync`: a blocking `pwrite` + `fdatasync` loop on a zero-filled file;
//! - `plain_fallocate_fdatasync`: the same loop on a fallocate'd file, as the WAL preallocates;
//! - `plain_append_fdatasync`: the same loop on a file that grows with every write.
//!
//! All variants encode the same prebuilt records with `append_record` inside the timed loop.
//! One criterion group per batch size runs the variants back to back: compare within a group.
//! Files live in a temp dir beside the build (override: `WARREN_BENCH_DIR`); it must not be
//! tmpfs.
//!
//! `cargo bench -p warren-bench --bench log_append`
//!
//! fsync latency on a shared disk can change several-fold within seconds, which a sequential
//! benchmark cannot tell from a difference between variants. `LOG_APPEND_INTERLEAVED=<rounds>`
//! runs, instead of criterion, a cross-check that alternates short chunks of every variant
//! (rotating which goes first) and reports medians and the median of the per-round ratios.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, Throughput};
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement, Task};
use tempfile::TempDir;
use warren::log::format::{append_record, encode_header, HEADER_LEN};
use warren::server::wal::Wal;
use warren::txn::Txn;
use warren_bench::set_data_txn;

const BATCHES: [usize; 4] = [1, 8, 64, 256];
/// The server's default preAllocSize (64 MiB).
const SEGMENT: u64 = 64 << 20;
const VALUE: usize = 1024;

/// A temp dir on a real disk (the build's tmp dir under the target dir, not /tmp).
fn bench_dir() -> TempDir {
    let base = std::env::var("WARREN_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// `batch` setData records of 1 KiB on `/bench/k123`-style paths; zxids are set per round.
fn batch_txns(batch: usize) -> Vec<Txn> {
    (0..batch).map(|i| set_data_txn(123 + i as i64, VALUE)).collect()
}

/// Gives the batch the next zxids and returns the last one.
fn renumber(txns: &mut [Txn], zxid: &mut i64) -> i64 {
    for t in txns.iter_mut() {
        *zxid += 1;
        t.hdr.zxid = *zxid;
    }
    *zxid
}

/// io_memory: glommio registers its I/O buffers as locked memory and the memlock limit here is
/// 8 MiB (BufferedFile does not use them).
fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().unwrap()
}

fn log_append(c: &mut Criterion) {
    let ex = executor();
    // Kept until the executor is gone: the WAL may still be preparing its next segment there.
    let mut dirs = Vec::new();
    for batch in BATCHES {
        let mut g = c.benchmark_group(format!("log_append/batch_{batch}"));
        g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Elements(batch as u64));
        dirs.extend(warren_wal(&mut g, &ex, batch));
        for prep in [Prep::Zeros, Prep::Fallocate, Prep::Grow] {
            plain(&mut g, prep, batch);
        }
        g.finish();
    }
    drop(ex);
    drop(dirs);
}

/// Warren's WAL, one instance per batch size, set up on the first call (so a filtered-out
/// benchmark costs nothing).
fn warren_wal(g: &mut BenchmarkGroup<WallTime>, ex: &LocalExecutor, batch: usize) -> Option<TempDir> {
    let mut state: Option<WalBench> = None;
    g.bench_function("warren_wal", |b| {
        b.iter_custom(|iters| {
            ex.run(async {
                if state.is_none() {
                    state = Some(WalBench::start(batch).await);
                }
                state.as_mut().expect("set above").run(iters).await
            })
        })
    });
    Some(ex.run(state?.stop()))
}

/// Warren's WAL driven on a glommio executor on this thread: append a batch, wait until the
/// durable callback reports its last zxid, repeat.
struct WalBench {
    dir: TempDir,
    wal: Rc<Wal>,
    durable: LocalReceiver<i64>,
    runner: Task<()>,
    txns: Vec<Txn>,
    zxid: i64,
}

impl WalBench {
    async fn start(batch: usize) -> WalBench {
        let dir = bench_dir();
        let wal = Wal::new(dir.path().to_path_buf(), SEGMENT, true, Duration::from_secs(10), None);
        // The durable callback wakes the benchmark through a local channel, as the server's
        // owner is woken: no polling.
        let (tx, durable) = local_channel::new_unbounded::<i64>();
        let runner = glommio::spawn_local(
            wal.clone().run(move |z| drop(tx.try_send(z)), |e: &str| panic!("the log failed: {e}")),
        );
        let mut b = WalBench { dir, wal, durable, runner, txns: batch_txns(batch), zxid: 0 };
        // The first batch creates the first segment: outside any measurement.
        b.run(1).await;
        b
    }

    async fn run(&mut self, batches: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..batches {
            let last = renumber(&mut self.txns, &mut self.zxid);
            self.wal.append(&self.txns);
            while self.durable.recv().await.expect("the WAL runs") < last {}
        }
        start.elapsed()
    }

    /// Stops the group-commit loop; the directory is left to the caller.
    async fn stop(self) -> TempDir {
        let s = &self.wal.stats;
        assert_eq!(s.records.get(), self.zxid as u64, "every record reported durable");
        assert_eq!(s.fsyncs.get(), self.zxid as u64 / self.txns.len() as u64, "one fdatasync per batch");
        self.runner.cancel().await;
        self.dir
    }
}

#[derive(Clone, Copy)]
enum Prep {
    /// Preallocated by writing zeros: every later write overwrites allocated, written blocks.
    Zeros,
    /// Preallocated with fallocate (unwritten extents), like Warren's segments.
    Fallocate,
    /// Not preallocated: the file grows with each write.
    Grow,
}

impl Prep {
    fn name(self) -> &'static str {
        match self {
            Prep::Zeros => "plain_write_fdatasync",
            Prep::Fallocate => "plain_fallocate_fdatasync",
            Prep::Grow => "plain_append_fdatasync",
        }
    }
}

fn plain(g: &mut BenchmarkGroup<WallTime>, prep: Prep, batch: usize) {
    let mut state: Option<PlainBench> = None;
    g.bench_function(prep.name(), |b| {
        b.iter_custom(|iters| state.get_or_insert_with(|| PlainBench::new(prep, batch)).run(iters))
    });
}

/// The same records, encoded with `append_record`, written with pwrite and made durable with
/// fdatasync, one batch at a time.
struct PlainBench {
    dir: TempDir,
    prep: Prep,
    file: File,
    /// Segments started so far; the current one is `log.{files - 1}`.
    files: u64,
    pos: u64,
    txns: Vec<Txn>,
    zxid: i64,
    buf: Vec<u8>,
}

impl PlainBench {
    fn new(prep: Prep, batch: usize) -> PlainBench {
        let dir = bench_dir();
        let file = new_segment(dir.path(), 0, prep);
        PlainBench {
            dir,
            prep,
            file,
            files: 1,
            pos: HEADER_LEN as u64,
            txns: batch_txns(batch),
            zxid: 0,
            buf: Vec::new(),
        }
    }

    /// Time spent in `batches` commits, less the time spent starting new files (the WAL
    /// prepares its next segment in the background).
    fn run(&mut self, batches: u64) -> Duration {
        let mut excluded = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..batches {
            renumber(&mut self.txns, &mut self.zxid);
            self.buf.clear();
            for t in &self.txns {
                append_record(&mut self.buf, t);
            }
            if self.pos + self.buf.len() as u64 > SEGMENT {
                let t = Instant::now();
                self.roll();
                excluded += t.elapsed();
            }
            self.file.write_all_at(&self.buf, self.pos).unwrap();
            self.file.sync_data().unwrap();
            self.pos += self.buf.len() as u64;
        }
        start.elapsed() - excluded
    }

    fn roll(&mut self) {
        match self.prep {
            // Overwriting the written blocks again behaves exactly like the first pass.
            Prep::Zeros => {}
            // Fresh space: a second pass would be an overwrite of written blocks.
            Prep::Fallocate | Prep::Grow => {
                std::fs::remove_file(self.dir.path().join(format!("log.{}", self.files - 1))).unwrap();
                self.file = new_segment(self.dir.path(), self.files, self.prep);
                self.files += 1;
            }
        }
        self.pos = HEADER_LEN as u64;
    }
}

fn new_segment(dir: &Path, n: u64, prep: Prep) -> File {
    let f = File::options().read(true).write(true).create_new(true).open(dir.join(format!("log.{n}"))).unwrap();
    match prep {
        Prep::Zeros => {
            let zeros = vec![0u8; 1 << 20];
            for off in (0..SEGMENT).step_by(zeros.len()) {
                f.write_all_at(&zeros, off).unwrap();
            }
        }
        Prep::Fallocate => {
            // SAFETY: fallocate(2) on a file descriptor we own; mode 0, as glommio's pre_allocate.
            let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, SEGMENT as libc::off_t) };
            assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
        }
        Prep::Grow => {}
    }
    f.write_all_at(&encode_header(1), 0).unwrap();
    f.sync_all().unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
    f
}

/// The cross-check: per batch size, `rounds` rounds of one short chunk of each variant.
fn interleaved(rounds: usize) {
    let ex = executor();
    let mut dirs = Vec::new();
    println!("interleaved: {rounds} rounds per batch size; records/s from the median chunk; ratio = median of per-round ratios");
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>12} {:>11} {:>11}",
        "batch", "warren_wal", "plain_zeros", "plain_falloc", "plain_append", "wal/zeros", "wal/falloc"
    );
    for batch in BATCHES {
        // About 0.1 s per chunk.
        let chunk: u64 = match batch {
            1 | 8 => 300,
            64 => 200,
            _ => 100,
        };
        let mut wal = ex.run(WalBench::start(batch));
        let preps = [Prep::Zeros, Prep::Fallocate, Prep::Grow];
        let mut plains: Vec<PlainBench> = preps.iter().map(|&p| PlainBench::new(p, batch)).collect();
        // Seconds per batch, per round: [wal, zeros, fallocate, grow].
        let mut per_round: Vec<[f64; 4]> = Vec::new();
        for round in 0..rounds {
            let mut r = [0f64; 4];
            for k in 0..4 {
                let v = (round + k) % 4;
                let took = match v {
                    0 => ex.run(wal.run(chunk)),
                    _ => plains[v - 1].run(chunk),
                };
                r[v] = took.as_secs_f64() / chunk as f64;
            }
            per_round.push(r);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let rate = |i: usize| batch as f64 / median(per_round.iter().map(|r| r[i]).collect());
        let ratio = |i: usize| median(per_round.iter().map(|r| r[i] / r[0]).collect());
        println!(
            "{batch:>6} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>11.2} {:>11.2}",
            rate(0),
            rate(1),
            rate(2),
            rate(3),
            ratio(1),
            ratio(2)
        );
        dirs.push(ex.run(wal.stop()));
    }
    drop(ex);
    drop(dirs);
}

criterion_group!(benches, log_append);

fn main() {
    if let Ok(rounds) = std::env::var("LOG_APPEND_INTERLEAVED") {
        interleaved(rounds.parse().expect("LOG_APPEND_INTERLEAVED=<rounds>"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
