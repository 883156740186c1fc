//! Serving HTTP/1.1 connections with bounds on what a client can hold.
//!
//! * **Read timeouts**: a client that has not sent a whole request header within
//!   [`HttpConfig::read_timeout_secs`] is disconnected (hyper's header timeout); a body that
//!   is not complete within the same time is refused (`408`, see [`crate::app`]).
//! * **A cap on open connections** ([`HttpConfig::max_connections`]): past it, a new
//!   connection is answered at once with `503 TooManyConnections` and closed, so the server
//!   never runs out of file descriptors and says why.
//! * **A cap per address** ([`HttpConfig::max_connections_per_address`], an IPv6 /64 counting
//!   as one address): past it, the same refusal, so that one client cannot take every slot and
//!   keep everyone else (heartbeats included) out. Trusted proxies are exempt: their
//!   connections carry many clients.
//! * **Bounded graceful shutdown**: on shutdown the listener closes, idle keep-alive
//!   connections close at once, requests in flight finish, and connections still open after
//!   [`HttpConfig::shutdown_grace_secs`] are dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use parking_lot::Mutex;
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
    /// Most connections open at once from one address (an IPv6 /64 counts as one); more are
    /// refused with 503. Trusted proxies are exempt. Default 256.
    pub max_connections_per_address: usize,
    /// Seconds a graceful shutdown waits for requests in flight before dropping the
    /// connections still open. Default 10.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            read_timeout_secs: 30,
            max_connections: 4096,
            max_connections_per_address: 256,
            shutdown_grace_secs: 10,
        }
    }
}

/// The answer to a connection over the cap: complete, so any HTTP client can show it.
const TOO_MANY_CONNECTIONS: &str = "{\"message\":\"the server has too many open connections; \
     try again in a moment\",\"rc\":\"TooManyConnections\"}";

/// Open connections per address, for [`HttpConfig::max_connections_per_address`].
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted when dropped.
#[derive(Debug)]
struct AddressSlot {
    table: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    /// Counts a connection from `address`, unless it already has `cap` open.
    fn take(table: &Arc<PerAddress>, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let address = grouped(address);
        let mut open = table.0.lock();
        let count = open.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: Arc::clone(table),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock();
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// The address a connection counts against: IPv4 addresses (also IPv4-mapped IPv6) as they
/// are, IPv6 addresses by their /64 (what one customer usually holds).
fn grouped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Accepts connections on `listener` and serves `router` on them until `stop` resolves, then
/// shuts down within the grace time. Connections from `trusted_proxies` are not capped per
/// address.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    trusted_proxies: &[IpNet],
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let per_address = Arc::new(PerAddress::default());
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
        // Small writes (a streamed token, a long poll's answer) go out at once, not after the
        // peer's delayed acknowledgement of the previous one (up to 40 ms on Linux).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %addr, "cannot turn off Nagle's algorithm");
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let slot = if trusted_proxies.iter().any(|net| net.contains(&addr.ip())) {
            None
        } else {
            match PerAddress::take(&per_address, addr.ip(), config.max_connections_per_address) {
                Some(slot) => Some(slot),
                None => {
                    drop(permit);
                    tokio::spawn(refuse(stream));
                    continue;
                }
            }
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
            drop(slot);
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
