//! Users and kudos: registration, transfers and idempotency keys, administrators.

use super::*;

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
        StatusCode::BAD_REQUEST,
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
