//! The `redis` host's waiting rooms: the in-memory queue store served over
//! [`super::frame`] on [`QUEUE_PORT`] (the same host as the seat store, so a
//! Redis crash or partition takes both away, as on one real Redis), and
//! [`RemoteQueueStore`], the services' `QueueStore` adapter that calls it.
//!
//! Layer: imports `frame`.

use super::frame::{QUEUE_PORT, call, serve};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::ports::{AdmitReport, Joined, Place, QueueError, QueueStore, RoomStats};
use ticketing_domain::queue::RoomConfig;
use ticketing_domain::{EventId, HoldId, QueueTicket, UnixMs, VisitorId};

#[derive(Debug, Serialize, Deserialize)]
enum QueueCall {
    Open(EventId, RoomConfig),
    Room(EventId),
    Caps(EventId, u32, u32),
    Join(EventId, QueueTicket, VisitorId, Option<String>, u64, UnixMs),
    Place(EventId, QueueTicket, UnixMs),
    Admit(EventId, UnixMs),
    Touch(EventId, VisitorId, UnixMs),
    Leave(EventId, VisitorId),
    Bind(EventId, VisitorId, HoldId),
    Bought(EventId, HoldId),
    Stats(EventId, UnixMs),
    Rooms,
}

#[derive(Debug, Serialize, Deserialize)]
enum QueueReply {
    Unit,
    Joined(Joined),
    Room(Option<RoomConfig>),
    Config(RoomConfig),
    Place(Option<Place>),
    Admit(AdmitReport),
    Flag(bool),
    Stats(RoomStats),
    Rooms(Vec<EventId>),
}

async fn dispatch(q: &dyn QueueStore, c: QueueCall) -> Result<QueueReply, QueueError> {
    use QueueCall as C;
    use QueueReply as R;
    Ok(match c {
        C::Open(e, room) => q.open_room(&e, &room).await.map(|_| R::Unit)?,
        C::Room(e) => R::Room(q.room(&e).await?),
        C::Caps(e, a, r) => R::Config(q.set_caps(&e, a, r).await?),
        C::Join(e, t, v, c, k, now) => R::Joined(q.join(&e, &t, &v, c.as_deref(), k, now).await?),
        C::Place(e, t, now) => R::Place(q.place(&e, &t, now).await?),
        C::Admit(e, now) => R::Admit(q.admit(&e, now).await?),
        C::Touch(e, v, now) => R::Flag(q.touch(&e, &v, now).await?),
        C::Leave(e, v) => q.leave(&e, &v).await.map(|_| R::Unit)?,
        C::Bind(e, v, h) => q.bind_hold(&e, &v, &h).await.map(|_| R::Unit)?,
        C::Bought(e, h) => q.bought(&e, &h).await.map(|_| R::Unit)?,
        C::Stats(e, now) => R::Stats(q.stats(&e, now).await?),
        C::Rooms => R::Rooms(q.rooms().await?),
    })
}

/// Serves `store` on [`QUEUE_PORT`] (part of the `redis` host's software).
pub async fn serve_queue_store(store: Arc<dyn QueueStore>) -> turmoil::Result {
    serve(QUEUE_PORT, move |c: QueueCall| {
        let store = store.clone();
        async move { dispatch(store.as_ref(), c).await }
    })
    .await
}

/// The services' [`QueueStore`] adapter in the simulator.
#[derive(Debug, Clone)]
pub struct RemoteQueueStore {
    host: String,
    timeout: Duration,
}

impl RemoteQueueStore {
    pub fn new(host: &str, timeout: Duration) -> Self {
        Self {
            host: host.to_owned(),
            timeout,
        }
    }

    async fn call(&self, c: QueueCall) -> Result<QueueReply, QueueError> {
        call::<_, Result<QueueReply, QueueError>>(&self.host, QUEUE_PORT, &c, self.timeout)
            .await
            .map_err(QueueError::Unavailable)?
    }

    async fn unit(&self, c: QueueCall) -> Result<(), QueueError> {
        match self.call(c).await? {
            QueueReply::Unit => Ok(()),
            r => odd(r),
        }
    }
}

fn odd<T>(r: QueueReply) -> Result<T, QueueError> {
    Err(QueueError::Unavailable(format!("unexpected reply {r:?}")))
}

#[async_trait]
impl QueueStore for RemoteQueueStore {
    async fn open_room(&self, e: &EventId, room: &RoomConfig) -> Result<(), QueueError> {
        self.unit(QueueCall::Open(e.clone(), room.clone())).await
    }
    async fn room(&self, e: &EventId) -> Result<Option<RoomConfig>, QueueError> {
        match self.call(QueueCall::Room(e.clone())).await? {
            QueueReply::Room(r) => Ok(r),
            r => odd(r),
        }
    }
    async fn set_caps(&self, e: &EventId, a: u32, r: u32) -> Result<RoomConfig, QueueError> {
        match self.call(QueueCall::Caps(e.clone(), a, r)).await? {
            QueueReply::Config(c) => Ok(c),
            r => odd(r),
        }
    }
    async fn join(
        &self,
        e: &EventId,
        t: &QueueTicket,
        v: &VisitorId,
        customer: Option<&str>,
        key: u64,
        now: UnixMs,
    ) -> Result<Joined, QueueError> {
        let c = customer.map(str::to_owned);
        match self
            .call(QueueCall::Join(
                e.clone(),
                t.clone(),
                v.clone(),
                c,
                key,
                now,
            ))
            .await?
        {
            QueueReply::Joined(j) => Ok(j),
            r => odd(r),
        }
    }
    async fn place(
        &self,
        e: &EventId,
        t: &QueueTicket,
        now: UnixMs,
    ) -> Result<Option<Place>, QueueError> {
        match self
            .call(QueueCall::Place(e.clone(), t.clone(), now))
            .await?
        {
            QueueReply::Place(p) => Ok(p),
            r => odd(r),
        }
    }
    async fn admit(&self, e: &EventId, now: UnixMs) -> Result<AdmitReport, QueueError> {
        match self.call(QueueCall::Admit(e.clone(), now)).await? {
            QueueReply::Admit(a) => Ok(a),
            r => odd(r),
        }
    }
    async fn touch(&self, e: &EventId, v: &VisitorId, now: UnixMs) -> Result<bool, QueueError> {
        match self
            .call(QueueCall::Touch(e.clone(), v.clone(), now))
            .await?
        {
            QueueReply::Flag(f) => Ok(f),
            r => odd(r),
        }
    }
    async fn leave(&self, e: &EventId, v: &VisitorId) -> Result<(), QueueError> {
        self.unit(QueueCall::Leave(e.clone(), v.clone())).await
    }
    async fn bind_hold(&self, e: &EventId, v: &VisitorId, h: &HoldId) -> Result<(), QueueError> {
        self.unit(QueueCall::Bind(e.clone(), v.clone(), h.clone()))
            .await
    }
    async fn bought(&self, e: &EventId, h: &HoldId) -> Result<(), QueueError> {
        self.unit(QueueCall::Bought(e.clone(), h.clone())).await
    }
    async fn stats(&self, e: &EventId, now: UnixMs) -> Result<RoomStats, QueueError> {
        match self.call(QueueCall::Stats(e.clone(), now)).await? {
            QueueReply::Stats(s) => Ok(s),
            r => odd(r),
        }
    }
    async fn rooms(&self) -> Result<Vec<EventId>, QueueError> {
        match self.call(QueueCall::Rooms).await? {
            QueueReply::Rooms(r) => Ok(r),
            r => odd(r),
        }
    }
}
