//! In-memory waiting-room store: the reference model of `QueueStore`.
//!
//! Positions are exact and cheap at any queue length: once the on-sale time
//! has passed (the first call after it "seals" the pre-queue in its drawn
//! order), every place has an index in queue order and a Fenwick tree
//! counts who is still waiting before it. The Redis adapter gets the same
//! numbers from a sorted set's rank.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use ticketing_domain::ports::{AdmitReport, Joined, Place, QueueError, QueueStore, RoomStats};
use ticketing_domain::queue::{self, PlaceState, QueueLogEntry, RATE_WINDOW_S, RoomConfig};
use ticketing_domain::{EventId, HoldId, QueueTicket, UnixMs, VisitorId};

/// Counts present places before an index (a Fenwick tree that grows).
#[derive(Debug, Default)]
struct Counts {
    tree: Vec<i64>,
}

impl Counts {
    fn add(&mut self, index: usize, delta: i64) {
        if index >= self.tree.len() {
            let old: Vec<i64> = (0..self.tree.len()).map(|i| self.at(i)).collect();
            let size = (index + 1).next_power_of_two().max(64);
            self.tree = vec![0; size];
            for (i, v) in old.into_iter().enumerate() {
                if v != 0 {
                    self.add(i, v);
                }
            }
        }
        let mut i = index + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum over indexes `< index`.
    fn before(&self, index: usize) -> u64 {
        let mut i = index.min(self.tree.len());
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i - 1];
            i -= i & i.wrapping_neg();
        }
        u64::try_from(sum).unwrap_or(0)
    }

    fn at(&self, index: usize) -> i64 {
        self.before(index + 1) as i64 - self.before(index) as i64
    }
}

#[derive(Debug, Clone)]
enum Rec {
    Waiting {
        score: u64,
        index: Option<usize>,
        joined_at_ms: UnixMs,
    },
    Admitted {
        admitted_at_ms: UnixMs,
        token_expires_at_ms: UnixMs,
    },
    Expired,
}

#[derive(Debug)]
struct Room {
    config: RoomConfig,
    seq: u64,
    sealed: bool,
    /// Pre-queue places before the seal, in drawn order.
    prequeue: BTreeMap<(u64, QueueTicket), ()>,
    /// Places in queue order once sealed (`None`: gone).
    line: Vec<Option<QueueTicket>>,
    front: usize,
    counts: Counts,
    waiting: u64,
    tickets: BTreeMap<QueueTicket, (VisitorId, Rec)>,
    by_visitor: BTreeMap<VisitorId, QueueTicket>,
    /// Each customer's latest place, and each place's customer.
    by_customer: BTreeMap<String, QueueTicket>,
    customer_of: BTreeMap<QueueTicket, String>,
    seen: BTreeMap<(UnixMs, QueueTicket), ()>,
    last_seen: BTreeMap<QueueTicket, UnixMs>,
    active: BTreeMap<VisitorId, UnixMs>,
    active_until: BTreeMap<(UnixMs, VisitorId), ()>,
    /// Holds made under an admission, and each visitor's (see `bind_hold`).
    hold_visitor: BTreeMap<HoldId, VisitorId>,
    visitor_holds: BTreeMap<VisitorId, Vec<HoldId>>,
    admitted_total: u64,
    /// Admissions per wall-clock second: (second, count), by second % window.
    ring: [(u64, u64); RATE_WINDOW_S as usize],
    /// The admission log, when the store keeps one.
    log: Option<Vec<QueueLogEntry>>,
    /// When the last admission step ran (0: none yet).
    last_step_ms: UnixMs,
    /// No place is dropped before this (after an outage).
    grace_until_ms: UnixMs,
}

impl Room {
    fn new(config: RoomConfig) -> Self {
        Self {
            config,
            seq: 0,
            sealed: false,
            prequeue: BTreeMap::new(),
            line: Vec::new(),
            front: 0,
            counts: Counts::default(),
            waiting: 0,
            tickets: BTreeMap::new(),
            by_visitor: BTreeMap::new(),
            by_customer: BTreeMap::new(),
            customer_of: BTreeMap::new(),
            seen: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            active: BTreeMap::new(),
            active_until: BTreeMap::new(),
            hold_visitor: BTreeMap::new(),
            visitor_holds: BTreeMap::new(),
            admitted_total: 0,
            ring: [(u64::MAX, 0); RATE_WINDOW_S as usize],
            log: None,
            last_step_ms: 0,
            grace_until_ms: 0,
        }
    }

