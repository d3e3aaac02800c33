//! Contract v2's accounts: sign-up, login, the token it gives working on
//! the hold routes, one answer for a wrong password and an unknown email,
//! limits per account and per client address, bad input.

use crate::helpers::{TestApp, expect_error, spawn_app, spawn_app_with};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use ticketing_services::config::RateSettings;

async fn sign_up(app: &TestApp, email: &str, password: &str) -> Response {
    app.post(
        "/api/users",
        json!({ "email": email, "password": password }),
    )
    .await
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> Response {
    app.post(
        "/api/sessions",
        json!({ "email": email, "password": password }),
    )
    .await
}

fn hashes(app: &TestApp) -> usize {
    app.embedded().users.as_ref().unwrap().hashes_computed()
}

#[tokio::test]
async fn a_new_account_logs_in_and_its_token_holds_seats_as_that_customer() {
    let app = spawn_app_with(|s| s.auth.anonymous = Some(false)).await;
    let r = sign_up(&app, " Carol@Example.org ", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let account: Value = r.json().await.unwrap();
    let customer = account["customerId"].as_str().unwrap().to_owned();
    assert!(customer.starts_with("cus_"), "{account}");
    assert_eq!(account["email"], "Carol@Example.org");
    assert!(account.get("passwordHash").is_none(), "{account}");
    // The same email in another case is the same account.
    let r = sign_up(&app, "carol@example.ORG", "another password").await;
    expect_error(r, StatusCode::CONFLICT, "EMAIL_TAKEN").await;

    let r = log_in(&app, "CAROL@example.org", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["customerId"], customer.as_str());
    let expires = session["expiresAtMs"].as_u64().unwrap();
    let now = ticketing_domain::ports::Clock::now_ms(app.clock.as_ref());
    assert_eq!(expires, (now + 3_600_000) / 1000 * 1000, "auth.token_ttl_s");
    let token = session["accessToken"].as_str().unwrap();

    let r = app
        .http
        .post(app.url("/api/reservations"))
        .bearer_auth(token)
        .json(&json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 60 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    let id = ticketing_domain::HoldId::from(hold["holdId"].as_str().unwrap());
    let held = ticketing_domain::ports::SeatStore::get_hold(
        app.embedded().handles.seats.as_ref(),
        &id,
        now,
    )
    .await
    .unwrap();
    assert_eq!(held.customer_id.as_deref(), Some(customer.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer_after_the_same_work() {
    let app = spawn_app().await;
    let r = sign_up(&app, "dave@example.org", "dave's password").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The first login of the process also makes the dummy hash.
    let warm = log_in(&app, "warm-up@example.org", "any password").await;
    assert_eq!(warm.status(), StatusCode::UNAUTHORIZED);
    let before = hashes(&app);
    let wrong = log_in(&app, "dave@example.org", "not dave's password").await;
    let after_wrong = hashes(&app);
    let unknown = log_in(&app, "nobody@example.org", "not dave's password").await;
    let after_unknown = hashes(&app);
    let mut bodies = Vec::new();
    for r in [wrong, unknown] {
        let challenge = r.headers().get("www-authenticate").cloned();
        assert_eq!(challenge.unwrap(), "Bearer realm=\"ticketing\"");
        let mut body = expect_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
        body.as_object_mut().unwrap().remove("traceId");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "one answer for both");
    // The unknown email verified against the dummy hash: the same argon2
    // work (one verification with the same parameters) as a wrong password.
    assert_eq!(after_wrong - before, 1);
    assert_eq!(
        after_unknown - after_wrong,
        1,
        "no hash for an unknown email"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_embedded_demo_accounts_log_in() {
    let app = spawn_app().await;
    for (email, password) in ticketing_services::demo::ACCOUNTS {
        let r = log_in(&app, email, password).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{email}");
    }
    app.stop().await;
}

#[tokio::test]
async fn logins_are_limited_per_account_and_per_address_and_a_forged_forwarded_for_does_not_help() {
    let app = spawn_app_with(|s| {
        s.users.login_per_account = RateSettings::new(60, 3);
        s.users.login_per_address = RateSettings::new(60, 5);
    })
    .await;
    let (email, password) = ticketing_services::demo::ACCOUNTS[0];
    for _ in 0..3 {
        let r = log_in(&app, email, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The account's burst is spent: even the right password waits.
    let r = log_in(&app, email, password).await;
    let retry = r.headers().get("retry-after").cloned();
    let body = expect_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert_eq!(retry.unwrap(), "1");
    assert_eq!(body["retryAfterMs"], 1_000);
    app.clock.advance_ms(1_000);
    assert_eq!(
        log_in(&app, email, password).await.status(),
        StatusCode::CREATED
    );
    // Five attempts from this address so far (a burst of 5, and one more
    // came back in the second that passed): one more passes, then none,
    // whatever email and whatever X-Forwarded-For the client makes up.
    let other = log_in(&app, "eve@example.org", "wrong password").await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let forged = app
        .http
        .post(app.url("/api/sessions"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "email": "mallory@example.org", "password": "wrong password" }))
        .send()
        .await
        .unwrap();
    expect_error(forged, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    app.stop().await;
}

#[tokio::test]
async fn sign_up_refuses_bad_input_with_the_standard_body_and_takes_any_script() {
    let app = spawn_app().await;
    for (email, password) in [
        ("no-at-sign", "long enough password"),
        ("a@b@c", "long enough password"),
        ("", "long enough password"),
        ("short@example.org", "short"),
        ("long@example.org", &"p".repeat(257)),
    ] {
        let r = sign_up(&app, email, password).await;
        expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    let r = app
        .post(
            "/api/users",
            json!({ "email": "x@example.org", "password": "long enough", "admin": true }),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    // A 10 MB password never reaches the hasher.
    let before = hashes(&app);
    let huge = "p".repeat(10 * 1024 * 1024);
    let r = sign_up(&app, "huge@example.org", &huge).await;
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    // Over the password bound at login: refused without hashing.
    let r = log_in(&app, "ann@example.org", &"p".repeat(300)).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    assert_eq!(hashes(&app), before);
    let r = sign_up(&app, "zoë@exämple.org", "pässwörd-ünïcode").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = log_in(&app, "ZOË@EXÄMPLE.ORG", "pässwörd-ünïcode").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.stop().await;
}
