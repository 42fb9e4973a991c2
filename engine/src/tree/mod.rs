//! The DataTree: znodes, their Stat, ephemeral/container/TTL indexes. Pure and single-owner.
//!
//! `apply` executes a committed Txn and reports which watches it triggers; reads borrow.
//! Nothing here validates permissions or versions: that was decided by `prep` before the Txn
//! was logged, so replaying the log reproduces the same tree.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use thiserror::Error;

use crate::acl::{self, Acl};
use crate::path;
use crate::proto::{event, CreateKind, ErrorCode, Stat};
use crate::txn::{owner_kind, OwnerKind, Txn, TxnOp};

/// Why a set of nodes (a snapshot's content) does not make a tree ([`DataTree::from_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TreeError {
    #[error("the tree has no root node")]
    NoRoot,
    #[error("node {path} has no parent {parent}")]
    NoParent { path: String, parent: String },
}

/// The message as text, for callers that collect reasons as strings (`snap`'s corruption
/// reports, `zkformat::import`'s errors).
impl From<TreeError> for String {
    fn from(e: TreeError) -> String {
        e.to_string()
    }
}

/// The persisted part of a Stat (dataLength and numChildren are derived).
///
/// `cversion` here counts *creates* of children, as ZooKeeper stores it: sequential suffixes
/// come from it. Clients see `cversion * 2 - numChildren` (every create that is no longer
/// there was a delete), which counts every change to the children (see `Node::stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// None is a null buffer: ZooKeeper keeps null data apart from empty data.
    pub data: Option<Vec<u8>>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: NodeStat,
    pub children: BTreeSet<String>,
}

impl Node {
    /// The Stat clients see: cversion counts creates and deletes of children, and the
    /// internal ephemeralOwner of container and TTL nodes shows as 0 (ZooKeeper's copyStat).
    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match owner_kind(s.ephemeral_owner) {
            OwnerKind::Container | OwnerKind::Ttl(_) => 0,
            _ => s.ephemeral_owner,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: data_len(&self.data) as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// A watch-triggering change: `path` changed in the way `event_type` says. `acl` is the ACL of
/// the node the event is about (the parent's for NodeChildrenChanged): only watchers allowed
/// to READ it are told (ZooKeeper 3.8 with the CVE-2024-23944 fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event_type: i32,
    pub acl: Arc<Vec<Acl>>,
}

/// The outcome of one applied op (a multi has one per sub-op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Created { kind: CreateKind, path: String, stat: Stat },
    Deleted,
    SetData(Stat),
    SetAcl(Stat),
    Checked,
    SessionCreated,
    SessionClosed,
    Multi(Vec<OpResult>),
    Error(ErrorCode),
}

/// Length of possibly-null data (null counts as 0, as in ZooKeeper's Stat).
pub fn data_len(d: &Option<Vec<u8>>) -> usize {
    d.as_ref().map_or(0, Vec::len)
}

pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

