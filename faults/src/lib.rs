//! # ticketing-faults
//!
//! One vocabulary of faults for the simulator and for live runs against a
//! real stack. A [`FaultPlan`] is a list of [`Step`]s, each applied at a
//! simulated (or wall) time offset; after the plan's `heal_at_ms` every fault
//! is lifted and the world runs to quiescence.
//!
//! Named plans live in `faults/plans/*.toml` (compiled in, so the binaries
//! work from any directory); `chaos` is generated from a seed, Jepsen-nemesis
//! style.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Host names every runner understands. Replicas are `order-1`, `order-2`,
/// `reservation-1`, `reservation-2`; `users` names every simulated client.
pub mod hosts {
    pub const REDIS: &str = "redis";
    pub const KAFKA: &str = "kafka";
    pub const CATALOG: &str = "catalog";
    pub const PAYMENT: &str = "payment";
    pub const USERS: &str = "users";
    /// Every service replica that can be crashed.
    pub const SERVICES: &[&str] = &[
        "catalog",
        "reservation-1",
        "reservation-2",
        "order-1",
        "order-2",
        "payment",
    ];
}

/// What a step does. Hosts are names from [`hosts`] (or a replica name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Drop every message between `a` and `b`, both ways.
    Partition { a: String, b: String },
    /// Drop messages from `from` to `to` only.
    PartitionOneWay { from: String, to: String },
    /// Lift a partition between `a` and `b` (both ways).
    Heal { a: String, b: String },
    /// Stop a host's software; it stays down until `restart`.
    Crash { host: String },
    /// Start a crashed host again (or restart a running one).
    Restart { host: String },
    /// Add latency on the link between `a` and `b`.
    Latency {
        a: String,
        b: String,
        latency_ms: u64,
    },
    /// Lose a share of the messages on the link between `a` and `b`.
    PacketLoss { a: String, b: String, rate: f64 },
    /// Change the payment gateway's fault rates.
    PaymentFaults {
        decline_rate: f64,
        error_rate: f64,
        timeout_rate: f64,
    },
}

/// One fault at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Offset from the start of the run, in milliseconds.
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// A named plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    pub name: String,
    pub description: String,
    /// When every fault is lifted (partitions healed, hosts restarted,
    /// latency and loss cleared, payment faults off).
    pub heal_at_ms: u64,
    /// The plan aims at the waiting room (its hosts are the queue's): it
    /// runs only in a world that has one ([`plan_names_for`]).
    #[serde(default)]
    pub waiting_room: bool,
    /// Interesting states the plan is for (coverage probes, by name: see
    /// `ticketing_domain::probe`): a sweep of the world the plan aims at
    /// (the queued one when `waiting_room`) fails when none of the plan's
    /// seeds reached one of them.
    #[serde(default)]
    pub reaches: Vec<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// A smaller world than the runner's own (a shrunk repro carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<WorldSize>,
}

/// How big a world a plan runs in, where it differs from the runner's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSize {
    pub users: Option<usize>,
    pub rows: Option<u32>,
    pub cols: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown plan {0:?}; known: {1}")]
    Unknown(String, String),
    #[error("plan {name}: {source}")]
    Parse {
        name: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("plan {0}: {1}")]
    Invalid(String, String),
    #[error("cannot read plan file {0}: {1}")]
    File(String, std::io::Error),
}

/// The plans shipped in `faults/plans/`, by name.
const BUILTIN: &[(&str, &str)] = &[
    ("none", include_str!("../plans/none.toml")),
    (
        "partition-order-payment",
        include_str!("../plans/partition-order-payment.toml"),
    ),
    ("kafka-outage", include_str!("../plans/kafka-outage.toml")),
    ("redis-restart", include_str!("../plans/redis-restart.toml")),
    (
        "service-crashes",
        include_str!("../plans/service-crashes.toml"),
    ),
    (
        "payment-timeouts",
        include_str!("../plans/payment-timeouts.toml"),
    ),
    ("queue-outage", include_str!("../plans/queue-outage.toml")),
    (
        "after-sale-faults",
        include_str!("../plans/after-sale-faults.toml"),
    ),
];

