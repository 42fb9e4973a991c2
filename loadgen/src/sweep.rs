//! `loadgen sweep`: read ratios x ensemble sizes for Warren and ZooKeeper, measured cell by cell
//! with the two systems alternating (each cell on a fresh ensemble, one ensemble at a time), the
//! echo ceiling measured with the same client in the same run, and leader-kill recovery per
//! ensemble size. Writes load.csv, recovery.csv, runs.jsonl, README.md and the charts to --out,
//! and the same page to --readme.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::stats::{KillSummary, LoadCell, Summary};
use crate::target::System;
use crate::{run_once, RunArgs};

#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// Ensemble sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,13")]
    pub sizes: Vec<usize>,
    /// Read ratios.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.9,1")]
    pub ratios: Vec<f64>,
    /// Systems, alternated within each cell.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "warren,zookeeper")]
    pub systems: Vec<System>,
    /// Restrict Warren to these sizes (default: all); the other cells show as missing.
    #[arg(long, value_delimiter = ',')]
    pub warren_sizes: Option<Vec<usize>>,
    /// Restrict ZooKeeper to these sizes (default: all).
    #[arg(long, value_delimiter = ',')]
    pub zookeeper_sizes: Option<Vec<usize>>,
    /// Skip the echo ceiling.
    #[arg(long)]
    pub no_ceiling: bool,
    #[arg(long, default_value_t = 26)]
    pub clients: usize,
    #[arg(long, default_value_t = 32)]
    pub outstanding: usize,
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Warm-up seconds per cell (after --warmup-until-stable when given).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Load cells only (leader kills measure recovery and keep the fixed --warmup).
    #[command(flatten)]
    pub stable: crate::warmup::StableArgs,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Leader kills per system and ensemble size of 3 or more (0: none).
    #[arg(long, default_value_t = 3)]
    pub kill_trials: usize,
    /// Read ratio during leader kills.
    #[arg(long, default_value_t = 0.5)]
    pub kill_ratio: f64,
    /// Measured seconds of each leader-kill trial (the kill comes a third in).
    #[arg(long, default_value_t = 4.5)]
    pub kill_duration: f64,
    #[arg(long, default_value = "results/sweep")]
    pub out: PathBuf,
    /// Also write the page here (e.g. results/README.md).
    #[arg(long)]
    pub readme: Option<PathBuf>,
    #[command(flatten)]
    pub local: Local,
}

/// What sweeps and curves share: the data, the servers they start, how their pages cite them.
#[derive(clap::Args, Clone, Debug)]
pub struct Local {
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// The command to cite on the page (default: this one).
    #[arg(long)]
    pub cite: Option<String>,
    #[arg(long)]
    pub warren_bin: Option<PathBuf>,
    /// Ports for local servers (127.0.0.1), FIRST-LAST (a curve splits them between its systems).
    #[arg(long, default_value = "21000-21999")]
    pub ports: String,
}

pub struct KillCell {
    pub system: String,
    pub nodes: usize,
    pub res: Result<KillSummary, String>,
}

pub struct Meta {
    pub command: String,
    pub date: String,
    pub machine: String,
    pub workload: String,
    pub versions: String,
}

impl SweepArgs {
    fn runs(&self, s: System, n: usize) -> bool {
        let only = match s {
            System::Warren => &self.warren_sizes,
            System::Zookeeper => &self.zookeeper_sizes,
            System::Echo => return n == 1,
        };
        only.as_ref().is_none_or(|v| v.contains(&n))
    }

    fn run_args(&self, s: System, nodes: usize, ratio: f64) -> RunArgs {
        RunArgs {
            warren_bin: self.local.warren_bin.clone(),
            ports: self.local.ports.clone(),
            read_ratio: ratio,
            clients: self.clients,
            outstanding: self.outstanding,
            value_size: self.local.value_size,
            keys: self.local.keys,
            duration: self.duration,
            warmup: self.warmup,
            seed: self.seed,
            stable: self.stable.clone(),
            ..RunArgs::cell(s, nodes)
        }
    }
}

