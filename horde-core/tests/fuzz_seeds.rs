//! The committed seeds of the `horde_commands` fuzz target, replayed as an ordinary test: the
//! same invariant checks, on every `cargo test`.

#![allow(clippy::unwrap_used)]

#[path = "../../fuzz/src/commands.rs"]
mod commands;

#[test]
fn committed_command_sequences_keep_every_invariant() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/horde_commands");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        commands::run_commands(&data);
        count += 1;
    }
    assert!(count >= 5, "the seeds are missing");
}
