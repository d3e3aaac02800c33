//! The embedded mode: all six services in one process on the in-memory
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
//!
//! Layer: composition root; imports the services and the in-memory adapters.

use crate::Seeding;
use crate::settings::Settings;
use anyhow::Context as _;
use hyper_util::client::legacy::connect::HttpConnector;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use ticketing_domain::ports::{Clock, EventBus, QueueStore, SeatStore};
use ticketing_mem::{
    MemCatalogRepository, MemEventBus, MemOrderRepository, MemPaymentRepository, MemQueueStore,
    MemSeatStore, MemUserRepository,
};
use ticketing_services::admission::AdmissionKey;
use ticketing_services::catalog::{self, CatalogState, SeatFeed};
use ticketing_services::clients::order_clients;
use ticketing_services::config::{ClientSettings, PaymentFaults};
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
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
    pub queue: Arc<MemQueueStore>,
    pub users: Arc<MemUserRepository>,
}

/// The in-memory adapters of one embedded system.
fn handles(settings: &Settings) -> EmbeddedHandles {
    EmbeddedHandles {
        seats: Arc::new(MemSeatStore::new(
            settings.catalog.history_limit,
            settings.hold.tombstone_seconds * 1000,
        )),
        orders: Arc::new(MemOrderRepository::new()),
        payments: Arc::new(MemPaymentRepository::new()),
        catalog: Arc::new(MemCatalogRepository::new()),
        bus: MemEventBus::new(4),
        feed: Arc::new(SeatFeed::with_capacity(
            settings.catalog.feed_channel_capacity,
        )),
        payment_faults: Arc::new(Mutex::new(settings.payment.clone())),
        queue: Arc::new(MemQueueStore::new()),
        users: Arc::new(MemUserRepository::new()),
    }
}

/// The embedded demo's admission key when `queue.admission_key` is unset.
pub const DEMO_ADMISSION_KEY: &str = "embedded-demo-admission-key";

/// The admission key: the configured one, or the demo's (with a warning).
pub fn admission_key(settings: &Settings) -> AdmissionKey {
    match &settings.queue.admission_key {
        Some(k) if !k.is_empty() => AdmissionKey::new(k),
        _ => {
            tracing::warn!(
                "queue.admission_key is unset: the embedded demo signs admission tokens with a fixed, public key"
            );
            AdmissionKey::new(DEMO_ADMISSION_KEY)
        }
    }
}

/// The embedded demo's customer-token secret when `auth.jwt_secret` is unset.
pub const DEMO_JWT_SECRET: &str = "embedded-demo-customer-token-secret-not-for-production";

/// The customer-token key: the configured secret, or the demo's (with a
/// warning).
pub fn customer_key(settings: &Settings) -> anyhow::Result<CustomerKey> {
    match configured_jwt_secret(settings) {
        Some(s) => Ok(CustomerKey::hs256(s)?),
        None => {
            tracing::warn!(
                "auth.jwt_secret is unset: the embedded demo signs customer tokens with a fixed, public key"
            );
            Ok(CustomerKey::hs256(DEMO_JWT_SECRET)?)
        }
    }
}

/// `auth.jwt_secret`, unless unset or empty (then the demo's is used).
fn configured_jwt_secret(settings: &Settings) -> Option<&str> {
    settings
        .auth
        .jwt_secret
        .as_deref()
        .filter(|s| !s.is_empty())
}

/// Customer tokens in the embedded demo: anonymous calls are allowed
/// unless `auth.anonymous = false`.
pub fn customer_auth(settings: &Settings, key: CustomerKey) -> CustomerAuth {
    CustomerAuth::new(Some(key), settings.auth.anonymous.unwrap_or(true))
}

/// The users service on the in-memory accounts, with the demo's accounts
/// when the demo data is on. Clients reach the embedded gateway directly,
/// so `X-Forwarded-For` is theirs and not trusted unless configured.
async fn embedded_users(
    settings: &Settings,
    ctx: Ctx,
    repo: Arc<MemUserRepository>,
    key: CustomerKey,
) -> anyhow::Result<UsersState> {
    let state = UsersState::new(
        ctx,
        repo,
        key,
        settings.auth.token_ttl_s,
        &settings.users,
        settings.http.trust_forwarded_for.unwrap_or(false),
    )?;
    if settings.demo.enabled {
        for (email, password) in demo::ACCOUNTS {
            state
                .sign_up(email, password)
                .await
                .map_err(|e| anyhow::anyhow!("demo account {email}: {e}"))?;
        }
    }
    Ok(state)
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
    /// The users service's state (tests sign up and count hashes through it).
    pub users: Option<UsersState>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// The listeners' limits (timeouts, connection cap).
    http: ticketing_services::config::HttpSettings,
}

async fn bind(host: &str, port: u16, backlog: u32, what: &str) -> anyhow::Result<TcpListener> {
    ticketing_services::http::bind(host, port, backlog)
        .await
        .with_context(|| format!("cannot listen for {what} on {host}:{port} (is the port in use?)"))
}

