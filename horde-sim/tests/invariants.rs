//! The simulation through its real interface: the binary, a configuration file, the report.

use std::process::Command;

#[test]
fn a_short_simulation_keeps_every_invariant_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("horde.toml");
    // A server configuration file: its [horde] table is what the simulation runs.
    std::fs::write(
        &config,
        "db = \"ignored.sqlite\"\n[horde.integrity]\nsuspicion_threshold = 3\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    let run = Command::new(env!("CARGO_BIN_EXE_horde-sim"))
        .arg("--config")
        .arg(&config)
        .args(["--days", "0.25", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        report.contains("| yes | no honest worker is ever suspected"),
        "{report}"
    );
    assert!(!report.contains("**NO**"), "{report}");
    for file in ["report.md", "supply.svg", "earnings.svg", "waits.svg"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!text.is_empty(), "{file}");
    }
    assert!(std::fs::read_to_string(out.join("waits.svg"))
        .unwrap()
        .starts_with("<svg"));
}

#[test]
fn a_bad_configuration_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("horde.toml");
    std::fs::write(&config, "[horde.integrity]\nno_such_rule = 1\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_horde-sim"))
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("report"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("no_such_rule"), "{stderr}");
}

#[test]
fn a_run_is_deterministic_for_its_seed() {
    let run = |seed| {
        horde_sim::simulate(horde_core::HordeConfig::default(), 2 * 3600, seed, 0.8, 600).markdown()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn without_spot_checks_a_liar_out_earns_its_real_capacity() {
    // The invariants can fail: with spot checks off, the fluent liar claiming 405B is paid as
    // one, and the simulation says so.
    let mut config = horde_core::HordeConfig::default();
    config.spot_checks.rate_untrusted = 0.0;
    let report = horde_sim::simulate(config, 6 * 3600, 1, 0.8, 600);
    let liar = report
        .invariants
        .iter()
        .find(|i| i.rule.starts_with("liar "))
        .unwrap();
    assert!(!liar.held, "{liar:?}");
    assert!(!report.passed());
}
