//! Server metrics that any thread may record and any thread may render, without locks.
//!
//! The owner and the log writer record into atomics (one relaxed add per observation); the
//! metrics HTTP thread reads them and renders the Prometheus text format. Rendering never
//! touches the owner, so a scrape costs the serving cores nothing but a few cache misses.
//!
//! Two families of names: those Warren shares with ZooKeeper keep ZooKeeper's names and
//! Prometheus types (gauges, counters, and summaries with quantile labels as ZooKeeper's
//! Prometheus provider exports them), so ZooKeeper dashboards and alert rules work unchanged;
//! Warren's own figures are `warren_*` histograms with explicit buckets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A histogram with fixed bucket bounds, recorded with relaxed atomics.
pub struct Histogram {
    /// Inclusive upper bounds of the buckets, ascending, in the recorded unit.
    bounds: &'static [u64],
    /// One count per bound, plus one for values above the last bound.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

/// Microsecond buckets from 10 µs to 10 s, about three per decade.
pub const MICROS: &[u64] = &[
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Millisecond buckets, for the summaries that ZooKeeper reports in milliseconds.
pub const MILLIS: &[u64] = &[1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

/// Counts (records per log batch, zxids of lag): powers of two.
pub const COUNTS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576];

/// A point-in-time copy of a histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [u64],
    /// Per-bucket (not cumulative) counts; the last is the overflow bucket.
    pub counts: Vec<u64>,
    pub sum: u64,
    /// Smallest and largest value recorded (0 when empty).
    pub min: u64,
    pub max: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// Records `v`. Each histogram has one writer at a time (the owner, the log writer or the
    /// snapshot thread), so plain loads and stores do: a read-modify-write would cost the
    /// owner a locked instruction per field on every reply. Readers may see a value in
    /// `counts` before `sum`, which a scrape tolerates.
    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        let bump = |a: &AtomicU64, f: fn(u64, u64) -> u64, x: u64| a.store(f(a.load(Relaxed), x), Relaxed);
        bump(&self.counts[i], u64::wrapping_add, 1);
        bump(&self.sum, u64::wrapping_add, v);
        if v < self.min.load(Relaxed) {
            self.min.store(v, Relaxed);
        }
        if v > self.max.load(Relaxed) {
            self.max.store(v, Relaxed);
        }
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum.load(Relaxed),
            min: match self.min.load(Relaxed) {
                u64::MAX => 0,
                v => v,
            },
            max: self.max.load(Relaxed),
        }
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Relaxed);
        }
        self.sum.store(0, Relaxed);
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
    }
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The q-quantile (0..=1) estimated by linear interpolation inside its bucket; values in
    /// the overflow bucket are reported as the last bound. None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let Some(&hi) = self.bounds.get(i) else {
                    return self.bounds.last().map(|&b| b as f64);
                };
                let lo = if i == 0 { 0 } else { self.bounds[i - 1] };
                let within = (rank - seen as f64) / c as f64;
                return Some(lo as f64 + (hi - lo) as f64 * within);
            }
            seen += c;
        }
        self.bounds.last().map(|&b| b as f64)
    }
}

/// An integer that the owner publishes and the metrics thread reads.
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed)
    }
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Relaxed);
    }
}

/// Operation labels of the per-operation latency histogram (ZooKeeper's op names), with the
/// short names the core gives its replies (as `cons` shows them).
pub const OPS: &[(&str, &[&str])] = &[
    ("create", &["CREA"]),
    ("delete", &["DELE"]),
    ("setData", &["SETD"]),
    ("setACL", &["SETA"]),
    ("check", &["CHEC"]),
    ("multi", &["MULT"]),
    ("closeSession", &["CLOS"]),
    ("createSession", &["SESS"]),
    ("sync", &["SYNC", "sync"]),
    ("exists", &["EXIS"]),
    ("getData", &["GETD"]),
    ("getChildren", &["GETC"]),
    ("getACL", &["GETA"]),
    ("getAllChildrenNumber", &["GETACN"]),
    ("getEphemerals", &["GETE"]),
    ("multiRead", &["MLTR"]),
    ("ping", &["PING"]),
    ("setWatches", &["SETW"]),
    ("addWatch", &["ADDW"]),
    ("checkWatches", &["CHKW"]),
    ("removeWatches", &["REMW"]),
    ("whoAmI", &["HOMI"]),
    ("error", &["ERR"]),
    ("other", &[]),
];

