//! Property tests of the wire codec (`warren::proto`): every request round-trips through
//! `encode` and `Request::decode`, decoding arbitrary or damaged bytes never panics, and reply
//! frames written by `encode_reply` decode field by field the way a client reads them.

use proptest::collection::vec;
use proptest::prelude::*;
use warren::acl::{Acl, Id};
use warren::proto::{
    encode_reply, op, read_acls, read_multi_results, ConnectRequest, ConnectResponse, CreateKind, CreateRequest,
    ErrorCode, MultiOp, MultiResult, Reader, ReplyHeader, Request, Response, SetWatches, Stat, WatcherEvent, Writer,
};

// ---- strategies -------------------------------------------------------------------------------

/// Paths: mostly valid ones, some arbitrary text (the codec does not validate paths).
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(/[a-zA-Z0-9_.-]{1,8}){0,4}",
        1 => Just("/".to_string()),
        1 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(vec(any::<u8>(), 0..64))
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), "[a-z]{0,6}", "[a-z0-9:=/.]{0,12}")
            .prop_map(|(perms, scheme, id)| Acl { perms, id: Id { scheme, id } }),
        0..4,
    )
}

fn create_kind() -> impl Strategy<Value = CreateKind> {
    prop_oneof![Just(CreateKind::Create), Just(CreateKind::Create2), Just(CreateKind::Container), Just(CreateKind::Ttl)]
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (create_kind(), path(), data(), acls(), any::<i32>(), any::<i64>()).prop_map(
        |(kind, path, data, acl, flags, ttl)| CreateRequest {
            kind,
            path,
            data,
            acl,
            flags,
            ttl_ms: if kind == CreateKind::Ttl { ttl } else { -1 },
        },
    )
}

fn write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Delete { path, version }),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData { path, data, version }),
        (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Check { path, version }),
    ]
}

fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        path().prop_map(|path| MultiOp::GetData { path }),
        path().prop_map(|path| MultiOp::GetChildren { path })
    ]
}

fn paths() -> impl Strategy<Value = Vec<String>> {
    vec(path(), 0..4)
}

/// Opcodes the decoder does not parse a body for (answered Unimplemented or ReconfigDisabled).
const PARSED: &[i32] = &[
    op::CREATE,
    op::DELETE,
    op::EXISTS,
    op::GET_DATA,
    op::SET_DATA,
    op::GET_ACL,
    op::SET_ACL,
    op::GET_CHILDREN,
    op::SYNC,
    op::PING,
    op::GET_CHILDREN2,
    op::CHECK,
    op::MULTI,
    op::CREATE2,
    op::CHECK_WATCHES,
    op::REMOVE_WATCHES,
    op::CREATE_CONTAINER,
    op::DELETE_CONTAINER,
    op::CREATE_TTL,
    op::MULTI_READ,
    op::AUTH,
    op::SET_WATCHES,
    op::GET_EPHEMERALS,
    op::GET_ALL_CHILDREN_NUMBER,
    op::SET_WATCHES2,
    op::ADD_WATCH,
    op::WHO_AM_I,
    op::CLOSE_SESSION,
    op::SASL,
];

fn unparsed_opcode() -> impl Strategy<Value = i32> {
    prop_oneof![Just(op::RECONFIG), Just(op::CREATE_SESSION), Just(0), Just(-1), any::<i32>()]
        .prop_filter("a parsed opcode", |o| !PARSED.contains(o))
}

