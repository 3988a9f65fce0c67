//! A started run: its batches read, staged, checked and merged in one transaction,
//! then committed with the cursor (or held, or rolled back for a dry run).

use super::checks::{self, CheckPlan};
use super::error::EngineError;
use super::lock::RUN_LOCK_CLASS;
use super::merge::{self, KindMerge};
use super::phases::Phases;
use super::report::{Counts, RunReport, RunStatus};
use super::request::{Coverage, Progress, RunRequest};
use super::stage::Stager;
use super::table;
use super::CommitHook;
use crate::model::Kind;
use conpere_model::{Batch, ReadError};
use deadpool_postgres::ClientWrapper;
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use tokio_postgres::types::ToSql;

pub(super) struct RunContext {
    pub(super) run_id: i64,
    pub(super) source_id: i32,
    pub(super) request: RunRequest,
    /// Set when replaying a held run approved by this person.
    pub(super) approval: Option<String>,
    /// Called before the commit of an applied run.
    pub(super) hook: Option<Arc<dyn CommitHook>>,
}

/// A started run, holding its source's lock.
pub struct Run {
    pub(super) client: ClientWrapper,
    pub(super) ctx: RunContext,
    pub(super) cursor: Option<serde_json::Value>,
}

impl Run {
    /// The run id.
    pub fn id(&self) -> i64 {
        self.ctx.run_id
    }

    /// The source's cursor from its last applied run, to hand to the adapter.
    pub fn cursor(&self) -> Option<&serde_json::Value> {
        self.cursor.as_ref()
    }

    /// Marks the run failed before any data was read (e.g. the adapter could not start).
    pub async fn fail(self, message: &str) -> Result<(), EngineError> {
        self.client
            .execute(
                "UPDATE sync_run SET status = 'failed', finished_at = clock_timestamp(), error = $2 WHERE id = $1",
                &[&self.ctx.run_id, &message],
            )
            .await
            .map_err(EngineError::db("recording the failure"))?;
        Ok(())
    }

    /// Reads `batches` to the end and applies them as one transaction. With a dry run,
    /// `diff` receives one JSON line per change (`op`, `type`, `key`, `before`, `after`).
    pub async fn apply<S, E>(
        self,
        batches: S,
        progress: &dyn Progress,
        diff: Option<&mut (dyn Write + Send)>,
    ) -> Result<RunReport, EngineError>
    where
        S: Stream<Item = Result<Batch, E>> + Send,
        E: Into<ReadError>,
    {
        let Run {
            client,
            ctx,
            mut cursor,
        } = self;
        let result = execute(&client, &ctx, batches, progress, diff, &mut cursor).await;
        match result {
            Ok(report) => Ok(report),
            Err(error) => {
                let _ = client.batch_execute("ROLLBACK").await;
                // A failed approval leaves the run held (it can be approved again); any
                // other failure is final for this run.
                if ctx.approval.is_none() {
                    let _ = client
                        .execute(
                            "UPDATE sync_run SET status = 'failed', finished_at = clock_timestamp(), error = $2 \
                             WHERE id = $1 AND status = 'running'",
                            &[&ctx.run_id, &error.to_string()],
                        )
                        .await;
                }
                let _ = client
                    .execute(
                        "SELECT pg_advisory_unlock($1, $2)",
                        &[&RUN_LOCK_CLASS, &ctx.source_id],
                    )
                    .await;
                Err(error)
            }
        }
    }
}

