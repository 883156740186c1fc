//! What the bridge tests run against: a real horde-server in this process, test backends on
//! loopback (each on its own runtime, so that stopping one closes every connection as a dead
//! server would), and the real `horde-worker` binary with its JSON log read line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use horde_testkit::TestHorde;
use parking_lot::Mutex;
use serde_json::{json, Value};

/// The model every test serves (in the horde's model reference: 8B).
pub const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";

pub use horde_testkit::eventually;

/// A horde-server in this process (`horde_testkit::TestHorde`) that can be stopped and started
/// again on the same port and database, with JSON helpers for what the tests read.
pub struct Horde {
    horde: TestHorde,
    http: reqwest::Client,
}

impl std::ops::Deref for Horde {
    type Target = TestHorde;

    fn deref(&self) -> &TestHorde {
        &self.horde
    }
}

impl Horde {
    /// A horde whose jobs time out after the default 90 s plus 0.5 s per token.
    pub async fn start() -> Horde {
        Horde::with_job_timeout(0).await
    }

    /// A horde whose jobs time out after `secs` (0: the default rule).
    pub async fn with_job_timeout(secs: u64) -> Horde {
        Horde::start_with(|config| {
            if secs > 0 {
                config.horde.job_timeout_base_secs = secs;
                config.horde.job_timeout_per_token_ms = 0;
            }
        })
        .await
    }

    /// A horde of the tests' configuration as `tweak` changes it.
    pub async fn start_with(tweak: impl FnOnce(&mut horde_server::Config)) -> Horde {
        Horde {
            horde: TestHorde::start_with(tweak).await,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server (in-flight requests finish; the database is flushed and closed).
    pub async fn stop(&mut self) {
        self.horde.stop_for_now().await;
    }

    /// Starts the stopped server again on the same port, from its database.
    pub async fn start_again(&mut self) {
        self.horde.start_again().await;
    }

    /// Registers `name`; returns (`alias#id`, key).
    pub async fn register(&self, name: &str) -> (String, String) {
        let registered = self.horde.register(name).await;
        (registered.username, registered.api_key)
    }

    /// `POST /api/v2{path}` with `key`; the JSON answer (any status).
    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/api/v2{path}", self.url))
            .json(&body);
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// `PUT /api/v2{path}` with `key`; the JSON answer (any status).
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Value {
        let request = self
            .http
            .put(format!("{}/api/v2{path}", self.url))
            .header("apikey", key)
            .json(&body);
        request.send().await.unwrap().json().await.unwrap()
    }

    /// `GET /api/v2{path}` with `key`; the JSON answer (any status).
    pub async fn get(&self, path: &str, key: Option<&str>) -> Value {
        let mut request = self.http.get(format!("{}/api/v2{path}", self.url));
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Queues a request for `prompt` with `params`; returns its id.
    pub async fn request(&self, key: &str, prompt: &str, params: Value) -> String {
        let answer = self
            .post(
                "/generate/text/async",
                Some(key),
                json!({ "prompt": prompt, "params": params, "models": [MODEL] }),
            )
            .await;
        answer["id"]
            .as_str()
            .unwrap_or_else(|| panic!("not queued: {answer}"))
            .to_owned()
    }

    /// The request's status.
    pub async fn status(&self, id: &str) -> Value {
        self.get(&format!("/generate/text/status/{id}"), None).await
    }

    /// Waits until the request is done; returns its status.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> Value {
        eventually(&format!("request {id} to be done"), timeout, || async {
            let status = self.status(id).await;
            (status["done"] == true).then_some(status)
        })
        .await
    }

    /// The key's user's balance.
    pub async fn kudos(&self, key: &str) -> f64 {
        self.get("/find_user", Some(key)).await["kudos"]
            .as_f64()
            .unwrap()
    }

    /// The worker named `name`, as the horde shows it.
    pub async fn worker(&self, name: &str) -> Value {
        self.get(&format!("/workers/name/{name}"), None).await
    }
}

/// Checks that the worker's `done` job lines earned something, that its owner gained exactly
/// their kudos, and that the requester paid exactly as much.
pub async fn assert_paid_exactly(horde: &Horde, owner: &str, client: &str, done: &[Value]) {
    let earned: f64 = done
        .iter()
        .map(|line| line["kudos"].as_f64().unwrap())
        .sum();
    assert!(earned > 0.0);
    assert!(
        (horde.kudos(owner).await - earned).abs() < 0.005,
        "{done:?}"
    );
    assert!((horde.kudos(client).await + earned).abs() < 0.005);
}

/// How a test backend behaves; changeable while it runs.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Time each generation takes (an abort ends it early).
    pub delay: Duration,
    /// Generations still to answer with 503 (busy).
    pub busy: u32,
    /// Every generation answers 500.
    pub fail: bool,
    /// Every generation answers 400 (as a backend refuses a prompt over its context).
    pub refuse: bool,
    /// The generated text.
    pub text: String,
    /// The model it reports.
    pub model: String,
    /// The generation limit it reports, if any.
    pub max_length: Option<u32>,
    /// The context limit it reports, if any.
    pub max_context_length: Option<u32>,
    /// Time between the events of a stream (after the generation's `delay`).
    pub stream_gap: Duration,
    /// Every generation answers with a body that never ends.
    pub endless: bool,
    /// KoboldCpp's `/api/extra/perf` answers (else 404).
    pub perf: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            delay: Duration::ZERO,
            busy: 0,
            fail: false,
            refuse: false,
            text: "and so the story went on, as stories do.".into(),
            model: MODEL.into(),
            max_length: None,
            max_context_length: None,
            stream_gap: Duration::ZERO,
            endless: false,
            perf: false,
        }
    }
}

