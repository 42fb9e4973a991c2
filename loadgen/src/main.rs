//! loadgen: pipelined getData/setData load against any ZooKeeper-protocol server or ensemble,
//! leader-kill recovery measurements, sweeps over read ratios and ensemble sizes (Warren vs
//! ZooKeeper vs the loopback ceiling), and the trivial echo server that is that ceiling.
//!
//! See `loadgen run --help` and `loadgen sweep --help`; results/README.md shows the latest sweep.

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

mod chart;
mod client;
mod curve;
mod sessions;
mod stats;
mod sweep;
mod target;
mod warmup;

use client::{Shared, Workload, DISCONNECTED};
use stats::{dip, kill_summary, KillSummary, KillTrial, Summary, Tally, BUCKET_MS};
use target::{Ensemble, Mode, System};

/// `loadgen [run] FLAGS`: `run` is the default, so `loadgen --read-ratio 0.9 --nodes 13` is a
/// run against a local 13-server Warren ensemble.
#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for ZooKeeper-protocol servers and ensembles",
    after_help = "Without a subcommand, loadgen runs `run` with the flags given (see `loadgen run --help`).",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a workload against a server or an ensemble (started locally, or --connect).
    Run(RunArgs),
    /// Read ratios x ensemble sizes for Warren and ZooKeeper (interleaved), plus the echo
    /// ceiling and leader-kill recovery: CSV, markdown and charts.
    Sweep(sweep::SweepArgs),
    /// Throughput against latency as the offered load (sessions x in flight) rises, Warren and
    /// ZooKeeper warmed once and measured step by step, interleaved: CSV, markdown and a chart.
    Curve(curve::CurveArgs),
    /// Open (and close) sessions as fast as the servers take them (see `loadgen sessions --help`).
    Sessions(sessions::SessionsArgs),
    /// A trivial server answering loadgen's requests with canned replies.
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:2999")]
        listen: SocketAddr,
    },
}

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Servers already running, `host:port[,host:port...]`. Without it, `--system` and
    /// `--nodes` start a local ensemble.
    #[arg(long)]
    pub connect: Option<String>,
    /// What to start locally when --connect is not given (echo = the loopback ceiling).
    #[arg(long, value_enum, default_value = "warren")]
    pub system: System,
    /// Servers to start locally (1 = standalone).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// The warren binary for --system warren (default: beside loadgen).
    #[arg(long)]
    pub warren_bin: Option<PathBuf>,
    /// Ports for local servers (127.0.0.1), FIRST-LAST.
    #[arg(long, default_value = "21000-21999")]
    pub ports: String,
    /// Fraction of getData (the rest is setData).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Sessions, spread over the servers round-robin. The ZooKeeper paper's experiment used
    /// 250 sessions x 100 outstanding on dedicated servers; on one shared 2-core machine that
    /// load collapses ZooKeeper 3.8 (see docs/design.md), so the default keeps its shape (100
    /// outstanding, 1 KiB values, round-robin spread) with fewer sessions.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 100)]
    pub outstanding: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Measured seconds (per trial).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds before the measured ones (per trial; after --warmup-until-stable).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    #[command(flatten)]
    pub stable: warmup::StableArgs,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Kill -9 the leader during the measured window and report recovery (local ensembles).
    #[arg(long)]
    pub kill_leader: bool,
    /// Seconds into the measured window at which to kill the leader (default: a third in).
    #[arg(long)]
    pub kill_at: Option<f64>,
    /// Leader kills, with the killed server restarted and rejoined between them.
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Append a one-line JSON summary here (the format ci/bench_standalone.py reads).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the full JSON record of the run here (default results/runs/<UTC time>.json,
    /// or none when --json is given).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Write no JSON record.
    #[arg(long)]
    pub no_record: bool,
    /// A label for the JSON records (e.g. "warren", "zookeeper", "echo").
    #[arg(long, default_value = "")]
    pub label: String,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Connect over TLS (with --connect, to a secureClientPort or a unified port), trusting
    /// the CA certificates of this PEM file; the server's certificate must name its IP.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// With --tls-ca: the client certificate (PEM) to show, for ssl.clientAuth=need.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// With --tls-cert: its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Checks the settings before anything starts.
pub fn validate(a: &RunArgs) -> Result<(), String> {
    if !(0.0..=1.0).contains(&a.read_ratio) {
        return Err(format!("--read-ratio {} must be within 0..=1", a.read_ratio));
    }
    if a.clients == 0 || a.outstanding == 0 || a.keys == 0 {
        return Err("--clients, --outstanding and --keys must be at least 1".into());
    }
    if a.value_size > 1_000_000 {
        return Err(format!("--value-size {} exceeds what a 1 MiB jute.maxbuffer frame carries", a.value_size));
    }
    if !(a.duration > 0.0 && a.duration.is_finite()) || !(a.warmup >= 0.0 && a.warmup.is_finite()) {
        return Err("--duration must be > 0 and --warmup >= 0".into());
    }
    if a.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if a.trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    if a.trials > 1 && !a.kill_leader {
        return Err("--trials repeats leader kills: it needs --kill-leader".into());
    }
    if a.kill_leader {
        if a.connect.is_some() {
            return Err("--kill-leader kills a server loadgen started: drop --connect and use --system/--nodes".into());
        }
        if a.system == System::Echo {
            return Err("--kill-leader needs a real ensemble, not the echo server".into());
        }
        if a.nodes < 3 {
            return Err(format!("--kill-leader needs --nodes 3 or more (a quorum must survive), got {}", a.nodes));
        }
        if let Some(k) = a.kill_at {
            if !(k > 0.0 && k < a.duration) {
                return Err(format!("--kill-at {k} must be inside the measured window (0, {})", a.duration));
            }
        }
    }
    if a.connect.is_some() && a.nodes != 1 {
        return Err("--nodes starts a local ensemble; with --connect list the servers instead".into());
    }
    if a.tls_ca.is_some() && a.connect.is_none() {
        return Err("--tls-ca needs --connect: the servers loadgen starts speak plaintext".into());
    }
    if a.tls_cert.is_some() && a.tls_ca.is_none() {
        return Err("--tls-cert needs --tls-ca".into());
    }
    if let Some(c) = &a.connect {
        target::parse_connect(c)?;
    }
    if a.stable.warmup_until_stable {
        a.stable.validate()?;
    }
    target::parse_port_range(&a.ports)?;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd.unwrap_or(Cmd::Run(cli.run)) {
        Cmd::EchoServer { listen } => client::echo_server(listen),
        Cmd::Sessions(a) => {
            if let Err(e) = sessions::run(&a) {
                eprintln!("loadgen sessions: {e}");
                std::process::exit(2);
            }
        }
        Cmd::Run(a) => exit_on_error(|| run(&a)),
        Cmd::Curve(c) => exit_on_error(|| curve::curve(&c)),
        Cmd::Sweep(s) => exit_on_error(|| sweep::sweep(&s)),
    }
}

/// Runs a command that starts servers: they are cleaned up on Ctrl-C, and an error exits 1.
fn exit_on_error(f: impl FnOnce() -> io::Result<()>) {
    target::install_signal_cleanup();
    if let Err(e) = f() {
        if target::interrupted() {
            std::thread::sleep(Duration::from_secs(10));
        }
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// Parses `extra` as the flags of `T` (for tests of each subcommand's settings).
#[cfg(test)]
pub fn parse_flags<T: clap::Args>(extra: &[&str]) -> T {
    #[derive(Parser)]
    struct W<T: clap::Args> {
        #[command(flatten)]
        a: T,
    }
    W::<T>::try_parse_from(std::iter::once("x").chain(extra.iter().copied())).unwrap().a
}

impl RunArgs {
    /// A run of `system` x `nodes` as sweeps and curves make them: loadgen's defaults otherwise,
    /// no record, no progress bar.
    pub fn cell(system: System, nodes: usize) -> RunArgs {
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            a: RunArgs,
        }
        let a = W::try_parse_from(["x"]).expect("the defaults parse").a;
        RunArgs { system, nodes, no_record: true, quiet: true, label: system.name().into(), ..a }
    }
}

pub fn warren_bin(a: &RunArgs) -> PathBuf {
    a.warren_bin.clone().unwrap_or_else(|| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("warren"))).unwrap_or_default()
    })
}

