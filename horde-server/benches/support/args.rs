//! The benches' command-line options: `--name value` pairs after `cargo bench … --`.

/// The value after `name`, if there is one.
pub(crate) fn text_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The number after `name`, else `default`.
pub(crate) fn arg(name: &str, default: u64) -> u64 {
    text_arg(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
