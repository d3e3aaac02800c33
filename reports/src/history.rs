//! The trend file: one JSON object per line, one line per nightly run,
//! appended after each report. The report charts the last runs and marks
//! what changed since the previous one.
//!
//! JSON lines because the file only ever grows by one record, a crash
//! mid-write loses at most the last line (unreadable lines are skipped and
//! counted, never fatal), and CI can keep it between runs as a plain file.

use crate::inputs::Inputs;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// Entries read from the file, at most (the newest are kept).
pub const ENTRIES_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, when the report was made.
    pub at: String,
    /// The run's name (its report folder, e.g. `20261122T110000Z`).
    pub label: String,
    pub git_revision: String,
    pub passed: bool,
    pub load: Option<LoadPoint>,
    pub sim: Option<SimPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPoint {
    /// Overall p95 on the basis the gate used.
    pub p95_ms: f64,
    pub error_rate_pct: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimPoint {
    pub runs: u64,
    pub passed_runs: u64,
    pub pass_rate_pct: f64,
    /// The night's failure groups, (invariant, signature): a later night
    /// tells a recurring group from a new one by them.
    #[serde(default)]
    pub groups: Vec<(String, String)>,
}

/// The history read back: its entries, oldest first, and how many lines
/// could not be read.
#[derive(Debug, Default)]
pub struct History {
    pub entries: Vec<Entry>,
    pub unreadable_lines: usize,
}

impl Entry {
    /// This run's point of the trend.
    pub fn of(inputs: &Inputs, label: &str, at: String, passed: bool) -> Entry {
        let load = inputs.load.as_ref().map(|l| {
            let s = &l.summary;
            LoadPoint {
                p95_ms: s.overall.on(s.slo.latency.basis).p95_ms,
                error_rate_pct: s.overall.error_rate_pct,
                requests: s.overall.requests,
                requests_per_s: s.requests_per_s(),
                passed: s.verdict.as_ref().is_some_and(|v| v.passed)
                    && s.audit.as_ref().is_some_and(|a| a.passed()),
            }
        });
        let runs: Vec<_> = inputs.sweep_runs().collect();
        let sim = (!runs.is_empty()).then(|| {
            let passed_runs = runs.iter().filter(|r| r.passed).count() as u64;
            SimPoint {
                runs: runs.len() as u64,
                passed_runs,
                pass_rate_pct: passed_runs as f64 * 100.0 / runs.len() as f64,
                groups: inputs
                    .sims
                    .iter()
                    .flat_map(|s| &s.results.groups)
                    .map(|g| (g.invariant.clone(), g.signature.clone()))
                    .collect(),
            }
        });
        Entry {
            at,
            label: label.into(),
            git_revision: inputs.git_revision(),
            passed,
            load,
            sim,
        }
    }
}

/// The earlier nights (oldest first) whose simulations failed with the
/// group `(invariant, signature)`: their labels.
pub fn nights_with_group<'a>(
    history: &'a [Entry],
    invariant: &str,
    signature: &str,
) -> Vec<&'a str> {
    history
        .iter()
        .filter(|e| {
            e.sim.as_ref().is_some_and(|s| {
                s.groups
                    .iter()
                    .any(|(i, g)| i == invariant && g == signature)
            })
        })
        .map(|e| e.label.as_str())
        .collect()
}

impl History {
    /// Reads the file; a file that does not exist yet is an empty history.
    pub fn read(path: &Path) -> anyhow::Result<History> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let mut h = History::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => h.entries.push(e),
                Err(_) => h.unreadable_lines += 1,
            }
        }
        let excess = h.entries.len().saturating_sub(ENTRIES_MAX);
        h.entries.drain(..excess);
        Ok(h)
    }

    /// Appends one entry as one line (creating the file and its folder).
    pub fn append(path: &Path, entry: &Entry) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let mut line = serde_json::to_string(entry)?;
        line.push('\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", path.display()))
    }

    /// The last `n` entries, oldest first.
    pub fn last(&self, n: usize) -> &[Entry] {
        &self.entries[self.entries.len().saturating_sub(n)..]
    }
}

/// One figure compared with the previous run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub metric: String,
    pub previous: String,
    pub current: String,
    pub delta: String,
    /// "better", "worse" or "same" (what the page colours).
    pub direction: String,
}

