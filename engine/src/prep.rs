//! Prep: turns a write request into a Txn, deciding every outcome up front (ZooKeeper's
//! PrepRequestProcessor), with no I/O. Checks run in ZooKeeper's order so the same bad request
//! gets the same error code: path, ACL fix-up, parent, permission, sequence suffix, existence,
//! version.
//!
//! Writes are validated against the tree *plus* the changes of transactions already prepared
//! but not yet applied (the `Pending` overlay), so pipelined writes see each other while
//! readers only ever see applied state.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::acl::{self, Acl, AuthInfo};
use crate::path;
use crate::proto::{CreateKind, CreateRequest, ErrorCode, MultiOp};
use crate::tree::{DataTree, NodeStat, CONFIG, QUOTA, ZOOKEEPER};
use crate::txn::{owner_kind, ttl_owner, OwnerKind, TxnOp, CONTAINER_OWNER, TTL_MAX_MS};

/// What prep needs to know about a node.
#[derive(Debug, Clone)]
pub struct Record {
    pub stat: NodeStat,
    pub child_count: i32,
    pub acl: Arc<Vec<Acl>>,
}

/// Changes of prepared, not yet applied transactions: path → (zxid, node or deleted).
#[derive(Debug, Default)]
pub struct Pending {
    records: HashMap<String, (i64, Option<Record>)>,
    order: VecDeque<(i64, Vec<String>)>,
}