/// Every plan name, `chaos` last.
pub fn plan_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    names.push("chaos");
    names
}

/// The plans a world runs: every plan with a waiting room, else those
/// that do not aim at one (`chaos` last either way).
pub fn plan_names_for(waiting_room: bool) -> Vec<&'static str> {
    plan_names()
        .into_iter()
        .filter(|n| waiting_room || FaultPlan::named(n, 1).is_ok_and(|p| !p.waiting_room))
        .collect()
}

impl FaultPlan {
    /// Parses and validates a plan from TOML.
    pub fn from_toml(name: &str, text: &str) -> Result<FaultPlan, PlanError> {
        let plan: FaultPlan = toml::from_str(text).map_err(|source| PlanError::Parse {
            name: name.to_owned(),
            source,
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// A plan from a file (its name is the one inside).
    pub fn from_file(path: &std::path::Path) -> Result<FaultPlan, PlanError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::File(shown.clone(), e))?;
        FaultPlan::from_toml(&shown, &text)
    }

    /// The plan as TOML, as `from_toml` reads it.
    pub fn to_toml(&self) -> String {
        // Plain data (strings, numbers, tables): it always serializes.
        toml::to_string(self).unwrap_or_default()
    }

    /// A named plan; `chaos` is generated from `seed`.
    pub fn named(name: &str, seed: u64) -> Result<FaultPlan, PlanError> {
        if name == "chaos" {
            return Ok(chaos(seed));
        }
        if name == "swarm" {
            return Ok(swarm(seed));
        }
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PlanError::Unknown(name.to_owned(), plan_names().join(", ")))?;
        FaultPlan::from_toml(name, text)
    }

    fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(self.name.clone(), m));
        for s in &self.steps {
            if s.at_ms > self.heal_at_ms {
                return bad(format!(
                    "step at {} ms is after heal_at_ms {}",
                    s.at_ms, self.heal_at_ms
                ));
            }
            match &s.fault {
                Fault::PacketLoss { rate, .. } if !(0.0..=1.0).contains(rate) => {
                    return bad(format!("packet loss rate {rate} outside [0, 1]"));
                }
                Fault::PaymentFaults {
                    decline_rate,
                    error_rate,
                    timeout_rate,
                } if [decline_rate, error_rate, timeout_rate]
                    .iter()
                    .any(|r| !(0.0..=1.0).contains(*r)) =>
                {
                    return bad("payment fault rates must be within [0, 1]".into());
                }
                _ => {}
            }
        }
        if self.steps.windows(2).any(|w| w[0].at_ms > w[1].at_ms) {
            return bad("steps must be in time order".into());
        }
        Ok(())
    }
}

/// The nemesis kinds `chaos` draws from, by the number it draws.
pub const NEMESIS_KINDS: [&str; 6] = [
    "partition",
    "crash",
    "latency",
    "packet-loss",
    "payment-faults",
    "broker-or-redis-outage",
];

/// A random plan from a seed: a handful of nemesis actions (partitions,
/// crashes and restarts, broker and Redis outages, latency, loss, payment
/// faults) spread over the first 60 simulated seconds, then heal.
pub fn chaos(seed: u64) -> FaultPlan {
    let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00c4_a05e);
    let steps = nemesis(rng, |rng| rng.random_range(0..6));
    plan_of("chaos", format!("random nemesis from seed {seed}"), steps)
}

