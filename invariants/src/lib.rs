//! The brief's invariants, written once.
//!
//! Pure functions ([`rules`]) over one [`Snapshot`] of ground truth. The
//! simulator (`sim/src/check.rs`), the load audit (`load/src/audit.rs`) and
//! the stack test (`system/cli/tests/stack.rs`) each build a snapshot of
//! what they can see and call [`check`] or [`judge`]; none of them states an
//! invariant of its own. A part a harness cannot see is left `None` and its
//! rule says it was not judged; a part it failed to read is a violation.
//!
//! The checkers share no code with the services they check: this crate
//! imports only `ticketing-domain`'s types and ports.

pub mod customers;
pub mod ddmin;
pub mod history;
pub mod linearize;
pub mod queue;
pub mod read;
pub mod rules;
pub mod seat_model;
pub mod settlement;
pub mod snapshot;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod tests;

pub use customers::{BoughtSeats, CustomerFact, GrantedHold, Holding, LimitsFact};
pub use history::{History, HistoryReport};
pub use read::{Stores, read_ports};
pub use rules::{INVARIANTS, Verdict, Violation, check, judge, oversold_seats};
pub use seat_model::check_history;
pub use snapshot::{
    EventFact, HoldFact, OrderFact, OutboxFact, QueueFact, Quiescence, Snapshot, StreamFact, Told,
    ToldWhat,
};