pub(super) async fn execute<S, E>(
    client: &ClientWrapper,
    ctx: &RunContext,
    batches: S,
    progress: &dyn Progress,
    diff: Option<&mut (dyn Write + Send)>,
    cursor: &mut Option<serde_json::Value>,
) -> Result<RunReport, EngineError>
where
    S: Stream<Item = Result<Batch, E>> + Send,
    E: Into<ReadError>,
{
    let params: [&(dyn ToSql + Sync); 2] = [&ctx.run_id, &ctx.source_id];
    client
        // Statistics of stage tables only steer join choices: a small sample will do. The
        // tables a run reads are in the server's buffers or on SSD: a random page costs
        // little more than a sequential one (the default 4 has a merge update a handful
        // of rows by scanning a million: 0.22 s instead of 0.09 s).
        .batch_execute(
            "BEGIN; SET LOCAL work_mem = '128MB'; SET LOCAL default_statistics_target = 10; \
             SET LOCAL random_page_cost = 1.1",
        )
        .await
        .map_err(EngineError::db("starting the transaction"))?;
    let mut stager = Stager::new(client, ctx.run_id, ctx.source_id, ctx.approval.is_none()).await?;
    let mut phases = Phases::start();
    futures::pin_mut!(batches);
    loop {
        let waited = std::time::Instant::now();
        let next = batches.next().await;
        phases.add("read", waited.elapsed());
        let Some(batch) = next else { break };
        let staging = std::time::Instant::now();
        let batch = batch.map_err(|e| EngineError::Read {
            name: ctx.request.source.clone(),
            run_id: ctx.run_id,
            error: e.into(),
        })?;
        if batch.cursor.is_some() {
            *cursor = batch.cursor;
        }
        stager
            .stage(batch.items, batch.locations, batch.modified)
            .await?;
        phases.add("stage", staging.elapsed());
        progress.staged(stager.total_staged);
    }
    phases.restart();
    let mut by_kind = std::mem::take(&mut stager.counts);
    let unknown_quarantined = stager.unknown_quarantined;
    let mut notes = std::mem::take(&mut stager.notes);
    let coverage = &ctx.request.coverage;
    let unread = Unread::of_run(client, ctx.run_id).await?;
    // What the read vouches for: a stored record of an unvouched kind is kept, so the
    // records that refer to one are not orphans.
    let vouched = Coverage {
        kinds: (coverage.kinds.iter().copied())
            .filter(|kind| !unread.unvouches(*kind))
            .collect(),
        years: coverage.years.clone(),
    };
    // Kinds read exactly as stored skip the comparison record by record.
    let compared = (stager.fingerprints)
        .unchanged_kinds(client, &vouched, ctx.source_id)
        .await?;
    let unchanged = &compared.unchanged;
    phases.end("compare");
    progress.phase("checking");
    let plans: BTreeMap<Kind, CheckPlan> = (Kind::ALL.into_iter())
        .map(|kind| (kind, checks::plan(kind, unchanged)))
        .collect();
    let checked = |kind: Kind| plans[&kind] != CheckPlan::Hold;
    for kind in Kind::ALL {
        // The stage's statistics steer the joins of its own checks and merge, and those
        // of the checks of the kinds that refer to it.
        if !unchanged.contains(&kind) || checked(kind) || checks::children(kind).any(checked) {
            client
                .batch_execute(&format!("ANALYZE {}", table::TableSpec::of(kind).stage()))
                .await
                .map_err(EngineError::db("analyzing the stage"))?;
        }
        let repeats = stager.repeats.candidates(kind);
        let quarantined =
            checks::check_kind(client, kind, plans[&kind], &vouched, &params, repeats).await?;
        by_kind.entry(kind).or_default().quarantined += quarantined;
    }
    phases.end("check");
    client
        .batch_execute("SAVEPOINT merge")
        .await
        .map_err(EngineError::db("merging"))?;
    let mut merges = BTreeMap::new();
    for kind in Kind::ALL {
        progress.phase(&format!("merging {kind}"));
        let merge = match unchanged.contains(&kind) {
            true => KindMerge::default(),
            false => {
                let staged = stager.fingerprints.records(kind);
                let references = (plans[&kind] == CheckPlan::ReferencesAtMerge).then_some(&vouched);
                let stored_live = compared.stored_live.get(&kind).copied();
                merge::merge_kind(
                    client,
                    kind,
                    staged,
                    coverage,
                    references,
                    stored_live,
                    &params,
                )
                .await?
            }
        };
        merges.insert(kind, merge);
    }
    phases.end("merge");
    let index_build = merges.values().map(|merge| merge.index_build).sum();
    phases.carve("merge", "index", index_build);
    for kind in Kind::ALL.into_iter().rev() {
        let merge = merges.get_mut(&kind).expect("every kind is merged");
        let unvouched = unread.unvouches(kind);
        merge::delete_kind(client, kind, unvouched, merge, &params).await?;
    }
    phases.end("delete");
    let deferred = deferred_deletions(&merges, &unread);
    let hold_reason = match &ctx.approval {
        Some(_) => None,
        None => hold_reason(client, ctx, &merges).await?,
    };
    for (kind, merge) in &merges {
        let counts = by_kind.entry(*kind).or_default();
        counts.inserted = merge.inserted.values().sum();
        counts.updated = merge.updated;
        counts.deleted = merge.deleted.values().sum();
        counts.deferred = merge.deferred_unread + merge.deferred_referenced;
        counts.stale = merge.stale;
        counts.quarantined += merge.quarantined;
        counts.unchanged = match (unchanged.contains(kind), merge.first_load, merge.unchanged) {
            (true, _, _) => stager.fingerprints.records(*kind),
            (false, true, _) => 0,
            (false, false, Some(counted)) => {
                // Tests run debug builds: every one checks the count against the stage's.
                #[cfg(debug_assertions)]
                {
                    let live = live_staged(client, *kind).await?;
                    let applied = counts.inserted + counts.updated + counts.stale;
                    assert_eq!(counted, live.saturating_sub(applied), "{kind}: unchanged");
                }
                counted
            }
            (false, false, None) => live_staged(client, *kind)
                .await?
                .saturating_sub(counts.inserted + counts.updated + counts.stale),
        };
    }
    let mut totals = Counts::default();
    for counts in by_kind.values() {
        totals.add(counts);
    }
    notes.extend(stale_note(&by_kind));
    totals.quarantined += unknown_quarantined;
    let status = match (&hold_reason, totals.quarantined) {
        (Some(_), _) => RunStatus::Held,
        (None, 0) => RunStatus::Succeeded,
        (None, _) => RunStatus::SucceededWithWarnings,
    };
    if let Some(diff) = diff {
        write_diff(client, ctx.run_id, diff).await?;
    }
    phases.end("count");
    let mut report = RunReport {
        run_id: ctx.run_id,
        source: ctx.request.source.clone(),
        status,
        dry_run: ctx.request.dry_run,
        totals,
        by_kind,
        hold_reason,
        deferred,
        notes,
        phases,
    };
    finish(client, ctx, &mut report, cursor.as_ref()).await?;
    tracing::debug!(run_id = ctx.run_id, phases = %report.phases, "the run's phases");
    Ok(report)
}

