//! AI Horde's request options: each does what AI Horde documents, or is refused with a 400.

use super::*;

/// Queues `body` (a full request body) for `key`; the request id.
async fn queue(server: &TestServer, key: &str, body: Value) -> String {
    let (status, answer) = server.post("/generate/text/async", Some(key), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unsupported_options_are_refused_and_empty_ones_accepted() {
    let server = TestServer::start().await;
    let (_, key) = server.register("alice").await;
    for field in ["webhook", "softprompt", "proxied_account"] {
        let refused = server
            .post(
                "/generate/text/async",
                Some(&key),
                json!({ "prompt": "Hello", field: "https://example.org/x" }),
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "BadRequest");
        assert!(
            refused.1["message"].as_str().unwrap().contains(field)
                || refused.1["errors"][field].is_string(),
            "{}",
            refused.1
        );
        // What clients send when they mean "none".
        queue(&server, &key, json!({ "prompt": "Hello", field: "" })).await;
        queue(&server, &key, json!({ "prompt": "Hello", field: null })).await;
    }
    // The options AI Horde's clients send with their defaults are accepted.
    queue(
        &server,
        &key,
        json!({
            "prompt": "Hello",
            "slow_workers": true,
            "extra_slow_workers": false,
            "validated_backends": true,
            "allow_downgrade": false,
            "disable_batching": false,
        }),
    )
    .await;
}

#[tokio::test]
async fn batching_hands_a_worker_several_generations_unless_disabled() {
    let server = TestServer::start().await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    for (disable, expected) in [(false, 3), (true, 1)] {
        let id = queue(
            &server,
            &alice,
            json!({ "prompt": "Hello", "params": { "n": 3 }, "disable_batching": disable }),
        )
        .await;
        let mut body = pop_body(&format!("bob-{disable}"));
        body["amount"] = json!(3);
        body["threads"] = json!(2);
        let (status, job) = server.post("/generate/text/pop", Some(&bob), body).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        let ids = job["ids"].as_array().unwrap();
        // An untrusted owner's worker holds at most 2 jobs, whatever it asks for.
        assert_eq!(ids.len(), expected.min(2), "{job}");
        assert_eq!(ids[0], job["id"]);
        let (_, status) = server
            .get(&format!("/generate/text/status/{id}"), None)
            .await;
        assert_eq!(status["processing"], expected.min(2), "{status}");
        let (cancelled, _) = server
            .call(
                Method::DELETE,
                &format!("/generate/text/status/{id}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(cancelled, StatusCode::OK);
    }
}

#[tokio::test]
async fn slow_and_extra_slow_workers_serve_only_requests_that_allow_them() {
    let server = TestServer::start().await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    let mut extra_slow = pop_body("bob-cpu");
    extra_slow["extra_slow_worker"] = json!(true);
    queue(&server, &alice, json!({ "prompt": "Hello" })).await;
    let (status, nothing) = server
        .post("/generate/text/pop", Some(&bob), extra_slow.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{nothing}");
    assert_eq!(nothing["id"], Value::Null, "{nothing}");
    assert_eq!(nothing["skipped"]["performance"], 1, "{nothing}");
    let patient = queue(
        &server,
        &alice,
        json!({ "prompt": "Take your time", "extra_slow_workers": true }),
    )
    .await;
    let (_, job) = server
        .post("/generate/text/pop", Some(&bob), extra_slow)
        .await;
    assert_eq!(job["payload"]["prompt"], "Take your time", "{job}");
    let (_, status) = server
        .get(&format!("/generate/text/status/{patient}"), None)
        .await;
    assert_eq!(status["processing"], 1);
    // `slow_workers: false` refuses workers measured under 2 tokens per second; one not yet
    // measured counts at 10 (docs/economy.md), so it serves.
    queue(
        &server,
        &alice,
        json!({ "prompt": "Quickly", "slow_workers": false }),
    )
    .await;
    let mut gpu = pop_body("bob-gpu");
    gpu["threads"] = json!(2);
    for prompt in ["Hello", "Quickly"] {
        let (_, job) = server
            .post("/generate/text/pop", Some(&bob), gpu.clone())
            .await;
        assert_eq!(job["payload"]["prompt"], prompt, "oldest first: {job}");
    }
}

#[tokio::test]
async fn validated_backends_keep_requests_to_the_bridges_the_operator_lists() {
    let server = TestServer::start_with(|config| {
        config.horde.validated_bridges = vec!["horde-worker".into()];
    })
    .await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    queue(&server, &alice, json!({ "prompt": "Validated only" })).await;
    // `pop_body` says `test:1:none`, which the operator did not validate.
    let (_, nothing) = server
        .post("/generate/text/pop", Some(&bob), pop_body("bob-fork"))
        .await;
    assert_eq!(nothing["id"], Value::Null, "{nothing}");
    assert_eq!(nothing["skipped"]["bridge_version"], 1, "{nothing}");
    queue(
        &server,
        &alice,
        json!({ "prompt": "Any bridge", "validated_backends": false }),
    )
    .await;
    let job = pop(&server, &bob, "bob-fork").await;
    assert_eq!(job["payload"]["prompt"], "Any bridge", "{job}");
    let mut validated = pop_body("bob-real");
    validated["bridge_agent"] = json!("horde-worker:0.1.0:");
    let (_, job) = server
        .post("/generate/text/pop", Some(&bob), validated)
        .await;
    assert_eq!(job["payload"]["prompt"], "Validated only", "{job}");
}

#[tokio::test]
async fn allow_downgrade_shortens_instead_of_refusing_under_congestion() {
    let server = TestServer::start_with(|config| {
        config.horde.integrity.speed_limits.clear();
    })
    .await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    // One worker online (counted at 10 tokens a second: 6,000 tokens in the 10 minutes the
    // congestion rule allows) and a backlog beyond that.
    pop(&server, &bob, "bob-gpu").await;
    for _ in 0..2 {
        queue(
            &server,
            &bob,
            json!({ "prompt": "Fill", "params": { "n": 4, "max_length": 1024 } }),
        )
        .await;
    }
    let large = json!({ "prompt": "Long story", "params": { "n": 2, "max_length": 1024 } });
    let refused = server
        .post("/generate/text/async", Some(&alice), large.clone())
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "KudosUpfront");
    let mut downgraded = large;
    downgraded["allow_downgrade"] = json!(true);
    let (status, accepted) = server
        .post("/generate/text/async", Some(&alice), downgraded)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let message = accepted["message"].as_str().unwrap_or_default();
    assert!(message.contains("max_length 256"), "{accepted}");
}
