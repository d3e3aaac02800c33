//! The `redis` host: the in-memory seat store served over [`super::frame`],
//! and [`RemoteSeatStore`], the services' `SeatStore` adapter that calls it.
//!
//! Layer: imports `frame`.

use super::frame::{REDIS_PORT, call, serve};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::ports::{
    ChangesSince, ConfirmOutcome, HoldRequest, Releaser, SeatStore, SeatStoreError,
};
use ticketing_domain::{Cents, EventId, Hold, HoldId, OrderId, SeatId, SeatMap, UnixMs};

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
    ReturnSeats(EventId, Vec<SeatId>, OrderId, Option<String>, UnixMs),
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
    Returned(Vec<SeatId>),
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
        C::ReturnSeats(e, seats, o, c, now) => SeatReply::Returned(
            store
                .return_seats(&e, &seats, &o, c.as_deref(), now)
                .await?,
        ),
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
    async fn return_seats(
        &self,
        e: &EventId,
        seats: &[SeatId],
        o: &OrderId,
        c: Option<&str>,
        now: UnixMs,
    ) -> Result<Vec<SeatId>, SeatStoreError> {
        let call = SeatCall::ReturnSeats(
            e.clone(),
            seats.to_vec(),
            o.clone(),
            c.map(str::to_owned),
            now,
        );
        match self.call(call).await? {
            SeatReply::Returned(back) => Ok(back),
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