/// The lines of a run that could not be read with their key, per kind (`None`: not even
/// the kind could be read): the read cannot vouch for the absence of any record of such a
/// kind. Read back from the run's quarantine, so that a held run approved later defers
/// the same deletions.
pub(super) struct Unread {
    /// Lines, and the file of the first one, per kind.
    pub(super) by_kind: BTreeMap<Option<Kind>, (u64, String)>,
}

impl Unread {
    async fn of_run(client: &ClientWrapper, run_id: i64) -> Result<Unread, EngineError> {
        let rows = client
            .query(
                "SELECT kind, count(*), min(location) FROM quarantine \
                 WHERE run_id = $1 AND key IS NULL GROUP BY kind",
                &[&run_id],
            )
            .await
            .map_err(EngineError::db("reading the run's quarantine"))?;
        let by_kind = rows
            .iter()
            .map(|row| {
                let kind = row.get::<_, Option<&str>>(0).and_then(Kind::parse);
                let lines = row.get::<_, i64>(1) as u64;
                let location: Option<&str> = row.get(2);
                (kind, (lines, file_of(location.unwrap_or("the input"))))
            })
            .collect();
        Ok(Unread { by_kind })
    }

    /// Whether the read cannot vouch for the absence of records of `kind`.
    fn unvouches(&self, kind: Kind) -> bool {
        self.by_kind.contains_key(&Some(kind)) || self.by_kind.contains_key(&None)
    }

