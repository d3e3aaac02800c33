//! Shrinking a failing run to a smaller one that fails the same way: fault
//! steps first (delta debugging over the plan's steps), then their
//! durations (the heal and every step that ends a fault — a restart, a
//! heal — moved earlier by bisection), then the world (users, then rows of
//! seats, halved while it still fails). The result is a plan file with its
//! world (`FaultPlan::world`) that replays with `--plan-file FILE --seed S`.
//!
//! No simulator runs here: the caller passes `fails`, which runs a
//! candidate plan (the sweep does it in a worker process, as every seed)
//! and says whether it failed the same way. Bounded by `trials_max` runs.
//!
//! Layer: imports the fault vocabulary and the invariants' delta
//! debugging (`ticketing_invariants::ddmin`).

use ticketing_faults::{Fault, FaultPlan, Step, WorldSize};

/// A shrunk plan and how it was found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub plan: FaultPlan,
    /// Candidate runs made.
    pub trials: u32,
    /// One line per accepted reduction.
    pub log: Vec<String>,
}

/// Bisection rounds per duration.
const BISECT_ROUNDS: u32 = 5;
/// The world is never shrunk below this many users.
const USERS_MIN: usize = 2;

/// Runs a candidate plan: whether it fails the same way.
type Runner<'f> = dyn FnMut(&FaultPlan) -> anyhow::Result<bool> + 'f;

struct Shrinker<'f> {
    plan: FaultPlan,
    trials: u32,
    trials_max: u32,
    log: Vec<String>,
    fails: Box<Runner<'f>>,
}

