//! The hostile-client cases through nginx on the local stack (the embedded
//! suite is `system/app/tests/hostile.rs`). What answers differs: nginx
//! itself refuses path tricks it cannot normalise, smuggling, bad chunks,
//! bodies over 16 KiB, long request lines and long headers — with the
//! standard error body its `error_page`s write (compose/nginx) — and passes
//! the rest to the services, whose answers are the embedded suite's. Every
//! answer is checked for the documented status, the standard body and a
//! trace id; none is a 2xx or a 5xx. Loopback only, bounded in count and
//! time.

use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACT_WITHIN: Duration = Duration::from_secs(10);

/// Sends raw bytes to the gateway, reads until it closes (bounded).
async fn raw(url: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    // The gateway may answer and close before it read everything.
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(ACT_WITHIN, s.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the gateway answered and closed within {ACT_WITHIN:?}"
    );
    String::from_utf8_lossy(&got).into_owned()
}

/// The status of a raw answer, and its body as the standard error body.
fn standard(answer: &str, what: &str) -> (u16, Value) {
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no status line in {answer:.300}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let v: Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|_| panic!("{what}: not the standard body: {answer:.400}"));
    assert!(
        v["code"].is_string() && v["message"].is_string(),
        "{what}: {v}"
    );
    assert_eq!(v["traceId"].as_str().map(str::len), Some(32), "{what}: {v}");
    assert!(
        head.to_ascii_lowercase().contains("x-trace-id: "),
        "{what}: {head}"
    );
    (status, v)
}

fn request(line: &str, headers: &str, body: &str) -> String {
    format!("{line}\r\nHost: x\r\n{headers}Connection: close\r\n\r\n{body}")
}

/// Paths that try to reach internal routes or metrics: 404 (no such public
/// route) or 400 (a `..` above the root), never anything else.
async fn path_tricks(url: &str) {
    for path in [
        "/internal/payments",
        "//internal/payments",
        "/%69nternal/payments",
        "/api/../internal/payments",
        "/api/%2e%2e/internal/payments",
        "/INTERNAL/payments",
        "/internal/audit/orders",
        "/internal/orders/o-1/retry-refund",
        "/internal/events/spring-gala",
        "/metrics",
        "/api/events/../../internal/payments",
        "/../internal/payments",
    ] {
        let answer = raw(
            url,
            request(&format!("GET {path} HTTP/1.1"), "", "").as_bytes(),
        )
        .await;
        let (status, _) = standard(&answer, path);
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
}

/// nginx's own refusals, in the standard body.
async fn refused_by_nginx(url: &str) {
    // Content-Length with Transfer-Encoding, hiding a second request.
    let hidden = "GET /internal/payments HTTP/1.1\r\nHost: x\r\n\r\n";
    let smuggle = request(
        "POST /api/orders HTTP/1.1",
        "Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        &format!("0\r\n\r\n{hidden}"),
    );
    let answer = raw(url, smuggle.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert_eq!(standard(&answer, "CL+TE").0, 400);
    let bogus = request(
        "POST /api/orders HTTP/1.1",
        "Transfer-Encoding: chunked\r\n",
        "ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    );
    let (status, _) = standard(&raw(url, bogus.as_bytes()).await, "chunk-size overflow");
    assert_eq!(status, 400);
    // A body over the gateway's 16 KiB, declared up front: refused unread.
    let big = "x".repeat(20 * 1024);
    let body = request(
        "POST /api/reservations HTTP/1.1",
        &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            big.len()
        ),
        &big,
    );
    let (status, v) = standard(&raw(url, body.as_bytes()).await, "20 KiB body");
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    let long = format!("GET /api/events/{} HTTP/1.1", "a".repeat(100 * 1024));
    let (status, v) = standard(
        &raw(url, request(&long, "", "").as_bytes()).await,
        "100 KiB path",
    );
    assert_eq!((status, v["code"].as_str()), (414, Some("URI_TOO_LONG")));
    let header = format!("X-Junk: {}\r\n", "h".repeat(20 * 1024));
    let r = request("GET /api/events HTTP/1.1", &header, "");
    let (status, v) = standard(&raw(url, r.as_bytes()).await, "20 KiB header");
    assert_eq!(
        (status, v["code"].as_str()),
        (431, Some("HEADERS_TOO_LARGE"))
    );
}

/// Bodies nginx passes on: the services' documented answers.
async fn json_through_the_gateway(http: &reqwest::Client, url: &str) {
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let dup =
        r#"{"eventId":"spring-gala","eventId":"jazz-night","seatIds":["1-1"],"holdSeconds":60}"#;
    let huge = r#"{"eventId":"spring-gala","seatIds":["1-1"],"holdSeconds":1e400}"#;
    let nul = r#"{"eventId":"\u0000","seatIds":["1-1"],"holdSeconds":60}"#;
    let cases: [(&str, &[&str]); 4] = [
        (deep.as_str(), &["MALFORMED_JSON", "VALIDATION_FAILED"]),
        (dup, &["VALIDATION_FAILED"]),
        (huge, &["MALFORMED_JSON", "VALIDATION_FAILED"]),
        (nul, &["VALIDATION_FAILED", "EVENT_NOT_FOUND"]),
    ];
    for (body, codes) in cases {
        let r = http
            .post(format!("{url}/api/reservations"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_client_error(), "{body:.60}: {status} {v}");
        assert!(
            codes.contains(&v["code"].as_str().unwrap_or_default()),
            "{body:.60}: {v}"
        );
    }
    for tp in [
        "00-zzzz-yyyy-01",
        "00-00000000000000000000000000000000-0000000000000000-01",
    ] {
        let r = http
            .get(format!("{url}/api/events"))
            .header("traceparent", tp)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "traceparent {tp}");
    }
}

/// Every case; the caller checks health and the invariants afterwards.
pub async fn through_the_gateway(http: &reqwest::Client, url: &str) {
    path_tricks(url).await;
    refused_by_nginx(url).await;
    json_through_the_gateway(http, url).await;
    let health = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
