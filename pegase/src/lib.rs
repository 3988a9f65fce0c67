//! # conpere-pegase: Pégase adapter (PC-Scol REST APIs)
//!
//! First increment of the adapter: [`PegaseConnector`] reads students and registrations
//! from the INS ext v2 feed, full and incremental ([`feed`], [`mapping`]); structure and
//! enrolments come next. It also ships its
//! [`simulator`]: a real HTTP server speaking the Pégase APIs the adapter will read
//! (CAS token, INS ext v2 registration feed, CHC ext v1 cursus, ODF ext v1 maquettes),
//! serving a generated university, validated against the published OpenAPI files in the
//! tests. The contract between the two sides is the "Mapping" section of this crate's
//! README.
//!
//! Dependency rule (DESIGN.md): this crate uses `conpere-connectors` (and the canonical
//! model of `conpere-core`) for SIS access, never the store.

#![forbid(unsafe_code)]

/// The connector SDK the adapter is built on.
pub use conpere_connectors as sdk;

pub mod api;
pub mod choices;
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
