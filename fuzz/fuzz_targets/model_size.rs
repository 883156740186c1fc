//! Model-name parsing never panics and never yields a negative or non-finite size.
#![no_main]

use horde_core::reward::parse_model_size_b;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(size) = parse_model_size_b(name) {
            assert!(size.is_finite() && size >= 0.0);
        }
    }
});
