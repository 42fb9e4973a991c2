//! Hostile and broken input against the real binary. Each case runs on its own connection and
//! gets ZooKeeper's answer (an error code, or that one connection closed with a log line);
//! after each case the process is still alive and a separate, fresh session can write and read.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use common::{connect_request, create2_req, create_req, is_closed, read_frame, Raw, Rng, Server};
use warren::acl::open_acl_unsafe;
use warren::proto::{
    op, ConnectRequest, ConnectResponse, CreateKind, CreateRequest, ErrorCode, MultiOp, Request, SetWatches, Writer,
};

const BAD_ARGUMENTS: i32 = -8;

/// After each bad case: the server process runs and a fresh session can write and read.
fn assert_healthy(s: &mut Server, tag: &str) {
    assert!(s.is_alive(), "{tag}: the server died\n{}", s.log());
    let mut c = Raw::connect(s.addr);
    let path = format!("/healthy-{}", tag.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_"));
    let r = c.call(1, &create_req(&path, b"ok", 0));
    assert!(r.err() == 0 || r.err() == ErrorCode::NodeExists.code(), "{tag}: {:?}", r.hdr);
    let r = c.call(2, &Request::GetData { path, watch: false });
    assert_eq!((r.err(), r.data_and_stat().0), (0, Some(b"ok".to_vec())), "{tag}");
    c.close_session();
    assert!(s.is_alive(), "{tag}: the server died\n{}", s.log());
}

/// Writes `bytes` (the server may close early: write errors are expected), optionally half-
/// closes, and reports whether the server then closed the connection.
fn closed_after(s: &Server, bytes: &[u8], half_close: bool) -> bool {
    let mut t = Raw::tcp(s.addr);
    let _ = t.write_all(bytes);
    if half_close {
        let _ = t.shutdown(Shutdown::Write);
    }
    is_closed(&mut t)
}

/// Same, on a connection that completed the handshake first.
fn closed_after_handshake(s: &Server, bytes: &[u8], half_close: bool) -> bool {
    let mut c = Raw::connect(s.addr);
    let _ = c.s.write_all(bytes);
    if half_close {
        let _ = c.s.shutdown(Shutdown::Write);
    }
    is_closed(&mut c.s)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

// ---- bytes that are not the protocol -------------------------------------------------------

#[test]
fn random_bytes_close_only_their_connection() {
    let mut s = Server::start(&[]);
    let mut rng = Rng::new(0x5eed_0001);
    for size in [1usize, 3, 4, 7, 64, 1000, 70_000] {
        let bytes = rng.bytes(size);
        assert!(closed_after(&s, &bytes, true), "{size} random bytes");
        assert_healthy(&mut s, &format!("random-{size}"));
    }
    // Random frames after a good handshake: a correct length prefix around random bodies.
    for i in 0..20 {
        let len = (rng.next_u64() % 200) as usize;
        let body = rng.bytes(len);
        let mut c = Raw::connect(s.addr);
        let _ = c.s.write_all(&framed(&body));
        // Whatever the server made of it (an error reply or a close), it must still answer a
        // ping on this connection or close it; it must not hang or die.
        let _ = c.s.write_all(&Request::Ping.encode(-2));
        c.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        loop {
            match read_frame(&mut c.s) {
                None => break,
                Some(f) if f.len() >= 4 && f[..4] == (-2i32).to_be_bytes() => break,
                Some(_) => continue,
            }
        }
        assert!(s.is_alive(), "random frame {i} ({len} bytes) killed the server\n{}", s.log());
    }
    assert_healthy(&mut s, "random-frames");
}

#[test]
fn every_opcode_with_a_random_body_is_survived() {
    // Many short-lived connections: no per-address limit, so a slow close cannot refuse one.
    let mut s = Server::start(&["maxClientCnxns=0"]);
    let mut rng = Rng::new(0x5eed_0002);
    let opcodes: Vec<i32> = (-12..=24).chain(99..=108).chain([999, i32::MIN, i32::MAX]).collect();
    for &opcode in &opcodes {
        for round in 0..3 {
            let mut c = Raw::connect(s.addr);
            let len = [0usize, 9, (rng.next_u64() % 300) as usize][round];
            let mut w = Writer::framed();
            w.i32(7).i32(opcode);
            w.buf.extend_from_slice(&rng.bytes(len));
            let _ = c.s.write_all(&w.finish_frame());
            let _ = c.s.write_all(&Request::Ping.encode(-2));
            loop {
                match read_frame(&mut c.s) {
                    None => break,
                    Some(f) if f.len() >= 4 && f[..4] == (-2i32).to_be_bytes() => break,
                    Some(_) => continue,
                }
            }
            assert!(s.is_alive(), "opcode {opcode} with {len} random bytes killed the server\n{}", s.log());
        }
    }
    assert_healthy(&mut s, "opcodes");
}

#[test]
fn garbage_instead_of_a_handshake_is_refused() {
    let mut s = Server::start(&[]);
    let mut rng = Rng::new(0x5eed_0003);
    // A plausible length around garbage.
    assert!(closed_after(&s, &framed(&rng.bytes(40)), false));
    assert_healthy(&mut s, "garbage-handshake");
    // A well-formed request frame is not a ConnectRequest.
    assert!(closed_after(&s, &Request::GetData { path: "/".into(), watch: false }.encode(1), false));
    assert_healthy(&mut s, "request-first");
    // An unknown four-letter word reads as a 1.6 GB length: closed (ZooKeeper 3.8.0 too).
    assert!(closed_after(&s, b"abcd", false));
    assert_healthy(&mut s, "unknown-word");
    // A ConnectRequest with bytes after the record.
    let mut f = connect_request(30_000, 0, vec![0; 16]).encode();
    f.extend_from_slice(b"junk");
    let n = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&n.to_be_bytes());
    let mut t = Raw::tcp(s.addr);
    t.write_all(&f).unwrap();
    // Either refused, or served (ZooKeeper reads what it needs and serves): never a crash.
    if let Some(frame) = read_frame(&mut t) {
        assert!(ConnectResponse::decode(&frame).is_ok());
    }
    drop(t);
    assert_healthy(&mut s, "connect-junk");
    // A client that has seen a later zxid than the server's is refused without an answer.
    let mut req = connect_request(30_000, 0, vec![0; 16]);
    req.last_zxid_seen = 1 << 40;
    let mut t = Raw::tcp(s.addr);
    t.write_all(&req.encode()).unwrap();
    assert!(read_frame(&mut t).is_none(), "no session for a client from the future");
    assert!(s.wait_for_log("Refusing session request", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "zxid-ahead");
    // Half a ConnectRequest, then the peer goes away.
    let whole = connect_request(30_000, 0, vec![0; 16]).encode();
    for _ in 0..20 {
        assert!(closed_after(&s, &whole[..whole.len() / 2], true));
    }
    assert_healthy(&mut s, "half-handshakes");
}

#[test]
fn old_clients_without_the_read_only_byte_are_served() {
    let mut s = Server::start(&[]);
    let req = ConnectRequest { read_only: None, ..connect_request(30_000, 0, vec![0; 16]) };
    let mut c = Raw::handshake(s.addr, &req).ok().expect("a session");
    assert_eq!(c.call(1, &create_req("/old", b"", 0)).err(), 0);
    // The answer mirrors the request: no trailing readOnly byte (36-byte body, as ZooKeeper 3.8.0).
    let mut t = Raw::tcp(s.addr);
    t.write_all(&req.encode()).unwrap();
    let frame = read_frame(&mut t).unwrap();
    assert_eq!(frame.len(), 36);
    assert_eq!(ConnectResponse::decode(&frame).unwrap().read_only, None);
    assert_healthy(&mut s, "old-client");
}

// ---- lengths ------------------------------------------------------------------------------

#[test]
fn truncated_frames_then_eof() {
    let mut s = Server::start(&[]);
    // Before the handshake: a frame promising 100 bytes, 10 sent, then EOF.
    let mut f = 100u32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0u8; 10]);
    assert!(closed_after(&s, &f, true));
    assert_healthy(&mut s, "truncated-handshake");
    // After the handshake: half of a create, then EOF. Nothing is created.
    let req = create_req("/half", b"0123456789", 0).encode(1);
    assert!(closed_after_handshake(&s, &req[..req.len() / 2], true));
    // Only the length prefix.
    assert!(closed_after_handshake(&s, &req[..4], true));
    // Two bytes of a length prefix.
    assert!(closed_after_handshake(&s, &req[..2], true));
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &Request::Exists { path: "/half".into(), watch: false }).err(), -101);
    assert_healthy(&mut s, "truncated-request");
}