/// The six services started on the in-memory adapters (not yet serving).
struct Services {
    catalog: Started,
    reservation: Started,
    order: Started,
    payment: Started,
    queue: Started,
    users: Started,
    users_state: UsersState,
}

impl Embedded {
    /// Binds the listeners, installs the demo data (if enabled) and starts
    /// servers and workers. Returns once everything accepts connections.
    pub async fn build(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        seeding: Seeding,
    ) -> anyhow::Result<Embedded> {
        let root = seeding.root();
        // Fixed order of forks: each service's stream is reproducible.
        let ctx_for = || Ctx {
            clock: clock.clone(),
            rng: Arc::new(root.fork()),
        };
        let handles = handles(settings);
        if settings.demo.enabled {
            for event in demo::demo_events(&settings.demo) {
                catalog::install_event(handles.catalog.as_ref(), handles.seats.as_ref(), event)
                    .await?;
            }
            for id in demo::PROTECTED {
                let room = settings.queue.room(clock.now_ms());
                handles.queue.open_room(&(*id).into(), &room).await?;
            }
        }
        let host = settings.gateway.host.as_str();
        let gateway_listener = bind(
            host,
            settings.gateway.port,
            settings.http.accept_backlog,
            "the gateway",
        )
        .await?;
        let reservation_listener =
            bind("127.0.0.1", 0, settings.http.accept_backlog, "reservation").await?;
        let payment_listener =
            bind("127.0.0.1", 0, settings.http.accept_backlog, "payment").await?;
        let internal_listener = bind(
            "127.0.0.1",
            0,
            settings.http.accept_backlog,
            "internal routes",
        )
        .await?;
        let reservation_addr = reservation_listener.local_addr()?;
        let payment_addr = payment_listener.local_addr()?;
        let mut app = Embedded {
            gateway_addr: gateway_listener.local_addr()?,
            reservation_addr,
            payment_addr,
            internal_addr: internal_listener.local_addr()?,
            handles,
            users: None,
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
            http: settings.http.clone(),
        };
        let [
            catalog_ctx,
            reservation_ctx,
            order_ctx,
            payment_ctx,
            gateway_ctx,
            queue_ctx,
            users_ctx,
        ] = [
            ctx_for(),
            ctx_for(),
            ctx_for(),
            ctx_for(),
            ctx_for(),
            ctx_for(),
            ctx_for(),
        ];
        let s = app
            .start_services(
                settings,
                customer_key(settings)?,
                [
                    catalog_ctx,
                    reservation_ctx.clone(),
                    order_ctx,
                    payment_ctx.clone(),
                    queue_ctx,
                    users_ctx,
                ],
            )
            .await?;
        app.users = Some(s.users_state.clone());
        // Prometheus metrics of the whole process, on the internal listener.
        let metrics = ticketing_services::metrics::install()?;
        let console = app.console(settings, clock.clone(), ctx_for().rng);
        let finish = |r, ctx: &Ctx| finish_router(r, ctx, &settings.http, gateway::owner);
        // Every listener answers `GET /health` (the console probes them;
        // the gateway's public router has its own).
        let health = |r: axum::Router| r.route("/health", axum::routing::get(|| async { "ok" }));
        // Internal routes check the service credential when one is set.
        let guard = |r| require_service_token(r, &settings.internal);
        let public =
            gateway::public_router(&[&s.catalog, &s.reservation, &s.order, &s.queue, &s.users]);
        let internal = [&s.reservation, &s.catalog, &s.payment, &s.order, &s.queue]
            .iter()
            .fold(axum::Router::new(), |r, s| {
                r.merge(guard(s.internal.clone()))
            })
            .merge(ticketing_services::metrics::router(metrics))
            .merge(guard(crate::console::router(console)))
            .merge(ticketing_web::console_router());
        let internal = health(internal);
        app.serve("gateway", gateway_listener, finish(public, &gateway_ctx));
        app.serve(
            "reservation",
            reservation_listener,
            finish(
                health(
                    s.reservation
                        .public
                        .clone()
                        .merge(guard(s.reservation.internal.clone())),
                ),
                &reservation_ctx,
            ),
        );
        app.serve(
            "payment",
            payment_listener,
            finish(health(guard(s.payment.internal.clone())), &payment_ctx),
        );
        app.serve(
            "internal",
            internal_listener,
            finish(internal, &gateway_ctx),
        );
        for started in [
            s.reservation,
            s.order,
            s.catalog,
            s.payment,
            s.queue,
            s.users,
        ] {
            for w in started.workers {
                app.tasks.spawn(w.task);
            }
        }
        Ok(app)
    }

