use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn lists_demo_events_with_live_availability() {
    let app = spawn_app().await;
    let events: Vec<Value> = app.get("/api/events").await.json().await.unwrap();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["comedy-hour", "jazz-night", "spring-gala", "stadium-final"]
    );
    let gala = &events[2];
    assert_eq!(gala["seatCount"], 100);
    assert_eq!(gala["availableCount"], 100);
    assert_eq!(gala["title"], "Spring Gala");
    assert!(gala["startsAt"].as_str().unwrap().starts_with("2027-"));
    assert_eq!(
        events[3]["seatCount"], 1000,
        "large event sized by test settings"
    );

    app.hold_ok("spring-gala", &["1-1", "1-2", "1-3"]).await;
    let gala: Value = app
        .get("/api/events/spring-gala")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gala["availableCount"], 97);
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_is_404_everywhere() {
    let app = spawn_app().await;
    for path in [
        "/api/events/nope",
        "/api/events/nope/seats",
        "/api/events/nope/seats/stream",
    ] {
        expect_error(
            app.get(path).await,
            StatusCode::NOT_FOUND,
            "EVENT_NOT_FOUND",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn seat_map_carries_version_layout_and_status() {
    let app = spawn_app().await;
    let map = app.seat_map("jazz-night").await;
    assert_eq!(map["version"], 0);
    let seats = map["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 100);
    assert_eq!(seats[0]["seatId"], "1-1");
    assert_eq!(seats[0]["row"], 1);
    assert_eq!(seats[0]["col"], 1);
    assert!(seats[0]["price"].as_i64().unwrap() > seats[99]["price"].as_i64().unwrap());
    assert!(seats.iter().all(|s| s["status"] == "AVAILABLE"));

    app.hold_ok("jazz-night", &["2-5", "2-6"]).await;
    let map = app.seat_map("jazz-night").await;
    assert_eq!(map["version"], 2, "one change per held seat");
    assert_eq!(seat_status(&map, "2-5"), "HELD");
    assert_eq!(seat_status(&map, "2-6"), "HELD");
    assert_eq!(seat_status(&map, "2-7"), "AVAILABLE");
    app.stop().await;
}

#[tokio::test]
async fn incoming_traceparent_is_kept_and_fresh_ids_are_issued_otherwise() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/api/events"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let a = app.get("/api/events").await.headers()["x-trace-id"].clone();
    let b = app.get("/api/events").await.headers()["x-trace-id"].clone();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    app.stop().await;
}

#[tokio::test]
async fn health_and_payment_is_not_routed_by_the_gateway() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    expect_error(
        app.get("/internal/payments").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.post(
            "/internal/holds/h_x/pin",
            serde_json::json!({"orderId": "o"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}