/// Which [`OPS`] entry a reply's short op name counts under (a `match`, not a search: this
/// runs for every reply).
pub fn op_index(short: &str) -> usize {
    match short {
        "CREA" => 0,
        "DELE" => 1,
        "SETD" => 2,
        "SETA" => 3,
        "CHEC" => 4,
        "MULT" => 5,
        "CLOS" => 6,
        "SESS" => 7,
        "SYNC" | "sync" => 8,
        "EXIS" => 9,
        "GETD" => 10,
        "GETC" => 11,
        "GETA" => 12,
        "GETACN" => 13,
        "GETE" => 14,
        "MLTR" => 15,
        "PING" => 16,
        "SETW" => 17,
        "ADDW" => 18,
        "CHKW" => 19,
        "REMW" => 20,
        "HOMI" => 21,
        "ERR" => 22,
        _ => OPS.len() - 1,
    }
}

/// Everything the server measures. One per server process, shared by every thread.
pub struct Metrics {
    pub znode_count: Gauge,
    pub watch_count: Gauge,
    pub ephemerals_count: Gauge,
    pub approximate_data_size: Gauge,
    pub outstanding_requests: Gauge,
    pub num_alive_connections: Gauge,
    pub global_sessions: Gauge,
    pub local_sessions: Gauge,
    pub packets_received: Gauge,
    pub packets_sent: Gauge,
    pub last_zxid: Gauge,
    /// `srvr`'s latency figures (ms; the average times 1000 to keep three decimals).
    pub avg_latency_x1000: Gauge,
    pub min_latency: Gauge,
    pub max_latency: Gauge,
    /// 1 when this server answers clients (standalone, or following/leading a quorum).
    pub serving: Gauge,
    /// 1 when writes are refused and reads served: the log failed, or read-only mode.
    pub read_only: Gauge,
    /// Ensemble figures (0 standalone): voting members, connected learners, synced followers,
    /// learners being synced, and whether this server leads.
    pub quorum_size: Gauge,
    pub learners: Gauge,
    pub synced_followers: Gauge,
    pub synced_observers: Gauge,
    pub pending_syncs: Gauge,
    pub is_leader: Gauge,
    /// Slow fsyncs (over fsync.warningthresholdms), as ZooKeeper counts them.
    pub fsync_threshold_exceed_count: Gauge,
    /// Milliseconds (ZooKeeper's summaries).
    pub fsynctime: Histogram,
    pub snapshottime: Histogram,
    pub election_time: Histogram,
    /// Request latency in milliseconds of reads and of writes (`readlatency`, `updatelatency`).
    pub readlatency: Histogram,
    pub updatelatency: Histogram,
    /// Warren's own, in microseconds or counts.
    pub log_fsync_us: Histogram,
    pub log_batch_records: Histogram,
    pub log_batch_bytes: Histogram,
    pub op_latency_us: Vec<Histogram>,
    pub snapshot_capture_us: Histogram,
    pub snapshot_write_us: Histogram,
    /// Sampled by the leader every publication (100 ms), one value per synced learner.
    pub peer_lag_zxids: Histogram,
    /// Wall clock (ms) of the owner's last publication: the liveness probe fails when it stops.
    pub heartbeat_wall_ms: Gauge,
    /// Executors listening on the client port (the process is up once all of them are).
    pub client_listeners: Gauge,
    /// Wall clock of the process start, for `uptime`.
    pub started_wall_ms: i64,
}

impl Metrics {
    pub fn new(started_wall_ms: i64) -> Metrics {
        Metrics {
            znode_count: Gauge::default(),
            watch_count: Gauge::default(),
            ephemerals_count: Gauge::default(),
            approximate_data_size: Gauge::default(),
            outstanding_requests: Gauge::default(),
            num_alive_connections: Gauge::default(),
            global_sessions: Gauge::default(),
            local_sessions: Gauge::default(),
            packets_received: Gauge::default(),
            packets_sent: Gauge::default(),
            last_zxid: Gauge::default(),
            avg_latency_x1000: Gauge::default(),
            min_latency: Gauge::default(),
            max_latency: Gauge::default(),
            serving: Gauge::default(),
            read_only: Gauge::default(),
            quorum_size: Gauge::default(),
            learners: Gauge::default(),
            synced_followers: Gauge::default(),
            synced_observers: Gauge::default(),
            pending_syncs: Gauge::default(),
            is_leader: Gauge::default(),
            fsync_threshold_exceed_count: Gauge::default(),
            fsynctime: Histogram::new(MILLIS),
            snapshottime: Histogram::new(MILLIS),
            election_time: Histogram::new(MILLIS),
            readlatency: Histogram::new(MILLIS),
            updatelatency: Histogram::new(MILLIS),
            log_fsync_us: Histogram::new(MICROS),
            log_batch_records: Histogram::new(COUNTS),
            log_batch_bytes: Histogram::new(BYTES),
            op_latency_us: OPS.iter().map(|_| Histogram::new(MICROS)).collect(),
            snapshot_capture_us: Histogram::new(MICROS),
            snapshot_write_us: Histogram::new(MICROS),
            peer_lag_zxids: Histogram::new(COUNTS),
            heartbeat_wall_ms: Gauge::default(),
            client_listeners: Gauge::default(),
            started_wall_ms,
        }
    }

