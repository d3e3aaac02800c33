//! The edge's connection limits (`http.*`): a client that sends its headers
//! too slowly, idles between requests, or sends its body too slowly is cut
//! off while a normal client is served; a listener at its connection cap
//! closes one more at once; the seat stream is not an idle connection.
//!
//! Raw sockets on loopback, bounded in count and time. The limits are
//! small here; each wait for the server to act is bounded far above them.

use crate::helpers::*;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Far above every limit set here: the server must have acted by then.
const ACT_WITHIN: Duration = Duration::from_secs(10);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or resets it); returns
/// what it sent, or `None` if it was still open after `ACT_WITHIN`.
async fn until_closed(s: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + ACT_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn a_normal_client_is_served(app: &TestApp) {
    let r = app.get("/api/events").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let app = spawn_app_with(|s| s.http.header_read_timeout_ms = 300).await;
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let request =
        b"GET /api/events HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let (mut read, mut write) = slow.split();
    let writer = async {
        // One byte every 50 ms, never finishing the headers (bounded: 100 bytes).
        for b in request.iter().cycle().take(100) {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reader = async {
        let mut buf = [0u8; 256];
        timeout(ACT_WITHIN, read.read(&mut buf)).await
    };
    let (_, closed) = tokio::join!(writer, reader);
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "the slow client's connection is closed"
    );
    a_normal_client_is_served(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let app = spawn_app_with(|s| s.http.header_read_timeout_ms = 300).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut s).await.expect("closed when idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    a_normal_client_is_served(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_408_with_the_standard_body() {
    let app = spawn_app_with(|s| s.http.body_read_timeout_ms = 300).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let head = "POST /api/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"eventId\":";
    s.write_all(head.as_bytes()).await.unwrap();
    // ...and the rest of the body never comes.
    let answer = until_closed(&mut s).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-trace-id"),
        "{answer}"
    );
    a_normal_client_is_served(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn one_connection_over_the_cap_is_closed_at_once() {
    let app = spawn_app_with(|s| s.http.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // The three are open (a request on one is answered)...
    held[0]
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(ACT_WITHIN, held[0].read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // ...and a fourth is closed without an answer.
    let mut extra = TcpStream::connect(addr(&app)).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = until_closed(&mut extra).await.expect("closed at once");
    assert_eq!(answer, "", "no answer over the cap");
    // Once one is let go, a normal client is served again (its slot frees
    // when the server sees the close: retried within the bound).
    drop(held.pop());
    let deadline = Instant::now() + ACT_WITHIN;
    loop {
        let served = app
            .http
            .get(app.url("/api/events"))
            .header("connection", "close")
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if served {
            break;
        }
        assert!(Instant::now() < deadline, "a slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_seat_stream_outlives_the_idle_timeout() {
    let app = spawn_app_with(|s| {
        s.http.header_read_timeout_ms = 300;
        s.catalog.sse_heartbeat_ms = 100;
    })
    .await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /api/events/spring-gala/seats/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Still streaming well past the idle timeout: heartbeats keep coming.
    let started = Instant::now();
    let mut buf = [0u8; 65536];
    let mut bytes = 0;
    while started.elapsed() < Duration::from_millis(1_500) {
        let n = timeout(ACT_WITHIN, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream was closed after {:?}", started.elapsed());
        bytes += n;
    }
    assert!(bytes > 0);
    app.stop().await;
}

#[tokio::test]
async fn a_declared_oversize_body_sent_in_full_still_reads_its_413() {
    let app = spawn_app().await;
    // A client without `Expect: 100-continue` that writes everything first.
    let body = format!(
        "{{\"eventId\":\"spring-gala\",\"seatIds\":[\"1-1\"],\"holdSeconds\":60,\"pad\":\"{}\"}}",
        "x".repeat(8 * 1024 * 1024)
    );
    for attempt in 0..30 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        let request = format!(
            "POST /api/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // The write may be cut short once the server has answered; the
        // answer must still be readable.
        let _ = s.write_all(request.as_bytes()).await;
        let answer = until_closed(&mut s).await.expect("answered and closed");
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "attempt {attempt}: {:?}",
            &answer[..answer.len().min(200)]
        );
        assert!(
            answer.contains("\"code\":\"PAYLOAD_TOO_LARGE\""),
            "{answer}"
        );
        // Refused on the declared length, before the body was parsed.
        assert!(answer.contains("larger than 16384 bytes"), "{answer}");
        let head = answer.to_ascii_lowercase();
        assert!(head.contains("connection: close"), "{answer}");
    }
    a_normal_client_is_served(&app).await;
    app.stop().await;
}

/// Sends `head` (a request without a body) and reads the whole answer.
async fn raw(app: &TestApp, head: &str) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    until_closed(&mut s).await.expect("answered")
}

#[tokio::test]
async fn long_paths_and_too_many_or_too_large_headers_get_the_standard_body() {
    let app = spawn_app().await;
    let path = format!("/api/events/{}", "a".repeat(10 * 1024));
    let cases = [
        (
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n"),
            "414",
            "URI_TOO_LONG",
        ),
        (
            format!(
                "GET /api/events HTTP/1.1\r\nHost: x\r\n{}",
                "X-Many: 1\r\n".repeat(1_000)
            ),
            "431",
            "HEADERS_TOO_LARGE",
        ),
        (
            format!(
                "GET /api/events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n",
                "b".repeat(400 * 1024)
            ),
            "431",
            "HEADERS_TOO_LARGE",
        ),
    ];
    for (head, status, code) in cases {
        let answer = raw(&app, &head).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{}",
            &answer[..answer.len().min(300)]
        );
        assert!(answer.contains(&format!("\"code\":\"{code}\"")), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("x-trace-id"),
            "{answer}"
        );
    }
    a_normal_client_is_served(&app).await;
    app.stop().await;
}

/// Every listener speaks HTTP/1.1 with keep-alive and h2c (HTTP/2 with
/// prior knowledge) on the same port: many requests, one connection each.
#[tokio::test]
async fn the_gateway_serves_http2_with_prior_knowledge_and_http11_on_one_port() {
    let app = spawn_app().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    for (client, version) in [
        (&h2, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        for path in [
            "/health",
            "/api/events",
            "/api/events/jazz-night/seats/status",
        ] {
            let r = client.get(app.url(path)).send().await.unwrap();
            assert_eq!(
                (r.status(), r.version()),
                (StatusCode::OK, version),
                "{path}"
            );
        }
        // A hold and its read-back on the same connection.
        let r = client
            .post(app.url("/api/reservations"))
            .json(&serde_json::json!({"eventId": "jazz-night", "seatIds": ["9-9"], "holdSeconds": 60}))
            .send()
            .await
            .unwrap();
        if version == reqwest::Version::HTTP_2 {
            assert_eq!(r.status(), StatusCode::CREATED);
        } else {
            assert_eq!(r.status(), StatusCode::CONFLICT, "the h2 client holds it");
        }
    }
    app.stop().await;
}
