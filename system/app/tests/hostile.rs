//! The hostile-client suite against the embedded system (loopback only,
//! bounded in count and time): malformed, oversized and deeply nested
//! JSON, huge numbers, NUL, emoji and lone surrogates in ids, duplicate
//! keys, request smuggling, path tricks to reach internal routes from the
//! public port, bogus `traceparent` and `Last-Event-ID`. Each case must get
//! its documented answer — a 4xx with the standard body, never a 5xx —
//! and afterwards the system must be healthy and the invariants must hold
//! (`ticketing-invariants` on the embedded stores).
//!
//! The edge's limits (timeouts, caps, 413/414/431) have their own tests in
//! `api/edge.rs`; the metrics' bounded labels in `metrics.rs`.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::*;
use reqwest::StatusCode;
use std::time::Duration;
use ticketing_domain::EventId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACT_WITHIN: Duration = Duration::from_secs(10);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Sends raw bytes, reads until the server closes (bounded).
async fn raw(app: &TestApp, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(ACT_WITHIN, s.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the server answered and closed within {ACT_WITHIN:?}"
    );
    String::from_utf8_lossy(&got).into_owned()
}

/// POSTs `body` as JSON text to `path`; the answer must be the standard
/// 4xx body with one of `codes`.
async fn refused(app: &TestApp, path: &str, body: String, codes: &[&str]) {
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("idempotency-key", "hostile")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let shown = &body[..body.len().min(80)];
    assert!(status.is_client_error(), "{shown}: {status} {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let code = v["code"].as_str().unwrap_or_default();
    assert!(codes.contains(&code), "{shown}: {status} {text}");
    assert!(
        v["traceId"].as_str().is_some_and(|t| t.len() == 32),
        "{text}"
    );
}

async fn json_tricks(app: &TestApp) {
    let hold = "/api/reservations";
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    refused(app, hold, deep, &["MALFORMED_JSON", "VALIDATION_FAILED"]).await;
    let nested = format!(
        "{{\"eventId\":\"spring-gala\",\"seatIds\":{}1{},\"holdSeconds\":60}}",
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    refused(app, hold, nested, &["MALFORMED_JSON", "VALIDATION_FAILED"]).await;
    for n in ["1e400", "99999999999999999999999", "-1", "6.5", "NaN"] {
        let body =
            format!("{{\"eventId\":\"spring-gala\",\"seatIds\":[\"1-1\"],\"holdSeconds\":{n}}}");
        refused(app, hold, body, &["MALFORMED_JSON", "VALIDATION_FAILED"]).await;
    }
    for id in ["\\u0000", "\\ud800", "🎟🎟", "\\u0000spring-gala", ""] {
        let body = format!("{{\"eventId\":\"{id}\",\"seatIds\":[\"1-1\"],\"holdSeconds\":60}}");
        refused(
            app,
            hold,
            body,
            &["MALFORMED_JSON", "VALIDATION_FAILED", "EVENT_NOT_FOUND"],
        )
        .await;
    }
    let dup =
        r#"{"eventId":"spring-gala","eventId":"jazz-night","seatIds":["1-1"],"holdSeconds":60}"#;
    refused(app, hold, dup.into(), &["VALIDATION_FAILED"]).await;
    refused(
        app,
        "/api/orders",
        r#"{"holdId":"a","holdId":"b"}"#.into(),
        &["VALIDATION_FAILED"],
    )
    .await;
    refused(
        app,
        "/api/orders",
        "\"just a string\"".into(),
        &["VALIDATION_FAILED"],
    )
    .await;
    refused(
        app,
        hold,
        "{\"eventId\":\"spring-gala\"".into(),
        &["MALFORMED_JSON"],
    )
    .await;
}

async fn internal_routes_are_not_on_the_public_port(app: &TestApp) {
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
        "/internal/payment-faults",
        "/metrics",
        "/api/events/../../internal/payments",
    ] {
        let answer = raw(
            app,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            status == "404" || status == "400",
            "{path} answered {}",
            answer.lines().next().unwrap_or_default()
        );
    }
}

async fn smuggling_does_not_reach_a_second_request(app: &TestApp) {
    // Content-Length and Transfer-Encoding both: a body that hides a second
    // request to an internal route. At most one answer, none of them a 200.
    let hidden = "GET /internal/payments HTTP/1.1\r\nHost: x\r\n\r\n";
    let request = format!(
        "POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n{hidden}"
    );
    let answer = raw(app, request.as_bytes()).await;
    let answers = answer.matches("HTTP/1.1 ").count();
    assert!(answers <= 1, "{answer}");
    assert!(!answer.contains("HTTP/1.1 200"), "{answer}");
    // A chunk-size overflow and a bogus chunk are refused by the HTTP layer.
    let bogus = "POST /api/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n";
    let answer = raw(app, bogus.as_bytes()).await;
    assert!(!answer.contains("HTTP/1.1 2"), "{answer}");
    assert!(!answer.contains("HTTP/1.1 5"), "{answer}");
}

async fn bogus_trace_and_resume_headers(app: &TestApp) {
    let junk = "x".repeat(4_000);
    for tp in [
        "00-zzzz-yyyy-01",
        "",
        "00-00000000000000000000000000000000-0000000000000000-01",
        junk.as_str(),
    ] {
        let r = app
            .http
            .get(app.url("/api/events"))
            .header("traceparent", tp)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "traceparent {tp:.40}");
        let id = r.headers()["x-trace-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "a fresh trace id for a bogus traceparent");
        assert_ne!(id, "0".repeat(32));
    }
    for last in ["abc", "-1", "99999999999999999999999", "1.5", junk.as_str()] {
        let r = app
            .http
            .get(app.url("/api/events/spring-gala/seats/stream"))
            .header("last-event-id", last)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "Last-Event-ID {last:.40}");
        // The stream starts with a snapshot: a bogus resume point is a fresh start.
        let mut body = r;
        let first = tokio::time::timeout(ACT_WITHIN, body.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&first);
        assert!(
            text.contains("event: snapshot") || text.contains("event:snapshot"),
            "{text:.200}"
        );
    }
}

/// Healthy, and the brief's invariants hold on the stores.
async fn healthy_and_consistent(app: &TestApp) {
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    // A purchase still goes through.
    let hold = app.hold_ok("comedy-hour", &["5-5"]).await;
    let order = app.order_ok(&hold, "after-the-storm").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    // As an operator would before auditing: settle what is left.
    let close = format!(
        "http://{}/internal/settlements/close",
        app.embedded().payment_addr
    );
    let closed = app.http.post(close).send().await.unwrap();
    assert_eq!(closed.status(), StatusCode::OK);
    let h = &app.embedded().handles;
    let stores = ticketing_invariants::Stores {
        seats: h.seats.as_ref(),
        orders: h.orders.as_ref(),
        payments: h.payments.as_ref(),
    };
    let events: Vec<EventId> = ["spring-gala", "jazz-night", "comedy-hour"]
        .into_iter()
        .map(EventId::from)
        .collect();
    let mut snap = ticketing_invariants::read_ports(stores, &events).await;
    snap.quiescence.reached = snap.orders.iter().all(|o| o.status.is_terminal());
    let violations = ticketing_invariants::check(&snap);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn hostile_clients_get_documented_answers_and_break_nothing() {
    let app = spawn_app().await;
    json_tricks(&app).await;
    internal_routes_are_not_on_the_public_port(&app).await;
    smuggling_does_not_reach_a_second_request(&app).await;
    bogus_trace_and_resume_headers(&app).await;
    healthy_and_consistent(&app).await;
    app.stop().await;
}
