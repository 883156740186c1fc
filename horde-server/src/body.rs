//! Every request's body, gathered before any handler sees it, and every request's text checked
//! at the edge.
//!
//! * **Bounded memory**: the body is copied chunk by chunk into one buffer of at most
//!   [`crate::BODY_LIMIT`] bytes (sized from `Content-Length` when the client sends one). Each
//!   chunk is dropped as soon as it is copied, so a client that sends a body one byte per TCP
//!   segment costs one byte per byte, not a read buffer per byte.
//! * **One deadline for the whole body** ([`crate::http::HttpConfig::read_timeout_secs`]), not
//!   one per chunk: a body trickled a byte at a time is cut (`408`) when the time is up.
//! * **Text the store can hold**: PostgreSQL refuses the NUL character in text, and a refused
//!   commit stops the node (fail-stop). No request that carries one reaches a handler: a NUL in
//!   the path, the query, a form or a JSON body (raw, or as the escape `\u0000`) is refused
//!   with `400 ValidationError`. Headers cannot carry one (the HTTP parser refuses them).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::error::{ApiError, Rc};
use crate::Driver;

/// Gathers the body (bounded in size, memory and time), refuses text with NUL, and hands the
/// request on with its body in one piece.
pub(crate) async fn gather(State(driver): State<Driver>, request: Request, next: Next) -> Response {
    let read_timeout =
        std::time::Duration::from_secs(driver.config().http.read_timeout_secs.max(1));
    let uri = request.uri();
    if percent_encoded_nul(uri.path()) || uri.query().is_some_and(percent_encoded_nul) {
        return nul_refused("the address").into_response();
    }
    let (parts, body) = request.into_parts();
    let expected = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if expected.is_some_and(|len| len > crate::BODY_LIMIT) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let bytes = match tokio::time::timeout(read_timeout, gather_body(body, expected)).await {
        Err(_) => return ApiError::RequestTimeout.into_response(),
        Ok(Err(e)) => return e.into_response(),
        Ok(Ok(bytes)) => bytes,
    };
    let form = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if carries_nul(&bytes, form) {
        return nul_refused("the body").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn nul_refused(place: &str) -> ApiError {
    ApiError::Validation {
        rc: Rc::ValidationError,
        message: format!("{place} contains a NUL character, which no text here may hold"),
        field: None,
    }
}

/// Copies `body` into one buffer of at most [`crate::BODY_LIMIT`] bytes.
async fn gather_body(body: Body, expected: Option<usize>) -> Result<Bytes, ApiError> {
    let mut gathered = Vec::with_capacity(expected.unwrap_or(0).min(crate::BODY_LIMIT));
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadJson(format!("the body was cut off: {e}")))?;
        if gathered.len() + chunk.len() > crate::BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        gathered.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(gathered))
}

/// Returns true if and only if `text` (a path, a query or a form body) holds `%00`: a NUL once
/// decoded (a literal `%` is sent as `%25`).
fn percent_encoded_nul(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Returns true if and only if `body` holds a NUL byte, the JSON escape `\u0000` (outside an
/// escaped backslash: `\\u0000` is the text `\u0000`), or, in a `form` body, `%00`. A JSON
/// prompt may well contain the text `%00`, so that is looked for in forms only; the JSON
/// escape is looked for in forms too, since the API parses JSON whatever its `Content-Type`.
fn carries_nul(body: &[u8], form: bool) -> bool {
    if body.contains(&0) {
        return true;
    }
    if form && percent_encoded_nul(&String::from_utf8_lossy(body)) {
        return true;
    }
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            let escape = body.get(i + 1..i + 6);
            if escape == Some(b"u0000".as_slice()) {
                return true;
            }
            i += 2; // the escaped character, whatever it is
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_in_each_of_its_spellings_and_only_there() {
        let json = |body: &[u8]| carries_nul(body, false);
        let form = |body: &[u8]| carries_nul(body, true);
        assert!(json(b"{\"a\":\"x\0\"}"));
        assert!(json(br#"{"a":"x\u0000"}"#));
        assert!(
            json(br#"{"a":"\\\u0000"}"#),
            "an escaped backslash, then NUL"
        );
        assert!(form(b"form_id=a%00b&x=1"));
        assert!(form(b"a=x\0"));
        assert!(!json(br#"{"a":"x\\u0000"}"#), "the text \\u0000");
        assert!(!json(br#"{"a":"\u0001 \u00e9 100%"}"#));
        assert!(!form(b"amount=100%25&to=a"));
        assert!(!json(b"") && !form(b""));
        // `%00` only in forms, where it means NUL; JSON sent as a form is still checked.
        assert!(!json(br#"{"prompt":"a URL-encoded NUL is %00"}"#));
        assert!(form(br#"{"prompt":"x\u0000"}"#));
        assert!(percent_encoded_nul("/api/v2/users/1%00"));
        assert!(!percent_encoded_nul("/api/v2/users/100"));
    }

    #[tokio::test]
    async fn a_body_of_one_byte_chunks_is_gathered_into_one_buffer_of_its_size() {
        let chunks = (0..10_000).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"x")));
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let gathered = gather_body(body, None).await.expect("gathered");
        assert_eq!(gathered.len(), 10_000);
        let over = (0..=crate::BODY_LIMIT / 4096)
            .map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 4096])));
        let body = Body::from_stream(futures_util::stream::iter(over));
        assert!(matches!(
            gather_body(body, None).await,
            Err(ApiError::PayloadTooLarge)
        ));
    }
}
