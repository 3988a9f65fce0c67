#![warn(missing_docs)]
//! # conpere-core
//!
//! The heart of conpere, knowing nothing of any SIS:
//!
//! * [`model`]: the canonical records every adapter produces;
//! * [`db`]: the contract store (PostgreSQL schema, migrations, pool) and
//!   [`embedded`]: the private PostgreSQL server conpere runs when no `url` is configured;
//! * [`engine`]: one sync run: stage with binary COPY, merge set-wise, history, deletions,
//!   quarantine, the mass-deletion hold, dry runs;
//! * [`export`]: the canonical JSON Lines export;
//! * [`synth`]: a seeded synthetic university for tests, demos and benchmarks;
//! * [`testing`]: throw-away databases on a shared embedded server, for test suites.

pub mod bench;
pub mod claims;
pub mod db;
pub mod embedded;
pub mod engine;
pub mod export;
pub mod mask;
pub mod metrics;
pub mod model;
pub mod notifications;
pub mod runs;
pub mod synth;
pub mod testing;
