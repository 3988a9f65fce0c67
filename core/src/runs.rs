//! Reading the run history: what `conpere runs list` and `conpere runs show` print.
//! (Approving and rejecting held runs is the engine's: see [`crate::engine::Engine`].)

use crate::engine::{pg_message, Counts, RunStatus};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use std::collections::BTreeMap;

/// One run, as listed.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// Status.
    pub status: RunStatus,
    /// `full` or `incremental`.
    pub mode: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time (none while running or held).
    pub finished_at: Option<DateTime<Utc>>,
    /// Totals.
    pub totals: Counts,
    /// Error of a failed run.
    pub error: Option<String>,
    /// Why a run is held.
    pub hold_reason: Option<String>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// Deletions it did not apply, and why, one line per kind and cause.
    pub deferred: Vec<String>,
    /// What the adapter said for the summary (rows its filter skipped, per value…).
    pub notes: Vec<String>,
}

/// A quarantined record.
#[derive(Debug, Clone)]
pub struct QuarantineEntry {
    /// Record kind, when known.
    pub kind: Option<String>,
    /// Key, when known.
    pub key: Option<String>,
    /// Why.
    pub reason: String,
    /// Where it came from.
    pub location: Option<String>,
    /// The raw payload.
    pub payload: String,
}

/// One run in detail.
#[derive(Debug, Clone)]
pub struct RunDetail {
    /// The summary.
    pub summary: RunSummary,
    /// Counts per kind.
    pub by_kind: BTreeMap<String, Counts>,
    /// The first quarantined records.
    pub quarantine: Vec<QuarantineEntry>,
}

/// Reading failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the run history: {0}")]
pub struct RunsError(String);

const SUMMARY_COLUMNS: &str = "r.id, s.name, r.status, r.mode, r.dry_run, r.started_at, r.finished_at, \
    r.staged, r.inserted, r.updated, r.deleted, r.unchanged, r.quarantined, r.error, r.hold_reason, \
    r.decided_by, r.deferred, r.deferred_notes, r.notes, \
    (SELECT coalesce(sum((c.value->>'stale')::bigint), 0) FROM jsonb_each(r.counts) c)::bigint";

fn summary(row: &tokio_postgres::Row) -> RunSummary {
    let n = |i: usize| row.get::<_, i64>(i) as u64;
    RunSummary {
        id: row.get(0),
        source: row.get(1),
        status: RunStatus::parse(row.get(2)).unwrap_or(RunStatus::Failed),
        mode: row.get(3),
        dry_run: row.get(4),
        started_at: row.get(5),
        finished_at: row.get(6),
        totals: Counts {
            staged: n(7),
            inserted: n(8),
            updated: n(9),
            deleted: n(10),
            unchanged: n(11),
            quarantined: n(12),
            deferred: n(16),
            stale: n(19),
        },
        error: row.get(13),
        hold_reason: row.get(14),
        decided_by: row.get(15),
        deferred: row.get(17),
        notes: row.get(18),
    }
}

/// The latest runs, newest first, optionally of one source or one status.
pub async fn list(
    pool: &Pool,
    source: Option<&str>,
    status: Option<RunStatus>,
    limit: i64,
) -> Result<Vec<RunSummary>, RunsError> {
    let client = pool.get().await.map_err(|e| RunsError(e.to_string()))?;
    let status = status.map(|s| s.as_str());
    let rows = client
        .query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM sync_run r JOIN source s ON s.id = r.source_id \
                 WHERE ($1::text IS NULL OR s.name = $1) AND ($2::text IS NULL OR r.status = $2) \
                 ORDER BY r.id DESC LIMIT $3"
            ),
            &[&source, &status, &limit],
        )
        .await
        .map_err(|e| RunsError(pg_message(&e)))?;
    Ok(rows.iter().map(summary).collect())
}

/// One run with its counts per kind and its first `quarantine_limit` quarantined records.
pub async fn show(
    pool: &Pool,
    id: i64,
    quarantine_limit: i64,
) -> Result<Option<RunDetail>, RunsError> {
    let client = pool.get().await.map_err(|e| RunsError(e.to_string()))?;
    let err = |e: tokio_postgres::Error| RunsError(pg_message(&e));
    let Some(row) = client
        .query_opt(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, r.counts FROM sync_run r \
                 JOIN source s ON s.id = r.source_id WHERE r.id = $1"
            ),
            &[&id],
        )
        .await
        .map_err(err)?
    else {
        return Ok(None);
    };
    let by_kind = row
        .get::<_, Option<serde_json::Value>>("counts")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let quarantine = client
        .query(
            "SELECT kind, key, reason, location, payload FROM quarantine WHERE run_id = $1 \
             ORDER BY id LIMIT $2",
            &[&id, &quarantine_limit],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|q| QuarantineEntry {
            kind: q.get(0),
            key: q.get(1),
            reason: q.get(2),
            location: q.get(3),
            payload: q.get(4),
        })
        .collect();
    Ok(Some(RunDetail {
        summary: summary(&row),
        by_kind,
        quarantine,
    }))
}
