//! Requests an attacker would send: text the store cannot hold, bodies trickled a byte at a
//! time, more connections than one address may hold. Each is refused or bounded, and the node
//! goes on serving (on either store: this module is in the PostgreSQL matrix of `.ci/run`).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::util::{declared_routes, TestServer};

/// `route` with each `{parameter}` replaced by a plausible value.
fn concrete(route: &str) -> String {
    route
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A NUL character (which PostgreSQL refuses in text, so that a commit carrying one would stop
/// the node) in the path, the query, a JSON body and a form body of every route: each is
/// refused with 400 before any handler runs, and the node still commits afterwards.
#[tokio::test]
async fn nul_anywhere_in_any_request_is_refused_and_the_node_lives() {
    let server = TestServer::start().await;
    let (_, key) = server.register("target").await;
    let site = format!("http://{}", server.addr);
    let json_body = r#"{"username":"a\u0000b","prompt":"p\u0000","name":"w\u0000","form_id":"\u0000","generation":"g\u0000","models":["m\u0000"]}"#;
    let form_body = "form_id=a%00b&username=carol%00&amount=1&csrf=x%00";
    let mut refused = 0;
    for (method, route) in declared_routes() {
        let path = concrete(&route);
        let mut attempts = vec![
            (format!("{site}{path}%00"), None),
            (format!("{site}{path}?x=a%00b"), None),
        ];
        if method != Method::GET {
            attempts.push((
                format!("{site}{path}"),
                Some(("application/json", json_body.to_owned())),
            ));
            attempts.push((
                format!("{site}{path}"),
                Some(("application/x-www-form-urlencoded", form_body.to_owned())),
            ));
        }
        for (url, body) in attempts {
            let mut request = server
                .client
                .request(method.clone(), &url)
                .header("apikey", &key);
            if let Some((content_type, body)) = body {
                request = request.header("content-type", content_type).body(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {url}: {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["rc"], "ValidationError", "{method} {url}: {text}");
            refused += 1;
        }
    }
    assert!(refused > 100, "only {refused} requests tried");
    // Text that merely looks like an escape is accepted as the text it is.
    let (status, body) = server
        .post(
            "/register",
            None,
            serde_json::json!({ "username": "back\\u0000slash" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // So is `%00` in a JSON prompt: it means NUL only in forms, paths and queries.
    let (status, body) = server
        .post(
            "/generate/text/async",
            Some(&key),
            serde_json::json!({ "prompt": "a URL-encoded NUL is spelt %00" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The node is alive and commits.
    server.register("after-the-attack").await;
    let (status, _) = server.get("/status/heartbeat", None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Four clients each send a 32 KiB body one byte per TCP segment (each byte its own read on
/// the server). The server's memory grows by about what it was sent, not by a read buffer per
/// byte (4,140 bytes per byte before: 4 × 57 KB took it from 12 MB to 913 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_costs_a_byte_a_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: usize = 32 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = crate::crash::start_binary(&dir.path().join("horde.sqlite"), &[]).await;
    let pid = server.child.id();
    let addr = server
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v2")
        .to_owned();
    let before = resident_bytes(pid);
    let mut senders = Vec::new();
    for _ in 0..4 {
        let addr = addr.clone();
        senders.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let head = format!(
                "POST /api/v2/register HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/json\r\n\
                 Content-Length: {BODY}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let body = format!("{{\"username\":\"{}\"}}", "x".repeat(BODY - 15));
            for byte in body.as_bytes() {
                stream.write_all(std::slice::from_ref(byte)).await.unwrap();
                tokio::task::yield_now().await;
            }
            stream
        }));
    }
    let mut streams = Vec::new();
    for sender in senders {
        streams.push(sender.await.unwrap());
    }
    // Every byte sent and held by the server (the bodies are complete, the answers pending or
    // sent): what it costs now.
    let grown = resident_bytes(pid).saturating_sub(before);
    for mut stream in streams {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    println!(
        "4 bodies of {BODY} bytes sent a byte at a time: resident memory grew by {grown} bytes"
    );
    assert!(
        grown < 16 * 1024 * 1024,
        "resident memory grew by {grown} bytes for {} bytes sent",
        4 * BODY
    );
}

/// Sampler values outside AI Horde's documented ranges, floods of stop sequences and model
/// names that hide text never reach a worker: each is refused with the field named.
#[tokio::test]
async fn samplers_out_of_range_and_hidden_model_names_are_refused() {
    let server = TestServer::start().await;
    let (_, key) = server.register("sampler").await;
    let many_stops: Vec<String> = (0..100_000).map(|i| format!("{i}")).collect();
    for (params, field) in [
        (serde_json::json!({ "temperature": -5 }), "temperature"),
        (serde_json::json!({ "temperature": 1e308 }), "temperature"),
        (serde_json::json!({ "top_p": -1e300 }), "top_p"),
        (serde_json::json!({ "rep_pen": 0.5 }), "rep_pen"),
        (serde_json::json!({ "top_k": 1000 }), "top_k"),
        (
            serde_json::json!({ "stop_sequence": many_stops }),
            "stop_sequence",
        ),
        (
            serde_json::json!({ "sampler_order": [0, 1, 99] }),
            "sampler_order",
        ),
    ] {
        let (status, body) = server
            .post(
                "/generate/text/async",
                Some(&key),
                serde_json::json!({ "prompt": "p", "params": params }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(body["errors"][field].is_string(), "{field}: {body}");
    }
    // The ends of the ranges are fine.
    let (status, body) = server
        .post(
            "/generate/text/async",
            Some(&key),
            serde_json::json!({ "prompt": "p", "params": {
                "temperature": 5, "top_p": 0.001, "rep_pen": 1, "stop_sequence": ["\n"] } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for model in ["m\u{202E}x", "zero\u{200B}width", "bell\u{7}"] {
        let (status, body) = server
            .post(
                "/generate/text/async",
                Some(&key),
                serde_json::json!({ "prompt": "p", "models": [model] }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model:?}: {body}");
        assert!(body["errors"]["models"].is_string(), "{body}");
        let (status, body) = server
            .post(
                "/generate/text/pop",
                Some(&key),
                serde_json::json!({ "name": "w", "models": [model] }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model:?}: {body}");
        assert!(body["errors"]["models"].is_string(), "{body}");
    }
    server.stop().await;
}

/// Anonymous requests naming thousands of made-up models leave the home page and the metrics
/// their size: such names are added up in one row and one series.
#[tokio::test]
async fn made_up_model_names_do_not_grow_the_pages_or_the_metrics() {
    let server = TestServer::start().await;
    let site = format!("http://{}", server.addr);
    let mut queued = 0;
    for request in 0..30 {
        let models: Vec<String> = (0..200)
            .map(|i| format!("made-up/{request}-{i}-{}", "x".repeat(200)))
            .collect();
        let (status, _) = server
            .post(
                "/generate/text/async",
                None,
                serde_json::json!({ "prompt": "p", "models": models }),
            )
            .await;
        if status == StatusCode::ACCEPTED {
            queued += 1;
        }
    }
    assert!(queued >= 10, "only {queued} requests queued");
    let home = reqwest::get(format!("{site}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.len() < 20_000,
        "the home page grew to {} bytes",
        home.len()
    );
    assert!(home.contains("other models"), "{home}");
    let metrics = reqwest::get(format!("{site}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("horde_queued_generations_by_model"))
        .count();
    assert!(series <= 2, "{series} series: {metrics}");
    assert!(
        metrics.contains("horde_queued_generations_by_model{model=\"other\"}"),
        "{metrics}"
    );
    server.stop().await;
}
