//! Property tests of the wire codec: every request round-trips, and decoding arbitrary bytes
//! never panics.

use proptest::prelude::*;
use warren::acl::{Acl, Id};
use warren::proto::{
    encode_reply, read_multi_results, ConnectRequest, CreateKind, CreateRequest, MultiOp, Reader, ReplyHeader, Request,
    Response, SetWatches, Stat,
};

fn path() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9_.-]{1,8}){0,4}|/|[^\\x00]{0,12}"
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    proptest::collection::vec(
        (0..32i32, "[a-z]{1,6}", "[a-z0-9:=]{0,12}")
            .prop_map(|(perms, scheme, id)| Acl { perms, id: Id { scheme, id } }),
        0..3,
    )
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (
        prop_oneof![
            Just(CreateKind::Create),
            Just(CreateKind::Create2),
            Just(CreateKind::Container),
            Just(CreateKind::Ttl)
        ],
        path(),
        data(),
        acls(),
        0..7i32,
        1..1_000_000i64,
    )
        .prop_map(|(kind, path, data, acl, flags, ttl)| CreateRequest {
            kind,
            path,
            data,
            acl,
            flags,
            ttl_ms: if kind == CreateKind::Ttl { ttl } else { -1 },
        })
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

fn strings() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(path(), 0..3)
}

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
        proptest::collection::vec(write_op(), 0..4).prop_map(Request::Multi),
        proptest::collection::vec(read_op(), 0..4).prop_map(Request::MultiRead),
        (path(), 1..6i32).prop_map(|(path, watch_type)| Request::CheckWatches { path, watch_type }),
        (path(), 1..6i32).prop_map(|(path, watch_type)| Request::RemoveWatches { path, watch_type }),
        (any::<i32>(), "[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(auth_type, scheme, auth)| Request::Auth { auth_type, scheme, auth }),
        (any::<i64>(), strings(), strings(), strings()).prop_map(|(relative_zxid, data, exist, child)| {
            Request::SetWatches(SetWatches { relative_zxid, data, exist, child, ..Default::default() })
        }),
        (any::<i64>(), strings(), strings(), strings(), strings(), strings()).prop_map(|(z, d, e, c, p, r)| {
            // setWatches2 needs at least one persistent list to be chosen on encode.
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
        (path(), 0..2i32).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

proptest! {
    #[test]
    fn every_request_round_trips(req in request(), xid in any::<i32>()) {
        let frame = req.encode(xid);
        prop_assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize, frame.len() - 4);
        let (hdr, back) = Request::decode(&frame[4..]).unwrap();
        prop_assert_eq!(hdr.xid, xid);
        prop_assert_eq!(hdr.op, req.opcode());
        prop_assert_eq!(back, req);
    }

    #[test]
    fn connect_request_round_trips(ro in proptest::option::of(any::<bool>()), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(), pw in proptest::collection::vec(any::<u8>(), 0..20)) {
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen: z, timeout_ms: t, session_id: s, passwd: pw, read_only: ro };
        let frame = req.encode();
        prop_assert_eq!(ConnectRequest::decode(&frame[4..]).unwrap(), req);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Request::decode(&bytes);
        let _ = ConnectRequest::decode(&bytes);
        let _ = read_multi_results(&mut Reader::new(&bytes));
        let _ = warren::log::format::decode_txn(&bytes);
        let _ = warren::log::format::scan(&bytes);
    }

    #[test]
    fn decoding_mutated_requests_never_panics(req in request(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut frame = req.encode(1);
        for (i, b) in flips {
            let n = frame.len();
            frame[4 + i % (n - 4).max(1)] ^= b;
        }
        let _ = Request::decode(&frame[4..]);
    }

    #[test]
    fn get_data_reply_round_trips(d in data(), xid in any::<i32>(), zxid in any::<i64>(), v in any::<i32>()) {
        let stat = Stat { czxid: 1, mzxid: 2, ctime: 3, mtime: 4, version: v, cversion: 5, aversion: 6, ephemeral_owner: 7, data_length: 8, num_children: 9, pzxid: 10 };
        let frame = encode_reply(ReplyHeader { xid, zxid, err: 0 }, &Response::GetData { data: d.clone(), stat });
        let mut r = Reader::new(&frame[4..]);
        prop_assert_eq!((r.i32().unwrap(), r.i64().unwrap(), r.i32().unwrap()), (xid, zxid, 0));
        prop_assert_eq!(r.opt_buffer().unwrap(), d);
        prop_assert_eq!(Stat::read(&mut r).unwrap(), stat);
        prop_assert!(r.finish().is_ok());
    }
}
