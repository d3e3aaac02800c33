//! SSE watchers: hosts that follow the catalog's seat stream like a browser
//! would — snapshot first, then changes by version — and resume with
//! `Last-Event-ID` after any disconnect (a crash of the catalog, a
//! partition, a silent stream past the heartbeat). Their views live outside
//! the host so the convergence checker can compare them with the truth.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{ChangeView, SeatMapView};
use ticketing_domain::{SeatId, SeatStatus};

use crate::net::SimConnector;
use crate::record::Recorder;
use ticketing_invariants::history::{Call, Outcome};

/// What one watcher believes.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub version: u64,
    pub seats: BTreeMap<SeatId, SeatStatus>,
    pub snapshots: u32,
    pub reconnects: u32,
    /// A change that skipped a version (should never happen).
    pub gaps: u32,
}

pub type SharedView = Arc<Mutex<View>>;

/// Applies one SSE message (recording its delivery in the history);
/// returns false when the view must resync. A message that is not the
/// contract's shape is skipped.
fn apply(view: &SharedView, event: &str, data: &str, rec: &Recorder) -> bool {
    let mut view = crate::lock(view);
    let f = Call::Stream {
        connection: view.reconnects,
    };
    match event {
        "snapshot" => {
            let Ok(map) = serde_json::from_str::<SeatMapView>(data) else {
                return true;
            };
            let seats = map.seats.iter().map(|s| (s.seat_id.clone(), s.status));
            rec.delivered(
                f,
                Outcome::Snapshot {
                    version: map.version,
                    seats: seats.collect(),
                },
            );
            view.version = map.version;
            view.seats = map
                .seats
                .into_iter()
                .map(|s| (s.seat_id, s.status))
                .collect();
            view.snapshots += 1;
            true
        }
        "change" => {
            let Ok(c) = serde_json::from_str::<ChangeView>(data) else {
                return true;
            };
            rec.delivered(
                f,
                Outcome::Change {
                    version: c.version,
                    seat: c.seat_id.clone(),
                    status: c.status,
                },
            );
            if c.version <= view.version {
                return true;
            }
            if c.version != view.version + 1 {
                view.gaps += 1;
                return false;
            }
            view.version = c.version;
            view.seats.insert(c.seat_id, c.status);
            true
        }
        _ => true,
    }
}

/// The software of the watchers' host: one task per watcher, each
/// following `event` forever.
pub async fn watch_all(
    event: String,
    followers: Vec<(SharedView, Recorder)>,
    idle_timeout: Duration,
) -> turmoil::Result {
    let mut tasks = tokio::task::JoinSet::new();
    for (view, rec) in followers {
        tasks.spawn_local(watch(event.clone(), view, idle_timeout, rec));
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// One watcher: follows `event` forever.
pub async fn watch(
    event: String,
    view: SharedView,
    idle_timeout: Duration,
    rec: Recorder,
) -> turmoil::Result {
    let client: Client<SimConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(SimConnector);
    let uri: http::Uri = format!("http://catalog:80/api/events/{event}/seats/stream").parse()?;
    loop {
        let last = crate::lock(&view).version;
        let mut req = Request::get(uri.clone());
        if last > 0 || crate::lock(&view).snapshots > 0 {
            req = req.header("last-event-id", last.to_string());
        }
        let req = req.body(Empty::new())?;
        if let Ok(Ok(resp)) = tokio::time::timeout(idle_timeout, client.request(req)).await
            && resp.status().is_success()
        {
            let mut body = resp.into_body();
            let mut buf = String::new();
            // Reads until the stream breaks or goes silent past the heartbeat.
            'stream: while let Ok(Some(Ok(frame))) =
                tokio::time::timeout(idle_timeout, body.frame()).await
            {
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut event, mut data) = ("message", String::new());
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event:") {
                            event = if e.trim() == "snapshot" {
                                "snapshot"
                            } else if e.trim() == "change" {
                                "change"
                            } else {
                                "other"
                            };
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data.push_str(d.trim_start());
                        }
                    }
                    if !apply(&view, event, &data, &rec) {
                        break 'stream;
                    }
                }
            }
        }
        crate::lock(&view).reconnects += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
