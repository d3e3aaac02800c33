//! Contract v2's customers on the hold and order routes: bearer tokens
//! verified by each service, holds and orders owned by the token's
//! customer (everyone else gets 404), idempotency keys per customer, and
//! anonymous access only where `auth.anonymous` allows it.

use crate::helpers::{TestApp, expect_error, spawn_app, spawn_app_with};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use ticketing_services::customer::{CustomerKey, mint};

async fn strict_app() -> TestApp {
    spawn_app_with(|s| s.auth.anonymous = Some(false)).await
}

/// Sends `method path` with `Authorization: <auth>` (none when `None`).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> Response {
    let mut b = app.http.request(method, app.url(path));
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if let Some(body) = body {
        b = b.json(&body);
    }
    if path == "/api/orders" {
        b = b.header(
            "idempotency-key",
            format!("k-{}", auth.unwrap_or("-").len()),
        );
    }
    b.send().await.unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn hold_as(app: &TestApp, token: &str, seat: &str) -> String {
    let body = json!({ "eventId": "spring-gala", "seatIds": [seat], "holdSeconds": 60 });
    let r = send(
        app,
        Method::POST,
        "/api/reservations",
        Some(body),
        Some(&bearer(token)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["holdId"].as_str().unwrap().to_owned()
}

async fn order_as(app: &TestApp, token: &str, hold: &str, key: &str) -> Response {
    app.http
        .post(app.url("/api/orders"))
        .header("authorization", bearer(token))
        .header("idempotency-key", key)
        .json(&json!({ "holdId": hold }))
        .send()
        .await
        .unwrap()
}

async fn expect_unauthenticated(r: Response) {
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("Bearer")),
        "{challenge:?}"
    );
    let body = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    assert!(body["traceId"].is_string(), "{body}");
}

#[tokio::test]
async fn hold_and_order_routes_refuse_missing_expired_forged_and_malformed_tokens() {
    let app = strict_app().await;
    let now = ticketing_domain::ports::Clock::now_ms(app.clock.as_ref());
    let other_key = CustomerKey::hs256(&"another-deployment-secret-".repeat(2)).unwrap();
    let demo = ticketing_app::embedded::customer_key(&crate::helpers::test_settings()).unwrap();
    let expired = mint(&demo, "alice", now - 7_200_000, 3_600_000).token;
    let forged = mint(&other_key, "alice", now, 3_600_000).token;
    let auths: Vec<Option<String>> = vec![
        None,
        Some("Basic YWxpY2U6cHc=".into()),
        Some("Bearer".into()),
        Some(bearer("not.a.jwt")),
        Some(bearer(&expired)),
        Some(bearer(&forged)),
        Some(bearer(&"a".repeat(10_000))),
    ];
    let hold = json!({ "eventId": "spring-gala", "seatIds": ["10-1"], "holdSeconds": 60 });
    let routes = [
        (Method::POST, "/api/reservations", Some(hold)),
        (Method::GET, "/api/reservations/0123abcd", None),
        (Method::DELETE, "/api/reservations/0123abcd", None),
        (
            Method::POST,
            "/api/reservations/0123abcd/extend",
            Some(json!({ "holdSeconds": 60 })),
        ),
        (
            Method::POST,
            "/api/orders",
            Some(json!({ "holdId": "0123abcd" })),
        ),
        (Method::GET, "/api/orders/0123abcd", None),
    ];
    for (method, path, body) in &routes {
        for auth in &auths {
            let r = send(&app, method.clone(), path, body.clone(), auth.as_deref()).await;
            expect_unauthenticated(r).await;
        }
    }
    // Nothing was held by any of them.
    let map = app.seat_map("spring-gala").await;
    assert_eq!(crate::helpers::seat_status(&map, "10-1"), "AVAILABLE");
    app.stop().await;
}

