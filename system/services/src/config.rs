//! The services' own configuration sections: each service gets the ones it
//! reads (reservation: `hold`, `reservation`; order: `saga`, `clients`;
//! catalog: `catalog`; payment: `payment`; users: `users`; reservation and
//! order: `auth`; every router: `http`; the demo
//! data: `demo`; the binary's logs and spans: `log`, `trace`). The whole
//! settings tree, with the adapters' sections, the listeners and the layered
//! loading, is the composition root's (`ticketing_app::settings`).
//!
//! Layer: shared types (bottom); imports only the domain.

use serde::{Deserialize, Serialize};

/// OpenTelemetry span export of the `ticketing` binary: off unless an OTLP
/// endpoint is set. The simulator and the tests never export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceSettings {
    /// OTLP over HTTP (protobuf), e.g. `http://jaeger:4318`; `/v1/traces`
    /// is appended unless already there. Unset or empty: no export.
    pub otlp_endpoint: Option<String>,
    /// Bound on one export call; spans of a failed export are dropped (and
    /// counted in the exporter's own logs), never retried forever.
    pub export_timeout_ms: u64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            export_timeout_ms: 5_000,
        }
    }
}

impl TraceSettings {
    /// The configured endpoint, if export is on.
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Log output of the `ticketing` binary (to stderr).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `text` for people, `json` for log shippers: one object per line, with
    /// the request's or message's trace id in the span fields.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Base URLs of the internal APIs the order service calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    pub reservation_url: String,
    pub payment_url: String,
    /// The catalog's internal routes (an event's start, for the
    /// cancellation window).
    pub catalog_url: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            reservation_url: "http://127.0.0.1:8082".into(),
            payment_url: "http://127.0.0.1:8084".into(),
            catalog_url: "http://127.0.0.1:8081".into(),
        }
    }
}

/// The order saga's timing. Units are in the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SagaSettings {
    /// Give up on authorization (void, FAILED) after this long.
    pub authorize_deadline_ms: u64,
    /// Timeout of one call to the payment gateway.
    pub payment_timeout_ms: u64,
    /// Timeout of one call to reservation (pin).
    pub reservation_timeout_ms: u64,
    /// First retry delay after a failed payment call; doubles per attempt.
    pub retry_backoff_ms: u64,
    /// Cap on the retry delay.
    pub retry_backoff_max_ms: u64,
    /// Re-send `ConfirmSeats` if no reply came within this long.
    pub confirm_resend_ms: u64,
    /// Confirm the seats by calling reservation over HTTP first (the fenced
    /// confirm, answered at once), with the `ConfirmSeats` command through
    /// the outbox as the retry path after `confirm_resend_ms`; `false`: the
    /// command only (two broker hops per order).
    pub confirm_over_http: bool,
    /// How often the watchdog looks for stalled sagas.
    pub watchdog_interval_ms: u64,
    /// How often the outbox relay looks for unsent rows.
    pub outbox_interval_ms: u64,
    /// How long an outbox relay owns the rows it claimed.
    pub outbox_lease_ms: u64,
    /// The watchdog drives a new order itself if `OrderPlaced` has not
    /// arrived within this long (e.g. during a broker outage).
    pub place_grace_ms: u64,
    /// Quick retries inside one payment call (jittered), before the saga's own.
    pub payment_retries: u32,
    /// Retry `n` waits a uniform `[0, backoff * 2^n]` ms (full jitter).
    pub payment_retry_backoff_ms: u64,
    /// Consecutive failed payment calls that open the circuit (0 = never).
    pub payment_breaker_failures: u32,
    /// How long an open circuit fails calls fast.
    pub payment_breaker_open_ms: u64,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            authorize_deadline_ms: 30_000,
            payment_timeout_ms: 2_000,
            reservation_timeout_ms: 2_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 2_000,
            confirm_resend_ms: 5_000,
            confirm_over_http: true,
            watchdog_interval_ms: 200,
            outbox_interval_ms: 10,
            outbox_lease_ms: 5_000,
            place_grace_ms: 2_000,
            payment_retries: 2,
            payment_retry_backoff_ms: 25,
            payment_breaker_failures: 5,
            payment_breaker_open_ms: 1_000,
        }
    }
}

