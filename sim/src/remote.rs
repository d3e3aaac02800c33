//! Redis and Kafka as turmoil hosts: a tiny request/response protocol
//! (a 4-byte length and a JSON body, one request per connection) serving the
//! in-memory seat store and event bus over the simulated network, and the
//! client adapters the services use to reach them.
//!
//! One connection per call keeps reconnecting trivial: a partition or a
//! crash fails the call (after its timeout) and the next call dials again —
//! turmoil's TCP does not retransmit, so nothing here waits without a bound.
//!
//! Persistence model: the state objects live outside the host closures, so
//! a crashed and restarted `redis` keeps its data (Redis with AOF
//! `appendfsync always`) and a restarted `kafka` keeps every acknowledged
//! message and committed offset (Kafka with acks=all). Consumer group
//! membership does not survive: members re-join, as after a broker restart.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::{
    BusError, ChangesSince, ConfirmOutcome, Consumer, Delivery, EventBus, HoldRequest,
    OutgoingMessage, Releaser, SeatStore, SeatStoreError,
};
use ticketing_domain::{Cents, EventId, Hold, HoldId, OrderId, SeatId, SeatMap, UnixMs};
use ticketing_mem::MemEventBus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

pub const REDIS_PORT: u16 = 6379;
pub const KAFKA_PORT: u16 = 9092;
/// Largest frame accepted (a seat map of a big event fits easily).
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

async fn write_frame<T: Serialize>(s: &mut TcpStream, v: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    s.write_u32(body.len() as u32).await?;
    s.write_all(&body).await?;
    s.flush().await
}

async fn read_frame<T: DeserializeOwned>(s: &mut TcpStream) -> std::io::Result<T> {
    let len = s.read_u32().await? as usize;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes refused"
        )));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// One call: dial, send, read the answer — all within `timeout`.
async fn call<Req: Serialize, Resp: DeserializeOwned>(
    host: &str,
    port: u16,
    req: &Req,
    timeout: Duration,
) -> Result<Resp, String> {
    let work = async {
        let mut s = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        write_frame(&mut s, req).await.map_err(|e| e.to_string())?;
        read_frame::<Resp>(&mut s).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("{host} timed out after {} ms", timeout.as_millis())),
    }
}

/// Serves each connection's single request with `handle`, until the host dies.
async fn serve<Req, Resp, F, Fut>(port: u16, handle: F) -> turmoil::Result
where
    Req: DeserializeOwned + 'static,
    Resp: Serialize + 'static,
    F: Fn(Req) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Resp> + 'static,
{
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut s, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            if let Ok(req) = read_frame::<Req>(&mut s).await {
                let resp = handle(req).await;
                let _ = write_frame(&mut s, &resp).await;
            }
        });
    }
}

// ---------------------------------------------------------------- seat store

#[derive(Debug, Serialize, Deserialize)]
enum SeatCall {
    CreateEvent(EventId, Vec<(SeatId, Cents)>),
    Hold(HoldRequest, UnixMs),
    GetHold(HoldId, UnixMs),
    Extend(HoldId, u64, u64, UnixMs),
    Release(HoldId, Releaser, UnixMs),
    Pin(HoldId, OrderId, u64, UnixMs),
    Confirm(HoldId, OrderId, Option<String>, UnixMs),
    ExpireDue(UnixMs, usize),
    SeatMap(EventId),
    Availability(EventId),
    ChangesSince(EventId, u64, usize),
    SoldSeats(EventId),
}

#[derive(Debug, Serialize, Deserialize)]
enum SeatReply {
    Unit,
    Hold(Hold),
    Confirm(ConfirmOutcome),
    Count(usize),
    Map(SeatMap),
    Availability(u64, usize),
    Changes(ChangesSince),
    Sold(Vec<(SeatId, OrderId)>),
}

async fn seat_dispatch(store: &dyn SeatStore, call: SeatCall) -> Result<SeatReply, SeatStoreError> {
    use SeatCall as C;
    Ok(match call {
        C::CreateEvent(e, seats) => store
            .create_event(&e, &seats)
            .await
            .map(|_| SeatReply::Unit)?,
        C::Hold(req, now) => SeatReply::Hold(store.hold(req, now).await?),
        C::GetHold(h, now) => SeatReply::Hold(store.get_hold(&h, now).await?),
        C::Extend(h, ms, max, now) => SeatReply::Hold(store.extend(&h, ms, max, now).await?),
        C::Release(h, by, now) => store.release(&h, by, now).await.map(|_| SeatReply::Unit)?,
        C::Pin(h, o, ms, now) => SeatReply::Hold(store.pin(&h, &o, ms, now).await?),
        C::Confirm(h, o, tp, now) => {
            SeatReply::Confirm(store.confirm(&h, &o, tp.as_deref(), now).await?)
        }
        C::ExpireDue(now, limit) => SeatReply::Count(store.expire_due(now, limit).await?),
        C::SeatMap(e) => SeatReply::Map(store.seat_map(&e).await?),
        C::Availability(e) => {
            let (v, n) = store.availability(&e).await?;
            SeatReply::Availability(v, n)
        }
        C::ChangesSince(e, v, limit) => {
            SeatReply::Changes(store.changes_since(&e, v, limit).await?)
        }
        C::SoldSeats(e) => SeatReply::Sold(store.sold_seats(&e).await?),
    })
}