impl Pending {
    /// Forgets the overlay entries that the tree now reflects (all zxids ≤ `applied`).
    pub fn applied(&mut self, applied: i64) {
        while self.order.front().is_some_and(|(z, _)| *z <= applied) {
            let (_, paths) = self.order.pop_front().expect("checked");
            for p in paths {
                if self.records.get(&p).is_some_and(|(z, _)| *z <= applied) {
                    self.records.remove(&p);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// True if `path` has a prepared, unapplied change.
    pub fn touches(&self, path: &str) -> bool {
        self.records.contains_key(path)
    }

    fn commit(&mut self, zxid: i64, local: HashMap<String, Option<Record>>) {
        if local.is_empty() {
            return;
        }
        let paths: Vec<String> = local.keys().cloned().collect();
        for (p, r) in local {
            self.records.insert(p, (zxid, r));
        }
        self.order.push_back((zxid, paths));
    }
}

/// Who is asking, and with which credentials.
pub struct Caller<'a> {
    pub session_id: i64,
    pub auth: &'a AuthInfo,
    pub super_digest: Option<&'a str>,
    /// Set when the session is not global (a local session, `localSessionsEnabled`): the
    /// error an ephemeral create gets, as ZooKeeper's validateCreateRequest gives it
    /// (EphemeralOnLocalSession where the session lives, SessionExpired on a leader that does
    /// not know it).
    pub ephemeral_refusal: Option<ErrorCode>,
}

/// Server-wide switches that change prep's answers.
#[derive(Debug, Clone, Copy)]
pub struct PrepOptions {
    /// TTL nodes (ZooKeeper's zookeeper.extendedTypesEnabled).
    pub ttl_enabled: bool,
}

/// A view over tree + pending + this request's own changes.
pub struct Prep<'a> {
    tree: &'a DataTree,
    pending: &'a mut Pending,
    local: HashMap<String, Option<Record>>,
    zxid: i64,
    opts: PrepOptions,
}

type PrepResult<T> = Result<T, ErrorCode>;

impl<'a> Prep<'a> {
    pub fn new(tree: &'a DataTree, pending: &'a mut Pending, zxid: i64, opts: PrepOptions) -> Self {
        Prep { tree, pending, local: HashMap::new(), zxid, opts }
    }

    pub fn record(&self, p: &str) -> Option<Record> {
        if let Some(r) = self.local.get(p) {
            return r.clone();
        }
        if let Some((_, r)) = self.pending.records.get(p) {
            return r.clone();
        }
        self.tree.get(p).map(|n| Record { stat: n.stat, child_count: n.children.len() as i32, acl: n.acl.clone() })
    }

    fn set(&mut self, p: &str, r: Option<Record>) {
        self.local.insert(p.to_string(), r);
    }

    /// Makes this request's changes visible to later preps.
    pub fn commit(self) {
        let zxid = self.zxid;
        self.pending.commit(zxid, self.local);
    }

    /// Prepares one write op. On error nothing is recorded for that op.
    pub fn op(&mut self, req: &WriteOp, who: &Caller) -> PrepResult<TxnOp> {
        match req {
            WriteOp::Create(c) => self.create(c, who),
            WriteOp::Delete { path, version } => self.delete(path, *version, who, false),
            WriteOp::DeleteContainer { path } => self.delete(path, -1, who, true),
            WriteOp::SetData { path, data, version } => self.set_data(path, data, *version, who),
            WriteOp::SetAcl { path, acl, version } => self.set_acl(path, acl, *version, who),
            WriteOp::Check { path, version } => self.check(path, *version, who),
            WriteOp::CloseSession => Ok(self.close_session(who.session_id)),
        }
    }

    /// Prepares a multi: all ops or none. On the first failure every op reports an error:
    /// Ok for those before it, its own code for it, RuntimeInconsistency after it, exactly as
    /// ZooKeeper reports a failed multi.
    pub fn multi(&mut self, ops: &[WriteOp], who: &Caller) -> TxnOp {
        let mut txns = Vec::with_capacity(ops.len());
        for (i, o) in ops.iter().enumerate() {
            match self.op(o, who) {
                Ok(t) => txns.push(t),
                Err(e) => {
                    self.local.clear();
                    let mut errs = vec![TxnOp::Error(ErrorCode::Ok); i];
                    errs.push(TxnOp::Error(e));
                    errs.resize(ops.len(), TxnOp::Error(ErrorCode::RuntimeInconsistency));
                    return TxnOp::Multi(errs);
                }
            }
        }
        TxnOp::Multi(txns)
    }

    fn existing(&self, p: &str) -> PrepResult<Record> {
        self.record(p).ok_or(ErrorCode::NoNode)
    }

    fn create(&mut self, c: &CreateRequest, who: &Caller) -> PrepResult<TxnOp> {
        let mode = CreateMode::from_flags(c.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl && !self.opts.ttl_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_given = c.kind == CreateKind::Ttl;
        if mode.ttl != ttl_given || (mode.ttl && !(1..=TTL_MAX_MS).contains(&c.ttl_ms)) {
            return Err(ErrorCode::BadArguments);
        }
        if let (true, Some(refusal)) = (mode.ephemeral, who.ephemeral_refusal) {
            return Err(refusal);
        }
        let probe = if mode.sequential { format!("{}1", c.path) } else { c.path.clone() };
        path::validate(&probe).map_err(|_| ErrorCode::BadArguments)?;
        if !mode.sequential && c.path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let acl = acl::fix_acl(&c.acl, who.auth).map_err(|_| ErrorCode::InvalidAcl)?;
        let parent_path = path::parent(&c.path).to_string();
        let mut parent = self.existing(&parent_path)?;
        if !acl::check(&parent.acl, acl::perms::CREATE, who.auth, who.super_digest) {
            return Err(ErrorCode::NoAuth);
        }
        let full = if mode.sequential { format!("{}{:010}", c.path, parent.stat.cversion) } else { c.path.clone() };
        path::validate(&full).map_err(|_| ErrorCode::BadArguments)?;
        if self.record(&full).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(owner_kind(parent.stat.ephemeral_owner), OwnerKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.container {
            CONTAINER_OWNER
        } else if mode.ttl {
            ttl_owner(c.ttl_ms)
        } else if mode.ephemeral {
            who.session_id
        } else {
            0
        };
        let parent_cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.cversion = parent_cversion;
        parent.stat.pzxid = self.zxid;
        parent.child_count += 1;
        self.set(&parent_path, Some(parent));
        let stat = NodeStat {
            czxid: self.zxid,
            mzxid: self.zxid,
            pzxid: self.zxid,
            ephemeral_owner: owner,
            ..Default::default()
        };
        self.set(&full, Some(Record { stat, child_count: 0, acl: Arc::new(acl.clone()) }));
        Ok(TxnOp::Create {
            kind: c.kind,
            path: full,
            data: c.data.clone(),
            acl,
            ephemeral_owner: owner,
            parent_cversion,
        })
    }

    fn delete(&mut self, p: &str, version: i32, who: &Caller, container: bool) -> PrepResult<TxnOp> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        if is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(p).to_string();
        let mut parent = self.existing(&parent_path)?;
        if !container && !acl::check(&parent.acl, acl::perms::DELETE, who.auth, who.super_digest) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.existing(p)?;
        check_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if container && !matches!(owner_kind(node.stat.ephemeral_owner), OwnerKind::Container | OwnerKind::Ttl(_)) {
            return Err(ErrorCode::BadArguments);
        }
        self.remove_node(&parent_path, &mut parent, p);
        Ok(if container {
            TxnOp::DeleteContainer { path: p.to_string() }
        } else {
            TxnOp::Delete { path: p.to_string() }
        })
    }

    fn remove_node(&mut self, parent_path: &str, parent: &mut Record, p: &str) {
        parent.child_count -= 1;
        parent.stat.pzxid = self.zxid;
        self.set(parent_path, Some(parent.clone()));
        self.set(p, None);
    }

    fn set_data(&mut self, p: &str, data: &Option<Vec<u8>>, version: i32, who: &Caller) -> PrepResult<TxnOp> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.existing(p)?;
        if !acl::check(&node.acl, acl::perms::WRITE, who.auth, who.super_digest) {
            return Err(ErrorCode::NoAuth);
        }
        let new_version = check_version(node.stat.version, version)?;
        node.stat.version = new_version;
        node.stat.mzxid = self.zxid;
        self.set(p, Some(node));
        Ok(TxnOp::SetData { path: p.to_string(), data: data.clone(), version: new_version })
    }

    fn set_acl(&mut self, p: &str, acl_in: &[Acl], version: i32, who: &Caller) -> PrepResult<TxnOp> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fix_acl(acl_in, who.auth).map_err(|_| ErrorCode::InvalidAcl)?;
        let mut node = self.existing(p)?;
        if !acl::check(&node.acl, acl::perms::ADMIN, who.auth, who.super_digest) {
            return Err(ErrorCode::NoAuth);
        }
        let new_version = check_version(node.stat.aversion, version)?;
        node.stat.aversion = new_version;
        node.acl = Arc::new(acl.clone());
        self.set(p, Some(node));
        Ok(TxnOp::SetAcl { path: p.to_string(), acl, version: new_version })
    }

    fn check(&mut self, p: &str, version: i32, who: &Caller) -> PrepResult<TxnOp> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.existing(p)?;
        if !acl::check(&node.acl, acl::perms::READ, who.auth, who.super_digest) {
            return Err(ErrorCode::NoAuth);
        }
        check_version(node.stat.version, version)?;
        Ok(TxnOp::Check { path: p.to_string() })
    }

