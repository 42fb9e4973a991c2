//! Counting and summarising: latency histograms, error codes, throughput buckets and the
//! leader-kill figures. Everything here is pure and unit-tested.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Width of a throughput bucket.
pub const BUCKET_MS: u64 = 100;

#[derive(Default)]
pub struct Tally {
    pub reads: u64,
    pub writes: u64,
    pub errors: BTreeMap<i32, u64>,
    pub read_lat: Option<Histogram<u64>>,
    pub write_lat: Option<Histogram<u64>>,
}

pub fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

impl Tally {
    pub fn new() -> Tally {
        Tally { read_lat: Some(hist()), write_lat: Some(hist()), ..Default::default() }
    }

    pub fn add(&mut self, t: &Tally) {
        self.reads += t.reads;
        self.writes += t.writes;
        for (k, v) in &t.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        for (a, b) in [(&mut self.read_lat, &t.read_lat), (&mut self.write_lat, &t.write_lat)] {
            if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
                a.add(b).ok();
            }
        }
    }

    pub fn all_lat(&self) -> Histogram<u64> {
        let mut h = hist();
        for x in [&self.read_lat, &self.write_lat].into_iter().flatten() {
            h.add(x).ok();
        }
        h
    }
}

/// ZooKeeper's name for an error code (KeeperException.Code).
pub fn error_name(code: i32) -> &'static str {
    match code {
        0 => "Ok",
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -12 => "UnknownSession",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -125 => "QuotaExceeded",
        -127 => "ThrottledOp",
        _ => "Unknown",
    }
}

pub fn errors_text(e: &BTreeMap<i32, u64>) -> String {
    if e.is_empty() {
        return "none".into();
    }
    e.iter().map(|(c, n)| format!("{} ({c}) x{n}", error_name(*c))).collect::<Vec<_>>().join(", ")
}

pub fn errors_json(e: &BTreeMap<i32, u64>) -> Value {
    Value::Object(e.iter().map(|(c, n)| (c.to_string(), json!({"name": error_name(*c), "count": n}))).collect())
}

/// Latency percentiles in microseconds (all zero for an empty histogram).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pct {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub count: u64,
}

impl Pct {
    pub fn of(h: &Histogram<u64>) -> Pct {
        if h.is_empty() {
            return Pct::default();
        }
        Pct {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            count: h.len(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"p50_us": self.p50, "p90_us": self.p90, "p99_us": self.p99, "p999_us": self.p999, "max_us": self.max})
    }
}

/// The headline numbers of a run (or one phase of it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub seconds: f64,
    pub reads: u64,
    pub writes: u64,
    pub read: Pct,
    pub write: Pct,
    pub all: Pct,
    pub errors: BTreeMap<i32, u64>,
}

impl Summary {
    pub fn of(t: &Tally, seconds: f64) -> Summary {
        Summary {
            seconds,
            reads: t.reads,
            writes: t.writes,
            read: t.read_lat.as_ref().map(Pct::of).unwrap_or_default(),
            write: t.write_lat.as_ref().map(Pct::of).unwrap_or_default(),
            all: Pct::of(&t.all_lat()),
            errors: t.errors.clone(),
        }
    }
    pub fn reads_per_s(&self) -> f64 {
        self.reads as f64 / self.seconds
    }
    pub fn writes_per_s(&self) -> f64 {
        self.writes as f64 / self.seconds
    }
    pub fn ops_per_s(&self) -> f64 {
        (self.reads + self.writes) as f64 / self.seconds
    }
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The summary table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}   (latency in us)\n",
            "", "ops/s", "p50", "p90", "p99", "p99.9", "max"
        );
        let row = |name: &str, rate: f64, p: &Pct| {
            if p.count == 0 {
                format!("{name:<8} {rate:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "-", "-", "-", "-", "-")
            } else {
                format!("{name:<8} {rate:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9}\n", p.p50, p.p90, p.p99, p.p999, p.max)
            }
        };
        s += &row("total", self.ops_per_s(), &self.all);
        s += &row("getData", self.reads_per_s(), &self.read);
        s += &row("setData", self.writes_per_s(), &self.write);
        s += &format!("errors   {}\n", errors_text(&self.errors));
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "seconds": self.seconds,
            "ops_per_s": self.ops_per_s().round(),
            "reads_per_s": self.reads_per_s().round(),
            "writes_per_s": self.writes_per_s().round(),
            "latency_all": self.all.json(),
            "latency_read": self.read.json(),
            "latency_write": self.write.json(),
            "errors": errors_json(&self.errors),
            "error_count": self.error_count(),
        })
    }
}

