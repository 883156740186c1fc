//! The real binary, killed with SIGKILL under load: nothing acknowledged is lost, nothing is
//! applied twice, balances still sum to what the horde granted.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::milli;

/// The real binary, running; killed when dropped (a failing test must not leave a server
/// behind, holding the test runner's output pipe).
pub(crate) struct Binary {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Binary {
    /// Waits (up to 30 s) until the heartbeat says the node is active.
    pub(crate) async fn wait_active(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/status/heartbeat", self.base))
                .send()
                .await
            {
                let active = r.status().is_success()
                    && r.json::<Value>().await.is_ok_and(|b| b["role"] == "active");
                if active {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become active"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_binary(db: &Path, extra: &[&str]) -> Binary {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    start_binary_on(db, port, extra).await
}

/// The binary on a given port (to restart it where its clients expect it).
pub(crate) async fn start_binary_on(db: &Path, port: u16, extra: &[&str]) -> Binary {
    start_binary_configured(db, port, extra, "").await
}

/// The binary with `more_config` (TOML) added to the tests' configuration.
pub(crate) async fn start_binary_configured(
    db: &Path,
    port: u16,
    extra: &[&str],
    more_config: &str,
) -> Binary {
    // The tests' workers submit the moment they pop; the speed rule has its own tests.
    let config = db.with_extension("test-config.toml");
    std::fs::write(
        &config,
        format!(
            "transfers_per_minute = 100000\ntransfers_per_minute_per_ip = 100000\n\
             {more_config}\n[horde.integrity]\nspeed_limits = []\nescrow_untrusted = false\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_horde-server"))
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--db")
        .arg(crate::util::store_for(db))
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("HORDE_REGISTRATIONS_PER_MINUTE", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let binary = Binary {
        child,
        base: format!("http://127.0.0.1:{port}/api/v2"),
    };
    // Active, not only listening: on PostgreSQL a restarted node waits as a standby until the
    // killed node's database session has ended.
    binary.wait_active().await;
    binary
}

/// Creates the administrator `name` on the database `db` (no server running on it) with
/// `horde-server create-admin`; returns the API key.
pub(crate) fn create_admin(db: &Path, name: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_horde-server"))
        .args(["create-admin", name, "--db"])
        .arg(crate::util::store_for(db))
        .env_remove("HORDE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once, keep it safe): "))
        .unwrap()
        .trim()
        .to_owned()
}

/// Registers `name` on the server at `base`; returns the API key.
pub(crate) async fn register(client: &reqwest::Client, base: &str, name: &str) -> String {
    let root = base.trim_end_matches("/api/v2");
    let horde = horde_api::Client::with_http(root, client.clone()).unwrap();
    horde.register(name).await.unwrap().api_key
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: String,
    body: Option<Value>,
    idempotency: Option<String>,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let mut request = client.request(method, url).header("apikey", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(k) = idempotency {
        request = request.header("Idempotency-Key", k);
    }
    let response = request.send().await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

/// The administrator `alice` (user 1) grants herself 1,000,000 kudos to send.
async fn grant_alice_a_million(client: &reqwest::Client, base: &str, alice: &str) {
    let (status, _) = call(
        client,
        reqwest::Method::PUT,
        format!("{base}/users/1"),
        alice.to_owned(),
        Some(json!({ "kudos": 1_000_000 })),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[derive(Default)]
struct Acked {
    requests: HashSet<String>,
    submitted: HashMap<String, i64>,
    transfers_attempted: Vec<String>,
    transfers_acked: HashSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("horde.sqlite");
    let alice = create_admin(&db, "alice");
    let server = start_binary(&db, &[]).await;
    let client = reqwest::Client::new();
    let bob = register(&client, &server.base, "bob").await;
    let carol = register(&client, &server.base, "carol").await;
    grant_alice_a_million(&client, &server.base, &alice).await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut tasks = Vec::new();
    for worker in 0..3 {
        let (client, base, alice, bob, acked) = (
            client.clone(),
            server.base.clone(),
            alice.clone(),
            bob.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let post = |path: &str, key: &str, body: Value| {
                call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}{path}"),
                    key.to_owned(),
                    Some(body),
                    None,
                )
            };
            loop {
                let Ok((StatusCode::ACCEPTED, r)) = post(
                    "/generate/text/async",
                    &alice,
                    json!({ "prompt": "crash test prompt", "params": { "max_length": 80 } }),
                )
                .await
                else {
                    break;
                };
                acked.lock().requests.insert(r["id"].as_str().unwrap().to_owned());
                let Ok((StatusCode::OK, job)) = post(
                    "/generate/text/pop",
                    &bob,
                    json!({ "name": format!("crash-worker-{worker}"), "models": ["koboldcpp/m-13B"] }),
                )
                .await
                else {
                    break;
                };
                let Some(id) = job["id"].as_str() else {
                    continue;
                };
                let Ok((StatusCode::OK, reward)) = post(
                    "/generate/text/submit",
                    &bob,
                    json!({ "id": id, "generation": "some generated text", "state": "ok" }),
                )
                .await
                else {
                    break;
                };
                acked
                    .lock()
                    .submitted
                    .insert(id.to_owned(), milli(&reward["reward"]));
            }
        }));
    }
    {
        let (client, base, alice, acked) = (
            client.clone(),
            server.base.clone(),
            alice.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("transfer-{i}");
                acked.lock().transfers_attempted.push(key.clone());
                let result = call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/kudos/transfer"),
                    alice.clone(),
                    Some(json!({ "username": "carol#3", "amount": 1 })),
                    Some(key.clone()),
                )
                .await;
                match result {
                    Ok((StatusCode::OK, _)) => {
                        acked.lock().transfers_acked.insert(key);
                    }
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock());
    println!(
        "before the kill: {} requests, {} generations, {} transfers acknowledged",
        acked.requests.len(),
        acked.submitted.len(),
        acked.transfers_acked.len()
    );
    assert!(
        acked.submitted.len() > 10,
        "the load ran: {}",
        acked.submitted.len()
    );
    assert!(acked.transfers_acked.len() > 10);

    // Restart on the same database.
    let mut server = start_binary(&db, &[]).await;
    let base = server.base.clone();
    let get = |path: String, key: &str| {
        call(
            &client,
            reqwest::Method::GET,
            format!("{base}{path}"),
            key.to_owned(),
            None,
            None,
        )
    };
    let mut charged_total = 0;
    for id in &acked.requests {
        let (status, body) = get(format!("/generate/text/status/{id}"), &alice)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "acknowledged request {id} lost");
        assert!(
            body["finished"].as_u64().unwrap() <= 1,
            "served twice: {body}"
        );
        charged_total += milli(&body["kudos"]);
    }
    let acked_rewards: i64 = acked.submitted.values().sum();
    assert!(
        charged_total >= acked_rewards,
        "acknowledged generations lost: charged {charged_total}, acked {acked_rewards}"
    );
    let (_, alice_user) = get("/find_user".into(), &alice).await.unwrap();
    let (_, bob_user) = get("/find_user".into(), &bob).await.unwrap();
    assert_eq!(
        milli(&alice_user["kudos_details"]["accumulated"]),
        -charged_total
    );
    assert_eq!(
        milli(&bob_user["kudos_details"]["accumulated"]),
        charged_total
    );

    // Re-send every transfer whose answer was lost: the idempotency keys stop doubles.
    for key in &acked.transfers_attempted {
        let (status, body) = call(
            &client,
            reqwest::Method::POST,
            format!("{}/kudos/transfer", server.base),
            alice.clone(),
            Some(json!({ "username": "carol#3", "amount": 1 })),
            Some(key.clone()),
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, carol_user) = get("/find_user".into(), &carol).await.unwrap();
    assert_eq!(
        milli(&carol_user["kudos_details"]["received"]),
        acked.transfers_attempted.len() as i64 * 1000,
        "every transfer applied exactly once"
    );

    // Balances sum to what the horde granted (1,000,000 by the admin; no uptime yet).
    let (_, users) = get("/users".into(), &alice).await.unwrap();
    let sum: i64 = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| milli(&u["kudos"]))
        .sum();
    assert_eq!(sum, 1_000_000_000);

    // A clean stop: SIGTERM, exit code 0.
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn bad_configuration_fails_with_a_clear_message() {
    let run = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_horde-server"))
            .args(args)
            .env("HORDE_DB", dir.path().join("h.sqlite"))
            .env("HORDE_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (status, stderr) = run(&["--db", "/nonexistent-dir/horde.sqlite"]);
    assert!(!status.success());
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    let (status, stderr) = run(&["--admins", "no-id-here"]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("is not alias#id"), "{stderr}");
    let (status, stderr) = run(&["--listen", "not-an-address"]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--listen"), "{stderr}");
    let (status, stdout_or_err) = run(&["--version"]);
    assert!(status.success(), "{stdout_or_err}");
}

/// A database that cannot grow (as on a full disk): the first failed commit makes the server
/// refuse everything with 503 and exit non-zero; a restart has every acknowledged request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_stops_the_server_and_loses_nothing_acknowledged() {
    if crate::util::on_postgres() {
        // The page cap that fills the "disk" is SQLite's; on PostgreSQL the failover tests
        // end the database session instead.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("horde.sqlite");
    let mut server = start_binary(&db, &["--max-db-pages", "80"]).await;
    let client = reqwest::Client::new();
    let key = register(&client, &server.base, "filler").await;
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..2_000 {
        let response = client
            .post(format!("{}/generate/text/async", server.base))
            .header("apikey", &key)
            .json(&json!({ "prompt": format!("{i} {}", "x".repeat(8_000)) }))
            .send()
            .await;
        let Ok(response) = response else {
            break; // the server is gone
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == StatusCode::ACCEPTED {
            acked.push(body["id"].as_str().unwrap().to_owned());
            if acked.len() % 25 == 0 {
                // Stay under the concurrency limit: cancel what is queued so far.
                for id in &acked[acked.len() - 25..] {
                    client
                        .delete(format!("{}/generate/text/status/{id}", server.base))
                        .send()
                        .await
                        .unwrap();
                }
            }
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["rc"], "StorageFailure", "{body}");
        refused = Some(body);
        break;
    }
    assert!(refused.is_some(), "the database never filled up");
    assert!(acked.len() >= 3, "{} acknowledged", acked.len());
    // The server stops by itself, with a failure status for its supervisor.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "{status:?}");

    // Restarted without the cap, it has everything it acknowledged.
    let mut server = start_binary(&db, &[]).await;
    for id in &acked {
        let response = client
            .get(format!("{}/generate/text/status/{id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {id} was lost");
    }
    let response = client
        .post(format!("{}/generate/text/async", server.base))
        .header("apikey", &key)
        .json(&json!({ "prompt": "after the restart" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// The server restarted (SIGTERM, then started again on the same port) while clients keep
/// polling and workers keep working: they ride over it, and every acknowledged request is
/// finished, with jobs handed out before the restart submitted after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_workers_ride_over_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("horde.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = start_binary_on(&db, port, &[]).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let requester = register(&client, &base, "requester").await;
    let volunteer = register(&client, &base, "volunteer").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // Clients: queue a request, poll it until done; on any error, wait and go on.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, base, key, stop, acked) = (
            client.clone(),
            base.clone(),
            requester.clone(),
            stop.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let sent = client
                    .post(format!("{base}/generate/text/async"))
                    .header("apikey", &key)
                    .json(&json!({ "prompt": "ride over it" }))
                    .send()
                    .await;
                let Ok(response) = sent else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if response.status() != StatusCode::ACCEPTED {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else {
                    continue;
                };
                acked.lock().push(body["id"].as_str().unwrap().to_owned());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // A worker that holds each job a little, so that some are in flight across the restart.
    let worker = {
        let (client, base, key, stop) = (
            client.clone(),
            base.clone(),
            volunteer.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let popped = client
                    .post(format!("{base}/generate/text/pop"))
                    .header("apikey", &key)
                    .json(&json!({ "name": "rider", "models": ["m"] }))
                    .send()
                    .await;
                let Ok(Ok(job)) = (match popped {
                    Ok(r) => Ok(r.json::<Value>().await),
                    Err(e) => Err(e),
                }) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Some(id) = job["id"].as_str().map(str::to_owned) else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                tokio::time::sleep(Duration::from_millis(30)).await;
                // Submit until the horde answers (it may be restarting).
                for _ in 0..200 {
                    let submitted = client
                        .post(format!("{base}/generate/text/submit"))
                        .header("apikey", &key)
                        .json(&json!({ "id": id, "generation": "done" }))
                        .send()
                        .await;
                    if submitted.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A graceful restart on the same port.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(server.child.wait().unwrap().success());
    let mut server = start_binary_on(&db, port, &[]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    worker.await.unwrap();
    // Drain: the volunteer's worker serves what is left, then every acknowledged request is
    // finished (none lost across the restart, none left processing).
    let acked = acked.lock().clone();
    assert!(
        acked.len() >= 10,
        "only {} requests acknowledged",
        acked.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job: Value = client
            .post(format!("{base}/generate/text/pop"))
            .header("apikey", &volunteer)
            .json(&json!({ "name": "rider", "models": ["m"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(id) = job["id"].as_str() else { break };
        client
            .post(format!("{base}/generate/text/submit"))
            .header("apikey", &volunteer)
            .json(&json!({ "id": id, "generation": "late" }))
            .send()
            .await
            .unwrap();
        assert!(Instant::now() < deadline);
    }
    for id in &acked {
        let status: Value = client
            .get(format!("{base}/generate/text/status/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            status["done"], true,
            "request {id} was not finished: {status}"
        );
        assert_eq!(status["finished"], 1, "{status}");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Every transfer is sent twice at once under one `Idempotency-Key` (a client retrying before
/// the first answer came), by several clients, while the server is killed with SIGKILL, five
/// times over: after each restart, every transfer either copy of which was answered 200 is
/// there. (A retry answered from memory before the original was committed was lost this way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_racing_their_originals_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("horde.sqlite");
    let alice = create_admin(&db, "alice");
    let mut server = start_binary(&db, &[]).await;
    let client = reqwest::Client::new();
    let carol = register(&client, &server.base, "carol").await;
    grant_alice_a_million(&client, &server.base, &alice).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut attempted = 0usize;
    for round in 0..5 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for sender in 0..8 {
            let (client, base, alice, acked, stop) = (
                client.clone(),
                server.base.clone(),
                alice.clone(),
                acked.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let key = format!("race-{round}-{sender}-{sent}");
                    sent += 1;
                    let send = || {
                        call(
                            &client,
                            reqwest::Method::POST,
                            format!("{base}/kudos/transfer"),
                            alice.clone(),
                            Some(json!({ "username": "carol#2", "amount": 1 })),
                            Some(key.clone()),
                        )
                    };
                    let (original, retry) = tokio::join!(send(), send());
                    let answered = [original, retry]
                        .into_iter()
                        .filter_map(Result::ok)
                        .collect::<Vec<_>>();
                    if answered.iter().any(|(status, _)| *status == StatusCode::OK) {
                        acked.lock().insert(key);
                    }
                    if answered.len() < 2 {
                        break; // the server is gone
                    }
                }
                sent
            }));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in tasks {
            attempted += task.await.unwrap();
        }
        server = start_binary(&db, &[]).await;
        let (_, carol_user) = call(
            &client,
            reqwest::Method::GET,
            format!("{}/find_user", server.base),
            carol.clone(),
            None,
            None,
        )
        .await
        .unwrap();
        let received = milli(&carol_user["kudos_details"]["received"]) / 1000;
        let acked = acked.lock().len();
        println!("round {round}: {attempted} sent twice, {acked} acknowledged, {received} found");
        assert!(acked > 10, "the load ran: {acked} acknowledged");
        assert!(
            received >= acked as i64,
            "acknowledged transfers lost: {acked} acknowledged, {received} found after the restart"
        );
        assert!(received <= attempted as i64, "a transfer applied twice");
    }
}

/// The database file deleted under a running server (an operator's mistake, a cleanup job):
/// the server notices, acknowledges nothing more, and stops with a failure status, instead of
/// acknowledging writes into a file no restart will open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_file_stops_the_server() {
    if crate::util::on_postgres() {
        return; // a file of SQLite's
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("horde.sqlite");
    let mut server = start_binary(&db, &[]).await;
    let client = reqwest::Client::new();
    let key = register(&client, &server.base, "before").await;
    std::fs::remove_file(&db).unwrap();
    let mut acknowledged_after = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server went on after its file was deleted"
        );
        let answer = client
            .post(format!("{}/generate/text/async", server.base))
            .header("apikey", &key)
            .json(&json!({ "prompt": "into a deleted file?" }))
            .send()
            .await;
        if let Ok(answer) = answer {
            if answer.status() == StatusCode::ACCEPTED {
                acknowledged_after += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "{status:?}");
    assert_eq!(
        acknowledged_after, 0,
        "writes acknowledged into a deleted file"
    );
}
