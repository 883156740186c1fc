//! A real OpenAI-compatible server: llama-cpp-python's, serving a tiny random-weight LLaMA
//! written by `tiny_llama.py`. Runs when `HORDE_LLAMA_PYTHON` names a Python that has
//! `llama-cpp-python[server]` and `gguf` (`.ci/run` installs them into its venv).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{assert_paid_exactly, eventually, worker_args, Horde, Worker, MODEL};

/// The llama-cpp-python server, killed on drop.
struct LlamaServer(Child);

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_real_llama_cpp_python_server_serves_jobs() {
    let Ok(python) = std::env::var("HORDE_LLAMA_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_LLAMA_PYTHON after installing llama-cpp-python"
        );
        eprintln!("skipped: set HORDE_LLAMA_PYTHON to a Python with llama-cpp-python[server]");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Named as a real GGUF file would be; the worker advertises it as KoboldCpp would.
    let model = dir.path().join("Llama-3-8B-Instruct.Q4_K_M.gguf");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bridge/tiny_llama.py");
    let written = Command::new(&python)
        .arg(script)
        .arg(&model)
        .status()
        .unwrap();
    assert!(written.success(), "tiny_llama.py failed");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let _server = LlamaServer(
        Command::new(&python)
            .args([
                "-m",
                "llama_cpp.server",
                "--host",
                "127.0.0.1",
                "--n_ctx",
                "2048",
            ])
            .arg("--port")
            .arg(port.to_string())
            .arg("--model")
            .arg(&model)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let backend_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(
        "llama-cpp-python to listen",
        Duration::from_secs(120),
        || async {
            let answer = http.get(format!("{backend_url}/v1/models")).send().await;
            answer.ok().filter(|a| a.status().is_success()).map(drop)
        },
    )
    .await;

    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let params = json!({
        "max_length": 24, "max_context_length": 1024, "temperature": 0.8, "top_k": 40,
        "rep_pen": 1.1, "stop_sequence": ["\n###"]
    });
    let mut ids = Vec::new();
    for prompt in ["Once upon a time", "The horde", "Kudos are"] {
        ids.push(horde.request(&client, prompt, params.clone()).await);
    }
    let mut args = worker_args(&horde, &owner, "llama", &backend_url);
    args.extend(["--backend", "openai"]);
    let worker = Worker::start(&args);
    for id in &ids {
        let status = horde.wait_done(id, Duration::from_secs(60)).await;
        assert_eq!(status["generations"][0]["model"], MODEL, "{status}");
        assert_eq!(status["generations"][0]["state"], "ok", "{status}");
    }
    let done = worker
        .wait_logged("job done", 3, Duration::from_secs(30))
        .await;
    assert_paid_exactly(&horde, &owner, &client, &done).await;
    for line in &done {
        assert!(line["tokens"].as_u64().unwrap() <= 24, "{line}");
    }
    assert!(worker.logged("job failed").is_empty());
}
