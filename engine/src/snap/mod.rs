//! Snapshots: the tree and the session table archived with rkyv, validated before use, loaded
//! through mmap.
//!
//! A snapshot file is `snapshot.<start_zxid in lower-case hex>` (ZooKeeper's naming) in
//! `dataDir/version-2`. Layout, integers little-endian:
//!
//! ```text
//! header (32 bytes)
//!   0  magic       8 bytes  "WRNSNAP1"
//!   8  version     u32      FORMAT_VERSION
//!  12  reserved    u32      0
//!  16  start_zxid  i64      last applied zxid when the snapshot began; the log is replayed
//!                           from start_zxid + 1
//!  24  reserved    u32      0
//!  28  header_crc  u32      crc32c of bytes 0..28
//! chunks, each starting at a 16-byte aligned offset
//!   0  len         u32      payload length
//!   4  crc         u32      crc32c of the payload
//!   8  kind        u32      1 nodes, 4 sessions, 3 trailer (2: sessions without passwords,
//!                           written before passwords were random; still read)
//!  12  reserved    u32      0
//!  16  payload     len bytes: an rkyv archive (Vec<NodeRecord>, Vec<SessionRecord>, Trailer)
//!      padding     zeros up to the next multiple of 16
//! ```
//!
//! The trailer is the last chunk: node and session counts, the last applied zxid when the
//! snapshot finished, and a digest (wrapping sum of `node_digest` over every node written). A
//! file without a valid trailer is incomplete. Loading checks the header, every chunk's crc,
//! every archive with rkyv's validator (bytecheck) before reading it, the counts and the
//! digest; any failure rejects the whole file.
//!
//! Snapshots are *fuzzy*: taken in chunks while writes continue, so a node may be captured
//! before or after a transaction in (start_zxid, end_zxid]. Replaying the log from start_zxid + 1
//! converges on the live tree because transactions carry their outcome (`tree::DataTree::apply`
//! tolerates replaying a change that is already in the snapshot).

use std::io::{self, Write};

use rkyv::rancor::Error as RkyvError;
use rkyv::{Archive, Deserialize, Serialize};

use crate::acl::{Acl, Id};
use crate::tree::{DataTree, Node, NodeStat};

pub mod backup;

pub const MAGIC: &[u8; 8] = b"WRNSNAP1";
pub const FORMAT_VERSION: u32 = 1;
pub use crate::header::HEADER_LEN;
const CHUNK_HEADER_LEN: usize = 16;
const ALIGN: usize = 16;
/// Nodes per chunk: bounds the memory a chunk needs and the pause per step of a fuzzy snapshot.
pub const NODES_PER_CHUNK: usize = 4096;
/// A node chunk is also flushed at this many bytes of path and data: 4096 nodes of ~1 MiB would
/// overflow the u32 chunk length.
pub const CHUNK_BYTES_TARGET: usize = 16 << 20;
const KIND_NODES: u32 = 1;
/// Sessions written before passwords were random: read back with `UNUSABLE_PASSWD`.
const KIND_SESSIONS_NO_PASSWD: u32 = 2;
const KIND_SESSIONS: u32 = 4;
const KIND_TRAILER: u32 = 3;

