//! Many open streams: what 1,000 clients waiting on `stream: true` completions cost the server.
//!
//! `cargo bench -p horde-server --bench streams [-- --streams 1000 --probes 500]`
//!
//! Starts the real `horde-server` binary (SQLite in a temporary directory), measures its
//! resident memory and the latency of `GET /api/v2/status/heartbeat` (`--probes` calls, one
//! at a time), then opens `--streams` OpenAI-compatible streaming completions for any model
//! (each one a queued horde request with a waiting client on its own connection; no worker
//! serves them, so they stay open with keep-alive comments) and measures both again. Nothing
//! here asserts a figure: they go to docs/performance.md.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/args.rs"]
mod args;

use args::arg;

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident memory of process `pid`, in MiB (Linux).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `probes` heartbeats one after another: (p50, p99) in ms.
async fn heartbeats(http: &reqwest::Client, url: &str, probes: u64) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..probes {
        let started = Instant::now();
        let response = http.get(url).send().await.expect("heartbeat");
        assert!(response.status().is_success());
        let _ = response.bytes().await;
        times.push(started.elapsed());
    }
    times.sort();
    let at =
        |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let streams = arg("--streams", 1000) as usize;
    let probes = arg("--probes", 500);
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("horde.toml");
    std::fs::write(
        &config,
        format!(
            "registrations_per_minute = 100000\n[http]\nmax_connections_per_address = {}\n\
             [horde]\ndefault_concurrency = {}\n",
            streams + 64,
            streams + 10
        ),
    )
    .expect("config written");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_horde-server"))
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(dir.path().join("horde.sqlite"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("horde-server starts"),
    );
    let pid = server.0.id();
    let root = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let heartbeat = format!("{root}/api/v2/status/heartbeat");
        let started = Instant::now();
        while http.get(&heartbeat).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the server started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let registered: Value = http
            .post(format!("{root}/api/v2/register"))
            .json(&json!({ "username": "streamer" }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("JSON");
        let key = registered["api_key"].as_str().expect("a key").to_owned();
        let (idle_p50, idle_p99) = heartbeats(&http, &heartbeat, probes).await;
        let idle_rss = rss_mib(pid);

        let opening = Instant::now();
        let body = json!({ "model": "*", "prompt": "Once", "max_tokens": 32, "stream": true });
        let mut open = Vec::with_capacity(streams);
        for _ in 0..streams {
            let response = http
                .post(format!("{root}/v1/completions"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .expect("a stream opens");
            assert!(response.status().is_success(), "{}", response.status());
            open.push(response);
        }
        let opened = opening.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let busy_rss = rss_mib(pid);
        let (busy_p50, busy_p99) = heartbeats(&http, &heartbeat, probes).await;
        println!("{streams} open streaming completions (opened one after another in {:.2} s):", opened.as_secs_f64());
        println!("  server RSS: {idle_rss:.1} MiB before, {busy_rss:.1} MiB with them open: +{:.1} MiB", busy_rss - idle_rss);
        println!("  heartbeat: p50 {idle_p50:.2} ms, p99 {idle_p99:.2} ms before; p50 {busy_p50:.2} ms, p99 {busy_p99:.2} ms with them open ({probes} calls each)");
        drop(open);
    });
    drop(server);
}