/// One cell of a sweep's load grid: a system at an ensemble size and read ratio, and what the
/// run measured there (or why it could not be measured). Sweeps fill them; charts draw them.
pub struct LoadCell {
    pub system: String,
    pub nodes: usize,
    pub ratio: f64,
    pub res: Result<Summary, String>,
    /// The warm-up until stable that preceded the measurement, when the sweep asked for one.
    pub warmup: Option<crate::warmup::WarmUp>,
}

pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().reduce(f64::max)
}

/// Throughput around the kill, from per-BUCKET_MS completion counts since the phase start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dip {
    /// Mean ops/s over the second before the kill.
    pub baseline_ops_s: f64,
    /// Lowest bucket (ops/s) after the kill.
    pub min_ops_s: f64,
    /// Time after the kill spent below half the baseline (sum of such buckets).
    pub below_half_ms: u64,
    /// Start of the first bucket after the kill's own bucket back at >= 90 % of the baseline.
    pub recovered_ms: Option<u64>,
    /// (ms relative to the kill's bucket, ops/s) from 1 s before to 3 s after.
    pub series: Vec<(i64, f64)>,
}

pub fn dip(buckets: &[u64], kill_ms: u64, end_ms: u64) -> Dip {
    let kb = (kill_ms / BUCKET_MS) as usize;
    let end = ((end_ms / BUCKET_MS) as usize).min(buckets.len());
    let rate = |n: u64| n as f64 * 1000.0 / BUCKET_MS as f64;
    let before: Vec<f64> = buckets[kb.saturating_sub(10)..kb.min(end)].iter().map(|&n| rate(n)).collect();
    let baseline = if before.is_empty() { 0.0 } else { before.iter().sum::<f64>() / before.len() as f64 };
    let after: Vec<f64> = buckets.get(kb..end).unwrap_or(&[]).iter().map(|&n| rate(n)).collect();
    let min_ops_s = after.iter().copied().reduce(f64::min).unwrap_or(0.0);
    let below_half_ms = after.iter().filter(|&&r| r < baseline / 2.0).count() as u64 * BUCKET_MS;
    let recovered_ms =
        after.iter().enumerate().skip(1).find(|(_, &r)| r >= 0.9 * baseline).map(|(i, _)| i as u64 * BUCKET_MS);
    let from = kb.saturating_sub(10);
    let to = (kb + 31).min(end);
    let series = (from..to).map(|i| ((i as i64 - kb as i64) * BUCKET_MS as i64, rate(buckets[i]))).collect();
    Dip { baseline_ops_s: baseline, min_ops_s, below_half_ms, recovered_ms, series }
}

/// One leader kill.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KillTrial {
    pub trial: usize,
    /// myid of the killed leader.
    pub killed: usize,
    pub new_leader_ms: Option<f64>,
    /// myid of the new leader.
    pub new_leader: Option<usize>,
    /// Clients on surviving servers at the kill: ms until their first successful write issued
    /// after it (clients that never wrote again are counted in `survivors_without_write`).
    pub survivor_write_ms: Vec<f64>,
    pub survivors_without_write: usize,
    /// Clients that were on the killed server: ms until their first successful op after it.
    pub moved_op_ms: Vec<f64>,
    pub moved_clients: usize,
    /// Clients without a connection at the end of the phase.
    pub dropped: usize,
    pub errors: BTreeMap<i32, u64>,
    pub dip: Dip,
}

impl KillTrial {
    pub fn write_median(&self) -> Option<f64> {
        median(&self.survivor_write_ms)
    }
    pub fn write_max(&self) -> Option<f64> {
        max(&self.survivor_write_ms)
    }

