//! A real OpenAI-compatible server: llama-cpp-python's, serving a tiny random-weight LLaMA
//! written by `tiny_llama.py`. Runs when `HORDE_LLAMA_PYTHON` names a Python that has
//! `llama-cpp-python[server]` and `gguf` (`.ci/run` installs them into its venv).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::backends;
use crate::support::{
    assert_paid_exactly, eventually, worker_args, Backend, Behavior, Horde, Worker, MODEL,
};

/// The llama-cpp-python server, killed on drop.
struct LlamaServer(Child);

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Python with llama-cpp-python, or `None` (the test is skipped) outside CI.
fn llama_python() -> Option<String> {
    let Ok(python) = std::env::var("HORDE_LLAMA_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_LLAMA_PYTHON after installing llama-cpp-python"
        );
        eprintln!("skipped: set HORDE_LLAMA_PYTHON to a Python with llama-cpp-python[server]");
        return None;
    };
    Some(python)
}

/// Writes the tiny model into `dir`, named as a real GGUF file would be (the worker
/// advertises it as KoboldCpp would).
fn tiny_model(python: &str, dir: &Path) -> PathBuf {
    let model = dir.join("Llama-3-8B-Instruct.Q4_K_M.gguf");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bridge/tiny_llama.py");
    let written = Command::new(python)
        .arg(script)
        .arg(&model)
        .status()
        .unwrap();
    assert!(written.success(), "tiny_llama.py failed");
    model
}

/// Starts llama-cpp-python's server on `model` (logging to `log` in `dir`); waits until it
/// answers, and returns it with its URL.
async fn start_llama(python: &str, dir: &Path, model: &Path, log: &str) -> (LlamaServer, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let server = LlamaServer(
        Command::new(python)
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
            .arg(model)
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
    (server, backend_url)
}

#[tokio::test]
async fn a_real_llama_cpp_python_server_serves_jobs() {
    let Some(python) = llama_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&python, dir.path());
    let (_server, backend_url) = start_llama(&python, dir.path(), &model, "server.log").await;

    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let params = json!({
        "max_length": 24, "max_context_length": 1024, "temperature": 0.8, "top_k": 40,
        "rep_pen": 1.1, "stop_sequence": ["\n###"]
    });
    // The last prompt is longer than the server's context (3,060 tokens of this model's byte
    // tokenizer, n_ctx 2,048): the worker cuts its start to the job's context, counting with
    // llama-cpp-python's tokenizer, where the server would refuse it.
    let long = "Once upon a time, ".repeat(170);
    let mut ids = Vec::new();
    for prompt in ["Once upon a time", "The horde", "Kudos are", &long] {
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
        .wait_logged("job done", 4, Duration::from_secs(30))
        .await;
    assert_paid_exactly(&horde, &owner, &client, &done).await;
    for line in &done {
        assert!(line["tokens"].as_u64().unwrap() <= 24, "{line}");
    }
    assert!(worker.logged("job failed").is_empty());
}

#[tokio::test]
async fn spot_checks_catch_a_liar_and_never_an_honest_worker() {
    let Some(python) = llama_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&python, dir.path());
    // Two llama-cpp-python servers on the same GGUF: a trusted volunteer's and a newcomer's.
    let (_first, first_url) = start_llama(&python, dir.path(), &model, "first.log").await;
    let (_second, second_url) = start_llama(&python, dir.path(), &model, "second.log").await;
    // A liar: an OpenAI-compatible backend answering fluent text unrelated to the prompt.
    let liar_backend = Backend::start(backends::openai).await;
    liar_backend.behave(Behavior {
        model: "/models/Llama-3-8B-Instruct.Q4_K_M.gguf".into(),
        text: "Stock markets rallied on Tuesday as investors welcomed new figures on \
               trade, and analysts expect the central bank to hold rates steady."
            .into(),
        ..Behavior::default()
    });
    // Every pop of an untrusted worker is a check while a check is possible.
    let horde = Horde::start_with(|config| {
        config.horde.spot_checks.rate_untrusted = 1.0;
    })
    .await;
    let (_, admin) = horde.admin("admin").await;
    let (username, volunteer) = horde.register("volunteer").await;
    let (_, newcomer) = horde.register("newcomer").await;
    let (_, liar) = horde.register("liar").await;
    let volunteer_id = username.rsplit('#').next().unwrap();
    let trusted = horde
        .put(
            &format!("/users/{volunteer_id}"),
            &admin,
            json!({ "trusted": true }),
        )
        .await;
    assert_eq!(trusted["trusted"], true, "{trusted}");
    let start = |key: &str, name: &str, url: &str| {
        let mut args = worker_args(&horde, key, name, url);
        args.extend(["--backend", "openai"]);
        Worker::start(&args)
    };
    let _trusted = start(&volunteer, "trusted", &first_url);
    eventually(
        "the trusted worker to be online",
        Duration::from_secs(30),
        || async { (horde.worker("trusted").await["online"] == true).then_some(()) },
    )
    .await;
    let honest = start(&newcomer, "honest", &second_url);
    let liar_worker = start(&liar, "liar", &liar_backend.url);
    // The liar is paused after three disagreeing checks (the suspicion threshold).
    let paused = eventually(
        "the liar to be paused",
        Duration::from_secs(120),
        || async {
            let shown = horde.get("/workers/name/liar", Some(&liar)).await;
            (shown["maintenance_mode"] == true).then_some(shown)
        },
    )
    .await;
    assert_eq!(paused["suspicious"], 3, "{paused}");
    assert!(
        paused["maintenance_msg"]
            .as_str()
            .unwrap()
            .contains("check prompt"),
        "{paused}"
    );
    let liar_jobs = liar_worker.logged("job done").len();
    eprintln!("the liar was paused after {liar_jobs} jobs, all of them checks");
    assert!(liar_jobs <= 4, "{liar_jobs}");
    // Meanwhile the honest newcomer answered checks the same way as the trusted worker.
    let honest_jobs = honest
        .wait_logged("job done", 10, Duration::from_secs(120))
        .await;
    let shown = horde.get("/workers/name/honest", Some(&newcomer)).await;
    assert_eq!(shown["suspicious"], 0, "{shown}");
    assert_eq!(shown["maintenance_mode"], false, "{shown}");
    eprintln!("the honest worker agreed on {} checks", honest_jobs.len());
}

