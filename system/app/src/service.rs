//! One service as its own process, on the production adapters:
//!
//! | service | adapters | workers |
//! |---|---|---|
//! | catalog | `PgCatalogRepository`, `RedisSeatStore` | seat feed (SSE) |
//! | reservation | `RedisSeatStore`, `KafkaEventBus` | confirm/release commands, expiry sweeper |
//! | order | `PgOrderRepository`, `KafkaEventBus`, HTTP clients | saga orchestrator, watchdog, outbox relay |
//! | payment | `PgPaymentRepository` | — |
//! | queue | `RedisQueueStore`, `RedisSeatStore` (reads: does the event exist) | admitter |
//! | users | `PgUserRepository` | — |
//!
//! Catalog and reservation also reach the waiting rooms (`RedisQueueStore`):
//! catalog opens a room when an event is created with `waitingRoom`,
//! reservation checks admission tokens against it. Queue and reservation
//! require `queue.admission_key`; reservation, order and users require
//! `auth.jwt_secret` (users signs customer tokens, the others check them).
//! Behind the gateway, a client's address is the last `X-Forwarded-For`
//! entry unless `http.trust_forwarded_for = false`.
//!
//! [`Service::build`] is what `ticketing serve --service NAME` and the tests
//! call (zero-to-production's `Application::build`): it connects, migrates,
//! binds the listener (port 0 works) and starts servers and workers. Every
//! service answers `GET /health`; internal routes (`/internal/...`) share the
//! service's port and are kept private by the gateway, which never routes them.
//!
//! Layer: composition root; imports the services and the production adapters.

use crate::Seeding;
use crate::settings::Settings;
use anyhow::Context as _;
use axum::routing::get;
use hyper_util::client::legacy::connect::HttpConnector;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use ticketing_domain::EventId;
use ticketing_domain::messages::topics;
use ticketing_domain::ports::{Clock, EventBus, QueueStore, SeatStore};
use ticketing_kafka::KafkaEventBus;
use ticketing_postgres::{
    PgCatalogRepository, PgOrderRepository, PgPaymentRepository, PgUserRepository, connect,
};
use ticketing_redis::{RedisQueueStore, RedisSeatStore, RedisSeatStoreConfig};
use ticketing_services::admission::AdmissionKey;
use ticketing_services::catalog::{self, CatalogState, SeatFeed};
use ticketing_services::clients::order_clients;
use ticketing_services::customer::{CustomerAuth, CustomerKey};
use ticketing_services::http::auth::require_service_token;
use ticketing_services::http::finish_router;
use ticketing_services::order::{self, OrderState};
use ticketing_services::payment::{self, PaymentState};
use ticketing_services::queue::{self as queue_service, QueueState};
use ticketing_services::rate_limit::RequestLimits;
use ticketing_services::reservation::{self, Admission, ReservationState};
use ticketing_services::started::Started;
use ticketing_services::users::{self, UsersState};
use ticketing_services::{Ctx, demo, gateway};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceKind {
    Catalog,
    Reservation,
    Order,
    Payment,
    Queue,
    Users,
    /// The operations console: its page and backend, reading the other
    /// services, Redis, PostgreSQL and the broker (`console.*`).
    Console,
}

impl ServiceKind {
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Catalog => "catalog",
            ServiceKind::Reservation => "reservation",
            ServiceKind::Order => "order",
            ServiceKind::Payment => "payment",
            ServiceKind::Queue => "queue",
            ServiceKind::Users => "users",
            ServiceKind::Console => "console",
        }
    }
}

