//! Consistency checker for client histories of a ZooKeeper-like service.
//!
//! # Model
//! Every key (znode path) is a register holding bytes plus a version (Stat.version: 0 at the start, +1 per
//! successful setData). A [`History`] lists the initial value of every key and the [`Op`]s recorded per session;
//! a session's ops appear in `ops` in issue order (pipelining allowed; the server answers them in that order).
//! An op with no reply (`complete`/`ret` = `None`) is indeterminate: it may take effect at any time after its
//! invocation, or never. Write values are unique per key (and differ from the key's initial value), so a read's
//! value names the write it observed.
//!
//! # What is checked ([`Rule`] names each check)
//! 1. Writes (Write, Cas) are linearizable, per key (linearizability is local). Cheap prechecks first: no two
//!    writes produce the same version (acknowledged, or observed by a read), a successful Cas returns
//!    `expected + 1`, acknowledged versions follow real-time order, acknowledged write zxids are unique and
//!    ordered like versions and like real time. Then a complete search (below) for a total order in which every
//!    write lands on exactly its version, every BadVersion is explained, and indeterminate writes are used or not.
//! 2. Reads are sequentially consistent, as ZooKeeper promises: a read returns a (value, version) pair some write
//!    produced (an indeterminate write seen by a read is thereby known to have taken effect at that version, before
//!    the read completed; the search must honour that); it never sees a write invoked after it completed; within a
//!    session, reads of a key never go back in version; a read sees every acknowledged write its session issued
//!    before it (FIFO sessions); after an acknowledged Sync, the session's later reads of any key see every write
//!    that completed (or was seen by a read that completed) before the Sync was invoked; reply zxids in a session
//!    never decrease; and (optional, [`Options::check_read_zxids`]) a read answered with header zxid Z returns the
//!    version current at Z: its writer's zxid is <= Z and the next version's writer's zxid is > Z.
//!
//! # Search (Wing & Gong with Lowe's memoisation)
//! Per key, the writes become a list of call and return events in time order (calls before returns at equal
//! times, so touching ops count as concurrent). Acknowledged writes, BadVersions and indeterminate writes seen by
//! a read are required and have a return event (a seen write's deadline is the earliest completion of a read that
//! saw it); unseen indeterminate writes are optional and have none. The search linearizes the first call in the
//! list it can, removes the op from the list, and backtracks when it reaches a return it has not linearized;
//! it succeeds once no return is left. The state is just the version: a write with a known version applies only at
//! `version - 1`; an unseen write only where the next version is claimed by nobody (else the claimant could never
//! land); a BadVersion only where the version differs from the expected one. Visited (linearized set, version)
//! pairs are memoised in a compact form: the first unlinearized required op, the linearized required ops after it
//! (bounded by concurrency) and, for the unseen indeterminate writes, only a count per kind (Write, or Cas with a
//! given expected version): those already invoked are interchangeable. Past [`Options::max_states_per_key`]
//! memoised states the result is [`Rule::SearchBudgetExceeded`], never a pass.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

pub type Time = u64;
pub type Zxid = i64;
pub type Version = i32;
pub type SessionId = u64;
pub type OpId = u64;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// setData with version -1.
    Write { key: String, value: Vec<u8> },
    /// setData with an expected version (>= 0).
    Cas { key: String, expected_version: Version, value: Vec<u8> },
    /// getData.
    Read { key: String },
    /// sync (global in effect; the key is informational).
    Sync { key: String },
}

impl Call {
    pub fn key(&self) -> &str {
        match self {
            Call::Write { key, .. } | Call::Cas { key, .. } | Call::Read { key } | Call::Sync { key } => key,
        }
    }

    fn written_value(&self) -> Option<&[u8]> {
        match self {
            Call::Write { value, .. } | Call::Cas { value, .. } => Some(value),
            _ => None,
        }
    }

    fn expected(&self) -> Option<u32> {
        match self {
            Call::Cas { expected_version, .. } => Some(*expected_version as u32),
            _ => None,
        }
    }
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Write or Cas succeeded: the new version and the write's zxid.
    Written { version: Version, zxid: Zxid },
    /// Cas failed with BadVersion (the reply header's zxid, if recorded).
    BadVersion { zxid: Option<Zxid> },
    /// Read: the value, its version, and the reply header's zxid (the server's last applied zxid).
    Read { value: Vec<u8>, version: Version, zxid: Zxid },
    /// Sync completed.
    Synced { zxid: Zxid },
}

impl Ret {
    fn zxid(&self) -> Option<Zxid> {
        match self {
            Ret::Written { zxid, .. } | Ret::Read { zxid, .. } | Ret::Synced { zxid } => Some(*zxid),
            Ret::BadVersion { zxid } => *zxid,
        }
    }
}

/// One recorded operation. `complete` and `ret` are both `None` for an indeterminate op (no reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub id: OpId,
    pub session: SessionId,
    pub call: Call,
    pub invoke: Time,
    pub complete: Option<Time>,
    pub ret: Option<Ret>,
}

/// A history: every key's initial value (version 0) and the ops, each session's in issue order.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub initial: BTreeMap<String, Vec<u8>>,
    pub ops: Vec<Op>,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Memoised search states allowed per key before giving up with [`Rule::SearchBudgetExceeded`].
    pub max_states_per_key: u64,
    /// Check that a read's header zxid brackets the version it returned (see the module docs).
    pub check_read_zxids: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_states_per_key: 1_000_000, check_read_zxids: true }
    }
}

/// The rule a history broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The history itself is ill-formed (unknown key, reply kind not matching the call, duplicate ids or values...).
    Malformed,
    /// Two writes produced the same version of a key (acknowledged, or observed by a read at that version).
    DuplicateVersion,
    /// A successful Cas did not produce `expected_version + 1`.
    CasVersionMismatch,
    /// A write completed before another was invoked, yet got a higher version.
    WriteRealTimeOrder,
    /// Acknowledged write zxids are duplicated, or ordered unlike versions or real time.
    WriteZxidOrder,
    /// No linearization of a key's writes exists (version gaps, unexplainable BadVersion, impossible Cas...).
    WritesNotLinearizable,
    /// The search gave up: linearizability is unknown (not a pass).
    SearchBudgetExceeded,
    /// A read returned a (value, version) pair no write produced.
    ReadUnwritten,
    /// A read saw a write invoked after the read completed.
    ReadFromFuture,
    /// A read saw an older version than an earlier read of the same key in its session.
    ReadWentBack,
    /// A read missed an acknowledged write its own session issued before it.
    ReadMissedOwnWrite,
    /// A read after a Sync missed a write completed before the Sync was invoked.
    ReadMissedSyncedWrite,
    /// A read's header zxid does not bracket the version it returned.
    ReadZxidInconsistent,
    /// Reply zxids in a session went backwards.
    ZxidWentBack,
}

/// An op, described for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRef {
    pub id: OpId,
    pub session: SessionId,
    pub key: String,
    pub invoke: Time,
    pub complete: Option<Time>,
    pub desc: String,
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self.complete.map_or("-".to_string(), |t| t.to_string());
        write!(f, "op #{} session {} [{}..{}] {}", self.id, self.session, self.invoke, done, self.desc)
    }
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
    pub ops: Vec<OpRef>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.detail)?;
        for op in &self.ops {
            write!(f, "\n    {op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub ops: usize,
    pub keys: usize,
    pub writes: usize,
    pub reads: usize,
    pub syncs: usize,
    pub indeterminate: usize,
    /// Memoised search states over all keys.
    pub states_explored: u64,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub result: Result<(), Violation>,
    pub summary: Summary,
}

/// Checks a history against the model in the module docs.
pub fn check(history: &History, opts: &Options) -> Report {
    let mut summary = Summary { ops: history.ops.len(), keys: history.initial.len(), ..Summary::default() };
    for op in &history.ops {
        match op.call {
            Call::Write { .. } | Call::Cas { .. } => summary.writes += 1,
            Call::Read { .. } => summary.reads += 1,
            Call::Sync { .. } => summary.syncs += 1,
        }
        summary.indeterminate += op.ret.is_none() as usize;
    }
    let result = Checker::new(history, opts).run(&mut summary.states_explored);
    Report { result, summary }
}

// ---- helpers ------------------------------------------------------------------------------------------------------

fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn describe(op: &Op) -> String {
    let call = match &op.call {
        Call::Write { key, value } => format!("Write({key}, {})", show_bytes(value)),
        Call::Cas { key, expected_version, value } => {
            format!("Cas({key}, expected {expected_version}, {})", show_bytes(value))
        }
        Call::Read { key } => format!("Read({key})"),
        Call::Sync { key } => format!("Sync({key})"),
    };
    let ret = match &op.ret {
        None => "no reply".to_string(),
        Some(Ret::Written { version, zxid }) => format!("ok version {version} zxid {zxid}"),
        Some(Ret::BadVersion { zxid: Some(z) }) => format!("BadVersion zxid {z}"),
        Some(Ret::BadVersion { zxid: None }) => "BadVersion".to_string(),
        Some(Ret::Read { value, version, zxid }) => format!("{} version {version} zxid {zxid}", show_bytes(value)),
        Some(Ret::Synced { zxid }) => format!("ok zxid {zxid}"),
    };
    format!("{call} -> {ret}")
}

fn written(op: &Op) -> Option<(u32, Zxid)> {
    match op.ret {
        Some(Ret::Written { version, zxid }) => Some((version as u32, zxid)),
        _ => None,
    }
}

fn read_ret(op: &Op) -> Option<(&[u8], u32, Zxid)> {
    match &op.ret {
        Some(Ret::Read { value, version, zxid }) => Some((value, *version as u32, *zxid)),
        _ => None,
    }
}

struct KeyInfo<'a> {
    name: &'a str,
    initial: &'a [u8],
    writes: Vec<usize>,
    reads: Vec<usize>,
    by_value: HashMap<&'a [u8], usize>,
    /// version -> the op known to have produced it (acknowledged, or indeterminate and seen by a read).
    claims: BTreeMap<u32, usize>,
}

