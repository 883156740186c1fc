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
    // The node is alive and commits.
    server.register("after-the-attack").await;
    let (status, _) = server.get("/status/heartbeat", None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}