pub fn sweep(a: &SweepArgs) -> io::Result<()> {
    if a.sizes.is_empty() || a.ratios.is_empty() || a.systems.is_empty() {
        return Err(io::Error::other("--sizes, --ratios and --systems must not be empty"));
    }
    std::fs::create_dir_all(&a.out)?;
    let runs_path = a.out.join("runs.jsonl");
    let _ = std::fs::remove_file(&runs_path);
    let systems: Vec<System> = a.systems.iter().copied().filter(|s| *s != System::Echo).collect();
    // The plan: for each size and ratio, the systems alternating (order flipped every cell),
    // the echo ceiling beside the first size; then the leader kills for that size.
    let mut plan: Vec<(System, usize, f64, bool)> = Vec::new();
    let mut flip = false;
    for &n in &a.sizes {
        for &r in &a.ratios {
            let mut order = systems.clone();
            if flip {
                order.reverse();
            }
            flip = !flip;
            for s in order {
                plan.push((s, n, r, false));
            }
            if !a.no_ceiling && n == a.sizes[0] {
                plan.push((System::Echo, 1, r, false));
            }
        }
        if a.kill_trials > 0 && n >= 3 {
            for &s in &systems {
                plan.push((s, n, a.kill_ratio, true));
            }
        }
    }
    let pb = if io::stderr().is_terminal() {
        let pb = ProgressBar::new(plan.len() as u64);
        pb.set_style(ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}").unwrap());
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut load = Vec::new();
    let mut kills = Vec::new();
    let mut versions = std::collections::BTreeMap::new();
    let t0 = Instant::now();
    for (s, n, r, kill) in plan {
        let what =
            if kill { format!("{} x{n} leader kill", s.name()) } else { format!("{} x{n} read ratio {r}", s.name()) };
        pb.set_message(what.clone());
        let res = if a.runs(s, n) {
            let mut ra = a.run_args(s, n, r);
            if kill {
                ra.stable.warmup_until_stable = false;
                ra.kill_leader = true;
                ra.trials = a.kill_trials;
                ra.duration = a.kill_duration;
            }
            let o = run_once(&ra, false);
            if let Ok(o) = &o {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&runs_path)?;
                writeln!(f, "{}", serde_json::to_string(&o.record).unwrap())?;
                if s != System::Echo {
                    versions.entry(s.name()).or_insert_with(|| o.target_version.clone());
                }
            }
            o.map_err(|e| {
                let e = e.to_string();
                if e.lines().count() > 1 {
                    pb.suspend(|| eprintln!("{what}: {e}"));
                }
                e.lines().next().unwrap_or("").to_string()
            })
        } else {
            Err("not run (excluded by --warren-sizes/--zookeeper-sizes)".to_string())
        };
        let line = match &res {
            Ok(o) if kill => format!("{what}: {}", o.kill.as_ref().unwrap().line()),
            Ok(o) => format!(
                "{what}: {:.0} ops/s, p50 {} us, p99 {} us{}",
                o.summary.ops_per_s(),
                o.summary.all.p50,
                o.summary.all.p99,
                o.warmup.as_ref().map(|w| format!(", warm-up {}", w.text())).unwrap_or_default()
            ),
            Err(e) => format!("{what}: missing: {e}"),
        };
        pb.println(&line);
        if pb.is_hidden() {
            eprintln!("[{:>5.0} s] {line}", t0.elapsed().as_secs_f64());
        }
        pb.inc(1);
        if kill {
            kills.push(KillCell { system: s.name().into(), nodes: n, res: res.map(|o| o.kill.unwrap()) });
        } else {
            let (res, warmup) = match res {
                Ok(o) => (Ok(o.summary), o.warmup),
                Err(e) => (Err(e), None),
            };
            load.push(LoadCell { system: s.name().into(), nodes: n, ratio: r, res, warmup });
        }
    }
    pb.finish_and_clear();

    let machine = crate::target::machine();
    let meta = Meta {
        command: a.local.cite.clone().unwrap_or_else(crate::command_line),
        date: crate::utc_stamp(false),
        machine: format!(
            "{} cores ({}), {:.0} GiB memory, Linux {}",
            machine["cores"],
            machine["cpu"].as_str().unwrap_or(""),
            machine["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64,
            machine["kernel"].as_str().unwrap_or("")
        ),
        workload: format!(
            "{} sessions spread round-robin over the servers, {} requests in flight each, getData/setData of \
             {} B values on {} keys; per cell a fresh ensemble, {}{} s warm-up + {} s measured; leader kills at \
             read ratio {}, {} trial(s) of {} s, the kill {:.1} s into the measured window",
            a.clients,
            a.outstanding,
            a.local.value_size,
            a.local.keys,
            match a.stable.warmup_until_stable {
                true => format!("warmed up with {}, then ", a.stable.describe()),
                false => String::new(),
            },
            a.warmup,
            a.duration,
            a.kill_ratio,
            a.kill_trials,
            a.kill_duration,
            a.kill_duration / 3.0
        ),
        versions: versions.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join("; "),
    };
    std::fs::write(a.out.join("load.csv"), load_csv(&load))?;
    std::fs::write(a.out.join("recovery.csv"), kill_csv(&kills))?;
    crate::chart::throughput(&load, &a.out.join("throughput")).map_err(io::Error::other)?;
    crate::chart::latency(&load, &a.out.join("latency")).map_err(io::Error::other)?;
    std::fs::write(a.out.join("README.md"), markdown(&meta, &load, &kills, &a.sizes, &a.ratios, ""))?;
    if let Some(readme) = &a.readme {
        let prefix = relative_prefix(readme, &a.out);
        std::fs::write(readme, markdown(&meta, &load, &kills, &a.sizes, &a.ratios, &prefix))?;
    }
    eprintln!("sweep written to {} in {:.0} s", a.out.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

/// How a page at `page` refers to files in `dir` ("sweep/" for results/README.md and results/sweep).
pub fn relative_prefix(page: &Path, dir: &Path) -> String {
    let base = page.parent().unwrap_or(Path::new(""));
    match dir.strip_prefix(base) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => format!("{}/", dir.display()),
    }
}

fn find<'a>(cells: &'a [LoadCell], system: &str, nodes: usize, ratio: f64) -> Option<&'a Summary> {
    cells.iter().find(|c| c.system == system && c.nodes == nodes && c.ratio == ratio).and_then(|c| c.res.as_ref().ok())
}

