//! The waiting room through HTTP: joining, the pre-queue drawn at the
//! on-sale time, admission within the caps, the admission token that holds
//! on a protected event need, and every refusal.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Settings: admit quickly, at most `active_max` / `per_s`.
async fn app_with_caps(active_max: u32, per_s: u32) -> TestApp {
    spawn_app_with(|s| {
        s.queue.admit_interval_ms = 10;
        s.queue.active_max = active_max;
        s.queue.admit_per_s = per_s;
    })
    .await
}

async fn join(app: &TestApp, event: &str) -> Value {
    let r = app.post(&format!("/api/queue/{event}"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn place(app: &TestApp, event: &str, ticket: &str) -> Value {
    let r = app.get(&format!("/api/queue/{event}/{ticket}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Polls a place (bounded) until its status is `want`.
async fn wait_status(app: &TestApp, event: &str, ticket: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let p = place(app, event, ticket).await;
        if p["status"] == want {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {p} after {WAIT_LIMIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn ticket(j: &Value) -> String {
    j["ticket"].as_str().unwrap().to_owned()
}

/// The demo's `stadium-final` has a room: a hold without a token is
/// refused; joining, being admitted and holding with the token works; the
/// token does not open another protected event.
#[tokio::test]
async fn a_protected_event_is_bought_through_the_queue() {
    let app = app_with_caps(10, 10).await;
    let refused = app.hold("stadium-final", &["1-1"], 60).await;
    let body = expect_error(refused, StatusCode::FORBIDDEN, "ADMISSION_REQUIRED").await;
    assert!(body.get("seatIds").is_none(), "nothing about seats: {body}");
    let j = join(&app, "stadium-final").await;
    assert!(
        ticket(&j).starts_with("q_") && ticket(&j).len() >= 34,
        "{j}"
    );
    let admitted = wait_status(&app, "stadium-final", &ticket(&j), "ADMITTED").await;
    let token = admitted["admissionToken"].as_str().unwrap();
    // The admission time is on the queue's clock, after the join, before now.
    let at = admitted["admittedAtMs"]
        .as_u64()
        .expect("admittedAtMs when ADMITTED");
    assert!(
        at >= j["place"]["onSaleAtMs"].as_u64().unwrap(),
        "{admitted}"
    );
    let ttl_ms = ticketing_services::config::QueueSettings::default().token_ttl_s * 1000;
    assert_eq!(
        admitted["tokenExpiresAtMs"].as_u64(),
        Some(at + ttl_ms),
        "the token runs from the admission: {admitted}"
    );
    assert!(
        j["place"]["admittedAtMs"].is_null(),
        "not while waiting: {j}"
    );
    let r = app.hold_admitted("stadium-final", &["1-1"], token).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    let order = app
        .order_ok(hold["holdId"].as_str().unwrap(), "queue-buy-1")
        .await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    // A token is for one event only.
    let other = json!({"eventId": "other-final", "title": "Other", "startsAt": "2030-01-01T20:00:00Z",
        "rows": 2, "cols": 2, "waitingRoom": {}});
    assert_eq!(app.create_event(other).await.status(), StatusCode::CREATED);
    let r = app.hold_admitted("other-final", &["1-1"], token).await;
    expect_error(r, StatusCode::FORBIDDEN, "ADMISSION_INVALID").await;
    let r = app
        .hold_admitted("stadium-final", &["1-2"], "v1.00.00")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "ADMISSION_INVALID").await;
    // Unprotected events need no token.
    assert_eq!(
        app.hold("jazz-night", &["1-1"], 60).await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

/// Early arrivals wait in the pre-queue without a position; at the on-sale
/// time they are in one drawn order, and later arrivals queue behind them.
/// The caps hold: with `admit_per_s = 2` the clock's second admits two.
#[tokio::test]
async fn early_arrivals_are_drawn_at_the_on_sale_time_and_later_ones_queue_behind() {
    // The clock jumps a minute to the on-sale time: visitors silent that
    // long must not count as gone (`queue.abandon_s`).
    let app = spawn_app_with(|s| {
        s.queue.admit_interval_ms = 10;
        s.queue.active_max = 100;
        s.queue.admit_per_s = 2;
        s.queue.abandon_s = 600;
    })
    .await;
    let on_sale = T0_MS + 60_000;
    let body = json!({"eventId": "drop", "title": "Drop", "startsAt": "2030-01-01T20:00:00Z",
        "rows": 5, "cols": 5, "waitingRoom": {"onSaleAtMs": on_sale}});
    assert_eq!(app.create_event(body).await.status(), StatusCode::CREATED);
    let mut early_tickets = Vec::new();
    for _ in 0..4 {
        let j = join(&app, "drop").await;
        assert_eq!(j["place"]["prequeue"], true);
        assert_eq!(
            j["place"]["position"],
            Value::Null,
            "no order before the draw"
        );
        early_tickets.push(ticket(&j));
    }
    app.clock.set_ms(on_sale);
    let late = ticket(&join(&app, "drop").await);
    // The clock stands still inside one second: two admissions, no more
    // (the admitter runs every 10 ms; wait for both, then read the places).
    let room_url = format!("{}/internal/queue/drop", app.embedded().internal_url());
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let room = loop {
        let room: Value = app
            .http
            .get(&room_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if room["admittedTotal"] == 2 || tokio::time::Instant::now() > deadline {
            break room;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(
        (room["admittedTotal"].as_u64(), room["waiting"].as_u64()),
        (Some(2), Some(3)),
        "{room}"
    );
    // The early ones hold the first places: two of them are the admitted,
    // the other two are next; the late one is behind all four.
    let (mut admitted, mut positions) = (0, Vec::new());
    for t in &early_tickets {
        let p = place(&app, "drop", t).await;
        match p["position"].as_u64() {
            Some(n) => positions.push(n),
            None => {
                assert_eq!(p["status"], "ADMITTED", "{p}");
                admitted += 1;
            }
        }
    }
    positions.sort_unstable();
    assert_eq!(
        (admitted, positions),
        (2, vec![1, 2]),
        "the early ones first"
    );
    let late_place = place(&app, "drop", &late).await;
    assert_eq!(late_place["position"], 3);
    assert!(late_place["estimatedWaitMs"].as_u64().unwrap() > 0);
    // Caps change at run time.
    let caps = app
        .http
        .put(&room_url)
        .json(&json!({"activeMax": 100, "admitPerS": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(caps.status(), StatusCode::OK);
    app.clock.advance_ms(1_000);
    wait_status(&app, "drop", &late, "ADMITTED").await;
    app.stop().await;
}

/// Unknown events, events without a room and foreign or made-up tickets
/// get the standard errors and say nothing about anyone's place.
#[tokio::test]
async fn queue_refusals_reveal_nothing() {
    let app = app_with_caps(10, 10).await;
    let r = app.post("/api/queue/jazz-night", json!({})).await;
    expect_error(r, StatusCode::CONFLICT, "QUEUE_NOT_ENABLED").await;
    let r = app.post("/api/queue/no-such-event", json!({})).await;
    expect_error(r, StatusCode::NOT_FOUND, "EVENT_NOT_FOUND").await;
    let j = join(&app, "stadium-final").await;
    for path in [
        format!("/api/queue/stadium-final/q_{}", "0".repeat(32)),
        format!("/api/queue/jazz-night/{}", ticket(&j)),
        "/api/queue/stadium-final/%00%ff".to_owned(),
        format!("/api/queue/stadium-final/{}", "x".repeat(500)),
    ] {
        let r = app.get(&path).await;
        let body = expect_error(r, StatusCode::NOT_FOUND, "QUEUE_TICKET_NOT_FOUND").await;
        assert!(body.get("visitorId").is_none(), "{path}: {body}");
    }
    app.stop().await;
}

/// The position stream sends the place now, then its admission (with the
/// token), and ends there: a page shows the move without polling.
#[tokio::test]
async fn the_position_stream_shows_the_admission_and_ends() {
    let app = spawn_app_with(|s| {
        s.queue.admit_interval_ms = 10;
        s.queue.stream_interval_ms = 10;
        s.queue.active_max = 0;
    })
    .await;
    let j = join(&app, "stadium-final").await;
    let url = app.url(&format!("/api/queue/stadium-final/{}/stream", ticket(&j)));
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let room_url = format!(
        "{}/internal/queue/stadium-final",
        app.embedded().internal_url()
    );
    let caps = json!({"activeMax": 5, "admitPerS": 5});
    let body = tokio::time::timeout(WAIT_LIMIT, async {
        let first = resp;
        // The caps open after the stream has started.
        let put = app.http.put(&room_url).json(&caps).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        first.text().await.unwrap()
    })
    .await
    .expect("the stream ends after the admission");
    let places: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(places.len() >= 2, "{body}");
    assert_eq!(places[0]["status"], "WAITING");
    assert_eq!(places[0]["position"], 1);
    let last = places.last().unwrap();
    assert_eq!(last["status"], "ADMITTED", "{body}");
    assert!(
        last["admissionToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("v2."))
    );
    app.stop().await;
}

/// With one slot, the second visitor is admitted as soon as the first one
/// has bought — not after the first one's idle time (the clock stands still).
#[tokio::test]
async fn buying_frees_the_slot_for_the_next_visitor() {
    let app = app_with_caps(1, 10).await;
    let first = ticket(&join(&app, "stadium-final").await);
    let second = ticket(&join(&app, "stadium-final").await);
    let admitted = wait_status(&app, "stadium-final", &first, "ADMITTED").await;
    assert_eq!(place(&app, "stadium-final", &second).await["position"], 1);
    let token = admitted["admissionToken"].as_str().unwrap();
    let r = app.hold_admitted("stadium-final", &["2-1"], token).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    let order = app
        .order_ok(hold["holdId"].as_str().unwrap(), "queue-free-1")
        .await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    wait_status(&app, "stadium-final", &second, "ADMITTED").await;
    assert_eq!(
        place(&app, "stadium-final", &first).await["status"],
        "EXPIRED"
    );
    let again = app.hold_admitted("stadium-final", &["2-2"], token).await;
    expect_error(again, StatusCode::FORBIDDEN, "ADMISSION_INVALID").await;
    app.stop().await;
}

/// `POST /api/queue/{event}` as customer `token`.
async fn join_as(app: &TestApp, event: &str, token: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/queue/{event}")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

/// A hold on a protected event with admission `admission`, as customer `token`.
async fn hold_as(app: &TestApp, seat: &str, admission: &str, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/reservations"))
        .bearer_auth(token)
        .header("x-admission-token", admission)
        .json(&json!({ "eventId": "stadium-final", "seatIds": [seat], "holdSeconds": 60 }))
        .send()
        .await
        .unwrap()
}

/// Where customers are required: joining needs a bearer token; a customer
/// holds one place (joining again answers it, 200); its admission token
/// names it, so another customer — or an anonymous caller — cannot hold
/// with it, while its owner can.
#[tokio::test]
async fn a_customer_holds_one_place_and_its_admission_is_its_own() {
    let app = spawn_app_with(|s| {
        s.auth.anonymous = Some(false);
        s.queue.admit_interval_ms = 10;
        s.queue.active_max = 10;
        s.queue.admit_per_s = 10;
    })
    .await;
    let r = app.post("/api/queue/stadium-final", json!({})).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let (ada, eve) = (app.token("ada"), app.token("eve"));
    let first = join_as(&app, "stadium-final", &ada).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = join_as(&app, "stadium-final", &ada).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a rejoin is not a new place"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(ticket(&again), ticket(&first));
    assert_eq!(again["visitorId"], first["visitorId"]);
    let other = join_as(&app, "stadium-final", &eve).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    let other: Value = other.json().await.unwrap();
    assert_ne!(ticket(&other), ticket(&first));
    let admitted = wait_status(&app, "stadium-final", &ticket(&first), "ADMITTED").await;
    let admission = admitted["admissionToken"].as_str().unwrap();
    let stolen = hold_as(&app, "3-1", admission, &eve).await;
    let body = expect_error(stolen, StatusCode::FORBIDDEN, "ADMISSION_INVALID").await;
    assert!(!body.to_string().contains("ada"), "names no one: {body}");
    let anonymous = app
        .hold_admitted("stadium-final", &["3-1"], admission)
        .await;
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let own = hold_as(&app, "3-1", admission, &ada).await;
    assert_eq!(own.status(), StatusCode::CREATED);
    app.stop().await;
}