    /// After a gap between steps longer than the outage gap: a grace for
    /// the waiting, and the active slots' ends moved later by the gap.
    fn after_outage(&mut self, now_ms: UnixMs) {
        let gap = now_ms.saturating_sub(self.last_step_ms);
        let outage = self.last_step_ms > 0 && gap > queue::outage_gap_ms(&self.config);
        self.last_step_ms = now_ms;
        if !outage {
            return;
        }
        self.grace_until_ms = now_ms + self.config.abandon_ms;
        let slots: Vec<(VisitorId, UnixMs)> =
            self.active.iter().map(|(v, u)| (v.clone(), *u)).collect();
        for (v, until) in slots {
            let token = match self.by_visitor.get(&v).and_then(|t| self.tickets.get(t)) {
                Some((
                    _,
                    Rec::Admitted {
                        token_expires_at_ms,
                        ..
                    },
                )) => *token_expires_at_ms,
                _ => until,
            };
            self.set_active(&v, (until + gap).min(token));
        }
    }

    fn record(&mut self, entry: impl FnOnce() -> QueueLogEntry) {
        if let Some(log) = self.log.as_mut() {
            log.push(entry());
        }
    }

    /// From the on-sale time on, the pre-queue's drawn order is the line's start.
    fn seal(&mut self, now_ms: UnixMs) {
        if self.sealed || now_ms < self.config.on_sale_at_ms {
            return;
        }
        self.sealed = true;
        for ((_, ticket), ()) in std::mem::take(&mut self.prequeue) {
            self.append(ticket);
        }
    }

    fn append(&mut self, ticket: QueueTicket) {
        let index = self.line.len();
        self.line.push(Some(ticket.clone()));
        self.counts.add(index, 1);
        if let Some((_, Rec::Waiting { index: at, .. })) = self.tickets.get_mut(&ticket) {
            *at = Some(index);
        }
    }

    /// `customer`'s place, while it is live: waiting (or pre-queue), or
    /// admitted with the slot held at `now_ms`; and whether it is waiting.
    fn live_place_of(
        &self,
        customer: &str,
        now_ms: UnixMs,
    ) -> Option<(QueueTicket, VisitorId, bool)> {
        let ticket = self.by_customer.get(customer)?;
        let (visitor, rec) = self.tickets.get(ticket)?;
        let (live, waiting) = match rec {
            Rec::Waiting { .. } => (true, true),
            Rec::Admitted { .. } => (self.active.get(visitor).is_some_and(|&u| u > now_ms), false),
            Rec::Expired => (false, false),
        };
        live.then(|| (ticket.clone(), visitor.clone(), waiting))
    }

    fn see(&mut self, ticket: &QueueTicket, now_ms: UnixMs) {
        if let Some(old) = self.last_seen.insert(ticket.clone(), now_ms) {
            self.seen.remove(&(old, ticket.clone()));
        }
        self.seen.insert((now_ms, ticket.clone()), ());
    }

    /// Takes a waiting place out of the line (admitted or abandoned).
    fn unqueue(&mut self, ticket: &QueueTicket) {
        if let Some((_, Rec::Waiting { score, index, .. })) = self.tickets.get(ticket).cloned() {
            match index {
                Some(i) => {
                    self.line[i] = None;
                    self.counts.add(i, -1);
                }
                None => {
                    self.prequeue.remove(&(score, ticket.clone()));
                }
            }
            self.waiting -= 1;
        }
        if let Some(t) = self.last_seen.remove(ticket) {
            self.seen.remove(&(t, ticket.clone()));
        }
    }

    fn set_active(&mut self, visitor: &VisitorId, until_ms: UnixMs) {
        if let Some(old) = self.active.insert(visitor.clone(), until_ms) {
            self.active_until.remove(&(old, visitor.clone()));
        }
        self.active_until.insert((until_ms, visitor.clone()), ());
    }

    fn free(&mut self, visitor: &VisitorId) {
        if let Some(until) = self.active.remove(visitor) {
            self.active_until.remove(&(until, visitor.clone()));
        }
        for h in self.visitor_holds.remove(visitor).unwrap_or_default() {
            self.hold_visitor.remove(&h);
        }
        if let Some(t) = self.by_visitor.get(visitor).cloned()
            && let Some((_, rec)) = self.tickets.get_mut(&t)
            && matches!(rec, Rec::Admitted { .. })
        {
            *rec = Rec::Expired;
        }
    }

    fn this_second(&self, sec: u64) -> u64 {
        let (s, n) = self.ring[(sec % RATE_WINDOW_S) as usize];
        if s == sec { n } else { 0 }
    }

