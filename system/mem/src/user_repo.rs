//! In-memory customer accounts: by email key, with customer ids unique too.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use ticketing_domain::ports::{Account, Created, RepoError, UserRepository};

#[derive(Debug, Default)]
struct Inner {
    by_email: BTreeMap<String, Account>,
    customers: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct MemUserRepository {
    inner: Mutex<Inner>,
}

impl MemUserRepository {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserRepository for MemUserRepository {
    async fn create(&self, account: Account) -> Result<Created, RepoError> {
        let mut inner = crate::lock(&self.inner);
        if inner.by_email.contains_key(&account.email_key)
            || inner.customers.contains(&account.customer_id)
        {
            return Ok(Created::EmailTaken);
        }
        inner.customers.insert(account.customer_id.clone());
        inner.by_email.insert(account.email_key.clone(), account);
        Ok(Created::Created)
    }

    async fn by_email(&self, email_key: &str) -> Result<Option<Account>, RepoError> {
        Ok(crate::lock(&self.inner).by_email.get(email_key).cloned())
    }
}
