//! Messages that travel over the event bus between order and reservation.
//!
//! Each message is wrapped in an [`Envelope`] with a unique id so consumers
//! can drop duplicates (delivery is at least once), and the trace id so one
//! order is one trace across services.

use crate::model::{EventId, HoldId, MessageId, OrderId, SeatId, TraceId};
use crate::saga::FailureReason;
use serde::{Deserialize, Serialize};

/// Topic names. Order messages are keyed by order id so each order's
/// messages stay in order on one partition.
pub mod topics {
    /// Saga inputs for the order orchestrator (`OrderPlaced`,
    /// `CancelRequested`, replies from reservation).
    pub const ORDER_SAGA: &str = "order-saga";
    /// Commands for reservation (`ConfirmSeats`, `ReleaseHold`, `ReturnSeats`).
    pub const RESERVATION_COMMANDS: &str = "reservation-commands";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BusMessage {
    /// An order was accepted; the orchestrator starts its saga.
    OrderPlaced { order_id: OrderId },
    /// Reservation: turn the pinned hold into sold seats (fenced by hold and order).
    ConfirmSeats { order_id: OrderId, hold_id: HoldId },
    /// Reservation: release the hold if it is still pinned to this order.
    ReleaseHold { order_id: OrderId, hold_id: HoldId },
    /// Reply: the seats are sold to this order.
    SeatsConfirmed {
        order_id: OrderId,
        event_id: EventId,
        seat_ids: Vec<SeatId>,
    },
    /// Reply: the fence refused the confirm.
    SeatsRejected {
        order_id: OrderId,
        reason: FailureReason,
    },
    /// A confirmed order's cancellation was accepted; the orchestrator
    /// starts its after-sale saga.
    CancelRequested { order_id: OrderId },
    /// Reservation: the fenced return of a cancelled order's seats (only
    /// seats still sold to this order become available).
    ReturnSeats {
        order_id: OrderId,
        event_id: EventId,
        seat_ids: Vec<SeatId>,
        customer_id: Option<String>,
    },
    /// Reply: the seats still sold to the order are back on sale (those
    /// returned by this command; none on a repeat).
    SeatsReturned {
        order_id: OrderId,
        returned: Vec<SeatId>,
    },
}

impl BusMessage {
    /// The partition key: every message is about one order.
    pub fn order_id(&self) -> &OrderId {
        match self {
            BusMessage::OrderPlaced { order_id }
            | BusMessage::ConfirmSeats { order_id, .. }
            | BusMessage::ReleaseHold { order_id, .. }
            | BusMessage::SeatsConfirmed { order_id, .. }
            | BusMessage::SeatsRejected { order_id, .. }
            | BusMessage::CancelRequested { order_id }
            | BusMessage::ReturnSeats { order_id, .. }
            | BusMessage::SeatsReturned { order_id, .. } => order_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub message_id: MessageId,
    pub trace_id: Option<TraceId>,
    pub body: BusMessage,
}

impl Envelope {
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_its_bytes() {
        let envelope = Envelope {
            message_id: MessageId("m-1".into()),
            trace_id: Some(TraceId("0af7651916cd43dd8448eb211c80319c".into())),
            body: BusMessage::OrderPlaced {
                order_id: OrderId("o-1".into()),
            },
        };
        let bytes = envelope.to_bytes();
        assert_eq!(Envelope::from_bytes(&bytes).expect("decodes"), envelope);
        assert!(Envelope::from_bytes(b"{}").is_err());
    }
}
