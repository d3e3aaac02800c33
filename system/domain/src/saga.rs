//! The order saga as an explicit, pure state machine.
//!
//! The orchestrator (order service) feeds it [`SagaInput`]s — replies from
//! the payment gateway and from reservation — and executes the
//! [`SagaCommand`]s it returns. The machine decides *what* happens; the
//! orchestrator decides *how* (HTTP call, outbox message). Because it is pure
//! it is property-tested: no capture without confirmed seats, every
//! authorization that does not end in a capture is voided, terminal states
//! never change.
//!
//! ```text
//! Authorizing --Authorized--> ConfirmingSeats --SeatsConfirmed--> Capturing --Captured--> Done(CONFIRMED)
//!      |                            |
//!      |--Declined--> Done(FAILED)  |--SeatsRejected--> Voiding(CANCELLED) --Voided--> Done(CANCELLED)
//!      |--GaveUp----> Voiding(FAILED) --Voided--> Done(FAILED)
//! ```

use crate::model::OrderStatus;
use serde::{Deserialize, Serialize};

/// Why an order did not end CONFIRMED (contract v1: `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    /// The gateway declined the authorization.
    PaymentDeclined,
    /// The gateway could not be reached before the authorization deadline.
    PaymentUnavailable,
    /// The hold expired before its seats could be confirmed.
    HoldExpired,
    /// The hold was released or is unknown to the seat store.
    HoldReleased,
    /// The hold was pinned to a different order.
    HoldNotPinned,
    /// A durable ticket for one of the seats already exists.
    SeatConflict,
}

/// Where a saga is. `Done` is terminal and absorbs every later input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaState {
    /// Waiting for the payment authorization.
    Authorizing,
    /// Authorized; `ConfirmSeats` sent to reservation; waiting for its reply.
    ConfirmingSeats,
    /// Seats confirmed and tickets written; capture pending.
    Capturing,
    /// Compensating: void the authorization, then finish with `status`.
    Voiding {
        status: OrderStatus,
        reason: FailureReason,
    },
    /// Terminal.
    Done {
        status: OrderStatus,
        reason: Option<FailureReason>,
    },
}

impl SagaState {
    /// The public order status for this saga state.
    pub fn order_status(&self) -> OrderStatus {
        match self {
            SagaState::Done { status, .. } => *status,
            _ => OrderStatus::Pending,
        }
    }

    /// The failure reason, once one is known.
    pub fn reason(&self) -> Option<FailureReason> {
        match self {
            SagaState::Voiding { reason, .. } => Some(*reason),
            SagaState::Done { reason, .. } => *reason,
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, SagaState::Done { .. })
    }
}

/// What happened, as reported to the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SagaInput {
    PaymentAuthorized,
    PaymentDeclined,
    /// Authorization could not be obtained before its deadline (timeouts or
    /// errors). A timed-out call may still have succeeded, so this voids.
    PaymentGaveUp,
    SeatsConfirmed,
    SeatsRejected(FailureReason),
    /// Tickets could not be written: a ticket for a seat already exists.
    TicketConflict,
    PaymentCaptured,
    PaymentVoided,
}

/// What the orchestrator must do next. Every command is idempotent at its
/// executor, so re-running one after a crash is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SagaCommand {
    /// Call the gateway's authorize (idempotent per order).
    Authorize,
    /// Send `ConfirmSeats` to reservation through the outbox.
    ConfirmSeats,
    /// Write one durable ticket per seat, in the same transaction as the step.
    WriteTickets,
    /// Call the gateway's capture.
    Capture,
    /// Call the gateway's void (safe when nothing was authorized).
    Void,
    /// Send `ReleaseHold` to reservation through the outbox.
    ReleaseHold,
}

/// The result of feeding one input: the next state and the commands to
/// run. Generic so the after-sale machine ([`crate::refund`]) shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<S = SagaState, C = SagaCommand> {
    pub next: S,
    pub commands: Vec<C>,
}

