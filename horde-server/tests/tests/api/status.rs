//! Status endpoints, CORS and the public pages.

use super::*;

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
        .split("<code id=\"api-key\" class=\"key\">")
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

/// One definition of speed: a worker's `performance` is the speed the horde counts it at (10
/// tokens per second until measured, whatever threads it claims), a model's is its workers'
/// summed, and the wait estimate divides by the same.
#[tokio::test]
async fn speeds_have_one_definition() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    for name in ["claims-4-threads", "claims-1"] {
        let threads = if name == "claims-1" { 1 } else { 4 };
        let (status, _) = server
            .post(
                "/generate/text/pop",
                Some(&key),
                json!({ "name": name, "models": [MODEL], "threads": threads }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, workers) = server.get("/workers", None).await;
    for worker in workers.as_array().unwrap() {
        assert_eq!(worker["performance"], "10 tokens per second", "{worker}");
    }
    let (_, models) = server.get("/status/models", None).await;
    assert_eq!(models[0]["performance"], 20, "{models}");
    server.stop().await;
}

/// Reading what anyone may read never refuses a key: `GET /workers` (and one worker, and the
/// users) with a key nobody has answers as to Anonymous, as AI Horde does; a call that acts
/// still refuses it.
#[tokio::test]
async fn public_reads_ignore_a_key_nobody_has() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    pop(&server, &key, "w1").await;
    let stranger = Some("not-a-real-key");
    let (status, workers) = server.get("/workers", stranger).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(workers[0]["name"], "w1");
    let id = workers[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get(&format!("/workers/{id}"), stranger).await.0,
        StatusCode::OK
    );
    assert_eq!(
        server.get("/workers/name/w1", stranger).await.0,
        StatusCode::OK
    );
    assert_eq!(server.get("/users", stranger).await.0, StatusCode::OK);
    let (status, body) = server
        .post("/generate/text/async", stranger, json!({ "prompt": "Hi" }))
        .await;
    assert_eq!(
        (status, body["rc"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("InvalidAPIKey"))
    );
    server.stop().await;
}

/// One model's status (AI Horde's `/status/models/{model_name}`: a list of one, empty for a
/// model nobody serves or asks for), and the operators' news from the configuration.
#[tokio::test]
async fn one_model_and_the_news() {
    let server = TestServer::start_with(|config| {
        config.news = vec![horde_api::NewsPiece {
            date_published: "2026-12-06".into(),
            importance: "Information".into(),
            newspiece: "Open <b>today</b>.".into(),
            title: Some("Welcome".into()),
            ..horde_api::NewsPiece::default()
        }];
    })
    .await;
    let (_, key) = server.register("w").await;
    pop(&server, &key, "w1").await;
    let (status, one) = server.get(&format!("/status/models/{MODEL}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    assert_eq!(
        (&one[0]["name"], &one[0]["count"]),
        (&json!(MODEL), &json!(1))
    );
    let (status, none) = server
        .get("/status/models/nobody%2Fserves-this", None)
        .await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
    let (status, news) = server.get("/status/news", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        news,
        json!([{ "date_published": "2026-12-06", "importance": "Information",
                 "newspiece": "Open <b>today</b>.", "title": "Welcome", "tags": [],
                 "more_info_urls": [] }])
    );
    server.stop().await;
}