impl Shrinker<'_> {
    /// Runs `candidate`; keeps it when it still fails.
    fn attempt(&mut self, candidate: FaultPlan, what: String) -> anyhow::Result<bool> {
        if self.trials >= self.trials_max {
            return Ok(false);
        }
        self.trials += 1;
        if (self.fails)(&candidate)? {
            self.log.push(what);
            self.plan = candidate;
            return Ok(true);
        }
        Ok(false)
    }

    fn with_steps(&self, steps: Vec<Step>) -> FaultPlan {
        let mut p = self.plan.clone();
        p.steps = steps;
        p
    }

    /// Delta debugging over the steps: drop halves, quarters, … one.
    fn steps(&mut self) -> anyhow::Result<()> {
        let mut error = None;
        let steps = self.plan.steps.clone();
        ticketing_invariants::ddmin::ddmin(steps, |trial| {
            if error.is_some() {
                return false;
            }
            let what = format!("kept {} of the steps", trial.len());
            self.attempt(self.with_steps(trial.to_vec()), what)
                .unwrap_or_else(|e| {
                    error = Some(e);
                    false
                })
        });
        error.map_or(Ok(()), Err)
    }

    /// The heal, then each fault's end, moved as early as still fails.
    fn durations(&mut self) -> anyhow::Result<()> {
        let last = self.plan.steps.last().map_or(0, |s| s.at_ms);
        let (mut lo, mut hi) = (last, self.plan.heal_at_ms);
        for _ in 0..BISECT_ROUNDS {
            let mid = lo + (hi - lo) / 2;
            if mid == hi || mid == lo {
                break;
            }
            let mut p = self.plan.clone();
            p.heal_at_ms = mid;
            if self.attempt(p, format!("heal at {mid} ms"))? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        for i in 0..self.plan.steps.len() {
            if !matches!(
                self.plan.steps[i].fault,
                Fault::Restart { .. } | Fault::Heal { .. }
            ) {
                continue;
            }
            let (mut lo, mut hi) = (
                i.checked_sub(1).map_or(0, |j| self.plan.steps[j].at_ms),
                self.plan.steps[i].at_ms,
            );
            for _ in 0..BISECT_ROUNDS {
                let mid = lo + (hi - lo) / 2;
                if mid == hi || mid == lo {
                    break;
                }
                let mut steps = self.plan.steps.clone();
                steps[i].at_ms = mid;
                let what = format!("step {} at {mid} ms", i + 1);
                if self.attempt(self.with_steps(steps), what)? {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
        }
        Ok(())
    }

    /// Users halved, then rows halved, while it still fails.
    fn world(&mut self, base: WorldSize) -> anyhow::Result<()> {
        let mut size = self.plan.world.unwrap_or(base);
        while let Some(users) = size.users.filter(|u| u / 2 >= USERS_MIN) {
            let mut p = self.plan.clone();
            p.world = Some(WorldSize {
                users: Some(users / 2),
                ..size
            });
            if !self.attempt(p, format!("{} users", users / 2))? {
                break;
            }
            size.users = Some(users / 2);
        }
        while let Some(rows) = size.rows.filter(|r| r / 2 >= 1) {
            let mut p = self.plan.clone();
            p.world = Some(WorldSize {
                rows: Some(rows / 2),
                ..size
            });
            if !self.attempt(p, format!("rows of seats: {}", rows / 2))? {
                break;
            }
            size.rows = Some(rows / 2);
        }
        Ok(())
    }
}

/// Shrinks `plan` (which fails) in a world of `base` size, in at most
/// `trials_max` runs of `fails`.
pub fn shrink<'f>(
    plan: &FaultPlan,
    base: WorldSize,
    trials_max: u32,
    fails: impl FnMut(&FaultPlan) -> anyhow::Result<bool> + 'f,
) -> anyhow::Result<Shrunk> {
    let mut s = Shrinker {
        plan: plan.clone(),
        trials: 0,
        trials_max,
        log: Vec::new(),
        fails: Box::new(fails),
    };
    s.steps()?;
    s.durations()?;
    s.world(base)?;
    s.plan.name = format!("{}-shrunk", plan.name);
    // A repro, not a coverage claim: its sweep declares no states.
    s.plan.reaches = Vec::new();
    s.plan.description = format!(
        "{} — shrunk from {} steps to {} in {} runs",
        plan.description,
        plan.steps.len(),
        s.plan.steps.len(),
        s.trials
    );
    Ok(Shrunk {
        plan: s.plan,
        trials: s.trials,
        log: s.log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> WorldSize {
        WorldSize {
            users: Some(80),
            rows: Some(5),
            cols: Some(10),
        }
    }

    /// A fake run: fails while the plan still crashes kafka before 2 s
    /// with kafka down for at least 1 s, and at least 10 users buy.
    fn kafka_bug(p: &FaultPlan) -> anyhow::Result<bool> {
        let crash = p.steps.iter().find(|s| {
            matches!(&s.fault, Fault::Crash { host } if host == "kafka") && s.at_ms < 2_000
        });
        let Some(crash) = crash else {
            return Ok(false);
        };
        let back = p
            .steps
            .iter()
            .find(|s| matches!(&s.fault, Fault::Restart { host } if host == "kafka"))
            .map_or(p.heal_at_ms, |s| s.at_ms);
        let users = p.world.and_then(|w| w.users).unwrap_or(80);
        Ok(back >= crash.at_ms + 1_000 && users >= 10)
    }

    #[test]
    fn shrinks_to_the_one_step_the_failure_needs() {
        let plan = FaultPlan::named("kafka-outage", 1).unwrap();
        assert!(kafka_bug(&plan).unwrap());
        let s = shrink(&plan, base(), 200, kafka_bug).unwrap();
        assert!(kafka_bug(&s.plan).unwrap(), "the shrunk plan still fails");
        assert_eq!(s.plan.steps.len(), 1, "{:?}", s.plan.steps);
        // Kafka stays down until the heal, moved as early as still fails.
        assert!(s.plan.heal_at_ms < 3_000, "{}", s.plan.heal_at_ms);
        assert_eq!(s.plan.world.and_then(|w| w.users), Some(10));
        assert_eq!(s.plan.world.and_then(|w| w.rows), Some(1));
        assert!(s.trials <= 200);
        // It replays from its file.
        let back = FaultPlan::from_toml("f", &s.plan.to_toml()).unwrap();
        assert_eq!(back, s.plan);
    }

    #[test]
    fn the_trial_bound_is_kept() {
        let plan = FaultPlan::named("kafka-outage", 1).unwrap();
        let s = shrink(&plan, base(), 3, kafka_bug).unwrap();
        assert_eq!(s.trials, 3);
        assert!(kafka_bug(&s.plan).unwrap());
    }
}