#[test]
fn a_negative_length_closes_at_once() {
    let mut s = Server::start(&[]);
    // No half-close: the server must not wait for more bytes.
    assert!(closed_after(&s, &(-5i32).to_be_bytes(), false));
    assert!(s.wait_for_log("Len error -5", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "negative-handshake");
    assert!(closed_after_handshake(&s, &(-1i32).to_be_bytes(), false));
    assert!(s.wait_for_log("Len error -1", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "negative-request");
}

#[test]
fn a_two_gigabyte_length_closes_at_once() {
    let mut s = Server::start(&[]);
    assert!(closed_after(&s, &0x7fff_ffffu32.to_be_bytes(), false));
    assert!(s.wait_for_log("Len error 2147483647", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "huge-handshake");
    let mut f = 0x7fff_ffffu32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0u8; 64]);
    assert!(closed_after_handshake(&s, &f, false));
    assert_healthy(&mut s, "huge-request");
}

#[test]
fn a_frame_over_a_small_jute_maxbuffer_is_refused() {
    let mut s = Server::start(&["jute.maxbuffer=4096"]);
    let mut c = Raw::connect(s.addr);
    // create frame body: 8 header + 4+4 path "/big" + 4+data + 27 ACL + 4 flags = data + 51.
    let fits = create_req("/big", &vec![7; 4096 - 51], 0).encode(1);
    assert_eq!(fits.len() - 4, 4096);
    c.send_bytes(&fits);
    assert_eq!(c.reply(1).err(), 0, "a frame of exactly jute.maxbuffer is accepted");
    let over = create_req("/bi2", &vec![7; 4096 - 50], 0).encode(2);
    assert_eq!(over.len() - 4, 4097);
    let _ = c.s.write_all(&over);
    assert!(is_closed(&mut c.s), "one byte over closes the connection");
    assert!(s.wait_for_log("Len error 4097", Duration::from_secs(5)), "{}", s.log());
    let mut d = Raw::connect(s.addr);
    assert_eq!(d.call(1, &Request::Exists { path: "/bi2".into(), watch: false }).err(), -101);
    assert_eq!(d.call(2, &Request::Exists { path: "/big".into(), watch: false }).err(), 0);
    assert_healthy(&mut s, "small-maxbuffer");
}

#[test]
fn the_default_frame_limit_is_1048575_bytes() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    // ZooKeeper 3.8.0: a create with 1,048,524 data bytes (default ACL, path /big) succeeds.
    let fits = 1_048_575 - 51;
    assert_eq!(fits, 1_048_524);
    let frame = create_req("/big", &vec![7; fits], 0).encode(1);
    assert_eq!(frame.len() - 4, 1_048_575);
    c.send_bytes(&frame);
    assert_eq!(c.reply(1).err(), 0);
    let r = c.call(2, &Request::GetData { path: "/big".into(), watch: false });
    assert_eq!(r.data_and_stat().1.data_length as usize, fits);
    let over = create_req("/bi2", &vec![7; fits + 1], 0).encode(3);
    assert_eq!(over.len() - 4, 1_048_576);
    let _ = c.s.write_all(&over);
    assert!(is_closed(&mut c.s), "one byte more closes the connection");
    assert!(s.wait_for_log("Len error 1048576", Duration::from_secs(5)), "{}", s.log());
    let mut d = Raw::connect(s.addr);
    assert_eq!(d.call(1, &Request::Exists { path: "/bi2".into(), watch: false }).err(), -101, "nothing created");
    assert_healthy(&mut s, "maxbuffer");
}

