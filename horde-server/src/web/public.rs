//! Public pages: the home page with live figures, and the workers, models and users tables.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use serde::Deserialize;

use super::{escape, page, signed_in};
use crate::auth::username;
use crate::driver::Driver;

/// Users per page of `/users`.
const USERS_PER_PAGE: usize = 25;

pub(super) async fn home(State(state): State<Driver>, headers: HeaderMap) -> Html<String> {
    let session = signed_in(&state, &headers);
    let body = state.read(|core, now| {
        let (workers, threads) = core.horde().online_capacity(now);
        let (queued, queued_tokens) = core.horde().queued_totals();
        let (minute_requests, minute_tokens) = core.stats.since(now, 1);
        let (total_requests, total_tokens) = core.stats.total();
        let mut body = String::from(
            "<p>A crowdsourced text-generation horde: volunteers run workers beside their \
             models and earn kudos; anyone may ask for generations, and kudos put them first \
             when the horde is busy.</p><table>",
        );
        for (label, value) in [
            ("Workers online", workers.to_string()),
            ("Threads online", threads.to_string()),
            ("Generations waiting", queued.to_string()),
            ("Tokens waiting", queued_tokens.to_string()),
            (
                "Generations in the past minute",
                minute_requests.to_string(),
            ),
            ("Tokens in the past minute", minute_tokens.to_string()),
            ("Generations in total", total_requests.to_string()),
            ("Tokens in total", total_tokens.to_string()),
        ] {
            let _ = write!(body, "<tr><th>{label}</th><td>{value}</td></tr>");
        }
        body.push_str("</table><h2>Models</h2>");
        body.push_str(&models_table(core, now));
        body
    });
    let connect = "<h2>Connect</h2><p>Clients (KoboldAI Lite, SillyTavern, the Python \
        <code>horde-sdk</code>) speak the AI Horde v2 API: point them at this site's \
        <code>/api/v2</code>; the API is described at <a href=\"/api\">/api</a>. \
        <a href=\"/register\">Register</a> for a key, or use the anonymous key \
        <code>0000000000</code>.</p><h2>Run a worker</h2><p>Beside KoboldCpp or any \
        OpenAI-compatible server: <code>horde-worker --horde-url URL --api-key KEY --name NAME \
        --backend-url http://127.0.0.1:5001</code>; the kudos it earns are yours.</p>";
    page("horde", session.as_ref(), &(body + connect))
}

/// The models with online workers or in the model reference, and one row for the others
/// that waiting requests name (so that made-up names cannot grow the page).
fn models_table(core: &crate::driver::Core, now: horde_core::Timestamp) -> String {
    let mut table = String::from(
        "<div class=\"scroll\"><table><tr><th>Model</th><th>Workers</th><th>Waiting</th>\
         <th>Tokens/s</th><th>Wait (s)</th></tr>",
    );
    let (listed, other) = core.horde().listed_model_stats(now);
    for model in listed {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&model.name),
            model.workers,
            model.queued,
            model.performance(),
            model.eta_secs()
        );
    }
    if other.models > 0 {
        let _ = write!(
            table,
            "<tr><td>{} other models, asked for by waiting requests only</td><td>0</td>\
             <td>{}</td><td>0</td><td>–</td></tr>",
            other.models, other.queued
        );
    }
    table.push_str("</table></div>");
    table
}

pub(super) async fn models(State(state): State<Driver>, headers: HeaderMap) -> Html<String> {
    let session = signed_in(&state, &headers);
    let body = state.read(models_table);
    page("Models", session.as_ref(), &body)
}

pub(super) async fn workers(State(state): State<Driver>, headers: HeaderMap) -> Html<String> {
    let session = signed_in(&state, &headers);
    let timeout = state.config().horde.economy.online_timeout_secs;
    let body = state.read(|core, now| {
        let mut workers: Vec<_> = core.horde().workers().collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut body = String::from(
            "<div class=\"scroll\"><table><tr><th>Worker</th><th>Models</th><th>State</th>\
             <th>Jobs done</th><th>Tokens</th><th>Uptime (h)</th></tr>",
        );
        for worker in workers {
            let state = if worker.maintenance {
                "maintenance"
            } else if worker.is_online(now, timeout) {
                "online"
            } else {
                "offline"
            };
            let models: Vec<String> = worker.models.iter().map(|m| escape(m)).collect();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{}</td>\
                 <td>{:.1}</td></tr>",
                escape(&worker.name),
                models.join("<br>"),
                worker.requests_fulfilled,
                worker.tokens_generated,
                worker.uptime_ms as f64 / 3_600_000.0
            );
        }
        body.push_str("</table></div>");
        body
    });
    page("Workers", session.as_ref(), &body)
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: Option<usize>,
}

pub(super) async fn users(
    State(state): State<Driver>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Html<String> {
    let session = signed_in(&state, &headers);
    let page_number = query.ok().and_then(|q| q.page).unwrap_or(1).max(1);
    let body = state.read(|core, _| {
        let ledger = core.horde().ledger();
        let mut users: Vec<_> = core
            .users
            .iter()
            .filter(|row| !row.id.is_anonymous())
            .map(|row| (ledger.balance(row.id), row))
            .collect();
        users.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        let pages = users.len().div_ceil(USERS_PER_PAGE).max(1);
        let mut body = String::from(
            "<p>Users by kudos.</p><div class=\"scroll\"><table><tr><th>#</th><th>User</th>\
             <th>Kudos</th></tr>",
        );
        let skip = (page_number - 1).saturating_mul(USERS_PER_PAGE);
        for (rank, (kudos, row)) in users.iter().enumerate().skip(skip).take(USERS_PER_PAGE) {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{kudos}</td></tr>",
                rank + 1,
                escape(&username(row))
            );
        }
        body.push_str("</table></div><p>");
        if page_number > 1 {
            let _ = write!(
                body,
                "<a href=\"/users?page={}\">previous</a> ",
                page_number - 1
            );
        }
        let _ = write!(body, "page {page_number} of {pages}");
        if page_number < pages {
            let _ = write!(
                body,
                " <a href=\"/users?page={}\">next</a>",
                page_number + 1
            );
        }
        body.push_str("</p>");
        body
    });
    page("Users", session.as_ref(), &body)
}