struct Checker<'a> {
    h: &'a History,
    opts: &'a Options,
    keys: Vec<KeyInfo<'a>>,
    key_of: HashMap<&'a str, usize>,
    /// For an indeterminate write seen by a read: (version, first read that saw it).
    pin: Vec<Option<(u32, usize)>>,
    /// Latest time the op can have taken effect: its completion, or earlier if a read saw it sooner.
    deadline: Vec<Option<Time>>,
    /// The read responsible for `deadline`, when a read shortened it.
    deadline_by: Vec<Option<usize>>,
}

impl<'a> Checker<'a> {
    fn new(h: &'a History, opts: &'a Options) -> Self {
        let mut keys = Vec::new();
        let mut key_of = HashMap::new();
        for (k, v) in &h.initial {
            key_of.insert(k.as_str(), keys.len());
            keys.push(KeyInfo {
                name: k,
                initial: v,
                writes: vec![],
                reads: vec![],
                by_value: HashMap::new(),
                claims: BTreeMap::new(),
            });
        }
        let n = h.ops.len();
        Checker {
            h,
            opts,
            keys,
            key_of,
            pin: vec![None; n],
            deadline: h.ops.iter().map(|o| o.complete).collect(),
            deadline_by: vec![None; n],
        }
    }

    fn r(&self, i: usize) -> OpRef {
        let op = &self.h.ops[i];
        OpRef {
            id: op.id,
            session: op.session,
            key: op.call.key().to_string(),
            invoke: op.invoke,
            complete: op.complete,
            desc: describe(op),
        }
    }

    fn fail(&self, rule: Rule, detail: String, ops: &[usize]) -> Result<(), Violation> {
        Err(Violation { rule, detail, ops: ops.iter().map(|&i| self.r(i)).collect() })
    }

