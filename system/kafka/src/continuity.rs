//! Delivery continuity per partition: the consumer delivers a partition's
//! records in offset order starting exactly at the group's committed
//! offset, and notices when the broker answered a fetch with records past
//! the one it was asked for.
//!
//! Why: tansu 0.6.0 answers a fetch at offset `n` with the record batches
//! whose *base* offset is `>= n` (`tansu-storage` `dynostore.rs`, `fetch`:
//! `offsets.split_off(&offset)`), so when a group resumes at an offset in
//! the middle of a producer batch, the rest of that batch is skipped —
//! those messages would never be delivered. Kafka answers with the batch
//! *containing* `n`. The guard: on such a gap, seek back (8, 16, 32, …
//! records before the expected offset) until the batch holding it comes
//! back, dropping the records before it. On a broker without the defect the
//! only cost is one committed-offset query per partition after each
//! assignment.
//!
//! Layer: pure bookkeeping; imports nothing of the crate.

use std::collections::BTreeMap;

/// What to do with a delivered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The expected record: deliver it.
    Deliver,
    /// Before the expected one (already committed or delivered): drop it.
    Duplicate,
    /// Records are missing before this one: seek the partition to `seek_to`
    /// and drop this and the partition's later records of the batch.
    Gap { seek_to: i64 },
    /// Missing records that going back cannot bring (gone from the log,
    /// e.g. retention): deliver from here; `missing` records were skipped.
    Lost { missing: i64 },
}

#[derive(Debug, Clone, Copy)]
struct Part {
    /// The offset the next delivered record must have.
    next: i64,
    /// How far before `next` the last seek went (0: no seek pending).
    step: i64,
}

/// Per-partition expectations of one consumer, from its current assignment.
#[derive(Debug, Default)]
pub(crate) struct Continuity {
    parts: BTreeMap<i32, Part>,
}

/// The first step back after a gap; doubles on each further gap.
const FIRST_STEP: i64 = 8;

impl Continuity {
    /// Whether `partition` has an expectation yet.
    pub(crate) fn knows(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// Delivery on `partition` must continue at `next` (the committed offset).
    pub(crate) fn start(&mut self, partition: i32, next: i64) {
        self.parts.insert(partition, Part { next, step: 0 });
    }

    /// Forgets every expectation: after a rewind or a new assignment the
    /// broker starts again at the committed offsets.
    pub(crate) fn clear(&mut self) {
        self.parts.clear();
    }

    /// Judges the record at `offset` on `partition` (which must be known).
    pub(crate) fn check(&mut self, partition: i32, offset: i64) -> Next {
        let Some(part) = self.parts.get_mut(&partition) else {
            return Next::Deliver;
        };
        if offset < part.next {
            return Next::Duplicate;
        }
        if offset == part.next {
            *part = Part {
                next: offset + 1,
                step: 0,
            };
            return Next::Deliver;
        }
        if part.step >= part.next {
            // Already went back to the start of the log: nothing earlier exists.
            let missing = offset - part.next;
            *part = Part {
                next: offset + 1,
                step: 0,
            };
            return Next::Lost { missing };
        }
        part.step = if part.step == 0 {
            FIRST_STEP
        } else {
            part.step.saturating_mul(2)
        };
        Next::Gap {
            seek_to: (part.next - part.step).max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_records_are_delivered_and_earlier_ones_dropped() {
        let mut c = Continuity::default();
        c.start(0, 10);
        assert_eq!(c.check(0, 9), Next::Duplicate);
        assert_eq!(c.check(0, 10), Next::Deliver);
        assert_eq!(c.check(0, 11), Next::Deliver);
        assert_eq!(c.check(0, 11), Next::Duplicate);
    }

    #[test]
    fn a_skipped_batch_is_fetched_again_by_stepping_back() {
        // Committed 1000 lies inside a batch 990..=1007; the broker answers
        // with the next batch (1008..).
        let mut c = Continuity::default();
        c.start(2, 1000);
        assert_eq!(c.check(2, 1008), Next::Gap { seek_to: 992 });
        // 992 is inside the same batch: the broker skips it again.
        assert_eq!(c.check(2, 1008), Next::Gap { seek_to: 984 });
        // 984 is in the batch before: back come 980.. then 990..; the ones
        // before 1000 are dropped, 1000 is delivered.
        assert_eq!(c.check(2, 980), Next::Duplicate);
        assert_eq!(c.check(2, 999), Next::Duplicate);
        assert_eq!(c.check(2, 1000), Next::Deliver);
        assert_eq!(c.check(2, 1001), Next::Deliver);
        // Progress resets the step: a later gap starts at 8 again.
        assert_eq!(c.check(2, 1010), Next::Gap { seek_to: 994 });
    }

    #[test]
    fn records_gone_from_the_log_are_reported_once_the_start_is_reached() {
        let mut c = Continuity::default();
        c.start(1, 5);
        assert_eq!(c.check(1, 40), Next::Gap { seek_to: 0 });
        assert_eq!(c.check(1, 40), Next::Lost { missing: 35 });
        assert_eq!(c.check(1, 41), Next::Deliver);
    }

    #[test]
    fn partitions_are_independent_and_clear_forgets_them() {
        let mut c = Continuity::default();
        c.start(0, 3);
        c.start(1, 7);
        assert_eq!(c.check(1, 7), Next::Deliver);
        assert_eq!(c.check(0, 3), Next::Deliver);
        assert!(c.knows(0) && c.knows(1) && !c.knows(2));
        c.clear();
        assert!(!c.knows(0));
    }
}