/// The official `openai` package (`HORDE_OPENAI_PYTHON`, or the llama Python: `.ci/run`
/// installs both into one venv) against horde-server, the real worker and llama-cpp-python.
#[tokio::test]
async fn the_openai_sdk_completes_and_streams_through_the_horde() {
    let Some(python) = llama_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&python, dir.path());
    let (_server, backend_url) = start_llama(&python, dir.path(), &model, "server.log").await;
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let mut args = worker_args(&horde, &owner, "llama", &backend_url);
    args.extend(["--backend", "openai"]);
    let worker = Worker::start(&args);
    let http = reqwest::Client::new();
    let models_url = format!("{}/v1/models", horde.url);
    eventually(
        "the worker to be online",
        Duration::from_secs(30),
        || async {
            let models: serde_json::Value =
                http.get(&models_url).send().await.ok()?.json().await.ok()?;
            (models["data"][0]["id"] == MODEL).then_some(())
        },
    )
    .await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bridge/openai_sdk.py");
    let base = format!("{}/v1", horde.url);
    let output = tokio::task::spawn_blocking({
        let python = python.clone();
        let client = client.clone();
        move || {
            Command::new(python)
                .args([script, &base, &client, MODEL])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    // Every call was a horde request: its text is the generation the worker submitted (for
    // the streams: the deltas, joined).
    for call in ["completion", "completion_stream", "chat", "chat_stream"] {
        let got = &out[call];
        let id = got["id"].as_str().unwrap();
        let request = id.split_once('-').map_or(id, |(_, rest)| rest);
        let status = horde.status(request).await;
        assert_eq!(status["done"], true, "{call}: {status}");
        let submitted = status["generations"][0]["text"].as_str().unwrap();
        assert_eq!(got["text"].as_str(), Some(submitted), "{call}: {got}");
        assert!(
            matches!(got["finish"].as_str(), Some("stop" | "length")),
            "{got}"
        );
    }
    assert_eq!(out["chat"]["role"], "assistant");
    assert_eq!(out["chat_stream"]["role"], "assistant");
    assert!(out["chat_stream"]["usage"].as_u64().unwrap() > 0, "{out}");
    assert!(out["completion"]["usage"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["bad_key"]["status"], 401, "{out}");
    assert_eq!(out["bad_key"]["code"], "InvalidAPIKey");
    assert_eq!(out["bad_value"]["status"], 400, "{out}");
    assert_eq!(out["bad_value"]["param"], "temperature");

    // Paid exactly: what the worker's owner earned, the client paid.
    let done = worker
        .wait_logged("job done", 4, Duration::from_secs(30))
        .await;
    assert_paid_exactly(&horde, &owner, &client, &done).await;
}
