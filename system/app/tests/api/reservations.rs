use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[tokio::test]
async fn hold_returns_201_and_conflicting_hold_is_409_listing_the_seats() {
    let app = spawn_app().await;
    let r = app.hold("spring-gala", &["1-1", "1-2"], 120).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    let hold_id = hold["holdId"].as_str().unwrap();
    assert!(
        hold_id.starts_with("h_") && hold_id.len() == 34,
        "128-bit hold id: {hold_id}"
    );
    assert_eq!(hold["eventId"], "spring-gala");
    assert_eq!(hold["seatIds"], json!(["1-1", "1-2"]));
    assert_eq!(hold["expiresAtMs"], T0_MS + 120_000);
    assert_eq!(hold["expiresAt"], "2026-01-01T00:02:00.000Z");

    let r = app.hold("spring-gala", &["1-3", "1-2", "1-1"], 60).await;
    let body = expect_error(r, StatusCode::CONFLICT, "SEATS_UNAVAILABLE").await;
    assert_eq!(body["seatIds"], json!(["1-2", "1-1"]));
    // All or nothing: 1-3 was not held by the refused request.
    let map = app.seat_map("spring-gala").await;
    assert_eq!(seat_status(&map, "1-3"), "AVAILABLE");
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_or_seat_is_404() {
    let app = spawn_app().await;
    let r = app.hold("no-such-event", &["1-1"], 60).await;
    expect_error(r, StatusCode::NOT_FOUND, "EVENT_NOT_FOUND").await;
    let r = app.hold("spring-gala", &["1-1", "11-1", "0-0"], 60).await;
    let body = expect_error(r, StatusCode::NOT_FOUND, "SEAT_NOT_FOUND").await;
    assert_eq!(body["seatIds"], json!(["11-1", "0-0"]));
    assert_eq!(
        seat_status(&app.seat_map("spring-gala").await, "1-1"),
        "AVAILABLE"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_holds_on_the_same_seats_have_exactly_one_winner() {
    let app = Arc::new(spawn_app().await);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.hold("comedy-hour", &["5-5", "5-6", "5-7"], 60)
                .await
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, lost), (1, 39), "{statuses:?}");
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn overlapping_multi_seat_holds_are_all_or_nothing() {
    let app = Arc::new(spawn_app().await);
    // 60 requests for overlapping runs of 1-4 seats within row 3.
    let mut tasks = Vec::new();
    for i in 0..60u32 {
        let app = app.clone();
        let start = 1 + (i * 7) % 9;
        let len = 1 + (i % 4);
        let seats: Vec<String> = (start..start + len)
            .filter(|c| *c <= 10)
            .map(|c| format!("3-{c}"))
            .collect();
        tasks.push(tokio::spawn(async move {
            let refs: Vec<&str> = seats.iter().map(String::as_str).collect();
            let r = app.hold("jazz-night", &refs, 60).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, seats, body)
        }));
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, seats, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => {
                for s in seats {
                    assert!(owner.insert(s.clone(), i).is_none(), "seat {s} held twice");
                }
            }
            StatusCode::CONFLICT => assert_eq!(body["code"], "SEATS_UNAVAILABLE"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // Exactly the seats of winning holds are HELD: no partial holds.
    let map = app.seat_map("jazz-night").await;
    for seat in map["seats"].as_array().unwrap() {
        let id = seat["seatId"].as_str().unwrap();
        let expected = if owner.contains_key(id) {
            "HELD"
        } else {
            "AVAILABLE"
        };
        assert_eq!(seat["status"], expected, "seat {id}");
    }
    assert!(!owner.is_empty());
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn get_extend_release_lifecycle() {
    let app = spawn_app().await;
    let hold = app.hold_ok("spring-gala", &["2-2"]).await;
    let path = format!("/api/reservations/{hold}");

    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got["status"], "ACTIVE");
    assert_eq!(got["seatIds"], json!(["2-2"]));

    app.clock.advance_ms(30_000);
    let r = app
        .post(&format!("{path}/extend"), json!({ "holdSeconds": 90 }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let ext: Value = r.json().await.unwrap();
    assert_eq!(ext["expiresAtMs"], T0_MS + 120_000);

    let r = app.http.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        seat_status(&app.seat_map("spring-gala").await, "2-2"),
        "AVAILABLE"
    );
    // A released hold says so (an expired one says HOLD_EXPIRED).
    expect_error(app.get(&path).await, StatusCode::GONE, "HOLD_RELEASED").await;
    let r = app.http.delete(app.url(&path)).send().await.unwrap();
    expect_error(r, StatusCode::GONE, "HOLD_RELEASED").await;
    app.stop().await;
}

#[tokio::test]
async fn extension_is_capped_by_the_hold_lifetime() {
    let app = spawn_app_with(|s| s.hold.max_lifetime_seconds = 100).await;
    let hold = app.hold_ok("spring-gala", &["6-1"]).await; // expires T0+60
    let path = format!("/api/reservations/{hold}/extend");
    let extend = |secs: u64| app.post(&path, json!({ "holdSeconds": secs }));
    // Not forward at T0: refused, and the answer says which rule.
    let b = expect_error(
        extend(60).await,
        StatusCode::CONFLICT,
        "HOLD_EXTENSION_LIMIT",
    )
    .await;
    let message = b["message"].as_str().unwrap();
    assert!(message.contains("must move the expiry later"), "{message}");
    app.clock.advance_ms(30_000);
    let b: Value = extend(60).await.json().await.unwrap();
    assert_eq!(b["expiresAtMs"], T0_MS + 90_000);
    app.clock.advance_ms(20_000);
    let b: Value = extend(60).await.json().await.unwrap();
    assert_eq!(
        b["expiresAtMs"],
        T0_MS + 100_000,
        "capped at created + 100 s"
    );
    let b = expect_error(
        extend(60).await,
        StatusCode::CONFLICT,
        "HOLD_EXTENSION_LIMIT",
    )
    .await;
    let message = b["message"].as_str().unwrap();
    assert!(message.contains("lifetime cap"), "{message}");
    expect_error(
        extend(601).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn expiry_releases_the_seats() {
    let app = spawn_app().await;
    let r = app.hold("spring-gala", &["7-7", "7-8"], 5).await;
    let hold: Value = r.json().await.unwrap();
    let hold_id = hold["holdId"].as_str().unwrap();
    app.clock.advance_ms(5_000);
    app.wait_seats("spring-gala", "expiry", |m| {
        seat_status(m, "7-7") == "AVAILABLE" && seat_status(m, "7-8") == "AVAILABLE"
    })
    .await;
    let path = format!("/api/reservations/{hold_id}");
    expect_error(app.get(&path).await, StatusCode::GONE, "HOLD_EXPIRED").await;
    // Someone else can hold them now.
    app.hold_ok("spring-gala", &["7-7", "7-8"]).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_or_guessed_hold_ids_reveal_nothing() {
    let app = spawn_app().await;
    let real = app.hold_ok("spring-gala", &["9-9"]).await;
    let guesses = [
        "h_00000000000000000000000000000000".to_owned(),
        format!("{}0", &real[..real.len() - 1]),
        "nonsense".to_owned(),
    ];
    for g in guesses.iter().filter(|g| **g != real) {
        let path = format!("/api/reservations/{g}");
        let checks = [
            app.get(&path).await,
            app.post(&format!("{path}/extend"), json!({ "holdSeconds": 60 }))
                .await,
            app.http.delete(app.url(&path)).send().await.unwrap(),
            app.order(g, &format!("guess-{g}")).await,
        ];
        for r in checks {
            let body = expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["code", "message", "traceId"], "nothing else: {body}");
            let text = body.to_string();
            assert!(
                !text.contains("9-9") && !text.contains("spring-gala"),
                "{text}"
            );
        }
    }
    // The real hold is untouched.
    assert_eq!(
        seat_status(&app.seat_map("spring-gala").await, "9-9"),
        "HELD"
    );
    let got: Value = app
        .get(&format!("/api/reservations/{real}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "ACTIVE");
    app.stop().await;
}

#[tokio::test]
async fn a_pinned_hold_cannot_be_released_extended_or_ordered_twice() {
    let app = spawn_app_with(|s| {
        // Keep the saga in authorization (2 s) so the hold stays pinned.
        s.payment.latency_ms_min = 2_000;
        s.payment.latency_ms_max = 2_000;
        s.saga.payment_timeout_ms = 5_000;
    })
    .await;
    let hold = app.hold_ok("spring-gala", &["8-1"]).await;
    let order = app.order_ok(&hold, "pin-a").await;
    let path = format!("/api/reservations/{hold}");
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got["status"], "CHECKOUT");
    let r = app.http.delete(app.url(&path)).send().await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "HOLD_PINNED").await;
    let r = app
        .post(&format!("{path}/extend"), json!({ "holdSeconds": 60 }))
        .await;
    expect_error(r, StatusCode::CONFLICT, "HOLD_PINNED").await;
    let r = app.order(&hold, "pin-b").await;
    expect_error(r, StatusCode::CONFLICT, "HOLD_PINNED").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    app.stop().await;
}