#[tokio::test]
async fn another_customers_hold_and_order_are_not_found_as_if_they_never_were() {
    let app = strict_app().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let hold = hold_as(&app, &alice, "10-1").await;
    let path = format!("/api/reservations/{hold}");
    let unknown = "/api/reservations/00000000000000000000000000000000";
    let extend = Some(json!({ "holdSeconds": 90 }));
    for p in [path.as_str(), unknown] {
        let r = send(&app, Method::GET, p, None, Some(&bearer(&bob))).await;
        let body = expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
        assert_eq!(body["message"], "hold not found");
        let r = send(
            &app,
            Method::POST,
            &format!("{p}/extend"),
            extend.clone(),
            Some(&bearer(&bob)),
        )
        .await;
        expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
        let r = send(&app, Method::DELETE, p, None, Some(&bearer(&bob))).await;
        expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    }
    let r = order_as(&app, &bob, &hold, "bob-1").await;
    expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    // Still alice's, untouched by bob's attempts.
    let r = send(&app, Method::GET, &path, None, Some(&bearer(&alice))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = order_as(&app, &alice, &hold, "alice-1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let order: Value = r.json().await.unwrap();
    let order_path = format!("/api/orders/{}", order["orderId"].as_str().unwrap());
    let r = send(&app, Method::GET, &order_path, None, Some(&bearer(&bob))).await;
    expect_error(r, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    let r = send(&app, Method::GET, &order_path, None, Some(&bearer(&alice))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["holdId"], hold.as_str());
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_is_each_customers_own() {
    let app = strict_app().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let (ha, hb) = (
        hold_as(&app, &alice, "10-1").await,
        hold_as(&app, &bob, "10-2").await,
    );
    let a = order_as(&app, &alice, &ha, "same-key").await;
    let b = order_as(&app, &bob, &hb, "same-key").await;
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert!(b.headers().get("idempotent-replayed").is_none());
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(a["orderId"], b["orderId"]);
    // The key is his own: with alice's hold it is a mismatch of his first
    // request, never a replay of her order.
    let r = order_as(&app, &bob, &ha, "same-key").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn the_demo_takes_anonymous_holds_but_never_a_bad_token_and_keeps_customers_apart() {
    let app = spawn_app().await;
    let anonymous = app.hold_ok("spring-gala", &["10-1"]).await;
    // An anonymous hold has only its id as the capability (contract v1).
    let r = send(
        &app,
        Method::GET,
        &format!("/api/reservations/{anonymous}"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json!({ "eventId": "spring-gala", "seatIds": ["10-2"], "holdSeconds": 60 });
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body),
        Some("Bearer junk"),
    )
    .await;
    expect_unauthenticated(r).await;
    let alice = app.token("alice");
    let hold = hold_as(&app, &alice, "10-3").await;
    let r = send(
        &app,
        Method::GET,
        &format!("/api/reservations/{hold}"),
        None,
        None,
    )
    .await;
    expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    let r = app.order(&hold, "anon-1").await;
    expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    app.stop().await;
}

/// 50 one-seat holds of one customer at once: exactly `limits.seats_per_event`
/// are granted (the limit is inside the seat store's atomic step), the rest
/// are 409 `CUSTOMER_LIMIT` with the count; another customer is unaffected.
#[tokio::test]
async fn one_customer_gets_exactly_the_seat_limit_under_50_concurrent_holds() {
    let app = spawn_app_with(|s| s.limits.active_holds = 0).await;
    let token = app.token("scalper");
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (http, url, token) = (
            app.http.clone(),
            app.url("/api/reservations"),
            token.clone(),
        );
        let seat = format!("{}-{}", n / 10 + 1, n % 10 + 1);
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "eventId": "spring-gala", "seatIds": [seat], "holdSeconds": 60 }))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status() == StatusCode::CREATED {
            granted += 1;
            continue;
        }
        let body = expect_error(r, StatusCode::CONFLICT, "CUSTOMER_LIMIT").await;
        assert_eq!(
            body["customerLimit"],
            json!({ "kind": "SEATS_PER_EVENT", "count": 8, "limit": 8 }),
            "{body}"
        );
    }
    assert_eq!(granted, 8);
    let other = app.token("someone-else");
    hold_as(&app, &other, "10-10").await;
    app.stop().await;
}

#[tokio::test]
async fn a_customer_has_at_most_two_live_holds_and_a_released_one_frees_its_place() {
    let app = spawn_app().await;
    let token = app.token("ann");
    let first = hold_as(&app, &token, "9-1").await;
    hold_as(&app, &token, "9-2").await;
    let body = json!({ "eventId": "spring-gala", "seatIds": ["9-3"], "holdSeconds": 60 });
    let auth = bearer(&token);
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body.clone()),
        Some(&auth),
    )
    .await;
    let e = expect_error(r, StatusCode::CONFLICT, "CUSTOMER_LIMIT").await;
    assert_eq!(e["customerLimit"]["kind"], "ACTIVE_HOLDS", "{e}");
    assert_eq!(e["customerLimit"]["count"], 2, "{e}");
    let path = format!("/api/reservations/{first}");
    let r = send(&app, Method::DELETE, &path, None, Some(&auth)).await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body),
        Some(&auth),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.stop().await;
}

