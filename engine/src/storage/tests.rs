//! The real log, snapshot and recovery code on the faulty disk.

use std::io;
use std::path::{Path, PathBuf};

use super::faulty::Op;
use super::recovery::RecoveryError;
use super::segments::{read_log, LogWriter, Repair};
use super::{snapshots, Disk, Faults, FaultyDisk};
use crate::log::format;
use crate::snap::encode_tree;
use crate::tree::DataTree;
use crate::txn::make_zxid;
use crate::txn::{Txn, TxnHeader, TxnOp};

const SEGMENT: u64 = 4096;

fn txn(zxid: i64, size: usize) -> Txn {
    Txn {
        hdr: TxnHeader { session_id: 0x42, cxid: zxid as i32, zxid, time_ms: 1_700_000_000_000 },
        op: TxnOp::SetData { path: "/r".into(), data: Some(vec![(zxid % 251) as u8; size]), version: 0 },
    }
}

fn log_dir(d: &FaultyDisk) -> PathBuf {
    let dir = PathBuf::from("/data/version-2");
    d.create_dir_all(&dir).expect("dir");
    dir
}

/// What recovery reads back, or its refusal.
fn recover(d: &FaultyDisk, dir: &Path) -> Result<(Vec<Txn>, Option<super::segments::Tail>), RecoveryError> {
    let mut out = Vec::new();
    let r = read_log(d, dir, 0, Repair::Yes, |t| out.push(t))?;
    Ok((out, r.tail))
}

/// One run: rounds of appends, each written and then synced as the server's writer does (no
/// round starts before the previous one is synced), with crashes at random points, between a
/// round's write and its sync too; after each crash recovery must succeed, keep every record
/// reported durable, and give back nothing but a prefix of what was written. Returns the
/// number of crashes.
fn crash_run(
    seed: u64,
    mut ack: impl FnMut(&mut LogWriter, &FaultyDisk) -> io::Result<Option<i64>>,
) -> Result<u64, String> {
    let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
    let dir = log_dir(&d);
    let mut written: Vec<Txn> = Vec::new();
    let mut durable = 0i64;
    let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
    let mut crashes = 0;
    for _round in 0..60 {
        let n = 1 + d.draw(4) as usize;
        let batch: Vec<Txn> = (0..n)
            .map(|_| {
                let z = written.last().map_or(make_zxid(1, 1), |t| t.hdr.zxid + 1);
                let t = txn(z, d.draw(700) as usize);
                written.push(t.clone());
                t
            })
            .collect();
        // Now and then the process dies at a random disk operation of this round.
        let dies = d.draw(4) == 0;
        if dies {
            d.crash_after(d.draw(8));
        }
        w.append(&batch);
        match w.write_round(&d).and_then(|_| ack(&mut w, &d)) {
            Ok(Some(z)) => durable = z,
            Ok(None) => {}
            Err(e) if !dies => return Err(format!("seed {seed}: {e}")),
            Err(_) => {}
        }
        if dies || d.draw(8) == 0 {
            d.crash();
            crashes += 1;
            let (got, tail) = recover(&d, &dir).map_err(|e| format!("seed {seed}: recovery refused: {e}"))?;
            let last = got.last().map_or(0, |t| t.hdr.zxid);
            if last < durable {
                return Err(format!(
                    "seed {seed}: lost durable records: recovered up to {last:#x}, durable {durable:#x}"
                ));
            }
            if got[..] != written[..got.len()] {
                return Err(format!("seed {seed}: recovered records differ from those written"));
            }
            written.truncate(got.len());
            // A second recovery of the repaired log reads the same and repairs nothing.
            let (again, _) = recover(&d, &dir).map_err(|e| format!("seed {seed}: second recovery: {e}"))?;
            if again != got {
                return Err(format!("seed {seed}: a second recovery read something else"));
            }
            w = LogWriter::new(dir.clone(), SEGMENT, tail);
        }
    }
    Ok(crashes)
}

fn sync_then_ack(w: &mut LogWriter, d: &FaultyDisk) -> io::Result<Option<i64>> {
    w.sync(d)
}

/// Why no round starts before the previous one is synced: two unsynced writes reach the
/// medium independently, so the later can survive a crash while the earlier is torn, and
/// recovery then finds a bad record with a valid one after it, which it must treat as damaged
/// history. (With `forceSync=no` the server writes rounds without syncing; a crash can then
/// leave a log that recovery refuses.)
#[test]
fn two_unsynced_rounds_can_leave_a_log_recovery_refuses() {
    let refused = (0..200)
        .filter(|&seed| {
            let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
            let dir = log_dir(&d);
            let mut w = LogWriter::new(dir.clone(), 1 << 20, None);
            w.append(&[txn(make_zxid(1, 1), 100)]);
            w.write_round(&d).expect("write");
            w.sync(&d).expect("sync");
            w.append(&[txn(make_zxid(1, 2), 100)]);
            w.write_round(&d).expect("write");
            w.append(&[txn(make_zxid(1, 3), 100)]);
            w.write_round(&d).expect("write");
            d.crash();
            recover(&d, &dir)
                .is_err_and(|e| matches!(e, RecoveryError::Scan { source: format::ScanError::Corrupt { .. }, .. }))
        })
        .count();
    assert!(refused > 0, "no run tore the first write and kept the second");
}

