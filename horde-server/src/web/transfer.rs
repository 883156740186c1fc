//! Sending kudos from the web: a form (`username`, `amount`), a confirmation page showing
//! both names and the amount, then the transfer. The confirmation carries a one-time form id
//! used as the transfer's idempotency key, so a form sent twice pays once.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use horde_core::Kudos;
use serde::Deserialize;

use super::account::{csrf_ok, csrf_refused};
use super::{csrf_field, escape, page, sign_in_first, signed_in, SignedIn};
use crate::auth::{new_token, username};
use crate::driver::Driver;
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::ops;

fn form_body(state: &Driver, session: &SignedIn, message: &str, to: &str, amount: &str) -> String {
    let balance = state.read(|core, _| core.horde().ledger().balance(session.user));
    format!(
        "{message}<p>You hold <strong id=\"form-balance\">{balance}</strong> kudos.</p>\
         <form method=\"post\" action=\"/transfer\">{}\
         <label>To (alias#id) <input type=\"text\" name=\"username\" value=\"{}\" required \
         placeholder=\"alice#7\"></label>\
         <label>Kudos <input type=\"text\" name=\"amount\" value=\"{}\" inputmode=\"decimal\" \
         required></label><button type=\"submit\">Continue</button></form>",
        csrf_field(session),
        escape(to),
        escape(amount)
    )
}

/// The form again, with `error` above it.
fn refused(
    state: &Driver,
    session: &SignedIn,
    status: StatusCode,
    error: &str,
    to: &str,
    amount: &str,
) -> Response {
    let message = format!("<p class=\"error\">{}</p>", escape(error));
    (
        status,
        page(
            "Send kudos",
            Some(session),
            &form_body(state, session, &message, to, amount),
        ),
    )
        .into_response()
}

pub(super) async fn form(State(state): State<Driver>, headers: HeaderMap) -> Response {
    let Some(session) = signed_in(&state, &headers) else {
        return sign_in_first();
    };
    page(
        "Send kudos",
        Some(&session),
        &form_body(&state, &session, "", "", ""),
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct TransferForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    form_id: String,
}

/// An amount of kudos, or why the text is none (whether it may be sent is the core's rule).
fn parse_amount(text: &str) -> Result<Kudos, &'static str> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| "The amount must be a number, such as 25 or 2.5.")?;
    Kudos::from_f64(value).ok_or("The amount is too large.")
}

/// What both steps check first: a session, a complete form with this session's token, and
/// a positive amount; otherwise the page to answer with.
fn checked(
    state: &Driver,
    headers: &HeaderMap,
    form_data: Result<Form<TransferForm>, FormRejection>,
) -> Result<(SignedIn, TransferForm, Kudos), Box<Response>> {
    let Some(session) = signed_in(state, headers) else {
        return Err(Box::new(sign_in_first()));
    };
    let Ok(Form(form)) = form_data else {
        let error = "The form is incomplete.";
        return Err(Box::new(refused(
            state,
            &session,
            StatusCode::BAD_REQUEST,
            error,
            "",
            "",
        )));
    };
    if !csrf_ok(&session, &form.csrf) {
        return Err(Box::new(csrf_refused(&session).into_response()));
    }
    match parse_amount(&form.amount) {
        Ok(amount) => Ok((session, form, amount)),
        Err(error) => Err(Box::new(refused(
            state,
            &session,
            StatusCode::BAD_REQUEST,
            error,
            &form.username,
            &form.amount,
        ))),
    }
}

/// Step 1: checks the form and asks for confirmation.
pub(super) async fn confirm(
    State(state): State<Driver>,
    headers: HeaderMap,
    form_data: Result<Form<TransferForm>, FormRejection>,
) -> Response {
    let (session, form, amount) = match checked(&state, &headers, form_data) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let receiver = state.read(|core, _| {
        core.users
            .find_by_username(&form.username)
            .filter(|row| !row.id.is_anonymous())
            .map(|row| {
                let allowed = core.horde().check_transfer(session.user, row.id, amount);
                (username(row), allowed)
            })
    });
    let Some((to_name, allowed)) = receiver else {
        let error = format!("There is no user {} here.", form.username.trim());
        return refused(
            &state,
            &session,
            StatusCode::NOT_FOUND,
            &error,
            &form.username,
            &form.amount,
        );
    };
    // The core's rules (not to yourself, enough kudos, not flagged), before asking to confirm.
    if let Err(refusal) = allowed {
        let error = ApiError::from(refusal);
        return refused(
            &state,
            &session,
            error.status(),
            &format!("Not sent: {error}."),
            &form.username,
            &form.amount,
        );
    }
    let form_id = match new_token().map_err(ApiError::from) {
        Ok(id) => id,
        Err(e) => return refused(&state, &session, e.status(), &e.to_string(), "", ""),
    };
    let body = format!(
        "<p>Send <strong id=\"confirm-amount\">{amount}</strong> kudos from \
         <strong>{from}</strong> to <strong id=\"confirm-to\">{to}</strong>?</p>\
         <form method=\"post\" action=\"/transfer/send\">{csrf}\
         <input type=\"hidden\" name=\"username\" value=\"{to}\">\
         <input type=\"hidden\" name=\"amount\" value=\"{amount}\">\
         <input type=\"hidden\" name=\"form_id\" value=\"{form_id}\">\
         <button type=\"submit\">Send</button> <a href=\"/transfer\">cancel</a></form>",
        amount = escape(&amount.to_string()),
        from = escape(&session.username),
        to = escape(&to_name),
        csrf = csrf_field(&session),
        form_id = escape(&form_id),
    );
    page("Confirm the transfer", Some(&session), &body).into_response()
}

/// Step 2: transfers (once per form id).
pub(super) async fn send(
    State(state): State<Driver>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    form_data: Result<Form<TransferForm>, FormRejection>,
) -> Response {
    let (session, form, amount) = match checked(&state, &headers, form_data) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if form.form_id.is_empty() || form.form_id.len() > 64 {
        return refused(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "The confirmation is missing; start again.",
            &form.username,
            &form.amount,
        );
    }
    let key = format!("web:{}", form.form_id);
    let result =
        ops::transfer::transfer(&state, session.user, ip, &form.username, amount, Some(key)).await;
    match result {
        Ok(sent) => {
            let balance = state.read(|core, _| core.horde().ledger().balance(session.user));
            let body = format!(
                "<p class=\"ok\">Sent {} kudos to {}.</p><p>Your balance: \
                 <strong id=\"balance\">{balance}</strong> kudos.</p>\
                 <p><a href=\"/transfer\">Send more</a> · <a href=\"/account\">your account</a></p>",
                sent.transferred,
                escape(form.username.trim())
            );
            page("Kudos sent", Some(&session), &body).into_response()
        }
        Err(error) => refused(
            &state,
            &session,
            error.status(),
            &transfer_error(&error),
            &form.username,
            &form.amount,
        ),
    }
}

/// The transfer error, for people.
fn transfer_error(error: &ApiError) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => "The transfer failed.".into(),
    }
}
