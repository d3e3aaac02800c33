//! Live faults: a plan from `faults/plans/` applied to the local real stack
//! while the load runs, through `ci/stack kill|start|freeze|thaw NAME`.
//!
//! The vocabulary is the simulator's; what a step means on real processes:
//!
//! | step | on the local stack |
//! |---|---|
//! | `crash` / `restart` of `redis` or a service replica | SIGKILL, then the same command again (Redis reloads its AOF) |
//! | `crash` / `restart` of `kafka` | SIGSTOP / SIGCONT: the broker stops answering every client. tansu's memory storage would forget acknowledged messages on a real restart, which a Kafka broker with acks=all does not do; a frozen broker is the honest outage here |
//! | `payment-faults` | `PUT /internal/payment-faults` |
//! | `partition`, `heal`, `latency`, `packet-loss` | skipped: loopback has no links to cut (the simulator runs these) |
//!
//! At the plan's `heal_at_ms` everything still down is brought back and the
//! payment gateway gets the run's own fault settings again.

use crate::client::Api;
use crate::record::{EndpointFigures, Second};
use crate::summary::{AppliedFault, FaultReport};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ticketing_faults::{Fault, FaultPlan};
use tokio::time::Instant;

/// Parts of the stack a plan can crash (names as `ci/stack` knows them).
const PARTS: &[&str] = &[
    "redis",
    "kafka",
    "catalog",
    "payment",
    "reservation-1",
    "reservation-2",
    "order-1",
    "order-2",
];

#[derive(Debug)]
pub struct LivePlan {
    pub plan: FaultPlan,
    pub script: PathBuf,
    pub dir: PathBuf,
    pub api: Api,
    /// What to restore on heal (the run's own payment fault settings).
    pub payment_defaults: Value,
}

async fn stack(script: &Path, dir: &Path, verb: &str, name: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(script)
            .args([verb, name])
            .env("TICKETING_STACK_DIR", dir)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => "done".into(),
        Ok(Ok(o)) => format!(
            "failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "failed: ci/stack did not finish within 90 s".into(),
    }
}

impl LivePlan {
    /// Applies the steps at their times (from `load_started`), then heals.
    pub async fn run(self, load_started: Instant) -> Vec<AppliedFault> {
        let mut applied = Vec::new();
        let mut down: Vec<String> = Vec::new();
        let mut frozen = false;
        for step in &self.plan.steps {
            tokio::time::sleep_until(load_started + Duration::from_millis(step.at_ms)).await;
            let at_ms = load_started.elapsed().as_millis() as u64;
            let (what, result) = match &step.fault {
                Fault::Crash { host } if host == "kafka" => {
                    frozen = true;
                    (
                        "freeze kafka".to_string(),
                        stack(&self.script, &self.dir, "freeze", "kafka").await,
                    )
                }
                Fault::Restart { host } if host == "kafka" => {
                    frozen = false;
                    (
                        "thaw kafka".to_string(),
                        stack(&self.script, &self.dir, "thaw", "kafka").await,
                    )
                }
                Fault::Crash { host } if PARTS.contains(&host.as_str()) => {
                    down.push(host.clone());
                    (
                        format!("kill {host}"),
                        stack(&self.script, &self.dir, "kill", host).await,
                    )
                }
                Fault::Restart { host } if PARTS.contains(&host.as_str()) => {
                    down.retain(|h| h != host);
                    (
                        format!("start {host}"),
                        stack(&self.script, &self.dir, "start", host).await,
                    )
                }
                Fault::PaymentFaults {
                    decline_rate,
                    error_rate,
                    timeout_rate,
                } => {
                    let mut body = self.payment_defaults.clone();
                    body["decline_rate"] = (*decline_rate).into();
                    body["error_rate"] = (*error_rate).into();
                    body["timeout_rate"] = (*timeout_rate).into();
                    let r = match self.api.set_payment_faults(&body).await {
                        Ok(()) => "done".into(),
                        Err(e) => format!("failed: {e}"),
                    };
                    (
                        format!("payment faults {decline_rate}/{error_rate}/{timeout_rate}"),
                        r,
                    )
                }
                other @ (Fault::Crash { .. } | Fault::Restart { .. }) => (
                    describe(other),
                    "skipped: not a part of the local stack".into(),
                ),
                other => (
                    describe(other),
                    "skipped: network faults need the simulator (loopback has no links to cut)"
                        .into(),
                ),
            };
            eprintln!(
                "load: fault at {:.1} s: {what}: {result}",
                at_ms as f64 / 1000.0
            );
            applied.push(AppliedFault {
                at_ms,
                fault: what,
                result,
            });
        }
        tokio::time::sleep_until(load_started + Duration::from_millis(self.plan.heal_at_ms)).await;
        let at_ms = load_started.elapsed().as_millis() as u64;
        if frozen {
            let r = stack(&self.script, &self.dir, "thaw", "kafka").await;
            applied.push(AppliedFault {
                at_ms,
                fault: "heal: thaw kafka".into(),
                result: r,
            });
        }
        for host in down {
            let r = stack(&self.script, &self.dir, "start", &host).await;
            applied.push(AppliedFault {
                at_ms,
                fault: format!("heal: start {host}"),
                result: r,
            });
        }
        let r = match self.api.set_payment_faults(&self.payment_defaults).await {
            Ok(()) => "done".into(),
            Err(e) => format!("failed: {e}"),
        };
        applied.push(AppliedFault {
            at_ms,
            fault: "heal: payment faults reset".into(),
            result: r,
        });
        eprintln!(
            "load: plan {} healed at {:.1} s",
            self.plan.name,
            at_ms as f64 / 1000.0
        );
        applied
    }
}