/// The `redis` host's software: serves `store` on [`REDIS_PORT`].
pub async fn serve_seat_store(store: Arc<dyn SeatStore>) -> turmoil::Result {
    serve(REDIS_PORT, move |call: SeatCall| {
        let store = store.clone();
        async move { seat_dispatch(store.as_ref(), call).await }
    })
    .await
}

/// The services' [`SeatStore`] adapter in the simulator.
#[derive(Debug, Clone)]
pub struct RemoteSeatStore {
    host: String,
    timeout: Duration,
}

impl RemoteSeatStore {
    pub fn new(host: &str, timeout: Duration) -> Self {
        Self {
            host: host.to_owned(),
            timeout,
        }
    }

    async fn call(&self, c: SeatCall) -> Result<SeatReply, SeatStoreError> {
        call::<_, Result<SeatReply, SeatStoreError>>(&self.host, REDIS_PORT, &c, self.timeout)
            .await
            .map_err(SeatStoreError::Unavailable)?
    }
}

fn odd<T>(r: SeatReply) -> Result<T, SeatStoreError> {
    Err(SeatStoreError::Unavailable(format!(
        "unexpected reply {r:?}"
    )))
}

#[async_trait]
impl SeatStore for RemoteSeatStore {
    async fn create_event(
        &self,
        e: &EventId,
        seats: &[(SeatId, Cents)],
    ) -> Result<(), SeatStoreError> {
        self.call(SeatCall::CreateEvent(e.clone(), seats.to_vec()))
            .await
            .map(|_| ())
    }
    async fn hold(&self, req: HoldRequest, now: UnixMs) -> Result<Hold, SeatStoreError> {
        match self.call(SeatCall::Hold(req, now)).await? {
            SeatReply::Hold(h) => Ok(h),
            r => odd(r),
        }
    }
    async fn get_hold(&self, h: &HoldId, now: UnixMs) -> Result<Hold, SeatStoreError> {
        match self.call(SeatCall::GetHold(h.clone(), now)).await? {
            SeatReply::Hold(h) => Ok(h),
            r => odd(r),
        }
    }
    async fn extend(
        &self,
        h: &HoldId,
        ms: u64,
        max: u64,
        now: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        match self.call(SeatCall::Extend(h.clone(), ms, max, now)).await? {
            SeatReply::Hold(h) => Ok(h),
            r => odd(r),
        }
    }
    async fn release(&self, h: &HoldId, by: Releaser, now: UnixMs) -> Result<(), SeatStoreError> {
        self.call(SeatCall::Release(h.clone(), by, now))
            .await
            .map(|_| ())
    }
    async fn pin(
        &self,
        h: &HoldId,
        o: &OrderId,
        ms: u64,
        now: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        match self
            .call(SeatCall::Pin(h.clone(), o.clone(), ms, now))
            .await?
        {
            SeatReply::Hold(h) => Ok(h),
            r => odd(r),
        }
    }
    async fn confirm(
        &self,
        h: &HoldId,
        o: &OrderId,
        tp: Option<&str>,
        now: UnixMs,
    ) -> Result<ConfirmOutcome, SeatStoreError> {
        match self
            .call(SeatCall::Confirm(
                h.clone(),
                o.clone(),
                tp.map(str::to_owned),
                now,
            ))
            .await?
        {
            SeatReply::Confirm(c) => Ok(c),
            r => odd(r),
        }
    }
    async fn expire_due(&self, now: UnixMs, limit: usize) -> Result<usize, SeatStoreError> {
        match self.call(SeatCall::ExpireDue(now, limit)).await? {
            SeatReply::Count(n) => Ok(n),
            r => odd(r),
        }
    }
    async fn seat_map(&self, e: &EventId) -> Result<SeatMap, SeatStoreError> {
        match self.call(SeatCall::SeatMap(e.clone())).await? {
            SeatReply::Map(m) => Ok(m),
            r => odd(r),
        }
    }
    async fn availability(&self, e: &EventId) -> Result<(u64, usize), SeatStoreError> {
        match self.call(SeatCall::Availability(e.clone())).await? {
            SeatReply::Availability(v, n) => Ok((v, n)),
            r => odd(r),
        }
    }
    async fn changes_since(
        &self,
        e: &EventId,
        v: u64,
        limit: usize,
    ) -> Result<ChangesSince, SeatStoreError> {
        match self
            .call(SeatCall::ChangesSince(e.clone(), v, limit))
            .await?
        {
            SeatReply::Changes(c) => Ok(c),
            r => odd(r),
        }
    }
    async fn sold_seats(&self, e: &EventId) -> Result<Vec<(SeatId, OrderId)>, SeatStoreError> {
        match self.call(SeatCall::SoldSeats(e.clone())).await? {
            SeatReply::Sold(s) => Ok(s),
            r => odd(r),
        }
    }
}

// ----------------------------------------------------------------- event bus

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
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
        let wait = wait_ms.min(MAX_SERVER_WAIT_MS);
        match self
            .bus
            .call(
                BusCall::Poll(self.member, max, wait),
                Duration::from_millis(wait),
            )
            .await?
        {
            BusReply::Batch(b) => Ok(b),
            r => odd_bus(r),
        }
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
