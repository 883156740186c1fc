//! `horde-server`: the AI Horde v2 text API over [`horde_core`], durable on SQLite or
//! PostgreSQL.
//!
//! This file is the composition root: it wires the [`driver::Driver`] (the core, the clock,
//! the timer and the store) to the HTTP routes of [`api`] and [`web`], which depend on the
//! driver and never the other way round.
//!
//! * [`app`] builds the router (for in-process tests); [`serve`] runs it on a listener with a
//!   graceful shutdown (for end-to-end tests on port 0); [`node::serve_node`] runs a node
//!   that waits as a standby until it holds the database, then serves (for the binary).

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

pub mod api;
pub mod auth;
mod body;
pub mod canaries;
pub mod chat;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod driver;
pub mod error;
pub mod extract;
pub mod follow;
pub mod html;
pub mod http;
pub mod live;
pub mod metrics;
pub mod models;
pub mod modes;
pub mod node;
pub mod openai;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod sessions;
pub mod stats;
pub mod store;
pub mod views;
pub mod web;
pub mod webhooks;
pub mod wire;

pub use clock::Clock;
pub use config::Config;
pub use driver::Driver;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The router: the API under `/api/v2`, the web pages, CORS for browser clients, bodies
/// gathered whole (at most 1 MiB, within the read timeout, no NUL: see `body`), and JSON errors
/// for unknown paths.
pub fn app(driver: Driver) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("apikey"),
            HeaderName::from_static("client-agent"),
            HeaderName::from_static("idempotency-key"),
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
        ]);
    Router::new()
        .nest("/api/v2", api::routes())
        .nest("/v1", openai::routes())
        .nest("/api/v1", openai::routes())
        .merge(web::routes())
        .route("/metrics", axum::routing::get(api::metrics))
        .route(
            "/api/swagger.json",
            axum::routing::get(openapi::swagger_json),
        )
        .route("/api", axum::routing::get(openapi::docs_page))
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn_with_state(
            driver.clone(),
            api::record_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            driver.clone(),
            api::refuse_after_failure,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            driver.clone(),
            body::gather,
        ))
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(cors)
        // Each request as a `debug` span with its method and path (`RUST_LOG=tower_http=debug`).
        .layer(TraceLayer::new_for_http())
        .with_state(driver)
}

/// Serves `driver` on `listener` until `shutdown` resolves or a commit fails, then finishes
/// in-flight requests, stops the timer and flushes the database. Returns an error if and only
/// if the server stopped because a commit failed or the database connection was lost (the
/// binary then exits non-zero).
pub async fn serve(
    listener: TcpListener,
    driver: Driver,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timer = tokio::spawn(driver.clone().drive_timer());
    let webhooks = tokio::spawn(delivery::deliver(driver.clone()));
    let failed = driver.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = failed.failed() => {}
        }
    };
    let config = driver.config();
    http::serve_connections(
        listener,
        app(driver.clone()),
        &config.http,
        &config.trusted_proxies,
        stop,
    )
    .await;
    timer.abort();
    webhooks.abort();
    let closing = driver.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    if driver.is_failed() {
        return Err(std::io::Error::other(
            "the database failed (a commit, or the connection to it); stopped so that a restart \
             rebuilds the state from the database",
        ));
    }
    Ok(())
}
