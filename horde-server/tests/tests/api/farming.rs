//! The farming attacks of the second integrity round, performed over HTTP with the default
//! rules (a manual clock where time matters): each one fails or is bounded. The kudos per hour
//! they earn are printed (`cargo test -p horde-server --test tests farming -- --nocapture`)
//! for docs/economy.md.

use std::sync::Arc;

use horde_core::{EconomyConfig, HordeConfig};
use horde_server::clock::ManualClock;

use super::*;

/// The model the farmers claim: in the reference, 405B.
const BIG: &str = "Meta-Llama-3.1-405B-Instruct";

/// A server with the default rules of the horde (the tests' relaxations undone) and a clock
/// the test moves; `tweak` adjusts the rules.
async fn strict(tweak: impl FnOnce(&mut HordeConfig)) -> (TestServer, Arc<ManualClock>) {
    let (clock, hands) = Clock::manual(Timestamp::from_secs(1_800_000_000));
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_clock(dir, clock, |config| {
        config.horde = HordeConfig::default();
        tweak(&mut config.horde);
    })
    .await;
    (server, hands)
}

/// A pop of worker `name` serving `model` with `threads`, claiming the largest context.
fn claim(name: &str, model: &str, threads: u32) -> Value {
    let mut body = pop_body(name);
    body["models"] = json!([model]);
    body["max_context_length"] = json!(131_072);
    body["threads"] = json!(threads);
    body
}

