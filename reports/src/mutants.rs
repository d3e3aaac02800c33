//! Mutation testing: what `cargo mutants` found in one scope (the domain
//! crate, the in-memory seat store, the saga and worker code — `ci/mutants`
//! runs them), read from its `outcomes.json`, with the mutants a person
//! judged equivalent (`ci/mutants-equivalent.tsv`: no test can tell them
//! from the original) taken out of the score.
//!
//! Score = caught ÷ (caught + missed), where a mutant the tests timed out on
//! counts as caught (cargo-mutants' own reading: the change was noticed) and
//! an unviable one (it does not build) counts in neither. A scope passes at
//! [`SCORE_MIN_PCT`].
//!
//! Layer: reports; imports nothing of the other report modules.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The least share of mutants a scope's tests must catch.
pub const SCORE_MIN_PCT: f64 = 90.0;

/// One mutant, as cargo-mutants names it (`file:line:col: change`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutant {
    pub name: String,
    /// Why it is equivalent, for a missed mutant listed as such.
    pub equivalent_because: Option<String>,
}

/// What one `cargo mutants` run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    /// The scope's name: the folder `ci/mutants` ran it in.
    pub name: String,
    pub path: PathBuf,
    /// Files that had at least one mutant.
    pub files: Vec<String>,
    pub caught: usize,
    pub timeout: usize,
    pub unviable: usize,
    /// Missed and not listed as equivalent: tests to write.
    pub missed: Vec<Mutant>,
    /// Missed and listed as equivalent, with the reason.
    pub equivalent: Vec<Mutant>,
    /// The baseline (tests on the unmutated tree) failed: nothing is judged.
    pub baseline_failed: bool,
}

impl Scope {
    /// Mutants the tests noticed: caught or timed out.
    pub fn killed(&self) -> usize {
        self.caught + self.timeout
    }

    /// Mutants that count: killed or (not equivalent) missed.
    pub fn judged(&self) -> usize {
        self.killed() + self.missed.len()
    }

    /// Killed share in percent (100 when nothing counts).
    pub fn score_pct(&self) -> f64 {
        match self.judged() {
            0 => 100.0,
            n => self.killed() as f64 * 100.0 / n as f64,
        }
    }

    pub fn passed(&self) -> bool {
        !self.baseline_failed && self.score_pct() >= SCORE_MIN_PCT
    }
}

/// Mutants judged equivalent: `file: change` (the name without line and
/// column, which move with every edit above them) → why.
#[derive(Debug, Clone, Default)]
pub struct Equivalents(Vec<(String, String)>);

impl Equivalents {
    /// Reads the TSV: `mutant<TAB>why` per line; `#` starts a comment.
    pub fn read(path: &Path) -> anyhow::Result<Equivalents> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Equivalents::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Equivalents> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (name, why) = line.split_once('\t').ok_or_else(|| {
                anyhow::anyhow!("line {}: want `mutant<TAB>why`, got {line:?}", i + 1)
            })?;
            anyhow::ensure!(
                !why.trim().is_empty(),
                "line {}: an equivalent mutant needs its reason",
                i + 1
            );
            out.push((key(name.trim()), why.trim().to_owned()));
        }
        Ok(Equivalents(out))
    }

    fn why(&self, name: &str) -> Option<&str> {
        let k = key(name);
        self.0
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, w)| w.as_str())
    }
}

/// `path:12:9: replace x` → `path: replace x` (positions dropped).
fn key(name: &str) -> String {
    let mut parts = name.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(line), Some(col), Some(rest))
            if line.chars().all(|c| c.is_ascii_digit())
                && col.chars().all(|c| c.is_ascii_digit()) =>
        {
            format!("{file}:{rest}")
        }
        _ => name.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct Outcomes {
    outcomes: Vec<Outcome>,
}

#[derive(Debug, Deserialize)]
struct Outcome {
    scenario: serde_json::Value,
    summary: String,
}

