//! What a client can hold: stalled headers and bodies time out, connections are capped with a
//! clear refusal, and a graceful shutdown ends in bounded time even with stalled clients.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::TestServer;

/// Reads until the server closes the connection; returns what it sent and how long it took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buffer))
            .await
            .expect("the server kept a stalled connection open");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
        }
    }
    (
        String::from_utf8_lossy(&text).into_owned(),
        started.elapsed(),
    )
}

async fn quick_server() -> TestServer {
    TestServer::start_with(|config| {
        config.http.read_timeout_secs = 1;
        config.http.max_connections = 4;
        config.http.shutdown_grace_secs = 1;
    })
    .await
}

#[tokio::test]
async fn half_a_header_or_half_a_body_is_dropped_after_the_read_timeout() {
    let server = quick_server().await;
    let mut header = TcpStream::connect(server.addr).await.unwrap();
    header
        .write_all(b"GET /api/v2/status/heartbeat HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut body = TcpStream::connect(server.addr).await.unwrap();
    body.write_all(
        b"POST /api/v2/generate/text/async HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":",
    )
    .await
    .unwrap();
    let (_, waited) = read_until_closed(&mut header).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let (answer, waited) = read_until_closed(&mut body).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"rc\":\"RequestTimeout\""), "{answer}");
    // The server still serves others.
    let (status, _) = server.get("/status/heartbeat", None).await;
    assert!(status.is_success());
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_a_clear_answer() {
    let server = quick_server().await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Give the server a moment to accept all four.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let (answer, _) = read_until_closed(&mut extra).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("TooManyConnections"), "{answer}");
    // Once the idle ones are dropped (by the read timeout or by the client), service resumes.
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(response) = server
            .client
            .get(format!("{}/status/heartbeat", server.base))
            .send()
            .await
        {
            if response.status().is_success() {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ok,
        "the server did not recover after the connections closed"
    );
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_in_bounded_time_with_stalled_clients() {
    let mut server = TestServer::start_with(|config| {
        // Long read timeouts: only the shutdown grace time can end these connections.
        config.http.read_timeout_secs = 600;
        config.http.shutdown_grace_secs = 1;
    })
    .await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(
            b"POST /api/v2/register HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let _idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.begin_stop();
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("shutdown waited for the stalled client")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, waited) = read_until_closed(&mut stalled).await;
    assert!(waited < Duration::from_secs(5));
}

/// A body trickled a byte every 300 ms never lets a per-chunk timeout fire; the deadline is for
/// the whole body (1 s here), so the request is cut with 408 all the same.
#[tokio::test]
async fn a_body_trickled_slowly_is_cut_at_one_deadline_for_the_whole_body() {
    let server = quick_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v2/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    for byte in b"{\"username\":\"slow-loris\"".iter().cycle().take(100) {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await
        {
            answer.extend_from_slice(&buffer[..n]);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the body was never cut"
        );
    }
    let (rest, _) = read_until_closed(&mut stream).await;
    let answer = String::from_utf8_lossy(&answer).into_owned() + &rest;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// A connection from `local` (any address of 127.0.0.0/8) to `server`.
async fn connect_from(local: [u8; 4], server: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((local, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// Returns true if and only if a request on `stream` is served (not refused with 503).
async fn served(stream: &mut TcpStream) -> bool {
    stream
        .write_all(b"GET /api/v2/status/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(stream).await;
    answer.starts_with("HTTP/1.1 200")
}

/// One address holds at most its share of the connections: past it, its new connections are
/// refused with 503 while other addresses, and trusted proxies, are still served.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = TestServer::start_with(|config| {
        config.http.max_connections = 16;
        config.http.max_connections_per_address = 3;
        config.trusted_proxies = vec!["127.0.0.3/32".parse().unwrap()];
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 2], server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = connect_from([127, 0, 0, 2], server.addr).await;
    let (answer, _) = read_until_closed(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("TooManyConnections"), "{answer}");
    // Another address is served; so is a trusted proxy, past the per-address cap.
    assert!(served(&mut connect_from([127, 0, 0, 4], server.addr).await).await);
    let mut proxied = Vec::new();
    for _ in 0..5 {
        proxied.push(connect_from([127, 0, 0, 3], server.addr).await);
    }
    for stream in &mut proxied {
        assert!(served(stream).await, "a trusted proxy was capped");
    }
    // Once the address closes its connections, it is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served(&mut connect_from([127, 0, 0, 2], server.addr).await).await {
        assert!(Instant::now() < deadline, "the address stayed refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
