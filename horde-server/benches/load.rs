//! Load generator over loopback HTTP, against a server in this process on a real file
//! database (the two cores are shared, as on a small self-hosted machine), or against any
//! running server with `--url`.
//!
//! `cargo bench -p horde-server --bench load [-- OPTIONS]`, options:
//! * `--scenario cycles` (default): each task loops over full cycles (async → pop → submit →
//!   status). Phase 1 runs with an empty queue; phase 2 (in-process only) first fills the
//!   queue with 100,000 waiting requests from 1,000 users over 20 models, then runs the same
//!   cycles (each task's worker serves its owner's request first, so the queue stays).
//! * `--scenario polling`: clients as real ones behave — `--clients 256` clients over `--keys
//!   64` keys each queue a request and poll its status every `--poll-ms 50` until it is done,
//!   while `--workers 16` worker tasks pop and submit. A cycle is a request seen done. It speaks
//!   HTTP through `support/lean.rs`, which keeps the generator's own share of the cores small.
//! * `--url http://HOST:PORT/api/v2`: load a running server instead (start it with a high
//!   `--registrations-per-minute`, since the generator registers its users).
//! * `--secs 10`, `--tasks 16`, `--threads 2` (the generator's tokio worker threads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use horde_core::{RequestId, RequestSpec, UserPolicy};
use horde_server::error::ApiError;
use horde_server::ops;
use horde_server::{serve, Clock, Config, Driver};
use hyper::Method;
use parking_lot::Mutex;

use args::{arg, text_arg};
use serde_json::{json, Value};

#[path = "support/args.rs"]
mod args;
#[path = "support/lean.rs"]
mod lean;
#[path = "support/soak.rs"]
mod soak;

const MODELS: usize = 20;

fn model(i: usize) -> String {
    format!("koboldcpp/model{i}-13B")
}

