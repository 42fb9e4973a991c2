//! The standalone server's state machine: connections, sessions, requests, watches and the
//! tree, with no I/O. Events go in (`open`, `connect`, `request`, `disconnected`, `tick`,
//! `durable`); a `Ready` comes out: transactions to append to the log, frames to send,
//! connections to close.
//!
//! The write path is shaped for durability: a write is prepared into a Txn and handed out in
//! `Ready::appends`; it is applied and answered only when the shell reports it durable with
//! `durable(zxid)`. Reads are answered at once from applied state, except that a read waits
//! behind its own connection's unapplied writes (a session reads its own writes), never
//! behind another session's.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use tracing::{info, warn};

use crate::acl::{self, AuthInfo};
use crate::path;
use crate::prep::{Caller, Pending, Prep, PrepOptions, WriteOp};
use crate::proto::{
    encode_reply, event, op, state, xid, ConnectRequest, ConnectResponse, ErrorCode, MultiOp, MultiResult, ReplyHeader,
    Request, RequestHeader, Response, SetWatches, WatcherEvent,
};
use crate::session::{self, PasswordSource, SessionTracker};
use crate::snap::SessionRecord;
use crate::tree::{DataTree, OpResult, Trigger};
use crate::txn::{owner_kind, OwnerKind, Txn, TxnHeader, TxnOp};
use crate::watch::{Kind, WatchManager};

pub mod forward;

use forward::{Forward, ForwardOp};

pub type ConnId = u64;

/// Settings the machine needs (a subset of the config, in its own units).
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub tick_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub super_digest: Option<String>,
    pub ttl_enabled: bool,
    pub container_check_interval_ms: i64,
    pub myid: u8,
    /// Requests a connection may have queued before it is closed as misbehaving.
    pub max_queued_per_conn: usize,
    /// `warren.maxWatchesPerSession` (0 = unlimited): a request that would take a session's
    /// watches past it closes the connection with a log line instead of being answered.
    pub max_watches_per_session: usize,
    /// Tests and the deterministic simulator only: session passwords from a seeded sequence
    /// instead of the OS random number generator. The server never sets it.
    pub password_seed: Option<u64>,
    /// In an ensemble, the membership text ZooKeeper keeps in `/zookeeper/config` (every
    /// Curator client reads it); each server writes it into its own tree at start-up and
    /// after a SNAP, as ZooKeeper does. None standalone (the node stays empty).
    pub config_node: Option<Vec<u8>>,
    /// SASL DIGEST-MD5 users (name → password) from the JAAS file's `Server` section; None
    /// when SASL is not configured (a sasl request then gets an empty token, as ZooKeeper
    /// answers without SASL).
    pub sasl_users: Option<std::sync::Arc<HashMap<String, String>>>,
    /// `superUser` (ZooKeeper's `zookeeper.superUser`): a SASL id that is also super.
    pub sasl_super_user: Option<String>,
    /// `enforce.auth.schemes` when `enforce.auth.enabled` (empty: not enforced): a request of a
    /// connection without an id of one of these schemes is answered
    /// SessionClosedRequireSaslAuth and the connection closed.
    pub enforce_auth_schemes: Vec<String>,
    /// `readonlymode.enabled` (ensemble members only; a standalone server ignores it, as
    /// ZooKeeper does): a member that has been looking for a leader for
    /// [`read_only_grace_ms`] serves read-only clients from its applied state
    /// ([`Machine::start_read_only`]) until it leaves the election.
    pub read_only_mode: bool,
    /// `localSessionsEnabled` (ensemble members only; a standalone server ignores it, as
    /// ZooKeeper does): a new session is this server's alone, created without a transaction,
    /// kept alive and expired here; its client cannot move it to another server, and it ends
    /// when this server stops serving (an election), as a ZooKeeper learner's local sessions
    /// end with its ZooKeeperServer.
    pub local_sessions: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an ephemeral node is
    /// first made global (a createSession transaction, then the create). Without it (as in
    /// ZooKeeper, off by default) such a create gets EphemeralOnLocalSession.
    pub local_sessions_upgrading: bool,
}

/// How long a member looks for a leader before it serves read-only clients: ZooKeeper's
/// QuorumPeer waits max(2000 ms, tickTime).
pub fn read_only_grace_ms(tick_ms: i64) -> i64 {
    tick_ms.max(2000)
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            super_digest: None,
            ttl_enabled: false,
            container_check_interval_ms: 60_000,
            myid: 0,
            max_queued_per_conn: 100_000,
            password_seed: None,
            config_node: None,
            max_watches_per_session: 1_000_000,
            sasl_users: None,
            sasl_super_user: None,
            enforce_auth_schemes: Vec::new(),
            read_only_mode: false,
            local_sessions: false,
            local_sessions_upgrading: false,
        }
    }
}

/// Clock readings supplied by the shell: `mono_ms` drives expiry, `wall_ms` stamps znodes,
/// `mono_us` (the same clock as `mono_ms`, finer) only measures request latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: i64,
    pub wall_ms: i64,
    pub mono_us: i64,
}

impl Now {
    /// A reading with millisecond resolution only (tests, the simulator).
    pub fn from_ms(mono_ms: i64, wall_ms: i64) -> Now {
        Now { mono_ms, wall_ms, mono_us: mono_ms * 1000 }
    }
}

/// Whether replies to this op (by its short name, see `txn_opname`) count as updates in the latency figures.
fn is_write_op(op: &str) -> bool {
    matches!(op, "CREA" | "DELE" | "SETD" | "SETA" | "CHEC" | "MULT" | "CLOS" | "SESS" | "ERR")
}

/// What the shell must do after an event.
#[derive(Debug, Default)]
pub struct Ready {
    /// Append these to the log, then call `durable` with the last zxid once they are synced.
    pub appends: Vec<Txn>,
    /// Frames to write, in order per connection.
    pub sends: Vec<(ConnId, Vec<u8>)>,
    /// Connections to close once their queued frames are written.
    pub closes: Vec<ConnId>,
    /// Follower only: client requests for the leader.
    pub forwards: Vec<Forward>,
    /// Follower only: sessions that (re)connected here, so the leader records their owner.
    pub owner_claims: Vec<i64>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
            && self.sends.is_empty()
            && self.closes.is_empty()
            && self.forwards.is_empty()
            && self.owner_claims.is_empty()
    }
}

/// Per-connection counters for `cons` and `stat`.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_latency_ms: i64,
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub replies: u64,
    pub established_ms: i64,
}

struct Conn {
    ip: IpAddr,
    session_id: i64,
    auth: AuthInfo,
    queue: VecDeque<Queued>,
    /// Writes (and, on a follower, syncs and the session's creation) issued and finished on
    /// this connection; they finish in issue order, and a read waits for those issued before it.
    writes_issued: u64,
    writes_done: u64,
    /// Follower only: what this connection sent to the leader, oldest first.
    forwarded: VecDeque<Fwd>,
    stats: ConnStats,
    /// This connection's SASL exchange, once it started.
    sasl: Option<Box<crate::sasl::DigestMd5>>,
}

impl Conn {
    fn inflight_writes(&self) -> u64 {
        self.writes_issued - self.writes_done
    }
}

struct Queued {
    hdr: RequestHeader,
    req: Request,
    /// Answer once this many of the connection's writes are done.
    wait_writes: u64,
    arrived_us: i64,
}

/// A request a follower forwarded for one of its connections, waiting for its outcome.
enum Fwd {
    Connect { timeout_ms: i32, read_only: Option<bool> },
    Write { cxid: i32, arrived_us: i64 },
    Sync { cxid: i32, path: String, arrived_us: i64 },
}

/// How this server serves clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A single server: it prepares writes and its log's fsync commits them.
    Standalone,
    /// The ensemble's leader: it prepares writes (its own clients' and those forwarded to
    /// it); the quorum commits them; it owns session expiry.
    Leader,
    /// A follower or observer: writes, session creation and closing and syncs go to the
    /// leader; committed transactions arrive through `apply_committed`.
    Follower,
    /// Not synchronized with a leader: no client is served.
    NotServing,
    /// An ensemble member without a quorum, in read-only mode (`readonlymode.enabled`,
    /// ZooKeeper's ReadOnlyZooKeeperServer): only clients that sent the readOnly flag are
    /// served, from the applied state; their sessions are this server's alone
    /// (`local_sessions`), and every write, `sync` included, gets NotReadOnly.
    ReadOnly,
}

/// Who waits on an appended transaction, and how to answer.
enum Waiter {
    Request { conn: ConnId, xid: i32, arrived_us: i64 },
    Connect { conn: ConnId, timeout_ms: i32, read_only: Option<bool> },
    Nobody,
}

/// Server-wide counters for the four-letter words.
#[derive(Debug, Clone, Default)]
pub struct ServerCounters {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub replies: u64,
}

