//! The after-sale saga — cancelling a CONFIRMED order — as a pure state
//! machine, like [`crate::saga`] for the forward path.
//!
//! The order service drives it (`ticketing_services::order::after_sale`)
//! through the outbox and the bus like the forward saga; an order's state
//! is [`crate::ports::OrderRecord::refund`].
//!
//! ```text
//! VoidingTickets --TicketsVoided--> Refunding --Refunded--> ReturningSeats --SeatsReturned--> Done(REFUNDED)
//!                                      |   ^
//!                         RefundGaveUp |   | OperatorRetry
//!                                      v   |
//!                                  RefundFailed (REFUND_FAILED)
//! ```
//!
//! The order of the steps is the safety argument. Tickets are voided before
//! anything else, so from then on the order holds no valid ticket; the
//! money goes back before the seats do, so a seat is never on sale again
//! while its first buyer's money is still kept; and the seats are returned
//! last with a release **fenced** by this order (only seats still sold to
//! it), so a late or repeated return cannot free a seat already sold to
//! someone else. While a refund is owed (`Refunding`, `RefundFailed`) the
//! books balance as: captured − refunded = valid tickets + refunds owed.
//!
//! Layer: domain; imports nothing outside this crate.

use crate::model::OrderStatus;
use crate::saga::Transition;
use serde::{Deserialize, Serialize};

/// Where a cancellation is. `Done` is terminal and absorbs every input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// CANCELLING: the order's tickets are being voided (one transaction
    /// with the step that records it).
    VoidingTickets,
    /// Tickets void; the gateway's refund (idempotent per order) is due.
    Refunding,
    /// The refund did not go through before its deadline: surfaced to an
    /// operator, who may retry it. Tickets stay void, seats stay sold.
    RefundFailed,
    /// Refunded; the seats go back on sale (fenced by the order).
    ReturningSeats,
    /// REFUNDED.
    Done,
}

impl RefundState {
    /// The order status the contract shows for this state.
    pub fn order_status(self) -> OrderStatus {
        match self {
            RefundState::VoidingTickets | RefundState::Refunding | RefundState::ReturningSeats => {
                OrderStatus::Cancelling
            }
            RefundState::RefundFailed => OrderStatus::RefundFailed,
            RefundState::Done => OrderStatus::Refunded,
        }
    }

    /// Whether the watchdog has nothing to do: done, or waiting for an
    /// operator.
    pub fn is_settled(self) -> bool {
        matches!(self, RefundState::Done | RefundState::RefundFailed)
    }

    pub fn is_done(self) -> bool {
        self == RefundState::Done
    }

    /// Whether the order still owes its buyer the money (the books count
    /// it as owed, not as a valid ticket).
    pub fn owes_refund(self) -> bool {
        matches!(self, RefundState::Refunding | RefundState::RefundFailed)
    }
}

/// What happened, as reported to the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundInput {
    TicketsVoided,
    Refunded,
    /// The refund could not be obtained before its deadline (a timed-out
    /// call may have succeeded: a retry asks the gateway, which is
    /// idempotent per order, and never refunds twice).
    RefundGaveUp,
    /// An operator asked for another attempt (internal route).
    OperatorRetry,
    SeatsReturned,
}

/// What the orchestrator must do next; each is idempotent at its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RefundCommand {
    /// Void every ticket of the order (durably, in the order database).
    VoidTickets,
    /// Call the gateway's refund (idempotent per order).
    Refund,
    /// Send the fenced return of the order's seats to reservation.
    ReturnSeats,
}

/// The result of feeding one input (the forward saga's [`Transition`]).
pub type RefundTransition = Transition<RefundState, RefundCommand>;

/// The first state of a cancellation and the command that starts it.
pub fn start() -> RefundTransition {
    RefundTransition {
        next: RefundState::VoidingTickets,
        commands: vec![RefundCommand::VoidTickets],
    }
}

