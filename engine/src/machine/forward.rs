//! Client requests a follower's machine hands to the leader's ([`Forward`]): what the machine
//! produces in `Ready::forwards` and consumes in `Machine::forwarded`. Plain data, no I/O; the
//! quorum layer carries them (`quorum::Msg::Forward`, byte format in `quorum::codec`).

use crate::acl::Id;

/// A client request a follower hands to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub session_id: i64,
    pub cxid: i32,
    pub op: ForwardOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOp {
    /// A new session (its id chosen by the follower: myid in the high byte, like ZooKeeper).
    CreateSession {
        timeout_ms: i32,
        /// Chosen by the follower from its OS random source; the leader puts it in the txn.
        passwd: crate::session::Passwd,
    },
    CloseSession,
    /// A write request as the client framed it (header and body, without the length), with
    /// the identities its connection has authenticated as, for the leader's ACL checks.
    Write {
        frame: Vec<u8>,
        auth: Vec<Id>,
    },
    /// `sync`: the leader answers with `SyncDone` once everything it proposed before has
    /// been committed (and, on the same link, sent as commits).
    Sync,
}