    /// Why, in words: `1 line of students.jsonl could not be read with its key`.
    fn why(&self, kind: Kind) -> String {
        [Some(kind), None]
            .iter()
            .filter_map(|k| self.by_kind.get(k))
            .map(|(lines, file)| match lines {
                1 => format!("1 line of {file} could not be read with its key"),
                n => format!("{n} lines of {file} could not be read with their key"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The file of a location `path:line` (its name, without the directory).
pub(super) fn file_of(location: &str) -> String {
    let path = match location.rsplit_once(':') {
        Some((path, line)) if line.chars().all(|c| c.is_ascii_digit()) => path,
        _ => location,
    };
    std::path::Path::new(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// The changes not applied because the store holds a newer version, when there are.
pub(super) fn stale_note(by_kind: &BTreeMap<Kind, Counts>) -> Option<String> {
    let stale: Vec<String> = (by_kind.iter())
        .filter(|(_, counts)| counts.stale > 0)
        .map(|(kind, counts)| format!("{kind} {}", counts.stale))
        .collect();
    let total: u64 = by_kind.values().map(|counts| counts.stale).sum();
    (total > 0).then(|| {
        format!(
            "{total} change(s) not applied ({}): older, by the source's modification time, \
             than the version stored",
            stale.join(", ")
        )
    })
}

/// What the run did not delete, and why, one line per kind and cause.
pub(super) fn deferred_deletions(
    merges: &BTreeMap<Kind, KindMerge>,
    unread: &Unread,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (kind, merge) in merges {
        let deletions = |n: u64| match n {
            1 => format!("1 deletion of {kind} deferred"),
            n => format!("{n} deletions of {kind} deferred"),
        };
        if merge.deferred_unread > 0 {
            let why = unread.why(*kind);
            lines.push(format!("{}: {why}", deletions(merge.deferred_unread)));
        }
        if merge.deferred_referenced > 0 {
            lines.push(format!(
                "{}: records kept in the store still refer to them",
                deletions(merge.deferred_referenced)
            ));
        }
    }
    lines
}

/// Records of the stage that are read as they are now (not tombstones, not held back).
pub(super) async fn live_staged(client: &ClientWrapper, kind: Kind) -> Result<u64, EngineError> {
    let row = client
        .query_one(
            &format!("SELECT {}", table::TableSpec::of(kind).live_stage_count()),
            &[],
        )
        .await
        .map_err(EngineError::db("counting"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Why the run must wait for an operator, if it must: the first scope where deletions
/// exceed the policy.
pub(super) async fn hold_reason(
    client: &ClientWrapper,
    ctx: &RunContext,
    merges: &BTreeMap<Kind, KindMerge>,
) -> Result<Option<String>, EngineError> {
    let policy = ctx.request.hold;
    let mut reasons = Vec::new();
    for (kind, merge) in merges {
        for (year, &deleted) in &merge.deleted {
            if deleted < policy.min_deletions.max(1) {
                continue;
            }
            let live_after = live_count(client, ctx.source_id, *kind, *year).await?;
            let inserted = merge.inserted.get(year).copied().unwrap_or(0);
            let before = (live_after + deleted).saturating_sub(inserted);
            let share = deleted as f64 / before.max(1) as f64;
            if share > policy.max_delete_share {
                let scope = match year {
                    Some(y) => format!("{kind} records of {y}"),
                    None => format!("{kind} records"),
                };
                reasons.push(format!(
                    "would delete {deleted} of {before} {scope} ({:.1} %, threshold {:.1} %)",
                    share * 100.0,
                    policy.max_delete_share * 100.0
                ));
            }
        }
    }
    Ok((!reasons.is_empty()).then(|| reasons.join("; ")))
}

pub(super) async fn live_count(
    client: &ClientWrapper,
    source_id: i32,
    kind: Kind,
    year: Option<i32>,
) -> Result<u64, EngineError> {
    // `year IS NOT DISTINCT FROM NULL` would not use the index; spell the two cases.
    let year_filter = if year.is_some() {
        "AND year = $2"
    } else {
        "AND $2::int IS NULL"
    };
    let sql = format!(
        "SELECT count(*) FROM {} WHERE source_id = $1 AND deleted_at IS NULL {year_filter}",
        kind.as_str()
    );
    let row = client
        .query_one(&sql, &[&source_id, &year])
        .await
        .map_err(EngineError::db("counting a scope"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Writes the run's changes (its history rows, not yet committed) as compact JSON lines:
/// `{"op":…,"type":…,"key":{…},"before":{…}|null,"after":{…}|null}`.
pub(super) async fn write_diff(
    client: &ClientWrapper,
    run_id: i64,
    out: &mut (dyn Write + Send),
) -> Result<(), EngineError> {
    let rows = client
        .query_raw(
            "SELECT op, kind, key, before, after FROM history WHERE run_id = $1 ORDER BY kind, key::text",
            [&run_id],
        )
        .await
        .map_err(EngineError::db("writing the diff"))?;
    futures::pin_mut!(rows);
    while let Some(row) = rows.next().await {
        let row = row.map_err(EngineError::db("writing the diff"))?;
        let change = serde_json::json!({
            "op": row.get::<_, &str>(0),
            "type": row.get::<_, &str>(1),
            "key": row.get::<_, serde_json::Value>(2),
            "before": row.get::<_, Option<serde_json::Value>>(3),
            "after": row.get::<_, Option<serde_json::Value>>(4),
        });
        writeln!(out, "{change}").map_err(|e| EngineError::Db {
            context: "writing the diff",
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Commits (or, for dry runs, rolls back) and records the outcome.
pub(super) async fn finish(
    client: &ClientWrapper,
    ctx: &RunContext,
    report: &mut RunReport,
    cursor: Option<&serde_json::Value>,
) -> Result<(), EngineError> {
    let held = report.status == RunStatus::Held;
    if held {
        client
            .batch_execute("ROLLBACK TO SAVEPOINT merge")
            .await
            .map_err(EngineError::db("holding the run"))?;
        if !ctx.request.dry_run {
            keep_held_snapshot(client, ctx.run_id).await?;
        }
    } else if !ctx.request.dry_run {
        if let Some(cursor) = cursor {
            client
                .execute(
                    "INSERT INTO source_cursor (source_id, cursor, run_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (source_id) DO UPDATE SET cursor = EXCLUDED.cursor, \
                     run_id = EXCLUDED.run_id, updated_at = now()",
                    &[&ctx.source_id, cursor, &ctx.run_id],
                )
                .await
                .map_err(EngineError::db("saving the cursor"))?;
        }
        if ctx.approval.is_some() {
            client
                .execute("DELETE FROM held_record WHERE run_id = $1", &[&ctx.run_id])
                .await
                .map_err(EngineError::db("approving"))?;
        }
        if let Some(hook) = &ctx.hook {
            hook.before_commit(client, ctx.run_id)
                .await
                .map_err(|message| EngineError::Db {
                    context: "completing the run (before its commit)",
                    message,
                })?;
            report.phases.end("refresh");
        }
    }
    if ctx.request.dry_run {
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(EngineError::db("rolling back the dry run"))?;
    }
    let counts = serde_json::to_value(
        report
            .by_kind
            .iter()
            .map(|(k, c)| (k.as_str(), c))
            .collect::<BTreeMap<_, _>>(),
    )
    .expect("counts serialize");
    let t = &report.totals;
    let nums: Vec<i64> = [
        t.staged,
        t.inserted,
        t.updated,
        t.deleted,
        t.unchanged,
        t.quarantined,
    ]
    .iter()
    .map(|n| *n as i64)
    .collect();
    client
        .execute(
            "UPDATE sync_run SET status = $2, finished_at = CASE WHEN $2 = 'held' THEN NULL ELSE clock_timestamp() END, \
             staged = $3, inserted = $4, updated = $5, deleted = $6, unchanged = $7, quarantined = $8, \
             counts = $9, hold_reason = $10, cursor_after = $11, decided_by = $12, \
             decided_at = CASE WHEN $12::text IS NULL THEN NULL ELSE clock_timestamp() END, \
             deferred = $13, deferred_notes = $14, \
             notes = CASE WHEN $12::text IS NULL THEN $15 ELSE notes END WHERE id = $1",
            &[
                &ctx.run_id,
                &report.status.as_str(),
                &nums[0],
                &nums[1],
                &nums[2],
                &nums[3],
                &nums[4],
                &nums[5],
                &counts,
                &report.hold_reason,
                &cursor,
                &ctx.approval,
                &(t.deferred as i64),
                &report.deferred,
                &report.notes,
            ],
        )
        .await
        .map_err(EngineError::db("recording the outcome"))?;
    if !ctx.request.dry_run {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(EngineError::db("committing"))?;
    }
    report.phases.end("commit");
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&RUN_LOCK_CLASS, &ctx.source_id],
        )
        .await
        .map_err(EngineError::db("unlocking the source"))?;
    Ok(())
}

/// Saves the stage of a held run, so approval applies exactly what was read.
pub(super) async fn keep_held_snapshot(
    client: &ClientWrapper,
    run_id: i64,
) -> Result<(), EngineError> {
    for kind in Kind::ALL {
        let spec = table::TableSpec::of(kind);
        let sql = format!(
            "INSERT INTO held_record (run_id, what, line) \
             SELECT $1, CASE WHEN s.skip THEN 'held_back' WHEN s.tombstone THEN 'tombstone' ELSE 'record' END, \
             (CASE WHEN s.skip OR s.tombstone THEN {key} ELSE {record} END \
              || jsonb_build_object('type', '{kind}'))::text FROM {stage} s",
            key = spec.key_json("s"),
            record = spec.record_json("s"),
            stage = spec.stage(),
        );
        client
            .execute(&sql, &[&run_id])
            .await
            .map_err(EngineError::db("keeping the held snapshot"))?;
    }
    Ok(())
}