    fn in_window(&self, sec: u64) -> u64 {
        self.ring
            .iter()
            .filter(|(s, _)| *s < sec && sec - *s <= RATE_WINDOW_S)
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&mut self, sec: u64, n: u64) {
        let slot = &mut self.ring[(sec % RATE_WINDOW_S) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
        self.admitted_total += n;
    }
}

impl Room {
    /// One admission step (see `QueueStore::admit`); `budget`: admit this
    /// many at most instead of what the caps allow (the bug zoo's stale read).
    /// `sweep: false` skips freeing slots and dropping places (the bug
    /// zoo's "abandoned never removed").
    fn step(&mut self, now_ms: UnixMs, budget: Option<u64>, sweep: bool) -> AdmitReport {
        let mut report = AdmitReport::default();
        if now_ms >= self.config.on_sale_at_ms {
            self.after_outage(now_ms);
            if sweep {
                (report.expired, report.abandoned) = self.sweep(now_ms);
            }
            let n = budget.unwrap_or_else(|| self.budget(now_ms));
            (report.admitted, report.waited_ms) = self.admit_front(now_ms, n).into_iter().unzip();
            self.count(now_ms / 1000, report.admitted.len() as u64);
            let (active, c) = (self.active.len() as u64, self.config.clone());
            self.record(|| QueueLogEntry::Step {
                at_ms: now_ms,
                active,
                active_max: c.active_max,
                admit_per_s: c.admit_per_s,
            });
        }
        report.waiting = self.waiting;
        report.active = self.active.len() as u64;
        report
    }

    /// What the caps let in now.
    fn budget(&self, now_ms: UnixMs) -> u64 {
        queue::admission_budget(
            &self.config,
            self.active.len() as u64,
            self.this_second(now_ms / 1000),
            self.waiting,
        )
    }

    /// Frees expired slots and drops abandoned places: (expired, abandoned).
    fn sweep(&mut self, now_ms: UnixMs) -> (u64, u64) {
        let due: Vec<VisitorId> = self
            .active_until
            .range(..(now_ms + 1, VisitorId::from("")))
            .map(|((_, v), ())| v.clone())
            .collect();
        for v in &due {
            self.free(v);
        }
        let cutoff = now_ms.saturating_sub(self.config.abandon_ms);
        let gone: Vec<QueueTicket> = if now_ms < self.grace_until_ms {
            Vec::new()
        } else {
            self.seen
                .range(..(cutoff + 1, QueueTicket::from("")))
                .map(|((_, t), ())| t.clone())
                .collect()
        };
        for t in &gone {
            self.unqueue(t);
            if let Some((_, rec)) = self.tickets.get_mut(t) {
                *rec = Rec::Expired;
            }
            self.record(|| QueueLogEntry::Dropped {
                ticket: t.to_string(),
                at_ms: now_ms,
            });
        }
        (due.len() as u64, gone.len() as u64)
    }

    /// Admits up to `n` from the front of the line: each with how long it waited.
    fn admit_front(&mut self, now_ms: UnixMs, n: u64) -> Vec<((QueueTicket, VisitorId), u64)> {
        let mut admitted = Vec::new();
        while (admitted.len() as u64) < n && self.front < self.line.len() {
            let Some(ticket) = self.line[self.front].clone() else {
                self.front += 1;
                continue;
            };
            let joined_at_ms = match self.tickets.get(&ticket) {
                Some((_, Rec::Waiting { joined_at_ms, .. })) => *joined_at_ms,
                _ => now_ms,
            };
            self.unqueue(&ticket);
            let token_expires_at_ms = now_ms + self.config.token_ttl_ms;
            let until = queue::slot_until(&self.config, now_ms, token_expires_at_ms);
            let Some((visitor, rec)) = self.tickets.get_mut(&ticket) else {
                continue;
            };
            *rec = Rec::Admitted {
                admitted_at_ms: now_ms,
                token_expires_at_ms,
            };
            let visitor = visitor.clone();
            self.set_active(&visitor, until);
            self.record(|| QueueLogEntry::Admitted {
                ticket: ticket.to_string(),
                at_ms: now_ms,
            });
            admitted.push(((ticket, visitor), now_ms.saturating_sub(joined_at_ms)));
        }
        admitted
    }
}

/// The in-memory [`QueueStore`].
#[derive(Debug, Default)]
pub struct MemQueueStore {
    rooms: Mutex<BTreeMap<EventId, Room>>,
    /// Keep every room's admission log (the simulator's checkers read it).
    keep_log: bool,
}

impl MemQueueStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps each room's admission log ([`MemQueueStore::log`]).
    pub fn with_log() -> Self {
        Self {
            keep_log: true,
            ..Self::default()
        }
    }