#[test]
fn an_oversized_set_data_keeps_the_old_value_and_the_session() {
    let mut s = Server::start(&["jute.maxbuffer=8192"]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/v", b"old", 1)).err(), 0);
    let big = Request::SetData { path: "/v".into(), data: Some(vec![1; 9000]), version: -1 };
    let _ = c.s.write_all(&big.encode(2));
    assert!(is_closed(&mut c.s));
    // The client reconnects to the same session: its ephemeral and the old value are intact.
    let mut again = Raw::resume(s.addr, c.session_id, c.passwd.clone()).ok().expect("same session");
    let r = again.call(1, &Request::GetData { path: "/v".into(), watch: false });
    let (data, st) = r.data_and_stat();
    assert_eq!((data, st.version, st.ephemeral_owner), (Some(b"old".to_vec()), 0, c.session_id));
    assert_healthy(&mut s, "oversized-set");
}

#[test]
fn huge_counts_inside_a_frame_are_not_trusted() {
    let mut s = Server::start(&[]);
    // An ACL vector claiming 2^31-1 entries in a small frame.
    let mut w = Writer::framed();
    w.i32(1).i32(op::CREATE).string("/acl").buffer(b"").i32(0x7fff_ffff);
    assert!(closed_after_handshake(&s, &w.finish_frame(), false));
    assert_healthy(&mut s, "acl-count");
    // setWatches with a path list claiming 2^31-1 strings.
    let mut w = Writer::framed();
    w.i32(-8).i32(op::SET_WATCHES).i64(0).i32(0x7fff_ffff);
    assert!(closed_after_handshake(&s, &w.finish_frame(), false));
    assert_healthy(&mut s, "strings-count");
    // A string length past the end of the frame.
    let mut w = Writer::framed();
    w.i32(1).i32(op::GET_DATA).i32(1_000_000).buf.extend_from_slice(b"/x");
    assert!(closed_after_handshake(&s, &w.finish_frame(), false));
    assert_healthy(&mut s, "string-length");
    // A negative string length other than -1.
    let mut w = Writer::framed();
    w.i32(1).i32(op::GET_DATA).i32(-7).bool(false);
    assert!(closed_after_handshake(&s, &w.finish_frame(), false));
    assert_healthy(&mut s, "negative-string");
}

// ---- requests a library would not send ----------------------------------------------------------

#[test]
fn unknown_opcodes_answer_unimplemented_then_close_the_connection_not_the_session() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    // ZooKeeper 3.8 answers an opcode it does not know with Unimplemented (-6) and zxid -1,
    // then closes the connection (UnimplementedRequestProcessor); the session lives on.
    for (xid, opcode) in [77, 999, 50, 108, 0, -1].into_iter().enumerate() {
        let xid = xid as i32 + 10;
        let mut w = Writer::framed();
        w.i32(xid).i32(opcode).string("whatever");
        c.send_bytes(&w.finish_frame());
        let r = c.reply(xid);
        assert_eq!((r.err(), r.hdr.zxid), (ErrorCode::Unimplemented.code(), -1), "opcode {opcode}");
        assert!(c.next_frame().is_none(), "the connection stays open after opcode {opcode}");
        c = Raw::resume(s.addr, c.session_id, c.passwd.clone()).expect("the session survives");
        let r = c.call(xid + 100, &Request::Exists { path: "/".into(), watch: false });
        assert_eq!(r.err(), 0);
    }
    assert!(s.wait_for_log("unknown opcode 77", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "opcode");
}

#[test]
fn a_standalone_check_is_answered() {
    // ZooKeeper 3.8.0 crashes on this one (its log cannot hold a check txn); Warren answers.
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/c", b"", 0)).err(), 0);
    assert_eq!(c.call(2, &Request::Check { path: "/c".into(), version: 0 }).err(), 0);
    assert_eq!(c.call(3, &Request::Check { path: "/c".into(), version: 4 }).err(), ErrorCode::BadVersion.code());
    assert_eq!(c.call(4, &Request::Check { path: "/none".into(), version: -1 }).err(), ErrorCode::NoNode.code());
    assert_healthy(&mut s, "check");
    // And the log it wrote recovers.
    s.restart();
    assert_healthy(&mut s, "check-restart");
}

#[test]
fn multi_ops_of_the_wrong_kind_are_refused() {
    let mut s = Server::start(&[]);
    let create = match create_req("/w", b"", 0) {
        Request::Create(c) => c,
        _ => unreachable!(),
    };
    // A write inside multiRead and a read inside multi. ZooKeeper 3.8.0 answers
    // MarshallingError (-5); closing the connection is the other acceptable answer.
    for (i, req) in [
        Request::MultiRead(vec![MultiOp::Create(create.clone())]),
        Request::Multi(vec![MultiOp::GetData { path: "/".into() }]),
    ]
    .iter()
    .enumerate()
    {
        let mut c = Raw::connect(s.addr);
        c.send(1, req);
        match c.next_frame() {
            None => {}
            Some(common::Frame::Reply(r)) => assert_eq!(r.err(), ErrorCode::MarshallingError.code(), "case {i}"),
            Some(other) => panic!("case {i}: {other:?}"),
        }
        assert_healthy(&mut s, &format!("multi-kind-{i}"));
    }
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &Request::Exists { path: "/w".into(), watch: false }).err(), -101, "nothing created");
}