/// Cancelling a confirmed order (the after-sale saga). Units are in the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefundSettings {
    /// Cancellations close this long before the event starts (409
    /// `REFUND_WINDOW_CLOSED` from then on).
    pub window_before_start_s: u64,
    /// A refund the gateway has not confirmed within this long of the
    /// cancellation (retried with the saga's backoff meanwhile) is given
    /// up: the order is REFUND_FAILED until an operator retries it.
    pub deadline_ms: u64,
    /// Re-send `ReturnSeats` if reservation has not replied within this long.
    pub return_resend_ms: u64,
}

impl Default for RefundSettings {
    fn default() -> Self {
        Self {
            window_before_start_s: 3_600,
            deadline_ms: 60_000,
            return_resend_ms: 5_000,
        }
    }
}

/// The payment service's settlement worker. Units are in the names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SettlementSettings {
    /// How often a round closes one batch per event with unsettled entries.
    pub interval_ms: u64,
    /// Most ledger entries one round takes (the rest wait for the next).
    pub max_entries: usize,
}

impl Default for SettlementSettings {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            max_entries: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReservationSettings {
    /// How often expired holds are swept (each expiry is an SSE change).
    pub sweep_interval_ms: u64,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            sweep_interval_ms: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogSettings {
    /// SSE comment heartbeat, so proxies do not close idle streams.
    pub sse_heartbeat_ms: u64,
    /// How often the seat feed reads new changes from the seat store.
    pub feed_poll_ms: u64,
    /// At most this many changes are replayed on `Last-Event-ID`; an older
    /// gap gets a fresh snapshot instead.
    pub replay_limit: usize,
    /// Changes kept per event by the in-memory seat store.
    pub history_limit: usize,
    /// Changes an event's SSE channel buffers; a stream further behind is
    /// cut (it resumes with Last-Event-ID).
    pub feed_channel_capacity: usize,
    /// Serve seat maps from the per-version cache (`catalog/cache.rs`);
    /// `false` builds every read from the stores (for benchmarks).
    pub seat_map_cache: bool,
    /// Events whose seat maps the cache keeps (the least recently read go).
    pub seat_map_cache_events: usize,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            sse_heartbeat_ms: 15_000,
            feed_poll_ms: 25,
            replay_limit: 512,
            history_limit: 1_024,
            feed_channel_capacity: 1_024,
            seat_map_cache: true,
            seat_map_cache_events: 64,
        }
    }
}

/// The mock gateway's behaviour. Rates are probabilities in `[0, 1]`,
/// rolled on the seeded random source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentFaults {
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
    /// Authorizations declined.
    pub decline_rate: f64,
    /// Calls failing with 503 before any effect.
    pub error_rate: f64,
    /// Calls that take effect but answer only after `timeout_delay_ms`
    /// (the caller times out although the payment succeeded).
    pub timeout_rate: f64,
    pub timeout_delay_ms: u64,
    /// Faults for the next calls, in order, before any rate is rolled.
    pub script: Vec<ScriptedFault>,
}

impl Default for PaymentFaults {
    fn default() -> Self {
        Self {
            latency_ms_min: 0,
            latency_ms_max: 0,
            decline_rate: 0.0,
            error_rate: 0.0,
            timeout_rate: 0.0,
            timeout_delay_ms: 5_000,
            script: Vec::new(),
        }
    }
}

/// A fault for one call of the mock gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScriptedFault {
    /// Behave normally.
    None,
    /// Decline (authorize only; other calls behave normally).
    Decline,
    /// Answer 503 without any effect.
    Error,
    /// Take effect, then answer too late.
    TimeoutAfterSuccess,
}

/// The credential every call to an internal route carries (header
/// [`SERVICE_TOKEN_HEADER`]). Required by `ticketing serve --service`
/// (production: no default); the embedded demo leaves it unset, its internal
/// routes listening on loopback only. Rotation: set the new `token` and keep
/// the old one as `previous_token` until every service has the new one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InternalSettings {
    /// Sent on every internal call, and accepted.
    pub token: Option<String>,
    /// Also accepted (during a rotation).
    pub previous_token: Option<String>,
}

