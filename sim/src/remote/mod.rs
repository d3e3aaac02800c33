//! Redis and Kafka as turmoil hosts: a tiny request/response protocol
//! (a 4-byte length and a JSON body, one request per connection) serving the
//! in-memory seat store and event bus over the simulated network, and the
//! client adapters the services use to reach them.
//!
//! One connection per call keeps reconnecting trivial: a partition or a
//! crash fails the call (after its timeout) and the next call dials again —
//! turmoil's TCP does not retransmit, so nothing here waits without a bound.
//!
//! Persistence model: the state objects live outside the host closures, so
//! a crashed and restarted `redis` keeps its data (Redis with AOF
//! `appendfsync always`) and a restarted `kafka` keeps every acknowledged
//! message and committed offset (Kafka with acks=all). Consumer group
//! membership does not survive: members re-join, as after a broker restart.

//!
//! Layer: `frame` (the wire: frames, one call, the accept loop) at the
//! bottom; `seat_store`, `queue_store` and `bus` each import only `frame`.

mod bus;
mod frame;
mod queue_store;
mod seat_store;

pub use bus::{RemoteConsumer, RemoteEventBus, serve_event_bus};
pub use frame::{KAFKA_PORT, QUEUE_PORT, REDIS_PORT};
pub use queue_store::{RemoteQueueStore, serve_queue_store};
pub use seat_store::{RemoteSeatStore, serve_seat_store};
