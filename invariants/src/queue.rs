//! Invariant 8, the waiting room: judged on the room's own admission log
//! (the caps and the order) and on what its visitors were told (no hold
//! without an admission, no place lost while its visitor kept asking,
//! positions that never go back).
//!
//! Layer: imports `snapshot`; `rules` wraps the result in its verdict.

use crate::snapshot::Snapshot;
use std::collections::BTreeMap;
use ticketing_domain::queue::QueueLogEntry;

/// Where each place went and when (from the log).
#[derive(Default)]
struct Fate {
    prequeue: bool,
    seq: u64,
    /// Admitted or dropped, and when.
    left_at_ms: Option<u64>,
    admitted_at_ms: Option<u64>,
    /// Admissions of this place (more than one is a double admission) and
    /// whether one came after the place was dropped.
    admissions: u32,
    admitted_after_drop: bool,
    dropped: bool,
}

fn fates(log: &[QueueLogEntry]) -> BTreeMap<&str, Fate> {
    let mut fates: BTreeMap<&str, Fate> = BTreeMap::new();
    for e in log {
        match e {
            QueueLogEntry::Joined {
                ticket,
                prequeue,
                seq,
                ..
            } => {
                let f = fates.entry(ticket).or_default();
                (f.prequeue, f.seq) = (*prequeue, *seq);
            }
            QueueLogEntry::Admitted { ticket, at_ms } => {
                let f = fates.entry(ticket).or_default();
                f.admitted_at_ms.get_or_insert(*at_ms);
                f.left_at_ms.get_or_insert(*at_ms);
                f.admissions += 1;
                f.admitted_after_drop |= f.dropped;
            }
            QueueLogEntry::Dropped { ticket, at_ms } => {
                let f = fates.entry(ticket).or_default();
                f.left_at_ms.get_or_insert(*at_ms);
                f.dropped = true;
            }
            QueueLogEntry::Step { .. } => {}
        }
    }
    fates
}

/// The caps: no step ends over `active_max`; no second admits more than
/// the most `admit_per_s` any of its steps ran with.
fn caps(log: &[QueueLogEntry], out: &mut Vec<String>) {
    let mut per_second: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
    for e in log {
        match e {
            QueueLogEntry::Step {
                at_ms,
                active,
                active_max,
                admit_per_s,
            } => {
                if *active > u64::from(*active_max) {
                    out.push(format!(
                        "{active} shoppers active at {at_ms} ms, over active_max {active_max}"
                    ));
                }
                let s = per_second.entry(at_ms / 1000).or_default();
                s.1 = s.1.max(*admit_per_s);
            }
            QueueLogEntry::Admitted { at_ms, .. } => {
                per_second.entry(at_ms / 1000).or_default().0 += 1;
            }
            _ => {}
        }
    }
    for (sec, (n, cap)) in per_second {
        if n > u64::from(cap) {
            out.push(format!(
                "{n} admissions in second {sec}, over admit_per_s {cap}"
            ));
        }
    }
}

/// The order: when someone from the FIFO queue is admitted, everyone from
/// the pre-queue and everyone who joined the FIFO queue before them has
/// left the queue already (admitted or dropped), at the latest in that step.
fn order(fates: &BTreeMap<&str, Fate>, out: &mut Vec<String>) {
    let mut fifo: Vec<(&str, &Fate)> = fates
        .iter()
        .filter(|(_, f)| !f.prequeue)
        .map(|(t, f)| (*t, f))
        .collect();
    fifo.sort_by_key(|(_, f)| f.seq);
    let prequeue_left: Vec<(&str, Option<u64>)> = fates
        .iter()
        .filter(|(_, f)| f.prequeue)
        .map(|(t, f)| (*t, f.left_at_ms))
        .collect();
    // The latest a place before the current one may have left: each
    // earlier place must have left by the time a later one was admitted.
    let mut earlier: Vec<(&str, Option<u64>)> = prequeue_left;
    for (ticket, f) in fifo {
        if let Some(t) = f.admitted_at_ms {
            for (other, left) in &earlier {
                if left.is_none_or(|l| l > t) {
                    out.push(format!(
                        "{ticket} (FIFO #{}) admitted at {t} ms while {other}, ahead of it, still waited",
                        f.seq
                    ));
                }
            }
        }
        earlier.push((ticket, f.left_at_ms));
        if out.len() > 20 {
            return;
        }
    }
}

/// What was observed and every breach (`rules::waiting_room` is the verdict).
pub fn judge(s: &Snapshot) -> (String, Vec<String>) {
    let Some(q) = &s.queue else {
        return (
            "not judged: no waiting-room admission log in this run".to_owned(),
            Vec::new(),
        );
    };
    let mut out = Vec::new();
    caps(&q.log, &mut out);
    let fates = fates(&q.log);
    order(&fates, &mut out);
    for (ticket, f) in &fates {
        if f.admissions > 1 {
            out.push(format!("{ticket} was admitted {} times", f.admissions));
        }
        if f.admitted_after_drop {
            out.push(format!("{ticket} was admitted after its place was dropped"));
        }
    }
    for h in &q.unadmitted_holds {
        out.push(format!("a hold without an admission was granted: {h}"));
    }
    for l in &q.lost_places {
        out.push(format!(
            "a place was lost while its visitor kept asking: {l}"
        ));
    }
    if let Some(left) = &q.undrained {
        out.push(format!(
            "the room did not drain once its visitors fell silent (stalled slots): {left}"
        ));
    }
    for (who, seen) in &q.positions {
        if let Some(w) = seen.windows(2).find(|w| w[1] > w[0]) {
            out.push(format!("{who} was told position {} after {}", w[1], w[0]));
        }
    }
    let admitted = fates
        .values()
        .filter(|f| f.admitted_at_ms.is_some())
        .count();
    let observed = format!(
        "{} places, {admitted} admitted within the caps and in order; {} visitors' positions",
        fates.len(),
        q.positions.len()
    );
    (observed, out)
}
