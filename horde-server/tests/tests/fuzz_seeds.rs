//! The committed seeds of the `wire_json` fuzz target, replayed as an ordinary test.

#[path = "../../../fuzz/src/wire.rs"]
mod wire;

#[test]
fn committed_request_bodies_parse_and_validate_without_panicking() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/wire_json");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        wire::parse_requests(&data);
        count += 1;
    }
    assert!(count >= 5, "the seeds are missing");
}
