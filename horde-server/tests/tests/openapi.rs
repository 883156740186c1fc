//! The OpenAPI description: served, complete (every route of the API has its operation, and
//! every operation a route), and readable as a page.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::util::{assert_error, declared_routes, TestServer};

#[tokio::test]
async fn the_description_has_every_route_and_only_those() {
    let server = TestServer::start().await;
    let url = format!("http://{}/api/swagger.json", server.addr);
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v2");
    let paths = doc["paths"].as_object().unwrap();
    let mut described: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
            methods
                .into_iter()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.to_uppercase(), format!("/api/v2{path}")))
        })
        .collect();
    let mut routed: Vec<(String, String)> = declared_routes()
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/v2/"))
        // A catch-all segment (`{*model_name}`, for names with slashes) is one parameter.
        .map(|(method, path)| (method.to_string(), path.replace("{*", "{")))
        .collect();
    described.sort();
    routed.sort();
    assert_eq!(described, routed, "the description and the router disagree");
    // Every operation documents its errors with the one error body.
    for item in paths.values() {
        for operation in item.as_object().unwrap().values() {
            let responses = operation["responses"].as_object().unwrap();
            for code in ["408", "413", "503"] {
                assert!(responses.contains_key(code), "{operation}");
            }
        }
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["message", "rc"]));
    server.stop().await;
}

#[tokio::test]
async fn the_docs_page_lists_the_operations() {
    let server = TestServer::start().await;
    let url = format!("http://{}/api", server.addr);
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    for text in [
        "/generate/text/async",
        "/kudos/transfer",
        "TransferRequest",
        "InvalidAPIKey",
    ] {
        assert!(page.contains(text), "{text} missing from the page");
    }
    assert!(!page.contains("<script"), "no scripts, no CDN");
    server.stop().await;
}

#[tokio::test]
async fn a_dry_run_refuses_what_a_request_would() {
    let server = TestServer::start().await;
    let overflow = json!({ "prompt": "x", "dry_run": true,
                           "params": { "max_length": 512, "max_context_length": 256 } });
    let got = server.post("/generate/text/async", None, overflow).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "TokenOverflow");
    let long_model = json!({ "prompt": "x", "dry_run": true, "models": ["m".repeat(256)] });
    let got = server.post("/generate/text/async", None, long_model).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    // Whole numbers may come as floats; numbers over a C int are refused.
    let float = json!({ "prompt": "x", "dry_run": true, "params": { "max_length": 308.0 } });
    let (status, _) = server.post("/generate/text/async", None, float).await;
    assert_eq!(status, StatusCode::OK);
    let huge = json!({ "prompt": "x", "dry_run": true, "params": { "top_k": 2147483648u64 } });
    let got = server.post("/generate/text/async", None, huge).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{:?}", got.1);
    server.stop().await;
}
