//! Any bytes a peer sends: the connection hello, a frame's length prefix and a frame body must
//! give a value or an error, never a panic; a message that decodes re-encodes to a frame that
//! decodes to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warren::quorum::codec::{decode, decode_hello, encode, frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = decode_hello(data);
    if let Some(prefix) = data.get(..4) {
        let _ = frame_len(prefix.try_into().expect("four bytes"));
    }
    if let Ok(msg) = decode(data) {
        let mut again = Vec::new();
        encode(&msg, &mut again);
        assert_eq!(decode(&again[4..]).as_ref(), Ok(&msg), "a re-encoded message decodes the same");
    }
});