impl InternalSettings {
    /// The credentials accepted; empty when internal routes are open.
    pub fn accepted(&self) -> Vec<String> {
        [&self.token, &self.previous_token]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect()
    }
}

/// The header that carries the service credential on internal calls.
pub const SERVICE_TOKEN_HEADER: &str = "x-service-token";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Request bodies larger than this get 413.
    pub body_limit_bytes: usize,
    /// A request's headers must arrive within this, counted from when the
    /// connection starts waiting for them — so it is also the keep-alive
    /// idle timeout (one timer in hyper). A connection streaming a
    /// response (the seat stream) is not waiting and is not closed by it.
    pub header_read_timeout_ms: u64,
    /// A JSON body must be read within this, else 408 `REQUEST_TIMEOUT`.
    pub body_read_timeout_ms: u64,
    /// Open connections per listener; one over it is closed at once.
    pub max_connections: usize,
    /// Longest path and query the application answers (else 414
    /// `URI_TOO_LONG`); the HTTP library's own limit is set above it.
    pub max_uri_bytes: usize,
    /// Most request headers (else 431 `HEADERS_TOO_LARGE`); the HTTP
    /// library is set to accept twice as many, so the application answers.
    pub max_headers: usize,
    /// Most bytes of request headers, names and values (else 431).
    pub max_header_bytes: usize,
    /// Connections the kernel completes for a listener before it accepts
    /// them (`listen(2)`'s backlog; the kernel caps it at
    /// `net.core.somaxconn`). A stampede's connections arrive faster than
    /// one accept loop takes them: with std's 128 the rest wait for SYN
    /// retries (1 s, then 3 s).
    pub accept_backlog: u32,
    /// Take the client's address from the last `X-Forwarded-For` entry
    /// (the one the gateway appended) instead of the connection's peer.
    /// `None` takes the mode's default: on for `serve --service` (always
    /// behind the gateway), off for the embedded system (clients connect
    /// directly, so the header is theirs to forge).
    pub trust_forwarded_for: Option<bool>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 16 * 1024,
            header_read_timeout_ms: 15_000,
            body_read_timeout_ms: 10_000,
            max_connections: 10_000,
            max_uri_bytes: 8 * 1024,
            max_headers: 64,
            max_header_bytes: 32 * 1024,
            accept_backlog: 4096,
            trust_forwarded_for: None,
        }
    }
}

/// The demo data the embedded mode starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoSettings {
    pub enabled: bool,
    /// Rows and columns of the large event (`stadium-final`).
    pub large_rows: u32,
    pub large_cols: u32,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            large_rows: 100,
            large_cols: 100,
        }
    }
}

/// The waiting room (`queue` section): defaults for every protected event's
/// room, the admission step and the token key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// The room takes visitors this long before the on-sale time.
    pub opens_before_s: u64,
    /// Most shoppers active at once, per event (changeable at run time).
    pub active_max: u32,
    /// Most admissions per second, per event (changeable at run time).
    pub admit_per_s: u32,
    /// An admitted shopper's slot frees after this long without a request.
    pub idle_s: u64,
    /// A waiting visitor who stops asking for this long loses the place.
    pub abandon_s: u64,
    /// How long an admission token is valid.
    pub token_ttl_s: u64,
    /// How often each queue process runs an admission step per room.
    pub admit_interval_ms: u64,
    /// How often an open position stream asks for its place (one store
    /// call per open stream per interval).
    pub stream_interval_ms: u64,
    /// The HMAC key of admission tokens, shared by queue and reservation.
    /// Required by `ticketing serve --service queue|reservation`; the
    /// embedded demo uses a fixed key and says so in a warning.
    pub admission_key: Option<String>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            opens_before_s: 1_800,
            active_max: 1_000,
            admit_per_s: 100,
            idle_s: 120,
            abandon_s: 60,
            token_ttl_s: 900,
            admit_interval_ms: 100,
            stream_interval_ms: 1_000,
            admission_key: None,
        }
    }
}

