//! The `kafka` host: the in-memory event bus served over [`super::frame`],
//! with group members held broker-side (and dropped after a session
//! timeout), and [`RemoteEventBus`], the services' `EventBus` adapter.
//!
//! Layer: imports `frame`.

use super::frame::{KAFKA_PORT, call, serve};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::{BusError, Consumer, Delivery, EventBus, OutgoingMessage};
use ticketing_mem::MemEventBus;

#[derive(Debug, Serialize, Deserialize)]
enum BusCall {
    Publish(OutgoingMessage),
    Subscribe(String, String),
    Poll(u64, usize, u64),
    Commit(u64, Delivery),
    Rewind(u64),
}

#[derive(Debug, Serialize, Deserialize)]
enum BusReply {
    Published(u32, u64),
    Subscribed(u64),
    Batch(Vec<Delivery>),
    Unit,
}

/// A group member held by the broker host, with when it was last heard from.
struct Member {
    consumer: Option<Box<dyn Consumer>>,
    last_seen: tokio::time::Instant,
}

type Members = Arc<Mutex<BTreeMap<u64, Member>>>;

/// Longest a broker-side poll waits (the client's call timeout covers it).
const MAX_SERVER_WAIT_MS: u64 = 200;
/// A member not heard from for this long leaves its group (Kafka's session timeout).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Checks a member's consumer out of the map, runs `f` on it, checks it back in.
async fn with_member<R>(
    members: &Members,
    id: u64,
    f: impl AsyncFnOnce(&mut Box<dyn Consumer>) -> Result<R, BusError>,
) -> Result<R, BusError> {
    let taken = crate::lock(members)
        .get_mut(&id)
        .and_then(|m| m.consumer.take());
    let mut consumer =
        taken.ok_or_else(|| BusError::Unavailable("unknown member: re-join".into()))?;
    let r = f(&mut consumer).await;
    if let Some(member) = crate::lock(members).get_mut(&id) {
        member.consumer = Some(consumer);
    }
    r
}

async fn bus_dispatch(
    bus: &MemEventBus,
    members: &Members,
    ids: &AtomicU64,
    call: BusCall,
) -> Result<BusReply, BusError> {
    let unknown = || BusError::Unavailable("unknown member: re-join".into());
    match call {
        BusCall::Publish(m) => {
            let (p, o) = bus.publish(m).await?;
            Ok(BusReply::Published(p, o))
        }
        BusCall::Subscribe(topic, group) => {
            let consumer = bus.subscribe(&topic, &group).await?;
            let id = ids.fetch_add(1, Ordering::SeqCst) + 1;
            crate::lock(members).insert(
                id,
                Member {
                    consumer: Some(consumer),
                    last_seen: tokio::time::Instant::now(),
                },
            );
            Ok(BusReply::Subscribed(id))
        }
        BusCall::Poll(id, max, wait_ms) => {
            let taken = {
                let mut m = crate::lock(members);
                let member = m.get_mut(&id).ok_or_else(unknown)?;
                member.last_seen = tokio::time::Instant::now();
                member.consumer.take()
            };
            // Another poll of the same member is in flight: nothing for this one.
            let Some(mut consumer) = taken else {
                return Ok(BusReply::Batch(Vec::new()));
            };
            let r = consumer.poll(max, wait_ms.min(MAX_SERVER_WAIT_MS)).await;
            if let Some(member) = crate::lock(members).get_mut(&id) {
                member.consumer = Some(consumer);
                member.last_seen = tokio::time::Instant::now();
            }
            Ok(BusReply::Batch(r?))
        }
        BusCall::Commit(id, d) => with_member(members, id, async |c| c.commit(&d).await)
            .await
            .map(|_| BusReply::Unit),
        BusCall::Rewind(id) => with_member(members, id, async |c| c.rewind().await)
            .await
            .map(|_| BusReply::Unit),
    }
}

/// The `kafka` host's software: serves `bus` on [`KAFKA_PORT`]. `ids` lives
/// outside the host so member ids stay unique across broker restarts.
pub async fn serve_event_bus(bus: MemEventBus, ids: Arc<AtomicU64>) -> turmoil::Result {
    let members: Members = Arc::new(Mutex::new(BTreeMap::new()));
    let reaper = members.clone();
    tokio::task::spawn_local(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = tokio::time::Instant::now();
            // Dropping an expired member's consumer makes it leave its group.
            crate::lock(&reaper)
                .retain(|_, m| m.consumer.is_none() || now - m.last_seen < SESSION_TIMEOUT);
        }
    });
    serve(KAFKA_PORT, move |call: BusCall| {
        let (bus, members, ids) = (bus.clone(), members.clone(), ids.clone());
        async move { bus_dispatch(&bus, &members, &ids, call).await }
    })
    .await
}

/// The services' [`EventBus`] adapter in the simulator.
#[derive(Debug, Clone)]
pub struct RemoteEventBus {
    host: String,
    timeout: Duration,
}

impl RemoteEventBus {
    pub fn new(host: &str, timeout: Duration) -> Self {
        Self {
            host: host.to_owned(),
            timeout,
        }
    }

    async fn call(&self, c: BusCall, extra: Duration) -> Result<BusReply, BusError> {
        call::<_, Result<BusReply, BusError>>(&self.host, KAFKA_PORT, &c, self.timeout + extra)
            .await
            .map_err(BusError::Unavailable)?
    }
}

fn odd_bus<T>(r: BusReply) -> Result<T, BusError> {
    Err(BusError::Unavailable(format!("unexpected reply {r:?}")))
}

#[async_trait]
impl EventBus for RemoteEventBus {
    async fn publish(&self, msg: OutgoingMessage) -> Result<(u32, u64), BusError> {
        match self.call(BusCall::Publish(msg), Duration::ZERO).await? {
            BusReply::Published(p, o) => Ok((p, o)),
            r => odd_bus(r),
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        match self
            .call(
                BusCall::Subscribe(topic.into(), group.into()),
                Duration::ZERO,
            )
            .await?
        {
            BusReply::Subscribed(member) => Ok(Box::new(RemoteConsumer {
                bus: self.clone(),
                member,
            })),
            r => odd_bus(r),
        }
    }
}

/// A group member living on the broker host.
#[derive(Debug)]
pub struct RemoteConsumer {
    bus: RemoteEventBus,
    member: u64,
}

#[async_trait]
impl Consumer for RemoteConsumer {
    /// Waits up to `wait_ms` in broker-side polls of at most
    /// [`MAX_SERVER_WAIT_MS`] each (one call when `wait_ms` is no longer),
    /// returning as soon as one brings messages.
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        let mut batch = Vec::new();
        for _ in 0..wait_ms.div_ceil(MAX_SERVER_WAIT_MS).max(1) {
            let left_ms = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = (left_ms.as_millis() as u64).min(MAX_SERVER_WAIT_MS);
            let call = BusCall::Poll(self.member, max, wait);
            batch = match self.bus.call(call, Duration::from_millis(wait)).await? {
                BusReply::Batch(b) => b,
                r => return odd_bus(r),
            };
            if !batch.is_empty() || wait == 0 {
                break;
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, d: &Delivery) -> Result<(), BusError> {
        self.bus
            .call(BusCall::Commit(self.member, d.clone()), Duration::ZERO)
            .await
            .map(|_| ())
    }

    async fn rewind(&mut self) -> Result<(), BusError> {
        self.bus
            .call(BusCall::Rewind(self.member), Duration::ZERO)
            .await
            .map(|_| ())
    }
}
