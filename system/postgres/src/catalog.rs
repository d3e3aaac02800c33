//! [`PgCatalogRepository`]: events and seat layouts.

use crate::{Db, unavailable};
use async_trait::async_trait;
use sqlx::Row;
use ticketing_domain::ports::{CatalogRepository, RepoError};
use ticketing_domain::{Event, EventId, SeatId, SeatSpec};

#[derive(Debug, Clone)]
pub struct PgCatalogRepository {
    db: Db,
}

impl PgCatalogRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn event_from(row: &sqlx::postgres::PgRow) -> Result<Event, RepoError> {
    Ok(Event {
        event_id: EventId(row.try_get("event_id").map_err(unavailable)?),
        title: row.try_get("title").map_err(unavailable)?,
        starts_at: row.try_get("starts_at").map_err(unavailable)?,
        rows: u32::try_from(row.try_get::<i32, _>("rows").map_err(unavailable)?).unwrap_or(0),
        cols: u32::try_from(row.try_get::<i32, _>("cols").map_err(unavailable)?).unwrap_or(0),
    })
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl CatalogRepository for PgCatalogRepository {
    async fn upsert_event(&self, event: Event, seats: Vec<SeatSpec>) -> Result<(), RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                sqlx::query(
                    "INSERT INTO events (event_id, title, starts_at, rows, cols)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (event_id) DO UPDATE SET title = EXCLUDED.title,
                       starts_at = EXCLUDED.starts_at, rows = EXCLUDED.rows, cols = EXCLUDED.cols",
                )
                .bind(event.event_id.as_str())
                .bind(&event.title)
                .bind(&event.starts_at)
                .bind(int(event.rows))
                .bind(int(event.cols))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                sqlx::query("DELETE FROM seats WHERE event_id = $1")
                    .bind(event.event_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                // One statement for the whole layout (arrays unnested).
                let ids: Vec<&str> = seats.iter().map(|s| s.seat_id.as_str()).collect();
                let rows: Vec<i32> = seats.iter().map(|s| int(s.row)).collect();
                let cols: Vec<i32> = seats.iter().map(|s| int(s.col)).collect();
                let prices: Vec<i64> = seats.iter().map(|s| s.price_cents).collect();
                sqlx::query(
                    "INSERT INTO seats (event_id, seat_id, row, col, price_cents)
                     SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::int[], $5::bigint[])",
                )
                .bind(event.event_id.as_str())
                .bind(&ids)
                .bind(&rows)
                .bind(&cols)
                .bind(&prices)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)
            })
            .await
    }

    async fn list_events(&self) -> Result<Vec<Event>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query("SELECT * FROM events ORDER BY event_id")
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(event_from).collect()
            })
            .await
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<Event>, RepoError> {
        self.db
            .bounded(async {
                let row = sqlx::query("SELECT * FROM events WHERE event_id = $1")
                    .bind(event_id.as_str())
                    .fetch_optional(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                row.as_ref().map(event_from).transpose()
            })
            .await
    }

    async fn seats(&self, event_id: &EventId) -> Result<Option<Vec<SeatSpec>>, RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                let exists = sqlx::query("SELECT 1 FROM events WHERE event_id = $1")
                    .bind(event_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if exists.is_none() {
                    return Ok(None);
                }
                let rows = sqlx::query(
                    "SELECT seat_id, row, col, price_cents FROM seats
                     WHERE event_id = $1 ORDER BY row, col",
                )
                .bind(event_id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                let seats = rows
                    .iter()
                    .map(|r| {
                        Ok(SeatSpec {
                            seat_id: SeatId(r.try_get("seat_id").map_err(unavailable)?),
                            row: u32::try_from(r.try_get::<i32, _>("row").map_err(unavailable)?)
                                .unwrap_or(0),
                            col: u32::try_from(r.try_get::<i32, _>("col").map_err(unavailable)?)
                                .unwrap_or(0),
                            price_cents: r.try_get("price_cents").map_err(unavailable)?,
                        })
                    })
                    .collect::<Result<Vec<_>, RepoError>>()?;
                Ok(Some(seats))
            })
            .await
    }
}
