//! The horde as a whole: models and status.

use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

pub(crate) async fn models(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let models = client.get("/status/models?type=text").await?;
    if settings.json {
        output::json(&models);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = models
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    ["name", "count", "queued", "jobs", "performance", "eta"]
                        .iter()
                        .map(|k| output::text(&m[*k]))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
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

pub(crate) async fn status(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let heartbeat = client.get("/status/heartbeat").await?;
    let performance = client.get("/status/performance").await?;
    let totals = client.get("/stats/text/totals").await?;
    if settings.json {
        output::json(&json!({
            "url": settings.url,
            "heartbeat": heartbeat,
            "performance": performance,
            "totals": totals,
        }));
        return Ok(());
    }
    output::fields(&[
        ("horde", settings.url.clone()),
        ("version", output::text(&heartbeat["version"])),
        (
            "workers online",
            output::text(&performance["text_worker_count"]),
        ),
        ("threads", output::text(&performance["text_thread_count"])),
        (
            "queued requests",
            output::text(&performance["queued_text_requests"]),
        ),
        ("queued tokens", output::text(&performance["queued_tokens"])),
        (
            "tokens past minute",
            output::text(&performance["past_minute_tokens"]),
        ),
        (
            "generations today",
            output::text(&totals["day"]["requests"]),
        ),
        (
            "generations total",
            output::text(&totals["total"]["requests"]),
        ),
        ("tokens total", output::text(&totals["total"]["tokens"])),
    ]);
    Ok(())
}
