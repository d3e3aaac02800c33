//! Triage of a sweep's failures: runs that fail are grouped by the
//! invariant and the *signature* of their first violation (its text with
//! every token that holds a digit — ids, seats, counts, times — replaced by
//! `#`), so a night of thousands of seeds reports a few distinct problems,
//! each with its smallest repro, instead of a wall of runs. A group whose
//! (invariant, signature) is listed in a known-failures file is *known*;
//! every other is *new*.
//!
//! Layer: imports `run` (the reports it groups).

use crate::run::RunReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failing runs that broke one invariant the same way first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureGroup {
    pub invariant: String,
    pub signature: String,
    /// (plan, seed) of every run in the group, in sweep order.
    pub runs: Vec<(String, u64)>,
    /// The smallest run's repro (shortest simulated time, then lowest seed).
    pub repro: String,
    /// Listed in the known-failures file.
    pub known: bool,
}

/// A violation's text with ids, seats, counts and times replaced by `#`.
pub fn signature(detail: &str) -> String {
    detail
        .split_whitespace()
        .map(|t| {
            if t.chars().any(|c| c.is_ascii_digit()) {
                let end: String = t
                    .chars()
                    .rev()
                    .take_while(|c| ",;:)".contains(*c))
                    .collect();
                format!("#{end}")
            } else {
                t.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a known-failures file: `invariant<TAB>signature` per line, `#`
/// comments and blank lines skipped.
pub fn read_known(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(i, s)| (i.trim().to_owned(), s.trim().to_owned()))
        .collect()
}

/// The failing runs of `reports` by (invariant, signature) of their first
/// violation, largest group first.
pub fn groups(reports: &[RunReport], known: &[(String, String)]) -> Vec<FailureGroup> {
    by_group(reports)
        .into_iter()
        .map(|((invariant, signature), runs)| {
            let smallest = smallest(&runs);
            FailureGroup {
                known: known
                    .iter()
                    .any(|(i, s)| *i == invariant && *s == signature),
                repro: smallest.map(|r| r.repro.clone()).unwrap_or_default(),
                runs: runs.iter().map(|r| (r.plan.clone(), r.seed)).collect(),
                invariant,
                signature,
            }
        })
        .collect()
}

/// What a sweep shrinks (`--shrink-failures N`): the smallest run of each
/// failure group, largest group first, at most `n` — so one noisy group
/// does not take every shrink and leave the other kinds unshrunk.
pub fn representatives(reports: &[RunReport], n: usize) -> Vec<&RunReport> {
    by_group(reports)
        .iter()
        .filter_map(|(_, runs)| smallest(runs))
        .take(n)
        .collect()
}

/// A failure group's key, (invariant, signature), and its runs.
type Group<'a> = ((String, String), Vec<&'a RunReport>);

/// Failing runs by (invariant, signature) of their first violation, largest
/// group first (ties in key order).
fn by_group(reports: &[RunReport]) -> Vec<Group<'_>> {
    let mut by: BTreeMap<(String, String), Vec<&RunReport>> = BTreeMap::new();
    for r in reports.iter().filter(|r| !r.passed) {
        if let Some(v) = r.violations.first() {
            let key = (v.invariant.clone(), signature(&v.detail));
            by.entry(key).or_default().push(r);
        }
    }
    let mut groups: Vec<Group<'_>> = by.into_iter().collect();
    groups.sort_by_key(|(_, runs)| std::cmp::Reverse(runs.len()));
    groups
}

/// The shortest simulated run, then the lowest seed.
fn smallest<'a>(runs: &[&'a RunReport]) -> Option<&'a RunReport> {
    runs.iter().copied().min_by_key(|r| (r.sim_ms, r.seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Violation;

    fn failing(plan: &str, seed: u64, sim_ms: u64, invariant: &str, detail: &str) -> RunReport {
        RunReport {
            plan: plan.into(),
            seed,
            bug: None,
            passed: false,
            violations: vec![Violation {
                invariant: invariant.into(),
                detail: detail.into(),
            }],
            sim_ms,
            orders: 0,
            confirmed: 0,
            sold_seats: 0,
            trace_hash: String::new(),
            repro: format!("--plan {plan} --seed {seed}"),
            trace: Vec::new(),
            reached: Default::default(),
            history: Default::default(),
            witnesses: Vec::new(),
            ops: Default::default(),
        }
    }

    #[test]
    fn ids_and_counts_do_not_split_a_group() {
        assert_eq!(
            signature("2 outbox messages never reached the broker, e.g. a9f4-77c1,"),
            "# outbox messages never reached the broker, e.g. #,"
        );
        let reports = [
            failing(
                "kafka-outage",
                4,
                30_000,
                "4-liveness",
                "3 outbox messages never reached the broker, e.g. 1f",
            ),
            failing(
                "chaos",
                17,
                20_000,
                "4-liveness",
                "1 outbox messages never reached the broker, e.g. 9a",
            ),
            failing(
                "chaos",
                18,
                25_000,
                "1-no-oversell",
                "seat e/1-2 sold twice: CONFIRMED orders o1, o2",
            ),
        ];
        let known =
            read_known("# known\n1-no-oversell\tseat # sold twice: CONFIRMED orders #, #\n");
        let g = groups(&reports, &known);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].invariant, "4-liveness");
        assert_eq!(
            g[0].runs,
            vec![("kafka-outage".to_owned(), 4), ("chaos".to_owned(), 17)]
        );
        assert_eq!(g[0].repro, "--plan chaos --seed 17", "the shortest run");
        assert!(!g[0].known);
        assert!(g[1].known, "{:?}", g[1].signature);
        // One run to shrink per group (its smallest), largest group first.
        let shrink: Vec<(&str, u64)> = representatives(&reports, 5)
            .iter()
            .map(|r| (r.plan.as_str(), r.seed))
            .collect();
        assert_eq!(shrink, vec![("chaos", 17), ("chaos", 18)]);
        assert_eq!(representatives(&reports, 1).len(), 1);
    }
}
