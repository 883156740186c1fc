//! A lean HTTP/1.1 client for the polling scenario: one keep-alive connection per task, request
//! bodies encoded once, answers read as bytes and parsed only for the fields the generator
//! needs. The generator shares the machine's cores with the server it measures; every cycle it
//! spends on itself is a cycle the server waits for, and shows up in the server's latencies.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Where the server is: its address, its `Host` header and the API's path prefix.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    prefix: String,
}

impl Target {
    /// The target of a base URL such as `http://127.0.0.1:7301/api/v2`.
    pub(crate) async fn of(base: &str) -> Result<Target, String> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| format!("{base}: the lean client speaks plain http:// only"))?;
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        let host = HeaderValue::from_str(authority).map_err(|e| format!("{authority}: {e}"))?;
        let prefix = format!("/{}", prefix.trim_end_matches('/'));
        Ok(Target { addr, host, prefix })
    }
}

/// One keep-alive connection, opened on first use and again after an error.
pub(crate) struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub(crate) fn new(target: Target) -> Conn {
        Conn {
            target,
            sender: None,
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Sends one request (`path` below the API's prefix; `body` as JSON) and reads the whole
    /// answer.
    pub(crate) async fn call(
        &mut self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.prefix))
            .header(HOST, self.target.host.clone());
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        self.sender = Some(sender);
        Ok((status, bytes))
    }
}