/// What a run measured.
pub struct Outcome {
    pub label: String,
    pub servers: Vec<SocketAddr>,
    pub summary: Summary,
    pub trials: Vec<KillTrial>,
    pub kill: Option<KillSummary>,
    /// The warm-up until stable, when asked for.
    pub warmup: Option<warmup::WarmUp>,
    pub target_version: String,
    pub record: Value,
}

fn run(a: &RunArgs) -> io::Result<()> {
    if let Some(ca) = &a.tls_ca {
        let identity = a.tls_cert.as_deref().zip(a.tls_key.as_deref());
        client::use_tls(ca, identity).map_err(io::Error::other)?;
    }
    let o = run_once(a, !a.quiet && io::stderr().is_terminal())?;
    let s = &o.summary;
    println!(
        "target {}  servers {}  clients {}  outstanding {}  read-ratio {}  value {} B  {} s measured{}",
        o.label,
        o.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","),
        a.clients,
        a.outstanding,
        a.read_ratio,
        a.value_size,
        a.duration,
        if a.trials > 1 { format!(" x {} trials", a.trials) } else { String::new() }
    );
    if let Some(w) = &o.warmup {
        println!("warm-up until stable: {} ({} windows)", w.text(), w.rates.len());
    }
    print!("{}", s.table());
    for t in &o.trials {
        println!("{}", t.line());
    }
    if let Some(k) = &o.kill {
        println!("{}", k.line());
    }
    if let Some(path) = &a.json {
        let line = legacy_json(a, &o);
        std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(line.as_bytes())?;
    }
    if let Some(path) = record_path(a) {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&o.record).unwrap() + "\n")?;
        eprintln!("record: {}", path.display());
    }
    Ok(())
}

