//! Serving HTTP/1.1 connections with bounds on what a client can hold.
//!
//! * **Read timeouts**: a client that has not sent a whole request header within
//!   [`HttpConfig::read_timeout_secs`] is disconnected (hyper's header timeout); a body that
//!   is not complete within the same time is refused (`408`, see [`crate::app`]).
//! * **A cap on open connections** ([`HttpConfig::max_connections`]): past it, a new
//!   connection is answered at once with `503 TooManyConnections` and closed, so the server
//!   never runs out of file descriptors and says why.
//! * **Bounded graceful shutdown**: on shutdown the listener closes, idle keep-alive
//!   connections close at once, requests in flight finish, and connections still open after
//!   [`HttpConfig::shutdown_grace_secs`] are dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Connection limits and timeouts. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's header, and again its body. Default 30.
    pub read_timeout_secs: u64,
    /// Most connections open at once; more are refused with 503. Default 4096 (keep it below
    /// the process's file-descriptor limit, `ulimit -n`).
    pub max_connections: usize,
    /// Seconds a graceful shutdown waits for requests in flight before dropping the
    /// connections still open. Default 10.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            read_timeout_secs: 30,
            max_connections: 4096,
            shutdown_grace_secs: 10,
        }
    }
}

/// The answer to a connection over the cap: complete, so any HTTP client can show it.
const TOO_MANY_CONNECTIONS: &str = "{\"message\":\"the server has too many open connections; \
     try again in a moment\",\"rc\":\"TooManyConnections\"}";

/// Accepts connections on `listener` and serves `router` on them until `stop` resolves, then
/// shuts down within the grace time.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let read_timeout = Duration::from_secs(config.read_timeout_secs.max(1));
    tokio::pin!(stop);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(addr));
            tower::ServiceExt::oneshot(router.clone(), request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %addr, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                open = config.max_connections - permits.available_permits(),
                "shutdown grace time over: dropping the connections still open"
            );
        }
    }
    connections.abort_all();
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{}",
        TOO_MANY_CONNECTIONS.len(),
        TOO_MANY_CONNECTIONS
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