#[test]
fn invalid_utf8_in_a_path_closes_the_connection_with_a_log_line() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let mut w = Writer::framed();
    w.i32(1).i32(op::GET_DATA).buffer(&[b'/', 0xff, 0xfe]).bool(false);
    c.send_bytes(&w.finish_frame());
    assert!(is_closed(&mut c.s));
    assert!(s.wait_for_log("malformed request", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "utf8-get");
    // A create whose path is not UTF-8 creates nothing.
    let mut c = Raw::connect(s.addr);
    let mut w = Writer::framed();
    w.i32(1).i32(op::CREATE).buffer(&[b'/', b'u', 0xc3]).buffer(b"");
    warren::proto::write_acls(&mut w, &open_acl_unsafe());
    w.i32(0);
    c.send_bytes(&w.finish_frame());
    assert!(is_closed(&mut c.s));
    let mut d = Raw::connect(s.addr);
    let r = d.call(1, &Request::GetChildren { path: "/".into(), watch: false });
    assert!(!r.children().iter().any(|n| n.starts_with('u')), "{:?}", r.children());
    assert_healthy(&mut s, "utf8-create");
}

#[test]
fn malformed_paths_are_bad_arguments() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.call(1, &create_req("/a", b"", 0)).err(), 0);
    let malformed = ["a", "/a/", "//", "/a/./b", "/a/../b", "/a/.", "/a\u{0}b", "", "/a\u{1}b", "/\u{fff0}"];
    let mut xid = 10;
    for p in malformed {
        // setData validates the whole path first (ZooKeeper 3.8.0 answered -8 for each).
        xid += 1;
        let r = c.call(xid, &Request::SetData { path: p.into(), data: None, version: -1 });
        assert_eq!(r.err(), BAD_ARGUMENTS, "setData {p:?}");
    }
    // Creates whose parent exists (so the parent lookup cannot answer first): -8 on 3.8.0 too.
    for p in ["a", "/a/", "//", "/a\u{0}b", "", "/a/.", "/a/..", "/a\u{7f}"] {
        xid += 1;
        let r = c.call(xid, &create2_req(p, b"", 0));
        assert_eq!(r.err(), BAD_ARGUMENTS, "create {p:?}");
    }
    // With the sequence suffix appended ("/a/" + suffix would be a valid name).
    for p in ["a", "//", "/a\u{0}b", "", "/a\u{7f}", "/a//"] {
        xid += 1;
        let r = c.call(xid, &create2_req(p, b"", 2));
        assert_eq!(r.err(), BAD_ARGUMENTS, "sequential create {p:?}");
    }
    // Nothing was created, and the connection is still in order.
    let r = c.call(99, &Request::GetChildren2 { path: "/a".into(), watch: false });
    assert_eq!(r.err(), 0);
    assert!(r.children().is_empty());
    assert_healthy(&mut s, "paths");
}

