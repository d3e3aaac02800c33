//! Payment repository conformance: compare-and-set transitions and an
//! append-only ledger; concurrent identical transitions take effect once;
//! settlement batches take each money-moving entry exactly once.

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{EventId, LedgerKind, OrderId, Payment, PaymentStatus};

fn pay(order: &str, status: PaymentStatus) -> Payment {
    Payment {
        order_id: OrderId::from(order),
        event_id: EventId::from("ev1"),
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

/// Walks `order` of `event` through `steps` (each a status and its ledger kind).
async fn walk(
    repo: &dyn PaymentRepository,
    order: &str,
    event: &str,
    amount_cents: i64,
    steps: &[(PaymentStatus, LedgerKind)],
) {
    let mut prev = None;
    for (i, (status, kind)) in steps.iter().enumerate() {
        let payment = Payment {
            order_id: OrderId::from(order),
            event_id: EventId::from(event),
            amount_cents,
            status: *status,
        };
        repo.transition(prev, payment, *kind, i as u64)
            .await
            .unwrap();
        prev = Some(*status);
    }
}

const AUTH: (PaymentStatus, LedgerKind) = (PaymentStatus::Authorized, LedgerKind::Authorize);
const CAPTURE: (PaymentStatus, LedgerKind) = (PaymentStatus::Captured, LedgerKind::Capture);
const REFUND: (PaymentStatus, LedgerKind) = (PaymentStatus::Refunded, LedgerKind::Refund);
const VOID: (PaymentStatus, LedgerKind) = (PaymentStatus::Voided, LedgerKind::Void);

/// Seqs of the unsettled entries of `event`.
async fn open_seqs(repo: &dyn PaymentRepository, event: &str) -> Vec<u64> {
    let open = repo.unsettled(100).await.unwrap();
    open.iter()
        .filter(|e| e.event_id.as_str() == event)
        .map(|e| e.seq)
        .collect()
}

pub async fn settlement_takes_each_entry_once<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PaymentRepository>>,
{
    let repo = make().await;
    walk(repo.as_ref(), "a", "ev1", 700, &[AUTH, CAPTURE]).await;
    walk(repo.as_ref(), "b", "ev1", 300, &[AUTH, CAPTURE, REFUND]).await;
    walk(repo.as_ref(), "c", "ev2", 900, &[AUTH, CAPTURE]).await;
    walk(repo.as_ref(), "d", "ev1", 100, &[AUTH, VOID]).await;
    // Only captures and refunds wait for settlement, oldest first.
    let open = repo.unsettled(100).await.unwrap();
    let kinds: Vec<(&str, LedgerKind)> =
        open.iter().map(|e| (e.order_id.as_str(), e.kind)).collect();
    use LedgerKind::{Capture, Refund};
    assert_eq!(
        kinds,
        [
            ("a", Capture),
            ("b", Capture),
            ("b", Refund),
            ("c", Capture)
        ]
    );
    assert_eq!(repo.unsettled(2).await.unwrap(), open[..2]);
    let ev1 = EventId::from("ev1");
    let mut seqs = open_seqs(repo.as_ref(), "ev1").await;
    seqs.reverse();
    let batch = repo.close_batch(&ev1, &seqs, 42).await.unwrap();
    seqs.reverse();
    assert_eq!(
        (batch.entry_seqs.as_slice(), batch.closed_at_ms),
        (seqs.as_slice(), 42)
    );
    assert_eq!(
        (
            batch.captured_cents,
            batch.refunded_cents,
            batch.net_cents()
        ),
        (1000, 300, 700)
    );
    // Taking them again, or with one more, is a conflict that writes nothing.
    let c_seq = open_seqs(repo.as_ref(), "ev2").await;
    assert_eq!(
        repo.close_batch(&ev1, &seqs, 43).await.unwrap_err(),
        RepoError::Conflict
    );
    // An entry of another event, or one that moves no money, is refused.
    assert!(matches!(
        repo.close_batch(&ev1, &c_seq, 43).await,
        Err(RepoError::Invalid(_))
    ));
    let auth_seq = repo.ledger().await.unwrap()[0].seq;
    assert!(matches!(
        repo.close_batch(&ev1, &[auth_seq], 43).await,
        Err(RepoError::Invalid(_))
    ));
    assert!(matches!(
        repo.close_batch(&ev1, &[], 43).await,
        Err(RepoError::Invalid(_))
    ));
    assert_eq!(
        repo.settlements(None).await.unwrap(),
        std::slice::from_ref(&batch)
    );
    let stats = repo.ledger_stats().await.unwrap();
    let ev2_capture = stats
        .iter()
        .find(|s| s.event_id.as_str() == "ev2" && s.kind == Capture);
    assert_eq!(
        ev2_capture.map(|s| (s.count, s.amount_cents, s.unsettled)),
        Some((1, 900, 1))
    );
    let ev1_rows: Vec<(LedgerKind, u64, i64, u64)> = stats
        .iter()
        .filter(|s| s.event_id == ev1)
        .map(|s| (s.kind, s.count, s.amount_cents, s.unsettled))
        .collect();
    use LedgerKind::{Authorize, Void};
    assert_eq!(
        ev1_rows,
        [
            (Authorize, 3, 1100, 0),
            (Capture, 2, 1000, 0),
            (Void, 1, 100, 0),
            (Refund, 1, 300, 0)
        ]
    );
    let ev2 = EventId::from("ev2");
    let second = repo.close_batch(&ev2, &c_seq, 44).await.unwrap();
    assert!(repo.unsettled(100).await.unwrap().is_empty());
    assert_eq!(
        repo.settlements(Some(&ev2)).await.unwrap(),
        std::slice::from_ref(&second)
    );
    assert_eq!(repo.settlements(None).await.unwrap(), [batch, second]);
}

pub async fn concurrent_closes_take_an_entry_once<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PaymentRepository>>,
{
    let repo = make().await;
    for order in ["p", "q", "r"] {
        walk(repo.as_ref(), order, "ev1", 100, &[AUTH, CAPTURE]).await;
    }
    let seqs = open_seqs(repo.as_ref(), "ev1").await;
    // Overlapping batches race: [p, q] against [q, r], several times each.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (repo, seqs) = (repo.clone(), seqs.clone());
        tasks.push(tokio::spawn(async move {
            let take = if i % 2 == 0 { &seqs[..2] } else { &seqs[1..] };
            repo.close_batch(&EventId::from("ev1"), take, 0).await
        }));
    }
    let mut closed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => closed += 1,
            Err(e) => assert_eq!(e, RepoError::Conflict),
        }
    }
    assert_eq!(closed, 1);
    let batches = repo.settlements(None).await.unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].captured_cents, 200);
    assert_eq!(repo.unsettled(100).await.unwrap().len(), 1);
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
            #[tokio::test]
            async fn settlement_takes_each_entry_once() {
                $crate::payment_repo::settlement_takes_each_entry_once($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_closes_take_an_entry_once() {
                $crate::payment_repo::concurrent_closes_take_an_entry_once($make).await
            }
        }
    };
}