    fn run(mut self, explored: &mut u64) -> Result<(), Violation> {
        self.validate()?;
        self.read_values()?;
        self.claims()?;
        self.write_orders()?;
        let unknown = self.search(explored)?;
        self.sessions()?;
        if self.opts.check_read_zxids {
            self.read_zxids()?;
        }
        match unknown {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    fn validate(&mut self) -> Result<(), Violation> {
        let h = self.h;
        let mut ids = HashMap::new();
        let mut last_invoke: HashMap<SessionId, usize> = HashMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            let bad = |this: &Self, d: &str, other: Option<usize>| {
                let mut ops = vec![i];
                ops.extend(other);
                this.fail(Rule::Malformed, d.to_string(), &ops)
            };
            if let Some(&j) = ids.get(&op.id) {
                return bad(self, "duplicate op id", Some(j));
            }
            ids.insert(op.id, i);
            let Some(&k) = self.key_of.get(op.call.key()) else {
                return bad(self, "key has no initial value", None);
            };
            if op.complete.is_some() != op.ret.is_some() {
                return bad(self, "completion time and reply must be both present or both absent", None);
            }
            if op.complete.is_some_and(|c| c < op.invoke) {
                return bad(self, "completed before it was invoked", None);
            }
            let fits = match (&op.call, &op.ret) {
                (_, None) => true,
                (Call::Write { .. }, Some(Ret::Written { version, .. })) => *version >= 1,
                (Call::Cas { .. }, Some(Ret::Written { version, .. })) => *version >= 1,
                (Call::Cas { .. }, Some(Ret::BadVersion { .. })) => true,
                (Call::Read { .. }, Some(Ret::Read { version, .. })) => *version >= 0,
                (Call::Sync { .. }, Some(Ret::Synced { .. })) => true,
                _ => false,
            };
            if !fits {
                return bad(self, "reply does not fit the call (or a negative/zero version)", None);
            }
            if let Call::Cas { expected_version, .. } = op.call {
                if expected_version < 0 {
                    return bad(self, "Cas with a negative expected version (record it as a Write)", None);
                }
            }
            if let Some(&j) = last_invoke.get(&op.session) {
                if h.ops[j].invoke > op.invoke {
                    return bad(self, "session ops not in issue order (invoke time decreases)", Some(j));
                }
            }
            last_invoke.insert(op.session, i);
            match &op.call {
                Call::Write { value, .. } | Call::Cas { value, .. } => {
                    if value.as_slice() == self.keys[k].initial {
                        return bad(self, "write value equals the key's initial value", None);
                    }
                    if let Some(&j) = self.keys[k].by_value.get(value.as_slice()) {
                        return bad(self, "write value not unique", Some(j));
                    }
                    self.keys[k].by_value.insert(value, i);
                    self.keys[k].writes.push(i);
                }
                Call::Read { .. } => self.keys[k].reads.push(i),
                Call::Sync { .. } => {}
            }
        }
        Ok(())
    }

    /// Every read names a write that produced its (value, version), not from the future; pins indeterminate writes.
    fn read_values(&mut self) -> Result<(), Violation> {
        let ops = &self.h.ops;
        for k in 0..self.keys.len() {
            for ri in 0..self.keys[k].reads.len() {
                let r = self.keys[k].reads[ri];
                let Some((value, version, _)) = read_ret(&ops[r]) else { continue };
                let rc = ops[r].complete.unwrap();
                let key = &self.keys[k];
                let Some(&w) = key.by_value.get(value) else {
                    if value == key.initial {
                        if version == 0 {
                            continue;
                        }
                        return self.fail(Rule::ReadUnwritten, format!("initial value at version {version}"), &[r]);
                    }
                    return self.fail(Rule::ReadUnwritten, "value never written to this key".into(), &[r]);
                };
                if ops[w].invoke > rc {
                    return self.fail(
                        Rule::ReadFromFuture,
                        "read saw a write invoked after it completed".into(),
                        &[r, w],
                    );
                }
                match &ops[w].ret {
                    Some(Ret::BadVersion { .. }) => {
                        return self.fail(Rule::ReadUnwritten, "read saw the value of a failed Cas".into(), &[r, w]);
                    }
                    Some(Ret::Written { version: v, .. }) if *v as u32 != version => {
                        return self.fail(
                            Rule::ReadUnwritten,
                            format!("read saw the value at version {version}, its write produced version {v}"),
                            &[r, w],
                        );
                    }
                    Some(_) => {}
                    None => match self.pin[w] {
                        Some((v, r0)) if v != version => {
                            return self.fail(
                                Rule::ReadUnwritten,
                                format!("two reads saw the same value at versions {v} and {version}"),
                                &[r0, r, w],
                            );
                        }
                        Some(_) => {}
                        None => self.pin[w] = Some((version, r)),
                    },
                }
                if self.deadline[w].is_none_or(|d| rc < d) {
                    self.deadline[w] = Some(rc);
                    self.deadline_by[w] = Some(r);
                }
            }
        }
        Ok(())
    }

    /// Versions claimed by acknowledged or seen writes: unique, Cas lands on expected + 1, no read sees a version
    /// whose (or whose predecessors') write was invoked after the read completed.
    fn claims(&mut self) -> Result<(), Violation> {
        let ops = &self.h.ops;
        for k in 0..self.keys.len() {
            let mut claims: BTreeMap<u32, usize> = BTreeMap::new();
            for &w in &self.keys[k].writes {
                let v = match (written(&ops[w]), self.pin[w]) {
                    (Some((v, _)), _) => v,
                    (None, Some((v, _))) => v,
                    _ => continue,
                };
                let seen = |i: usize| self.pin[i].map(|(_, r)| r);
                if v as usize > self.keys[k].writes.len() {
                    let mut named = vec![w];
                    named.extend(seen(w));
                    let d = format!("version {v}, but only {} writes to the key exist", self.keys[k].writes.len());
                    return self.fail(Rule::WritesNotLinearizable, d, &named);
                }
                if let Some(&o) = claims.get(&v) {
                    let mut named = vec![o, w];
                    named.extend(seen(o));
                    named.extend(seen(w));
                    let d = format!(
                        "two writes produced version {v} of {} (acknowledged, or seen by a read)",
                        ops[w].call.key()
                    );
                    return self.fail(Rule::DuplicateVersion, d, &named);
                }
                if let Some(e) = ops[w].call.expected() {
                    if v != e + 1 {
                        let mut named = vec![w];
                        named.extend(seen(w));
                        let d = format!("Cas expecting version {e} produced version {v}");
                        return self.fail(Rule::CasVersionMismatch, d, &named);
                    }
                }
                claims.insert(v, w);
            }
            // Reads from the future, through the version chain: seeing version v implies every write of a version
            // <= v had been invoked before the read completed.
            let mut prefix: Vec<(u32, Time, usize)> = Vec::new();
            for (&v, &w) in &claims {
                let (t, i) = prefix.last().map_or((0, w), |&(_, t, i)| (t, i));
                prefix.push(if ops[w].invoke >= t { (v, ops[w].invoke, w) } else { (v, t, i) });
            }
            for &r in &self.keys[k].reads {
                let Some((_, version, _)) = read_ret(&ops[r]) else { continue };
                let n = prefix.partition_point(|&(v, _, _)| v <= version);
                if n > 0 {
                    let (_, t, w) = prefix[n - 1];
                    if t > ops[r].complete.unwrap() {
                        let d = format!(
                            "read saw version {version}, which follows a write invoked after the read completed"
                        );
                        return self.fail(Rule::ReadFromFuture, d, &[r, w]);
                    }
                }
            }
            self.keys[k].claims = claims;
        }
        Ok(())
    }

    /// Real-time order of acknowledged versions, and of acknowledged write zxids.
    fn write_orders(&self) -> Result<(), Violation> {
        let ops = &self.h.ops;
        let mut acked: Vec<(Zxid, usize)> = Vec::new();
        for key in &self.keys {
            let mut max_invoke: Option<usize> = None;
            let mut last_zxid: Option<(Zxid, usize)> = None;
            for &w in key.claims.values() {
                let Some((_, z)) = written(&ops[w]) else { continue };
                if let Some(a) = max_invoke {
                    if ops[w].complete.unwrap() < ops[a].invoke {
                        let d = "a write completed before another was invoked, yet got a higher version".to_string();
                        return self.fail(Rule::WriteRealTimeOrder, d, &[w, a]);
                    }
                }
                if max_invoke.is_none_or(|a| ops[w].invoke > ops[a].invoke) {
                    max_invoke = Some(w);
                }
                if let Some((lz, l)) = last_zxid {
                    if z <= lz {
                        let d = "a higher version has a zxid that is not higher".to_string();
                        return self.fail(Rule::WriteZxidOrder, d, &[l, w]);
                    }
                }
                last_zxid = Some((z, w));
                acked.push((z, w));
            }
        }
        acked.sort();
        for p in acked.windows(2) {
            if p[0].0 == p[1].0 {
                return self.fail(
                    Rule::WriteZxidOrder,
                    "two writes acknowledged with the same zxid".into(),
                    &[p[0].1, p[1].1],
                );
            }
        }
        // In zxid order, no later write may have completed before an earlier one was invoked.
        let mut min_complete: Option<usize> = None;
        for &(_, w) in acked.iter().rev() {
            if let Some(m) = min_complete {
                if ops[m].complete.unwrap() < ops[w].invoke {
                    let d = "a write completed before another was invoked, yet got a higher zxid".to_string();
                    return self.fail(Rule::WriteZxidOrder, d, &[m, w]);
                }
            }
            if min_complete.is_none_or(|m| ops[w].complete < ops[m].complete) {
                min_complete = Some(w);
            }
        }
        Ok(())
    }

    /// Runs the linearizability search on every key. A budget overrun is returned (as `Ok(Some)`) so that the
    /// remaining checks can still find a definite violation first.
    fn search(&self, explored: &mut u64) -> Result<Option<Violation>, Violation> {
        let ops = &self.h.ops;
        let mut unknown = None;
        for key in &self.keys {
            if key.writes.is_empty() {
                continue;
            }
            let sops: Vec<SOp> = key
                .writes
                .iter()
                .map(|&w| {
                    let expected = ops[w].call.expected();
                    let kind = match (&ops[w].ret, self.pin[w]) {
                        (Some(Ret::Written { version, .. }), _) => SKind::Claimed { version: *version as u32 },
                        (Some(_), _) => SKind::Bad { expected: expected.unwrap() },
                        (None, Some((version, _))) => SKind::Claimed { version },
                        (None, None) => SKind::Free { expected },
                    };
                    SOp { idx: w, invoke: ops[w].invoke, deadline: self.deadline[w], kind }
                })
                .collect();
            match wgl(&sops, self.opts.max_states_per_key, explored) {
                Outcome::Linearizable => {}
                Outcome::Budget(states) => {
                    if unknown.is_none() {
                        let d =
                            format!("search of {} gave up after {states} states: linearizability unknown", key.name);
                        unknown = self.fail(Rule::SearchBudgetExceeded, d, &[]).err();
                    }
                }
                Outcome::Fail { blocking, version, linearized, concurrent } => {
                    let b = sops[blocking].idx;
                    let mut named = vec![b];
                    named.extend(self.deadline_by[b]);
                    named.extend(concurrent.iter().map(|&c| sops[c].idx).filter(|&c| c != b).take(12));
                    let why = if self.deadline_by[b].is_some() {
                        " (its deadline is the completion of the read that saw it)"
                    } else {
                        ""
                    };
                    let d = format!(
                        "no linearization of the writes to {}: after at best {linearized} writes (version {version}) \
                         the first op below could not be placed before its completion{why}; ops overlapping it follow",
                        key.name
                    );
                    return self.fail(Rule::WritesNotLinearizable, d, &named).map(|_| None);
                }
            }
        }
        Ok(unknown)
    }

    /// Per-session rules: monotonic reads, read-your-writes, sync, zxid order.
    fn sessions(&self) -> Result<(), Violation> {
        let ops = &self.h.ops;
        // Per key: (time, version, op) for evidence that a version was committed by `time`, with a running max.
        let mut evidence: Vec<Vec<(Time, u32, usize)>> = vec![vec![]; self.keys.len()];
        for (k, key) in self.keys.iter().enumerate() {
            let ev = &mut evidence[k];
            for &w in &key.writes {
                if let Some((v, _)) = written(&ops[w]) {
                    ev.push((ops[w].complete.unwrap(), v, w));
                }
            }
            for &r in &key.reads {
                if let Some((_, v, _)) = read_ret(&ops[r]) {
                    ev.push((ops[r].complete.unwrap(), v, r));
                }
            }
            ev.sort();
            for i in 1..ev.len() {
                if ev[i].1 < ev[i - 1].1 {
                    ev[i].1 = ev[i - 1].1;
                    ev[i].2 = ev[i - 1].2;
                }
            }
        }
        let floor = |k: usize, before: Time| -> Option<(u32, usize)> {
            let ev = &evidence[k];
            let n = ev.partition_point(|&(t, _, _)| t < before);
            (n > 0).then(|| (ev[n - 1].1, ev[n - 1].2))
        };
        let mut by_session: BTreeMap<SessionId, Vec<usize>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            by_session.entry(op.session).or_default().push(i);
        }
        for list in by_session.values() {
            let mut last_zxid: Option<(Zxid, usize)> = None;
            let mut last_read: HashMap<usize, (u32, usize)> = HashMap::new();
            let mut own: HashMap<usize, (u32, usize)> = HashMap::new();
            let mut sync: Option<usize> = None;
            for &i in list {
                let op = &ops[i];
                let k = self.key_of[op.call.key()];
                if let Some((_, v, _)) = read_ret(op) {
                    if let Some(&(pv, p)) = last_read.get(&k) {
                        if v < pv {
                            let d = format!("session read version {v} after reading version {pv}");
                            return self.fail(Rule::ReadWentBack, d, &[p, i]);
                        }
                    }
                    if let Some(&(wv, w)) = own.get(&k) {
                        if v < wv {
                            let d = format!("read version {v}, but the session's earlier write produced {wv}");
                            return self.fail(Rule::ReadMissedOwnWrite, d, &[w, i]);
                        }
                    }
                    if let Some(s) = sync {
                        if let Some((fv, e)) = floor(k, ops[s].invoke) {
                            if v < fv {
                                let mut named = vec![s, e];
                                if read_ret(&ops[e]).is_some() {
                                    named.extend(self.keys[k].claims.get(&fv).copied());
                                }
                                let d = format!(
                                    "read version {v} after a sync, but version {fv} was committed before the sync was \
                                     invoked (acknowledged, or seen by a read that had completed)"
                                );
                                named.push(i);
                                return self.fail(Rule::ReadMissedSyncedWrite, d, &named);
                            }
                        }
                    }
                    if last_read.get(&k).is_none_or(|&(pv, _)| v > pv) {
                        last_read.insert(k, (v, i));
                    }
                }
                if let Some((v, _)) = written(op) {
                    if own.get(&k).is_none_or(|&(pv, _)| v > pv) {
                        own.insert(k, (v, i));
                    }
                }
                if let Some(Ret::Synced { .. }) = op.ret {
                    sync = Some(i);
                }
                if let Some(z) = op.ret.as_ref().and_then(Ret::zxid) {
                    if let Some((lz, l)) = last_zxid {
                        if z < lz {
                            let d = format!("session got zxid {z} after zxid {lz}");
                            return self.fail(Rule::ZxidWentBack, d, &[l, i]);
                        }
                    }
                    last_zxid = Some((z, i));
                }
            }
        }
        Ok(())
    }