    /// A reply went out: `op` by its short name, `latency_us` from arrival to reply.
    pub fn observe_request(&self, op: &str, write: bool, latency_us: u64) {
        let ms = latency_us / 1000;
        if write {
            self.updatelatency.observe(ms);
        } else {
            self.readlatency.observe(ms);
        }
        self.op_latency_us[op_index(op)].observe(latency_us);
    }

    /// ZooKeeper's `srst`: latency figures start over.
    pub fn reset_latency(&self) {
        for h in [&self.readlatency, &self.updatelatency] {
            h.reset();
        }
    }
}

/// Bytes per log batch: 64 B to 64 MiB, powers of four.
pub const BYTES: &[u64] =
    &[64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20];

/// Figures read at render time by the rendering thread (not published by the owner).
#[derive(Debug, Clone, Default)]
pub struct ProcessFigures {
    pub now_wall_ms: i64,
    pub open_file_descriptor_count: i64,
    pub max_file_descriptor_count: i64,
}

/// Renders every metric in the Prometheus text exposition format (version 0.0.4).
pub fn render(m: &Metrics, p: &ProcessFigures) -> String {
    let mut out = String::with_capacity(16 << 10);
    let w = &mut out;
    gauge(w, "znode_count", "Number of znodes", m.znode_count.get());
    gauge(w, "watch_count", "Number of watches", m.watch_count.get());
    gauge(w, "ephemerals_count", "Number of ephemeral nodes", m.ephemerals_count.get());
    gauge(
        w,
        "approximate_data_size",
        "Approximate size of the data in the tree, in bytes",
        m.approximate_data_size.get(),
    );
    gauge(w, "outstanding_requests", "Requests received and not yet answered", m.outstanding_requests.get());
    gauge(w, "num_alive_connections", "Open client connections", m.num_alive_connections.get());
    gauge(w, "global_sessions", "Sessions known to the ensemble", m.global_sessions.get());
    gauge(w, "packets_received", "Client packets received", m.packets_received.get());
    gauge(w, "packets_sent", "Client packets sent", m.packets_sent.get());
    gauge(w, "uptime", "Milliseconds since the server started", (p.now_wall_ms - m.started_wall_ms).max(0));
    gauge(w, "open_file_descriptor_count", "Open file descriptors", p.open_file_descriptor_count);
    gauge(w, "max_file_descriptor_count", "Limit on open file descriptors", p.max_file_descriptor_count);
    gauge(w, "quorum_size", "Voting members of the ensemble", m.quorum_size.get());
    gauge(w, "learners", "Learners connected to this leader", m.learners.get());
    gauge(w, "synced_followers", "Followers in sync with this leader", m.synced_followers.get());
    gauge(w, "synced_observers", "Observers in sync with this leader", m.synced_observers.get());
    gauge(w, "pending_syncs", "Learners being synchronised by this leader", m.pending_syncs.get());
    header(w, "avg_latency", "Average request latency since start or the last srst, in milliseconds", "gauge");
    let _ = writeln!(w, "avg_latency {}", num(m.avg_latency_x1000.get() as f64 / 1000.0));
    gauge(
        w,
        "min_latency",
        "Smallest request latency since start or the last srst, in milliseconds",
        m.min_latency.get(),
    );
    gauge(
        w,
        "max_latency",
        "Largest request latency since start or the last srst, in milliseconds",
        m.max_latency.get(),
    );
    gauge(w, "local_sessions", "Sessions this server alone knows (local sessions)", m.local_sessions.get());
    for (name, help, h, advanced) in zookeeper_summaries(m) {
        summary(w, name, help, &h.snapshot(), advanced);
    }
    counter(
        w,
        "warren_log_slow_fsyncs",
        "Log fsyncs slower than fsync.warningthresholdms",
        m.fsync_threshold_exceed_count.get(),
    );

    gauge(w, "warren_serving", "1 when the server answers clients", m.serving.get());
    gauge(
        w,
        "warren_read_only",
        "1 when writes are refused and reads served: the log failed, or read-only mode (no quorum)",
        m.read_only.get(),
    );
    gauge(w, "warren_leader", "1 when this server leads the ensemble", m.is_leader.get());
    gauge(w, "warren_last_zxid", "Last zxid applied to the tree", m.last_zxid.get());
    histogram(w, "warren_log_fsync_seconds", "Duration of a log fdatasync", "", &m.log_fsync_us.snapshot(), 1e6, true);
    histogram(
        w,
        "warren_log_batch_records",
        "Transactions written per log batch (one fdatasync)",
        "",
        &m.log_batch_records.snapshot(),
        1.0,
        true,
    );
    histogram(w, "warren_log_batch_bytes", "Bytes written per log batch", "", &m.log_batch_bytes.snapshot(), 1.0, true);
    histogram(
        w,
        "warren_snapshot_capture_seconds",
        "Time the owner spends capturing a snapshot",
        "",
        &m.snapshot_capture_us.snapshot(),
        1e6,
        true,
    );
    histogram(
        w,
        "warren_snapshot_write_seconds",
        "Time to serialise and write a snapshot",
        "",
        &m.snapshot_write_us.snapshot(),
        1e6,
        true,
    );
    histogram(
        w,
        "warren_peer_lag_zxids",
        "How far a learner's acknowledged zxid trails the leader's last proposal",
        "",
        &m.peer_lag_zxids.snapshot(),
        1.0,
        true,
    );
    let mut first = true;
    for ((op, _), h) in OPS.iter().zip(&m.op_latency_us) {
        let s = h.snapshot();
        if s.count() == 0 {
            continue;
        }
        let label = format!("op=\"{op}\"");
        histogram(
            w,
            "warren_request_seconds",
            "Request latency from arrival to reply, per operation",
            &label,
            &s,
            1e6,
            first,
        );
        first = false;
    }
    out
}

