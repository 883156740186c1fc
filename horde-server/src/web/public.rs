//! Public pages: the home page (live figures, how to use this horde and earn kudos, questions),
//! the workers, models and users tables, and a page per worker.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use serde::Deserialize;

use super::{escape, page, signed_in, PageError};
use crate::api::workers::{worker_details, Viewer};
use crate::auth::username;
use crate::driver::Driver;

/// Users per page of `/users`.
const USERS_PER_PAGE: usize = 25;

/// This horde's address for the examples: its `--public-url`, else the host the browser
/// asked (http).
fn site_url(config: &crate::config::Config, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("127.0.0.1:7001");
    format!("http://{host}")
}

pub(super) async fn home(State(state): State<Driver>, headers: HeaderMap) -> Html<String> {
    let session = signed_in(&state, &headers);
    let url = escape(&site_url(state.config(), &headers));
    let figures = state.read(|core, now| {
        let (workers, threads) = core.horde().online_capacity(now);
        let (queued, queued_tokens) = core.horde().queued_totals();
        let (minute_requests, minute_tokens) = core.stats.since(now, 1);
        let (total_requests, total_tokens) = core.stats.total();
        let mut body = String::from(
            "<p>A crowdsourced text-generation horde: volunteers run workers beside their \
             models and earn kudos; anyone may ask for generations, and kudos put them first \
             when the horde is busy.</p>",
        );
        if core.modes.maintenance {
            body.push_str(
                "<p class=\"error\">This horde is in maintenance: it finishes the requests \
                 it has and takes no new ones for now.</p>",
            );
        }
        body.push_str("<table>");
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
    let guide = format!(
        "<h2>Use it</h2>\
        <p>This horde is at <code>{url}</code>. <a href=\"/register\">Register</a> for a key, or \
        use the anonymous key <code>0000000000</code> (it waits behind everyone with kudos).</p>\
        <p><strong>SillyTavern</strong>: Chat Completion, source <em>Custom \
        (OpenAI-compatible)</em>, endpoint <code>{url}/v1</code>, your key as the API key. \
        <strong>KoboldAI Lite</strong> (<a href=\"https://lite.koboldai.net\">open it</a>; a link \
        cannot set where it connects): in its AI settings choose its OpenAI-compatible source \
        with the endpoint <code>{url}/v1</code> and your key, or its AI Horde source with this \
        horde's address where it lets you change the horde. Tools made for AI Horde (the \
        Python <code>horde-sdk</code>, bots) use <code>{url}/api/v2</code>; the API is described \
        at <a href=\"/api\">/api</a>.</p>\
        <p>Any OpenAI client:</p>\
        <pre><code>from openai import OpenAI\n\
client = OpenAI(base_url=\"{url}/v1\", api_key=\"YOUR KEY\")\n\
answer = client.completions.create(model=\"*\", prompt=\"Once upon a time\", max_tokens=80)\n\
print(answer.choices[0].text)</code></pre>\
        <p>The command line:</p>\
        <pre><code>horde-cli --url {url} login\n\
horde-cli --url {url} generate \"Once upon a time\"</code></pre>\
        <h2>Kudos</h2>\
        <p>Kudos are this horde's currency. Every generation moves kudos from the one who asked to \
        the owner of the worker that wrote it, more for more tokens and for larger models; \
        workers also earn kudos for staying online. When the horde is busy, requests are served \
        in the order of their owners' kudos, so kudos buy a shorter wait, never access: balances \
        may go below zero, and anyone may ask. You earn kudos by running a worker, and you can \
        give yours to anyone (<a href=\"/transfer\">send kudos</a>).</p>\
        <h2>Run a worker</h2>\
        <p>Beside KoboldCpp (or any OpenAI-compatible server, with <code>--backend openai</code>); \
        the kudos it earns are yours:</p>\
        <pre><code>horde-worker \\\n\
  --horde-url {url} \\\n\
  --api-key YOUR_KEY \\\n\
  --name \"my worker\" \\\n\
  --backend-url http://127.0.0.1:5001</code></pre>\
        <p>It waits for jobs, yields KoboldCpp to you while you use it yourself, and says what \
        it earns; <code>horde-worker --check</code> first checks everything and changes \
        nothing.</p>\
        <h2>Questions</h2>\
        <details><summary>Who can read my prompts?</summary><p>The worker that generates them: \
        its owner's machine sees the prompt and the text. Do not send what you would not show a \
        stranger.</p></details>\
        <details><summary>Why is my request waiting?</summary><p>Every worker is busy, or no \
        online worker serves the model you asked for (the models table above says which are \
        served). Requests of users with more kudos go first.</p></details>\
        <details><summary>Why did my worker earn nothing for a job?</summary><p>The horde pays \
        nothing for degenerate text (one character repeated), for a generation faster than \
        the model could have written it (the worker is then suspected), or for a request from \
        the worker's own address. Part of a new account's earnings is held in escrow until the \
        horde trusts it.</p></details>\
        <details><summary>What is my balance, and can it go negative?</summary><p>Your balance is \
        on <a href=\"/account\">your account</a>. It may go below zero: you keep being served, \
        after those with more kudos.</p></details>\
        <details><summary>I lost my key.</summary><p>Sign in another way (GitHub, Discord or Google, if \
        this horde offers them) and make a new key on your account page; a key is never shown \
        twice.</p></details>"
    );
    page("horde", session.as_ref(), &(figures + &guide))
}

/// The models with online workers or in the model reference, and one row for the others
/// that waiting requests name (so that made-up names cannot grow the page).
fn models_table(core: &crate::driver::Core, now: horde_core::Timestamp) -> String {
    let mut table = String::from(
        "<div class=\"scroll wide\"><table><tr><th>Model</th><th>Workers</th><th>Waiting</th>\
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
    let viewer = viewer(&state, session.as_ref());
    let body = state.read(|core, now| {
        let mut workers: Vec<_> = core.horde().workers().collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut body = String::from(
            "<div class=\"scroll wide\"><table><tr><th>Worker</th><th>Owner</th><th>Models</th>\
             <th>State</th><th>Jobs done</th><th>Tokens</th><th>Uptime</th></tr>",
        );
        for worker in workers {
            let shown = worker_details(core, worker, viewer(now));
            let models: Vec<String> = shown.models.iter().map(|m| escape(m)).collect();
            let _ = write!(
                body,
                "<tr><td><a href=\"/workers/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&shown.id),
                escape(&shown.name),
                shown.owner.as_deref().map_or("–".to_owned(), escape),
                models.join("<br>"),
                state_of(&shown),
                shown.requests_fulfilled,
                worker.tokens_generated,
                human_duration(shown.uptime)
            );
        }
        body.push_str(
            "</table></div><p>An owner is shown where they made their workers public (and to \
             themselves).</p>",
        );
        body
    });
    page("Workers", session.as_ref(), &body)
}

/// `GET /workers/{id}`: one worker, its performance and uptime.
pub(super) async fn worker(
    State(state): State<Driver>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let session = signed_in(&state, &headers);
    let viewer = viewer(&state, session.as_ref());
    let missing = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            session.as_ref(),
            format!("There is no worker {id} here."),
        )
    };
    let id =
        crate::api::parse_uuid(&id, crate::error::Rc::WorkerNotFound).map_err(|_| missing())?;
    let shown = state
        .read(|core, now| {
            let worker = core.horde().worker(horde_core::WorkerId(id))?;
            Some((
                worker_details(core, worker, viewer(now)),
                worker.tokens_generated,
            ))
        })
        .ok_or_else(missing)?;
    let (shown, tokens) = shown;
    let mut rows: Vec<(&str, String)> = vec![
        ("State", state_of(&shown).to_owned()),
        (
            "Owner",
            shown
                .owner
                .as_deref()
                .map_or("not public".to_owned(), escape),
        ),
        (
            "Models",
            shown
                .models
                .iter()
                .map(|m| escape(m))
                .collect::<Vec<_>>()
                .join("<br>"),
        ),
        ("Speed", escape(&shown.performance)),
        ("Uptime", human_duration(shown.uptime)),
        ("Jobs done", shown.requests_fulfilled.to_string()),
        ("Tokens generated", tokens.to_string()),
        ("Kudos earned", shown.kudos_rewards.to_string()),
        ("Threads", shown.threads.to_string()),
        (
            "Longest generation / context",
            format!("{} / {} tokens", shown.max_length, shown.max_context_length),
        ),
        (
            "Trusted",
            if shown.trusted { "yes" } else { "no" }.to_owned(),
        ),
        ("Software", software(&shown.bridge_agent)),
    ];
    if let Some(team) = &shown.team.name {
        rows.push(("Team", escape(team)));
    }
    if !shown.info.is_empty() {
        rows.push(("About", escape(&shown.info)));
    }
    let mut body = String::from("<table>");
    for (label, value) in rows {
        let _ = write!(body, "<tr><th>{label}</th><td>{value}</td></tr>");
    }
    body.push_str("</table><p><a href=\"/workers\">All workers</a></p>");
    Ok(page(&shown.name, session.as_ref(), &body))
}

/// Who looks at a worker page (anonymous when signed out), as of the time passed.
fn viewer(
    state: &Driver,
    session: Option<&super::SignedIn>,
) -> impl Fn(horde_core::Timestamp) -> Viewer {
    let user = session.map_or(horde_core::UserId::ANONYMOUS, |s| s.user);
    let admin = state.is_admin(user);
    move |now| Viewer { user, admin, now }
}

/// `online`, `offline` or `maintenance`.
fn state_of(worker: &crate::wire::WorkerDetails) -> &'static str {
    if worker.maintenance_mode {
        "maintenance"
    } else if worker.online {
        "online"
    } else {
        "offline"
    }
}

/// `seconds` in the two largest units: `45s`, `12m`, `3h 20m`, `2d 4h`.
/// A worker's `bridge_agent` (`name:version:url`) as a reader wants it: "name version", linked
/// to its URL when that is a web address (anything else stays text).
fn software(bridge_agent: &str) -> String {
    let mut parts = bridge_agent.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let url = parts.next().unwrap_or_default();
    let label = escape(format!("{name} {version}").trim_end());
    if url.starts_with("https://") || url.starts_with("http://") {
        format!(
            r#"<a href="{}" rel="nofollow noopener">{label}</a>"#,
            escape(url)
        )
    } else {
        label
    }
}

fn human_duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
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
