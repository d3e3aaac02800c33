//! Invariant 11's judgement: settlement batches against the payment ledger.
//!
//! Every ledger entry that moved money (a capture or a refund) is in
//! exactly one batch; a batch takes only such entries of its own event,
//! and its captured and refunded sums are those entries' amounts. So the
//! batches of an event add up to the event's captures minus its refunds,
//! and an entry is neither lost nor counted twice — through crashes,
//! racing workers and repeated closes. The harness closes everything left
//! after the run healed and quiesced before it reads the batches.
//!
//! Layer: imports `snapshot` and `ticketing-domain`'s types.

use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use ticketing_domain::{EventId, LedgerEntry, LedgerKind, SettlementBatch};

/// Most breaches listed one by one (a broken worker breaks thousands).
const LISTED_MAX: usize = 10;

/// What was observed, and every breach.
pub fn judge(s: &Snapshot) -> (String, Vec<String>) {
    let Some(batches) = &s.settlements else {
        return (
            "not judged: settlement batches not read".to_owned(),
            Vec::new(),
        );
    };
    let entries: BTreeMap<u64, &LedgerEntry> = s.ledger.iter().map(|e| (e.seq, e)).collect();
    let events: BTreeSet<&EventId> = s.ledger.iter().map(|e| &e.event_id).collect();
    let mut taken: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut net = 0;
    for b in batches.iter().filter(|b| events.contains(&b.event_id)) {
        violations.extend(batch_breach(b, &entries));
        for seq in &b.entry_seqs {
            taken.entry(*seq).or_default().push(b.batch_id);
        }
        net += b.net_cents();
    }
    let mut listed = 0;
    let (mut lost, mut twice) = (0, 0);
    for e in s.ledger.iter().filter(|e| e.kind.moves_money()) {
        let n = taken.get(&e.seq).map_or(0, Vec::len);
        if n == 1 {
            continue;
        }
        if n == 0 {
            lost += 1
        } else {
            twice += 1
        }
        if listed < LISTED_MAX {
            listed += 1;
            violations.push(match taken.get(&e.seq) {
                None => format!(
                    "{:?} {} of {} in no settlement batch",
                    e.kind, e.seq, e.order_id
                ),
                Some(ids) => format!(
                    "{:?} {} of {} settled {n} times (batches {ids:?})",
                    e.kind, e.seq, e.order_id
                ),
            });
        }
    }
    if lost + twice > listed {
        violations.push(format!(
            "in all: {lost} entries in no batch, {twice} in more than one"
        ));
    }
    let owed: i64 = s.ledger.iter().map(signed).sum();
    if net != owed {
        violations.push(format!(
            "the batches settle {net} cents but the ledger's captures − refunds are {owed}"
        ));
    }
    let observed = format!(
        "{} batches take each of {} captures and refunds once (net {net} cents)",
        batches.len(),
        s.ledger.iter().filter(|e| e.kind.moves_money()).count()
    );
    (observed, violations)
}

/// What an entry adds to what is settled.
fn signed(e: &LedgerEntry) -> i64 {
    match e.kind {
        LedgerKind::Capture => e.amount_cents,
        LedgerKind::Refund => -e.amount_cents,
        _ => 0,
    }
}

/// A batch taking what it may not, or whose sums are not its entries'.
fn batch_breach(b: &SettlementBatch, entries: &BTreeMap<u64, &LedgerEntry>) -> Option<String> {
    let (mut captured, mut refunded) = (0, 0);
    for seq in &b.entry_seqs {
        let Some(e) = entries.get(seq) else {
            return Some(format!(
                "batch {} takes entry {seq}, not in the ledger",
                b.batch_id
            ));
        };
        if e.event_id != b.event_id || !e.kind.moves_money() {
            return Some(format!(
                "batch {} of {} takes {:?} {seq} of {}",
                b.batch_id, b.event_id, e.kind, e.event_id
            ));
        }
        match e.kind {
            LedgerKind::Capture => captured += e.amount_cents,
            _ => refunded += e.amount_cents,
        }
    }
    (captured != b.captured_cents || refunded != b.refunded_cents).then(|| {
        format!(
            "batch {} says captured {} / refunded {}, its entries come to {captured} / {refunded}",
            b.batch_id, b.captured_cents, b.refunded_cents
        )
    })
}
