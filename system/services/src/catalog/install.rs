//! Registering an event: the pricing rule and the seat grid it puts into
//! the catalog repository and the seat store. Used by `POST /internal/events`
//! and by whoever installs demo or simulated events.
//!
//! Layer: a catalog use case; imports the domain and `crate::error` only.

use crate::error::ApiError;
use ticketing_domain::ports::{CatalogRepository, SeatStore};
use ticketing_domain::{Cents, Event, SeatSpec, seat_id_for};

/// Price by row: front rows cost more.
fn price_for(row: u32, rows: u32) -> Cents {
    match row * 10 / rows.max(1) {
        0..=2 => 15_000,
        3..=6 => 9_000,
        _ => 6_000,
    }
}

/// Every seat of an event, row-major.
pub fn seats_for(event: &Event) -> Vec<SeatSpec> {
    let mut seats = Vec::with_capacity(event.seat_count());
    for row in 1..=event.rows {
        for col in 1..=event.cols {
            seats.push(SeatSpec {
                seat_id: seat_id_for(row, col),
                row,
                col,
                price_cents: price_for(row - 1, event.rows),
            });
        }
    }
    seats
}

/// Registers an event in the catalog and the seat store (both idempotent).
/// The error is the HTTP one, so `POST /internal/events` answers 503 (not
/// 500) while the seat store or the catalog database is unavailable.
pub async fn install_event(
    catalog: &dyn CatalogRepository,
    seats: &dyn SeatStore,
    event: Event,
) -> Result<(), ApiError> {
    let specs = seats_for(&event);
    let prices: Vec<_> = specs
        .iter()
        .map(|s| (s.seat_id.clone(), s.price_cents))
        .collect();
    seats.create_event(&event.event_id, &prices).await?;
    catalog.upsert_event(event, specs).await?;
    Ok(())
}
