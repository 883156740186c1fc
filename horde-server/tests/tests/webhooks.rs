//! Webhooks against a loopback receiver that verifies every signature: deliveries arrive,
//! also after the receiver was down for a while and across a restart of the horde; private
//! targets are refused unless the operator allows them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::api::{pop, submit};
use crate::util::{assert_error, TestServer};

const SECRET: &str = "a-secret-of-24-characters";

/// What the receiver got: each delivery's body, once its signature checked out.
#[derive(Default)]
struct Received {
    verified: Mutex<Vec<Value>>,
    forged: Mutex<u32>,
}

/// Verifies a delivery as the documentation tells receivers to.
async fn receive(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp = header("x-horde-timestamp");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now_secs()) < 300);
    if header("x-horde-signature") != format!("sha256={expected}") || !fresh {
        *received.forged.lock() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let mut body: Value = serde_json::from_str(&body).unwrap();
    body["delivery"] = json!(header("x-horde-delivery"));
    received.verified.lock().push(body);
    StatusCode::NO_CONTENT
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A receiver on `port` (0: any); stops when the handle is dropped.
struct Receiver {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, received: Arc<Received>) -> Receiver {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { port, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A horde that may post to loopback (the receiver), retrying every second.
async fn horde(dir: tempfile::TempDir) -> TestServer {
    TestServer::start_in(dir, |config| {
        config.webhooks.allow_private = true;
        config.webhooks.retry_initial_secs = 1;
        config.webhooks.retry_max_secs = 1;
    })
    .await
}

async fn set_secret(
    server: &TestServer,
    user: u64,
    key: &str,
    secret: &str,
) -> (StatusCode, Value) {
    server
        .call(
            Method::PUT,
            &format!("/users/{user}"),
            Some(key),
            Some(json!({ "webhook_secret": secret })),
        )
        .await
}

/// Waits until `received` holds `count` verified deliveries.
async fn verified(received: &Received, count: usize, within: Duration) -> Vec<Value> {
    horde_testkit::eventually("webhook deliveries", within, || async {
        let got = received.verified.lock().clone();
        (got.len() >= count).then_some(got)
    })
    .await
}

#[tokio::test]
async fn each_generation_is_posted_signed_to_the_webhook() {
    let received = Arc::new(Received::default());
    let receiver = Receiver::start(0, Arc::clone(&received)).await;
    let server = horde(tempfile::tempdir().unwrap()).await;
    let (alice_id, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    let body = json!({ "prompt": "Hook me", "params": { "n": 2 }, "webhook": receiver.url() });
    // Deliveries are signed: no secret, no webhook.
    let refused = server
        .post("/generate/text/async", Some(&alice), body.clone())
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "BadRequest");
    let anonymous = server
        .post("/generate/text/async", None, body.clone())
        .await;
    assert_error(&anonymous, StatusCode::BAD_REQUEST, "BadRequest");
    assert_error(
        &set_secret(&server, alice_id, &alice, "short").await,
        StatusCode::BAD_REQUEST,
        "ValidationError",
    );
    let (status, set) = set_secret(&server, alice_id, &alice, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set, json!({ "webhook_secret_set": true }));
    let (status, queued) = server
        .post("/generate/text/async", Some(&alice), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let request = queued["id"].as_str().unwrap().to_owned();
    for text in ["first.", "second."] {
        let job = pop(&server, &bob, "bob-gpu").await;
        let (status, _) = submit(&server, &bob, job["id"].as_str().unwrap(), text).await;
        assert_eq!(status, StatusCode::OK);
    }
    let got = verified(&received, 2, Duration::from_secs(20)).await;
    let mut texts: Vec<&str> = got.iter().map(|d| d["text"].as_str().unwrap()).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["first.", "second."]);
    for delivery in &got {
        assert_eq!(delivery["request"], request, "{delivery}");
        assert_eq!(delivery["worker_name"], "bob-gpu");
        assert_eq!(delivery["state"], "ok");
        assert_eq!(
            delivery["delivery"], delivery["id"],
            "the header names the job"
        );
    }
    assert_eq!(*received.forged.lock(), 0);
    // Delivered once each: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.verified.lock().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn deliveries_wait_for_a_receiver_that_is_down_even_across_a_restart() {
    let received = Arc::new(Received::default());
    let receiver = Receiver::start(0, Arc::clone(&received)).await;
    let (port, url) = (receiver.port, receiver.url());
    drop(receiver);
    let server = horde(tempfile::tempdir().unwrap()).await;
    let (alice_id, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    set_secret(&server, alice_id, &alice, SECRET).await;
    let (status, _) = server
        .post(
            "/generate/text/async",
            Some(&alice),
            json!({ "prompt": "Later", "webhook": url }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = pop(&server, &bob, "bob-gpu").await;
    submit(
        &server,
        &bob,
        job["id"].as_str().unwrap(),
        "kept for later.",
    )
    .await;
    // A few attempts fail (nothing listens), then the horde stops with the delivery pending.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let dir = server.stop().await;
    assert!(received.verified.lock().is_empty());
    // Back up: the receiver first, then the horde, which delivers what it kept.
    let receiver = Receiver::start(port, Arc::clone(&received)).await;
    let server = horde(dir).await;
    let got = verified(&received, 1, Duration::from_secs(20)).await;
    assert_eq!(got[0]["text"], "kept for later.");
    assert_eq!(*received.forged.lock(), 0);
    drop(receiver);
    server.stop().await;
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_operator_allows_them() {
    let server = TestServer::start().await;
    let (alice_id, alice) = server.register("alice").await;
    set_secret(&server, alice_id, &alice, SECRET).await;
    for target in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.org/hook",
        "not a url",
    ] {
        let refused = server
            .post(
                "/generate/text/async",
                Some(&alice),
                json!({ "prompt": "x", "webhook": target }),
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "BadRequest");
        assert!(
            refused.1["errors"]["webhook"].is_string(),
            "{target}: {}",
            refused.1
        );
    }
    server.stop().await;
}