    /// What the caps would let in now (the bug zoo reads it, then admits
    /// with [`MemQueueStore::admit_stale`]: a read-then-write).
    pub fn budget_now(&self, event_id: &EventId, now_ms: UnixMs) -> u64 {
        crate::lock(&self.rooms)
            .get(event_id)
            .map_or(0, |r| r.budget(now_ms))
    }

    /// An admission step that admits `budget` (read earlier) instead of
    /// what the caps allow now. Only the bug zoo calls this.
    pub fn admit_stale(&self, event_id: &EventId, now_ms: UnixMs, budget: u64) -> AdmitReport {
        let mut rooms = crate::lock(&self.rooms);
        match rooms.get_mut(event_id) {
            Some(r) => {
                r.seal(now_ms);
                r.step(now_ms, Some(budget), true)
            }
            None => AdmitReport::default(),
        }
    }

    /// An admission step that never frees an idle or expired slot and
    /// never drops an abandoned place. Only the bug zoo calls this.
    pub fn admit_unswept(&self, event_id: &EventId, now_ms: UnixMs) -> AdmitReport {
        let mut rooms = crate::lock(&self.rooms);
        match rooms.get_mut(event_id) {
            Some(r) => {
                r.seal(now_ms);
                r.step(now_ms, None, false)
            }
            None => AdmitReport::default(),
        }
    }

    /// The admission log of `event_id`'s room (empty without one).
    pub fn log(&self, event_id: &EventId) -> Vec<QueueLogEntry> {
        crate::lock(&self.rooms)
            .get(event_id)
            .and_then(|r| r.log.clone())
            .unwrap_or_default()
    }

    fn with<T>(
        &self,
        event_id: &EventId,
        now_ms: Option<UnixMs>,
        f: impl FnOnce(&mut Room) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut rooms = crate::lock(&self.rooms);
        let room = rooms.get_mut(event_id).ok_or(QueueError::UnknownRoom)?;
        if let Some(now) = now_ms {
            room.seal(now);
        }
        f(room)
    }
}

#[async_trait]
impl QueueStore for MemQueueStore {
    async fn open_room(&self, event_id: &EventId, room: &RoomConfig) -> Result<(), QueueError> {
        let mut rooms = crate::lock(&self.rooms);
        match rooms.get_mut(event_id) {
            Some(r) => r.config = room.clone(),
            None => {
                let mut r = Room::new(room.clone());
                r.log = self.keep_log.then(Vec::new);
                rooms.insert(event_id.clone(), r);
            }
        }
        Ok(())
    }

    async fn room(&self, event_id: &EventId) -> Result<Option<RoomConfig>, QueueError> {
        Ok(crate::lock(&self.rooms)
            .get(event_id)
            .map(|r| r.config.clone()))
    }

    async fn set_caps(
        &self,
        event_id: &EventId,
        active_max: u32,
        admit_per_s: u32,
    ) -> Result<RoomConfig, QueueError> {
        self.with(event_id, None, |r| {
            r.config.active_max = active_max;
            r.config.admit_per_s = admit_per_s;
            Ok(r.config.clone())
        })
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
        self.with(event_id, Some(now_ms), |r| {
            if now_ms < r.config.opens_at_ms {
                return Err(QueueError::NotOpen);
            }
            if let Some((ticket, visitor_id, waiting)) =
                customer_id.and_then(|c| r.live_place_of(c, now_ms))
            {
                if waiting {
                    r.see(&ticket, now_ms);
                }
                return Ok(Joined {
                    ticket,
                    visitor_id,
                    rejoined: true,
                });
            }
            if r.tickets.contains_key(ticket) || r.by_visitor.contains_key(visitor_id) {
                return Err(QueueError::DuplicateTicket);
            }
            if let Some(c) = customer_id {
                r.by_customer.insert(c.to_owned(), ticket.clone());
                r.customer_of.insert(ticket.clone(), c.to_owned());
            }
            r.seq += 1;
            let score = queue::place_score(&r.config, now_ms, shuffle_key, r.seq);
            r.tickets.insert(
                ticket.clone(),
                (
                    visitor_id.clone(),
                    Rec::Waiting {
                        score,
                        index: None,
                        joined_at_ms: now_ms,
                    },
                ),
            );
            r.by_visitor.insert(visitor_id.clone(), ticket.clone());
            r.waiting += 1;
            if r.sealed {
                r.append(ticket.clone());
            } else {
                r.prequeue.insert((score, ticket.clone()), ());
            }
            r.see(ticket, now_ms);
            let prequeue = !r.sealed;
            let seq = r.seq;
            r.record(|| QueueLogEntry::Joined {
                ticket: ticket.to_string(),
                at_ms: now_ms,
                prequeue,
                seq,
            });
            Ok(Joined {
                ticket: ticket.clone(),
                visitor_id: visitor_id.clone(),
                rejoined: false,
            })
        })
    }

