//! Workers: list, show, and the owner's changes (maintenance, rename, info).

use horde_api::{WorkerDetails, WorkerUpdateRequest};

use crate::cli::OnOff;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

pub(crate) async fn list(client: &Client, settings: &Settings, mine: bool) -> Result<(), CliError> {
    let mut workers = client.ask(client.api().workers()).await?;
    if mine {
        if !client.has_key() {
            return Err(CliError::Usage(
                "--mine needs your API key: pass --api-key or set HORDE_API_KEY".into(),
            ));
        }
        let me = client.ask(client.api().find_user()).await?;
        workers.retain(|w| me.worker_ids.contains(&w.id));
    }
    if settings.json {
        output::json(&workers);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                output::yes_no(w.online),
                output::yes_no(w.maintenance_mode),
                models(w),
                w.requests_fulfilled.to_string(),
                w.kudos_rewards.to_string(),
            ]
        })
        .collect();
    output::table(
        &["NAME", "ONLINE", "MAINTENANCE", "MODELS", "JOBS", "KUDOS"],
        &rows,
    );
    Ok(())
}

/// The worker's models, comma-separated.
fn models(worker: &WorkerDetails) -> String {
    worker
        .models
        .iter()
        .map(|m| m.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns true if and only if `text` looks like a worker id (a UUID).
fn is_uuid(text: &str) -> bool {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    text.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// The worker `worker` names (an id or a name).
async fn find(client: &Client, worker: &str) -> Result<WorkerDetails, CliError> {
    if is_uuid(worker) {
        client.ask(client.api().worker(worker)).await
    } else {
        client.ask(client.api().worker_by_name(worker)).await
    }
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
        ("name", w.name.clone()),
        ("id", w.id.clone()),
        ("owner", output::or_dash(w.owner.as_ref())),
        ("online", w.online.to_string()),
        ("maintenance", w.maintenance_mode.to_string()),
        ("models", models(&w)),
        ("max length", w.max_length.to_string()),
        ("max context", w.max_context_length.to_string()),
        ("threads", w.threads.to_string()),
        ("jobs done", w.requests_fulfilled.to_string()),
        ("kudos", w.kudos_rewards.to_string()),
        ("uptime", output::age(w.uptime)),
        ("performance", w.performance.clone()),
        ("bridge", w.bridge_agent.clone()),
        ("info", w.info.clone()),
    ]);
    Ok(())
}

/// Changes worker `worker` with `change` (`PUT /workers/{id}`) and reports what changed.
pub(crate) async fn change(
    client: &Client,
    settings: &Settings,
    worker: &str,
    change: WorkerUpdateRequest,
) -> Result<(), CliError> {
    if !client.has_key() {
        return Err(CliError::Usage(
            "changing a worker needs its owner's API key: pass --api-key or set HORDE_API_KEY"
                .into(),
        ));
    }
    let w = find(client, worker).await?;
    let answer = client
        .ask(client.api().update_worker(&w.id, &change))
        .await?;
    if settings.json {
        output::json(&answer);
    } else {
        let mut changes = Vec::new();
        if let Some(on) = answer.maintenance {
            changes.push(format!("maintenance = {on}"));
        }
        if let Some(message) = &answer.maintenance_msg {
            changes.push(format!("maintenance_msg = {message}"));
        }
        if let Some(info) = &answer.info {
            changes.push(format!("info = {info}"));
        }
        if let Some(name) = &answer.name {
            changes.push(format!("name = {name}"));
        }
        println!("{}: {}", w.name, changes.join(", "));
    }
    Ok(())
}

/// A maintenance change.
pub(crate) fn maintenance_change(state: OnOff, message: Option<String>) -> WorkerUpdateRequest {
    WorkerUpdateRequest {
        maintenance: Some(state == OnOff::On),
        maintenance_msg: message,
        ..WorkerUpdateRequest::default()
    }
}