fn header(w: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(w: &mut String, name: &str, help: &str, v: i64) {
    header(w, name, help, "gauge");
    let _ = writeln!(w, "{name} {v}");
}

fn counter(w: &mut String, name: &str, help: &str, v: i64) {
    header(w, name, help, "counter");
    let _ = writeln!(w, "{name} {v}");
}

/// The summaries Warren shares with ZooKeeper: name, help, histogram, and whether ZooKeeper
/// registers it at its ADVANCED detail level (more quantiles).
fn zookeeper_summaries(m: &Metrics) -> [(&'static str, &'static str, &Histogram, bool); 5] {
    [
        ("fsynctime", "Time of a log fsync, in milliseconds", &m.fsynctime, false),
        ("snapshottime", "Time to write a snapshot, in milliseconds", &m.snapshottime, false),
        (
            "election_time",
            "Time from not serving (start, lost leader) to serving, in milliseconds",
            &m.election_time,
            false,
        ),
        ("readlatency", "Read request latency, in milliseconds", &m.readlatency, true),
        ("updatelatency", "Write request latency, in milliseconds", &m.updatelatency, true),
    ]
}

/// The same summaries as `mntr` and the AdminServer's `monitor` print them:
/// `avg_`, `min_`, `max_`, `cnt_`, `sum_` and, for the advanced ones, `p50_` … `p999_`.
pub fn mntr_summaries(m: &Metrics) -> Vec<(String, crate::admin::MetricValue)> {
    use crate::admin::MetricValue::{Float, Int};
    let mut out = Vec::new();
    for (name, _, h, advanced) in zookeeper_summaries(m) {
        let s = h.snapshot();
        let n = s.count();
        let avg = if n == 0 { 0.0 } else { s.sum as f64 / n as f64 };
        out.push((format!("avg_{name}"), Float(avg)));
        out.push((format!("min_{name}"), Int(s.min as i64)));
        out.push((format!("max_{name}"), Int(s.max as i64)));
        out.push((format!("cnt_{name}"), Int(n as i64)));
        out.push((format!("sum_{name}"), Int(s.sum as i64)));
        if advanced {
            for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
                out.push((format!("{label}_{name}"), Int(s.quantile(q).unwrap_or(0.0).round() as i64)));
            }
        }
    }
    out
}

