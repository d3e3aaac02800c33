//! The client history the simulator's users and watchers record
//! (`ticketing_invariants::history`): every operation's call, and its
//! return when the client got an answer, stamped with a position in one
//! total order (turmoil runs the world on one thread, so the order in which
//! clients record is the order things happened) and the simulated store
//! clock. Recording draws no randomness and awaits nothing: it changes no
//! run.
//!
//! Layer: imports `clock` and the invariants' history types.

use crate::clock::SimClock;
use std::sync::{Arc, Mutex};
use ticketing_domain::SeatId;
use ticketing_domain::ports::Clock;
use ticketing_invariants::history::{Call, History, Op, Outcome, Stamp};
use ticketing_services::http::client::JsonResponse;

/// The run's history and the next position.
#[derive(Debug, Default)]
pub struct Log {
    pub history: History,
    next_seq: u64,
}

impl Log {
    fn stamp(&mut self) -> Stamp {
        self.next_seq += 1;
        Stamp {
            seq: self.next_seq,
            at_ms: SimClock.now_ms(),
        }
    }

    /// A log whose times are shown from the simulation's epoch.
    pub fn shared() -> SharedLog {
        let mut log = Log::default();
        log.history.origin_ms = crate::clock::EPOCH_MS;
        Arc::new(Mutex::new(log))
    }
}

pub type SharedLog = Arc<Mutex<Log>>;

/// One client's pen.
#[derive(Debug, Clone)]
pub struct Recorder {
    log: SharedLog,
    process: String,
}

/// A call not yet answered (its index in the history).
#[derive(Debug, Clone, Copy)]
pub struct Pending(usize);

impl Recorder {
    pub fn new(log: SharedLog, process: String) -> Recorder {
        Recorder { log, process }
    }

    pub fn call(&self, f: Call) -> Pending {
        let mut log = crate::lock(&self.log);
        let call = log.stamp();
        log.history.ops.push(Op {
            process: self.process.clone(),
            call,
            ret: None,
            f,
            outcome: Outcome::Unknown,
        });
        Pending(log.history.ops.len() - 1)
    }

    /// The answer to `p`; `Outcome::Unknown` leaves it unanswered (the
    /// effect may still happen).
    pub fn answer(&self, p: Pending, outcome: Outcome) {
        if outcome == Outcome::Unknown {
            return;
        }
        let mut log = crate::lock(&self.log);
        let ret = log.stamp();
        if let Some(op) = log.history.ops.get_mut(p.0) {
            op.ret = Some(ret);
            op.outcome = outcome;
        }
    }

    /// Something delivered to the client unasked (a stream message).
    pub fn delivered(&self, f: Call, outcome: Outcome) {
        let p = self.call(f);
        self.answer(p, outcome);
    }
}

/// A definite refusal, or `Unknown` for no answer or a 5xx (a server that
/// failed may still have acted: its call to the store may have landed).
pub fn refusal(r: Option<&JsonResponse>) -> Outcome {
    match r {
        Some(r) if r.status.is_client_error() => Outcome::Refused {
            status: r.status.as_u16(),
            code: r.error_code(),
        },
        _ => Outcome::Unknown,
    }
}

/// The seats a `SEATS_UNAVAILABLE` refusal names.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TakenBody {
    seat_ids: Vec<SeatId>,
}

/// A refused hold: the taken seats when it names them.
pub fn hold_refusal(r: Option<&JsonResponse>) -> Outcome {
    if let Some(r) = r
        && r.error_code() == "SEATS_UNAVAILABLE"
        && let Some(taken) = r.json::<TakenBody>()
    {
        return Outcome::Taken {
            seats: taken.seat_ids,
        };
    }
    refusal(r)
}