    /// Marks the session's ephemerals (applied or pending) as deleted for later preps.
    fn close_session(&mut self, session_id: i64) -> TxnOp {
        let mut doomed: Vec<String> = self.tree.ephemerals_of(session_id).map(str::to_string).collect();
        for (p, (_, r)) in &self.pending.records {
            if r.as_ref().is_some_and(|r| r.stat.ephemeral_owner == session_id) {
                doomed.push(p.clone());
            }
        }
        doomed.sort();
        doomed.dedup();
        for p in doomed {
            if self.record(&p).is_none() {
                continue;
            }
            let parent_path = path::parent(&p).to_string();
            if let Some(mut parent) = self.record(&parent_path) {
                self.remove_node(&parent_path, &mut parent, &p);
            }
        }
        TxnOp::CloseSession
    }
}

fn is_special(p: &str) -> bool {
    matches!(p, "/" | ZOOKEEPER | QUOTA | CONFIG)
}

/// -1 matches any version; the new version wraps like ZooKeeper's int.
fn check_version(current: i32, expected: i32) -> PrepResult<i32> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// A write, as prep sees it (requests and multi sub-ops share this).
#[derive(Debug, Clone)]
pub enum WriteOp {
    Create(CreateRequest),
    Delete { path: String, version: i32 },
    DeleteContainer { path: String },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    Check { path: String, version: i32 },
    CloseSession,
}

impl WriteOp {
    /// The write sub-ops of a multi; None for a read op (which decoding already rejects).
    pub fn from_multi(op: &MultiOp) -> Option<WriteOp> {
        Some(match op {
            MultiOp::Create(c) => WriteOp::Create(c.clone()),
            MultiOp::Delete { path, version } => WriteOp::Delete { path: path.clone(), version: *version },
            MultiOp::SetData { path, data, version } => {
                WriteOp::SetData { path: path.clone(), data: data.clone(), version: *version }
            }
            MultiOp::Check { path, version } => WriteOp::Check { path: path.clone(), version: *version },
            MultiOp::GetData { .. } | MultiOp::GetChildren { .. } => return None,
        })
    }
}

/// CreateMode flags decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        let m = |ephemeral, sequential, container, ttl| CreateMode { ephemeral, sequential, container, ttl };
        Some(match flags {
            0 => m(false, false, false, false),
            1 => m(true, false, false, false),
            2 => m(false, true, false, false),
            3 => m(true, true, false, false),
            4 => m(false, false, true, false),
            5 => m(false, false, false, true),
            6 => m(false, true, false, true),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests;
