//! `loadgen curve`: throughput against latency as the offered load rises. One ensemble per
//! system (started once, both kept up, only one loaded at a time), warmed until stable at each
//! read ratio, then measured at each step of sessions x requests in flight, the systems
//! alternating within a step. Writes curve.csv, curve.svg/png and README.md to --out: each
//! system at its own peak, and each at an equal p99.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::client;
use crate::stats::Summary;
use crate::sweep::Local;
use crate::target::{self, Ensemble, System};
use crate::warmup::{self, StableArgs, StableRule, WarmUp};
use crate::{measure, workload, RunArgs};

#[derive(clap::Args, Clone, Debug)]
pub struct CurveArgs {
    /// Servers per ensemble.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Read ratios, one curve per system each.
    #[arg(long, value_delimiter = ',', default_value = "0.9")]
    pub ratios: Vec<f64>,
    /// Offered load, SESSIONSxIN_FLIGHT per step, lightest first.
    #[arg(long, value_delimiter = ',', default_value = "1x1,2x4,4x8,8x8,16x16,26x32,32x64,48x64")]
    pub steps: Vec<String>,
    /// Systems, alternated within each step.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "warren,zookeeper")]
    pub systems: Vec<System>,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Unmeasured seconds at the start of each step (its sessions connect and fill the pipeline).
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// The warm-up load, SESSIONSxIN_FLIGHT (the sweep's load).
    #[arg(long, default_value = "26x32")]
    pub warm_load: String,
    #[command(flatten)]
    pub rule: StableRule,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "results/curve")]
    pub out: PathBuf,
    #[command(flatten)]
    pub local: Local,
}

/// One measured step.
#[derive(Clone, Debug)]
pub struct Point {
    pub system: String,
    pub ratio: f64,
    pub clients: usize,
    pub outstanding: usize,
    pub summary: Summary,
}

impl Point {
    fn ops(&self) -> f64 {
        self.summary.ops_per_s()
    }
    fn p99(&self) -> f64 {
        self.summary.all.p99 as f64
    }
}

/// `26x32` -> (26, 32).
pub fn parse_step(s: &str) -> Result<(usize, usize), String> {
    let (c, o) = s.trim().split_once('x').ok_or_else(|| format!("step {s:?}: expected SESSIONSxIN_FLIGHT"))?;
    let c: usize = c.parse().map_err(|_| format!("step {s:?}: bad session count"))?;
    let o: usize = o.parse().map_err(|_| format!("step {s:?}: bad in-flight count"))?;
    if c == 0 || o == 0 {
        return Err(format!("step {s:?}: both counts must be at least 1"));
    }
    Ok((c, o))
}

/// The highest throughput a curve reaches with p99 at most `target`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AtP99 {
    /// Along a step that crosses `target` (linear between its two ends), or a point at or under it.
    Reached(f64),
    /// Every step's p99 is under `target`: at least the curve's peak.
    AtLeast(f64),
    /// Even the lightest step's p99 is above `target`.
    Above,
}

/// `points` are (ops/s, p99) in step order. Every point at or under `target` is a candidate, and
/// so is the crossing of each segment from under `target` to over it, interpolated linearly.
pub fn throughput_at_p99(points: &[(f64, f64)], target: f64) -> AtP99 {
    if points.iter().all(|&(_, p)| p < target) {
        return match points.iter().map(|&(o, _)| o).reduce(f64::max) {
            Some(peak) => AtP99::AtLeast(peak),
            None => AtP99::Above,
        };
    }
    let mut best: Option<f64> = None;
    let mut keep = |v: f64| best = Some(best.map_or(v, |b| b.max(v)));
    for (i, &(o, p)) in points.iter().enumerate() {
        if p > target {
            continue;
        }
        keep(o);
        if let Some(&(o1, p1)) = points.get(i + 1) {
            if p1 > target {
                keep(o + (o1 - o) * (target - p) / (p1 - p));
            }
        }
    }
    best.map_or(AtP99::Above, AtP99::Reached)
}

/// The point of highest throughput.
fn peak(points: &[&Point]) -> Option<Point> {
    points.iter().max_by(|a, b| a.ops().total_cmp(&b.ops())).map(|p| (*p).clone())
}

fn run_args(a: &CurveArgs, s: System, ratio: f64, (clients, outstanding): (usize, usize)) -> RunArgs {
    RunArgs {
        warren_bin: a.local.warren_bin.clone(),
        ports: a.local.ports.clone(),
        read_ratio: ratio,
        clients,
        outstanding,
        value_size: a.local.value_size,
        keys: a.local.keys,
        duration: a.duration,
        warmup: a.settle,
        seed: a.seed,
        stable: a.rule(),
        ..RunArgs::cell(s, a.nodes)
    }
}

