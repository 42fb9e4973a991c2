//! Tests of the log format: every op round-trips; torn tails, flipped bits and damaged headers.

use super::*;
use crate::acl::open_acl_unsafe;

fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn { hdr: TxnHeader { session_id: 0x1234, cxid: 7, zxid, time_ms: 1_700_000_000_000 + zxid }, op }
}

fn every_op() -> Vec<TxnOp> {
    let create = |kind, data: Option<Vec<u8>>| TxnOp::Create {
        kind,
        path: "/a/b".into(),
        data,
        acl: open_acl_unsafe(),
        ephemeral_owner: 99,
        parent_cversion: 3,
    };
    vec![
        TxnOp::CreateSession { timeout_ms: 30_000, passwd: [7; 16] },
        TxnOp::CloseSession,
        create(CreateKind::Create, Some(b"x".to_vec())),
        create(CreateKind::Create2, None),
        create(CreateKind::Container, Some(vec![])),
        create(CreateKind::Ttl, Some(vec![0; 1000])),
        TxnOp::Delete { path: "/a".into() },
        TxnOp::DeleteContainer { path: "/c".into() },
        TxnOp::SetData { path: "/a".into(), data: None, version: 4 },
        TxnOp::SetAcl { path: "/a".into(), acl: open_acl_unsafe(), version: 2 },
        TxnOp::Check { path: "/a".into() },
        TxnOp::Multi(vec![TxnOp::Delete { path: "/x".into() }, TxnOp::Error(ErrorCode::Ok)]),
        TxnOp::Error(ErrorCode::NoNode),
    ]
}

/// A segment of `n` records followed by `pad` zero bytes of preallocated space.
fn segment(n: usize, pad: usize) -> (Vec<u8>, Vec<Txn>, Vec<usize>) {
    let mut b = encode_header(1).to_vec();
    let ops = every_op();
    let mut txns = Vec::new();
    let mut starts = Vec::new();
    for i in 0..n {
        let t = txn(i as i64 + 1, ops[i % ops.len()].clone());
        starts.push(b.len());
        append_record(&mut b, &t);
        txns.push(t);
    }
    b.resize(b.len() + pad, 0);
    (b, txns, starts)
}

#[test]
fn every_op_round_trips() {
    for (i, o) in every_op().into_iter().enumerate() {
        let t = txn(i as i64, o);
        let mut w = Writer::new();
        encode_txn(&mut w, &t);
        assert_eq!(decode_txn(&w.buf).unwrap(), t);
    }
}

#[test]
fn scan_reads_all_records_and_stops_at_zero_fill() {
    let (b, txns, _) = segment(40, 4096);
    let s = scan(&b).unwrap();
    assert_eq!(s.txns, txns);
    assert!(s.torn_tail.is_none());
    assert_eq!(s.end, b.len() - 4096);
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record_is_truncated() {
    let (full, txns, starts) = segment(5, 0);
    let last = *starts.last().unwrap();
    for cut in last + 1..full.len() {
        // The crash left a prefix of the last record, then (preallocated) zeros.
        let mut b = full[..cut].to_vec();
        b.resize(full.len() + 64, 0);
        let s = scan(&b).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(s.txns, txns[..4], "cut at {cut}");
        assert_eq!(s.end, last);
        // And without zero fill: the file simply ends mid-record.
        let s = scan(&full[..cut]).unwrap();
        assert_eq!(s.txns.len(), 4);
        assert!(s.torn_tail.is_some(), "cut at {cut}");
    }
}

#[test]
fn flipped_bit_in_the_last_record_is_a_torn_tail_elsewhere_corruption() {
    let (full, _, starts) = segment(6, 128);
    let last = *starts.last().unwrap();
    let end = full.len() - 128;
    for pos in HEADER_LEN..end {
        for bit in [0u8, 3, 7] {
            let mut b = full.clone();
            b[pos] ^= 1 << bit;
            match scan(&b) {
                Ok(s) => {
                    assert!(pos >= last, "flip at {pos} in a middle record was accepted");
                    assert_eq!(s.txns.len(), 5);
                    assert!(s.torn_tail.is_some());
                }
                Err(ScanError::Corrupt { offset, .. }) => {
                    assert!(offset <= pos, "reported offset {offset} after the flip {pos}");
                    assert!(pos < last, "flip at {pos} in the last record must be a torn tail");
                }
                Err(e) => panic!("flip at {pos}: {e}"),
            }
        }
    }
}

#[test]
fn header_damage_is_refused() {
    let (mut b, _, _) = segment(1, 0);
    b[3] ^= 1;
    assert!(matches!(scan(&b), Err(ScanError::Header(HeaderError::BadMagic))));
    let (mut b, _, _) = segment(1, 0);
    b[17] ^= 1;
    assert!(matches!(scan(&b), Err(ScanError::Header(HeaderError::Checksum))));
    assert!(matches!(scan(&b[..10]), Err(ScanError::Header(HeaderError::Short))));
}

#[test]
fn names() {
    assert_eq!(segment_name(0x1f), "log.1f");
    assert_eq!(parse_segment_name("log.1f"), Some(0x1f));
    assert_eq!(parse_segment_name("snapshot.1f"), None);
}

/// A createSession record from before passwords were random (no password after the timeout)
/// still reads, with a password that matches nothing.
#[test]
fn create_session_without_password_reads_as_unusable() {
    let mut w = Writer::new();
    w.i64(5).i32(0).i64(9).i64(1_700_000_000_000).i32(op::CREATE_SESSION).i32(30_000);
    let t = decode_txn(&w.buf).unwrap();
    assert_eq!(t.op, TxnOp::CreateSession { timeout_ms: 30_000, passwd: UNUSABLE_PASSWD });
    // A password cut short is damage, not an old record.
    w.buf.extend_from_slice(&[1; 15]);
    assert!(decode_txn(&w.buf).is_err());
}