/// Feeds one input; `None` when it does not apply to this state (a
/// duplicate or late reply: acknowledge it and change nothing).
pub fn transition(state: RefundState, input: RefundInput) -> Option<RefundTransition> {
    use RefundCommand as C;
    use RefundInput as I;
    use RefundState as S;
    let t = |next, commands: &[RefundCommand]| {
        Some(RefundTransition {
            next,
            commands: commands.to_vec(),
        })
    };
    match (state, input) {
        (S::VoidingTickets, I::TicketsVoided) => t(S::Refunding, &[C::Refund]),
        (S::Refunding, I::Refunded) => t(S::ReturningSeats, &[C::ReturnSeats]),
        (S::Refunding, I::RefundGaveUp) => t(S::RefundFailed, &[]),
        (S::RefundFailed, I::OperatorRetry) => t(S::Refunding, &[C::Refund]),
        // A refund that timed out at the caller but went through, reported
        // after the deadline: the money is back, so the seats may go too.
        (S::RefundFailed, I::Refunded) => t(S::ReturningSeats, &[C::ReturnSeats]),
        (S::ReturningSeats, I::SeatsReturned) => t(S::Done, &[]),
        _ => None,
    }
}

/// Why a cancellation is refused (mapped to HTTP in one place, with the
/// other domain errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    /// Only a CONFIRMED order can be cancelled (a pending one is still
    /// being sold; a failed one has nothing to give back).
    #[error("only a confirmed order can be cancelled")]
    NotConfirmed,
    /// Too close to the event's start (`refund.window_before_start_s`).
    #[error("refunds close {window_before_start_s} s before the event starts")]
    RefundWindowClosed { window_before_start_s: u64 },
}

