//! Extractors the API and the web pages share.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::driver::Driver;
use crate::error::ApiError;

/// The client's address, for rate limits: the connection's peer, or — when the peer is one
/// of the configured trusted proxies — the nearest address in `X-Forwarded-For` that is not
/// a trusted proxy. A client cannot forge its address by sending the header itself, because
/// the header is only read from trusted peers.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<Driver> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Driver) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        let config = state.config();
        if !config.is_trusted_proxy(peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded: Vec<std::net::IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !config.is_trusted_proxy(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer);
        Ok(ClientIp(client))
    }
}