/// Every request variant, multi with every op type included.
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create().prop_map(Request::Create),
        (path(), any::<i32>()).prop_map(|(path, version)| Request::Delete { path, version }),
        path().prop_map(|path| Request::DeleteContainer { path }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData { path, data, version }),
        path().prop_map(|path| Request::GetAcl { path }),
        (path(), acls(), any::<i32>()).prop_map(|(path, acl, version)| Request::SetAcl { path, acl, version }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren2 { path, watch }),
        path().prop_map(|path| Request::Sync { path }),
        Just(Request::Ping),
        (path(), any::<i32>()).prop_map(|(path, version)| Request::Check { path, version }),
        vec(write_op(), 0..5).prop_map(Request::Multi),
        vec(read_op(), 0..5).prop_map(Request::MultiRead),
        (path(), any::<i32>()).prop_map(|(path, watch_type)| Request::CheckWatches { path, watch_type }),
        (path(), any::<i32>()).prop_map(|(path, watch_type)| Request::RemoveWatches { path, watch_type }),
        (any::<i32>(), "[a-z]{0,8}", vec(any::<u8>(), 0..16)).prop_map(|(auth_type, scheme, auth)| Request::Auth {
            auth_type,
            scheme,
            auth
        }),
        (any::<i64>(), paths(), paths(), paths()).prop_map(|(relative_zxid, data, exist, child)| {
            Request::SetWatches(SetWatches { relative_zxid, data, exist, child, ..Default::default() })
        }),
        (any::<i64>(), paths(), paths(), paths(), paths(), paths()).prop_map(|(z, d, e, c, p, r)| {
            // setWatches2 is chosen on encode when a persistent list is non-empty.
            let p = if p.is_empty() && r.is_empty() { vec!["/p".to_string()] } else { p };
            Request::SetWatches(SetWatches {
                relative_zxid: z,
                data: d,
                exist: e,
                child: c,
                persistent: p,
                persistent_recursive: r,
            })
        }),
        path().prop_map(|prefix| Request::GetEphemerals { prefix }),
        path().prop_map(|path| Request::GetAllChildrenNumber { path }),
        (path(), any::<i32>()).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|token| Request::Sasl { token }),
        unparsed_opcode().prop_map(Request::Unimplemented),
    ]
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(|((czxid, mzxid, ctime, mtime), (version, cversion, aversion), (owner, len, n, pzxid))| Stat {
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner: owner,
            data_length: len,
            num_children: n,
            pzxid,
        })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    (-130..0i32).prop_filter_map("not an error code", ErrorCode::from_code)
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        path().prop_map(|path| MultiResult::Create { path }),
        (path(), stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData { stat }),
        Just(MultiResult::Check),
        (data(), stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        paths().prop_map(|children| MultiResult::GetChildren { children }),
        error_code().prop_map(MultiResult::Error),
    ]
}

// ---- helpers ------------------------------------------------------------------------------

fn frame_len(frame: &[u8]) -> usize {
    u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize
}

/// Reads a ReplyHeader the way a client does.
fn header(r: &mut Reader) -> (i32, i64, i32) {
    (r.i32().unwrap(), r.i64().unwrap(), r.i32().unwrap())
}

fn read_stat(r: &mut Reader) -> Stat {
    // Field by field, in zookeeper.jute order, rather than through Stat::read.
    Stat {
        czxid: r.i64().unwrap(),
        mzxid: r.i64().unwrap(),
        ctime: r.i64().unwrap(),
        mtime: r.i64().unwrap(),
        version: r.i32().unwrap(),
        cversion: r.i32().unwrap(),
        aversion: r.i32().unwrap(),
        ephemeral_owner: r.i64().unwrap(),
        data_length: r.i32().unwrap(),
        num_children: r.i32().unwrap(),
        pzxid: r.i64().unwrap(),
    }
}

fn decode_everything(bytes: &[u8]) {
    let _ = Request::decode(bytes);
    let _ = ConnectRequest::decode(bytes);
    let _ = ConnectResponse::decode(bytes);
    let _ = read_multi_results(&mut Reader::new(bytes));
    let _ = read_acls(&mut Reader::new(bytes));
    let _ = WatcherEvent::read(&mut Reader::new(bytes));
    let _ = Stat::read(&mut Reader::new(bytes));
    let _ = warren::log::format::decode_txn(bytes);
    let _ = warren::log::format::scan(bytes);
}

// ---- (a) round trips ------------------------------------------------------------------------------