    pub fn line(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.0}"));
        format!(
            "trial {}: killed leader {}; new leader {} after {} ms; writes again on survivors after median {} / \
             max {} ms ({} clients{}); clients of the killed server ({}) working again after median {} ms; \
             dropped {}; throughput {:.0} -> min {:.0} ops/s, below half for {} ms; errors {}",
            self.trial,
            self.killed,
            self.new_leader.map_or("-".into(), |l| l.to_string()),
            f(self.new_leader_ms),
            f(self.write_median()),
            f(self.write_max()),
            self.survivor_write_ms.len(),
            if self.survivors_without_write > 0 {
                format!(", {} never wrote again", self.survivors_without_write)
            } else {
                String::new()
            },
            self.moved_clients,
            f(median(&self.moved_op_ms)),
            self.dropped,
            self.dip.baseline_ops_s,
            self.dip.min_ops_s,
            self.dip.below_half_ms,
            errors_text(&self.errors)
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "trial": self.trial,
            "killed_server": self.killed,
            "new_leader": self.new_leader,
            "new_leader_ms": self.new_leader_ms,
            "survivor_write_recovery_ms": self.survivor_write_ms,
            "survivor_write_recovery_median_ms": self.write_median(),
            "survivor_write_recovery_max_ms": self.write_max(),
            "survivors_without_write": self.survivors_without_write,
            "moved_clients": self.moved_clients,
            "moved_first_op_ms": self.moved_op_ms,
            "dropped_clients": self.dropped,
            "errors": errors_json(&self.errors),
            "dip": {
                "bucket_ms": BUCKET_MS,
                "baseline_ops_s": self.dip.baseline_ops_s.round(),
                "min_ops_s": self.dip.min_ops_s.round(),
                "below_half_ms": self.dip.below_half_ms,
                "recovered_ms": self.dip.recovered_ms,
                "series": self.dip.series.iter().map(|(t, r)| json!([t, r.round()])).collect::<Vec<_>>(),
            },
        })
    }
}

/// Median and max over trials of the two headline recovery figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KillSummary {
    pub trials: usize,
    pub leader_median_ms: Option<f64>,
    pub leader_max_ms: Option<f64>,
    /// Over trials, of each trial's median write-recovery time.
    pub write_median_ms: Option<f64>,
    /// The worst client over all trials.
    pub write_max_ms: Option<f64>,
    pub min_ops_s: Option<f64>,
    pub errors: u64,
}

pub fn kill_summary(ts: &[KillTrial]) -> KillSummary {
    let leaders: Vec<f64> = ts.iter().filter_map(|t| t.new_leader_ms).collect();
    let writes: Vec<f64> = ts.iter().filter_map(|t| t.write_median()).collect();
    let worst: Vec<f64> = ts.iter().filter_map(|t| t.write_max()).collect();
    KillSummary {
        trials: ts.len(),
        leader_median_ms: median(&leaders),
        leader_max_ms: max(&leaders),
        write_median_ms: median(&writes),
        write_max_ms: max(&worst),
        min_ops_s: ts.iter().map(|t| t.dip.min_ops_s).reduce(f64::min),
        errors: ts.iter().map(|t| t.errors.values().sum::<u64>()).sum(),
    }
}

impl KillSummary {
    pub fn json(&self) -> Value {
        json!({
            "trials": self.trials,
            "new_leader_median_ms": self.leader_median_ms,
            "new_leader_max_ms": self.leader_max_ms,
            "write_recovery_median_ms": self.write_median_ms,
            "write_recovery_max_ms": self.write_max_ms,
            "min_ops_s": self.min_ops_s.map(f64::round),
            "errors": self.errors,
        })
    }

    pub fn line(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.0}"));
        format!(
            "leader kill over {} trial(s): new leader median {} / max {} ms; writes again (survivor clients) \
             median {} / max {} ms; lowest 100 ms bucket {} ops/s; {} errors",
            self.trials,
            f(self.leader_median_ms),
            f(self.leader_max_ms),
            f(self.write_median_ms),
            f(self.write_max_ms),
            f(self.min_ops_s),
            self.errors
        )
    }
}

