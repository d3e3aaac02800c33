//! User repository conformance: one account per email key and per
//! customer id, even under concurrent sign-ups; lookups by the key only.

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{Account, Created, UserRepository};

fn account(customer: &str, email: &str) -> Account {
    Account {
        customer_id: customer.into(),
        email: email.into(),
        email_key: email.to_lowercase(),
        password_hash: format!("$argon2id$v=19$m=8,t=1,p=1${customer}"),
        created_at_ms: 7,
    }
}

pub async fn accounts_are_unique_by_email_and_customer<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn UserRepository>>,
{
    let repo = make().await;
    assert_eq!(repo.by_email("ann@x.org").await.unwrap(), None);
    let ann = account("c-1", "Ann@X.org");
    assert_eq!(repo.create(ann.clone()).await.unwrap(), Created::Created);
    assert_eq!(repo.by_email("ann@x.org").await.unwrap(), Some(ann.clone()));
    assert_eq!(
        repo.by_email("Ann@X.org").await.unwrap(),
        None,
        "by key only"
    );
    // The same email key, another customer: refused, the first unchanged.
    let again = account("c-2", "ann@x.org");
    assert_eq!(repo.create(again).await.unwrap(), Created::EmailTaken);
    // The same customer id, another email: refused too.
    let same_id = account("c-1", "bob@x.org");
    assert_eq!(repo.create(same_id).await.unwrap(), Created::EmailTaken);
    assert_eq!(repo.by_email("bob@x.org").await.unwrap(), None);
    assert_eq!(repo.by_email("ann@x.org").await.unwrap(), Some(ann));
    let unicode = account("c-3", "jürgen@bücher.de");
    assert_eq!(
        repo.create(unicode.clone()).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        repo.by_email("jürgen@bücher.de").await.unwrap(),
        Some(unicode)
    );
}

pub async fn concurrent_sign_ups_of_one_email_make_one_account<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn UserRepository>>,
{
    let repo = make().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let repo = repo.clone();
        tasks.spawn(async move { repo.create(account(&format!("c-{i}"), "race@x.org")).await });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap().unwrap() == Created::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert!(repo.by_email("race@x.org").await.unwrap().is_some());
}

#[macro_export]
macro_rules! user_repo_suite {
    ($make:expr) => {
        mod user_repo_conformance {
            use super::*;
            #[tokio::test]
            async fn accounts_are_unique_by_email_and_customer() {
                $crate::user_repo::accounts_are_unique_by_email_and_customer($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_sign_ups_of_one_email_make_one_account() {
                $crate::user_repo::concurrent_sign_ups_of_one_email_make_one_account($make).await
            }
        }
    };
}
