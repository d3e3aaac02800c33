//! [`PgOrderRepository`]: orders and their saga, idempotency keys,
//! processed-message dedup, durable tickets and the transactional outbox.
//!
//! Each port method is one transaction. The dedup row, the version check,
//! the tickets and the outbox rows of a saga step commit together or not
//! at all, so a consumer that crashes after the commit and sees the message
//! again finds it processed, and one that crashes before finds nothing
//! written.

use crate::{Db, big, unavailable, unbig};
use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;
use ticketing_domain::ports::{
    ApplyOutcome, ClaimedOutbox, IdempotencyBegin, OrderRecord, OrderRepository, OutboxMessage,
    RepoError, STATUS_CHANGES_MAX, SagaUpdate, StatusFeed, StoredResponse,
};
use ticketing_domain::{
    EventId, HoldId, MessageId, OrderId, SeatId, Ticket, TraceId, UnixMs, saga::SagaState,
};

/// The channel a step that leaves an order in a terminal status notifies
/// (payload: the order id), in its transaction: sent at its commit only.
const STATUS_CHANNEL: &str = "order_status";
/// Longest one wait of a status feed. Past it the feed names nothing and
/// drops its listening connection (the next wait opens another): a wait
/// cut short never leaves a half-read connection behind.
const STATUS_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PgOrderRepository {
    db: Db,
}

/// A connection of its own that has run `LISTEN order_status`.
async fn listen(db: &Db) -> Result<PgListener, RepoError> {
    db.bounded(async {
        let mut l = PgListener::connect_with(&db.pool)
            .await
            .map_err(unavailable)?;
        l.listen(STATUS_CHANNEL).await.map_err(unavailable)?;
        Ok(l)
    })
    .await
}

/// A status feed on PostgreSQL: `LISTEN order_status` on a connection of
/// its own, replaced after an error or a quiet [`STATUS_WAIT`]. The
/// connection is one of the pool's (`database.max_connections`): an order
/// service's feed leaves the rest for its queries.
struct PgStatusFeed {
    db: Db,
    listener: Option<PgListener>,
}

#[async_trait]
impl StatusFeed for PgStatusFeed {
    async fn next(&mut self) -> Result<Vec<OrderId>, RepoError> {
        // Taken out while waiting: an error or a cut-short wait drops it.
        let mut listener = match self.listener.take() {
            Some(l) => l,
            None => listen(&self.db).await?,
        };
        let first = match tokio::time::timeout(STATUS_WAIT, listener.recv()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(received) => received.map_err(unavailable)?,
        };
        let mut ids = vec![OrderId(first.payload().to_owned())];
        while ids.len() < STATUS_CHANGES_MAX {
            let Some(n) = listener.next_buffered() else {
                break;
            };
            ids.push(OrderId(n.payload().to_owned()));
        }
        self.listener = Some(listener);
        Ok(ids)
    }
}

impl PgOrderRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Tickets read by `sql` (selecting event_id, seat_id, order_id).
    async fn select_tickets(&self, sql: &'static str) -> Result<Vec<Ticket>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query(sql)
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok(Ticket {
                            event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
                            seat_id: SeatId(r.try_get("seat_id").map_err(unavailable)?),
                            order_id: OrderId(r.try_get("order_id").map_err(unavailable)?),
                        })
                    })
                    .collect()
            })
            .await
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, RepoError> {
    serde_json::to_value(v).map_err(unavailable)
}