impl CurveArgs {
    fn rule(&self) -> StableArgs {
        StableArgs { warmup_until_stable: true, rule: self.rule.clone() }
    }

    fn validate(&self) -> Result<Vec<(usize, usize)>, String> {
        if self.ratios.is_empty() || self.systems.is_empty() || self.steps.is_empty() {
            return Err("--ratios, --systems and --steps must not be empty".into());
        }
        if self.systems.contains(&System::Echo) {
            return Err("curve compares ensembles: leave echo out of --systems".into());
        }
        parse_step(&self.warm_load)?;
        self.rule().validate()?;
        let steps = self.steps.iter().map(|s| parse_step(s)).collect::<Result<Vec<_>, _>>()?;
        for (i, s) in self.systems.iter().enumerate() {
            crate::validate(&run_args(self, *s, self.ratios[0], steps[0]))?;
            self.ports_of(i)?;
        }
        Ok(steps)
    }

    /// The i-th system's share of --ports.
    fn ports_of(&self, i: usize) -> Result<(u16, u16), String> {
        let (lo, hi) = target::parse_port_range(&self.local.ports)?;
        let share = (hi - lo + 1) / self.systems.len() as u16;
        if share < (self.nodes * 3) as u16 {
            return Err(format!("--ports {} is too small for {} ensembles", self.local.ports, self.systems.len()));
        }
        let first = lo + share * i as u16;
        Ok((first, first + share - 1))
    }
}

/// What a curve run found, for the page.
pub struct Curve {
    pub points: Vec<Point>,
    /// (system, ratio, warm-up).
    pub warmups: Vec<(String, f64, WarmUp)>,
}

pub fn curve(a: &CurveArgs) -> io::Result<()> {
    let steps = a.validate().map_err(io::Error::other)?;
    std::fs::create_dir_all(&a.out)?;
    let t0 = Instant::now();
    let mut ensembles: Vec<(System, Ensemble, Vec<SocketAddr>)> = Vec::new();
    let mut versions = Vec::new();
    for (i, &s) in a.systems.iter().enumerate() {
        let bin = crate::warren_bin(&run_args(a, s, a.ratios[0], steps[0]));
        let e = Ensemble::start(s, &bin, a.nodes, a.ports_of(i).map_err(io::Error::other)?)?;
        let servers = e.addrs();
        client::setup(&servers, a.local.keys, a.local.value_size)?;
        versions.push(format!("{} {}", s.name(), e.version()));
        eprintln!("[{:>5.0} s] started {} x{}", t0.elapsed().as_secs_f64(), s.name(), a.nodes);
        ensembles.push((s, e, servers));
    }
    let mut c = Curve { points: Vec::new(), warmups: Vec::new() };
    let warm_load = parse_step(&a.warm_load).map_err(io::Error::other)?;
    for &ratio in &a.ratios {
        for (s, _, servers) in &ensembles {
            let ra = run_args(a, *s, ratio, warm_load);
            let warm = warmup::until_stable(&workload(&ra, 1, Duration::ZERO), ra.clients, servers, &a.rule)?;
            eprintln!(
                "[{:>5.0} s] {} read ratio {ratio}: warm-up {}",
                t0.elapsed().as_secs_f64(),
                s.name(),
                warm.text()
            );
            c.warmups.push((s.name().into(), ratio, warm));
        }
        for (k, &step) in steps.iter().enumerate() {
            let mut order: Vec<usize> = (0..ensembles.len()).collect();
            if k % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let (s, _, servers) = &ensembles[i];
                let summary = measure(&run_args(a, *s, ratio, step), servers)?;
                eprintln!(
                    "[{:>5.0} s] {} read ratio {ratio} {}x{}: {:.0} ops/s, p50 {} us, p99 {} us, {} errors",
                    t0.elapsed().as_secs_f64(),
                    s.name(),
                    step.0,
                    step.1,
                    summary.ops_per_s(),
                    summary.all.p50,
                    summary.all.p99,
                    summary.error_count()
                );
                c.points.push(Point { system: s.name().into(), ratio, clients: step.0, outstanding: step.1, summary });
            }
        }
    }
    drop(ensembles);
    let machine = target::machine();
    let head = format!(
        "Generated by {} on {}.\n\nMachine: {} cores ({}), Linux {}; client and every server share it. \
         Versions: {}.\n\n",
        match &a.local.cite {
            Some(c) => format!("`bash ci/bench-sweep.sh`, which runs `{c}`,"),
            None => format!("`{}`", crate::command_line()),
        },
        crate::utc_stamp(false),
        machine["cores"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["kernel"].as_str().unwrap_or(""),
        versions.join("; ")
    );
    std::fs::write(a.out.join("curve.csv"), csv(&c.points))?;
    crate::chart::curve(&c.points, &a.out.join("curve")).map_err(io::Error::other)?;
    std::fs::write(a.out.join("README.md"), markdown(a, &head, &c))?;
    eprintln!("curve written to {} in {:.0} s", a.out.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

pub fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "system,read_ratio,sessions,in_flight_per_session,in_flight,ops_per_s,p50_us,p90_us,p99_us,p999_us,max_us,errors\n",
    );
    for p in points {
        let x = &p.summary;
        s += &format!(
            "{},{},{},{},{},{:.0},{},{},{},{},{},{}\n",
            p.system,
            p.ratio,
            p.clients,
            p.outstanding,
            p.clients * p.outstanding,
            x.ops_per_s(),
            x.all.p50,
            x.all.p90,
            x.all.p99,
            x.all.p999,
            x.all.max,
            x.error_count()
        );
    }
    s
}