#[derive(Default)]
struct Latencies {
    by_endpoint: [Vec<Duration>; 4],
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Latencies {
    /// Counts an error, keeping the first one's message for the report.
    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

const ENDPOINTS: [&str; 4] = ["async", "pop", "submit", "status"];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` asks harness-less benches to list; there is nothing to list.
        return;
    }
    let secs = arg("--secs", 10);
    let tasks = arg("--tasks", 16) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(arg("--threads", 2) as usize)
        .enable_all()
        .build()
        .expect("runtime");
    if text_arg("--scenario").as_deref() == Some("soak") {
        let Some(url) = text_arg("--url") else {
            eprintln!("the soak runs against a server: --url http://HOST:PORT/api/v2");
            return;
        };
        let pid = text_arg("--pid").and_then(|p| p.parse().ok());
        runtime.block_on(soak::soak(url, secs, pid));
        return;
    }
    let polling = text_arg("--scenario").as_deref() == Some("polling");
    match (text_arg("--url"), polling) {
        (Some(url), true) => runtime.block_on(polling_scenario(url, secs)),
        (Some(url), false) => runtime.block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(tasks * 2)
                .build()
                .expect("client");
            println!("load: {tasks} cycle tasks against {url}, {secs} s");
            let keys = register_all(&client, &url, tasks).await;
            phase("cycles", &client, &url, &keys, secs).await;
        }),
        (None, true) => runtime.block_on(async {
            let in_process = start_in_process().await;
            polling_scenario(in_process.base.clone(), secs).await;
            let _ = in_process.stop.send(());
            let _ = in_process.server.await;
        }),
        (None, false) => runtime.block_on(run(secs, tasks)),
    }
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// A server in this process on a fresh file database.
struct InProcess {
    base: String,
    driver: Driver,
    stop: tokio::sync::oneshot::Sender<()>,
    server: ServerTask,
    _dir: tempfile::TempDir,
}

async fn start_in_process() -> InProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        db: dir.path().join("load.sqlite"),
        registrations_per_minute: 100_000,
        ..Config::default()
    };
    // The generator's workers submit at once, faster than any model; all its connections
    // (one per client and worker task) come from one address.
    config.horde.integrity.speed_limits.clear();
    config.http.max_connections_per_address = config.http.max_connections;
    let driver = Driver::open(config, Clock::System).expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api/v2", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, driver.clone(), async {
        let _ = stopped.await;
    }));
    InProcess {
        base,
        driver,
        stop,
        server,
        _dir: dir,
    }
}

async fn run(secs: u64, tasks: usize) {
    let InProcess {
        base,
        driver: state,
        stop: stop_tx,
        server,
        _dir,
    } = start_in_process().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(tasks * 2)
        .build()
        .expect("client");

    println!("load: {tasks} concurrent cycle tasks, {secs} s per phase, 2 tokio worker threads");
    let keys = register_all(&client, &base, tasks).await;
    phase("empty queue", &client, &base, &keys, secs).await;

    let started = Instant::now();
    fill_queue(&state, 100_000).await;
    println!(
        "filled the queue with 100,000 requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    phase("100,000 waiting", &client, &base, &keys, secs).await;

    let _ = stop_tx.send(());
    let _ = server.await;
}

async fn register_all(client: &reqwest::Client, base: &str, tasks: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..tasks {
        let body: Value = client
            .post(format!("{base}/register"))
            .json(&json!({ "username": format!("load{i}") }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("register json");
        keys.push(body["api_key"].as_str().expect("key").to_owned());
    }
    keys
}

/// Enqueues `count` requests from 1,000 users over 20 models, directly through the core (and
/// committed to the database like any other change).
async fn fill_queue(state: &Driver, count: usize) {
    let users: Vec<horde_core::UserId> = state
        .change(|txn| {
            let mut ids = Vec::new();
            for i in 0..1000 {
                let (row, _) = ops::users::new_user(txn, &format!("filler{i}"), false)?;
                let policy = UserPolicy {
                    concurrency: 1000,
                    trusted: false,
                    public_workers: false,
                    flagged: false,
                    registered_at: horde_core::Timestamp(0),
                    roles: Default::default(),
                };
                txn.apply(|horde, _| Ok::<_, ApiError>(horde.set_user(row.id, policy)))?;
                ids.push(row.id);
            }
            Ok::<_, ApiError>(ids)
        })
        .await
        .expect("users");
    for chunk in 0..count / 1000 {
        let users = users.clone();
        state
            .change(move |txn| {
                for i in 0..1000 {
                    let now = txn.now();
                    let n = chunk * 1000 + i;
                    let mut spec = RequestSpec::new(
                        RequestId(uuid::Uuid::now_v7()),
                        users[n % users.len()],
                        "a prompt waiting in a long queue",
                        now,
                    );
                    spec.models = vec![model(n % MODELS).into()];
                    txn.apply(|horde, now| horde.enqueue(now, spec))?;
                }
                Ok::<_, ApiError>(())
            })
            .await
            .expect("fill");
    }
}

async fn phase(name: &str, client: &reqwest::Client, base: &str, keys: &[String], secs: u64) {
    let results = Arc::new(Mutex::new(Latencies::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (client, base, key, results) = (
            client.clone(),
            base.to_owned(),
            key.clone(),
            results.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut local = Latencies::default();
            while Instant::now() < deadline {
                match cycle(&client, &base, &key, i, &mut local).await {
                    Ok(()) => local.cycles += 1,
                    Err(_) => local.errors += 1,
                }
            }
            merge(&results, local);
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
    report(name, &results, started.elapsed().as_secs_f64());
}

/// Prints cycles per second and per-endpoint latency percentiles.
fn report(name: &str, results: &Mutex<Latencies>, elapsed: f64) {
    let mut results = std::mem::take(&mut *results.lock());
    println!(
        "[{name}] {} cycles in {elapsed:.1} s = {:.0} cycles/s ({} errors)",
        results.cycles,
        results.cycles as f64 / elapsed,
        results.errors
    );
    if let Some(error) = &results.first_error {
        println!("[{name}]   first error: {error}");
    }
    for (endpoint, latencies) in ENDPOINTS.iter().zip(results.by_endpoint.iter_mut()) {
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "[{name}]   {endpoint:<7} p50 {:.2} ms   p99 {:.2} ms   ({} calls)",
            pct(0.50),
            pct(0.99),
            latencies.len()
        );
    }
}

async fn timed(
    latencies: &mut Latencies,
    endpoint: usize,
    request: reqwest::RequestBuilder,
) -> Result<Value, String> {
    let started = Instant::now();
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    latencies.by_endpoint[endpoint].push(started.elapsed());
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

async fn cycle(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    task: usize,
    latencies: &mut Latencies,
) -> Result<(), String> {
    let model = model(task % MODELS);
    let request = client
        .post(format!("{base}/generate/text/async"))
        .header("apikey", key)
        .json(&json!({ "prompt": "Tell me a story about a horde.", "params": { "max_length": 80 }, "models": [model] }));
    let queued = timed(latencies, 0, request).await?;
    let id = queued["id"].as_str().ok_or("no id")?.to_owned();
    let pop = client
        .post(format!("{base}/generate/text/pop"))
        .header("apikey", key)
        .json(&json!({ "name": format!("load-worker-{task}"), "models": [model], "max_length": 512, "max_context_length": 4096 }));
    let job = timed(latencies, 1, pop).await?;
    if let Some(job_id) = job["id"].as_str() {
        let submit = client
            .post(format!("{base}/generate/text/submit"))
            .header("apikey", key)
            .json(&json!({ "id": job_id, "generation": "Once there was a horde of machines.", "state": "ok" }));
        timed(latencies, 2, submit).await?;
    }
    let status = client.get(format!("{base}/generate/text/status/{id}"));
    timed(latencies, 3, status).await?;
    // The worker's owner is the requester, so its own request is served first (owner
    // priority): the queue of other requests is left as it was.
    Ok(())
}

/// Clients that poll, and workers that pop: see the module docs.
async fn polling_scenario(base: String, secs: u64) {
    let clients = arg("--clients", 256) as usize;
    let key_count = arg("--keys", 64) as usize;
    let workers = arg("--workers", 16) as usize;
    let poll = Duration::from_millis(arg("--poll-ms", 50));
    let target = match lean::Target::of(&base).await {
        Ok(target) => target,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    println!(
        "load: {clients} polling clients over {key_count} keys (poll every {} ms), {workers} \
         workers, {secs} s, against {base}",
        poll.as_millis()
    );
    // Names of this run's workers: a second run against the same server must not find them
    // taken by the first run's users.
    let run = std::process::id();
    let mut conn = lean::Conn::new(target.clone());
    let mut keys = Vec::new();
    for i in 0..key_count + workers {
        keys.push(lean_register(&mut conn, &format!("poll{run}-{i}")).await);
    }
    let worker_keys = keys.split_off(key_count);
    let results = Arc::new(Mutex::new(Latencies::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut handles = Vec::new();
    let models: Vec<String> = (0..MODELS).map(model).collect();
    for (i, key) in worker_keys.into_iter().enumerate() {
        let (mut conn, results) = (lean::Conn::new(target.clone()), results.clone());
        let pop = Bytes::from(
            json!({ "name": format!("polling-worker-{run}-{i}"), "models": models,
                    "max_length": 512, "max_context_length": 4096 })
            .to_string(),
        );
        handles.push(tokio::spawn(async move {
            let mut local = Latencies::default();
            while Instant::now() < deadline {
                let popped = lean_timed(&mut local, 1, &mut conn, Method::POST,
                    "/generate/text/pop", Some(&key), Some(pop.clone())).await;
                let Ok(popped) = popped else { continue };
                match serde_json::from_slice::<Id>(&popped).ok().and_then(|job| job.id) {
                    Some(job_id) => {
                        let submit = Bytes::from(format!(
                            r#"{{"id":"{job_id}","generation":"Once there was a horde.","state":"ok"}}"#
                        ));
                        let _ = lean_timed(&mut local, 2, &mut conn, Method::POST,
                            "/generate/text/submit", Some(&key), Some(submit)).await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            merge(&results, local);
        }));
    }
    for i in 0..clients {
        let (mut conn, results) = (lean::Conn::new(target.clone()), results.clone());
        let key = keys[i % keys.len()].clone();
        let ask = Bytes::from(
            json!({ "prompt": "Tell me a story about a horde.", "params": { "max_length": 80 },
                    "models": [model(i % MODELS)] })
            .to_string(),
        );
        // Independent clients do not start in step: spread their starts over one poll period.
        let offset = poll * u32::try_from(i).unwrap_or(0) / u32::try_from(clients).unwrap_or(1);
        handles.push(tokio::spawn(async move {
            let mut local = Latencies::default();
            tokio::time::sleep(offset).await;
            while Instant::now() < deadline {
                let queued = lean_timed(
                    &mut local,
                    0,
                    &mut conn,
                    Method::POST,
                    "/generate/text/async",
                    Some(&key),
                    Some(ask.clone()),
                )
                .await;
                let Some(id) = queued
                    .ok()
                    .and_then(|body| serde_json::from_slice::<Id>(&body).ok()?.id)
                else {
                    tokio::time::sleep(poll).await;
                    continue;
                };
                let path = format!("/generate/text/status/{id}");
                loop {
                    tokio::time::sleep(poll).await;
                    let Ok(body) =
                        lean_timed(&mut local, 3, &mut conn, Method::GET, &path, None, None).await
                    else {
                        break;
                    };
                    match serde_json::from_slice::<Done>(&body) {
                        Ok(Done { done: true }) => {
                            local.cycles += 1;
                            break;
                        }
                        Ok(_) if Instant::now() < deadline => {}
                        Ok(_) => break,
                        Err(e) => {
                            local.error(format!("status: {e}"));
                            break;
                        }
                    }
                }
            }
            merge(&results, local);
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
    report("polling", &results, started.elapsed().as_secs_f64());
}

/// The `id` of a queued request or a popped job (none when the pop found nothing).
#[derive(serde::Deserialize)]
struct Id {
    id: Option<String>,
}

/// Whether a polled request is done.
#[derive(serde::Deserialize)]
struct Done {
    done: bool,
}

async fn lean_register(conn: &mut lean::Conn, name: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Registered {
        api_key: String,
    }
    let body = Bytes::from(json!({ "username": name }).to_string());
    let (status, answer) = conn
        .call(Method::POST, "/register", None, Some(body))
        .await
        .expect("register");
    assert!(status.is_success(), "register: {status} {answer:?}");
    serde_json::from_slice::<Registered>(&answer)
        .expect("register json")
        .api_key
}

/// One timed call over a lean connection; the body of a success, else the error counted.
#[allow(clippy::too_many_arguments)]
async fn lean_timed(
    latencies: &mut Latencies,
    endpoint: usize,
    conn: &mut lean::Conn,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Bytes>,
) -> Result<Bytes, ()> {
    let started = Instant::now();
    match conn.call(method, path, key, body).await {
        Ok((status, answer)) if status.is_success() => {
            latencies.by_endpoint[endpoint].push(started.elapsed());
            Ok(answer)
        }
        Ok((status, answer)) => {
            latencies.by_endpoint[endpoint].push(started.elapsed());
            latencies.error(format!(
                "{}: {status} {}",
                ENDPOINTS[endpoint],
                String::from_utf8_lossy(&answer)
            ));
            Err(())
        }
        Err(e) => {
            latencies.error(format!("{}: {e}", ENDPOINTS[endpoint]));
            Err(())
        }
    }
}

fn merge(results: &Mutex<Latencies>, local: Latencies) {
    let mut all = results.lock();
    for (into, from) in all.by_endpoint.iter_mut().zip(local.by_endpoint) {
        into.extend(from);
    }
    all.cycles += local.cycles;
    all.errors += local.errors;
    if all.first_error.is_none() {
        all.first_error = local.first_error;
    }
}