fn order_from(r: &PgRow) -> Result<OrderRecord, RepoError> {
    let seat_ids: Vec<SeatId> =
        serde_json::from_value(r.try_get("seat_ids").map_err(unavailable)?).map_err(unavailable)?;
    let saga: SagaState =
        serde_json::from_value(r.try_get("saga").map_err(unavailable)?).map_err(unavailable)?;
    Ok(OrderRecord {
        order_id: OrderId(r.try_get("order_id").map_err(unavailable)?),
        hold_id: HoldId(r.try_get("hold_id").map_err(unavailable)?),
        event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
        seat_ids,
        amount_cents: r.try_get("amount_cents").map_err(unavailable)?,
        customer_id: r.try_get("customer_id").map_err(unavailable)?,
        saga,
        created_at_ms: unbig(r.try_get("created_at_ms").map_err(unavailable)?),
        updated_at_ms: unbig(r.try_get("updated_at_ms").map_err(unavailable)?),
        attempts: u32::try_from(r.try_get::<i32, _>("attempts").map_err(unavailable)?).unwrap_or(0),
        next_attempt_at_ms: unbig(r.try_get("next_attempt_at_ms").map_err(unavailable)?),
        version: unbig(r.try_get("version").map_err(unavailable)?),
        trace_id: r
            .try_get::<Option<String>, _>("trace_id")
            .map_err(unavailable)?
            .map(TraceId),
        refund: r
            .try_get::<Option<serde_json::Value>, _>("refund")
            .map_err(unavailable)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(unavailable)?,
    })
}

