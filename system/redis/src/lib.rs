//! # ticketing-redis
//!
//! [`RedisSeatStore`]: the production [`SeatStore`] on Redis; and
//! [`RedisQueueStore`], the waiting room's store (`queue.rs`,
//! `queue_store.lua`), on the same Redis and the same pattern.
//!
//! Every operation on an event is **one Lua script** (`seat_store.lua`),
//! so holds, the fenced confirm, expiry and the change log are atomic
//! without any read-then-write from the client. The script is sent once and
//! then called by SHA (`EVALSHA`; `redis::Script` reloads it on `NOSCRIPT`,
//! e.g. after a Redis restart).
//!
//! Keys of one event share the hash tag `{ev:<event>}`, so each script
//! touches one Cluster slot. Two things live outside an event's slot and
//! are written by the adapter, not the script:
//!
//! - `events`: the set of event ids, which the sweeper walks (no `KEYS`).
//! - `{hold:<id>}` → event id: the hold index. Callers name a hold by id
//!   only; the index says which event's script to run. It is written right
//!   after the hold script succeeds and is immutable, so reading it first is
//!   race-free; a stale or missing index only ever yields "hold not found".
//!   The sweeper drops it when the hold's tombstone is forgotten.
//!
//! Every call has a timeout; the multiplexed `ConnectionManager` reconnects
//! by itself. A timeout or transport error is [`SeatStoreError::Unavailable`]
//! (outcome unknown, retryable) — callers already treat it that way.

mod queue;
pub use queue::{QUEUE_SCRIPT, RedisQueueStore};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use ticketing_domain::ports::{
    ChangesSince, ConfirmOutcome, GoneReason, HoldRequest, LimitKind, Releaser, SeatStore,
    SeatStoreError,
};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{
    Cents, EventId, Hold, HoldId, OrderId, SeatChange, SeatId, SeatMap, SeatStatus, UnixMs,
};

/// The seat store script (benchmarks run it through `redis-benchmark` too).
pub const SCRIPT: &str = include_str!("seat_store.lua");

/// Seats registered per script when an event is created.
const CREATE_CHUNK_SEATS: usize = 5_000;

/// Largest integer a Lua number (a double) holds exactly.
const LUA_INT_MAX: u64 = (1 << 53) - 1;

/// Where a [`RedisSeatStore`] finds Redis, how it names its keys and bounds
/// its work: the `redis` section of the settings (`url`, `key_prefix`,
/// `call_timeout_ms`). The two seat-store limits are not keys of their own:
/// whoever assembles the store sets them from `catalog.history_limit` and
/// `hold.tombstone_seconds`, which the in-memory store reads too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSeatStoreConfig {
    /// `redis://host:port/`.
    pub url: String,
    /// Prepended to every key: several stores (tests, tenants) share one Redis.
    pub key_prefix: String,
    /// Changes kept per event for SSE resume.
    #[serde(skip)]
    pub history_limit: usize,
    /// How long a gone hold answers "gone" (410) rather than "not found".
    #[serde(skip)]
    pub tombstone_ms: u64,
    /// Upper bound on every Redis call, reconnects included.
    pub call_timeout_ms: u64,
}

impl Default for RedisSeatStoreConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/".into(),
            key_prefix: "ticketing:".into(),
            history_limit: 1024,
            tombstone_ms: 3_600_000,
            call_timeout_ms: 2_000,
        }
    }
}

/// The Redis [`SeatStore`].
#[derive(Clone)]
pub struct RedisSeatStore {
    conn: ConnectionManager,
    script: redis::Script,
    config: RedisSeatStoreConfig,
}

impl std::fmt::Debug for RedisSeatStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSeatStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> SeatStoreError {
    SeatStoreError::Unavailable(e.to_string())
}

/// What the script answers: `{"ok": ...}` or `{"err": "Code", "seats": [...]}`.
#[derive(Debug, Deserialize)]
struct Reply<T> {
    ok: Option<T>,
    err: Option<String>,
    #[serde(default, deserialize_with = "list")]
    seats: Vec<String>,
    /// `CustomerLimit`: which limit, the customer's count and the bound.
    kind: Option<String>,
    count: Option<String>,
    limit: Option<String>,
    /// `HoldGone`: why (`expired`, `released`, `confirmed`), the order, whose.
    gone: Option<String>,
    order: Option<String>,
    customer: Option<String>,
}

