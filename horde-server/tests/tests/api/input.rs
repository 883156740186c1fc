//! Bad input: malformed, out of range, over the limits, random bodies; never a server error.

use super::*;

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
    // A key nobody has: AI Horde's answer on find_user (no such user to find).
    assert_error(
        &server.get("/find_user", Some("not-a-real-key")).await,
        StatusCode::NOT_FOUND,
        "UserNotFound",
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
