//! ZooKeeper's snapshot (FileSnap, layout in the module docs of `zkformat`).

use std::collections::HashMap;

use super::{adler32, FormatError, SNAP_MAGIC};
use crate::acl::{self, Acl};
use crate::proto::jute::Reader;
use crate::proto::records::read_acls;
use crate::tree::NodeStat;

/// One znode as the snapshot stores it. `path` is "/" for the root (stored as "").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkNode {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub stat: NodeStat,
}

/// The digest a 3.6+ snapshot ends with (not recomputed: Warren's tree digest differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkDigest {
    pub zxid: i64,
    pub version: i32,
    /// Only for version 2 and later (older versions wrote a hex string, not compared).
    pub digest: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkSnapshot {
    pub dbid: i64,
    /// (session id, timeout in ms), in file order.
    pub sessions: Vec<(i64, i32)>,
    /// Nodes in file order: every parent before its children.
    pub nodes: Vec<ZkNode>,
    pub digest: Option<ZkDigest>,
}

/// The acl reference ZooKeeper writes for world:anyone:cdrwa without a cache entry.
const OPEN_UNSAFE_ACL_REF: i64 = -1;
/// StatPersisted: 6 longs and 3 ints.
const STAT_PERSISTED_LEN: usize = 6 * 8 + 3 * 4;

/// Whether the bytes end as a finished snapshot does (ZooKeeper's isValidSnapshot: the seal's
/// "/" string is last). A file without it was cut short while being written, and ZooKeeper
/// skips it for an older snapshot.
pub fn looks_complete(bytes: &[u8]) -> bool {
    bytes.len() >= 10 && bytes[bytes.len() - 5..] == [0, 0, 0, 1, b'/']
}

/// Decodes a whole (decompressed) snapshot and checks its seals.
pub fn parse(bytes: &[u8]) -> Result<ZkSnapshot, FormatError> {
    let mut r = Reader::new(bytes);
    let d = |r: &Reader, e| FormatError::decode(0, e).at_least(r.position());
    let magic = r.i32().map_err(|e| d(&r, e))?;
    if magic != SNAP_MAGIC {
        return Err(FormatError::new(0, format!("not a ZooKeeper snapshot (magic {magic:#x}, expected \"ZKSN\")")));
    }
    let version = r.i32().map_err(|e| d(&r, e))?;
    if version != super::FORMAT_VERSION {
        return Err(FormatError::new(4, format!("unsupported snapshot format version {version}")));
    }
    let dbid = r.i64().map_err(|e| d(&r, e))?;
    let sessions = r.vec(12, |r| Ok((r.i64()?, r.i32()?))).map_err(|e| d(&r, e))?;
    let acls = read_acl_cache(&mut r)?;
    let nodes = read_nodes(&mut r, &acls)?;
    check_seal(&mut r, bytes)?;
    let mut digest = None;
    if r.remaining() > 0 {
        let z = r.i64().map_err(|e| d(&r, e))?;
        let version = r.i32().map_err(|e| d(&r, e))?;
        let value = if version < 2 {
            r.string().map_err(|e| d(&r, e))?;
            None
        } else {
            Some(r.i64().map_err(|e| d(&r, e))?)
        };
        check_seal(&mut r, bytes)?;
        digest = (z > 0).then_some(ZkDigest { zxid: z, version, digest: value });
    }
    if r.remaining() > 0 {
        // 3.9 with serializeLastProcessedZxid: the last processed zxid, sealed again.
        r.i64().map_err(|e| d(&r, e))?;
        check_seal(&mut r, bytes)?;
    }
    if r.remaining() > 0 {
        return Err(FormatError::new(r.position(), format!("{} unexpected bytes after the snapshot", r.remaining())));
    }
    Ok(ZkSnapshot { dbid, sessions, nodes, digest })
}

impl FormatError {
    /// Decode errors without an offset of their own are placed where the reader stopped.
    fn at_least(mut self, pos: usize) -> FormatError {
        self.offset = self.offset.max(pos as u64);
        self
    }
}

