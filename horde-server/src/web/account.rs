//! Registration, signing in and out, and the account page (balance, kudos details, workers
//! with maintenance toggles, a new API key).

use std::fmt::Write as _;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use horde_core::{UserId, WorkerUpdate};
use serde::Deserialize;

use super::{
    csrf_field, escape, page, redirect, session_cookie_header, sign_in_first, signed_in, OrPage,
    PageError, SignedIn,
};
use crate::auth::{new_token, username};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::extract::ClientIp;
use crate::ops;
use crate::ops::sessions::Ending;
use crate::store::Movement;
use crate::views::user_details;

/// A button that copies the key shown in `#api-key` and says so: with the clipboard API where
/// the page is a secure context, else by selecting the key and the browser's copy command
/// (plain http on a LAN), and where neither works it leaves the key selected and says to copy
/// it by hand. One tap on the key selects it all, too (`user-select: all`).
const COPY: &str = "<button type=\"button\" onclick=\"var b=this,k=document.getElementById(\
    'api-key'),r=document.createRange(),s=getSelection();r.selectNodeContents(k);\
    s.removeAllRanges();s.addRange(r);var done=function(ok){b.textContent=ok?'Copied':\
    'Selected: copy it by hand'};if(navigator.clipboard&&window.isSecureContext){\
    navigator.clipboard.writeText(k.textContent).then(function(){done(true)},function(){\
    var ok=false;try{ok=document.execCommand('copy')}catch(e){}done(ok)})}else{var ok=false;\
    try{ok=document.execCommand('copy')}catch(e){}done(ok)}\">Copy</button>";

