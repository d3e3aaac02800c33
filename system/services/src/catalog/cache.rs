//! The seat map's read path: per event, the layout (fixed for the event's
//! life) and the statuses at the latest version read, with each body
//! serialized at most once per version.
//!
//! A stampede reads one seat map tens of thousands of times a second while
//! its version moves a few hundred times. Building the map per request (a
//! full read of every seat from the seat store, then ~70 bytes of JSON per
//! seat) made a 10,000-seat map cost ~3 ms of server time. Here a request
//! reads only the event's version and availability counter (one O(1)
//! seat-store call); if the cache is at that version or newer, it is
//! served as is. Otherwise one request per event at a time brings the
//! cache forward by the change log since its version (a full read only
//! when the log no longer reaches back), and the others wait for it and
//! share the result: a reader always gets a version at least as new as the
//! one it saw when it arrived (read-your-writes for the client that just
//! held seats).
//!
//! Bounded: at most `events_max` events are cached (the least recently read
//! is dropped), and a refresh reads at most [`REFRESH_ROUNDS`] pages of
//! changes before it falls back to one full read.
//!
//! Layer: part of the catalog service; imports the shared types and ports.

use crate::error::ApiError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use ticketing_contract::{LayoutSeatView, SeatLayoutView, SeatMapView, SeatStatusView, SeatView};
use ticketing_domain::ports::{CatalogRepository, ChangesSince, SeatStore};
use ticketing_domain::{EventId, SeatId, SeatSpec, SeatStatus};

/// Changes read per page while refreshing.
const PAGE_CHANGES: usize = 4096;
/// Pages of changes a refresh reads before one full read is cheaper.
pub const REFRESH_ROUNDS: usize = 4;

/// An event's seats in layout order, with their bodies.
#[derive(Debug)]
pub struct Layout {
    pub event_id: EventId,
    pub seats: Vec<SeatSpec>,
    /// Seat id → position in `seats`.
    index: BTreeMap<SeatId, usize>,
    body: OnceLock<Bytes>,
}

impl Layout {
    fn new(event_id: EventId, seats: Vec<SeatSpec>) -> Layout {
        let index = seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.seat_id.clone(), i))
            .collect();
        Layout {
            event_id,
            seats,
            index,
            body: OnceLock::new(),
        }
    }

    /// `GET /api/events/{id}/seats/layout`'s body.
    pub fn body(&self) -> Bytes {
        self.body
            .get_or_init(|| {
                json(&SeatLayoutView {
                    event_id: self.event_id.clone(),
                    seats: self
                        .seats
                        .iter()
                        .map(|s| LayoutSeatView {
                            seat_id: s.seat_id.clone(),
                            row: s.row,
                            col: s.col,
                            price: s.price_cents,
                        })
                        .collect(),
                })
            })
            .clone()
    }
}

/// Every seat's status at one version, with its bodies.
#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    /// In layout order.
    pub status: Vec<SeatStatus>,
    map: OnceLock<Bytes>,
    compact: OnceLock<Bytes>,
}

impl Snapshot {
    fn new(version: u64, status: Vec<SeatStatus>) -> Snapshot {
        Snapshot {
            version,
            status,
            map: OnceLock::new(),
            compact: OnceLock::new(),
        }
    }

    /// `GET /api/events/{id}/seats`'s body (and the stream's snapshot).
    pub fn map_body(&self, layout: &Layout) -> Bytes {
        self.map.get_or_init(|| json(&self.view(layout))).clone()
    }

    /// `GET /api/events/{id}/seats/status`'s body.
    pub fn compact_body(&self) -> Bytes {
        self.compact
            .get_or_init(|| {
                json(&SeatStatusView {
                    version: self.version,
                    status: self
                        .status
                        .iter()
                        .map(|s| SeatStatusView::code(*s))
                        .collect(),
                })
            })
            .clone()
    }

