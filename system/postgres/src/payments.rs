//! [`PgPaymentRepository`]: one payment per order, compare-and-set
//! transitions, the append-only ledger (a trigger refuses UPDATE and
//! DELETE on it) and settlement batches (`settlement_entries`' primary key
//! puts each ledger entry in at most one batch).

use crate::{Db, big, unavailable, unbig};
use async_trait::async_trait;
use sqlx::Row;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, LedgerStat, OrderId, Payment, PaymentStatus, SettlementBatch,
    UnixMs,
};

/// The ledger kinds a settlement takes, as stored.
const SETTLED_KINDS: &str = "('CAPTURE', 'REFUND')";

#[derive(Debug, Clone)]
pub struct PgPaymentRepository {
    db: Db,
}

impl PgPaymentRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Enums are stored as their contract names (`"CAPTURED"`, `"VOID"`, ...).
fn text<T: serde::Serialize>(v: &T) -> Result<String, RepoError> {
    match serde_json::to_value(v).map_err(unavailable)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(unavailable(format!("not a string enum: {other}"))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(s: String) -> Result<T, RepoError> {
    serde_json::from_value(serde_json::Value::String(s)).map_err(unavailable)
}

#[async_trait]
impl PaymentRepository for PgPaymentRepository {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepoError> {
        self.db
            .bounded(async {
                let row = sqlx::query(
                    "SELECT amount_cents, status, event_id FROM payments WHERE order_id = $1",
                )
                .bind(order_id.as_str())
                .fetch_optional(&self.db.pool)
                .await
                .map_err(unavailable)?;
                row.map(|r| {
                    Ok(Payment {
                        order_id: order_id.clone(),
                        event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
                        amount_cents: r.try_get("amount_cents").map_err(unavailable)?,
                        status: parse(r.try_get("status").map_err(unavailable)?)?,
                    })
                })
                .transpose()
            })
            .await
    }

    async fn transition(
        &self,
        expected: Option<PaymentStatus>,
        payment: Payment,
        kind: LedgerKind,
        at_ms: UnixMs,
    ) -> Result<(), RepoError> {
        self.db
            .bounded(async {
                let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
                let status = text(&payment.status)?;
                let changed = match expected {
                    None => sqlx::query(
                        "INSERT INTO payments (order_id, amount_cents, status, event_id)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING",
                    )
                    .bind(payment.order_id.as_str())
                    .bind(payment.amount_cents)
                    .bind(&status)
                    .bind(payment.event_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?,
                    Some(prev) => sqlx::query(
                        "UPDATE payments SET amount_cents = $2, status = $3
                         WHERE order_id = $1 AND status = $4",
                    )
                    .bind(payment.order_id.as_str())
                    .bind(payment.amount_cents)
                    .bind(&status)
                    .bind(text(&prev)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?,
                };
                if changed.rows_affected() != 1 {
                    return Err(RepoError::Conflict);
                }
                sqlx::query(
                    "INSERT INTO ledger (order_id, kind, amount_cents, at_ms, event_id)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(payment.order_id.as_str())
                .bind(text(&kind)?)
                .bind(payment.amount_cents)
                .bind(big(at_ms))
                .bind(payment.event_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)
            })
            .await
    }

    async fn ledger(&self) -> Result<Vec<LedgerEntry>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query("SELECT * FROM ledger ORDER BY seq")
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(entry).collect()
            })
            .await
    }

    async fn unsettled(&self, limit: usize) -> Result<Vec<LedgerEntry>, RepoError> {
        let sql = format!(
            "SELECT * FROM ledger l WHERE kind IN {SETTLED_KINDS}
             AND NOT EXISTS (SELECT 1 FROM settlement_entries s WHERE s.seq = l.seq)
             ORDER BY seq LIMIT $1"
        );
        self.db
            .bounded(async {
                let rows = sqlx::query(&sql)
                    .bind(big(limit as u64))
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(entry).collect()
            })
            .await
    }

    async fn close_batch(
        &self,
        event_id: &EventId,
        seqs: &[u64],
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError> {
        let mut entry_seqs = seqs.to_vec();
        entry_seqs.sort_unstable();
        entry_seqs.dedup();
        if entry_seqs.is_empty() {
            return Err(RepoError::Invalid(
                "a batch takes at least one entry".into(),
            ));
        }
        self.db
            .bounded(self.close_in_tx(event_id, entry_seqs, at_ms))
            .await
    }

    async fn settlements(
        &self,
        event_id: Option<&EventId>,
    ) -> Result<Vec<SettlementBatch>, RepoError> {
        self.db
            .bounded(async {
                let rows = sqlx::query(
                    "SELECT b.batch_id, b.event_id, b.closed_at_ms, b.captured_cents,
                            b.refunded_cents, array_agg(s.seq ORDER BY s.seq) AS seqs
                     FROM settlement_batches b JOIN settlement_entries s USING (batch_id)
                     WHERE $1::text IS NULL OR b.event_id = $1
                     GROUP BY b.batch_id ORDER BY b.batch_id",
                )
                .bind(event_id.map(EventId::as_str))
                .fetch_all(&self.db.pool)
                .await
                .map_err(unavailable)?;
                rows.iter().map(batch).collect()
            })
            .await
    }

    async fn ledger_stats(&self) -> Result<Vec<LedgerStat>, RepoError> {
        let sql = format!(
            "SELECT l.event_id, l.kind, count(*) AS n, sum(l.amount_cents)::BIGINT AS total,
                    count(*) FILTER (WHERE l.kind IN {SETTLED_KINDS} AND s.seq IS NULL) AS open
             FROM ledger l LEFT JOIN settlement_entries s USING (seq)
             GROUP BY l.event_id, l.kind"
        );
        self.db
            .bounded(async {
                let rows = sqlx::query(&sql)
                    .fetch_all(&self.db.pool)
                    .await
                    .map_err(unavailable)?;
                let mut stats = rows.iter().map(stat).collect::<Result<Vec<_>, _>>()?;
                stats.sort_by(|a, b| (&a.event_id, a.kind).cmp(&(&b.event_id, b.kind)));
                Ok(stats)
            })
            .await
    }
}

impl PgPaymentRepository {
    /// `close_batch`'s transaction: check the entries, write the batch,
    /// take the entries (the primary key refuses one already taken).
    async fn close_in_tx(
        &self,
        event_id: &EventId,
        seqs: Vec<u64>,
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError> {
        let keys: Vec<i64> = seqs.iter().map(|s| big(*s)).collect();
        let mut tx = self.db.pool.begin().await.map_err(unavailable)?;
        let sql = format!(
            "SELECT kind, amount_cents FROM ledger
             WHERE seq = ANY($1) AND event_id = $2 AND kind IN {SETTLED_KINDS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&keys)
            .bind(event_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        if rows.len() != keys.len() {
            return Err(RepoError::Invalid(format!(
                "{} of {} entries are not settled in {event_id}",
                keys.len() - rows.len(),
                keys.len()
            )));
        }
        let (mut captured_cents, mut refunded_cents) = (0, 0);
        for r in &rows {
            let amount: i64 = r.try_get("amount_cents").map_err(unavailable)?;
            match parse::<LedgerKind>(r.try_get("kind").map_err(unavailable)?)? {
                LedgerKind::Capture => captured_cents += amount,
                _ => refunded_cents += amount,
            }
        }
        let batch_id: i64 = sqlx::query(
            "INSERT INTO settlement_batches (event_id, closed_at_ms, captured_cents, refunded_cents)
             VALUES ($1, $2, $3, $4) RETURNING batch_id",
        )
        .bind(event_id.as_str())
        .bind(big(at_ms))
        .bind(captured_cents)
        .bind(refunded_cents)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?
        .try_get("batch_id")
        .map_err(unavailable)?;
        let taken = sqlx::query(
            "INSERT INTO settlement_entries (seq, batch_id) SELECT unnest($1::BIGINT[]), $2
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(&keys)
        .bind(batch_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if taken.rows_affected() != keys.len() as u64 {
            // Dropping the transaction rolls the batch back.
            return Err(RepoError::Conflict);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(SettlementBatch {
            batch_id: unbig(batch_id),
            event_id: event_id.clone(),
            closed_at_ms: at_ms,
            entry_seqs: seqs,
            captured_cents,
            refunded_cents,
        })
    }
}

fn entry(r: &sqlx::postgres::PgRow) -> Result<LedgerEntry, RepoError> {
    Ok(LedgerEntry {
        seq: unbig(r.try_get("seq").map_err(unavailable)?),
        order_id: OrderId(r.try_get("order_id").map_err(unavailable)?),
        event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
        kind: parse(r.try_get("kind").map_err(unavailable)?)?,
        amount_cents: r.try_get("amount_cents").map_err(unavailable)?,
        at_ms: unbig(r.try_get("at_ms").map_err(unavailable)?),
    })
}

fn batch(r: &sqlx::postgres::PgRow) -> Result<SettlementBatch, RepoError> {
    let seqs: Vec<i64> = r.try_get("seqs").map_err(unavailable)?;
    Ok(SettlementBatch {
        batch_id: unbig(r.try_get("batch_id").map_err(unavailable)?),
        event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
        closed_at_ms: unbig(r.try_get("closed_at_ms").map_err(unavailable)?),
        entry_seqs: seqs.into_iter().map(unbig).collect(),
        captured_cents: r.try_get("captured_cents").map_err(unavailable)?,
        refunded_cents: r.try_get("refunded_cents").map_err(unavailable)?,
    })
}

fn stat(r: &sqlx::postgres::PgRow) -> Result<LedgerStat, RepoError> {
    Ok(LedgerStat {
        event_id: EventId(r.try_get("event_id").map_err(unavailable)?),
        kind: parse(r.try_get("kind").map_err(unavailable)?)?,
        count: unbig(r.try_get("n").map_err(unavailable)?),
        amount_cents: r.try_get("total").map_err(unavailable)?,
        unsettled: unbig(r.try_get("open").map_err(unavailable)?),
    })
}