async fn push_outbox(
    tx: &mut Transaction<'_, Postgres>,
    msgs: &[OutboxMessage],
) -> Result<(), RepoError> {
    for m in msgs {
        sqlx::query(
            "INSERT INTO outbox (message_id, topic, key, payload, headers)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(m.message_id.as_str())
        .bind(&m.topic)
        .bind(&m.key)
        .bind(&m.payload)
        .bind(json(&m.headers)?)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

async fn complete_key(
    tx: &mut Transaction<'_, Postgres>,
    key: &str,
    response: &StoredResponse,
) -> Result<(), RepoError> {
    sqlx::query("UPDATE idempotency_keys SET response = $2 WHERE key = $1 AND response IS NULL")
        .bind(key)
        .bind(json(response)?)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl OrderRepository for PgOrderRepository {
    async fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        candidate: &OrderId,
        now_ms: UnixMs,
    ) -> Result<IdempotencyBegin, RepoError> {
        self.db
            .bounded(async {
                // Of two concurrent first uses, one inserts; the other waits
                // for it on the primary key, then reads what it bound.
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (key, request_hash, order_id, created_at_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(request_hash)
                .bind(candidate.as_str())
                .bind(big(now_ms))
                .execute(&self.db.pool)
                .await
                .map_err(unavailable)?;
                if inserted.rows_affected() == 1 {
                    return Ok(IdempotencyBegin::Started {
                        order_id: candidate.clone(),
                    });
                }
                let r = sqlx::query(
                    "SELECT request_hash, order_id, response FROM idempotency_keys WHERE key = $1",
                )
                .bind(key)
                .fetch_one(&self.db.pool)
                .await
                .map_err(unavailable)?;
                let hash: String = r.try_get("request_hash").map_err(unavailable)?;
                if hash != request_hash {
                    return Ok(IdempotencyBegin::Mismatch);
                }
                let response: Option<serde_json::Value> =
                    r.try_get("response").map_err(unavailable)?;
                Ok(match response {
                    Some(v) => {
                        IdempotencyBegin::Completed(serde_json::from_value(v).map_err(unavailable)?)
                    }
                    None => IdempotencyBegin::InProgress {
                        order_id: OrderId(r.try_get("order_id").map_err(unavailable)?),
                    },
                })
            })
            .await
    }

    async fn complete_idempotent(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                complete_key(&mut tx, key, &response).await?;
                tx.commit().await.map_err(unavailable)
            })
            .await
    }

    async fn place_order(
        &self,
        order: OrderRecord,
        outbox: Vec<OutboxMessage>,
        idempotency_key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                let inserted = sqlx::query(
                    "INSERT INTO orders (order_id, hold_id, event_id, seat_ids, amount_cents,
                       customer_id, saga, done, created_at_ms, updated_at_ms, attempts,
                       next_attempt_at_ms, version, trace_id, refund)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(order.order_id.as_str())
                .bind(order.hold_id.as_str())
                .bind(order.event_id.as_str())
                .bind(json(&order.seat_ids)?)
                .bind(order.amount_cents)
                .bind(order.customer_id.as_deref())
                .bind(json(&order.saga)?)
                .bind(order.is_settled())
                .bind(big(order.created_at_ms))
                .bind(big(order.updated_at_ms))
                .bind(int(order.attempts))
                .bind(big(order.next_attempt_at_ms))
                .bind(big(order.version))
                .bind(order.trace_id.as_ref().map(TraceId::as_str))
                .bind(order.refund.as_ref().map(json).transpose()?)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if inserted.rows_affected() == 1 {
                    push_outbox(&mut tx, &outbox).await?;
                }
                complete_key(&mut tx, idempotency_key, &response).await?;
                tx.commit().await.map_err(unavailable)
            })
            .await
    }

    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>, RepoError> {
        self.db
            .bounded(async {
                let row = sqlx::query("SELECT * FROM orders WHERE order_id = $1")
                    .bind(order_id.as_str())
                    .fetch_optional(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                row.as_ref().map(order_from).transpose()
            })
            .await
    }

    async fn apply(&self, update: SagaUpdate) -> Result<ApplyOutcome, RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                if let Some(m) = &update.processed {
                    // A concurrent apply of the same message waits here for
                    // the first to commit, then finds the row.
                    let fresh = sqlx::query(
                        "INSERT INTO processed_messages (message_id) VALUES ($1)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(m.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                    if fresh.rows_affected() == 0 {
                        return Ok(ApplyOutcome::Duplicate);
                    }
                }
                let o = &update.order;
                let updated = sqlx::query(
                    "UPDATE orders SET hold_id = $2, event_id = $3, seat_ids = $4,
                       amount_cents = $5, customer_id = $6, saga = $7, done = $8,
                       created_at_ms = $9, updated_at_ms = $10, attempts = $11,
                       next_attempt_at_ms = $12, version = version + 1, trace_id = $14,
                       refund = $15
                     WHERE order_id = $1 AND version = $13",
                )
                .bind(o.order_id.as_str())
                .bind(o.hold_id.as_str())
                .bind(o.event_id.as_str())
                .bind(json(&o.seat_ids)?)
                .bind(o.amount_cents)
                .bind(o.customer_id.as_deref())
                .bind(json(&o.saga)?)
                .bind(o.is_settled())
                .bind(big(o.created_at_ms))
                .bind(big(o.updated_at_ms))
                .bind(int(o.attempts))
                .bind(big(o.next_attempt_at_ms))
                .bind(big(o.version))
                .bind(o.trace_id.as_ref().map(TraceId::as_str))
                .bind(o.refund.as_ref().map(json).transpose()?)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if updated.rows_affected() != 1 {
                    return Err(RepoError::Conflict);
                }
                if update.void_tickets {
                    sqlx::query(
                        "UPDATE tickets SET voided = true WHERE order_id = $1 AND NOT voided",
                    )
                    .bind(update.order.order_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                for t in &update.tickets {
                    // The unique index over valid tickets decides; a ticket
                    // this order already holds is fine, anyone else's is a
                    // conflict.
                    let owner: String = sqlx::query(
                        "INSERT INTO tickets (event_id, seat_id, order_id) VALUES ($1, $2, $3)
                         ON CONFLICT (event_id, seat_id) WHERE NOT voided
                         DO UPDATE SET order_id = tickets.order_id
                         RETURNING order_id",
                    )
                    .bind(t.event_id.as_str())
                    .bind(t.seat_id.as_str())
                    .bind(t.order_id.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .try_get("order_id")
                    .map_err(unavailable)?;
                    if owner != t.order_id.as_str() {
                        return Err(RepoError::TicketConflict {
                            event_id: t.event_id.clone(),
                            seat_id: t.seat_id.clone(),
                        });
                    }
                }
                push_outbox(&mut tx, &update.outbox).await?;
                if update.order.status().is_terminal() {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(STATUS_CHANNEL)
                        .bind(update.order.order_id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(ApplyOutcome::Applied)
            })
            .await
    }

    async fn status_feed(&self) -> Result<Box<dyn StatusFeed>, RepoError> {
        let listener = listen(&self.db).await?;
        Ok(Box::new(PgStatusFeed {
            db: self.db.clone(),
            listener: Some(listener),
        }))
    }

    async fn mark_processed(&self, message_id: &MessageId) -> Result<(), RepoError> {
        self.db
            .bounded(async {
                sqlx::query(
                    "INSERT INTO processed_messages (message_id) VALUES ($1) ON CONFLICT DO NOTHING",
                )
                .bind(message_id.as_str())
                .execute(&self.db.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn due_orders(&self, now_ms: UnixMs, limit: usize) -> Result<Vec<OrderId>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query(
                    "SELECT order_id FROM orders WHERE NOT done AND next_attempt_at_ms <= $1
                     ORDER BY created_at_ms, order_id LIMIT $2",
                )
                .bind(big(now_ms))
                .bind(big(limit as u64))
                .fetch_all(&self.db.pool)
                .await
                .map_err(unavailable)?;
                rows.iter()
                    .map(|r| Ok(OrderId(r.try_get("order_id").map_err(unavailable)?)))
                    .collect()
            })
            .await
    }

    async fn claim_outbox(
        &self,
        limit: usize,
        lease_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Vec<ClaimedOutbox>, RepoError> {
        self.db
            .bounded(async {
                // SKIP LOCKED: relays claiming at the same moment take
                // disjoint rows; the lease keeps a row from a second relay
                // until it expires (the first relay died or stalled).
                let rows = sqlx::query(
                    "UPDATE outbox SET leased_until_ms = $1
                     WHERE seq IN (SELECT seq FROM outbox WHERE leased_until_ms <= $2
                                   ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING seq, message_id, topic, key, payload, headers",
                )
                .bind(big(now_ms.saturating_add(lease_ms)))
                .bind(big(now_ms))
                .bind(big(limit as u64))
                .fetch_all(&self.db.pool)
                .await
                .map_err(unavailable)?;
                let mut out = rows
                    .iter()
                    .map(|r| {
                        let headers: Vec<(String, String)> =
                            serde_json::from_value(r.try_get("headers").map_err(unavailable)?)
                                .map_err(unavailable)?;
                        Ok(ClaimedOutbox {
                            seq: unbig(r.try_get("seq").map_err(unavailable)?),
                            message: OutboxMessage {
                                message_id: MessageId(
                                    r.try_get("message_id").map_err(unavailable)?,
                                ),
                                topic: r.try_get("topic").map_err(unavailable)?,
                                key: r.try_get("key").map_err(unavailable)?,
                                payload: r.try_get("payload").map_err(unavailable)?,
                                headers,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, RepoError>>()?;
                out.sort_by_key(|c| c.seq);
                Ok(out)
            })
            .await
    }

    async fn mark_sent(&self, seqs: &[u64]) -> Result<(), RepoError> {
        let seqs: Vec<i64> = seqs.iter().map(|s| big(*s)).collect();
        self.db
            .bounded(async {
                sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
                    .bind(&seqs)
                    .execute(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn outbox_backlog(&self) -> Result<usize, RepoError> {
        self.db
            .bounded(async {
                let n: i64 = sqlx::query("SELECT count(*) AS n FROM outbox")
                    .fetch_one(&self.db.pool)
                    .await
                    .map_err(unavailable)?
                    .try_get("n")
                    .map_err(unavailable)?;
                Ok(usize::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        self.select_tickets(
            "SELECT event_id, seat_id, order_id FROM tickets WHERE NOT voided
             ORDER BY event_id, seat_id",
        )
        .await
    }

    async fn voided_tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        self.select_tickets(
            "SELECT event_id, seat_id, order_id FROM tickets WHERE voided
             ORDER BY event_id, seat_id, order_id COLLATE \"C\"",
        )
        .await
    }

    async fn orders(&self) -> Result<Vec<OrderRecord>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query("SELECT * FROM orders ORDER BY order_id")
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(order_from).collect()
            })
            .await
    }
}
