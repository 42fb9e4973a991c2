//! The quorum protocol: leader election, discovery, synchronization and broadcast, shaped
//! after Zab. Pure, no I/O (no clock, socket, file or global RNG): messages, ticks and "the log
//! is durable up to zxid" go in, a [`NodeReady`] (epochs to persist, log truncation, snapshot
//! to install, records to append, peer messages, client frames) comes out.
//!
//! [`Node`] wraps the standalone [`crate::machine::Machine`] (tree, sessions, watches,
//! clients) with the protocol. The message formats are documented in [`codec`].
//!
//! Phases, as in Zab:
//! 1. **Election** (`election`): votes ordered by (epoch, last zxid, myid), rounds, and an
//!    early end once a quorum agrees and every voter that could still send a better vote has
//!    either voted or is known to be down.
//! 2. **Discovery**: followers send `FollowerInfo{accepted_epoch, last_zxid}`; the leader
//!    picks `max(accepted)+1` once a quorum answered, persists it as its accepted epoch and
//!    sends `LeaderInfo`; followers persist it and answer `AckEpoch`. A follower acknowledges
//!    an epoch for one leader only: to a leader offering the epoch it already accepted from
//!    another (or before a restart) it answers with an `AckEpoch` that does not count towards
//!    establishing the epoch but still gets it synced, as ZooKeeper's learners do (their -1);
//!    otherwise two leaders could each count it and both establish the same epoch.
//! 3. **Synchronization**: per follower, from the newest record both logs share (found from
//!    the `LogSummary` in its `AckEpoch`): DIFF (txns it lacks), TRUNC (it has txns after the
//!    shared one that the leader never had, then DIFF) or SNAP (a whole snapshot, when the
//!    shared record lies before the leader's in-memory window), then `NewLeader`. Only records
//!    the leader's history lacks are ever removed from a follower's log. A follower
//!    acknowledges `NewLeader` only after its log is durable and its current epoch persisted.
//!    On a quorum of those acknowledgements the leader's whole history is committed.
//! 4. **Broadcast**: pipelined `Proposal`s, `Ack` after the follower's fsync, `Commit` on a
//!    quorum (the leader's own fsync counts as its ack), applied in zxid order everywhere;
//!    observers get `Inform` (proposal and commit in one).

pub mod codec;
pub mod election;
pub mod node;

pub use crate::machine::forward::{Forward, ForwardOp};
pub use crate::txn::{counter_of, epoch_of, make_zxid, Zxid};
pub use node::{DiskStep, Node, NodeInit, NodeReady};

use crate::txn::Txn;

/// A member's `myid`.
pub type ServerId = u64;

/// The protocol's part of the configuration; times are in ticks.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub myid: ServerId,
    /// Participants (they vote), sorted, including `myid` unless it is an observer.
    pub voters: Vec<ServerId>,
    pub observers: Vec<ServerId>,
    /// Ticks a follower may take to connect and sync to a new leader (`initLimit`).
    pub init_limit: u32,
    /// Ticks of silence after which leader and follower give up on each other (`syncLimit`).
    pub sync_limit: u32,
    /// `warren.peerTimeoutMs`: a shorter silence limit, in milliseconds, for a serving follower
    /// and its broadcasting leader (0: `sync_limit` alone, as in ZooKeeper). Checked by
    /// [`Node::sweep`]; safety does not depend on it (a deposed leader cannot commit), only
    /// how soon the majority side elects a new leader after a pause or a partition.
    pub peer_timeout_ms: i64,
    /// Proposals in flight at most; further writes wait in the machine.
    pub max_inflight: usize,
    /// How many recent transactions the leader keeps in memory to bring a follower up with a
    /// DIFF; a follower further behind gets a SNAP.
    pub diff_window: usize,
}

impl QuorumConfig {
    pub fn is_observer(&self) -> bool {
        !self.voters.contains(&self.myid)
    }

    /// How many voters make a majority: the one place the quorum size is computed.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// True when `count` voters make a majority.
    pub fn is_quorum(&self, count: usize) -> bool {
        count >= self.majority()
    }

    /// Every member except myself.
    pub fn peers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().chain(self.observers.iter()).copied().filter(move |&id| id != self.myid)
    }
}

