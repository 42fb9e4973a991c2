//! A member of an ensemble: the machine (tree, sessions, watches, clients) plus the protocol.
//! Pure, no I/O: the shell (`server::owner`) performs what its `NodeReady` asks for.
//!
//! The node keeps a window of its log in memory (`history`): every appended transaction not
//! yet applied, and up to `diff_window` applied ones, which a leader sends to followers that
//! are a little behind (DIFF). Only committed transactions reach the machine: a follower
//! applies on `Commit` (or `UpToDate`), a leader once a quorum's fsyncs cover a proposal; the
//! records a server finds in its log at start-up wait in `history` until a leader says they
//! are committed (or truncates them).
//!
//! Read-only mode (`readonlymode.enabled`, [`MachineConfig::read_only_mode`]): a node that has
//! been looking for a leader for max(2000 ms, tickTime) lets its machine serve read-only
//! clients from the applied state ([`Machine::start_read_only`]); leaving the election ends it
//! ([`Machine::stop_serving`] closes those connections).
//!
//! Not done yet (said here so nobody assumes otherwise): dynamic reconfiguration; local
//! (non-global) sessions outside read-only mode.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use tracing::{info, warn};

use super::election::{self, Election};
use super::{
    counter_of, epoch_of, make_zxid, Epochs, ForwardOp, LogSummary, Msg, PeerState, QuorumConfig, ServerId, Vote, Zxid,
};
use crate::machine::{read_only_grace_ms, ConnId, Machine, MachineConfig, Now, Role};
use crate::proto::{ConnectRequest, Request, RequestHeader};
use crate::tree::DataTree;
use crate::txn::Txn;

/// What a server starts from: its persisted epochs, the tree and sessions of its newest
/// snapshot (or an empty tree), and every durable log record after that snapshot's start
/// zxid, in zxid order. Log records are not applied yet: only committed transactions reach
/// the tree, and whether these were committed is learnt from the leader during
/// synchronization. Records the (fuzzy) snapshot already covers are applied again, which is
/// harmless, as in recovery.
pub struct NodeInit {
    pub epochs: Epochs,
    pub tree: DataTree,
    pub sessions: Vec<crate::snap::SessionRecord>,
    pub log: Vec<Txn>,
}

/// What the shell must do: the disk work first, as [`NodeReady::take_disk_steps`] orders it;
/// then send `sends` to peers and `client_sends` to connections; close `closes`. Peer messages
/// may leave at once: a message that depends on durability (an ACK) is only emitted after the
/// node was told the records are durable ([`Node::synced`]), and the epochs step is performed
/// (durably) before anything of this Ready leaves.
#[derive(Debug, Default)]
pub struct NodeReady {
    pub epochs: Option<Epochs>,
    pub truncate: Option<Zxid>,
    pub snapshot: Option<(Zxid, Vec<u8>)>,
    pub appends: Vec<Txn>,
    pub sends: Vec<(ServerId, Msg)>,
    pub client_sends: Vec<(ConnId, Vec<u8>)>,
    pub closes: Vec<ConnId>,
    /// Links to drop and set up afresh: the peer went silent with its link up (a hung process
    /// or a partition that drops packets), and what is queued for it is stale.
    pub resets: Vec<ServerId>,
}

/// One piece of a Ready's disk work. The order of the steps, and what each must have made
/// durable before the next starts, is the node's to decide, not the shell's: the server
/// (`server::owner`), the simulator and the tests all perform [`NodeReady::take_disk_steps`]
/// as it comes.
#[derive(Debug, PartialEq)]
pub enum DiskStep {
    /// Write the epoch files durably (file and directory synced) before anything after it,
    /// and before any message of the same Ready leaves: an AckEpoch or AckNewLeader promises
    /// that the epoch survives a crash.
    Epochs(Epochs),
    /// The leader's TRUNC: drop every log record above this zxid. Everything appended before
    /// it is written first, the cut is durable when the step ends, and only then may a later
    /// append start. Report the end with [`Node::rewound`].
    Truncate(Zxid),
    /// The leader's SNAP: write this snapshot durably, then remove every log segment (its
    /// state replaces them) and every older snapshot (the log they would need is gone). A
    /// later append starts a new segment after it. Report the end with [`Node::rewound`].
    Snapshot(Zxid, Vec<u8>),
    /// Append these records after everything before them; report [`Node::synced`] once they
    /// are durable (group commit may cover several Append steps with one fsync).
    Append(Vec<Txn>),
}

impl NodeReady {
    pub fn is_empty(&self) -> bool {
        self.epochs.is_none()
            && self.truncate.is_none()
            && self.snapshot.is_none()
            && self.appends.is_empty()
            && self.sends.is_empty()
            && self.client_sends.is_empty()
            && self.closes.is_empty()
            && self.resets.is_empty()
    }

    /// Takes the disk work out of this Ready as steps in the order they must be performed:
    /// epochs, truncation, snapshot installation, appends. (A Ready holds a truncation and a
    /// snapshot together only when the TRUNC came after the SNAP; the appends kept are the
    /// SNAP's successors up to the cut, so either order leaves the same log.)
    pub fn take_disk_steps(&mut self) -> Vec<DiskStep> {
        let mut steps = Vec::new();
        if let Some(e) = self.epochs.take() {
            steps.push(DiskStep::Epochs(e));
        }
        if let Some(z) = self.truncate.take() {
            steps.push(DiskStep::Truncate(z));
        }
        if let Some((z, image)) = self.snapshot.take() {
            steps.push(DiskStep::Snapshot(z, image));
        }
        if !self.appends.is_empty() {
            steps.push(DiskStep::Append(std::mem::take(&mut self.appends)));
        }
        steps
    }
}

