//! Property test: the in-memory seat store against a deliberately simple
//! model of the seat store contract (docs/ARCHITECTURE.md, `SeatStore` docs).
//!
//! Random sequences of hold / extend / release / pin / confirm / sweep and
//! clock advances run on both; after every step the results, every seat's
//! status and the event version must agree, and replaying the change log
//! from version 0 must rebuild the seat map.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::collections::BTreeMap;
use ticketing_domain::ports::{
    ChangesSince, ConfirmOutcome, HoldRequest, Releaser, SeatStore, SeatStoreError,
};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{EventId, HoldId, OrderId, SeatId, SeatStatus};
use ticketing_mem::MemSeatStore;

const SEATS: usize = 6;
const MAX_LIFETIME_MS: u64 = 100;

#[derive(Debug, Clone)]
enum Op {
    Hold {
        seats: Vec<usize>,
        ttl_ms: u64,
    },
    Extend {
        h: usize,
        ms: u64,
    },
    Release {
        h: usize,
    },
    ReleaseByOrder {
        h: usize,
        order: u8,
    },
    Pin {
        h: usize,
        order: u8,
        checkout_ms: u64,
    },
    Confirm {
        h: usize,
        order: u8,
    },
    Advance {
        ms: u64,
    },
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::sample::subsequence((0..SEATS).collect::<Vec<_>>(), 1..=3), 1u64..60)
            .prop_map(|(seats, ttl_ms)| Op::Hold { seats, ttl_ms }),
        1 => (0usize..8, 1u64..60).prop_map(|(h, ms)| Op::Extend { h, ms }),
        1 => (0usize..8).prop_map(|h| Op::Release { h }),
        1 => (0usize..8, 0u8..2).prop_map(|(h, order)| Op::ReleaseByOrder { h, order }),
        2 => (0usize..8, 0u8..2, 1u64..60).prop_map(|(h, order, checkout_ms)| Op::Pin { h, order, checkout_ms }),
        2 => (0usize..8, 0u8..2).prop_map(|(h, order)| Op::Confirm { h, order }),
        2 => (1u64..40).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Sweep),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Gone {
    Expired,
    Released,
    Confirmed(u8),
}

#[derive(Debug, Clone)]
struct MHold {
    seats: Vec<usize>,
    created_ms: u64,
    expires_ms: u64,
    pinned: Option<u8>,
    gone: Option<Gone>,
}

/// The model: a few vectors and no cleverness.
#[derive(Debug, Default)]
struct Model {
    status: [Option<usize>; SEATS], // Some(hold index) when held
    sold: [bool; SEATS],
    holds: Vec<MHold>,
    version: u64,
    now_ms: u64,
}

/// A normalised result both sides are compared on.
#[derive(Debug, Clone, PartialEq)]
enum Res {
    Ok,
    Err(String),
    Unavailable(Vec<usize>),
    Confirmed,
    Rejected(FailureReason),
}

impl Model {
    fn expire_due(&mut self) {
        let mut due: Vec<(u64, usize)> = self
            .holds
            .iter()
            .enumerate()
            .filter(|(_, h)| h.gone.is_none() && h.expires_ms <= self.now_ms)
            .map(|(i, h)| (h.expires_ms, i))
            .collect();
        due.sort();
        for (_, i) in due {
            self.end(i, Gone::Expired);
        }
    }

    fn end(&mut self, i: usize, gone: Gone) {
        let seats = self.holds[i].seats.clone();
        for s in seats {
            if let Gone::Confirmed(_) = gone {
                self.sold[s] = true;
            }
            self.status[s] = None;
            self.version += 1;
        }
        self.holds[i].gone = Some(gone);
    }

    fn active(&self, i: usize) -> Result<(), Res> {
        match self.holds.get(i) {
            None => Err(Res::Err("HoldNotFound".into())),
            Some(h) if h.gone.is_some() => Err(Res::Err("HoldGone".into())),
            Some(_) => Ok(()),
        }
    }