fn name(system: &str) -> &str {
    match system {
        "warren" => "Warren",
        "zookeeper" => "ZooKeeper",
        other => other,
    }
}

fn ms(us: f64) -> String {
    format!("{:.1}", us / 1000.0)
}

fn at_text(x: AtP99) -> String {
    match x {
        AtP99::Reached(v) => format!("{v:.0}"),
        AtP99::AtLeast(v) => format!("≥ {v:.0} (p99 stays under it up to the heaviest step)"),
        AtP99::Above => "– (p99 above it even at the lightest step)".into(),
    }
}

pub fn markdown(a: &CurveArgs, head: &str, c: &Curve) -> String {
    let mut m = format!("# Throughput against latency, {} servers, every system warm\n\n", a.nodes);
    m += head;
    m += &format!(
        "Method: one ensemble per system, started once and kept up (only one is loaded at a time). At each read \
         ratio each is first warmed with {} at {} sessions x {} in flight; then each step runs {} s unmeasured (its \
         sessions connect) and {} s measured, the systems alternating within each step. getData/setData of {} B \
         values on {} keys, sessions spread round-robin over the servers. Latency is over all operations, from the \
         client's send to its reply; each server pinned to a fair share of the 2 cores as in the sweep \
         (`warren.cores=1`; ZooKeeper `-XX:ActiveProcessorCount=1`, its defaults otherwise).\n\n",
        a.rule().describe(),
        parse_step(&a.warm_load).map(|s| s.0).unwrap_or(0),
        parse_step(&a.warm_load).map(|s| s.1).unwrap_or(0),
        a.settle,
        a.duration,
        a.local.value_size,
        a.local.keys
    );
    m += "Warm-ups: ";
    m += &c
        .warmups
        .iter()
        .map(|(s, r, w)| format!("{} at read ratio {r}: {}", name(s), w.text()))
        .collect::<Vec<_>>()
        .join("; ");
    m += ".\n\n![p99 latency against throughput](curve.svg)\n\n";
    let mut ratios: Vec<f64> = c.points.iter().map(|p| p.ratio).collect();
    ratios.dedup();
    let mut systems: Vec<&str> = c.points.iter().map(|p| p.system.as_str()).collect();
    systems.sort();
    systems.dedup();
    for r in ratios {
        let of = |s: &str| c.points.iter().filter(|p| p.ratio == r && p.system == s).collect::<Vec<_>>();
        m += &format!("## Read ratio {r}\n\n### Each at its own peak\n\n");
        m += "| system | peak ops/s | at sessions x in flight | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n";
        let peaks: Vec<(&str, Point)> = systems.iter().filter_map(|&s| peak(&of(s)).map(|p| (s, p))).collect();
        for (s, p) in &peaks {
            m += &format!(
                "| {} | {:.0} | {}x{} | {} | {} |\n",
                name(s),
                p.ops(),
                p.clients,
                p.outstanding,
                ms(p.summary.all.p50 as f64),
                ms(p.p99())
            );
        }
        m += "\n### Each at an equal p99\n\nThe highest throughput each curve reaches with p99 at most the target \
              (linear between steps), the target being one system's p99 at its peak.\n\n";
        m += "| target p99 ms | ";
        m += &systems.iter().map(|s| format!("{} ops/s", name(s))).collect::<Vec<_>>().join(" | ");
        m += " |\n| --- |";
        m += &" --- |".repeat(systems.len());
        m += "\n";
        for (ps, p) in &peaks {
            m += &format!("| {} ({}'s peak) |", ms(p.p99()), name(ps));
            for &s in &systems {
                let pts: Vec<(f64, f64)> = of(s).iter().map(|q| (q.ops(), q.p99())).collect();
                m += &format!(" {} |", at_text(throughput_at_p99(&pts, p.p99())));
            }
            m += "\n";
        }
        m += "\n### Every step\n\n| sessions x in flight | system | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |\n";
        m += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for p in c.points.iter().filter(|p| p.ratio == r) {
            let x = &p.summary.all;
            m += &format!(
                "| {}x{} | {} | {:.0} | {} | {} | {} | {} | {} |\n",
                p.clients,
                p.outstanding,
                name(&p.system),
                p.ops(),
                ms(x.p50 as f64),
                ms(x.p90 as f64),
                ms(x.p99 as f64),
                ms(x.p999 as f64),
                p.summary.error_count()
            );
        }
        m += "\n";
    }
    m += "Raw data: `curve.csv` (one row per step and system).\n";
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::summary;

    #[test]
    fn steps_parse() {
        assert_eq!(parse_step("26x32"), Ok((26, 32)));
        assert_eq!(parse_step(" 1x1"), Ok((1, 1)));
        assert!(parse_step("26*32").is_err());
        assert!(parse_step("0x4").unwrap_err().contains("at least 1"));
        assert!(parse_step("4xz").unwrap_err().contains("in-flight"));
    }

    #[test]
    fn throughput_at_an_equal_p99() {
        // (ops/s, p99 us), lightest step first: rising, then past saturation.
        let zk = [(2_000.0, 1_000.0), (10_000.0, 4_000.0), (20_000.0, 20_000.0), (18_000.0, 60_000.0)];
        assert_eq!(throughput_at_p99(&zk, 20_000.0), AtP99::Reached(20_000.0), "its own peak");
        assert_eq!(throughput_at_p99(&zk, 12_000.0), AtP99::Reached(15_000.0), "halfway along 4 ms -> 20 ms");
        assert_eq!(throughput_at_p99(&zk, 500.0), AtP99::Above);
        assert_eq!(throughput_at_p99(&zk, 100_000.0), AtP99::AtLeast(20_000.0));
        // A dip: the best point under the target counts, not the first crossing.
        let dip = [(5_000.0, 1_000.0), (4_000.0, 3_000.0), (9_000.0, 2_000.0), (9_500.0, 10_000.0)];
        assert_eq!(throughput_at_p99(&dip, 2_500.0), AtP99::Reached(9_000.0 + 500.0 * 500.0 / 8_000.0));
        assert_eq!(throughput_at_p99(&[], 1.0), AtP99::Above);
        assert_eq!(throughput_at_p99(&zk[..3], 20_000.0), AtP99::Reached(20_000.0), "a peak at the last step");
    }

    fn args(extra: &[&str]) -> CurveArgs {
        crate::parse_flags(extra)
    }

    #[test]
    fn settings_and_port_shares() {
        let a = args(&[]);
        assert_eq!(a.validate().unwrap()[0], (1, 1));
        assert_eq!((a.ports_of(0), a.ports_of(1)), (Ok((21000, 21499)), Ok((21500, 21999))));
        assert!(args(&["--systems", "warren,echo"]).validate().unwrap_err().contains("echo"));
        assert!(args(&["--steps", "1x1,4"]).validate().unwrap_err().contains("SESSIONSxIN_FLIGHT"));
        assert!(args(&["--ports", "21000-21005"]).validate().unwrap_err().contains("too small"));
        assert!(args(&["--stable-windows", "1"]).validate().unwrap_err().contains("stable-windows"));
    }

    #[test]
    fn page_and_csv() {
        let pt = |system: &str, clients, ops, p50| Point {
            system: system.into(),
            ratio: 0.9,
            clients,
            outstanding: 4,
            summary: summary(ops, p50),
        };
        // fixtures::summary: p99 = 3 x p50.
        let c = Curve {
            points: vec![
                pt("warren", 1, 10_000, 100),
                pt("zookeeper", 1, 5_000, 1_000),
                pt("zookeeper", 8, 20_000, 4_000),
                pt("warren", 8, 80_000, 2_000),
            ],
            warmups: vec![("zookeeper".into(), 0.9, WarmUp { seconds: 21.0, stable: true, rates: vec![] })],
        };
        let md = markdown(&args(&[]), "head\n\n", &c);
        assert!(md.contains("| Warren | 80000 | 8x4 | 2.0 | 6.0 |"), "{md}");
        assert!(md.contains("| ZooKeeper | 20000 | 8x4 | 4.0 | 12.0 |"), "{md}");
        // At ZooKeeper's peak p99 (12 ms) Warren never got that slow.
        assert!(md.contains("| 12.0 (ZooKeeper's peak) | ≥ 80000 (p99 stays"), "{md}");
        // At Warren's peak p99 (6 ms): ZooKeeper 5k at 3 ms, 20k at 12 ms -> 10k.
        assert!(md.contains("| 6.0 (Warren's peak) | 80000 | 10000 |"), "{md}");
        assert!(md.contains("ZooKeeper at read ratio 0.9: 21 s"));
        let csv = csv(&c.points);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.contains("zookeeper,0.9,8,4,32,20000,4000,8000,12000,16000,20000,0\n"), "{csv}");
    }
}
