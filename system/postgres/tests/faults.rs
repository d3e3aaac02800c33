//! The PostgreSQL repositories when the connection is lost in the middle of
//! a transaction: the call fails with `Unavailable`, nothing of the
//! transaction is visible, and the next call works on a fresh connection.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use ticketing_conformance::order_repo::{accepted, order, outbox};
use ticketing_domain::OrderId;
use ticketing_domain::ports::{OrderRepository, RepoError};
use ticketing_postgres::{PgConfig, PgOrderRepository, connect};
use ticketing_testkit::{TestPostgres, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_mid_transaction_rolls_back_and_the_next_call_works() {
    let server = TestPostgres::start();
    let admin = sqlx::PgPool::connect(&server.admin_url).await.unwrap();
    let name = unique_name("db");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let base = server.admin_url.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{name}");
    let repo = PgOrderRepository::new(connect(&PgConfig::new(url.clone())).await.unwrap());

    // Another session locks the outbox, so place_order inserts the order
    // row and then waits inside its transaction on the outbox insert.
    let blocker = sqlx::PgPool::connect(&url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let placing = {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.place_order(order(1, 1), vec![outbox(1)], "key-1", accepted(1))
                .await
        })
    };
    // Wait until it is blocked on the lock, then cut its connection.
    let mut killed = 0i64;
    for _ in 0..100 {
        killed = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO outbox%'",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        killed, 1,
        "the placing transaction was found waiting and cut"
    );
    let result = placing.await.unwrap();
    assert!(
        matches!(result, Err(RepoError::Unavailable(_))),
        "{result:?}"
    );
    lock.rollback().await.unwrap();

    // Nothing of the cut transaction is visible; a retry succeeds on a new
    // connection from the same pool, exactly once.
    assert_eq!(
        repo.get_order(&OrderId::from("order-1")).await.unwrap(),
        None
    );
    assert_eq!(repo.outbox_backlog().await.unwrap(), 0);
    repo.place_order(order(1, 1), vec![outbox(1)], "key-1", accepted(1))
        .await
        .unwrap();
    assert!(
        repo.get_order(&OrderId::from("order-1"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(repo.outbox_backlog().await.unwrap(), 1);
}