    /// Each service's `start` on the in-memory adapters; order reaches
    /// reservation and payment over HTTP on their loopback listeners.
    async fn start_services(
        &self,
        settings: &Settings,
        key: CustomerKey,
        ctxs: [Ctx; 6],
    ) -> anyhow::Result<Services> {
        let [
            catalog_ctx,
            reservation_ctx,
            order_ctx,
            payment_ctx,
            queue_ctx,
            users_ctx,
        ] = ctxs;
        let auth = customer_auth(settings, key.clone());
        let users = embedded_users(settings, users_ctx, self.handles.users.clone(), key).await?;
        let key = admission_key(settings);
        let rooms: Arc<dyn QueueStore> = self.handles.queue.clone();
        let h = &self.handles;
        let seats: Arc<dyn SeatStore> = h.seats.clone();
        let bus: Arc<dyn EventBus> = Arc::new(h.bus.clone());
        let shutdown = &self.shutdown;
        let catalog_state = CatalogState::new(
            catalog_ctx,
            h.catalog.clone(),
            seats.clone(),
            h.feed.clone(),
            &settings.catalog,
            shutdown.clone(),
        )
        .with_rooms(rooms.clone(), settings.queue.clone());
        let reservation_state = ReservationState {
            ctx: reservation_ctx,
            seats,
            policy: settings.hold,
            auth: auth.clone(),
            rates: RequestLimits::new(
                &settings.limits,
                settings.http.trust_forwarded_for.unwrap_or(false),
            ),
            limits: settings.limits.customer(),
            admission: Some(Admission {
                rooms: rooms.clone(),
                key: key.clone(),
            }),
        };
        let queue_state = QueueState {
            ctx: queue_ctx,
            seats: h.seats.clone(),
            rooms,
            key,
            auth: auth.clone(),
            settings: settings.queue.clone(),
        };
        let urls = ClientSettings {
            reservation_url: format!("http://{}", self.reservation_addr),
            payment_url: format!("http://{}", self.payment_addr),
            // The catalog's internal routes are on the internal listener.
            catalog_url: format!("http://{}", self.internal_addr),
        };
        let clients = order_clients(
            HttpConnector::new(),
            &urls,
            &settings.saga,
            &settings.internal,
            &order_ctx,
        );
        let order_state = OrderState {
            ctx: order_ctx,
            repo: h.orders.clone(),
            reservation: clients.reservation,
            payment: clients.payment,
            calendar: clients.calendar,
            refund: settings.refund.clone(),
            saga: settings.saga.clone(),
            auth,
            rates: RequestLimits::new(
                &settings.limits,
                settings.http.trust_forwarded_for.unwrap_or(false),
            ),
            outbox_ready: Default::default(),
            placed: Default::default(),
            waiters: Default::default(),
        };
        let payment_state = PaymentState {
            ctx: payment_ctx,
            repo: h.payments.clone(),
            faults: h.payment_faults.clone(),
            settlement: settings.settlement,
        };
        Ok(Services {
            catalog: catalog::start(catalog_state, &settings.catalog),
            reservation: reservation::start(
                reservation_state,
                bus.clone(),
                &settings.reservation,
                shutdown.clone(),
            ),
            order: order::start(order_state, bus, shutdown.clone()),
            payment: payment::start(payment_state, shutdown.clone()),
            queue: queue_service::start(queue_state, shutdown.clone()),
            users: users::start(users.clone()),
            users_state: users,
        })
    }

    /// The operations console: its reads of this system's listeners,
    /// internal routes and metrics, and its harness runs aimed at this system.
    fn console(
        &self,
        settings: &Settings,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn ticketing_domain::ports::RandomSource>,
    ) -> crate::console::ConsoleState {
        let url = |addr: SocketAddr| format!("http://{addr}");
        let sources = crate::console::overview::Sources {
            services: [
                ("gateway", self.gateway_addr),
                ("reservation", self.reservation_addr),
                ("payment", self.payment_addr),
                ("internal", self.internal_addr),
            ]
            .into_iter()
            .map(|(n, a)| (n.to_owned(), url(a)))
            .collect(),
            stores: Vec::new(),
            internal_url: self.internal_url(),
            public_url: self.url(),
            metrics_urls: vec![format!("{}/metrics", self.internal_url())],
            service_token: settings.internal.token.clone(),
        };
        let jwt_secret = configured_jwt_secret(settings).unwrap_or(DEMO_JWT_SECRET);
        crate::console::state(
            settings,
            sources,
            clock,
            rng,
            jwt_secret.to_owned(),
            self.shutdown.clone(),
        )
    }

    /// Serves `router` on `listener` until shutdown.
    fn serve(&mut self, name: &'static str, listener: TcpListener, router: axum::Router) {
        let token = self.shutdown.clone();
        let http = self.http.clone();
        self.tasks.spawn(async move {
            let stop = async move { token.cancelled().await };
            if let Err(e) = ticketing_services::http::serve(listener, router, stop, &http).await {
                tracing::error!(service = name, error = %e, "server stopped");
            }
        });
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
        ticketing_services::worker::stop_all(&self.shutdown, &mut self.tasks, 5_000).await;
    }
}