    fn apply(&mut self, op: &Op) -> Res {
        match op {
            Op::Advance { ms } => {
                self.now_ms += ms;
                return Res::Ok;
            }
            Op::Sweep => {
                self.expire_due();
                return Res::Ok;
            }
            _ => {}
        }
        self.expire_due();
        match op {
            Op::Hold { seats, ttl_ms } => {
                let taken: Vec<usize> = seats
                    .iter()
                    .copied()
                    .filter(|s| self.sold[*s] || self.status[*s].is_some())
                    .collect();
                if !taken.is_empty() {
                    return Res::Unavailable(taken);
                }
                let i = self.holds.len();
                for s in seats {
                    self.status[*s] = Some(i);
                    self.version += 1;
                }
                self.holds.push(MHold {
                    seats: seats.clone(),
                    created_ms: self.now_ms,
                    expires_ms: self.now_ms + ttl_ms,
                    pinned: None,
                    gone: None,
                });
                Res::Ok
            }
            Op::Extend { h, ms } => {
                if let Err(e) = self.active(*h) {
                    return e;
                }
                let hold = &mut self.holds[*h];
                if hold.pinned.is_some() {
                    return Res::Err("HoldPinned".into());
                }
                let wanted = (self.now_ms + ms).min(hold.created_ms + MAX_LIFETIME_MS);
                if wanted <= hold.expires_ms {
                    return Res::Err("ExtensionLimit".into());
                }
                hold.expires_ms = wanted;
                Res::Ok
            }
            Op::Release { h } => {
                if let Err(e) = self.active(*h) {
                    return e;
                }
                if self.holds[*h].pinned.is_some() {
                    return Res::Err("HoldPinned".into());
                }
                self.end(*h, Gone::Released);
                Res::Ok
            }
            Op::ReleaseByOrder { h, order } => {
                if self.active(*h).is_ok() && self.holds[*h].pinned == Some(*order) {
                    self.end(*h, Gone::Released);
                }
                Res::Ok
            }
            Op::Pin {
                h,
                order,
                checkout_ms,
            } => {
                if let Err(e) = self.active(*h) {
                    return e;
                }
                let now = self.now_ms;
                let hold = &mut self.holds[*h];
                match hold.pinned {
                    Some(o) if o != *order => Res::Err("HoldPinned".into()),
                    Some(_) => Res::Ok,
                    None => {
                        hold.pinned = Some(*order);
                        hold.expires_ms = hold.expires_ms.max(now + checkout_ms);
                        Res::Ok
                    }
                }
            }
            Op::Confirm { h, order } => {
                match self.holds.get(*h).map(|x| (x.gone.clone(), x.pinned)) {
                    None => Res::Rejected(FailureReason::HoldReleased),
                    Some((None, pinned)) => {
                        if pinned == Some(*order) {
                            self.end(*h, Gone::Confirmed(*order));
                            Res::Confirmed
                        } else {
                            Res::Rejected(FailureReason::HoldNotPinned)
                        }
                    }
                    Some((Some(Gone::Confirmed(o)), _)) if o == *order => Res::Confirmed,
                    Some((Some(Gone::Confirmed(_)), _)) => {
                        Res::Rejected(FailureReason::HoldNotPinned)
                    }
                    Some((Some(Gone::Expired), _)) => Res::Rejected(FailureReason::HoldExpired),
                    Some((Some(Gone::Released), _)) => Res::Rejected(FailureReason::HoldReleased),
                }
            }
            Op::Advance { .. } | Op::Sweep => unreachable!(),
        }
    }

    fn statuses(&self) -> Vec<SeatStatus> {
        (0..SEATS)
            .map(|s| {
                if self.sold[s] {
                    SeatStatus::Sold
                } else if self.status[s].is_some() {
                    SeatStatus::Held
                } else {
                    SeatStatus::Available
                }
            })
            .collect()
    }
}

fn seat(i: usize) -> SeatId {
    SeatId(format!("1-{i}"))
}

fn hold_id(i: usize) -> HoldId {
    HoldId(format!("h_{i:032x}"))
}

fn order(o: u8) -> OrderId {
    OrderId(format!("order-{o}"))
}

