//! The horde as a whole: models and status.

use horde_api::{Heartbeat, Performance, Totals};
use serde::Serialize;

use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

pub(crate) async fn models(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let models = client.ask(client.api().models()).await?;
    if settings.json {
        output::json(&models);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                m.name.to_string(),
                m.count.to_string(),
                m.queued.to_string(),
                m.jobs.to_string(),
                m.performance.to_string(),
                m.eta.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "MODEL",
            "WORKERS",
            "QUEUED TOKENS",
            "JOBS",
            "TOKENS/S",
            "ETA (S)",
        ],
        &rows,
    );
    Ok(())
}

/// `horde-cli status --json`.
#[derive(Debug, Serialize)]
struct HordeStatus<'a> {
    url: &'a str,
    heartbeat: Heartbeat,
    performance: Performance,
    totals: Totals,
}

pub(crate) async fn status(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let heartbeat = client.ask(client.api().heartbeat()).await?;
    let performance = client.ask(client.api().performance()).await?;
    let totals = client.ask(client.api().totals()).await?;
    if settings.json {
        output::json(&HordeStatus {
            url: &settings.url,
            heartbeat,
            performance,
            totals,
        });
        return Ok(());
    }
    output::fields(&[
        ("horde", settings.url.clone()),
        ("version", heartbeat.version.to_string()),
        ("workers online", performance.text_worker_count.to_string()),
        ("threads", performance.text_thread_count.to_string()),
        (
            "queued requests",
            performance.queued_text_requests.to_string(),
        ),
        ("queued tokens", performance.queued_tokens.to_string()),
        (
            "tokens past minute",
            performance.past_minute_tokens.to_string(),
        ),
        ("generations today", totals.day.requests.to_string()),
        ("generations total", totals.total.requests.to_string()),
        ("tokens total", totals.total.tokens.to_string()),
    ]);
    Ok(())
}
