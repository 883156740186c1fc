//! Two horde-server nodes on one PostgreSQL database: one active, one standby. Killing the
//! active node (SIGKILL) or cutting it off from the database makes the standby take over;
//! clients that retry on the other node go on, and nothing acknowledged is lost.
//!
//! Runs when `HORDE_TEST_POSTGRES_URL` names a PostgreSQL server (`.ci/run` starts one);
//! otherwise each test says so and passes.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::{database_name, postgres_database, test_postgres_url};

/// A node: the real binary on its own port.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(db: &str, port: u16, dir: &std::path::Path) -> Node {
        let config = dir.join(format!("node-{port}.toml"));
        std::fs::write(
            &config,
            "registrations_per_minute = 100000\ntransfers_per_minute = 100000\n\
             transfers_per_minute_per_ip = 100000\n\
             [horde]\njob_timeout_base_secs = 15\njob_timeout_per_token_ms = 0\n\
             [horde.integrity]\nspeed_limits = []\nescrow_untrusted = false\n",
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_horde-server"))
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--db", db])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Node {
            child,
            base: format!("http://127.0.0.1:{port}/api/v2"),
        }
    }

    /// The role its heartbeat states, or `None` when it does not answer.
    async fn role(&self, client: &reqwest::Client) -> Option<String> {
        let response = client
            .get(format!("{}/status/heartbeat", self.base))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["role"].as_str().map(str::to_owned)
    }

    async fn wait_for_role(&self, client: &reqwest::Client, role: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.role(client).await.as_deref() != Some(role) {
            assert!(
                Instant::now() < deadline,
                "{} never became {role}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 15 s) for the node to exit by itself, with a failure status.
    async fn exits_failing(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{what} is still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!exit.success(), "{what} exited {exit:?}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bases of both nodes; a call goes to the one that answered last, and moves to the
/// other on a refused connection or a `503`, as a load balancer would.
#[derive(Clone)]
struct Horde {
    client: reqwest::Client,
    bases: Arc<Vec<String>>,
    current: Arc<Mutex<usize>>,
}

impl Horde {
    /// One call, retried across the nodes for up to 20 s until one answers with something
    /// other than `503`. `None` if none did.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(StatusCode, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let index = *self.current.lock();
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.bases[index]));
            if let Some(key) = key {
                request = request.header("apikey", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    let status = response.status();
                    return Some((status, response.json().await.unwrap_or(Value::Null)));
                }
                _ => {
                    self.move_on_from(index);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        None
    }

    /// Sends later calls to the other node, unless another call already did.
    fn move_on_from(&self, index: usize) {
        let mut current = self.current.lock();
        if *current == index {
            *current = (index + 1) % self.bases.len();
        }
    }

    async fn register(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/register",
                None,
                Some(&json!({ "username": name })),
            )
            .await
            .unwrap();
        assert!(status.is_success(), "{status} {body}");
        body["api_key"].as_str().unwrap().to_owned()
    }
}

/// Two nodes on a fresh database; the first is active, the second a standby.
async fn pair(url: &str, dir: &tempfile::TempDir) -> (Node, Node, Horde) {
    pair_through(url, dir, None).await
}

/// As [`pair`]; with `relay`, the first node reaches the database through the relay on that
/// port.
async fn pair_through(
    url: &str,
    dir: &tempfile::TempDir,
    relay: Option<u16>,
) -> (Node, Node, Horde) {
    let db = postgres_database(url, &database_name(dir.path()));
    let first_db = match relay {
        None => db.clone(),
        Some(port) => {
            let (before, after) = db.split_once('@').unwrap();
            let (_, path) = after.split_once('/').unwrap();
            format!("{before}@127.0.0.1:{port}/{path}")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let first = Node::start(&first_db, free_port(), dir.path());
    first.wait_for_role(&client, "active").await;
    let second = Node::start(&db, free_port(), dir.path());
    second.wait_for_role(&client, "standby").await;
    // A standby serves nothing but its heartbeat.
    let refused = client
        .get(format!("{}/status/models", second.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "1"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["rc"], "StandbyNode");
    let horde = Horde {
        client,
        bases: Arc::new(vec![first.base.clone(), second.base.clone()]),
        current: Arc::new(Mutex::new(0)),
    };
    (first, second, horde)
}

/// A pair of nodes on a fresh database, with a requester and a volunteer registered.
struct Failover {
    url: String,
    dir: tempfile::TempDir,
    first: Node,
    second: Node,
    horde: Horde,
    requester: String,
    volunteer: String,
}

impl Failover {
    /// `None`, said on stderr, when no PostgreSQL server is configured for the tests.
    async fn start() -> Option<Failover> {
        let Some(url) = test_postgres_url() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run this test: .ci/run sets HORDE_TEST_POSTGRES_URL after starting PostgreSQL"
            );
            eprintln!("HORDE_TEST_POSTGRES_URL is not set: failover not tested");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (first, second, horde) = pair(&url, &dir).await;
        let requester = horde.register("requester").await;
        let volunteer = horde.register("volunteer").await;
        Some(Failover {
            url,
            dir,
            first,
            second,
            horde,
            requester,
            volunteer,
        })
    }
}

/// Lets the traffic run a while on the node now active, stops it, drains the queue and checks
/// what was acknowledged.
async fn finish(
    horde: &Horde,
    volunteer: &str,
    stop: &std::sync::atomic::AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acked: &Mutex<Acknowledged>,
) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop_traffic(stop, tasks).await;
    let acked = std::mem::take(&mut *acked.lock());
    drain_and_check(horde, volunteer, &acked).await;
}

/// What the clients were told was done.
#[derive(Default)]
struct Acknowledged {
    requests: Vec<String>,
}

/// Clients queue requests and a worker serves them (holding each job a little, so that some
/// are in flight when the active node goes), until `stop`.
fn traffic(
    horde: &Horde,
    requester: &str,
    volunteer: &str,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    acked: &Arc<Mutex<Acknowledged>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (horde, key, stop, acked) = (
            horde.clone(),
            requester.to_owned(),
            stop.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let body = json!({ "prompt": "fail over", "params": { "max_length": 16 } });
                let sent = horde
                    .call(
                        reqwest::Method::POST,
                        "/generate/text/async",
                        Some(&key),
                        Some(&body),
                    )
                    .await;
                if let Some((StatusCode::ACCEPTED, body)) = sent {
                    let id = body["id"].as_str().unwrap().to_owned();
                    acked.lock().requests.push(id);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let (horde, key, stop) = (horde.clone(), volunteer.to_owned(), stop.clone());
    tasks.push(tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            serve_one(&horde, &key).await;
        }
    }));
    tasks
}

/// Stops the traffic and waits for its tasks.
async fn stop_traffic(
    stop: &std::sync::atomic::AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
}

/// One pop and its submit (retried across the nodes); false if there was no job.
async fn serve_one(horde: &Horde, key: &str) -> bool {
    let pop = json!({ "name": "steady", "models": ["m"], "max_length": 512 });
    let Some((StatusCode::OK, job)) = horde
        .call(
            reqwest::Method::POST,
            "/generate/text/pop",
            Some(key),
            Some(&pop),
        )
        .await
    else {
        return true;
    };
    let Some(id) = job["id"].as_str().map(str::to_owned) else {
        return false;
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let submit = json!({ "id": id, "generation": "served" });
    let answer = horde
        .call(
            reqwest::Method::POST,
            "/generate/text/submit",
            Some(key),
            Some(&submit),
        )
        .await;
    let (status, body) = answer.expect("the horde never came back");
    // A submit whose answer was lost with the killed node is refused as a duplicate when
    // retried on the new one: it was committed.
    assert!(
        status == StatusCode::OK || body["rc"] == "DuplicateGen",
        "{status} {body}"
    );
    true
}

/// Serves everything still waiting, then checks the invariants through the API: every
/// acknowledged request finished exactly once, and the kudos users hold add up to what was
/// minted (nothing here mints: generations only move kudos).
///
/// A job whose pop was committed by the node that died, but whose answer died with it, is
/// held by nobody until the worker's next pop gives it back (or its deadline, 15 s here): the
/// drain goes on until then.
async fn drain_and_check(horde: &Horde, volunteer: &str, acked: &Acknowledged) {
    assert!(
        acked.requests.len() >= 10,
        "only {} requests acknowledged",
        acked.requests.len()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<&String> = acked.requests.iter().collect();
    while !pending.is_empty() {
        while serve_one(horde, volunteer).await {
            assert!(Instant::now() < deadline, "the queue never drained");
        }
        let mut still = Vec::new();
        for id in pending {
            let path = format!("/generate/text/status/{id}");
            let (status, body) = horde
                .call(reqwest::Method::GET, &path, None, None)
                .await
                .unwrap();
            assert_eq!(status, StatusCode::OK, "request {id} lost: {body}");
            if body["done"] != true {
                assert!(
                    Instant::now() < deadline,
                    "request {id} not finished: {body}"
                );
                still.push(id);
                continue;
            }
            assert_eq!(body["finished"], 1, "request {id} served twice? {body}");
            assert_eq!(body["generations"].as_array().unwrap().len(), 1, "{body}");
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let (_, users) = horde
        .call(reqwest::Method::GET, "/users", None, None)
        .await
        .unwrap();
    let milli = |v: &Value| (v.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
    let (mut held, mut minted) = (0, 0);
    for user in users.as_array().unwrap() {
        held += milli(&user["kudos"]) + milli(&user["kudos_details"]["evaluating"]);
        minted += milli(&user["kudos_details"]["admin"]) + milli(&user["kudos_details"]["awarded"]);
    }
    assert_eq!(held, minted, "kudos appeared or vanished: {users}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_active_node_is_killed() {
    let Some(Failover {
        url: _,
        dir: _dir,
        mut first,
        second,
        horde,
        requester,
        volunteer,
    }) = Failover::start().await
    else {
        return;
    };

    // A job popped from the active node…
    let (_, queued) = horde
        .call(
            reqwest::Method::POST,
            "/generate/text/async",
            Some(&requester),
            Some(&json!({ "prompt": "in flight" })),
        )
        .await
        .unwrap();
    let in_flight = queued["id"].as_str().unwrap().to_owned();
    // A worker of its own: the traffic's worker ("steady", one thread) asking for work while
    // holding a job would give that job back to the queue.
    let pop = json!({ "name": "held", "models": ["m"] });
    let (_, job) = horde
        .call(
            reqwest::Method::POST,
            "/generate/text/pop",
            Some(&volunteer),
            Some(&pop),
        )
        .await
        .unwrap();
    let job = job["id"].as_str().unwrap().to_owned();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    acked.lock().requests.push(in_flight);
    let tasks = traffic(&horde, &requester, &volunteer, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed_at = Instant::now();
    first.kill();
    second.wait_for_role(&horde.client, "active").await;
    let took_over = killed_at.elapsed();
    assert!(took_over < Duration::from_secs(10), "took {took_over:?}");
    eprintln!("the standby was active {took_over:?} after the SIGKILL");

    // …is submitted to the new active node.
    let (status, body) = horde
        .call(
            reqwest::Method::POST,
            "/generate/text/submit",
            Some(&volunteer),
            Some(&json!({ "id": job, "generation": "after the failover" })),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");

    finish(&horde, &volunteer, &stop, tasks, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_node_cut_off_from_the_database_stops_and_the_standby_takes_over() {
    let Some(Failover {
        url,
        dir,
        mut first,
        second,
        horde,
        requester,
        volunteer,
    }) = Failover::start().await
    else {
        return;
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let tasks = traffic(&horde, &requester, &volunteer, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(800)).await;

    // End the active node's database session, as a network cut or a database restart would:
    // its lease goes with it.
    let db = database_name(dir.path());
    let server = url.clone();
    let ended = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        client
            .query(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l
                 JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
                &[&db],
            )
            .unwrap()
            .len()
    })
    .join()
    .unwrap();
    assert_eq!(ended, 1, "one session holds the lease");

    // The old active node stops acknowledging and exits non-zero (a supervisor restarts it,
    // as a standby); the standby becomes active.
    first.exits_failing("the cut-off node").await;
    second.wait_for_role(&horde.client, "active").await;

    finish(&horde, &volunteer, &stop, tasks, &acked).await;
}

/// Sends `signal` (`-STOP`, `-CONT`) to `node`.
fn signal(node: &Node, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The active node frozen (SIGSTOP: a hung process, a long pause) keeps its connection open,
/// and the kernel answers keepalives for it; PostgreSQL still ends its session once it has been
/// silent for the lease's idle timeout, and the standby takes over. Woken again, the old node
/// finds its session gone and stops without acknowledging anything more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_active_node_freezes() {
    let Some(Failover {
        url: _,
        dir: _dir,
        mut first,
        second,
        horde,
        requester,
        volunteer,
    }) = Failover::start().await
    else {
        return;
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let tasks = traffic(&horde, &requester, &volunteer, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let frozen_at = Instant::now();
    signal(&first, "-STOP");
    second.wait_for_role(&horde.client, "active").await;
    let took_over = frozen_at.elapsed();
    eprintln!("the standby was active {took_over:?} after the SIGSTOP");
    assert!(took_over < Duration::from_secs(15), "took {took_over:?}");

    signal(&first, "-CONT");
    first
        .exits_failing("the woken node, without its lease,")
        .await;
    finish(&horde, &volunteer, &stop, tasks, &acked).await;
}

/// A TCP relay between a node and PostgreSQL that can be cut: from then on it forwards nothing
/// in either direction and closes nothing, as a network that drops every packet would. (Its
/// kernel still acknowledges what the node sends, so no TCP timeout on the node's side fires:
/// only the node's own commit and idle-check timeouts can notice.)
struct Relay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relay_cut = Arc::clone(&cut);
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (down_read, down_write) = down.into_split();
                let (up_read, up_write) = up.into_split();
                tokio::spawn(pipe(down_read, up_write, Arc::clone(&relay_cut)));
                tokio::spawn(pipe(up_read, down_write, Arc::clone(&relay_cut)));
            }
        });
        Relay { port, cut }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until the relay is cut; then swallows everything and keeps `to` open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await;
        let is_cut = cut.load(std::sync::atomic::Ordering::SeqCst);
        match read {
            Ok(n) if n > 0 && !is_cut => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
            Ok(n) if n > 0 => {} // dropped on the floor
            _ if is_cut => {
                // The other side closed; a cut network would not say so: `to` stays open.
                let _kept_open = to;
                std::future::pending::<()>().await;
                return;
            }
            _ => return,
        }
    }
}

/// The network between the active node and PostgreSQL drops everything (a relay that stops
/// forwarding, with no reset and no error): PostgreSQL ends the silent session after the
/// lease's idle timeout and the standby takes over; the cut-off node's commits and idle checks
/// time out, and it stops without acknowledging anything it could not commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_network_to_the_active_node_is_cut() {
    let Some(url) = test_postgres_url() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_TEST_POSTGRES_URL after starting PostgreSQL"
        );
        return;
    };
    let upstream = url
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap()
        .to_owned();
    let relay = Relay::start(upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut first, second, horde) = pair_through(&url, &dir, Some(relay.port)).await;
    let requester = horde.register("requester").await;
    let volunteer = horde.register("volunteer").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let tasks = traffic(&horde, &requester, &volunteer, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let cut_at = Instant::now();
    relay.cut();
    second.wait_for_role(&horde.client, "active").await;
    let took_over = cut_at.elapsed();
    eprintln!("the standby was active {took_over:?} after the network was cut");
    assert!(took_over < Duration::from_secs(15), "took {took_over:?}");
    first.exits_failing("the cut-off node").await;
    eprintln!(
        "the cut-off node stopped {:?} after the cut",
        cut_at.elapsed()
    );
    finish(&horde, &volunteer, &stop, tasks, &acked).await;
}