/// What a test backend saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Bodies of generate calls that were accepted.
    pub generates: Vec<Value>,
    /// Bodies refused for holding a key the API does not define.
    pub refused: Vec<Value>,
    /// `genkey`s of abort calls.
    pub aborts: Vec<String>,
    /// Calls of the tokenizer.
    pub tokenized: usize,
}

/// State shared by a test backend's handlers.
#[derive(Debug, Default)]
pub struct BackendState {
    pub behavior: Mutex<Behavior>,
    pub seen: Mutex<Seen>,
    aborted: tokio::sync::Notify,
    /// Generations running now, and finished since the start (KoboldCpp's perf).
    pub running: std::sync::atomic::AtomicU64,
    pub finished: std::sync::atomic::AtomicU64,
}

impl BackendState {
    /// Runs one generation as `behavior` says: `Err(status)` or the text.
    pub async fn generate(&self) -> Result<String, u16> {
        let behavior = {
            let mut behavior = self.behavior.lock();
            if behavior.busy > 0 {
                behavior.busy -= 1;
                return Err(503);
            }
            behavior.clone()
        };
        if behavior.fail {
            return Err(500);
        }
        if behavior.refuse {
            return Err(400);
        }
        use std::sync::atomic::Ordering::SeqCst;
        self.running.fetch_add(1, SeqCst);
        let text = tokio::select! {
            () = tokio::time::sleep(behavior.delay) => behavior.text,
            () = self.aborted.notified() => String::new(),
        };
        self.finished.fetch_add(1, SeqCst);
        self.running.fetch_sub(1, SeqCst);
        Ok(text)
    }

    /// Records an abort and ends the generations in progress.
    pub fn abort(&self, genkey: String) {
        self.seen.lock().aborts.push(genkey);
        self.aborted.notify_waiters();
    }
}

