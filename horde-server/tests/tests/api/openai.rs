//! The OpenAI-compatible front, worker progress, horde-native streams and long-poll pops, over
//! real HTTP with a worker played by the test (the `openai` SDK against a real worker and
//! backend is in horde-worker's tests).

use super::*;

/// The server's root (the OpenAI routes are beside `/api/v2`).
fn root(server: &TestServer) -> String {
    server.base.trim_end_matches("/api/v2").to_owned()
}

/// Sends an OpenAI call `body` to `path` (`/v1/...`) with `key` as a bearer token.
fn openai(
    server: &TestServer,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> reqwest::RequestBuilder {
    let mut request = server
        .client
        .post(format!("{}{path}", root(server)))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request
}

/// The `data:` lines of a server-sent event stream, until `[DONE]` or its end.
async fn events(mut response: reqwest::Response) -> Vec<String> {
    let read = async {
        let mut pending = String::new();
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(value) = line.trim_end().strip_prefix("data: ") {
                    data.push(value.to_owned());
                    if value == "[DONE]" {
                        return data;
                    }
                }
            }
        }
        data
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the stream ended in time")
}

/// Pops as worker `name` in a long poll of up to `wait` seconds; the job id and prompt.
async fn long_pop(
    server: &TestServer,
    key: &str,
    name: &str,
    wait: u32,
) -> Option<(String, String)> {
    let mut body = pop_body(name);
    body["wait"] = json!(wait);
    let (status, answer) = server.post("/generate/text/pop", Some(key), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["id"].as_str()?.to_owned();
    Some((
        id,
        answer["payload"]["prompt"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

async fn progress(server: &TestServer, key: &str, job: &str, offset: u64, text: &str) -> Value {
    let (status, answer) = server
        .post(
            "/generate/text/progress",
            Some(key),
            json!({ "id": job, "offset": offset, "text": text }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn kudos(server: &TestServer, key: &str) -> i64 {
    let (_, user) = server.get("/find_user", Some(key)).await;
    milli(&user["kudos"])
}

#[tokio::test]
async fn a_completion_waits_for_the_worker_and_is_paid_like_any_request() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    // The worker is online (an empty pop), so its model is listed.
    assert!(long_pop(&server, &worker_key, "w", 0).await.is_none());
    let models: Value = server
        .client
        .get(format!("{}/v1/models", root(&server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL, "{models}");
    let before = (
        kudos(&server, &client_key).await,
        kudos(&server, &worker_key).await,
    );

    let call = openai(
        &server,
        "/v1/completions",
        Some(&client_key),
        json!({ "model": MODEL, "prompt": "Once upon", "max_tokens": 32, "user": "u1" }),
    )
    .send();
    let worker = async {
        let (job, prompt) = long_pop(&server, &worker_key, "w", 10)
            .await
            .expect("a job");
        assert_eq!(prompt, "Once upon");
        let (status, reward) = submit(&server, &worker_key, &job, " a time there was a fox.").await;
        assert_eq!(status, StatusCode::OK, "{reward}");
        milli(&reward["reward"])
    };
    let (response, reward) = tokio::join!(call, worker);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], " a time there was a fox.");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["model"], MODEL);
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    let usage = &body["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    assert!(reward > 0);
    let after = (
        kudos(&server, &client_key).await,
        kudos(&server, &worker_key).await,
    );
    assert_eq!(before.0 - after.0, reward, "the requester paid the reward");
    assert!(after.1 - before.1 >= reward, "the worker's owner earned it");
}

#[tokio::test]
async fn a_streamed_chat_shows_the_workers_progress_and_ends_with_the_submitted_text() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    assert!(long_pop(&server, &worker_key, "w", 0).await.is_none());
    let call = openai(
        &server,
        "/v1/chat/completions",
        Some(&client_key),
        json!({
            "model": MODEL, "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        }),
    )
    .send();
    let worker = async {
        let (job, prompt) = long_pop(&server, &worker_key, "w", 10)
            .await
            .expect("a job");
        // The model reference names Llama 3's template for this model.
        assert!(
            prompt.ends_with(
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            "{prompt}"
        );
        let first = progress(&server, &worker_key, &job, 0, "Hel").await;
        assert_eq!(first["listening"], true, "{first}");
        assert_eq!(first["received"], 3);
        // A retry of a part already taken is skipped (posts are taken at most every 20 ms).
        tokio::time::sleep(Duration::from_millis(30)).await;
        let again = progress(&server, &worker_key, &job, 0, "Hello").await;
        assert_eq!(again["received"], 5);
        let (status, _) = submit(&server, &worker_key, &job, "Hello there").await;
        assert_eq!(status, StatusCode::OK);
    };
    let (response, ()) = tokio::join!(call, worker);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = events(response).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        streamed, "Hello there",
        "the stream equals the submitted text"
    );
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(
        usage["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_request_and_frees_the_worker() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    assert!(long_pop(&server, &worker_key, "w", 0).await.is_none());
    let before = kudos(&server, &client_key).await;
    let mut response = openai(
        &server,
        "/v1/completions",
        Some(&client_key),
        json!({ "model": MODEL, "prompt": "Once", "stream": true }),
    )
    .send()
    .await
    .unwrap();
    let (job, _) = long_pop(&server, &worker_key, "w", 10)
        .await
        .expect("a job");
    assert_eq!(
        progress(&server, &worker_key, &job, 0, "upon").await["listening"],
        true
    );
    assert!(
        response.chunk().await.unwrap().is_some(),
        "the first text arrived"
    );
    drop(response);
    // The worker learns of the cancellation at its next post.
    let mut cancelled = false;
    for _ in 0..100 {
        if progress(&server, &worker_key, &job, 4, " a").await["cancelled"] == true {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "the worker was told to stop");
    assert_error(
        &submit(&server, &worker_key, &job, "upon a time").await,
        StatusCode::BAD_REQUEST,
        "AbortedGen",
    );
    assert_eq!(
        kudos(&server, &client_key).await,
        before,
        "nothing was charged"
    );
}

#[tokio::test]
async fn openai_errors_have_openais_shape() {
    let server = TestServer::start().await;
    let (_, key) = server.register("client").await;
    let cases = [
        (
            Some("not-a-key"),
            json!({"model": "*", "prompt": "x"}),
            401,
            "authentication_error",
            None,
            "InvalidAPIKey",
        ),
        (
            Some(key.as_str()),
            json!({"model": "*", "prompt": "x", "max_tokens": 5}),
            400,
            "invalid_request_error",
            Some("max_tokens"),
            "ValidationError",
        ),
        (
            Some(key.as_str()),
            json!({"model": "*", "prompt": "x", "temperature": 9}),
            400,
            "invalid_request_error",
            Some("temperature"),
            "ValidationError",
        ),
        (
            Some(key.as_str()),
            json!({"model": "nobody/serves-this", "prompt": "x"}),
            404,
            "not_found_error",
            None,
            "model_not_found",
        ),
        (
            Some(key.as_str()),
            json!({"prompt": "x"}),
            400,
            "invalid_request_error",
            Some("model"),
            "ValidationError",
        ),
    ];
    for (key, body, status, kind, param, code) in cases {
        let response = openai(&server, "/v1/completions", key, body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["type"], kind, "{answer}");
        assert_eq!(answer["error"]["param"], json!(param), "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    // Malformed JSON, and the same API under /api/v1.
    let response = server
        .client
        .post(format!("{}/api/v1/chat/completions", root(&server)))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn an_idle_worker_in_a_long_poll_gets_a_new_request_at_once() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    assert!(long_pop(&server, &worker_key, "w", 0).await.is_none());
    let started = std::time::Instant::now();
    let worker = long_pop(&server, &worker_key, "w", 20);
    let client = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        request(&server, Some(&client_key), "Hello").await
    };
    let (popped, _) = tokio::join!(worker, client);
    let (job, _) = popped.expect("the long poll answered with the new job");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the poll answered when the request came, not at its end"
    );
    assert_eq!(
        submit(&server, &worker_key, &job, "Hi").await.0,
        StatusCode::OK
    );
    // Nothing to do: a long poll answers empty when its time is up.
    assert!(long_pop(&server, &worker_key, "w", 1).await.is_none());
}

#[tokio::test]
async fn a_horde_native_stream_shows_text_then_the_status() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    let id = request(&server, Some(&client_key), "Hello").await;
    let response = server
        .client
        .get(format!("{}/generate/text/stream/{id}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let mut response = response;
        let read = async {
            while let Some(chunk) = response.chunk().await.unwrap() {
                text.push_str(std::str::from_utf8(&chunk).unwrap());
                if text.contains("event: done") || text.contains("event: error") {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .unwrap();
        text
    });
    let (job, _) = long_pop(&server, &worker_key, "w", 10)
        .await
        .expect("a job");
    // The stream may subscribe a moment after the pop: post until it listens.
    let mut listening = false;
    for _ in 0..100 {
        if progress(&server, &worker_key, &job, 0, "Hi").await["listening"] == true {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listening);
    submit(&server, &worker_key, &job, "Hi there").await;
    let text = reader.await.unwrap();
    assert!(
        text.contains("event: text\ndata: {\"text\":\"Hi\"}"),
        "{text}"
    );
    assert!(
        text.contains("event: text\ndata: {\"text\":\" there\"}"),
        "{text}"
    );
    assert!(text.contains("event: done"), "{text}");
    assert!(text.contains("\"done\":true"), "{text}");
    // Another user's worker may not post progress for this job.
    let (_, other_key) = server.register("other").await;
    assert_error(
        &server
            .post(
                "/generate/text/progress",
                Some(&other_key),
                json!({"id": job, "text": "x"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "WrongCredentials",
    );
}

#[tokio::test]
async fn a_stream_of_several_generations_shows_only_their_end() {
    let server = TestServer::start().await;
    let (_, worker_key) = server.register("worker").await;
    let (_, client_key) = server.register("client").await;
    let (status, body) = server
        .post(
            "/generate/text/async",
            Some(&client_key),
            json!({ "prompt": "Hello", "params": { "n": 2, "max_length": 80 }, "models": [MODEL] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let mut response = server
        .client
        .get(format!("{}/generate/text/stream/{id}", server.base))
        .send()
        .await
        .unwrap();
    for (name, text) in [("a", "First."), ("b", "Second.")] {
        let (job, _) = long_pop(&server, &worker_key, name, 10)
            .await
            .expect("a job");
        let answer = progress(&server, &worker_key, &job, 0, "Fir").await;
        assert_eq!(answer["listening"], false, "{answer}");
        assert_eq!(
            submit(&server, &worker_key, &job, text).await.0,
            StatusCode::OK
        );
    }
    let read = async {
        let mut text = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            if text.contains("event: done") {
                break;
            }
        }
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap();
    assert!(!text.contains("event: text"), "{text}");
    assert!(
        text.contains("First.") && text.contains("Second."),
        "{text}"
    );
}
