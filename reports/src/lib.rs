//! # ticketing-reports
//!
//! One self-contained HTML page of a nightly run: the verdict, the load
//! run (`ticketing-load`'s `summary.json`), the simulation sweep and the bug
//! zoo (`ticketing-sim --json`), the trend over earlier nights, and the
//! environment. Charts are SVG drawn by plotters and inlined; the page is a
//! minijinja template; nothing is fetched when the page is opened, so it
//! works offline and as a CI artifact.
//!
//! The crate reads the JSON its producers write with their own types
//! (`ticketing_load::summary::Summary`, `ticketing_sim::results::SweepResults`),
//! so a schema change breaks the build here, not the page.
//!
//! - [`inputs`]: reading the run's files; a missing or unreadable input
//!   becomes a failed row of the verdict, not a missing page.
//! - [`mutants`]: cargo-mutants' outcomes per scope and the mutation score.
//! - [`verdict`]: the banner's rows and the overall pass/fail.
//! - [`history`]: the trend file (one JSON line per night).
//! - [`charts`]: every chart, as an SVG string.
//! - [`render`]: the page.

pub mod charts;
pub mod format;
pub mod history;
pub mod inputs;
pub mod mutants;
pub mod render;
pub mod verdict;

pub use inputs::Inputs;
pub use render::{Rendered, render};
