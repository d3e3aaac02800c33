//! [`PgPaymentRepository`]: one payment per order, compare-and-set
//! transitions, and the append-only ledger (a trigger refuses UPDATE and
//! DELETE on it).

use crate::{Db, big, unavailable, unbig};
use async_trait::async_trait;
use sqlx::Row;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{LedgerEntry, LedgerKind, OrderId, Payment, PaymentStatus, UnixMs};

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
                let row =
                    sqlx::query("SELECT amount_cents, status FROM payments WHERE order_id = $1")
                        .bind(order_id.as_str())
                        .fetch_optional(&self.db.pool)
                        .await
                        .map_err(unavailable)?;
                row.map(|r| {
                    Ok(Payment {
                        order_id: order_id.clone(),
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
                        "INSERT INTO payments (order_id, amount_cents, status)
                         VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING",
                    )
                    .bind(payment.order_id.as_str())
                    .bind(payment.amount_cents)
                    .bind(&status)
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
                    "INSERT INTO ledger (order_id, kind, amount_cents, at_ms)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(payment.order_id.as_str())
                .bind(text(&kind)?)
                .bind(payment.amount_cents)
                .bind(big(at_ms))
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
                rows.iter()
                    .map(|r| {
                        Ok(LedgerEntry {
                            seq: unbig(r.try_get("seq").map_err(unavailable)?),
                            order_id: OrderId(r.try_get("order_id").map_err(unavailable)?),
                            kind: parse(r.try_get("kind").map_err(unavailable)?)?,
                            amount_cents: r.try_get("amount_cents").map_err(unavailable)?,
                            at_ms: unbig(r.try_get("at_ms").map_err(unavailable)?),
                        })
                    })
                    .collect()
            })
            .await
    }
}
