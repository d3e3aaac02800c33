//! # ticketing-app
//!
//! The composition root. Each service of `ticketing-services` has one
//! `start` function that returns its routers and named workers
//! ([`Started`]); this crate decides which adapters they get and where they
//! run:
//!
//! - [`embedded`]: every service in one process on the in-memory adapters,
//!   behind one loopback port that routes like the gateway (`ticketing serve
//!   --embedded`, the HTTP tests, the load harness's default target).
//! - [`service`]: one service per process on Redis, Kafka and PostgreSQL
//!   (`ticketing serve --service NAME`, the local stack, compose).
//! - [`settings`]: every configuration key, layered (defaults, TOML file,
//!   `TICKETING_*` env), nesting the services' and the adapters' sections.
//!
//! The simulator (`sim/`) calls the same `start` functions on its turmoil
//! hosts; it does not depend on this crate, so it never links the
//! production adapters. Adding a service means writing it in
//! `ticketing-services` and adding one line to each assembly.
//!
//! Layer: top; imports the services, the adapters and the runtime.
//!
//! [`Started`]: ticketing_services::started::Started

pub mod console;
pub mod embedded;
pub mod service;
pub mod settings;

use ticketing_runtime::ChaChaRandom;

/// The production clock: wall time read once by the binary, then tokio time.
pub type WallClock = ticketing_runtime::TokioClock;

/// How the random sources are seeded.
#[derive(Debug, Clone, Copy)]
pub enum Seeding {
    /// Reproducible runs (tests, `rng_seed` in the settings).
    Fixed(u64),
    /// 256 bits of key material from OS entropy (production).
    Key([u8; 32]),
}

impl Seeding {
    /// The root random source; services get forks of it in a fixed order.
    pub fn root(self) -> ChaChaRandom {
        match self {
            Seeding::Fixed(seed) => ChaChaRandom::from_seed(seed),
            Seeding::Key(key) => ChaChaRandom::from_key(key),
        }
    }
}