/// The hash the pages' Content-Security-Policy allows [`COPY`]'s handler by (the one script
/// on any page): `'sha256-…'` of its text.
pub(super) fn copy_handler_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    let handler = COPY
        .split_once("onclick=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(handler, _)| handler);
    let digest = sha2::Sha256::digest(handler.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn register_body(config: &crate::config::Config, message: &str) -> String {
    format!(
        "{message}{}<form method=\"post\" action=\"/register\">\
         <label>Username <input type=\"text\" name=\"username\" maxlength=\"50\" required></label>\
         <button type=\"submit\">Register</button></form>\
         <p>You get an API key, shown once: keep it. Clients and workers send it in the \
         <code>apikey</code> header; with it you can also <a href=\"/login\">sign in</a>.</p>",
        super::oauth::sign_in_links(config)
    )
}

pub(super) async fn register_form(State(state): State<Driver>, headers: HeaderMap) -> Response {
    let session = signed_in(&state, &headers);
    if !state.config().registration {
        let body = "<p class=\"error\">Registration is disabled on this horde.</p>";
        return (
            StatusCode::FORBIDDEN,
            page("Register", session.as_ref(), body),
        )
            .into_response();
    }
    page(
        "Register",
        session.as_ref(),
        &register_body(state.config(), ""),
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterForm {
    username: String,
}

pub(super) async fn register(
    State(state): State<Driver>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form_data: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let result = match form_data {
        Ok(Form(data)) => ops::users::register(&state, ip, &data.username).await,
        Err(_) => Err(ApiError::invalid(
            Rc::InvalidUsername,
            "username",
            "the form needs a username",
        )),
    };
    match result {
        Ok((row, key)) => {
            // The new user is signed in (unless the form came from another site, which must
            // not choose whose session a visitor has).
            let started = if super::cross_site(state.config(), &headers) {
                None
            } else {
                start_session_with_csrf(&state, row.id).await.ok()
            };
            let (cookie, session) = match started {
                Some((cookie, csrf)) => (
                    Some(cookie),
                    Some(SignedIn {
                        user: row.id,
                        username: username(&row),
                        csrf,
                        digest: [0; 32],
                    }),
                ),
                None => (None, None),
            };
            let next = if session.is_some() {
                "You are signed in: <a href=\"/account\">your account</a> shows your kudos."
            } else {
                "Then <a href=\"/login\">sign in</a> with it."
            };
            let body = format!(
                "<p>Welcome, <strong>{}</strong>.</p>\
                 <p>Your API key: <code id=\"api-key\" class=\"key\">{}</code> {COPY}</p>\
                 <p>This is the only time it is shown: keep it somewhere safe. Clients and \
                 workers send it; <code>horde-cli login</code> saves it for the command line and \
                 <code>horde-worker</code>. {next}</p>",
                escape(&username(&row)),
                escape(&key)
            );
            let mut response = (
                StatusCode::CREATED,
                page("Registered", session.as_ref(), &body),
            )
                .into_response();
            if let Some(cookie) = cookie {
                response
                    .headers_mut()
                    .insert(axum::http::header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            let message = format!("<p class=\"error\">{}</p>", escape(&error.to_string()));
            (
                error.status(),
                page("Register", None, &register_body(state.config(), &message)),
            )
                .into_response()
        }
    }
}

fn login_body(config: &crate::config::Config, message: &str) -> String {
    format!(
        "{message}{}<form method=\"post\" action=\"/login\">\
         <label>API key <input type=\"password\" name=\"apikey\" autocomplete=\"current-password\" \
         required></label><button type=\"submit\">Sign in</button></form>\
         <p>No key yet? <a href=\"/register\">Register</a>.</p>",
        super::oauth::sign_in_links(config)
    )
}

pub(super) async fn login_form(State(state): State<Driver>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).is_some() {
        return redirect("/account", None);
    }
    page("Sign in", None, &login_body(state.config(), "")).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    apikey: String,
}

pub(super) async fn login(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    if super::cross_site(state.config(), &headers) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            None,
            "This sign-in form was sent from another site; nobody was signed in. Sign in from \
             this horde's own page.",
        ));
    }
    let key = form_data.map(|Form(f)| f.apikey).unwrap_or_default();
    let user = state.read(|core, _| core.users.authenticate(Some(&key)));
    match user {
        Ok(user) if !user.is_anonymous() => {
            let cookie = start_session(&state, user).await?;
            Ok(redirect("/account", Some(cookie)))
        }
        _ => {
            let message = "<p class=\"error\">That API key is not known here. (The anonymous \
                           key cannot sign in.)</p>";
            Ok((
                StatusCode::UNAUTHORIZED,
                page("Sign in", None, &login_body(state.config(), message)),
            )
                .into_response())
        }
    }
}

/// Starts a session for `user`; returns its `Set-Cookie` value.
pub(super) async fn start_session(
    state: &Driver,
    user: UserId,
) -> Result<axum::http::HeaderValue, ApiError> {
    start_session_with_csrf(state, user)
        .await
        .map(|(cookie, _)| cookie)
}

/// [`start_session`], with the session's CSRF token (for a page rendered at once).
async fn start_session_with_csrf(
    state: &Driver,
    user: UserId,
) -> Result<(axum::http::HeaderValue, String), ApiError> {
    let token = new_token()?;
    let csrf = new_token()?;
    ops::sessions::start(state, user, &token, csrf.clone()).await?;
    Ok((session_cookie_header(state, Some(&token)), csrf))
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Returns true if and only if the form's token is this session's.
pub(super) fn csrf_ok(session: &SignedIn, token: &str) -> bool {
    !token.is_empty() && token == session.csrf
}

/// The page for a form whose CSRF token is not its session's.
pub(super) fn csrf_refused(session: &SignedIn) -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        Some(session),
        "This form is out of date or came from another page; nothing was changed. Open the \
         page again and resend it.",
    )
}

pub(super) async fn logout(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    sign_out(&state, &headers, form_data, false).await
}

/// Signs the user out of every browser, this one included (a lost phone, a shared computer).
pub(super) async fn logout_everywhere(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    sign_out(&state, &headers, form_data, true).await
}

/// Ends this browser's session, or (`everywhere`) all of its user's, and goes home.
async fn sign_out(
    state: &Driver,
    headers: &HeaderMap,
    form_data: Result<Form<CsrfForm>, FormRejection>,
    everywhere: bool,
) -> Result<Response, PageError> {
    let Some(session) = signed_in(state, headers) else {
        return Ok(redirect("/", Some(session_cookie_header(state, None))));
    };
    let token = form_data.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(&session, &token) {
        return Err(csrf_refused(&session));
    }
    let ending = if everywhere {
        Ending::AllOf(session.user)
    } else {
        Ending::One(session.digest)
    };
    ops::sessions::end(state, ending).await.or_page(&session)?;
    Ok(redirect("/", Some(session_cookie_header(state, None))))
}

pub(super) async fn account(State(state): State<Driver>, headers: HeaderMap) -> Response {
    let Some(session) = signed_in(&state, &headers) else {
        return sign_in_first();
    };
    let body = account_page(&state, &session, "").await;
    page("Your account", Some(&session), &body).into_response()
}

/// Movements shown on the account page.
const RECENT_MOVEMENTS: usize = 20;

/// The account page after `notice`: details, workers and key, then the kudos history, read
/// from the database on a blocking thread (`None` when it cannot be read now).
async fn account_page(state: &Driver, session: &SignedIn, notice: &str) -> String {
    let user = session.user;
    let reading = state.clone();
    let read = tokio::task::spawn_blocking(move || reading.account_history(user, RECENT_MOVEMENTS));
    let history = match read.await {
        Ok(Ok(history)) => Some(history),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading the kudos history failed");
            None
        }
        Err(_) => None,
    };
    let generations = history.as_ref().map_or_else(String::new, |h| {
        format!(
            "<tr><th>Earned by your workers' generations</th><td id=\"earned\">{}</td></tr>\
             <tr><th>Spent on your requests</th><td id=\"spent\">{}</td></tr>",
            h.earned, h.spent
        )
    });
    account_body(state, session, notice, &generations)
        + &movements(
            state,
            user,
            history.as_ref().map(|h| h.movements.as_slice()),
        )
}

