//! How alike two generations are, as spot checks judge them: `cargo run -p horde-core
//! --example similarity -- A.txt B.txt` prints the similarity (0–1) and the verdict under the
//! default threshold. Operators calibrate `spot_checks.min_similarity` with it on answers of
//! their own models (the same prompt, greedy, on two backends or quantisations).

use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = paths.as_slice() else {
        eprintln!("usage: similarity A.txt B.txt");
        return ExitCode::from(2);
    };
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(|e| eprintln!("cannot read {path}: {e}"))
    };
    let (Ok(a), Ok(b)) = (read(a), read(b)) else {
        return ExitCode::from(2);
    };
    let similarity = horde_core::text::similarity(&a, &b);
    let threshold = horde_core::SpotChecks::default().min_similarity;
    let verdict = if similarity >= threshold {
        "agree"
    } else {
        "disagree"
    };
    println!("{similarity:.3} ({verdict} at the default threshold {threshold})");
    ExitCode::SUCCESS
}