fn read_acl_cache(r: &mut Reader) -> Result<HashMap<i64, Vec<Acl>>, FormatError> {
    let at = r.position();
    let count = r.i32().map_err(|e| FormatError::decode(0, e))?;
    if count < 0 || count as usize > r.remaining() / 12 {
        return Err(FormatError::new(at, format!("ACL cache count {count} does not fit the file")));
    }
    let mut map = HashMap::with_capacity(count as usize);
    for _ in 0..count {
        let entry = r.position();
        let id = r.i64().map_err(|e| FormatError::decode(0, e))?;
        let list = read_acls(r).map_err(|e| FormatError::decode(0, e))?;
        if map.insert(id, list).is_some() {
            return Err(FormatError::new(entry, format!("ACL cache entry {id} appears twice")));
        }
    }
    Ok(map)
}

fn read_nodes(r: &mut Reader, acls: &HashMap<i64, Vec<Acl>>) -> Result<Vec<ZkNode>, FormatError> {
    let mut nodes = Vec::new();
    loop {
        let at = r.position();
        let path = r.string().map_err(|e| FormatError::decode(0, e))?;
        if path == "/" {
            return Ok(nodes);
        }
        let data = r.opt_buffer().map_err(|e| FormatError::decode(0, e))?;
        let acl_at = r.position();
        let acl_ref = r.i64().map_err(|e| FormatError::decode(0, e))?;
        if r.remaining() < STAT_PERSISTED_LEN {
            return Err(FormatError::new(r.position(), format!("node {path:?}: its stat is cut short")));
        }
        let stat = read_stat(r).map_err(|e| FormatError::decode(0, e))?;
        let acl = match acls.get(&acl_ref) {
            Some(a) => a.clone(),
            None if acl_ref == OPEN_UNSAFE_ACL_REF => acl::open_acl_unsafe(),
            None => return Err(FormatError::new(acl_at, format!("node {path:?} refers to unknown ACL {acl_ref}"))),
        };
        let path = match path.as_str() {
            "" => "/".to_string(),
            p if p.starts_with('/') && !p.ends_with('/') => path,
            _ => return Err(FormatError::new(at, format!("invalid node path {path:?}"))),
        };
        nodes.push(ZkNode { path, data, acl, stat });
    }
}

fn read_stat(r: &mut Reader) -> crate::proto::jute::DecodeResult<NodeStat> {
    Ok(NodeStat {
        czxid: r.i64()?,
        mzxid: r.i64()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        pzxid: r.i64()?,
    })
}

