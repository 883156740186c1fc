//! One node of a horde on PostgreSQL: a **standby** until it holds the lease, then the
//! **active** node.
//!
//! While it waits for the lease, the node already listens: its heartbeat answers with
//! `"role": "standby"` and every other request with `503 StandbyNode` and `Retry-After: 1`,
//! so a load balancer (or a client that retries) finds the active node. When the lease comes
//! (the active node stopped, died, or lost the database), the node rebuilds the state from
//! the database and serves on the same socket, with no gap in listening. On SQLite there is
//! no standby: the node opens the file (or refuses: another process has it), then serves.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::driver::OpenError;
use crate::error::ApiError;
use crate::store::{Contention, Database, StoreError};
use crate::wire::Heartbeat;
use crate::{Clock, Config, Driver};

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The listening socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The database or the model reference.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// What a standby answers: its heartbeat, and `503 StandbyNode` to everything else.
pub fn standby_app() -> Router {
    Router::new()
        .route(
            "/api/v2/status/heartbeat",
            axum::routing::get(|| async {
                axum::Json(Heartbeat::new(env!("CARGO_PKG_VERSION"), "standby"))
            }),
        )
        .fallback(|| async { ApiError::Standby })
}

/// Runs a node on `listener` until `shutdown` resolves or a commit fails: a standby until it
/// holds the database (waiting for the lease on PostgreSQL), then active. Returns an error if
/// the database cannot be opened or the active node stopped because a commit failed.
/// `on_active` runs once the node is active, with its driver (the binary reloads the model
/// reference on SIGHUP through it).
pub async fn serve_node(
    listener: std::net::TcpListener,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_active: impl FnOnce(&Driver),
) -> Result<(), NodeError> {
    listener.set_nonblocking(true)?;
    // First, one attempt without standing by: on SQLite the only one (one process per file:
    // open it or refuse); on PostgreSQL the usual case of a restart, when nobody holds the
    // lease, and then no request sees a standby. Connections made meanwhile wait in the
    // listen backlog.
    let on_sqlite = matches!(Database::of(&config.db), Database::Sqlite(_));
    let (first_config, first_clock) = (config.clone(), clock.clone());
    let first = tokio::task::spawn_blocking(move || Driver::open(first_config, first_clock))
        .await
        .map_err(std::io::Error::other)?;
    match first {
        Ok(driver) => {
            on_active(&driver);
            crate::serve(TcpListener::from_std(listener)?, driver, shutdown).await?;
            return Ok(());
        }
        Err(e) if on_sqlite => return Err(e.into()),
        Err(e) => tracing::info!(reason = %e, "not active yet"),
    }
    let http = config.http.clone();
    let trusted_proxies = config.trusted_proxies.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // Opening blocks (on PostgreSQL, until the lease is free): a thread of its own, which a
    // shutdown releases through `go_on` at the next attempt.
    let (opened_tx, opened) = oneshot::channel();
    let go_on = stop_rx.clone();
    std::thread::Builder::new()
        .name("horde-open".into())
        .spawn(move || {
            let opened = Driver::open_with(config, clock, Contention::Wait, &|| !*go_on.borrow());
            let _ = opened_tx.send(opened);
        })?;

    let (standby_stop, standby_stopped) = oneshot::channel::<()>();
    let standby_listener = TcpListener::from_std(listener.try_clone()?)?;
    let standby = tokio::spawn(async move {
        crate::http::serve_connections(
            standby_listener,
            standby_app(),
            &http,
            &trusted_proxies,
            async {
                let _ = standby_stopped.await;
            },
        )
        .await;
    });
    let opened = tokio::select! {
        opened = opened => Some(opened),
        () = stopped(stop_rx.clone()) => None,
    };
    let _ = standby_stop.send(());
    let _ = standby.await;
    let driver = match opened {
        None | Some(Ok(Err(OpenError::Store(StoreError::Closed)))) => return Ok(()),
        Some(Ok(opened)) => opened?,
        Some(Err(_)) => return Err(std::io::Error::other("the opening thread stopped").into()),
    };
    tracing::info!("active: serving");
    on_active(&driver);
    let listener = TcpListener::from_std(listener)?;
    crate::serve(listener, driver, stopped(stop_rx)).await?;
    Ok(())
}
