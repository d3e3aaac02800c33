//! [`RedisQueueStore`]: the production [`QueueStore`] on Redis. Every
//! operation on a room is one call of `queue_store.lua` on the room's eight
//! keys, hash-tagged `{q:<event>}` (one Cluster slot per room). The set of
//! rooms (`queue_rooms`, for the admission worker) lives outside the slot
//! and is written by the adapter after the room's settings.

use crate::RedisSeatStoreConfig;
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;
use ticketing_domain::ports::{AdmitReport, Joined, Place, QueueError, QueueStore, RoomStats};
use ticketing_domain::queue::{FIFO_BASE, PlaceState, RoomConfig};
use ticketing_domain::{EventId, HoldId, QueueTicket, UnixMs, VisitorId};

/// The waiting-room script.
pub const QUEUE_SCRIPT: &str = include_str!("queue_store.lua");

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

#[derive(Debug, Deserialize)]
struct Reply<T> {
    ok: Option<T>,
    err: Option<String>,
}

fn n(map: &BTreeMap<String, String>, k: &str) -> u64 {
    map.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn room_of(m: &BTreeMap<String, String>) -> RoomConfig {
    RoomConfig {
        opens_at_ms: n(m, "opens"),
        on_sale_at_ms: n(m, "onsale"),
        active_max: u32::try_from(n(m, "amax")).unwrap_or(u32::MAX),
        admit_per_s: u32::try_from(n(m, "arate")).unwrap_or(u32::MAX),
        idle_ms: n(m, "idle"),
        abandon_ms: n(m, "abandon"),
        token_ttl_ms: n(m, "ttl"),
    }
}

/// `place`'s answer: `false` (no ticket) or the record.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PlaceReply {
    Found(BTreeMap<String, String>),
    Missing(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct StatsReply {
    room: BTreeMap<String, String>,
    waiting: String,
    active: String,
    total: String,
    window: String,
}

/// The Redis [`QueueStore`].
#[derive(Clone)]
pub struct RedisQueueStore {
    conn: ConnectionManager,
    script: redis::Script,
    config: RedisSeatStoreConfig,
}

impl std::fmt::Debug for RedisQueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisQueueStore {
    /// Connects (multiplexed, reconnecting) with the `redis` settings.
    pub async fn connect(config: RedisSeatStoreConfig) -> Result<Self, QueueError> {
        let conn = crate::connection(&config).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            script: redis::Script::new(QUEUE_SCRIPT),
            config,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms)
    }

    fn rooms_key(&self) -> String {
        format!("{}queue_rooms", self.config.key_prefix)
    }

    /// The script's ten keys for one room, in KEYS order.
    pub fn room_keys(&self, event_id: &EventId) -> [String; 10] {
        let base = format!("{}{{q:{}}}", self.config.key_prefix, event_id.as_str());
        [
            "room", "wait", "seen", "tk", "act", "vt", "hv", "vh", "ct", "tc",
        ]
        .map(|k| format!("{base}:{k}"))
    }

    async fn run<T: DeserializeOwned>(
        &self,
        event_id: &EventId,
        op: &str,
        now_ms: UnixMs,
        args: &[String],
    ) -> Result<T, QueueError> {
        let mut inv = self.script.prepare_invoke();
        for k in self.room_keys(event_id) {
            inv.key(k);
        }
        inv.arg(op).arg(now_ms.to_string());
        for a in args {
            inv.arg(a);
        }
        let mut conn = self.conn.clone();
        let text: String = tokio::time::timeout(self.timeout(), inv.invoke_async(&mut conn))
            .await
            .map_err(|_| unavailable("redis script timed out"))?
            .map_err(unavailable)?;
        let reply: Reply<T> = serde_json::from_str(&text)
            .map_err(|e| unavailable(format!("unreadable script answer ({e}): {text}")))?;
        match (reply.ok, reply.err.as_deref()) {
            (Some(v), None) => Ok(v),
            (_, Some("UnknownRoom")) => Err(QueueError::UnknownRoom),
            (_, Some("NotOpen")) => Err(QueueError::NotOpen),
            (_, Some("DuplicateTicket")) => Err(QueueError::DuplicateTicket),
            (_, other) => Err(unavailable(format!("unexpected script answer: {other:?}"))),
        }
    }
}

fn place_of(m: &BTreeMap<String, String>) -> Place {
    let state = match m.get("s").map(String::as_str) {
        Some("P") => PlaceState::Prequeue,
        Some("W") => PlaceState::Waiting {
            ahead: n(m, "ahead"),
        },
        Some("A") => PlaceState::Admitted {
            admitted_at_ms: n(m, "adm"),
            token_expires_at_ms: n(m, "exp"),
            slot_until_ms: n(m, "until"),
        },
        _ => PlaceState::Expired,
    };
    Place {
        visitor_id: VisitorId(m.get("v").cloned().unwrap_or_default()),
        customer_id: m.get("c").cloned(),
        state,
    }
}

/// `ticket|visitor|waited_ms;…` as (ticket, visitor) pairs and waits.
fn admitted_of(list: &str) -> (Vec<(QueueTicket, VisitorId)>, Vec<u64>) {
    list.split(';')
        .filter_map(|entry| {
            let mut parts = entry.split('|');
            let (t, v) = (parts.next()?, parts.next()?);
            let waited = parts.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            Some(((QueueTicket::from(t), VisitorId::from(v)), waited))
        })
        .unzip()
}

#[async_trait]
impl QueueStore for RedisQueueStore {
    async fn open_room(&self, event_id: &EventId, room: &RoomConfig) -> Result<(), QueueError> {
        let args = [
            room.opens_at_ms,
            room.on_sale_at_ms,
            u64::from(room.active_max),
            u64::from(room.admit_per_s),
            room.idle_ms,
            room.abandon_ms,
            room.token_ttl_ms,
        ]
        .map(|v| v.to_string());
        let _: bool = self.run(event_id, "open", 0, &args).await?;
        let mut cmd = redis::cmd("SADD");
        cmd.arg(self.rooms_key()).arg(event_id.as_str());
        let mut conn = self.conn.clone();
        let _: i64 = tokio::time::timeout(self.timeout(), cmd.query_async(&mut conn))
            .await
            .map_err(|_| unavailable("redis call timed out"))?
            .map_err(unavailable)?;
        Ok(())
    }

    async fn room(&self, event_id: &EventId) -> Result<Option<RoomConfig>, QueueError> {
        match self
            .run::<BTreeMap<String, String>>(event_id, "get", 0, &[])
            .await
        {
            Ok(m) => Ok(Some(room_of(&m))),
            Err(QueueError::UnknownRoom) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_caps(
        &self,
        event_id: &EventId,
        active_max: u32,
        admit_per_s: u32,
    ) -> Result<RoomConfig, QueueError> {
        let args = [active_max.to_string(), admit_per_s.to_string()];
        let m: BTreeMap<String, String> = self.run(event_id, "caps", 0, &args).await?;
        Ok(room_of(&m))
    }

    async fn join(
        &self,
        event_id: &EventId,
        ticket: &QueueTicket,
        visitor_id: &VisitorId,
        customer_id: Option<&str>,
        shuffle_key: u64,
        now_ms: UnixMs,
    ) -> Result<Joined, QueueError> {
        let args = [
            ticket.to_string(),
            visitor_id.to_string(),
            (shuffle_key % FIFO_BASE).to_string(),
            customer_id.unwrap_or_default().to_owned(),
        ];
        let m: BTreeMap<String, String> = self.run(event_id, "join", now_ms, &args).await?;
        let text = |k: &str| m.get(k).cloned().unwrap_or_default();
        Ok(Joined {
            ticket: QueueTicket(text("t")),
            visitor_id: VisitorId(text("v")),
            rejoined: text("r") == "1",
        })
    }

    async fn place(
        &self,
        event_id: &EventId,
        ticket: &QueueTicket,
        now_ms: UnixMs,
    ) -> Result<Option<Place>, QueueError> {
        let reply: PlaceReply = self
            .run(event_id, "place", now_ms, &[ticket.to_string()])
            .await?;
        Ok(match reply {
            PlaceReply::Missing(_) => None,
            PlaceReply::Found(m) => Some(place_of(&m)),
        })
    }

    async fn admit(&self, event_id: &EventId, now_ms: UnixMs) -> Result<AdmitReport, QueueError> {
        let m: BTreeMap<String, String> = self.run(event_id, "admit", now_ms, &[]).await?;
        let (admitted, waited_ms) = admitted_of(m.get("admitted").map_or("", String::as_str));
        Ok(AdmitReport {
            admitted,
            waited_ms,
            expired: n(&m, "expired"),
            abandoned: n(&m, "abandoned"),
            waiting: n(&m, "waiting"),
            active: n(&m, "active"),
        })
    }

    async fn touch(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        now_ms: UnixMs,
    ) -> Result<bool, QueueError> {
        self.run(event_id, "touch", now_ms, &[visitor_id.to_string()])
            .await
    }

    async fn leave(&self, event_id: &EventId, visitor_id: &VisitorId) -> Result<(), QueueError> {
        let _: bool = self
            .run(event_id, "leave", 0, &[visitor_id.to_string()])
            .await?;
        Ok(())
    }

    async fn bind_hold(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        hold_id: &HoldId,
    ) -> Result<(), QueueError> {
        let args = [visitor_id.to_string(), hold_id.to_string()];
        let _: bool = self.run(event_id, "bind", 0, &args).await?;
        Ok(())
    }

    async fn bought(&self, event_id: &EventId, hold_id: &HoldId) -> Result<(), QueueError> {
        let _: bool = self
            .run(event_id, "bought", 0, &[hold_id.to_string()])
            .await?;
        Ok(())
    }

    async fn stats(&self, event_id: &EventId, now_ms: UnixMs) -> Result<RoomStats, QueueError> {
        let s: StatsReply = self.run(event_id, "stats", now_ms, &[]).await?;
        let num = |v: &str| v.parse().unwrap_or(0);
        Ok(RoomStats {
            room: room_of(&s.room),
            waiting: num(&s.waiting),
            active: num(&s.active),
            admitted_total: num(&s.total),
            admitted_in_window: num(&s.window),
        })
    }

    async fn rooms(&self) -> Result<Vec<EventId>, QueueError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.rooms_key());
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = tokio::time::timeout(self.timeout(), cmd.query_async(&mut conn))
            .await
            .map_err(|_| unavailable("redis call timed out"))?
            .map_err(unavailable)?;
        ids.sort();
        Ok(ids.into_iter().map(EventId).collect())
    }
}