fn record_path(a: &RunArgs) -> Option<PathBuf> {
    if a.no_record {
        return None;
    }
    match (&a.record, &a.json) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from("results/runs").join(format!("{}.json", utc_stamp(true)))),
    }
}

/// The one-line summary ci/bench_standalone.py reads (its keys must stay).
fn legacy_json(a: &RunArgs, o: &Outcome) -> String {
    let s = &o.summary;
    let v = json!({
        "command": command_line(),
        "machine": target::machine(),
        "label": o.label,
        "target": o.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","),
        "nodes": o.servers.len(),
        "clients": a.clients,
        "outstanding": a.outstanding,
        "read_ratio": a.read_ratio,
        "value_size": a.value_size,
        "duration_s": a.duration * a.trials as f64,
        "ops_per_s": s.ops_per_s().round(),
        "reads_per_s": s.reads_per_s().round(),
        "writes_per_s": s.writes_per_s().round(),
        "read_p50_us": s.read.p50,
        "read_p90_us": s.read.p90,
        "read_p99_us": s.read.p99,
        "read_p999_us": s.read.p999,
        "read_max_us": s.read.max,
        "write_p50_us": s.write.p50,
        "write_p90_us": s.write.p90,
        "write_p99_us": s.write.p99,
        "write_p999_us": s.write.p999,
        "write_max_us": s.write.max,
        "errors": s.error_count(),
    });
    serde_json::to_string(&v).unwrap() + "\n"
}

pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Now in UTC: `20261125T104233Z` (compact) or `2026-11-25T10:42:33Z`.
pub fn utc_stamp(compact: bool) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_utc(secs, compact)
}

