//! Workers: ownership, maintenance, abuse.

use super::*;

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
async fn owners_and_administrators_delete_workers_and_their_jobs_go_back() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (_, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    let queued = request(&server, Some(&alice), "Keep me").await;
    let job = pop(&server, &bob, "bob-gpu").await;
    let (_, worker) = server.get("/workers/name/bob-gpu", None).await;
    let id = worker["id"].as_str().unwrap().to_owned();
    let path = format!("/workers/{id}");
    let delete = |key: String| {
        let path = path.clone();
        let server = &server;
        async move { server.call(Method::DELETE, &path, Some(&key), None).await }
    };
    assert_error(
        &delete(alice.clone()).await,
        StatusCode::FORBIDDEN,
        "WrongCredentials",
    );
    assert_error(
        &delete("not-a-key".into()).await,
        StatusCode::UNAUTHORIZED,
        "InvalidAPIKey",
    );
    let (status, deleted) = delete(bob.clone()).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({ "deleted_id": id, "deleted_name": "bob-gpu" })
    );
    assert_error(
        &server.get(&path, None).await,
        StatusCode::NOT_FOUND,
        "WorkerNotFound",
    );
    assert_error(
        &delete(bob.clone()).await,
        StatusCode::NOT_FOUND,
        "WorkerNotFound",
    );
    // The job it held is aborted and its generation waits again.
    assert_error(
        &submit(&server, &bob, job["id"].as_str().unwrap(), "too late").await,
        StatusCode::BAD_REQUEST,
        "AbortedGen",
    );
    let (_, status) = server
        .get(&format!("/generate/text/status/{queued}"), None)
        .await;
    assert_eq!(
        (status["waiting"].clone(), status["restarted"].clone()),
        (json!(1), json!(1))
    );
    let (_, me) = server.get("/find_user", Some(&bob)).await;
    assert_eq!(me["worker_count"], 0, "{me}");
    // The name is free; an administrator deletes anyone's worker; gone after a restart too.
    let again = pop(&server, &alice, "bob-gpu").await;
    assert_eq!(again["payload"]["prompt"], "Keep me");
    let (_, worker) = server.get("/workers/name/bob-gpu", None).await;
    let path = format!("/workers/{}", worker["id"].as_str().unwrap());
    let (status, _) = server.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, workers) = server.get("/workers", None).await;
    assert_eq!(workers, json!([]));
    server.stop().await;
}
