//! # conpere-pegase: Pégase adapter (PC-Scol REST APIs)
//!
//! [`PegaseConnector`] (`kind = "pegase"`) reads a Pégase tenant, read-only: students and
//! registrations from the INS ext v2 feed, full or incremental ([`feed`], [`mapping`]);
//! the course structure from ODF ext v1 ([`structure`]); pedagogical choices from CHC
//! ext v1 in bulk ([`choices`]); one run period by period ([`read`]). What it reads of a
//! university is stated in code by [`projection::readable`].
//!
//! It also ships its [`simulator`]: a real HTTP server speaking the Pégase APIs the
//! adapter reads (CAS token, INS, ODF, CHC), serving a generated university, validated
//! against the published OpenAPI files in the tests. The contract between the two sides
//! is the "Mapping" section of this crate's README.
//!
//! Dependency rule (DESIGN.md): this crate uses `conpere-connectors` (and the canonical
//! model of `conpere-model`) for SIS access, never the store.

#![forbid(unsafe_code)]

/// The connector SDK the adapter is built on.
pub use conpere_connectors as sdk;

pub mod api;
pub mod choices;
pub mod codes;
pub mod config;
pub mod connector;
pub mod feed;
pub mod mapping;
pub mod projection;
pub mod read;
pub mod simulator;
pub mod structure;

pub use config::PegaseConfig;
pub use connector::{PegaseConnector, PegaseFactory};