/// Queues a request of `key` for `model`; its id.
async fn queue(
    server: &TestServer,
    key: &str,
    model: &str,
    prompt: &str,
    max_length: u32,
) -> String {
    let (status, body) = server
        .post(
            "/generate/text/async",
            Some(key),
            json!({ "prompt": prompt, "models": [model], "params": { "max_length": max_length } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Pops with `body`; the job's id, if one was handed out.
async fn take(server: &TestServer, key: &str, body: &Value) -> Option<String> {
    let (status, answer) = server
        .post("/generate/text/pop", Some(key), body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["id"].as_str().map(str::to_owned)
}

async fn details(server: &TestServer, key: &str) -> Value {
    let (status, user) = server.get("/find_user", Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    user
}

/// What `user` holds in all: balance plus escrow.
fn earned(user: &Value) -> i64 {
    milli(&user["kudos"]) + milli(&user["kudos_details"]["evaluating"])
}

#[tokio::test]
async fn uptime_is_paid_for_shown_work_not_for_claims() {
    let (server, hands) = strict(|_| {}).await;
    let (_, farmer) = server.register("farmer").await;
    let (_, victim) = server.register("victim").await;
    let names = ["claim-1", "claim-2", "claim-3"];
    // Each worker serves one 16-token job to its own owner as its "proof", then only checks in.
    for name in names {
        queue(&server, &farmer, BIG, "Tell me a story.", 16).await;
        let job = take(&server, &farmer, &claim(name, BIG, 1)).await.unwrap();
        hands.advance(Duration::from_secs(1));
        let (status, _) = submit(&server, &farmer, &job, &horde_testkit::prose(64)).await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..60 {
        hands.advance(Duration::from_secs(60));
        for name in names {
            assert!(take(&server, &farmer, &claim(name, BIG, 1)).await.is_none());
        }
    }
    let user = details(&server, &farmer).await;
    let per_hour = earned(&user);
    eprintln!("uptime from claims, self-served proof: {per_hour} milli-kudos an hour (3 workers)");
    assert_eq!(per_hour, 0, "{user}");
    // Real work for another user (a 400-character prompt: 100 tokens) proves the worker; its
    // uptime is paid for the context that work used, not the 131,072 it claims.
    queue(&server, &victim, BIG, &"x".repeat(400), 80).await;
    let job = take(&server, &farmer, &claim("claim-1", BIG, 1))
        .await
        .unwrap();
    hands.advance(Duration::from_secs(10));
    submit(&server, &farmer, &job, &horde_testkit::prose(320)).await;
    let before = milli(&details(&server, &farmer).await["kudos_details"]["uptime"]);
    for _ in 0..60 {
        hands.advance(Duration::from_secs(60));
        take(&server, &farmer, &claim("claim-1", BIG, 1)).await;
    }
    let uptime = milli(&details(&server, &farmer).await["kudos_details"]["uptime"]) - before;
    let economy = EconomyConfig::default();
    let shown = economy.uptime_reward(405.0, 100).milli();
    let claimed = economy.uptime_reward(405.0, 131_072).milli();
    eprintln!(
        "uptime after real work: {uptime} milli-kudos an hour for one worker (as claimed: {})",
        6 * claimed
    );
    assert_eq!(uptime, 6 * shown);
    assert!(claimed > 70 * shown);
    server.stop().await;
}

#[tokio::test]
async fn a_worker_holds_only_its_threads_and_a_griefer_is_paused() {
    let (server, hands) = strict(|_| {}).await;
    let (_, griefer) = server.register("griefer").await;
    let mut victims = Vec::new();
    for i in 0..10 {
        let (_, key) = server.register(&format!("victim{i}")).await;
        let id = queue(&server, &key, MODEL, "Write me a poem.", 80).await;
        victims.push((key, id));
    }
    // It declares one thread and pops again and again: it never holds more than one job, and
    // each pop gives up the one it held (back to the queue, as a failure).
    let body = claim("grief", MODEL, 1);
    let mut held = None;
    let mut failures = 0;
    for round in 0..10 {
        held = take(&server, &griefer, &body).await;
        assert!(held.is_some());
        failures += usize::from(round > 0);
    }
    let mut processing = 0;
    for (_, id) in &victims {
        let (_, status) = server
            .get(&format!("/generate/text/status/{id}"), None)
            .await;
        processing += status["processing"].as_u64().unwrap();
    }
    assert_eq!(processing, 1, "one thread, one job");
    // Then it faults everything it takes, as fast as it can.
    let mut faulted = 0;
    while let Some(job) = held.take() {
        let (status, answer) = server
            .post(
                "/generate/text/submit",
                Some(&griefer),
                json!({ "id": job, "generation": "", "state": "faulted" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        faulted += 1;
        failures += 1;
        hands.advance(Duration::from_millis(100));
        let (status, answer) = server
            .post("/generate/text/pop", Some(&griefer), body.clone())
            .await;
        if status != StatusCode::OK {
            assert_error(
                &(status, answer),
                StatusCode::FORBIDDEN,
                "WorkerFlaggedMaintenance",
            );
            break;
        }
        held = answer["id"].as_str().map(str::to_owned);
    }
    assert_eq!(failures, 15, "paused after 3 suspicions of 5 failures");
    // Four failures fault a request: at most 3 of the 10 were lost, and nothing was paid.
    let mut lost = 0;
    for (key, id) in &victims {
        assert_eq!(milli(&details(&server, key).await["kudos"]), 0);
        let (_, status) = server
            .get(&format!("/generate/text/status/{id}"), None)
            .await;
        lost += usize::from(status["faulted"] == true);
    }
    eprintln!(
        "griefer: {failures} failures ({faulted} faulted submits), {lost} of 10 requests lost"
    );
    assert!(lost <= 3, "{lost}");
    let (_, worker) = server.get("/workers/name/grief", Some(&griefer)).await;
    assert!(worker["maintenance_msg"]
        .as_str()
        .unwrap()
        .contains("failed or timed out"));
    server.stop().await;
}

#[tokio::test]
async fn junk_pays_nothing_and_fluent_junk_is_caught_by_spot_checks() {
    let (server, hands) = strict(|horde| {
        horde.spot_checks.rate_untrusted = 1.0;
        horde.integrity.escrow_untrusted = true;
    })
    .await;
    let (_, admin) = server.admin("admin").await;
    let (_, farmer) = server.register("farmer").await;
    let (_, throwaway) = server.register("throwaway").await;
    let (peer_id, peer) = server.register("peer").await;
    // Degenerate filler just under the 405B speed limit: delivered, paid nothing.
    queue(&server, &throwaway, BIG, "Tell me a story.", 512).await;
    let job = take(&server, &farmer, &claim("junk", BIG, 1))
        .await
        .unwrap();
    hands.advance(Duration::from_secs(11));
    let (_, reward) = submit(&server, &farmer, &job, &".".repeat(2048)).await;
    assert_eq!(milli(&reward["reward"]), 0, "{reward}");
    assert_eq!(reward["unpaid"], "Degenerate", "{reward}");
    assert_eq!(milli(&details(&server, &throwaway).await["kudos"]), 0);

    // Fluent junk: a trusted worker of another owner serves the same model, so the horde
    // checks the farmer's answers against it.
    let (status, answer) = server
        .call(
            Method::PUT,
            &format!("/users/{peer_id}"),
            Some(&admin),
            Some(json!({ "trusted": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(take(&server, &peer, &claim("trusted", BIG, 1))
        .await
        .is_none());
    let reference_answer = "the boat appeared on the horizon, small and grey, and the keeper \
        watched it for an hour before he understood that it was coming to him.";
    let mut checks = 0;
    loop {
        let (status, answer) = server
            .post("/generate/text/pop", Some(&farmer), claim("fluent", BIG, 1))
            .await;
        if status == StatusCode::FORBIDDEN {
            assert_error(
                &(status, answer),
                StatusCode::FORBIDDEN,
                "WorkerFlaggedMaintenance",
            );
            break;
        }
        let job = answer["id"]
            .as_str()
            .unwrap_or_else(|| panic!("after {checks} checks: {answer}"))
            .to_owned();
        checks += 1;
        hands.advance(Duration::from_secs(5));
        let (_, reward) = submit(
            &server,
            &farmer,
            &job,
            "Stock markets rallied on Tuesday as investors welcomed new figures on trade.",
        )
        .await;
        assert!(milli(&reward["reward"]) > 0, "checks pay like any job");
        // The trusted worker answers the same prompt (once; its answer is kept).
        if let Some(job) = take(&server, &peer, &claim("trusted", BIG, 1)).await {
            hands.advance(Duration::from_secs(5));
            let (_, reward) = submit(&server, &peer, &job, reference_answer).await;
            assert!(milli(&reward["reward"]) > 0, "{reward}");
        }
        assert!(checks <= 3, "caught within three checks");
    }
    assert_eq!(checks, 3);
    let user = details(&server, &farmer).await;
    assert_eq!(
        milli(&user["kudos_details"]["evaluating"]),
        0,
        "escrow forfeited"
    );
    eprintln!(
        "fluent junk as 405B: caught after {checks} checks; the farmer keeps {} milli-kudos",
        earned(&user)
    );
    assert!(earned(&user) <= 0, "{user}");
    let (_, worker) = server.get("/workers/name/fluent", Some(&farmer)).await;
    assert!(worker["maintenance_msg"]
        .as_str()
        .unwrap()
        .contains("check prompt"));
    // The honest peer was never suspected.
    let (_, trusted) = server.get("/workers/name/trusted", Some(&peer)).await;
    assert_eq!(trusted["maintenance_mode"], false);
    server.stop().await;
}

#[tokio::test]
async fn claims_neither_switch_off_nor_exempt_from_kudos_upfront() {
    let (server, hands) = strict(|_| {}).await;
    let (_, first) = server.register("first").await;
    let (_, farmer) = server.register("farmer").await;
    let (_, throwaway) = server.register("throwaway").await;
    let large = json!({ "prompt": "a long story", "params": { "n": 4, "max_length": 1024, "max_context_length": 2048 } });
    // An idle worker claiming 50 threads of a made-up model: it adds no more capacity than
    // one thread at the assumed 10 tokens/s (6,000 tokens in ten minutes), and exempts no one.
    let mut idle = claim("idle", "made-up/Model-1B", 50);
    idle["priority_usernames"] = json!(["throwaway#3"]);
    take(&server, &farmer, &idle).await;
    hands.advance(Duration::from_secs(1));
    // A backlog of 8,192 tokens: congested.
    for _ in 0..2 {
        let (status, body) = server
            .post("/generate/text/async", Some(&first), large.clone())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    for key in [&farmer, &throwaway, &"0000000000".to_owned()] {
        let refused = server
            .post("/generate/text/async", Some(key), large.clone())
            .await;
        assert_error(&refused, StatusCode::FORBIDDEN, "KudosUpfront");
    }
    server.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_the_anonymous_pool() {
    let server = TestServer::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.horde.integrity.upfront_queue_minutes = 0;
    })
    .await;
    let ask = |from: &'static str, n: u32| {
        let request = server
            .client
            .post(format!("{}/generate/text/async", server.base))
            .header("apikey", "0000000000")
            .header("X-Forwarded-For", from)
            .json(&json!({ "prompt": "Hello", "params": { "n": n } }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ask("203.0.113.7", 10).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let refused = ask("203.0.113.7", 10).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "TooManyPrompts");
    assert!(refused.1["message"].as_str().unwrap().contains("share"));
    // Everyone else still gets in.
    for from in ["198.51.100.1", "198.51.100.2"] {
        let (status, body) = ask(from, 10).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_rich_cannot_hold_a_newcomer_past_the_bound() {
    let (server, hands) = strict(|horde| {
        horde.integrity.upfront_queue_minutes = 0;
    })
    .await;
    let (_, admin) = server.admin("admin").await;
    let (rich_id, rich) = server.register("rich").await;
    let (_, newcomer) = server.register("newcomer").await;
    let (_, volunteer) = server.register("volunteer").await;
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/users/{rich_id}"),
            Some(&admin),
            Some(json!({ "kudos": 5000 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The rich keep 29 requests waiting and add one as each is served; one worker serves one
    // job every 20 s.
    for _ in 0..29 {
        queue(&server, &rich, MODEL, "Rich man's story", 80).await;
    }
    queue(&server, &newcomer, MODEL, "A newcomer's story", 80).await;
    let mut served_at = Vec::new();
    for step in 1..=60u64 {
        // Refused (429) while the rich hold 30 open: they add one as soon as they may.
        server
            .post(
                "/generate/text/async",
                Some(&rich),
                json!({ "prompt": "Rich man's story", "models": [MODEL] }),
            )
            .await;
        let job = take(&server, &volunteer, &pop_body("volunteer"))
            .await
            .unwrap();
        hands.advance(Duration::from_secs(20));
        let (_, reward) = submit(&server, &volunteer, &job, &horde_testkit::prose(320)).await;
        assert!(reward["reward"].is_number(), "{reward}");
        let (_, newcomer_user) = server.get("/find_user", Some(&newcomer)).await;
        if milli(&newcomer_user["kudos"]) < 0 && served_at.is_empty() {
            served_at.push(step * 20);
        }
    }
    let waited = served_at
        .first()
        .copied()
        .expect("the newcomer was never served");
    eprintln!("a newcomer behind a rich requester's 30 waiting requests waited {waited} s");
    assert!(waited <= 600, "{waited} s");
    server.stop().await;
}
