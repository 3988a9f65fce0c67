//! What a run is asked to do: the source, full or incremental, what the read covers,
//! the mass-deletion hold; and how it reports progress.

use crate::model::Kind;
use conpere_model::Mode;
use serde::{Deserialize, Serialize};

/// What a full read covers: records of these kinds (and years) that it does not return
/// are deleted. Year-less records (students) are only covered when `years` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Kinds the read returns completely.
    pub kinds: Vec<Kind>,
    /// Years it returns completely (`None`: all years).
    pub years: Option<Vec<i32>>,
}

impl Coverage {
    /// Every kind, every year.
    pub fn all() -> Coverage {
        Coverage {
            kinds: Kind::ALL.to_vec(),
            years: None,
        }
    }

    /// Covers nothing (incremental reads).
    pub fn none() -> Coverage {
        Coverage {
            kinds: Vec::new(),
            years: None,
        }
    }
}

/// When a run must wait for an operator: it would delete more than `max_delete_share` of
/// a scope (source, kind, year) and at least `min_deletions` records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldPolicy {
    /// Share of a scope (0.10 = 10 %).
    pub max_delete_share: f64,
    /// Deletions below this count never hold (small scopes churn).
    pub min_deletions: u64,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        HoldPolicy {
            max_delete_share: 0.10,
            min_deletions: 10,
        }
    }
}

/// Everything a run needs to know before it reads.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Source name (`[sources.<name>]`).
    pub source: String,
    /// Connector kind (`apogee`, `canonical`…).
    pub source_kind: String,
    /// Full or incremental.
    pub mode: Mode,
    /// What the read covers: everything it declares for a full read; for an incremental
    /// read, the kinds it still returns whole (usually none).
    pub coverage: Coverage,
    /// Compute and report, apply nothing.
    pub dry_run: bool,
    /// Mass-deletion hold.
    pub hold: HoldPolicy,
}

impl RunRequest {
    /// A full, applied run with the default hold policy.
    pub fn full(source: &str, source_kind: &str, coverage: Coverage) -> RunRequest {
        RunRequest {
            source: source.to_string(),
            source_kind: source_kind.to_string(),
            mode: Mode::Full,
            coverage,
            dry_run: false,
            hold: HoldPolicy::default(),
        }
    }

    /// An incremental, applied run with the default hold policy.
    pub fn incremental(source: &str, source_kind: &str) -> RunRequest {
        RunRequest {
            mode: Mode::Incremental,
            ..RunRequest::full(source, source_kind, Coverage::none())
        }
    }
}

/// Receives progress of a run (a progress bar, log lines, metrics).
pub trait Progress: Send + Sync {
    /// `total` items staged so far.
    fn staged(&self, _total: u64) {}
    /// The run entered a phase (`checking`, `merging registration`…).
    fn phase(&self, _phase: &str) {}
}

/// Ignores progress.
pub struct NoProgress;
impl Progress for NoProgress {}