fn err_name(e: SeatStoreError) -> Res {
    match e {
        SeatStoreError::SeatsUnavailable(s) => Res::Unavailable(
            s.iter()
                .map(|id| id.0[2..].parse::<usize>().unwrap())
                .collect(),
        ),
        // The model keeps no reasons: a gone hold is a gone hold.
        SeatStoreError::HoldGone { .. } => Res::Err("HoldGone".into()),
        other => Res::Err(format!("{other:?}")),
    }
}

/// Runs one op on the real store; `holds_made` maps model hold indexes to ids.
async fn run(store: &MemSeatStore, op: &Op, now_ms: u64, holds_made: usize, ev: &EventId) -> Res {
    let id = |h: &usize| hold_id(*h);
    let r = match op {
        Op::Hold { seats, ttl_ms } => store
            .hold(
                HoldRequest {
                    event_id: ev.clone(),
                    seat_ids: seats.iter().map(|s| seat(*s)).collect(),
                    hold_id: hold_id(holds_made),
                    ttl_ms: *ttl_ms,
                    customer_id: None,
                    limits: Default::default(),
                },
                now_ms,
            )
            .await
            .map(|_| ()),
        Op::Extend { h, ms } => store
            .extend(&id(h), *ms, MAX_LIFETIME_MS, now_ms)
            .await
            .map(|_| ()),
        Op::Release { h } => store.release(&id(h), Releaser::Holder, now_ms).await,
        Op::ReleaseByOrder { h, order: o } => {
            store
                .release(&id(h), Releaser::Order(order(*o)), now_ms)
                .await
        }
        Op::Pin {
            h,
            order: o,
            checkout_ms,
        } => store
            .pin(&id(h), &order(*o), *checkout_ms, now_ms)
            .await
            .map(|_| ()),
        Op::Confirm { h, order: o } => {
            return match store
                .confirm(&id(h), &order(*o), None, now_ms)
                .await
                .unwrap()
            {
                ConfirmOutcome::Confirmed { .. } => Res::Confirmed,
                ConfirmOutcome::Rejected(r) => Res::Rejected(r),
            };
        }
        Op::Advance { .. } => Ok(()),
        Op::Sweep => store.expire_due(now_ms, usize::MAX).await.map(|_| ()),
    };
    match r {
        Ok(()) => Res::Ok,
        Err(e) => err_name(e),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn mem_seat_store_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let ev = EventId::from("e");
            let store = MemSeatStore::new(10_000, 3_600_000);
            let seats: Vec<(SeatId, i64)> = (0..SEATS).map(|i| (seat(i), 100)).collect();
            store.create_event(&ev, &seats).await.unwrap();
            let mut model = Model::default();
            for op in &ops {
                // Ops on holds never created are mapped to an unknown id on both sides.
                let before = model.holds.len();
                let got = run(&store, op, model.now_ms, before, &ev).await;
                let want = model.apply(op);
                prop_assert_eq!(&got, &want, "op {:?}", op);
                let map = store.seat_map(&ev).await.unwrap();
                prop_assert_eq!(map.version, model.version, "version after {:?}", op);
                let statuses: Vec<SeatStatus> = map.seats.iter().map(|(_, s)| *s).collect();
                prop_assert_eq!(statuses, model.statuses(), "seats after {:?}", op);
            }
            // The change log, replayed from 0, rebuilds the seat map.
            let ChangesSince::Changes(changes) = store.changes_since(&ev, 0, usize::MAX).await.unwrap() else {
                panic!("history should reach version 0");
            };
            let mut replay: BTreeMap<SeatId, SeatStatus> =
                (0..SEATS).map(|i| (seat(i), SeatStatus::Available)).collect();
            for (n, c) in changes.iter().enumerate() {
                prop_assert_eq!(c.version, n as u64 + 1, "gap-free versions");
                replay.insert(c.seat_id.clone(), c.status);
            }
            let map = store.seat_map(&ev).await.unwrap();
            prop_assert_eq!(replay.into_iter().collect::<Vec<_>>(), map.seats);
            Ok(())
        })?;
    }
}
