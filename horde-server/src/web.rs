//! Server-rendered web pages: the home page with live horde figures, and registration.
//!
//! Plain HTML with no scripts: every page works in any browser and every text from a user is
//! escaped.

use std::fmt::Write as _;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::users::register_user;
use crate::api::ClientIp;
use crate::auth::username;
use crate::driver::Driver;
use crate::error::{ApiError, Rc};

/// Routes of the web pages.
pub fn routes() -> Router<Driver> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register_form).post(register))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · horde</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;\
         padding:0 1rem;line-height:1.5}}code{{background:#eee;padding:.1rem .3rem}}\
         table{{border-collapse:collapse}}td,th{{padding:.2rem .8rem;text-align:left}}\
         .error{{color:#a00}}</style></head>\
         <body><nav><a href=\"/\">horde</a> · <a href=\"/register\">register</a></nav>\
         <h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    ))
}

async fn home(State(state): State<Driver>) -> Html<String> {
    let body = state.read(|core, now| {
        let (workers, threads) = core.horde().online_capacity(now);
        let (queued, queued_tokens) = core.horde().queued_totals();
        let (minute_requests, minute_tokens) = core.stats.since(now, 1);
        let (total_requests, total_tokens) = core.stats.total();
        let mut body = String::from(
            "<p>A crowdsourced text-generation horde. Clients and workers speak the AI Horde \
             v2 API at <code>/api/v2</code>.</p><table>",
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
        body.push_str(
            "</table><h2>Models</h2><table><tr><th>Model</th><th>Workers</th><th>Waiting</th></tr>",
        );
        for model in core.horde().model_stats(now) {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&model.name),
                model.workers,
                model.queued
            );
        }
        body.push_str("</table>");
        body
    });
    page("horde", &body)
}

fn form(message: &str) -> String {
    format!(
        "{message}<form method=\"post\" action=\"/register\">\
         <label>Username <input name=\"username\" maxlength=\"50\" required></label> \
         <button type=\"submit\">Register</button></form>\
         <p>You get an API key, shown once: keep it. Clients and workers send it in the \
         <code>apikey</code> header.</p>"
    )
}

async fn register_form(State(state): State<Driver>) -> Response {
    if !state.config().registration {
        let body = "<p class=\"error\">Registration is disabled on this horde.</p>";
        return (StatusCode::FORBIDDEN, page("Register", body)).into_response();
    }
    page("Register", &form("")).into_response()
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    username: String,
}

async fn register(
    State(state): State<Driver>,
    ClientIp(ip): ClientIp,
    form_data: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let result = match form_data {
        Ok(Form(data)) => register_user(&state, ip, &data.username).await,
        Err(_) => Err(ApiError::invalid(
            Rc::InvalidUsername,
            "username",
            "the form needs a username",
        )),
    };
    match result {
        Ok((row, key)) => {
            let body = format!(
                "<p>Welcome, <strong>{}</strong>.</p>\
                 <p>Your API key: <code id=\"api-key\">{}</code></p>\
                 <p>This is the only time it is shown. Keep it somewhere safe.</p>",
                escape(&username(&row)),
                escape(&key)
            );
            (StatusCode::CREATED, page("Registered", &body)).into_response()
        }
        Err(error) => {
            let status = error.status();
            let message = format!("<p class=\"error\">{}</p>", escape(&error.to_string()));
            (status, page("Register", &form(&message))).into_response()
        }
    }
}