pub struct Machine {
    cfg: MachineConfig,
    tree: DataTree,
    sessions: SessionTracker,
    watches: WatchManager,
    pending: Pending,
    conns: HashMap<ConnId, Conn>,
    session_conn: HashMap<i64, ConnId>,
    unapplied: VecDeque<(Txn, Waiter)>,
    next_zxid: i64,
    ready: Ready,
    counters: ServerCounters,
    /// Where request latencies are recorded for the metrics endpoint (set by the shell).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    last_container_check_ms: i64,
    /// Set when the log failed: nothing more can be made durable, so no write is accepted.
    log_failure: Option<String>,
    role: Role,
    /// PLANTED BUG stale-follower-reads: a follower cut off from its leader, still serving.
    #[cfg(feature = "planted-bugs")]
    planted_cut_off: bool,
    /// Leader only: the server each session is connected to, for SessionMoved.
    owners: HashMap<i64, u64>,
    /// Follower only: sessions active since the leader last heard of them.
    touched: std::collections::HashSet<i64>,
    passwords: PasswordSource,
    /// Sessions never logged, this server's alone (ZooKeeper's local sessions): opened after
    /// the log failed, in read-only mode, or with `localSessionsEnabled`. Never in a snapshot.
    local_sessions: std::collections::HashSet<i64>,
    /// Local sessions being made global: their createSession is proposed (or forwarded) but
    /// not yet applied here. Like local sessions, they are not in snapshots, and they are
    /// dropped if this server stops serving first (the createSession may never commit; if it
    /// does, applying it brings the session back).
    upgrading: std::collections::HashSet<i64>,
    /// When a failed authentication was last logged, and how many failed since unlogged.
    auth_failures: (i64, u64),
    /// While an online backup captures the tree: the paths changed since it began, and how
    /// many transactions changed them (see [`Machine::start_tap`]).
    tap: Option<(std::collections::BTreeSet<String>, usize)>,
    /// Bumped when the whole state is replaced ([`Machine::reset_state`]): a capture that
    /// spans a reset is worthless.
    generation: u64,
}

/// Failed authentications are logged at most once a second.
const AUTH_FAILURE_LOG_INTERVAL_MS: i64 = 1000;

