//! The API through real HTTP.

use std::time::Duration;

use horde_core::Timestamp;
use horde_server::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::util::{assert_error, milli, TestServer};

const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";

fn pop_body(name: &str) -> Value {
    json!({
        "name": name,
        "models": [MODEL],
        "max_length": 512,
        "max_context_length": 4096,
        "priority_usernames": null,
        "nsfw": false,
        "threads": 1,
        "amount": 1,
        "bridge_agent": "test:1:none",
    })
}

async fn request(server: &TestServer, key: Option<&str>, prompt: &str) -> String {
    let (status, body) = server
        .post(
            "/generate/text/async",
            key,
            json!({ "prompt": prompt, "params": { "max_length": 80 }, "models": [MODEL] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn pop(server: &TestServer, key: &str, name: &str) -> Value {
    let (status, body) = server
        .post("/generate/text/pop", Some(key), pop_body(name))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn submit(server: &TestServer, key: &str, job: &str, text: &str) -> (StatusCode, Value) {
    server
        .post(
            "/generate/text/submit",
            Some(key),
            json!({ "id": job, "generation": text, "state": "ok", "seed": 42 }),
        )
        .await
}

#[tokio::test]
async fn a_full_generation_cycle_moves_exact_kudos() {
    let server = TestServer::start().await;
    let (alice, alice_key) = server.register("alice").await;
    let (_, bob_key) = server.register("bob").await;

    let id = request(
        &server,
        Some(&alice_key),
        "Once upon a time, in a land far away,",
    )
    .await;
    let (_, status) = server
        .get(&format!("/generate/text/status/{id}"), None)
        .await;
    assert_eq!(status["waiting"], 1);
    assert_eq!(status["queue_position"], 0);
    assert_eq!(status["done"], false);

    let job = pop(&server, &bob_key, "bob-worker").await;
    assert_eq!(job["model"], MODEL);
    assert_eq!(
        job["payload"]["prompt"],
        "Once upon a time, in a land far away,"
    );
    assert_eq!(job["payload"]["n"], 1);
    assert_eq!(job["payload"]["max_length"], 80);
    assert!(job["ttl"].as_u64().unwrap() > 0);
    assert_eq!(job["ids"].as_array().unwrap().len(), 1);
    assert_eq!(job["skipped"], json!({}));
    let job_id = job["id"].as_str().unwrap();

    let (_, processing) = server
        .get(&format!("/generate/text/status/{id}"), None)
        .await;
    assert_eq!(processing["processing"], 1);

    let text = "there lived a horde of volunteers who shared their machines.";
    let (status, reward) = submit(&server, &bob_key, job_id, text).await;
    assert_eq!(status, StatusCode::OK, "{reward}");
    let reward = milli(&reward["reward"]);
    // 8B; 61 chars → 16 tokens, counted as the minimum 20; the 38-char prompt counts as 20.
    let economy = horde_core::EconomyConfig::default();
    assert_eq!(reward, economy.generation_reward(8.0, 20, 20).milli());
    assert!(reward > 0);

    let (_, done) = server
        .get(&format!("/generate/text/status/{id}"), None)
        .await;
    assert_eq!(done["done"], true);
    assert_eq!(done["finished"], 1);
    assert_eq!(milli(&done["kudos"]), reward);
    let generation = &done["generations"][0];
    assert_eq!(generation["text"], text);
    assert_eq!(generation["worker_name"], "bob-worker");
    assert_eq!(generation["model"], MODEL);
    assert_eq!(generation["state"], "ok");
    assert_eq!(generation["seed"], 42);

    let (_, alice_user) = server.get("/find_user", Some(&alice_key)).await;
    let (_, bob_user) = server.get("/find_user", Some(&bob_key)).await;
    assert_eq!(alice_user["id"], alice);
    assert_eq!(alice_user["username"], format!("alice#{alice}"));
    assert_eq!(milli(&alice_user["kudos"]), -reward);
    assert_eq!(milli(&alice_user["kudos_details"]["accumulated"]), -reward);
    assert_eq!(milli(&bob_user["kudos"]), reward);
    assert_eq!(bob_user["worker_count"], 1);
    assert_eq!(bob_user["records"]["contribution"]["fulfillments"], 1);

    let (_, totals) = server.get("/stats/text/totals", None).await;
    assert_eq!(totals["minute"]["requests"], 1);
    assert_eq!(totals["total"]["tokens"], 20);

    // Submitting twice is refused and pays nothing more.
    assert_error(
        &submit(&server, &bob_key, job_id, text).await,
        StatusCode::BAD_REQUEST,
        "DuplicateGen",
    );
    let (_, bob_user) = server.get("/find_user", Some(&bob_key)).await;
    assert_eq!(milli(&bob_user["kudos"]), reward);
    server.stop().await;
}

#[tokio::test]
async fn a_worker_s_blacklist_is_honoured_by_the_horde() {
    // Through horde-api's client: the typed wire the CLI and the worker use.
    let server = TestServer::start().await;
    let (_, key) = server.register("volunteer").await;
    let url = format!("http://{}", server.addr);
    let worker = horde_api::Client::new(&url).unwrap().api_key(key);
    let anonymous = horde_api::Client::new(&url).unwrap().api_key("0000000000");
    let mut request = horde_api::AsyncRequest::prompt("A tale of Dragons and knights");
    request.models = Some(vec![MODEL.into()]);
    let queued = anonymous.generate(&request).await.unwrap();
    let mut query: horde_api::PopRequest = serde_json::from_value(pop_body("picky")).unwrap();
    query.blacklist = Some(vec!["dragon".into()]);
    let skipped = worker.pop(&query).await.unwrap();
    assert_eq!(skipped.id, None);
    assert_eq!(skipped.skipped.get("blacklist"), Some(&1), "{skipped:?}");
    // Without the word, the same worker takes it.
    query.blacklist = Some(vec!["wizard".into()]);
    let taken = worker.pop(&query).await.unwrap();
    assert_eq!(taken.ids.len(), 1, "{taken:?}");
    let payload = taken.payload.job().unwrap();
    assert_eq!(&*payload.prompt, "A tale of Dragons and knights");
    let status = anonymous.status(&queued.id).await.unwrap();
    assert_eq!(status.processing, 1);
    // A list over the limit is refused, naming the field.
    query.blacklist = Some(vec!["x".into(); 101]);
    let error = worker.pop(&query).await.unwrap_err();
    assert_eq!(error.rc(), Some("ValidationError"));
    assert!(error.to_string().contains("blacklist"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn anonymous_requests_and_empty_pops() {
    let server = TestServer::start().await;
    let (_, key) = server.register("volunteer").await;
    let (status, body) = server
        .post(
            "/generate/text/async",
            Some("0000000000"),
            json!({ "prompt": "hi", "models": ["other/model-70B"] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        body["message"].as_str().is_some(),
        "no worker can serve it yet: {body}"
    );
    let nothing = pop(&server, &key, "w").await;
    assert_eq!(nothing["id"], Value::Null);
    assert_eq!(nothing["ids"], json!([]));
    assert_eq!(nothing["payload"], json!({}));
    assert_eq!(nothing["softprompt"], Value::Null);
    assert_eq!(nothing["skipped"]["models"], 1);
    // Anonymous cannot run workers.
    assert_error(
        &server
            .post("/generate/text/pop", Some("0000000000"), pop_body("anon"))
            .await,
        StatusCode::FORBIDDEN,
        "AnonForbiddenWorker",
    );
    server.stop().await;
}

#[tokio::test]
async fn the_wire_keeps_integers_and_checks_metadata() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    // KoboldAI Lite sends integers; some clients send 100.0: the worker gets integers.
    let (status, body) = server
        .post(
            "/generate/text/async",
            None,
            json!({
                "prompt": "integers",
                "params": { "top_k": 100.0, "rep_pen_range": 1024, "sampler_order": [6, 0, 1.0],
                            "temperature": 0.7, "unknown_field": 1 },
                "models": [MODEL]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let response = server
        .client
        .post(format!("{}/generate/text/pop", server.base))
        .header("apikey", &key)
        .json(&pop_body("w"))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("\"top_k\":100,"), "{text}");
    assert!(text.contains("\"rep_pen_range\":1024"), "{text}");
    assert!(text.contains("\"sampler_order\":[6,0,1]"), "{text}");
    assert!(!text.contains("unknown_field"), "{text}");
    let job: Value = serde_json::from_str(&text).unwrap();
    // A fractional top_k is refused.
    let (status, _) = server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "x", "params": { "top_k": 1.5 } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // gen_metadata must be AI Horde's kind, or horde-sdk cannot parse the status.
    let job_id = job["id"].as_str().unwrap();
    let bad = server
        .post(
            "/generate/text/submit",
            Some(&key),
            json!({ "id": job_id, "generation": "x", "gen_metadata": [{ "type": "evil", "value": 1 }] }),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "BadRequest");
    let bad = server
        .post(
            "/generate/text/submit",
            Some(&key),
            json!({ "id": job_id, "generation": "x", "gen_metadata": {"not": "a list"} }),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "BadRequest");
    let metadata = json!([{ "type": "censorship", "value": "csam", "ref": "r1" }]);
    let (status, _) = server
        .post(
            "/generate/text/submit",
            Some(&key),
            json!({ "id": job_id, "generation": "x", "state": "censored", "gen_metadata": metadata }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, status) = server
        .get(&format!("/generate/text/status/{id}"), None)
        .await;
    let generation = &status["generations"][0];
    assert_eq!(generation["gen_metadata"], metadata);
    // No seed was reported: the contract's integer, 0.
    assert_eq!(generation["seed"], 0);
    assert_eq!(generation["state"], "censored");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors_never_a_500() {
    let server = TestServer::start().await;
    let (_, key) = server.register("carol").await;
    let raw = |body: &'static str| {
        server
            .client
            .post(format!("{}/generate/text/async", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{bad json",
        "[]",
        "{\"prompt\": 5}",
        "{\"prompt\": \"x\", \"params\": {\"n\": \"two\"}}",
        "",
    ] {
        let response = raw(body).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let value: Value = response.json().await.unwrap();
        assert_eq!(value["rc"], "BadRequest", "{body}");
    }
    assert_error(
        &server.post("/generate/text/async", None, json!({})).await,
        StatusCode::BAD_REQUEST,
        "MissingPrompt",
    );
    let (_, missing) = server.post("/generate/text/async", None, json!({})).await;
    assert!(missing["errors"]["prompt"].is_string(), "{missing}");
    assert_error(
        &server
            .post(
                "/generate/text/async",
                None,
                json!({ "prompt": "x", "params": { "max_length": 1024, "max_context_length": 512 } }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "TokenOverflow",
    );
    assert_error(
        &server
            .post(
                "/generate/text/async",
                None,
                json!({ "prompt": "x", "params": { "n": 21 } }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "ValidationError",
    );
    // Oversized body.
    let big = json!({ "prompt": "x".repeat(2 * 1024 * 1024) });
    assert_error(
        &server.post("/generate/text/async", None, big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
    );
    assert_error(
        &server.get("/find_user", Some("not-a-real-key")).await,
        StatusCode::UNAUTHORIZED,
        "InvalidAPIKey",
    );
    assert_error(
        &server.get("/no/such/thing", None).await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
    assert_error(
        &server.call(Method::PATCH, "/find_user", None, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
    );
    for id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        assert_error(
            &server
                .get(&format!("/generate/text/status/{id}"), None)
                .await,
            StatusCode::NOT_FOUND,
            "RequestNotFound",
        );
    }
    assert_error(
        &server
            .post(
                "/generate/text/submit",
                Some(&key),
                json!({ "id": "00000000-0000-0000-0000-000000000001", "generation": "x" }),
            )
            .await,
        StatusCode::NOT_FOUND,
        "InvalidJobID",
    );
    assert_error(
        &server
            .post(
                "/generate/text/pop",
                Some(&key),
                json!({ "name": "w", "models": [] }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "ValidationError",
    );
    assert_error(
        &server
            .post(
                "/generate/text/pop",
                Some(&key),
                json!({ "models": [MODEL] }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_error(
        &server
            .post("/register", None, json!({ "username": "has#hash" }))
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidUsername",
    );
    server.stop().await;
}

#[tokio::test]
async fn dry_run_estimates_without_queueing() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "x".repeat(4000), "params": { "n": 2, "max_length": 512 },
                    "models": ["aphrodite/Llama-3-70B"], "dry_run": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Two generations of 512 tokens by a 70B model with a long prompt: 2 × 664.31.
    assert_eq!(milli(&body["kudos"]), 1_328_620);
    assert!(body.get("id").is_none());
    let (_, performance) = server.get("/status/performance", None).await;
    assert_eq!(performance["queued_text_requests"], 0);
    server.stop().await;
}

#[tokio::test]
async fn concurrency_limit_answers_429() {
    let server = TestServer::start().await;
    let (_, key) = server.register("greedy").await;
    let body = json!({ "prompt": "x", "params": { "n": 20 } });
    let (status, _) = server
        .post("/generate/text/async", Some(&key), body.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_error(
        &server.post("/generate/text/async", Some(&key), body).await,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyPrompts",
    );
    server.stop().await;
}

#[tokio::test]
async fn cancel_keeps_what_is_done_and_aborts_the_rest() {
    let server = TestServer::start().await;
    let (_, alice_key) = server.register("alice").await;
    let (_, bob_key) = server.register("bob").await;
    let (_, body) = server
        .post(
            "/generate/text/async",
            Some(&alice_key),
            json!({ "prompt": "p", "params": { "n": 3 } }),
        )
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let first = pop(&server, &bob_key, "w").await;
    let (status, _) = submit(&server, &bob_key, first["id"].as_str().unwrap(), "done").await;
    assert_eq!(status, StatusCode::OK);
    let second = pop(&server, &bob_key, "w").await;
    let (status, cancelled) = server
        .call(
            Method::DELETE,
            &format!("/generate/text/status/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["done"], true);
    assert_eq!(cancelled["finished"], 1);
    assert_eq!(cancelled["generations"].as_array().unwrap().len(), 1);
    assert_error(
        &submit(&server, &bob_key, second["id"].as_str().unwrap(), "late").await,
        StatusCode::BAD_REQUEST,
        "AbortedGen",
    );
    server.stop().await;
}

#[tokio::test]
async fn workers_ownership_and_maintenance() {
    let server = TestServer::start().await;
    let (bob, bob_key) = server.register("bob").await;
    let (_, eve_key) = server.register("eve").await;
    pop(&server, &bob_key, "bobs-worker").await;
    assert_error(
        &server
            .post(
                "/generate/text/pop",
                Some(&eve_key),
                pop_body("bobs-worker"),
            )
            .await,
        StatusCode::FORBIDDEN,
        "WrongCredentials",
    );
    let (status, list) = server.get("/workers?type=text", None).await;
    assert_eq!(status, StatusCode::OK);
    let worker = &list[0];
    assert_eq!(worker["name"], "bobs-worker");
    assert_eq!(worker["type"], "text");
    assert_eq!(worker["online"], true);
    assert_eq!(worker["models"], json!([MODEL]));
    let id = worker["id"].as_str().unwrap().to_owned();
    let (_, by_name) = server.get("/workers/name/bobs-worker", None).await;
    assert_eq!(by_name["id"], id.as_str());
    let (_, own_view) = server.get(&format!("/workers/{id}"), Some(&bob_key)).await;
    assert_eq!(own_view["owner"], format!("bob#{bob}"));
    // Others do not see the owner, until the owner makes their workers public.
    assert!(by_name.get("owner").is_none(), "{by_name}");
    let (_, eve_view) = server.get(&format!("/workers/{id}"), Some(&eve_key)).await;
    assert!(eve_view.get("owner").is_none(), "{eve_view}");
    let (status, public) = server
        .call(
            Method::PUT,
            &format!("/users/{bob}"),
            Some(&bob_key),
            Some(json!({ "public_workers": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public, json!({ "public_workers": true }));
    let (_, eve_view) = server.get(&format!("/workers/{id}"), Some(&eve_key)).await;
    assert_eq!(eve_view["owner"], format!("bob#{bob}"));
    assert!(eve_view.get("maintenance_msg").is_none(), "{eve_view}");
    // Nobody else sets it for bob, and bob sets nothing else without being an admin.
    assert_error(
        &server
            .call(
                Method::PUT,
                &format!("/users/{bob}"),
                Some(&eve_key),
                Some(json!({ "public_workers": false })),
            )
            .await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    assert_error(
        &server.get("/workers/name/nobody", None).await,
        StatusCode::NOT_FOUND,
        "WorkerNotFound",
    );

    let path = format!("/workers/{id}");
    let put = |key: &str, body: Value| {
        let (key, path) = (key.to_owned(), path.clone());
        let server = &server;
        async move {
            server
                .call(Method::PUT, &path, Some(&key), Some(body))
                .await
        }
    };
    assert_error(
        &put(&eve_key, json!({ "maintenance": true })).await,
        StatusCode::FORBIDDEN,
        "WrongCredentials",
    );
    let (status, updated) = put(&bob_key, json!({ "maintenance": true, "info": "my GPU" })).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    // AI Horde's ModifyWorker shape: what changed.
    assert_eq!(updated, json!({ "maintenance": true, "info": "my GPU" }));
    let (_, shown) = server.get(&format!("/workers/{id}"), None).await;
    assert_eq!(shown["maintenance_mode"], true);
    assert_eq!(shown["info"], "my GPU");
    assert_error(
        &put(&bob_key, json!({})).await,
        StatusCode::BAD_REQUEST,
        "NoWorkerModSelected",
    );
    // Renames: taken names, blanks and hidden characters each say why.
    server
        .post("/generate/text/pop", Some(&bob_key), pop_body("bobs-other"))
        .await;
    assert_error(
        &put(&bob_key, json!({ "name": "bobs-other" })).await,
        StatusCode::BAD_REQUEST,
        "WorkerNameAlreadyExists",
    );
    let blank = put(&bob_key, json!({ "name": "   " })).await;
    assert_error(&blank, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(blank.1["message"].as_str().unwrap().contains("blank"));
    let hidden = put(&bob_key, json!({ "name": "bob\u{202e}s" })).await;
    assert_error(&hidden, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(hidden.1["message"]
        .as_str()
        .unwrap()
        .contains("bidirectional"));
    assert_error(
        &server
            .post(
                "/generate/text/pop",
                Some(&bob_key),
                pop_body("zero\u{200b}width"),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "ValidationError",
    );
    request(&server, Some(&eve_key), "eve's prompt").await;
    assert_error(
        &server
            .post(
                "/generate/text/pop",
                Some(&bob_key),
                pop_body("bobs-worker"),
            )
            .await,
        StatusCode::FORBIDDEN,
        "WorkerMaintenance",
    );
    // The owner's own requests are still served.
    let own = request(&server, Some(&bob_key), "bob's own prompt").await;
    let job = pop(&server, &bob_key, "bobs-worker").await;
    assert_eq!(job["payload"]["prompt"], "bob's own prompt");
    let _ = own;
    server.stop().await;
}

#[tokio::test]
async fn transfers_follow_the_rules_and_idempotency_keys() {
    let server = TestServer::start().await;
    let (admin, admin_key) = server.admin("admin").await;
    assert_eq!(admin, 1);
    let (bob, bob_key) = server.register("bob").await;
    // Non-admins cannot grant kudos; admins can.
    assert_error(
        &server
            .call(
                Method::PUT,
                &format!("/users/{bob}"),
                Some(&bob_key),
                Some(json!({ "kudos": 100 })),
            )
            .await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    let (status, granted) = server
        .call(
            Method::PUT,
            &format!("/users/{admin}"),
            Some(&admin_key),
            Some(json!({ "kudos": 100 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    // AI Horde's ModifyUser shape: only what changed.
    assert_eq!(granted, json!({ "new_kudos": 100 }));
    assert_error(
        &server
            .call(
                Method::PUT,
                &format!("/users/{bob}"),
                Some(&admin_key),
                Some(json!({})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "NoUserModSelected",
    );

    let transfer = |amount: Value, to: String, key: Option<String>| {
        let mut request = server
            .client
            .post(format!("{}/kudos/transfer", server.base))
            .header("apikey", &admin_key)
            .json(&json!({ "username": to, "amount": amount }));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let bob_name = format!("bob#{bob}");
    assert_error(
        &transfer(json!(-5), bob_name.clone(), None).await,
        StatusCode::BAD_REQUEST,
        "NegativeKudosTransfer",
    );
    assert_error(
        &transfer(json!(0), bob_name.clone(), None).await,
        StatusCode::BAD_REQUEST,
        "InvalidKudosTransferAmount",
    );
    assert_error(
        &transfer(json!(1), format!("admin#{admin}"), None).await,
        StatusCode::BAD_REQUEST,
        "KudosTransferToSelf",
    );
    assert_error(
        &transfer(json!(1000), bob_name.clone(), None).await,
        StatusCode::BAD_REQUEST,
        "KudosTransferNotEnough",
    );
    assert_error(
        &transfer(json!(1), "ghost#99".into(), None).await,
        StatusCode::NOT_FOUND,
        "UserNotFound",
    );
    let key = Some("transfer-1".to_owned());
    let first = transfer(json!(12.5), bob_name.clone(), key.clone()).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(milli(&first.1["transferred"]), 12_500);
    let again = transfer(json!(12.5), bob_name.clone(), key.clone()).await;
    assert_eq!(again, first);
    // The same key with another amount is a conflict, not a silent success.
    assert_error(
        &transfer(json!(13), bob_name.clone(), key).await,
        StatusCode::CONFLICT,
        "IdempotencyKeyConflict",
    );
    // A key too long to keep is refused rather than ignored (a retry would pay twice).
    // So is an empty one (or only spaces): the client meant to send a key.
    for refused in ["k".repeat(201), String::new(), "   ".into()] {
        assert_error(
            &transfer(json!(1), bob_name.clone(), Some(refused)).await,
            StatusCode::BAD_REQUEST,
            "InvalidIdempotencyKey",
        );
    }
    let (_, bob_user) = server.get("/find_user", Some(&bob_key)).await;
    assert_eq!(milli(&bob_user["kudos"]), 12_500, "transferred once");
    assert_eq!(milli(&bob_user["kudos_details"]["received"]), 12_500);
    let (status, anon) = server
        .post(
            "/kudos/transfer",
            None,
            json!({ "username": bob_name, "amount": 1 }),
        )
        .await;
    assert_error(
        &(status, anon),
        StatusCode::BAD_REQUEST,
        "KudosTransferFromAnon",
    );

    let (_, users) = server.get("/users?sort=kudos", None).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], format!("admin#{admin}"));
    let (_, one) = server.get(&format!("/users/{bob}"), None).await;
    assert_eq!(one["username"], format!("bob#{bob}"));
    assert_error(
        &server.get("/users/12345", None).await,
        StatusCode::NOT_FOUND,
        "UserNotFound",
    );
    server.stop().await;
}

#[tokio::test]
async fn registration_can_be_disabled_and_is_rate_limited() {
    let closed = TestServer::start_with(|c| c.registration = false).await;
    assert_error(
        &closed
            .post("/register", None, json!({ "username": "x" }))
            .await,
        StatusCode::FORBIDDEN,
        "RegistrationDisabled",
    );
    closed.stop().await;
    let limited = TestServer::start_with(|c| c.registrations_per_minute = 2).await;
    limited.register("a").await;
    limited.register("b").await;
    assert_error(
        &limited
            .post("/register", None, json!({ "username": "c" }))
            .await,
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimited",
    );
    limited.stop().await;
}

#[tokio::test]
async fn status_endpoints_and_cors() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    pop(&server, &key, "w1").await;
    request(&server, None, "hello").await;
    let (_, heartbeat) = server.get("/status/heartbeat", None).await;
    assert_eq!(heartbeat["message"], "OK");
    for path in ["/status/models", "/status/models?type=text"] {
        let (status, models) = server.get(path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(models[0]["name"], MODEL);
        assert_eq!(models[0]["count"], 1);
        assert_eq!(models[0]["type"], "text");
    }
    let (_, performance) = server.get("/status/performance", None).await;
    assert_eq!(performance["queued_text_requests"], 1);
    assert_eq!(performance["text_worker_count"], 1);
    assert_eq!(performance["queued_tokens"], 80);

    let preflight = server
        .client
        .request(
            Method::OPTIONS,
            format!("{}/generate/text/async", server.base),
        )
        .header("Origin", "https://lite.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "apikey,client-agent,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("apikey") && allowed.contains("client-agent"));
    server.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let server = TestServer::start().await;
    let (_, alice_key) = server.register("alice").await;
    let (_, bob_key) = server.register("bob").await;
    let done = request(&server, Some(&alice_key), "first").await;
    let job = pop(&server, &bob_key, "w").await;
    let (_, reward) = submit(&server, &bob_key, job["id"].as_str().unwrap(), "answer").await;
    let processing = request(&server, Some(&alice_key), "second").await;
    let in_flight = pop(&server, &bob_key, "w").await;
    let waiting = request(&server, Some(&alice_key), "third").await;
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, alice_user) = server.get("/find_user", Some(&alice_key)).await;
    assert_eq!(milli(&alice_user["kudos"]), -milli(&reward["reward"]));
    let (_, status) = server
        .get(&format!("/generate/text/status/{done}"), None)
        .await;
    assert_eq!(status["generations"][0]["text"], "answer");
    let (_, status) = server
        .get(&format!("/generate/text/status/{processing}"), None)
        .await;
    assert_eq!(status["processing"], 1);
    let (_, status) = server
        .get(&format!("/generate/text/status/{waiting}"), None)
        .await;
    assert_eq!(status["waiting"], 1);
    // The job handed out before the restart can still be submitted.
    let (status, _) = submit(
        &server,
        &bob_key,
        in_flight["id"].as_str().unwrap(),
        "late but fine",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, worker) = server.get("/workers/name/w", None).await;
    assert_eq!(worker["requests_fulfilled"], 2);
    server.stop().await;
}

#[tokio::test]
async fn admins_set_trust_and_concurrency() {
    let server = TestServer::start().await;
    let (_, admin_key) = server.admin("admin").await;
    let (bob, bob_key) = server.register("bob").await;
    let (status, updated) = server
        .call(
            Method::PUT,
            &format!("/users/{bob}"),
            Some(&admin_key),
            Some(json!({ "trusted": true, "concurrency": 2 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["trusted"], true);
    assert_eq!(updated["concurrency"], 2);
    // A trusted owner's worker serves requests that want trusted workers.
    let (_, anon) = server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "trusted only", "trusted_workers": true, "models": [MODEL] }),
        )
        .await;
    let job = pop(&server, &bob_key, "trusted-worker").await;
    assert_eq!(job["payload"]["prompt"], "trusted only", "{anon}");
    // The new concurrency applies at once.
    let body = json!({ "prompt": "x", "params": { "n": 2 } });
    let (status, _) = server
        .post("/generate/text/async", Some(&bob_key), body.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_error(
        &server
            .post("/generate/text/async", Some(&bob_key), body)
            .await,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyPrompts",
    );
    assert_error(
        &server
            .call(
                Method::PUT,
                &format!("/users/{bob}"),
                Some(&admin_key),
                Some(json!({ "concurrency": 100_000 })),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "ValidationError",
    );
    // Policies are persisted through the core's events: a restart keeps them.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, me) = server.get("/find_user", Some(&bob_key)).await;
    assert_eq!(me["trusted"], true, "{me}");
    assert_eq!(me["concurrency"], 2, "{me}");
    server.stop().await;
}

#[tokio::test]
async fn the_timer_returns_timed_out_jobs_to_the_queue() {
    // A manual clock: the driver's timer must wake when the clock passes the job's deadline,
    // with no sleeping in the test and no polling in the server.
    let (clock, hands) = Clock::manual(Timestamp::from_secs(1_800_000_000));
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_clock(dir, clock, |_| {}).await;
    let (_, key) = server.register("slow").await;
    let id = request(&server, None, "will time out").await;
    let job = pop(&server, &key, "slow-worker").await;
    let ttl = job["ttl"].as_u64().unwrap();
    let path = format!("/generate/text/status/{id}");
    let status_of = || server.get(&path, None);
    // Just before the deadline nothing happens.
    hands.advance(Duration::from_secs(ttl - 1));
    tokio::task::yield_now().await;
    let (_, status) = status_of().await;
    assert_eq!(status["processing"], 1, "{status}");
    // Past it the timer returns the job to the queue.
    hands.advance(Duration::from_secs(2));
    let mut status = Value::Null;
    for _ in 0..200 {
        status = status_of().await.1;
        if status["restarted"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status["restarted"], 1, "{status}");
    assert_eq!(status["waiting"], 1, "{status}");
    assert_error(
        &submit(&server, &key, job["id"].as_str().unwrap(), "too late").await,
        StatusCode::BAD_REQUEST,
        "AbortedGen",
    );
    // A request that makes no progress expires after 20 minutes of the clock.
    hands.advance(Duration::from_secs(20 * 60 + 1));
    for _ in 0..200 {
        status = status_of().await.1;
        if status["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status["done"], true, "{status}");
    assert_eq!(status["faulted"], true, "{status}");
    server.stop().await;
}

#[tokio::test]
async fn inputs_over_the_limits_are_refused_with_the_limit_named() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    let many = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
    // 90,000 model names: refused at once, naming the limit.
    for count in [201, 90_000] {
        let got = server
            .post(
                "/generate/text/async",
                None,
                json!({ "prompt": "x", "models": many(count) }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
        assert!(
            got.1["message"].as_str().unwrap().contains("limit of 200"),
            "{}",
            got.1
        );
        assert!(got.1["errors"]["models"].is_string(), "{}", got.1);
        let got = server
            .post(
                "/generate/text/pop",
                Some(&key),
                json!({ "name": "w", "models": many(count) }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
        assert!(got.1["message"].as_str().unwrap().contains("limit of 200"));
    }
    let got = server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "x".repeat(400_001) }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(got.1["errors"]["prompt"].is_string(), "{}", got.1);
    // At the limit, with duplicates, it is accepted and served.
    let mut models = many(198);
    models.push(MODEL.into());
    models.push(MODEL.into());
    let (status, body) = server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "at the limit", "models": models }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = pop(&server, &key, "limit-worker").await;
    assert_eq!(job["payload"]["prompt"], "at the limit");
    server.stop().await;
}

#[tokio::test]
async fn huge_admin_grants_survive_a_restart() {
    // Balances near the i64 limit whose 64-bit running sum overflows in some orders.
    let server = TestServer::start().await;
    let (_, admin_key) = server.admin("admin").await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(server.register(name).await.0);
    }
    for (id, kudos) in ids.iter().zip([8.9e15, -8.9e15, 8.9e15]) {
        let (status, body) = server
            .call(
                Method::PUT,
                &format!("/users/{id}"),
                Some(&admin_key),
                Some(json!({ "kudos": kudos })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, user) = server.get(&format!("/users/{}", ids[0]), None).await;
    assert_eq!(user["kudos"].as_f64(), Some(8.9e15), "{user}");
    server.stop().await;
}

/// A small deterministic generator of JSON values, biased towards the API's field names.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn value(&mut self, depth: u32) -> Value {
        const FIELDS: [&str; 16] = [
            "prompt",
            "params",
            "n",
            "max_length",
            "max_context_length",
            "models",
            "workers",
            "name",
            "id",
            "generation",
            "state",
            "amount",
            "username",
            "threads",
            "nsfw",
            "priority_usernames",
        ];
        match self.next() % if depth > 2 { 7 } else { 9 } {
            0 => Value::Null,
            1 => json!(self.next().is_multiple_of(2)),
            2 => json!((self.next() % 5000) as i64 - 100),
            3 => json!(f64::from((self.next() % 1000) as u32) / 7.0 - 50.0),
            4 => json!(u64::MAX),
            5 => json!(
                [
                    "ok",
                    "faulted",
                    "censored",
                    "",
                    "x#1",
                    "00000000-0000-0000-0000-000000000001"
                ][(self.next() % 6) as usize]
            ),
            6 => json!("é".repeat((self.next() % 5) as usize)),
            7 => Value::Array(
                (0..self.next() % 4)
                    .map(|_| self.value(depth + 1))
                    .collect(),
            ),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.next() % 6 {
                    let field = FIELDS[(self.next() % FIELDS.len() as u64) as usize];
                    map.insert(field.to_owned(), self.value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_server_error() {
    let server = TestServer::start().await;
    let (_, key) = server.register("fuzzer").await;
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let endpoints = [
        (Method::POST, "/generate/text/async"),
        (Method::POST, "/generate/text/pop"),
        (Method::POST, "/generate/text/submit"),
        (Method::POST, "/kudos/transfer"),
        (Method::POST, "/register"),
        (Method::PUT, "/users/1"),
    ];
    for round in 0..150 {
        for (method, path) in &endpoints {
            let body = noise.value(0);
            let key = if round % 3 == 0 {
                None
            } else {
                Some(key.as_str())
            };
            let (status, answer) = server
                .call(method.clone(), path, key, Some(body.clone()))
                .await;
            assert!(
                status.as_u16() < 500,
                "{method} {path} {body} → {status} {answer}"
            );
            if !status.is_success() {
                assert!(answer["rc"].is_string(), "{path} {body} → {answer}");
            }
        }
    }
    // The server is still healthy.
    let (status, _) = server.get("/status/heartbeat", None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn web_pages_show_the_horde_and_register_people() {
    let server = TestServer::start().await;
    let root = server.base.trim_end_matches("/api/v2").to_owned();
    let (_, key) = server.register("volunteer").await;
    pop(&server, &key, "gpu<1>").await;
    request(&server, None, "waiting").await;

    let home = server.client.get(format!("{root}/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = home.text().await.unwrap();
    assert!(html.contains("<th>Workers online</th><td>1</td>"), "{html}");
    assert!(
        html.contains("<th>Generations waiting</th><td>1</td>"),
        "{html}"
    );
    assert!(html.contains(MODEL), "{html}");

    let form = server
        .client
        .get(format!("{root}/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("<form method=\"post\""));

    let registered = server
        .client
        .post(format!("{root}/register"))
        .form(&[("username", "<b>mallory</b>")])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let html = registered.text().await.unwrap();
    assert!(
        html.contains("&lt;b&gt;mallory&lt;/b&gt;#"),
        "escaped: {html}"
    );
    assert!(!html.contains("<b>mallory"));
    let key = html
        .split("<code id=\"api-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 22);
    let (status, user) = server.get("/find_user", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        user["username"].as_str().unwrap().split('#').next(),
        Some("<b>mallory</b>")
    );

    let refused = server
        .client
        .post(format!("{root}/register"))
        .form(&[("username", "a#b")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("class=\"error\""));
    server.stop().await;
}

/// `admins` names users who exist when the node starts, alias exactly as registered: a name
/// registered later (after filler registrations reach its id), or spelt in another case, is
/// never an administrator.
#[tokio::test]
async fn an_admin_entry_names_an_existing_user_exactly() {
    let server = TestServer::start_with(|config| {
        config.admins = vec!["root#1".into(), "Boss#2".into()];
    })
    .await;
    let (id, squatter) = server.register("root").await;
    assert_eq!(id, 1);
    let (_, boss) = server.register("boss").await;
    for key in [&squatter, &boss] {
        assert_error(
            &grant(&server, key).await,
            StatusCode::FORBIDDEN,
            "NotAdmin",
        );
    }
    // Restarted with both names existing: the exact one is an administrator, the other not.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |config| {
        config.admins = vec!["root#1".into(), "Boss#2".into()];
    })
    .await;
    let (status, _) = grant(&server, &squatter).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &grant(&server, &boss).await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    server.stop().await;
}

/// Sets user 1's kudos with `key`.
async fn grant(server: &TestServer, key: &str) -> (StatusCode, Value) {
    server
        .call(
            Method::PUT,
            "/users/1",
            Some(key),
            Some(json!({ "kudos": 1000 })),
        )
        .await
}

#[tokio::test]
async fn abuse_of_workers_is_refused_over_http() {
    let server = TestServer::start().await;
    let (_, key) = server.register("farmer").await;
    // Malformed or unknown priority usernames are named, not silently dropped.
    for entry in ["kid", "nobody#999"] {
        let mut body = pop_body("w1");
        body["priority_usernames"] = json!([entry]);
        let got = server.post("/generate/text/pop", Some(&key), body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "InvalidPriorityUsername");
        assert!(
            got.1["message"].as_str().unwrap().contains(entry),
            "{}",
            got.1
        );
    }
    let (friend, _) = server.register("friend").await;
    let mut body = pop_body("w1");
    body["priority_usernames"] = json!([format!("friend#{friend}")]);
    let (status, _) = server.post("/generate/text/pop", Some(&key), body).await;
    assert_eq!(status, StatusCode::OK);
    // An untrusted owner runs at most 3 workers (the attack made 3,000 in 6 s).
    for name in ["w2", "w3"] {
        let (status, _) = server
            .post("/generate/text/pop", Some(&key), pop_body(name))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for attempt in 0..20 {
        let got = server
            .post(
                "/generate/text/pop",
                Some(&key),
                pop_body(&format!("extra-{attempt}")),
            )
            .await;
        assert_error(&got, StatusCode::FORBIDDEN, "TooManyWorkers");
    }
    let (_, me) = server.get("/find_user", Some(&key)).await;
    assert_eq!(me["worker_count"], 3);
    server.stop().await;
}

#[tokio::test]
async fn a_workers_model_name_does_not_set_its_pay() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra-models.toml");
    std::fs::write(&extra, "").unwrap();
    let path = extra.clone();
    let server = TestServer::start_in(dir, move |config| {
        config.model_reference = Some(path);
    })
    .await;
    let (_, admin_key) = server.admin("admin").await;
    let (_, farmer) = server.register("farmer").await;
    let (victim_id, victim) = server.register("victim").await;
    let economy = horde_core::EconomyConfig::default();
    let prompt = "x".repeat(400);
    let text = "y".repeat(320); // 80 tokens
                                // One generation of `model` for the victim, served by the farmer: (estimate, reward).
    let serve = |model: &'static str, worker: &'static str| {
        let (server, prompt, text, farmer, victim) = (&server, &prompt, &text, &farmer, &victim);
        async move {
            let (status, queued) = server
                .post(
                    "/generate/text/async",
                    Some(victim),
                    json!({ "prompt": prompt, "models": [model] }),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
            let mut body = pop_body(worker);
            body["models"] = json!([model]);
            let (_, job) = server.post("/generate/text/pop", Some(farmer), body).await;
            let (status, reward) = submit(server, farmer, job["id"].as_str().unwrap(), text).await;
            assert_eq!(status, StatusCode::OK, "{reward}");
            (milli(&queued["kudos"]), milli(&reward["reward"]))
        }
    };
    let paid_as = |size: f64| economy.generation_reward(size, 80, 80).milli();

    // The attack: a made-up name claiming 99,999B is paid as an unknown model, 1B.
    let (estimate, reward) = serve("evil/Totally-Real-99999B", "evil").await;
    assert_eq!(reward, paid_as(1.0));
    assert_eq!(estimate, paid_as(1.0));
    // A model the reference knows is paid by its real size, whatever prefix or quantisation.
    let (_, reward) = serve("koboldcpp/Meta-Llama-3-8B-Instruct.Q4_K_M", "honest").await;
    assert_eq!(reward, paid_as(8.0));
    // The requester paid exactly what was earned.
    let (_, victim_user) = server.get(&format!("/users/{victim_id}"), None).await;
    assert_eq!(milli(&victim_user["kudos"]), -(paid_as(1.0) + paid_as(8.0)));

    // The operator adds a model and reloads without a restart (administrators only).
    std::fs::write(
        &extra,
        "[[model]]\nname = \"my-custom-model\"\nparams_b = 13.0\n",
    )
    .unwrap();
    let reload = |key: String| {
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    "/admin/model_reference/reload",
                    Some(&key),
                    None,
                )
                .await
        }
    };
    assert_error(
        &reload(farmer.clone()).await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    let (status, reloaded) = reload(admin_key.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reloaded}");
    assert!(reloaded["models"].as_u64().unwrap() > 80);
    let (_, reward) = serve("my-custom-model", "custom").await;
    assert_eq!(reward, paid_as(13.0));
    // A broken file is refused, and the reference in use stays.
    std::fs::write(&extra, "[[model]]\nname = \"huge\"\nparams_b = 99999.0\n").unwrap();
    let refused = reload(admin_key.clone()).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(refused.1["message"]
        .as_str()
        .unwrap()
        .contains("impossible size"));
    let (_, reward) = serve("my-custom-model", "custom").await;
    assert_eq!(reward, paid_as(13.0));
    server.stop().await;
}

#[tokio::test]
async fn instant_garbage_is_not_paid_and_gets_its_owner_flagged() {
    // The speed rule on, with a clock the test moves: a real worker takes time to generate.
    let (clock, hands) = Clock::manual(Timestamp::from_secs(1_800_000_000));
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_clock(dir, clock, |config| {
        config.horde.integrity = horde_core::Integrity {
            escrow_untrusted: false,
            ..horde_core::Integrity::default()
        };
    })
    .await;
    let (_, admin_key) = server.admin("admin").await;
    let (_, farmer) = server.register("farmer").await;
    let (_, honest) = server.register("honest").await;
    let (victim_id, victim) = server.register("victim").await;
    let garbage = "g".repeat(2048);
    for _ in 0..3 {
        request(&server, Some(&victim), "write me a story").await;
        let job = pop(&server, &farmer, "instant").await;
        // The moment it pops: 2,048 characters of 8B output in no time.
        let (status, reward) =
            submit(&server, &farmer, job["id"].as_str().unwrap(), &garbage).await;
        assert_eq!(status, StatusCode::OK, "{reward}");
        assert_eq!(milli(&reward["reward"]), 0);
        // An honest worker serves it again, at a real speed (80 tokens in 2 s).
        let job = pop(&server, &honest, "real").await;
        hands.advance(Duration::from_secs(2));
        let (_, reward) = submit(
            &server,
            &honest,
            job["id"].as_str().unwrap(),
            &"y".repeat(320),
        )
        .await;
        assert!(milli(&reward["reward"]) > 0, "{reward}");
    }
    let (_, farmer_user) = server.get("/find_user", Some(&farmer)).await;
    assert_eq!(milli(&farmer_user["kudos"]), 0, "the farmer earned nothing");
    let (_, honest_user) = server.get("/find_user", Some(&honest)).await;
    let (_, victim_user) = server.get(&format!("/users/{victim_id}"), None).await;
    assert_eq!(milli(&victim_user["kudos"]), -milli(&honest_user["kudos"]));
    // Three strikes: the worker is paused and its owner flagged.
    let (_, worker) = server.get("/workers/name/instant", Some(&farmer)).await;
    assert_eq!(worker["maintenance_mode"], true);
    assert!(worker["maintenance_msg"]
        .as_str()
        .unwrap()
        .contains("faster"));
    assert_error(
        &server
            .post("/generate/text/pop", Some(&farmer), pop_body("fresh"))
            .await,
        StatusCode::FORBIDDEN,
        "WorkerFlaggedMaintenance",
    );
    assert_error(
        &server
            .post(
                "/kudos/transfer",
                Some(&farmer),
                json!({ "username": format!("victim#{victim_id}"), "amount": 1 }),
            )
            .await,
        StatusCode::FORBIDDEN,
        "SourceAccountFlagged",
    );
    // An administrator reviews and lifts the flag.
    let (status, answer) = server
        .call(
            Method::PUT,
            "/users/2",
            Some(&admin_key),
            Some(json!({ "flagged": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "flagged": false }));
    let (status, _) = server
        .post("/generate/text/pop", Some(&farmer), pop_body("fresh"))
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn under_congestion_large_requests_need_kudos_upfront() {
    let server = TestServer::start().await;
    let (_, first) = server.register("first").await;
    let (_, throwaway) = server.register("throwaway").await;
    let large = json!({ "prompt": "a long story", "params": { "n": 4, "max_length": 1024, "max_context_length": 2048 } });
    // No worker is online: the first large request makes a backlog nobody can serve soon.
    let (status, _) = server
        .post("/generate/text/async", Some(&first), large.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let refused = server
        .post("/generate/text/async", Some(&throwaway), large.clone())
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "KudosUpfront");
    assert!(refused.1["message"].as_str().unwrap().contains("upfront"));
    let refused = server.post("/generate/text/async", None, large).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "KudosUpfront");
    // Small requests still pass, and balances may still go negative.
    let (status, _) = server
        .post(
            "/generate/text/async",
            Some(&throwaway),
            json!({ "prompt": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.stop().await;
}

#[tokio::test]
async fn an_untrusted_farmer_cannot_send_on_what_is_held_in_escrow() {
    let server = TestServer::start_with(|config| {
        config.horde.integrity.escrow_untrusted = true;
    })
    .await;
    let (_, farmer) = server.register("farmer").await;
    let (accomplice, _) = server.register("accomplice").await;
    let mut earned = 0;
    for _ in 0..5 {
        request(&server, None, &"p".repeat(400)).await;
        let job = pop(&server, &farmer, "farm").await;
        let (_, reward) = submit(
            &server,
            &farmer,
            job["id"].as_str().unwrap(),
            &"y".repeat(320),
        )
        .await;
        earned += milli(&reward["reward"]);
    }
    let (_, me) = server.get("/find_user", Some(&farmer)).await;
    let held = milli(&me["kudos_details"]["evaluating"]);
    // Half of each reward (rounded down to a thousandth) is held.
    assert!(held > 0 && held <= earned / 2, "{me}");
    assert_eq!(milli(&me["kudos"]) + held, earned);
    assert_eq!(milli(&me["kudos_details"]["accumulated"]), earned);
    // The attack's last step, sending everything on at once, moves only the half paid out.
    let all =
        json!({ "username": format!("accomplice#{accomplice}"), "amount": earned as f64 / 1000.0 });
    let refused = server.post("/kudos/transfer", Some(&farmer), all).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "KudosTransferNotEnough");
    server.stop().await;
}
