use super::RepoError;
use crate::model::UnixMs;
use async_trait::async_trait;

/// A customer account. `email_key` is the email as matched (see
/// `rules::email_key`: trimmed, lowercased); `email` as the customer typed
/// it; `password_hash` a PHC string (argon2id), never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub customer_id: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub created_at_ms: UnixMs,
}

/// What [`UserRepository::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// An account with this email key exists; nothing was written.
    EmailTaken,
}

/// The users service's storage: accounts by email key.
#[async_trait]
pub trait UserRepository: Send + Sync + std::fmt::Debug {
    /// Stores `account` unless one with the same `email_key` or
    /// `customer_id` exists — one atomic step (a unique key), so two
    /// concurrent sign-ups of one email create one account.
    async fn create(&self, account: Account) -> Result<Created, RepoError>;

    /// The account with this email key, if any.
    async fn by_email(&self, email_key: &str) -> Result<Option<Account>, RepoError>;
}
