//! Time to first token through the horde, against straight to the same backend.
//!
//! `cargo bench -p horde-worker --bench stream [-- --requests 200 --gap-ms 5]`
//!
//! An OpenAI-compatible stand-in backend on loopback streams a completion: its first token at
//! once, then `--tokens 20` more `--gap-ms` apart. First `--requests` completions are asked of
//! it directly; then a horde-server (in this process, on SQLite) and the real `horde-worker`
//! binary (one thread, idle in its long poll) serve the same number through the horde's
//! OpenAI-compatible front with `stream: true`. For each, the time from sending the request
//! to the first byte of generated text; the report gives p50, p90 and p99 of both and what the
//! horde adds. Nothing here asserts a time: the figures go to docs/performance.md.

use std::convert::Infallible;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The worker process, killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stand-in backend: `/v1/models`, and `/v1/completions` streaming `tokens` pieces.
fn backend(tokens: u64, gap: Duration) -> Router {
    Router::new()
        .route(
            "/v1/models",
            get(|| async { Json(json!({ "object": "list", "data": [{ "id": MODEL }] })) }),
        )
        .route(
            "/v1/completions",
            post(move |Json(_body): Json<Value>| async move { stream(tokens, gap) }),
        )
}

fn stream(tokens: u64, gap: Duration) -> Response {
    let events = futures_util::stream::unfold(0u64, move |i| async move {
        if i > tokens + 1 {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let event = if i <= tokens {
            let chunk =
                json!({ "choices": [{ "index": 0, "text": " word", "finish_reason": null }] });
            format!("data: {chunk}\n\n")
        } else {
            "data: [DONE]\n\n".to_owned()
        };
        Some((Ok::<_, Infallible>(event), i + 1))
    });
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}

/// Sends `request` and waits for the first chunk holding `needle`; the time it took.
async fn first_text(request: reqwest::RequestBuilder, needle: &str) -> Duration {
    let started = Instant::now();
    let mut response = request.send().await.expect("the call is answered");
    assert!(response.status().is_success(), "{}", response.status());
    let mut seen = String::new();
    while let Some(chunk) = response.chunk().await.expect("the stream reads") {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains(needle) {
            let elapsed = started.elapsed();
            // Read the rest, so that the next request finds the worker idle again.
            while response.chunk().await.ok().flatten().is_some() {}
            return elapsed;
        }
    }
    panic!("the stream ended without text: {seen}");
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let (p50, p90, p99) = (
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
    );
    println!(
        "{name:>14}: p50 {p50:6.2} ms   p90 {p90:6.2} ms   p99 {p99:6.2} ms   ({} requests)",
        times.len()
    );
    (p50, p99)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let requests = arg("--requests", 200);
    let tokens = arg("--tokens", 20);
    let gap = Duration::from_millis(arg("--gap-ms", 5));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let backend_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, backend(tokens, gap)).await });
        let http = reqwest::Client::new();

        let body = json!({ "model": MODEL, "prompt": "Once", "max_tokens": 32, "stream": true });
        let mut direct = Vec::new();
        for _ in 0..requests {
            let request = http.post(format!("{backend_url}/v1/completions")).json(&body);
            direct.push(first_text(request, "word").await);
        }

        let horde = horde_testkit::TestHorde::start().await;
        let owner = horde.register("owner").await.api_key;
        let client = horde.register("client").await.api_key;
        let _worker = Worker(
            Command::new(env!("CARGO_BIN_EXE_horde-worker"))
                .args(["--horde-url", &horde.url, "--api-key", &owner, "--name", "bench"])
                .args(["--backend-url", &backend_url, "--backend", "openai"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("horde-worker starts (cargo bench builds it)"),
        );
        let models = format!("{}/v1/models", horde.url);
        let online = Instant::now();
        loop {
            let listed: Value = http.get(&models).send().await.expect("models").json().await.expect("JSON");
            if listed["data"][0]["id"] == MODEL {
                break;
            }
            assert!(online.elapsed() < Duration::from_secs(30), "the worker came online");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut through = Vec::new();
        for _ in 0..requests {
            // The worker is back in its long poll before the next request.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let request = http
                .post(format!("{}/v1/completions", horde.url))
                .bearer_auth(&client)
                .json(&body);
            through.push(first_text(request, "word").await);
        }
        println!(
            "time to first token, {requests} streamed completions each, backend's first token at once:"
        );
        let (direct_p50, direct_p99) = report("direct", direct);
        let (horde_p50, horde_p99) = report("through horde", through);
        println!(
            "{:>14}: p50 {:6.2} ms   p99 {:6.2} ms",
            "added",
            horde_p50 - direct_p50,
            horde_p99 - direct_p99
        );
    });
}
