//! Why a read of a source failed, typed from the adapter to the engine and the scheduler:
//! a source that is down is tried again, one that refuses the account or sends what
//! cannot be applied is not (the same read would fail the same way), and each says so.

use std::fmt;

/// What kind of failure a read met: what the scheduler and the operator do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The source could not be reached, or answered with a transient failure (a timeout,
    /// a 5xx, a 429, a refused connection): the same read may succeed later.
    Unavailable,
    /// The source refused the account (401/403, a rights fault): a person must act.
    Refused,
    /// What the source gave cannot be applied (a damaged or incomplete drop, a malformed
    /// answer): the same read fails the same way until the data changes.
    BadData,
    /// The source's configuration is wrong (a setting, a missing secret or driver).
    Configuration,
    /// Anything else (a local I/O error, a bug).
    Other,
}

impl FailureKind {
    /// Whether trying the same read again later may succeed (a scheduled run is retried).
    pub fn retryable(self) -> bool {
        matches!(self, FailureKind::Unavailable | FailureKind::Other)
    }

    /// A short name, for logs and notices (`unavailable`, `refused`, `bad data`…).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unavailable => "unavailable",
            FailureKind::Refused => "refused",
            FailureKind::BadData => "bad data",
            FailureKind::Configuration => "configuration",
            FailureKind::Other => "other",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A read that failed: what was being done, why (with what to do, when known), and the
/// kind of failure. Messages never carry secrets and mask personal identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The kind of failure.
    pub kind: FailureKind,
    /// What was being done (`reading /srv/x.jsonl`, `EtudiantMetier.recupererListeEtudiants`).
    pub operation: String,
    /// What went wrong and, when known, what to do.
    pub message: String,
}

impl ReadError {
    /// A failure of `kind` while doing `operation`.
    pub fn new(
        kind: FailureKind,
        operation: impl Into<String>,
        message: impl fmt::Display,
    ) -> ReadError {
        ReadError {
            kind,
            operation: operation.into(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for ReadError {}

/// A failure said only in words (tests, replays of stored batches): of no known kind.
impl From<String> for ReadError {
    fn from(message: String) -> ReadError {
        ReadError::new(FailureKind::Other, "reading", message)
    }
}

/// A stream that cannot fail (a generated university) reads as any other.
impl From<std::convert::Infallible> for ReadError {
    fn from(never: std::convert::Infallible) -> ReadError {
        match never {}
    }
}
