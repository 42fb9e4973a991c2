//! Online backup: a fuzzy capture made consistent off the owner.
//!
//! The owner captures the tree a chunk at a time, as for an ordinary snapshot, and notes every
//! path a transaction changes meanwhile (`Machine::start_tap`, `DataTree::paths_changed_by`).
//! At the end it takes those nodes again (or their absence), with the sessions and the last
//! zxid: every other node was not changed during the capture, so its captured record is
//! already the state at that zxid. [`patch`] replaces the noted paths' records in the capture:
//! chunks holding none of them are copied as they are, the others rewritten without them, the
//! current records appended, and the trailer's counts and digest adjusted (the digest is a
//! wrapping sum). The result is an ordinary snapshot whose start and end zxids are equal, so
//! the backup file needs no log: `warren snap-dump` reads it, `warren restore` installs it.

use std::collections::HashSet;

use rkyv::rancor::Error as RkyvError;

use super::{
    corrupt, decode, last_chunk, next_chunk, read_header, record_digest, write_chunk, Chunk, LoadedSnapshot,
    NodeRecord, SessionRecord, SnapError, Trailer, HEADER_LEN, KIND_NODES, KIND_SESSIONS, KIND_SESSIONS_NO_PASSWD,
    KIND_TRAILER, NODES_PER_CHUNK,
};

/// What the owner hands over at the end of a capture.
pub struct Changes {
    /// Every path changed during the capture, with its node now (None: it does not exist now).
    pub nodes: Vec<(String, Option<NodeRecord>)>,
    /// The session table now.
    pub sessions: Vec<SessionRecord>,
    /// The last zxid applied now: the state the result holds.
    pub zxid: i64,
}

/// A fuzzy capture and what changed during it, made into the snapshot at `changes.zxid`.
pub fn patch(image: &[u8], changes: &Changes) -> Result<Vec<u8>, SnapError> {
    let aligned = super::aligned_copy(image);
    let bytes: &[u8] = &aligned;
    read_header(bytes)?;
    let changed: HashSet<&str> = changes.nodes.iter().map(|(p, _)| p.as_str()).collect();
    let mut out = Vec::with_capacity(image.len() + 4096);
    out.extend_from_slice(&super::encode_header(changes.zxid));
    let (mut removed, mut removed_digest) = (0u64, 0u64);
    let mut pos = HEADER_LEN;
    let trailer = loop {
        let Chunk { kind, payload, body, next } = next_chunk(bytes, pos)?;
        let bad = |e: RkyvError| corrupt(body, format!("archive failed validation: {e}"));
        match kind {
            KIND_NODES => {
                let recs = rkyv::access::<rkyv::Archived<Vec<NodeRecord>>, RkyvError>(payload).map_err(bad)?;
                if recs.iter().any(|r| changed.contains(r.path.as_str())) {
                    let mut kept: Vec<NodeRecord> = Vec::with_capacity(recs.len());
                    for r in recs.iter() {
                        let r: NodeRecord = rkyv::deserialize::<NodeRecord, RkyvError>(r).map_err(bad)?;
                        if changed.contains(r.path.as_str()) {
                            removed += 1;
                            removed_digest = removed_digest.wrapping_add(record_digest(&r));
                        } else {
                            kept.push(r);
                        }
                    }
                    if !kept.is_empty() {
                        let bytes = rkyv::to_bytes::<RkyvError>(&kept).map_err(|e| corrupt(body, e.to_string()))?;
                        write_chunk(&mut out, KIND_NODES, &bytes)?;
                    }
                } else {
                    write_chunk(&mut out, KIND_NODES, payload)?;
                }
            }
            // The sessions now replace the sessions captured.
            KIND_SESSIONS | KIND_SESSIONS_NO_PASSWD => {}
            KIND_TRAILER => break last_chunk(bytes, payload, body, next)?,
            other => return Err(corrupt(pos + 8, format!("unknown chunk kind {other}"))),
        }
        pos = next;
    };
    let now: Vec<&NodeRecord> = changes.nodes.iter().filter_map(|(_, r)| r.as_ref()).collect();
    let mut added_digest = 0u64;
    for piece in now.chunks(NODES_PER_CHUNK) {
        let recs: Vec<NodeRecord> = piece.iter().map(|r| (*r).clone()).collect();
        added_digest = recs.iter().fold(added_digest, |d, r| d.wrapping_add(record_digest(r)));
        let bytes = rkyv::to_bytes::<RkyvError>(&recs).map_err(|e| corrupt(pos, e.to_string()))?;
        write_chunk(&mut out, KIND_NODES, &bytes)?;
    }
    let sessions = rkyv::to_bytes::<RkyvError>(&changes.sessions).map_err(|e| corrupt(pos, e.to_string()))?;
    write_chunk(&mut out, KIND_SESSIONS, &sessions)?;
    let t = Trailer {
        node_count: trailer
            .node_count
            .checked_sub(removed)
            .ok_or_else(|| corrupt(pos, "the trailer counts fewer nodes than the chunks hold"))?
            + now.len() as u64,
        session_count: changes.sessions.len() as u64,
        end_zxid: changes.zxid,
        digest: trailer.digest.wrapping_sub(removed_digest).wrapping_add(added_digest),
    };
    let bytes = rkyv::to_bytes::<RkyvError>(&t).map_err(|e| corrupt(pos, e.to_string()))?;
    write_chunk(&mut out, KIND_TRAILER, &bytes)?;
    Ok(out)
}