pub fn format_utc(secs: u64, compact: bool) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if compact {
        format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Starts (or connects to) the target, loads it for `trials` phases and summarises.
pub fn run_once(a: &RunArgs, progress: bool) -> io::Result<Outcome> {
    validate(a).map_err(io::Error::other)?;
    let started_at = utc_stamp(false);
    let bin = warren_bin(a);
    let mut ens = match &a.connect {
        Some(_) => None,
        None => {
            let t = Instant::now();
            let e = Ensemble::start(a.system, &bin, a.nodes, target::parse_port_range(&a.ports).unwrap())?;
            let leader = e.leader().map(|i| format!(", leader: server {}", i + 1)).unwrap_or_default();
            if progress || a.nodes > 1 {
                eprintln!(
                    "started {} x{} on {} in {:.1} s{leader}",
                    a.system.name(),
                    a.nodes,
                    e.addrs().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","),
                    t.elapsed().as_secs_f64()
                );
            }
            Some(e)
        }
    };
    let servers = match &a.connect {
        Some(c) => target::parse_connect(c).map_err(io::Error::other)?,
        None => ens.as_ref().unwrap().addrs(),
    };
    let label = if !a.label.is_empty() {
        a.label.clone()
    } else if a.connect.is_some() {
        String::new()
    } else {
        a.system.name().to_string()
    };
    let target_version = match &ens {
        Some(e) if a.system != System::Echo => e.version(),
        Some(_) => "echo".into(),
        // A TLS port does not answer four-letter words in plaintext.
        None if a.tls_ca.is_some() => "unknown (TLS)".into(),
        None => target::srvr_version(&target::four_letter(servers[0], "srvr", Duration::from_secs(2))),
    };
    if a.connect.is_some() && a.tls_ca.is_none() {
        // An ensemble already running: insist on a leader and every member answering.
        for &s in &servers {
            if target::four_letter(s, "ruok", Duration::from_secs(2)) != "imok" {
                eprintln!("loadgen: warning: {s} does not answer ruok (4lw.commands.whitelist?)");
            }
        }
        if servers.len() > 1 && !servers.iter().any(|&s| target::mode_of(s) == Some(Mode::Leader)) {
            return Err(io::Error::other("no server of --connect reports Mode: leader"));
        }
    }
    client::setup(&servers, a.keys, a.value_size)?;
    let warm = match a.stable.warmup_until_stable {
        true => Some(warmup::until_stable(&workload(a, 1, Duration::ZERO), a.clients, &servers, &a.stable.rule)?),
        false => None,
    };

    let mut total = Tally::new();
    let mut trials = Vec::new();
    for trial in 1..=a.trials {
        let (t, k) = phase(a, &servers, ens.as_mut(), trial, progress)?;
        total.add(&t);
        if let Some(k) = k {
            let killed = k.killed;
            trials.push(k);
            if trial < a.trials {
                let e = ens.as_mut().unwrap();
                let t0 = Instant::now();
                e.restart(killed - 1)?;
                if progress {
                    eprintln!("server {killed} restarted and rejoined in {:.1} s", t0.elapsed().as_secs_f64());
                }
            }
        }
    }
    let summary = Summary::of(&total, a.duration * a.trials as f64);
    let kill = a.kill_leader.then(|| kill_summary(&trials));
    let record = json!({
        "command": command_line(),
        "started_at": started_at,
        "loadgen_version": env!("CARGO_PKG_VERSION"),
        "versions": {
            "warren": Some(target::warren_version(&bin)).filter(|v| !v.is_empty()),
            "zookeeper": Some(target::zookeeper_version()).filter(|v| !v.is_empty()),
            "target": target_version,
        },
        "machine": target::machine(),
        "settings": {
            "label": label,
            "system": if a.connect.is_some() { Value::Null } else { json!(a.system.name()) },
            "nodes": servers.len(),
            "connect": a.connect,
            "tls": a.tls_ca.is_some(),
            "servers": servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "read_ratio": a.read_ratio,
            "clients": a.clients,
            "outstanding": a.outstanding,
            "value_size": a.value_size,
            "keys": a.keys,
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "warmup_until_stable": a.stable.warmup_until_stable.then(|| a.stable.describe()),
            "seed": a.seed,
            "kill_leader": a.kill_leader,
            "kill_at_s": a.kill_leader.then(|| kill_at(a)),
            "trials": a.trials,
        },
        "warmup_until_stable": warm.as_ref().map(warmup::WarmUp::json),
        "results": summary.json(),
        "kill": a.kill_leader.then(|| json!({
            "trials": trials.iter().map(KillTrial::json).collect::<Vec<_>>(),
            "summary": kill.as_ref().map(KillSummary::json),
        })),
    });
    drop(ens);
    Ok(Outcome { label, servers, summary, trials, kill, warmup: warm, target_version, record })
}

