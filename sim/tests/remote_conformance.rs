//! The simulator's own plumbing held to the ports' contracts: the seat
//! store, waiting-room and event bus conformance suites (the ones Redis, Kafka and the
//! in-memory model pass) run against `RemoteSeatStore` and `RemoteEventBus`
//! talking over turmoil's network to the `redis` and `kafka` hosts the
//! simulation runs. A bug in the framing, the dispatch or the broker-side
//! group members fails here, not silently inside a sweep.
//!
//! Each case is its own turmoil simulation: a fresh server host, one client
//! running the case with a factory that returns the remote adapter.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use ticketing_conformance::seat_store::HISTORY_LIMIT;
use ticketing_domain::ports::{EventBus, QueueStore, SeatStore};
use ticketing_mem::{MemEventBus, MemQueueStore, MemSeatStore};
use ticketing_sim::remote::{
    RemoteEventBus, RemoteQueueStore, RemoteSeatStore, serve_event_bus, serve_queue_store,
    serve_seat_store,
};

/// Per call, as the services' adapters are configured in the simulator.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

async fn remote_store() -> Arc<dyn SeatStore> {
    Arc::new(RemoteSeatStore::new("redis", CALL_TIMEOUT))
}

async fn remote_queue() -> Arc<dyn QueueStore> {
    Arc::new(RemoteQueueStore::new("redis", CALL_TIMEOUT))
}

async fn remote_bus() -> Arc<dyn EventBus> {
    Arc::new(RemoteEventBus::new("kafka", CALL_TIMEOUT))
}

/// Runs `case` on a client host against a fresh `redis` and `kafka`.
fn in_sim<Fut>(case: Fut)
where
    Fut: Future<Output = ()> + 'static,
{
    let mut sim = ticketing_sim::world::builder(1);
    let store: Arc<dyn SeatStore> = Arc::new(MemSeatStore::new(HISTORY_LIMIT, 3_600_000));
    let queue: Arc<dyn QueueStore> = Arc::new(MemQueueStore::new());
    sim.host("redis", move || {
        let (store, queue) = (store.clone(), queue.clone());
        async move {
            tokio::try_join!(serve_seat_store(store), serve_queue_store(queue))?;
            Ok(())
        }
    });
    let (bus, ids) = (MemEventBus::new(4), Arc::new(AtomicU64::new(0)));
    sim.host("kafka", move || serve_event_bus(bus.clone(), ids.clone()));
    sim.client("client", async move {
        case.await;
        Ok(())
    });
    if let Err(e) = sim.run() {
        panic!("the case failed inside the simulation: {e}");
    }
}

macro_rules! remote_cases {
    ($suite:ident, $factory:ident: $($(#[$attr:meta])* $case:ident),* $(,)?) => {
        mod $suite {
            use super::*;
            $(
                #[test]
                $(#[$attr])*
                fn $case() {
                    in_sim(ticketing_conformance::$suite::$case($factory));
                }
            )*
        }
    };
}

remote_cases!(seat_store, remote_store:
    racing_holds_have_one_winner,
    holds_are_all_or_nothing,
    holds_expire_at_their_ttl,
    confirm_is_fenced,
    pin_is_exclusive_and_extends,
    extension_is_capped,
    changes_are_gap_free_and_bounded,
    customer_limits_count_live_holds_and_sold_seats,
    return_is_fenced_by_the_order,
);

remote_cases!(queue_store, remote_queue:
    rooms_are_opened_read_and_capped,
    joins_are_refused_before_opening_and_twice,
    a_customer_holds_one_live_place,
    the_prequeue_is_drawn_once_and_ahead_of_later_arrivals,
    admission_keeps_both_caps,
    slots_free_when_idle_or_expired,
    buying_frees_the_slot,
    abandoned_places_are_dropped,
    an_outage_is_not_abandonment,
    concurrent_admission_keeps_the_caps,
);

remote_cases!(event_bus, remote_bus:
    per_key_order_is_kept,
    restart_resumes_from_the_committed_offset,
    restart_mid_batch_resumes_promptly,
    committing_a_batch_covers_each_partition,
    rewind_redelivers_uncommitted,
    groups_are_independent_and_members_share,
    #[ignore = "the remote bus answers lag as unknown (None), as the port allows: asking the broker would add a round trip per consumer per second to every simulated run"]
    lag_counts_what_the_group_has_not_committed,
);
