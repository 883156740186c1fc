//! The horde's modes: set by administrators, kept across restarts, each with its effect.

use super::*;

async fn set_modes(server: &TestServer, key: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PUT, "/status/modes", Some(key), Some(body))
        .await
}

#[tokio::test]
async fn maintenance_takes_no_new_requests_and_drains_the_queue() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    let (_, modes) = server.get("/status/modes", None).await;
    let none = json!({ "maintenance_mode": false, "invite_only_mode": false, "raid_mode": false });
    assert_eq!(modes, none);
    assert_error(
        &set_modes(&server, &alice, json!({ "maintenance": true })).await,
        StatusCode::FORBIDDEN,
        "NotAdmin",
    );
    assert_error(
        &set_modes(&server, "not-a-key", json!({ "maintenance": true })).await,
        StatusCode::UNAUTHORIZED,
        "InvalidAPIKey",
    );
    let queued = request(&server, Some(&alice), "Before the maintenance").await;

    let (status, modes) = set_modes(&server, &admin, json!({ "maintenance": true })).await;
    assert_eq!(status, StatusCode::OK, "{modes}");
    assert_eq!(modes["maintenance_mode"], true);
    assert_eq!(modes["raid_mode"], false);
    let refused = server
        .post(
            "/generate/text/async",
            Some(&alice),
            json!({ "prompt": "During" }),
        )
        .await;
    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "MaintenanceMode");
    let openai = server
        .client
        .post(format!(
            "{}/v1/completions",
            server.base.trim_end_matches("/api/v2")
        ))
        .bearer_auth(&alice)
        .json(&json!({ "model": "*", "prompt": "During" }))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), StatusCode::SERVICE_UNAVAILABLE);
    let openai: Value = openai.json().await.unwrap();
    assert!(
        openai["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("maintenance")),
        "{openai}"
    );
    let home = server
        .client
        .get(server.base.trim_end_matches("/api/v2").to_owned() + "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("This horde is in maintenance"), "{home}");
    // A dry run still answers; the queue drains.
    let (status, _) = server
        .post(
            "/generate/text/async",
            Some(&alice),
            json!({ "prompt": "During", "dry_run": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let job = pop(&server, &bob, "bob-gpu").await;
    let (status, _) = submit(&server, &bob, job["id"].as_str().unwrap(), "and after.").await;
    assert_eq!(status, StatusCode::OK);
    let (_, done) = server
        .get(&format!("/generate/text/status/{queued}"), None)
        .await;
    assert_eq!(done["done"], true);

    // Kept across a restart; switched off again.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, modes) = server.get("/status/modes", None).await;
    assert_eq!(modes["maintenance_mode"], true);
    let (_, modes) = set_modes(&server, &admin, json!({ "maintenance": false })).await;
    assert_eq!(modes, none);
    request(&server, Some(&alice), "Open again").await;
    server.stop().await;
}

#[tokio::test]
async fn invite_only_and_raid_keep_new_workers_to_trusted_users() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (_, bob) = server.register("bob").await;
    pop(&server, &bob, "bob-old").await;
    for mode in ["invite_only", "raid"] {
        let (status, modes) = set_modes(&server, &admin, json!({ mode: true })).await;
        assert_eq!(status, StatusCode::OK, "{modes}");
        let refused = server
            .post("/generate/text/pop", Some(&bob), pop_body("bob-new"))
            .await;
        assert_error(&refused, StatusCode::FORBIDDEN, "WorkerInviteOnly");
        // Workers that exist keep working; trusted users may add workers.
        pop(&server, &bob, "bob-old").await;
        pop(&server, &admin, &format!("admin-{mode}")).await;
        set_modes(&server, &admin, json!({ mode: false })).await;
    }
    pop(&server, &bob, "bob-new").await;
}

#[tokio::test]
async fn raid_mode_closes_registration_by_name_and_says_less() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (_, alice) = server.register("alice").await;
    set_modes(&server, &admin, json!({ "raid": true })).await;
    let refused = server
        .post("/register", None, json!({ "username": "mallory" }))
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "RegistrationDisabled");
    // No worker serves this model, and nobody is told.
    let (status, accepted) = server
        .post(
            "/generate/text/async",
            Some(&alice),
            json!({ "prompt": "x", "models": ["nobody/serves-this"] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(accepted.get("message"), None, "{accepted}");
    set_modes(&server, &admin, json!({ "raid": false })).await;
    let (status, _) = server
        .post("/register", None, json!({ "username": "carol" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
