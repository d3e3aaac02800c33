//! [`PgUserRepository`]: customer accounts, one per email key (a unique
//! index decides between concurrent sign-ups).

use crate::{Db, big, unavailable, unbig};
use async_trait::async_trait;
use sqlx::Row;
use ticketing_domain::ports::{Account, Created, RepoError, UserRepository};

#[derive(Debug, Clone)]
pub struct PgUserRepository {
    db: Db,
}

impl PgUserRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserRepository for PgUserRepository {
    async fn create(&self, a: Account) -> Result<Created, RepoError> {
        self.db
            .bounded(async {
                let done = sqlx::query(
                    "INSERT INTO accounts (customer_id, email_key, email, password_hash, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&a.customer_id)
                .bind(&a.email_key)
                .bind(&a.email)
                .bind(&a.password_hash)
                .bind(big(a.created_at_ms))
                .execute(&self.db.pool)
                .await
                .map_err(unavailable)?;
                Ok(if done.rows_affected() == 1 {
                    Created::Created
                } else {
                    Created::EmailTaken
                })
            })
            .await
    }

    async fn by_email(&self, email_key: &str) -> Result<Option<Account>, RepoError> {
        self.db
            .bounded(async {
                let row = sqlx::query(
                    "SELECT customer_id, email, password_hash, created_at_ms
                     FROM accounts WHERE email_key = $1",
                )
                .bind(email_key)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(unavailable)?;
                row.map(|r| {
                    Ok(Account {
                        customer_id: r.try_get("customer_id").map_err(unavailable)?,
                        email: r.try_get("email").map_err(unavailable)?,
                        email_key: email_key.to_owned(),
                        password_hash: r.try_get("password_hash").map_err(unavailable)?,
                        created_at_ms: unbig(r.try_get("created_at_ms").map_err(unavailable)?),
                    })
                })
                .transpose()
            })
            .await
    }
}
