//! # conpere-mappings: proprietary exports through declarative mappings
//!
//! A mapping file ([`format::MappingFile`]) says, for each canonical record kind, where
//! its rows come from (CSV, XML or JSON Lines files, read by [`readers`] in a declared
//! [`encoding`]) and how each canonical field is computed from a row ([`expr`]); the
//! file-drop source `kind = "export"` ([`connector::ExportConnector`]) reads complete drops
//! through it, never the same content twice ([`drop_dir`]). See the crate's README for the
//! format and the shipped mappings ([`shipped`]).
//!
//! Dependency rule (DESIGN.md): this crate uses `conpere-connectors` and the canonical
//! model of `conpere-model`, never the store.

#![forbid(unsafe_code)]

pub mod canonical_csv;
pub mod connector;
pub mod drop_dir;
pub mod encoding;
pub mod expr;
pub mod fields;
pub mod format;
pub mod manifest;
pub mod mapping;
pub mod memory;
pub mod oneroster;
pub mod readers;
pub mod row;
pub mod shipped;

pub use connector::{ExportConnector, ExportFactory};
/// The connector SDK this adapter is built on.
pub use conpere_connectors as sdk;