/// The seal: the Adler32 of everything before it, then the string "/".
fn check_seal(r: &mut Reader, bytes: &[u8]) -> Result<(), FormatError> {
    let at = r.position();
    let expected = adler32(&bytes[..at]) as i64;
    let found = r.i64().map_err(|e| FormatError::decode(0, e))?;
    let slash = r.string().map_err(|e| FormatError::decode(0, e))?;
    if found != expected {
        return Err(FormatError::new(
            at,
            format!("checksum mismatch: the file says {found:#x}, the bytes before it give {expected:#x}"),
        ));
    }
    if slash != "/" {
        return Err(FormatError::new(at + 8, format!("seal ends with {slash:?}, not \"/\"")));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::acl::Id;
    use crate::proto::jute::Writer;

    fn stat(z: i64) -> NodeStat {
        NodeStat {
            czxid: z,
            mzxid: z + 1,
            ctime: 1000,
            mtime: 2000,
            version: 3,
            cversion: 4,
            aversion: 5,
            ephemeral_owner: 0,
            pzxid: z + 2,
        }
    }

    fn seal(w: &mut Writer) {
        let sum = adler32(&w.buf) as i64;
        w.i64(sum).string("/");
    }

    fn node(w: &mut Writer, path: &str, data: Option<&[u8]>, acl_ref: i64, s: NodeStat) {
        w.string(path).opt_buffer(data).i64(acl_ref);
        w.i64(s.czxid).i64(s.mzxid).i64(s.ctime).i64(s.mtime);
        w.i32(s.version).i32(s.cversion).i32(s.aversion).i64(s.ephemeral_owner).i64(s.pzxid);
    }

    /// A 3.8-shaped snapshot: two sessions, one ACL cache entry, root, /a (digest ACL,
    /// binary data), /a/e (ephemeral, null data), a digest section.
    pub(crate) fn sample() -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(SNAP_MAGIC).i32(2).i64(7);
        w.i32(2).i64(0x100).i32(30_000).i64(0x200).i32(4_000);
        w.i32(1).i64(1).i32(2);
        w.i32(31).string("digest").string("bob:x");
        w.i32(1).string("ip").string("10.0.0.1");
        node(&mut w, "", Some(b""), -1, stat(0));
        node(&mut w, "/a", Some(&[0, 1, 2, 255]), 1, stat(5));
        node(&mut w, "/a/e", None, -1, NodeStat { ephemeral_owner: 0x100, ..stat(9) });
        w.string("/");
        seal(&mut w);
        // The digest of an earlier zxid than the file's name: not compared by the import.
        w.i64(8).i32(2).i64(0x1234);
        seal(&mut w);
        w.buf
    }

    #[test]
    fn reads_sessions_acls_nodes_and_digest() {
        let bytes = sample();
        assert!(looks_complete(&bytes));
        let s = parse(&bytes).expect("parse");
        assert_eq!(s.dbid, 7);
        assert_eq!(s.sessions, vec![(0x100, 30_000), (0x200, 4_000)]);
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.nodes[0].path, "/");
        assert_eq!(s.nodes[0].acl, acl::open_acl_unsafe());
        assert_eq!(s.nodes[1].path, "/a");
        assert_eq!(s.nodes[1].data.as_deref(), Some(&[0u8, 1, 2, 255][..]));
        assert_eq!(
            s.nodes[1].acl,
            vec![Acl::new(31, Id::new("digest", "bob:x")), Acl::new(1, Id::new("ip", "10.0.0.1"))]
        );
        assert_eq!(s.nodes[1].stat, stat(5));
        assert_eq!(s.nodes[2].data, None);
        assert_eq!(s.nodes[2].stat.ephemeral_owner, 0x100);
        assert_eq!(s.digest, Some(ZkDigest { zxid: 8, version: 2, digest: Some(0x1234) }));
    }

    #[test]
    fn a_snapshot_without_the_digest_section_is_read() {
        let bytes = sample();
        // Cut after the first seal (3.5 wrote nothing more).
        let first_seal_end = bytes.len() - (8 + 4 + 8) - (8 + 4 + 1);
        let s = parse(&bytes[..first_seal_end]).expect("parse 3.5 snapshot");
        assert_eq!(s.digest, None);
        assert_eq!(s.nodes.len(), 3);
    }

    #[test]
    fn every_flipped_byte_or_cut_is_an_error_never_a_panic() {
        let bytes = sample();
        // Cut right after the first seal, the file is a complete 3.5 snapshot.
        let first_seal_end = bytes.len() - (8 + 4 + 8) - (8 + 4 + 1);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(parse(&b).is_err(), "flipped byte {i} went unnoticed");
            if i != first_seal_end {
                assert!(parse(&bytes[..i]).is_err(), "cut at {i} went unnoticed");
            }
        }
    }

    #[test]
    fn damage_names_the_offset() {
        let mut bytes = sample();
        bytes[0] = b'X';
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.reason.contains("ZKSN"), "{e}");
        let mut bytes = sample();
        let data_at = bytes.windows(4).position(|w| w == [0, 1, 2, 255]).expect("data");
        bytes[data_at + 1] = 9;
        let e = parse(&bytes).unwrap_err();
        assert!(e.reason.contains("checksum"), "{e}");
        assert!(e.offset as usize > data_at, "{e}");
    }

    #[test]
    fn an_unknown_acl_reference_is_damage() {
        let mut w = Writer::new();
        w.i32(SNAP_MAGIC).i32(2).i64(0).i32(0).i32(0);
        node(&mut w, "", None, 42, stat(0));
        w.string("/");
        seal(&mut w);
        let e = parse(&w.buf).unwrap_err();
        assert!(e.reason.contains("unknown ACL 42"), "{e}");
    }
}
