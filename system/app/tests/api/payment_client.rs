//! The payment client's own protections, against a stand-in gateway that
//! counts requests: quick jittered retries inside one call, and a circuit
//! breaker that stops calling a gateway that keeps failing, then lets one
//! trial call through and closes on success.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use ticketing_domain::ports::{GatewayError, PaymentGateway};
use ticketing_domain::{EventId, OrderId, PaymentStatus};

fn ev() -> EventId {
    EventId::from("ev")
}
use ticketing_mem::ManualClock;
use ticketing_runtime::ChaChaRandom;
use ticketing_services::clients::{HttpPaymentGateway, PaymentClientPolicy};
use ticketing_services::http::client::HttpClient;

struct StandIn {
    calls: Arc<AtomicU32>,
    healthy: Arc<AtomicBool>,
    url: String,
}

async fn stand_in() -> StandIn {
    let calls = Arc::new(AtomicU32::new(0));
    let healthy = Arc::new(AtomicBool::new(false));
    let (c, h) = (calls.clone(), healthy.clone());
    let app = Router::new().route(
        "/internal/payments/{id}/authorize",
        post(move || {
            let (c, h) = (c.clone(), h.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                if h.load(Ordering::SeqCst) {
                    (StatusCode::OK, axum::Json(json!({"status": "AUTHORIZED"})))
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"code": "UNAVAILABLE", "message": "down"})),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    StandIn {
        calls,
        healthy,
        url,
    }
}

/// The client, with a hand-driven clock for its breaker.
fn client(
    url: &str,
    policy: PaymentClientPolicy,
) -> (HttpPaymentGateway<HttpConnector>, Arc<ManualClock>) {
    let http = HttpClient::new(
        HttpConnector::new(),
        url.to_owned(),
        Duration::from_secs(2),
        Arc::new(ChaChaRandom::from_seed(1)),
    );
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    (
        HttpPaymentGateway::with_policy(http, policy, clock.clone()),
        clock,
    )
}

#[tokio::test]
async fn failed_calls_are_retried_a_bounded_number_of_times() {
    let gw = stand_in().await;
    let policy = PaymentClientPolicy {
        retries: 2,
        retry_backoff_ms: 5,
        breaker_failures: 0,
        breaker_open_ms: 0,
    };
    let (c, _clock) = client(&gw.url, policy);
    let err = c
        .authorize(&OrderId::from("o1"), &ev(), 100, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    assert_eq!(gw.calls.load(Ordering::SeqCst), 3, "one call + 2 retries");

    gw.healthy.store(true, Ordering::SeqCst);
    let ok = c
        .authorize(&OrderId::from("o1"), &ev(), 100, None)
        .await
        .unwrap();
    assert_eq!(ok, PaymentStatus::Authorized);
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        4,
        "a success is not retried"
    );
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_closes_after_a_good_trial() {
    let gw = stand_in().await;
    let policy = PaymentClientPolicy {
        retries: 0,
        retry_backoff_ms: 0,
        breaker_failures: 3,
        breaker_open_ms: 300,
    };
    let (c, clock) = client(&gw.url, policy);
    let order = OrderId::from("o2");
    for _ in 0..3 {
        c.authorize(&order, &ev(), 100, None).await.unwrap_err();
    }
    assert_eq!(gw.calls.load(Ordering::SeqCst), 3);
    // Open: fails without a request.
    for _ in 0..5 {
        match c.authorize(&order, &ev(), 100, None).await.unwrap_err() {
            GatewayError::Unavailable(m) => assert!(m.contains("circuit open"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(gw.calls.load(Ordering::SeqCst), 3, "no calls while open");

    // Still open 1 ms before the open period ends.
    clock.advance_ms(299);
    c.authorize(&order, &ev(), 100, None).await.unwrap_err();
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        3,
        "open for the whole period"
    );

    // After the open period one trial goes through; it fails: open again.
    clock.advance_ms(1);
    c.authorize(&order, &ev(), 100, None).await.unwrap_err();
    assert_eq!(gw.calls.load(Ordering::SeqCst), 4, "one trial call");
    c.authorize(&order, &ev(), 100, None).await.unwrap_err();
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        4,
        "re-opened after the failed trial"
    );

    // The gateway recovers: the next trial succeeds and closes the circuit.
    gw.healthy.store(true, Ordering::SeqCst);
    clock.advance_ms(300);
    assert_eq!(
        c.authorize(&order, &ev(), 100, None).await.unwrap(),
        PaymentStatus::Authorized
    );
    assert_eq!(
        c.authorize(&order, &ev(), 100, None).await.unwrap(),
        PaymentStatus::Authorized
    );
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        6,
        "closed: every call goes through"
    );
}
