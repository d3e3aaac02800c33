//! After the sale, end to end on the embedded system: cancelling a
//! confirmed order voids its tickets, refunds it once, returns its seats
//! to sale (and they sell again with a new ticket); the window, the owner
//! and the idempotency key are enforced; a refund that keeps failing is
//! given up as REFUND_FAILED and an operator's retry finishes it.

use crate::helpers::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use ticketing_domain::OrderId;
use ticketing_domain::ports::OrderRepository;
use ticketing_services::config::{PaymentFaults, ScriptedFault};

async fn cancel(app: &TestApp, order: &str, key: Option<&str>, token: Option<&str>) -> Response {
    let mut req = app
        .http
        .post(app.url(&format!("/api/orders/{order}/cancel")));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Polls the order until its status is `want` (bounded); returns its body.
async fn wait_status(app: &TestApp, order: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let body: Value = app
            .get(&format!("/api/orders/{order}"))
            .await
            .json()
            .await
            .unwrap();
        if body["status"] == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {order} not {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Holds `seats` of the demo's spring-gala, orders them and waits for CONFIRMED.
async fn confirmed(app: &TestApp, seats: &[&str], key: &str) -> String {
    let hold = app.hold_ok("spring-gala", seats).await;
    let order = app.order_ok(&hold, key).await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    order
}

/// (valid, voided) tickets of one order, as seat ids.
async fn tickets_of(app: &TestApp, order: &str) -> (Vec<String>, Vec<String>) {
    let repo = &app.embedded().handles.orders;
    let mine = |ts: Vec<ticketing_domain::Ticket>| -> Vec<String> {
        ts.into_iter()
            .filter(|t| t.order_id.as_str() == order)
            .map(|t| t.seat_id.to_string())
            .collect()
    };
    (
        mine(repo.tickets().await.unwrap()),
        mine(repo.voided_tickets().await.unwrap()),
    )
}

#[tokio::test]
async fn a_cancelled_order_is_refunded_once_and_its_seats_sell_again_with_new_tickets() {
    let app = spawn_live_app_with(|s| s.saga.payment_timeout_ms = 200).await;
    let first = confirmed(&app, &["7-1", "7-2"], "buy-1").await;
    // The refund takes effect but answers after the caller gave up: the
    // retry must find it done, not refund twice.
    app.set_payment_faults(PaymentFaults {
        script: vec![ScriptedFault::TimeoutAfterSuccess],
        timeout_delay_ms: 400,
        ..PaymentFaults::default()
    });
    let r = cancel(&app, &first, Some("cancel-1"), None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(
        accepted,
        json!({ "orderId": first, "status": "CANCELLING" })
    );

    wait_status(&app, &first, "REFUNDED").await;
    app.wait_seats("spring-gala", "the seats back on sale", |m| {
        seat_status(m, "7-1") == "AVAILABLE" && seat_status(m, "7-2") == "AVAILABLE"
    })
    .await;
    assert_eq!(
        app.ledger_kinds(&first).await,
        ["AUTHORIZE", "CAPTURE", "REFUND"]
    );
    assert_eq!(
        tickets_of(&app, &first).await,
        (vec![], vec!["7-1".to_owned(), "7-2".to_owned()])
    );

    // The same key replays the first answer; another key answers the
    // order's status now, and nothing is refunded again.
    let replay = cancel(&app, &first, Some("cancel-1"), None).await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), accepted);
    let again = cancel(&app, &first, Some("cancel-2"), None).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "REFUNDED");

    // Resale: someone else buys one of the returned seats.
    let second = confirmed(&app, &["7-1"], "buy-2").await;
    assert_eq!(
        tickets_of(&app, &second).await,
        (vec!["7-1".to_owned()], vec![])
    );
    let valid: Vec<_> = app.embedded().handles.orders.tickets().await.unwrap();
    assert_eq!(
        valid.iter().filter(|t| t.seat_id.as_str() == "7-1").count(),
        1
    );
    assert_eq!(app.ledger_kinds(&first).await.len(), 3, "no second refund");
    app.stop().await;
}

#[tokio::test]
async fn cancelling_is_refused_to_others_outside_the_window_and_before_confirmation() {
    let app = spawn_live_app_with(|_| {}).await;
    // Owner: another customer's order is not found, the owner's is cancelled.
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let hold: Value = app
        .http
        .post(app.url("/api/reservations"))
        .bearer_auth(&alice)
        .json(&json!({ "eventId": "spring-gala", "seatIds": ["8-1"], "holdSeconds": 60 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let placed: Value = app
        .http
        .post(app.url("/api/orders"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "alice-1")
        .json(&json!({ "holdId": hold["holdId"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order = placed["orderId"].as_str().unwrap().to_owned();
    let mine = |order: &str| {
        app.http
            .get(app.url(&format!("/api/orders/{order}")))
            .bearer_auth(&alice)
            .send()
    };
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while mine(&order).await.unwrap().json::<Value>().await.unwrap()["status"] != "CONFIRMED" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's order not confirmed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = cancel(&app, &order, Some("c-1"), Some(&bob)).await;
    expect_error(r, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    let r = cancel(&app, &order, None, Some(&alice)).await;
    expect_error(r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED").await;
    let r = cancel(&app, &order, Some("c-1"), Some(&alice)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "bob's key is not alice's");
    let body: Value = mine(&order).await.unwrap().json().await.unwrap();
    assert_ne!(body["status"], "CONFIRMED", "alice sees her cancellation");

    // Before confirmation's end: a declined order has nothing to refund.
    app.set_payment_faults(PaymentFaults {
        script: vec![ScriptedFault::Decline],
        ..PaymentFaults::default()
    });
    let hold = app.hold_ok("spring-gala", &["8-2"]).await;
    let failed = app.order_ok(&hold, "declined-1").await;
    assert_eq!(app.wait_terminal(&failed).await["status"], "FAILED");
    let r = cancel(&app, &failed, Some("c-2"), None).await;
    expect_error(r, StatusCode::CONFLICT, "ORDER_NOT_CONFIRMED").await;
    let r = cancel(&app, "no-such-order", Some("c-3"), None).await;
    expect_error(r, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;

    // The window: an event starting in 30 minutes (the window is an hour).
    let starts_at = ticketing_contract::rfc3339(T0_MS + 30 * 60_000);
    let r = app
        .create_event(json!({
            "eventId": "soon", "title": "Soon", "startsAt": starts_at, "rows": 2, "cols": 2
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold = app.hold_ok("soon", &["1-1"]).await;
    let late = app.order_ok(&hold, "soon-1").await;
    assert_eq!(app.wait_terminal(&late).await["status"], "CONFIRMED");
    let r = cancel(&app, &late, Some("c-4"), None).await;
    let body = expect_error(r, StatusCode::CONFLICT, "REFUND_WINDOW_CLOSED").await;
    // The refusal is this key's answer from now on.
    let replay = cancel(&app, &late, Some("c-4"), None).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), body);
    let stored = &app.embedded().handles.orders;
    let record = stored.get_order(&OrderId(late)).await.unwrap().unwrap();
    assert_eq!(record.refund, None, "nothing started");
    app.stop().await;
}

#[tokio::test]
async fn a_refund_that_keeps_failing_is_given_up_and_an_operator_retry_finishes_it() {
    let app = spawn_live_app_with(|s| {
        s.refund.deadline_ms = 300;
        // No circuit breaker: open, it would fail the operator's retry for
        // longer than this short deadline.
        s.saga.payment_breaker_failures = 0;
    })
    .await;
    let order = confirmed(&app, &["9-9"], "buy-9").await;
    app.set_payment_faults(PaymentFaults {
        error_rate: 1.0,
        ..PaymentFaults::default()
    });
    let r = cancel(&app, &order, Some("cancel-9"), None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_status(&app, &order, "REFUND_FAILED").await;
    // Money owed, tickets void, the seat still sold (not on sale while the
    // first buyer's money is kept).
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    assert_eq!(
        tickets_of(&app, &order).await,
        (vec![], vec!["9-9".to_owned()])
    );
    assert_eq!(
        seat_status(&app.seat_map("spring-gala").await, "9-9"),
        "SOLD"
    );

    let retry = |id: String| {
        let url = format!(
            "{}/internal/orders/{id}/retry-refund",
            app.embedded().internal_url()
        );
        app.http.post(url).send()
    };
    app.set_payment_faults(PaymentFaults::default());
    let r = retry(order.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_status(&app, &order, "REFUNDED").await;
    app.wait_seats("spring-gala", "the seat back on sale", |m| {
        seat_status(m, "9-9") == "AVAILABLE"
    })
    .await;
    assert_eq!(
        app.ledger_kinds(&order).await,
        ["AUTHORIZE", "CAPTURE", "REFUND"]
    );
    let r = retry(order.clone()).await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "ORDER_NOT_REFUND_FAILED").await;
    let r = retry("no-such-order".into()).await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    app.stop().await;
}
