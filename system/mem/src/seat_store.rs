//! In-memory seat store: the reference model of the Redis Lua seat store.
//!
//! One mutex guards everything, so every method is atomic exactly as one Lua
//! script is. Each event keeps a gap-free version counter and a bounded
//! change history (for SSE resume). Hold expiry is driven by the `now_ms`
//! the caller passes from its clock port: every mutating call first expires
//! due holds, so an expired hold never blocks a seat.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use ticketing_domain::ports::{
    ChangesSince, ConfirmOutcome, CustomerLimits, GoneReason, HoldRequest, LimitKind, Releaser,
    SeatStore, SeatStoreError,
};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{
    Cents, EventId, Hold, HoldId, OrderId, SeatChange, SeatId, SeatMap, SeatStatus, UnixMs, rules,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Available,
    Held(HoldId),
    Sold(OrderId),
}

#[derive(Debug)]
struct Seat {
    price_cents: Cents,
    slot: Slot,
}

#[derive(Debug, Default)]
struct EventState {
    seats: BTreeMap<SeatId, Seat>,
    version: u64,
    history: VecDeque<SeatChange>,
    /// AVAILABLE seats, kept with every slot change (availability reads it
    /// instead of counting every seat).
    available: usize,
}

#[derive(Debug, Clone)]
enum Gone {
    Expired,
    Released,
    Confirmed {
        order_id: OrderId,
        event_id: EventId,
        seat_ids: Vec<SeatId>,
    },
}

#[derive(Debug, Default)]
struct Inner {
    events: BTreeMap<EventId, EventState>,
    holds: BTreeMap<HoldId, Hold>,
    /// (expires_at, hold) for every active hold: the sweep order.
    expiries: BTreeSet<(UnixMs, HoldId)>,
    tombstones: BTreeMap<HoldId, (UnixMs, Gone)>,
    tombstone_order: BTreeSet<(UnixMs, HoldId)>,
    /// Whose each remembered gone hold was (customers' holds only).
    tombstone_customers: BTreeMap<HoldId, String>,
    /// Per (event, customer): what the per-customer limits count.
    customers: BTreeMap<(EventId, String), Tally>,
}

/// A customer's seats (live holds and sold) and live holds on one event.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    seats: u32,
    holds: u32,
}

/// The first limit `want` more seats in one more hold would break.
fn over_limit(t: Tally, want: u32, limits: CustomerLimits) -> Option<SeatStoreError> {
    let over = |kind, count: u32, add: u32, limit: u32| {
        (limit > 0 && count + add > limit).then_some(SeatStoreError::CustomerLimit {
            kind,
            count,
            limit,
        })
    };
    over(
        LimitKind::SeatsPerEvent,
        t.seats,
        want,
        limits.seats_per_event,
    )
    .or_else(|| over(LimitKind::ActiveHolds, t.holds, 1, limits.active_holds))
}

/// The in-memory [`SeatStore`].
#[derive(Debug)]
pub struct MemSeatStore {
    inner: Mutex<Inner>,
    history_limit: usize,
    tombstone_ms: u64,
}

impl Default for MemSeatStore {
    fn default() -> Self {
        Self::new(1024, 3_600_000)
    }
}

impl MemSeatStore {
    /// `history_limit`: changes kept per event for resume; `tombstone_ms`:
    /// how long gone holds answer 410 rather than 404.
    pub fn new(history_limit: usize, tombstone_ms: u64) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            history_limit: history_limit.max(1),
            tombstone_ms,
        }
    }
}

impl MemSeatStore {
    /// Every active hold, in hold-id order (for audits: after quiescence no
    /// hold may be past its expiry).
    pub fn active_holds(&self) -> Vec<Hold> {
        crate::lock(&self.inner).holds.values().cloned().collect()
    }

    /// A customer's seats (live holds and sold) and live holds on one
    /// event, as the limits count them. No service reads this (the limits
    /// are checked inside the hold step); the simulator's bug zoo uses it to
    /// model a service that checks before it holds.
    pub fn customer_tally(&self, event_id: &EventId, customer: &str) -> (u32, u32) {
        let inner = crate::lock(&self.inner);
        let t = inner
            .customers
            .get(&(event_id.clone(), customer.to_owned()))
            .copied()
            .unwrap_or_default();
        (t.seats, t.holds)
    }