/// Reads a scope: its `outcomes.json`, the `mutants.out` folder holding it,
/// or the folder holding that (named after the scope).
pub fn read(path: &Path, equivalents: &Equivalents) -> anyhow::Result<Scope> {
    let file = if path.is_dir() {
        [
            path.join("outcomes.json"),
            path.join("mutants.out/outcomes.json"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("no outcomes.json in {}", path.display()))?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let outcomes: Outcomes = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not cargo-mutants' outcomes: {e}", file.display()))?;
    Ok(scope_of(&file, &outcomes, equivalents))
}

fn scope_of(file: &Path, o: &Outcomes, equivalents: &Equivalents) -> Scope {
    let mut dir = file.parent().unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|n| n == "mutants.out") {
        dir = dir.parent().unwrap_or(dir);
    }
    let mut s = Scope {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mutants".into()),
        path: file.to_path_buf(),
        files: Vec::new(),
        caught: 0,
        timeout: 0,
        unviable: 0,
        missed: Vec::new(),
        equivalent: Vec::new(),
        baseline_failed: false,
    };
    for outcome in &o.outcomes {
        let Some(m) = outcome.scenario.get("Mutant") else {
            s.baseline_failed |= outcome.summary != "Success";
            continue;
        };
        let name = m.get("name").and_then(|v| v.as_str()).unwrap_or("?");
        if let Some(f) = m.get("file").and_then(|v| v.as_str())
            && !s.files.iter().any(|x| x == f)
        {
            s.files.push(f.to_owned());
        }
        match outcome.summary.as_str() {
            "CaughtMutant" => s.caught += 1,
            "Timeout" => s.timeout += 1,
            "Unviable" => s.unviable += 1,
            _ => {
                let why = equivalents.why(name).map(str::to_owned);
                let mutant = Mutant {
                    name: name.to_owned(),
                    equivalent_because: why.clone(),
                };
                match why {
                    Some(_) => s.equivalent.push(mutant),
                    None => s.missed.push(mutant),
                }
            }
        }
    }
    s.files.sort();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(rows: &[(&str, &str)]) -> Outcomes {
        let mut outcomes = vec![Outcome {
            scenario: serde_json::json!("Baseline"),
            summary: "Success".into(),
        }];
        for (name, summary) in rows {
            let file = name.split(':').next().unwrap_or_default();
            outcomes.push(Outcome {
                scenario: serde_json::json!({"Mutant": {"name": name, "file": file}}),
                summary: (*summary).into(),
            });
        }
        Outcomes { outcomes }
    }

    #[test]
    fn the_score_counts_timeouts_as_caught_and_leaves_out_unviable_and_equivalent() {
        let eq = Equivalents::parse("# mutant\twhy\nsrc/a.rs:9:1: replace f with g\tsame answer\n")
            .expect("parses");
        let o = outcomes(&[
            ("src/a.rs:1:1: replace a", "CaughtMutant"),
            ("src/a.rs:2:1: replace b", "CaughtMutant"),
            ("src/a.rs:3:1: replace c", "Timeout"),
            ("src/b.rs:4:1: replace d", "Unviable"),
            ("src/b.rs:5:1: replace e", "MissedMutant"),
            // Listed at another line: positions move, the change does not.
            ("src/a.rs:30:5: replace f with g", "MissedMutant"),
        ]);
        let s = scope_of(Path::new("out/domain/mutants.out/outcomes.json"), &o, &eq);
        assert_eq!(s.name, "domain");
        assert_eq!(s.files, vec!["src/a.rs", "src/b.rs"]);
        assert_eq!((s.caught, s.timeout, s.unviable), (2, 1, 1));
        assert_eq!(s.missed.len(), 1);
        assert_eq!(
            s.equivalent[0].equivalent_because.as_deref(),
            Some("same answer")
        );
        assert_eq!(s.judged(), 4);
        assert_eq!(s.score_pct(), 75.0);
        assert!(!s.passed(), "75 % is under {SCORE_MIN_PCT} %");
    }

    #[test]
    fn a_failed_baseline_judges_nothing() {
        let mut o = outcomes(&[("src/a.rs:1:1: replace a", "CaughtMutant")]);
        o.outcomes[0].summary = "Failure".into();
        let s = scope_of(Path::new("x/outcomes.json"), &o, &Equivalents::default());
        assert!(s.baseline_failed && !s.passed());
        let ok = scope_of(
            Path::new("x/outcomes.json"),
            &outcomes(&[("src/a.rs:1:1: replace a", "CaughtMutant")]),
            &Equivalents::default(),
        );
        assert!(ok.passed());
    }

    #[test]
    fn an_equivalent_without_a_reason_is_refused() {
        assert!(Equivalents::parse("src/a.rs:1:1: replace a\t  \n").is_err());
        assert!(Equivalents::parse("no tab here\n").is_err());
    }
}