/// A summary as ZooKeeper's Prometheus provider exports it: quantile 0.5 (BASIC) or 0.5, 0.9
/// and 0.99 (ADVANCED), estimated here from the buckets, then `_count` and `_sum`.
fn summary(w: &mut String, name: &str, help: &str, s: &HistogramSnapshot, advanced: bool) {
    header(w, name, help, "summary");
    let quantiles: &[&str] = if advanced { &["0.5", "0.9", "0.99"] } else { &["0.5"] };
    for &q in quantiles {
        let v = s.quantile(q.parse().unwrap_or(0.5)).map_or("NaN".to_string(), num);
        let _ = writeln!(w, "{name}{{quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(w, "{name}_count {}\n{name}_sum {}", s.count(), s.sum);
}

/// `divisor` turns recorded units into the metric's unit (1e6: microseconds to seconds).
fn histogram(w: &mut String, name: &str, help: &str, labels: &str, s: &HistogramSnapshot, divisor: f64, head: bool) {
    if head {
        header(w, name, help, "histogram");
    }
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, c) in s.counts.iter().enumerate() {
        cumulative += c;
        let le = s.bounds.get(i).map_or("+Inf".to_string(), |&b| num(b as f64 / divisor));
        let _ = writeln!(w, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
    }
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(w, "{name}_sum{braces} {}", num(s.sum as f64 / divisor));
    let _ = writeln!(w, "{name}_count{braces} {}", s.count());
}

/// A float as Prometheus writes it: integers without a fraction, others shortest-exact.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_values_up_to_their_bound() {
        let h = Histogram::new(&[10, 100]);
        for v in [0, 10, 11, 100, 101, 5000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2]);
        assert_eq!(s.sum, 5222);
        assert_eq!(s.count(), 6);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let h = Histogram::new(&[10, 20, 30]);
        for _ in 0..10 {
            h.observe(15);
        }
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(15.0));
        assert_eq!(s.quantile(1.0), Some(20.0));
        assert_eq!(Histogram::new(&[1]).snapshot().quantile(0.5), None);
        h.observe(1_000);
        assert_eq!(h.snapshot().quantile(1.0), Some(30.0), "overflow reports the last bound");
    }

    #[test]
    fn render_writes_cumulative_buckets_and_summaries() {
        let m = Metrics::new(1_000);
        m.znode_count.set(7);
        m.log_fsync_us.observe(200);
        m.log_fsync_us.observe(20_000_000);
        m.observe_request("GETD", false, 1_500);
        m.observe_request("CREA", true, 3_000);
        let text = render(&m, &ProcessFigures { now_wall_ms: 4_000, ..Default::default() });
        assert!(text.contains("# TYPE znode_count gauge\nznode_count 7\n"));
        assert!(text.contains("uptime 3000\n"));
        assert!(text.contains("warren_log_fsync_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("warren_log_fsync_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("warren_log_fsync_seconds_count 2\n"));
        assert!(text.contains("warren_request_seconds_count{op=\"getData\"} 1\n"));
        assert!(text.contains("warren_request_seconds_count{op=\"create\"} 1\n"));
        assert_eq!(text.matches("# TYPE warren_request_seconds histogram").count(), 1);
        assert!(text.contains("# TYPE readlatency summary\nreadlatency{quantile=\"0.5\"} "));
        assert!(text.contains("updatelatency_count 1\nupdatelatency_sum 3\n"));
        assert!(
            text.contains("fsynctime{quantile=\"0.5\"} NaN\nfsynctime_count 0\n"),
            "basic summaries have the median only"
        );
        assert!(text.contains("readlatency{quantile=\"0.99\"} "));
        let mntr = mntr_summaries(&m);
        assert!(mntr.contains(&("cnt_updatelatency".to_string(), crate::admin::MetricValue::Int(1))));
        assert!(mntr.contains(&("max_updatelatency".to_string(), crate::admin::MetricValue::Int(3))));
        assert!(mntr.iter().any(|(k, _)| k == "p999_readlatency"));
        assert!(!mntr.iter().any(|(k, _)| k == "p999_fsynctime"));
    }

    #[test]
    fn op_index_agrees_with_the_table() {
        for (i, (_, names)) in OPS.iter().enumerate() {
            for n in *names {
                assert_eq!(op_index(n), i, "{n}");
            }
        }
    }

    #[test]
    fn unknown_ops_count_as_other() {
        assert_eq!(OPS[op_index("frobnicate")].0, "other");
        assert_eq!(OPS[op_index("GETC")].0, "getChildren");
    }
}