/// The script's `CustomerLimit` answer as the domain's error.
fn customer_limit(
    kind: &Option<String>,
    count: &Option<String>,
    limit: &Option<String>,
) -> SeatStoreError {
    let num = |v: &Option<String>| v.as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
    let kind = match kind.as_deref() {
        Some("ActiveHolds") => LimitKind::ActiveHolds,
        _ => LimitKind::SeatsPerEvent,
    };
    SeatStoreError::CustomerLimit {
        kind,
        count: num(count),
        limit: num(limit),
    }
}

/// cjson encodes an empty Lua table as `{}`: accept it as an empty list.
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty {},
    }
    Ok(match ListOrEmpty::deserialize(d)? {
        ListOrEmpty::List(v) => v,
        ListOrEmpty::Empty {} => Vec::new(),
    })
}

/// Integers travel as text (Lua numbers are doubles).
fn num<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

#[derive(Debug, Deserialize)]
struct HoldJson {
    hold_id: String,
    #[serde(deserialize_with = "list")]
    seats: Vec<String>,
    #[serde(deserialize_with = "num")]
    amount: Cents,
    #[serde(deserialize_with = "num")]
    created: u64,
    #[serde(deserialize_with = "num")]
    expires: u64,
    pinned: Option<String>,
    customer: Option<String>,
}

