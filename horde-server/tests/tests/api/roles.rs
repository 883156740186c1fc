//! AI Horde's user roles, set by administrators, each with its effect; kudos awards.

use super::*;

async fn set_roles(server: &TestServer, key: &str, user: u64, roles: Value) -> (StatusCode, Value) {
    server
        .call(
            Method::PUT,
            &format!("/users/{user}"),
            Some(key),
            Some(roles),
        )
        .await
}

#[tokio::test]
async fn administrators_set_roles_which_show_and_persist() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (alice_id, alice) = server.register("alice").await;
    let all = json!({ "moderator": true, "service": true, "customizer": true, "vpn": true });
    assert_error(
        &set_roles(&server, &alice, alice_id, all.clone()).await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    let (status, answer) = set_roles(&server, &admin, alice_id, all.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, all);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, shown) = server.get(&format!("/users/{alice_id}"), None).await;
    for role in ["moderator", "service", "customizer", "vpn"] {
        assert_eq!(shown[role], true, "{role}: {shown}");
    }
    let (_, answer) = set_roles(&server, &admin, alice_id, json!({ "vpn": false })).await;
    assert_eq!(answer, json!({ "vpn": false }));
    let (_, shown) = server.get("/find_user", Some(&alice)).await;
    assert_eq!(
        (shown["moderator"].clone(), shown["vpn"].clone()),
        (json!(true), json!(false))
    );
    server.stop().await;
}

#[tokio::test]
async fn moderators_award_kudos_and_switch_raid_but_not_maintenance() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (mod_id, moderator) = server.register("mod").await;
    let (bob_id, bob) = server.register("bob").await;
    let award = |key: String, body: Value| {
        let server = &server;
        async move { server.post("/kudos/award", Some(&key), body).await }
    };
    let to_bob = json!({ "username": format!("bob#{bob_id}"), "amount": 5 });
    assert_error(
        &award(moderator.clone(), to_bob.clone()).await,
        StatusCode::FORBIDDEN,
        "NotModerator",
    );
    set_roles(&server, &admin, mod_id, json!({ "moderator": true })).await;
    let (status, awarded) = award(moderator.clone(), to_bob.clone()).await;
    assert_eq!(status, StatusCode::OK, "{awarded}");
    assert_eq!(milli(&awarded["awarded"]), 5_000, "{awarded}");
    let (_, shown) = server.get("/find_user", Some(&bob)).await;
    assert_eq!(milli(&shown["kudos"]), 5_000);
    assert_eq!(milli(&shown["kudos_details"]["awarded"]), 5_000);
    // Administrators award too; the horde's books still balance.
    let (status, _) = award(admin.clone(), to_bob.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, metrics_total) = server.get(&format!("/users/{bob_id}"), None).await;
    assert_eq!(milli(&metrics_total["kudos"]), 10_000);
    for (body, status, rc) in [
        (
            json!({ "username": "Anonymous#0", "amount": 5 }),
            StatusCode::BAD_REQUEST,
            "KudosAwardToAnon",
        ),
        (
            json!({ "username": "nobody#999", "amount": 5 }),
            StatusCode::BAD_REQUEST,
            "InvalidAwardUsername",
        ),
        (
            json!({ "username": format!("bob#{bob_id}"), "amount": -5 }),
            StatusCode::BAD_REQUEST,
            "NegativeKudosTransfer",
        ),
        (
            json!({ "username": format!("bob#{bob_id}"), "amount": "5" }),
            StatusCode::BAD_REQUEST,
            "InvalidKudosTransferAmount",
        ),
    ] {
        assert_error(&award(moderator.clone(), body).await, status, rc);
    }
    // Modes: raid and invite-only, not maintenance.
    let (status, modes) = server
        .call(
            Method::PUT,
            "/status/modes",
            Some(&moderator),
            Some(json!({ "raid": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{modes}");
    assert_eq!(modes["raid_mode"], true);
    let refused = server
        .call(
            Method::PUT,
            "/status/modes",
            Some(&moderator),
            Some(json!({ "maintenance": true })),
        )
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "NotAdmin");
}

#[tokio::test]
async fn only_service_accounts_name_a_proxied_account() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (front_id, front) = server.register("frontend").await;
    let body = json!({ "prompt": "Hello", "proxied_account": "user-42" });
    let refused = server
        .post("/generate/text/async", Some(&front), body.clone())
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "BadRequest");
    set_roles(&server, &admin, front_id, json!({ "service": true })).await;
    let (status, accepted) = server
        .post("/generate/text/async", Some(&front), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let too_long = json!({ "prompt": "Hello", "proxied_account": "x".repeat(101) });
    let refused = server
        .post("/generate/text/async", Some(&front), too_long)
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "ValidationError");
}

#[tokio::test]
async fn a_customizers_custom_model_is_paid_by_the_size_in_its_name() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (maker_id, maker) = server.register("maker").await;
    let (_, client) = server.register("client").await;
    let economy = horde_core::EconomyConfig::default();
    let paid_as = |size: f64| economy.generation_reward(size, 80, 80).milli();
    let prompt = "x".repeat(400);
    let text = horde_testkit::prose(320); // 80 tokens
    let model = "maker/My-Finetune-13B";
    let serve = |worker: &'static str| {
        let (server, prompt, text, maker, client) = (&server, &prompt, &text, &maker, &client);
        async move {
            server
                .post(
                    "/generate/text/async",
                    Some(client),
                    json!({ "prompt": prompt, "models": [model] }),
                )
                .await;
            let mut body = pop_body(worker);
            body["models"] = json!([model]);
            let (_, job) = server.post("/generate/text/pop", Some(maker), body).await;
            let (status, reward) = submit(server, maker, job["id"].as_str().unwrap(), text).await;
            assert_eq!(status, StatusCode::OK, "{reward}");
            milli(&reward["reward"])
        }
    };
    // Not in the reference: an unknown model, 1B…
    assert_eq!(serve("maker-gpu").await, paid_as(1.0));
    // …until an administrator makes its owner a customizer.
    set_roles(&server, &admin, maker_id, json!({ "customizer": true })).await;
    assert_eq!(serve("maker-gpu").await, paid_as(13.0));
}

#[tokio::test]
async fn a_vpn_user_is_held_to_the_per_user_transfer_limit_only() {
    let server = TestServer::start_with(|config| {
        config.transfers_per_minute_per_ip = 1;
    })
    .await;
    let (_, admin) = server.admin("admin").await;
    let (alice_id, alice) = server.register("alice").await;
    let (bob_id, bob) = server.register("bob").await;
    server
        .call(
            Method::PUT,
            &format!("/users/{alice_id}"),
            Some(&admin),
            Some(json!({ "kudos": 100 })),
        )
        .await;
    let transfer = |key: String| {
        let server = &server;
        let body = json!({ "username": format!("bob#{bob_id}"), "amount": 1 });
        async move { server.post("/kudos/transfer", Some(&key), body).await }
    };
    // Everyone here shares 127.0.0.1: the second transfer from it this minute is refused…
    assert_eq!(transfer(alice.clone()).await.0, StatusCode::OK);
    assert_error(
        &transfer(alice.clone()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimited",
    );
    // …unless the sender is a VPN user (whose per-user limit, 10, still holds).
    set_roles(&server, &admin, alice_id, json!({ "vpn": true })).await;
    assert_eq!(transfer(alice.clone()).await.0, StatusCode::OK);
    let _ = bob;
}
