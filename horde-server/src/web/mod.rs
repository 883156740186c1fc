//! Server-rendered web pages: the live horde, registration, signing in (API key), the account,
//! kudos transfers, and public tables of workers, models and users.
//!
//! Plain HTML with a small stylesheet and no scripts: every page works in any browser and on
//! a phone, and every text from a user is escaped. A signed-in browser holds a random session
//! id in an `HttpOnly; SameSite=Lax` cookie (`Secure` when the horde's public URL is https);
//! the server keeps only its salted digest, in the database. Every form of a signed-in page
//! carries the session's CSRF token.

mod account;
mod oauth;
mod public;
mod transfer;

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use horde_core::UserId;

use crate::auth::username;
use crate::driver::Driver;
use crate::error::ApiError;
pub use crate::html::escape;

/// The session cookie's name.
const COOKIE_NAME: &str = "horde_session";

/// Routes of the web pages.
pub fn routes() -> Router<Driver> {
    Router::new()
        .route("/", get(public::home))
        .route("/favicon.svg", get(favicon))
        .route(
            "/favicon.ico",
            get(|| async { redirect("/favicon.svg", None) }),
        )
        .route("/workers", get(public::workers))
        .route("/workers/{id}", get(public::worker))
        .route("/models", get(public::models))
        .route("/users", get(public::users))
        .route(
            "/register",
            get(account::register_form).post(account::register),
        )
        .route("/login", get(account::login_form).post(account::login))
        .route("/logout", post(account::logout))
        .route("/logout/everywhere", post(account::logout_everywhere))
        .route("/account", get(account::account))
        .route("/account/key", post(account::new_key))
        .route("/account/maintenance", post(account::maintenance))
        .route("/transfer", get(transfer::form).post(transfer::confirm))
        .route("/transfer/send", post(transfer::send))
        .route("/oauth/{provider}/start", get(oauth::start))
        .route("/oauth/{provider}/callback", get(oauth::callback))
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// Who.
    pub(crate) user: UserId,
    /// `alias#id`.
    pub(crate) username: String,
    /// The token this session's forms carry.
    pub(crate) csrf: String,
    /// The digest of the session id.
    pub(crate) digest: [u8; 32],
}

/// The session the request's cookie names, if it is live.
pub(crate) fn signed_in(state: &Driver, headers: &HeaderMap) -> Option<SignedIn> {
    let token = session_cookie(headers)?;
    state.read(|core, now| {
        let digest = core.users.digest(&token);
        let session = core.sessions.get(&digest, now)?;
        let row = core.users.get(session.user)?;
        Some(SignedIn {
            user: session.user,
            username: username(row),
            csrf: session.csrf.clone(),
            digest,
        })
    })
}

/// Headers on every answer that keep browsers from misreading it: no content sniffing, no
/// framing by other sites (clickjacking), no full URLs in `Referer` to other sites; and on
/// pages, a Content-Security-Policy that allows nothing from elsewhere and no script but the
/// key page's copy button.
pub(crate) async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    static POLICY: std::sync::OnceLock<Option<HeaderValue>> = std::sync::OnceLock::new();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    let html = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = POLICY.get_or_init(|| {
        HeaderValue::from_str(&format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-hashes' {}; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            account::copy_handler_hash()
        ))
        .ok()
    });
    if let (true, Some(policy)) = (html, policy) {
        headers.insert(
            HeaderName::from_static("content-security-policy"),
            policy.clone(),
        );
    }
    response
}