/// How a follower was brought up to date (for logs, tests and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Diff,
    Trunc,
    Snap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadStage {
    /// Collecting FollowerInfo from a quorum to choose the epoch.
    Discovery,
    /// Epoch chosen; collecting AckEpoch, then AckNewLeader, from a quorum.
    Sync,
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerStage {
    /// Sent FollowerInfo; waiting for the epoch.
    Info,
    /// Sync sent; its proposals and commits flow; waiting for AckNewLeader.
    Syncing,
    Synced,
}

struct Learner {
    observer: bool,
    stage: LearnerStage,
    /// Highest zxid it has acknowledged as durable (after NewLeader).
    acked: Zxid,
    last_heard: u64,
    /// When it was last heard from, on the monotonic clock (see `QuorumConfig::peer_timeout_ms`).
    last_heard_ms: i64,
}

impl Leader {
    /// Voting learners that acknowledged NewLeader (the quorum that counts, besides me).
    fn synced_voters(&self) -> impl Iterator<Item = &Learner> {
        self.learners.values().filter(|x| !x.observer && x.stage == LearnerStage::Synced)
    }
}

struct Leader {
    epoch: u32,
    stage: LeadStage,
    /// FollowerInfo (accepted epoch) of voters heard during discovery, mine included.
    infos: BTreeMap<ServerId, u32>,
    /// AckEpoch received: what the learner's log holds (a learner is synced only once a
    /// quorum of voters acknowledged the epoch, so no history is handed out before it is
    /// known to be the most complete of a quorum).
    epoch_acks: BTreeMap<ServerId, LogSummary>,
    /// Those of `epoch_acks` that count towards establishing the epoch (see `Msg::AckEpoch`).
    counted_acks: BTreeSet<ServerId>,
    learners: BTreeMap<ServerId, Learner>,
    /// End of my history when the epoch was established.
    newleader_zxid: Zxid,
    started: u64,
    commit: Zxid,
    /// Prepared transactions held back while `max_inflight` proposals are outstanding.
    held: VecDeque<Txn>,
    /// Forwarded syncs waiting for the commit of everything prepared before them:
    /// (zxid, follower, session, cxid).
    syncs: VecDeque<(Zxid, ServerId, i64, i32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowStage {
    /// Sent FollowerInfo, waiting for LeaderInfo.
    Discovery,
    /// Acked the epoch; receiving the sync.
    Sync,
    /// Got NewLeader, acknowledged it (after durability); waiting for UpToDate.
    NewLeader,
    Serving,
}

struct Follower {
    leader: ServerId,
    /// The election round in which I chose it.
    round: u64,
    epoch: u32,
    stage: FollowStage,
    /// The NewLeader zxid waiting to be acknowledged once the log is durable up to it.
    newleader: Option<Zxid>,
    acked_newleader: bool,
    last_acked: Zxid,
    commit: Zxid,
    last_heard: u64,
    /// When the leader was last heard from, on the monotonic clock.
    last_heard_ms: i64,
}

enum Phase {
    Looking(Election),
    Leading(Leader),
    Following(Follower),
}

pub struct Node {
    m: Machine,
    cfg: QuorumConfig,
    epochs: Epochs,
    phase: Phase,
    /// Recent log records: every one not yet applied, plus applied ones for DIFFs.
    history: VecDeque<Txn>,
    /// The zxid just before `history`'s first record (what a DIFF can start from at the oldest).
    history_base: Zxid,
    logged: Zxid,
    durable: Zxid,
    applied: Zxid,
    ready: NodeReady,
    ticks: u64,
    round: u64,
    down: BTreeSet<ServerId>,
    /// FollowerInfo that arrived while I was still electing (I may be about to lead).
    early_infos: BTreeMap<ServerId, Msg>,
    /// How each learner was last synced, for tests and `mntr`.
    pub last_sync: BTreeMap<ServerId, SyncKind>,
    /// What the machine prepared, on its way to the log and the followers (leader).
    pending_appends: Vec<Txn>,
    /// The highest accepted epoch any learner reported: a new epoch is chosen above it.
    max_seen_epoch: u32,
    /// tickTime, and when the leader last pinged its learners (see [`Node::sweep`]).
    tick_ms: i64,
    last_ping_ms: i64,
    now: Now,
    /// The epoch I last acknowledged (or chose, as leader) and for whom: `Msg::AckEpoch`.
    epoch_acked_to: Option<(u32, ServerId)>,
    /// Truncations and snapshot installations handed to the shell and not yet reported done
    /// ([`Node::rewound`]). Meanwhile [`Node::synced`] reports are ignored: an fsync of records
    /// written before the rewind says nothing about the log after it.
    rewinds: u32,
    inv: Invariants,
    /// `readonlymode.enabled`, and when this node last started looking for a leader.
    read_only_mode: bool,
    looking_since_ms: i64,
}

/// What [`Node::check_invariants`] remembers between two checks.
#[derive(Default)]
struct Invariants {
    /// The commit point of the current leadership or following (reset when the phase ends).
    commit: Zxid,
    /// The leader of each recent epoch this server took on as current: as a follower when it
    /// acknowledges NewLeader, as a leader when a quorum acknowledged its epoch.
    epoch_leaders: BTreeMap<u32, ServerId>,
}

impl Invariants {
    /// Records that `leader` leads `epoch` as server `me` sees it; two leaders established in
    /// one epoch is a broken protocol (two histories could then share zxids).
    fn epoch_led_by(&mut self, me: ServerId, epoch: u32, leader: ServerId) {
        let known = *self.epoch_leaders.entry(epoch).or_insert(leader);
        assert!(known == leader, "server {me}: invariant broken: epoch {epoch} has two leaders, {known} and {leader}");
        while self.epoch_leaders.len() > 16 {
            self.epoch_leaders.pop_first();
        }
    }
}

impl Node {
    pub fn new(mcfg: MachineConfig, qcfg: QuorumConfig, init: NodeInit, now: Now) -> Node {
        let mut tree = init.tree;
        let mut log = init.log;
        // A (fuzzy) snapshot's records are applied again from its start.
        let mut applied = tree.last_zxid;
        if let Some(first) = log.first() {
            applied = applied.min(first.hdr.zxid - 1);
        }
        log.retain(|t| t.hdr.zxid > applied);
        tree.last_zxid = applied;
        let tick_ms = mcfg.tick_ms;
        let read_only_mode = mcfg.read_only_mode;
        let mut m = Machine::new(mcfg, tree, now);
        m.restore_sessions(&init.sessions, now);
        m.stop_serving();
        let logged = log.last().map_or(applied, |t| t.hdr.zxid);
        let mut node = Node {
            m,
            epochs: init.epochs,
            phase: Phase::Looking(Election::new(&qcfg, 0, 0, 0, BTreeSet::new())),
            cfg: qcfg,
            history: log.into(),
            history_base: applied,
            logged,
            durable: logged,
            applied,
            ready: NodeReady::default(),
            ticks: 0,
            round: 0,
            down: BTreeSet::new(),
            early_infos: BTreeMap::new(),
            last_sync: BTreeMap::new(),
            pending_appends: Vec::new(),
            max_seen_epoch: 0,
            tick_ms,
            last_ping_ms: now.mono_ms,
            now,
            epoch_acked_to: None,
            rewinds: 0,
            inv: Invariants::default(),
            read_only_mode,
            looking_since_ms: now.mono_ms,
        };
        node.look("starting");
        node
    }

    pub fn take_ready(&mut self) -> NodeReady {
        self.pump();
        self.check_invariants();
        let ready = std::mem::take(&mut self.ready);
        self.rewinds += u32::from(ready.truncate.is_some()) + u32::from(ready.snapshot.is_some());
        ready
    }

    // ---- clients ----------------------------------------------------------------------------

    pub fn open(&mut self, conn: ConnId, ip: IpAddr, now: Now) -> bool {
        self.now = now;
        self.m.open(conn, ip, now)
    }
    pub fn add_auth_ids(&mut self, conn: ConnId, ids: Vec<crate::acl::Id>) -> bool {
        self.m.add_auth_ids(conn, ids)
    }
    pub fn connect(&mut self, conn: ConnId, req: ConnectRequest, now: Now) {
        self.now = now;
        self.m.connect(conn, req, now);
        self.pump();
    }
    pub fn request(&mut self, conn: ConnId, hdr: RequestHeader, req: Request, now: Now) {
        self.now = now;
        self.m.request(conn, hdr, req, now);
        self.pump();
    }
    pub fn disconnected(&mut self, conn: ConnId) {
        self.m.disconnected(conn);
    }

    // ---- observation ------------------------------------------------------------------------

    pub fn state(&self) -> PeerState {
        match &self.phase {
            Phase::Looking(_) => PeerState::Looking,
            Phase::Leading(_) => PeerState::Leading,
            Phase::Following(_) if self.cfg.is_observer() => PeerState::Observing,
            Phase::Following(_) => PeerState::Following,
        }
    }
    /// The leader this server follows or is, once known.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.phase {
            Phase::Looking(_) => None,
            Phase::Leading(_) => Some(self.cfg.myid),
            Phase::Following(f) => Some(f.leader),
        }
    }
    pub fn epochs(&self) -> Epochs {
        self.epochs
    }
    pub fn last_logged(&self) -> Zxid {
        self.logged
    }
    pub fn last_applied(&self) -> Zxid {
        self.applied
    }
    /// Looking for a leader and serving read-only clients meanwhile (`readonlymode.enabled`).
    pub fn read_only(&self) -> bool {
        self.m.role() == Role::ReadOnly
    }
    pub fn serving(&self) -> bool {
        match &self.phase {
            Phase::Looking(_) => false,
            Phase::Leading(l) => l.stage == LeadStage::Broadcast,
            Phase::Following(f) => f.stage == FollowStage::Serving,
        }
    }
    pub fn machine(&self) -> &Machine {
        &self.m
    }
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.m
    }
    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }
    /// Leader: (learners, synced voters, synced observers, learners still syncing).
    pub fn learner_counts(&self) -> (usize, usize, usize, usize) {
        match &self.phase {
            Phase::Leading(l) => {
                let synced = |obs: bool| {
                    l.learners.values().filter(|x| x.observer == obs && x.stage == LearnerStage::Synced).count()
                };
                let syncing = l.learners.values().filter(|x| x.stage != LearnerStage::Synced).count();
                (l.learners.len(), synced(false), synced(true), syncing)
            }
            _ => (0, 0, 0, 0),
        }
    }
    /// Leader: how many zxids each synced learner's acknowledgements trail my log.
    pub fn learner_lags(&self) -> Vec<(ServerId, i64)> {
        match &self.phase {
            Phase::Leading(l) => l
                .learners
                .iter()
                .filter(|(_, x)| x.stage == LearnerStage::Synced)
                .map(|(id, x)| (*id, (self.logged - x.acked).max(0)))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// Proposals not yet committed (leader).
    pub fn outstanding_proposals(&self) -> usize {
        match &self.phase {
            Phase::Leading(l) => self.history.iter().filter(|t| t.hdr.zxid > l.commit).count() + l.held.len(),
            _ => 0,
        }
    }

    // ---- peers, disk, time ------------------------------------------------------------------

    pub fn peer_message(&mut self, from: ServerId, msg: Msg, now: Now) {
        self.now = now;
        if from == self.cfg.myid || !(self.cfg.voters.contains(&from) || self.cfg.observers.contains(&from)) {
            warn!("ignoring a message from unknown server {from}");
            return;
        }
        self.down.remove(&from);
        match msg {
            Msg::Vote(v) => self.on_vote(from, v),
            other => match &self.phase {
                Phase::Looking(_) => {
                    if let Msg::FollowerInfo { .. } = other {
                        self.early_infos.insert(from, other);
                    }
                }
                Phase::Leading(_) => self.leader_msg(from, other),
                Phase::Following(f) => {
                    if f.leader == from {
                        self.follower_msg(other);
                    } else if let Msg::FollowerInfo { .. } = other {
                        // It thinks I lead: tell it whom I follow.
                        if let Some(v) = self.my_vote_state() {
                            self.ready.sends.push((from, Msg::Vote(v)));
                        }
                    }
                }
            },
        }
        self.pump();
    }

    /// The link to `peer` broke (or could not be made): a follower whose leader this is starts
    /// an election at once; an election stops waiting for this peer's vote.
    pub fn peer_down(&mut self, peer: ServerId, now: Now) {
        self.now = now;
        self.down.insert(peer);
        self.early_infos.remove(&peer);
        match &mut self.phase {
            Phase::Looking(e) => {
                if let Some(l) = e.peer_down(&self.cfg, peer) {
                    self.elected(l);
                }
            }
            Phase::Following(f) => {
                if f.leader == peer {
                    self.look("lost the connection to the leader");
                }
            }
            Phase::Leading(l) => {
                if l.learners.remove(&peer).is_some() {
                    info!("follower {peer} disconnected");
                }
                l.epoch_acks.remove(&peer);
                l.counted_acks.remove(&peer);
                if l.stage == LeadStage::Broadcast && !self.has_quorum() {
                    self.look("lost the quorum");
                }
            }
        }
        self.pump();
    }

    /// A link to `peer` is up again.
    pub fn peer_up(&mut self, peer: ServerId, now: Now) {
        self.now = now;
        self.down.remove(&peer);
        if let Phase::Looking(e) = &mut self.phase {
            let mut out = Vec::new();
            e.peer_up(peer, &mut out);
            self.send_votes(out);
        }
        self.pump();
    }

    /// Called every tickTime.
    pub fn tick(&mut self, now: Now) {
        self.now = now;
        self.ticks += 1;
        let ticks = self.ticks;
        match &mut self.phase {
            Phase::Looking(e) => {
                let mut out = Vec::new();
                let decided = e.tick(&self.cfg, &mut out);
                self.send_votes(out);
                if let Some(l) = decided {
                    self.elected(l);
                }
            }
            Phase::Following(f) => {
                let limit = if f.stage == FollowStage::Serving { self.cfg.sync_limit } else { self.cfg.init_limit };
                if ticks - f.last_heard > limit as u64 {
                    let leader = f.leader;
                    self.ready.resets.push(leader);
                    self.look("the leader is silent");
                } else if f.stage == FollowStage::Serving {
                    self.m.tick(now);
                }
            }
            Phase::Leading(l) => {
                if l.stage != LeadStage::Broadcast {
                    if ticks - l.started > self.cfg.init_limit as u64 {
                        self.look("no quorum synced within initLimit");
                    }
                } else {
                    let sync_limit = self.cfg.sync_limit as u64;
                    drop_silent(l, &mut self.ready.resets, "syncLimit", |x| ticks - x.last_heard > sync_limit);
                    self.ping_learners();
                    if !self.has_quorum() {
                        self.look("lost the quorum");
                    } else {
                        self.m.tick(now);
                    }
                }
            }
        }
        self.read_only_step();
        self.pump();
    }

    /// Called often between ticks (the shell does so every tenth of a tick, as it does for a
    /// standalone machine). A serving leader
    /// - pings its learners again halfway between ticks, as ZooKeeper's leader does: a
    ///   follower reports its sessions' activity in answer to a ping, so the leader hears of
    ///   it at most half a tick late, not a whole tick;
    /// - with its quorum, expires sessions (and cleans up containers) as soon as their tick
    ///   bucket has passed, not at the next protocol tick. Nobody else expires.
    ///
    /// Silence limits stay counted in whole ticks by [`Node::tick`].
    ///
    /// With `peer_timeout_ms` set, it also applies that shorter silence limit to a serving
    /// follower's leader and a broadcasting leader's learners, and the leader pings at least
    /// four times per limit.
    pub fn sweep(&mut self, now: Now) {
        self.now = now;
        let timeout = self.cfg.peer_timeout_ms;
        match &mut self.phase {
            Phase::Following(f)
                if f.stage == FollowStage::Serving && timeout > 0 && now.mono_ms - f.last_heard_ms > timeout =>
            {
                let leader = f.leader;
                self.ready.resets.push(leader);
                self.look("the leader is silent (warren.peerTimeoutMs)");
            }
            Phase::Leading(l) if l.stage == LeadStage::Broadcast => {
                if timeout > 0 {
                    // Only synced learners: one still receiving a snapshot keeps initLimit.
                    drop_silent(l, &mut self.ready.resets, "warren.peerTimeoutMs", |x| {
                        x.stage == LearnerStage::Synced && now.mono_ms - x.last_heard_ms > timeout
                    });
                }
                if !self.has_quorum() {
                    self.look("lost the quorum");
                } else {
                    let every = if timeout > 0 { (self.tick_ms / 2).min(timeout / 4) } else { self.tick_ms / 2 };
                    if now.mono_ms - self.last_ping_ms >= every {
                        self.ping_learners();
                    }
                    self.m.tick(now);
                }
            }
            _ => {}
        }
        self.read_only_step();
        self.pump();
    }

    /// Read-only mode: a node still looking for a leader max(2000 ms, tickTime) after it
    /// started looking serves read-only clients (as ZooKeeper's QuorumPeer starts its
    /// ReadOnlyZooKeeperServer after that grace period); meanwhile its read-only sessions
    /// expire here.
    fn read_only_step(&mut self) {
        if !self.read_only_mode || !matches!(self.phase, Phase::Looking(_)) {
            return;
        }
        match self.m.role() {
            Role::NotServing if self.now.mono_ms - self.looking_since_ms >= read_only_grace_ms(self.tick_ms) => {
                self.m.start_read_only()
            }
            Role::ReadOnly => self.m.tick(self.now),
            _ => {}
        }
    }

    /// Leader: a `Ping` to every learner; each answers with a `Pong` of its active sessions.
    fn ping_learners(&mut self) {
        let Phase::Leading(l) = &self.phase else { return };
        for &id in l.learners.keys() {
            self.ready.sends.push((id, Msg::Ping));
        }
        self.last_ping_ms = self.now.mono_ms;
    }

    /// A truncation or snapshot installation ([`DiskStep::Truncate`], [`DiskStep::Snapshot`])
    /// is done and durable: the log now ends durably at `zxid`. Once every rewind handed out
    /// is done, fsync reports count again.
    ///
    /// # Panics
    /// A report of a rewind never handed out: the shell is broken.
    pub fn rewound(&mut self, zxid: Zxid, now: Now) {
        assert!(
            self.rewinds > 0,
            "server {}: invariant broken: a rewind to {zxid:#x} reported done, none was asked for",
            self.cfg.myid
        );
        self.rewinds -= 1;
        if self.rewinds == 0 {
            self.synced(zxid, now);
        }
    }

    /// The local log has made every appended record up to `zxid` durable. Ignored while a
    /// rewind is under way (see `rewinds`).
    pub fn synced(&mut self, zxid: Zxid, now: Now) {
        self.now = now;
        if self.rewinds > 0 {
            return;
        }
        let zxid = zxid.min(self.logged);
        if zxid <= self.durable {
            return;
        }
        self.durable = zxid;
        match &mut self.phase {
            Phase::Following(f) => {
                if f.acked_newleader && !self.cfg.is_observer() && self.durable > f.last_acked {
                    f.last_acked = self.durable;
                    self.ready.sends.push((f.leader, Msg::Ack { zxid: self.durable }));
                }
                self.maybe_ack_newleader();
            }
            Phase::Leading(_) => {
                self.maybe_established();
                self.advance_commit();
            }
            Phase::Looking(_) => {}
        }
        self.pump();
    }

    // ---- election -----------------------------------------------------------------------------

    fn my_vote_state(&self) -> Option<Vote> {
        let (leader, epoch, state) = match &self.phase {
            Phase::Looking(_) => return None,
            Phase::Leading(l) => (self.cfg.myid, l.epoch, PeerState::Leading),
            Phase::Following(f) => (f.leader, f.epoch, self.state()),
        };
        Some(Vote { leader, zxid: self.logged, epoch, round: self.round, state })
    }

    fn on_vote(&mut self, from: ServerId, v: Vote) {
        if v.state == PeerState::Looking && !self.cfg.voters.contains(&from) {
            // An observer looking for the leader: answer, but it takes no part in the vote.
            let mine = match &self.phase {
                Phase::Looking(e) => e.vote,
                _ => self.my_vote_state().expect("not looking"),
            };
            if mine.leader != 0 {
                self.ready.sends.push((from, Msg::Vote(mine)));
            }
            return;
        }
        if let Phase::Following(f) = &self.phase {
            // My leader is electing (it lost its quorum), or the server I chose follows
            // someone else: no point waiting out syncLimit or initLimit. A looking vote of
            // the round I decided in may predate its own decision (still in flight): only a
            // later round means it is electing again.
            let current = match v.state {
                PeerState::Looking => v.round > f.round,
                PeerState::Leading => false,
                _ => v.round >= f.round,
            };
            if f.leader == from && current {
                self.look("the server I follow is not leading");
            }
        }
        if let Some(mine) = self.my_vote_state() {
            // Tell a looking server whom we follow, so it can join.
            if v.state == PeerState::Looking {
                self.ready.sends.push((from, Msg::Vote(mine)));
            }
            return;
        }
        let Phase::Looking(e) = &mut self.phase else { unreachable!() };
        let mut out = Vec::new();
        let decided = e.on_vote(&self.cfg, from, v, &mut out);
        self.round = e.round;
        self.send_votes(out);
        if let Some(l) = decided {
            self.elected(l);
        }
    }

    fn send_votes(&mut self, out: Vec<election::Out>) {
        for o in out {
            match o {
                election::Out::Broadcast(v) => {
                    let peers: Vec<ServerId> = self.cfg.peers().collect();
                    for p in peers {
                        self.ready.sends.push((p, Msg::Vote(v)));
                    }
                }
                election::Out::To(p, v) => self.ready.sends.push((p, Msg::Vote(v))),
            }
        }
    }

    /// Back to electing: stop serving clients, propose myself in a new round.
    fn look(&mut self, why: &str) {
        if !matches!(self.phase, Phase::Looking(_)) || self.ticks == 0 {
            info!("LOOKING: {why} (last zxid {:#x}, epochs {:?})", self.logged, self.epochs);
        }
        if !matches!(self.phase, Phase::Looking(_)) {
            self.looking_since_ms = self.now.mono_ms;
        }
        self.m.stop_serving();
        self.inv.commit = 0;
        self.round += 1;
        let e = Election::new(&self.cfg, self.round, self.epochs.current, self.logged, self.down.clone());
        let vote = e.vote;
        self.phase = Phase::Looking(e);
        // An observer's vote names nobody: it asks around, and everyone answers with theirs.
        self.send_votes(vec![election::Out::Broadcast(vote)]);
        if let Phase::Looking(e) = &mut self.phase {
            if let Some(l) = e.check(&self.cfg) {
                // A single voter (or everyone else known down) decides at once.
                self.elected(l);
            }
        }
    }

    fn elected(&mut self, leader: ServerId) {
        if self.m.role() == Role::ReadOnly {
            // Out of the election: read-only mode ends, closing its connections.
            self.m.stop_serving();
        }
        let early = std::mem::take(&mut self.early_infos);
        self.inv.commit = 0;
        if leader == self.cfg.myid {
            info!("LEADING: elected in round {} with last zxid {:#x}", self.round, self.logged);
            let mut infos = BTreeMap::new();
            infos.insert(self.cfg.myid, self.epochs.accepted);
            self.phase = Phase::Leading(Leader {
                epoch: 0,
                stage: LeadStage::Discovery,
                infos,
                epoch_acks: BTreeMap::new(),
                counted_acks: BTreeSet::new(),
                learners: BTreeMap::new(),
                newleader_zxid: 0,
                started: self.ticks,
                commit: self.applied,
                held: VecDeque::new(),
                syncs: VecDeque::new(),
            });
            for (from, msg) in early {
                self.leader_msg(from, msg);
            }
            self.maybe_choose_epoch();
        } else {
            let role = if self.cfg.is_observer() { "OBSERVING" } else { "FOLLOWING" };
            info!("{role}: leader {leader} (round {}), my last zxid {:#x}", self.round, self.logged);
            self.phase = Phase::Following(Follower {
                leader,
                round: self.round,
                epoch: 0,
                stage: FollowStage::Discovery,
                newleader: None,
                acked_newleader: false,
                last_acked: 0,
                commit: self.applied,
                last_heard: self.ticks,
                last_heard_ms: self.now.mono_ms,
            });
            // They chose me; I follow another: tell them (as the answer to a FollowerInfo
            // arriving now would), so they look again at once.
            let mine = self.my_vote_state().expect("following");
            for from in early.into_keys() {
                self.ready.sends.push((from, Msg::Vote(mine)));
            }
            let info = Msg::FollowerInfo {
                accepted_epoch: self.epochs.accepted,
                last_zxid: self.logged,
                observer: self.cfg.is_observer(),
            };
            self.ready.sends.push((leader, info));
        }
    }

    // ---- leader -------------------------------------------------------------------------------

    fn lead_mut(&mut self) -> &mut Leader {
        match &mut self.phase {
            Phase::Leading(l) => l,
            _ => unreachable!("leading"),
        }
    }

    fn leader_msg(&mut self, from: ServerId, msg: Msg) {
        let ticks = self.ticks;
        let now_ms = self.now.mono_ms;
        let Phase::Leading(l) = &mut self.phase else { return };
        if let Some(x) = l.learners.get_mut(&from) {
            x.last_heard = ticks;
            x.last_heard_ms = now_ms;
        }
        match msg {
            Msg::FollowerInfo { accepted_epoch, last_zxid: _, observer } => {
                self.max_seen_epoch = self.max_seen_epoch.max(accepted_epoch);
                let observer = observer || !self.cfg.voters.contains(&from);
                l.learners.insert(
                    from,
                    Learner { observer, stage: LearnerStage::Info, acked: 0, last_heard: ticks, last_heard_ms: now_ms },
                );
                if l.stage == LeadStage::Discovery {
                    if !observer {
                        l.infos.insert(from, accepted_epoch);
                    }
                    self.maybe_choose_epoch();
                } else if accepted_epoch > l.epoch {
                    // It accepted a newer epoch from a leader that never got established. It
                    // cannot follow mine: lead again (or let another lead) above its epoch, so
                    // that every server can rejoin. (Equal is fine: it accepted this epoch
                    // before, from me, as ZooKeeper's learners may.)
                    warn!("server {from} accepted epoch {accepted_epoch}, above mine ({}); electing again", l.epoch);
                    self.look("a follower accepted a newer epoch");
                    return;
                } else {
                    let epoch = l.epoch;
                    self.ready.sends.push((from, Msg::LeaderInfo { epoch }));
                }
            }
            Msg::AckEpoch { current_epoch, last_zxid, counted, log } => {
                if l.stage == LeadStage::Discovery || !l.learners.contains_key(&from) {
                    return;
                }
                if (current_epoch, last_zxid) > (self.epochs.current, self.logged) && l.stage == LeadStage::Sync {
                    // It has a more complete history than mine: I must not lead it.
                    self.look("a follower is ahead of me");
                    return;
                }
                if log.last() != last_zxid {
                    warn!("server {from}: its log summary does not end at its last zxid {last_zxid:#x}; ignoring it");
                    return;
                }
                if counted {
                    l.counted_acks.insert(from);
                }
                if l.stage == LeadStage::Broadcast || self.epochs.current == l.epoch {
                    self.sync_learner(from, &log);
                }
                let Phase::Leading(l) = &mut self.phase else { return };
                l.epoch_acks.insert(from, log);
                self.maybe_established();
            }
            Msg::AckNewLeader { zxid } => {
                let Some(x) = l.learners.get_mut(&from) else { return };
                if x.stage != LearnerStage::Syncing {
                    return;
                }
                x.stage = LearnerStage::Synced;
                x.acked = x.acked.max(zxid);
                if l.stage == LeadStage::Broadcast {
                    let commit = l.commit;
                    self.ready.sends.push((from, Msg::UpToDate { committed: commit }));
                    self.advance_commit();
                } else {
                    self.maybe_established();
                }
            }
            Msg::Ack { zxid } => {
                if let Some(x) = l.learners.get_mut(&from) {
                    if x.stage == LearnerStage::Synced {
                        x.acked = x.acked.max(zxid);
                    }
                }
                self.advance_commit();
            }
            Msg::Pong { touched } => {
                if l.stage == LeadStage::Broadcast {
                    self.m.touch_sessions(&touched, self.now);
                }
            }
            Msg::Forward(f) => {
                let serving = l.stage == LeadStage::Broadcast
                    && l.learners.get(&from).is_some_and(|x| x.stage == LearnerStage::Synced);
                if !serving {
                    return;
                }
                if let ForwardOp::Sync = f.op {
                    // Answered once everything prepared so far (this session's earlier writes
                    // included) is committed; the commit goes out on this link first.
                    let z = self.m.last_prepared_zxid();
                    // Counter 0: nothing prepared yet in this epoch, all history is committed.
                    let z = if counter_of(z) == 0 { l.commit } else { z };
                    if z <= l.commit {
                        self.ready.sends.push((from, Msg::SyncDone { session_id: f.session_id, cxid: f.cxid }));
                    } else {
                        l.syncs.push_back((z, from, f.session_id, f.cxid));
                    }
                } else {
                    self.m.forwarded(from, f, self.now);
                }
            }
            Msg::SessionOwner { session_id } => {
                if l.stage == LeadStage::Broadcast {
                    self.m.set_owner(session_id, from, self.now);
                }
            }
            other => warn!("leader: unexpected {} from {from}", msg_name(&other)),
        }
    }

    /// Discovery: once a quorum of voters reported their accepted epochs, pick the next one.
    fn maybe_choose_epoch(&mut self) {
        let Phase::Leading(l) = &mut self.phase else { return };
        if l.stage != LeadStage::Discovery || !self.cfg.is_quorum(l.infos.len()) {
            return;
        }
        let epoch = l.infos.values().copied().max().unwrap_or(0).max(self.epochs.accepted).max(self.max_seen_epoch) + 1;
        l.epoch = epoch;
        l.stage = LeadStage::Sync;
        self.epoch_acked_to = Some((epoch, self.cfg.myid));
        self.epochs.accepted = epoch;
        self.ready.epochs = Some(self.epochs);
        info!("LEADING: new epoch {epoch} agreed with {:?}", {
            let mut v: Vec<_> = l.infos.keys().copied().collect();
            v.sort();
            v
        });
        let ids: Vec<ServerId> = l.learners.keys().copied().collect();
        for id in ids {
            self.ready.sends.push((id, Msg::LeaderInfo { epoch }));
        }
    }

    /// Sends a learner what it needs to match my history, then NewLeader.
    fn sync_learner(&mut self, to: ServerId, theirs: &LogSummary) {
        let their_zxid = theirs.last();
        let (kind, trunc) = self.plan_sync(theirs);
        let l = self.lead_mut();
        let epoch = l.epoch;
        let Some(x) = l.learners.get_mut(&to) else {
            return;
        };
        x.stage = LearnerStage::Syncing;
        x.acked = 0;
        let name = match kind {
            SyncKind::Diff => "DIFF",
            SyncKind::Trunc => "TRUNC",
            SyncKind::Snap => "SNAP",
        };
        info!("sync with follower {to}: {name} (its last zxid {their_zxid:#x}, mine {:#x})", self.logged);
        self.last_sync.insert(to, kind);
        let from = match kind {
            SyncKind::Diff => their_zxid,
            SyncKind::Trunc => {
                self.ready.sends.push((to, Msg::Trunc { zxid: trunc }));
                trunc
            }
            SyncKind::Snap => {
                let image = self.snapshot_image();
                self.ready.sends.push((to, Msg::Snap { zxid: self.applied, image }));
                self.applied
            }
        };
        let start = self.history.partition_point(|t| t.hdr.zxid <= from);
        let txns: Vec<Txn> = self.history.iter().skip(start).cloned().collect();
        for chunk in txns.chunks(1000) {
            self.ready.sends.push((to, Msg::Txns(chunk.to_vec())));
        }
        self.ready.sends.push((to, Msg::NewLeader { epoch, zxid: self.logged }));
    }

    /// Plans a learner's sync from what its log holds: the newest record both logs share is
    /// found first (see [`LogSummary`]); DIFF when it is their last, TRUNC to it when they
    /// hold records after it that my history lacks, SNAP of my applied state when it lies
    /// before my history (then it is also before `applied`, so the snapshot holds it).
    ///
    /// Only records after the shared one are ever removed from a learner's log, and those are
    /// not in my history, so not committed: a learner that crashes part-way through a sync
    /// keeps every committed record it held (see `shared_with`).
    fn plan_sync(&self, theirs: &LogSummary) -> (SyncKind, Zxid) {
        match self.shared_with(theirs) {
            Some(z) if z == theirs.last() => (SyncKind::Diff, z),
            Some(z) => (SyncKind::Trunc, z),
            None => {
                assert!(
                    self.applied >= self.history_base,
                    "server {}: invariant broken: applied {:#x} before the history base {:#x}",
                    self.cfg.myid,
                    self.applied,
                    self.history_base
                );
                (SyncKind::Snap, self.applied)
            }
        }
    }

    /// The newest record that both my log and theirs hold, if my history (from
    /// `history_base`) reaches back to it; None when it lies before my history.
    ///
    /// Their base is applied, so committed, so in my history if at or after my base. Where
    /// both logs hold records of an epoch, they agree up to the lower of the two last records
    /// of that epoch: each holds a prefix of that epoch leader's proposals after the same
    /// initial history (zxids are unique to one proposal).
    fn shared_with(&self, theirs: &LogSummary) -> Option<Zxid> {
        let mine = |z: Zxid| z == self.history_base || self.history.binary_search_by_key(&z, |t| t.hdr.zxid).is_ok();
        let mut best = (theirs.base >= self.history_base && theirs.base <= self.logged && mine(theirs.base))
            .then_some(theirs.base);
        for &end in &theirs.epoch_ends {
            let e = epoch_of(end);
            let my_last = self
                .history
                .iter()
                .rev()
                .map(|t| t.hdr.zxid)
                .find(|z| epoch_of(*z) <= e)
                .filter(|z| epoch_of(*z) == e)
                .or_else(|| (epoch_of(self.history_base) == e).then_some(self.history_base));
            let Some(my_last) = my_last else { continue };
            let z = end.min(my_last);
            if z >= self.history_base && mine(z) && best.is_none_or(|b| z > b) {
                best = Some(z);
            }
        }
        best
    }

    fn snapshot_image(&self) -> Vec<u8> {
        crate::snap::encode_tree(self.m.tree(), &self.m.session_records(), self.applied)
    }

    /// Sync: the epoch becomes current once a quorum acknowledged it; the history is committed
    /// once a quorum acknowledged NewLeader (my own durable log counts for me).
    fn maybe_established(&mut self) {
        let logged = self.logged;
        let durable = self.durable;
        let Phase::Leading(l) = &mut self.phase else { return };
        if l.stage != LeadStage::Sync {
            return;
        }
        if self.epochs.current != l.epoch {
            let voters = l.counted_acks.iter().filter(|id| self.cfg.voters.contains(id)).count();
            // My own history must be durable before its epoch becomes current (see the
            // follower's NewLeader).
            if !self.cfg.is_quorum(voters + 1) || durable < logged {
                return;
            }
            self.epochs.current = l.epoch;
            self.ready.epochs = Some(self.epochs);
            self.inv.epoch_led_by(self.cfg.myid, l.epoch, self.cfg.myid);
            l.newleader_zxid = logged;
            let waiting: Vec<(ServerId, LogSummary)> = l.epoch_acks.iter().map(|(a, b)| (*a, b.clone())).collect();
            for (id, log) in waiting {
                self.sync_learner(id, &log);
            }
            let Phase::Leading(l) = &mut self.phase else { unreachable!() };
            let _ = l;
        }
        let Phase::Leading(l) = &mut self.phase else { return };
        let synced = l.synced_voters().count();
        let me = usize::from(durable >= l.newleader_zxid);
        if !self.cfg.is_quorum(synced + me) {
            return;
        }
        l.stage = LeadStage::Broadcast;
        l.commit = l.newleader_zxid;
        let epoch = l.epoch;
        let commit = l.commit;
        let synced_ids: Vec<ServerId> =
            l.learners.iter().filter(|(_, x)| x.stage == LearnerStage::Synced).map(|(id, _)| *id).collect();
        self.apply_history(commit);
        self.m.start_leading(make_zxid(epoch, 1), self.now);
        info!("LEADING: epoch {epoch} established at zxid {commit:#x} with followers {synced_ids:?}; serving");
        for id in synced_ids {
            self.ready.sends.push((id, Msg::UpToDate { committed: commit }));
        }
        self.advance_commit();
    }

    fn has_quorum(&self) -> bool {
        let Phase::Leading(l) = &self.phase else { return false };
        self.cfg.is_quorum(l.synced_voters().count() + 1)
    }

    /// Commits the highest zxid a quorum (my durable log included) has acknowledged.
    fn advance_commit(&mut self) {
        let durable = self.durable;
        let logged = self.logged;
        let Phase::Leading(l) = &mut self.phase else { return };
        if l.stage != LeadStage::Broadcast {
            return;
        }
        let mut acked: Vec<Zxid> = l.synced_voters().map(|x| x.acked).collect();
        acked.push(durable);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let need = self.cfg.majority();
        // PLANTED BUG ack-before-quorum (engine/src/planted.rs): one durable copy (mine, or
        // the furthest follower's) is taken for a quorum, so a write is applied and
        // acknowledged before a majority has it.
        #[cfg(feature = "planted-bugs")]
        let need = if crate::planted::active(crate::planted::Bug::AckBeforeQuorum) { 1 } else { need };
        if acked.len() < need {
            return;
        }
        let z = acked[need - 1].min(logged);
        if z <= l.commit {
            return;
        }
        let old = l.commit;
        l.commit = z;
        let mut voters = Vec::new();
        let mut observers = Vec::new();
        for (id, x) in &l.learners {
            if x.stage != LearnerStage::Info {
                if x.observer {
                    observers.push(*id);
                } else {
                    voters.push(*id);
                }
            }
        }
        // Commits go out cut at every sync waiting in this range: a follower answers a sync
        // when its SyncDone arrives, and must not apply the writes prepared after the sync
        // (which it answers in order behind the sync) before that.
        let mut cuts: Vec<(Zxid, Option<(ServerId, Msg)>)> = Vec::new();
        while l.syncs.front().is_some_and(|s| s.0 <= z) {
            let (at, to, session_id, cxid) = l.syncs.pop_front().expect("checked");
            cuts.push((at.max(old), Some((to, Msg::SyncDone { session_id, cxid }))));
        }
        cuts.push((z, None));
        let start = self.history.partition_point(|t| t.hdr.zxid <= old);
        let committed: Vec<Txn> = if observers.is_empty() {
            Vec::new()
        } else {
            self.history.iter().skip(start).take_while(|t| t.hdr.zxid <= z).cloned().collect()
        };
        let mut sent = old;
        let mut informed = 0;
        for (at, done) in cuts {
            if at > sent {
                for &id in &voters {
                    self.ready.sends.push((id, Msg::Commit { zxid: at }));
                }
                while informed < committed.len() && committed[informed].hdr.zxid <= at {
                    for &id in &observers {
                        self.ready.sends.push((id, Msg::Inform(committed[informed].clone())));
                    }
                    informed += 1;
                }
                sent = at;
            }
            if let Some(d) = done {
                self.ready.sends.push(d);
            }
        }
        self.m.durable(z, self.now);
        self.applied = z;
        self.trim_history();
    }

    /// Moves what the machine prepared into the log and out to the followers.
    fn propose(&mut self) {
        let appends = std::mem::take(&mut self.pending_appends);
        if appends.is_empty() && !matches!(&self.phase, Phase::Leading(l) if !l.held.is_empty()) {
            return;
        }
        let max = self.cfg.max_inflight;
        let Phase::Leading(l) = &mut self.phase else {
            return;
        };
        l.held.extend(appends);
        let mut out = Vec::new();
        while let Some(t) = l.held.front() {
            let inflight = (t.hdr.zxid - l.commit).max(0) as usize;
            if inflight > max && epoch_of(t.hdr.zxid) == epoch_of(l.commit) {
                break;
            }
            out.push(l.held.pop_front().expect("checked"));
        }
        let targets: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, x)| !x.observer && x.stage != LearnerStage::Info)
            .map(|(id, _)| *id)
            .collect();
        for t in out {
            for &id in &targets {
                self.ready.sends.push((id, Msg::Proposal(t.clone())));
            }
            self.logged = t.hdr.zxid;
            self.history.push_back(t.clone());
            self.ready.appends.push(t);
        }
    }

    // ---- follower -----------------------------------------------------------------------------

    fn follower_msg(&mut self, msg: Msg) {
        let ticks = self.ticks;
        let Phase::Following(f) = &mut self.phase else { return };
        f.last_heard = ticks;
        f.last_heard_ms = self.now.mono_ms;
        match msg {
            Msg::LeaderInfo { epoch } => {
                if f.stage != FollowStage::Discovery {
                    return;
                }
                if epoch < self.epochs.accepted {
                    self.look("the leader's epoch is older than one I accepted");
                    return;
                }
                // One leader per epoch gets my acknowledgement: an epoch I accepted before
                // counts only for the leader I accepted it from (this run; after a restart I
                // cannot tell, so it does not count), or two leaders could both establish it.
                let counted = epoch > self.epochs.accepted || self.epoch_acked_to == Some((epoch, f.leader));
                if epoch > self.epochs.accepted {
                    self.epochs.accepted = epoch;
                    self.ready.epochs = Some(self.epochs);
                }
                if counted {
                    self.epoch_acked_to = Some((epoch, f.leader));
                }
                f.epoch = epoch;
                f.stage = FollowStage::Sync;
                let ack = Msg::AckEpoch {
                    current_epoch: self.epochs.current,
                    last_zxid: self.logged,
                    counted,
                    log: log_summary(self.history_base, &self.history),
                };
                self.ready.sends.push((f.leader, ack));
            }
            Msg::Trunc { zxid } => {
                if f.stage != FollowStage::Sync {
                    return;
                }
                if zxid < self.applied {
                    warn!("leader asked to truncate to {zxid:#x}, below my applied {:#x}", self.applied);
                    self.look("impossible truncation");
                    return;
                }
                info!("TRUNC: dropping log records after {zxid:#x} (last was {:#x})", self.logged);
                while self.history.back().is_some_and(|t| t.hdr.zxid > zxid) {
                    self.history.pop_back();
                }
                self.ready.appends.retain(|t| t.hdr.zxid <= zxid);
                self.logged = zxid;
                self.durable = self.durable.min(zxid);
                self.ready.truncate = Some(self.ready.truncate.map_or(zxid, |z: Zxid| z.min(zxid)));
            }
            Msg::Snap { zxid, image } => {
                if f.stage != FollowStage::Sync {
                    return;
                }
                match decode_image(&image) {
                    Ok((tree, sessions)) => {
                        info!("SNAP: installing the leader's snapshot at {zxid:#x} ({} bytes)", image.len());
                        self.m.reset_state(tree, &sessions, self.now);
                        self.history.clear();
                        self.history_base = zxid;
                        self.logged = zxid;
                        // Not durable before the shell says the snapshot is written
                        // (`rewound`): an AckNewLeader sent on it would promise a history
                        // that a crash before the write loses.
                        self.durable = self.durable.min(zxid);
                        self.applied = zxid;
                        self.ready.appends.clear();
                        self.ready.truncate = None;
                        self.ready.snapshot = Some((zxid, image));
                    }
                    Err(e) => {
                        warn!("the leader's snapshot is invalid: {e}");
                        self.look("invalid snapshot from the leader");
                    }
                }
            }
            Msg::Txns(txns) => {
                if f.stage != FollowStage::Sync {
                    return;
                }
                for t in txns {
                    self.append(t);
                }
            }
            Msg::NewLeader { epoch, zxid } => {
                if f.stage != FollowStage::Sync || epoch != f.epoch {
                    return;
                }
                if zxid != self.logged {
                    warn!("NewLeader at {zxid:#x} but my log ends at {:#x}", self.logged);
                    self.look("log does not match the leader's after sync");
                    return;
                }
                // The epoch becomes current only once the log holding the leader's history is
                // durable (maybe_ack_newleader): a current epoch over a log that lost its tail
                // in a crash would win elections it must lose.
                f.stage = FollowStage::NewLeader;
                f.newleader = Some(zxid);
                self.maybe_ack_newleader();
            }
            Msg::UpToDate { committed } => {
                if f.stage != FollowStage::NewLeader || !f.acked_newleader {
                    return;
                }
                f.stage = FollowStage::Serving;
                f.commit = f.commit.max(committed);
                let commit = f.commit;
                let leader = f.leader;
                self.apply_history(commit);
                self.m.start_following();
                info!("synced with leader {leader} at zxid {commit:#x}; serving");
            }
            Msg::Proposal(t) => {
                // Proposals follow NewLeader on the same link; they are acknowledged once
                // NewLeader is. Earlier, it is a stale message of a previous epoch.
                if matches!(f.stage, FollowStage::NewLeader | FollowStage::Serving) {
                    self.append(t);
                }
            }
            Msg::Commit { zxid } if !matches!(f.stage, FollowStage::NewLeader | FollowStage::Serving) => {
                let _ = zxid;
            }
            Msg::Inform(_) if !matches!(f.stage, FollowStage::NewLeader | FollowStage::Serving) => {}
            Msg::Commit { zxid } => {
                f.commit = f.commit.max(zxid);
                if f.stage == FollowStage::Serving {
                    let c = f.commit;
                    self.apply_history(c);
                }
            }
            Msg::Inform(t) => {
                let z = t.hdr.zxid;
                f.commit = f.commit.max(z);
                let (serving, c) = (f.stage == FollowStage::Serving, f.commit);
                self.append(t);
                if serving {
                    self.apply_history(c);
                }
            }
            Msg::Ping => {
                let touched = self.m.take_touched();
                let leader = f.leader;
                self.ready.sends.push((leader, Msg::Pong { touched }));
            }
            Msg::SyncDone { session_id, cxid } => {
                if f.stage == FollowStage::Serving {
                    self.m.sync_done(session_id, cxid, self.now);
                }
            }
            other => warn!("follower: unexpected {}", msg_name(&other)),
        }
    }

    fn maybe_ack_newleader(&mut self) {
        let durable = self.durable;
        let Phase::Following(f) = &mut self.phase else { return };
        if let Some(z) = f.newleader {
            if durable >= z && !f.acked_newleader {
                // Persisted before the acknowledgement leaves (the shell writes epochs first).
                self.epochs.current = f.epoch;
                self.epochs.accepted = self.epochs.accepted.max(f.epoch);
                self.ready.epochs = Some(self.epochs);
                f.acked_newleader = true;
                f.last_acked = z;
                self.inv.epoch_led_by(self.cfg.myid, f.epoch, f.leader);
                self.ready.sends.push((f.leader, Msg::AckNewLeader { zxid: z }));
                if durable > z && !self.cfg.is_observer() {
                    f.last_acked = durable;
                    self.ready.sends.push((f.leader, Msg::Ack { zxid: durable }));
                }
            }
        }
    }

    // ---- invariants -----------------------------------------------------------------------------

    /// The safety invariants of this server's view, checked after every input (from
    /// [`Node::take_ready`], which the server and the simulator call after each): a failure is
    /// a bug in the protocol or its shell, and stops the server with the reason rather than
    /// let it serve or acknowledge from a state it cannot be in. The simulator runs the same
    /// checks, so a schedule that breaks one is a failing seed.
    ///
    /// - nothing is durable or applied that is not logged: `durable <= logged`, `applied <= logged`
    ///   (a follower may apply a committed record before its own fsync: a quorum has it durable);
    /// - the DIFF window starts at an applied record: `history_base <= applied`;
    /// - the commit point of a leadership or a following never moves back, and a leader has
    ///   applied nothing past it and committed nothing it has not logged;
    /// - the accepted epoch is never below the current one;
    /// - one leader per epoch (checked where an epoch becomes current: [`Invariants::epoch_led_by`]).
    fn check_invariants(&mut self) {
        let id = self.cfg.myid;
        assert!(
            self.durable <= self.logged && self.applied <= self.logged,
            "server {id}: invariant broken: durable {:#x} and applied {:#x} must not pass logged {:#x}",
            self.durable,
            self.applied,
            self.logged
        );
        assert!(
            self.history_base <= self.applied,
            "server {id}: invariant broken: the DIFF window starts at {:#x}, past applied {:#x}",
            self.history_base,
            self.applied
        );
        assert!(
            self.epochs.current <= self.epochs.accepted,
            "server {id}: invariant broken: current epoch {} above accepted epoch {}",
            self.epochs.current,
            self.epochs.accepted
        );
        let commit = match &self.phase {
            Phase::Leading(l) => {
                assert!(
                    self.applied <= l.commit && l.commit <= self.logged,
                    "server {id}: invariant broken: leader applied {:#x}, committed {:#x}, logged {:#x}",
                    self.applied,
                    l.commit,
                    self.logged
                );
                l.commit
            }
            Phase::Following(f) => f.commit,
            Phase::Looking(_) => return,
        };
        assert!(
            commit >= self.inv.commit,
            "server {id}: invariant broken: the commit point moved back from {:#x} to {commit:#x}",
            self.inv.commit
        );
        self.inv.commit = commit;
    }

    // ---- shared -------------------------------------------------------------------------------

    fn append(&mut self, t: Txn) {
        if t.hdr.zxid <= self.logged {
            return;
        }
        self.logged = t.hdr.zxid;
        self.history.push_back(t.clone());
        self.ready.appends.push(t);
    }

    /// Applies history records up to `commit` (never past what is logged).
    fn apply_history(&mut self, commit: Zxid) {
        let start = self.history.partition_point(|t| t.hdr.zxid <= self.applied);
        let end = self.history.partition_point(|t| t.hdr.zxid <= commit);
        for i in start..end {
            let t = self.history[i].clone();
            self.m.apply_committed(&t, self.now);
            self.applied = t.hdr.zxid;
        }
        self.trim_history();
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.cfg.diff_window
            && self.history.front().is_some_and(|t| t.hdr.zxid <= self.applied)
        {
            let t = self.history.pop_front().expect("checked");
            self.history_base = t.hdr.zxid;
        }
    }

    /// Routes what the machine produced: proposals (leader), forwards (follower), client frames.
    fn pump(&mut self) {
        let r = self.m.take_ready();
        self.ready.client_sends.extend(r.sends);
        self.ready.closes.extend(r.closes);
        self.pending_appends.extend(r.appends);
        if let Phase::Following(f) = &self.phase {
            let leader = f.leader;
            for fw in r.forwards {
                self.ready.sends.push((leader, Msg::Forward(fw)));
            }
            for s in r.owner_claims {
                self.ready.sends.push((leader, Msg::SessionOwner { session_id: s }));
            }
        }
        if matches!(self.phase, Phase::Leading(_)) {
            self.propose();
        } else {
            self.pending_appends.clear();
        }
    }
}

