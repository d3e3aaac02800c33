//! The waiting room's world (`--queued`): the rush event behind a queue,
//! most of 300 users arriving before the on-sale time, 5 % scalpers who
//! skip it. Every plan passes on a fixed seed, the run really went through
//! the queue (admissions, positions told, scalpers refused), it replays
//! exactly. (The zoo's queue bugs: `tests/matrix.rs`, caught by invariant 8.)

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use ticketing_domain::queue::QueueLogEntry;
use ticketing_faults::FaultPlan;
use ticketing_sim::world::{self, SimConfig};
use ticketing_sim::{check, run_one};

#[test]
fn the_queued_world_admits_in_order_within_the_caps_under_every_plan() {
    let cfg = SimConfig::queued();
    for name in ticketing_faults::plan_names() {
        let plan = FaultPlan::named(name, 1).unwrap();
        let report = run_one(&plan, 1, &cfg, None).unwrap();
        assert!(report.passed, "{name}: {:?}", report.violations);
        assert_eq!(report.sold_seats, 40, "{name}: sold out through the queue");
        // The plans aimed at this world reach their declared states (seed 1).
        if plan.waiting_room {
            for state in &plan.reaches {
                assert!(
                    report.reached.contains_key(state),
                    "{name}: {state} not reached: {:?}",
                    report.reached
                );
            }
        }
    }
}

#[test]
fn the_queue_is_really_used_and_the_run_replays() {
    let cfg = SimConfig::queued();
    let plan = FaultPlan::named("redis-restart", 2).unwrap();
    let outcome = world::run(2, &plan, &cfg, None).unwrap();
    let snap = check::snapshot(&outcome.truth);
    let q = snap.queue.as_ref().expect("a queued world has a room");
    let count = |f: fn(&QueueLogEntry) -> bool| q.log.iter().filter(|e| f(e)).count();
    let joined = count(|e| matches!(e, QueueLogEntry::Joined { .. }));
    let early = count(|e| matches!(e, QueueLogEntry::Joined { prequeue: true, .. }));
    let admitted = count(|e| matches!(e, QueueLogEntry::Admitted { .. }));
    assert!(joined > 250, "most users joined: {joined}");
    assert!(
        early > joined / 2 && early < joined,
        "pre-queue and FIFO: {early} of {joined}"
    );
    assert!(
        admitted >= 40,
        "at least one admission per seat: {admitted}"
    );
    assert!(
        q.positions.len() > 100,
        "positions were told: {}",
        q.positions.len()
    );
    assert!(q.unadmitted_holds.is_empty() && q.lost_places.is_empty());
    let verdict = ticketing_invariants::judge(&snap)
        .into_iter()
        .find(|v| v.invariant == "8-waiting-room")
        .unwrap();
    assert!(
        verdict.passed() && verdict.observed.contains("admitted"),
        "{verdict:?}"
    );
    let again = run_one(&plan, 2, &cfg, None).unwrap();
    let first = run_one(&plan, 2, &cfg, None).unwrap();
    assert_eq!(first.trace_hash, again.trace_hash, "same seed, same run");
}

/// The queue-outage plan really cuts the waiting room: while both queue
/// processes are cut from Redis (25–31 s) no admission step runs, and
/// still nobody's place is lost, nobody is admitted over the caps, and the
/// sale sells out through the queue.
#[test]
fn the_queue_outage_stops_admission_and_loses_no_place() {
    let cfg = SimConfig::queued();
    let plan = FaultPlan::named("queue-outage", 1).unwrap();
    assert!(plan.waiting_room);
    let outcome = world::run(1, &plan, &cfg, None).unwrap();
    let snap = check::snapshot(&outcome.truth);
    let q = snap.queue.as_ref().expect("a queued world has a room");
    let epoch = ticketing_sim::clock::EPOCH_MS;
    let steps_at = |from_ms: u64, to_ms: u64| {
        q.log
            .iter()
            .filter(|e| {
                matches!(e, QueueLogEntry::Step { at_ms, .. }
                if (epoch + from_ms..epoch + to_ms).contains(at_ms))
            })
            .count()
    };
    assert_eq!(
        steps_at(25_500, 31_000),
        0,
        "no admission step while cut off"
    );
    assert!(steps_at(20_000, 25_000) > 10, "steps ran before the cut");
    assert!(steps_at(31_500, 40_000) > 10, "and again after the heal");
    assert!(q.lost_places.is_empty() && q.undrained.is_none(), "{q:?}");
    let violations = ticketing_invariants::judge(&snap)
        .into_iter()
        .filter(|v| !v.passed())
        .collect::<Vec<_>>();
    assert!(violations.is_empty(), "{violations:?}");
}
