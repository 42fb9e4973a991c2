//! Any bytes a client sends as a frame body: the ConnectRequest decoder and the request
//! decoder must return a value or an error, never panic; what decodes re-encodes to a frame
//! that decodes to the same request.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warren::proto::{ConnectRequest, Request};

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode(data);
    if let Ok((hdr, req)) = Request::decode(data) {
        let again = req.encode(hdr.xid);
        let (hdr2, req2) = Request::decode(&again[4..]).expect("a re-encoded request decodes");
        assert_eq!(hdr2.xid, hdr.xid);
        assert_eq!(req2.opcode(), req.opcode());
    }
});
