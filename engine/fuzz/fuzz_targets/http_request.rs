//! Any bytes sent to the AdminServer or the metrics port: a request or a 4xx, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = warren::server::http::read_request(data);
});
