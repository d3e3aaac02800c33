//! The live seat stream: snapshot first, one change per version, resume
//! with Last-Event-ID, snapshot when the gap is too old, expiry as a change,
//! heartbeats, and streams that end on shutdown.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::Value;

/// One parsed SSE message (comments are reported as `event == ":"`).
#[derive(Debug, Clone)]
struct Msg {
    event: String,
    id: Option<u64>,
    data: Value,
}

struct SseReader {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    async fn open(app: &TestApp, event: &str, last_event_id: Option<u64>) -> SseReader {
        let mut req = app
            .http
            .get(app.url(&format!("/api/events/{event}/seats/stream")));
        if let Some(v) = last_event_id {
            req = req.header("Last-Event-ID", v.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next message or comment; `None` when the stream ended. Bounded wait.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut msg = Msg {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        msg.event = ":".into();
                        msg.data = Value::String(c.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        msg.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        msg.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        msg.data = serde_json::from_str(v.trim()).unwrap();
                    }
                }
                return Some(msg);
            }
            let chunk = tokio::time::timeout(WAIT_LIMIT, self.stream.next())
                .await
                .expect("SSE message within the wait limit")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.ok()?).unwrap());
        }
    }

    /// The next data message, skipping heartbeats.
    async fn next_data(&mut self) -> Msg {
        loop {
            let m = self.next().await.expect("stream open");
            if m.event != ":" {
                return m;
            }
        }
    }
}

fn assert_change(m: &Msg, version: u64, seat: &str, status: &str) {
    assert_eq!(m.event, "change", "{m:?}");
    assert_eq!(m.id, Some(version));
    assert_eq!(m.data["version"], version);
    assert_eq!(m.data["seatId"], seat);
    assert_eq!(m.data["status"], status);
}