/// The echo ceiling at `ratio` (measured once per ratio, at one node).
fn ceiling(cells: &[LoadCell], ratio: f64) -> Option<f64> {
    cells
        .iter()
        .find(|c| c.system == "echo" && c.ratio == ratio)
        .and_then(|c| c.res.as_ref().ok())
        .map(|s| s.ops_per_s())
}

pub fn load_csv(cells: &[LoadCell]) -> String {
    let mut s = String::from(
        "system,nodes,read_ratio,ops_per_s,reads_per_s,writes_per_s,p50_us,p90_us,p99_us,p999_us,max_us,\
         read_p50_us,read_p99_us,write_p50_us,write_p99_us,errors,ceiling_ops_per_s,fraction_of_ceiling,\
         warmup_s,warmup_stable,missing\n",
    );
    for c in cells {
        let ceil = ceiling(cells, c.ratio);
        let (warm_s, warm_stable) = match &c.warmup {
            Some(w) => (format!("{:.1}", w.seconds), w.stable.to_string()),
            None => (String::new(), String::new()),
        };
        match &c.res {
            Ok(x) => {
                let frac = ceil.map(|e| format!("{:.4}", x.ops_per_s() / e)).unwrap_or_default();
                s += &format!(
                    "{},{},{},{:.0},{:.0},{:.0},{},{},{},{},{},{},{},{},{},{},{},{},{warm_s},{warm_stable},\n",
                    c.system,
                    c.nodes,
                    c.ratio,
                    x.ops_per_s(),
                    x.reads_per_s(),
                    x.writes_per_s(),
                    x.all.p50,
                    x.all.p90,
                    x.all.p99,
                    x.all.p999,
                    x.all.max,
                    x.read.p50,
                    x.read.p99,
                    x.write.p50,
                    x.write.p99,
                    x.error_count(),
                    ceil.map(|e| format!("{e:.0}")).unwrap_or_default(),
                    frac
                );
            }
            Err(e) => {
                s += &format!("{},{},{},,,,,,,,,,,,,,,,,,{}\n", c.system, c.nodes, c.ratio, csv_field(e));
            }
        }
    }
    s
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn kill_csv(cells: &[KillCell]) -> String {
    let mut s = String::from(
        "system,nodes,trials,new_leader_median_ms,new_leader_max_ms,write_recovery_median_ms,\
         write_recovery_max_ms,min_ops_s,errors,missing\n",
    );
    let f = |x: Option<f64>| x.map(|v| format!("{v:.0}")).unwrap_or_default();
    for c in cells {
        match &c.res {
            Ok(k) => {
                s += &format!(
                    "{},{},{},{},{},{},{},{},{},\n",
                    c.system,
                    c.nodes,
                    k.trials,
                    f(k.leader_median_ms),
                    f(k.leader_max_ms),
                    f(k.write_median_ms),
                    f(k.write_max_ms),
                    f(k.min_ops_s),
                    k.errors
                )
            }
            Err(e) => s += &format!("{},{},,,,,,,,{}\n", c.system, c.nodes, csv_field(e)),
        }
    }
    s
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) => {
            let v = v.round() as i64;
            let digits = v.abs().to_string();
            let mut out = String::new();
            for (i, ch) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(ch);
            }
            if v < 0 {
                format!("-{out}")
            } else {
                out
            }
        }
        None => "–".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn pair(a: Option<f64>, b: Option<f64>) -> String {
    if a.is_none() && b.is_none() {
        return "–".into();
    }
    format!("{} / {}", num(a), num(b))
}