    /// Overwrites seats' status with **no checks at all** (each write is
    /// still a versioned change): `Some(order)` sells, `None` frees. No
    /// service calls this; it exists so the simulator's bug zoo can model a
    /// broken store and prove the checkers catch it.
    pub fn overwrite_seats_unchecked(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        sold_to: Option<&OrderId>,
    ) {
        let limit = self.history_limit;
        let mut inner = crate::lock(&self.inner);
        for seat in seat_ids {
            let slot = match sold_to {
                Some(o) => Slot::Sold(o.clone()),
                None => Slot::Available,
            };
            inner.set_slot(event_id, seat, slot, limit);
        }
    }
}

impl Inner {
    fn record(
        &mut self,
        event_id: &EventId,
        seat_id: &SeatId,
        status: SeatStatus,
        traceparent: Option<&str>,
        limit: usize,
    ) {
        if let Some(ev) = self.events.get_mut(event_id) {
            ev.version += 1;
            ev.history.push_back(SeatChange {
                version: ev.version,
                seat_id: seat_id.clone(),
                status,
                traceparent: traceparent.map(str::to_owned),
            });
            while ev.history.len() > limit {
                ev.history.pop_front();
            }
        }
    }

    fn set_slot(&mut self, event_id: &EventId, seat_id: &SeatId, slot: Slot, limit: usize) {
        self.set_slot_traced(event_id, seat_id, slot, None, limit);
    }

    /// [`Inner::set_slot`], the change record carrying `traceparent`.
    fn set_slot_traced(
        &mut self,
        event_id: &EventId,
        seat_id: &SeatId,
        slot: Slot,
        traceparent: Option<&str>,
        limit: usize,
    ) {
        let status = match slot {
            Slot::Available => SeatStatus::Available,
            Slot::Held(_) => SeatStatus::Held,
            Slot::Sold(_) => SeatStatus::Sold,
        };
        let Some(ev) = self.events.get_mut(event_id) else {
            return;
        };
        if let Some(seat) = ev.seats.get_mut(seat_id) {
            let was_available = seat.slot == Slot::Available;
            let now_available = slot == Slot::Available;
            seat.slot = slot;
            match (was_available, now_available) {
                (true, false) => ev.available -= 1,
                (false, true) => ev.available += 1,
                _ => {}
            }
            self.record(event_id, seat_id, status, traceparent, limit);
        }
    }

    /// Removes an active hold, freeing its seats, and leaves a tombstone.
    fn end_hold(&mut self, hold_id: &HoldId, gone: Gone, now_ms: UnixMs, limit: usize) {
        let Some(hold) = self.holds.remove(hold_id) else {
            return;
        };
        self.expiries.remove(&(hold.expires_at_ms, hold_id.clone()));
        let confirmed = matches!(gone, Gone::Confirmed { .. });
        if let Some(c) = &hold.customer_id {
            let key = (hold.event_id.clone(), c.clone());
            if let Some(t) = self.customers.get_mut(&key) {
                t.holds = t.holds.saturating_sub(1);
                if !confirmed {
                    t.seats = t.seats.saturating_sub(hold.seat_ids.len() as u32);
                }
            }
        }
        if !confirmed {
            for seat in &hold.seat_ids {
                self.set_slot(&hold.event_id, seat, Slot::Available, limit);
            }
        }
        if let Some(c) = hold.customer_id {
            self.tombstone_customers.insert(hold_id.clone(), c);
        }
        self.tombstones.insert(hold_id.clone(), (now_ms, gone));
        self.tombstone_order.insert((now_ms, hold_id.clone()));
    }

    fn expire_due(&mut self, now_ms: UnixMs, max: usize, limit: usize) -> usize {
        let due: Vec<HoldId> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(max)
            .map(|(_, h)| h.clone())
            .collect();
        for h in &due {
            self.end_hold(h, Gone::Expired, now_ms, limit);
        }
        due.len()
    }

    fn forget_tombstones(&mut self, now_ms: UnixMs, tombstone_ms: u64) {
        let old: Vec<(UnixMs, HoldId)> = self
            .tombstone_order
            .iter()
            .take_while(|(at, _)| at.saturating_add(tombstone_ms) <= now_ms)
            .cloned()
            .collect();
        for key in old {
            self.tombstone_order.remove(&key);
            self.tombstones.remove(&key.1);
            self.tombstone_customers.remove(&key.1);
        }
    }