/// What changed from `prev` to `cur`: p95, error rate, sim pass rate, verdict.
pub fn changes(prev: &Entry, cur: &Entry) -> Vec<Change> {
    let mut out = Vec::new();
    // Lower is better for latency and errors, higher for throughput and
    // the pass rate. Every move is shown: the reader judges the noise.
    let mut figure = |metric: &str, a: f64, b: f64, unit: &str, lower_better: bool| {
        let d = b - a;
        let direction = if d.abs() < 1e-9 {
            "same"
        } else if (d < 0.0) == lower_better {
            "better"
        } else {
            "worse"
        };
        out.push(Change {
            metric: metric.into(),
            previous: format!("{a:.2}{unit}"),
            current: format!("{b:.2}{unit}"),
            delta: format!("{d:+.2}{unit}"),
            direction: direction.into(),
        });
    };
    if let (Some(a), Some(b)) = (&prev.load, &cur.load) {
        figure("p95", a.p95_ms, b.p95_ms, " ms", true);
        figure("error rate", a.error_rate_pct, b.error_rate_pct, " %", true);
        figure(
            "throughput",
            a.requests_per_s,
            b.requests_per_s,
            " req/s",
            false,
        );
    }
    if let (Some(a), Some(b)) = (&prev.sim, &cur.sim) {
        figure(
            "sim pass rate",
            a.pass_rate_pct,
            b.pass_rate_pct,
            " %",
            false,
        );
    }
    let word = |p: bool| if p { "PASS" } else { "FAIL" };
    out.push(Change {
        metric: "verdict".into(),
        previous: word(prev.passed).into(),
        current: word(cur.passed).into(),
        delta: if prev.passed == cur.passed {
            "unchanged".into()
        } else {
            format!("{} → {}", word(prev.passed), word(cur.passed))
        },
        direction: match (prev.passed, cur.passed) {
            (false, true) => "better",
            (true, false) => "worse",
            _ => "same",
        }
        .into(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str, p95_ms: f64, passed: bool) -> Entry {
        Entry {
            at: "2026-11-22T00:00:00Z".into(),
            label: label.into(),
            git_revision: "abc".into(),
            passed,
            load: Some(LoadPoint {
                p95_ms,
                error_rate_pct: 0.1,
                requests: 1000,
                requests_per_s: 100.0,
                passed,
            }),
            sim: Some(SimPoint {
                runs: 10,
                passed_runs: 10,
                pass_rate_pct: 100.0,
                groups: Vec::new(),
            }),
        }
    }

    #[test]
    fn appends_and_reads_back_skipping_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/history.jsonl");
        assert!(History::read(&path).unwrap().entries.is_empty());
        History::append(&path, &entry("a", 100.0, true)).unwrap();
        // A crash in the middle of a write leaves a torn last line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"at\": \"2026")
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"\n")
            .unwrap();
        History::append(&path, &entry("b", 120.0, false)).unwrap();
        let h = History::read(&path).unwrap();
        assert_eq!(h.unreadable_lines, 1);
        let labels: Vec<&str> = h.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(h.last(1)[0].label, "b");
        assert_eq!(h.last(10).len(), 2);
    }

    #[test]
    fn changes_say_which_way_each_figure_moved() {
        let c = changes(&entry("a", 100.0, true), &entry("b", 150.0, false));
        let p95 = c.iter().find(|c| c.metric == "p95").unwrap();
        assert_eq!(p95.delta, "+50.00 ms");
        assert_eq!(p95.direction, "worse");
        let v = c.iter().find(|c| c.metric == "verdict").unwrap();
        assert_eq!(
            (v.delta.as_str(), v.direction.as_str()),
            ("PASS → FAIL", "worse")
        );
        let sim = c.iter().find(|c| c.metric == "sim pass rate").unwrap();
        assert_eq!(sim.direction, "same");
        let back = changes(&entry("b", 150.0, false), &entry("c", 90.0, true));
        assert!(back.iter().all(|c| c.metric == "error rate"
            || c.metric == "throughput"
            || c.metric == "sim pass rate"
            || c.direction == "better"));
    }
}