proptest! {
    #[test]
    fn every_request_round_trips(req in request(), xid in any::<i32>()) {
        let frame = req.encode(xid);
        prop_assert_eq!(frame_len(&frame), frame.len() - 4);
        let (hdr, back) = Request::decode(&frame[4..]).unwrap();
        prop_assert_eq!(hdr.xid, xid);
        prop_assert_eq!(hdr.op, req.opcode());
        prop_assert_eq!(back, req);
    }

    #[test]
    fn a_truncated_request_never_decodes(req in request(), cut in any::<prop::sample::Index>()) {
        prop_assume!(!matches!(req, Request::Unimplemented(_)));
        let frame = req.encode(1);
        let body = &frame[4..];
        let at = cut.index(body.len());
        prop_assert!(Request::decode(&body[..at]).is_err(), "{} of {} bytes decoded: {:?}", at, body.len(), req);
    }

    #[test]
    fn connect_request_round_trips(
        ro in proptest::option::of(any::<bool>()),
        v in any::<i32>(), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(),
        pw in vec(any::<u8>(), 0..40),
    ) {
        let req = ConnectRequest { protocol_version: v, last_zxid_seen: z, timeout_ms: t, session_id: s, passwd: pw, read_only: ro };
        let frame = req.encode();
        prop_assert_eq!(frame_len(&frame), frame.len() - 4);
        prop_assert_eq!(ConnectRequest::decode(&frame[4..]).unwrap(), req.clone());
        // A 3.3-era request (no readOnly byte) is the same request with read_only None.
        if req.read_only.is_some() {
            let old = ConnectRequest::decode(&frame[4..frame.len() - 1]).unwrap();
            prop_assert_eq!(old, ConnectRequest { read_only: None, ..req });
        }
    }

    #[test]
    fn connect_response_round_trips(
        ro in proptest::option::of(any::<bool>()), t in any::<i32>(), s in any::<i64>(), pw in vec(any::<u8>(), 0..40),
    ) {
        let resp = ConnectResponse { protocol_version: 0, timeout_ms: t, session_id: s, passwd: pw.clone(), read_only: ro };
        let frame = resp.encode();
        // Manual decoding, as a client reads it.
        let mut r = Reader::new(&frame[4..]);
        prop_assert_eq!((r.i32().unwrap(), r.i32().unwrap(), r.i64().unwrap()), (0, t, s));
        prop_assert_eq!(r.buffer().unwrap(), pw);
        prop_assert_eq!(if r.remaining() > 0 { Some(r.bool().unwrap()) } else { None }, ro);
        prop_assert!(r.finish().is_ok());
        prop_assert_eq!(ConnectResponse::decode(&frame[4..]).unwrap(), resp);
    }
}

// ---- (b) never panic ------------------------------------------------------------------------------

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..4096)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_a_known_header_with_a_random_body_never_panics(
        xid in any::<i32>(),
        opcode in prop::sample::select(PARSED.to_vec()),
        body in vec(any::<u8>(), 0..2048),
    ) {
        let mut w = Writer::new();
        w.i32(xid).i32(opcode);
        w.buf.extend_from_slice(&body);
        let _ = Request::decode(&w.buf);
    }

    #[test]
    fn decoding_multi_headers_with_random_bodies_never_panics(
        parts in vec((prop::sample::select(PARSED.to_vec()), any::<bool>(), any::<i32>(), vec(any::<u8>(), 0..24)), 0..8),
        read_only in any::<bool>(),
    ) {
        let mut w = Writer::new();
        w.i32(1).i32(if read_only { op::MULTI_READ } else { op::MULTI });
        for (opcode, done, err, tail) in &parts {
            w.i32(*opcode).bool(*done).i32(*err);
            w.buf.extend_from_slice(tail);
        }
        let _ = Request::decode(&w.buf);
        let _ = read_multi_results(&mut Reader::new(&w.buf[8..]));
    }

    #[test]
    fn decoding_damaged_requests_never_panics(req in request(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut frame = req.encode(1);
        let body = &mut frame[4..];
        for (i, b) in flips {
            let at = i.index(body.len());
            body[at] ^= b | 1;
        }
        decode_everything(body);
    }

    #[test]
    fn damaged_lengths_never_panic(req in request(), at in any::<prop::sample::Index>(), len in prop_oneof![Just(-1i32), Just(-2), Just(i32::MIN), Just(i32::MAX), any::<i32>()]) {
        // Overwrite 4 bytes somewhere with a hostile length.
        let mut frame = req.encode(1);
        let body = &mut frame[4..];
        if body.len() >= 4 {
            let i = at.index(body.len() - 3);
            body[i..i + 4].copy_from_slice(&len.to_be_bytes());
        }
        decode_everything(body);
    }
}