impl HoldJson {
    fn into_hold(self, event_id: &EventId) -> Hold {
        Hold {
            hold_id: HoldId(self.hold_id),
            event_id: event_id.clone(),
            seat_ids: self.seats.into_iter().map(SeatId).collect(),
            amount_cents: self.amount,
            created_at_ms: self.created,
            expires_at_ms: self.expires,
            pinned_order: self.pinned.map(OrderId),
            customer_id: self.customer,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmJson {
    #[serde(default, deserialize_with = "list")]
    confirmed: Vec<String>,
    rejected: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReturnJson {
    #[serde(deserialize_with = "list")]
    returned: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SweepJson {
    #[serde(deserialize_with = "num")]
    expired: u64,
    #[serde(deserialize_with = "list")]
    forgotten: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct MapJson {
    #[serde(deserialize_with = "num")]
    version: u64,
    #[serde(deserialize_with = "list")]
    state: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AvailJson {
    #[serde(deserialize_with = "num")]
    version: u64,
    #[serde(deserialize_with = "num")]
    avail: u64,
}

#[derive(Debug, Deserialize)]
struct SinceJson {
    #[serde(deserialize_with = "num")]
    version: u64,
    #[serde(deserialize_with = "num")]
    oldest: u64,
    #[serde(deserialize_with = "list")]
    hist: Vec<String>,
}

fn status_of(code: &str) -> SeatStatus {
    match code {
        "H" => SeatStatus::Held,
        "S" => SeatStatus::Sold,
        _ => SeatStatus::Available,
    }
}

fn reason(code: &str) -> FailureReason {
    match code {
        "HoldExpired" => FailureReason::HoldExpired,
        "HoldNotPinned" => FailureReason::HoldNotPinned,
        _ => FailureReason::HoldReleased,
    }
}

fn clamp(n: u64) -> String {
    n.min(LUA_INT_MAX).to_string()
}

/// A multiplexed, reconnecting connection to `config.url`, every call and
/// reconnect bounded by `call_timeout_ms`; fails unless the server answers
/// within that time. Both stores of this crate connect through it.
pub(crate) async fn connection(config: &RedisSeatStoreConfig) -> Result<ConnectionManager, String> {
    let timeout = Duration::from_millis(config.call_timeout_ms);
    let client = redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    tokio::time::timeout(
        timeout,
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(|_| format!("no answer from {} within {timeout:?}", config.url))?
    .map_err(|e| e.to_string())
}

impl RedisSeatStore {
    /// Connects (multiplexed, reconnecting) and checks the server answers.
    pub async fn connect(config: RedisSeatStoreConfig) -> Result<Self, SeatStoreError> {
        let conn = connection(&config).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            script: redis::Script::new(SCRIPT),
            config,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms)
    }

    fn events_key(&self) -> String {
        format!("{}events", self.config.key_prefix)
    }

    fn index_key(&self, hold_id: &HoldId) -> String {
        format!("{}{{hold:{}}}", self.config.key_prefix, hold_id.as_str())
    }

    /// The script's nine keys for one event, in KEYS order.
    pub fn event_keys(&self, event_id: &EventId) -> [String; 9] {
        let base = format!("{}{{ev:{}}}", self.config.key_prefix, event_id.as_str());
        [
            "meta", "state", "price", "hist", "exp", "holds", "tombs", "tombz", "cust",
        ]
        .map(|k| format!("{base}:{k}"))
    }

    /// Runs one command with the call timeout.
    async fn cmd<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, SeatStoreError> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.timeout(), cmd.query_async(&mut conn))
            .await
            .map_err(|_| unavailable("redis call timed out"))?
            .map_err(unavailable)
    }

    /// Runs the script's `op` on one event and decodes its JSON answer.
    async fn run<T: DeserializeOwned>(
        &self,
        event_id: &EventId,
        op: &str,
        now_ms: UnixMs,
        args: &[String],
    ) -> Result<Reply<T>, SeatStoreError> {
        let mut inv = self.script.prepare_invoke();
        for k in self.event_keys(event_id) {
            inv.key(k);
        }
        inv.arg(op)
            .arg(clamp(now_ms))
            .arg(self.config.history_limit.max(1));
        for a in args {
            inv.arg(a);
        }
        let mut conn = self.conn.clone();
        let text: String = tokio::time::timeout(self.timeout(), inv.invoke_async(&mut conn))
            .await
            .map_err(|_| unavailable("redis script timed out"))?
            .map_err(unavailable)?;
        serde_json::from_str(&text)
            .map_err(|e| unavailable(format!("unreadable script answer ({e}): {text}")))
    }

    /// The answer, or the domain error the script named.
    fn ok<T>(reply: Reply<T>) -> Result<T, SeatStoreError> {
        match (reply.ok, reply.err.as_deref()) {
            (Some(v), None) => Ok(v),
            (_, Some("UnknownEvent")) => Err(SeatStoreError::UnknownEvent),
            (_, Some("UnknownSeats")) => Err(SeatStoreError::UnknownSeats(
                reply.seats.into_iter().map(SeatId).collect(),
            )),
            (_, Some("SeatsUnavailable")) => Err(SeatStoreError::SeatsUnavailable(
                reply.seats.into_iter().map(SeatId).collect(),
            )),
            (_, Some("HoldNotFound")) => Err(SeatStoreError::HoldNotFound),
            (_, Some("HoldGone")) => Err(SeatStoreError::HoldGone {
                reason: match (reply.gone.as_deref(), reply.order) {
                    (Some("confirmed"), Some(order)) => GoneReason::Ordered(OrderId(order)),
                    (Some("released"), _) => GoneReason::Released,
                    _ => GoneReason::Expired,
                },
                customer_id: reply.customer,
            }),
            (_, Some("HoldPinned")) => Err(SeatStoreError::HoldPinned),
            (_, Some("ExtensionLimit")) => Err(SeatStoreError::ExtensionLimit),
            (_, Some("DuplicateHoldId")) => Err(SeatStoreError::DuplicateHoldId),
            (_, Some("CustomerLimit")) => {
                Err(customer_limit(&reply.kind, &reply.count, &reply.limit))
            }
            (_, other) => Err(unavailable(format!("unexpected script answer: {other:?}"))),
        }
    }

    /// Which event a hold belongs to (the hold index), if any.
    async fn event_of(&self, hold_id: &HoldId) -> Result<Option<EventId>, SeatStoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.index_key(hold_id));
        Ok(self.cmd::<Option<String>>(cmd).await?.map(EventId))
    }

    async fn hold_op(
        &self,
        hold_id: &HoldId,
        op: &str,
        now_ms: UnixMs,
        args: &[String],
    ) -> Result<Hold, SeatStoreError> {
        let event_id = self
            .event_of(hold_id)
            .await?
            .ok_or(SeatStoreError::HoldNotFound)?;
        let mut all = vec![hold_id.as_str().to_owned()];
        all.extend_from_slice(args);
        let hold: HoldJson = Self::ok(self.run(&event_id, op, now_ms, &all).await?)?;
        Ok(hold.into_hold(&event_id))
    }

    /// Every registered event, sorted (the sweeper's walk order).
    async fn event_ids(&self) -> Result<Vec<EventId>, SeatStoreError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.events_key());
        let mut ids: Vec<String> = self.cmd(cmd).await?;
        ids.sort();
        Ok(ids.into_iter().map(EventId).collect())
    }
}

#[async_trait]
impl SeatStore for RedisSeatStore {
    async fn create_event(
        &self,
        event_id: &EventId,
        seats: &[(SeatId, Cents)],
    ) -> Result<(), SeatStoreError> {
        // Staged in chunks (each a short script, so Redis keeps serving
        // others), then activated atomically; see `stage` in the script.
        for chunk in seats.chunks(CREATE_CHUNK_SEATS) {
            let list: Vec<(&str, String)> = chunk
                .iter()
                .map(|(s, p)| (s.as_str(), p.to_string()))
                .collect();
            let json = serde_json::to_string(&list).map_err(unavailable)?;
            if Self::ok(self.run::<String>(event_id, "stage", 0, &[json]).await?)? == "exists" {
                break;
            }
        }
        Self::ok(self.run::<String>(event_id, "activate", 0, &[]).await?)?;
        // After the seats exist, so the sweeper never sees a half-made event.
        let mut cmd = redis::cmd("SADD");
        cmd.arg(self.events_key()).arg(event_id.as_str());
        self.cmd::<i64>(cmd).await?;
        Ok(())
    }

