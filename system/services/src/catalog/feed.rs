//! The seat feed: one reader of the seat store's change log per event with
//! live subscribers, fanned out to every SSE stream of that event through a
//! bounded broadcast channel: 10,000 streams on one event cost one
//! seat-store read per poll, not 10,000. A stream that falls more than the
//! channel's capacity behind (a slow client) is cut instead of buffered for:
//! it resumes with `Last-Event-ID`, and the store's history or a snapshot
//! brings it back, so the channel's bound never loses a change for anyone.
//!
//! Layer: part of catalog, below its handlers; imports `worker`,
//! `http::trace`, `telemetry` and the crate root, not its parent.

use crate::worker;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use ticketing_domain::ports::{ChangesSince, SeatStore, SeatStoreError};
use ticketing_domain::{EventId, SeatChange};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Changes buffered per event for slow subscribers before they lag
/// (`catalog.feed_channel_capacity`).
pub const CHANNEL_CAPACITY: usize = 1_024;
/// Changes read per event per poll.
const READ_LIMIT: usize = 1_000;

#[derive(Debug)]
struct Topic {
    tx: broadcast::Sender<SeatChange>,
    /// Last version broadcast.
    version: u64,
}

#[derive(Debug)]
pub struct SeatFeed {
    topics: Mutex<BTreeMap<EventId, Topic>>,
    capacity: usize,
}

impl Default for SeatFeed {
    fn default() -> Self {
        Self::with_capacity(CHANNEL_CAPACITY)
    }
}

impl SeatFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// A feed whose per-event channel holds `capacity` changes.
    pub fn with_capacity(capacity: usize) -> Self {
        SeatFeed {
            topics: Mutex::new(BTreeMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// A receiver of every change of `event_id` from now on.
    pub async fn subscribe(
        &self,
        event_id: &EventId,
        seats: &dyn SeatStore,
    ) -> Result<broadcast::Receiver<SeatChange>, SeatStoreError> {
        if let Some(t) = crate::lock(&self.topics).get(event_id) {
            return Ok(t.tx.subscribe());
        }
        let (version, _) = seats.availability(event_id).await?;
        let mut topics = crate::lock(&self.topics);
        let topic = topics.entry(event_id.clone()).or_insert_with(|| Topic {
            tx: broadcast::channel(self.capacity).0,
            version,
        });
        Ok(topic.tx.subscribe())
    }

    /// Number of open subscriptions for an event (for tests and metrics).
    pub fn subscribers(&self, event_id: &EventId) -> usize {
        crate::lock(&self.topics)
            .get(event_id)
            .map_or(0, |t| t.tx.receiver_count())
    }

    /// One poll: read new changes for every watched event and broadcast them.
    pub async fn poll_once(&self, seats: &dyn SeatStore) {
        let watched: Vec<(EventId, u64)> = {
            let mut topics = crate::lock(&self.topics);
            topics.retain(|_, t| t.tx.receiver_count() > 0);
            topics.iter().map(|(e, t)| (e.clone(), t.version)).collect()
        };
        for (event_id, from) in watched {
            let changes = match seats.changes_since(&event_id, from, READ_LIMIT).await {
                Ok(ChangesSince::Changes(cs)) => cs,
                Ok(ChangesSince::TooOld) => {
                    // Fell behind the history: jump to now; subscribers see the
                    // gap at the next change and re-snapshot.
                    if let Ok((v, _)) = seats.availability(&event_id).await
                        && let Some(t) = crate::lock(&self.topics).get_mut(&event_id)
                    {
                        t.version = v;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%event_id, error = %e, "seat feed read failed");
                    continue;
                }
            };
            let mut topics = crate::lock(&self.topics);
            if let Some(t) = topics.get_mut(&event_id) {
                let mut pushed: BTreeMap<String, usize> = BTreeMap::new();
                for c in changes {
                    if c.version > t.version {
                        t.version = c.version;
                        if let Some(tp) = &c.traceparent {
                            *pushed.entry(tp.clone()).or_default() += 1;
                        }
                        // No receivers is fine: they re-read on subscribe.
                        let _ = t.tx.send(c);
                    }
                }
                for (traceparent, seats) in pushed {
                    push_span(&event_id, &traceparent, seats, t.tx.receiver_count());
                }
            }
        }
    }

    /// Polls every `interval_ms` until shutdown.
    pub async fn run(
        self: Arc<Self>,
        seats: Arc<dyn SeatStore>,
        interval_ms: u64,
        shutdown: CancellationToken,
    ) {
        while worker::pause(interval_ms, &shutdown).await {
            self.poll_once(seats.as_ref()).await;
        }
    }
}

/// A span for pushing a traced confirm's changes to the event's streams, in
/// the confirm's trace (child of the command that sold the seats): the
/// order's trace ends where buyers see the seats turn SOLD.
fn push_span(event_id: &EventId, traceparent: &str, seats: usize, subscribers: usize) {
    let Some((trace, Some(parent))) = crate::http::trace::parse_traceparent(traceparent) else {
        return;
    };
    let span = tracing::info_span!(
        "push",
        %event_id,
        seats,
        subscribers,
        service = "catalog",
        otel.kind = "producer",
        otel.name = "push seat changes",
    );
    crate::telemetry::join_remote(&span, &trace, &parent);
}