/// Epochs persisted in dataDir (ZooKeeper's `acceptedEpoch` and `currentEpoch` files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epochs {
    /// The newest epoch this server agreed to in discovery.
    pub accepted: u32,
    /// The epoch of the leader whose history this server has taken on (after NewLeader).
    pub current: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// An election vote: whom the sender proposes as leader and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    /// Last zxid of the proposed leader's log.
    pub zxid: Zxid,
    /// Current epoch of the proposed leader.
    pub epoch: u32,
    /// The sender's election round (ZooKeeper's logical clock).
    pub round: u64,
    /// The sender's state: a follower or leader answers a looking server with the vote it
    /// followed, so a restarted server finds an established leader.
    pub state: PeerState,
}

impl Vote {
    /// The order votes are compared in: (epoch, zxid, myid).
    pub fn key(&self) -> (u32, Zxid, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }
}

/// What a learner's log holds, as its `AckEpoch` reports it. With it the leader finds the
/// newest record both logs share and brings the learner to its history by removing only what
/// follows that record: a sync never removes a durable record the leader's history also holds,
/// so a crash in the middle of a sync cannot lose a committed write that this learner held
/// (the leader's history holds every committed write).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSummary {
    /// Everything up to here is applied (so committed): the learner's snapshot or the start of
    /// the records it keeps in memory.
    pub base: Zxid,
    /// The last zxid of each epoch with records after `base`, ascending: two logs that both
    /// hold records of an epoch agree up to the lower of their last records of it (each holds
    /// a prefix of what that epoch's leader proposed, after the same history).
    pub epoch_ends: Vec<Zxid>,
}

impl LogSummary {
    /// The last zxid of the log: its last epoch end, or the base when nothing follows it.
    pub fn last(&self) -> Zxid {
        self.epoch_ends.last().copied().unwrap_or(self.base)
    }
}

/// A message between servers. Byte formats: [`codec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // -- election --
    Vote(Vote),
    // -- discovery (learner → leader, leader → learner) --
    FollowerInfo {
        accepted_epoch: u32,
        last_zxid: Zxid,
        observer: bool,
    },
    LeaderInfo {
        epoch: u32,
    },
    AckEpoch {
        current_epoch: u32,
        last_zxid: Zxid,
        /// False when this follower already acknowledged the epoch for another leader (or
        /// cannot tell, after a restart): the leader syncs it but does not count it.
        counted: bool,
        /// What the follower's log holds, so that the leader finds the newest record both
        /// logs share (see [`LogSummary`]).
        log: LogSummary,
    },
    // -- synchronization (leader → learner) --
    /// Drop every log record after `zxid`, then append what follows.
    Trunc {
        zxid: Zxid,
    },
    /// Replace all state with this snapshot image (the `snap` format) taken at `zxid`.
    Snap {
        zxid: Zxid,
        image: Vec<u8>,
    },
    /// Transactions of the leader's history to append (DIFF, or the tail after TRUNC/SNAP).
    Txns(Vec<Txn>),
    /// The end of synchronization: the learner's log now equals the leader's history up to
    /// `zxid`; it persists `epoch` as current and answers `AckNewLeader` once durable.
    NewLeader {
        epoch: u32,
        zxid: Zxid,
    },
    AckNewLeader {
        zxid: Zxid,
    },
    /// Everything up to `committed` is committed: apply it and start serving clients.
    UpToDate {
        committed: Zxid,
    },
    // -- broadcast --
    Proposal(Txn),
    Ack {
        zxid: Zxid,
    },
    Commit {
        zxid: Zxid,
    },
    /// A committed transaction for an observer.
    Inform(Txn),
    /// Leader → learner every half tick (from `tick` and `sweep`); the learner answers with `Pong`.
    Ping,
    /// Learner → leader: sessions its clients were active on since the last `Pong`.
    Pong {
        touched: Vec<i64>,
    },
    // -- client requests through a follower --
    Forward(Forward),
    SyncDone {
        session_id: i64,
        cxid: i32,
    },
    /// A session connected to the sender: the leader records the sender as the session's
    /// owner, so requests arriving from elsewhere get SessionMoved.
    SessionOwner {
        session_id: i64,
    },
}