    /// The active hold, or why there is none.
    fn active(&self, hold_id: &HoldId) -> Result<&Hold, SeatStoreError> {
        match self.holds.get(hold_id) {
            Some(h) => Ok(h),
            None => match self.tombstones.get(hold_id) {
                Some((_, gone)) => Err(SeatStoreError::HoldGone {
                    reason: match gone {
                        Gone::Expired => GoneReason::Expired,
                        Gone::Released => GoneReason::Released,
                        Gone::Confirmed { order_id, .. } => GoneReason::Ordered(order_id.clone()),
                    },
                    customer_id: self.tombstone_customers.get(hold_id).cloned(),
                }),
                None => Err(SeatStoreError::HoldNotFound),
            },
        }
    }

    fn reschedule(&mut self, hold_id: &HoldId, new_expiry: UnixMs) {
        if let Some(h) = self.holds.get_mut(hold_id) {
            self.expiries.remove(&(h.expires_at_ms, hold_id.clone()));
            h.expires_at_ms = new_expiry;
            self.expiries.insert((new_expiry, hold_id.clone()));
        }
    }
}

#[async_trait]
impl SeatStore for MemSeatStore {
    async fn create_event(
        &self,
        event_id: &EventId,
        seats: &[(SeatId, Cents)],
    ) -> Result<(), SeatStoreError> {
        let mut inner = crate::lock(&self.inner);
        inner.events.entry(event_id.clone()).or_insert_with(|| {
            let seats: BTreeMap<SeatId, Seat> = seats
                .iter()
                .map(|(id, price)| {
                    let slot = Slot::Available;
                    (
                        id.clone(),
                        Seat {
                            price_cents: *price,
                            slot,
                        },
                    )
                })
                .collect();
            EventState {
                available: seats.len(),
                seats,
                version: 0,
                history: VecDeque::new(),
            }
        });
        Ok(())
    }

