//! # ticketing-cli
//!
//! The `ticketing` binary's library: how one service is assembled on the
//! production adapters ([`service`]). Services themselves live in
//! `ticketing-services` and know only ports; this crate is the one place
//! that links Redis, Kafka and PostgreSQL (the simulator never does).

pub mod service;