/// Returns true if and only if a browser says this request comes from another site: its
/// `Sec-Fetch-Site` is `cross-site`, or its `Origin` is neither the host it was sent to nor
/// the configured `public_url` (`null` included). Requests without either (not from a
/// browser, or from an old one on this site) are not cross-site. Signing in checks it: another
/// site must not sign a visitor into an account of its choosing (login CSRF).
pub(crate) fn cross_site(config: &crate::config::Config, headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    let Some(origin) = text("origin") else {
        return false;
    };
    if config
        .public_url
        .as_deref()
        .is_some_and(|url| url.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return false;
    }
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let host = text("host");
    !matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The session id in the `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE_NAME)
}

/// The value of the cookie `name` in the `Cookie` header.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value for session `token` (`None`: clear it).
fn session_cookie_header(state: &Driver, token: Option<&str>) -> HeaderValue {
    let max_age = crate::sessions::SESSION_TTL_MS / 1000;
    cookie_header(
        state.config(),
        COOKIE_NAME,
        "/",
        token.map(|t| (t, max_age)),
    )
}

/// A `Set-Cookie` value: `name` for `path`, `HttpOnly; SameSite=Lax`, `Secure` when the
/// public URL is https; with `(value, max_age_secs)`, set, else cleared.
pub(crate) fn cookie_header(
    config: &crate::config::Config,
    name: &str,
    path: &str,
    value: Option<(&str, u64)>,
) -> HeaderValue {
    let secure = config
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    let (value, max_age) = value.unwrap_or(("", 0));
    let mut text =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `303 See Other` to `to`, optionally setting the session cookie.
fn redirect(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, location);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// The hidden CSRF field of a signed-in form.
fn csrf_field(session: &SignedIn) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&session.csrf)
    )
}

/// The site's icon: a small SVG (browsers asking for `/favicon.ico` are sent here).
async fn favicon() -> Response {
    const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
        <rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#5b4a2f\"/>\
        <circle cx=\"10\" cy=\"12\" r=\"4\" fill=\"#f4f1ea\"/>\
        <circle cx=\"22\" cy=\"12\" r=\"4\" fill=\"#f4f1ea\"/>\
        <circle cx=\"16\" cy=\"22\" r=\"4\" fill=\"#f4f1ea\"/></svg>";
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON,
    )
        .into_response()
}

/// Answers a URL nothing serves: a page for a browser (it accepts HTML), the API's JSON error
/// for everything else and under `/api` and `/v1`.
pub(crate) async fn not_found(
    State(state): State<Driver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let api = ["/api/", "/v1/"]
        .iter()
        .any(|prefix| uri.path().starts_with(prefix));
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if api || !browser {
        return crate::api::not_found().await.into_response();
    }
    let session = signed_in(&state, &headers);
    let body = format!(
        "<p>Nothing is at <code>{}</code>.</p><p>Try the <a href=\"/\">home page</a>, the \
         <a href=\"/workers\">workers</a> or the <a href=\"/models\">models</a>; the API is \
         described at <a href=\"/api\">/api</a>.</p>",
        escape(uri.path())
    );
    (
        StatusCode::NOT_FOUND,
        page("Page not found", session.as_ref(), &body),
    )
        .into_response()
}

/// A page: the navigation (with the signed-in user, if any), a title and `body`.
pub(crate) fn page(title: &str, session: Option<&SignedIn>, body: &str) -> Html<String> {
    let mut nav = String::from(
        "<a href=\"/\">horde</a> <a href=\"/workers\">workers</a> \
         <a href=\"/models\">models</a> <a href=\"/users\">users</a> <a href=\"/api\">API</a> \
         <span class=\"grow\"></span>",
    );
    match session {
        Some(session) => {
            let _ = write!(
                nav,
                "<a href=\"/account\">{}</a> <a href=\"/transfer\">transfer</a> \
                 <form method=\"post\" action=\"/logout\" class=\"inline\">{}\
                 <button type=\"submit\" class=\"link\">sign out</button></form>",
                escape(&session.username),
                csrf_field(session)
            );
        }
        None => nav.push_str("<a href=\"/login\">sign in</a> <a href=\"/register\">register</a>"),
    }
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · horde</title><link rel=\"icon\" href=\"/favicon.svg\" \
         type=\"image/svg+xml\"><style>{STYLE}</style></head>\
         <body><nav>{nav}</nav><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title)
    ))
}

/// The stylesheet: readable on a desktop and on a phone (nothing wider than the screen: wide
/// tables scroll inside their box, with a cue on narrow screens; commands scroll in theirs).
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;line-height:1.5;color:#222}\
nav{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center;padding:.6rem 1rem;\
background:#f4f1ea;border-bottom:1px solid #ddd}\
nav .grow{flex:1}main{max-width:48rem;margin:1.5rem auto;padding:0 1rem;overflow-wrap:break-word}\
code{background:#eee;padding:.1rem .3rem}\
pre{background:#eee;padding:.6rem .8rem;overflow-x:auto;line-height:1.4}pre code{padding:0}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}\
td,th{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #eee;vertical-align:top}\
.scroll{overflow-x:auto}.scroll td,.scroll th{overflow-wrap:normal}\
@media (max-width:40rem){.wide::before{content:'Scroll sideways for all the columns \\2192';\
display:block;font-size:.85em;color:#666}}\
.error{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}\
.key{user-select:all;font-size:1.1em}\
form.inline{display:inline;margin:0}button.link{background:none;border:none;color:#00e;\
text-decoration:underline;cursor:pointer;padding:0;font:inherit;margin:0}\
label{display:block;margin:.5rem 0}input[type=text],input[type=password],input[type=number]\
{font:inherit;padding:.3rem;width:100%;max-width:24rem;box-sizing:border-box}\
button{font:inherit;padding:.4rem 1rem;margin:.3rem .3rem .3rem 0}\
a.button{display:inline-block;padding:.4rem 1rem;margin:.3rem .3rem .3rem 0;\
border:1px solid #888;border-radius:4px;text-decoration:none;color:#222;background:#f7f7f7}\
details{margin:.4rem 0}summary{cursor:pointer;font-weight:bold}\
.op{border:1px solid #ddd;border-radius:6px;padding:.2rem .8rem;margin:.8rem 0}\
.m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}";

/// A page answering a request that needs a signed-in browser: to the sign-in page.
fn sign_in_first() -> Response {
    redirect("/login", None)
}

/// A page saying `message` with `status`.
fn error_page(status: StatusCode, session: Option<&SignedIn>, message: &str) -> Response {
    let body = format!("<p class=\"error\">{}</p>", escape(message));
    (status, page("Something went wrong", session, &body)).into_response()
}

/// What a page handler returns when it fails: rendered as a page that says why (with the
/// navigation of `session`, when signed in), so that handlers can use `?`.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    session: Option<SignedIn>,
    message: String,
}

impl PageError {
    /// `message` with `status`, shown to `session` (or to nobody signed in).
    pub(crate) fn new(
        status: StatusCode,
        session: Option<&SignedIn>,
        message: impl Into<String>,
    ) -> PageError {
        PageError {
            status,
            session: session.cloned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.status, self.session.as_ref(), &self.message)
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError::new(error.status(), None, error.to_string())
    }
}

/// Turns an error of the API's kind into a page for a signed-in browser.
pub(crate) trait OrPage<T> {
    /// The error as a page shown to `session`.
    fn or_page(self, session: &SignedIn) -> Result<T, PageError>;
}

impl<T, E: Into<ApiError>> OrPage<T> for Result<T, E> {
    fn or_page(self, session: &SignedIn) -> Result<T, PageError> {
        self.map_err(|e| {
            let error: ApiError = e.into();
            PageError::new(error.status(), Some(session), error.to_string())
        })
    }
}
