//! A deterministic simulator running whole ensembles of the real `warren::quorum::Node`:
//! each server's files on its own `FaultyDisk` through the real storage code
//! (`storage::member::MemberStore`: log format, group commit, TRUNC, snapshots, recovery) with
//! torn writes, EIO, slow fsyncs and bit flips, checked against an oracle of what was made
//! durable; a simulated network (per-link
//! FIFO, delays, clogs, breaks, partitions, duplicated votes), crashing servers and clients
//! speaking the ZooKeeper wire protocol, with safety and liveness checks (see `world`), and
//! the client history checked by `lin`.
#![allow(dead_code)]

pub mod history;
pub mod lin;
pub mod rng;
pub mod world;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use history::{key_path, Op, OpKind, Outcome, INITIAL_VALUE};
pub use world::{Config, Planted, Stats, World};

/// Scenarios, encoded in a seed's top byte so that a seed alone replays a run.
pub const RANDOM: u64 = 0;
pub const HAPPY3: u64 = 1;
pub const HAPPY5: u64 = 2;
pub const LEADER_CRASHES: u64 = 3;
pub const PARTITIONS: u64 = 4;
pub const LINKS: u64 = 5;
pub const TORN: u64 = 6;
pub const TORN_SAFETY_ONLY: u64 = 7;
pub const OBSERVER: u64 = 8;
pub const DISK: u64 = 9;

pub fn seed_for(scenario: u64, n: u64) -> u64 {
    (scenario << 56) | (n & ((1 << 56) - 1))
}

pub fn config_for_seed(seed: u64) -> Config {
    let mut c = Config::happy("happy 3 voters");
    match seed >> 56 {
        HAPPY3 => {}
        HAPPY5 => {
            c.name = "happy 5 voters".into();
            c.voters = 5;
        }
        LEADER_CRASHES => {
            c.name = "leader crash loop".into();
            c.leader_crashes = true;
            c.fault_every_ms = 1500;
            c.fault_ms = 20_000;
        }
        PARTITIONS => {
            c.name = "partitions (5 voters)".into();
            c.voters = 5;
            c.partitions = true;
            c.fault_ms = 20_000;
            c.fault_every_ms = 800;
        }
        LINKS => {
            c.name = "link breaks, delays, duplicate votes".into();
            c.voters = 5;
            c.link_breaks = true;
            c.clogs = true;
            c.dup_votes = true;
            c.fault_every_ms = 300;
            c.fault_ms = 15_000;
        }
        TORN => {
            c.name = "crashes with torn tails".into();
            crashes_with_torn_writes(&mut c, 700);
        }
        TORN_SAFETY_ONLY => {
            c.name = "crashes with torn tails, any number down (safety only)".into();
            crashes_with_torn_writes(&mut c, 700);
            c.safety_only = true;
        }
        OBSERVER => {
            c.name = "3 voters + observer, crashes and partitions".into();
            c.observers = 1;
            c.crashes = true;
            c.partitions = true;
            c.link_breaks = true;
            c.fault_every_ms = 1000;
            c.fault_ms = 15_000;
        }
        DISK => {
            c.name = "crashes with torn writes, EIO and bit flips; clients paused past their session timeout".into();
            crashes_with_torn_writes(&mut c, 600);
            c.disk_errors = true;
            c.bit_flips = true;
            c.client_pauses = true;
        }
        _ => c = Config::random(seed),
    }
    // Exploration switches (to look past a known bug): no duplicated votes.
    if std::env::var("SIM_NO_DUP_VOTES").is_ok() {
        c.dup_votes = false;
    }
    c
}

/// Crashes (torn unsynced writes) every `every_ms` on average for 20 s, with pipelined clients
/// and a small DIFF window (so that crashed servers come back by TRUNC and SNAP too).
fn crashes_with_torn_writes(c: &mut Config, every_ms: u64) {
    c.crashes = true;
    c.torn_tails = true;
    c.fault_every_ms = every_ms;
    c.fault_ms = 20_000;
    c.client_pipeline = 4;
    c.diff_window = 10;
}