    pub fn view(&self, layout: &Layout) -> SeatMapView {
        SeatMapView {
            version: self.version,
            seats: layout
                .seats
                .iter()
                .zip(&self.status)
                .map(|(s, status)| SeatView {
                    seat_id: s.seat_id.clone(),
                    row: s.row,
                    col: s.col,
                    price: s.price_cents,
                    status: *status,
                })
                .collect(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Bytes {
    // Contract views are structs of text and numbers: they always serialize.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

#[derive(Debug)]
struct Entry {
    layout: Arc<Layout>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One refresh per event at a time.
    refresh: tokio::sync::Mutex<()>,
    last_read: AtomicU64,
}

impl Entry {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, s: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }
}

/// The catalog's seat-map cache (`catalog.seat_map_cache`; off, every read
/// builds its map from the stores, as before the cache).
#[derive(Debug)]
pub struct SeatMapCache {
    enabled: bool,
    events_max: usize,
    entries: Mutex<BTreeMap<EventId, Arc<Entry>>>,
    reads: AtomicU64,
}

impl SeatMapCache {
    pub fn new(enabled: bool, events_max: usize) -> SeatMapCache {
        SeatMapCache {
            enabled,
            events_max: events_max.max(1),
            entries: Mutex::new(BTreeMap::new()),
            reads: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<EventId, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event's layout alone: no seat-store read when it is cached (the
    /// layout never changes, so its statuses need not be brought forward).
    pub async fn layout(
        &self,
        repo: &dyn CatalogRepository,
        seats: &dyn SeatStore,
        event_id: &EventId,
    ) -> Result<Arc<Layout>, ApiError> {
        if !self.enabled {
            return Ok(Arc::new(load_layout(repo, event_id).await?));
        }
        Ok(match self.lookup(event_id) {
            Some(e) => e.layout.clone(),
            None => self.insert(repo, seats, event_id).await?.layout.clone(),
        })
    }

    /// The event's layout and its statuses at a version at least as new as
    /// the seat store's when this was called.
    pub async fn current(
        &self,
        repo: &dyn CatalogRepository,
        seats: &dyn SeatStore,
        event_id: &EventId,
    ) -> Result<(Arc<Layout>, Arc<Snapshot>), ApiError> {
        if !self.enabled {
            let layout = Arc::new(load_layout(repo, event_id).await?);
            let snap = full_read(seats, &layout).await?;
            return Ok((layout, Arc::new(snap)));
        }
        let entry = match self.lookup(event_id) {
            Some(e) => e,
            None => self.insert(repo, seats, event_id).await?,
        };
        let (version, _) = seats.availability(event_id).await?;
        let snap = entry.snapshot();
        if snap.version >= version {
            return Ok((entry.layout.clone(), snap));
        }
        let _one = entry.refresh.lock().await;
        let snap = entry.snapshot();
        if snap.version >= version {
            // Another reader refreshed while this one waited.
            return Ok((entry.layout.clone(), snap));
        }
        let fresh = forward(seats, &entry.layout, &snap).await?;
        entry.set(fresh);
        Ok((entry.layout.clone(), entry.snapshot()))
    }

    fn lookup(&self, event_id: &EventId) -> Option<Arc<Entry>> {
        let tick = self.reads.fetch_add(1, Ordering::Relaxed);
        let e = self.entries().get(event_id).cloned()?;
        e.last_read.store(tick, Ordering::Relaxed);
        Some(e)
    }

    async fn insert(
        &self,
        repo: &dyn CatalogRepository,
        seats: &dyn SeatStore,
        event_id: &EventId,
    ) -> Result<Arc<Entry>, ApiError> {
        let layout = Arc::new(load_layout(repo, event_id).await?);
        let snap = full_read(seats, &layout).await?;
        let entry = Arc::new(Entry {
            layout,
            snapshot: RwLock::new(Arc::new(snap)),
            refresh: tokio::sync::Mutex::new(()),
            last_read: AtomicU64::new(self.reads.fetch_add(1, Ordering::Relaxed)),
        });
        let mut all = self.entries();
        if let Some(have) = all.get(event_id) {
            // Another reader inserted it meanwhile: keep one entry.
            return Ok(have.clone());
        }
        while all.len() >= self.events_max {
            let oldest = all
                .iter()
                .min_by_key(|(_, e)| e.last_read.load(Ordering::Relaxed))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => all.remove(&id),
                None => break,
            };
        }
        all.insert(event_id.clone(), entry.clone());
        Ok(entry)
    }

    /// Events cached now (for tests and metrics).
    pub fn cached_events(&self) -> usize {
        self.entries().len()
    }
}

async fn load_layout(repo: &dyn CatalogRepository, event_id: &EventId) -> Result<Layout, ApiError> {
    let seats = repo.seats(event_id).await?.ok_or(ApiError::EventNotFound)?;
    Ok(Layout::new(event_id.clone(), seats))
}

/// Every seat's status from the seat store (seats it does not know read
/// as AVAILABLE, as the map always did).
async fn full_read(seats: &dyn SeatStore, layout: &Layout) -> Result<Snapshot, ApiError> {
    let map = seats.seat_map(&layout.event_id).await?;
    let mut status = vec![SeatStatus::Available; layout.seats.len()];
    for (id, s) in map.seats {
        if let Some(i) = layout.index.get(&id) {
            status[*i] = s;
        }
    }
    Ok(Snapshot::new(map.version, status))
}

/// `snap` brought to the store's latest version by its change log.
async fn forward(
    seats: &dyn SeatStore,
    layout: &Layout,
    snap: &Snapshot,
) -> Result<Snapshot, ApiError> {
    let (mut version, mut status) = (snap.version, snap.status.clone());
    for _ in 0..REFRESH_ROUNDS {
        let changes = match seats
            .changes_since(&layout.event_id, version, PAGE_CHANGES)
            .await?
        {
            ChangesSince::Changes(cs) => cs,
            ChangesSince::TooOld => return full_read(seats, layout).await,
        };
        let page_full = changes.len() >= PAGE_CHANGES;
        for c in changes {
            if c.version != version + 1 {
                // Not gap-free from here: do not guess.
                return full_read(seats, layout).await;
            }
            version = c.version;
            if let Some(i) = layout.index.get(&c.seat_id) {
                status[*i] = c.status;
            }
        }
        if !page_full {
            return Ok(Snapshot::new(version, status));
        }
    }
    full_read(seats, layout).await
}