impl QueueSettings {
    /// The room of an event going on sale at `on_sale_at_ms`.
    pub fn room(&self, on_sale_at_ms: u64) -> ticketing_domain::queue::RoomConfig {
        ticketing_domain::queue::RoomConfig {
            opens_at_ms: on_sale_at_ms.saturating_sub(self.opens_before_s * 1000),
            on_sale_at_ms,
            active_max: self.active_max,
            admit_per_s: self.admit_per_s,
            idle_ms: self.idle_s * 1000,
            abandon_ms: self.abandon_s * 1000,
            token_ttl_ms: self.token_ttl_s * 1000,
        }
    }
}

/// A rate: `per_minute` requests on average, `burst` at once (a GCRA
/// bucket; `per_minute = 0` turns the limit off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSettings {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateSettings {
    pub const fn new(per_minute: u32, burst: u32) -> RateSettings {
        RateSettings { per_minute, burst }
    }
}

/// Customer accounts (`users` section): how passwords are hashed and how
/// often one account or one client address may try to log in or sign up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersSettings {
    /// argon2id memory in KiB (OWASP: 19,456 KiB, 2 iterations, 1 lane).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once (each holds a runtime worker while it runs).
    pub hash_concurrency_max: usize,
    /// Requests waiting for a hash slot; one more is 503 `SERVICE_UNAVAILABLE`.
    pub hash_waiting_max: usize,
    /// Login attempts per account (by email, known or not).
    pub login_per_account: RateSettings,
    /// Login attempts per client address.
    pub login_per_address: RateSettings,
    /// Sign-ups per client address.
    pub signup_per_address: RateSettings,
    /// Keys each limiter remembers; when full, keys whose bucket has
    /// refilled are forgotten, and if none has, new keys are refused.
    pub limiter_keys_max: usize,
}

impl Default for UsersSettings {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency_max: 2,
            hash_waiting_max: 256,
            login_per_account: RateSettings::new(10, 5),
            login_per_address: RateSettings::new(60, 20),
            signup_per_address: RateSettings::new(20, 10),
            limiter_keys_max: 100_000,
        }
    }
}

/// Per-customer limits (`limits` section), enforced inside the seat
/// store's atomic hold step; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Seats per customer per event, over live holds (checkout included)
    /// and sold seats.
    pub seats_per_event: u32,
    /// Live holds per customer per event.
    pub active_holds: u32,
    /// Request rates per customer (by token) and per client address on
    /// `POST /api/reservations`, `…/extend` and `POST /api/orders`; 429
    /// `RATE_LIMITED` over them. Per address is off by default: every
    /// client of the embedded system, and every customer behind one NAT,
    /// shares an address.
    pub hold_per_customer: RateSettings,
    pub hold_per_address: RateSettings,
    pub extend_per_customer: RateSettings,
    pub extend_per_address: RateSettings,
    pub order_per_customer: RateSettings,
    pub order_per_address: RateSettings,
    /// Keys each rate limit remembers (see `users.limiter_keys_max`).
    pub limiter_keys_max: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            seats_per_event: 8,
            active_holds: 2,
            hold_per_customer: RateSettings::new(120, 60),
            hold_per_address: RateSettings::new(0, 1),
            extend_per_customer: RateSettings::new(30, 10),
            extend_per_address: RateSettings::new(0, 1),
            order_per_customer: RateSettings::new(60, 20),
            order_per_address: RateSettings::new(0, 1),
            limiter_keys_max: 100_000,
        }
    }
}

impl LimitsSettings {
    pub fn customer(&self) -> ticketing_domain::ports::CustomerLimits {
        ticketing_domain::ports::CustomerLimits {
            seats_per_event: self.seats_per_event,
            active_holds: self.active_holds,
        }
    }
}

/// Customer tokens (`auth` section): the key that signs and checks them,
/// their lifetime, and whether anonymous (contract v1) calls are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The HS256 secret (at least 32 bytes), the same for every service.
    /// Required by `ticketing serve --service`; the embedded demo uses a
    /// fixed, public one and says so in a warning.
    pub jwt_secret: Option<String>,
    /// Hold and order routes without a token: `None` takes the mode's
    /// default (the embedded demo: on; `serve --service`: off).
    pub anonymous: Option<bool>,
    /// How long a token from `POST /api/sessions` is valid.
    pub token_ttl_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            anonymous: None,
            token_ttl_s: 3_600,
        }
    }
}
