//! Rewinding the transaction log as an ensemble follower does: `Wal::truncate_after` (TRUNC)
//! and `Wal::restart_at` (after a SNAP), then appending more and recovering with
//! `recovery::recover_ensemble`: exactly the expected records come back.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use warren::log::format;
use warren::quorum::make_zxid;
use warren::server::wal::Wal;
use warren::snap::SnapshotWriter;
use warren::storage::recovery::{self, EnsembleRecovered};
use warren::storage::segments::{self, Tail};
use warren::storage::{snapshots, RealDisk};
use warren::tree::DataTree;
use warren::txn::{Txn, TxnHeader, TxnOp};

/// The smallest segment the log makes (Wal raises smaller sizes to 1 MiB).
const SEGMENT: u64 = 1 << 20;

fn txn(zxid: i64, data_len: usize) -> Txn {
    Txn {
        hdr: TxnHeader { session_id: 0x77, cxid: 1, zxid, time_ms: 1_700_000_000_000 },
        op: TxnOp::SetData { path: "/".into(), data: Some(vec![(zxid & 0xff) as u8; data_len]), version: -1 },
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    snap: PathBuf,
    log: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().to_path_buf();
    let (snap, log) = (data.join("version-2"), data.join("log").join("version-2"));
    recovery::prepare_dirs(&RealDisk, &[&snap, &log]).expect("dirs");
    Dirs { _tmp: tmp, data, snap, log }
}

/// Runs `body` with a Wal over `log` (resuming at `tail`) on a glommio executor.
fn with_wal<F, Fut>(log: &Path, tail: Option<Tail>, body: F)
where
    F: FnOnce(Rc<Wal>, Rc<Cell<i64>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let log = log.to_path_buf();
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(move || async move {
            let wal = Wal::new(log, SEGMENT, true, Duration::from_secs(60), tail);
            let durable = Rc::new(Cell::new(0i64));
            let d = durable.clone();
            glommio::spawn_local(wal.clone().run(move |z| d.set(z), |why| panic!("log failed: {why}"))).detach();
            body(wal, durable).await;
        })
        .expect("executor")
        .join()
        .expect("join");
}

async fn until_durable(durable: &Cell<i64>, zxid: i64) {
    let started = Instant::now();
    while durable.get() != zxid {
        assert!(started.elapsed() < Duration::from_secs(20), "zxid {zxid:#x} never became durable");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Appends records one batch each, waiting for each to be durable (so big records roll
/// segments one at a time).
async fn append_each(wal: &Wal, durable: &Cell<i64>, zxids: &[i64], data_len: usize) {
    for &z in zxids {
        wal.append(&[txn(z, data_len)]);
        until_durable(durable, z).await;
    }
}

fn segment_names(log: &Path) -> Vec<i64> {
    segments::list(&RealDisk, log).expect("segments").into_iter().map(|(z, _)| z).collect()
}

fn recovered(d: &Dirs) -> EnsembleRecovered {
    recovery::recover_ensemble(&RealDisk, &d.data, &d.snap, &d.log).expect("recover")
}

fn log_zxids(r: &EnsembleRecovered) -> Vec<i64> {
    r.init.log.iter().map(|t| t.hdr.zxid).collect()
}

fn e(epoch: u32, counter: u32) -> i64 {
    make_zxid(epoch, counter)
}

#[test]
fn truncate_in_the_middle_of_a_segment_waits_for_writes_in_flight() {
    let d = dirs();
    let first: Vec<i64> = (1..=12).map(|c| e(1, c)).collect();
    with_wal(&d.log, None, move |wal, durable| async move {
        let batch: Vec<Txn> = first.iter().map(|&z| txn(z, 100)).collect();
        wal.append(&batch);
        // Appended but not yet durable: truncation waits for these writes, then drops them.
        wal.append(&[txn(e(1, 13), 100), txn(e(1, 14), 100)]);
        wal.truncate_after(e(1, 10)).await.expect("truncate");
        assert_eq!(durable.get(), e(1, 14), "the writes in flight finished first");
        wal.append(&[txn(e(2, 1), 100), txn(e(2, 2), 100)]);
        until_durable(&durable, e(2, 2)).await;
    });
    let r = recovered(&d);
    let mut want: Vec<i64> = (1..=10).map(|c| e(1, c)).collect();
    want.extend([e(2, 1), e(2, 2)]);
    assert_eq!(log_zxids(&r), want);
    assert_eq!(segment_names(&d.log), vec![e(1, 1)]);
    // The replacement records are the new ones (the old 11 and 12 had the same bytes).
    assert_eq!(r.init.log[10], txn(e(2, 1), 100));

    // Restart from the recovered tail and truncate again: the log resumes where it ended.
    let tail = r.tail.clone();
    with_wal(&d.log, tail, move |wal, durable| async move {
        wal.truncate_after(e(1, 3)).await.expect("truncate");
        wal.append(&[txn(e(3, 1), 100)]);
        until_durable(&durable, e(3, 1)).await;
    });
    assert_eq!(log_zxids(&recovered(&d)), vec![e(1, 1), e(1, 2), e(1, 3), e(3, 1)]);
}

#[test]
fn truncate_at_segment_boundaries_removes_later_segments() {
    let d = dirs();
    // ~300 KiB records: three fit in a 1 MiB segment.
    const BIG: usize = 300 << 10;
    with_wal(&d.log, None, |wal, durable| async move {
        let zxids: Vec<i64> = (1..=12).map(|c| e(1, c)).collect();
        append_each(&wal, &durable, &zxids, BIG).await;
    });
    assert_eq!(segment_names(&d.log), vec![e(1, 1), e(1, 4), e(1, 7), e(1, 10)]);
    let tail = recovered(&d).tail;
    let log = d.log.clone();
    with_wal(&d.log, tail, move |wal, durable| async move {
        // Keep one record of the third segment.
        wal.truncate_after(e(1, 7)).await.expect("truncate");
        assert_eq!(segment_names(&log), vec![e(1, 1), e(1, 4), e(1, 7)]);
        // Exactly at the end of the second segment: the third goes entirely.
        wal.truncate_after(e(1, 6)).await.expect("truncate");
        assert_eq!(segment_names(&log), vec![e(1, 1), e(1, 4)]);
        append_each(&wal, &durable, &[e(2, 1), e(2, 2)], BIG).await;
    });
    let r = recovered(&d);
    let mut want: Vec<i64> = (1..=6).map(|c| e(1, c)).collect();
    want.extend([e(2, 1), e(2, 2)]);
    assert_eq!(log_zxids(&r), want);
    // The second segment had no room left for a big record: a new one named after it.
    assert_eq!(segment_names(&d.log), vec![e(1, 1), e(1, 4), e(2, 1)]);
}

#[test]
fn truncate_before_every_record_empties_the_log() {
    let d = dirs();
    let log = d.log.clone();
    with_wal(&d.log, None, move |wal, durable| async move {
        append_each(&wal, &durable, &[1, 2, 3], 10).await;
        wal.truncate_after(0).await.expect("truncate");
        assert!(segment_names(&log).is_empty());
        wal.append(&[txn(e(1, 1), 10), txn(e(1, 2), 10), txn(e(1, 3), 10)]);
        until_durable(&durable, e(1, 3)).await;
    });
    let r = recovered(&d);
    assert_eq!(log_zxids(&r), vec![e(1, 1), e(1, 2), e(1, 3)]);
    assert_eq!(segment_names(&d.log), vec![e(1, 1)]);
}

#[test]
fn restart_at_a_snapshot_then_recover() {
    let d = dirs();
    let (snap, log) = (d.snap.clone(), d.log.clone());
    with_wal(&d.log, None, move |wal, durable| async move {
        append_each(&wal, &durable, &[e(1, 1), e(1, 2), e(1, 3)], 10).await;
        // The leader's snapshot at e(2, 5), installed durably, then the log restarted.
        let tree = DataTree::new();
        let mut w = SnapshotWriter::new(e(2, 5), Vec::new()).expect("writer");
        for (p, n) in tree.iter() {
            w.add_node(p, n).expect("node");
        }
        w.add_sessions(&[SESSION]).expect("sessions");
        let image = w.finish(e(2, 5)).expect("image");
        snapshots::write(&RealDisk, &snap, e(2, 5), &image).expect("snapshot");
        wal.restart_at(e(2, 5)).await.expect("restart");
        assert!(segment_names(&log).is_empty());
        wal.append(&[txn(e(2, 6), 10), txn(e(3, 1), 10)]);
        until_durable(&durable, e(3, 1)).await;
    });
    let r = recovered(&d);
    assert_eq!(r.snapshot_zxid, e(2, 5));
    assert_eq!(r.init.sessions, vec![SESSION]);
    assert_eq!(log_zxids(&r), vec![e(2, 6), e(3, 1)]);
    assert_eq!(r.last_zxid, e(3, 1));
    assert_eq!(segment_names(&d.log), vec![e(2, 6)]);
}

#[test]
fn a_batch_split_across_segments_names_each_after_its_own_first_record() {
    let d = dirs();
    // 40 records of 250 KiB in one append: ~10 MiB, more than one 8 MiB group-commit write,
    // so the batch is written in two pieces, and the second rolls to a new segment.
    with_wal(&d.log, None, |wal, durable| async move {
        let batch: Vec<Txn> = (1..=40).map(|c| txn(e(1, c), 250 << 10)).collect();
        wal.append(&batch);
        until_durable(&durable, e(1, 40)).await;
    });
    let names = segment_names(&d.log);
    assert!(names.len() >= 2, "{names:?}");
    let r = recovered(&d);
    assert_eq!(log_zxids(&r), (1..=40).map(|c| e(1, c)).collect::<Vec<_>>());
    // Every segment's name is its first record's zxid.
    for (first, path) in segments::list(&RealDisk, &d.log).expect("segments") {
        let scan = format::scan(&std::fs::read(&path).expect("read")).expect("scan");
        assert_eq!(scan.txns[0].hdr.zxid, first, "{}", path.display());
    }
}

const SESSION: warren::snap::SessionRecord =
    warren::snap::SessionRecord { id: 0x77, timeout_ms: 30_000, passwd: [7; 16] };
