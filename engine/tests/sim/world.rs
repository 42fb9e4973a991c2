//! The simulated world: servers running the real `Node`, their disks, the network between them,
//! clients, a fault injector and the invariant checks. Everything is driven by one event queue in
//! simulated microseconds and one seeded RNG, so a run is a pure function of (seed, config).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use warren::acl::open_acl_unsafe;
use warren::machine::{MachineConfig, Now};
use warren::proto::{
    op, ConnectRequest, ConnectResponse, CreateKind, CreateRequest, ErrorCode, Reader, ReplyHeader, Request,
    RequestHeader, Stat,
};
use warren::quorum::{DiskStep, Epochs, Msg, Node, PeerState, QuorumConfig, ServerId, Zxid};
use warren::storage::member::{MemberDirs, MemberStore, Recovered};
use warren::storage::{Disk, Faults, FaultyDisk};
use warren::tree::DataTree;
use warren::txn::{Txn, TxnOp};

use super::history::{key_path, Op, OpKind, Outcome, INITIAL_VALUE};
use super::rng::Rng;

// ---------------------------------------------------------------------------------------------
// configuration

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub voters: usize,
    pub observers: usize,
    pub clients: usize,
    pub ops_per_client: usize,
    /// Ops a client keeps in flight at most (pipelined on its connection).
    pub client_pipeline: usize,
    pub keys: usize,
    /// Simulated ms of the fault phase (faults are injected only then).
    pub fault_ms: u64,
    /// After the fault phase everything is healed; within this many ms there must be a leader,
    /// every server serving, and a write through each server must succeed.
    pub liveness_ms: u64,
    /// Mean ms between fault injections.
    pub fault_every_ms: u64,
    pub crashes: bool,
    /// Crash whoever leads, again and again.
    pub leader_crashes: bool,
    pub partitions: bool,
    pub link_breaks: bool,
    /// Slow ("clogged") links and a wide spread of delays.
    pub clogs: bool,
    pub dup_votes: bool,
    /// Clients stop for longer than their session timeout now and then, so sessions expire.
    pub client_pauses: bool,
    /// `localSessionsEnabled`: new sessions are their server's own (never logged; their writes
    /// reach the leader from a session it does not know; they end at the server's next
    /// election, and their clients start new ones).
    pub local_sessions: bool,
    /// A crash keeps each unsynced write whole, torn at any byte, or not at all (else drops
    /// them all), and crashes prefer servers with an fsync in flight.
    pub torn_tails: bool,
    /// EIO on writes and fsyncs, now and then (the server stops, as the real one exits, and
    /// restarts).
    pub disk_errors: bool,
    /// A crashed server's log or snapshot gets a bit flipped while it is down: recovery must
    /// refuse to start (the simulated operator then restores the bit and starts it again) or
    /// start with everything it had made durable, never with something else.
    pub bit_flips: bool,
    /// A bug planted in the simulated shell or in the storage code (see [`Planted`]).
    pub planted: Option<Planted>,
    /// Any number of servers may be down at once (else at most a minority of voters).
    pub safety_only: bool,
    pub tick_ms: i64,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// `warren.peerTimeoutMs` (0: syncLimit alone).
    pub peer_timeout_ms: i64,
    pub max_inflight: usize,
    pub diff_window: usize,
    pub session_timeout_ms: i32,
}

impl Config {
    pub fn happy(name: &str) -> Config {
        Config {
            name: name.to_string(),
            voters: 3,
            observers: 0,
            clients: 4,
            ops_per_client: 60,
            client_pipeline: 3,
            keys: 3,
            fault_ms: 10_000,
            liveness_ms: 30_000,
            fault_every_ms: 1000,
            crashes: false,
            leader_crashes: false,
            partitions: false,
            link_breaks: false,
            clogs: false,
            dup_votes: false,
            client_pauses: false,
            local_sessions: false,
            torn_tails: false,
            disk_errors: false,
            bit_flips: false,
            planted: None,
            safety_only: false,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            peer_timeout_ms: 0,
            max_inflight: 64,
            diff_window: 1000,
            session_timeout_ms: 6000,
        }
    }

    /// A random mix of everything, for `many_seeds`.
    pub fn random(seed: u64) -> Config {
        let mut r = Rng::new(seed ^ 0x5eed_c0f1_9000_0001);
        let mut c = Config::happy("random");
        c.voters = if r.chance(0.5) { 3 } else { 5 };
        c.observers = if r.chance(0.25) { 1 } else { 0 };
        c.clients = r.range(2, 6) as usize;
        c.ops_per_client = r.range(20, 80) as usize;
        c.client_pipeline = r.range(1, 4) as usize;
        c.keys = r.range(1, 4) as usize;
        c.fault_ms = r.range(5_000, 20_000);
        c.fault_every_ms = r.range(200, 2000);
        c.crashes = r.chance(0.6);
        c.leader_crashes = r.chance(0.3);
        c.partitions = r.chance(0.5);
        c.link_breaks = r.chance(0.5);
        c.clogs = r.chance(0.5);
        c.dup_votes = r.chance(0.5);
        c.torn_tails = r.chance(0.5);
        c.safety_only = r.chance(0.2);
        c.max_inflight = *r.pick(&[1, 4, 64]);
        c.diff_window = *r.pick(&[3, 20, 1000]);
        // Drawn last, so that the fields above stay what they were for every seed.
        c.peer_timeout_ms = *r.pick(&[0, 0, 150, 300]);
        c.disk_errors = r.chance(0.3);
        c.bit_flips = r.chance(0.3);
        c.client_pauses = r.chance(0.4);
        c.local_sessions = r.chance(0.3);
        let kinds = [
            (c.crashes, "crash"),
            (c.leader_crashes, "leadercrash"),
            (c.partitions, "part"),
            (c.link_breaks, "links"),
            (c.clogs, "clog"),
            (c.dup_votes, "dup"),
            (c.torn_tails, "torn"),
            (c.disk_errors, "eio"),
            (c.bit_flips, "flips"),
            (c.client_pauses, "pauses"),
            (c.local_sessions, "local-sessions"),
            (c.safety_only, "safety-only"),
        ];
        let mut name = format!("random {}v{}o", c.voters, c.observers);
        for (on, n) in kinds {
            if on {
                name.push(' ');
                name.push_str(n);
            }
        }
        c.name = name;
        c
    }

    fn any_faults(&self) -> bool {
        self.crashes || self.leader_crashes || self.partitions || self.link_breaks || self.clogs || self.client_pauses
    }

    fn disk_faults(&self) -> Faults {
        Faults {
            torn_writes: self.torn_tails,
            write_error_ppm: if self.disk_errors { 300 } else { 0 },
            sync_error_ppm: if self.disk_errors { 1_000 } else { 0 },
            slow_sync_ppm: 20_000,
            capacity: None,
        }
    }
}

/// Bugs the simulator must find, planted on purpose by the tests that prove it does
/// (`engine/tests/simulation.rs`, `planted_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// The shell tells the node its appends are durable as soon as they are written, before
    /// the fsync.
    AckBeforeFsync,
    /// The shell writes the epoch files in place without syncing them.
    SkipEpochSync,
}

// ---------------------------------------------------------------------------------------------
// statistics

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub sim_ms: u64,
    pub peer_msgs: u64,
    pub dropped_msgs: u64,
    pub elections: u64,
    pub leaders: u64,
    pub commits: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub link_breaks: u64,
    pub clogs: u64,
    pub dup_votes: u64,
    pub client_pauses: u64,
    /// Unsynced writes a crash kept whole, tore, or lost (the faulty disk's count).
    pub writes_kept: u64,
    pub writes_torn: u64,
    pub writes_lost: u64,
    /// File names created, renamed or removed that a crash undid (their directory unsynced).
    pub names_lost: u64,
    pub bit_flips: u64,
    /// Starts that recovery refused (a flipped bit before the log's tail or in the snapshot
    /// it needs); the simulated operator restored the bits and started the server again.
    pub refused_starts: u64,
    pub disk_errors: u64,
    pub slow_syncs: u64,
    pub snaps: u64,
    pub truncs: u64,
    pub fsyncs: u64,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_unknown: u64,
    pub expiries: u64,
    pub reconnects: u64,
    pub unfinished_clients: u64,
    pub liveness_ms: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.sim_ms += o.sim_ms;
        self.peer_msgs += o.peer_msgs;
        self.dropped_msgs += o.dropped_msgs;
        self.elections += o.elections;
        self.leaders += o.leaders;
        self.commits += o.commits;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.link_breaks += o.link_breaks;
        self.clogs += o.clogs;
        self.dup_votes += o.dup_votes;
        self.client_pauses += o.client_pauses;
        self.writes_kept += o.writes_kept;
        self.writes_torn += o.writes_torn;
        self.writes_lost += o.writes_lost;
        self.names_lost += o.names_lost;
        self.bit_flips += o.bit_flips;
        self.refused_starts += o.refused_starts;
        self.disk_errors += o.disk_errors;
        self.slow_syncs += o.slow_syncs;
        self.snaps += o.snaps;
        self.truncs += o.truncs;
        self.fsyncs += o.fsyncs;
        self.ops_ok += o.ops_ok;
        self.ops_failed += o.ops_failed;
        self.ops_unknown += o.ops_unknown;
        self.expiries += o.expiries;
        self.reconnects += o.reconnects;
        self.unfinished_clients += o.unfinished_clients;
        self.liveness_ms = self.liveness_ms.max(o.liveness_ms);
    }

    pub fn line(&self) -> String {
        format!(
            "events={} sim={}s msgs={} (dropped {}) elections={} leaders={} commits={} | crashes={} partitions={} \
             link_breaks={} clogs={} dup_votes={} client_pauses={} | disk: unsynced writes kept/torn/lost={}/{}/{} names_lost={} \
             bit_flips={} refused_starts={} errors={} slow_syncs={} snaps={} truncs={} fsyncs={} | ops ok={} \
             failed={} unknown={} expiries={} reconnects={} unfinished_clients={} | max recovery={}ms",
            self.events,
            self.sim_ms / 1000,
            self.peer_msgs,
            self.dropped_msgs,
            self.elections,
            self.leaders,
            self.commits,
            self.crashes,
            self.partitions,
            self.link_breaks,
            self.clogs,
            self.dup_votes,
            self.client_pauses,
            self.writes_kept,
            self.writes_torn,
            self.writes_lost,
            self.names_lost,
            self.bit_flips,
            self.refused_starts,
            self.disk_errors,
            self.slow_syncs,
            self.snaps,
            self.truncs,
            self.fsyncs,
            self.ops_ok,
            self.ops_failed,
            self.ops_unknown,
            self.expiries,
            self.reconnects,
            self.unfinished_clients,
            self.liveness_ms,
        )
    }
}

/// What a finished run hands the caller.
pub struct RunResult {
    pub stats: Stats,
    pub history: Vec<Op>,
    pub failure: Option<String>,
    /// Last trace lines (only with tracing on).
    pub final_tree: Vec<(String, Option<Vec<u8>>, i32)>,
}

// ---------------------------------------------------------------------------------------------
// events

enum Ev {
    Tick {
        s: usize,
        inc: u64,
    },
    /// Halfway between two ticks: `sweep`, which sends the leader's half-tick pings and
    /// expires sessions between ticks, as the shell's finer timer does.
    Sweep {
        s: usize,
        inc: u64,
    },
    FsyncDone {
        s: usize,
        inc: u64,
    },
    /// A crash between a group-commit round's write and its fsync.
    CrashInRound {
        s: usize,
        inc: u64,
        restart_ms: u64,
    },
    /// A slow fsync's report reaches the node (the data is durable already).
    FsyncReport {
        s: usize,
        inc: u64,
        zxid: Zxid,
    },
    Peer {
        from: usize,
        to: usize,
        gen: u64,
        msg: Msg,
    },
    LinkHeal {
        a: usize,
        b: usize,
        token: u64,
    },
    PartitionHeal {
        id: u64,
    },
    Restart {
        s: usize,
    },
    Fault,
    EndFaults,
    SetupDeadline,
    LivenessDeadline,
    HardStop,
    /// Periodic while healing: is the run done?
    Check,
    /// Client → server on connection `conn`.
    ToServer {
        conn: u64,
        what: ClientMsg,
    },
    /// Server → client.
    ToClient {
        conn: u64,
        frame: Vec<u8>,
    },
    /// The client learns its connection is gone.
    ClosedToClient {
        conn: u64,
    },
    ClientWake {
        c: usize,
        token: u64,
    },
}

