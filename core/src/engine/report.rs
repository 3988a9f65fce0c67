//! What a run did: its status and its counts, by kind and in all.

use super::phases::Phases;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// In progress (or abandoned, until the next run of its source notices).
    Running,
    /// Applied, nothing quarantined.
    Succeeded,
    /// Applied; some input was quarantined.
    SucceededWithWarnings,
    /// Waiting for an operator (mass deletion).
    Held,
    /// Nothing applied.
    Failed,
    /// Held, then rejected: nothing applied.
    Rejected,
    /// Refused before it could start (the source could not be listed, its manifest
    /// refused the drop): nothing read, nothing applied.
    Refused,
}

impl RunStatus {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::SucceededWithWarnings => "succeeded_with_warnings",
            RunStatus::Held => "held",
            RunStatus::Failed => "failed",
            RunStatus::Rejected => "rejected",
            RunStatus::Refused => "refused",
        }
    }

    /// Parses a stored value.
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::SucceededWithWarnings,
            RunStatus::Held,
            RunStatus::Failed,
            RunStatus::Rejected,
            RunStatus::Refused,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of a run, in total or for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Items staged (records, tombstones, held-back keys).
    pub staged: u64,
    /// New records (and deleted ones that came back).
    pub inserted: u64,
    /// Changed records.
    pub updated: u64,
    /// Deleted records (soft delete).
    pub deleted: u64,
    /// Records read that were already stored as they are.
    pub unchanged: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Deletions not applied: the read could not vouch for them, or records kept in the
    /// store still refer to them (the run's `deferred` lines say which).
    #[serde(default)]
    pub deferred: u64,
    /// Changes and tombstones not applied: older, by the source's own modification time,
    /// than the version stored.
    #[serde(default)]
    pub stale: u64,
}

impl Counts {
    pub(super) fn add(&mut self, other: &Counts) {
        self.staged += other.staged;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.quarantined += other.quarantined;
        self.deferred += other.deferred;
        self.stale += other.stale;
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Run id.
    pub run_id: i64,
    /// Source name.
    pub source: String,
    /// Final status.
    pub status: RunStatus,
    /// Whether nothing was applied on purpose.
    pub dry_run: bool,
    /// Totals.
    pub totals: Counts,
    /// Counts per kind.
    pub by_kind: BTreeMap<Kind, Counts>,
    /// Why the run is held.
    pub hold_reason: Option<String>,
    /// Deletions the run did not apply, and why, one line per kind and cause
    /// (`12 deletions of student deferred: 1 line of students.jsonl could not be read…`).
    pub deferred: Vec<String>,
    /// What the adapter said for the summary (rows its filter skipped, per value…).
    pub notes: Vec<String>,
    /// How long each phase took (`read`: waiting for the adapter, `stage`: the COPY into
    /// the stage, `check`, `merge`, `delete`, `count`, `refresh`: the commit hook's
    /// contract refresh, `commit`).
    pub phases: Phases,
}
