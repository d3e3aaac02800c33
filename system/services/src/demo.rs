//! Demo data: three 10x10 events like the seed system, plus one large event
//! (`stadium-final`, 100x100 = 10,000 seats by default) for load runs.

use crate::config::DemoSettings;
use ticketing_domain::ports::{CatalogRepository, SeatStore};
use ticketing_domain::{Cents, Event, EventId, SeatSpec, seat_id_for};

/// Price by row: front rows cost more.
fn price_for(row: u32, rows: u32) -> Cents {
    match row * 10 / rows.max(1) {
        0..=2 => 15_000,
        3..=6 => 9_000,
        _ => 6_000,
    }
}

/// The demo events: (id, title, starts_at, rows, cols).
pub fn demo_events(settings: &DemoSettings) -> Vec<Event> {
    let ev = |id: &str, title: &str, starts_at: &str, rows, cols| Event {
        event_id: EventId::from(id),
        title: title.into(),
        starts_at: starts_at.into(),
        rows,
        cols,
    };
    vec![
        ev("spring-gala", "Spring Gala", "2027-03-21T19:30:00Z", 10, 10),
        ev("jazz-night", "Jazz Night", "2027-04-02T20:00:00Z", 10, 10),
        ev("comedy-hour", "Comedy Hour", "2027-04-18T21:00:00Z", 10, 10),
        ev(
            "stadium-final",
            "Stadium Final",
            "2027-06-12T18:00:00Z",
            settings.large_rows,
            settings.large_cols,
        ),
    ]
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
) -> Result<(), crate::error::ApiError> {
    let specs = seats_for(&event);
    let prices: Vec<_> = specs
        .iter()
        .map(|s| (s.seat_id.clone(), s.price_cents))
        .collect();
    seats.create_event(&event.event_id, &prices).await?;
    catalog.upsert_event(event, specs).await?;
    Ok(())
}
