//! Any zoo.cfg text: a Config or a ConfigError naming the line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warren::config::Config::parse(text);
    }
});
