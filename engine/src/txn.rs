//! Transactions and their ids (zxids): what `prep` produces, the log makes durable, and the tree
//! applies. Plain data, no I/O.
//!
//! A Txn is idempotent-enough to replay: it carries the outcome decided at prep time (the new
//! version, the parent's new cversion, the final sequential path), never a conditional.

use crate::acl::Acl;
use crate::proto::{CreateKind, ErrorCode};

/// A transaction id: the leader's epoch in the high 32 bits, a counter within it below.
pub type Zxid = i64;

pub fn epoch_of(zxid: Zxid) -> u32 {
    (zxid >> 32) as u32
}

pub fn counter_of(zxid: Zxid) -> u32 {
    zxid as u32
}

pub fn make_zxid(epoch: u32, counter: u32) -> Zxid {
    ((epoch as i64) << 32) | counter as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    /// Wall-clock milliseconds chosen by the leader at prep time (ctime/mtime come from it).
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: i32,
        /// Random, chosen by the server the client connected to (see `session::Passwd`).
        passwd: crate::session::Passwd,
    },
    CloseSession,
    Create {
        kind: CreateKind,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    /// Removal of an empty container or expired TTL node (op deleteContainer).
    DeleteContainer {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// A multi's check op: validated at prep, nothing to apply.
    Check {
        path: String,
    },
    /// A multi: all ops succeed, or every entry is an Error (see `prep::multi`).
    Multi(Vec<TxnOp>),
    /// A write that failed at prep; it still consumes a zxid, as in ZooKeeper.
    Error(ErrorCode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub hdr: TxnHeader,
    pub op: TxnOp,
}

/// ephemeralOwner of a container node (ZooKeeper's EphemeralType.CONTAINER).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an extended ephemeralOwner; TTL nodes keep their TTL in the low 40 bits.
pub const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// What kind of node an ephemeralOwner value describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

pub fn owner_kind(owner: i64) -> OwnerKind {
    if owner == 0 {
        OwnerKind::Persistent
    } else if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if owner & EXTENDED_MASK == EXTENDED_MASK {
        OwnerKind::Ttl(owner & TTL_MAX_MS)
    } else {
        OwnerKind::Ephemeral(owner)
    }
}

pub fn ttl_owner(ttl_ms: i64) -> i64 {
    EXTENDED_MASK | (ttl_ms & TTL_MAX_MS)
}
