//! In-memory catalog repository.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use ticketing_domain::ports::{CatalogRepository, RepoError};
use ticketing_domain::{Event, EventId, SeatSpec};

#[derive(Debug, Default)]
pub struct MemCatalogRepository {
    events: Mutex<BTreeMap<EventId, (Event, Vec<SeatSpec>)>>,
}

impl MemCatalogRepository {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CatalogRepository for MemCatalogRepository {
    async fn upsert_event(&self, event: Event, mut seats: Vec<SeatSpec>) -> Result<(), RepoError> {
        seats.sort_by_key(|s| (s.row, s.col));
        crate::lock(&self.events).insert(event.event_id.clone(), (event, seats));
        Ok(())
    }

    async fn list_events(&self) -> Result<Vec<Event>, RepoError> {
        Ok(crate::lock(&self.events)
            .values()
            .map(|(e, _)| e.clone())
            .collect())
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<Event>, RepoError> {
        Ok(crate::lock(&self.events)
            .get(event_id)
            .map(|(e, _)| e.clone()))
    }

    async fn seats(&self, event_id: &EventId) -> Result<Option<Vec<SeatSpec>>, RepoError> {
        Ok(crate::lock(&self.events)
            .get(event_id)
            .map(|(_, s)| s.clone()))
    }
}
