#![warn(missing_docs)]
//! # conpere-connectors: the connector SDK
//!
//! Everything an adapter crate (Apogée, Pégase, Cocktail, file exports…) needs to plug
//! into conpere, and nothing about any particular SIS:
//!
//! * [`Connector`]: the four verbs every adapter implements — `spec` (what configuration
//!   it takes), `check` (a read-only connection test), `discover` (what it can read) and
//!   `read` (a stream of canonical record batches from a cursor);
//! * [`SourceConfig`]: one `[sources.<name>]` table, typed settings and secrets
//!   (`*_env` / `*_file`, never in the file), with errors that name the file and key;
//! * [`Registry`]: connectors by `kind`; adding an SIS is one `register` line;
//! * [`conformance`]: the test kit every adapter runs on itself;
//! * [`http`], [`soap`], [`xml`]: what adapters to web services share — an HTTP client
//!   with authentication, bounded concurrency, rate cap and retries with backoff; SOAP 1.1
//!   envelopes and faults; an XML reader that honours declared encodings;
//! * [`batches`]: the channel every reading task sends its batches through — items
//!   gathered into batches of `batch_size`, two batches deep, the last one with the cursor;
//! * [`bearer`]: bearer tokens for REST adapters (Pégase's CAS token flow) — obtained with a
//!   login form, kept until shortly before their `exp`, renewed once for all concurrent
//!   callers, renewed and retried once when an API refuses them;
//! * [`simulation`]: building blocks for SIS simulators (tests, demos, benchmarks) —
//!   request counters with an in-flight maximum, the scope of an injected fault, an axum
//!   server on a free local port that stops when dropped;
//! * [`canonical`]: the built-in adapter for canonical JSON Lines files (`kind = "canonical"`).
//!
//! A connector knows nothing of the store: it yields [`conpere_model::Batch`]es and
//! the engine does the rest.
#![forbid(unsafe_code)]

pub mod batches;
pub mod bearer;
pub mod canonical;
pub mod config;
pub mod conformance;
pub mod connector;
pub mod files;
pub mod http;
pub mod registry;
pub mod simulation;
pub mod soap;
pub mod spec;
pub mod xml;

pub use config::{CommonSettings, ConfigError, Secret, SourceConfig};
pub use connector::{
    BatchStream, Capabilities, CheckReport, Connector, ConnectorError, ConnectorFactory, Factory,
    FromSource, ReadRequest, RunEnd, Session,
};
pub use registry::Registry;
pub use spec::{ConnectorSpec, FieldSpec};
