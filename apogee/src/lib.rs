//! # conpere-apogee: the Apogée adapter (SOAP web services, read-only)
//!
//! `kind = "apogee"`. See this crate's README for the mapping between the published
//! Apogée contract (WSDL/XSD 6.50.73) and the canonical model.
#![forbid(unsafe_code)]

pub mod client;
pub mod codes;
pub mod config;
pub mod connector;
pub mod mapping;
pub mod projection;
pub mod read;
pub mod services;
pub mod simulator;

pub use connector::{ApogeeConnector, ApogeeFactory};