/// A step in words (for the log and the summary).
fn describe(f: &Fault) -> String {
    match f {
        Fault::Partition { a, b } => format!("partition {a} <-> {b}"),
        Fault::PartitionOneWay { from, to } => format!("partition {from} -> {to}"),
        Fault::Heal { a, b } => format!("heal {a} <-> {b}"),
        Fault::Crash { host } => format!("crash {host}"),
        Fault::Restart { host } => format!("restart {host}"),
        Fault::Latency { a, b, latency_ms } => format!("latency {a} <-> {b} {latency_ms} ms"),
        Fault::PacketLoss { a, b, rate } => format!("packet loss {a} <-> {b} {rate}"),
        Fault::PaymentFaults { .. } => "payment faults".into(),
    }
}

/// The fault window in ms from the start of load: first step to heal.
pub fn window_ms(plan: &FaultPlan) -> (u64, u64) {
    (
        plan.steps.first().map(|s| s.at_ms).unwrap_or(0),
        plan.heal_at_ms,
    )
}

/// Errors in the fault window and the time to recover after the heal, from
/// the per-second timeline.
pub fn report(
    plan: &FaultPlan,
    applied: Vec<AppliedFault>,
    timeline: &[Second],
    window: EndpointFigures,
) -> FaultReport {
    let (start_ms, heal_ms) = window_ms(plan);
    let in_window = |i: usize| {
        let (from, to) = (i as u64 * 1000, i as u64 * 1000 + 1000);
        to > start_ms && from < heal_ms
    };
    let requests_in_window = (0..timeline.len())
        .filter(|i| in_window(*i))
        .map(|i| timeline[i].requests)
        .sum();
    let errors_in_window = (0..timeline.len())
        .filter(|i| in_window(*i))
        .map(|i| timeline[i].errors)
        .sum();
    let heal_second = (heal_ms / 1000) as usize;
    let last_error = (heal_second..timeline.len())
        .rev()
        .find(|i| timeline[*i].errors > 0);
    let recovery_ms = match last_error {
        None => Some(0),
        // Errors in the very last second: no sign they stopped.
        Some(i) if i + 1 == timeline.len() => None,
        Some(i) => Some(((i as u64 + 1) * 1000).saturating_sub(heal_ms)),
    };
    FaultReport {
        plan: plan.name.clone(),
        applied,
        window_ms: (start_ms, heal_ms),
        requests_in_window,
        errors_in_window,
        window,
        recovery_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> EndpointFigures {
        crate::summary::sum_endpoints([]).unwrap()
    }

    fn plan() -> FaultPlan {
        FaultPlan::named("redis-restart", 1).unwrap()
    }

    #[test]
    fn recovery_is_measured_from_the_heal() {
        // redis-restart: first step at 300 ms, heal at 20 s.
        let mut t = vec![
            Second {
                requests: 10,
                errors: 0,
                p95_ms: None
            };
            30
        ];
        t[1].errors = 4;
        t[21].errors = 1; // errors until 22 s → 2 s after the heal
        let r = report(&plan(), vec![], &t, none());
        assert_eq!(r.errors_in_window, 4);
        assert_eq!(r.recovery_ms, Some(2_000));
        t[29].errors = 1;
        assert_eq!(report(&plan(), vec![], &t, none()).recovery_ms, None);
        t[29].errors = 0;
        t[21].errors = 0;
        assert_eq!(report(&plan(), vec![], &t, none()).recovery_ms, Some(0));
    }
}