impl Machine {
    pub fn new(cfg: MachineConfig, tree: DataTree, now: Now) -> Machine {
        let first_session = session::initial_session_id(cfg.myid, now.wall_ms);
        let passwords = cfg.password_seed.map_or_else(PasswordSource::os, PasswordSource::seeded);
        let mut tree = tree;
        install_config_node(&cfg, &mut tree, now);
        let next_zxid = tree.last_zxid + 1;
        Machine {
            sessions: SessionTracker::new(cfg.tick_ms, first_session),
            cfg,
            tree,
            watches: WatchManager::default(),
            pending: Pending::default(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            unapplied: VecDeque::new(),
            next_zxid,
            ready: Ready::default(),
            counters: ServerCounters::default(),
            metrics: None,
            last_container_check_ms: now.mono_ms,
            log_failure: None,
            role: Role::Standalone,
            #[cfg(feature = "planted-bugs")]
            planted_cut_off: false,
            owners: HashMap::new(),
            touched: Default::default(),
            passwords,
            local_sessions: Default::default(),
            upgrading: Default::default(),
            auth_failures: (i64::MIN / 2, 0),
            tap: None,
            generation: 0,
        }
    }

    /// Sessions found on disk at start-up: live again, each with a full timeout from now (as
    /// ZooKeeper does), so clients have time to reconnect.
    pub fn restore_sessions(&mut self, sessions: &[SessionRecord], now: Now) {
        for s in sessions {
            self.sessions.add(s.id, s.timeout_ms, s.passwd, now.mono_ms);
        }
    }

    /// The session table as a snapshot stores it, in id order: a leader sends it to a
    /// learner inside a snapshot, and the bytes should not depend on the hash map's
    /// per-process order. One sort per snapshot, next to serializing every node.
    pub fn session_records(&self) -> Vec<SessionRecord> {
        let mut v: Vec<SessionRecord> = self
            .sessions
            .iter()
            .filter(|s| !self.local_sessions.contains(&s.id) && !self.upgrading.contains(&s.id))
            .map(|s| SessionRecord { id: s.id, timeout_ms: s.timeout_ms, passwd: s.passwd })
            .collect();
        v.sort_unstable_by_key(|r| r.id);
        v
    }

    /// Applies a transaction read back from the log during recovery (no replies, no watches).
    pub fn replay(&mut self, txn: &Txn, now: Now) {
        self.note_changes(txn);
        let mut triggers = Vec::new();
        self.tree.apply(txn, &mut triggers);
        match txn.op {
            TxnOp::CreateSession { timeout_ms, passwd } => {
                self.sessions.add(txn.hdr.session_id, timeout_ms, passwd, now.mono_ms)
            }
            TxnOp::CloseSession => self.sessions.remove(txn.hdr.session_id),
            _ => {}
        }
        self.next_zxid = self.next_zxid.max(txn.hdr.zxid + 1);
    }

    /// The log cannot make anything durable any more (failed write or fsync, full disk). The
    /// writes waiting on it can neither be acknowledged nor applied: their connections are
    /// closed, so their clients see ConnectionLoss and learn the outcome after a restart. From
    /// now on writes fail with NotReadOnly and reads keep serving the durable state.
    pub fn log_failed(&mut self, reason: &str) {
        if self.log_failure.is_some() {
            return;
        }
        tracing::error!("transaction log failed: {reason}; refusing writes until restarted");
        self.log_failure = Some(reason.to_string());
        let waiting: Vec<Waiter> = self.unapplied.drain(..).map(|(_, w)| w).collect();
        self.pending = Pending::default();
        self.next_zxid = self.tree.last_zxid + 1;
        for w in waiting {
            if let Waiter::Request { conn, .. } | Waiter::Connect { conn, .. } = w {
                self.close(conn);
            }
        }
    }

    pub fn log_failure(&self) -> Option<&str> {
        self.log_failure.as_deref()
    }

    /// Whether writes are refused with NotReadOnly while reads are served: the log failed
    /// (standalone), or read-only mode ([`Role::ReadOnly`]). What `isro`, the readOnly byte of
    /// a ConnectResponse and `is_read_only` report.
    pub fn read_only(&self) -> bool {
        self.log_failure.is_some() || self.role == Role::ReadOnly
    }

    pub fn take_ready(&mut self) -> Ready {
        std::mem::take(&mut self.ready)
    }

    /// The tree, for a caller done with the machine (`warren export-zk`).
    pub fn into_tree(self) -> DataTree {
        self.tree
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    /// Sessions this server alone knows (local sessions, see [`MachineConfig::local_sessions`]);
    /// the rest of [`Machine::sessions`] are global.
    pub fn local_session_count(&self) -> usize {
        self.local_sessions.len()
    }

    pub fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// Record every reply's latency into `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        self.metrics = Some(metrics);
    }

    pub fn reset_counters(&mut self) {
        self.counters = ServerCounters::default();
    }

    pub fn reset_conn_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats = ConnStats { established_ms: c.stats.established_ms, ..ConnStats::default() };
        }
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid
    }

    /// From now on, note every path a transaction applied to the tree changes, until
    /// [`Machine::take_tap`]: an online backup captures the tree a chunk at a time, and the
    /// nodes of these paths, taken again at the end, make the capture the state at one zxid.
    pub fn start_tap(&mut self) {
        self.tap = Some(Default::default());
    }

    /// The paths changed since [`Machine::start_tap`] and the number of transactions applied;
    /// stops noting them.
    pub fn take_tap(&mut self) -> (std::collections::BTreeSet<String>, usize) {
        self.tap.take().unwrap_or_default()
    }

    fn note_changes(&mut self, txn: &Txn) {
        if let Some((paths, count)) = &mut self.tap {
            self.tree.paths_changed_by(txn, paths);
            *count += 1;
        }
    }

    /// Changes whenever the whole state is replaced by a leader's snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `auth` holds `perm` on `path` (superDigest included), for callers outside the
    /// client protocol such as the AdminServer's snapshot command.
    pub fn allows(&self, path: &str, perm: i32, auth: &acl::AuthInfo) -> bool {
        self.tree.get(path).is_some_and(|n| acl::check(&n.acl, perm, auth, self.cfg.super_digest.as_deref()))
    }

    /// The zxid of the last transaction prepared (logged or not).
    pub fn last_prepared_zxid(&self) -> i64 {
        self.next_zxid - 1
    }

    pub fn outstanding(&self) -> usize {
        self.unapplied.len() + self.conns.values().map(|c| c.queue.len()).sum::<usize>()
    }

    /// (connection, peer ip, session id, stats) for every connection.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, IpAddr, i64, &ConnStats)> {
        self.conns.iter().map(|(id, c)| (*id, c.ip, c.session_id, &c.stats))
    }

    // ---- events -------------------------------------------------------------------------

    /// A new connection, past its first bytes. False means refuse it (not serving). The
    /// connection limits (`maxClientCnxns`, `maxCnxns`) are the shell's: it counts every
    /// connection from the moment it is accepted (`server/admission.rs`).
    pub fn open(&mut self, conn: ConnId, ip: IpAddr, now: Now) -> bool {
        if self.role == Role::NotServing {
            // ZooKeeper closes connections while it is not running (electing, syncing).
            return false;
        }
        let stats = ConnStats { established_ms: now.wall_ms, min_latency_ms: i64::MAX, ..Default::default() };
        let conn_state = Conn {
            ip,
            session_id: 0,
            auth: AuthInfo::for_connection(ip),
            queue: VecDeque::new(),
            writes_issued: 0,
            writes_done: 0,
            forwarded: VecDeque::new(),
            stats,
            sasl: None,
        };
        self.conns.insert(conn, conn_state);
        true
    }

    /// Ids a connection proved outside the protocol: a verified client certificate's `x509:`
    /// (and `super:`) ids, as ZooKeeper's `X509AuthenticationProvider` adds them at handshake.
    /// Returns whether the connection is known.
    pub fn add_auth_ids(&mut self, conn: ConnId, ids: Vec<crate::acl::Id>) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        for id in ids {
            c.auth.add_id(id);
        }
        true
    }

    /// The connection is gone (closed by the peer or by us). Its session lives on until it
    /// expires; its watches are dropped (clients re-register them with setWatches).
    pub fn disconnected(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if self.session_conn.get(&c.session_id) == Some(&conn) {
            self.session_conn.remove(&c.session_id);
        }
        self.watches.remove_watcher(conn);
    }

    fn close(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.disconnected(conn);
            self.ready.closes.push(conn);
        }
    }

    /// Closes every connection, in id order: the hash map's order differs from one process to
    /// the next, and what the machine emits must depend on its inputs alone (the simulator
    /// replays a seed exactly). Sorting here, where the order escapes, keeps the map's O(1)
    /// lookups on the request path; this happens only when serving stops.
    fn close_all(&mut self) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for c in conns {
            self.close(c);
        }
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        self.counters.packets_sent += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.sent += 1;
        }
        self.ready.sends.push((conn, frame));
    }

    /// The first packet of a connection.
    pub fn connect(&mut self, conn: ConnId, req: ConnectRequest, now: Now) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        self.counters.packets_received += 1;
        let ip = c.ip;
        if self.role == Role::ReadOnly && req.read_only != Some(true) {
            // ZooKeeper closes the connection without an answer; an old client that sends no
            // readOnly byte is refused too.
            info!("Refusing session request for not-read-only client {ip}");
            self.close(conn);
            return;
        }
        if req.last_zxid_seen > self.tree.last_zxid {
            info!(
                "Refusing session request for client as it has seen zxid {:#x} our last zxid is {:#x}",
                req.last_zxid_seen, self.tree.last_zxid
            );
            self.close(conn);
            return;
        }
        let timeout = req.timeout_ms.clamp(self.cfg.min_session_timeout_ms, self.cfg.max_session_timeout_ms);
        if req.session_id == 0 && self.read_only() {
            // Nothing can be logged (the log failed, or there is no quorum), so the session is
            // this server's alone, like a read-only ZooKeeper server's: it reads, its writes
            // get NotReadOnly, it is gone on restart (or when read-only mode ends).
            let id = self.open_local_session(conn, timeout, req.read_only, now);
            let why = if self.log_failure.is_some() { "the transaction log has failed" } else { "no quorum" };
            info!("session {id:#x} opened read-only: {why}");
            return;
        }
        if req.session_id == 0 && self.cfg.local_sessions && matches!(self.role, Role::Leader | Role::Follower) {
            // A local session: no transaction, answered at once; made global only if it
            // creates an ephemeral node (and upgrading is enabled).
            self.open_local_session(conn, timeout, req.read_only, now);
            return;
        }
        if req.session_id == 0 && self.role == Role::Follower {
            let id = self.sessions.next_id();
            let passwd = self.passwords.next();
            self.bind_session(conn, id);
            let c = self.conns.get_mut(&conn).expect("present");
            c.writes_issued += 1;
            c.forwarded.push_back(Fwd::Connect { timeout_ms: timeout, read_only: req.read_only });
            self.ready.forwards.push(Forward {
                session_id: id,
                cxid: 0,
                op: ForwardOp::CreateSession { timeout_ms: timeout, passwd },
            });
            return;
        }
        if req.session_id == 0 {
            let id = self.sessions.next_id();
            let passwd = self.passwords.next();
            self.sessions.add(id, timeout, passwd, now.mono_ms);
            self.owners.insert(id, self.cfg.myid as u64);
            self.bind_session(conn, id);
            let waiter = Waiter::Connect { conn, timeout_ms: timeout, read_only: req.read_only };
            self.append(id, 0, TxnOp::CreateSession { timeout_ms: timeout, passwd }, now, waiter);
            return;
        }
        if self.role == Role::ReadOnly
            && self.sessions.get(req.session_id).is_some()
            && !self.local_sessions.contains(&req.session_id)
        {
            // A session the quorum knows: resuming it here would let its client believe it is
            // connected while the quorum may expire it. ZooKeeper 3.8 closes the connection,
            // and the client keeps trying (another server, or this one once it has a leader).
            info!("Refusing global session reconnection in RO mode {ip} (session {:#x})", req.session_id);
            self.close(conn);
            return;
        }
        if !self.sessions.password_matches(req.session_id, &req.passwd) {
            info!("Invalid session {:#x} for client, probably expired", req.session_id);
            self.refuse_session(conn, req.read_only);
            return;
        }
        if let Some(old) = self.session_conn.get(&req.session_id).copied() {
            if old != conn {
                info!("session {:#x} moved to a new connection; closing the old one", req.session_id);
                self.close(old);
            }
        }
        self.bind_session(conn, req.session_id);
        self.sessions.set_timeout(req.session_id, timeout);
        self.sessions.touch(req.session_id, now.mono_ms);
        let local = self.local_sessions.contains(&req.session_id);
        match self.role {
            _ if local => {}
            Role::Follower => {
                self.touched.insert(req.session_id);
                self.ready.owner_claims.push(req.session_id);
            }
            Role::Standalone | Role::Leader => {
                self.owners.insert(req.session_id, self.cfg.myid as u64);
            }
            Role::ReadOnly | Role::NotServing => {}
        }
        self.send_connect_response(conn, req.session_id, timeout, req.read_only);
    }

    /// A new session this server alone knows (read-only mode's, `localSessionsEnabled`'s):
    /// no transaction, answered at once. Returns its id.
    fn open_local_session(&mut self, conn: ConnId, timeout: i32, read_only: Option<bool>, now: Now) -> i64 {
        let id = self.sessions.next_id();
        let passwd = self.passwords.next();
        self.sessions.add(id, timeout, passwd, now.mono_ms);
        self.local_sessions.insert(id);
        self.bind_session(conn, id);
        self.send_connect_response(conn, id, timeout, read_only);
        id
    }

    /// What ZooKeeper answers an unknown session or a wrong password: timeout 0, session 0,
    /// then the socket closes (clients take the session as expired).
    fn refuse_session(&mut self, conn: ConnId, read_only: Option<bool>) {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; session::PASSWD_LEN],
            read_only: read_only.map(|_| false),
        };
        self.send(conn, resp.encode());
        self.close(conn);
    }

    fn bind_session(&mut self, conn: ConnId, session_id: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = session_id;
        }
        self.session_conn.insert(session_id, conn);
    }

    /// A client that sent the readOnly byte learns whether this server takes writes.
    fn send_connect_response(&mut self, conn: ConnId, session_id: i64, timeout_ms: i32, read_only: Option<bool>) {
        let read_only = read_only.map(|_| self.read_only());
        let Some(passwd) = self.sessions.get(session_id).map(|s| s.passwd.to_vec()) else {
            // Gone between its creation and this answer (expired or closed): as for any
            // unknown session, the client is told it expired.
            self.refuse_session(conn, read_only);
            return;
        };
        let resp = ConnectResponse { protocol_version: 0, timeout_ms, session_id, passwd, read_only };
        self.send(conn, resp.encode());
    }

    /// A request after the handshake.
    pub fn request(&mut self, conn: ConnId, hdr: RequestHeader, req: Request, now: Now) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        self.counters.packets_received += 1;
        let session_id = c.session_id;
        if session_id == 0 {
            warn!("request before a session was established on connection {conn}; closing it");
            self.close(conn);
            return;
        }
        if !self.cfg.enforce_auth_schemes.is_empty()
            && !matches!(req, Request::Auth { .. } | Request::Sasl { .. })
            && !self.conn_authenticated(conn)
        {
            // ZooKeeper's AuthenticationHelper: answer, then close the connection.
            warn!(
                "connection {conn} (session {session_id:#x}) has none of the required authentication schemes {:?}; closing it",
                self.cfg.enforce_auth_schemes
            );
            let frame = encode_reply(
                ReplyHeader { xid: hdr.xid, zxid: 0, err: ErrorCode::SessionClosedRequireSaslAuth.code() },
                &Response::Empty,
            );
            self.send(conn, frame);
            self.close(conn);
            return;
        }
        self.sessions.touch(session_id, now.mono_ms);
        if self.role == Role::Follower && !self.local_sessions.contains(&session_id) {
            self.touched.insert(session_id);
        }
        #[cfg(feature = "planted-bugs")]
        let Some((hdr, req)) = self.planted_answer_cut_off(conn, hdr, req, now) else {
            return;
        };
        if is_write(&req) {
            self.write(conn, session_id, hdr, req, now);
            return;
        }
        if self.role == Role::ReadOnly && matches!(req, Request::Sync { .. }) {
            // ZooKeeper's ReadOnlyRequestProcessor refuses sync like a write: there is no
            // leader to catch up with. (No write is ever in flight here, so this answer
            // cannot overtake an earlier one of the connection.)
            self.reply_error(conn, hdr.xid, ErrorCode::NotReadOnly, now.mono_us, now.mono_us);
            return;
        }
        if let (Role::Follower, Request::Sync { path }) = (self.role, &req) {
            if path::validate(path).is_ok() {
                // The leader answers once this server has every commit it sent before.
                let c = self.conns.get_mut(&conn).expect("present");
                c.writes_issued += 1;
                c.forwarded.push_back(Fwd::Sync { cxid: hdr.xid, path: path.clone(), arrived_us: now.mono_us });
                self.ready.forwards.push(Forward { session_id, cxid: hdr.xid, op: ForwardOp::Sync });
                return;
            }
        }
        let c = self.conns.get_mut(&conn).expect("present");
        if c.inflight_writes() > 0 || !c.queue.is_empty() {
            if c.queue.len() >= self.cfg.max_queued_per_conn {
                warn!("connection {conn} exceeded {} queued requests; closing it", self.cfg.max_queued_per_conn);
                self.close(conn);
                return;
            }
            let wait_writes = c.writes_issued;
            c.queue.push_back(Queued { hdr, req, wait_writes, arrived_us: now.mono_us });
            return;
        }
        self.read(conn, hdr, req, now.mono_us, now.mono_us);
    }

    /// Timers: session expiry and container/TTL clean-up.
    pub fn tick(&mut self, now: Now) {
        let local_only = self.role == Role::ReadOnly || self.log_failure.is_some();
        if (self.role == Role::Follower && !self.local_sessions.is_empty()) || local_only {
            // Only local sessions expire here. A follower leaves the global ones to the
            // leader (those due here are left alone: the next touch, or start_leading, gives
            // them a bucket again); with no log (or no quorum), expiring a logged session
            // would be a write, so those stay until restart or until a leader expires them.
            let kind = if local_only { "read-only" } else { "local" };
            for id in self.sessions.expired(now.mono_ms) {
                if self.local_sessions.remove(&id) {
                    info!("Expiring {kind} session {id:#x}");
                    self.session_closed(id, None);
                }
            }
        }
        if local_only || !matches!(self.role, Role::Standalone | Role::Leader) {
            return;
        }
        for id in self.sessions.expired(now.mono_ms) {
            if self.local_sessions.remove(&id) {
                info!("Expiring local session {id:#x}");
                self.session_closed(id, None);
                continue;
            }
            info!(
                "Expiring session {id:#x}, timeout of {}ms exceeded",
                self.sessions.get(id).map_or(0, |s| s.timeout_ms)
            );
            self.close_session(id, 0, now, Waiter::Nobody);
        }
        if now.mono_ms - self.last_container_check_ms >= self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now.mono_ms;
            self.sweep_containers(now);
        }
    }

    /// The log has made everything up to `zxid` durable: apply and answer in order.
    pub fn durable(&mut self, zxid: i64, now: Now) {
        while self.unapplied.front().is_some_and(|(t, _)| t.hdr.zxid <= zxid) {
            let (txn, waiter) = self.unapplied.pop_front().expect("checked");
            self.apply(&txn, waiter, now);
        }
    }

    // ---- ensemble roles -------------------------------------------------------------------

    pub fn role(&self) -> Role {
        self.role
    }

    /// Stops serving clients (an election starts, or synchronization): every connection is
    /// closed, so clients reconnect, to this server once it serves again or to another; their
    /// sessions live on. Writes in flight are forgotten here: their outcome is decided by the
    /// next leader, and the quorum layer keeps their transactions in its log. So are closing
    /// marks: a closeSession this server prepared (an expiry) may never commit (the next
    /// leader's sync truncates it), and a session left marked would answer SessionExpired to
    /// every write while it lives on and never expire (found by tests/chaos, seed 1).
    pub fn stop_serving(&mut self) {
        #[cfg(feature = "planted-bugs")]
        if self.planted_keep_serving() {
            return;
        }
        self.close_all();
        // Local sessions (read-only mode's, `localSessionsEnabled`'s) end with the role that
        // made them, as a ZooKeeper server's local session tracker ends with its
        // ZooKeeperServer: the quorum never heard of them, and a client that comes back with
        // one is told it expired.
        let mut local: Vec<i64> = self.local_sessions.drain().chain(self.upgrading.drain()).collect();
        local.sort_unstable();
        for id in &local {
            self.sessions.remove(*id);
        }
        if self.role == Role::ReadOnly {
            info!("read-only mode ends: every connection closed");
        } else if !local.is_empty() {
            info!("{} local sessions end: this server stops serving", local.len());
        }
        self.unapplied.clear();
        self.pending = Pending::default();
        self.sessions.clear_closing();
        self.next_zxid = self.tree.last_zxid + 1;
        self.touched.clear();
        self.owners.clear();
        self.role = Role::NotServing;
    }

    /// Starts serving as the leader; its first transaction gets `first_zxid`. Every session
    /// gets a full timeout from now, as ZooKeeper's new leader does: clients of a dead server
    /// need time to find another one.
    pub fn start_leading(&mut self, first_zxid: i64, now: Now) {
        #[cfg(feature = "planted-bugs")]
        if std::mem::take(&mut self.planted_cut_off) {
            // A cut-off follower elected: stop serving for real before leading.
            self.role = Role::NotServing;
            self.stop_serving();
        }
        self.role = Role::Leader;
        self.next_zxid = first_zxid;
        let ids: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
        for id in ids {
            self.sessions.touch(id, now.mono_ms);
        }
        self.last_container_check_ms = now.mono_ms;
    }

    /// Starts read-only mode (`readonlymode.enabled`): an ensemble member that has looked for a
    /// leader for the grace period serves read-only clients from its applied state until
    /// [`Machine::stop_serving`] (it leaves the election). Only from [`Role::NotServing`]: no
    /// connection, write or session of a previous role is left.
    pub fn start_read_only(&mut self) {
        if self.role != Role::NotServing {
            return;
        }
        info!("Read-only server started: serving read-only clients at zxid {:#x}", self.tree.last_zxid);
        self.role = Role::ReadOnly;
    }

    /// Starts serving as a follower or observer.
    pub fn start_following(&mut self) {
        self.role = Role::Follower;
        #[cfg(feature = "planted-bugs")]
        {
            self.planted_cut_off = false;
        }
    }

    /// PLANTED BUG stale-follower-reads (engine/src/planted.rs, tests/chaos/test_planted.py):
    /// a follower that lost its leader keeps its clients and serves them from its last state
    /// until it has synced with a leader again (`start_following`), answering writes
    /// NotReadOnly, as a read-only server would, and `sync` itself: it has no leader to ask.
    /// Correct is to stop serving (close every connection) at once, as `stop_serving` does.
    #[cfg(feature = "planted-bugs")]
    fn planted_keep_serving(&mut self) -> bool {
        if self.role != Role::Follower || !crate::planted::active(crate::planted::Bug::StaleFollowerReads) {
            return false;
        }
        if !self.planted_cut_off {
            tracing::error!("PLANTED BUG stale-follower-reads: lost the leader, serving the last state");
            self.planted_cut_off = true;
        }
        true
    }

    /// PLANTED BUG stale-follower-reads: a request while cut off from the leader. What was
    /// forwarded to the lost leader is answered first, in order (a write ConnectionLoss, a
    /// sync from here); then a write gets NotReadOnly and a sync is answered from here too.
    /// Anything else goes on as usual (returned).
    #[cfg(feature = "planted-bugs")]
    fn planted_answer_cut_off(
        &mut self,
        conn: ConnId,
        hdr: RequestHeader,
        req: Request,
        now: Now,
    ) -> Option<(RequestHeader, Request)> {
        if !self.planted_cut_off {
            return Some((hdr, req));
        }
        loop {
            let c = self.conns.get_mut(&conn)?;
            match c.forwarded.front() {
                None => break,
                Some(Fwd::Sync { cxid, .. }) => {
                    let (cxid, session_id, left) = (*cxid, c.session_id, c.forwarded.len());
                    self.sync_done(session_id, cxid, now);
                    if self.conns.get(&conn).is_some_and(|c| c.forwarded.len() == left) {
                        break; // not this connection's session (cannot happen; no endless loop)
                    }
                }
                Some(Fwd::Write { cxid, arrived_us }) => {
                    let (cxid, arrived_us) = (*cxid, *arrived_us);
                    c.forwarded.pop_front();
                    c.writes_done += 1;
                    self.reply_error(conn, cxid, ErrorCode::ConnectionLoss, arrived_us, now.mono_us);
                    self.drain(conn, 0, now);
                }
                Some(Fwd::Connect { .. }) => {
                    self.close(conn);
                    return None;
                }
            }
        }
        if is_write(&req) {
            self.reply_error(conn, hdr.xid, ErrorCode::NotReadOnly, now.mono_us, now.mono_us);
        } else if matches!(req, Request::Sync { .. }) {
            self.read(conn, hdr, req, now.mono_us, now.mono_us);
        } else {
            return Some((hdr, req));
        }
        None
    }

    /// Replaces the whole state with a snapshot the leader sent (not while serving).
    pub fn reset_state(&mut self, tree: DataTree, sessions: &[SessionRecord], now: Now) {
        debug_assert!(self.conns.is_empty());
        self.generation += 1;
        self.tree = tree;
        install_config_node(&self.cfg, &mut self.tree, now);
        self.sessions = SessionTracker::new(self.cfg.tick_ms, self.sessions.peek_next_id());
        self.restore_sessions(sessions, now);
        self.watches = WatchManager::default();
        self.pending = Pending::default();
        self.unapplied.clear();
        self.next_zxid = self.tree.last_zxid + 1;
    }

    /// Replaces the whole state with a backup's (`/commands/restore`, standalone only): every
    /// connection is closed, so its client reconnects to the restored state (a session the
    /// backup holds resumes, with a full timeout from now; any other is expired); writes in
    /// flight are forgotten (their clients see ConnectionLoss); watches are dropped (clients
    /// set theirs again when they reconnect); the next transaction follows `zxid`.
    pub fn restore(&mut self, mut tree: DataTree, sessions: &[SessionRecord], zxid: i64, now: Now) {
        assert_eq!(self.role, Role::Standalone, "only a standalone server restores online");
        assert!(zxid > self.last_prepared_zxid(), "a restored state must stand above every zxid prepared");
        self.close_all();
        tree.last_zxid = zxid;
        self.reset_state(tree, sessions, now);
    }

    /// A committed transaction this machine did not prepare (a follower's every transaction,
    /// or a new leader's history): apply it and answer the local client waiting for it.
    pub fn apply_committed(&mut self, txn: &Txn, now: Now) {
        let mut waiter = Waiter::Nobody;
        if let Some(&conn) = self.session_conn.get(&txn.hdr.session_id) {
            let c = self.conns.get_mut(&conn).expect("bound");
            let matches = match (c.forwarded.front(), &txn.op) {
                (Some(Fwd::Connect { .. }), TxnOp::CreateSession { .. }) => true,
                (Some(Fwd::Write { cxid, .. }), op) => {
                    *cxid == txn.hdr.cxid && !matches!(op, TxnOp::CreateSession { .. })
                }
                _ => false,
            };
            if matches {
                waiter = match c.forwarded.pop_front().expect("checked") {
                    Fwd::Connect { timeout_ms, read_only } => Waiter::Connect { conn, timeout_ms, read_only },
                    Fwd::Write { cxid, arrived_us } => Waiter::Request { conn, xid: cxid, arrived_us },
                    Fwd::Sync { .. } => unreachable!("matched above"),
                };
            }
        }
        self.next_zxid = self.next_zxid.max(txn.hdr.zxid + 1);
        self.apply(txn, waiter, now);
    }

    /// Follower: the leader has sent every commit that preceded this session's `sync`.
    pub fn sync_done(&mut self, session_id: i64, cxid: i32, now: Now) {
        let Some(&conn) = self.session_conn.get(&session_id) else {
            return;
        };
        let c = self.conns.get_mut(&conn).expect("bound");
        if !matches!(c.forwarded.front(), Some(Fwd::Sync { cxid: x, .. }) if *x == cxid) {
            warn!("unexpected sync reply for session {session_id:#x} cxid {cxid}");
            return;
        }
        let Some(Fwd::Sync { path, arrived_us, .. }) = c.forwarded.pop_front() else {
            unreachable!("checked");
        };
        c.writes_done += 1;
        let zxid = self.tree.last_zxid;
        let frame = encode_reply(ReplyHeader { xid: cxid, zxid, err: 0 }, &Response::Sync { path });
        self.record_reply(conn, "sync", cxid, zxid, arrived_us, now.mono_us);
        self.send(conn, frame);
        self.drain(conn, zxid, now);
    }

    /// Follower: the sessions active here since the last call (reported to the leader).
    pub fn take_touched(&mut self) -> Vec<i64> {
        let mut v: Vec<i64> = self.touched.drain().collect();
        v.sort_unstable();
        v
    }

    /// Leader: sessions a follower reports active.
    pub fn touch_sessions(&mut self, ids: &[i64], now: Now) {
        for &id in ids {
            self.sessions.touch(id, now.mono_ms);
        }
    }

    /// Leader: a session connected to server `owner`.
    pub fn set_owner(&mut self, session_id: i64, owner: u64, now: Now) {
        self.owners.insert(session_id, owner);
        self.sessions.touch(session_id, now.mono_ms);
    }

    /// Leader: a request a follower (`from`) forwarded. It becomes a transaction like a local
    /// one (a failure is an error transaction, which the follower answers from).
    pub fn forwarded(&mut self, from: u64, f: Forward, now: Now) {
        let sid = f.session_id;
        let nobody = || Waiter::Nobody;
        match f.op {
            ForwardOp::CreateSession { timeout_ms, passwd } => {
                self.sessions.add(sid, timeout_ms, passwd, now.mono_ms);
                self.owners.insert(sid, from);
                self.append(sid, 0, TxnOp::CreateSession { timeout_ms, passwd }, now, nobody());
            }
            ForwardOp::CloseSession => {
                if self.sessions.is_live(sid) {
                    self.close_session(sid, f.cxid, now, nobody());
                } else {
                    self.append(sid, f.cxid, TxnOp::Error(ErrorCode::SessionExpired), now, nobody());
                }
            }
            ForwardOp::Write { frame, auth } => {
                let op = match Request::decode(&frame) {
                    Err(_) => Err(ErrorCode::BadArguments),
                    Ok(_) if !self.sessions.is_live(sid) && !self.foreign_local_session(sid) => {
                        Err(ErrorCode::SessionExpired)
                    }
                    Ok(_) if self.owners.get(&sid).is_some_and(|&o| o != from) => Err(ErrorCode::SessionMoved),
                    Ok((_, req)) if is_write(&req) => Ok(req),
                    Ok(_) => Err(ErrorCode::BadArguments),
                };
                self.sessions.touch(sid, now.mono_ms);
                match op {
                    Ok(Request::CloseSession) => self.close_session(sid, f.cxid, now, nobody()),
                    Ok(req) => {
                        let auth = AuthInfo::from_ids(auth);
                        let txn_op = self.prep_write(sid, &auth, &req);
                        self.append(sid, f.cxid, txn_op, now, nobody());
                    }
                    Err(e) => self.append(sid, f.cxid, TxnOp::Error(e), now, nobody()),
                }
            }
            ForwardOp::Sync => {
                // Answered by the quorum layer, which owns the link to the follower.
            }
        }
    }

    /// Follower: hands a write to the leader and remembers who waits for it.
    fn forward_write(&mut self, conn: ConnId, session_id: i64, hdr: RequestHeader, req: Request, now: Now) {
        let c = self.conns.get_mut(&conn).expect("present");
        c.writes_issued += 1;
        c.forwarded.push_back(Fwd::Write { cxid: hdr.xid, arrived_us: now.mono_us });
        let op = match req {
            Request::CloseSession => ForwardOp::CloseSession,
            other => {
                let framed = other.encode(hdr.xid);
                ForwardOp::Write { frame: framed[4..].to_vec(), auth: c.auth.ids().to_vec() }
            }
        };
        self.ready.forwards.push(Forward { session_id, cxid: hdr.xid, op });
    }

    // ---- writes -------------------------------------------------------------------------

    fn write(&mut self, conn: ConnId, session_id: i64, hdr: RequestHeader, req: Request, now: Now) {
        let waiter = Waiter::Request { conn, xid: hdr.xid, arrived_us: now.mono_us };
        if !self.sessions.is_live(session_id) {
            // ZooKeeper answers SessionExpired for work on a closing session.
            self.reply_error(conn, hdr.xid, ErrorCode::SessionExpired, now.mono_us, now.mono_us);
            return;
        }
        if self.read_only() {
            // Nothing can be made durable (the log failed, or there is no quorum): answer at
            // once (a write that waited would hold every later request of its connection,
            // pings included).
            if matches!(req, Request::CloseSession) && self.local_sessions.contains(&session_id) {
                self.close_local_session(conn, session_id, hdr.xid);
            } else {
                self.reply_error(conn, hdr.xid, ErrorCode::NotReadOnly, now.mono_us, now.mono_us);
            }
            return;
        }
        if self.local_sessions.contains(&session_id) {
            if matches!(req, Request::CloseSession) {
                // Never forwarded: the quorum never heard of the session (ZooKeeper's
                // learner closes a local session itself too).
                self.close_local_session(conn, session_id, hdr.xid);
                return;
            }
            if creates_ephemeral(&req) {
                if self.cfg.local_sessions_upgrading {
                    self.upgrade_session(session_id, now);
                } else if matches!(req, Request::Create(_)) {
                    self.reply_error(conn, hdr.xid, ErrorCode::EphemeralOnLocalSession, now.mono_us, now.mono_us);
                    return;
                }
                // A multi goes on: its ephemeral create fails inside it, op by op, as in
                // ZooKeeper (EphemeralOnLocalSession prepared here, SessionExpired on a
                // leader that does not know the session).
            }
        }
        if self.role == Role::Follower {
            self.forward_write(conn, session_id, hdr, req, now);
            return;
        }
        if let Request::CloseSession = req {
            self.close_session(session_id, hdr.xid, now, waiter);
            return;
        }
        let auth = std::mem::take(&mut self.conns.get_mut(&conn).expect("present").auth);
        let txn_op = self.prep_write(session_id, &auth, &req);
        self.conns.get_mut(&conn).expect("present").auth = auth;
        self.append(session_id, hdr.xid, txn_op, now, waiter);
    }

    /// Answers a local session's closeSession here, without a transaction, and closes it.
    fn close_local_session(&mut self, conn: ConnId, session_id: i64, xid: i32) {
        self.local_sessions.remove(&session_id);
        let frame = encode_reply(ReplyHeader { xid, zxid: self.tree.last_zxid, err: 0 }, &Response::Empty);
        self.send(conn, frame);
        self.session_closed(session_id, Some(conn));
        self.close(conn);
    }

    /// Makes a local session global before its first ephemeral create: a createSession
    /// transaction with the session's id, timeout and password, ordered before the create
    /// (a follower forwards both in order on one link). From here the session is the
    /// quorum's: the leader keeps it alive and expires it, and its client may move.
    fn upgrade_session(&mut self, session_id: i64, now: Now) {
        let Some((timeout_ms, passwd)) = self.sessions.get(session_id).map(|s| (s.timeout_ms, s.passwd)) else {
            return;
        };
        self.local_sessions.remove(&session_id);
        self.upgrading.insert(session_id);
        info!("Upgrading session {session_id:#x}");
        if self.role == Role::Follower {
            self.touched.insert(session_id);
            let op = ForwardOp::CreateSession { timeout_ms, passwd };
            self.ready.forwards.push(Forward { session_id, cxid: 0, op });
        } else {
            self.owners.insert(session_id, self.cfg.myid as u64);
            self.append(session_id, 0, TxnOp::CreateSession { timeout_ms, passwd }, now, Waiter::Nobody);
        }
    }

    /// A session the leader does not know that may be another member's local session
    /// (`localSessionsEnabled`, and its id was not made here): its writes are accepted, as
    /// ZooKeeper's LeaderSessionTracker accepts them, except an ephemeral create, which needs
    /// a global session (SessionExpired, as ZooKeeper's checkGlobalSession answers; a member
    /// that upgrades sessions sends the createSession first).
    fn foreign_local_session(&self, session_id: i64) -> bool {
        self.cfg.local_sessions
            && self.sessions.get(session_id).is_none()
            && session::server_of(session_id) != self.cfg.myid
    }

    /// Prepares a write at the next zxid: its transaction, or the error transaction.
    fn prep_write(&mut self, session_id: i64, auth: &AuthInfo, req: &Request) -> TxnOp {
        let zxid = self.next_zxid;
        let opts = PrepOptions { ttl_enabled: self.cfg.ttl_enabled };
        let ephemeral_refusal = if self.local_sessions.contains(&session_id) {
            Some(ErrorCode::EphemeralOnLocalSession)
        } else if self.foreign_local_session(session_id) {
            Some(ErrorCode::SessionExpired)
        } else {
            None
        };
        let who = Caller { session_id, auth, super_digest: self.cfg.super_digest.as_deref(), ephemeral_refusal };
        let mut prep = Prep::new(&self.tree, &mut self.pending, zxid, opts);
        let txn_op = match req {
            Request::Multi(ops) => match ops.iter().map(WriteOp::from_multi).collect::<Option<Vec<_>>>() {
                Some(w) => prep.multi(&w, &who),
                None => TxnOp::Error(ErrorCode::BadArguments),
            },
            // ZooKeeper's default (reconfigEnabled=false) answers reconfig this way.
            Request::Unimplemented(op::RECONFIG) => TxnOp::Error(ErrorCode::ReconfigDisabled),
            other => {
                let w = single_write(other).expect("is_write checked");
                prep.op(&w, &who).unwrap_or_else(TxnOp::Error)
            }
        };
        if !matches!(txn_op, TxnOp::Error(_)) {
            prep.commit();
        }
        txn_op
    }

    fn close_session(&mut self, session_id: i64, cxid: i32, now: Now, waiter: Waiter) {
        let zxid = self.next_zxid;
        let opts = PrepOptions { ttl_enabled: self.cfg.ttl_enabled };
        let auth = AuthInfo::empty();
        let who = Caller { session_id, auth: &auth, super_digest: None, ephemeral_refusal: None };
        let mut prep = Prep::new(&self.tree, &mut self.pending, zxid, opts);
        let op = prep.op(&WriteOp::CloseSession, &who).expect("closeSession cannot fail");
        prep.commit();
        self.sessions.set_closing(session_id);
        self.append(session_id, cxid, op, now, waiter);
    }

    fn append(&mut self, session_id: i64, cxid: i32, op: TxnOp, now: Now, waiter: Waiter) {
        let zxid = self.next_zxid;
        self.next_zxid += 1;
        let conn = match &waiter {
            Waiter::Request { conn, .. } | Waiter::Connect { conn, .. } => Some(*conn),
            Waiter::Nobody => None,
        };
        if let Some(c) = conn.and_then(|id| self.conns.get_mut(&id)) {
            c.writes_issued += 1;
        }
        let txn = Txn { hdr: TxnHeader { session_id, cxid, zxid, time_ms: now.wall_ms }, op };
        self.ready.appends.push(txn.clone());
        self.unapplied.push_back((txn, waiter));
    }

    fn apply(&mut self, txn: &Txn, waiter: Waiter, now: Now) {
        self.note_changes(txn);
        let mut triggers = Vec::new();
        let result = self.tree.apply(txn, &mut triggers);
        self.pending.applied(txn.hdr.zxid);
        self.fire(&triggers);
        match &txn.op {
            TxnOp::CloseSession => {
                let asked_by = match waiter {
                    Waiter::Request { conn, .. } => Some(conn),
                    _ => None,
                };
                self.session_closed(txn.hdr.session_id, asked_by);
            }
            TxnOp::CreateSession { timeout_ms, passwd } => {
                self.upgrading.remove(&txn.hdr.session_id);
                // Created elsewhere (a follower's client, or before this server led).
                if self.sessions.get(txn.hdr.session_id).is_none() {
                    self.sessions.add(txn.hdr.session_id, *timeout_ms, *passwd, now.mono_ms);
                }
            }
            _ => {}
        }
        let zxid = txn.hdr.zxid;
        match waiter {
            Waiter::Nobody => {}
            Waiter::Connect { conn, timeout_ms, read_only } => {
                self.write_done(conn, zxid);
                if self.conns.contains_key(&conn) {
                    self.send_connect_response(conn, txn.hdr.session_id, timeout_ms, read_only);
                }
                self.drain(conn, zxid, now);
            }
            Waiter::Request { conn, xid: request_xid, arrived_us } => {
                self.write_done(conn, zxid);
                let (err, body) = write_reply(result);
                let frame = encode_reply(ReplyHeader { xid: request_xid, zxid, err: err.code() }, &body);
                self.record_reply(conn, txn_opname(&txn.op), request_xid, zxid, arrived_us, now.mono_us);
                if self.conns.contains_key(&conn) {
                    self.send(conn, frame);
                }
                if matches!(txn.op, TxnOp::CloseSession) {
                    self.close(conn);
                } else {
                    self.drain(conn, zxid, now);
                }
            }
        }
    }

    fn write_done(&mut self, conn: ConnId, _zxid: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.writes_done < c.writes_issued {
                c.writes_done += 1;
            }
        }
    }

    /// Answers the reads that were waiting for this connection's finished writes.
    fn drain(&mut self, conn: ConnId, _zxid: i64, now: Now) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let done = c.writes_done;
            if !c.queue.front().is_some_and(|q| q.wait_writes <= done) {
                return;
            }
            let q = c.queue.pop_front().expect("checked");
            self.read(conn, q.hdr, q.req, q.arrived_us, now.mono_us);
        }
    }

    /// A session ended: by its client's closeSession on connection `asked_by`, or by expiry
    /// (None). An expired session's connection is closed now, as ZooKeeper does, even with
    /// writes of it still in flight: their replies could no longer reach it in order (the
    /// simulator found a follower that kept such a connection open, never answered the writes,
    /// and answered the next request SessionExpired). A client-closed session's connection is
    /// closed after the reply to its close (see `apply`).
    fn session_closed(&mut self, session_id: i64, asked_by: Option<ConnId>) {
        self.sessions.remove(session_id);
        if let Some(conn) = self.session_conn.remove(&session_id) {
            if asked_by != Some(conn) {
                self.close(conn);
            }
        }
    }

    /// Delivers watch events. A watcher that may not READ the node does not hear of the
    /// change, though its one-shot watch is used up (ZooKeeper 3.8, CVE-2024-23944 fix).
    fn fire(&mut self, triggers: &[Trigger]) {
        for t in triggers {
            for w in self.watches.trigger(&t.path, t.event_type) {
                let Some(c) = self.conns.get(&w) else {
                    continue;
                };
                if !acl::check(&t.acl, acl::perms::READ, &c.auth, self.cfg.super_digest.as_deref()) {
                    continue;
                }
                let ev = WatcherEvent { event_type: t.event_type, state: state::SYNC_CONNECTED, path: t.path.clone() };
                self.send(w, ev.encode());
            }
        }
    }

    fn sweep_containers(&mut self, now: Now) {
        let mut doomed = Vec::new();
        for p in self.tree.containers() {
            let n = self.tree.get(p).expect("indexed");
            if n.stat.cversion > 0 && n.children.is_empty() && !self.pending.touches(p) {
                doomed.push(p.clone());
            }
        }
        for p in self.tree.ttls() {
            let n = self.tree.get(p).expect("indexed");
            if let OwnerKind::Ttl(ttl) = owner_kind(n.stat.ephemeral_owner) {
                if n.children.is_empty() && now.wall_ms - n.stat.mtime > ttl && !self.pending.touches(p) {
                    doomed.push(p.clone());
                }
            }
        }
        doomed.sort();
        for p in doomed {
            let zxid = self.next_zxid;
            let opts = PrepOptions { ttl_enabled: self.cfg.ttl_enabled };
            let auth = AuthInfo::empty();
            let who = Caller { session_id: 0, auth: &auth, super_digest: None, ephemeral_refusal: None };
            let mut prep = Prep::new(&self.tree, &mut self.pending, zxid, opts);
            if let Ok(op) = prep.op(&WriteOp::DeleteContainer { path: p }, &who) {
                prep.commit();
                self.append(0, 0, op, now, Waiter::Nobody);
            }
        }
    }

    // ---- reads and session-local requests -------------------------------------------------

    /// The reply echoes the request's xid (-4 from the Java client; others use ordinary xids).
    /// A failure closes the connection and is logged with the client's address, at most once
    /// per `AUTH_FAILURE_LOG_INTERVAL_MS` (a client guessing passwords cannot flood the log).
    fn auth(&mut self, conn: ConnId, request_xid: i32, scheme: &str, auth: &[u8], now_ms: i64) {
        let c = self.conns.get_mut(&conn).expect("present");
        let (ip, session_id) = (c.ip, c.session_id);
        let err = match c.auth.add_auth(scheme, auth) {
            Ok(()) => ErrorCode::Ok,
            Err(_) => ErrorCode::AuthFailed,
        };
        let frame = encode_reply(ReplyHeader { xid: request_xid, zxid: 0, err: err.code() }, &Response::Empty);
        self.send(conn, frame);
        if err != ErrorCode::Ok {
            self.note_auth_failure(&format!("for scheme {scheme:?}"), ip, session_id, now_ms);
            self.close(conn);
        }
    }

    /// Logs a failed authentication with the client's address, at most once per
    /// `AUTH_FAILURE_LOG_INTERVAL_MS` (a client guessing passwords cannot flood the log).
    fn note_auth_failure(&mut self, what: &str, ip: IpAddr, session_id: i64, now_ms: i64) {
        let (last, unlogged) = &mut self.auth_failures;
        if now_ms - *last >= AUTH_FAILURE_LOG_INTERVAL_MS {
            let more =
                if *unlogged > 0 { format!(" ({unlogged} more failures since the last line)") } else { String::new() };
            warn!("authentication failed {what} from {ip} (session {session_id:#x}); closing the connection{more}");
            (*last, *unlogged) = (now_ms, 0);
        } else {
            *unlogged += 1;
        }
    }

    /// One step of a SASL exchange, answered outside ZooKeeper's pipeline with zxid 0. Without
    /// SASL configured the answer is an empty token, as ZooKeeper's. A failure is answered
    /// AuthFailed (SessionClosedRequireSaslAuth when sasl is enforced) and closes the
    /// connection, logged like a failed addauth.
    fn sasl(&mut self, conn: ConnId, request_xid: i32, token: &[u8], now_ms: i64) {
        let Some(users) = self.cfg.sasl_users.clone() else {
            let frame = encode_reply(ReplyHeader { xid: request_xid, zxid: 0, err: 0 }, &Response::SaslToken(None));
            self.send(conn, frame);
            return;
        };
        let nonce = self.passwords.next();
        let c = self.conns.get_mut(&conn).expect("present");
        let exchange = c.sasl.get_or_insert_with(|| Box::new(crate::sasl::DigestMd5::new(&nonce)));
        let (err, body) = match exchange.step(token, &users) {
            Ok(crate::sasl::Step::Challenge(t)) => (ErrorCode::Ok, Some(t)),
            Ok(crate::sasl::Step::Done { authorization_id, token }) => {
                info!("session {:#x}: SASL authenticated as {authorization_id}", c.session_id);
                if self.cfg.sasl_super_user.as_deref() == Some(authorization_id.as_str()) {
                    c.auth.add_id(crate::acl::Id::new("super", ""));
                }
                c.auth.add_id(crate::acl::Id::new("sasl", &authorization_id));
                (ErrorCode::Ok, Some(token))
            }
            Err(e) => {
                let (ip, session_id) = (c.ip, c.session_id);
                self.note_auth_failure(&format!("for SASL DIGEST-MD5 ({e})"), ip, session_id, now_ms);
                let enforced = self.cfg.enforce_auth_schemes.iter().any(|s| s == "sasl");
                (if enforced { ErrorCode::SessionClosedRequireSaslAuth } else { ErrorCode::AuthFailed }, None)
            }
        };
        let frame =
            encode_reply(ReplyHeader { xid: request_xid, zxid: 0, err: err.code() }, &Response::SaslToken(body));
        self.send(conn, frame);
        if err != ErrorCode::Ok {
            self.close(conn);
        }
    }

    /// Whether the connection holds an id of a scheme `enforce.auth.schemes` requires.
    fn conn_authenticated(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else { return false };
        c.auth.ids().iter().any(|id| self.cfg.enforce_auth_schemes.iter().any(|s| *s == id.scheme))
    }

    fn reply_error(&mut self, conn: ConnId, request_xid: i32, err: ErrorCode, arrived_us: i64, now_us: i64) {
        let zxid = self.tree.last_zxid;
        let frame = encode_reply(ReplyHeader { xid: request_xid, zxid, err: err.code() }, &Response::Empty);
        self.record_reply(conn, "ERR", request_xid, zxid, arrived_us, now_us);
        self.send(conn, frame);
    }

    fn read(&mut self, conn: ConnId, hdr: RequestHeader, req: Request, arrived_us: i64, now_us: i64) {
        // Auth is answered in order too: a client may send it right behind its ConnectRequest,
        // and its reply must not overtake the ConnectResponse.
        if let Request::Auth { scheme, auth, .. } = &req {
            self.auth(conn, hdr.xid, scheme, auth, now_us / 1000);
            return;
        }
        if let Request::Sasl { token } = &req {
            self.sasl(conn, hdr.xid, token, now_us / 1000);
            return;
        }
        if let Request::Unimplemented(opcode) = req {
            if opcode != op::CREATE_SESSION {
                // ZooKeeper answers an opcode it does not know with Unimplemented and zxid -1,
                // then closes the connection (the session lives on).
                warn!("unknown opcode {opcode} on connection {conn}; closing it");
                let frame = encode_reply(
                    ReplyHeader { xid: hdr.xid, zxid: -1, err: ErrorCode::Unimplemented.code() },
                    &Response::Empty,
                );
                self.send(conn, frame);
                self.close(conn);
                return;
            }
        }
        let adding = watches_requested(&req);
        if adding > 0 && self.cfg.max_watches_per_session > 0 {
            let held = self.watches.count_of(conn);
            if held + adding > self.cfg.max_watches_per_session {
                warn!(
                    "closing connection {conn} (session {:#x}): {held} watches held and {adding} more asked for \
                     exceed warren.maxWatchesPerSession={}",
                    self.conns.get(&conn).map_or(0, |c| c.session_id),
                    self.cfg.max_watches_per_session
                );
                self.close(conn);
                return;
            }
        }
        let opname = request_opname(&req);
        let result = self.read_result(conn, &req);
        let zxid = self.tree.last_zxid;
        // Pings answer with -2 whatever they carried; everything else, setWatches included,
        // echoes the request's xid (the Java client sends setWatches with an ordinary xid and
        // checks it; the C client and kazoo send -8 and get -8 back).
        let reply_xid = if matches!(req, Request::Ping) { xid::PING } else { hdr.xid };
        let (err, body) = match result {
            Ok(b) => (ErrorCode::Ok, b),
            Err(e) => (e, Response::Empty),
        };
        if !matches!(req, Request::Ping) {
            self.record_reply(conn, opname, hdr.xid, zxid, arrived_us, now_us);
        }
        let frame = encode_reply(ReplyHeader { xid: reply_xid, zxid, err: err.code() }, &body);
        self.send(conn, frame);
    }

    fn can(&self, conn: ConnId, node_acl: &[acl::Acl], perm: i32) -> bool {
        let c = &self.conns[&conn];
        acl::check(node_acl, perm, &c.auth, self.cfg.super_digest.as_deref())
    }

    fn read_result(&mut self, conn: ConnId, req: &Request) -> Result<Response, ErrorCode> {
        let valid = |p: &str| path::validate(p).map_err(|_| ErrorCode::BadArguments);
        match req {
            Request::Ping => Ok(Response::Empty),
            Request::Exists { path, watch } => {
                valid(path)?;
                if *watch {
                    self.watches.add(path, conn, Kind::Data);
                }
                self.tree.get(path).map(|n| Response::Stat(n.stat())).ok_or(ErrorCode::NoNode)
            }
            Request::GetData { path, watch } => {
                valid(path)?;
                let n = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
                if !self.can(conn, &n.acl, acl::perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                let resp = Response::GetData { data: n.data.clone(), stat: n.stat() };
                if *watch {
                    self.watches.add(path, conn, Kind::Data);
                }
                Ok(resp)
            }
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                valid(path)?;
                let n = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
                if !self.can(conn, &n.acl, acl::perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                let children: Vec<String> = n.children.iter().cloned().collect();
                let resp = if matches!(req, Request::GetChildren2 { .. }) {
                    Response::Children2 { children, stat: n.stat() }
                } else {
                    Response::Children(children)
                };
                if *watch {
                    self.watches.add(path, conn, Kind::Child);
                }
                Ok(resp)
            }
            Request::GetAcl { path } => {
                valid(path)?;
                let n = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
                if !self.can(conn, &n.acl, acl::perms::READ | acl::perms::ADMIN) {
                    return Err(ErrorCode::NoAuth);
                }
                Ok(Response::GetAcl { acl: n.acl.to_vec(), stat: n.stat() })
            }
            Request::Sync { path } => {
                valid(path)?;
                Ok(Response::Sync { path: path.clone() })
            }
            Request::SetWatches(sw) => {
                // Validated like every other path (ZooKeeper does not, and echoes a NUL back
                // in an event); one bad path refuses the whole request, registering nothing.
                let lists = [&sw.data, &sw.exist, &sw.child, &sw.persistent, &sw.persistent_recursive];
                if let Some(bad) = lists.iter().flat_map(|l| l.iter()).find(|p| path::validate(p).is_err()) {
                    warn!("setWatches with an invalid path {bad:?} on connection {conn}");
                    return Err(ErrorCode::BadArguments);
                }
                self.set_watches(conn, sw);
                Ok(Response::Empty)
            }
            // An unknown mode or watcher type is a MarshallingError in ZooKeeper 3.8 (its enum
            // conversion throws before the path is looked at).
            Request::AddWatch { path, mode } => {
                let kinds = Kind::for_add_watch_mode(*mode).ok_or(ErrorCode::MarshallingError)?;
                valid(path)?;
                for &k in kinds {
                    self.watches.add(path, conn, k);
                }
                Ok(Response::ErrorBody(0))
            }
            Request::CheckWatches { path, watch_type } => {
                let kinds = WatchManager::kinds_for(*watch_type).ok_or(ErrorCode::MarshallingError)?;
                valid(path)?;
                if self.watches.contains(path, conn, kinds) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches { path, watch_type } => {
                let kinds = WatchManager::kinds_for(*watch_type).ok_or(ErrorCode::MarshallingError)?;
                valid(path)?;
                if self.watches.remove(path, conn, kinds) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::GetEphemerals { prefix } => {
                let session = self.conns[&conn].session_id;
                let mut list: Vec<String> = self
                    .tree
                    .ephemerals_of(session)
                    .filter(|p| p.starts_with(prefix.as_str()))
                    .map(str::to_string)
                    .collect();
                list.sort();
                Ok(Response::Ephemerals(list))
            }
            Request::GetAllChildrenNumber { path } => {
                valid(path)?;
                let n = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
                if !self.can(conn, &n.acl, acl::perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
                Ok(Response::AllChildrenNumber(self.tree.descendant_count(path) as i32))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(client_infos(&self.conns[&conn].auth))),
            Request::MultiRead(ops) => Ok(Response::Multi(ops.iter().map(|o| self.multi_read_op(conn, o)).collect())),
            // Without SASL configured ZooKeeper answers with an empty (null) token.
            // A createSession inside a session: ZooKeeper fails to parse it as a session's.
            Request::Unimplemented(op::CREATE_SESSION) => Err(ErrorCode::MarshallingError),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    fn multi_read_op(&mut self, conn: ConnId, o: &MultiOp) -> MultiResult {
        let req = match o {
            MultiOp::GetData { path } => Request::GetData { path: path.clone(), watch: false },
            MultiOp::GetChildren { path } => Request::GetChildren { path: path.clone(), watch: false },
            _ => return MultiResult::Error(ErrorCode::BadArguments),
        };
        match self.read_result(conn, &req) {
            Ok(Response::GetData { data, stat }) => MultiResult::GetData { data, stat },
            Ok(Response::Children(children)) => MultiResult::GetChildren { children },
            Ok(_) => MultiResult::Error(ErrorCode::SystemError),
            Err(e) => MultiResult::Error(e),
        }
    }

    /// Re-registers a reconnecting client's watches, firing at once those whose change it
    /// missed while disconnected (ZooKeeper's DataTree.setWatches).
    fn set_watches(&mut self, conn: ConnId, sw: &SetWatches) {
        let rel = sw.relative_zxid;
        let mut events = Vec::new();
        for p in &sw.data {
            match self.tree.get(p) {
                None => events.push((p.clone(), event::NODE_DELETED)),
                Some(n) if n.stat.mzxid > rel => events.push((p.clone(), event::NODE_DATA_CHANGED)),
                Some(_) => self.watches.add(p, conn, Kind::Data),
            }
        }
        for p in &sw.exist {
            match self.tree.get(p) {
                Some(_) => events.push((p.clone(), event::NODE_CREATED)),
                None => self.watches.add(p, conn, Kind::Data),
            }
        }
        for p in &sw.child {
            match self.tree.get(p) {
                None => events.push((p.clone(), event::NODE_DELETED)),
                Some(n) if n.stat.pzxid > rel => events.push((p.clone(), event::NODE_CHILDREN_CHANGED)),
                Some(_) => self.watches.add(p, conn, Kind::Child),
            }
        }
        for p in &sw.persistent {
            self.watches.add(p, conn, Kind::PersistentData);
            self.watches.add(p, conn, Kind::PersistentChild);
        }
        for p in &sw.persistent_recursive {
            self.watches.add(p, conn, Kind::Recursive);
            self.watches.add(p, conn, Kind::RecursiveChild);
        }
        for (p, t) in events {
            let ev = WatcherEvent { event_type: t, state: state::SYNC_CONNECTED, path: p };
            self.send(conn, ev.encode());
        }
    }

    fn record_reply(&mut self, conn: ConnId, opname: &'static str, cxid: i32, zxid: i64, arrived_us: i64, now_us: i64) {
        let latency_us = (now_us - arrived_us).max(0);
        let latency = latency_us / 1000;
        if let Some(m) = &self.metrics {
            m.observe_request(opname, is_write_op(opname), latency_us as u64);
        }
        let k = &mut self.counters;
        k.min_latency_ms = if k.replies == 0 { latency } else { k.min_latency_ms.min(latency) };
        k.max_latency_ms = k.max_latency_ms.max(latency);
        k.total_latency_ms += latency;
        k.replies += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            let s = &mut c.stats;
            s.last_op = opname;
            s.last_cxid = cxid;
            s.last_zxid = zxid;
            s.last_latency_ms = latency;
            s.min_latency_ms = s.min_latency_ms.min(latency);
            s.max_latency_ms = s.max_latency_ms.max(latency);
            s.total_latency_ms += latency;
            s.replies += 1;
        }
    }
}

/// whoAmI's (scheme, user) pairs: a digest id shows its user name only, as ZooKeeper does.
fn client_infos(auth: &AuthInfo) -> Vec<(String, String)> {
    auth.ids()
        .iter()
        .map(|id| {
            let user = match id.scheme.as_str() {
                "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                _ => id.id.clone(),
            };
            (id.scheme.clone(), user)
        })
        .collect()
}

/// Watches a read would add at most (for the per-session bound; a persistent or recursive
/// watch is two entries).
fn watches_requested(req: &Request) -> usize {
    match req {
        Request::Exists { watch: true, .. }
        | Request::GetData { watch: true, .. }
        | Request::GetChildren { watch: true, .. }
        | Request::GetChildren2 { watch: true, .. } => 1,
        Request::AddWatch { .. } => 2,
        Request::SetWatches(sw) => {
            sw.data.len() + sw.exist.len() + sw.child.len() + 2 * (sw.persistent.len() + sw.persistent_recursive.len())
        }
        _ => 0,
    }
}

/// ZooKeeper writes the ensemble's membership into each server's own tree at start-up and
/// after a SNAP (not a transaction).
fn install_config_node(cfg: &MachineConfig, tree: &mut DataTree, now: Now) {
    if let Some(text) = &cfg.config_node {
        tree.set_config_node(text.clone(), now.wall_ms);
    }
}

/// Whether a request creates an ephemeral node (a create, or a multi with one): what a local
/// session cannot do without becoming global. Flags that name no mode count as not ephemeral
/// (the create is refused with BadArguments anyway).
fn creates_ephemeral(req: &Request) -> bool {
    let ephemeral =
        |c: &crate::proto::CreateRequest| crate::prep::CreateMode::from_flags(c.flags).is_some_and(|m| m.ephemeral);
    match req {
        Request::Create(c) => ephemeral(c),
        Request::Multi(ops) => ops.iter().any(|o| matches!(o, MultiOp::Create(c) if ephemeral(c))),
        _ => false,
    }
}

fn is_write(req: &Request) -> bool {
    matches!(
        req,
        Request::Create(_)
            | Request::Delete { .. }
            | Request::DeleteContainer { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. }
            | Request::Multi(_)
            | Request::CloseSession
            // ZooKeeper prepares reconfig like any write; disabled, it is an error transaction
            // (so its reply carries a new zxid).
            | Request::Unimplemented(op::RECONFIG)
    )
}

fn single_write(req: &Request) -> Option<WriteOp> {
    Some(match req {
        Request::Create(c) => WriteOp::Create(c.clone()),
        Request::Delete { path, version } => WriteOp::Delete { path: path.clone(), version: *version },
        Request::DeleteContainer { path } => WriteOp::DeleteContainer { path: path.clone() },
        Request::SetData { path, data, version } => {
            WriteOp::SetData { path: path.clone(), data: data.clone(), version: *version }
        }
        Request::SetAcl { path, acl, version } => {
            WriteOp::SetAcl { path: path.clone(), acl: acl.clone(), version: *version }
        }
        Request::Check { path, version } => WriteOp::Check { path: path.clone(), version: *version },
        _ => return None,
    })
}

/// The reply to an applied write: (header error, body).
fn write_reply(result: OpResult) -> (ErrorCode, Response) {
    match result {
        OpResult::Created { kind, path, stat } => match kind {
            crate::proto::CreateKind::Create => (ErrorCode::Ok, Response::Create { path }),
            _ => (ErrorCode::Ok, Response::Create2 { path, stat }),
        },
        OpResult::SetData(stat) | OpResult::SetAcl(stat) => (ErrorCode::Ok, Response::Stat(stat)),
        OpResult::Deleted | OpResult::Checked | OpResult::SessionClosed | OpResult::SessionCreated => {
            (ErrorCode::Ok, Response::Empty)
        }
        OpResult::Multi(results) => (ErrorCode::Ok, Response::Multi(results.into_iter().map(multi_result).collect())),
        OpResult::Error(e) => (e, Response::Empty),
    }
}

fn multi_result(r: OpResult) -> MultiResult {
    match r {
        OpResult::Created { kind: crate::proto::CreateKind::Create, path, .. } => MultiResult::Create { path },
        OpResult::Created { path, stat, .. } => MultiResult::Create2 { path, stat },
        OpResult::Deleted => MultiResult::Delete,
        OpResult::SetData(stat) | OpResult::SetAcl(stat) => MultiResult::SetData { stat },
        OpResult::Checked => MultiResult::Check,
        OpResult::Error(e) => MultiResult::Error(e),
        OpResult::Multi(_) | OpResult::SessionClosed | OpResult::SessionCreated => {
            MultiResult::Error(ErrorCode::SystemError)
        }
    }
}

/// Short op names as ZooKeeper's `cons` shows them.
fn request_opname(req: &Request) -> &'static str {
    match req.opcode() {
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::GET_CHILDREN => "GETC",
        op::GET_CHILDREN2 => "GETC",
        op::GET_ACL => "GETA",
        op::SYNC => "SYNC",
        op::PING => "PING",
        op::SET_WATCHES | op::SET_WATCHES2 => "SETW",
        op::MULTI_READ => "MLTR",
        op::ADD_WATCH => "ADDW",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::WHO_AM_I => "HOMI",
        op::GET_EPHEMERALS => "GETE",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        _ => "UNKN",
    }
}

fn txn_opname(op: &TxnOp) -> &'static str {
    match op {
        TxnOp::Create { .. } => "CREA",
        TxnOp::Delete { .. } | TxnOp::DeleteContainer { .. } => "DELE",
        TxnOp::SetData { .. } => "SETD",
        TxnOp::SetAcl { .. } => "SETA",
        TxnOp::Check { .. } => "CHEC",
        TxnOp::Multi(_) => "MULT",
        TxnOp::CloseSession => "CLOS",
        TxnOp::CreateSession { .. } => "SESS",
        TxnOp::Error(_) => "ERR",
    }
}

#[cfg(test)]
mod tests;