    async fn place(
        &self,
        event_id: &EventId,
        ticket: &QueueTicket,
        now_ms: UnixMs,
    ) -> Result<Option<Place>, QueueError> {
        self.with(event_id, Some(now_ms), |r| {
            let Some((visitor_id, rec)) = r.tickets.get(ticket).cloned() else {
                return Ok(None);
            };
            let state = match rec {
                Rec::Waiting { index: None, .. } => PlaceState::Prequeue,
                Rec::Waiting { index: Some(i), .. } => PlaceState::Waiting {
                    ahead: r.counts.before(i),
                },
                Rec::Admitted {
                    admitted_at_ms,
                    token_expires_at_ms,
                } => match r.active.get(&visitor_id) {
                    Some(&until) if until > now_ms => PlaceState::Admitted {
                        admitted_at_ms,
                        token_expires_at_ms,
                        slot_until_ms: until,
                    },
                    _ => PlaceState::Expired,
                },
                Rec::Expired => PlaceState::Expired,
            };
            if matches!(state, PlaceState::Prequeue | PlaceState::Waiting { .. }) {
                r.see(ticket, now_ms);
            }
            let customer_id = r.customer_of.get(ticket).cloned();
            Ok(Some(Place {
                visitor_id,
                customer_id,
                state,
            }))
        })
    }

    async fn admit(&self, event_id: &EventId, now_ms: UnixMs) -> Result<AdmitReport, QueueError> {
        self.with(event_id, Some(now_ms), |r| Ok(r.step(now_ms, None, true)))
    }

    async fn touch(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        now_ms: UnixMs,
    ) -> Result<bool, QueueError> {
        self.with(event_id, Some(now_ms), |r| {
            let Some(&until) = r.active.get(visitor_id) else {
                return Ok(false);
            };
            if until <= now_ms {
                return Ok(false);
            }
            let token_expires_at_ms =
                match r.by_visitor.get(visitor_id).and_then(|t| r.tickets.get(t)) {
                    Some((
                        _,
                        Rec::Admitted {
                            token_expires_at_ms,
                            ..
                        },
                    )) => *token_expires_at_ms,
                    _ => return Ok(false),
                };
            let next = queue::slot_until(&r.config, now_ms, token_expires_at_ms);
            r.set_active(visitor_id, next);
            Ok(true)
        })
    }

    async fn leave(&self, event_id: &EventId, visitor_id: &VisitorId) -> Result<(), QueueError> {
        self.with(event_id, None, |r| {
            r.free(visitor_id);
            Ok(())
        })
    }

    async fn bind_hold(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        hold_id: &HoldId,
    ) -> Result<(), QueueError> {
        self.with(event_id, None, |r| {
            if r.active.contains_key(visitor_id) {
                r.hold_visitor.insert(hold_id.clone(), visitor_id.clone());
                r.visitor_holds
                    .entry(visitor_id.clone())
                    .or_default()
                    .push(hold_id.clone());
            }
            Ok(())
        })
    }

    async fn bought(&self, event_id: &EventId, hold_id: &HoldId) -> Result<(), QueueError> {
        self.with(event_id, None, |r| {
            if let Some(v) = r.hold_visitor.get(hold_id).cloned() {
                r.free(&v);
            }
            Ok(())
        })
    }

    async fn stats(&self, event_id: &EventId, now_ms: UnixMs) -> Result<RoomStats, QueueError> {
        self.with(event_id, Some(now_ms), |r| {
            Ok(RoomStats {
                room: r.config.clone(),
                waiting: r.waiting,
                active: r.active.len() as u64,
                admitted_total: r.admitted_total,
                admitted_in_window: r.in_window(now_ms / 1000),
            })
        })
    }

    async fn rooms(&self) -> Result<Vec<EventId>, QueueError> {
        Ok(crate::lock(&self.rooms).keys().cloned().collect())
    }
}
