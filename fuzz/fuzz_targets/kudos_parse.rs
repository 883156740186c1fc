//! Any text either fails to parse as kudos or round-trips exactly through Display.
#![no_main]

use horde_core::Kudos;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(kudos) = text.parse::<Kudos>() {
            let shown = kudos.to_string();
            assert_eq!(shown.parse::<Kudos>().ok(), Some(kudos));
        }
    }
});
