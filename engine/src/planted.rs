//! Planted bugs (issue 16): deliberate faults that the chaos harness (`tests/chaos`) must
//! catch, compiled only with the `planted-bugs` cargo feature (never in a normal build) and,
//! even then, off unless `WARREN_PLANTED_BUG` names one at start-up. `tests/chaos/test_planted.py`
//! runs each under the fault that exposes it and asserts the harness reports it.
//!
//! - `ack-before-quorum`: the leader commits (applies and acknowledges) a write once its own
//!   log has made it durable, without waiting for a quorum (`quorum::node`, `advance_commit`).
//! - `stale-follower-reads`: a follower cut off from its leader keeps serving its clients
//!   from its last state until it has synced with a leader again, refusing writes but
//!   answering `sync` itself (`machine`, `stop_serving`).

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    AckBeforeQuorum,
    StaleFollowerReads,
}

impl Bug {
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeQuorum => "ack-before-quorum",
            Bug::StaleFollowerReads => "stale-follower-reads",
        }
    }
}

static SELECTED: OnceLock<Option<Bug>> = OnceLock::new();

/// Reads `WARREN_PLANTED_BUG` (once) and logs the bug it selects at error level. An unknown
/// name is an error, so that a misspelt test does not silently run without its bug.
pub fn init() -> Result<Option<Bug>, String> {
    let v = std::env::var("WARREN_PLANTED_BUG").unwrap_or_default();
    let bug = match v.as_str() {
        "" => None,
        "ack-before-quorum" => Some(Bug::AckBeforeQuorum),
        "stale-follower-reads" => Some(Bug::StaleFollowerReads),
        other => {
            return Err(format!(
                "WARREN_PLANTED_BUG={other:?}: unknown (known: ack-before-quorum, stale-follower-reads)"
            ))
        }
    };
    let bug = *SELECTED.get_or_init(|| bug);
    match bug {
        Some(b) => {
            tracing::error!("PLANTED BUG {} active (WARREN_PLANTED_BUG): this server is wrong on purpose", b.name())
        }
        None => tracing::warn!("built with the planted-bugs feature; none selected (WARREN_PLANTED_BUG unset)"),
    }
    Ok(bug)
}

/// Whether `bug` was selected at start-up (`init`; never, if it was not called).
pub fn active(bug: Bug) -> bool {
    SELECTED.get().copied().flatten() == Some(bug)
}