#[test]
fn connections_past_max_client_cnxns_are_closed() {
    let mut s = Server::start(&["maxClientCnxns=5"]);
    let mut held: Vec<Raw> = (0..5).map(|_| Raw::connect(s.addr)).collect();
    for extra in 0..2 {
        let mut t = Raw::tcp(s.addr);
        let _ = t.write_all(&connect_request(30_000, 0, vec![0; 16]).encode());
        assert!(read_frame(&mut t).is_none(), "connection {} gets no session", 6 + extra);
    }
    assert!(s.wait_for_log("Too many connections", Duration::from_secs(5)), "{}", s.log());
    for (i, c) in held.iter_mut().enumerate() {
        let r = c.call(1, &create_req(&format!("/held{i}"), b"", 1));
        assert_eq!(r.err(), 0, "held connection {i}");
    }
    // Closing a session frees its slot by the time the close is answered.
    held.pop().unwrap().close_session();
    let mut sixth = Raw::connect(s.addr);
    assert_eq!(sixth.call(1, &Request::Exists { path: "/held0".into(), watch: false }).err(), 0);
    let mut seventh = Raw::tcp(s.addr);
    let _ = seventh.write_all(&connect_request(30_000, 0, vec![0; 16]).encode());
    assert!(read_frame(&mut seventh).is_none(), "full again");
    sixth.close_session();
    for c in held {
        c.close_session();
    }
    assert_healthy(&mut s, "cnxns");
}

