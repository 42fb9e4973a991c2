//! Writing a tree as ZooKeeper 3.8's snapshot (FileSnap, uncompressed; layout in the module
//! docs of `zkformat`), for `warren export-zk`. Pure: the caller hands over the tree, the
//! sessions and where the bytes go (`server::export_zk` does the disk work).
//!
//! What ZooKeeper 3.8 writes, and so what is written here:
//! - FileHeader "ZKSN", version 2, dbid -1.
//! - The sessions (id, timeout in ms). ZooKeeper keeps no password: it derives one from the id.
//! - The ACL cache: every distinct ACL list once, numbered from 1 in the order the node walk
//!   first meets it (ZooKeeper numbers them as it first sees them too); -1, its reference for a
//!   null list, is never needed because every Warren node has a list.
//! - The nodes, parents before children (a depth-first walk from the root, whose path is "";
//!   children in name order, so the same tree gives the same bytes), each with its data (null
//!   kept apart from empty), its ACL reference and the nine StatPersisted fields as stored:
//!   cversion counts creates, ephemeralOwner holds a session id, `i64::MIN` for a container or
//!   0xff in the high byte and the TTL below for a TTL node, as ZooKeeper encodes them.
//!   `/zookeeper/config` is written as a fresh ZooKeeper has it (empty, read-only ACL): a
//!   Warren ensemble's membership means nothing to the ZooKeeper that loads the file, and a
//!   ZooKeeper ensemble rewrites the node from its own configuration at start-up.
//! - "/" then the first seal (Adler32 of every byte so far, then "/").
//! - The digest section: the zxid, digest version 2 and ZooKeeper's digest of the tree
//!   (`import::zookeeper_digest`, which the import checks against real ZooKeeper files), then
//!   a second seal over everything before it. ZooKeeper compares it with its own digest of the
//!   loaded tree when the zxid is the file's (it is) and logs a mismatch.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::Arc;

use super::import::{zookeeper_digest, ZK_DIGEST_VERSION};
use super::{Adler32, FORMAT_VERSION, SNAP_MAGIC};
use crate::acl::Acl;
use crate::path;
use crate::proto::jute::Writer;
use crate::proto::records::write_acls;
use crate::tree::{DataTree, Node, CONFIG};

/// The dbid every ZooKeeper snapshot carries.
const DBID: i64 = -1;
/// The progress callback is called every this many nodes (and once at the end).
pub const PROGRESS_EVERY: u64 = 4096;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    pub zxid: i64,
    pub nodes: u64,
    pub sessions: usize,
    pub acls: usize,
    pub digest: i64,
    pub bytes: u64,
}

/// A writer that keeps the running Adler32 of what went through it.
struct Checked<W: Write> {
    out: W,
    sum: Adler32,
    bytes: u64,
}

impl<W: Write> Checked<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.sum.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    /// ZooKeeper's seal: the checksum of everything written so far, then the string "/".
    fn seal(&mut self, w: &mut Writer) -> io::Result<()> {
        w.buf.clear();
        w.i64(self.sum.value() as i64).string("/");
        self.put(&w.buf)
    }
}

/// Visits every node, parents before children, children in name order.
fn walk(tree: &DataTree, mut each: impl FnMut(&str, &Node) -> io::Result<()>) -> io::Result<()> {
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let Some(node) = tree.get(&p) else {
            // The tree's children sets come from its own nodes: a miss is a bug, not bad input.
            return Err(io::Error::other(format!("the tree lists {p} as a child but has no such node")));
        };
        each(&p, node)?;
        stack.extend(node.children.iter().rev().map(|c| path::join(&p, c)));
    }
    Ok(())
}

