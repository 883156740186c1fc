//! The client against small loopback servers that misbehave: an endless answer is cut off, an
//! error body is read, a refused connection says so.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use horde_api::{Client, ClientError, Rc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves each connection with `answer` (headers), then `body` repeated `times`.
async fn serve(head: &'static str, body: &'static [u8], times: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..times {
                    let chunk = format!("{:x}\r\n", body.len());
                    if socket.write_all(chunk.as_bytes()).await.is_err()
                        || socket.write_all(body).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    url
}

const CHUNKED_OK: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn an_endless_answer_is_cut_off_at_the_limit() {
    // 64 KiB chunks, 100,000 of them: 6.5 GB if read whole.
    static CHUNK: [u8; 65536] = [b' '; 65536];
    let url = serve(CHUNKED_OK, &CHUNK, 100_000).await;
    let client = Client::new(&url).unwrap().max_answer_bytes(1 << 20);
    let error = tokio::time::timeout(Duration::from_secs(20), client.heartbeat())
        .await
        .expect("the read stops at the limit")
        .unwrap_err();
    assert!(
        matches!(error, ClientError::TooLarge { limit: 1048576, .. }),
        "{error}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn an_error_body_is_read_with_its_rc_and_retry_after() {
    let head = "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
                retry-after: 7\r\ntransfer-encoding: chunked\r\n\r\n";
    let url = serve(head, br#"{"message":"slow down","rc":"RateLimited"}"#, 1).await;
    let error = Client::new(&url).unwrap().find_user().await.unwrap_err();
    let ClientError::Refused {
        status,
        body,
        retry_after,
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(status.as_u16(), 429);
    assert_eq!(body.code(), Some(Rc::RateLimited));
    assert_eq!(body.message, "slow down");
    assert_eq!(*retry_after, Some(7));
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_answer_that_is_not_the_horde_s_json_says_so() {
    let url = serve(CHUNKED_OK, b"<html>hello</html>", 1).await;
    let error = Client::new(&url).unwrap().heartbeat().await.unwrap_err();
    assert!(matches!(error, ClientError::Unreadable { .. }), "{error}");
}

#[tokio::test]
async fn a_refused_connection_keeps_its_cause() {
    // Bind and drop: nothing listens on the port afterwards.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .heartbeat()
        .await
        .unwrap_err();
    assert!(error.is_transient());
    let text = error.to_string().to_lowercase();
    assert!(text.contains("refused"), "{text}");
}