#[test]
fn unknown_auth_scheme_fails_and_closes() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let r = c.call(-4, &Request::Auth { auth_type: 0, scheme: "kerberos-ish".into(), auth: vec![1, 2] });
    assert_eq!(r.err(), ErrorCode::AuthFailed.code());
    assert!(is_closed(&mut c.s), "the connection is closed after AuthFailed");
    assert!(s.wait_for_log("authentication failed", Duration::from_secs(5)), "{}", s.log());
    // The session itself is not closed: it can be resumed on a new connection.
    let mut again = Raw::resume(s.addr, c.session_id, c.passwd.clone()).ok().expect("session still live");
    assert_eq!(again.call(1, &Request::Exists { path: "/".into(), watch: false }).err(), 0);
    assert_healthy(&mut s, "auth");
}

/// Failed authentications are logged with the client's address, and at most once a second:
/// a client failing in a loop cannot flood the log.
#[test]
fn failed_authentications_are_logged_with_the_address_and_rate_limited() {
    let s = Server::start(&[]);
    let started = std::time::Instant::now();
    for _ in 0..40 {
        let mut c = Raw::connect(s.addr);
        let r = c.call(-4, &Request::Auth { auth_type: 0, scheme: "nosuch".into(), auth: b"guess".to_vec() });
        assert_eq!(r.err(), ErrorCode::AuthFailed.code());
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert!(
        s.wait_for_log("authentication failed for scheme \"nosuch\" from 127.0.0.1", Duration::from_secs(5)),
        "{}",
        s.log()
    );
    let lines = s.log_lines_with("authentication failed") as u64;
    assert!(lines >= 1 && lines <= seconds + 1, "{lines} lines for 40 failures in about {seconds} s:\n{}", s.log());
    if lines < 40 {
        // The next line after a quiet second counts the failures it did not log.
        std::thread::sleep(Duration::from_millis(1100));
        let mut c = Raw::connect(s.addr);
        let _ = c.call(-4, &Request::Auth { auth_type: 0, scheme: "nosuch".into(), auth: b"guess".to_vec() });
        assert!(s.wait_for_log("more failures since the last line", Duration::from_secs(5)), "{}", s.log());
    }
}

/// Pipelines `n` requests on one connection (one in ten a setData of `path`) from a writer
/// thread while this thread reads: replies must come in request order, and each read must see
/// exactly the session's earlier writes.
fn flood(addr: std::net::SocketAddr, path: &str, n: i32) {
    let mut c = Raw::connect(addr);
    assert_eq!(c.call(1, &create_req(path, b"", 0)).err(), 0);
    let mut writer = c.s.try_clone().unwrap();
    let p = path.to_string();
    let t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for xid in 100..100 + n {
            let req = if xid % 10 == 0 {
                Request::SetData { path: p.clone(), data: Some(xid.to_be_bytes().to_vec()), version: -1 }
            } else {
                Request::GetData { path: p.clone(), watch: false }
            };
            buf.extend_from_slice(&req.encode(xid));
            if buf.len() > 64 * 1024 {
                writer.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        writer.write_all(&buf).unwrap();
    });
    for xid in 100..100 + n {
        let r = match c.next_frame() {
            Some(common::Frame::Reply(r)) => r,
            other => panic!("xid {xid}: {other:?}"),
        };
        assert_eq!((r.hdr.xid, r.err()), (xid, 0), "replies come in request order");
        if xid % 10 != 0 {
            // A read sees every earlier write of its own session, and no later one.
            let (data, st) = r.data_and_stat();
            assert_eq!(st.version, (xid - 100) / 10 + 1, "xid {xid}");
            assert_eq!(data.unwrap(), ((xid / 10) * 10).to_be_bytes(), "xid {xid}");
        }
    }
    t.join().unwrap();
    c.close_session();
}

#[test]
fn a_flood_of_pipelined_requests_is_answered_in_order() {
    let mut s = Server::start(&[]);
    flood(s.addr, "/f", 5_000);
    assert_healthy(&mut s, "flood");
}

#[test]
fn floods_on_two_executors_are_answered_in_order() {
    let mut s = Server::start(&["warren.cores=2"]);
    let addr = s.addr;
    let floods: Vec<_> = (0..4).map(|i| std::thread::spawn(move || flood(addr, &format!("/f{i}"), 3_000))).collect();
    for f in floods {
        f.join().unwrap();
    }
    assert_healthy(&mut s, "flood-2");
}

#[test]
fn set_watches_with_invalid_paths_is_bad_arguments_and_registers_nothing() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    // Each list with one bad path beside a good one: refused whole, as every other request
    // with a bad path is. (Before, a NUL inside a path came back in a NodeDeleted event.)
    for bad in ["", "no-slash", "//", "/a/../b", "/a\u{0}b", "/x/"] {
        let odd = vec!["/fine".to_string(), bad.to_string()];
        for list in 0..5 {
            let mut sw = SetWatches { relative_zxid: 0, ..Default::default() };
            *[&mut sw.data, &mut sw.exist, &mut sw.child, &mut sw.persistent, &mut sw.persistent_recursive][list] =
                odd.clone();
            let r = c.call(-8, &Request::SetWatches(sw));
            assert_eq!(r.err(), ErrorCode::BadArguments.code(), "path {bad:?} in list {list}");
        }
    }
    assert!(c.ping_barrier().is_empty(), "no event for a watch that was refused: {:?}", c.events);
    assert!(c.events.is_empty(), "{:?}", c.events);
    // Nothing was registered: creating /fine notifies nobody.
    assert_eq!(c.call(1, &create_req("/fine", b"", 0)).err(), 0);
    assert!(c.ping_barrier().is_empty());
    assert!(s.wait_for_log("setWatches with an invalid path", Duration::from_secs(5)), "{}", s.log());
    assert_healthy(&mut s, "setwatches");
}

