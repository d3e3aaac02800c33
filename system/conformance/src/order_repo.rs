//! Order repository conformance: idempotency records, the order + outbox
//! transaction, optimistic versions, processed-message dedup, unique
//! tickets with rollback, voided tickets (the after-sale step), outbox
//! leases, due orders.

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{
    ApplyOutcome, IdempotencyBegin, OrderRecord, OrderRepository, OutboxMessage, RepoError,
    SagaUpdate, StoredResponse,
};
use ticketing_domain::saga::SagaState;
use ticketing_domain::{EventId, HoldId, MessageId, OrderId, OrderStatus, SeatId, Ticket};

/// An `Authorizing` order `order-<n>` for seat `1-<n>` of event `e`.
pub fn order(n: u32, created_at_ms: u64) -> OrderRecord {
    OrderRecord {
        order_id: OrderId(format!("order-{n}")),
        hold_id: HoldId(format!("h_{n:032x}")),
        event_id: EventId::from("e"),
        seat_ids: vec![SeatId(format!("1-{n}"))],
        amount_cents: 1000,
        customer_id: None,
        saga: SagaState::Authorizing,
        created_at_ms,
        updated_at_ms: created_at_ms,
        attempts: 0,
        next_attempt_at_ms: created_at_ms,
        version: 0,
        trace_id: None,
        refund: None,
    }
}

/// Outbox row `m-<n>` on topic `t`.
pub fn outbox(n: u32) -> OutboxMessage {
    OutboxMessage {
        message_id: MessageId(format!("m-{n}")),
        topic: "t".into(),
        key: format!("k-{n}"),
        payload: vec![n as u8],
        headers: vec![],
    }
}

/// The stored 202 answer for `order-<n>`.
pub fn accepted(n: u32) -> StoredResponse {
    StoredResponse {
        status: 202,
        body: serde_json::json!({ "orderId": format!("order-{n}") }),
    }
}

fn ticket(seat: &str, order: u32) -> Ticket {
    Ticket {
        event_id: EventId::from("e"),
        seat_id: SeatId::from(seat),
        order_id: OrderId(format!("order-{order}")),
    }
}

/// Started, then InProgress for the same request, Mismatch for another,
/// Completed after the order is placed; concurrent first uses: one Started.
pub async fn idempotency_keys_bind_one_request<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    let o1 = OrderId::from("order-1");
    let o2 = OrderId::from("order-2");
    assert_eq!(
        repo.begin_idempotent("k", "hash-a", &o1, 0).await.unwrap(),
        IdempotencyBegin::Started {
            order_id: o1.clone()
        }
    );
    assert_eq!(
        repo.begin_idempotent("k", "hash-a", &o2, 1).await.unwrap(),
        IdempotencyBegin::InProgress {
            order_id: o1.clone()
        }
    );
    assert_eq!(
        repo.begin_idempotent("k", "hash-b", &o2, 1).await.unwrap(),
        IdempotencyBegin::Mismatch
    );
    repo.place_order(order(1, 0), vec![outbox(1)], "k", accepted(1))
        .await
        .unwrap();
    assert_eq!(
        repo.begin_idempotent("k", "hash-a", &o2, 2).await.unwrap(),
        IdempotencyBegin::Completed(accepted(1))
    );
    // A refusal stored for a key is replayed too, and never overwritten.
    repo.begin_idempotent("k2", "h", &o2, 0).await.unwrap();
    let refused = StoredResponse {
        status: 404,
        body: serde_json::Value::Null,
    };
    repo.complete_idempotent("k2", refused.clone())
        .await
        .unwrap();
    repo.complete_idempotent("k2", accepted(9)).await.unwrap();
    assert_eq!(
        repo.begin_idempotent("k2", "h", &o2, 0).await.unwrap(),
        IdempotencyBegin::Completed(refused)
    );

    let mut tasks = Vec::new();
    for n in 0..16u32 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.begin_idempotent("race", "h", &OrderId(format!("cand-{n}")), 0)
                .await
                .unwrap()
        }));
    }
    let mut started = 0;
    let mut bound = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            IdempotencyBegin::Started { order_id } => {
                started += 1;
                bound.push(order_id);
            }
            IdempotencyBegin::InProgress { order_id } => bound.push(order_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1);
    bound.dedup();
    assert_eq!(bound.len(), 1, "every caller got the same order id");
}