/// What a log holds (records after `base`), for a leader's sync plan (see [`LogSummary`]).
fn log_summary(base: Zxid, history: &VecDeque<Txn>) -> LogSummary {
    let mut epoch_ends: Vec<Zxid> = Vec::new();
    for t in history {
        let z = t.hdr.zxid;
        match epoch_ends.last_mut() {
            Some(last) if epoch_of(*last) == epoch_of(z) => *last = z,
            _ => epoch_ends.push(z),
        }
    }
    LogSummary { base, epoch_ends }
}

/// Leader: drops the learners that `silent` picks (quiet for longer than `limit`), asking the
/// shell to reset their links.
fn drop_silent(l: &mut Leader, resets: &mut Vec<ServerId>, limit: &str, silent: impl Fn(&Learner) -> bool) {
    let ids: Vec<ServerId> = l.learners.iter().filter(|(_, x)| silent(x)).map(|(id, _)| *id).collect();
    for id in ids {
        info!("follower {id} silent for more than {limit}; dropping it");
        l.learners.remove(&id);
        l.epoch_acks.remove(&id);
        l.counted_acks.remove(&id);
        resets.push(id);
    }
}

fn decode_image(image: &[u8]) -> Result<(DataTree, Vec<crate::snap::SessionRecord>), String> {
    let s = crate::snap::decode(&crate::snap::aligned_copy(image)).map_err(|e| e.to_string())?;
    Ok((s.tree, s.sessions))
}

fn msg_name(m: &Msg) -> &'static str {
    match m {
        Msg::Vote(_) => "Vote",
        Msg::FollowerInfo { .. } => "FollowerInfo",
        Msg::LeaderInfo { .. } => "LeaderInfo",
        Msg::AckEpoch { .. } => "AckEpoch",
        Msg::Trunc { .. } => "Trunc",
        Msg::Snap { .. } => "Snap",
        Msg::Txns(_) => "Txns",
        Msg::NewLeader { .. } => "NewLeader",
        Msg::AckNewLeader { .. } => "AckNewLeader",
        Msg::UpToDate { .. } => "UpToDate",
        Msg::Proposal(_) => "Proposal",
        Msg::Ack { .. } => "Ack",
        Msg::Commit { .. } => "Commit",
        Msg::Inform(_) => "Inform",
        Msg::Ping => "Ping",
        Msg::Pong { .. } => "Pong",
        Msg::Forward(_) => "Forward",
        Msg::SyncDone { .. } => "SyncDone",
        Msg::SessionOwner { .. } => "SessionOwner",
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