/// The recent kudos movements as a table.
fn movements(state: &Driver, user: UserId, rows: Option<&[Movement]>) -> String {
    let mut html = String::from("<h2>Recent movements</h2>");
    let Some(rows) = rows else {
        html.push_str("<p>Not available right now.</p>");
        return html;
    };
    if rows.is_empty() {
        html.push_str("<p>No kudos have moved in or out of your account yet.</p>");
        return html;
    }
    html.push_str(
        "<div class=\"scroll\"><table id=\"movements\"><tr><th>When</th><th>What</th>\
         <th>From</th><th>To</th><th>Kudos</th></tr>",
    );
    state.read(|core, now| {
        let name = |(id, escrow): (Option<UserId>, bool)| {
            let who = match id.and_then(|id| core.users.get(id)) {
                Some(row) => escape(&username(row)),
                None => "the horde".to_owned(),
            };
            if escrow {
                format!("{who} (escrow)")
            } else {
                who
            }
        };
        // A generation's other party stays private: who served a request is shown only when
        // its owner made their workers public, and who asked for one never.
        let public_owner = |id: Option<UserId>| {
            id.and_then(|id| core.horde().user(id))
                .is_some_and(|policy| policy.public_workers)
        };
        for row in rows {
            let incoming = row.to.0 == Some(user);
            let sign = if incoming { "+" } else { "−" };
            let generation = row.kind == "generation";
            let from = if generation && row.from.0 != Some(user) {
                "a requester".to_owned()
            } else {
                name(row.from)
            };
            let to = if generation && row.to.0 != Some(user) && !public_owner(row.to.0) {
                "a worker's owner".to_owned()
            } else {
                name(row.to)
            };
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{from}</td><td>{to}</td><td>{sign}{}</td></tr>",
                ago(now.millis(), row.at),
                escape(&row.kind),
                row.amount
            );
        }
    });
    html.push_str("</table></div>");
    html
}

