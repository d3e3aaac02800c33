//! What a report is made of: the load run's summary, the simulation results
//! (a sweep and/or the bug zoo), mutation testing, the exit status of each pipeline step, and
//! the trend history.
//!
//! A report is written even when an input is missing or unreadable (a
//! step crashed before writing its JSON): the problem becomes a failed row
//! of the verdict, so the nightly still leaves a page saying what broke.

use std::path::{Path, PathBuf};
use ticketing_load::summary::Summary;
use ticketing_sim::results::SweepResults;

/// Everything a report shows.
#[derive(Debug, Default)]
pub struct Inputs {
    pub load: Option<LoadRun>,
    /// The soak: a long load run that sampled the target's resources.
    pub soak: Option<LoadRun>,
    /// The onsale: a flash sale on the open model.
    pub onsale: Option<LoadRun>,
    /// The onsale through the waiting room (`--waiting-room`).
    pub queued_onsale: Option<LoadRun>,
    pub sims: Vec<SimRun>,
    /// Mutation testing, one scope per `cargo mutants` run (`ci/mutants`).
    pub mutants: Vec<crate::mutants::Scope>,
    /// Inputs that were named but could not be read: (what, why).
    pub problems: Vec<(String, String)>,
    /// Exit status of each pipeline step, as `ci/nightly` passes them.
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct LoadRun {
    /// The run folder (goose's own report sits beside the summary).
    pub dir: PathBuf,
    pub summary: Summary,
}

#[derive(Debug)]
pub struct SimRun {
    pub path: PathBuf,
    pub results: SweepResults,
}

/// One step of the pipeline and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub exit_code: i32,
}

impl Step {
    /// Parses `NAME=CODE` (the `--step` flag).
    pub fn parse(text: &str) -> anyhow::Result<Step> {
        let (name, code) = text
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--step wants NAME=EXIT_CODE, got {text:?}"))?;
        let exit_code = code
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--step {text:?}: {code:?} is not an exit code"))?;
        anyhow::ensure!(!name.trim().is_empty(), "--step {text:?}: empty step name");
        Ok(Step {
            name: name.trim().to_owned(),
            exit_code,
        })
    }
}

impl Inputs {
    /// Reads a load run: its folder or its `summary.json`.
    pub fn add_load(&mut self, path: &Path) {
        if let Some(run) = self.read_run("load run", path) {
            self.load = Some(run);
        }
    }

    /// Reads the soak's load run (as [`add_load`](Self::add_load)).
    pub fn add_soak(&mut self, path: &Path) {
        if let Some(run) = self.read_run("soak run", path) {
            self.soak = Some(run);
        }
    }

    /// Reads the onsale's load run (as [`add_load`](Self::add_load)).
    pub fn add_onsale(&mut self, path: &Path) {
        if let Some(run) = self.read_run("onsale run", path) {
            self.onsale = Some(run);
        }
    }

    /// Reads the onsale through the waiting room (as [`add_load`](Self::add_load)).
    pub fn add_queued_onsale(&mut self, path: &Path) {
        if let Some(run) = self.read_run("queued onsale run", path) {
            self.queued_onsale = Some(run);
        }
    }

    fn read_run(&mut self, what: &str, path: &Path) -> Option<LoadRun> {
        let (dir, file) = if path.is_dir() {
            (path.to_path_buf(), path.join("summary.json"))
        } else {
            (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                path.to_path_buf(),
            )
        };
        match Summary::read(&file) {
            Ok(summary) => Some(LoadRun { dir, summary }),
            Err(e) => {
                self.problems.push((what.into(), format!("{e:#}")));
                None
            }
        }
    }

    /// Reads one `ticketing-sim --json` file.
    pub fn add_sim(&mut self, path: &Path) {
        match SweepResults::read(path) {
            Ok(results) => self.sims.push(SimRun {
                path: path.to_path_buf(),
                results,
            }),
            Err(e) => self
                .problems
                .push(("simulation results".into(), format!("{e:#}"))),
        }
    }

    /// Reads one scope of mutation testing (see [`crate::mutants::read`]).
    pub fn add_mutants(&mut self, path: &Path, equivalents: &crate::mutants::Equivalents) {
        match crate::mutants::read(path, equivalents) {
            Ok(scope) => self.mutants.push(scope),
            Err(e) => self
                .problems
                .push(("mutation testing".into(), format!("{e:#}"))),
        }
    }

    /// Sweep results (no bug injected), every file together.
    pub fn sweep_runs(&self) -> impl Iterator<Item = &ticketing_sim::results::RunResult> {
        self.sims
            .iter()
            .flat_map(|s| &s.results.runs)
            .filter(|r| r.bug.is_none())
    }

    /// The bug zoo's rows, every file together.
    pub fn zoo_rows(&self) -> impl Iterator<Item = &ticketing_sim::results::ZooRow> {
        self.sims.iter().flat_map(|s| &s.results.zoo)
    }

    /// The commit these results came from: the load run's, else a sweep's.
    pub fn git_revision(&self) -> String {
        self.load
            .as_ref()
            .map(|l| l.summary.environment.git_revision.clone())
            .or_else(|| self.sims.first().map(|s| s.results.git_revision.clone()))
            .unwrap_or_else(|| "unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_parses_name_and_code_and_refuses_nonsense() {
        assert_eq!(
            Step::parse("sim=101").unwrap(),
            Step {
                name: "sim".into(),
                exit_code: 101
            }
        );
        assert!(Step::parse("sim").is_err());
        assert!(Step::parse("sim=x").is_err());
        assert!(Step::parse("=0").is_err());
    }

    #[test]
    fn unreadable_inputs_become_problems_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = Inputs::default();
        inputs.add_load(dir.path());
        std::fs::write(dir.path().join("sim.json"), "{}").unwrap();
        inputs.add_sim(&dir.path().join("sim.json"));
        inputs.add_sim(&dir.path().join("absent.json"));
        assert!(inputs.load.is_none() && inputs.sims.is_empty());
        assert_eq!(inputs.problems.len(), 3);
        assert!(
            inputs.problems[0].1.contains("summary.json"),
            "{:?}",
            inputs.problems
        );
        assert!(inputs.problems[1].1.contains("not simulation results"));
    }
}