/// The commands to start a fresh saga with, and its first state.
pub fn start() -> Transition {
    Transition {
        next: SagaState::Authorizing,
        commands: vec![SagaCommand::Authorize],
    }
}

/// Feeds one input. `None` means the input does not apply to this state
/// (a duplicate, a late reply, or a reply to a step already left) and must be
/// ignored — consumers then just acknowledge the message.
pub fn transition(state: SagaState, input: SagaInput) -> Option<Transition> {
    use SagaCommand as C;
    use SagaInput as I;
    use SagaState as S;
    let t = |next, commands: &[SagaCommand]| {
        Some(Transition {
            next,
            commands: commands.to_vec(),
        })
    };
    match (state, input) {
        (S::Authorizing, I::PaymentAuthorized) => t(S::ConfirmingSeats, &[C::ConfirmSeats]),
        (S::Authorizing, I::PaymentDeclined) => t(
            S::Done {
                status: OrderStatus::Failed,
                reason: Some(FailureReason::PaymentDeclined),
            },
            &[C::ReleaseHold],
        ),
        (S::Authorizing, I::PaymentGaveUp) => t(
            S::Voiding {
                status: OrderStatus::Failed,
                reason: FailureReason::PaymentUnavailable,
            },
            &[C::Void, C::ReleaseHold],
        ),
        (S::ConfirmingSeats, I::SeatsConfirmed) => t(S::Capturing, &[C::WriteTickets, C::Capture]),
        (S::ConfirmingSeats, I::SeatsRejected(reason)) => t(
            S::Voiding {
                status: OrderStatus::Cancelled,
                reason,
            },
            &[C::Void, C::ReleaseHold],
        ),
        // Only reachable if the seat store's fence failed: never capture.
        (S::Capturing, I::TicketConflict) => t(
            S::Voiding {
                status: OrderStatus::Cancelled,
                reason: FailureReason::SeatConflict,
            },
            &[C::Void],
        ),
        (S::Capturing, I::PaymentCaptured) => t(
            S::Done {
                status: OrderStatus::Confirmed,
                reason: None,
            },
            &[],
        ),
        (S::Voiding { status, reason }, I::PaymentVoided) => t(
            S::Done {
                status,
                reason: Some(reason),
            },
            &[],
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_input() -> impl Strategy<Value = SagaInput> {
        prop_oneof![
            Just(SagaInput::PaymentAuthorized),
            Just(SagaInput::PaymentDeclined),
            Just(SagaInput::PaymentGaveUp),
            Just(SagaInput::SeatsConfirmed),
            Just(SagaInput::SeatsRejected(FailureReason::HoldExpired)),
            Just(SagaInput::SeatsRejected(FailureReason::HoldReleased)),
            Just(SagaInput::TicketConflict),
            Just(SagaInput::PaymentCaptured),
            Just(SagaInput::PaymentVoided),
        ]
    }

    /// Runs inputs through the machine and returns states and commands.
    fn run(inputs: &[SagaInput]) -> (Vec<SagaState>, Vec<SagaCommand>) {
        let first = start();
        let mut state = first.next;
        let mut states = vec![state];
        let mut commands = first.commands;
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
    fn happy_path_confirms() {
        let (states, commands) = run(&[
            SagaInput::PaymentAuthorized,
            SagaInput::SeatsConfirmed,
            SagaInput::PaymentCaptured,
        ]);
        assert_eq!(
            states.last().unwrap().order_status(),
            OrderStatus::Confirmed
        );
        assert_eq!(
            commands,
            vec![
                SagaCommand::Authorize,
                SagaCommand::ConfirmSeats,
                SagaCommand::WriteTickets,
                SagaCommand::Capture
            ]
        );
    }

    #[test]
    fn rejected_confirm_voids_and_cancels() {
        let (states, commands) = run(&[
            SagaInput::PaymentAuthorized,
            SagaInput::SeatsRejected(FailureReason::HoldExpired),
            SagaInput::PaymentVoided,
        ]);
        let last = states.last().unwrap();
        assert_eq!(last.order_status(), OrderStatus::Cancelled);
        assert_eq!(last.reason(), Some(FailureReason::HoldExpired));
        assert!(commands.contains(&SagaCommand::Void));
        assert!(!commands.contains(&SagaCommand::Capture));
    }

    #[test]
    fn decline_fails_and_releases() {
        let (states, commands) = run(&[SagaInput::PaymentDeclined]);
        assert_eq!(states.last().unwrap().order_status(), OrderStatus::Failed);
        assert_eq!(commands.last(), Some(&SagaCommand::ReleaseHold));
    }

    #[test]
    fn a_payment_given_up_is_voided_and_fails_as_unavailable() {
        let t = transition(SagaState::Authorizing, SagaInput::PaymentGaveUp).expect("applies");
        let voiding = SagaState::Voiding {
            status: OrderStatus::Failed,
            reason: FailureReason::PaymentUnavailable,
        };
        assert_eq!(t.next, voiding);
        assert_eq!(
            t.commands,
            vec![SagaCommand::Void, SagaCommand::ReleaseHold]
        );
        assert_eq!(voiding.reason(), Some(FailureReason::PaymentUnavailable));
        assert!(!voiding.is_done(), "voiding still has a step to run");
        let done = transition(voiding, SagaInput::PaymentVoided)
            .expect("applies")
            .next;
        assert!(done.is_done());
        assert_eq!(done.order_status(), OrderStatus::Failed);
    }

    #[test]
    fn a_ticket_conflict_while_capturing_voids_and_never_captures() {
        let t = transition(SagaState::Capturing, SagaInput::TicketConflict).expect("applies");
        assert_eq!(
            t.next,
            SagaState::Voiding {
                status: OrderStatus::Cancelled,
                reason: FailureReason::SeatConflict,
            }
        );
        // The seats stay with whoever holds the ticket: no release either.
        assert_eq!(t.commands, vec![SagaCommand::Void]);
        assert_eq!(
            transition(SagaState::Authorizing, SagaInput::TicketConflict),
            None,
            "a reply to a step not taken is ignored"
        );
    }

    proptest! {
        /// Terminal states absorb everything; capture only after confirmed seats
        /// and at most once; an authorization that does not end CONFIRMED is
        /// voided; CONFIRMED implies seats confirmed and captured.
        #[test]
        fn saga_invariants(inputs in proptest::collection::vec(any_input(), 0..24)) {
            let (states, commands) = run(&inputs);
            // Done is absorbing.
            if let Some(pos) = states.iter().position(|s| s.is_done()) {
                prop_assert_eq!(pos, states.len() - 1);
            }
            let captures = commands.iter().filter(|c| **c == SagaCommand::Capture).count();
            prop_assert!(captures <= 1);
            if captures == 1 {
                let confirm = commands.iter().position(|c| *c == SagaCommand::ConfirmSeats);
                let tickets = commands.iter().position(|c| *c == SagaCommand::WriteTickets);
                let capture = commands.iter().position(|c| *c == SagaCommand::Capture);
                // All three issued, in this order (`None < Some(_)` would pass).
                prop_assert!(confirm.is_some() && confirm < tickets && tickets < capture);
            }
            let last = *states.last().unwrap();
            match last.order_status() {
                OrderStatus::Confirmed => {
                    prop_assert!(states.contains(&SagaState::Capturing));
                    prop_assert!(!commands.contains(&SagaCommand::Void));
                }
                OrderStatus::Cancelled | OrderStatus::Failed => {
                    let authorized = states.contains(&SagaState::ConfirmingSeats);
                    if authorized {
                        prop_assert!(commands.contains(&SagaCommand::Void));
                    }
                    prop_assert!(last.reason().is_some());
                }
                OrderStatus::Pending => {}
                // After-sale statuses are the refund machine's, never this one's.
                OrderStatus::Cancelling | OrderStatus::Refunded | OrderStatus::RefundFailed => {
                    prop_assert!(false, "the forward saga reached {last:?}");
                }
            }
        }
    }
}