enum ClientMsg {
    Connect(ConnectRequest),
    Req(RequestHeader, Request),
    Close,
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse for earliest first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

// ---------------------------------------------------------------------------------------------
// servers and disks

/// The simulator's knowledge of what a server's disk holds (its oracle), kept beside the real
/// storage code running on the faulty disk: the epochs and snapshot stored, every record
/// appended since that snapshot, and how many of them a completed fsync covered. At each
/// restart recovery must give back at least everything durable here.
#[derive(Default)]
struct Shadow {
    epochs: Epochs,
    snap: Zxid,
    log: Vec<Txn>,
    synced: usize,
}

impl Shadow {
    fn has_durable(&self, z: Zxid) -> bool {
        if self.snap >= z {
            return true;
        }
        self.log[..self.synced].binary_search_by_key(&z, |t| t.hdr.zxid).is_ok()
    }

    fn find(&self, z: Zxid) -> Option<&Txn> {
        self.log.binary_search_by_key(&z, |t| t.hdr.zxid).ok().map(|i| &self.log[i])
    }

    fn last_zxid(&self) -> Zxid {
        self.log.last().map(|t| t.hdr.zxid).unwrap_or(self.snap)
    }

    fn last_durable(&self) -> Zxid {
        self.log[..self.synced].last().map(|t| t.hdr.zxid).unwrap_or(self.snap)
    }
}

/// What a performed disk step has the simulator tell the node.
enum Report {
    Rewound(Zxid),
    Synced(Zxid),
}

/// A disk step's effect on the oracle, kept while the step itself goes to the store.
enum Oracle {
    Epochs(Epochs),
    Truncate(Zxid),
    Snapshot(Zxid),
    Append(Vec<Txn>),
}

/// Log segments this small roll often, so a run crosses segment boundaries.
const SEGMENT_BYTES: u64 = 16 << 10;

fn dirs() -> MemberDirs {
    MemberDirs::under("/srv")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Observed {
    state: PeerState,
    leader: Option<ServerId>,
    epochs: Epochs,
    serving: bool,
    applied: Zxid,
    logged: Zxid,
}

struct Server {
    id: ServerId,
    node: Option<Node>,
    inc: u64,
    disk: FaultyDisk,
    /// The member's storage while it runs (None while down).
    store: Option<MemberStore>,
    shadow: Shadow,
    fsync_in_flight: bool,
    /// Crash during the next group-commit round, restarting this many ms later.
    crash_in_round: Option<u64>,
    /// Bits flipped while it was down: (file, offset, bit), to restore if recovery refuses.
    flips: Vec<(std::path::PathBuf, u64, u8)>,
    obs: Option<Observed>,
    /// Set when a snapshot was installed in the last drain (forces a digest check).
    snap_installed: bool,
    down_until_restart: bool,
    /// Since when it has been serving without a break (None: not serving).
    serving_since: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// clients

struct Conn {
    client: usize,
    server: usize,
    server_inc: u64,
    /// The server has seen the connect (node.open returned true).
    open_on_server: bool,
    /// No more client → server processing (closed by either side).
    server_closed: bool,
    /// Reset by a crash: frames in flight to the client are lost.
    reset: bool,
    c2s_last: u64,
    s2c_last: u64,
}

struct ClientConn {
    id: u64,
    server: usize,
    handshake_done: bool,
    opened_at: u64,
    last_recv: u64,
    last_sent: u64,
    /// Outstanding ping xids (replies arrive in order with the rest).
    pings: usize,
}

struct Client {
    session: i64,
    passwd: Vec<u8>,
    conn: Option<ClientConn>,
    next_xid: i32,
    /// xid → history index, in send order.
    inflight: BTreeMap<i32, usize>,
    /// Ops still to issue (workload), or None for a probe (retries until one write succeeds).
    ops_left: usize,
    probe_for: Option<usize>,
    probe_done: bool,
    last_zxid: i64,
    known_version: Vec<i32>,
    next_op_at: u64,
    reconnect_at: u64,
    counter: u64,
    wake_token: u64,
    wake_at: u64,
    /// Stopped until then (sends nothing, not even pings): see `Config::client_pauses`.
    paused_until: u64,
    /// Ops queued before the workload (the key creates of client 0).
    setup: Vec<OpKind>,
    setup_keys: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Setup,
    Faults,
    Healing,
    Quiesce,
}

pub struct World {
    pub cfg: Config,
    pub seed: u64,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    servers: Vec<Server>,
    voters: Vec<ServerId>,
    observers: Vec<ServerId>,
    // network
    up: Vec<Vec<bool>>,
    gen: Vec<Vec<u64>>,
    last_arrival: Vec<Vec<u64>>,
    clog_until: Vec<Vec<u64>>,
    broken: Vec<Vec<Option<u64>>>,
    partitions: Vec<(u64, Vec<bool>)>,
    next_token: u64,
    // clients
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    clients: Vec<Client>,
    history: Vec<Op>,
    keys_ready: usize,
    phase: Phase,
    fault_end: u64,
    quiesce_until: u64,
    quiesce_target: Zxid,
    stop: bool,
    // checks
    leader_of_epoch: BTreeMap<u32, (ServerId, u64)>,
    digests: HashMap<Zxid, (u64, usize, u64)>,
    committed: BTreeMap<Zxid, Txn>,
    failure: Option<String>,
    pub stats: Stats,
    trace: bool,
}

const US: u64 = 1000; // µs per ms
const WALL_BASE_MS: i64 = 1_700_000_000_000;

pub fn fmt_zxid(z: Zxid) -> String {
    format!("{}.{}", z >> 32, z & 0xffff_ffff)
}

fn fmt_msg(m: &Msg) -> String {
    match m {
        Msg::Vote(v) => {
            format!("Vote(ldr={} z={} ep={} rnd={} {:?})", v.leader, fmt_zxid(v.zxid), v.epoch, v.round, v.state)
        }
        Msg::FollowerInfo { accepted_epoch, last_zxid, observer } => {
            format!("FollowerInfo(acc={accepted_epoch} last={} obs={observer})", fmt_zxid(*last_zxid))
        }
        Msg::LeaderInfo { epoch } => format!("LeaderInfo({epoch})"),
        Msg::AckEpoch { current_epoch, last_zxid, counted, log } => {
            let ends: Vec<String> = log.epoch_ends.iter().map(|z| fmt_zxid(*z)).collect();
            format!(
                "AckEpoch(cur={current_epoch} last={} counted={counted} base={} ends=[{}])",
                fmt_zxid(*last_zxid),
                fmt_zxid(log.base),
                ends.join(",")
            )
        }
        Msg::Trunc { zxid } => format!("Trunc({})", fmt_zxid(*zxid)),
        Msg::Snap { zxid, image } => format!("Snap({}, {}B)", fmt_zxid(*zxid), image.len()),
        Msg::Txns(ts) => match (ts.first(), ts.last()) {
            (Some(a), Some(b)) => {
                format!("Txns[{}: {}..{}]", ts.len(), fmt_zxid(a.hdr.zxid), fmt_zxid(b.hdr.zxid))
            }
            _ => "Txns[]".into(),
        },
        Msg::NewLeader { epoch, zxid } => format!("NewLeader(ep={epoch} z={})", fmt_zxid(*zxid)),
        Msg::AckNewLeader { zxid } => format!("AckNewLeader({})", fmt_zxid(*zxid)),
        Msg::UpToDate { committed } => format!("UpToDate({})", fmt_zxid(*committed)),
        Msg::Proposal(t) => format!(
            "Proposal({} {} sid={:#x} cxid={})",
            fmt_zxid(t.hdr.zxid),
            fmt_txn_op(&t.op),
            t.hdr.session_id,
            t.hdr.cxid
        ),
        Msg::Ack { zxid } => format!("Ack({})", fmt_zxid(*zxid)),
        Msg::Commit { zxid } => format!("Commit({})", fmt_zxid(*zxid)),
        Msg::Inform(t) => format!("Inform({} {})", fmt_zxid(t.hdr.zxid), fmt_txn_op(&t.op)),
        Msg::Ping => "Ping".into(),
        Msg::Pong { touched } => format!("Pong({})", touched.len()),
        Msg::Forward(f) => format!("Forward(sid={:#x} cxid={} {:?})", f.session_id, f.cxid, fwd_kind(&f.op)),
        Msg::SyncDone { session_id, cxid } => format!("SyncDone(sid={session_id:#x} cxid={cxid})"),
        Msg::SessionOwner { session_id } => format!("SessionOwner({session_id:#x})"),
    }
}

fn fwd_kind(op: &warren::quorum::ForwardOp) -> &'static str {
    use warren::quorum::ForwardOp::*;
    match op {
        CreateSession { .. } => "CreateSession",
        CloseSession => "CloseSession",
        Write { .. } => "Write",
        Sync => "Sync",
    }
}

fn fmt_txn_op(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { .. } => "createSession".into(),
        TxnOp::CloseSession => "closeSession".into(),
        TxnOp::Create { path, data, .. } => {
            format!("create {path}={}", String::from_utf8_lossy(data.as_deref().unwrap_or_default()))
        }
        TxnOp::SetData { path, data, version } => {
            format!("set {path}={} v{version}", String::from_utf8_lossy(data.as_deref().unwrap_or_default()))
        }
        TxnOp::Error(e) => format!("error {e:?}"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

fn fmt_obs(o: &Observed) -> String {
    format!(
        "{:?} ldr={:?} ep={}/{} serving={} applied={} logged={}",
        o.state,
        o.leader,
        o.epochs.accepted,
        o.epochs.current,
        o.serving,
        fmt_zxid(o.applied),
        fmt_zxid(o.logged)
    )
}

impl World {
    pub fn new(seed: u64, cfg: Config) -> World {
        let n = cfg.voters + cfg.observers;
        let voters: Vec<ServerId> = (1..=cfg.voters as u64).collect();
        let observers: Vec<ServerId> = (cfg.voters as u64 + 1..=n as u64).collect();
        let trace = std::env::var("SIM_TRACE").is_ok_and(|v| v != "0" && !v.is_empty());
        let mut w = World {
            rng: Rng::new(seed),
            seed,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            servers: (0..n)
                .map(|i| Server {
                    id: i as u64 + 1,
                    node: None,
                    inc: 0,
                    // Torn writes and slow syncs from the start; errors only in the fault phase.
                    disk: FaultyDisk::new(
                        seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                        Faults { write_error_ppm: 0, sync_error_ppm: 0, ..cfg.disk_faults() },
                    ),
                    store: None,
                    shadow: Shadow::default(),
                    fsync_in_flight: false,
                    crash_in_round: None,
                    flips: Vec::new(),
                    obs: None,
                    snap_installed: false,
                    down_until_restart: false,
                    serving_since: None,
                })
                .collect(),
            voters,
            observers,
            up: vec![vec![false; n]; n],
            gen: vec![vec![0; n]; n],
            last_arrival: vec![vec![0; n]; n],
            clog_until: vec![vec![0; n]; n],
            broken: vec![vec![None; n]; n],
            partitions: Vec::new(),
            next_token: 1,
            conns: HashMap::new(),
            next_conn: 1,
            clients: Vec::new(),
            history: Vec::new(),
            keys_ready: 0,
            phase: Phase::Setup,
            fault_end: u64::MAX,
            quiesce_until: u64::MAX,
            quiesce_target: 0,
            stop: false,
            leader_of_epoch: BTreeMap::new(),
            digests: HashMap::new(),
            committed: BTreeMap::new(),
            failure: None,
            stats: Stats::default(),
            trace,
            cfg,
        };
        for c in 0..w.cfg.clients {
            w.add_client(None);
            let first = w.rng.range(0, 50 * US);
            w.clients[c].next_op_at = first;
            w.wake_client(c, first);
        }
        // Client 0 creates the keys first; the others wait for them.
        for k in 0..w.cfg.keys {
            w.clients[0].setup.push(OpKind::Create { value: INITIAL_VALUE.to_vec() });
            w.clients[0].setup_keys.push(k);
        }
        w
    }

    fn add_client(&mut self, probe_for: Option<usize>) -> usize {
        let c = Client {
            session: 0,
            passwd: vec![0; 16],
            conn: None,
            next_xid: 1,
            inflight: BTreeMap::new(),
            ops_left: if probe_for.is_some() { 0 } else { self.cfg.ops_per_client },
            probe_for,
            probe_done: false,
            last_zxid: 0,
            known_version: vec![0; self.cfg.keys.max(1)],
            next_op_at: 0,
            reconnect_at: 0,
            counter: 0,
            wake_token: 0,
            wake_at: u64::MAX,
            paused_until: 0,
            setup: Vec::new(),
            setup_keys: Vec::new(),
        };
        self.clients.push(c);
        self.clients.len() - 1
    }

    fn n(&self) -> usize {
        self.servers.len()
    }

    fn now_t(&self) -> Now {
        let ms = (self.now / US) as i64;
        Now::from_ms(ms, WALL_BASE_MS + ms)
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued { at: at.max(self.now), seq: self.seq, ev });
    }

    fn tr(&self, f: impl FnOnce() -> String) {
        if self.trace {
            println!("[{:>9.3}ms] {}", self.now as f64 / 1000.0, f());
        }
    }

    fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            let mut m = format!("at t={:.3}ms: {msg}\n  servers:", self.now as f64 / 1000.0);
            for s in &self.servers {
                let _ = write!(
                    m,
                    "\n    {}: {} disk: epochs={}/{} snap={} log={}..{} synced={}",
                    s.id,
                    match (&s.node, &s.obs) {
                        (Some(_), Some(o)) => fmt_obs(o),
                        _ => "DOWN".to_string(),
                    },
                    s.shadow.epochs.accepted,
                    s.shadow.epochs.current,
                    fmt_zxid(s.shadow.snap),
                    s.shadow.log.first().map(|t| fmt_zxid(t.hdr.zxid)).unwrap_or_default(),
                    s.shadow.log.last().map(|t| fmt_zxid(t.hdr.zxid)).unwrap_or_default(),
                    s.shadow.synced
                );
            }
            self.failure = Some(m);
        }
        self.stop = true;
    }

    // ---- running ---------------------------------------------------------------------------

    pub fn run(mut self) -> RunResult {
        for s in 0..self.n() {
            self.start_server(s);
        }
        self.refresh_links();
        // Setup must finish within the liveness bound too.
        self.schedule(self.cfg.liveness_ms * US, Ev::SetupDeadline);
        let hard_cap = 600_000 * US;
        while !self.stop {
            let Some(q) = self.queue.pop() else {
                self.fail("event queue ran dry".into());
                break;
            };
            self.now = q.at;
            self.stats.events += 1;
            if self.now > hard_cap {
                self.fail("simulated time cap reached".into());
                break;
            }
            if self.stats.events > 5_000_000 || self.queue.len() > 200_000 {
                let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
                for q in self.queue.iter() {
                    let k = match &q.ev {
                        Ev::Peer { from, to, msg, .. } => {
                            format!("{}->{} {}", from + 1, to + 1, fmt_msg(msg).split('(').next().unwrap_or(""))
                        }
                        Ev::ToClient { .. } => "to client".into(),
                        Ev::ToServer { .. } => "to server".into(),
                        _ => "other".into(),
                    };
                    *kinds.entry(k).or_default() += 1;
                }
                let mut v: Vec<_> = kinds.into_iter().collect();
                v.sort_by_key(|x| std::cmp::Reverse(x.1));
                v.truncate(8);
                self.fail(format!(
                    "event storm: {} events processed, {} queued; most queued: {v:?}",
                    self.stats.events,
                    self.queue.len()
                ));
                break;
            }
            self.handle(q.ev);
            if self.phase == Phase::Setup && self.keys_ready >= self.cfg.keys {
                self.begin_faults();
            }
            if self.phase == Phase::Quiesce && self.now >= self.quiesce_until {
                break;
            }
        }
        self.stats.sim_ms = self.now / US;
        if self.failure.is_none() {
            self.final_checks();
        }
        // Whatever is still pending is indeterminate.
        for op in &mut self.history {
            if op.outcome == Outcome::Pending {
                op.outcome = Outcome::Unknown;
            }
        }
        for op in &self.history {
            match op.outcome {
                Outcome::Ok { .. } => self.stats.ops_ok += 1,
                Outcome::Fail { .. } => self.stats.ops_failed += 1,
                _ => self.stats.ops_unknown += 1,
            }
        }
        let final_tree = self.final_tree();
        RunResult {
            stats: self.stats.clone(),
            history: std::mem::take(&mut self.history),
            failure: self.failure,
            final_tree,
        }
    }

    fn final_tree(&self) -> Vec<(String, Option<Vec<u8>>, i32)> {
        let Some(node) = self.servers.iter().find_map(|s| s.node.as_ref()) else {
            return Vec::new();
        };
        let tree = node.machine().tree();
        (0..self.cfg.keys)
            .filter_map(|k| {
                let p = key_path(k);
                tree.get(&p).map(|n| (p, n.data.clone(), n.stat.version))
            })
            .collect()
    }

    fn begin_faults(&mut self) {
        self.phase = Phase::Faults;
        for srv in &self.servers {
            srv.disk.set_faults(self.cfg.disk_faults());
        }
        self.tr(|| "== keys created; fault phase begins".into());
        self.fault_end = self.now + self.cfg.fault_ms * US;
        self.schedule(self.fault_end, Ev::EndFaults);
        if self.cfg.any_faults() {
            let d = self.rng.range(1, 2 * self.cfg.fault_every_ms) * US;
            self.schedule(self.now + d, Ev::Fault);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { s, inc } => {
                if self.servers[s].inc == inc && self.servers[s].node.is_some() {
                    self.call(s, |n, now| n.tick(now));
                    let next = self.now + self.cfg.tick_ms as u64 * US;
                    self.schedule(next, Ev::Tick { s, inc });
                    self.schedule(self.now + self.cfg.tick_ms as u64 * US / 2, Ev::Sweep { s, inc });
                }
            }
            Ev::Sweep { s, inc } => {
                if self.servers[s].inc == inc && self.servers[s].node.is_some() {
                    self.call(s, |n, now| n.sweep(now));
                }
            }
            Ev::FsyncDone { s, inc } => {
                if self.servers[s].inc == inc && self.servers[s].node.is_some() {
                    self.fsync_done(s);
                }
            }
            Ev::CrashInRound { s, inc, restart_ms } => {
                // Armed in the fault phase, it may come due after the faults ended (seed
                // 1005389): then no crash.
                if self.servers[s].inc == inc && self.phase == Phase::Faults && self.may_crash(s) {
                    self.crash(s, Some(restart_ms));
                }
            }
            Ev::FsyncReport { s, inc, zxid } => {
                if self.servers[s].inc == inc && self.servers[s].node.is_some() {
                    self.report_synced(s, zxid);
                }
            }
            Ev::Peer { from, to, gen, msg } => {
                if self.gen[from][to] != gen || self.servers[to].node.is_none() {
                    self.stats.dropped_msgs += 1;
                    self.tr(|| format!("{}->{} DROPPED {}", from + 1, to + 1, fmt_msg(&msg)));
                    return;
                }
                self.tr(|| format!("{}->{} {}", from + 1, to + 1, fmt_msg(&msg)));
                let from_id = from as u64 + 1;
                self.call(to, move |n, now| n.peer_message(from_id, msg, now));
            }
            Ev::LinkHeal { a, b, token } => {
                if self.broken[a][b] == Some(token) {
                    self.broken[a][b] = None;
                    self.broken[b][a] = None;
                    self.tr(|| format!("== link {}-{} repaired", a + 1, b + 1));
                    self.refresh_links();
                }
            }
            Ev::PartitionHeal { id } => {
                if self.partitions.iter().any(|p| p.0 == id) {
                    self.partitions.retain(|p| p.0 != id);
                    self.tr(|| format!("== partition {id} healed"));
                    self.refresh_links();
                }
            }
            Ev::Restart { s } => {
                if self.servers[s].node.is_none() {
                    self.start_server(s);
                    self.refresh_links();
                }
            }
            Ev::Fault => {
                if self.phase == Phase::Faults {
                    self.inject_fault();
                    let d = self.rng.range(1, 2 * self.cfg.fault_every_ms) * US;
                    self.schedule(self.now + d, Ev::Fault);
                }
            }
            Ev::EndFaults => self.end_faults(),
            Ev::SetupDeadline => {
                if self.phase == Phase::Setup {
                    self.fail(format!(
                        "liveness: the {} keys were not created within {} ms of the start",
                        self.cfg.keys, self.cfg.liveness_ms
                    ));
                }
            }
            Ev::Check => {
                if self.phase == Phase::Healing {
                    self.check_done();
                    self.schedule(self.now + 100 * US, Ev::Check);
                }
            }
            Ev::LivenessDeadline => self.liveness_deadline(),
            Ev::HardStop => {
                self.tr(|| "== hard stop".into());
                self.phase = Phase::Quiesce;
                self.quiesce_until = self.now;
            }
            Ev::ToServer { conn, what } => self.to_server(conn, what),
            Ev::ToClient { conn, frame } => self.to_client(conn, frame),
            Ev::ClosedToClient { conn } => self.closed_to_client(conn),
            Ev::ClientWake { c, token } => {
                if self.clients[c].wake_token == token {
                    self.clients[c].wake_at = u64::MAX;
                    self.client_wake(c);
                }
            }
        }
    }

    // ---- servers ---------------------------------------------------------------------------

    fn qcfg(&mut self, s: usize) -> QuorumConfig {
        QuorumConfig {
            myid: self.servers[s].id,
            voters: self.voters.clone(),
            observers: self.observers.clone(),
            init_limit: self.cfg.init_limit,
            sync_limit: self.cfg.sync_limit,
            peer_timeout_ms: self.cfg.peer_timeout_ms,
            max_inflight: self.cfg.max_inflight,
            diff_window: self.cfg.diff_window,
        }
    }

    fn start_server(&mut self, s: usize) {
        let mcfg = MachineConfig {
            tick_ms: self.cfg.tick_ms,
            min_session_timeout_ms: 2 * self.cfg.tick_ms as i32,
            max_session_timeout_ms: 60_000,
            myid: self.servers[s].id as u8,
            local_sessions: self.cfg.local_sessions,
            // Session passwords from the run's seed (not the OS), so a run stays a pure
            // function of its seed; each server start gets its own sequence.
            password_seed: Some(self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((s as u64) << 56) ^ self.now),
            ..MachineConfig::default()
        };
        let qcfg = self.qcfg(s);
        let Some(rec) = self.recover(s) else { return };
        let init = rec.init;
        let snap_zxid = rec.snapshot_zxid;
        let now = self.now_t();
        self.tr(|| {
            format!(
                "== server {} starts: epochs={:?} snap={} log={} records (last {})",
                s + 1,
                init.epochs,
                fmt_zxid(snap_zxid),
                init.log.len(),
                fmt_zxid(init.log.last().map(|t| t.hdr.zxid).unwrap_or(snap_zxid))
            )
        });
        let node = Node::new(mcfg, qcfg, init, now);
        let srv = &mut self.servers[s];
        srv.inc += 1;
        srv.node = Some(node);
        srv.obs = None;
        srv.serving_since = None;
        srv.down_until_restart = false;
        let inc = srv.inc;
        let phase = self.rng.range(1, self.cfg.tick_ms as u64 * US);
        self.schedule(self.now + phase, Ev::Tick { s, inc });
        self.drain(s);
        self.observe(s);
        // Peers it cannot reach: the transport's connection attempts fail.
        for p in 0..self.n() {
            if p != s && !self.reachable(s, p) && self.servers[s].node.is_some() {
                let pid = p as u64 + 1;
                self.call(s, move |n, now| n.peer_down(pid, now));
            }
        }
    }

    /// Runs the real start-up recovery on server `s`'s disk and holds it to the oracle: a start
    /// after a crash must succeed unless a bit was flipped, and must give back every epoch and
    /// record made durable. A refusal after a flip is what recovery should do: the simulated
    /// operator restores the flipped bits and starts the server again.
    fn recover(&mut self, s: usize) -> Option<Recovered> {
        let me = s + 1;
        let errors_before = self.servers[s].disk.stats().errors;
        let opened = MemberStore::open(&self.servers[s].disk, dirs(), SEGMENT_BYTES);
        let (store, rec) = match opened {
            Ok(x) => x,
            Err(e) if self.servers[s].disk.stats().errors > errors_before => {
                // An injected EIO during start-up (the torn tail's repair, say): the start
                // fails, as the real server's would, and is tried again later.
                self.stats.disk_errors += 1;
                self.tr(|| format!("== server {me} fails to start on a disk error: {e}; retrying"));
                let ms = self.rng.range(100, 1000);
                self.schedule(self.now + ms * US, Ev::Restart { s });
                return None;
            }
            Err(e) if !self.servers[s].flips.is_empty() => {
                self.stats.refused_starts += 1;
                self.tr(|| format!("== server {me} refuses to start after a bit flip: {e}; the operator repairs it"));
                for (path, offset, bit) in std::mem::take(&mut self.servers[s].flips) {
                    self.servers[s].disk.flip_bit(&path, offset, bit).expect("the flipped file is still there");
                }
                // Then starts it again: with no flip left, that start must succeed (or fail on
                // an injected EIO, and be retried; seed 987168).
                self.schedule(self.now + US, Ev::Restart { s });
                return None;
            }
            Err(e) => {
                self.fail(format!("server {me} cannot recover after a crash (no bit was flipped): {e}"));
                return None;
            }
        };
        self.servers[s].flips.clear();
        self.check_recovered(s, &rec);
        let srv = &mut self.servers[s];
        srv.store = Some(store);
        srv.fsync_in_flight = false;
        srv.shadow = Shadow {
            epochs: rec.init.epochs,
            snap: rec.snapshot_zxid,
            log: rec.init.log.clone(),
            synced: rec.init.log.len(),
        };
        Some(rec)
    }

    /// What recovery gave back must hold everything the oracle knows was durable, unchanged.
    fn check_recovered(&mut self, s: usize, rec: &Recovered) {
        let me = s + 1;
        let sh = &self.servers[s].shadow;
        let e = rec.init.epochs;
        if e.accepted < sh.epochs.accepted || e.current < sh.epochs.current {
            let msg = format!("server {me} recovered epochs {e:?} but had stored {:?} durably", sh.epochs);
            self.fail(msg);
            return;
        }
        if rec.last_zxid < sh.last_durable() {
            let msg = format!(
                "server {me} recovered its log up to {} but {} was durable (snapshot {}, recovered snapshot {})",
                fmt_zxid(rec.last_zxid),
                fmt_zxid(sh.last_durable()),
                fmt_zxid(sh.snap),
                fmt_zxid(rec.snapshot_zxid)
            );
            self.fail(msg);
            return;
        }
        for t in &sh.log[..sh.synced] {
            if t.hdr.zxid <= rec.snapshot_zxid {
                continue;
            }
            match rec.init.log.binary_search_by_key(&t.hdr.zxid, |x| x.hdr.zxid) {
                Ok(i) if rec.init.log[i] == *t => {}
                Ok(i) => {
                    let msg = format!(
                        "server {me} recovered {} as {} but wrote {}",
                        fmt_zxid(t.hdr.zxid),
                        fmt_txn_op(&rec.init.log[i].op),
                        fmt_txn_op(&t.op)
                    );
                    self.fail(msg);
                    return;
                }
                Err(_) => {
                    let msg = format!("server {me} lost the durable record {} in recovery", fmt_zxid(t.hdr.zxid));
                    self.fail(msg);
                    return;
                }
            }
        }
    }

    /// Flips one bit of a down server's durable data: in a log record that is not the last
    /// durable one (a flip there is indistinguishable from a torn write, and recovery drops
    /// that record as ZooKeeper does: `storage::tests` shows it), or in its newest snapshot.
    fn flip_a_bit(&mut self, s: usize) {
        let d = dirs();
        let srv = &self.servers[s];
        let durable_before = srv.shadow.last_durable();
        let mut targets: Vec<(std::path::PathBuf, u64, u64)> = Vec::new();
        if let Ok(names) = srv.disk.list(&d.log) {
            for name in names {
                let path = d.log.join(&name);
                let Ok(bytes) = srv.disk.read(&path) else { continue };
                let Ok(scan) = warren::log::format::scan(&bytes) else { continue };
                for (i, t) in scan.txns.iter().enumerate() {
                    if t.hdr.zxid < durable_before && t.hdr.zxid > srv.shadow.snap {
                        let end = scan.offsets.get(i + 1).copied().unwrap_or(scan.end);
                        targets.push((path.clone(), scan.offsets[i] as u64, end as u64));
                    }
                }
            }
        }
        if let Ok(names) = srv.disk.list(&d.snap) {
            if let Some(newest) = names.iter().rfind(|n| !n.ends_with(".tmp")) {
                let path = d.snap.join(newest);
                if let Ok(bytes) = srv.disk.read(&path) {
                    targets.push((path, 0, bytes.len() as u64));
                }
            }
        }
        if targets.is_empty() {
            return;
        }
        let (path, from, to) = self.rng.pick(&targets).clone();
        let offset = self.rng.range(from, to - 1);
        let bit = self.rng.range(0, 7) as u8;
        let srv = &mut self.servers[s];
        srv.disk.flip_bit(&path, offset, bit).expect("a listed file");
        srv.flips.push((path.clone(), offset, bit));
        self.stats.bit_flips += 1;
        self.tr(|| format!("== bit {bit} of byte {offset} of {} flipped on server {}", path.display(), s + 1));
    }

    /// Checks a disk step against what the simulator knows before it is performed.
    fn check_step(&mut self, s: usize, step: &DiskStep) {
        let me = s + 1;
        match step {
            DiskStep::Epochs(e) => {
                let old = self.servers[s].shadow.epochs;
                self.tr(|| format!("   {me} persist epochs {}/{}", e.accepted, e.current));
                if e.accepted < old.accepted || e.current < old.current {
                    self.fail(format!("server {me} persisted epochs {e:?} going backwards from {old:?}"));
                }
                if e.current > e.accepted {
                    self.fail(format!(
                        "server {me} persisted current epoch {} above accepted {}",
                        e.current, e.accepted
                    ));
                }
            }
            DiskStep::Truncate(t) => {
                let t = *t;
                self.stats.truncs += 1;
                self.tr(|| format!("   {me} truncate after {}", fmt_zxid(t)));
                let sh = &self.servers[s].shadow;
                let dropped_committed = sh
                    .log
                    .iter()
                    .filter(|x| x.hdr.zxid > t)
                    .find(|x| self.committed.get(&x.hdr.zxid) == Some(*x))
                    .map(|x| x.hdr.zxid);
                if let Some(z) = dropped_committed {
                    self.fail(format!(
                        "server {me} truncated its log after {}, dropping committed txn {}",
                        fmt_zxid(t),
                        fmt_zxid(z)
                    ));
                }
                let sz = self.servers[s].shadow.snap;
                if sz > t {
                    self.fail(format!(
                        "server {me} asked to truncate after {} below its installed snapshot {}",
                        fmt_zxid(t),
                        fmt_zxid(sz)
                    ));
                }
            }
            DiskStep::Snapshot(z, image) => {
                let z = *z;
                self.stats.snaps += 1;
                self.tr(|| format!("   {me} install snapshot at {} ({} bytes)", fmt_zxid(z), image.len()));
                let a = warren::snap::aligned_copy(image);
                match warren::snap::decode(&a) {
                    Ok(l) if l.tree.last_zxid != z && l.end_zxid != z => self.fail(format!(
                        "server {me} installs a snapshot labelled {} whose trailer says {}",
                        fmt_zxid(z),
                        fmt_zxid(l.end_zxid)
                    )),
                    Ok(_) => {}
                    Err(e) => self.fail(format!("server {me} asked to install an invalid snapshot: {e}")),
                }
            }
            DiskStep::Append(txns) => {
                let first = txns[0].hdr.zxid;
                let last = txns.last().expect("not empty").hdr.zxid;
                self.tr(|| format!("   {me} append {} records {}..{}", txns.len(), fmt_zxid(first), fmt_zxid(last)));
                let mut tail = self.servers[s].shadow.last_zxid();
                for t in txns {
                    if t.hdr.zxid <= tail {
                        self.fail(format!(
                            "server {me} appends {} after {}: out of zxid order",
                            fmt_zxid(t.hdr.zxid),
                            fmt_zxid(tail)
                        ));
                    }
                    tail = t.hdr.zxid;
                    if let Some(c) = self.committed.get(&t.hdr.zxid) {
                        if c != t {
                            self.fail(format!(
                                "server {me} appends {} = {} but the committed txn with that zxid is {}",
                                fmt_zxid(t.hdr.zxid),
                                fmt_txn_op(&t.op),
                                fmt_txn_op(&c.op)
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Performs a disk step through the real storage code on the faulty disk (or, with a
    /// planted bug, the wrong way), and keeps the oracle in step. Returns what to report to
    /// the node once the Ready's messages are out.
    fn perform(&mut self, s: usize, step: DiskStep) -> std::io::Result<Option<Report>> {
        let planted = self.cfg.planted;
        let srv = &mut self.servers[s];
        let store = srv.store.as_mut().expect("up");
        let sh = &mut srv.shadow;
        match step {
            DiskStep::Epochs(e) if planted == Some(Planted::SkipEpochSync) => {
                // PLANTED BUG: the epoch files are rewritten in place and never synced.
                for (name, v) in [("acceptedEpoch", e.accepted), ("currentEpoch", e.current)] {
                    let path = store.dirs().data.join(name);
                    srv.disk.create(&path, 0)?;
                    srv.disk.write_at(&path, 0, v.to_string().as_bytes())?;
                }
                sh.epochs = e;
                Ok(None)
            }
            DiskStep::Append(txns) if planted == Some(Planted::AckBeforeFsync) => {
                // PLANTED BUG: written, and reported durable at once.
                let last = txns.last().expect("not empty").hdr.zxid;
                sh.log.extend(txns.iter().cloned());
                store.perform(&srv.disk, DiskStep::Append(txns))?;
                Ok(Some(Report::Synced(last)))
            }
            step => {
                let oracle = match &step {
                    DiskStep::Epochs(e) => Oracle::Epochs(*e),
                    DiskStep::Truncate(z) => Oracle::Truncate(*z),
                    DiskStep::Snapshot(z, _) => Oracle::Snapshot(*z),
                    DiskStep::Append(txns) => Oracle::Append(txns.clone()),
                };
                let rewound = store.perform(&srv.disk, step)?;
                match oracle {
                    Oracle::Epochs(e) => sh.epochs = e,
                    Oracle::Truncate(z) => {
                        // What stays was synced before the cut (the writer syncs first).
                        sh.log.truncate(sh.log.partition_point(|t| t.hdr.zxid <= z));
                        sh.synced = sh.log.len();
                    }
                    Oracle::Snapshot(z) => {
                        sh.snap = z;
                        sh.log.clear();
                        sh.synced = 0;
                        srv.snap_installed = true;
                    }
                    Oracle::Append(txns) => sh.log.extend(txns),
                }
                Ok(rewound.map(Report::Rewound))
            }
        }
    }

    fn crash(&mut self, s: usize, restart_after_ms: Option<u64>) {
        if self.servers[s].node.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let before = self.servers[s].disk.stats();
        let unsynced = {
            let sh = &self.servers[s].shadow;
            sh.log.len() - sh.synced
        };
        self.servers[s].disk.crash();
        let after = self.servers[s].disk.stats();
        self.stats.writes_kept += after.writes_kept - before.writes_kept;
        self.stats.writes_torn += after.writes_torn - before.writes_torn;
        self.stats.writes_lost += after.writes_lost - before.writes_lost;
        self.stats.names_lost += after.names_lost - before.names_lost;
        let (kept, torn, lost) = (
            after.writes_kept - before.writes_kept,
            after.writes_torn - before.writes_torn,
            after.writes_lost - before.writes_lost,
        );
        if self.cfg.bit_flips && self.rng.chance(0.5) {
            self.flip_a_bit(s);
        }
        let srv = &mut self.servers[s];
        srv.node = None;
        srv.store = None;
        srv.fsync_in_flight = false;
        srv.crash_in_round = None;
        srv.obs = None;
        srv.serving_since = None;
        srv.inc += 1;
        srv.down_until_restart = true;
        self.tr(|| {
            format!(
                "== CRASH server {} ({unsynced} records unsynced; writes kept {kept}, torn {torn}, lost {lost})",
                s + 1
            )
        });
        // Its client connections are reset.
        let mut ids: Vec<u64> =
            self.conns.iter().filter(|(_, c)| c.server == s && !c.reset).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for id in ids {
            let c = self.conns.get_mut(&id).expect("present");
            c.reset = true;
            c.server_closed = true;
            let at = self.now + self.rng.range(100, 5000);
            self.schedule(at, Ev::ClosedToClient { conn: id });
        }
        self.refresh_links();
        if let Some(ms) = restart_after_ms {
            self.schedule(self.now + ms * US, Ev::Restart { s });
        }
    }

    /// Calls into server `s`'s node, performs what it asks, and checks what it shows.
    fn call(&mut self, s: usize, f: impl FnOnce(&mut Node, Now)) {
        let now = self.now_t();
        let Some(node) = self.servers[s].node.as_mut() else {
            return;
        };
        f(node, now);
        self.drain(s);
        self.observe(s);
    }

    fn drain(&mut self, s: usize) {
        let mut ready = self.servers[s].node.as_mut().expect("up").take_ready();
        if ready.is_empty() {
            return;
        }
        // Everything leaves the node in an order that depends on its inputs alone (ordered peer
        // tables; the machine sorts whatever it fans out of a hash map), so the simulator
        // takes it as it comes: `deterministic` runs each seed twice and compares.
        let me = s + 1;
        let mut reports = Vec::new();
        for step in ready.take_disk_steps() {
            self.check_step(s, &step);
            match self.perform(s, step) {
                Ok(Some(r)) => reports.push(r),
                Ok(None) => {}
                Err(e) => {
                    // The server stops, as the real one exits on a failed write or sync:
                    // nothing of this Ready leaves.
                    self.stats.disk_errors += 1;
                    self.tr(|| format!("   {me} disk error: {e}; the server stops"));
                    let ms = self.rng.range(100, 1000);
                    self.crash(s, Some(ms));
                    return;
                }
            }
        }
        self.start_fsync(s);
        for (to, msg) in ready.sends {
            self.send_peer(s, to, msg);
        }
        for (conn, frame) in ready.client_sends {
            self.send_to_client(conn, frame);
        }
        for conn in ready.closes {
            self.server_closes(conn);
        }
        for r in reports {
            match r {
                Report::Rewound(z) => self.call(s, move |n, now| n.rewound(z, now)),
                Report::Synced(z) => self.call(s, move |n, now| n.synced(z, now)),
            }
        }
    }

    /// Starts a group-commit round if none is in flight: what is queued is written now and
    /// synced when `FsyncDone` comes (appends arriving meanwhile wait for the next round, as
    /// in the server's writer).
    fn start_fsync(&mut self, s: usize) {
        let srv = &mut self.servers[s];
        let Some(store) = srv.store.as_mut() else { return };
        if srv.fsync_in_flight {
            return;
        }
        match store.write_round(&srv.disk) {
            Ok(None) => {}
            Ok(Some(_)) => {
                srv.fsync_in_flight = true;
                self.stats.fsyncs += 1;
                let inc = srv.inc;
                let at = self.now + self.rng.range(100, 3000);
                self.schedule(at, Ev::FsyncDone { s, inc });
                if let Some(restart_ms) = self.servers[s].crash_in_round.take() {
                    let crash_at = self.rng.range(self.now, at - 1);
                    self.schedule(crash_at, Ev::CrashInRound { s, inc, restart_ms });
                }
            }
            Err(e) => {
                self.stats.disk_errors += 1;
                self.tr(|| format!("   {} log write failed: {e}; the server stops", s + 1));
                let ms = self.rng.range(100, 1000);
                self.crash(s, Some(ms));
            }
        }
    }

    /// The fsync started by `start_fsync` ends: the real store syncs what was written by now.
    fn fsync_done(&mut self, s: usize) {
        let srv = &mut self.servers[s];
        let store = srv.store.as_mut().expect("up");
        match store.sync(&srv.disk) {
            Ok(Some(z)) => {
                let sh = &mut srv.shadow;
                sh.synced = sh.log.partition_point(|t| t.hdr.zxid <= z);
                let slow_us = srv.disk.last_sync_us();
                if slow_us > 3000 {
                    self.stats.slow_syncs += 1;
                    let inc = srv.inc;
                    self.schedule(self.now + slow_us, Ev::FsyncReport { s, inc, zxid: z });
                } else {
                    self.report_synced(s, z);
                }
            }
            Ok(None) => {
                srv.fsync_in_flight = false;
                self.start_fsync(s);
            }
            Err(e) => {
                self.stats.disk_errors += 1;
                self.tr(|| format!("   {} fsync failed: {e}; the server stops", s + 1));
                let ms = self.rng.range(100, 1000);
                self.crash(s, Some(ms));
            }
        }
    }

    fn report_synced(&mut self, s: usize, z: Zxid) {
        self.servers[s].fsync_in_flight = false;
        self.tr(|| format!("   {} synced {}", s + 1, fmt_zxid(z)));
        self.call(s, move |n, now| n.synced(z, now));
        if self.servers[s].node.is_some() {
            self.start_fsync(s);
        }
    }

    /// Looks at server `s` after a step and checks the invariants that can be seen there.
    fn observe(&mut self, s: usize) {
        let Some(node) = self.servers[s].node.as_ref() else {
            return;
        };
        let o = Observed {
            state: node.state(),
            leader: node.leader(),
            epochs: node.epochs(),
            serving: node.serving(),
            applied: node.last_applied(),
            logged: node.last_logged(),
        };
        let me = s as u64 + 1;
        let prev = self.servers[s].obs;
        if prev != Some(o) {
            self.tr(|| format!("   {me} is {}", fmt_obs(&o)));
        }
        if o.state == PeerState::Looking && prev.is_some_and(|p| p.state != PeerState::Looking) {
            self.stats.elections += 1;
        }
        if !o.serving {
            self.servers[s].serving_since = None;
        } else if self.servers[s].serving_since.is_none() {
            self.servers[s].serving_since = Some(self.now);
        }
        let disk_epochs = self.servers[s].shadow.epochs;
        if o.epochs.accepted > disk_epochs.accepted || o.epochs.current > disk_epochs.current {
            self.fail(format!("server {me} reports epochs {:?} but only {:?} are persisted", o.epochs, disk_epochs));
        }
        if o.serving {
            match o.state {
                PeerState::Leading => self.claim_leader(o.epochs.current, me, me),
                PeerState::Following => {
                    if let Some(l) = o.leader {
                        self.claim_leader(o.epochs.current, l, me);
                    } else {
                        self.fail(format!("server {me} is a serving follower without a leader"));
                    }
                }
                PeerState::Observing => {}
                PeerState::Looking => self.fail(format!("server {me} serves clients while looking")),
            }
        }
        if let Some(p) = prev {
            if p.serving && o.serving && o.applied < p.applied {
                self.fail(format!(
                    "server {me} applied zxid went back from {} to {} while serving",
                    fmt_zxid(p.applied),
                    fmt_zxid(o.applied)
                ));
            }
        }
        let prev_applied = prev.map(|p| p.applied);
        let snap_installed = std::mem::take(&mut self.servers[s].snap_installed);
        if prev_applied != Some(o.applied) || snap_installed {
            if let Some(pa) = prev_applied {
                if o.applied > pa {
                    self.record_applied(s, pa, o.applied);
                }
            }
            let node = self.servers[s].node.as_ref().expect("up");
            let tree = node.machine().tree();
            let d = warren::snap::tree_digest(tree);
            if tree.last_zxid != o.applied {
                let lz = tree.last_zxid;
                self.fail(format!(
                    "server {me}: last_applied() = {} but its tree is at {}",
                    fmt_zxid(o.applied),
                    fmt_zxid(lz)
                ));
            }
            match self.digests.get(&o.applied) {
                Some(&(d0, s0, t0)) if d0 != d => {
                    let dump = dump_tree(self.servers[s].node.as_ref().unwrap().machine().tree());
                    self.fail(format!(
                        "state divergence: server {me}'s tree at applied zxid {} differs from server {}'s at the \
                         same zxid (seen at t={:.3}ms). Server {me}'s tree:\n{dump}",
                        fmt_zxid(o.applied),
                        s0 + 1,
                        t0 as f64 / 1000.0
                    ));
                }
                Some(_) => {}
                None => {
                    self.digests.insert(o.applied, (d, s, self.now));
                }
            }
        }
        self.servers[s].obs = Some(o);
    }

    fn claim_leader(&mut self, epoch: u32, leader: ServerId, by: ServerId) {
        match self.leader_of_epoch.get(&epoch) {
            Some(&(l, _)) if l != leader => {
                self.fail(format!(
                    "two leaders in epoch {epoch}: server {by} says {leader}, earlier {l} was seen as the leader"
                ));
            }
            Some(_) => {}
            None => {
                self.stats.leaders += 1;
                self.tr(|| format!("== epoch {epoch}: leader {leader} (seen by {by})"));
                self.leader_of_epoch.insert(epoch, (leader, self.now));
            }
        }
    }

    /// Server `s` applied (from, to]: the txns it applied from its log join the committed
    /// history (and must agree with it); a txn committed for the first time must be durable on a
    /// quorum of voters.
    fn record_applied(&mut self, s: usize, from: Zxid, to: Zxid) {
        let sh = &self.servers[s].shadow;
        let lo = sh.log.partition_point(|t| t.hdr.zxid <= from);
        let hi = sh.log.partition_point(|t| t.hdr.zxid <= to);
        let applied: Vec<Txn> = sh.log[lo..hi].to_vec();
        for t in applied {
            let z = t.hdr.zxid;
            match self.committed.get(&z) {
                Some(c) if *c != t => {
                    let msg = format!(
                        "committed histories disagree at {}: server {} applied {} but {} was applied before",
                        fmt_zxid(z),
                        s + 1,
                        fmt_txn_op(&t.op),
                        fmt_txn_op(&c.op)
                    );
                    self.fail(msg);
                    return;
                }
                Some(_) => {}
                None => {
                    let durable: Vec<ServerId> = self
                        .voters
                        .iter()
                        .copied()
                        .filter(|&v| self.servers[v as usize - 1].shadow.has_durable(z))
                        .collect();
                    if durable.len() * 2 <= self.voters.len() {
                        self.fail(format!(
                            "server {} applied {} ({}) but only voters {durable:?} have it durably",
                            s + 1,
                            fmt_zxid(z),
                            fmt_txn_op(&t.op)
                        ));
                    }
                    self.stats.commits += 1;
                    self.committed.insert(z, t);
                }
            }
        }
    }

    // ---- network -----------------------------------------------------------------------------

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.servers[a].node.is_some()
            && self.servers[b].node.is_some()
            && self.broken[a][b].is_none()
            && self.partitions.iter().all(|(_, side)| side[a] == side[b])
    }

    /// Recomputes which links are up and tells both ends of each change.
    fn refresh_links(&mut self) {
        let n = self.n();
        for a in 0..n {
            for b in a + 1..n {
                let r = self.reachable(a, b);
                if r == self.up[a][b] {
                    continue;
                }
                self.up[a][b] = r;
                self.up[b][a] = r;
                if r {
                    self.tr(|| format!("== link {}-{} up", a + 1, b + 1));
                    let (ia, ib) = (a as u64 + 1, b as u64 + 1);
                    self.call(a, move |nd, now| nd.peer_up(ib, now));
                    self.call(b, move |nd, now| nd.peer_up(ia, now));
                } else {
                    self.tr(|| format!("== link {}-{} down", a + 1, b + 1));
                    self.gen[a][b] += 1;
                    self.gen[b][a] += 1;
                    self.last_arrival[a][b] = 0;
                    self.last_arrival[b][a] = 0;
                    let (ia, ib) = (a as u64 + 1, b as u64 + 1);
                    self.call(a, move |nd, now| nd.peer_down(ib, now));
                    self.call(b, move |nd, now| nd.peer_down(ia, now));
                }
            }
        }
    }

    fn link_delay(&mut self, from: usize, to: usize) -> u64 {
        if self.now < self.clog_until[from][to] {
            return self.rng.range(10_000, 50_000);
        }
        if self.cfg.clogs && self.rng.chance(0.2) {
            self.rng.range(1000, 5000)
        } else {
            self.rng.range(50, 1000)
        }
    }

    fn send_peer(&mut self, from: usize, to_id: ServerId, msg: Msg) {
        let to = to_id as usize - 1;
        if to >= self.n() || to == from {
            self.fail(format!("server {} sends {} to unknown/self peer {to_id}", from + 1, fmt_msg(&msg)));
            return;
        }
        self.stats.peer_msgs += 1;
        // Through the real codec, as on the wire.
        let mut buf = Vec::new();
        warren::quorum::codec::encode(&msg, &mut buf);
        match warren::quorum::codec::decode(&buf[4..]) {
            Ok(m) if m == msg => {}
            Ok(m) => {
                self.fail(format!("codec round trip changed {} into {}", fmt_msg(&msg), fmt_msg(&m)));
                return;
            }
            Err(e) => {
                self.fail(format!("codec cannot decode its own encoding of {}: {e}", fmt_msg(&msg)));
                return;
            }
        }
        if !self.up[from][to] {
            self.stats.dropped_msgs += 1;
            self.tr(|| format!("{}->{} (link down) DROPPED {}", from + 1, to + 1, fmt_msg(&msg)));
            return;
        }
        let copies = if self.cfg.dup_votes && matches!(msg, Msg::Vote(_)) && self.rng.chance(0.15) {
            self.stats.dup_votes += 1;
            2
        } else {
            1
        };
        for i in 0..copies {
            let d = self.link_delay(from, to);
            let at = (self.now + d).max(self.last_arrival[from][to]);
            self.last_arrival[from][to] = at;
            let gen = self.gen[from][to];
            let _ = i;
            self.schedule(at, Ev::Peer { from, to, gen, msg: msg.clone() });
        }
    }

    // ---- faults ------------------------------------------------------------------------------

    fn down_voters(&self) -> usize {
        self.voters.iter().filter(|&&v| self.servers[v as usize - 1].node.is_none()).count()
    }

    fn may_crash(&self, s: usize) -> bool {
        if self.servers[s].node.is_none() {
            return false;
        }
        if self.cfg.safety_only || !self.voters.contains(&(s as u64 + 1)) {
            return true;
        }
        // Keep a quorum up.
        (self.down_voters() + 1) * 2 < self.voters.len()
    }

    fn inject_fault(&mut self) {
        let mut kinds = Vec::new();
        if self.cfg.crashes {
            kinds.push(0);
        }
        if self.cfg.leader_crashes {
            kinds.push(1);
            kinds.push(1);
        }
        if self.cfg.partitions {
            kinds.push(2);
        }
        if self.cfg.link_breaks {
            kinds.push(3);
        }
        if self.cfg.clogs {
            kinds.push(4);
        }
        if self.cfg.client_pauses {
            kinds.push(5);
        }
        if kinds.is_empty() {
            return;
        }
        let n = self.n();
        match *self.rng.pick(&kinds) {
            0 => {
                let cands: Vec<usize> = (0..n).filter(|&s| self.may_crash(s)).collect();
                if cands.is_empty() {
                    return;
                }
                let s = *self.rng.pick(&cands);
                let after = self.rng.range(100, 5000);
                if self.cfg.torn_tails && self.rng.chance(0.7) {
                    // Within its next group-commit round, between the write and the fsync, so
                    // that the crash has unsynced writes to lose or tear.
                    self.servers[s].crash_in_round = Some(after);
                } else {
                    self.crash(s, Some(after));
                }
            }
            1 => {
                let leader = (0..n).find(|&s| {
                    self.servers[s].obs.is_some_and(|o| o.state == PeerState::Leading && o.serving) && self.may_crash(s)
                });
                if let Some(s) = leader {
                    let after = self.rng.range(300, 3000);
                    self.crash(s, Some(after));
                }
            }
            2 => {
                let mut side = vec![false; n];
                let size = if self.cfg.safety_only {
                    self.rng.range(1, n as u64 - 1) as usize
                } else {
                    let minority = (self.voters.len() - 1) / 2;
                    self.rng.range(1, minority.max(1) as u64) as usize
                };
                let mut ids: Vec<usize> = (0..n).collect();
                self.rng.shuffle(&mut ids);
                for &i in ids.iter().take(size) {
                    side[i] = true;
                }
                let id = self.next_token;
                self.next_token += 1;
                self.stats.partitions += 1;
                let members: Vec<usize> = (0..n).filter(|&i| side[i]).map(|i| i + 1).collect();
                self.tr(|| format!("== PARTITION {id}: {members:?} cut off"));
                self.partitions.push((id, side));
                let dur = self.rng.range(200, 6000) * US;
                self.schedule(self.now + dur, Ev::PartitionHeal { id });
                self.refresh_links();
            }
            3 => {
                let a = self.rng.index(n);
                let mut b = self.rng.index(n - 1);
                if b >= a {
                    b += 1;
                }
                if self.broken[a][b].is_some() {
                    return;
                }
                let token = self.next_token;
                self.next_token += 1;
                self.broken[a][b] = Some(token);
                self.broken[b][a] = Some(token);
                self.stats.link_breaks += 1;
                self.tr(|| format!("== LINK BREAK {}-{}", a + 1, b + 1));
                self.refresh_links();
                let dur = self.rng.range(20, 2000) * US;
                self.schedule(self.now + dur, Ev::LinkHeal { a, b, token });
            }
            5 => {
                // A client process stops (a GC pause, SIGSTOP) for longer than its session
                // timeout: its server expires the session and deletes what it owned, and the
                // client, back, finds it expired and starts a new one.
                let c = self.rng.index(self.cfg.clients);
                let timeout = self.cfg.session_timeout_ms as u64;
                let until = self.now + self.rng.range(timeout * 6 / 5, timeout * 2) * US;
                self.stats.client_pauses += 1;
                self.tr(|| format!("== client {c} paused for {}ms", (until - self.now) / US));
                self.clients[c].paused_until = until;
            }
            _ => {
                let a = self.rng.index(n);
                let mut b = self.rng.index(n - 1);
                if b >= a {
                    b += 1;
                }
                self.stats.clogs += 1;
                let until = self.now + self.rng.range(100, 2000) * US;
                self.tr(|| format!("== CLOG {}->{} for {}ms", a + 1, b + 1, (until - self.now) / US));
                self.clog_until[a][b] = until;
            }
        }
    }

    fn end_faults(&mut self) {
        self.phase = Phase::Healing;
        self.tr(|| "== faults end: healing everything".into());
        for srv in &mut self.servers {
            srv.disk.set_faults(Faults { write_error_ppm: 0, sync_error_ppm: 0, ..self.cfg.disk_faults() });
            srv.crash_in_round = None;
        }
        self.partitions.clear();
        let n = self.n();
        for a in 0..n {
            for b in 0..n {
                self.broken[a][b] = None;
                self.clog_until[a][b] = 0;
            }
        }
        for s in 0..n {
            if self.servers[s].node.is_none() {
                self.start_server(s);
            }
        }
        self.refresh_links();
        // A probe client per server: a fresh session writing through that server.
        for s in 0..n {
            let c = self.add_client(Some(s));
            self.wake_client(c, self.now + 10 * US);
        }
        self.schedule(self.now + 100 * US, Ev::Check);
        self.schedule(self.now + self.cfg.liveness_ms * US, Ev::LivenessDeadline);
        self.schedule(self.now + (self.cfg.liveness_ms + 30_000) * US, Ev::HardStop);
    }

    fn probes_done(&self) -> bool {
        self.clients.iter().filter(|c| c.probe_for.is_some()).all(|c| c.probe_done)
    }

    fn everyone_serving(&self) -> bool {
        let leaders = self.servers.iter().filter(|s| s.obs.is_some_and(|o| o.state == PeerState::Leading)).count();
        leaders == 1 && self.servers.iter().all(|s| s.node.is_some() && s.obs.is_some_and(|o| o.serving))
    }

    fn liveness_deadline(&mut self) {
        if self.phase != Phase::Healing {
            return;
        }
        if !(self.probes_done() && self.everyone_serving()) {
            let pending: Vec<usize> = self
                .clients
                .iter()
                .filter(|c| c.probe_for.is_some() && !c.probe_done)
                .map(|c| c.probe_for.unwrap() + 1)
                .collect();
            self.fail(format!(
                "liveness: {} ms after healing, writes through servers {pending:?} have not succeeded or not \
                 every server serves under a single leader",
                self.cfg.liveness_ms
            ));
        }
    }

    fn check_done(&mut self) {
        if self.phase != Phase::Healing {
            return;
        }
        if self.probes_done() && self.everyone_serving() && self.stats.liveness_ms == 0 {
            self.stats.liveness_ms = (self.now - (self.fault_end.min(self.now))) / US;
            self.tr(|| format!("== live again after {} ms", self.stats.liveness_ms));
        }
        let workload_done = self
            .clients
            .iter()
            .filter(|c| c.probe_for.is_none())
            .all(|c| c.ops_left == 0 && c.setup.is_empty() && c.inflight.is_empty());
        if self.stats.liveness_ms > 0 && workload_done {
            self.phase = Phase::Quiesce;
            self.quiesce_until = self.now + 2000 * US;
            self.quiesce_target = self.servers.iter().filter_map(|s| s.obs.map(|o| o.applied)).max().unwrap_or(0);
        }
    }

    fn final_checks(&mut self) {
        // Everyone up, serving, one leader, the same applied state.
        if !self.everyone_serving() {
            self.fail("at the end not every server serves under a single leader".into());
            return;
        }
        let unfinished =
            self.clients.iter().filter(|c| c.probe_for.is_none() && (c.ops_left > 0 || !c.inflight.is_empty())).count();
        self.stats.unfinished_clients = unfinished as u64;
        // Everyone caught up with what was applied anywhere 2 s ago (equal trees at equal zxids
        // are checked on every step through the digest map).
        let applied: Vec<Zxid> = self.servers.iter().map(|s| s.obs.unwrap().applied).collect();
        if applied.iter().any(|&a| a < self.quiesce_target) {
            let a: Vec<String> = applied.iter().map(|&z| fmt_zxid(z)).collect();
            self.fail(format!(
                "2 s after quiescing, some servers have not applied {}: {a:?}",
                fmt_zxid(self.quiesce_target)
            ));
            return;
        }
        // (Tree equality at equal zxids is checked by the digest map on every step.)
        // Every successful write is in the committed history, exactly as acknowledged; every
        // committed SetData of a workload key comes from an op that did not definitely fail.
        let mut by_value: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, op) in self.history.iter().enumerate() {
            if let OpKind::Set { value, .. } = &op.kind {
                by_value.insert(value.clone(), i);
            }
        }
        let mut problems = Vec::new();
        for op in &self.history {
            let Outcome::Ok { zxid, version, .. } = op.outcome else {
                continue;
            };
            let Some(value) = op.written_value() else {
                continue;
            };
            let path = key_path(op.key);
            match self.committed.get(&zxid) {
                Some(t) => {
                    let ok = match &t.op {
                        TxnOp::SetData { path: p, data, version: v } => {
                            *p == path && data.as_deref() == Some(value) && *v == version
                        }
                        TxnOp::Create { path: p, data, .. } => *p == path && data.as_deref() == Some(value),
                        _ => false,
                    };
                    if !ok {
                        problems.push(format!(
                            "op #{} ({:?} {path}) acknowledged at {} but the committed txn there is {}",
                            op.id,
                            op.kind,
                            fmt_zxid(zxid),
                            fmt_txn_op(&t.op)
                        ));
                    }
                }
                None => {
                    // Possible only if every server skipped it through a snapshot: check the state.
                    let leader = self.servers.iter().find_map(|s| s.node.as_ref()).unwrap();
                    let v = leader.machine().tree().get(&path).map(|n| n.stat.version).unwrap_or(-1);
                    if v < version {
                        problems.push(format!(
                            "op #{} acknowledged at {} ({path} version {version}) is lost: final version {v}",
                            op.id,
                            fmt_zxid(zxid)
                        ));
                    }
                }
            }
        }
        for (z, t) in &self.committed {
            if let TxnOp::SetData { path, data, .. } = &t.op {
                if !path.starts_with("/k") {
                    continue;
                }
                let d = data.clone().unwrap_or_default();
                match by_value.get(&d) {
                    Some(&i) => {
                        if let Outcome::Fail { code, .. } = self.history[i].outcome {
                            problems.push(format!(
                                "committed {} writes {path}={} but that op (#{i}) failed with {code}",
                                fmt_zxid(*z),
                                String::from_utf8_lossy(&d)
                            ));
                        }
                    }
                    None => problems.push(format!(
                        "committed {} writes {path}={} which no client asked for",
                        fmt_zxid(*z),
                        String::from_utf8_lossy(&d)
                    )),
                }
            }
        }
        // The final value of each key is the value of a write (or the initial one) with that
        // version, and no acknowledged write has a higher version.
        let tree = self.servers[0].node.as_ref().unwrap().machine().tree();
        for k in 0..self.cfg.keys {
            let path = key_path(k);
            let Some(n) = tree.get(&path) else {
                problems.push(format!("{path} is missing at the end"));
                continue;
            };
            let max_acked = self
                .history
                .iter()
                .filter(|o| o.key == k && matches!(o.kind, OpKind::Set { .. }))
                .filter_map(|o| match o.outcome {
                    Outcome::Ok { version, .. } => Some(version),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            if n.stat.version < max_acked {
                problems
                    .push(format!("{path} ends at version {} below acknowledged version {max_acked}", n.stat.version));
            }
        }
        if !problems.is_empty() {
            problems.truncate(10);
            self.fail(format!("lost or phantom writes:\n  {}", problems.join("\n  ")));
        }
    }

    // ---- client connections --------------------------------------------------------------------

    fn client_delay(&mut self) -> u64 {
        self.rng.range(50, 2000)
    }

    fn to_server(&mut self, conn: u64, what: ClientMsg) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let s = c.server;
        let alive = self.servers[s].node.is_some() && self.servers[s].inc == c.server_inc;
        if c.server_closed || !alive {
            if !c.server_closed && !alive {
                // Connection refused / reset.
                let c = self.conns.get_mut(&conn).unwrap();
                c.server_closed = true;
                c.reset = true;
                let at = self.now + self.rng.range(100, 2000);
                self.schedule(at, Ev::ClosedToClient { conn });
            }
            return;
        }
        match what {
            ClientMsg::Connect(req) => {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (c.client >> 8) as u8, c.client as u8));
                let now = self.now_t();
                let node = self.servers[s].node.as_mut().unwrap();
                let ok = node.open(conn, ip, now);
                self.drain(s);
                self.observe(s);
                if !ok {
                    self.tr(|| format!("   {} refuses connection {conn}", s + 1));
                    self.server_closes(conn);
                    return;
                }
                self.conns.get_mut(&conn).unwrap().open_on_server = true;
                self.tr(|| format!("   client conn {conn} -> {}: connect sid={:#x}", s + 1, req.session_id));
                self.call(s, move |n, now| n.connect(conn, req, now));
            }
            ClientMsg::Req(hdr, req) => {
                if c.open_on_server {
                    self.call(s, move |n, now| n.request(conn, hdr, req, now));
                }
            }
            ClientMsg::Close => {
                let c = self.conns.remove(&conn).unwrap();
                if c.open_on_server {
                    self.call(s, move |n, _| n.disconnected(conn));
                }
            }
        }
    }

    fn send_to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let d = self.client_delay();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let at = (self.now + d).max(c.s2c_last);
        c.s2c_last = at;
        self.schedule(at, Ev::ToClient { conn, frame });
    }

    fn server_closes(&mut self, conn: u64) {
        let d = self.client_delay();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.server_closed = true;
        let at = (self.now + d).max(c.s2c_last);
        c.s2c_last = at;
        self.schedule(at, Ev::ClosedToClient { conn });
    }

    fn client_send(&mut self, c: usize, what: ClientMsg) {
        let d = self.client_delay();
        let Some(cc) = self.clients[c].conn.as_mut() else {
            return;
        };
        cc.last_sent = self.now;
        let id = cc.id;
        let conn = self.conns.get_mut(&id).expect("conn");
        let at = (self.now + d).max(conn.c2s_last);
        conn.c2s_last = at;
        self.schedule(at, Ev::ToServer { conn: id, what });
    }

    // ---- clients -----------------------------------------------------------------------------

    fn client_connect(&mut self, c: usize) {
        let n = self.n();
        let server = match self.clients[c].probe_for {
            Some(s) => s,
            None => self.rng.index(n),
        };
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                client: c,
                server,
                server_inc: self.servers[server].inc,
                open_on_server: false,
                server_closed: false,
                reset: false,
                c2s_last: 0,
                s2c_last: 0,
            },
        );
        let cl = &mut self.clients[c];
        cl.conn = Some(ClientConn {
            id,
            server,
            handshake_done: false,
            opened_at: self.now,
            last_recv: self.now,
            last_sent: self.now,
            pings: 0,
        });
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: cl.last_zxid,
            timeout_ms: self.cfg.session_timeout_ms,
            session_id: cl.session,
            passwd: cl.passwd.clone(),
            read_only: Some(false),
        };
        self.tr(|| format!("   client {c} connects to {} (conn {id}, sid={:#x})", server + 1, req.session_id));
        self.client_send(c, ClientMsg::Connect(req));
    }

    /// The client drops its connection (its own decision or the server's): in-flight ops are
    /// indeterminate; it reconnects after a short back-off.
    fn client_lost_conn(&mut self, c: usize, tell_server: bool) {
        if tell_server {
            self.client_send(c, ClientMsg::Close);
        }
        let cl = &mut self.clients[c];
        cl.conn = None;
        let inflight = std::mem::take(&mut cl.inflight);
        for (_, i) in inflight {
            let op = &mut self.history[i];
            if op.outcome == Outcome::Pending {
                op.outcome = Outcome::Unknown;
            }
        }
        self.stats.reconnects += 1;
        let back = self.rng.range(10, 300) * US;
        self.clients[c].reconnect_at = self.now + back;
        self.wake_client(c, self.now + back);
    }

    /// Client `c` gave up waiting: if its server has been serving (same incarnation, no break)
    /// since before the oldest outstanding request was sent, the server lost it: a liveness bug.
    fn check_stall(&mut self, c: usize) {
        if std::env::var("SIM_NO_STALL_CHECK").is_ok() {
            return;
        }
        let cl = &self.clients[c];
        let Some(cc) = &cl.conn else { return };
        let Some(conn) = self.conns.get(&cc.id) else { return };
        let srv = &self.servers[cc.server];
        if srv.node.is_none() || srv.inc != conn.server_inc || conn.server_closed {
            return;
        }
        let oldest = cl.inflight.values().map(|&i| self.history[i].invoke_us).min().unwrap_or(cc.opened_at);
        let oldest = if cc.handshake_done { oldest } else { cc.opened_at };
        if let Some(since) = srv.serving_since {
            if since <= oldest {
                let ops: Vec<String> = cl
                    .inflight
                    .iter()
                    .map(|(x, &i)| {
                        format!("#{i} xid={x} {} /k{}", fmt_kind(&self.history[i].kind), self.history[i].key)
                    })
                    .collect();
                self.fail(format!(
                    "stall: client {c} (session {:#x}) got no answer for {} ms from server {}, which has served \
                     continuously since t={:.3}ms; outstanding: {ops:?}{}",
                    cl.session,
                    (self.now - cc.last_recv) / US,
                    cc.server + 1,
                    since as f64 / 1000.0,
                    if cc.handshake_done { "" } else { " (handshake)" }
                ));
            }
        }
    }

    /// Makes sure client `c` wakes at `at` or earlier (one pending wake per client).
    fn wake_client(&mut self, c: usize, at: u64) {
        let cl = &mut self.clients[c];
        if cl.wake_at <= at && cl.wake_at >= self.now {
            return;
        }
        cl.wake_token += 1;
        cl.wake_at = at;
        let token = cl.wake_token;
        self.schedule(at, Ev::ClientWake { c, token });
    }

    fn closed_to_client(&mut self, conn: u64) {
        let Some(cn) = self.conns.remove(&conn) else {
            return;
        };
        let c = cn.client;
        if self.clients[c].conn.as_ref().is_some_and(|x| x.id == conn) {
            self.tr(|| format!("   client {c}: connection {conn} to {} closed", cn.server + 1));
            self.client_lost_conn(c, false);
        }
    }

    fn to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let Some(cn) = self.conns.get(&conn) else {
            return;
        };
        if cn.reset {
            return;
        }
        let c = cn.client;
        let Some(cc) = self.clients[c].conn.as_mut() else {
            return;
        };
        if cc.id != conn {
            return;
        }
        cc.last_recv = self.now;
        let body = &frame[4..];
        if !cc.handshake_done {
            let resp = match ConnectResponse::decode(body) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(format!("client {c}: undecodable ConnectResponse: {e}"));
                    return;
                }
            };
            if resp.session_id == 0 {
                self.stats.expiries += 1;
                self.tr(|| format!("   client {c}: session {:#x} expired", self.clients[c].session));
                let cl = &mut self.clients[c];
                cl.session = 0;
                cl.passwd = vec![0; 16];
                self.client_lost_conn(c, true);
                return;
            }
            let old = self.clients[c].session;
            if old != 0 && old != resp.session_id {
                self.fail(format!("client {c} resumed session {old:#x} but got session {:#x}", resp.session_id));
            }
            let cl = &mut self.clients[c];
            cl.session = resp.session_id;
            cl.passwd = resp.passwd;
            cl.conn.as_mut().unwrap().handshake_done = true;
            self.tr(|| format!("   client {c}: session {:#x} established", resp.session_id));
            self.client_issue(c);
            return;
        }
        let mut r = Reader::new(body);
        let hdr = match (r.i32(), r.i64(), r.i32()) {
            (Ok(xid), Ok(zxid), Ok(err)) => ReplyHeader { xid, zxid, err },
            _ => {
                self.fail(format!("client {c}: undecodable reply header"));
                return;
            }
        };
        if hdr.xid == -1 {
            return; // a watch notification
        }
        if hdr.xid == -2 {
            let cc = self.clients[c].conn.as_mut().unwrap();
            cc.pings = cc.pings.saturating_sub(1);
            return;
        }
        let Some((&first, _)) = self.clients[c].inflight.first_key_value() else {
            self.fail(format!("client {c}: reply to xid {} that is not in flight", hdr.xid));
            return;
        };
        if first != hdr.xid {
            self.fail(format!(
                "client {c}: reply to xid {} arrived before the reply to earlier xid {first} (FIFO order broken; its error code {}, zxid {})",
                hdr.xid,
                hdr.err,
                fmt_zxid(hdr.zxid)
            ));
            return;
        }
        let i = self.clients[c].inflight.remove(&hdr.xid).unwrap();
        if hdr.zxid > 0 {
            if hdr.zxid < self.clients[c].last_zxid && hdr.err == 0 {
                // A read reply zxid below one this session has seen is allowed only if the
                // server was caught up; ZooKeeper never answers with an older zxid.
                let seen = self.clients[c].last_zxid;
                self.fail(format!(
                    "client {c}: reply zxid {} is below the zxid {} the session already saw",
                    fmt_zxid(hdr.zxid),
                    fmt_zxid(seen)
                ));
            }
            self.clients[c].last_zxid = self.clients[c].last_zxid.max(hdr.zxid);
        }
        self.complete(c, i, hdr, &body[16..]);
        self.client_issue(c);
    }