/// A gone hold says why — released, or ordered with the order's id — to its
/// owner only; anyone else gets the 404 of an unknown id.
#[tokio::test]
async fn a_gone_hold_tells_its_owner_why_and_nobody_else_anything() {
    let app = spawn_app().await;
    let (ann, bob) = (bearer(&app.token("ann")), bearer(&app.token("bob")));
    let released = hold_as(&app, &app.token("ann"), "8-1").await;
    let path = format!("/api/reservations/{released}");
    let r = send(&app, Method::DELETE, &path, None, Some(&ann)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&app, Method::GET, &path, None, Some(&ann)).await;
    expect_error(r, StatusCode::GONE, "HOLD_RELEASED").await;
    for who in [Some(bob.as_str()), None] {
        let r = send(&app, Method::GET, &path, None, who).await;
        expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    }

    let ordered = hold_as(&app, &app.token("ann"), "8-2").await;
    let r = order_as(&app, &app.token("ann"), &ordered, "gone-1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let order: Value = r.json().await.unwrap();
    let order_id = order["orderId"].as_str().unwrap().to_owned();
    let path = format!("/api/reservations/{ordered}");
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT_LIMIT;
    let body = loop {
        let r = send(&app, Method::GET, &path, None, Some(&ann)).await;
        if r.status() == StatusCode::GONE {
            break expect_error(r, StatusCode::GONE, "HOLD_ORDERED").await;
        }
        assert_eq!(r.status(), StatusCode::OK, "in checkout until confirmed");
        assert!(tokio::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(body["orderId"], order_id.as_str(), "{body}");
    let r = send(&app, Method::GET, &path, None, Some(&bob)).await;
    expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    app.stop().await;
}

/// Holds and orders are rate-limited per customer (on by default) and per
/// client address (when configured): 429 `RATE_LIMITED` with `Retry-After`,
/// the standard body, and the count back once the time has passed.
#[tokio::test]
async fn holds_are_rate_limited_per_customer_and_per_address() {
    use ticketing_services::config::RateSettings;
    let app = spawn_app_with(|s| {
        s.limits.active_holds = 0;
        s.limits.hold_per_customer = RateSettings::new(60, 3);
        s.limits.hold_per_address = RateSettings::new(60, 5);
    })
    .await;
    let ann = app.token("ann");
    for seat in ["6-1", "6-2", "6-3"] {
        hold_as(&app, &ann, seat).await;
    }
    let body = json!({ "eventId": "spring-gala", "seatIds": ["6-4"], "holdSeconds": 60 });
    let auth = bearer(&ann);
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body.clone()),
        Some(&auth),
    )
    .await;
    assert_eq!(r.headers()["retry-after"], "1");
    let e = expect_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert_eq!(e["retryAfterMs"], 1_000, "{e}");
    // Bob is another customer, from the same address: 5 per burst there.
    let bob = app.token("bob");
    hold_as(&app, &bob, "6-5").await;
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body.clone()),
        Some(&bearer(&bob)),
    )
    .await;
    expect_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    app.clock.advance_ms(1_000);
    let r = send(
        &app,
        Method::POST,
        "/api/reservations",
        Some(body),
        Some(&auth),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "a second later");
    app.stop().await;
}

/// Credentials are checked before the body: without a valid token a
/// malformed or unreadable body is still 401, never a 4xx that shows the
/// route parsed it. With a token, the body's own refusal stands.
#[tokio::test]
async fn credentials_are_checked_before_the_body() {
    let app = strict_app().await;
    for path in [
        "/api/reservations",
        "/api/reservations/h_0/extend",
        "/api/orders",
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("content-type", "application/json")
            .header("idempotency-key", "k-1")
            .body("{not json")
            .send()
            .await
            .unwrap();
        expect_unauthenticated(r).await;
    }
    let r = app
        .http
        .post(app.url("/api/reservations"))
        .bearer_auth(app.token("ann"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}
