#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../src/commands.rs"]
mod commands;

fuzz_target!(|data: &[u8]| commands::run_commands(data));
