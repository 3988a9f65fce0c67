//! What an adapter hands the engine: batches of items, where each was read, and whether
//! the read is a whole snapshot or changes.

use crate::Item;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How the source was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A whole snapshot of the covered scope: what is absent is gone.
    Full,
    /// Changes since the cursor, deletions as explicit tombstones.
    Incremental,
}

impl Mode {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

/// A batch of items from an adapter, with the cursor reached after it (if the adapter
/// keeps one): the engine commits the last cursor seen together with the data.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Records, tombstones, rejects.
    pub items: Vec<Item>,
    /// The source position after this batch.
    pub cursor: Option<serde_json::Value>,
    /// Where some of the items were read, by their index in `items`: every quarantine of
    /// such an item names it, the engine's own checks (an unknown reference, a conflicting
    /// duplicate) included.
    pub locations: Vec<(u32, ReadAt)>,
    /// When the source last changed some of the items, by their index in `items` (when
    /// it says, like OneRoster's `dateLastModified`): a record or tombstone older than the
    /// stored version does not overwrite it, and is counted `stale`.
    pub modified: Vec<(u32, chrono::DateTime<chrono::Utc>)>,
}

/// Where an item was read: a file (or another place) and a line. Shown `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAt {
    /// The file, as the reader names it (shared by all the items of the file).
    pub place: std::sync::Arc<str>,
    /// The 1-based line, when the place has lines.
    pub line: Option<u64>,
}

impl fmt::Display for ReadAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.place),
            None => f.write_str(&self.place),
        }
    }
}
