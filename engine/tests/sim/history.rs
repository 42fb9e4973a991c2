//! What the simulated clients did: one record per operation, as the checkers see it.

/// The keys the workload uses: `/k0`, `/k1`, ... created with this value at the start.
pub const INITIAL_VALUE: &[u8] = b"init";

pub fn key_path(key: usize) -> String {
    format!("/k{key}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// create(path, value): only at the start, one per key.
    Create {
        value: Vec<u8>,
    },
    /// setData(path, value, version); version -1 means unconditional.
    Set {
        value: Vec<u8>,
        version: i32,
    },
    Get,
    Sync,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent; no answer yet (becomes Unknown if the run ends or the connection is lost).
    Pending,
    /// The connection was lost (or the run ended) before an answer: it may or may not have
    /// taken effect.
    Unknown,
    /// Succeeded. `zxid` is the reply header's zxid (the txn's for a write, the server's last
    /// applied for a read); `version` is the Stat version (setData/getData/create: 0);
    /// `value` the data read (getData only).
    Ok { zxid: i64, version: i32, value: Option<Vec<u8>> },
    /// A definite failure: BadVersion, NoNode or NodeExists (the write did not happen).
    Fail { code: i32, zxid: i64 },
}

#[derive(Clone, Debug)]
pub struct Op {
    pub id: usize,
    pub client: usize,
    pub session: i64,
    /// Index of the server (myid - 1) the op was sent to.
    pub server: usize,
    pub key: usize,
    pub kind: OpKind,
    /// Simulated microseconds.
    pub invoke_us: u64,
    pub complete_us: Option<u64>,
    pub outcome: Outcome,
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Create { .. } | OpKind::Set { .. })
    }

    pub fn written_value(&self) -> Option<&[u8]> {
        match &self.kind {
            OpKind::Create { value } | OpKind::Set { value, .. } => Some(value),
            _ => None,
        }
    }
}
