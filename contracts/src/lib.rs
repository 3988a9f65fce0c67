//! # conpere-contracts: learning contracts
//!
//! Since the arrêté licence of 30 July 2018, every licence student concludes a learning
//! contract: their path and the support measures that help them succeed. This crate is
//! that domain, over the store `conpere-core` keeps in sync (DESIGN.md, "Learning
//! contracts"): no HTTP, no SIS.
//!
//! * [`generate`]: one contract per (source, year, student), one section per registration,
//!   assembled in blocks from the store; [`generate::refresh`] runs in a sync's
//!   transaction for the students it touched ([`RefreshHook`]), [`generate::generate`]
//!   for every student.
//! * [`content`]: what a version holds and its hash, `sha256:` + hex SHA-256 of the
//!   RFC 8785 serialisation.
//! * [`catalogue`]: the support measures a contract may hold, and those suggested for
//!   special statuses.
//! * [`lifecycle`]: propose, sign, validate, refuse, edit a draft, amend; each action an
//!   event of [`evidence`], the contract's hash-chained log.
//! * [`rules`]: the flags that make a contract "specific", the amendment reasons.
//! * [`view`]: contracts as listed, shown and exported.

#![forbid(unsafe_code)]

pub mod bulk;
pub mod catalogue;
pub mod content;
mod copy;
pub mod diff;
pub mod evidence;
pub mod generate;
pub mod lifecycle;
pub mod rules;
pub mod verify;
pub mod view;

pub use generate::RefreshHook;

/// A contracts operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ContractsError {
    /// The store refused a statement.
    #[error("{context}: {source}")]
    Db {
        /// What was being done.
        context: &'static str,
        /// The database's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A bulk write (binary COPY) failed.
    #[error("{context}: {source}")]
    Copy {
        /// What was being written.
        context: &'static str,
        /// The COPY's error.
        #[source]
        source: conpere_core::copy::CopyError,
    },
    /// A configuration file (the measures catalogue) cannot be used.
    #[error("{0}")]
    Config(String),
    /// No contract has this id.
    #[error("no contract #{0}")]
    NotFound(i64),
    /// The actor's role may not take this action.
    #[error("a {role} may not {action} a contract")]
    Forbidden {
        /// The action.
        action: &'static str,
        /// The actor's role.
        role: &'static str,
    },
    /// The action does not apply in the contract's state.
    #[error("contract #{id} is {state}: it cannot be {action}-ed now (possible: {})",
            if allowed.is_empty() { "nothing".to_string() } else { allowed.join(", ") })]
    WrongState {
        /// The contract.
        id: i64,
        /// Its state.
        state: String,
        /// The action refused.
        action: &'static str,
        /// The actions possible in that state.
        allowed: &'static [&'static str],
    },
    /// The directeur's sections of the contract are validated already; it awaits the
    /// directeurs of the others.
    #[error("your section of contract #{id} is validated already; it awaits the validation of {}",
            if awaiting.is_empty() { "nothing".to_string() } else { awaiting.join(", ") })]
    AlreadyValidated {
        /// The contract.
        id: i64,
        /// The steps whose section is still to validate.
        awaiting: Vec<String>,
    },
    /// The version the person saw is no longer the contract's current one.
    #[error("contract #{id} has changed: its current version is {current_hash}; reload it and act again")]
    Stale {
        /// The contract.
        id: i64,
        /// The hash of its current version.
        current_hash: String,
    },
    /// The request itself is wrong (a missing reason, an unknown measure…).
    #[error("{0}")]
    Invalid(String),
}

impl ContractsError {
    /// A mapper for database errors while doing `context`.
    pub(crate) fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> ContractsError {
        move |source| ContractsError::Db { context, source }
    }

    /// A mapper for COPY errors while writing `context`.
    pub(crate) fn copy(
        context: &'static str,
    ) -> impl Fn(conpere_core::copy::CopyError) -> ContractsError {
        move |source| ContractsError::Copy { context, source }
    }
}
