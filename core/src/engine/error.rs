//! What can go wrong in a run, each error naming the source or run and what to do.

use conpere_model::ReadError;

/// Errors of a run. Each message names the source or run and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another run of the same source holds its lock.
    #[error(
        "another run of source `{name}` is in progress{}; wait for it to finish (see `conpere runs list`)",
        running.map(|r| format!(" (run #{r})")).unwrap_or_default()
    )]
    Busy {
        /// Source name.
        name: String,
        /// The run in progress, when known.
        running: Option<i64>,
    },
    /// The adapter failed while reading; nothing was applied.
    #[error("source `{name}`: reading failed ({}), nothing was applied (run #{run_id}): {error}", error.kind)]
    Read {
        /// Source name.
        name: String,
        /// Run id.
        run_id: i64,
        /// What the adapter said, with the kind of failure.
        error: ReadError,
    },
    /// A database statement failed.
    #[error("database error while {context}: {message}")]
    Db {
        /// What the engine was doing.
        context: &'static str,
        /// The server's message.
        message: String,
    },
    /// No connection could be had.
    #[error("cannot connect to the database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The source name is taken by another kind of source.
    #[error(
        "source `{name}` was synced as kind `{stored}` but is now configured as kind `{configured}`; \
         give the new source another name (records of different sources never mix)"
    )]
    KindChanged {
        /// Source name.
        name: String,
        /// Kind in the store.
        stored: String,
        /// Kind in the configuration.
        configured: String,
    },
    /// Approve/reject of a run that is not waiting for a decision.
    #[error("run #{run_id} is {status}, not held: only held runs can be approved or rejected")]
    NotHeld {
        /// Run id.
        run_id: i64,
        /// Its status.
        status: String,
    },
    /// Approve of a held run after a newer run was applied.
    #[error(
        "run #{run_id} cannot be approved: run #{newer} of the same source was applied after it, \
         so its snapshot is stale. Reject it and run the sync again"
    )]
    Superseded {
        /// The held run.
        run_id: i64,
        /// The newer applied run.
        newer: i64,
    },
    /// No such run.
    #[error("there is no run #{0} (see `conpere runs list`)")]
    NoSuchRun(i64),
}

impl EngineError {
    /// Maps a database error, keeping the server's own message (tokio-postgres' Display
    /// only says "db error").
    pub(crate) fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> EngineError {
        move |error| EngineError::Db {
            context,
            message: pg_message(&error),
        }
    }

    /// The same, for a COPY of `context` (its encoding or its server's error).
    pub(crate) fn copy(context: &'static str) -> impl Fn(crate::copy::CopyError) -> EngineError {
        move |error| EngineError::Db {
            context,
            message: error.to_string(),
        }
    }
}

/// The server's message of a database error, with its detail when there is one.
pub fn pg_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}
