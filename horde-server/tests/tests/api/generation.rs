//! Generations end to end: request, pop, submit, status, cancel, the timer, a restart.

use super::*;

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

    // Per model, in AI Horde's shape, and kept across a restart.
    let one = json!({ MODEL: 1 });
    let (_, models) = server.get("/stats/text/models", None).await;
    assert_eq!(models, json!({ "day": one, "month": one, "total": one }));
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, again) = server.get("/stats/text/models", None).await;
    assert_eq!(again, models);
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