    /// A read answered at zxid Z returns the version current at Z.
    fn read_zxids(&self) -> Result<(), Violation> {
        let ops = &self.h.ops;
        for key in &self.keys {
            for &r in &key.reads {
                let Some((_, v, z)) = read_ret(&ops[r]) else { continue };
                if let Some(&w) = key.claims.get(&v) {
                    if let Some((_, wz)) = written(&ops[w]) {
                        if wz > z {
                            let d = format!("read at zxid {z} returned a version written at zxid {wz}");
                            return self.fail(Rule::ReadZxidInconsistent, d, &[r, w]);
                        }
                    }
                }
                if let Some(&w) = key.claims.get(&(v + 1)) {
                    if let Some((_, wz)) = written(&ops[w]) {
                        if wz <= z {
                            let d = format!("read at zxid {z} missed version {} written at zxid {wz}", v + 1);
                            return self.fail(Rule::ReadZxidInconsistent, d, &[r, w]);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

// ---- the search ---------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum SKind {
    /// Produces exactly this version (acknowledged, or seen by a read).
    Claimed { version: u32 },
    /// A BadVersion Cas: linearized where the version differs from `expected`.
    Bad { expected: u32 },
    /// Indeterminate and unseen: optional; a Write, or a Cas when `expected` is set.
    Free { expected: Option<u32> },
}

#[derive(Clone, Copy, Debug)]
struct SOp {
    idx: usize,
    invoke: Time,
    /// `None`: optional (no return event).
    deadline: Option<Time>,
    kind: SKind,
}

enum Outcome {
    Linearizable,
    Budget(u64),
    /// `blocking`: the op whose return the deepest attempt could not pass; indices into the input slice.
    Fail {
        blocking: usize,
        version: u32,
        linearized: usize,
        concurrent: Vec<usize>,
    },
}

const NONE: usize = usize::MAX;

/// WGL search over one key's writes (see the module docs).
fn wgl(input: &[SOp], budget: u64, explored: &mut u64) -> Outcome {
    // Required ops first, in call order (so the memo key's prefix form works), then the optional ones.
    let mut order: Vec<usize> = (0..input.len()).collect();
    order.sort_by_key(|&i| (input[i].deadline.is_none(), input[i].invoke, i));
    let ops: Vec<SOp> = order.iter().map(|&i| input[i]).collect();
    let n = ops.len();
    let d = ops.iter().take_while(|o| o.deadline.is_some()).count();

    // Groups of interchangeable optional ops.
    let mut groups: Vec<Option<u32>> = Vec::new();
    let mut group_of = vec![NONE; n];
    for (i, op) in ops.iter().enumerate() {
        if let SKind::Free { expected } = op.kind {
            group_of[i] = groups.iter().position(|&g| g == expected).unwrap_or_else(|| {
                groups.push(expected);
                groups.len() - 1
            });
        }
    }
    let max_claim =
        ops.iter().filter_map(|o| if let SKind::Claimed { version } = o.kind { Some(version) } else { None });
    let mut claimed = vec![false; max_claim.max().unwrap_or(0) as usize + 2];
    for op in &ops {
        if let SKind::Claimed { version } = op.kind {
            claimed[version as usize] = true;
        }
    }
    let is_claimed = |v: u32| claimed.get(v as usize).copied().unwrap_or(false);

    // Events: (time, 0 = call / 1 = return, op). Entries 1..=m; 0 is the head, m + 1 the tail.
    let mut events: Vec<(Time, u8, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, 0, i));
        if let Some(t) = op.deadline {
            events.push((t, 1, i));
        }
    }
    events.sort();
    let m = events.len();
    let (head, tail) = (0, m + 1);
    let mut next: Vec<usize> = (1..=m + 2).collect();
    let mut prev: Vec<usize> = (0..m + 2).map(|i| i.wrapping_sub(1)).collect();
    let mut entry_op = vec![NONE; m + 2];
    let mut is_call = vec![false; m + 2];
    let mut call_e = vec![NONE; n];
    let mut ret_e = vec![NONE; n];
    // bound[j] for a required op j: required ops with an index below it have their call before j's return.
    let mut bound = vec![0usize; d];
    let mut calls_seen = 0;
    for (e, &(_, kind, i)) in events.iter().enumerate() {
        let e = e + 1;
        entry_op[e] = i;
        if kind == 0 {
            is_call[e] = true;
            call_e[i] = e;
            if i < d {
                calls_seen += 1;
            }
        } else {
            ret_e[i] = e;
            bound[i] = calls_seen;
        }
    }

    let step = |version: u32, op: &SOp| -> Option<u32> {
        match op.kind {
            SKind::Claimed { version: v } => (v == version + 1).then_some(v),
            SKind::Bad { expected } => (expected != version).then_some(version),
            SKind::Free { expected } => {
                (!is_claimed(version + 1) && expected.is_none_or(|e| e == version)).then_some(version + 1)
            }
        }
    };

    let mut lin = vec![false; n];
    let mut counts = vec![0u32; groups.len()];
    let mut f = 0usize; // first unlinearized required op
    let mut version = 0u32;
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut cache: HashSet<Box<[u32]>> = HashSet::new();
    let mut remaining = d;
    let mut best: Option<(usize, usize, u32)> = None; // (linearized count, blocking op, version)
    let mut entry = next[head];

    let unlink = |x: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[x], next[x]);
        next[p] = q;
        prev[q] = p;
    };
    let relink = |x: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[x], next[x]);
        next[p] = x;
        prev[q] = x;
    };

