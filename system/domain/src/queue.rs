//! The waiting room's rules, pure: how places are ordered, how many
//! visitors one admission step may let in, what wait to announce.
//!
//! - **Order.** A place is a score in the room's waiting queue (lowest is
//!   served first). Whoever joins before the on-sale time gets a random
//!   score below [`FIFO_BASE`] drawn once at join: at the on-sale time
//!   everyone who came early is in one uniformly shuffled order, fixed from
//!   then on (and not shown before: no position is announced in the
//!   pre-queue). Whoever joins later gets `FIFO_BASE + seq`, behind every
//!   early visitor and in arrival order.
//! - **Caps.** One admission step admits at most `active_max − active`
//!   visitors and at most `admit_per_s` in one wall-clock second (both per
//!   event, changeable at run time); both are counted inside the store's
//!   atomic step, never read and then written by a caller.
//! - **Outages are not abandonment.** A visitor who stops asking for
//!   `abandon_ms` loses the place — but not when nobody could reach the
//!   room: see [`outage_gap_ms`] (found by the simulator: a Redis restart
//!   dropped every waiting visitor as abandoned).
//! - **Wait.** Announced from the admissions measured over the last
//!   [`RATE_WINDOW_S`] whole seconds (the configured rate until there are
//!   any), so the estimate tells what the room really does.
//!
//! Layer: domain; imports `model` only.

use crate::model::UnixMs;
use serde::{Deserialize, Serialize};

/// Scores below this are pre-queue places (random); FIFO places start here.
/// 2^52: every score stays an exact integer in a Redis sorted set (a double).
pub const FIFO_BASE: u64 = 1 << 52;

/// Whole seconds of admissions the wait estimate is measured over.
pub const RATE_WINDOW_S: u64 = 10;

/// One event's waiting room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomConfig {
    /// Joining is refused before this (`on_sale_at_ms − queue.opens_before_s`).
    pub opens_at_ms: UnixMs,
    /// The pre-queue closes and admission starts.
    pub on_sale_at_ms: UnixMs,
    /// Most shoppers active at once.
    pub active_max: u32,
    /// Most admissions in one wall-clock second.
    pub admit_per_s: u32,
    /// An active shopper's slot frees after this long without a request.
    pub idle_ms: u64,
    /// A waiting visitor who has not asked for this long loses the place.
    pub abandon_ms: u64,
    /// How long an admission token is valid; the slot frees then at the latest.
    pub token_ttl_ms: u64,
}

/// The score of a place taken at `now_ms` (`shuffle_key`: random bits
/// drawn for this join; `seq`: the room's FIFO counter after this join).
pub fn place_score(room: &RoomConfig, now_ms: UnixMs, shuffle_key: u64, seq: u64) -> u64 {
    if now_ms < room.on_sale_at_ms {
        shuffle_key % FIFO_BASE
    } else {
        FIFO_BASE + seq.min(FIFO_BASE - 1)
    }
}

/// How many of `waiting` one admission step lets in.
pub fn admission_budget(
    room: &RoomConfig,
    active: u64,
    admitted_this_second: u64,
    waiting: u64,
) -> u64 {
    let by_active = u64::from(room.active_max).saturating_sub(active);
    let by_rate = u64::from(room.admit_per_s).saturating_sub(admitted_this_second);
    by_active.min(by_rate).min(waiting)
}

/// Until when an active slot is held after a request at `now_ms`: the
/// idle time, never past the token's expiry.
pub fn slot_until(room: &RoomConfig, now_ms: UnixMs, token_expires_at_ms: UnixMs) -> UnixMs {
    (now_ms + room.idle_ms).min(token_expires_at_ms)
}

/// A gap between two admission steps longer than this means nobody could
/// reach the room meanwhile (its store was down, or every queue process
/// was): visitors who kept asking could not be heard. The step after such
/// a gap starts a grace of `abandon_ms` in which no place is dropped, and
/// moves every active slot's end later by the gap (never past its token).
/// Half the abandon time: a visitor asking at shorter intervals is never
/// dropped for an outage shorter than this either.
pub fn outage_gap_ms(room: &RoomConfig) -> u64 {
    room.abandon_ms / 2
}

/// The admission rate to announce: `measured` admissions over the window
/// of [`RATE_WINDOW_S`] seconds, or the configured rate while nobody has
/// been admitted in it.
pub fn announced_rate_per_s(room: &RoomConfig, measured: u64) -> f64 {
    if measured == 0 {
        f64::from(room.admit_per_s)
    } else {
        measured as f64 / RATE_WINDOW_S as f64
    }
}

/// The wait announced to a visitor with `ahead` people before it.
pub fn estimated_wait_ms(ahead: u64, rate_per_s: f64) -> Option<u64> {
    if rate_per_s <= 0.0 {
        return None;
    }
    Some(((ahead + 1) as f64 / rate_per_s * 1000.0).ceil() as u64)
}

