use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

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
        "/api/events/nope/seats/status",
        "/api/events/nope/seats/layout",
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

/// GET `path` with `If-None-Match: tag`.
async fn get_if_none_match(app: &TestApp, path: &str, tag: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap()
}

fn etag(r: &reqwest::Response) -> String {
    r.headers()["etag"].to_str().unwrap().to_owned()
}

/// The store's own seat map (the truth the cache must equal), in layout order.
async fn store_statuses(app: &TestApp, event: &str, layout: &[String]) -> (u64, String) {
    use ticketing_domain::ports::SeatStore;
    let map = app
        .embedded()
        .handles
        .seats
        .seat_map(&ticketing_domain::EventId(event.into()))
        .await
        .unwrap();
    let by_id: std::collections::BTreeMap<_, _> =
        map.seats.into_iter().map(|(id, s)| (id.0, s)).collect();
    let status = layout
        .iter()
        .map(|id| ticketing_contract::SeatStatusView::code(by_id[id]))
        .collect();
    (map.version, status)
}

async fn layout_ids(app: &TestApp, event: &str) -> Vec<String> {
    let r = app.get(&format!("/api/events/{event}/seats/layout")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let layout: ticketing_contract::SeatLayoutView = r.json().await.unwrap();
    layout.seats.into_iter().map(|s| s.seat_id.0).collect()
}

async fn compact(app: &TestApp, event: &str) -> ticketing_contract::SeatStatusView {
    let r = app.get(&format!("/api/events/{event}/seats/status")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tag = etag(&r);
    let v: ticketing_contract::SeatStatusView = r.json().await.unwrap();
    assert_eq!(tag, format!("\"{}\"", v.version));
    v
}

/// Both forms of the map are tagged with their version and answer 304 to a
/// client that has that version; a change moves the tag, and the reader
/// who made it sees it at once.
async fn etags_follow_the_version(app: &TestApp) {
    let seats = "/api/events/jazz-night/seats";
    let r = app.get(seats).await;
    assert_eq!(etag(&r), "\"0\"");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    for tag in ["\"0\"", "W/\"0\"", "\"7\", \"0\"", "*"] {
        let r = get_if_none_match(app, seats, tag).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(etag(&r), "\"0\"");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let ids = layout_ids(app, "jazz-night").await;
    let full: Vec<String> = app.seat_map("jazz-night").await["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seatId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, full, "the layout's order is the map's");
    assert_eq!(compact(app, "jazz-night").await.status, "A".repeat(100));

    app.hold_ok("jazz-night", &["2-5", "2-6"]).await;
    let r = get_if_none_match(app, seats, "\"0\"").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(etag(&r), "\"2\"");
    let c = compact(app, "jazz-night").await;
    assert_eq!(c.version, 2);
    let held: Vec<&str> = ids
        .iter()
        .zip(c.status.chars())
        .filter(|(_, s)| *s == 'H')
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(held, ["2-5", "2-6"]);
    let path = "/api/events/jazz-night/seats/status";
    let r = get_if_none_match(app, path, "\"2\"").await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn seat_map_forms_are_tagged_with_their_version_and_revalidate_to_304() {
    let app = spawn_app().await;
    etags_follow_the_version(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_the_forms_answer_the_same() {
    let app = spawn_app_with(|s| s.catalog.seat_map_cache = false).await;
    etags_follow_the_version(&app).await;
    app.stop().await;
}

/// The cache follows the change log (a few changes) and falls back to a
/// full read when the log no longer reaches its version (more changes
/// than the store keeps): every answer equals the store's own map.
#[tokio::test]
async fn the_cached_statuses_equal_the_store_after_small_and_large_moves() {
    let app = spawn_app().await;
    // A large event without a waiting room (stadium-final has one).
    let event = "big-open";
    let body = json!({"eventId": event, "title": "Big", "startsAt": "2030-01-01T20:00:00Z", "rows": 20, "cols": 50});
    assert_eq!(app.create_event(body).await.status(), StatusCode::CREATED);
    let ids = layout_ids(&app, event).await;
    assert_eq!(ids.len(), 1000);
    let check = |c: ticketing_contract::SeatStatusView, truth: (u64, String)| {
        assert_eq!((c.version, c.status.len()), (truth.0, 1000));
        assert!(c.status == truth.1, "cached statuses differ from the store");
    };
    check(
        compact(&app, event).await,
        store_statuses(&app, event, &ids).await,
    );
    let mut holds = Vec::new();
    for chunk in ids[..8].chunks(4) {
        let seats: Vec<&str> = chunk.iter().map(String::as_str).collect();
        holds.push(app.hold_ok(event, &seats).await);
    }
    check(
        compact(&app, event).await,
        store_statuses(&app, event, &ids).await,
    );
    // 2,000 changes: past the in-memory store's 1,024 kept for resume.
    for chunk in ids[8..].chunks(4) {
        let seats: Vec<&str> = chunk.iter().map(String::as_str).collect();
        holds.push(app.hold_ok(event, &seats).await);
    }
    for h in &holds[..200] {
        let r = app
            .http
            .delete(app.url(&format!("/api/reservations/{h}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let c = compact(&app, event).await;
    assert_eq!(c.version, 1800);
    check(c, store_statuses(&app, event, &ids).await);
    let map = app.seat_map(event).await;
    assert_eq!(map["version"], 1800);
    assert_eq!(seat_status(&map, &ids[0]), "AVAILABLE");
    assert_eq!(seat_status(&map, &ids[999]), "HELD");
    app.stop().await;
}