    fn complete(&mut self, c: usize, i: usize, hdr: ReplyHeader, body: &[u8]) {
        let now = self.now;
        let kind = self.history[i].kind.clone();
        let key = self.history[i].key;
        let outcome = if hdr.err == 0 {
            let mut r = Reader::new(body);
            let parsed = match &kind {
                OpKind::Set { .. } => Stat::read(&mut r).map(|s| (s.version, None)),
                OpKind::Get => r.opt_buffer().and_then(|d| Stat::read(&mut r).map(|s| (s.version, d))),
                OpKind::Create { .. } => r.string().map(|_| (0, None)),
                OpKind::Sync => r.string().map(|_| (0, None)),
            };
            match parsed {
                Ok((version, value)) => {
                    if matches!(kind, OpKind::Set { .. } | OpKind::Get) {
                        self.clients[c].known_version[key] = version;
                    }
                    Outcome::Ok { zxid: hdr.zxid, version, value }
                }
                Err(e) => {
                    self.fail(format!("client {c}: undecodable reply body for {kind:?}: {e}"));
                    return;
                }
            }
        } else {
            let code = ErrorCode::from_code(hdr.err);
            match code {
                Some(ErrorCode::BadVersion) | Some(ErrorCode::NoNode) => {
                    Outcome::Fail { code: hdr.err, zxid: hdr.zxid }
                }
                Some(ErrorCode::NodeExists) if matches!(kind, OpKind::Create { .. }) => {
                    // A retried create whose first attempt went through: the key exists.
                    Outcome::Fail { code: hdr.err, zxid: hdr.zxid }
                }
                _ => Outcome::Unknown,
            }
        };
        if let OpKind::Create { .. } = kind {
            if matches!(outcome, Outcome::Ok { .. })
                || matches!(outcome, Outcome::Fail { code, .. } if code == ErrorCode::NodeExists.code())
            {
                self.keys_ready += 1;
            } else {
                // Retry the create.
                self.clients[c].setup.insert(0, kind.clone());
                self.clients[c].setup_keys.insert(0, key);
            }
        }
        if self.clients[c].probe_for.is_some() && matches!(kind, OpKind::Set { .. }) {
            if matches!(outcome, Outcome::Ok { .. }) {
                self.clients[c].probe_done = true;
                self.tr(|| format!("   probe through {} succeeded", self.clients[c].probe_for.unwrap() + 1));
            }
        }
        self.tr(|| format!("   client {c}: op #{i} {} /k{key} -> {}", fmt_kind(&kind), fmt_outcome(&outcome)));
        let op = &mut self.history[i];
        op.complete_us = Some(now);
        op.outcome = outcome;
        if hdr.err == 0 && self.history[i].is_write() {
            // An acknowledged write is committed and durable on a quorum.
            let z = hdr.zxid;
            let durable = self.voters.iter().filter(|&&v| self.servers[v as usize - 1].shadow.has_durable(z)).count();
            if durable * 2 <= self.voters.len() {
                self.fail(format!("write op #{i} acknowledged at {} but durable on {durable} voters", fmt_zxid(z)));
            }
            if !self.committed.contains_key(&z) {
                self.fail(format!("write op #{i} acknowledged at {} that no server applied from its log", fmt_zxid(z)));
            }
        }
        self.check_done();
    }