    async fn hold(&self, req: HoldRequest, now_ms: UnixMs) -> Result<Hold, SeatStoreError> {
        let limit = self.history_limit;
        let mut inner = crate::lock(&self.inner);
        let ev = inner
            .events
            .get(&req.event_id)
            .ok_or(SeatStoreError::UnknownEvent)?;
        let unknown: Vec<SeatId> = req
            .seat_ids
            .iter()
            .filter(|s| !ev.seats.contains_key(*s))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(SeatStoreError::UnknownSeats(unknown));
        }
        inner.expire_due(now_ms, usize::MAX, limit);
        if inner.holds.contains_key(&req.hold_id) || inner.tombstones.contains_key(&req.hold_id) {
            return Err(SeatStoreError::DuplicateHoldId);
        }
        if let Some(c) = &req.customer_id {
            let key = (req.event_id.clone(), c.clone());
            let tally = inner.customers.get(&key).copied().unwrap_or_default();
            if let Some(e) = over_limit(tally, req.seat_ids.len() as u32, req.limits) {
                return Err(e);
            }
        }
        let ev = &inner.events[&req.event_id];
        let taken: Vec<SeatId> = req
            .seat_ids
            .iter()
            .filter(|s| ev.seats[*s].slot != Slot::Available)
            .cloned()
            .collect();
        if !taken.is_empty() {
            return Err(SeatStoreError::SeatsUnavailable(taken));
        }
        let amount_cents = req.seat_ids.iter().map(|s| ev.seats[s].price_cents).sum();
        for seat in &req.seat_ids {
            inner.set_slot(&req.event_id, seat, Slot::Held(req.hold_id.clone()), limit);
        }
        let hold = Hold {
            hold_id: req.hold_id.clone(),
            event_id: req.event_id,
            seat_ids: req.seat_ids,
            amount_cents,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(req.ttl_ms),
            pinned_order: None,
            customer_id: req.customer_id,
        };
        inner
            .expiries
            .insert((hold.expires_at_ms, hold.hold_id.clone()));
        if let Some(c) = &hold.customer_id {
            let t = inner
                .customers
                .entry((hold.event_id.clone(), c.clone()))
                .or_default();
            t.seats += hold.seat_ids.len() as u32;
            t.holds += 1;
        }
        inner.holds.insert(hold.hold_id.clone(), hold.clone());
        Ok(hold)
    }

    async fn get_hold(&self, hold_id: &HoldId, now_ms: UnixMs) -> Result<Hold, SeatStoreError> {
        let inner = crate::lock(&self.inner);
        let hold = inner.active(hold_id)?;
        if hold.expires_at_ms <= now_ms {
            return Err(SeatStoreError::HoldGone {
                reason: GoneReason::Expired,
                customer_id: hold.customer_id.clone(),
            });
        }
        Ok(hold.clone())
    }

    async fn extend(
        &self,
        hold_id: &HoldId,
        hold_ms: u64,
        max_lifetime_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        let mut inner = crate::lock(&self.inner);
        inner.expire_due(now_ms, usize::MAX, self.history_limit);
        let hold = inner.active(hold_id)?;
        if hold.pinned_order.is_some() {
            return Err(SeatStoreError::HoldPinned);
        }
        let new_expiry = rules::extended_expiry(
            hold.created_at_ms,
            hold.expires_at_ms,
            now_ms,
            hold_ms,
            max_lifetime_ms,
        )
        .ok_or(SeatStoreError::ExtensionLimit)?;
        inner.reschedule(hold_id, new_expiry);
        Ok(inner.holds[hold_id].clone())
    }

    async fn release(
        &self,
        hold_id: &HoldId,
        by: Releaser,
        now_ms: UnixMs,
    ) -> Result<(), SeatStoreError> {
        let limit = self.history_limit;
        let mut inner = crate::lock(&self.inner);
        inner.expire_due(now_ms, usize::MAX, limit);
        match by {
            Releaser::Holder => {
                let hold = inner.active(hold_id)?;
                if hold.pinned_order.is_some() {
                    return Err(SeatStoreError::HoldPinned);
                }
            }
            Releaser::Order(order_id) => match inner.holds.get(hold_id) {
                Some(h) if h.pinned_order.as_ref() == Some(&order_id) => {}
                _ => return Ok(()),
            },
        }
        inner.end_hold(hold_id, Gone::Released, now_ms, limit);
        Ok(())
    }

    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        checkout_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        let mut inner = crate::lock(&self.inner);
        inner.expire_due(now_ms, usize::MAX, self.history_limit);
        let hold = inner.active(hold_id)?;
        match &hold.pinned_order {
            Some(o) if o != order_id => return Err(SeatStoreError::HoldPinned),
            Some(_) => return Ok(hold.clone()),
            None => {}
        }
        let new_expiry = hold.expires_at_ms.max(now_ms.saturating_add(checkout_ms));
        inner.reschedule(hold_id, new_expiry);
        let hold = inner
            .holds
            .get_mut(hold_id)
            .ok_or(SeatStoreError::HoldNotFound)?;
        hold.pinned_order = Some(order_id.clone());
        Ok(hold.clone())
    }

    async fn confirm(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        traceparent: Option<&str>,
        now_ms: UnixMs,
    ) -> Result<ConfirmOutcome, SeatStoreError> {
        let limit = self.history_limit;
        let mut inner = crate::lock(&self.inner);
        inner.expire_due(now_ms, usize::MAX, limit);
        if let Some(hold) = inner.holds.get(hold_id) {
            if hold.pinned_order.as_ref() != Some(order_id) {
                return Ok(ConfirmOutcome::Rejected(FailureReason::HoldNotPinned));
            }
            let hold = hold.clone();
            for seat in &hold.seat_ids {
                inner.set_slot_traced(
                    &hold.event_id,
                    seat,
                    Slot::Sold(order_id.clone()),
                    traceparent,
                    limit,
                );
            }
            let gone = Gone::Confirmed {
                order_id: order_id.clone(),
                event_id: hold.event_id.clone(),
                seat_ids: hold.seat_ids.clone(),
            };
            inner.end_hold(hold_id, gone, now_ms, limit);
            return Ok(ConfirmOutcome::Confirmed {
                event_id: hold.event_id,
                seat_ids: hold.seat_ids,
            });
        }
        Ok(match inner.tombstones.get(hold_id) {
            Some((
                _,
                Gone::Confirmed {
                    order_id: o,
                    event_id,
                    seat_ids,
                },
            )) if o == order_id => ConfirmOutcome::Confirmed {
                event_id: event_id.clone(),
                seat_ids: seat_ids.clone(),
            },
            Some((_, Gone::Expired)) => ConfirmOutcome::Rejected(FailureReason::HoldExpired),
            Some((_, Gone::Confirmed { .. })) => {
                ConfirmOutcome::Rejected(FailureReason::HoldNotPinned)
            }
            Some((_, Gone::Released)) | None => {
                ConfirmOutcome::Rejected(FailureReason::HoldReleased)
            }
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
        let limit = self.history_limit;
        let mut inner = crate::lock(&self.inner);
        if !inner.events.contains_key(event_id) {
            return Err(SeatStoreError::UnknownEvent);
        }
        inner.expire_due(now_ms, usize::MAX, limit);
        let sold = Slot::Sold(order_id.clone());
        let mut back = Vec::new();
        for seat in seat_ids {
            // One at a time: a seat named twice is returned once.
            if inner.events[event_id].seats.get(seat).map(|s| &s.slot) == Some(&sold) {
                inner.set_slot(event_id, seat, Slot::Available, limit);
                back.push(seat.clone());
            }
        }
        if let Some(c) = customer_id
            && let Some(t) = inner.customers.get_mut(&(event_id.clone(), c.to_owned()))
        {
            t.seats = t.seats.saturating_sub(back.len() as u32);
        }
        Ok(back)
    }

    async fn expire_due(&self, now_ms: UnixMs, limit: usize) -> Result<usize, SeatStoreError> {
        let mut inner = crate::lock(&self.inner);
        let n = inner.expire_due(now_ms, limit, self.history_limit);
        inner.forget_tombstones(now_ms, self.tombstone_ms);
        Ok(n)
    }

    async fn seat_map(&self, event_id: &EventId) -> Result<SeatMap, SeatStoreError> {
        let inner = crate::lock(&self.inner);
        let ev = inner
            .events
            .get(event_id)
            .ok_or(SeatStoreError::UnknownEvent)?;
        Ok(SeatMap {
            version: ev.version,
            seats: ev
                .seats
                .iter()
                .map(|(id, s)| {
                    let status = match s.slot {
                        Slot::Available => SeatStatus::Available,
                        Slot::Held(_) => SeatStatus::Held,
                        Slot::Sold(_) => SeatStatus::Sold,
                    };
                    (id.clone(), status)
                })
                .collect(),
        })
    }

    async fn availability(&self, event_id: &EventId) -> Result<(u64, usize), SeatStoreError> {
        let inner = crate::lock(&self.inner);
        let ev = inner
            .events
            .get(event_id)
            .ok_or(SeatStoreError::UnknownEvent)?;
        Ok((ev.version, ev.available))
    }

    async fn changes_since(
        &self,
        event_id: &EventId,
        version: u64,
        limit: usize,
    ) -> Result<ChangesSince, SeatStoreError> {
        let inner = crate::lock(&self.inner);
        let ev = inner
            .events
            .get(event_id)
            .ok_or(SeatStoreError::UnknownEvent)?;
        if version > ev.version {
            return Ok(ChangesSince::TooOld);
        }
        let oldest_kept = ev.history.front().map_or(ev.version + 1, |c| c.version);
        if version + 1 < oldest_kept {
            return Ok(ChangesSince::TooOld);
        }
        Ok(ChangesSince::Changes(
            ev.history
                .iter()
                .filter(|c| c.version > version)
                .take(limit)
                .cloned()
                .collect(),
        ))
    }

    async fn sold_seats(
        &self,
        event_id: &EventId,
    ) -> Result<Vec<(SeatId, OrderId)>, SeatStoreError> {
        let inner = crate::lock(&self.inner);
        let ev = inner
            .events
            .get(event_id)
            .ok_or(SeatStoreError::UnknownEvent)?;
        Ok(ev
            .seats
            .iter()
            .filter_map(|(id, s)| match &s.slot {
                Slot::Sold(o) => Some((id.clone(), o.clone())),
                _ => None,
            })
            .collect())
    }
}
