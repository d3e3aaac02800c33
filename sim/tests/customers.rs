//! Customers in the simulator: every user signs up and logs in at the
//! `accounts` host, and a few accounts are scalpers run by several processes
//! at once (two holds in parallel per round, every hold extended to the
//! cap). The limits hold (invariant 9 from the store and from the history),
//! the scalpers are the ones refused, and honest users are never rate
//! limited. (The zoo's `limit-checked-before-hold`: `tests/matrix.rs`.)

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use ticketing_faults::FaultPlan;
use ticketing_sim::check;
use ticketing_sim::users::Told;
use ticketing_sim::world::{self, SimConfig};

#[test]
fn scalpers_meet_the_limits_and_honest_users_are_never_rate_limited() {
    let cfg = SimConfig::small();
    let scalpers = cfg.scalpers.expect("the small world has scalpers");
    let first_scalper = cfg.users - scalpers.accounts * scalpers.processes;
    let plan = FaultPlan::named("none", 1).unwrap();
    let outcome = world::run(1, &plan, &cfg, None).unwrap();
    let snap = check::snapshot(&outcome.truth);
    let verdict = ticketing_invariants::judge(&snap)
        .into_iter()
        .find(|v| v.invariant == "9-customer-limits")
        .unwrap();
    assert!(
        verdict.passed() && verdict.observed.contains("holds granted to"),
        "{verdict:?}"
    );
    let history = ticketing_sim::lock(&outcome.truth.history);
    let mut customers: BTreeSet<&str> = BTreeSet::new();
    let (mut scalper_limited, mut honest_refused) = (0, Vec::new());
    for o in &history.observations {
        match &o.told {
            Told::LoggedIn { customer } => {
                customers.insert(customer);
            }
            Told::Refused { code, .. } if o.user >= first_scalper => {
                scalper_limited += usize::from(code == "CUSTOMER_LIMIT" || code == "RATE_LIMITED");
            }
            Told::Refused { status, code } => honest_refused.push((o.user, *status, code.clone())),
            _ => {}
        }
    }
    // Every honest user is a customer of its own; each scalper account is
    // shared by its processes.
    assert_eq!(customers.len(), first_scalper + scalpers.accounts);
    assert!(scalper_limited > 0, "the scalpers met the limits");
    assert!(
        honest_refused.iter().all(|(_, status, _)| *status != 429),
        "honest users rate limited: {honest_refused:?}"
    );
}
