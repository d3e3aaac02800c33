//! # ticketing-load
//!
//! The load harness: goose scenarios (`rush`, `purchase`, `browse`, `sse`
//! and their `mix`) against any target — the embedded system in-process,
//! the local real stack (`ci/stack`), or a deployment by URL — with an SLO
//! gate and a post-run audit of the brief's invariants.
//!
//! - [`run`]: one run, start to finish, and its run folder.
//! - [`scenarios`]: the goose scenarios and the request helper.
//! - [`record`]: our own hdrhistograms (raw and coordinated-omission corrected).
//! - [`slo`]: the SLO file and overrides; [`gate`]: the verdict on a summary.
//! - [`audit`]: the post-run invariant checks; [`customers`]: what the
//!   customers were told, for the per-customer limits (invariant 9).
//! - [`summary`]: `summary.json` and the merge of several load processes.
//! - [`target`]: embedded / stack / host.
//! - [`live`]: fault plans applied to the local real stack.
//! - [`client`]: the harness's own (unmeasured) calls.
//! - [`resources`]: the target's memory, descriptors and tasks over a run (soaks).
//! - [`open`]: the open model (arrival-rate schedules, dropped iterations).
//!
//! The binary (`ticketing-load`) is a thin clap layer over these.

pub mod audit;
pub mod client;
pub mod customers;
pub mod fairness;
pub mod gate;
pub mod live;
pub mod open;
pub mod record;
pub mod resources;
pub mod run;
pub mod scenarios;
pub mod slo;
pub mod summary;
pub mod target;
