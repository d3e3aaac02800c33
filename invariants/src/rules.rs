//! The brief's invariants, one pure function each over a [`Snapshot`],
//! numbered as in the design brief. Each returns a [`Verdict`]: what it
//! observed when it holds, and every breach (with the seat, order or
//! message) when it does not.
//!
//! Layer: imports `snapshot`, `queue` and `customers` (invariants 8 and 9's judgements) and
//! `ticketing-domain`'s types.

use crate::snapshot::{Snapshot, ToldWhat};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, OrderId, OrderStatus, SeatId, SeatStatus,
};

/// The invariants: id and one line saying what holds.
pub const INVARIANTS: &[(&str, &str)] = &[
    (
        "0-truth-readable",
        "the checker could read every piece of ground truth (a failed read is never an empty set)",
    ),
    ("1-no-oversell", "each (event, seat) sold at most once"),
    (
        "2-sold-seats-confirmed",
        "seat map SOLD = valid tickets = seats of CONFIRMED orders (= the store's owners), within capacity; a seat still sold to an order being refunded has no valid ticket",
    ),
    (
        "3-money",
        "captures match CONFIRMED orders one to one (or orders cancelled after the sale); every authorization ends captured or voided; a REFUNDED order was refunded its capture exactly once; captured − refunded = CONFIRMED + refunds owed",
    ),
    (
        "4-liveness",
        "after healing every order is final, no hold outlives its expiry, the outbox drains into the broker",
    ),
    (
        "5-idempotency",
        "one Idempotency-Key, one order; one order, at most one capture",
    ),
    (
        "6-client-truth",
        "a client told an order's status was told the truth; told CONFIRMED, it owns its seats, and no two clients for one seat",
    ),
    (
        "7-convergence",
        "the seat map equals the replay of its change log and what every stream subscriber sees",
    ),
    (
        "8-waiting-room",
        "admissions within both caps and in queue order, none twice; no hold without admission; no place lost while asked for; positions never go back; the room drains once its visitors fall silent",
    ),
    (
        "9-customer-limits",
        "no customer ever has more seats (held and sold) or live holds on one event than its limits, in the store's truth or in what clients were told",
    ),
    (
        "10-history",
        "what clients saw while it happened is linearizable per seat (a sold seat never read available again), and seat-map versions never go back",
    ),
    (
        "11-settlement",
        "every capture and refund is in exactly one settlement batch of its event, and each batch's sums are its entries'",
    ),
];

/// One broken invariant with the offending seat, order or message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
}

/// One invariant judged on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub invariant: &'static str,
    pub summary: &'static str,
    /// What was looked at (and what could not be), for a passing line.
    pub observed: String,
    pub violations: Vec<String>,
}

