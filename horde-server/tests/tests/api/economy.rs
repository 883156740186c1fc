//! The economy's defences over HTTP: pay by the reference, the speed rule, kudos upfront, escrow.

use super::*;

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
    let text = horde_testkit::prose(320); // 80 tokens
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
        // The answer says which rule (horde's extension).
        assert_eq!(reward["unpaid"], "TooFast", "{reward}");
        assert!(reward["unpaid_reason"].as_str().unwrap().contains("faster"));
        // An honest worker serves it again, at a real speed (80 tokens in 2 s).
        let job = pop(&server, &honest, "real").await;
        hands.advance(Duration::from_secs(2));
        let (_, reward) = submit(
            &server,
            &honest,
            job["id"].as_str().unwrap(),
            &horde_testkit::prose(320),
        )
        .await;
        assert!(milli(&reward["reward"]) > 0, "{reward}");
        assert!(reward.get("unpaid").is_none(), "{reward}");
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
            &horde_testkit::prose(320),
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
