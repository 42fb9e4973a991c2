//! A log segment's bytes as recovery reads them (torn, flipped, garbage): scanning returns
//! the valid prefix or an error, and every record it accepts decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warren::log::format;

fuzz_target!(|data: &[u8]| {
    let _ = format::decode_header(data);
    let _ = format::decode_txn(data);
    let _ = format::record_zxid(data);
    let _ = format::scan(data);
});
