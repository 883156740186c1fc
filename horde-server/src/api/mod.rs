//! The HTTP API: routes, and the extractors that give bad input our error shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use horde_core::UserId;
use serde::de::DeserializeOwned;

use crate::driver::Driver;
use crate::error::{ApiError, Rc};
pub use crate::extract::ClientIp;

pub(crate) mod generate;
mod status;
pub(crate) mod stream;
mod teams;
pub(crate) mod users;
pub(crate) mod workers;

/// Routes under `/api/v2`.
pub fn routes() -> Router<Driver> {
    Router::new()
        .route("/register", post(users::register))
        .route("/find_user", get(users::find_user))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::one).put(users::update))
        .route("/kudos/transfer", post(users::transfer))
        .route("/kudos/award", post(users::award))
        .route("/generate/text/async", post(generate::request))
        .route(
            "/generate/text/status/{id}",
            get(generate::status).delete(generate::cancel),
        )
        .route("/generate/text/pop", post(generate::pop))
        .route("/generate/text/submit", post(generate::submit))
        .route("/generate/text/progress", post(stream::progress))
        .route("/generate/text/stream/{id}", get(stream::stream))
        .route("/workers", get(workers::list))
        .route(
            "/workers/{id}",
            get(workers::one)
                .put(workers::update)
                .delete(workers::delete),
        )
        .route("/workers/name/{name}", get(workers::by_name))
        .route("/teams", get(teams::list).post(teams::create))
        .route(
            "/teams/{id}",
            get(teams::one).patch(teams::update).delete(teams::delete),
        )
        .route("/status/heartbeat", get(status::heartbeat))
        .route("/status/models", get(status::models))
        // Model names hold slashes (`koboldcpp/…`), which clients send as they are.
        .route("/status/models/{*model_name}", get(status::model))
        .route("/status/news", get(status::news))
        .route("/status/modes", get(status::modes).put(status::set_modes))
        .route("/status/performance", get(status::performance))
        .route("/stats/text/totals", get(status::totals))
        .route("/stats/text/models", get(status::model_totals))
        .route(
            "/admin/model_reference/reload",
            post(status::reload_model_reference),
        )
        .method_not_allowed_fallback(method_not_allowed)
}

/// Once a commit has failed, every call is answered `503 StorageFailure`: memory may hold
/// changes the database lacks, and the server is on its way down (see [`Driver`]).
pub async fn refuse_after_failure(
    axum::extract::State(driver): axum::extract::State<Driver>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if driver.is_failed() {
        return axum::response::IntoResponse::into_response(ApiError::Storage);
    }
    next.run(request).await
}

/// Counts each request in the metrics, by its route (not its concrete path).
pub async fn record_request(
    axum::extract::State(driver): axum::extract::State<Driver>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    driver.metrics().request(
        crate::metrics::RequestLabels {
            endpoint,
            method,
            status: response.status().as_u16(),
        },
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: the Prometheus/OpenMetrics text exposition.
pub async fn metrics(
    axum::extract::State(driver): axum::extract::State<Driver>,
) -> axum::response::Response {
    driver.read(|core, now| driver.metrics().observe_core(core.horde(), now));
    let text = driver.metrics().encode();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found(Rc::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON body in both directions. As an extractor it parses with serde, and its failures
/// (malformed JSON, wrong types, missing fields, too large, too slow) become our
/// `{"message", "rc"}` errors; the `Content-Type` is not checked (some bridges send none). As
/// a response it serialises a [`crate::wire`] type.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string parsed with serde; failures become our `{"message", "rc"}` errors.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| ApiQuery(query))
            .map_err(|e| ApiError::BadJson(e.body_text()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadJson(rejection.body_text())
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::BadJson(e.to_string()))
    }
}

/// The caller, from the `apikey` header (absent: Anonymous).
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub UserId);

impl FromRequestParts<Driver> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Driver) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get("apikey")
            .map(|v| v.to_str().map_err(|_| ApiError::InvalidApiKey))
            .transpose()?;
        state
            .read(|core, _| core.users.authenticate(key))
            .map(Caller)
            .map_err(ApiError::from)
    }
}

/// Who reads public data: the `apikey`'s user, or Anonymous when there is none or it is not
/// known — reading what anyone may read never refuses a key (as AI Horde's `GET /workers`).
#[derive(Debug, Clone, Copy)]
pub struct Onlooker(pub UserId);

impl FromRequestParts<Driver> for Onlooker {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Driver,
    ) -> Result<Self, std::convert::Infallible> {
        let key = parts.headers.get("apikey").and_then(|v| v.to_str().ok());
        let user = key
            .and_then(|key| {
                state
                    .read(|core, _| core.users.authenticate(Some(key)))
                    .ok()
            })
            .unwrap_or(UserId::ANONYMOUS);
        Ok(Onlooker(user))
    }
}

/// A caller who must not be Anonymous.
#[derive(Debug, Clone, Copy)]
pub struct Registered(pub UserId);

impl FromRequestParts<Driver> for Registered {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Driver) -> Result<Self, ApiError> {
        let Caller(user) = Caller::from_request_parts(parts, state).await?;
        if user.is_anonymous() {
            return Err(ApiError::AnonForbidden(
                "this needs a registered user's API key",
            ));
        }
        Ok(Registered(user))
    }
}

/// Parses a UUID path segment, or answers 404 with `rc`.
pub(crate) fn parse_uuid(text: &str, rc: Rc) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| ApiError::not_found(rc, format!("no such id: {text}")))
}