/// Placing is one transaction and idempotent: one order, its outbox rows once.
pub async fn place_order_is_atomic_and_idempotent<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    repo.begin_idempotent("k", "h", &OrderId::from("order-1"), 0)
        .await
        .unwrap();
    repo.place_order(order(1, 0), vec![outbox(1), outbox(2)], "k", accepted(1))
        .await
        .unwrap();
    repo.place_order(order(1, 0), vec![outbox(1), outbox(2)], "k", accepted(1))
        .await
        .unwrap();
    assert_eq!(repo.orders().await.unwrap().len(), 1);
    assert_eq!(repo.outbox_backlog().await.unwrap(), 2);
    let got = repo
        .get_order(&OrderId::from("order-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.saga.order_status(), OrderStatus::Pending);
    assert!(
        repo.get_order(&OrderId::from("nope"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Writes are version-checked; a consumed message is applied once; a ticket
/// conflict rolls back the whole step.
pub async fn apply_is_versioned_deduplicated_and_atomic<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    repo.place_order(order(1, 0), vec![], "k1", accepted(1))
        .await
        .unwrap();
    repo.place_order(order(2, 0), vec![], "k2", accepted(2))
        .await
        .unwrap();
    let mut next = order(1, 0);
    next.saga = SagaState::ConfirmingSeats;
    let step = SagaUpdate {
        order: next.clone(),
        processed: Some(MessageId::from("msg-1")),
        outbox: vec![outbox(1)],
        tickets: vec![ticket("1-1", 1)],
        void_tickets: false,
    };
    assert_eq!(
        repo.apply(step.clone()).await.unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        repo.apply(step.clone()).await.unwrap(),
        ApplyOutcome::Duplicate
    );
    let stored = repo.get_order(&next.order_id).await.unwrap().unwrap();
    // Exactly the record written, one version up: the saga goes on from
    // that without reading it back.
    assert_eq!(
        stored,
        OrderRecord {
            version: 1,
            ..next.clone()
        }
    );
    // Stale version: conflict, nothing written.
    let stale = SagaUpdate {
        processed: None,
        ..step.clone()
    };
    assert_eq!(repo.apply(stale).await.unwrap_err(), RepoError::Conflict);
    // The same ticket for the same order again is fine.
    let mut again = stored.clone();
    again.attempts = 1;
    let same = SagaUpdate {
        order: again,
        processed: None,
        outbox: vec![],
        tickets: vec![ticket("1-1", 1)],
        void_tickets: false,
    };
    assert_eq!(repo.apply(same).await.unwrap(), ApplyOutcome::Applied);
    // Another order's ticket for a sold seat: nothing of the step is written.
    let backlog = repo.outbox_backlog().await.unwrap();
    let mut other = order(2, 0);
    other.saga = SagaState::Capturing;
    let clash = SagaUpdate {
        order: other,
        processed: Some(MessageId::from("msg-2")),
        outbox: vec![outbox(2)],
        tickets: vec![ticket("1-2", 2), ticket("1-1", 2)],
        void_tickets: false,
    };
    assert_eq!(
        repo.apply(clash.clone()).await.unwrap_err(),
        RepoError::TicketConflict {
            event_id: EventId::from("e"),
            seat_id: SeatId::from("1-1")
        }
    );
    assert_eq!(
        repo.outbox_backlog().await.unwrap(),
        backlog,
        "no outbox row"
    );
    let o2 = repo
        .get_order(&OrderId::from("order-2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (o2.version, o2.saga),
        (0, SagaState::Authorizing),
        "order unchanged"
    );
    let tickets = repo.tickets().await.unwrap();
    assert_eq!(tickets, vec![ticket("1-1", 1)], "no partial tickets");
    // The message was not recorded as processed: a retry without the clash applies.
    let retry = SagaUpdate {
        tickets: vec![ticket("1-2", 2)],
        ..clash
    };
    assert_eq!(repo.apply(retry).await.unwrap(), ApplyOutcome::Applied);
    repo.mark_processed(&MessageId::from("msg-3"))
        .await
        .unwrap();
    let mut o2 = repo
        .get_order(&OrderId::from("order-2"))
        .await
        .unwrap()
        .unwrap();
    o2.attempts = 5;
    let dup = SagaUpdate {
        order: o2,
        processed: Some(MessageId::from("msg-3")),
        outbox: vec![],
        tickets: vec![],
        void_tickets: false,
    };
    assert_eq!(repo.apply(dup).await.unwrap(), ApplyOutcome::Duplicate);
}

/// Outbox rows are claimed in order with a lease; sent rows leave the backlog.
pub async fn outbox_claims_are_leased<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    repo.place_order(order(1, 0), (1..=5).map(outbox).collect(), "k", accepted(1))
        .await
        .unwrap();
    let first = repo.claim_outbox(3, 1_000, 0).await.unwrap();
    let ids: Vec<&str> = first
        .iter()
        .map(|r| r.message.message_id.as_str())
        .collect();
    assert_eq!(ids, ["m-1", "m-2", "m-3"]);
    let second = repo.claim_outbox(10, 1_000, 10).await.unwrap();
    let ids: Vec<&str> = second
        .iter()
        .map(|r| r.message.message_id.as_str())
        .collect();
    assert_eq!(ids, ["m-4", "m-5"], "leased rows are skipped");
    repo.mark_sent(&[first[0].seq, first[1].seq]).await.unwrap();
    assert_eq!(repo.outbox_backlog().await.unwrap(), 3);
    // After the lease ends, unsent rows can be claimed again, in order.
    let third = repo.claim_outbox(10, 1_000, 1_001).await.unwrap();
    let ids: Vec<&str> = third
        .iter()
        .map(|r| r.message.message_id.as_str())
        .collect();
    assert_eq!(ids, ["m-3"]);
}

/// Due orders: non-terminal, retry time reached, oldest first.
pub async fn due_orders_are_listed_oldest_first<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    for (n, created) in [(1, 30), (2, 10), (3, 20), (4, 5)] {
        repo.place_order(order(n, created), vec![], &format!("k{n}"), accepted(n))
            .await
            .unwrap();
    }
    let mut done = order(4, 5);
    done.saga = SagaState::Done {
        status: OrderStatus::Confirmed,
        reason: None,
    };
    repo.apply(SagaUpdate {
        order: done,
        processed: None,
        outbox: vec![],
        tickets: vec![],
        void_tickets: false,
    })
    .await
    .unwrap();
    let due = repo.due_orders(25, 10).await.unwrap();
    let ids: Vec<&str> = due.iter().map(OrderId::as_str).collect();
    assert_eq!(ids, ["order-2", "order-3"]);
    assert_eq!(repo.due_orders(100, 1).await.unwrap().len(), 1);
}

/// A step of `order-<n>` at its stored version writing `tickets` and
/// maybe voiding the order's own.
async fn step(
    repo: &dyn OrderRepository,
    n: u32,
    tickets: Vec<Ticket>,
    void_tickets: bool,
) -> Result<ApplyOutcome, RepoError> {
    repo.apply(SagaUpdate {
        order: stored(repo, n).await,
        processed: None,
        outbox: vec![],
        tickets,
        void_tickets,
    })
    .await
}

/// Voiding is the after-sale step: it takes only the voiding order's
/// tickets out of the count (kept for the audit), after which the seat can
/// get a new valid ticket — and never two valid ones at once.
pub async fn voided_tickets_free_their_seats_for_one_new_ticket<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    let r = repo.as_ref();
    place_all(r, 3).await;
    let mine = vec![ticket("1-1", 1), ticket("1-2", 1)];
    assert_eq!(
        step(r, 1, mine.clone(), false).await,
        Ok(ApplyOutcome::Applied)
    );
    let clash = RepoError::TicketConflict {
        event_id: EventId::from("e"),
        seat_id: SeatId::from("1-1"),
    };
    assert_eq!(
        step(r, 2, vec![ticket("1-1", 2)], false).await,
        Err(clash.clone())
    );
    assert_eq!(step(r, 1, vec![], true).await, Ok(ApplyOutcome::Applied));
    assert_eq!(repo.tickets().await.unwrap(), vec![]);
    assert_eq!(repo.voided_tickets().await.unwrap(), mine);
    assert_eq!(
        step(r, 2, vec![ticket("1-1", 2)], false).await,
        Ok(ApplyOutcome::Applied)
    );
    // Voiding again (a repeated step) touches nobody else's ticket.
    assert_eq!(step(r, 1, vec![], true).await, Ok(ApplyOutcome::Applied));
    assert_eq!(repo.tickets().await.unwrap(), vec![ticket("1-1", 2)]);
    assert_eq!(repo.voided_tickets().await.unwrap(), mine);
    assert_eq!(step(r, 3, vec![ticket("1-1", 3)], false).await, Err(clash));
}

/// A confirmed order's cancellation is stored with it (read back as it was
/// written) and keeps the order due for the watchdog until it is settled:
/// REFUNDED, or REFUND_FAILED waiting for an operator.
pub async fn a_cancellation_is_stored_and_due_until_settled<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    use ticketing_domain::refund::RefundState;
    let repo = make().await;
    repo.place_order(order(1, 10), vec![], "k1", accepted(1))
        .await
        .unwrap();
    let id = OrderId::from("order-1");
    let mut o = repo.get_order(&id).await.unwrap().unwrap();
    o.saga = SagaState::Done {
        status: OrderStatus::Confirmed,
        reason: None,
    };
    let due_at = |repo: &Arc<dyn OrderRepository>| {
        let repo = repo.clone();
        async move { repo.due_orders(100, 10).await.unwrap().len() }
    };
    for (refund, due) in [
        (None, 0),
        (Some(RefundState::VoidingTickets), 1),
        (Some(RefundState::Refunding), 1),
        (Some(RefundState::RefundFailed), 0),
        (Some(RefundState::ReturningSeats), 1),
        (Some(RefundState::Done), 0),
    ] {
        o.refund = refund;
        let update = SagaUpdate::of(o.clone(), None);
        assert_eq!(repo.apply(update).await, Ok(ApplyOutcome::Applied));
        o = repo.get_order(&id).await.unwrap().unwrap();
        assert_eq!(o.refund, refund, "read back as written");
        assert_eq!(due_at(&repo).await, due, "{refund:?}");
    }
    assert_eq!(o.status(), OrderStatus::Refunded);
}

/// `order-<n>` as stored, moved to `saga` by one step.
async fn move_to(
    repo: &dyn OrderRepository,
    n: u32,
    saga: SagaState,
) -> Result<ApplyOutcome, RepoError> {
    let mut o = stored(repo, n).await;
    o.saga = saga;
    repo.apply(SagaUpdate::of(o, None)).await
}

/// `order-<n>` as stored.
async fn stored(repo: &dyn OrderRepository, n: u32) -> OrderRecord {
    repo.get_order(&OrderId(format!("order-{n}")))
        .await
        .unwrap()
        .unwrap()
}

/// Places `order-1` .. `order-<count>`.
async fn place_all(repo: &dyn OrderRepository, count: u32) {
    for n in 1..=count {
        let key = format!("k{n}");
        repo.place_order(order(n, 0), vec![], &key, accepted(n))
            .await
            .unwrap();
    }
}

/// A status feed names an order once the step that left it terminal
/// committed, to every feed listening; a step that leaves it PENDING, a
/// refused step and a step before the feed started are not named.
pub async fn status_feeds_name_orders_once_terminal<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn OrderRepository>>,
{
    let repo = make().await;
    let r = repo.as_ref();
    place_all(r, 4).await;
    let confirmed = SagaState::Done {
        status: OrderStatus::Confirmed,
        reason: None,
    };
    assert_eq!(move_to(r, 1, confirmed).await, Ok(ApplyOutcome::Applied));
    let mut feeds = [
        repo.status_feed().await.unwrap(),
        repo.status_feed().await.unwrap(),
    ];
    assert_eq!(
        move_to(r, 2, SagaState::ConfirmingSeats).await,
        Ok(ApplyOutcome::Applied)
    );
    let mut stale = order(3, 0);
    stale.version = 7;
    stale.saga = confirmed;
    assert_eq!(
        repo.apply(SagaUpdate::of(stale, None)).await,
        Err(RepoError::Conflict)
    );
    assert_eq!(move_to(r, 4, confirmed).await, Ok(ApplyOutcome::Applied));
    let wanted = OrderId::from("order-4");
    for feed in &mut feeds {
        let mut named = Vec::new();
        for _ in 0..8 {
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
                .await
                .expect("order-4's change was never named")
                .unwrap();
            named.extend(got);
            if named.contains(&wanted) {
                break;
            }
        }
        assert_eq!(named, vec![wanted.clone()]);
    }
}

#[macro_export]
macro_rules! order_repo_suite {
    ($make:expr) => {
        mod order_repo_conformance {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotency_keys_bind_one_request() {
                $crate::order_repo::idempotency_keys_bind_one_request($make).await
            }
            #[tokio::test]
            async fn place_order_is_atomic_and_idempotent() {
                $crate::order_repo::place_order_is_atomic_and_idempotent($make).await
            }
            #[tokio::test]
            async fn apply_is_versioned_deduplicated_and_atomic() {
                $crate::order_repo::apply_is_versioned_deduplicated_and_atomic($make).await
            }
            #[tokio::test]
            async fn outbox_claims_are_leased() {
                $crate::order_repo::outbox_claims_are_leased($make).await
            }
            #[tokio::test]
            async fn due_orders_are_listed_oldest_first() {
                $crate::order_repo::due_orders_are_listed_oldest_first($make).await
            }
            #[tokio::test]
            async fn voided_tickets_free_their_seats_for_one_new_ticket() {
                $crate::order_repo::voided_tickets_free_their_seats_for_one_new_ticket($make).await
            }
            #[tokio::test]
            async fn a_cancellation_is_stored_and_due_until_settled() {
                $crate::order_repo::a_cancellation_is_stored_and_due_until_settled($make).await
            }
            #[tokio::test]
            async fn status_feeds_name_orders_once_terminal() {
                $crate::order_repo::status_feeds_name_orders_once_terminal($make).await
            }
        }
    };
}