    fn client_wake(&mut self, c: usize) {
        if self.stop {
            return;
        }
        if self.now < self.clients[c].paused_until {
            let at = self.clients[c].paused_until;
            self.wake_client(c, at);
            return;
        }
        let timeout = self.cfg.session_timeout_ms as u64 * US;
        let cl = &self.clients[c];
        let finished = if cl.probe_for.is_some() {
            cl.probe_done
        } else {
            cl.ops_left == 0 && cl.setup.is_empty() && cl.inflight.is_empty()
        };
        if finished {
            if cl.conn.is_some() {
                // Done: close the connection (the session lives on until it expires).
                self.client_send(c, ClientMsg::Close);
                self.clients[c].conn = None;
            }
            self.check_done();
            return;
        }
        match &cl.conn {
            None => {
                if self.now >= cl.reconnect_at {
                    self.client_connect(c);
                }
            }
            Some(cc) => {
                let outstanding = !cl.inflight.is_empty() || cc.pings > 0 || !cc.handshake_done;
                let limit = if cc.handshake_done { timeout * 2 / 3 } else { timeout / self.n() as u64 };
                if outstanding && self.now - cc.last_recv > limit {
                    let id = cc.id;
                    self.tr(|| format!("   client {c}: conn {id} timed out; reconnecting"));
                    self.check_stall(c);
                    self.client_lost_conn(c, true);
                } else if cc.handshake_done && self.now - cc.last_sent > timeout / 3 {
                    self.clients[c].conn.as_mut().unwrap().pings += 1;
                    self.client_send(c, ClientMsg::Req(RequestHeader { xid: -2, op: op::PING }, Request::Ping));
                    self.client_issue(c);
                } else {
                    self.client_issue(c);
                }
            }
        }
        let next = self.now + self.rng.range(5, 40) * US;
        self.wake_client(c, next);
    }

