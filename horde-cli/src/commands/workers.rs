//! Workers: list, show, and the owner's changes (maintenance, rename, info).

use serde_json::{json, Value};

use crate::cli::OnOff;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

pub(crate) async fn list(client: &Client, settings: &Settings, mine: bool) -> Result<(), CliError> {
    let mut workers = client.get("/workers?type=text").await?;
    if mine {
        if !client.has_key() {
            return Err(CliError::Usage(
                "--mine needs your API key: pass --api-key or set HORDE_API_KEY".into(),
            ));
        }
        let me = client.get("/find_user").await?;
        let ids: Vec<&Value> = me["worker_ids"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if let Some(list) = workers.as_array_mut() {
            list.retain(|w| ids.contains(&&w["id"]));
        }
    }
    if settings.json {
        output::json(&workers);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = workers
        .as_array()
        .map(|list| {
            list.iter()
                .map(|w| {
                    vec![
                        output::text(&w["name"]),
                        if w["online"] == true { "yes" } else { "no" }.to_owned(),
                        if w["maintenance_mode"] == true {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_owned(),
                        w["models"]
                            .as_array()
                            .map(|m| m.iter().map(output::text).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                        output::text(&w["requests_fulfilled"]),
                        output::text(&w["kudos_rewards"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    output::table(
        &["NAME", "ONLINE", "MAINTENANCE", "MODELS", "JOBS", "KUDOS"],
        &rows,
    );
    Ok(())
}

/// Returns true if and only if `text` looks like a worker id (a UUID).
fn is_uuid(text: &str) -> bool {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    text.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// The worker `worker` names (an id or a name).
async fn find(client: &Client, worker: &str) -> Result<Value, CliError> {
    if is_uuid(worker) {
        client.get(&format!("/workers/{worker}")).await
    } else {
        client
            .get(&format!("/workers/name/{}", encode_path(worker)))
            .await
    }
}

/// Percent-encodes a path segment.
fn encode_path(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn show(
    client: &Client,
    settings: &Settings,
    worker: &str,
) -> Result<(), CliError> {
    let w = find(client, worker).await?;
    if settings.json {
        output::json(&w);
        return Ok(());
    }
    output::fields(&[
        ("name", output::text(&w["name"])),
        ("id", output::text(&w["id"])),
        ("owner", output::text(&w["owner"])),
        ("online", output::text(&w["online"])),
        ("maintenance", output::text(&w["maintenance_mode"])),
        (
            "models",
            w["models"]
                .as_array()
                .map(|m| m.iter().map(output::text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ),
        ("max length", output::text(&w["max_length"])),
        ("max context", output::text(&w["max_context_length"])),
        ("threads", output::text(&w["threads"])),
        ("jobs done", output::text(&w["requests_fulfilled"])),
        ("kudos", output::text(&w["kudos_rewards"])),
        ("uptime (s)", output::text(&w["uptime"])),
        ("performance", output::text(&w["performance"])),
        ("bridge", output::text(&w["bridge_agent"])),
        ("info", output::text(&w["info"])),
    ]);
    Ok(())
}

/// Changes worker `worker` with `body` (`PUT /workers/{id}`) and reports what changed.
pub(crate) async fn change(
    client: &Client,
    settings: &Settings,
    worker: &str,
    body: Value,
) -> Result<(), CliError> {
    if !client.has_key() {
        return Err(CliError::Usage(
            "changing a worker needs its owner's API key: pass --api-key or set HORDE_API_KEY"
                .into(),
        ));
    }
    let w = find(client, worker).await?;
    let id = output::text(&w["id"]);
    let answer = client.put(&format!("/workers/{id}"), &body).await?;
    if settings.json {
        output::json(&answer);
    } else {
        let changes: Vec<String> = answer
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k} = {}", output::text(v)))
                    .collect()
            })
            .unwrap_or_default();
        println!("{}: {}", output::text(&w["name"]), changes.join(", "));
    }
    Ok(())
}

/// The body of a maintenance change.
pub(crate) fn maintenance_body(state: OnOff, message: Option<String>) -> Value {
    let mut body = json!({ "maintenance": state == OnOff::On });
    if let Some(message) = message {
        body["maintenance_msg"] = json!(message);
    }
    body
}