#[derive(Debug)]
pub struct DataTree {
    nodes: HashMap<String, Node>,
    /// Session → its ephemeral paths; shared strings, so that `dump` copies a reference count
    /// per node on the owner, not the path.
    ephemerals: HashMap<i64, BTreeSet<Arc<str>>>,
    containers: HashSet<String>,
    ttls: HashSet<String>,
    acl_cache: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
    pub last_zxid: i64,
    data_bytes: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree holding "/", "/zookeeper", "/zookeeper/quota" and "/zookeeper/config", as a fresh
    /// ZooKeeper has.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            acl_cache: HashMap::new(),
            last_zxid: 0,
            data_bytes: 0,
        };
        let open = t.intern_acl(acl::open_acl_unsafe());
        let read = t.intern_acl(acl::read_acl_unsafe());
        let system = [("/", &open), (ZOOKEEPER, &open), (QUOTA, &open), (CONFIG, &read)];
        for (p, a) in system {
            let node = Node {
                // ZooKeeper's system nodes hold empty (not null) data.
                data: Some(Vec::new()),
                acl: a.clone(),
                // ZooKeeper sets the config node's read-only ACL with setACL(version -1), which
                // leaves its aversion at -1; Curator reads that Stat on every connect.
                stat: NodeStat { aversion: if p == CONFIG { -1 } else { 0 }, ..NodeStat::default() },
                children: BTreeSet::new(),
            };
            t.nodes.insert(p.to_string(), node);
            t.data_bytes += p.len() as u64;
            if p != "/" {
                let parent = path::parent(p).to_string();
                t.nodes.get_mut(&parent).expect("system parent").children.insert(path::name(p).to_string());
            }
        }
        t
    }

    /// Writes the ensemble's membership into `/zookeeper/config` the way ZooKeeper does at
    /// start-up (not a transaction: every server does it to its own tree): the data, version
    /// -1, mzxid 0 (the static configuration's version), mtime now.
    pub fn set_config_node(&mut self, data: Vec<u8>, now_ms: i64) {
        let node = self.nodes.get_mut(CONFIG).expect("system node");
        self.data_bytes = self.data_bytes.saturating_sub(data_len(&node.data) as u64) + data.len() as u64;
        node.data = Some(data);
        node.stat.version = -1;
        node.stat.mzxid = 0;
        node.stat.mtime = now_ms;
    }

    /// Rebuilds a tree from its nodes (a snapshot's content): children sets, the ephemeral,
    /// container and TTL indexes and the ACL cache are derived, never trusted from the input.
    /// Fails, naming the path, if a node's parent is missing or "/" is absent.
    pub fn from_nodes(
        nodes: impl IntoIterator<Item = (String, Option<Vec<u8>>, Vec<Acl>, NodeStat)>,
        last_zxid: i64,
    ) -> Result<DataTree, TreeError> {
        let nodes = nodes.into_iter();
        let mut t = DataTree {
            // Sized up front: rehashing a million 150-byte entries costs more than the inserts.
            nodes: HashMap::with_capacity(nodes.size_hint().0),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            acl_cache: HashMap::new(),
            last_zxid,
            data_bytes: 0,
        };
        let mut last_acl: Option<Arc<Vec<Acl>>> = None;
        for (p, data, acl, stat) in nodes {
            // Most nodes share their neighbour's ACL: skip hashing it then.
            let acl = match &last_acl {
                Some(a) if **a == acl => a.clone(),
                _ => {
                    let a = t.intern_acl(acl);
                    last_acl = Some(a.clone());
                    a
                }
            };
            t.data_bytes += (p.len() + data_len(&data)) as u64;
            match owner_kind(stat.ephemeral_owner) {
                OwnerKind::Persistent => {}
                OwnerKind::Container => {
                    t.containers.insert(p.clone());
                }
                OwnerKind::Ttl(_) => {
                    t.ttls.insert(p.clone());
                }
                OwnerKind::Ephemeral(s) => {
                    t.ephemerals.entry(s).or_default().insert(Arc::from(p.as_str()));
                }
            }
            t.nodes.insert(p, Node { data, acl, stat, children: BTreeSet::new() });
        }
        if !t.nodes.contains_key("/") {
            return Err(TreeError::NoRoot);
        }
        // Children sets in bulk: names grouped by parent (one hash of the parent per node),
        // then each parent's names collected into its set at once (sorted, then built in one
        // pass). Inserting a million names one by one, in hash order, spent most of a 1 M-node
        // load in memcmp and in shifting B-tree nodes; sorting every (parent, name) pair
        // compared parents over and over.
        let mut sets: Vec<(String, BTreeSet<String>)> = Vec::new();
        {
            let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
            for p in t.nodes.keys().filter(|p| p.as_str() != "/") {
                groups.entry(path::parent(p)).or_default().push(path::name(p));
            }
            // In path order, so that a missing parent is reported the same way every time.
            let mut parents: Vec<(&str, Vec<&str>)> = groups.into_iter().collect();
            parents.sort_unstable_by_key(|(parent, _)| *parent);
            for (parent, names) in parents {
                if !t.nodes.contains_key(parent) {
                    let first = names.iter().min().expect("a group has a name");
                    return Err(TreeError::NoParent { parent: parent.to_string(), path: path::join(parent, first) });
                }
                sets.push((parent.to_string(), names.into_iter().map(str::to_string).collect()));
            }
        }
        for (parent, children) in sets {
            t.nodes.get_mut(&parent).expect("checked above").children = children;
        }
        Ok(t)
    }

    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acl_cache.get(&acl) {
            return a.clone();
        }
        let a = Arc::new(acl.clone());
        self.acl_cache.insert(acl, a.clone());
        a
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    /// Every path whose node `txn` may create, change or remove when applied to this tree
    /// (before it is applied): its paths and their parents (whose cversion, pzxid and children
    /// change), and for a closing session its ephemerals and their parents. A superset is
    /// harmless; the online backup (`snap::backup`) relies on nothing outside it changing.
    pub fn paths_changed_by(&self, txn: &Txn, out: &mut BTreeSet<String>) {
        self.paths_changed_by_op(txn.hdr.session_id, &txn.op, out);
    }

    fn paths_changed_by_op(&self, session_id: i64, op: &TxnOp, out: &mut BTreeSet<String>) {
        let mut with_parent = |p: &str| {
            out.insert(p.to_string());
            out.insert(crate::path::parent(p).to_string());
        };
        match op {
            TxnOp::Create { path, .. } | TxnOp::Delete { path } | TxnOp::DeleteContainer { path } => with_parent(path),
            TxnOp::SetData { path, .. } | TxnOp::SetAcl { path, .. } => {
                out.insert(path.clone());
            }
            TxnOp::CloseSession => {
                for p in self.ephemerals_of(session_id) {
                    with_parent(p);
                }
            }
            TxnOp::Multi(ops) => {
                for op in ops {
                    self.paths_changed_by_op(session_id, op, out);
                }
            }
            TxnOp::CreateSession { .. } | TxnOp::Check { .. } | TxnOp::Error(_) => {}
        }
    }

    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &str> {
        self.ephemerals.get(&session_id).into_iter().flatten().map(|p| &**p)
    }

    pub fn ephemeral_sessions(&self) -> impl Iterator<Item = (&i64, &BTreeSet<Arc<str>>)> {
        self.ephemerals.iter()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    pub fn ttls(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    /// Number of descendants of `path` (getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                count += n.children.len();
                stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            }
        }
        count
    }

    /// Every node, for snapshots and dumps.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Applies a committed transaction. Never panics on a Txn that does not fit the tree (a
    /// replay over a fuzzy snapshot can produce those): it reports an error result instead.
    pub fn apply(&mut self, txn: &Txn, triggers: &mut Vec<Trigger>) -> OpResult {
        let r = self.apply_op(txn, &txn.op, triggers);
        self.last_zxid = self.last_zxid.max(txn.hdr.zxid);
        r
    }

    fn apply_op(&mut self, txn: &Txn, op: &TxnOp, triggers: &mut Vec<Trigger>) -> OpResult {
        let zxid = txn.hdr.zxid;
        let time = txn.hdr.time_ms;
        match op {
            TxnOp::CreateSession { .. } => OpResult::SessionCreated,
            TxnOp::CloseSession => {
                self.kill_session(txn.hdr.session_id, zxid, triggers);
                OpResult::SessionClosed
            }
            TxnOp::Create { kind, path, data, acl, ephemeral_owner, parent_cversion } => {
                match self.create(path, data, acl, *ephemeral_owner, *parent_cversion, zxid, time, triggers) {
                    Ok(stat) => OpResult::Created { kind: *kind, path: path.clone(), stat },
                    Err(e) => OpResult::Error(e),
                }
            }
            TxnOp::Delete { path } | TxnOp::DeleteContainer { path } => match self.delete(path, zxid, triggers) {
                Ok(()) => OpResult::Deleted,
                Err(e) => OpResult::Error(e),
            },
            TxnOp::SetData { path, data, version } => match self.set_data(path, data, *version, zxid, time, triggers) {
                Ok(stat) => OpResult::SetData(stat),
                Err(e) => OpResult::Error(e),
            },
            TxnOp::SetAcl { path, acl, version } => match self.set_acl(path, acl, *version) {
                Ok(stat) => OpResult::SetAcl(stat),
                Err(e) => OpResult::Error(e),
            },
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Multi(ops) => OpResult::Multi(ops.iter().map(|o| self.apply_op(txn, o, triggers)).collect()),
            TxnOp::Error(e) => OpResult::Error(*e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        if path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = path::parent(path);
        if !self.nodes.contains_key(parent_path) {
            return Err(ErrorCode::NoNode);
        }
        if self.nodes.contains_key(path) {
            // Replaying over a fuzzy snapshot: the node may have been deleted and created
            // again after its parent was captured. Keep the parent's counters moving forward,
            // as ZooKeeper does, so replay converges on the live tree.
            let parent = self.nodes.get_mut(parent_path).expect("checked above");
            if parent_cversion > parent.stat.cversion {
                parent.stat.cversion = parent_cversion;
                parent.stat.pzxid = zxid;
            }
            return Err(ErrorCode::NodeExists);
        }
        let acl = self.intern_acl(acl.to_vec());
        let node_acl = acl.clone();
        let parent = self.nodes.get_mut(parent_path).expect("checked above");
        let parent_acl = parent.acl.clone();
        parent.children.insert(path::name(path).to_string());
        // Replaying over a fuzzy snapshot may see an older cversion: never move it backwards.
        if parent_cversion > parent.stat.cversion {
            parent.stat.cversion = parent_cversion;
            parent.stat.pzxid = zxid;
        }
        let stat = NodeStat {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let node = Node { data: data.clone(), acl, stat, children: BTreeSet::new() };
        let out = node.stat();
        self.data_bytes += (path.len() + data_len(data)) as u64;
        self.nodes.insert(path.to_string(), node);
        match owner_kind(owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.insert(path.to_string());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            OwnerKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(Arc::from(path));
            }
        }
        triggers.push(Trigger { path: path.to_string(), event_type: event::NODE_CREATED, acl: node_acl });
        triggers.push(Trigger {
            path: parent_path.to_string(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
        Ok(out)
    }

    fn delete(&mut self, path: &str, zxid: i64, triggers: &mut Vec<Trigger>) -> Result<(), ErrorCode> {
        let parent_path = path::parent(path);
        if path == "/" || !self.nodes.contains_key(parent_path) {
            return Err(ErrorCode::NoNode);
        }
        let Some(node) = self.nodes.remove(path) else {
            return Err(ErrorCode::NoNode);
        };
        let parent = self.nodes.get_mut(parent_path).expect("checked above");
        let parent_acl = parent.acl.clone();
        parent.children.remove(path::name(path));
        // The stored cversion counts creates only; the delete shows in the derived value.
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        self.data_bytes = self.data_bytes.saturating_sub((path.len() + data_len(&node.data)) as u64);
        match owner_kind(node.stat.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
        }
        triggers.push(Trigger { path: path.to_string(), event_type: event::NODE_DELETED, acl: node.acl });
        triggers.push(Trigger {
            path: parent_path.to_string(),
            event_type: event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
        Ok(())
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        self.data_bytes = self.data_bytes.saturating_sub(data_len(&node.data) as u64) + data_len(data) as u64;
        node.data = data.clone();
        node.stat.version = version;
        node.stat.mzxid = zxid;
        node.stat.mtime = time;
        triggers.push(Trigger { path: path.to_string(), event_type: event::NODE_DATA_CHANGED, acl: node.acl.clone() });
        Ok(node.stat())
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let acl = self.intern_acl(acl.to_vec());
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        node.acl = acl;
        node.stat.aversion = version;
        Ok(node.stat())
    }

    fn kill_session(&mut self, session_id: i64, zxid: i64, triggers: &mut Vec<Trigger>) {
        let paths: Vec<String> = self.ephemerals_of(session_id).map(str::to_string).collect();
        for p in paths {
            // Deepest first is not needed (ephemerals have no children), but keep order stable.
            let _ = self.delete(&p, zxid, triggers);
        }
        self.ephemerals.remove(&session_id);
    }
}

#[cfg(test)]
mod tests;