/// Swarm testing (Groce et al.): the seed first draws which nemesis kinds
/// are enabled (each with probability 1/2, at least one), then a `chaos`
/// plan of only those kinds — runs that leave some faults out reach states
/// that an always-everything mix drowns.
pub fn swarm(seed: u64) -> FaultPlan {
    let mut pick = ChaCha8Rng::seed_from_u64(seed ^ 0x5a4a_4d00);
    let mut kinds: Vec<u32> = (0..6u32).filter(|_| pick.random_bool(0.5)).collect();
    if kinds.is_empty() {
        kinds.push(pick.random_range(0..6));
    }
    let names: Vec<&str> = kinds.iter().map(|k| NEMESIS_KINDS[*k as usize]).collect();
    let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00c4_a05e);
    let steps = nemesis(rng, |rng| kinds[rng.random_range(0..kinds.len())]);
    plan_of(
        "swarm",
        format!("swarm nemesis from seed {seed}: {}", names.join(", ")),
        steps,
    )
}

fn plan_of(name: &str, description: String, mut steps: Vec<Step>) -> FaultPlan {
    steps.sort_by_key(|s| s.at_ms);
    let heal_at_ms = steps.last().map_or(10_000, |s| s.at_ms + 2_000).max(10_000);
    FaultPlan {
        name: name.into(),
        description,
        heal_at_ms,
        waiting_room: false,
        reaches: Vec::new(),
        steps,
        world: None,
    }
}

