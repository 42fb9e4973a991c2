//! A snapshot file's bytes: validation rejects or loads, never panics (the loader reads
//! archived chunks in place, so this guards its checks).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = warren::snap::decode(data);
});
