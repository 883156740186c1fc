#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../src/wire.rs"]
mod wire;

fuzz_target!(|data: &[u8]| wire::parse_requests(data));
