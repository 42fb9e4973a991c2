//! A member of an ensemble: the machine (tree, sessions, watches, clients) plus the protocol.
//!
//! IMPLEMENTATION IN PROGRESS: the API below is fixed; bodies are being written.

use std::net::IpAddr;

use super::{Epochs, Msg, PeerState, QuorumConfig, ServerId, Zxid};
use crate::machine::{ConnId, MachineConfig, Now};
use crate::proto::{ConnectRequest, Request, RequestHeader};
use crate::tree::DataTree;
use crate::txn::Txn;

/// What a server starts from: its persisted epochs, the tree and sessions of its newest
/// snapshot (or an empty tree), and every durable log record after that snapshot, in zxid
/// order. Log records are not applied yet: only committed transactions reach the tree, and
/// whether these were committed is learnt from the leader during synchronization.
pub struct NodeInit {
    pub epochs: Epochs,
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub log: Vec<Txn>,
}

/// What the shell must do, in this order: persist `epochs` durably; truncate the log after
/// `truncate`; install `snapshot` (write it durably, then discard every log segment); append
/// `appends` (and report `Node::synced` once they are durable); send `sends` to peers and
/// `client_sends` to connections; close `closes`. Peer messages may leave at once: a message
/// that depends on durability (an ACK) is only emitted after `synced`.
#[derive(Debug, Default)]
pub struct NodeReady {
    pub epochs: Option<Epochs>,
    pub truncate: Option<Zxid>,
    pub snapshot: Option<(Zxid, Vec<u8>)>,
    pub appends: Vec<Txn>,
    pub sends: Vec<(ServerId, Msg)>,
    pub client_sends: Vec<(ConnId, Vec<u8>)>,
    pub closes: Vec<ConnId>,
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
    }
}

pub struct Node {
    _private: (),
}

impl Node {
    /// `seed` feeds the only randomness the protocol uses (none yet besides session ids).
    pub fn new(mcfg: MachineConfig, qcfg: QuorumConfig, init: NodeInit, now: Now) -> Node {
        let _ = (mcfg, qcfg, init, now);
        todo!("quorum node")
    }

    pub fn take_ready(&mut self) -> NodeReady {
        todo!()
    }

    // ---- clients (as Machine) ----
    pub fn open(&mut self, conn: ConnId, ip: IpAddr, now: Now) -> bool {
        let _ = (conn, ip, now);
        todo!()
    }
    pub fn connect(&mut self, conn: ConnId, req: ConnectRequest, now: Now) {
        let _ = (conn, req, now);
        todo!()
    }
    pub fn request(&mut self, conn: ConnId, hdr: RequestHeader, req: Request, now: Now) {
        let _ = (conn, hdr, req, now);
        todo!()
    }
    pub fn disconnected(&mut self, conn: ConnId) {
        let _ = conn;
        todo!()
    }

    // ---- peers, disk, time ----
    pub fn peer_message(&mut self, from: ServerId, msg: Msg, now: Now) {
        let _ = (from, msg, now);
        todo!()
    }
    /// The link to `peer` broke (or could not be made): a follower whose leader this is starts
    /// an election at once; an election stops waiting for this peer's vote.
    pub fn peer_down(&mut self, peer: ServerId, now: Now) {
        let _ = (peer, now);
        todo!()
    }
    /// A link to `peer` is up again.
    pub fn peer_up(&mut self, peer: ServerId, now: Now) {
        let _ = (peer, now);
        todo!()
    }
    /// Called every tickTime.
    pub fn tick(&mut self, now: Now) {
        let _ = now;
        todo!()
    }
    /// The local log has made every appended record up to `zxid` durable.
    pub fn synced(&mut self, zxid: Zxid, now: Now) {
        let _ = (zxid, now);
        todo!()
    }

    // ---- observation ----
    pub fn state(&self) -> PeerState {
        todo!()
    }
    /// The leader this server follows or is, once known.
    pub fn leader(&self) -> Option<ServerId> {
        todo!()
    }
    pub fn epochs(&self) -> Epochs {
        todo!()
    }
    /// Last zxid appended to the local log (durable or not).
    pub fn last_logged(&self) -> Zxid {
        todo!()
    }
    /// Last zxid applied to the tree (committed).
    pub fn last_applied(&self) -> Zxid {
        todo!()
    }
    /// True once synchronized with a leader (or leading a synced quorum): clients are served.
    pub fn serving(&self) -> bool {
        todo!()
    }
    pub fn machine(&self) -> &crate::machine::Machine {
        todo!()
    }
}