pub fn markdown(
    meta: &Meta,
    load: &[LoadCell],
    kills: &[KillCell],
    sizes: &[usize],
    ratios: &[f64],
    img: &str,
) -> String {
    let ops = |s: &str, n: usize, r: f64| find(load, s, n, r).map(Summary::ops_per_s);
    let mut m = String::new();
    m += "# Warren vs Apache ZooKeeper 3.8: throughput, latency and leader-kill recovery by ensemble size\n\n";
    m += &format!("Generated by `bash ci/bench-sweep.sh`, which runs `{}`, on {}.\n\n", meta.command, meta.date);
    m += &format!("Machine: {}. Client and every server share it.\n\n", meta.machine);
    m += &format!("Workload: {}.\n\n", meta.workload);
    if !meta.versions.is_empty() {
        m += &format!("Versions: {}.\n\n", meta.versions);
    }
    m += "**13 servers plus the load generator on 2 cores is what this machine allows.** Every ensemble here \
          runs all its members and the client on the same 2 cores (each server pinned to a fair share: \
          `warren.cores=1`; ZooKeeper `-XX:ActiveProcessorCount=1` and a small heap), so larger ensembles \
          measure CPU contention as much as replication: these are not the ZooKeeper paper's dedicated-server \
          figures (3 servers 87k reads/s, 13 servers 460k reads/s), and the trend with size is the opposite \
          of the paper's for reads. Cells are single short runs: expect ±10–20 % noise.\n\n";
    m += "The echo ceiling is loadgen's echo server answering the same client with canned replies (one \
          process, no storage): what client and loopback can do at all. `–` marks a cell not measured \
          (a size left out with --warren-sizes or --zookeeper-sizes).\n\n";
    m += "## Throughput (ops/s)\n\n";
    m += "| servers | read ratio | Warren | ZooKeeper | echo ceiling | Warren / ZooKeeper | Warren / ceiling | ZooKeeper / ceiling |\n";
    m += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for &n in sizes {
        for &r in ratios {
            let (w, z, e) = (ops("warren", n, r), ops("zookeeper", n, r), ceiling(load, r));
            m += &format!(
                "| {n} | {r} | {} | {} | {} | {} | {} | {} |\n",
                num(w),
                num(z),
                num(e),
                ratio(w, z),
                ratio(w, e),
                ratio(z, e)
            );
        }
    }
    m += &format!("\n![throughput against read ratio]({img}throughput.svg)\n\n");
    m += "## Latency (microseconds, all operations, from the client's send to its reply)\n\n";
    m += "Warm-up: how long the cell's warm-up until stable took before its fixed warm-up and measured \
          window (`–`: none asked for).\n\n";
    m += "| servers | read ratio | system | p50 | p90 | p99 | p99.9 | max | errors | warm-up |\n";
    m += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for &n in sizes {
        for &r in ratios {
            for s in ["warren", "zookeeper"] {
                let warm = load
                    .iter()
                    .find(|c| c.system == s && c.nodes == n && c.ratio == r)
                    .and_then(|c| c.warmup.as_ref())
                    .map_or("–".into(), |w| w.text());
                match find(load, s, n, r) {
                    Some(x) => {
                        let p = x.all;
                        m += &format!(
                            "| {n} | {r} | {s} | {} | {} | {} | {} | {} | {} | {warm} |\n",
                            num(Some(p.p50 as f64)),
                            num(Some(p.p90 as f64)),
                            num(Some(p.p99 as f64)),
                            num(Some(p.p999 as f64)),
                            num(Some(p.max as f64)),
                            x.error_count()
                        )
                    }
                    None => m += &format!("| {n} | {r} | {s} | – | – | – | – | – | – | – |\n"),
                }
            }
        }
    }
    m += &format!("\n![latency percentiles against read ratio]({img}latency.svg)\n\n");
    m += "## Leader kill (kill -9 of the leader mid-run)\n\n";
    m += "These trials measure recovery, not steady throughput: they run on fresh ensembles after the fixed \
          warm-up only, so the warm-up until stable above does not apply to them and leaves them unaffected.\n\n";
    m += "New leader: time from the kill until some survivor's `srvr` says `Mode: leader`. Writes again: per \
          client connected to a surviving server, time from the kill until its first successful setData \
          issued after the kill; the median over clients per trial, then the median of trials (max: the \
          worst client of any trial). Lowest bucket: the fewest completions in a 100 ms window after the \
          kill, as ops/s. Errors: requests lost in flight when connections dropped (ConnectionLoss) and \
          error replies, over all trials. Figures in ms, median / max over trials.\n\n";
    m += "| servers | Warren new leader | ZooKeeper new leader | Warren / ZooKeeper | Warren writes again | ZooKeeper writes again | Warren / ZooKeeper | Warren lowest bucket | ZooKeeper lowest bucket | Warren / ceiling | ZooKeeper / ceiling | errors W / Z |\n";
    m += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    let kill_ratio = load.iter().map(|c| c.ratio);
    let _ = kill_ratio;
    for &n in sizes.iter().filter(|&&n| n >= 3) {
        let get = |s: &str| kills.iter().find(|k| k.system == s && k.nodes == n).and_then(|k| k.res.as_ref().ok());
        let (w, z) = (get("warren"), get("zookeeper"));
        if w.is_none() && z.is_none() && !kills.iter().any(|k| k.nodes == n) {
            continue;
        }
        let ceil = ceiling(load, 0.5);
        m += &format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            pair(w.and_then(|k| k.leader_median_ms), w.and_then(|k| k.leader_max_ms)),
            pair(z.and_then(|k| k.leader_median_ms), z.and_then(|k| k.leader_max_ms)),
            ratio(w.and_then(|k| k.leader_median_ms), z.and_then(|k| k.leader_median_ms)),
            pair(w.and_then(|k| k.write_median_ms), w.and_then(|k| k.write_max_ms)),
            pair(z.and_then(|k| k.write_median_ms), z.and_then(|k| k.write_max_ms)),
            ratio(w.and_then(|k| k.write_median_ms), z.and_then(|k| k.write_median_ms)),
            num(w.and_then(|k| k.min_ops_s)),
            num(z.and_then(|k| k.min_ops_s)),
            ratio(w.and_then(|k| k.min_ops_s), ceil),
            ratio(z.and_then(|k| k.min_ops_s), ceil),
            w.map_or("–".into(), |k| k.errors.to_string()),
            z.map_or("–".into(), |k| k.errors.to_string()),
        );
    }
    let missing: Vec<String> = load
        .iter()
        .filter_map(|c| c.res.as_ref().err().map(|e| (format!("{} x{} read ratio {}", c.system, c.nodes, c.ratio), e)))
        .chain(
            kills
                .iter()
                .filter_map(|c| c.res.as_ref().err().map(|e| (format!("{} x{} leader kill", c.system, c.nodes), e))),
        )
        .filter(|(_, e)| !e.starts_with("not run"))
        .map(|(w, e)| format!("- {w}: {e}"))
        .collect();
    if !missing.is_empty() {
        m += "\n## Cells not measured\n\n";
        m += &missing.join("\n");
        m += "\n";
    }
    m += "\nRaw data: `load.csv`, `recovery.csv` and one full JSON record per cell in `runs.jsonl` (per-trial \
          recovery figures and the throughput around each kill in 100 ms buckets), all in `results/sweep/`.\n";
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::cells;

    fn meta() -> Meta {
        Meta {
            command: "loadgen sweep".into(),
            date: "2026-01-01T00:00:00Z".into(),
            machine: "2 cores".into(),
            workload: "w".into(),
            versions: "zookeeper 3.8.0".into(),
        }
    }

    #[test]
    fn csv_has_a_row_per_cell_and_fractions_of_the_ceiling() {
        let csv = load_csv(&cells());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 10);
        let cols = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() >= cols), "{csv}");
        assert!(
            lines.contains(
                &"zookeeper,1,0,50000,25000,25000,9000,18000,27000,36000,45000,9000,27000,9000,27000,0,2000000,0.0250,\
                  18.0,true,"
            ),
            "{csv}"
        );
        assert!(csv.contains("warren,3,0,,,,,,,,,,,,,,,,,,\"warren server 1 reports Mode: standalone\""), "{csv}");
        assert!(csv.contains("zookeeper,3,1,60000,") && csv.contains(",20.0,false,\n"), "{csv}");
    }

    #[test]
    fn markdown_tables_handle_missing_cells() {
        let kills = vec![
            KillCell {
                system: "zookeeper".into(),
                nodes: 3,
                res: Ok(KillSummary {
                    trials: 3,
                    leader_median_ms: Some(400.0),
                    leader_max_ms: Some(450.0),
                    write_median_ms: Some(420.0),
                    write_max_ms: Some(1200.0),
                    min_ops_s: Some(0.0),
                    errors: 17,
                }),
            },
            KillCell { system: "warren".into(), nodes: 3, res: Err("no ensembles".into()) },
        ];
        let md = markdown(&meta(), &cells(), &kills, &[1, 3], &[0.0, 1.0], "sweep/");
        assert!(md.contains("| 1 | 0 | 100,000 | 50,000 | 2,000,000 | 2.00 | 0.05 | 0.03 |"), "{md}");
        assert!(md.contains("| 3 | 0 | – | 20,000 | 2,000,000 | – | – | 0.01 |"), "{md}");
        assert!(md.contains("| 3 | 1 | warren | – | – | – | – | – | – | – |"), "{md}");
        assert!(md.contains("| 1 | 1 | zookeeper | 9,000 | 18,000 | 27,000 | 36,000 | 45,000 | 0 | 18 s |"), "{md}");
        assert!(
            md.contains("| 3 | 0 | zookeeper | 9,000 | 18,000 | 27,000 | 36,000 | 45,000 | 0 | 20 s (not stable) |")
        );
        assert!(md.contains("| 1 | 0 | warren | 1,000 | 2,000 | 3,000 | 4,000 | 5,000 | 0 | 5 s |"), "{md}");
        assert!(md.contains("measure recovery"));
        assert!(md.contains("| 3 | – | 400 / 450 | – | – | 420 / 1,200 | – | – | 0 |"), "{md}");
        assert!(md.contains("(sweep/throughput.svg)"));
        assert!(md.contains("13 servers plus the load generator on 2 cores is what this machine allows"));
        assert!(md.contains("- warren x3 leader kill: no ensembles"));
        let kc = kill_csv(&kills);
        assert!(kc.contains("zookeeper,3,3,400,450,420,1200,0,17,\n"), "{kc}");
    }

    #[test]
    fn numbers_and_prefixes() {
        assert_eq!(num(Some(1234567.4)), "1,234,567");
        assert_eq!(num(Some(999.0)), "999");
        assert_eq!(num(None), "–");
        assert_eq!(relative_prefix(Path::new("results/README.md"), Path::new("results/sweep")), "sweep/");
        assert_eq!(relative_prefix(Path::new("results/sweep/README.md"), Path::new("results/sweep")), "");
    }

    #[test]
    fn plan_filters_sizes() {
        let a = SweepArgs::parse_from_args(&["--warren-sizes", "1"]);
        assert!(a.runs(System::Warren, 1));
        assert!(!a.runs(System::Warren, 3));
        assert!(a.runs(System::Zookeeper, 13));
        assert_eq!(a.sizes, vec![1, 3, 5, 13]);
        assert_eq!(a.ratios, vec![0.0, 0.5, 0.9, 1.0]);
    }

    impl SweepArgs {
        fn parse_from_args(extra: &[&str]) -> SweepArgs {
            crate::parse_flags(extra)
        }
    }
}
