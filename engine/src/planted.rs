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
//! - `replay-past-corrupt`: the log reader uses a record whose checksum fails when it still
//!   decodes, instead of refusing it (`log::format::scan`). The simulator must find it
//!   (`engine/tests/simulation.rs`, `planted_replay_past_corrupt`, run by `ci/planted.sh`).

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    AckBeforeQuorum,
    StaleFollowerReads,
    ReplayPastCorrupt,
}

impl Bug {
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeQuorum => "ack-before-quorum",
            Bug::StaleFollowerReads => "stale-follower-reads",
            Bug::ReplayPastCorrupt => "replay-past-corrupt",
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
        "replay-past-corrupt" => Some(Bug::ReplayPastCorrupt),
        other => {
            return Err(format!(
                "WARREN_PLANTED_BUG={other:?}: unknown (known: ack-before-quorum, stale-follower-reads, \
                 replay-past-corrupt)"
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

/// Selects `bug` for this whole process, for a test that plants it in library code (the
/// simulator's). Run such a test in a process of its own (nextest does): every test of the
/// process sees the bug. Returns false if a bug was already selected.
pub fn select(bug: Bug) -> bool {
    SELECTED.set(Some(bug)).is_ok()
}

/// Whether `bug` was selected at start-up (`init`; never, if it was not called).
pub fn active(bug: Bug) -> bool {
    SELECTED.get().copied().flatten() == Some(bug)
}