    let outcome = loop {
        if remaining == 0 {
            break Outcome::Linearizable;
        }
        if entry != tail && is_call[entry] {
            let i = entry_op[entry];
            if let Some(nv) = step(version, &ops[i]) {
                // Tentatively linearize i and build the memo key.
                lin[i] = true;
                let g = group_of[i];
                let mut nf = f;
                if g != NONE {
                    counts[g] += 1;
                } else if i == f {
                    while nf < d && lin[nf] {
                        nf += 1;
                    }
                }
                let mut key = Vec::with_capacity(2 + counts.len() + 8);
                key.push(nv);
                key.push(nf as u32);
                key.extend_from_slice(&counts);
                if nf < d {
                    key.extend((nf + 1..bound[nf]).filter(|&j| lin[j]).map(|j| j as u32));
                }
                if cache.insert(key.into_boxed_slice()) {
                    if cache.len() as u64 > budget {
                        break Outcome::Budget(cache.len() as u64);
                    }
                    stack.push((i, version));
                    version = nv;
                    f = nf;
                    unlink(call_e[i], &mut next, &mut prev);
                    if ret_e[i] != NONE {
                        unlink(ret_e[i], &mut next, &mut prev);
                        remaining -= 1;
                    }
                    entry = next[head];
                    continue;
                }
                lin[i] = false;
                if g != NONE {
                    counts[g] -= 1;
                }
            }
            entry = next[entry];
            continue;
        }
        // A return we have not linearized (the tail cannot be reached while a return remains).
        if entry != tail {
            let blocking = entry_op[entry];
            if best.is_none_or(|(c, _, _)| stack.len() > c) {
                best = Some((stack.len(), blocking, version));
            }
        }
        let Some((i, v)) = stack.pop() else {
            let (linearized, blocking, version) = best.unwrap_or((0, 0, 0));
            let b = &ops[blocking];
            let end = b.deadline.unwrap_or(Time::MAX);
            let concurrent = (0..n)
                .filter(|&j| ops[j].invoke <= end && ops[j].deadline.is_none_or(|t| t >= b.invoke))
                .map(|j| order[j])
                .collect();
            break Outcome::Fail { blocking: order[blocking], version, linearized, concurrent };
        };
        version = v;
        lin[i] = false;
        if group_of[i] != NONE {
            counts[group_of[i]] -= 1;
        } else if i < f {
            f = i;
        }
        if ret_e[i] != NONE {
            relink(ret_e[i], &mut next, &mut prev);
            remaining += 1;
        }
        relink(call_e[i], &mut next, &mut prev);
        entry = next[call_e[i]];
    };
    *explored += cache.len() as u64;
    outcome
}

