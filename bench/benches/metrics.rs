//! What the metrics cost the serving path and a scrape: one observation (an atomic add on the
//! owner's or the log writer's core) and one rendering of /metrics (on the metrics thread).
//! `cargo bench -p warren-bench --bench metrics`; results in results/metrics/.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warren::metrics::{render, Metrics, ProcessFigures, OPS};

fn metrics(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    let m = Metrics::new(0);
    g.bench_function("observe_request", |b| b.iter(|| m.observe_request(black_box("GETD"), false, black_box(420))));
    // A scrape of a server that has seen every op and every histogram filled.
    for (i, (_, names)) in OPS.iter().enumerate() {
        if let Some(n) = names.first() {
            m.observe_request(n, i % 2 == 0, 100 + i as u64 * 37);
        }
    }
    for v in [80, 300, 2_000, 40_000] {
        m.log_fsync_us.observe(v);
        m.snapshot_capture_us.observe(v * 10);
        m.snapshot_write_us.observe(v * 20);
        m.fsynctime.observe(v / 1000);
        m.log_batch_records.observe(v / 10);
        m.log_batch_bytes.observe(v * 100);
        m.peer_lag_zxids.observe(v / 100);
    }
    let p = ProcessFigures { now_wall_ms: 1_000, open_file_descriptor_count: 40, max_file_descriptor_count: 1024 };
    g.bench_function("render_scrape", |b| b.iter(|| render(black_box(&m), &p)));
    g.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