/// A backup fetched from a running server, validated.
pub struct Fetched {
    pub zxid: i64,
    pub image: Vec<u8>,
    pub nodes: usize,
    pub sessions: usize,
}

/// `warren backup`: GETs `url` (an AdminServer base such as `http://127.0.0.1:8080`, or a
/// whole `/commands/snapshot` URL), with `Authorization: digest <auth>` when `auth` is given,
/// and checks that the body is a whole, consistent snapshot whose zxid is the `last_zxid`
/// header's.
pub fn fetch(url: &str, auth: Option<&str>) -> Result<Fetched, String> {
    let url = command_url(url, "/snapshot", "/commands/snapshot?streaming=true");
    let mut request = agent().get(&url);
    if let Some(a) = auth {
        request = request.header("Authorization", format!("digest {a}"));
    }
    let mut response = request.call().map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let last_zxid = header("last_zxid");
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| format!("{url}: reading the snapshot: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)])));
    }
    let want = last_zxid
        .as_deref()
        .and_then(|z| i64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| format!("{url}: no last_zxid header: not a Warren snapshot command"))?;
    let loaded = check(&body).map_err(|e| format!("{url}: the snapshot received is not usable: {e}"))?;
    if loaded.start_zxid != want {
        return Err(format!("{url}: the snapshot holds zxid {:#x}, the header says {want:#x}", loaded.start_zxid));
    }
    Ok(Fetched { zxid: want, nodes: loaded.tree.node_count(), sessions: loaded.sessions.len(), image: body })
}

/// `url` when it names the command already, else the AdminServer base `url` with `path`.
fn command_url(url: &str, command: &str, path: &str) -> String {
    if url.contains(command) {
        url.to_string()
    } else {
        format!("{}{path}", url.trim_end_matches('/'))
    }
}

/// An HTTP client that hands every status back as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// What a running server answered to `/commands/restore`.
pub struct Uploaded {
    /// The zxid the server now stands at (the first of a new epoch).
    pub zxid: i64,
    pub backup_zxid: i64,
}