/// Writes `tree` and `sessions` (id → timeout in ms) as ZooKeeper's snapshot of `zxid` into
/// `out`. `progress` gets the number of nodes written so far, now and then.
pub fn write_snapshot<W: Write>(
    tree: &DataTree,
    sessions: &BTreeMap<i64, i32>,
    zxid: i64,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(W, ExportSummary)> {
    let fresh = DataTree::new();
    let config = fresh.get(CONFIG).expect("a fresh tree has /zookeeper/config");
    let node_of = |p: &str, n: &'_ Node| -> Node {
        if p == CONFIG {
            config.clone()
        } else {
            n.clone()
        }
    };
    // The ACL cache first: it precedes the nodes in the file.
    let mut ids: HashMap<Arc<Vec<Acl>>, i64> = HashMap::new();
    let mut order: Vec<Arc<Vec<Acl>>> = Vec::new();
    walk(tree, |p, n| {
        let acl = if p == CONFIG { &config.acl } else { &n.acl };
        if !ids.contains_key(acl) {
            ids.insert(acl.clone(), order.len() as i64 + 1);
            order.push(acl.clone());
        }
        Ok(())
    })?;
    let mut o = Checked { out, sum: Adler32::new(), bytes: 0 };
    let mut w = Writer::new();
    w.i32(SNAP_MAGIC).i32(FORMAT_VERSION).i64(DBID);
    w.i32(sessions.len() as i32);
    for (&id, &timeout_ms) in sessions {
        w.i64(id).i32(timeout_ms);
    }
    w.i32(order.len() as i32);
    for (i, acl) in order.iter().enumerate() {
        w.i64(i as i64 + 1);
        write_acls(&mut w, acl);
    }
    o.put(&w.buf)?;
    let mut nodes = 0u64;
    walk(tree, |p, n| {
        let n = node_of(p, n);
        w.buf.clear();
        w.string(if p == "/" { "" } else { p }).opt_buffer(n.data.as_deref()).i64(ids[&n.acl]);
        let s = &n.stat;
        w.i64(s.czxid).i64(s.mzxid).i64(s.ctime).i64(s.mtime);
        w.i32(s.version).i32(s.cversion).i32(s.aversion).i64(s.ephemeral_owner).i64(s.pzxid);
        o.put(&w.buf)?;
        nodes += 1;
        if nodes.is_multiple_of(PROGRESS_EVERY) {
            progress(nodes);
        }
        Ok(())
    })?;
    progress(nodes);
    w.buf.clear();
    w.string("/");
    o.put(&w.buf)?;
    o.seal(&mut w)?;
    let digest = zookeeper_digest(tree);
    w.buf.clear();
    w.i64(zxid).i32(ZK_DIGEST_VERSION).i64(digest);
    o.put(&w.buf)?;
    o.seal(&mut w)?;
    let summary = ExportSummary { zxid, nodes, sessions: sessions.len(), acls: order.len(), digest, bytes: o.bytes };
    Ok((o.out, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{self, Id};
    use crate::tree::NodeStat;
    use crate::txn::{ttl_owner, CONTAINER_OWNER};
    use crate::zkformat::snapshot;

    fn stat(z: i64, owner: i64) -> NodeStat {
        NodeStat {
            czxid: z,
            mzxid: z + 1,
            ctime: 1_000 + z,
            mtime: 2_000 + z,
            version: 3,
            cversion: 7,
            aversion: 2,
            ephemeral_owner: owner,
            pzxid: z + 2,
        }
    }

    fn sample_tree() -> DataTree {
        let digest = vec![Acl::new(31, Id::new("digest", "bob:x")), Acl::new(1, Id::new("ip", "10.0.0.0/8"))];
        let base = DataTree::new();
        let mut nodes: Vec<_> = base.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.acl.to_vec(), n.stat)).collect();
        nodes.extend([
            ("/a".to_string(), Some(vec![0, 1, 2, 255]), digest.clone(), stat(5, 0)),
            ("/a/e".to_string(), None, acl::open_acl_unsafe(), stat(9, 0x100)),
            ("/a/c".to_string(), Some(vec![]), acl::open_acl_unsafe(), stat(11, CONTAINER_OWNER)),
            ("/t".to_string(), Some(b"t".to_vec()), digest, stat(13, ttl_owner(60_000))),
        ]);
        DataTree::from_nodes(nodes, 13).expect("tree")
    }

    fn export(tree: &DataTree, sessions: &BTreeMap<i64, i32>) -> (Vec<u8>, ExportSummary) {
        let mut seen = Vec::new();
        let (bytes, summary) =
            write_snapshot(tree, sessions, 0x1_0000_000d, Vec::new(), &mut |n| seen.push(n)).expect("write");
        assert_eq!(seen.last().copied(), Some(summary.nodes));
        (bytes, summary)
    }

    #[test]
    fn the_zookeeper_reader_reads_back_every_node_session_and_the_digest() {
        let tree = sample_tree();
        let sessions = BTreeMap::from([(0x100, 30_000), (0x200, 4_000)]);
        let (bytes, summary) = export(&tree, &sessions);
        assert!(snapshot::looks_complete(&bytes));
        assert_eq!(summary.bytes, bytes.len() as u64);
        assert_eq!(summary.nodes as usize, tree.node_count());
        let s = snapshot::parse(&bytes).expect("parse");
        assert_eq!(s.dbid, -1);
        assert_eq!(s.sessions, vec![(0x100, 30_000), (0x200, 4_000)]);
        assert_eq!(s.nodes.len(), tree.node_count());
        for n in &s.nodes {
            let ours = tree.get(&n.path).expect("node");
            assert_eq!((&n.data, &n.acl[..], n.stat), (&ours.data, &ours.acl[..], ours.stat), "{}", n.path);
        }
        // Parents before children; the root first.
        assert_eq!(s.nodes[0].path, "/");
        let at = |p: &str| s.nodes.iter().position(|n| n.path == p).expect(p);
        assert!(at("/a") < at("/a/c") && at("/a/c") < at("/a/e"));
        let digest = s.digest.expect("digest section");
        assert_eq!((digest.zxid, digest.version, digest.digest), (0x1_0000_000d, 2, Some(zookeeper_digest(&tree))));
        // Three distinct ACL lists (open, digest+ip, the config node's read-only one).
        assert_eq!(summary.acls, 3);
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes() {
        let sessions = BTreeMap::from([(7, 10_000)]);
        assert_eq!(export(&sample_tree(), &sessions).0, export(&sample_tree(), &sessions).0);
    }

    #[test]
    fn the_config_node_is_written_as_a_fresh_zookeeper_has_it() {
        let mut tree = sample_tree();
        tree.set_config_node(b"server.1=127.0.0.1:2888:3888:participant".to_vec(), 5);
        let (bytes, _) = export(&tree, &BTreeMap::new());
        let s = snapshot::parse(&bytes).expect("parse");
        let config = s.nodes.iter().find(|n| n.path == CONFIG).expect("config");
        let fresh = DataTree::new();
        let want = fresh.get(CONFIG).expect("config");
        assert_eq!((&config.data, &config.acl[..], config.stat), (&want.data, &want.acl[..], want.stat));
    }

    #[test]
    fn an_empty_tree_round_trips() {
        let (bytes, summary) = export(&DataTree::new(), &BTreeMap::new());
        assert_eq!(summary.nodes, 4);
        let s = snapshot::parse(&bytes).expect("parse");
        assert!(s.sessions.is_empty());
        assert_eq!(s.nodes.len(), 4);
    }
}