    async fn hold(&self, req: HoldRequest, now_ms: UnixMs) -> Result<Hold, SeatStoreError> {
        let seats = serde_json::to_string(&req.seat_ids).map_err(unavailable)?;
        let customer = serde_json::to_string(&req.customer_id).map_err(unavailable)?;
        let args = [
            req.hold_id.as_str().to_owned(),
            clamp(req.ttl_ms),
            seats,
            customer,
            req.limits.seats_per_event.to_string(),
            req.limits.active_holds.to_string(),
        ];
        let hold: HoldJson = Self::ok(self.run(&req.event_id, "hold", now_ms, &args).await?)?;
        let hold = hold.into_hold(&req.event_id);
        // Publish the index. NX: a hold id already used by another event
        // (ids are 128 random bits, so this is a bug) must not be re-pointed.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.index_key(&req.hold_id))
            .arg(req.event_id.as_str())
            .arg("NX");
        let set: Option<String> = self.cmd(cmd).await?;
        if set.is_none() {
            let release = [hold.hold_id.as_str().to_owned(), String::new()];
            let undo = self.run::<String>(&req.event_id, "release", now_ms, &release);
            Self::ok(undo.await?)?;
            return Err(SeatStoreError::DuplicateHoldId);
        }
        Ok(hold)
    }

    async fn get_hold(&self, hold_id: &HoldId, now_ms: UnixMs) -> Result<Hold, SeatStoreError> {
        self.hold_op(hold_id, "get", now_ms, &[]).await
    }

    async fn extend(
        &self,
        hold_id: &HoldId,
        hold_ms: u64,
        max_lifetime_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        let args = [clamp(hold_ms), clamp(max_lifetime_ms)];
        self.hold_op(hold_id, "extend", now_ms, &args).await
    }

    async fn release(
        &self,
        hold_id: &HoldId,
        by: Releaser,
        now_ms: UnixMs,
    ) -> Result<(), SeatStoreError> {
        let Some(event_id) = self.event_of(hold_id).await? else {
            return match by {
                Releaser::Holder => Err(SeatStoreError::HoldNotFound),
                Releaser::Order(_) => Ok(()),
            };
        };
        let order = match by {
            Releaser::Holder => String::new(),
            Releaser::Order(o) => o.0,
        };
        let args = [hold_id.as_str().to_owned(), order];
        Self::ok(
            self.run::<String>(&event_id, "release", now_ms, &args)
                .await?,
        )?;
        Ok(())
    }

    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        checkout_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        let args = [order_id.as_str().to_owned(), clamp(checkout_ms)];
        self.hold_op(hold_id, "pin", now_ms, &args).await
    }