/// A round larger than one write (`BATCH_BYTES_MAX`) is written in pieces; they are synced one
/// by one, so a crash before the round's own sync never leaves a torn piece before a whole one
/// (which recovery would have to refuse). Without the sync between pieces some of these seeds
/// are refused.
#[test]
fn a_round_written_in_pieces_never_leaves_a_log_recovery_refuses() {
    for seed in 0..40 {
        let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
        let dir = log_dir(&d);
        let mut w = LogWriter::new(dir.clone(), 32 << 20, None);
        let big: Vec<Txn> = (1..=9).map(|i| txn(make_zxid(1, i), 1 << 20)).collect();
        w.append(&big);
        w.write_round(&d).expect("write");
        d.crash();
        let (got, _) = recover(&d, &dir).unwrap_or_else(|e| panic!("seed {seed}: recovery refused: {e}"));
        assert_eq!(got[..], big[..got.len()], "seed {seed}: a prefix of the round");
    }
}

#[test]
fn recovery_after_any_crash_keeps_every_synced_record() {
    let mut crashes = 0;
    for seed in 0..300 {
        crashes += crash_run(seed, sync_then_ack).unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("{crashes} crashes in 300 runs");
    assert!(crashes > 1000, "{crashes} crashes");
}

/// The planted bug the property above exists for: a writer that reports records durable once
/// written, before the sync. The same runs must catch it.
#[test]
fn acknowledging_before_the_sync_is_caught() {
    let ack_on_write = |w: &mut LogWriter, _: &FaultyDisk| -> io::Result<Option<i64>> {
        // What the last round wrote, reported without syncing it.
        Ok(w.last_written())
    };
    let caught = (0..300).filter(|&seed| crash_run(seed, ack_on_write).is_err()).count();
    eprintln!("caught in {caught} of 300 runs");
    assert!(caught > 50, "caught in {caught} of 300 runs");
}

#[test]
fn a_log_read_back_after_rolls_is_the_log_written() {
    let d = FaultyDisk::new(7, Faults::default());
    let dir = log_dir(&d);
    let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
    let all: Vec<Txn> = (1..=200).map(|i| txn(make_zxid(1, i), 100)).collect();
    for chunk in all.chunks(7) {
        w.append(chunk);
        w.write_round(&d).expect("write");
        w.sync(&d).expect("sync");
    }
    assert!(d.list(&dir).expect("ls").len() > 5, "several segments");
    d.crash();
    assert_eq!(recover(&d, &dir).expect("recover").0, all);
}

/// Bit flips in synced log data: recovery refuses (corruption before the tail), or drops
/// exactly the last record when the flip is inside it (a flip there cannot be told from a torn
/// write; ZooKeeper truncates it too). It never returns a record that differs from the one
/// written, and never drops a record that is not the last.
#[test]
fn a_flipped_bit_is_refused_or_truncates_only_the_last_record() {
    let (mut refused, mut truncated) = (0, 0);
    for seed in 0..400 {
        let d = FaultyDisk::new(seed, Faults::default());
        let dir = log_dir(&d);
        let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
        let all: Vec<Txn> = (1..=40).map(|i| txn(make_zxid(1, i), d.draw(300) as usize)).collect();
        for chunk in all.chunks(3) {
            w.append(chunk);
            w.write_round(&d).expect("write");
            w.sync(&d).expect("sync");
        }
        let (path, offset) = d.flip_random_bit("log.").expect("a log file");
        match recover(&d, &dir) {
            Err(e) => {
                assert!(
                    e.to_string().contains(&path.display().to_string()),
                    "seed {seed}: the error names the file: {e}"
                );
                refused += 1;
            }
            Ok((got, _)) => {
                assert_eq!(got[..], all[..got.len()], "seed {seed}: a flip at {offset} of {path:?} went undetected");
                assert!(got.len() + 1 >= all.len(), "seed {seed}: a flip dropped {} records", all.len() - got.len());
                if got.len() < all.len() {
                    truncated += 1;
                }
            }
        }
    }
    eprintln!("of 400 flips: refused {refused}, truncated {truncated}");
    assert!(refused > 300 && truncated > 0, "refused {refused}, truncated {truncated}");
}

/// Replaying past a corrupt record, planted: a reader that skips a bad record and goes on
/// (instead of refusing) returns a log with a hole, which the continuity check must refuse.
#[test]
fn a_hole_left_by_skipping_a_corrupt_record_is_refused() {
    let d = FaultyDisk::new(11, Faults::default());
    let dir = log_dir(&d);
    let mut w = LogWriter::new(dir.clone(), 1 << 20, None);
    let all: Vec<Txn> = (1..=10).map(|i| txn(make_zxid(1, i), 50)).collect();
    w.append(&all);
    w.write_round(&d).expect("write");
    w.sync(&d).expect("sync");
    let path = dir.join(format::segment_name(make_zxid(1, 1)));
    // Cut record 4 out of the segment, as a reader that skipped it would see the log.
    let bytes = d.read(&path).expect("read");
    let scan = format::scan(&bytes).expect("scan");
    let (a, b) = (scan.offsets[3], scan.offsets[4]);
    let mut holed = bytes[..a].to_vec();
    holed.extend_from_slice(&bytes[b..]);
    d.create(&path, 0).expect("create");
    d.write_at(&path, 0, &holed).expect("write");
    let e = recover(&d, &dir).expect_err("a hole");
    assert!(matches!(e, RecoveryError::Gap { .. }), "{e:?}");
}

#[test]
fn a_failed_sync_poisons_the_writer_and_reports_nothing() {
    let d = FaultyDisk::new(3, Faults::default());
    let dir = log_dir(&d);
    let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
    w.append(&[txn(make_zxid(1, 1), 10)]);
    w.write_round(&d).expect("write");
    assert_eq!(w.sync(&d).expect("sync"), Some(make_zxid(1, 1)));
    w.append(&[txn(make_zxid(1, 2), 10)]);
    w.write_round(&d).expect("write");
    d.fail_next(Op::Sync, libc::EIO);
    assert!(w.sync(&d).is_err());
    assert!(w.poisoned().is_some());
    w.append(&[txn(make_zxid(1, 3), 10)]);
    assert!(w.write_round(&d).is_err(), "nothing more is written");
    assert!(w.sync(&d).is_err(), "nothing more is reported durable");
    d.crash();
    let (got, _) = recover(&d, &dir).expect("recover");
    assert_eq!(got.len(), 1, "the record whose sync failed never became durable");
}

#[test]
fn a_full_disk_fails_the_roll_and_loses_nothing_synced() {
    let d = FaultyDisk::new(5, Faults { capacity: Some(3 * SEGMENT), ..Faults::default() });
    let dir = log_dir(&d);
    let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
    let mut durable = 0;
    let mut err = None;
    for i in 1..=100 {
        w.append(&[txn(make_zxid(1, i), 200)]);
        match w.write_round(&d).and_then(|_| w.sync(&d)) {
            Ok(z) => durable = z.expect("synced"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err.expect("the disk fills").raw_os_error(), Some(libc::ENOSPC));
    d.crash();
    let (got, _) = recover(&d, &dir).expect("recover");
    assert_eq!(got.last().map(|t| t.hdr.zxid), Some(durable));
}

/// A snapshot write interrupted anywhere leaves either the new snapshot, whole, or the old one:
/// recovery never sees a partial snapshot.
#[test]
fn an_interrupted_snapshot_write_leaves_the_old_or_the_new_snapshot() {
    let dir = PathBuf::from("/data/version-2");
    let (old, new) = (encode_tree(&DataTree::new(), &[], 5), encode_tree(&DataTree::new(), &[], 9));
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
        d.create_dir_all(&dir).expect("dir");
        snapshots::write(&d, &dir, 5, &old).expect("old snapshot");
        let ops = [Op::Create, Op::Write, Op::Sync, Op::Rename, Op::SyncDir];
        let k = d.draw(ops.len() as u64 + 2) as usize;
        if let Some(op) = ops.get(k) {
            d.fail_next(*op, libc::EIO);
        }
        let _ = snapshots::write(&d, &dir, 9, &new);
        d.crash();
        snapshots::remove_leftover_temp_files(&d, &dir);
        let s = snapshots::load_newest_valid(&d, &dir).expect("list").snapshot.expect("a valid snapshot");
        assert!(s.start_zxid == 5 || s.start_zxid == 9, "seed {seed}");
        seen.insert(s.start_zxid);
        let names = d.list(&dir).expect("ls");
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "seed {seed}: {names:?}");
    }
    assert_eq!(seen.len(), 2, "both outcomes happen: {seen:?}");
}

/// A crash at any operation while the log creates a segment: recovery always starts.
#[test]
fn a_crash_while_creating_a_segment_never_stops_recovery() {
    let mut outcomes = std::collections::BTreeMap::new();
    for seed in 0..400 {
        let d = FaultyDisk::new(seed, Faults { torn_writes: true, ..Faults::default() });
        let dir = log_dir(&d);
        let mut w = LogWriter::new(dir.clone(), SEGMENT, None);
        d.crash_after(d.draw(7));
        w.append(&[txn(make_zxid(1, 1), 10)]);
        let _ = w.write_round(&d).and_then(|_| w.sync(&d));
        d.crash();
        let r = recover(&d, &dir).map(|(got, _)| got.len());
        *outcomes.entry(format!("{r:?}")).or_insert(0) += 1;
    }
    assert!(outcomes.keys().all(|k| k.starts_with("Ok")), "{outcomes:?}");
    assert_eq!(outcomes.len(), 2, "crashes before and after the record's sync: {outcomes:?}");
}
