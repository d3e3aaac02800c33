//! Payment repository conformance: compare-and-set transitions and an
//! append-only ledger; concurrent identical transitions take effect once.

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{LedgerKind, OrderId, Payment, PaymentStatus};

fn pay(order: &str, status: PaymentStatus) -> Payment {
    Payment {
        order_id: OrderId::from(order),
        amount_cents: 500,
        status,
    }
}

pub async fn transitions_are_compare_and_set<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PaymentRepository>>,
{
    let repo = make().await;
    assert!(repo.get(&OrderId::from("a")).await.unwrap().is_none());
    repo.transition(
        None,
        pay("a", PaymentStatus::Authorized),
        LedgerKind::Authorize,
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        repo.transition(
            None,
            pay("a", PaymentStatus::Authorized),
            LedgerKind::Authorize,
            2
        )
        .await
        .unwrap_err(),
        RepoError::Conflict
    );
    assert_eq!(
        repo.transition(
            Some(PaymentStatus::Voided),
            pay("a", PaymentStatus::Captured),
            LedgerKind::Capture,
            2
        )
        .await
        .unwrap_err(),
        RepoError::Conflict
    );
    repo.transition(
        Some(PaymentStatus::Authorized),
        pay("a", PaymentStatus::Captured),
        LedgerKind::Capture,
        3,
    )
    .await
    .unwrap();
    assert_eq!(
        repo.get(&OrderId::from("a")).await.unwrap().unwrap().status,
        PaymentStatus::Captured
    );
    let ledger = repo.ledger().await.unwrap();
    let kinds: Vec<LedgerKind> = ledger.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [LedgerKind::Authorize, LedgerKind::Capture]);
    assert!(ledger[0].seq < ledger[1].seq);
    assert_eq!(ledger[1].at_ms, 3);
}

pub async fn concurrent_transitions_take_effect_once<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PaymentRepository>>,
{
    let repo = make().await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.transition(
                None,
                pay("b", PaymentStatus::Authorized),
                LedgerKind::Authorize,
                0,
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(repo.ledger().await.unwrap().len(), 1);
}

#[macro_export]
macro_rules! payment_repo_suite {
    ($make:expr) => {
        mod payment_repo_conformance {
            use super::*;
            #[tokio::test]
            async fn transitions_are_compare_and_set() {
                $crate::payment_repo::transitions_are_compare_and_set($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_transitions_take_effect_once() {
                $crate::payment_repo::concurrent_transitions_take_effect_once($make).await
            }
        }
    };
}