/// Where a place is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceState {
    /// Joined before the on-sale time: the order is not drawn yet.
    Prequeue,
    /// In the queue, `ahead` people before it.
    Waiting { ahead: u64 },
    /// Admitted: may shop until the slot frees (`slot_until_ms`) and at
    /// most until the token expires.
    Admitted {
        admitted_at_ms: UnixMs,
        token_expires_at_ms: UnixMs,
        slot_until_ms: UnixMs,
    },
    /// The place is gone: abandoned, the slot expired, or the shopper left.
    Expired,
}

/// One entry of a room's admission log: what the simulator's checkers
/// hold the caps and the order against (the in-memory store keeps it when
/// asked to; production stores keep none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueLogEntry {
    /// A place taken: `prequeue` before the on-sale time, else FIFO
    /// position `seq` (the room's join counter).
    Joined {
        ticket: String,
        at_ms: UnixMs,
        prequeue: bool,
        seq: u64,
    },
    /// Admitted from the queue.
    Admitted { ticket: String, at_ms: UnixMs },
    /// Dropped from the queue (abandoned).
    Dropped { ticket: String, at_ms: UnixMs },
    /// An admission step ended with `active` shoppers; the caps it ran with.
    Step {
        at_ms: UnixMs,
        active: u64,
        active_max: u32,
        admit_per_s: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn room() -> RoomConfig {
        RoomConfig {
            opens_at_ms: 1_000,
            on_sale_at_ms: 10_000,
            active_max: 50,
            admit_per_s: 20,
            idle_ms: 60_000,
            abandon_ms: 30_000,
            token_ttl_ms: 600_000,
        }
    }

    #[test]
    fn early_places_are_random_and_ahead_of_every_later_one() {
        let r = room();
        let early = place_score(&r, 9_999, u64::MAX, 1);
        let late = place_score(&r, 10_000, 0, 1);
        assert!(early < FIFO_BASE && late >= FIFO_BASE);
        assert!(
            place_score(&r, 10_000, 0, 2) > late,
            "later arrivals queue behind"
        );
        assert_eq!(
            place_score(&r, 5_000, 7, 99),
            7,
            "the drawn key, not the arrival"
        );
    }

    #[test]
    fn a_late_place_is_its_arrival_number_behind_the_prequeue() {
        let r = room();
        assert_eq!(place_score(&r, 10_000, 0, 5), FIFO_BASE + 5);
        assert_eq!(
            place_score(&r, 10_000, 0, u64::MAX),
            2 * FIFO_BASE - 1,
            "capped below 2^53: still exact in a Redis score"
        );
    }

    #[test]
    fn an_outage_is_a_gap_of_half_the_abandon_time() {
        assert_eq!(outage_gap_ms(&room()), 15_000);
        let short = RoomConfig {
            abandon_ms: 3,
            ..room()
        };
        assert_eq!(outage_gap_ms(&short), 1);
    }

    #[test]
    fn the_budget_respects_both_caps_and_the_queue() {
        let r = room();
        assert_eq!(admission_budget(&r, 0, 0, 1_000), 20, "rate cap");
        assert_eq!(admission_budget(&r, 45, 0, 1_000), 5, "active cap");
        assert_eq!(admission_budget(&r, 0, 18, 1_000), 2, "this second's rest");
        assert_eq!(admission_budget(&r, 0, 0, 3), 3, "only who waits");
        assert_eq!(admission_budget(&r, 60, 30, 10), 0, "over both caps: none");
    }

    #[test]
    fn the_wait_follows_the_measured_rate() {
        let r = room();
        assert_eq!(announced_rate_per_s(&r, 0), 20.0);
        assert_eq!(announced_rate_per_s(&r, 50), 5.0);
        assert_eq!(estimated_wait_ms(9, 5.0), Some(2_000));
        assert_eq!(estimated_wait_ms(9, 0.0), None);
        assert_eq!(
            slot_until(&r, 1_000, 30_000),
            30_000,
            "never past the token"
        );
        assert_eq!(slot_until(&r, 1_000, 900_000), 61_000);
    }

    proptest! {
        #[test]
        fn no_step_exceeds_a_cap(active in 0u64..200, this_s in 0u64..100, waiting in 0u64..500,
                                 active_max in 0u32..100, admit_per_s in 0u32..60) {
            let r = RoomConfig { active_max, admit_per_s, ..room() };
            let n = admission_budget(&r, active, this_s, waiting);
            prop_assert!(n <= waiting);
            prop_assert!(active + n <= u64::from(active_max).max(active));
            prop_assert!(this_s + n <= u64::from(admit_per_s).max(this_s));
        }
    }
}