// ---- tests --------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Builds histories tersely. Keys "a", "b", "c" start with "a0", "b0", "c0".
    struct B {
        h: History,
    }

    impl B {
        fn new() -> B {
            let initial = ["a", "b", "c"].iter().map(|k| (k.to_string(), format!("{k}0").into_bytes())).collect();
            B { h: History { initial, ops: vec![] } }
        }
        fn push(&mut self, s: SessionId, call: Call, inv: Time, done: Option<(Time, Ret)>) -> &mut Self {
            let id = self.h.ops.len() as OpId + 1;
            let (complete, ret) = match done {
                Some((t, r)) => (Some(t), Some(r)),
                None => (None, None),
            };
            self.h.ops.push(Op { id, session: s, call, invoke: inv, complete, ret });
            self
        }
        fn wc(k: &str, v: &str) -> Call {
            Call::Write { key: k.into(), value: v.into() }
        }
        fn cc(k: &str, e: Version, v: &str) -> Call {
            Call::Cas { key: k.into(), expected_version: e, value: v.into() }
        }
        /// Acknowledged write.
        fn w(&mut self, s: SessionId, k: &str, v: &str, inv: Time, done: Time, ver: Version, z: Zxid) -> &mut Self {
            self.push(s, Self::wc(k, v), inv, Some((done, Ret::Written { version: ver, zxid: z })))
        }
        /// Indeterminate write.
        fn wi(&mut self, s: SessionId, k: &str, v: &str, inv: Time) -> &mut Self {
            self.push(s, Self::wc(k, v), inv, None)
        }
        fn cas(
            &mut self,
            s: SessionId,
            k: &str,
            e: Version,
            v: &str,
            inv: Time,
            done: Time,
            ver: Version,
            z: Zxid,
        ) -> &mut Self {
            self.push(s, Self::cc(k, e, v), inv, Some((done, Ret::Written { version: ver, zxid: z })))
        }
        fn bad(&mut self, s: SessionId, k: &str, e: Version, v: &str, inv: Time, done: Time) -> &mut Self {
            self.push(s, Self::cc(k, e, v), inv, Some((done, Ret::BadVersion { zxid: None })))
        }
        fn casi(&mut self, s: SessionId, k: &str, e: Version, v: &str, inv: Time) -> &mut Self {
            self.push(s, Self::cc(k, e, v), inv, None)
        }
        fn r(&mut self, s: SessionId, k: &str, v: &str, ver: Version, z: Zxid, inv: Time, done: Time) -> &mut Self {
            let ret = Ret::Read { value: v.into(), version: ver, zxid: z };
            self.push(s, Call::Read { key: k.into() }, inv, Some((done, ret)))
        }
        fn sync(&mut self, s: SessionId, inv: Time, done: Time, z: Zxid) -> &mut Self {
            self.push(s, Call::Sync { key: "a".into() }, inv, Some((done, Ret::Synced { zxid: z })))
        }
        fn check(&self) -> Report {
            check(&self.h, &Options::default())
        }
    }

    #[track_caller]
    fn good(b: &B) {
        let rep = b.check();
        if let Err(v) = &rep.result {
            panic!("expected a pass, got {v}");
        }
    }

    #[track_caller]
    fn bad(b: &B, rule: Rule) -> Violation {
        match b.check().result {
            Ok(()) => panic!("expected {rule:?}, but the history passed"),
            Err(v) => {
                assert_eq!(v.rule, rule, "wrong rule: {v}");
                assert!(!v.ops.is_empty() || rule == Rule::SearchBudgetExceeded);
                v
            }
        }
    }

    // ---- known-good ----------------------------------------------------------------------------------------------

    #[test]
    fn good_concurrent_overlapping_writes() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 10, 2, 2).w(2, "a", "B", 1, 9, 1, 1).w(3, "a", "C", 2, 20, 3, 3);
        b.r(4, "a", "B", 1, 1, 5, 6).r(4, "a", "C", 3, 3, 21, 22);
        good(&b);
        let rep = b.check();
        assert_eq!(rep.summary.ops, 5);
        assert_eq!(rep.summary.writes, 3);
        assert!(rep.summary.states_explored >= 3);
    }

    #[test]
    fn good_indeterminate_taken_and_not_taken() {
        let mut b = B::new();
        b.wi(1, "a", "A", 0); // taken at version 2 (seen below)
        b.w(2, "a", "B", 5, 10, 1, 1);
        b.wi(5, "a", "X", 6); // never observed: may be left out or fill the gap at version 3
        b.r(3, "a", "A", 2, 2, 11, 12);
        b.wi(1, "a", "C", 20); // fills version 3 (or X does)
        b.w(2, "a", "D", 30, 40, 4, 4);
        b.wi(6, "a", "Y", 50); // not taken
        b.r(3, "a", "D", 4, 4, 41, 42);
        good(&b);
    }

    #[test]
    fn good_cas_successes_and_badversions() {
        let mut b = B::new();
        b.cas(1, "a", 0, "A", 0, 10, 1, 1).bad(2, "a", 0, "A'", 1, 11);
        b.cas(1, "a", 1, "B", 12, 20, 2, 2);
        // Version 1 until the Cas above lands, which it must have by 14 for this BadVersion.
        b.bad(3, "a", 1, "B'", 13, 14);
        // Version 2 from 20 on: only the indeterminate write invoked at 25 can explain this BadVersion.
        b.wi(4, "a", "Y", 25);
        b.bad(2, "a", 2, "C'", 30, 40);
        // An indeterminate Cas that did not take effect, and one that did (seen).
        b.casi(5, "a", 0, "N", 41);
        b.casi(5, "a", 3, "Z", 42);
        b.r(6, "a", "Z", 4, 5, 50, 51);
        good(&b);
    }

    #[test]
    fn good_stale_reads_allowed_by_sequential_consistency() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(1, "a", "B", 6, 10, 2, 2);
        b.r(2, "a", "A", 1, 1, 20, 21); // stale, long after B completed: no sync, so fine
        b.r(2, "b", "b0", 0, 1, 21, 22);
        b.r(2, "a", "B", 2, 2, 22, 23);
        b.r(3, "a", "a0", 0, 0, 30, 31); // very stale
        b.sync(3, 32, 33, 2).r(3, "a", "B", 2, 2, 34, 35);
        good(&b);
    }

    #[test]
    fn good_pipelined_session() {
        let mut b = B::new();
        // Write and read issued back to back; answered in order, the read sees the write.
        b.w(1, "a", "A", 0, 5, 1, 1).r(1, "a", "A", 1, 1, 1, 6);
        // A read concurrent with another session's write may see either state.
        b.w(2, "a", "B", 10, 20, 2, 2).r(3, "a", "B", 2, 2, 11, 12).r(4, "a", "A", 1, 1, 13, 14);
        good(&b);
    }

    // ---- known-bad -----------------------------------------------------------------------------------------------

    #[test]
    fn bad_duplicate_version() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 10, 1, 1).w(2, "a", "B", 1, 11, 1, 2);
        bad(&b, Rule::DuplicateVersion);
    }

    #[test]
    fn bad_versions_against_real_time() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 2, 2).w(2, "a", "B", 10, 15, 1, 1);
        bad(&b, Rule::WriteRealTimeOrder);
    }

    #[test]
    fn bad_version_gap_without_indeterminate_write() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(2, "a", "B", 10, 15, 3, 3);
        let v = bad(&b, Rule::WritesNotLinearizable);
        assert_eq!(v.ops[0].id, 2, "{v}");
        // An indeterminate write invoked too late cannot fill the gap either.
        b.wi(3, "a", "C", 16);
        bad(&b, Rule::WritesNotLinearizable);
    }

    #[test]
    fn bad_cas_succeeded_though_version_moved() {
        // The BadVersion at [12, 15] proves the version moved off 1 after the first Cas; the Cas expecting 1 later
        // cannot have succeeded.
        let mut b = B::new();
        b.cas(1, "a", 0, "A", 0, 10, 1, 1).bad(2, "a", 1, "X", 12, 15).cas(3, "a", 1, "B", 20, 30, 2, 2);
        bad(&b, Rule::WritesNotLinearizable);
        // Seen directly: an indeterminate write was read at version 1 before the Cas expecting 0 began.
        let mut b = B::new();
        b.wi(1, "a", "A", 0).r(2, "a", "A", 1, 1, 2, 4).cas(3, "a", 0, "B", 10, 20, 1, 2);
        bad(&b, Rule::DuplicateVersion);
        // A successful Cas must produce expected + 1.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).cas(2, "a", 0, "B", 10, 20, 2, 2);
        bad(&b, Rule::CasVersionMismatch);
    }

    #[test]
    fn bad_unexplainable_badversion() {
        let mut b = B::new();
        b.bad(1, "a", 0, "A", 0, 10);
        bad(&b, Rule::WritesNotLinearizable);
        // A write invoked only after the BadVersion completed does not explain it.
        b.w(2, "a", "B", 20, 30, 1, 1);
        let v = bad(&b, Rule::WritesNotLinearizable);
        assert_eq!(v.ops[0].id, 1, "{v}");
        // A concurrent indeterminate write does not either: it would take version 1, which the write above claims.
        b.wi(3, "a", "C", 5);
        bad(&b, Rule::WritesNotLinearizable);
        // It does when that write got version 2.
        let mut b = B::new();
        b.bad(1, "a", 0, "A", 0, 10).w(2, "a", "B", 20, 30, 2, 1).wi(3, "a", "C", 5);
        good(&b);
    }

    #[test]
    fn bad_read_of_unwritten_value() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).r(2, "a", "Q", 1, 1, 6, 7);
        bad(&b, Rule::ReadUnwritten);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).r(2, "a", "A", 2, 1, 6, 7); // right value, wrong version
        bad(&b, Rule::ReadUnwritten);
        let mut b = B::new();
        b.r(2, "a", "a0", 1, 0, 6, 7); // initial value at version 1
        bad(&b, Rule::ReadUnwritten);
        let mut b = B::new();
        b.bad(1, "a", 5, "A", 0, 5).r(2, "a", "A", 1, 1, 6, 7); // value of a failed Cas
        bad(&b, Rule::ReadUnwritten);
        let mut b = B::new();
        b.w(1, "b", "B", 0, 5, 1, 1).r(2, "a", "B", 1, 1, 6, 7); // value of another key
        bad(&b, Rule::ReadUnwritten);
    }

    #[test]
    fn bad_read_went_back_in_session() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(1, "a", "B", 6, 10, 2, 2);
        b.r(2, "a", "B", 2, 2, 11, 12).r(2, "a", "A", 1, 2, 13, 14);
        bad(&b, Rule::ReadWentBack);
    }

    #[test]
    fn bad_read_missed_own_write() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).r(1, "a", "a0", 0, 1, 6, 7);
        bad(&b, Rule::ReadMissedOwnWrite);
        // Pipelined: the read was issued before the write's reply, but after the write.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).r(1, "a", "a0", 0, 1, 1, 6);
        bad(&b, Rule::ReadMissedOwnWrite);
    }

    #[test]
    fn bad_read_after_sync_missed_write() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).sync(2, 10, 12, 1).r(2, "a", "a0", 0, 1, 13, 14);
        bad(&b, Rule::ReadMissedSyncedWrite);
        // Evidence from another session's read that completed before the sync was invoked.
        let mut b = B::new();
        b.wi(1, "a", "A", 0).r(3, "a", "A", 1, 1, 2, 4).sync(2, 10, 12, 1).r(2, "a", "a0", 0, 1, 13, 14);
        bad(&b, Rule::ReadMissedSyncedWrite);
        // Without the sync the stale read is fine.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).r(2, "a", "a0", 0, 0, 13, 14);
        good(&b);
    }

    #[test]
    fn bad_read_from_the_future() {
        let mut b = B::new();
        b.r(2, "a", "A", 1, 1, 0, 5).w(1, "a", "A", 10, 20, 1, 1);
        bad(&b, Rule::ReadFromFuture);
        // Through the version chain: version 2 follows a write invoked after the read completed.
        let mut b = B::new();
        b.wi(3, "a", "B", 0).r(2, "a", "B", 2, 2, 0, 5).w(1, "a", "A", 10, 20, 1, 1);
        bad(&b, Rule::ReadFromFuture);
    }

    #[test]
    fn bad_zxid_went_back() {
        let mut b = B::new();
        b.r(1, "a", "a0", 0, 5, 0, 1).r(1, "b", "b0", 0, 3, 2, 3);
        bad(&b, Rule::ZxidWentBack);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 7).sync(1, 6, 7, 6);
        bad(&b, Rule::ZxidWentBack);
    }

    #[test]
    fn bad_lost_acknowledged_write() {
        // Acknowledged at version 1, yet a read after a sync sees version 1 holding another write's value.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).wi(3, "a", "B", 1).sync(2, 10, 11, 2).r(2, "a", "B", 1, 2, 12, 13);
        let v = bad(&b, Rule::DuplicateVersion);
        assert!(v.ops.iter().any(|o| o.id == 4), "the read is named: {v}");
        // Acknowledged, then gone: a read after a sync sees the initial value.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).sync(2, 10, 11, 1).r(2, "a", "a0", 0, 1, 12, 13);
        bad(&b, Rule::ReadMissedSyncedWrite);
        // Acknowledged at version 2 but a later write overwrote version 2 with a different value.
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(1, "a", "B", 6, 8, 2, 2).w(2, "a", "C", 10, 12, 2, 3);
        bad(&b, Rule::DuplicateVersion);
    }

    #[test]
    fn bad_zxids_of_writes_and_reads() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(2, "b", "B", 0, 5, 1, 1);
        bad(&b, Rule::WriteZxidOrder);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 2).w(2, "b", "B", 6, 7, 1, 1);
        bad(&b, Rule::WriteZxidOrder);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 2).w(1, "a", "B", 6, 8, 2, 3).r(2, "a", "A", 1, 3, 10, 11);
        bad(&b, Rule::ReadZxidInconsistent);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 2).r(2, "a", "A", 1, 1, 10, 11);
        bad(&b, Rule::ReadZxidInconsistent);
        let h = b.h.clone();
        assert!(check(&h, &Options { check_read_zxids: false, ..Options::default() }).result.is_ok());
    }

    #[test]
    fn malformed_histories() {
        let mut b = B::new();
        b.w(1, "zz", "A", 0, 5, 1, 1);
        bad(&b, Rule::Malformed);
        let mut b = B::new();
        b.w(1, "a", "A", 0, 5, 1, 1).w(2, "a", "A", 0, 5, 2, 2);
        bad(&b, Rule::Malformed);
        let mut b = B::new();
        b.push(1, Call::Read { key: "a".into() }, 0, Some((1, Ret::Synced { zxid: 0 })));
        bad(&b, Rule::Malformed);
        let mut b = B::new();
        b.w(1, "a", "A", 10, 5, 1, 1);
        bad(&b, Rule::Malformed);
    }

    #[test]
    fn budget_exhaustion_is_not_a_pass() {
        let mut b = B::new();
        for i in 0..10 {
            b.w(i, "a", &format!("v{i}"), 0, 100, i as Version + 1, i as Zxid + 1);
        }
        let rep = check(&b.h, &Options { max_states_per_key: 3, ..Options::default() });
        assert_eq!(rep.result.unwrap_err().rule, Rule::SearchBudgetExceeded);
        good(&b);
    }

    #[test]
    fn violation_names_ops_for_humans() {
        let mut b = B::new();
        b.w(1, "a", "A", 0, 10, 1, 1).w(2, "a", "B", 1, 11, 1, 2);
        let text = b.check().result.unwrap_err().to_string();
        assert!(text.contains("DuplicateVersion") && text.contains("op #1 session 1 [0..10]"), "{text}");
        assert!(text.contains("Write(a, \"B\") -> ok version 1 zxid 2"), "{text}");
    }

    /// Brute force: any order of all required ops and some optional ones, respecting real time (a required op whose
    /// deadline is before another's invocation goes first), no pruning.
    fn brute(ops: &[SOp], used: &mut Vec<bool>, version: u32) -> bool {
        if ops.iter().zip(used.iter()).all(|(o, &u)| u || o.deadline.is_none()) {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            let forced_first =
                (0..ops.len()).any(|j| !used[j] && j != i && ops[j].deadline.is_some_and(|d| d < ops[i].invoke));
            if forced_first {
                continue;
            }
            let next = match ops[i].kind {
                SKind::Claimed { version: v } => (v == version + 1).then_some(v),
                SKind::Bad { expected } => (expected != version).then_some(version),
                SKind::Free { expected } => expected.is_none_or(|e| e == version).then_some(version + 1),
            };
            if let Some(nv) = next {
                used[i] = true;
                let ok = brute(ops, used, nv);
                used[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn search_agrees_with_brute_force() {
        let mut rng = Rng(7);
        let (mut yes, mut no) = (0, 0);
        for case in 0..4000 {
            let n = 1 + rng.below(7);
            let ops: Vec<SOp> = (0..n)
                .map(|idx| {
                    let invoke = rng.below(10) as Time;
                    let deadline = Some(invoke + rng.below(8) as Time);
                    let (kind, deadline) = match rng.below(4) {
                        0 => (SKind::Claimed { version: 1 + rng.below(4) as u32 }, deadline),
                        1 => (SKind::Bad { expected: rng.below(4) as u32 }, deadline),
                        2 => (SKind::Free { expected: None }, None),
                        _ => (SKind::Free { expected: Some(rng.below(4) as u32) }, None),
                    };
                    SOp { idx, invoke, deadline, kind }
                })
                .collect();
            let expect = brute(&ops, &mut vec![false; n], 0);
            let mut explored = 0;
            let got = match wgl(&ops, 1_000_000, &mut explored) {
                Outcome::Linearizable => true,
                Outcome::Fail { .. } => false,
                Outcome::Budget(_) => panic!("budget"),
            };
            assert_eq!(got, expect, "case {case}: {ops:?}");
            if expect {
                yes += 1
            } else {
                no += 1
            }
        }
        assert!(yes > 500 && no > 500, "both verdicts exercised: {yes} {no}");
    }

    // ---- randomized ----------------------------------------------------------------------------------------------

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, p: f64) -> bool {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
        }
    }

    struct Params {
        keys: usize,
        sessions: usize,
        ops: usize,
        window: usize,
        p_indet: f64,
        p_read: f64,
        p_cas: f64,
        p_sync: f64,
    }

    /// A generated history and the ground truth: each key's versions' values.
    struct Generated {
        h: History,
        truth: Vec<Vec<Vec<u8>>>,
    }

    /// Runs a sequential reference implementation with random per-session pipelining and crashes: each op is
    /// invoked, later linearized (session ops in FIFO order), later answered in order or lost. Reads are served by a
    /// lagging replica: any zxid between what the session has already seen and the latest.
    fn generate(rng: &mut Rng, p: &Params) -> Generated {
        let names: Vec<String> = (0..p.keys).map(|k| format!("/k{k}")).collect();
        let initial: BTreeMap<String, Vec<u8>> =
            names.iter().map(|k| (k.clone(), format!("init{k}").into_bytes())).collect();
        // Per key: (zxid, value) per version.
        let mut state: Vec<Vec<(Zxid, Vec<u8>)>> = names.iter().map(|k| vec![(0, initial[k].clone())]).collect();
        let mut zxid: Zxid = 0;
        let mut ops: Vec<Op> = vec![];
        let mut queues: Vec<VecDeque<(usize, Option<Ret>)>> = vec![VecDeque::new(); p.sessions];
        let mut floor: Vec<Zxid> = vec![0; p.sessions];
        let windows: Vec<usize> = (0..p.sessions).map(|_| 1 + rng.below(p.window)).collect();
        let mut floating: Vec<usize> = vec![];
        let mut t: Time = 0;
        let mut next_value = 0;

        // Applies op i (at the leader), returns its reply.
        let apply = |state: &mut Vec<Vec<(Zxid, Vec<u8>)>>,
                     op: &Op,
                     s: usize,
                     rng: &mut Rng,
                     floor: &mut Vec<Zxid>,
                     zxid: &mut Zxid|
         -> Ret {
            let k = names.iter().position(|n| n == op.call.key()).unwrap();
            let cur = state[k].len() as Version - 1;
            match &op.call {
                Call::Write { value, .. } | Call::Cas { value, .. } => {
                    if op.call.expected().is_some_and(|e| e as Version != cur) {
                        floor[s] = *zxid;
                        return Ret::BadVersion { zxid: Some(*zxid) };
                    }
                    *zxid += 1;
                    state[k].push((*zxid, value.clone()));
                    floor[s] = *zxid;
                    Ret::Written { version: cur + 1, zxid: *zxid }
                }
                Call::Read { .. } => {
                    let at = if rng.chance(0.5) {
                        *zxid
                    } else {
                        floor[s] + rng.below((*zxid - floor[s]) as usize + 1) as Zxid
                    };
                    let v = state[k].partition_point(|&(z, _)| z <= at) - 1;
                    floor[s] = at;
                    Ret::Read { value: state[k][v].1.clone(), version: v as Version, zxid: at }
                }
                Call::Sync { .. } => {
                    floor[s] = *zxid;
                    Ret::Synced { zxid: *zxid }
                }
            }
        };

        let mut issued = 0;
        while issued < p.ops || queues.iter().any(|q| !q.is_empty()) {
            t += 1;
            if !floating.is_empty() && rng.chance(0.02) {
                let i = floating.swap_remove(rng.below(floating.len()));
                let op = ops[i].clone();
                apply(&mut state, &op, op.session as usize, rng, &mut floor, &mut zxid);
                continue;
            }
            let s = rng.below(p.sessions);
            let q = &mut queues[s];
            let pending = q.iter().position(|(_, r)| r.is_none());
            let r = rng.below(3);
            if r == 0 && issued < p.ops && q.len() < windows[s] {
                let key = names[rng.below(p.keys)].clone();
                let call = if rng.chance(p.p_read) {
                    Call::Read { key }
                } else if rng.chance(p.p_sync) {
                    Call::Sync { key }
                } else {
                    next_value += 1;
                    let value = format!("v{next_value}").into_bytes();
                    if rng.chance(p.p_cas) {
                        let k = names.iter().position(|n| *n == key).unwrap();
                        let cur = state[k].len() as Version - 1;
                        let expected_version = (cur - rng.below(2) as Version + rng.below(2) as Version).max(0);
                        Call::Cas { key, expected_version, value }
                    } else {
                        Call::Write { key, value }
                    }
                };
                q.push_back((ops.len(), None));
                ops.push(Op {
                    id: ops.len() as OpId,
                    session: s as SessionId,
                    call,
                    invoke: t,
                    complete: None,
                    ret: None,
                });
                issued += 1;
            } else if r == 1 && pending.is_some() {
                let j = pending.unwrap();
                let i = q[j].0;
                let op = ops[i].clone();
                let ret = apply(&mut state, &op, s, rng, &mut floor, &mut zxid);
                queues[s][j].1 = Some(ret);
            } else if r == 2 && !q.is_empty() {
                let (i, ret) = q.front().cloned().unwrap();
                let lost = rng.chance(p.p_indet);
                match ret {
                    Some(ret) if !lost => {
                        ops[i].complete = Some(t);
                        ops[i].ret = Some(ret);
                        q.pop_front();
                    }
                    Some(_) => {
                        q.pop_front();
                    }
                    None if lost => {
                        q.pop_front();
                        if ops[i].call.written_value().is_some() && rng.chance(0.5) {
                            floating.push(i);
                        }
                    }
                    None => {}
                }
            }
        }
        let truth = state.into_iter().map(|vs| vs.into_iter().map(|(_, v)| v).collect()).collect();
        Generated { h: History { initial, ops }, truth }
    }

    fn key_index(h: &History, key: &str) -> usize {
        h.initial.keys().position(|k| k == key).unwrap()
    }

    fn set_read(op: &mut Op, value: &[u8], version: Version) {
        if let Some(Ret::Read { value: v, version: ver, .. }) = &mut op.ret {
            *v = value.to_vec();
            *ver = version;
        }
    }

    fn ok_read(op: &Op) -> Option<Version> {
        read_ret(op).map(|(_, v, _)| v as Version)
    }

    fn ok_write(op: &Op) -> Option<Version> {
        written(op).map(|(v, _)| v as Version)
    }

    const MUTATIONS: usize = 9;

    /// Applies mutation `kind`, each of which provably breaks a rule, at a random applicable place.
    fn mutate(g: &Generated, kind: usize, rng: &mut Rng) -> Option<History> {
        let ops = &g.h.ops;
        let n = ops.len();
        let same_key = |i: usize, j: usize| ops[i].call.key() == ops[j].call.key();
        let truth =
            |i: usize, v: Version| -> Vec<u8> { g.truth[key_index(&g.h, ops[i].call.key())][v as usize].clone() };
        let mut cands: Vec<(usize, usize)> = vec![];
        for i in 0..n {
            for j in 0..n {
                let ok = match kind {
                    // Swap the versions of two acknowledged writes that did not overlap.
                    0 => {
                        ok_write(&ops[i]).is_some()
                            && ok_write(&ops[j]).is_some()
                            && same_key(i, j)
                            && ops[i].complete < Some(ops[j].invoke)
                    }
                    // A write returns another write's version.
                    1 => i != j && same_key(i, j) && ok_write(&ops[i]).is_some() && ok_write(&ops[j]).is_some(),
                    // A read's version no longer matches the (acknowledged or initial) value it returned.
                    2 => {
                        i == j
                            && read_ret(&ops[i]).is_some_and(|(v, _, _)| {
                                g.h.initial.values().any(|x| x == v)
                                    || ops.iter().any(|w| w.call.written_value() == Some(v) && ok_write(w).is_some())
                            })
                    }
                    // A later read of a session returns an older version than an earlier one.
                    3 => {
                        i < j
                            && ops[i].session == ops[j].session
                            && same_key(i, j)
                            && ok_read(&ops[i]).is_some_and(|v| v > 0)
                            && ok_read(&ops[j]).is_some()
                    }
                    // A read misses its session's earlier acknowledged write.
                    4 => {
                        i < j
                            && ops[i].session == ops[j].session
                            && same_key(i, j)
                            && ok_write(&ops[i]).is_some()
                            && ok_read(&ops[j]).is_some()
                    }
                    // A session's reply zxid goes back.
                    5 => {
                        i < j
                            && ops[i].session == ops[j].session
                            && ops[i].ret.as_ref().and_then(Ret::zxid).is_some()
                            && ops[j].ret.as_ref().and_then(Ret::zxid).is_some()
                    }
                    // A read sees a write invoked after it completed.
                    6 => {
                        same_key(i, j)
                            && ok_read(&ops[i]).is_some()
                            && ok_write(&ops[j]).is_some()
                            && Some(ops[j].invoke) > ops[i].complete
                    }
                    // A read after a sync misses a write completed before the sync (j: the read; i: the write).
                    7 => {
                        same_key(i, j)
                            && ok_read(&ops[j]).is_some()
                            && ok_write(&ops[i]).is_some()
                            && ops[..j].iter().any(|s| {
                                s.session == ops[j].session
                                    && matches!(s.ret, Some(Ret::Synced { .. }))
                                    && ops[i].complete < Some(s.invoke)
                            })
                    }
                    // A BadVersion Cas claims the version an acknowledged write produced.
                    8 => {
                        same_key(i, j)
                            && matches!(ops[i].ret, Some(Ret::BadVersion { .. }))
                            && ok_write(&ops[j]).zip(ops[i].call.expected()).is_some_and(|(v, e)| v == e as Version + 1)
                    }
                    _ => unreachable!(),
                };
                if ok && (i == j) == (kind == 2) {
                    cands.push((i, j));
                }
            }
        }
        if cands.is_empty() {
            return None;
        }
        let (i, j) = cands[rng.below(cands.len())];
        let mut h = g.h.clone();
        let ops = &mut h.ops;
        match kind {
            0 | 1 => {
                let vj = ok_write(&ops[j]).unwrap();
                let vi = ok_write(&ops[i]).unwrap();
                if let Some(Ret::Written { version, .. }) = &mut ops[i].ret {
                    *version = vj;
                }
                if kind == 0 {
                    if let Some(Ret::Written { version, .. }) = &mut ops[j].ret {
                        *version = vi;
                    }
                }
            }
            2 => {
                let v = ok_read(&ops[i]).unwrap();
                let value = read_ret(&ops[i]).unwrap().0.to_vec();
                set_read(&mut ops[i], &value, v + 1);
            }
            3 => {
                let v = ok_read(&ops[i]).unwrap() - 1;
                let value = truth(i, v);
                set_read(&mut ops[j], &value, v);
            }
            4 | 7 => {
                let v = ok_write(&ops[i]).unwrap() - 1;
                let value = truth(i, v);
                set_read(&mut ops[j], &value, v);
            }
            5 => {
                let z = ops[i].ret.as_ref().and_then(Ret::zxid).unwrap() - 1;
                match ops[j].ret.as_mut().unwrap() {
                    Ret::Written { zxid, .. } | Ret::Read { zxid, .. } | Ret::Synced { zxid } => *zxid = z,
                    Ret::BadVersion { zxid } => *zxid = Some(z),
                }
            }
            6 => {
                let v = ok_write(&ops[j]).unwrap();
                let value = ops[j].call.written_value().unwrap().to_vec();
                set_read(&mut ops[i], &value, v);
            }
            8 => {
                let e = ops[i].call.expected().unwrap() as Version;
                ops[i].ret = Some(Ret::Written { version: e + 1, zxid: Zxid::MAX - i as Zxid });
            }
            _ => unreachable!(),
        }
        Some(h)
    }

    #[test]
    fn randomized_valid_histories_pass_and_mutations_are_caught() {
        let mut rng = Rng(0x5eed);
        let mut applied = [0usize; MUTATIONS];
        let mut explored = 0;
        for round in 0..120 {
            let p = Params {
                keys: 1 + rng.below(3),
                sessions: 2 + rng.below(5),
                ops: 40 + rng.below(120),
                window: 1 + rng.below(3),
                p_indet: [0.0, 0.05, 0.2][rng.below(3)],
                p_read: 0.4,
                p_cas: 0.4,
                p_sync: 0.1,
            };
            let g = generate(&mut rng, &p);
            let rep = check(&g.h, &Options::default());
            if let Err(v) = &rep.result {
                panic!("round {round}: valid history rejected: {v}");
            }
            explored += rep.summary.states_explored;
            for kind in 0..MUTATIONS {
                let Some(h) = mutate(&g, kind, &mut rng) else { continue };
                applied[kind] += 1;
                match check(&h, &Options::default()).result {
                    Ok(()) => panic!("round {round}: mutation {kind} not detected"),
                    Err(v) => assert!(
                        !matches!(v.rule, Rule::Malformed | Rule::SearchBudgetExceeded),
                        "round {round}: mutation {kind}: {v}"
                    ),
                }
            }
        }
        assert!(applied.iter().all(|&a| a >= 10), "every mutation kind exercised: {applied:?}");
        assert!(explored > 0);
    }

    #[test]
    fn thousands_of_ops_on_one_key_with_ten_clients() {
        let mut rng = Rng(42);
        let p = Params {
            keys: 1,
            sessions: 10,
            ops: 4000,
            window: 2,
            p_indet: 0.03,
            p_read: 0.2,
            p_cas: 0.5,
            p_sync: 0.05,
        };
        thousands(&mut rng, &p, 2500);
        // Many lost writes (most never seen), deeper pipelines.
        let p =
            Params { keys: 1, sessions: 10, ops: 3000, window: 3, p_indet: 0.2, p_read: 0.1, p_cas: 0.5, p_sync: 0.0 };
        thousands(&mut rng, &p, 2500);
    }

    fn thousands(rng: &mut Rng, p: &Params, min_writes: usize) {
        let g = generate(rng, p);
        let start = std::time::Instant::now();
        let rep = check(&g.h, &Options::default());
        if let Err(v) = &rep.result {
            panic!("valid history rejected: {v}");
        }
        assert!(rep.summary.writes > min_writes, "{:?}", rep.summary);
        eprintln!("{:?} in {:?}", rep.summary, start.elapsed());
        let h = mutate(&g, 0, rng).unwrap();
        assert!(check(&h, &Options::default()).result.is_err());
    }
}