/// The workload of trial `trial` (its seed), with room for `total` seconds of buckets.
pub fn workload(a: &RunArgs, trial: usize, total: Duration) -> Workload {
    Workload {
        read_ratio: a.read_ratio,
        outstanding: a.outstanding,
        value_size: a.value_size,
        keys: a.keys,
        seed: a.seed.wrapping_add(trial as u64 - 1),
        buckets: ((total + RECOVERY_TAIL).as_millis() as u64 / BUCKET_MS) as usize + 20,
    }
}

/// One measured window (after `a.warmup`) against servers already set up, without a kill.
pub fn measure(a: &RunArgs, servers: &[SocketAddr]) -> io::Result<Summary> {
    let (t, _) = phase(a, servers, None, 1, false)?;
    Ok(Summary::of(&t, a.duration))
}

/// How long a kill trial may run past its measured window for the clients to recover.
const RECOVERY_TAIL: Duration = Duration::from_secs(30);

fn kill_at(a: &RunArgs) -> f64 {
    a.kill_at.unwrap_or(a.duration / 3.0)
}

/// One loaded phase (warm-up + measured window), with a leader kill when asked.
fn phase(
    a: &RunArgs,
    servers: &[SocketAddr],
    mut ens: Option<&mut Ensemble>,
    trial: usize,
    progress: bool,
) -> io::Result<(Tally, Option<KillTrial>)> {
    let total = Duration::from_secs_f64(a.warmup + a.duration);
    let w = workload(a, trial, total);
    let sh = Shared::new(a.clients, Duration::from_secs_f64(a.warmup), Duration::from_secs_f64(a.duration));
    let pb = if progress {
        let pb = ProgressBar::new(total.as_millis() as u64);
        pb.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {wide_bar} {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        if a.trials > 1 {
            pb.set_prefix(format!("trial {trial}/{}", a.trials));
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let kill_time = a.kill_leader.then(|| Duration::from_secs_f64(a.warmup + kill_at(a)));
    std::thread::scope(|scope| -> io::Result<(Tally, Option<KillTrial>)> {
        let handles: Vec<_> = (0..a.clients)
            .map(|id| {
                scope.spawn({
                    let (w, sh) = (&w, &sh);
                    move || client::client_loop(w, servers, id, sh)
                })
            })
            .collect();
        sh.go.wait();
        let mut killed: Option<(usize, Instant, Vec<usize>)> = None;
        let mut poller = None;
        let (mut last_done, mut last_t) = (0u64, Instant::now());
        loop {
            let el = sh.start.elapsed();
            if el >= total {
                // After a kill, go on (uncounted) until every client that was connected at the
                // kill has written again, so slow recoveries are still measured.
                let waiting = killed.as_ref().is_some_and(|(_, _, current)| {
                    current
                        .iter()
                        .enumerate()
                        .any(|(i, &c)| c != DISCONNECTED && !sh.recovered[i].load(Ordering::Relaxed))
                });
                if !waiting || el >= total + RECOVERY_TAIL {
                    break;
                }
                pb.set_message("waiting for every client to write again");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if let (Some(kt), None) = (kill_time, &killed) {
                if el >= kt {
                    let e = ens.as_deref_mut().expect("kill needs a local ensemble");
                    let Some(leader) = e.leader() else {
                        return Err(io::Error::other("no single leader to kill (srvr Mode)"));
                    };
                    let current: Vec<usize> = sh.current.iter().map(|c| c.load(Ordering::Acquire)).collect();
                    let at = Instant::now();
                    sh.kill_at_ns.store((at - sh.start).as_nanos() as u64, Ordering::Release);
                    e.kill(leader)?;
                    pb.println(format!("killed the leader, server {}", leader + 1));
                    let survivors: Vec<(usize, SocketAddr)> =
                        e.members.iter().enumerate().filter(|(i, _)| *i != leader).map(|(i, m)| (i, m.addr)).collect();
                    poller = Some(scope.spawn(move || {
                        // First time some survivor reports Mode: leader.
                        let deadline = at + Duration::from_secs(120);
                        while Instant::now() < deadline {
                            for &(i, addr) in &survivors {
                                if target::parse_mode(&target::four_letter(addr, "srvr", Duration::from_millis(500)))
                                    == Some(Mode::Leader)
                                {
                                    return Some((i, at.elapsed()));
                                }
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        None
                    }));
                    killed = Some((leader, at, current));
                }
            }
            let done = sh.done.load(Ordering::Relaxed);
            let dt = last_t.elapsed().as_secs_f64();
            if dt >= 0.5 {
                let phase = if el.as_secs_f64() < a.warmup { "warm-up" } else { "measuring" };
                pb.set_message(format!("{phase} {:.0} ops/s", (done - last_done) as f64 / dt));
                (last_done, last_t) = (done, Instant::now());
            }
            pb.set_position(el.as_millis() as u64);
            std::thread::sleep(Duration::from_millis(20).min(total.saturating_sub(el)));
        }
        sh.stop.store(true, Ordering::Relaxed);
        pb.finish_and_clear();
        let results: Vec<client::ClientResult> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| io::Error::other("client thread panicked")))
            .collect::<Result<_, _>>()?;
        let mut tally = Tally::new();
        for r in &results {
            tally.add(&r.tally);
        }
        let Some((leader, at, current)) = killed else { return Ok((tally, None)) };
        let new_leader = poller.and_then(|p| p.join().ok()).flatten();
        let mut buckets = vec![0u64; w.buckets];
        for r in &results {
            for (b, n) in buckets.iter_mut().zip(&r.buckets) {
                *b += n;
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut k = KillTrial {
            trial,
            killed: leader + 1,
            new_leader_ms: new_leader.map(|(_, d)| ms(d)),
            new_leader: new_leader.map(|(i, _)| i + 1),
            errors: tally.errors.clone(),
            dip: dip(&buckets, ms(at - sh.start) as u64, sh.start.elapsed().as_millis() as u64),
            ..Default::default()
        };
        for (r, &c) in results.iter().zip(&current) {
            if c == leader {
                k.moved_clients += 1;
                if let Some(d) = r.first_op_after_kill {
                    k.moved_op_ms.push(ms(d));
                }
            } else if c != DISCONNECTED {
                match r.first_write_after_kill {
                    Some(d) => k.survivor_write_ms.push(ms(d)),
                    None => k.survivors_without_write += 1,
                }
            }
            if r.dropped {
                k.dropped += 1;
            }
        }
        Ok((tally, Some(k)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> RunArgs {
        parse_flags(extra)
    }

    #[test]
    fn defaults_are_valid_and_keep_the_old_flags() {
        let a = args(&[]);
        assert_eq!((a.clients, a.outstanding, a.value_size, a.keys, a.nodes), (8, 100, 1024, 1000, 1));
        assert!(validate(&a).is_ok());
        let a = args(&[
            "--connect",
            "127.0.0.1:2181",
            "--read-ratio",
            "0.5",
            "--clients",
            "4",
            "--outstanding",
            "10",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--label",
            "zk",
            "--json",
            "/tmp/x.jsonl",
        ]);
        assert!(validate(&a).is_ok());
        assert_eq!(record_path(&a), None, "--json alone writes no full record");
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |x: &[&str]| validate(&args(x)).unwrap_err();
        assert!(bad(&["--read-ratio", "1.5"]).contains("read-ratio"));
        assert!(bad(&["--clients", "0"]).contains("at least 1"));
        assert!(bad(&["--duration", "0"]).contains("duration"));
        assert!(bad(&["--kill-leader"]).contains("--nodes 3"));
        assert!(bad(&["--kill-leader", "--nodes", "3", "--connect", "127.0.0.1:1"]).contains("--connect"));
        assert!(bad(&["--kill-leader", "--nodes", "3", "--system", "echo"]).contains("echo"));
        assert!(bad(&["--trials", "3", "--nodes", "3"]).contains("--kill-leader"));
        assert!(bad(&["--kill-leader", "--nodes", "3", "--duration", "2", "--kill-at", "5"]).contains("--kill-at"));
        assert!(bad(&["--connect", "127.0.0.1:1", "--nodes", "3"]).contains("--nodes"));
        assert!(bad(&["--ports", "9-1"]).contains("port range"));
        assert!(bad(&["--tls-ca", "/ca.pem"]).contains("--connect"));
        assert!(bad(&["--warmup-until-stable", "--stable-windows", "1"]).contains("stable-windows"));
        assert!(bad(&["--warmup-until-stable", "--stable-max", "2"]).contains("stable-max"));
        assert!(validate(&args(&["--stable-windows", "1"])).is_ok(), "the rule is only checked when used");
        assert!(validate(&args(&["--warmup-until-stable"])).is_ok());
        assert!(validate(&args(&["--tls-ca", "/ca.pem", "--connect", "127.0.0.1:1"])).is_ok());
        assert!(validate(&args(&["--kill-leader", "--nodes", "5", "--trials", "3", "--system", "zookeeper"])).is_ok());
    }

    #[test]
    fn run_is_the_default_subcommand() {
        let run_of = |v: &[&str]| match Cli::try_parse_from(v).unwrap() {
            Cli { cmd: Some(Cmd::Run(a)), .. } => a,
            Cli { cmd: None, run } => run,
            Cli { cmd: Some(_), .. } => panic!("{v:?} is not a run"),
        };
        let a = run_of(&["loadgen", "--read-ratio", "0.9", "--nodes", "13"]);
        assert_eq!((a.read_ratio, a.nodes), (0.9, 13));
        let a = run_of(&["loadgen", "run", "--nodes", "3", "--kill-leader"]);
        assert_eq!((a.nodes, a.kill_leader), (3, true));
        assert!(matches!(Cli::try_parse_from(["loadgen", "echo-server"]).unwrap().cmd, Some(Cmd::EchoServer { .. })));
        assert!(matches!(Cli::try_parse_from(["loadgen", "sweep"]).unwrap().cmd, Some(Cmd::Sweep(_))));
        assert!(Cli::try_parse_from(["loadgen", "--nodes", "3", "sweep"]).is_err(), "run flags before a subcommand");
    }

    #[test]
    fn record_paths() {
        assert!(record_path(&args(&[])).unwrap().starts_with("results/runs"));
        assert_eq!(record_path(&args(&["--record", "/tmp/r.json"])), Some(PathBuf::from("/tmp/r.json")));
        assert_eq!(record_path(&args(&["--no-record"])), None);
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000, true), "20261118T110640Z");
        assert_eq!(format_utc(951_782_400, false), "2000-02-29T00:00:00Z");
    }
}