#[tokio::test]
async fn snapshot_first_then_one_change_per_version() {
    let app = spawn_app().await;
    app.hold_ok("spring-gala", &["1-1"]).await; // version 1
    let mut sse = SseReader::open(&app, "spring-gala", None).await;
    let snap = sse.next_data().await;
    assert_eq!(snap.event, "snapshot");
    assert_eq!(snap.id, Some(1));
    assert_eq!(snap.data["version"], 1);
    assert_eq!(snap.data["seats"].as_array().unwrap().len(), 100);
    assert_eq!(seat_status(&snap.data, "1-1"), "HELD");

    let hold = app.hold_ok("spring-gala", &["2-1", "2-2"]).await;
    assert_change(&sse.next_data().await, 2, "2-1", "HELD");
    assert_change(&sse.next_data().await, 3, "2-2", "HELD");
    let r = app
        .http
        .delete(app.url(&format!("/api/reservations/{hold}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_change(&sse.next_data().await, 4, "2-1", "AVAILABLE");
    assert_change(&sse.next_data().await, 5, "2-2", "AVAILABLE");
    app.stop().await;
}

#[tokio::test]
async fn a_confirmed_order_shows_as_sold_and_expiry_as_available() {
    let app = spawn_live_app_with(|_| {}).await;
    let mut sse = SseReader::open(&app, "jazz-night", None).await;
    assert_eq!(sse.next_data().await.event, "snapshot");
    let hold = app.hold_ok("jazz-night", &["1-1"]).await;
    assert_change(&sse.next_data().await, 1, "1-1", "HELD");
    let order = app.order_ok(&hold, "sse-1").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    assert_change(&sse.next_data().await, 2, "1-1", "SOLD");

    let r = app.hold("jazz-night", &["1-2"], 5).await;
    assert_eq!(r.status(), 201);
    assert_change(&sse.next_data().await, 3, "1-2", "HELD");
    app.clock.advance_ms(5_000);
    assert_change(&sse.next_data().await, 4, "1-2", "AVAILABLE");
    app.stop().await;
}

#[tokio::test]
async fn last_event_id_replays_missed_changes_without_a_snapshot() {
    let app = spawn_app().await;
    app.hold_ok("comedy-hour", &["1-1"]).await; // v1
    app.hold_ok("comedy-hour", &["1-2", "1-3"]).await; // v2, v3
    app.hold_ok("comedy-hour", &["1-4"]).await; // v4
    let mut sse = SseReader::open(&app, "comedy-hour", Some(1)).await;
    assert_change(&sse.next_data().await, 2, "1-2", "HELD");
    assert_change(&sse.next_data().await, 3, "1-3", "HELD");
    assert_change(&sse.next_data().await, 4, "1-4", "HELD");
    // And live changes keep coming after the replay.
    app.hold_ok("comedy-hour", &["1-5"]).await;
    assert_change(&sse.next_data().await, 5, "1-5", "HELD");

    // Up to date: nothing replayed, the next live change is next.
    let mut sse2 = SseReader::open(&app, "comedy-hour", Some(5)).await;
    app.hold_ok("comedy-hour", &["1-6"]).await;
    assert_change(&sse2.next_data().await, 6, "1-6", "HELD");
    app.stop().await;
}

#[tokio::test]
async fn a_gap_older_than_the_history_gets_a_fresh_snapshot() {
    let app = spawn_app_with(|s| {
        s.catalog.history_limit = 8;
        s.catalog.replay_limit = 6;
    })
    .await;
    for c in 1..=10 {
        app.hold_ok("spring-gala", &[&format!("2-{c}")]).await; // v1..v10
    }
    // Version 1 is no longer in the 8-change history.
    let mut sse = SseReader::open(&app, "spring-gala", Some(1)).await;
    let m = sse.next_data().await;
    assert_eq!(m.event, "snapshot");
    assert_eq!(m.id, Some(10));
    // In the history but more than the replay limit: also a snapshot.
    let mut sse = SseReader::open(&app, "spring-gala", Some(3)).await;
    assert_eq!(sse.next_data().await.event, "snapshot");
    // Within both: replay.
    let mut sse = SseReader::open(&app, "spring-gala", Some(7)).await;
    assert_change(&sse.next_data().await, 8, "2-8", "HELD");
    // A version from the future (e.g. the store was reset): snapshot.
    let mut sse = SseReader::open(&app, "spring-gala", Some(999)).await;
    assert_eq!(sse.next_data().await.event, "snapshot");
    app.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_idle_streams_alive() {
    let app = spawn_app_with(|s| s.catalog.sse_heartbeat_ms = 100).await;
    let mut sse = SseReader::open(&app, "spring-gala", None).await;
    assert_eq!(sse.next_data().await.event, "snapshot");
    let m = sse.next().await.unwrap();
    assert_eq!(m.event, ":");
    assert_eq!(m.data, "heartbeat");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let app = spawn_app().await;
    let mut sse = SseReader::open(&app, "spring-gala", None).await;
    assert_eq!(sse.next_data().await.event, "snapshot");
    assert_eq!(
        app.embedded()
            .handles
            .feed
            .subscribers(&"spring-gala".into()),
        1
    );
    app.stop().await;
    // The server closed the stream: it ends instead of hanging.
    let mut ended = false;
    for _ in 0..100 {
        match sse.next().await {
            None => {
                ended = true;
                break;
            }
            Some(m) => assert_eq!(m.event, ":", "only heartbeats before the end"),
        }
    }
    assert!(ended);
}

/// A stream more than the channel's capacity behind is cut, not buffered
/// for, and resuming with Last-Event-ID brings back every change.
#[tokio::test]
async fn a_subscriber_that_falls_behind_is_cut_and_resumes_without_a_loss() {
    let app = spawn_app_with(|s| s.catalog.feed_channel_capacity = 4).await;
    let mut sse = SseReader::open(&app, "jazz-night", None).await;
    let snap = sse.next_data().await;
    assert_eq!((snap.event.as_str(), snap.id), ("snapshot", Some(0)));
    // 40 changes in one store step: the feed broadcasts them in one go,
    // past the 4 the channel holds for this stream.
    let seats: Vec<ticketing_domain::SeatId> = (1..=40)
        .map(|c| ticketing_domain::seat_id_for(1 + (c - 1) / 10, 1 + (c - 1) % 10))
        .collect();
    let order = ticketing_domain::OrderId("o-test".into());
    app.embedded().handles.seats.overwrite_seats_unchecked(
        &"jazz-night".into(),
        &seats,
        Some(&order),
    );
    let mut last = 0;
    while let Some(m) = sse.next().await {
        if m.event == "change" {
            last = m.id.unwrap();
        }
    }
    assert!(last < 40, "cut before the end of the burst, at {last}");
    let mut again = SseReader::open(&app, "jazz-night", Some(last)).await;
    for v in last + 1..=40 {
        let m = again.next_data().await;
        assert_eq!((m.event.as_str(), m.id), ("change", Some(v)));
    }
    app.stop().await;
}
