//! The repository conformance suites against real PostgreSQL: the same
//! cases the in-memory model passes (`system/conformance/tests/mem.rs`).
//!
//! Every repository under test gets a fresh database on a shared or
//! private server (see `ticketing-testkit`), migrated from scratch.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};
use ticketing_domain::ports::{
    CatalogRepository, OrderRepository, PaymentRepository, UserRepository,
};
use ticketing_postgres::{
    Db, PgCatalogRepository, PgConfig, PgOrderRepository, PgPaymentRepository, PgUserRepository,
    connect,
};
use ticketing_testkit::TestPostgres;

fn server() -> &'static TestPostgres {
    static SERVER: OnceLock<TestPostgres> = OnceLock::new();
    SERVER.get_or_init(TestPostgres::start)
}

/// A fresh, migrated database.
async fn fresh_db() -> Db {
    let admin = sqlx::PgPool::connect(&server().admin_url).await.unwrap();
    let name = ticketing_testkit::unique_name("db");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = server().admin_url.rsplit_once('/').unwrap().0;
    connect(&PgConfig::new(format!("{base}/{name}")))
        .await
        .unwrap()
}

ticketing_conformance::order_repo_suite!(|| async {
    Arc::new(PgOrderRepository::new(fresh_db().await)) as Arc<dyn OrderRepository>
});
ticketing_conformance::payment_repo_suite!(|| async {
    Arc::new(PgPaymentRepository::new(fresh_db().await)) as Arc<dyn PaymentRepository>
});
ticketing_conformance::catalog_repo_suite!(|| async {
    Arc::new(PgCatalogRepository::new(fresh_db().await)) as Arc<dyn CatalogRepository>
});
ticketing_conformance::user_repo_suite!(|| async {
    Arc::new(PgUserRepository::new(fresh_db().await)) as Arc<dyn UserRepository>
});
