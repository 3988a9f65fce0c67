//! # conpere-apogee: Apogée adapter (SOAP web services)
//!
//! Placeholder until its issue lands: the crate exists so the workspace layout and the
//! dependency rule of DESIGN.md (adapters use `conpere-connectors`, never the store) hold
//! from the start. See this crate's README.

#![forbid(unsafe_code)]

/// The connector SDK this adapter will be built on.
pub use conpere_connectors as sdk;
