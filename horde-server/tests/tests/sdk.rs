//! The Python `horde-sdk` (installed by `.ci/run` into a virtualenv, whose interpreter it names
//! in `HORDE_SDK_PYTHON`) runs a whole cycle against the real binary: request, pop, submit,
//! status — parsing every answer with the SDK's own models.

use std::process::Command;

use crate::crash::{register, start_binary_configured};

#[tokio::test]
async fn horde_sdk_runs_a_full_cycle() {
    let Ok(python) = std::env::var("HORDE_SDK_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_SDK_PYTHON after installing horde-sdk"
        );
        eprintln!("HORDE_SDK_PYTHON is not set; skipping (see .ci/run to run it locally)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // News for the SDK's news model to read.
    let news = "[[news]]\ndate_published = \"2026-12-06\"\nimportance = \"Information\"\n\
                newspiece = \"The sdk test's horde is open.\"\ntags = [\"test\"]\n";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server =
        start_binary_configured(&dir.path().join("horde.sqlite"), port, &[], news).await;
    let client = reqwest::Client::new();
    let keys = [
        register(&client, &server.base, "sdk-requester").await,
        register(&client, &server.base, "sdk-volunteer").await,
    ];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/sdk_cycle.py");
    let url = server.base.trim_end_matches("v2").to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(&keys)
            .env("AI_HORDE_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("sdk cycle: ok"),
        "horde-sdk cycle failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
