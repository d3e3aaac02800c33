use super::RepoError;
use crate::model::{Event, EventId, SeatSpec};
use async_trait::async_trait;

/// The catalog's own data: events and their seat layouts (prices included).
/// Seat *status* is not here; it lives in the [`super::SeatStore`].
#[async_trait]
pub trait CatalogRepository: Send + Sync + std::fmt::Debug {
    /// Creates or replaces an event and its seats, atomically.
    async fn upsert_event(&self, event: Event, seats: Vec<SeatSpec>) -> Result<(), RepoError>;

    /// All events, ordered by event id (stable across calls and adapters).
    async fn list_events(&self) -> Result<Vec<Event>, RepoError>;

    /// One event, or `None` if unknown.
    async fn get_event(&self, event_id: &EventId) -> Result<Option<Event>, RepoError>;

    /// An event's seats ordered by (row, col), or `None` if the event is unknown.
    async fn seats(&self, event_id: &EventId) -> Result<Option<Vec<SeatSpec>>, RepoError>;
}