const _: () = assert!(CHUNK_HEADER_LEN % ALIGN == 0 && HEADER_LEN % ALIGN == 0);

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AclRecord {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<AclRecord>,
    pub stat: NodeStat,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionRecord {
    pub id: i64,
    pub timeout_ms: i32,
    /// The session's password (a secret: the dump commands never print it).
    pub passwd: [u8; 16],
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct SessionRecordNoPasswd {
    id: i64,
    timeout_ms: i32,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Trailer {
    pub node_count: u64,
    pub session_count: u64,
    pub end_zxid: i64,
    pub digest: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("not a Warren snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    #[error("corrupt at offset {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("incomplete: no trailer (the snapshot was never finished)")]
    Incomplete,
}

fn corrupt(offset: usize, what: impl Into<String>) -> SnapError {
    SnapError::Corrupt { offset: offset as u64, what: what.into() }
}

/// A node's contribution to the snapshot digest: crc32c (hardware-accelerated, stable across
/// processes, unlike std's hasher) over its path, data, ACL and stat, widened to 64 bits by
/// hashing the path and the rest separately.
pub fn record_digest(r: &NodeRecord) -> u64 {
    let path = crc32c::crc32c(r.path.as_bytes());
    let mut h = crc32c::crc32c(&[r.data.is_some() as u8]);
    h = crc32c::crc32c_append(h, r.data.as_deref().unwrap_or_default());
    for a in &r.acl {
        h = crc32c::crc32c_append(h, &a.perms.to_le_bytes());
        h = crc32c::crc32c_append(h, a.scheme.as_bytes());
        h = crc32c::crc32c_append(h, a.id.as_bytes());
    }
    let st = &r.stat;
    let mut stat = [0u8; 6 * 8 + 3 * 4];
    for (i, v) in [st.czxid, st.mzxid, st.ctime, st.mtime, st.ephemeral_owner, st.pzxid].iter().enumerate() {
        stat[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    for (i, v) in [st.version, st.cversion, st.aversion].iter().enumerate() {
        stat[48 + i * 4..52 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    h = crc32c::crc32c_append(h, &stat);
    ((path as u64) << 32) | h as u64
}

pub fn node_record(path: &str, n: &Node) -> NodeRecord {
    let acl = n.acl.iter().map(|a| AclRecord { perms: a.perms, scheme: a.id.scheme.clone(), id: a.id.id.clone() });
    NodeRecord { path: path.to_string(), data: n.data.clone(), acl: acl.collect(), stat: n.stat }
}

/// The digest of a whole tree, as a non-fuzzy snapshot of it would record.
pub fn tree_digest(tree: &DataTree) -> u64 {
    tree.iter().fold(0u64, |acc, (p, n)| acc.wrapping_add(record_digest(&node_record(p, n))))
}

pub fn encode_header(start_zxid: i64) -> [u8; HEADER_LEN] {
    crate::header::encode(MAGIC, FORMAT_VERSION, start_zxid)
}

/// Writes a snapshot incrementally: nodes are buffered and flushed as chunks.
pub struct SnapshotWriter<W: Write> {
    out: W,
    pending: Vec<NodeRecord>,
    pending_bytes: usize,
    node_count: u64,
    session_count: u64,
    digest: u64,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(start_zxid: i64, mut out: W) -> io::Result<Self> {
        out.write_all(&encode_header(start_zxid))?;
        Ok(SnapshotWriter {
            out,
            pending: Vec::with_capacity(NODES_PER_CHUNK),
            pending_bytes: 0,
            node_count: 0,
            session_count: 0,
            digest: 0,
        })
    }

    pub fn add_node(&mut self, path: &str, node: &Node) -> io::Result<()> {
        let r = node_record(path, node);
        self.digest = self.digest.wrapping_add(record_digest(&r));
        self.pending_bytes += r.path.len() + r.data.as_ref().map_or(0, Vec::len);
        self.pending.push(r);
        self.node_count += 1;
        if self.pending.len() >= NODES_PER_CHUNK || self.pending_bytes >= CHUNK_BYTES_TARGET {
            self.flush_nodes()?;
        }
        Ok(())
    }

    fn flush_nodes(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = rkyv::to_bytes::<RkyvError>(&self.pending).map_err(io::Error::other)?;
        self.pending.clear();
        self.pending_bytes = 0;
        self.chunk(KIND_NODES, &bytes)
    }

    pub fn add_sessions(&mut self, sessions: &[SessionRecord]) -> io::Result<()> {
        self.session_count += sessions.len() as u64;
        let bytes = rkyv::to_bytes::<RkyvError>(&sessions.to_vec()).map_err(io::Error::other)?;
        self.chunk(KIND_SESSIONS, &bytes)
    }

    fn chunk(&mut self, kind: u32, payload: &[u8]) -> io::Result<()> {
        write_chunk(&mut self.out, kind, payload)
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self, end_zxid: i64) -> io::Result<W> {
        self.flush_nodes()?;
        let t =
            Trailer { node_count: self.node_count, session_count: self.session_count, end_zxid, digest: self.digest };
        let bytes = rkyv::to_bytes::<RkyvError>(&t).map_err(io::Error::other)?;
        self.chunk(KIND_TRAILER, &bytes)?;
        Ok(self.out)
    }
}

/// One chunk: header (length, crc32c, kind), payload, zero padding to the alignment.
fn write_chunk(out: &mut impl Write, kind: u32, payload: &[u8]) -> io::Result<()> {
    if payload.len() > u32::MAX as usize {
        return Err(io::Error::other(format!("snapshot chunk of {} bytes exceeds the format's limit", payload.len())));
    }
    let mut h = [0u8; CHUNK_HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    h[8..12].copy_from_slice(&kind.to_le_bytes());
    out.write_all(&h)?;
    out.write_all(payload)?;
    let pad = (ALIGN - payload.len() % ALIGN) % ALIGN;
    out.write_all(&[0u8; ALIGN][..pad])
}

/// The snapshot image of a whole tree at one zxid (not fuzzy: start and end are `zxid`).
pub fn encode_tree(tree: &DataTree, sessions: &[SessionRecord], zxid: i64) -> Vec<u8> {
    let build = || -> std::io::Result<Vec<u8>> {
        let mut w = SnapshotWriter::new(zxid, Vec::new())?;
        for (p, n) in tree.iter() {
            w.add_node(p, n)?;
        }
        w.add_sessions(sessions)?;
        w.finish(zxid)
    };
    build().expect("writing to memory cannot fail")
}

/// A snapshot read back and validated.
pub struct LoadedSnapshot {
    pub tree: DataTree,
    pub sessions: Vec<SessionRecord>,
    pub start_zxid: i64,
    pub end_zxid: i64,
    pub digest: u64,
}

/// The start zxid of a snapshot image whose header is valid.
fn read_header(bytes: &[u8]) -> Result<i64, SnapError> {
    use crate::header::HeaderError;
    crate::header::decode(bytes, MAGIC, FORMAT_VERSION).map_err(|e| match e {
        HeaderError::Short => SnapError::Incomplete,
        HeaderError::BadMagic => SnapError::BadMagic,
        HeaderError::Version(v) => SnapError::UnsupportedVersion(v),
        HeaderError::Checksum => corrupt(28, "header checksum mismatch"),
    })
}

/// One chunk of an image, its checksum and padding checked.
struct Chunk<'a> {
    kind: u32,
    payload: &'a [u8],
    /// Offset of the payload in the image.
    body: usize,
    /// Offset of the next chunk.
    next: usize,
}

fn next_chunk(bytes: &[u8], pos: usize) -> Result<Chunk<'_>, SnapError> {
    if bytes.len() - pos < CHUNK_HEADER_LEN {
        return Err(SnapError::Incomplete);
    }
    let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4")) as usize;
    let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4"));
    let kind = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4"));
    if bytes[pos + 12..pos + 16] != [0u8; 4] {
        return Err(corrupt(pos + 12, "reserved chunk header bytes are not zero"));
    }
    let body = pos + CHUNK_HEADER_LEN;
    if len > bytes.len() - body {
        return Err(SnapError::Incomplete);
    }
    let payload = &bytes[body..body + len];
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt(pos, "chunk checksum mismatch"));
    }
    let next = body + len + (ALIGN - len % ALIGN) % ALIGN;
    // Padding is zero: nothing in the file goes unchecked.
    if next > bytes.len() || bytes[body + len..next].iter().any(|&b| b != 0) {
        return Err(corrupt(body + len, "bad chunk padding"));
    }
    Ok(Chunk { kind, payload, body, next })
}

/// The trailer, which must be the image's last chunk.
fn last_chunk(bytes: &[u8], payload: &[u8], body: usize, next: usize) -> Result<Trailer, SnapError> {
    let bad = |e: RkyvError| corrupt(body, format!("archive failed validation: {e}"));
    let t = rkyv::access::<rkyv::Archived<Trailer>, RkyvError>(payload).map_err(bad)?;
    let t = rkyv::deserialize::<Trailer, RkyvError>(t).map_err(bad)?;
    if next != bytes.len() {
        return Err(corrupt(next, "bytes after the trailer"));
    }
    Ok(t)
}

/// `bytes` copied to a 16-byte aligned buffer, as rkyv's archives (and so [`decode`]) need
/// when the image did not come from an mmap.
pub fn aligned_copy(bytes: &[u8]) -> rkyv::util::AlignedVec<16> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    aligned
}

/// Validates a whole snapshot image and rebuilds the tree. `bytes` must start 16-byte aligned
/// (an mmap or an rkyv AlignedVec is).
pub fn decode(bytes: &[u8]) -> Result<LoadedSnapshot, SnapError> {
    let start_zxid = read_header(bytes)?;
    let mut nodes: Vec<(String, Option<Vec<u8>>, Vec<Acl>, NodeStat)> = Vec::new();
    let mut sessions = Vec::new();
    let mut digest = 0u64;
    let mut pos = HEADER_LEN;
    let trailer = loop {
        let Chunk { kind, payload, body, next } = next_chunk(bytes, pos)?;
        let bad = |e: RkyvError| corrupt(body, format!("archive failed validation: {e}"));
        match kind {
            KIND_NODES => {
                let recs = rkyv::access::<rkyv::Archived<Vec<NodeRecord>>, RkyvError>(payload).map_err(bad)?;
                for r in recs.iter() {
                    let r: NodeRecord = rkyv::deserialize::<NodeRecord, RkyvError>(r).map_err(bad)?;
                    digest = digest.wrapping_add(record_digest(&r));
                    let acl = r
                        .acl
                        .into_iter()
                        .map(|a| Acl { perms: a.perms, id: Id { scheme: a.scheme, id: a.id } })
                        .collect();
                    nodes.push((r.path, r.data, acl, r.stat));
                }
            }
            KIND_SESSIONS => {
                let recs = rkyv::access::<rkyv::Archived<Vec<SessionRecord>>, RkyvError>(payload).map_err(bad)?;
                sessions.extend(recs.iter().map(|s| SessionRecord {
                    id: s.id.to_native(),
                    timeout_ms: s.timeout_ms.to_native(),
                    passwd: s.passwd,
                }));
            }
            KIND_SESSIONS_NO_PASSWD => {
                let recs =
                    rkyv::access::<rkyv::Archived<Vec<SessionRecordNoPasswd>>, RkyvError>(payload).map_err(bad)?;
                sessions.extend(recs.iter().map(|s| SessionRecord {
                    id: s.id.to_native(),
                    timeout_ms: s.timeout_ms.to_native(),
                    passwd: crate::session::UNUSABLE_PASSWD,
                }));
            }
            KIND_TRAILER => break last_chunk(bytes, payload, body, next)?,
            other => return Err(corrupt(pos + 8, format!("unknown chunk kind {other}"))),
        }
        pos = next;
    };
    let pos = bytes.len();
    if trailer.node_count != nodes.len() as u64 || trailer.session_count != sessions.len() as u64 {
        return Err(corrupt(pos, "trailer counts do not match the chunks"));
    }
    if trailer.digest != digest {
        return Err(corrupt(pos, "digest mismatch"));
    }
    let tree = DataTree::from_nodes(nodes, trailer.end_zxid).map_err(|e| corrupt(pos, e))?;
    Ok(LoadedSnapshot { tree, sessions, start_zxid, end_zxid: trailer.end_zxid, digest })
}

/// `warren snap-dump`: text (like ZooKeeper's SnapshotFormatter) or JSON lines.
pub fn dump(s: &LoadedSnapshot, json: bool, out: &mut impl Write) -> io::Result<()> {
    let mut paths: Vec<&String> = s.tree.iter().map(|(p, _)| p).collect();
    paths.sort();
    if !json {
        writeln!(
            out,
            "Warren snapshot: start zxid {:#x}, end zxid {:#x}, {} nodes, {} sessions",
            s.start_zxid,
            s.end_zxid,
            paths.len(),
            s.sessions.len()
        )?;
    }
    for p in paths {
        let n = s.tree.get(p).expect("listed");
        let st = n.stat();
        if json {
            writeln!(
                out,
                "{{\"path\":{:?},\"czxid\":{},\"ctime\":{},\"mzxid\":{},\"mtime\":{},\"pzxid\":{},\"cversion\":{},\"version\":{},\"aversion\":{},\"ephemeral_owner\":{},\"data_length\":{}}}",
                p, st.czxid, st.ctime, st.mzxid, st.mtime, st.pzxid, st.cversion, st.version, st.aversion, st.ephemeral_owner, st.data_length
            )?;
        } else {
            writeln!(out, "{p}")?;
            writeln!(out, "  cZxid = {:#x}\n  ctime = {}\n  mZxid = {:#x}\n  mtime = {}\n  pZxid = {:#x}\n  cversion = {}\n  dataVersion = {}\n  aclVersion = {}\n  ephemeralOwner = {:#x}\n  dataLength = {}",
                st.czxid, st.ctime, st.mzxid, st.mtime, st.pzxid, st.cversion, st.version, st.aversion, st.ephemeral_owner, st.data_length)?;
        }
    }
    let mut sessions = s.sessions.clone();
    sessions.sort();
    for SessionRecord { id, timeout_ms: timeout, .. } in sessions {
        if json {
            writeln!(out, "{{\"session\":{id},\"timeout_ms\":{timeout}}}")?;
        } else {
            writeln!(out, "Session {id:#x} timeout {timeout} ms")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