/// How long ago `at` was, for people.
fn ago(now_ms: u64, at_ms: u64) -> String {
    let secs = now_ms.saturating_sub(at_ms) / 1000;
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The account page's content after `notice`, with the generation totals' rows.
fn account_body(state: &Driver, session: &SignedIn, notice: &str, generations: &str) -> String {
    let timeout = state.config().horde.economy.online_timeout_secs;
    state.read(|core, now| {
        let mut body = notice.to_owned();
        let Some(row) = core.users.get(session.user) else {
            return body;
        };
        let details = user_details(core, row, now, session.user, false);
        let _ = write!(
            body,
            "<p>Signed in as <strong>{}</strong>. Balance: <strong id=\"balance\">{}</strong> \
             kudos.</p><table>",
            escape(&details.username),
            details.kudos
        );
        let k = &details.kudos_details;
        body.push_str(generations);
        for (label, value) in [
            (
                "Net from generations (earned − spent)",
                k.accumulated.to_string(),
            ),
            ("Earned for uptime", k.uptime.to_string()),
            ("Received from others", k.received.to_string()),
            ("Given to others", k.gifted.to_string()),
            ("Granted by administrators", k.admin.to_string()),
            (
                "Held in escrow until you are trusted",
                k.evaluating.to_string(),
            ),
        ] {
            let _ = write!(body, "<tr><th>{label}</th><td>{value}</td></tr>");
        }
        body.push_str("</table><h2>Your workers</h2>");
        let mut workers: Vec<_> = core
            .horde()
            .workers()
            .filter(|w| w.owner == session.user)
            .collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        if workers.is_empty() {
            body.push_str(
                "<p>None yet. Run <code>horde-worker</code> with your API key to add one.</p>",
            );
        } else {
            body.push_str(
                "<div class=\"scroll\"><table><tr><th>Worker</th><th>State</th>\
                 <th>Jobs done</th><th></th></tr>",
            );
            for worker in workers {
                let online = worker.is_online(now, timeout);
                let state = match (worker.maintenance, online) {
                    (true, _) => "maintenance",
                    (false, true) => "online",
                    (false, false) => "offline",
                };
                let (action, label) = if worker.maintenance {
                    ("off", "leave maintenance")
                } else {
                    ("on", "enter maintenance")
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{state}</td><td>{}</td><td>\
                     <form method=\"post\" action=\"/account/maintenance\" class=\"inline\">{}\
                     <input type=\"hidden\" name=\"worker\" value=\"{}\">\
                     <input type=\"hidden\" name=\"maintenance\" value=\"{action}\">\
                     <button type=\"submit\">{label}</button></form></td></tr>",
                    escape(&worker.name),
                    worker.requests_fulfilled,
                    csrf_field(session),
                    worker.id.0
                );
            }
            body.push_str("</table></div>");
        }
        let _ = write!(
            body,
            "<h2>API key</h2><p>A new key replaces the old one at once: clients and workers \
             using the old key stop working until they get the new one, and other browsers \
             signed in to this account are signed out.</p>\
             <form method=\"post\" action=\"/account/key\">{}\
             <button type=\"submit\">Generate a new key</button></form>\
             <h2>Sessions</h2><p>Signed in somewhere you no longer use?</p>\
             <form method=\"post\" action=\"/logout/everywhere\">{}\
             <button type=\"submit\">Sign out everywhere</button></form>",
            csrf_field(session),
            csrf_field(session)
        );
        body
    })
}

pub(super) async fn new_key(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Some(session) = signed_in(&state, &headers) else {
        return Ok(sign_in_first());
    };
    let token = form_data.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(&session, &token) {
        return Err(csrf_refused(&session));
    }
    let key = ops::users::rekey(&state, session.user, session.digest)
        .await
        .or_page(&session)?;
    let notice = format!(
        "<p class=\"ok\">Your new API key: <code id=\"api-key\" class=\"key\">{}</code> {COPY}</p>\
         <p>This is the only time it is shown. The old key no longer works, and every \
         other browser signed in to this account has been signed out.</p>",
        escape(&key)
    );
    let body = account_page(&state, &session, &notice).await;
    Ok(page("Your account", Some(&session), &body).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct MaintenanceForm {
    #[serde(default)]
    csrf: String,
    worker: String,
    maintenance: String,
}

pub(super) async fn maintenance(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<MaintenanceForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Some(session) = signed_in(&state, &headers) else {
        return Ok(sign_in_first());
    };
    let Ok(Form(form)) = form_data else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            Some(&session),
            "The form is incomplete.",
        ));
    };
    if !csrf_ok(&session, &form.csrf) {
        return Err(csrf_refused(&session));
    }
    let Ok(id) = form.worker.parse::<uuid::Uuid>() else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            Some(&session),
            "No such worker.",
        ));
    };
    let on = form.maintenance == "on";
    let user = session.user;
    let update = WorkerUpdate {
        maintenance: Some(on),
        ..WorkerUpdate::default()
    };
    state
        .change(|txn| {
            txn.apply(|horde, _| {
                horde.update_worker(user, false, horde_core::WorkerId(id), update)
            })?;
            Ok::<_, ApiError>(())
        })
        .await
        .or_page(&session)?;
    Ok(redirect("/account", None))
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn times_read_as_how_long_ago() {
        let minute = 60_000;
        assert_eq!(ago(10 * minute, 10 * minute - 1_000), "just now");
        assert_eq!(ago(10 * minute, 5 * minute), "5 min ago");
        assert_eq!(ago(180 * minute, 0), "3 h ago");
        assert_eq!(ago(3 * 1_440 * minute, 0), "3 days ago");
        assert_eq!(
            ago(0, minute),
            "just now",
            "a clock step back is not negative"
        );
    }
}
