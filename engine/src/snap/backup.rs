//! Online backup: a fuzzy capture made consistent off the owner.
//!
//! The owner captures the tree a chunk at a time, as for an ordinary snapshot, and keeps a copy
//! of every transaction it applies meanwhile (`Machine::start_tap`). Replaying those over the
//! capture, exactly as recovery replays the log over a snapshot, gives the state at the last
//! of them; [`consolidate`] does that and writes it as an ordinary snapshot whose start and end
//! zxids are equal, so that the backup file needs no log: `warren snap-dump` reads it and
//! `warren restore` installs it as it is.

use super::{decode, encode_tree, LoadedSnapshot, SessionRecord, SnapError};
use crate::tree::DataTree;
use crate::txn::{Txn, TxnOp};

/// A fuzzy image and the transactions applied since it began, made into a consistent image.
/// Returns the zxid it holds the state at, and the image.
pub fn consolidate(image: &[u8], tail: &[Txn]) -> Result<(i64, Vec<u8>), SnapError> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(image.len());
    aligned.extend_from_slice(image);
    let LoadedSnapshot { mut tree, mut sessions, start_zxid, .. } = decode(&aligned)?;
    let mut zxid = start_zxid;
    for txn in tail.iter().filter(|t| t.hdr.zxid > start_zxid) {
        apply(&mut tree, &mut sessions, txn);
        zxid = zxid.max(txn.hdr.zxid);
    }
    Ok((zxid, encode_tree(&tree, &sessions, zxid)))
}

/// Recovery's replay of one transaction: the tree's outcome, and the session table.
fn apply(tree: &mut DataTree, sessions: &mut Vec<SessionRecord>, txn: &Txn) {
    let mut triggers = Vec::new();
    tree.apply(txn, &mut triggers);
    let id = txn.hdr.session_id;
    match txn.op {
        TxnOp::CreateSession { timeout_ms, passwd } => {
            sessions.retain(|s| s.id != id);
            sessions.push(SessionRecord { id, timeout_ms, passwd });
        }
        TxnOp::CloseSession => sessions.retain(|s| s.id != id),
        _ => {}
    }
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
    let url = if url.contains("/snapshot") {
        url.to_string()
    } else {
        format!("{}/commands/snapshot?streaming=true", url.trim_end_matches('/'))
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.get(&url);
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

/// Validates a backup image: a whole snapshot, not fuzzy (start and end zxids equal).
pub fn check(image: &[u8]) -> Result<LoadedSnapshot, String> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(image.len());
    aligned.extend_from_slice(image);
    let loaded = decode(&aligned).map_err(|e| e.to_string())?;
    if loaded.start_zxid != loaded.end_zxid {
        return Err(format!(
            "a fuzzy snapshot (taken from zxid {:#x} to {:#x}) needs its log; a backup from /commands/snapshot does not",
            loaded.start_zxid, loaded.end_zxid
        ));
    }
    Ok(loaded)
}

/// `warren restore`: installs a backup into an empty data directory, offline. The snapshot
/// goes to `data_dir/version-2` (written durably: temp file, fsync, rename), and the epoch
/// files get the backup's epoch so that an ensemble member starts on it too. Refuses a data
/// directory (or log directory) that holds snapshots or logs already.
pub fn restore(image: &[u8], data_dir: &std::path::Path, log_dir: Option<&std::path::Path>) -> Result<(i64, std::path::PathBuf), String> {
    let loaded = check(image)?;
    let snap_dir = data_dir.join("version-2");
    for dir in [Some(data_dir), log_dir].into_iter().flatten() {
        let v2 = dir.join("version-2");
        let taken = std::fs::read_dir(&v2).into_iter().flatten().flatten().find(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("snapshot.") || n.starts_with("log.")
        });
        if let Some(e) = taken {
            return Err(format!(
                "{} already holds {}: restore into an empty data directory",
                v2.display(),
                e.file_name().to_string_lossy()
            ));
        }
    }
    std::fs::create_dir_all(&snap_dir).map_err(|e| format!("{}: {e}", snap_dir.display()))?;
    let zxid = loaded.start_zxid;
    let epoch = (zxid >> 32) as u32;
    crate::server::epochs::store(data_dir, crate::quorum::Epochs { accepted: epoch, current: epoch })
        .map_err(|e| format!("{}: writing the epoch files: {e}", data_dir.display()))?;
    let path = super::write_file(&snap_dir, zxid, image).map_err(|e| format!("{}: {e}", snap_dir.display()))?;
    Ok((zxid, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;
    use crate::proto::CreateKind;
    use crate::txn::TxnHeader;

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn { hdr: TxnHeader { session_id: 0x42, cxid: 1, zxid, time_ms: 1_700_000_000_000 + zxid }, op }
    }

    fn create(zxid: i64, path: &str, data: &[u8]) -> Txn {
        txn(
            zxid,
            TxnOp::Create {
                kind: CreateKind::Create,
                path: path.into(),
                data: Some(data.to_vec()),
                acl: open_acl_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: -1,
            },
        )
    }

    fn tree_after(txns: &[Txn]) -> DataTree {
        let mut t = DataTree::new();
        for x in txns {
            t.apply(x, &mut Vec::new());
        }
        t
    }

    /// A capture taken "half-way": nodes captured after some of the tail already applied.
    /// Consolidating gives exactly the tree at the tail's last zxid.
    #[test]
    fn a_fuzzy_capture_plus_its_tail_is_the_state_at_the_last_zxid() {
        let before = [create(1, "/a", b"1"), create(2, "/b", b"2")];
        let tail = [
            create(3, "/c", b"3"),
            txn(4, TxnOp::SetData { path: "/a".into(), data: Some(b"one".to_vec()), version: 1 }),
            txn(5, TxnOp::Delete { path: "/b".into() }),
            txn(6, TxnOp::CreateSession { timeout_ms: 4000, passwd: [7; 16] }),
        ];
        // The capture began at zxid 2 but saw /c and the new /a (applied during it).
        let fuzzy_tree = tree_after(&[&before[..], &tail[..2]].concat());
        let image = {
            let mut w = crate::snap::SnapshotWriter::new(2, Vec::new()).unwrap();
            for (p, n) in fuzzy_tree.iter() {
                w.add_node(p, n).unwrap();
            }
            w.add_sessions(&[]).unwrap();
            w.finish(4).unwrap()
        };
        let (zxid, consistent) = consolidate(&image, &tail).unwrap();
        assert_eq!(zxid, 6);
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(&consistent);
        let got = decode(&aligned).unwrap();
        assert_eq!((got.start_zxid, got.end_zxid), (6, 6));
        let want = tree_after(&[&before[..], &tail[..]].concat());
        let paths = |t: &DataTree| {
            let mut v: Vec<(String, Option<Vec<u8>>, i64)> =
                t.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.stat.mzxid)).collect();
            v.sort();
            v
        };
        assert_eq!(paths(&got.tree), paths(&want));
        assert_eq!(got.sessions, vec![SessionRecord { id: 0x42, timeout_ms: 4000, passwd: [7; 16] }]);
    }

    #[test]
    fn a_damaged_capture_is_an_error() {
        let image = encode_tree(&tree_after(&[create(1, "/a", b"1")]), &[], 1);
        let mut bad = image.clone();
        let n = bad.len();
        bad[n / 2] ^= 0x40;
        assert!(consolidate(&bad, &[]).is_err());
        assert!(consolidate(&image[..n - 8], &[]).is_err());
    }
}
