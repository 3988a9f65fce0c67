//! Held runs: the snapshot kept when a run would delete too much, and its replay once
//! a person approves it (or its rejection).

use super::error::EngineError;
use super::lock::{lock_source, watch_client};
use super::report::RunReport;
use super::request::{Coverage, HoldPolicy, Progress, RunRequest};
use super::run::{Run, RunContext};
use super::Engine;
use crate::model::{parse_line, Item, Kind, RecordKey, Rejected};
use conpere_model::{Batch, FailureKind, Mode, ReadError};
use deadpool_postgres::{Object, Pool};
use futures::{Stream, StreamExt};

impl Engine {
    /// Applies a held run as it was read (same snapshot, same cursor), on an operator's
    /// decision. Refused when a newer run of the source was applied since.
    pub async fn approve(
        &self,
        run_id: i64,
        decided_by: &str,
        progress: &dyn Progress,
    ) -> Result<RunReport, EngineError> {
        let held = HeldRun::load(&self.pool, run_id).await?;
        let client = Object::take(self.pool.get().await?);
        watch_client(&client).await?;
        lock_source(&client, held.source_id, &held.source).await?;
        if let Some(newer) = client
            .query_opt(
                "SELECT id FROM sync_run WHERE source_id = $1 AND id > $2 AND NOT dry_run \
                 AND status IN ('succeeded', 'succeeded_with_warnings') ORDER BY id LIMIT 1",
                &[&held.source_id, &run_id],
            )
            .await
            .map_err(EngineError::db("checking newer runs"))?
        {
            return Err(EngineError::Superseded {
                run_id,
                newer: newer.get(0),
            });
        }
        let run = Run {
            client,
            ctx: RunContext {
                run_id,
                source_id: held.source_id,
                request: held.request.clone(),
                approval: Some(decided_by.to_string()),
                hook: self.hook.clone(),
            },
            cursor: held.cursor.clone(),
        };
        // The batches come from the store: a failure there is no source's.
        let stream = held_batches(self.pool.clone(), run_id).map(|batch| {
            batch.map_err(|e| {
                ReadError::new(FailureKind::Other, "reading the held run's batches", e)
            })
        });
        run.apply(stream, progress, None).await
    }

    /// Rejects a held run: nothing of it is applied, its snapshot is discarded.
    pub async fn reject(&self, run_id: i64, decided_by: &str) -> Result<(), EngineError> {
        let held = HeldRun::load(&self.pool, run_id).await?;
        let client = self.pool.get().await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(EngineError::db("rejecting"))?;
        client
            .execute("DELETE FROM held_record WHERE run_id = $1", &[&run_id])
            .await
            .map_err(EngineError::db("rejecting"))?;
        let updated = client
            .execute(
                "UPDATE sync_run SET status = 'rejected', decided_by = $2, decided_at = clock_timestamp() \
                 WHERE id = $1 AND status = 'held'",
                &[&run_id, &decided_by],
            )
            .await
            .map_err(EngineError::db("rejecting"))?;
        client
            .batch_execute(if updated == 1 { "COMMIT" } else { "ROLLBACK" })
            .await
            .map_err(EngineError::db("rejecting"))?;
        if updated != 1 {
            return Err(EngineError::NotHeld {
                run_id,
                status: format!("no longer held (source `{}`)", held.source),
            });
        }
        Ok(())
    }
}

/// A held run as stored.
pub(super) struct HeldRun {
    pub(super) source_id: i32,
    pub(super) source: String,
    pub(super) request: RunRequest,
    pub(super) cursor: Option<serde_json::Value>,
}

impl HeldRun {
    async fn load(pool: &Pool, run_id: i64) -> Result<HeldRun, EngineError> {
        let client = pool.get().await?;
        let row = client
            .query_opt(
                "SELECT r.source_id, s.name, s.kind, r.status, r.mode, r.dry_run, r.years, r.kinds, \
                 r.cursor_after FROM sync_run r JOIN source s ON s.id = r.source_id WHERE r.id = $1",
                &[&run_id],
            )
            .await
            .map_err(EngineError::db("loading the run"))?
            .ok_or(EngineError::NoSuchRun(run_id))?;
        let status: String = row.get(3);
        let dry_run: bool = row.get(5);
        if status != "held" || dry_run {
            return Err(EngineError::NotHeld {
                run_id,
                status: if dry_run {
                    format!("a dry run ({status})")
                } else {
                    status
                },
            });
        }
        let mode = if row.get::<_, String>(4) == "full" {
            Mode::Full
        } else {
            Mode::Incremental
        };
        let kinds: Vec<String> = row.get(7);
        Ok(HeldRun {
            source_id: row.get(0),
            source: row.get(1),
            request: RunRequest {
                source: row.get(1),
                source_kind: row.get(2),
                mode,
                coverage: Coverage {
                    kinds: kinds.iter().filter_map(|k| Kind::parse(k)).collect(),
                    years: row.get(6),
                },
                dry_run: false,
                hold: HoldPolicy::default(),
            },
            cursor: row.get(8),
        })
    }
}

/// Streams the held snapshot of `run_id` back as batches (on its own connection: the
/// run's connection is busy with COPY).
pub(super) fn held_batches(
    pool: Pool,
    run_id: i64,
) -> impl Stream<Item = Result<Batch, EngineError>> + Send {
    use futures::FutureExt;
    open_held_snapshot(pool, run_id).flatten_stream()
}

pub(super) async fn open_held_snapshot(
    pool: Pool,
    run_id: i64,
) -> futures::stream::BoxStream<'static, Result<Batch, EngineError>> {
    {
        let client = match pool.get().await {
            Ok(c) => c,
            Err(e) => return futures::stream::once(async { Err(EngineError::Pool(e)) }).boxed(),
        };
        let rows = match client
            .query_raw(
                "SELECT what, line FROM held_record WHERE run_id = $1",
                [&run_id],
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                let e = EngineError::db("reading the held snapshot")(e);
                return futures::stream::once(async { Err(e) }).boxed();
            }
        };
        rows.map(|row| {
            let row = row.map_err(EngineError::db("reading the held snapshot"))?;
            held_item(row.get(0), row.get(1))
        })
        .chunks(10_000)
        .map(move |items| {
            let _keep_connection = &client;
            let items: Result<Vec<Item>, EngineError> = items.into_iter().collect();
            items.map(|items| Batch {
                items,
                ..Batch::default()
            })
        })
        .boxed()
    }
}

pub(super) fn held_item(what: &str, line: &str) -> Result<Item, EngineError> {
    let corrupt = |message: String| EngineError::Db {
        context: "reading the held snapshot",
        message,
    };
    if what == "held_back" {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(Kind::parse)
            .ok_or_else(|| corrupt(format!("no type in {line}")))?;
        let key = RecordKey::from_json(kind, &value).map_err(corrupt)?;
        return Ok(Item::Rejected(Rejected {
            kind: Some(kind),
            key: Some(key),
            reason: "held back".into(),
            location: None,
            payload: String::new(),
        }));
    }
    let line = if what == "tombstone" {
        line.replacen('{', "{\"deleted\":true,", 1)
    } else {
        line.to_string()
    };
    parse_line(&line).map_err(|e| corrupt(e.message))
}
