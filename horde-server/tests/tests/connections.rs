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
