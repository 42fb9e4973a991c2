//! Hostile and broken input against the real binary: every case gets ZooKeeper's answer (an
//! error code, or that one connection closed with a log line), the process never dies, and a
//! healthy client is served after each case.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{is_closed, read_frame, Raw, Server};
use warren::acl::open_acl_unsafe;
use warren::proto::{CreateKind, CreateRequest, ErrorCode, Request, Writer};

fn create(path: &str, data: Vec<u8>) -> Request {
    Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: path.into(),
        data: Some(data),
        acl: open_acl_unsafe(),
        flags: 0,
        ttl_ms: -1,
    })
}

/// After each bad case: the server is alive and a fresh session can write and read.
fn assert_healthy(s: &mut Server, tag: &str) {
    assert!(s.is_alive(), "{tag}: the server died\n{}", s.log());
    let mut c = Raw::connect(s.addr);
    let path = format!("/healthy-{}", tag.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_"));
    let (h, _) = c.call(1, &create(&path, b"ok".to_vec()));
    assert!(h.err == 0 || h.err == ErrorCode::NodeExists.code(), "{tag}: {h:?}");
    let (h, _) = c.call(2, &Request::Exists { path, watch: false });
    assert_eq!(h.err, 0, "{tag}");
}

fn raw_bytes_then_closed(s: &Server, bytes: &[u8]) -> bool {
    let mut t = Raw::tcp(s.addr);
    t.write_all(bytes).unwrap();
    let _ = t.shutdown(std::net::Shutdown::Write);
    is_closed(&mut t)
}

#[test]
fn garbage_truncated_and_bad_lengths_close_only_that_connection() {
    let mut s = Server::start(&[]);
    // Seeded random bytes, several sizes.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for size in [1usize, 3, 7, 64, 1000, 70_000] {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(raw_bytes_then_closed(&s, &bytes));
        assert_healthy(&mut s, &format!("random-{size}"));
    }
    // A negative length and a 2 GiB length.
    assert!(raw_bytes_then_closed(&s, &(-5i32).to_be_bytes()));
    assert!(raw_bytes_then_closed(&s, &0x7fff_ffffu32.to_be_bytes()));
    assert_healthy(&mut s, "lengths");
    // A frame that promises more than it sends, then EOF.
    let mut f = 100u32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0u8; 10]);
    assert!(raw_bytes_then_closed(&s, &f));
    assert_healthy(&mut s, "truncated");
    assert!(s.log().contains("Len error"), "{}", s.log());
}

#[test]
fn frame_limit_is_jute_maxbuffer_for_the_whole_frame() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    // 4+4 header, 4+4 path "/big", 4+data, acl vector 4+(4+4+5+4+6), flags 4 = data + 51.
    let fits = 1_048_575 - 51;
    assert_eq!(create("/big", vec![7; fits]).encode(1).len() - 4, 1_048_575);
    let (h, _) = c.call(1, &create("/big", vec![7; fits]));
    assert_eq!(h.err, 0);
    c.send(2, &create("/big2", vec![7; fits + 1]));
    assert!(is_closed(&mut c.s), "an oversized frame closes the connection");
    let mut d = Raw::connect(s.addr);
    let (h, _) = d.call(1, &Request::Exists { path: "/big2".into(), watch: false });
    assert_eq!(h.err, ErrorCode::NoNode.code(), "nothing of the oversized request was created");
    assert!(s.log().contains("Len error"));
    assert_healthy(&mut s, "maxbuffer");
}

#[test]
fn unknown_opcode_answers_unimplemented_and_keeps_the_connection() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let mut w = Writer::framed();
    w.i32(5).i32(77).string("whatever");
    c.s.write_all(&w.finish_frame()).unwrap();
    let (h, _) = c.reply(5);
    assert_eq!(h.err, ErrorCode::Unimplemented.code());
    let (h, _) = c.call(6, &Request::Exists { path: "/".into(), watch: false });
    assert_eq!(h.err, 0, "the connection is still usable");
    assert_healthy(&mut s, "opcode");
}

#[test]
fn malformed_paths_are_bad_arguments() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    for (i, p) in ["a", "/a/", "//", "/a/./b", "/a\u{0}b", "/a/../b", ""].iter().enumerate() {
        let (h, _) = c.call(i as i32 + 1, &create(p, vec![]));
        assert_eq!(h.err, ErrorCode::BadArguments.code(), "create {p:?}");
        let (h, _) = c.call(100 + i as i32, &Request::GetData { path: p.to_string(), watch: false });
        assert_eq!(h.err, ErrorCode::BadArguments.code(), "get {p:?}");
    }
    assert_healthy(&mut s, "paths");
}

#[test]
fn invalid_utf8_in_a_path_closes_the_connection_with_a_log_line() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let mut w = Writer::framed();
    w.i32(1).i32(4).buffer(&[b'/', 0xff, 0xfe]).bool(false);
    c.s.write_all(&w.finish_frame()).unwrap();
    assert!(is_closed(&mut c.s));
    assert!(s.log().contains("malformed request"), "{}", s.log());
    assert_healthy(&mut s, "utf8");
}

#[test]
fn a_request_instead_of_a_handshake_is_refused() {
    let mut s = Server::start(&[]);
    // A well-formed getData frame sent as the first packet is not a ConnectRequest.
    let req = Request::GetData { path: "/".into(), watch: false }.encode(1);
    assert!(raw_bytes_then_closed(&s, &req));
    assert_healthy(&mut s, "handshake");
}

#[test]
fn connections_past_max_client_cnxns_are_closed() {
    let mut s = Server::start(&["maxClientCnxns=5"]);
    let mut held: Vec<Raw> = (0..5).map(|_| Raw::connect(s.addr)).collect();
    let mut sixth = TcpStream::connect(s.addr).unwrap();
    sixth.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let _ = sixth.write_all(
        &warren::proto::ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: None,
        }
        .encode(),
    );
    assert!(read_frame(&mut sixth).is_none(), "the sixth connection gets no session");
    assert!(s.log().contains("Too many connections"));
    for (i, c) in held.iter_mut().enumerate() {
        let (h, _) = c.call(1, &Request::Exists { path: "/".into(), watch: false });
        assert_eq!(h.err, 0, "held connection {i}");
    }
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_healthy(&mut s, "cnxns");
}

#[test]
fn unknown_auth_scheme_fails_and_closes() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let (h, _) = c.call(-4, &Request::Auth { auth_type: 0, scheme: "kerberos-ish".into(), auth: vec![1, 2] });
    assert_eq!(h.err, ErrorCode::AuthFailed.code());
    assert!(is_closed(&mut c.s));
    assert_healthy(&mut s, "auth");
}

#[test]
fn wrong_password_reconnect_gets_an_expired_answer_right_one_resumes() {
    let mut s = Server::start(&[]);
    let mut c = Raw::connect(s.addr);
    let (h, _) = c.call(
        1,
        &Request::Create(CreateRequest {
            kind: CreateKind::Create,
            path: "/eph".into(),
            data: None,
            acl: open_acl_unsafe(),
            flags: 1,
            ttl_ms: -1,
        }),
    );
    assert_eq!(h.err, 0);
    let (id, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    let refused = Raw::resume(s.addr, id, vec![9; 16]).err().expect("refused");
    assert_eq!((refused.timeout_ms, refused.session_id), (0, 0));
    let mut again = Raw::resume(s.addr, id, passwd).expect("resumed");
    let (h, _) = again.call(1, &Request::Exists { path: "/eph".into(), watch: false });
    assert_eq!(h.err, 0, "the ephemeral survived the reconnect");
    assert_healthy(&mut s, "password");
}