    async fn confirm(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        traceparent: Option<&str>,
        now_ms: UnixMs,
    ) -> Result<ConfirmOutcome, SeatStoreError> {
        let Some(event_id) = self.event_of(hold_id).await? else {
            return Ok(ConfirmOutcome::Rejected(FailureReason::HoldReleased));
        };
        // Kept on the change records after '@'; never contains '|' or '@'.
        let traceparent = traceparent
            .filter(|tp| tp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or_default();
        let args = [
            hold_id.as_str().to_owned(),
            order_id.as_str().to_owned(),
            traceparent.to_owned(),
        ];
        let c: ConfirmJson = Self::ok(self.run(&event_id, "confirm", now_ms, &args).await?)?;
        Ok(match c.rejected {
            Some(r) => ConfirmOutcome::Rejected(reason(&r)),
            None => ConfirmOutcome::Confirmed {
                event_id,
                seat_ids: c.confirmed.into_iter().map(SeatId).collect(),
            },
        })
    }

    async fn return_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        order_id: &OrderId,
        customer_id: Option<&str>,
        now_ms: UnixMs,
    ) -> Result<Vec<SeatId>, SeatStoreError> {
        let seats: Vec<&str> = seat_ids.iter().map(SeatId::as_str).collect();
        let args = [
            order_id.as_str().to_owned(),
            serde_json::to_string(&seats).map_err(unavailable)?,
            serde_json::to_string(&customer_id).map_err(unavailable)?,
        ];
        let r: ReturnJson = Self::ok(self.run(event_id, "return", now_ms, &args).await?)?;
        Ok(r.returned.into_iter().map(SeatId).collect())
    }

    async fn expire_due(&self, now_ms: UnixMs, limit: usize) -> Result<usize, SeatStoreError> {
        let mut expired = 0usize;
        for event_id in self.event_ids().await? {
            let left = limit.saturating_sub(expired);
            let args = [left.to_string(), clamp(self.config.tombstone_ms)];
            let sweep: SweepJson = Self::ok(self.run(&event_id, "sweep", now_ms, &args).await?)?;
            expired += usize::try_from(sweep.expired).unwrap_or(usize::MAX);
            if !sweep.forgotten.is_empty() {
                let mut del = redis::cmd("DEL");
                for hold in &sweep.forgotten {
                    del.arg(self.index_key(&HoldId(hold.clone())));
                }
                self.cmd::<i64>(del).await?;
            }
        }
        Ok(expired)
    }

    async fn seat_map(&self, event_id: &EventId) -> Result<SeatMap, SeatStoreError> {
        let m: MapJson = Self::ok(self.run(event_id, "map", 0, &[]).await?)?;
        let mut seats: Vec<(SeatId, SeatStatus)> = m
            .state
            .chunks_exact(2)
            .map(|kv| {
                (
                    SeatId(kv[0].clone()),
                    status_of(kv[1].get(..1).unwrap_or_default()),
                )
            })
            .collect();
        seats.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(SeatMap {
            version: m.version,
            seats,
        })
    }

    async fn availability(&self, event_id: &EventId) -> Result<(u64, usize), SeatStoreError> {
        let a: AvailJson = Self::ok(self.run(event_id, "avail", 0, &[]).await?)?;
        Ok((a.version, usize::try_from(a.avail).unwrap_or(usize::MAX)))
    }

    async fn changes_since(
        &self,
        event_id: &EventId,
        version: u64,
        limit: usize,
    ) -> Result<ChangesSince, SeatStoreError> {
        let args = [clamp(version), limit.min(1 << 20).to_string()];
        let s: SinceJson = Self::ok(self.run(event_id, "since", 0, &args).await?)?;
        if version > s.version || version + 1 < s.oldest {
            return Ok(ChangesSince::TooOld);
        }
        let mut changes = Vec::with_capacity(s.hist.len());
        for entry in &s.hist {
            let mut parts = entry.splitn(3, '|');
            let (Some(v), Some(st), Some(seat)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(unavailable(format!("malformed change record {entry:?}")));
            };
            let v: u64 = v
                .parse()
                .map_err(|_| unavailable(format!("malformed change version {entry:?}")))?;
            // "S@<traceparent>" when the confirm was traced.
            let (st, traceparent) = match st.split_once('@') {
                Some((st, tp)) => (st, Some(tp.to_owned())),
                None => (st, None),
            };
            changes.push(SeatChange {
                version: v,
                seat_id: SeatId(seat.to_owned()),
                status: status_of(st),
                traceparent,
            });
        }
        Ok(ChangesSince::Changes(changes))
    }

    async fn sold_seats(
        &self,
        event_id: &EventId,
    ) -> Result<Vec<(SeatId, OrderId)>, SeatStoreError> {
        let m: MapJson = Self::ok(self.run(event_id, "map", 0, &[]).await?)?;
        let mut sold: Vec<(SeatId, OrderId)> = m
            .state
            .chunks_exact(2)
            .filter_map(|kv| {
                kv[1]
                    .strip_prefix("S:")
                    .map(|o| (SeatId(kv[0].clone()), OrderId(o.to_owned())))
            })
            .collect();
        sold.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(sold)
    }
}
