//! The API through real HTTP.

pub(crate) use std::time::Duration;

pub(crate) use horde_core::Timestamp;
pub(crate) use horde_server::Clock;
pub(crate) use reqwest::{Method, StatusCode};
pub(crate) use serde_json::{json, Value};

pub(crate) use crate::util::{assert_error, milli, TestServer};

pub(crate) const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";

pub(crate) fn pop_body(name: &str) -> Value {
    json!({
        "name": name,
        "models": [MODEL],
        "max_length": 512,
        "max_context_length": 4096,
        "priority_usernames": null,
        "nsfw": false,
        "threads": 1,
        "amount": 1,
        "bridge_agent": "test:1:none",
    })
}

pub(crate) async fn request(server: &TestServer, key: Option<&str>, prompt: &str) -> String {
    let (status, body) = server
        .post(
            "/generate/text/async",
            key,
            json!({ "prompt": prompt, "params": { "max_length": 80 }, "models": [MODEL] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn pop(server: &TestServer, key: &str, name: &str) -> Value {
    let (status, body) = server
        .post("/generate/text/pop", Some(key), pop_body(name))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub(crate) async fn submit(
    server: &TestServer,
    key: &str,
    job: &str,
    text: &str,
) -> (StatusCode, Value) {
    server
        .post(
            "/generate/text/submit",
            Some(key),
            json!({ "id": job, "generation": text, "state": "ok", "seed": 42 }),
        )
        .await
}

mod economy;
mod farming;
mod generation;
mod input;
mod modes;
mod openai;
mod options;
mod roles;
mod status;
mod teams;
mod users;
mod workers;
