//! Any JAAS file text (the users of SASL DIGEST-MD5): the users or an error naming the line,
//! never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warren::sasl::jaas_users(text, "Server");
    }
});