impl Verdict {
    fn new(invariant: &'static str, observed: String, violations: Vec<String>) -> Verdict {
        let summary = INVARIANTS
            .iter()
            .find(|(id, _)| *id == invariant)
            .map_or("", |(_, s)| *s);
        Verdict {
            invariant,
            summary,
            observed,
            violations,
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Every invariant, in order.
pub fn judge(s: &Snapshot) -> Vec<Verdict> {
    vec![
        truth_readable(s),
        no_oversell(s),
        sold_seats_confirmed(s),
        money(s),
        liveness(s),
        idempotency(s),
        client_truth(s),
        convergence(s),
        waiting_room(s),
        customer_limits(s),
        history(s),
        settlement(s),
    ]
}

/// Every breach of every invariant.
pub fn check(s: &Snapshot) -> Vec<Violation> {
    judge(s)
        .into_iter()
        .flat_map(|v| {
            v.violations.into_iter().map(move |detail| Violation {
                invariant: v.invariant.to_owned(),
                detail,
            })
        })
        .collect()
}

/// Invariant 9 (`crate::customers`): the per-customer limits.
pub fn customer_limits(s: &Snapshot) -> Verdict {
    let (observed, violations) = crate::customers::judge(s.customers.as_ref());
    Verdict::new("9-customer-limits", observed, violations)
}

/// Invariant 10 (`crate::history`): the client history, checked by the
/// harness (the search is its cost) and reported here.
pub fn history(s: &Snapshot) -> Verdict {
    match &s.history {
        None => Verdict::new(
            "10-history",
            "not judged: no history recorded".to_owned(),
            Vec::new(),
        ),
        Some(h) => Verdict::new("10-history", h.observed(), h.violations.clone()),
    }
}

/// Invariant 11 (`crate::settlement`): settlement batches against the ledger.
pub fn settlement(s: &Snapshot) -> Verdict {
    let (observed, violations) = crate::settlement::judge(s);
    Verdict::new("11-settlement", observed, violations)
}

/// Invariant 8 (`crate::queue`): the waiting room's caps, order and visitors.
pub fn waiting_room(s: &Snapshot) -> Verdict {
    let (observed, violations) = crate::queue::judge(s);
    Verdict::new("8-waiting-room", observed, violations)
}

pub fn truth_readable(s: &Snapshot) -> Verdict {
    Verdict::new(
        "0-truth-readable",
        "every read answered".to_owned(),
        s.unreadable.clone(),
    )
}

/// The seats sold more than once, each with how: in two CONFIRMED orders,
/// with two tickets, or listed twice among the store's owners.
pub fn oversold_seats(s: &Snapshot) -> BTreeMap<(EventId, SeatId), Vec<String>> {
    let mut confirmed: BTreeMap<(&EventId, &SeatId), Vec<&OrderId>> = BTreeMap::new();
    for o in s.confirmed() {
        for seat in &o.seat_ids {
            confirmed
                .entry((&o.event_id, seat))
                .or_default()
                .push(&o.order_id);
        }
    }
    let mut ticketed: BTreeMap<(&EventId, &SeatId), Vec<&OrderId>> = BTreeMap::new();
    for t in &s.tickets {
        ticketed
            .entry((&t.event_id, &t.seat_id))
            .or_default()
            .push(&t.order_id);
    }
    let mut owned: BTreeMap<(&EventId, &SeatId), Vec<&OrderId>> = BTreeMap::new();
    for e in &s.events {
        for (seat, order) in e.owners.iter().flatten() {
            owned.entry((&e.event_id, seat)).or_default().push(order);
        }
    }
    let mut out: BTreeMap<(EventId, SeatId), Vec<String>> = BTreeMap::new();
    for (how, counts) in [
        ("CONFIRMED orders", &confirmed),
        ("tickets for orders", &ticketed),
        ("store owners", &owned),
    ] {
        for ((event, seat), orders) in counts.iter().filter(|(_, o)| o.len() > 1) {
            out.entry(((*event).clone(), (*seat).clone()))
                .or_default()
                .push(format!("{how} {}", join(orders)));
        }
    }
    out
}

pub fn no_oversell(s: &Snapshot) -> Verdict {
    let twice = oversold_seats(s);
    let violations = twice
        .iter()
        .map(|((event, seat), how)| format!("seat {event}/{seat} sold twice: {}", how.join("; ")))
        .collect();
    let seats: u64 = s.events.iter().map(|e| e.capacity).sum();
    Verdict::new(
        "1-no-oversell",
        format!("{seats} seats, none sold twice"),
        violations,
    )
}

pub fn sold_seats_confirmed(s: &Snapshot) -> Verdict {
    let mut violations = Vec::new();
    let mut sold_total = 0;
    for e in &s.events {
        let sold: BTreeSet<&SeatId> = e
            .seats
            .iter()
            .filter(|(_, st)| **st == SeatStatus::Sold)
            .map(|(seat, _)| seat)
            .collect();
        sold_total += sold.len();
        if sold.len() as u64 > e.capacity {
            violations.push(format!(
                "{}: {} seats sold of {}",
                e.event_id,
                sold.len(),
                e.capacity
            ));
        }
        violations.extend(seat_disagreements(s, &e.event_id, &sold));
    }
    Verdict::new(
        "2-sold-seats-confirmed",
        format!("{sold_total} sold seats agree"),
        violations,
    )
}

/// Seats where the seat map, the tickets, the CONFIRMED orders and the
/// store's owners do not tell the same story.
fn seat_disagreements(s: &Snapshot, event: &EventId, sold: &BTreeSet<&SeatId>) -> Vec<String> {
    let Some(fact) = s.event(event) else {
        return Vec::new();
    };
    let mut tickets: BTreeMap<&SeatId, Vec<&OrderId>> = BTreeMap::new();
    for t in s.tickets.iter().filter(|t| &t.event_id == event) {
        tickets.entry(&t.seat_id).or_default().push(&t.order_id);
    }
    let mut ordered: BTreeMap<&SeatId, Vec<&OrderId>> = BTreeMap::new();
    for o in s.confirmed().filter(|o| &o.event_id == event) {
        for seat in &o.seat_ids {
            ordered.entry(seat).or_default().push(&o.order_id);
        }
    }
    let owners: Option<BTreeMap<&SeatId, &OrderId>> = fact
        .owners
        .as_ref()
        .map(|o| o.iter().map(|(s, o)| (s, o)).collect());
    // Seats of orders cancelled but not yet refunded stay SOLD to them, with
    // their tickets void, until the refund is made (REFUND_FAILED: until an
    // operator's retry).
    let mut owed: BTreeMap<&SeatId, &OrderId> = BTreeMap::new();
    for o in s
        .orders
        .iter()
        .filter(|o| &o.event_id == event && owes(o.status))
    {
        for seat in &o.seat_ids {
            owed.insert(seat, &o.order_id);
        }
    }
    let mut seats: BTreeSet<&SeatId> = sold.clone();
    seats.extend(tickets.keys());
    seats.extend(ordered.keys());
    seats.extend(owners.iter().flat_map(|o| o.keys()));
    let mut out = Vec::new();
    for seat in seats {
        let t = tickets.get(seat).map(Vec::as_slice).unwrap_or_default();
        let c = ordered.get(seat).map(Vec::as_slice).unwrap_or_default();
        let owner = owners.as_ref().map(|o| o.get(seat).copied());
        let ticketed =
            sold.contains(seat) && t.len() == 1 && c == t && owner.is_none_or(|o| o == Some(t[0]));
        let refunding = owed.get(seat).is_some_and(|order| {
            sold.contains(seat)
                && t.is_empty()
                && c.is_empty()
                && owner.is_none_or(|o| o == Some(order))
        });
        let agree = ticketed || refunding;
        if !agree {
            let status = fact
                .seats
                .get(seat)
                .map_or("not in it".to_owned(), |st| format!("{st:?}"));
            let owner = match owner {
                None => "not read".to_owned(),
                Some(None) => "none".to_owned(),
                Some(Some(o)) => o.to_string(),
            };
            out.push(format!(
                "seat {event}/{seat}: seat map {status}, tickets for [{}], CONFIRMED orders [{}], store owner {owner}",
                join(t),
                join(c),
            ));
        }
    }
    out
}

/// Ledger kinds per order, in ledger order.
fn ledger_kinds(s: &Snapshot) -> BTreeMap<&OrderId, Vec<LedgerKind>> {
    let mut kinds: BTreeMap<&OrderId, Vec<LedgerKind>> = BTreeMap::new();
    for e in &s.ledger {
        kinds.entry(&e.order_id).or_default().push(e.kind);
    }
    kinds
}

fn count(kinds: &[LedgerKind], kind: LedgerKind) -> usize {
    kinds.iter().filter(|k| **k == kind).count()
}

/// Statuses of an order cancelled after the sale whose refund may still be owed.
fn owes(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Cancelling | OrderStatus::RefundFailed)
}

/// Sum of one kind's amounts in one order's entries.
fn sum(entries: &[&LedgerEntry], kind: LedgerKind) -> i64 {
    entries
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.amount_cents)
        .sum()
}

pub fn money(s: &Snapshot) -> Verdict {
    let kinds = ledger_kinds(s);
    let orders = s.orders_by_id();
    let mut entries: BTreeMap<&OrderId, Vec<&LedgerEntry>> = BTreeMap::new();
    for e in &s.ledger {
        entries.entry(&e.order_id).or_default().push(e);
    }
    let mut violations = Vec::new();
    for o in s.confirmed() {
        let ks = kinds
            .get(&o.order_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if count(ks, LedgerKind::Capture) == 0 {
            violations.push(format!(
                "CONFIRMED order {} has no capture (ledger {ks:?})",
                o.order_id
            ));
        }
    }
    let (mut net, mut kept) = (0i64, 0i64);
    for (id, ks) in &kinds {
        let status = orders.get(id).map(|o| o.status);
        let sold = matches!(status, Some(OrderStatus::Confirmed | OrderStatus::Refunded))
            || status.is_some_and(owes);
        if count(ks, LedgerKind::Capture) > 0 && !sold {
            violations.push(format!("payment {id} captured but the order is {status:?}"));
        }
        if count(ks, LedgerKind::Authorize) > 0
            && count(ks, LedgerKind::Capture) == 0
            && count(ks, LedgerKind::Void) == 0
        {
            violations.push(format!("authorization for {id} never captured or voided"));
        }
        violations.extend(refund_breach(id, status, &entries[id]));
        let e = &entries[id];
        let (captured, refunded) = (sum(e, LedgerKind::Capture), sum(e, LedgerKind::Refund));
        net += captured - refunded;
        if status == Some(OrderStatus::Confirmed) || (status.is_some_and(owes) && refunded == 0) {
            kept += captured;
        }
    }
    if net != kept {
        violations.push(format!(
            "captured − refunded = {net} cents, but CONFIRMED orders and refunds owed come to {kept}"
        ));
    }
    Verdict::new(
        "3-money",
        format!(
            "{} payments, {} ledger entries agree (net {net} cents)",
            kinds.len(),
            s.ledger.len()
        ),
        violations,
    )
}

/// A refund where none is due, twice, or of another amount than the capture.
fn refund_breach(id: &OrderId, status: Option<OrderStatus>, e: &[&LedgerEntry]) -> Option<String> {
    let refunds = e.iter().filter(|e| e.kind == LedgerKind::Refund).count();
    let (captured, refunded) = (sum(e, LedgerKind::Capture), sum(e, LedgerKind::Refund));
    let cancelled = status == Some(OrderStatus::Refunded) || status.is_some_and(owes);
    if refunds > 0 && !cancelled {
        return Some(format!("payment {id} refunded but the order is {status:?}"));
    }
    if refunds > 1 {
        return Some(format!("payment {id} refunded {refunds} times"));
    }
    if status == Some(OrderStatus::Refunded) && (refunds != 1 || refunded != captured) {
        return Some(format!(
            "REFUNDED order {id}: refunded {refunded} of a {captured} cents capture"
        ));
    }
    if refunds == 1 && refunded != captured {
        return Some(format!(
            "payment {id} refunded {refunded} of {captured} cents"
        ));
    }
    None
}

pub fn liveness(s: &Snapshot) -> Verdict {
    let mut violations = Vec::new();
    if !s.quiescence.reached {
        violations.push(format!("not quiescent: {}", s.quiescence.detail));
    }
    let open: Vec<String> = s
        .orders
        .iter()
        .filter(|o| !o.status.is_terminal())
        .map(|o| format!("{} {}", o.order_id, o.progress))
        .collect();
    if !open.is_empty() {
        violations.push(format!(
            "{} of {} orders not final, e.g. {:?}",
            open.len(),
            s.orders.len(),
            &open[..open.len().min(5)]
        ));
    }
    if s.outbox.backlog > 0 {
        violations.push(format!("{} outbox messages unsent", s.outbox.backlog));
    }
    if let (Some(written), Some(published)) = (&s.outbox.written, &s.outbox.published) {
        let published: BTreeSet<_> = published.iter().collect();
        let lost: Vec<_> = written.iter().filter(|m| !published.contains(m)).collect();
        if let Some(first) = lost.first() {
            violations.push(format!(
                "{} outbox messages never reached the broker, e.g. {first}",
                lost.len()
            ));
        }
    }
    violations.extend(lingering_holds(s));
    Verdict::new(
        "4-liveness",
        format!("quiescent, {} orders final, outbox drained", s.orders.len()),
        violations,
    )
}

/// HELD seats no live hold covers, per event whose holds are all known.
fn lingering_holds(s: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for e in &s.events {
        let Some(holds) = &e.holds else { continue };
        let live: BTreeSet<&SeatId> = holds
            .iter()
            .filter(|h| h.expires_at_ms.saturating_add(s.hold_grace_ms) > s.now_ms)
            .flat_map(|h| &h.seat_ids)
            .collect();
        let stuck: Vec<&SeatId> = e
            .seats
            .iter()
            .filter(|(seat, st)| **st == SeatStatus::Held && !live.contains(seat))
            .map(|(seat, _)| seat)
            .collect();
        if let Some(first) = stuck.first() {
            out.push(format!(
                "{}: {} HELD seats without a live hold (past expiry + {} ms grace), e.g. {first}",
                e.event_id,
                stuck.len(),
                s.hold_grace_ms
            ));
        }
    }
    out
}

pub fn idempotency(s: &Snapshot) -> Verdict {
    let mut violations = Vec::new();
    let mut by_key: BTreeMap<&str, BTreeSet<&OrderId>> = BTreeMap::new();
    for t in s.told.iter().flatten() {
        if let ToldWhat::OrderAccepted { key, order_id } = &t.what {
            by_key.entry(key).or_default().insert(order_id);
        }
    }
    for (key, ids) in by_key.iter().filter(|(_, ids)| ids.len() > 1) {
        violations.push(format!(
            "key {key} answered with orders [{}]",
            join(&ids.iter().copied().collect::<Vec<_>>())
        ));
    }
    for (id, ks) in ledger_kinds(s) {
        let n = count(&ks, LedgerKind::Capture);
        if n > 1 {
            violations.push(format!("order {id} captured {n} times"));
        }
    }
    let observed = if by_key.is_empty() {
        "no double capture (no Idempotency-Key answers recorded by this harness)".to_owned()
    } else {
        format!("{} keys, each one order; no double capture", by_key.len())
    };
    Verdict::new("5-idempotency", observed, violations)
}

pub fn client_truth(s: &Snapshot) -> Verdict {
    let Some(told) = &s.told else {
        return Verdict::new(
            "6-client-truth",
            "not judged: this harness kept no client record".to_owned(),
            Vec::new(),
        );
    };
    let orders = s.orders_by_id();
    let mut violations = Vec::new();
    let mut confirmed_to: BTreeMap<(&EventId, &SeatId), (&str, &OrderId)> = BTreeMap::new();
    let mut finals = 0;
    let last = last_finals(told);
    for (i, t) in told.iter().enumerate() {
        let ToldWhat::OrderFinal {
            order_id,
            event_id,
            status,
            seat_ids,
        } = &t.what
        else {
            continue;
        };
        finals += 1;
        // Told CONFIRMED, then (after the client's own cancel) told how
        // the cancellation ended: the later answer is the one that holds.
        if let Some((j, later)) = last.get(&(t.client.as_str(), order_id))
            && *j > i
            && cancelled_after(*status, *later)
        {
            continue;
        }
        let truth = orders.get(order_id).map(|o| o.status);
        if truth != Some(*status) {
            violations.push(format!(
                "client {} told {status:?} for {order_id}, which ended {truth:?}",
                t.client
            ));
        }
        if *status != OrderStatus::Confirmed {
            continue;
        }
        for seat in seat_ids {
            if let Some(why) = not_owned(s, event_id, seat, order_id) {
                violations.push(format!(
                    "client {} told CONFIRMED for seat {event_id}/{seat} (order {order_id}) but {why}",
                    t.client
                ));
            }
            if let Some((other, prev)) =
                confirmed_to.insert((event_id, seat), (&t.client, order_id))
                && prev != order_id
            {
                violations.push(format!(
                    "clients {other} and {} both told CONFIRMED for seat {event_id}/{seat}",
                    t.client
                ));
            }
        }
    }
    Verdict::new(
        "6-client-truth",
        format!("{finals} final answers true"),
        violations,
    )
}

/// Per (client, order), the last final answer the client was told: its
/// position and status.
fn last_finals(told: &[crate::snapshot::Told]) -> BTreeMap<(&str, &OrderId), (usize, OrderStatus)> {
    let mut last = BTreeMap::new();
    for (i, t) in told.iter().enumerate() {
        if let ToldWhat::OrderFinal {
            order_id, status, ..
        } = &t.what
        {
            last.insert((t.client.as_str(), order_id), (i, *status));
        }
    }
    last
}

/// Whether an order told `earlier` may later be told `later` because it
/// was cancelled after the sale in between.
fn cancelled_after(earlier: OrderStatus, later: OrderStatus) -> bool {
    use OrderStatus::{Cancelling, Confirmed, RefundFailed, Refunded};
    matches!(
        (earlier, later),
        (
            Confirmed | RefundFailed | Cancelling,
            Refunded | RefundFailed | Cancelling
        )
    ) && earlier != later
}

/// Why `order` does not own `seat`, if it does not: no ticket of its own,
/// or the store gives the seat to someone else.
fn not_owned(s: &Snapshot, event: &EventId, seat: &SeatId, order: &OrderId) -> Option<String> {
    let ticketed = s
        .tickets
        .iter()
        .any(|t| &t.event_id == event && &t.seat_id == seat && &t.order_id == order);
    if !ticketed {
        return Some("no ticket of that order exists".to_owned());
    }
    let owners = s.event(event).and_then(|e| e.owners.as_ref())?;
    let owner = owners.iter().find(|(st, _)| st == seat).map(|(_, o)| o);
    (owner != Some(order)).then(|| format!("the store sells it to {owner:?}"))
}

pub fn convergence(s: &Snapshot) -> Verdict {
    let mut violations = Vec::new();
    for w in &s.streams {
        let Some(e) = s.event(&w.event_id) else {
            violations.push(format!("{} follows unknown event {}", w.name, w.event_id));
            continue;
        };
        if w.version != e.version {
            violations.push(format!(
                "{} is at version {} of {}",
                w.name, w.version, e.version
            ));
        }
        if w.gaps > 0 {
            violations.push(format!("{} saw {} version gaps", w.name, w.gaps));
        }
        if let Some((seat, status)) = e
            .seats
            .iter()
            .find(|(seat, st)| w.seats.get(*seat) != Some(st))
        {
            violations.push(format!(
                "{} sees seat {seat} as {:?}, truth {status:?}",
                w.name,
                w.seats.get(seat)
            ));
        }
    }
    let mut replayed = 0;
    for e in &s.events {
        let Some(changes) = &e.changes else { continue };
        replayed += 1;
        let mut replay: BTreeMap<&SeatId, SeatStatus> = e
            .seats
            .keys()
            .map(|seat| (seat, SeatStatus::Available))
            .collect();
        for (seat, status) in changes {
            replay.insert(seat, *status);
        }
        for (seat, status) in &e.seats {
            if replay.get(seat) != Some(status) {
                violations.push(format!(
                    "{}: seat {seat} is {status:?} but its change log says {:?}",
                    e.event_id,
                    replay.get(seat)
                ));
            }
        }
    }
    let observed = if s.streams.is_empty() && replayed == 0 {
        "not judged: this harness read no stream and no change log".to_owned()
    } else {
        format!(
            "{} streams and {replayed} change logs agree with the seat maps",
            s.streams.len()
        )
    };
    Verdict::new("7-convergence", observed, violations)
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