/// The cancellation policy: a CONFIRMED order may be cancelled until
/// `window_before_start_s` before its event starts (`now_ms` and
/// `starts_at_ms` on the same clock).
pub fn may_cancel(
    confirmed: bool,
    now_ms: u64,
    starts_at_ms: u64,
    window_before_start_s: u64,
) -> Result<(), CancelRefusal> {
    if !confirmed {
        return Err(CancelRefusal::NotConfirmed);
    }
    let closes_at_ms = starts_at_ms.saturating_sub(window_before_start_s.saturating_mul(1_000));
    if now_ms >= closes_at_ms {
        return Err(CancelRefusal::RefundWindowClosed {
            window_before_start_s,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_input() -> impl Strategy<Value = RefundInput> {
        prop_oneof![
            Just(RefundInput::TicketsVoided),
            Just(RefundInput::Refunded),
            Just(RefundInput::RefundGaveUp),
            Just(RefundInput::OperatorRetry),
            Just(RefundInput::SeatsReturned),
        ]
    }

    fn run(inputs: &[RefundInput]) -> (Vec<RefundState>, Vec<RefundCommand>) {
        let first = start();
        let (mut state, mut commands) = (first.next, first.commands);
        let mut states = vec![state];
        for &i in inputs {
            if let Some(t) = transition(state, i) {
                state = t.next;
                commands.extend(t.commands);
                states.push(state);
            }
        }
        (states, commands)
    }

    #[test]
    fn a_cancellation_voids_then_refunds_then_returns_the_seats() {
        let (states, commands) = run(&[
            RefundInput::TicketsVoided,
            RefundInput::Refunded,
            RefundInput::SeatsReturned,
        ]);
        assert_eq!(
            commands,
            vec![
                RefundCommand::VoidTickets,
                RefundCommand::Refund,
                RefundCommand::ReturnSeats
            ]
        );
        let names: Vec<&str> = states.iter().map(|s| s.order_status().as_str()).collect();
        assert_eq!(
            names,
            ["CANCELLING", "CANCELLING", "CANCELLING", "REFUNDED"]
        );
        assert!(states.last().unwrap().is_done());
    }

    #[test]
    fn a_refund_given_up_waits_for_an_operator_and_keeps_the_seats() {
        let (states, commands) = run(&[RefundInput::TicketsVoided, RefundInput::RefundGaveUp]);
        let failed = *states.last().unwrap();
        assert_eq!(failed, RefundState::RefundFailed);
        assert_eq!(failed.order_status(), OrderStatus::RefundFailed);
        assert!(failed.owes_refund());
        assert!(!commands.contains(&RefundCommand::ReturnSeats));
        assert_eq!(transition(failed, RefundInput::SeatsReturned), None);
        let retry = transition(failed, RefundInput::OperatorRetry).expect("applies");
        assert_eq!(retry.next, RefundState::Refunding);
        assert_eq!(retry.commands, vec![RefundCommand::Refund]);
    }

    #[test]
    fn a_late_refund_report_after_giving_up_returns_the_seats_without_refunding_again() {
        let t = transition(RefundState::RefundFailed, RefundInput::Refunded).expect("applies");
        assert_eq!(t.next, RefundState::ReturningSeats);
        assert_eq!(t.commands, vec![RefundCommand::ReturnSeats]);
    }

    #[test]
    fn only_the_refunding_states_owe_money() {
        for (s, owes) in [
            (RefundState::VoidingTickets, false),
            (RefundState::Refunding, true),
            (RefundState::RefundFailed, true),
            (RefundState::ReturningSeats, false),
            (RefundState::Done, false),
        ] {
            assert_eq!(s.owes_refund(), owes, "{s:?}");
            assert_eq!(s.is_done(), s == RefundState::Done, "{s:?}");
        }
    }

    #[test]
    fn cancelling_needs_a_confirmed_order_inside_the_window() {
        let hour_ms = 3_600_000;
        let starts = 10 * hour_ms;
        assert_eq!(
            may_cancel(true, starts - 2 * hour_ms, starts, 3_600),
            Ok(())
        );
        // The window closes exactly one hour before the start.
        assert_eq!(
            may_cancel(true, starts - hour_ms - 1, starts, 3_600),
            Ok(())
        );
        let closed = Err(CancelRefusal::RefundWindowClosed {
            window_before_start_s: 3_600,
        });
        assert_eq!(may_cancel(true, starts - hour_ms, starts, 3_600), closed);
        assert_eq!(may_cancel(true, starts + 1, starts, 3_600), closed);
        assert_eq!(
            may_cancel(false, 0, starts, 3_600),
            Err(CancelRefusal::NotConfirmed)
        );
        // A window longer than the time to the start is simply closed.
        assert!(may_cancel(true, 0, hour_ms, 7_200).is_err());
        assert_eq!(
            CancelRefusal::RefundWindowClosed {
                window_before_start_s: 60
            }
            .to_string(),
            "refunds close 60 s before the event starts"
        );
    }

    proptest! {
        /// Done absorbs everything; the seats are returned only after the
        /// tickets were voided and the money refunded, at most once; the
        /// refund is never asked for before the tickets are void; REFUNDED
        /// means all three steps ran.
        #[test]
        fn refund_saga_invariants(inputs in proptest::collection::vec(any_input(), 0..24)) {
            let (states, commands) = run(&inputs);
            if let Some(pos) = states.iter().position(|s| s.is_done()) {
                prop_assert_eq!(pos, states.len() - 1);
            }
            let first = |c: RefundCommand| commands.iter().position(|x| *x == c);
            let returns = commands.iter().filter(|c| **c == RefundCommand::ReturnSeats).count();
            prop_assert!(returns <= 1);
            if let Some(ret) = first(RefundCommand::ReturnSeats) {
                // (`None < Some(_)`: say "refunded, and before" outright.)
                prop_assert!(matches!(first(RefundCommand::Refund), Some(r) if r < ret));
                let refunded_at = states.iter().position(|s| *s == RefundState::ReturningSeats);
                prop_assert!(refunded_at.is_some());
            }
            if let Some(refund) = first(RefundCommand::Refund) {
                prop_assert_eq!(first(RefundCommand::VoidTickets), Some(0));
                prop_assert!(refund > 0);
            }
            if states.last().unwrap().is_done() {
                for c in [RefundCommand::VoidTickets, RefundCommand::Refund, RefundCommand::ReturnSeats] {
                    prop_assert!(commands.contains(&c));
                }
            }
        }
    }
}