pub fn replay_command(seed: u64) -> String {
    format!(
        "SIM_SEED={seed} cargo test -p warren --test simulation replay -- --nocapture   (add SIM_TRACE=1 for a trace)"
    )
}

/// Converts the simulator's history into the checker's.
pub fn to_lin(history: &[Op], keys: usize) -> lin::History {
    let mut initial = BTreeMap::new();
    for k in 0..keys {
        initial.insert(key_path(k), INITIAL_VALUE.to_vec());
    }
    let mut ops = Vec::new();
    for op in history {
        let key = key_path(op.key);
        let call = match &op.kind {
            OpKind::Create { .. } => continue,
            OpKind::Set { value, version: -1 } => lin::Call::Write { key, value: value.clone() },
            OpKind::Set { value, version } => lin::Call::Cas { key, expected_version: *version, value: value.clone() },
            OpKind::Get => lin::Call::Read { key },
            OpKind::Sync => lin::Call::Sync { key },
        };
        let ret = match (&op.kind, &op.outcome) {
            (OpKind::Set { .. }, Outcome::Ok { zxid, version, .. }) => {
                Some(lin::Ret::Written { version: *version, zxid: *zxid })
            }
            (OpKind::Set { version, .. }, Outcome::Fail { code, zxid }) if *version >= 0 && *code == -103 => {
                Some(lin::Ret::BadVersion { zxid: Some(*zxid) })
            }
            (OpKind::Get, Outcome::Ok { zxid, version, value }) => {
                Some(lin::Ret::Read { value: value.clone().unwrap_or_default(), version: *version, zxid: *zxid })
            }
            (OpKind::Sync, Outcome::Ok { zxid, .. }) => Some(lin::Ret::Synced { zxid: *zxid }),
            _ => None,
        };
        ops.push(lin::Op {
            id: op.id as u64,
            // Sessions: a client's session, renumbered when it expires and the client starts a
            // new one (ZooKeeper's guarantees hold per session).
            session: (op.client as u64) << 32 | (op.session as u64 & 0xffff_ffff) ^ ((op.session as u64) >> 32),
            call,
            invoke: op.invoke_us,
            complete: ret.as_ref().and(op.complete_us),
            ret,
        });
    }
    lin::History { initial, ops }
}

pub struct RunReport {
    pub seed: u64,
    pub config: Config,
    pub stats: Stats,
    pub lin_states: u64,
    pub failure: Option<String>,
}

/// Runs one seed and every check; panics inside the node are caught and reported as failures.
pub fn run_seed(seed: u64) -> RunReport {
    run_config(seed, config_for_seed(seed))
}

/// Runs `seed` with `config` (a seed's own configuration changed, e.g. with a planted bug).
pub fn run_config(seed: u64, config: Config) -> RunReport {
    let keys = config.keys;
    let cfg2 = config.clone();
    let res = catch_unwind(AssertUnwindSafe(move || World::new(seed, cfg2).run()));
    let mut report = RunReport { seed, config, stats: Stats::default(), lin_states: 0, failure: None };
    match res {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            report.failure = Some(format!("panic: {msg}"));
        }
        Ok(r) => {
            report.stats = r.stats;
            report.failure = r.failure;
            if report.failure.is_none() {
                let h = to_lin(&r.history, keys);
                let opts = lin::Options { max_states_per_key: 2_000_000, ..lin::Options::default() };
                let lr = lin::check(&h, &opts);
                report.lin_states = lr.summary.states_explored;
                if let Err(v) = lr.result {
                    report.failure = Some(format!("history check failed: {v}"));
                }
            }
        }
    }
    report
}

pub fn describe(r: &RunReport) -> String {
    let head = format!("seed {} ({}): ", r.seed, r.config.name);
    match &r.failure {
        None => format!("{head}ok  {}", r.stats.line()),
        Some(f) => format!("{head}FAILED\n  {f}\n  stats: {}\n  replay: {}", r.stats.line(), replay_command(r.seed)),
    }
}