// ---- (c) replies ------------------------------------------------------------------------------

proptest! {
    #[test]
    fn stat_reply_round_trips(st in stat(), xid in any::<i32>(), zxid in any::<i64>()) {
        let frame = encode_reply(ReplyHeader { xid, zxid, err: 0 }, &Response::Stat(st));
        prop_assert_eq!(frame_len(&frame), frame.len() - 4);
        prop_assert_eq!(frame.len(), 4 + 16 + 68, "a Stat is 68 bytes");
        let mut r = Reader::new(&frame[4..]);
        prop_assert_eq!(header(&mut r), (xid, zxid, 0));
        prop_assert_eq!(read_stat(&mut r), st);
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn get_data_reply_round_trips(d in data(), st in stat(), xid in any::<i32>(), zxid in any::<i64>()) {
        let frame = encode_reply(ReplyHeader { xid, zxid, err: 0 }, &Response::GetData { data: d.clone(), stat: st });
        let mut r = Reader::new(&frame[4..]);
        prop_assert_eq!(header(&mut r), (xid, zxid, 0));
        // A null buffer is length -1 on the wire; otherwise the length, then the bytes.
        let body = &frame[20..];
        let len = i32::from_be_bytes(body[..4].try_into().unwrap());
        let after = match &d {
            None => {
                prop_assert_eq!(len, -1);
                4
            }
            Some(b) => {
                prop_assert_eq!(len as usize, b.len());
                prop_assert_eq!(&body[4..4 + b.len()], &b[..]);
                4 + b.len()
            }
        };
        let mut r = Reader::new(&body[after..]);
        prop_assert_eq!(read_stat(&mut r), st);
        prop_assert!(r.finish().is_ok());
        // And through the reader's own buffer decoding.
        let mut r = Reader::new(&frame[20..]);
        prop_assert_eq!(r.opt_buffer().unwrap(), d);
    }

    #[test]
    fn path_and_children_replies_round_trip(p in path(), kids in paths(), st in stat(), n in any::<i32>()) {
        let read = |resp: &Response| encode_reply(ReplyHeader { xid: 5, zxid: 9, err: 0 }, resp);
        for resp in [Response::Create { path: p.clone() }, Response::Sync { path: p.clone() }] {
            let f = read(&resp);
            let mut r = Reader::new(&f[20..]);
            prop_assert_eq!(r.string().unwrap(), p.clone());
            prop_assert!(r.finish().is_ok());
        }
        let f = read(&Response::Create2 { path: p.clone(), stat: st });
        let mut r = Reader::new(&f[20..]);
        prop_assert_eq!((r.string().unwrap(), read_stat(&mut r)), (p.clone(), st));
        prop_assert!(r.finish().is_ok());
        for resp in [Response::Children(kids.clone()), Response::Ephemerals(kids.clone())] {
            let f = read(&resp);
            let mut r = Reader::new(&f[20..]);
            let count = r.i32().unwrap();
            prop_assert_eq!(count as usize, kids.len());
            let got: Vec<String> = (0..count).map(|_| r.string().unwrap()).collect();
            prop_assert_eq!(&got, &kids);
            prop_assert!(r.finish().is_ok());
        }
        let f = read(&Response::Children2 { children: kids.clone(), stat: st });
        let mut r = Reader::new(&f[20..]);
        prop_assert_eq!((r.strings().unwrap(), read_stat(&mut r)), (kids.clone(), st));
        prop_assert!(r.finish().is_ok());
        let f = read(&Response::AllChildrenNumber(n));
        prop_assert_eq!(&f[20..], &n.to_be_bytes()[..]);
        let f = read(&Response::Empty);
        prop_assert_eq!(f.len(), 20);
    }

    #[test]
    fn acl_and_who_am_i_replies_round_trip(acl in acls(), st in stat(), ids in vec(("[a-z]{1,6}", "[a-z0-9.]{0,10}"), 0..4)) {
        let f = encode_reply(ReplyHeader { xid: 1, zxid: 2, err: 0 }, &Response::GetAcl { acl: acl.clone(), stat: st });
        let mut r = Reader::new(&f[20..]);
        let n = r.i32().unwrap();
        let mut got = Vec::new();
        for _ in 0..n {
            let perms = r.i32().unwrap();
            let scheme = r.string().unwrap();
            let id = r.string().unwrap();
            got.push(Acl { perms, id: Id { scheme, id } });
        }
        prop_assert_eq!(got, acl);
        prop_assert_eq!(read_stat(&mut r), st);
        prop_assert!(r.finish().is_ok());
        let f = encode_reply(ReplyHeader { xid: 1, zxid: 2, err: 0 }, &Response::WhoAmI(ids.clone()));
        let mut r = Reader::new(&f[20..]);
        let n = r.i32().unwrap();
        let got: Vec<(String, String)> = (0..n).map(|_| (r.string().unwrap(), r.string().unwrap())).collect();
        prop_assert_eq!(got, ids);
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn multi_reply_round_trips(results in vec(multi_result(), 0..6)) {
        let f = encode_reply(ReplyHeader { xid: 3, zxid: 4, err: 0 }, &Response::Multi(results.clone()));
        let mut r = Reader::new(&f[20..]);
        prop_assert_eq!(read_multi_results(&mut r).unwrap(), results.clone());
        prop_assert!(r.finish().is_ok());
        // The wire shape: a MultiHeader per result (error results as opcode -1 with the code
        // in the header and again in the body), then the done header {-1, true, -1}.
        let mut r = Reader::new(&f[20..]);
        for res in &results {
            let (opcode, done, err) = (r.i32().unwrap(), r.bool().unwrap(), r.i32().unwrap());
            prop_assert!(!done);
            match res {
                MultiResult::Error(e) => {
                    prop_assert_eq!((opcode, err, r.i32().unwrap()), (-1, e.code(), e.code()));
                }
                MultiResult::Create { path } => {
                    prop_assert_eq!((opcode, err), (op::CREATE, 0));
                    prop_assert_eq!(&r.string().unwrap(), path);
                }
                MultiResult::Create2 { path, stat } => {
                    prop_assert_eq!(opcode, op::CREATE2);
                    prop_assert_eq!((&r.string().unwrap(), read_stat(&mut r)), (path, *stat));
                }
                MultiResult::Delete => prop_assert_eq!(opcode, op::DELETE),
                MultiResult::Check => prop_assert_eq!(opcode, op::CHECK),
                MultiResult::SetData { stat } => {
                    prop_assert_eq!((opcode, read_stat(&mut r)), (op::SET_DATA, *stat));
                }
                MultiResult::GetData { data, stat } => {
                    prop_assert_eq!(opcode, op::GET_DATA);
                    prop_assert_eq!((&r.opt_buffer().unwrap(), read_stat(&mut r)), (data, *stat));
                }
                MultiResult::GetChildren { children } => {
                    prop_assert_eq!((opcode, &r.strings().unwrap()), (op::GET_CHILDREN, children));
                }
            }
        }
        prop_assert_eq!((r.i32().unwrap(), r.bool().unwrap(), r.i32().unwrap()), (-1, true, -1));
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn an_error_reply_has_no_body(e in error_code(), st in stat(), xid in any::<i32>()) {
        let f = encode_reply(ReplyHeader { xid, zxid: 7, err: e.code() }, &Response::Stat(st));
        prop_assert_eq!(f.len(), 20, "the body is dropped when err != 0");
        let mut r = Reader::new(&f[4..]);
        prop_assert_eq!(header(&mut r), (xid, 7, e.code()));
    }

    #[test]
    fn watcher_event_round_trips(t in -1..8i32, state in any::<i32>(), p in path()) {
        let ev = WatcherEvent { event_type: t, state, path: p.clone() };
        let f = ev.encode();
        prop_assert_eq!(frame_len(&f), f.len() - 4);
        let mut r = Reader::new(&f[4..]);
        prop_assert_eq!(header(&mut r), (-1, -1, 0), "xid -1, zxid -1, err 0");
        prop_assert_eq!((r.i32().unwrap(), r.i32().unwrap(), r.string().unwrap()), (t, state, p));
        prop_assert!(r.finish().is_ok());
        prop_assert_eq!(WatcherEvent::read(&mut Reader::new(&f[20..])).unwrap(), ev);
    }
}