/// 4–8 nemesis actions; `kind` draws each one's kind (a `NEMESIS_KINDS` index).
fn nemesis(mut rng: ChaCha8Rng, mut kind: impl FnMut(&mut ChaCha8Rng) -> u32) -> Vec<Step> {
    let targets = [
        "redis",
        "kafka",
        "catalog",
        "reservation-1",
        "reservation-2",
        "order-1",
        "order-2",
        "payment",
    ];
    let pick = |rng: &mut ChaCha8Rng| targets[rng.random_range(0..targets.len())].to_owned();
    let mut steps = Vec::new();
    let mut t = 0u64;
    for _ in 0..rng.random_range(4..9) {
        t += rng.random_range(200..6_000);
        let dur = rng.random_range(1_000..8_000);
        match kind(&mut rng) {
            0 => {
                let (a, b) = (pick(&mut rng), pick(&mut rng));
                if a != b {
                    steps.push(Step {
                        at_ms: t,
                        fault: Fault::Partition {
                            a: a.clone(),
                            b: b.clone(),
                        },
                    });
                    steps.push(Step {
                        at_ms: t + dur,
                        fault: Fault::Heal { a, b },
                    });
                }
            }
            1 => {
                let host = pick(&mut rng);
                steps.push(Step {
                    at_ms: t,
                    fault: Fault::Crash { host: host.clone() },
                });
                steps.push(Step {
                    at_ms: t + dur,
                    fault: Fault::Restart { host },
                });
            }
            2 => {
                let (a, b) = (pick(&mut rng), pick(&mut rng));
                if a != b {
                    let latency_ms = rng.random_range(50..800);
                    steps.push(Step {
                        at_ms: t,
                        fault: Fault::Latency { a, b, latency_ms },
                    });
                }
            }
            3 => {
                let (a, b) = (pick(&mut rng), pick(&mut rng));
                if a != b {
                    let rate = f64::from(rng.random_range(5u32..30)) / 100.0;
                    steps.push(Step {
                        at_ms: t,
                        fault: Fault::PacketLoss { a, b, rate },
                    });
                }
            }
            4 => steps.push(Step {
                at_ms: t,
                fault: Fault::PaymentFaults {
                    decline_rate: f64::from(rng.random_range(0u32..20)) / 100.0,
                    error_rate: f64::from(rng.random_range(0u32..30)) / 100.0,
                    timeout_rate: f64::from(rng.random_range(0u32..30)) / 100.0,
                },
            }),
            _ => {
                let host = if rng.random_bool(0.5) {
                    "kafka"
                } else {
                    "redis"
                }
                .to_owned();
                steps.push(Step {
                    at_ms: t,
                    fault: Fault::Crash { host: host.clone() },
                });
                steps.push(Step {
                    at_ms: t + dur,
                    fault: Fault::Restart { host },
                });
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_written_as_toml_reads_back_the_same() {
        let mut p = chaos(7);
        p.world = Some(WorldSize {
            users: Some(10),
            rows: Some(2),
            cols: None,
        });
        let back = FaultPlan::from_toml("back", &p.to_toml()).unwrap();
        assert_eq!(back, p);
        let none = FaultPlan::named("kafka-outage", 1).unwrap();
        assert_eq!(FaultPlan::from_toml("k", &none.to_toml()).unwrap(), none);
        assert!(
            !none.to_toml().contains("world"),
            "no world table when unchanged"
        );
    }

    #[test]
    fn every_builtin_plan_parses() {
        for name in plan_names() {
            let plan = FaultPlan::named(name, 1).unwrap();
            assert_eq!(plan.name, name);
            assert!(plan.validate().is_ok());
        }
    }

    #[test]
    fn a_world_without_a_waiting_room_skips_the_plans_aimed_at_one() {
        let without = plan_names_for(false);
        assert!(!without.contains(&"queue-outage") && without.contains(&"redis-restart"));
        assert_eq!(*without.last().unwrap(), "chaos");
        assert_eq!(plan_names_for(true), plan_names());
    }

    #[test]
    fn swarm_draws_its_kinds_from_the_seed_and_keeps_to_them() {
        assert_eq!(swarm(5), swarm(5));
        let mut narrower = 0;
        for seed in 1..=40 {
            let p = swarm(seed);
            let kinds: Vec<&str> = NEMESIS_KINDS
                .iter()
                .copied()
                .filter(|k| p.description.contains(k))
                .collect();
            assert!(!kinds.is_empty(), "{}", p.description);
            narrower += usize::from(kinds.len() < NEMESIS_KINDS.len());
            for s in &p.steps {
                let k = match &s.fault {
                    Fault::Partition { .. } | Fault::Heal { .. } => "partition",
                    Fault::Latency { .. } => "latency",
                    Fault::PacketLoss { .. } => "packet-loss",
                    Fault::PaymentFaults { .. } => "payment-faults",
                    Fault::Crash { host } | Fault::Restart { host }
                        if host == "kafka" || host == "redis" =>
                    {
                        // A crash of either may come from either kind.
                        if kinds.contains(&"crash") {
                            "crash"
                        } else {
                            "broker-or-redis-outage"
                        }
                    }
                    Fault::Crash { .. } | Fault::Restart { .. } => "crash",
                    Fault::PartitionOneWay { .. } => "none",
                };
                assert!(kinds.contains(&k), "seed {seed}: {k} not in {kinds:?}");
            }
        }
        assert!(narrower > 30, "most seeds leave some kinds out: {narrower}");
    }

    #[test]
    fn chaos_is_a_function_of_the_seed() {
        assert_eq!(chaos(5), chaos(5));
        assert_ne!(chaos(5), chaos(6));
        assert!(!chaos(5).steps.is_empty());
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let err = FaultPlan::named("nope", 0).unwrap_err().to_string();
        assert!(err.contains("kafka-outage"), "{err}");
        let late = "name='x'\ndescription='d'\nheal_at_ms=10\n[[steps]]\nat_ms=20\nfault='crash'\nhost='kafka'\n";
        assert!(FaultPlan::from_toml("x", late).is_err());
        let lossy = "name='x'\ndescription='d'\nheal_at_ms=10\n[[steps]]\nat_ms=1\nfault='packet-loss'\na='kafka'\nb='order-1'\nrate=2.0\n";
        assert!(FaultPlan::from_toml("x", lossy).is_err());
        let unknown =
            "name='x'\ndescription='d'\nheal_at_ms=10\n[[steps]]\nat_ms=1\nfault='meteor'\n";
        assert!(FaultPlan::from_toml("x", unknown).is_err());
    }
}
