#![warn(missing_docs)]
//! # conpere-core
//!
//! The heart of conpere, knowing nothing of any SIS:
//!
//! * [`model`]: the canonical records every adapter produces (the `conpere-model` crate,
//!   re-exported: adapters depend on it, never on this crate);
//! * [`db`]: the contract store (PostgreSQL schema, migrations, pool) and
//!   [`embedded`]: the private PostgreSQL server conpere runs when no `url` is configured;
//! * [`engine`]: one sync run: stage with binary COPY, merge set-wise, history, deletions,
//!   quarantine, the mass-deletion hold, dry runs;
//! * [`copy`]: the binary COPY writer every bulk path shares;
//! * [`export`]: the canonical JSON Lines export;
//! * [`testing`]: throw-away databases on a shared embedded server, for test suites.
#![forbid(unsafe_code)]

/// The canonical model (the `conpere-model` crate, which the adapters use without the store).
pub use conpere_model as model;
pub use conpere_model::mask;

pub mod bench;
pub mod claims;
pub mod copy;
pub mod db;
pub mod embedded;
pub mod engine;
pub mod export;
pub mod metrics;
pub mod notifications;
pub mod runs;
pub mod testing;
