//! Catalog repository conformance: upsert replaces atomically; listings are
//! ordered by event id and seats by (row, col).

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::CatalogRepository;
use ticketing_domain::{Event, EventId, SeatSpec, seat_id_for};

fn event(id: &str, title: &str) -> Event {
    Event {
        event_id: EventId::from(id),
        title: title.into(),
        starts_at: "2027-01-01T20:00:00Z".into(),
        rows: 2,
        cols: 2,
    }
}

fn seats() -> Vec<SeatSpec> {
    // Deliberately out of order.
    [(2, 2), (1, 2), (2, 1), (1, 1)]
        .into_iter()
        .map(|(row, col)| SeatSpec {
            seat_id: seat_id_for(row, col),
            row,
            col,
            price_cents: 100 * i64::from(row),
        })
        .collect()
}

pub async fn events_and_seats_round_trip<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn CatalogRepository>>,
{
    let repo = make().await;
    repo.upsert_event(event("b", "B"), seats()).await.unwrap();
    repo.upsert_event(event("a", "A"), seats()).await.unwrap();
    repo.upsert_event(event("b", "B2"), seats()).await.unwrap();
    let ids: Vec<String> = repo
        .list_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id.0)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        repo.get_event(&EventId::from("b"))
            .await
            .unwrap()
            .unwrap()
            .title,
        "B2"
    );
    assert!(
        repo.get_event(&EventId::from("zz"))
            .await
            .unwrap()
            .is_none()
    );
    let got = repo.seats(&EventId::from("a")).await.unwrap().unwrap();
    let order: Vec<(u32, u32)> = got.iter().map(|s| (s.row, s.col)).collect();
    assert_eq!(order, [(1, 1), (1, 2), (2, 1), (2, 2)]);
    assert!(repo.seats(&EventId::from("zz")).await.unwrap().is_none());
}

#[macro_export]
macro_rules! catalog_repo_suite {
    ($make:expr) => {
        mod catalog_repo_conformance {
            use super::*;
            #[tokio::test]
            async fn events_and_seats_round_trip() {
                $crate::catalog_repo::events_and_seats_round_trip($make).await
            }
        }
    };
}