/// A running service.
#[derive(Debug)]
pub struct Service {
    pub kind: ServiceKind,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

async fn seat_store(settings: &Settings) -> anyhow::Result<Arc<RedisSeatStore>> {
    let config = RedisSeatStoreConfig {
        history_limit: settings.catalog.history_limit,
        tombstone_ms: settings.hold.tombstone_seconds * 1000,
        ..settings.redis.clone()
    };
    let url = config.url.clone();
    let store = RedisSeatStore::connect(config)
        .await
        .with_context(|| format!("cannot reach Redis at {url}"))?;
    Ok(Arc::new(store))
}

async fn queue_store(settings: &Settings) -> anyhow::Result<Arc<dyn QueueStore>> {
    let url = settings.redis.url.clone();
    let store = RedisQueueStore::connect(settings.redis.clone())
        .await
        .with_context(|| format!("cannot reach Redis at {url}"))?;
    Ok(Arc::new(store))
}

/// The admission key; production has no default.
fn admission_key(settings: &Settings, kind: ServiceKind) -> anyhow::Result<AdmissionKey> {
    match &settings.queue.admission_key {
        Some(k) if !k.is_empty() => Ok(AdmissionKey::new(k)),
        _ => anyhow::bail!(
            "queue.admission_key is required to serve {} on its own: it signs and checks \
             waiting-room admission tokens (set TICKETING_QUEUE__ADMISSION_KEY to a shared \
             secret, the same for queue and reservation)",
            kind.name()
        ),
    }
}

/// The customer-token verifier; production has no default key, and
/// anonymous calls only where `auth.anonymous = true` says so.
fn customer_auth(settings: &Settings, kind: ServiceKind) -> anyhow::Result<CustomerAuth> {
    Ok(CustomerAuth::new(
        Some(customer_key(settings, kind)?),
        settings.auth.anonymous.unwrap_or(false),
    ))
}

/// The customer-token key; production has no default.
fn customer_key(settings: &Settings, kind: ServiceKind) -> anyhow::Result<CustomerKey> {
    let Some(secret) = settings
        .auth
        .jwt_secret
        .as_deref()
        .filter(|s| !s.is_empty())
    else {
        anyhow::bail!(
            "auth.jwt_secret is required to serve {} on its own: it signs and checks customer \
             tokens (set TICKETING_AUTH__JWT_SECRET to a shared secret of at least {} bytes, \
             the same for every service)",
            kind.name(),
            ticketing_services::customer::SECRET_MIN_BYTES
        );
    };
    Ok(CustomerKey::hs256(secret)?)
}

async fn event_bus(settings: &Settings) -> anyhow::Result<Arc<KafkaEventBus>> {
    let k = &settings.kafka;
    let bus = KafkaEventBus::new(k.clone())?;
    bus.ensure_topics(&[topics::ORDER_SAGA, topics::RESERVATION_COMMANDS])
        .await
        .with_context(|| format!("cannot reach the Kafka broker at {}", k.brokers))?;
    Ok(Arc::new(bus))
}

async fn database(settings: &Settings) -> anyhow::Result<ticketing_postgres::Db> {
    connect(&settings.database).await.with_context(|| {
        // The URL may hold a password: name only where it points.
        let url = &settings.database.url;
        let at = url.rsplit_once('@').map_or(url.as_str(), |(_, h)| h);
        format!("cannot reach PostgreSQL at {at}")
    })
}

/// `kind`'s `start` on the production adapters.
async fn start(
    kind: ServiceKind,
    settings: &Settings,
    ctx: Ctx,
    shutdown: &CancellationToken,
) -> anyhow::Result<Started> {
    Ok(match kind {
        ServiceKind::Catalog => {
            let repo = Arc::new(PgCatalogRepository::new(database(settings).await?));
            let seats: Arc<dyn SeatStore> = seat_store(settings).await?;
            let rooms = queue_store(settings).await?;
            if settings.demo.enabled {
                for event in demo::demo_events(&settings.demo) {
                    catalog::install_event(repo.as_ref(), seats.as_ref(), event).await?;
                }
                for id in demo::PROTECTED {
                    let event: EventId = (*id).into();
                    // A restart keeps the room (and its on-sale time) as it is.
                    if rooms.room(&event).await?.is_none() {
                        let room = settings.queue.room(ctx.clock.now_ms());
                        rooms.open_room(&event, &room).await?;
                    }
                }
            }
            let feed = Arc::new(SeatFeed::with_capacity(
                settings.catalog.feed_channel_capacity,
            ));
            let state =
                CatalogState::new(ctx, repo, seats, feed, &settings.catalog, shutdown.clone())
                    .with_rooms(rooms, settings.queue.clone());
            catalog::start(state, &settings.catalog)
        }
        ServiceKind::Reservation => {
            let seats: Arc<dyn SeatStore> = seat_store(settings).await?;
            let bus: Arc<dyn EventBus> = event_bus(settings).await?;
            let state = ReservationState {
                ctx,
                seats,
                policy: settings.hold,
                auth: customer_auth(settings, kind)?,
                rates: RequestLimits::new(
                    &settings.limits,
                    settings.http.trust_forwarded_for.unwrap_or(true),
                ),
                limits: settings.limits.customer(),
                admission: Some(Admission {
                    rooms: queue_store(settings).await?,
                    key: admission_key(settings, kind)?,
                }),
            };
            reservation::start(state, bus, &settings.reservation, shutdown.clone())
        }
        ServiceKind::Order => {
            let repo = Arc::new(PgOrderRepository::new(database(settings).await?));
            let bus: Arc<dyn EventBus> = event_bus(settings).await?;
            let clients = order_clients(
                HttpConnector::new(),
                &settings.clients,
                &settings.saga,
                &settings.internal,
                &ctx,
            );
            let state = OrderState {
                ctx,
                repo,
                reservation: clients.reservation,
                payment: clients.payment,
                calendar: clients.calendar,
                refund: settings.refund.clone(),
                saga: settings.saga.clone(),
                auth: customer_auth(settings, kind)?,
                rates: RequestLimits::new(
                    &settings.limits,
                    settings.http.trust_forwarded_for.unwrap_or(true),
                ),
                outbox_ready: Default::default(),
                placed: Default::default(),
                waiters: Default::default(),
            };
            order::start(state, bus, shutdown.clone())
        }
        ServiceKind::Queue => {
            let state = QueueState {
                key: admission_key(settings, kind)?,
                rooms: queue_store(settings).await?,
                seats: seat_store(settings).await?,
                auth: customer_auth(settings, kind)?,
                ctx,
                settings: settings.queue.clone(),
            };
            queue_service::start(state, shutdown.clone())
        }
        ServiceKind::Users => {
            // The key first: a missing secret is said before any connection.
            let key = customer_key(settings, kind)?;
            users::start(UsersState::new(
                ctx,
                Arc::new(PgUserRepository::new(database(settings).await?)),
                key,
                settings.auth.token_ttl_s,
                &settings.users,
                settings.http.trust_forwarded_for.unwrap_or(true),
            )?)
        }
        ServiceKind::Console => console_service(settings, ctx, shutdown)?,
        ServiceKind::Payment => payment::start(
            PaymentState {
                ctx,
                repo: Arc::new(PgPaymentRepository::new(database(settings).await?)),
                faults: Arc::new(Mutex::new(settings.payment.clone())),
                settlement: settings.settlement,
            },
            shutdown.clone(),
        ),
    })
}

/// The console on its own: its page public on its port (which only the
/// internal nginx listener routes to), its backend behind the service
/// credential.
fn console_service(
    settings: &Settings,
    ctx: Ctx,
    shutdown: &CancellationToken,
) -> anyhow::Result<Started> {
    let c = &settings.console;
    let (Some(public_url), Some(internal_url)) = (&c.public_url, &c.internal_url) else {
        anyhow::bail!(
            "console.public_url and console.internal_url are required to serve the console on \
             its own (TICKETING_CONSOLE__PUBLIC_URL, TICKETING_CONSOLE__INTERNAL_URL: the \
             gateway's public and internal listeners)"
        );
    };
    let services = crate::console::overview::parse_services(c.services.as_deref().unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("console.services: {e}"))?;
    let stores = crate::console::overview::stores_of(
        &settings.redis.url,
        &settings.database.url,
        &settings.kafka.brokers,
    );
    let sources = crate::console::overview::Sources {
        metrics_urls: services
            .iter()
            .map(|(_, u)| format!("{u}/metrics"))
            .collect(),
        services,
        stores,
        internal_url: internal_url.clone(),
        public_url: public_url.clone(),
        service_token: settings.internal.token.clone(),
    };
    // The load runs sign their customers' tokens with the deployment's key.
    let jwt_secret = settings.auth.jwt_secret.clone().unwrap_or_default();
    let state = crate::console::state(
        settings,
        sources,
        ctx.clock,
        ctx.rng,
        jwt_secret,
        shutdown.clone(),
    );
    Ok(Started {
        service: "console",
        public: ticketing_web::console_router(),
        internal: crate::console::router(state),
        workers: Vec::new(),
    })
}

impl Service {
    /// Connects to the service's infrastructure, applies migrations,
    /// binds `settings.service` and starts serving.
    pub async fn build(
        kind: ServiceKind,
        settings: &Settings,
        clock: Arc<dyn Clock>,
        seeding: Seeding,
    ) -> anyhow::Result<Service> {
        anyhow::ensure!(
            !settings.internal.accepted().is_empty(),
            "internal.token is required to serve {} on its own: internal routes are never open \
             in production (set TICKETING_INTERNAL__TOKEN to a shared secret, the same for \
             every service)",
            kind.name()
        );
        let ctx = Ctx {
            clock,
            rng: Arc::new(seeding.root()),
        };
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let started = start(kind, settings, ctx.clone(), &shutdown).await?;
        // `/metrics` shares the service's port; the gateway never routes it.
        let metrics = ticketing_services::metrics::install()?;
        let internal = require_service_token(started.internal.clone(), &settings.internal);
        // The catalog also serves the published OpenAPI document (nginx
        // routes `/api/openapi.json` to it, like `/api/events`).
        let public = match kind {
            ServiceKind::Catalog => started
                .public
                .clone()
                .merge(ticketing_services::openapi::router()),
            _ => started.public.clone(),
        };
        let router = finish_router(
            public
                .merge(internal)
                .route("/health", get(|| async { "ok" }))
                .merge(ticketing_services::metrics::router(metrics)),
            &ctx,
            &settings.http,
            gateway::owner,
        );
        for w in started.workers {
            tasks.spawn(w.task);
        }
        let (host, port) = (settings.service.host.as_str(), settings.service.port);
        let backlog = settings.http.accept_backlog;
        let listener = ticketing_services::http::bind(host, port, backlog)
            .await
            .with_context(|| {
                format!(
                    "cannot listen for {} on {host}:{port} (is the port in use?)",
                    kind.name()
                )
            })?;
        let addr = listener.local_addr()?;
        let token = shutdown.clone();
        let http = settings.http.clone();
        tasks.spawn(async move {
            let stop = async move { token.cancelled().await };
            if let Err(e) = ticketing_services::http::serve(listener, router, stop, &http).await {
                tracing::error!(service = kind.name(), error = %e, "server stopped");
            }
        });
        Ok(Service {
            kind,
            addr,
            shutdown,
            tasks,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs until `signal` resolves, then shuts down cleanly.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops the server (draining requests) and the workers; after 5 s
    /// aborts what is left.
    pub async fn shutdown(mut self) {
        ticketing_services::worker::stop_all(&self.shutdown, &mut self.tasks, 5_000).await;
    }
}
