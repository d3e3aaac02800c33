//! Demo data: three 10x10 events like the seed system, plus one large event
//! (`stadium-final`, 100x100 = 10,000 seats by default) for load runs, and
//! the embedded demo's two customer accounts.
//!
//! Layer: top; imports `config` (the catalog installs the events it lists).

use crate::config::DemoSettings;
use ticketing_domain::{Event, EventId};

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

/// Demo events behind a waiting room (on sale from the moment they are installed).
pub const PROTECTED: &[&str] = &["stadium-final"];

/// The embedded demo's customer accounts (email, password): public on
/// purpose, for the README's tour and the web pages. Installed only by the
/// embedded system, never by `serve --service` (no usable default
/// credential in production).
pub const ACCOUNTS: &[(&str, &str)] = &[
    ("ann@example.org", "ann-demo-password"),
    ("bob@example.org", "bob-demo-password"),
];
