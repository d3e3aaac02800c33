//! The embedded mode: all four services in one process on the in-memory
//! adapters, behind one loopback port that routes like the gateway.
//!
//! Reservation and payment also listen on their own loopback ports (port 0)
//! because the order service reaches them over HTTP, exactly as in a
//! deployment — the embedded mode exercises the real HTTP clients. One more
//! loopback listener carries every `/internal/...` route, like the gateway's
//! internal listener in a deployment (audits and payment faults use it). Tests
//! build it with [`Embedded::build`] on port 0 and a [`ManualClock`] of their
//! own; `ticketing serve --embedded` builds it with the wall-anchored clock.
//!
//! [`ManualClock`]: ticketing_mem::ManualClock

use crate::catalog::{CatalogState, SeatFeed};
use crate::clients::{HttpPaymentGateway, HttpReservationClient};
use crate::config::{PaymentFaults, Settings};
use crate::http::client::HttpClient;
use crate::order::{self, OrderState};
use crate::payment::{self, PaymentState};
use crate::reservation::{self, ReservationState};
use crate::{Ctx, catalog, demo, finish_router, gateway};
use anyhow::Context as _;
use hyper_util::client::legacy::connect::HttpConnector;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::{Clock, EventBus, SeatStore};
use ticketing_mem::{
    ChaChaRandom, MemCatalogRepository, MemEventBus, MemOrderRepository, MemPaymentRepository,
    MemSeatStore,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The production clock: wall time read once by the binary, then tokio time.
pub type WallClock = ticketing_mem::TokioClock;

/// How the random sources are seeded.
#[derive(Debug, Clone, Copy)]
pub enum Seeding {
    /// Reproducible runs (tests, `rng_seed` in the settings).
    Fixed(u64),
    /// 256 bits of key material from OS entropy (production).
    Key([u8; 32]),
}

/// The in-memory adapters, exposed so tests can inspect ground truth.
#[derive(Debug, Clone)]
pub struct EmbeddedHandles {
    pub seats: Arc<MemSeatStore>,
    pub orders: Arc<MemOrderRepository>,
    pub payments: Arc<MemPaymentRepository>,
    pub catalog: Arc<MemCatalogRepository>,
    pub bus: MemEventBus,
    pub feed: Arc<SeatFeed>,
    pub payment_faults: Arc<Mutex<PaymentFaults>>,
}

/// A running embedded system.
#[derive(Debug)]
pub struct Embedded {
    pub gateway_addr: SocketAddr,
    pub reservation_addr: SocketAddr,
    pub payment_addr: SocketAddr,
    /// Every internal route (holds, payments, payment faults, audits); always loopback.
    pub internal_addr: SocketAddr,
    pub handles: EmbeddedHandles,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen for {what} on {host}:{port} (is the port in use?)"))
}

impl Embedded {
    /// Binds the listeners, installs the demo data (if enabled) and starts
    /// servers and workers. Returns once everything accepts connections.
    pub async fn build(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        seeding: Seeding,
    ) -> anyhow::Result<Embedded> {
        let root = match seeding {
            Seeding::Fixed(seed) => ChaChaRandom::from_seed(seed),
            Seeding::Key(key) => ChaChaRandom::from_key(key),
        };
        // Fixed order of forks: each service's stream is reproducible.
        let ctx_for = || Ctx {
            clock: clock.clone(),
            rng: Arc::new(root.fork()),
        };
        let (catalog_ctx, reservation_ctx, order_ctx, payment_ctx, gateway_ctx) =
            (ctx_for(), ctx_for(), ctx_for(), ctx_for(), ctx_for());

        let handles = EmbeddedHandles {
            seats: Arc::new(MemSeatStore::new(
                settings.catalog.history_limit,
                settings.hold.tombstone_seconds * 1000,
            )),
            orders: Arc::new(MemOrderRepository::new()),
            payments: Arc::new(MemPaymentRepository::new()),
            catalog: Arc::new(MemCatalogRepository::new()),
            bus: MemEventBus::new(4),
            feed: Arc::new(SeatFeed::new()),
            payment_faults: Arc::new(Mutex::new(settings.payment.clone())),
        };
        if settings.demo.enabled {
            for event in demo::demo_events(&settings.demo) {
                demo::install_event(handles.catalog.as_ref(), handles.seats.as_ref(), event)
                    .await?;
            }
        }

        let host = settings.gateway.host.as_str();
        let gateway_listener = bind(host, settings.gateway.port, "the gateway").await?;
        let reservation_listener = bind("127.0.0.1", 0, "reservation").await?;
        let payment_listener = bind("127.0.0.1", 0, "payment").await?;
        let internal_listener = bind("127.0.0.1", 0, "internal routes").await?;
        let gateway_addr = gateway_listener.local_addr()?;
        let reservation_addr = reservation_listener.local_addr()?;
        let payment_addr = payment_listener.local_addr()?;
        let internal_addr = internal_listener.local_addr()?;

        let shutdown = CancellationToken::new();
        let seats: Arc<dyn SeatStore> = handles.seats.clone();
        let bus: Arc<dyn EventBus> = Arc::new(handles.bus.clone());
        let limit = settings.http.body_limit_bytes;

        let reservation_state = ReservationState {
            ctx: reservation_ctx.clone(),
            seats: seats.clone(),
            policy: settings.hold,
        };
        let payment_state = PaymentState {
            ctx: payment_ctx.clone(),
            repo: handles.payments.clone(),
            faults: handles.payment_faults.clone(),
        };
        let catalog_state = CatalogState {
            ctx: catalog_ctx,
            repo: handles.catalog.clone(),
            seats: seats.clone(),
            feed: handles.feed.clone(),
            heartbeat_ms: settings.catalog.sse_heartbeat_ms,
            replay_limit: settings.catalog.replay_limit,
            shutdown: shutdown.clone(),
        };
        let payment_http = HttpClient::new(
            HttpConnector::new(),
            format!("http://{payment_addr}"),
            Duration::from_millis(settings.saga.payment_timeout_ms),
            order_ctx.rng.clone(),
        );
        let reservation_http = HttpClient::new(
            HttpConnector::new(),
            format!("http://{reservation_addr}"),
            Duration::from_millis(settings.saga.reservation_timeout_ms),
            order_ctx.rng.clone(),
        );
        let order_state = OrderState {
            ctx: order_ctx,
            repo: handles.orders.clone(),
            reservation: Arc::new(HttpReservationClient::new(reservation_http)),
            payment: Arc::new(HttpPaymentGateway::with_policy(
                payment_http,
                settings.saga.payment_client(),
            )),
            saga: settings.saga.clone(),
        };

        // Prometheus metrics of the whole process, on the internal listener.
        let metrics = crate::metrics::install()?;
        let mut tasks = JoinSet::new();
        let serve =
            |tasks: &mut JoinSet<()>, name: &'static str, l: TcpListener, r: axum::Router| {
                let token = shutdown.clone();
                tasks.spawn(async move {
                    let stop = async move { token.cancelled().await };
                    if let Err(e) = crate::http::serve(l, r, stop).await {
                        tracing::error!(service = name, error = %e, "server stopped");
                    }
                });
            };
        serve(
            &mut tasks,
            "gateway",
            gateway_listener,
            finish_router(
                gateway::public_router(
                    catalog_state.clone(),
                    reservation_state.clone(),
                    order_state.clone(),
                ),
                &gateway_ctx,
                limit,
            ),
        );
        serve(
            &mut tasks,
            "reservation",
            reservation_listener,
            finish_router(
                reservation::public_router(reservation_state.clone())
                    .merge(reservation::internal_router(reservation_state.clone())),
                &reservation_ctx,
                limit,
            ),
        );
        serve(
            &mut tasks,
            "payment",
            payment_listener,
            finish_router(payment::router(payment_state.clone()), &payment_ctx, limit),
        );
        serve(
            &mut tasks,
            "internal",
            internal_listener,
            finish_router(
                reservation::internal_router(reservation_state.clone())
                    .merge(catalog::internal_router(catalog_state.clone()))
                    .merge(payment::router(payment_state))
                    .merge(order::internal_router(order_state.clone()))
                    .merge(crate::metrics::router(metrics)),
                &gateway_ctx,
                limit,
            ),
        );

        tasks.spawn(reservation::run_command_worker(
            reservation_state.clone(),
            bus.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(reservation::run_sweeper(
            reservation_state,
            settings.reservation.sweep_interval_ms,
            shutdown.clone(),
        ));
        tasks.spawn(order::saga::run_orchestrator(
            order_state.clone(),
            bus.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(order::saga::run_watchdog(
            order_state.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(order::saga::run_outbox_relay(
            order_state,
            bus,
            shutdown.clone(),
        ));
        tasks.spawn(catalog::SeatFeed::run(
            handles.feed.clone(),
            seats,
            settings.catalog.feed_poll_ms,
            shutdown.clone(),
        ));

        Ok(Embedded {
            gateway_addr,
            reservation_addr,
            payment_addr,
            internal_addr,
            handles,
            shutdown,
            tasks,
        })
    }

    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// The internal listener's base URL (`/internal/...` routes).
    pub fn internal_url(&self) -> String {
        format!("http://{}", self.internal_addr)
    }

    /// Runs until `signal` resolves, then shuts down cleanly.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops servers (draining in-flight requests, ending SSE streams) and
    /// workers; gives them 5 s, then aborts what is left.
    pub async fn shutdown(mut self) {
        crate::worker::stop_all(&self.shutdown, &mut self.tasks, 5_000).await;
    }
}