/// Made-up sweep results for the sweep's and the charts' tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::warmup::WarmUp;

    pub fn summary(ops: u64, p50: u64) -> Summary {
        let p = Pct { p50, p90: p50 * 2, p99: p50 * 3, p999: p50 * 4, max: p50 * 5, count: ops };
        Summary {
            seconds: 1.0,
            reads: ops / 2,
            writes: ops - ops / 2,
            read: p,
            write: p,
            all: p,
            errors: Default::default(),
        }
    }

    pub fn cells() -> Vec<LoadCell> {
        let mut v = Vec::new();
        for (n, r, w, z) in
            [(1, 0.0, 100_000, 50_000), (1, 1.0, 800_000, 70_000), (3, 0.0, 0, 20_000), (3, 1.0, 0, 60_000)]
        {
            v.push(LoadCell {
                system: "warren".into(),
                nodes: n,
                ratio: r,
                res: if w > 0 { Ok(summary(w, 1000)) } else { Err("warren server 1 reports Mode: standalone".into()) },
                warmup: (w > 0).then(|| WarmUp { seconds: 5.0, stable: true, rates: vec![w as f64; 5] }),
            });
            let warmup = Some(WarmUp { seconds: 17.0 + n as f64, stable: n == 1, rates: vec![] });
            v.push(LoadCell { system: "zookeeper".into(), nodes: n, ratio: r, res: Ok(summary(z, 9000)), warmup });
        }
        for r in [0.0, 1.0] {
            v.push(LoadCell {
                system: "echo".into(),
                nodes: 1,
                ratio: r,
                res: Ok(summary(2_000_000, 200)),
                warmup: None,
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_maxima() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(max(&[1.0, 9.0, 3.0]), Some(9.0));
        assert_eq!(max(&[]), None);
    }

    #[test]
    fn summary_rates_and_percentiles() {
        let mut t = Tally::new();
        for us in 1..=1000u64 {
            t.read_lat.as_mut().unwrap().record(us).unwrap();
        }
        t.reads = 1000;
        t.write_lat.as_mut().unwrap().record(5000).unwrap();
        t.writes = 1;
        t.errors.insert(-4, 3);
        let s = Summary::of(&t, 2.0);
        assert_eq!(s.ops_per_s(), 500.5);
        assert_eq!(s.reads_per_s(), 500.0);
        assert!((499..=501).contains(&s.read.p50), "{:?}", s.read);
        assert!((899..=901).contains(&s.read.p90));
        assert!((989..=991).contains(&s.read.p99));
        assert_eq!(s.read.max, 1000);
        assert!((4995..=5010).contains(&s.write.p50), "{:?}", s.write);
        assert_eq!(s.all.count, 1001);
        assert_eq!(s.error_count(), 3);
        let table = s.table();
        assert!(table.contains("getData"), "{table}");
        assert!(table.contains("ConnectionLoss (-4) x3"), "{table}");
        let j = s.json();
        assert_eq!(j["errors"]["-4"]["name"], "ConnectionLoss");
        assert_eq!(j["latency_read"]["max_us"], 1000);
    }

    #[test]
    fn empty_histograms_render_as_dashes() {
        let s = Summary::of(&Tally::new(), 1.0);
        assert_eq!(s.write, Pct::default());
        assert!(s.table().lines().nth(3).unwrap().contains(" - "));
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        b.reads = 2;
        b.read_lat.as_mut().unwrap().record(10).unwrap();
        b.errors.insert(-101, 1);
        a.add(&b);
        a.add(&b);
        assert_eq!(a.reads, 4);
        assert_eq!(a.errors[&-101], 2);
        assert_eq!(a.read_lat.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn dip_measures_the_hole() {
        // 1000 per bucket (10k ops/s), a kill at 2000 ms, 3 empty buckets, one at half, then back.
        let mut b = vec![1000u64; 50];
        b[20] = 0;
        b[21] = 0;
        b[22] = 0;
        b[23] = 500;
        let d = dip(&b, 2000, 5000);
        assert_eq!(d.baseline_ops_s, 10_000.0);
        assert_eq!(d.min_ops_s, 0.0);
        assert_eq!(d.below_half_ms, 300);
        assert_eq!(d.recovered_ms, Some(400));
        assert_eq!(d.series.first(), Some(&(-1000, 10_000.0)));
        assert_eq!(d.series.iter().find(|(t, _)| *t == 300), Some(&(300, 5000.0)));
        assert_eq!(d.series.len(), 40);
    }

    #[test]
    fn kill_summary_takes_medians_over_trials() {
        let t = |leader: f64, writes: Vec<f64>, min: f64| KillTrial {
            new_leader_ms: Some(leader),
            survivor_write_ms: writes,
            dip: Dip { min_ops_s: min, ..Default::default() },
            ..Default::default()
        };
        let ts = vec![t(400.0, vec![100.0, 500.0, 450.0], 10.0), t(300.0, vec![700.0], 0.0), t(500.0, vec![], 5.0)];
        let s = kill_summary(&ts);
        assert_eq!(s.trials, 3);
        assert_eq!(s.leader_median_ms, Some(400.0));
        assert_eq!(s.leader_max_ms, Some(500.0));
        assert_eq!(s.write_median_ms, Some((450.0 + 700.0) / 2.0));
        assert_eq!(s.write_max_ms, Some(700.0));
        assert_eq!(s.min_ops_s, Some(0.0));
        assert!(ts[0].line().contains("median 450"), "{}", ts[0].line());
    }

    #[test]
    fn error_names_follow_zookeeper() {
        assert_eq!(error_name(-4), "ConnectionLoss");
        assert_eq!(error_name(-112), "SessionExpired");
        assert_eq!(error_name(-118), "SessionMoved");
        assert_eq!(error_name(-999), "Unknown");
        let mut e = BTreeMap::new();
        e.insert(-112, 2);
        assert_eq!(errors_text(&e), "SessionExpired (-112) x2");
    }
}