/// A test backend on loopback, on a runtime of its own.
pub struct Backend {
    pub url: String,
    addr: SocketAddr,
    pub state: Arc<BackendState>,
    routes: fn(Arc<BackendState>) -> Router,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Backend {
    /// Starts a backend serving `routes` on a free port.
    pub async fn start(routes: fn(Arc<BackendState>) -> Router) -> Backend {
        let mut backend = Backend {
            url: String::new(),
            addr: "127.0.0.1:0".parse().unwrap(),
            state: Arc::default(),
            routes,
            runtime: None,
        };
        backend.start_again().await;
        backend
    }

    /// Kills the backend: its port refuses connections and open connections close.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts the backend again on the same port.
    pub async fn start_again(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let router = (self.routes)(Arc::clone(&self.state));
        let wanted = self.addr;
        let (bound, on) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let start = Instant::now();
            let listener = loop {
                match tokio::net::TcpListener::bind(wanted).await {
                    Ok(listener) => break listener,
                    Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("bind: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            let _ = bound.send(listener.local_addr().unwrap());
            axum::serve(listener, router).await.unwrap();
        });
        self.addr = on.await.unwrap();
        self.url = format!("http://{}", self.addr);
        self.runtime = Some(runtime);
    }

    /// Sets how the backend behaves from now on.
    pub fn behave(&self, behavior: Behavior) {
        *self.state.behavior.lock() = behavior;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real `horde-worker` binary, logging JSON lines.
pub struct Worker {
    child: Mutex<Child>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

/// The arguments every test worker gets.
pub fn worker_args<'a>(
    horde: &'a Horde,
    key: &'a str,
    name: &'a str,
    backend: &'a str,
) -> Vec<&'a str> {
    vec![
        "--horde-url",
        &horde.url,
        "--api-key",
        key,
        "--name",
        name,
        "--backend-url",
        backend,
    ]
}

/// A `horde-worker` command with no settings from the environment.
pub fn worker_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_horde-worker"));
    for (name, _) in std::env::vars() {
        if name.starts_with("HORDE_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

impl Worker {
    /// Starts the worker with `args`, logging JSON lines.
    pub fn start(args: &[&str]) -> Worker {
        Worker::start_logging(args, "json")
    }

    /// Starts the worker with `args` and `--log-format format` (a text line is kept as
    /// `{"raw": line}`).
    pub fn start_logging(args: &[&str], format: &str) -> Worker {
        let mut child = worker_command()
            .args(args)
            .args(["--log-format", format])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "raw": line }));
                sink.lock().push(value);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let errors = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines() {
                let Ok(line) = line else { return };
                sink.lock().push_str(&line);
                sink.lock().push('\n');
            }
        });
        Worker {
            child: Mutex::new(child),
            lines,
            stderr,
        }
    }

    /// The log lines whose message starts with `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.lines
            .lock()
            .iter()
            .filter(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .cloned()
            .collect()
    }

    /// The text lines (of `--log-format text`) that contain `part`.
    pub fn raw_lines(&self, part: &str) -> Vec<String> {
        self.lines
            .lock()
            .iter()
            .filter_map(|line| line["raw"].as_str())
            .filter(|line| line.contains(part))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `count` lines starting with `message` were logged; returns them.
    pub async fn wait_logged(&self, message: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let what = format!("{count} log line(s) {message:?}");
        let start = Instant::now();
        loop {
            let lines = self.logged(message);
            if lines.len() >= count {
                return lines;
            }
            if start.elapsed() > timeout {
                let exit = self.child.lock().try_wait();
                panic!(
                    "timed out waiting for {what}; the worker exited: {exit:?}; the log:\n{}\nstderr:\n{}",
                    self.lines
                        .lock()
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr.lock()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends the process a signal (`TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.lock().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The process's resident memory in KiB (Linux's `/proc`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.lock().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits for the process to exit.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.lock().try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "the worker did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        if std::thread::panicking() {
            eprintln!(
                "worker {}: {:?}; log: {:?}; stderr: {}",
                child.id(),
                child.try_wait(),
                self.lines.lock(),
                self.stderr.lock()
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A TCP relay in front of a backend that can freeze: from then on it accepts connections and
/// forwards nothing either way, closing nothing, as a hung KoboldCpp would (its socket open,
/// no answer ever).
pub struct Freezer {
    pub url: String,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl Freezer {
    /// A relay to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Freezer {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relay_frozen = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (down_read, down_write) = down.into_split();
                let (up_read, up_write) = up.into_split();
                tokio::spawn(relay(down_read, up_write, Arc::clone(&relay_frozen)));
                tokio::spawn(relay(up_read, down_write, Arc::clone(&relay_frozen)));
            }
        });
        Freezer { url, frozen }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until frozen; then swallows everything and keeps `to` open.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await;
        let is_frozen = frozen.load(std::sync::atomic::Ordering::SeqCst);
        match read {
            Ok(n) if n > 0 && !is_frozen => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
            Ok(n) if n > 0 => {}
            _ if is_frozen => {
                let _kept_open = to;
                std::future::pending::<()>().await;
                return;
            }
            _ => return,
        }
    }
}