#[test]
fn create_flags_and_ttls_out_of_range_are_bad_arguments() {
    let mut s = Server::start(&["extendedTypesEnabled=true"]);
    let mut c = Raw::connect(s.addr);
    for (xid, flags) in [(1, 7), (2, -1), (3, 1 << 20)] {
        assert_eq!(c.call(xid, &create_req("/f", b"", flags)).err(), BAD_ARGUMENTS, "flags {flags}");
    }
    // A TTL mode through plain create carries no TTL: BadArguments (checked on 3.8.0).
    assert_eq!(c.call(4, &create_req("/f", b"", 5)).err(), BAD_ARGUMENTS);
    let ttl = |ttl_ms: i64, flags: i32| {
        Request::Create(CreateRequest {
            kind: CreateKind::Ttl,
            path: "/t".into(),
            data: None,
            acl: open_acl_unsafe(),
            flags,
            ttl_ms,
        })
    };
    assert_eq!(c.call(5, &ttl(0, 5)).err(), BAD_ARGUMENTS, "ttl 0");
    assert_eq!(c.call(6, &ttl(-3, 5)).err(), BAD_ARGUMENTS, "negative ttl");
    assert_eq!(c.call(7, &ttl(1 << 41, 5)).err(), BAD_ARGUMENTS, "ttl over 2^40-1");
    assert_eq!(c.call(8, &ttl(1000, 1)).err(), BAD_ARGUMENTS, "ephemeral with a ttl");
    assert_eq!(c.call(9, &ttl(1000, 5)).err(), 0);
    assert_healthy(&mut s, "flags");
}