    /// Issues ops while the pipeline has room and the think time has passed.
    fn client_issue(&mut self, c: usize) {
        loop {
            let cl = &self.clients[c];
            let Some(cc) = &cl.conn else {
                return;
            };
            if !cc.handshake_done || cl.inflight.len() >= self.cfg.client_pipeline {
                return;
            }
            let (kind, key) = if !cl.setup.is_empty() {
                let cl = &mut self.clients[c];
                (cl.setup.remove(0), cl.setup_keys.remove(0))
            } else if let Some(_s) = cl.probe_for {
                if cl.probe_done || !cl.inflight.is_empty() {
                    return;
                }
                let n = self.clients[c].counter;
                self.clients[c].counter += 1;
                let value = format!("probe{c}-{n}").into_bytes();
                (OpKind::Set { value, version: -1 }, 0)
            } else {
                if self.keys_ready < self.cfg.keys || cl.ops_left == 0 || self.now < cl.next_op_at {
                    return;
                }
                let key = self.rng.index(self.cfg.keys);
                let roll = self.rng.index(100);
                let cl = &mut self.clients[c];
                let n = cl.counter;
                cl.counter += 1;
                let value = format!("c{c}-{n}").into_bytes();
                let kind = if roll < 35 {
                    OpKind::Set { value, version: -1 }
                } else if roll < 55 {
                    OpKind::Set { value, version: cl.known_version[key] }
                } else if roll < 90 {
                    OpKind::Get
                } else {
                    OpKind::Sync
                };
                cl.ops_left -= 1;
                let mean = (self.cfg.fault_ms * US / self.cfg.ops_per_client.max(1) as u64).max(1);
                let think = if self.rng.chance(0.3) { 0 } else { self.rng.range(0, 2 * mean) };
                self.clients[c].next_op_at = self.now + think;
                (kind, key)
            };
            let path = key_path(key);
            let req = match &kind {
                OpKind::Create { value } => Request::Create(CreateRequest {
                    kind: CreateKind::Create,
                    path,
                    data: Some(value.clone()),
                    acl: open_acl_unsafe(),
                    flags: 0,
                    ttl_ms: 0,
                }),
                OpKind::Set { value, version } => {
                    Request::SetData { path, data: Some(value.clone()), version: *version }
                }
                OpKind::Get => Request::GetData { path, watch: false },
                OpKind::Sync => Request::Sync { path },
            };
            let cl = &mut self.clients[c];
            let xid = cl.next_xid;
            cl.next_xid += 1;
            let i = self.history.len();
            let server = cl.conn.as_ref().unwrap().server;
            self.history.push(Op {
                id: i,
                client: c,
                session: cl.session,
                server,
                key,
                kind,
                invoke_us: self.now,
                complete_us: None,
                outcome: Outcome::Pending,
            });
            cl.inflight.insert(xid, i);
            self.tr(|| {
                format!(
                    "   client {c}: issues op #{i} xid={xid} {} /k{key} via {}",
                    fmt_kind(&self.history[i].kind),
                    server + 1
                )
            });
            let hdr = RequestHeader { xid, op: req.opcode() };
            self.client_send(c, ClientMsg::Req(hdr, req));
        }
    }
}

fn fmt_kind(k: &OpKind) -> String {
    match k {
        OpKind::Create { value } => format!("create({})", String::from_utf8_lossy(value)),
        OpKind::Set { value, version } => format!("set({}, v{version})", String::from_utf8_lossy(value)),
        OpKind::Get => "get".into(),
        OpKind::Sync => "sync".into(),
    }
}

fn fmt_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok { zxid, version, value } => format!(
            "ok z={} v{version}{}",
            fmt_zxid(*zxid),
            value.as_ref().map(|v| format!(" {}", String::from_utf8_lossy(v))).unwrap_or_default()
        ),
        Outcome::Fail { code, zxid } => format!("fail {code} z={}", fmt_zxid(*zxid)),
        other => format!("{other:?}"),
    }
}

fn dump_tree(t: &DataTree) -> String {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (p, n) in v {
        let _ = writeln!(
            s,
            "    {p} = {:?} v{} mzxid={} cv={} pzxid={}",
            n.data.as_deref().map(String::from_utf8_lossy),
            n.stat.version,
            fmt_zxid(n.stat.mzxid),
            n.stat.cversion,
            fmt_zxid(n.stat.pzxid)
        );
    }
    s
}
