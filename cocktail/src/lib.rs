//! # conpere-cocktail: SQL views through ODBC (Cocktail, and any SIS database)
//!
//! [`connector::CocktailConnector`] (`kind = "cocktail"`) reads a published set of SQL
//! views through ODBC — by default the view contract (`V_CONPERE_STUDENT`, `_NODE`,
//! `_EDGE`, `_REGISTRATION`, `_ENROLMENT`: one view per canonical record kind, columns
//! named as the canonical fields) — and maps their rows with `conpere-mappings`, so a
//! site can also publish views of its own shape and map them declaratively. [`odbc`]
//! fetches rows in bounded batches on a blocking thread, through unixODBC's driver
//! manager built into conpere; [`drivers`] finds the library of the driver a connection
//! string names, and says where a missing driver comes from.
//!
//! Dependency rule (DESIGN.md): this crate uses `conpere-connectors`, the mapping engine
//! of `conpere-mappings` and the canonical model of `conpere-model`, never the store.

#![forbid(unsafe_code)]

pub mod connector;
pub mod drivers;
pub mod fixture;
pub mod odbc;
pub mod projection;

pub use connector::{CocktailConnector, CocktailFactory};
