//! HTTP-level tests of contract v1 against the embedded system: every
//! endpoint and error code, concurrency, expiry, idempotency, the saga's
//! outcomes and the SSE stream. One test binary (faster to link), one
//! module per area.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

mod helpers;

mod after_sale;
mod catalog;
mod console;
mod consumer;
mod customers;
mod edge;
mod errors;
mod internal;
mod openapi;
mod orders;
mod payment;
mod payment_client;
mod queue;
mod reservations;
mod saga;
mod sse;
mod traces;
mod users;