/// `warren restore --admin URL FILE`: checks `image` here, then POSTs it to `url`'s
/// `/commands/restore` (a standalone server with `admin.restore.enabled=true`), with
/// `Authorization: digest <auth>` when `auth` is given.
pub fn upload(url: &str, auth: Option<&str>, image: &[u8]) -> Result<Uploaded, String> {
    check(image).map_err(|e| format!("not a usable backup: {e}; nothing was sent"))?;
    let url = command_url(url, "/restore", "/commands/restore");
    let mut request = agent().post(&url).header("Content-Type", "application/octet-stream");
    if let Some(a) = auth {
        request = request.header("Authorization", format!("digest {a}"));
    }
    let mut response = request.send(image).map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().map_err(|e| format!("{url}: reading the answer: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let field = |name: &str| answer.get(name).and_then(serde_json::Value::as_i64);
    match (status, field("last_zxid"), field("backup_zxid")) {
        (200, Some(zxid), Some(backup_zxid)) => Ok(Uploaded { zxid, backup_zxid }),
        _ => Err(format!("{url}: HTTP {status}: {}", body.trim())),
    }
}

/// Validates a backup image: a whole snapshot, not fuzzy (start and end zxids equal).
pub fn check(image: &[u8]) -> Result<LoadedSnapshot, String> {
    let loaded = decode(&super::aligned_copy(image)).map_err(|e| e.to_string())?;
    if loaded.start_zxid != loaded.end_zxid {
        return Err(format!(
            "a fuzzy snapshot (taken from zxid {:#x} to {:#x}) needs its log; a backup from /commands/snapshot does not",
            loaded.start_zxid, loaded.end_zxid
        ));
    }
    Ok(loaded)
}

/// The zxid a backup restored online takes: the first of a new epoch, above the server's
/// last zxid and the backup's. Clients reconnecting after the restore have seen zxids up to
/// the server's old one, and a server refuses a client that has seen more than it holds;
/// and the old log, whose records are all below it, can never be replayed over the restored
/// snapshot, whatever point a crash interrupts the restore at. None when no epoch is left.
pub fn restored_zxid(current: i64, backup: i64) -> Option<i64> {
    let epoch = (current.max(backup).max(0) >> 32) + 1;
    (epoch <= u32::MAX as i64 >> 1).then_some(epoch << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{open_acl_unsafe, Acl, Id};
    use crate::proto::CreateKind;
    use crate::snap::{node_record, SnapshotWriter};
    use crate::tree::DataTree;
    use crate::txn::{Txn, TxnHeader, TxnOp};
    use std::collections::BTreeSet;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn create(path: String, owner: i64) -> TxnOp {
        TxnOp::Create {
            kind: CreateKind::Create,
            path,
            data: Some(b"new".to_vec()),
            acl: open_acl_unsafe(),
            ephemeral_owner: owner,
            parent_cversion: -1,
        }
    }

    /// A random change to a tree of /d<i>/n<j> nodes (some of them ephemeral, owned by
    /// sessions 1..4): creates, deletes, data and ACL changes, session closes, multis.
    fn random_op(r: &mut Rng) -> (i64, TxnOp) {
        let path = |r: &mut Rng| format!("/d{}/n{}", r.below(20), r.below(700));
        let session = 1 + r.below(4) as i64;
        let op = match r.below(7) {
            0 => create(path(r), if r.below(3) == 0 { session } else { 0 }),
            1 => TxnOp::Delete { path: path(r) },
            2 | 3 => TxnOp::SetData { path: path(r), data: Some(vec![r.below(256) as u8; 3]), version: 1 },
            4 => TxnOp::SetAcl { path: path(r), acl: vec![Acl::new(1, Id::new("world", "anyone"))], version: 1 },
            5 => TxnOp::CloseSession,
            _ => TxnOp::Multi(vec![create(path(r), 0), TxnOp::SetData { path: path(r), data: None, version: 2 }]),
        };
        (session, op)
    }

    fn records(t: &DataTree) -> Vec<NodeRecord> {
        let mut v: Vec<NodeRecord> = t.iter().map(|(p, n)| node_record(p, n)).collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// A capture of ~12k nodes (three chunks) with random transactions applied between the
    /// chunks, as the owner does it; patched, it must be exactly the tree at the last zxid.
    #[test]
    fn a_patched_fuzzy_capture_is_the_tree_at_the_last_zxid() {
        for seed in 0..8u64 {
            let mut r = Rng(seed);
            let mut live = DataTree::new();
            let mut zxid = 0;
            let mut apply = |live: &mut DataTree, session: i64, op: TxnOp, tap: Option<&mut BTreeSet<String>>| {
                zxid += 1;
                let txn = Txn { hdr: TxnHeader { session_id: session, cxid: 0, zxid, time_ms: zxid }, op };
                if let Some(tap) = tap {
                    live.paths_changed_by(&txn, tap);
                }
                live.apply(&txn, &mut Vec::new());
            };
            for d in 0..20 {
                apply(&mut live, 0, create(format!("/d{d}"), 0), None);
                for n in 0..600 {
                    let owner = if n % 5 == 0 { 1 + (n % 4) as i64 } else { 0 };
                    apply(&mut live, 0, create(format!("/d{d}/n{n}"), owner), None);
                }
            }
            let start = live.last_zxid;
            let mut tap = BTreeSet::new();
            let paths: Vec<String> = live.iter().map(|(p, _)| p.clone()).collect();
            let mut w = SnapshotWriter::new(start, Vec::new()).unwrap();
            for (i, p) in paths.iter().enumerate() {
                if i % 1000 == 0 {
                    for _ in 0..40 {
                        let (session, op) = random_op(&mut r);
                        apply(&mut live, session, op, Some(&mut tap));
                    }
                }
                if let Some(n) = live.get(p) {
                    w.add_node(p, n).unwrap();
                }
            }
            w.add_sessions(&[]).unwrap();
            let image = w.finish(live.last_zxid).unwrap();
            let sessions = vec![SessionRecord { id: 2, timeout_ms: 5000, passwd: [9; 16] }];
            let changes = Changes {
                nodes: tap.iter().map(|p| (p.clone(), live.get(p).map(|n| node_record(p, n)))).collect(),
                sessions: sessions.clone(),
                zxid: live.last_zxid,
            };
            let patched = patch(&image, &changes).unwrap();
            let got = check(&patched).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(got.start_zxid, live.last_zxid);
            assert_eq!(records(&got.tree), records(&live), "seed {seed}");
            assert_eq!(got.sessions, sessions);
            // Something really happened: the capture was fuzzy, and chunks were both copied
            // and rewritten.
            let mut aligned = rkyv::util::AlignedVec::<16>::new();
            aligned.extend_from_slice(&image);
            assert!(records(&decode(&aligned).unwrap().tree) != records(&live), "seed {seed}");
        }
    }

    #[test]
    fn a_restored_zxid_starts_an_epoch_above_both() {
        assert_eq!(restored_zxid(0, 0), Some(1 << 32));
        assert_eq!(restored_zxid(0x5_0000_0007, 0x3_0000_0100), Some(6 << 32));
        assert_eq!(restored_zxid(0x2_0000_0001, 0x7_ffff_ffff), Some(8 << 32));
        assert_eq!(restored_zxid(0x7fff_fffe_0000_0009, 1), Some(0x7fff_ffff << 32));
        assert_eq!(restored_zxid(0x7fff_ffff_0000_0009, 1), None);
    }

    #[test]
    fn a_damaged_capture_is_an_error() {
        let mut t = DataTree::new();
        t.apply(
            &Txn { hdr: TxnHeader { session_id: 0, cxid: 0, zxid: 1, time_ms: 1 }, op: create("/a".into(), 0) },
            &mut Vec::new(),
        );
        let image = crate::snap::encode_tree(&t, &[], 1);
        let changes = Changes { nodes: vec![], sessions: vec![], zxid: 1 };
        let mut bad = image.clone();
        let n = bad.len();
        bad[n / 2] ^= 0x40;
        assert!(patch(&bad, &changes).is_err());
        assert!(patch(&image[..n - 8], &changes).is_err());
        assert!(check(&patch(&image, &changes).unwrap()).is_ok());
    }
}
