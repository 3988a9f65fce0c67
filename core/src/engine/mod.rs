//! The sync engine: one run of one source, applied whole or not at all.
//!
//! ```text
//! batches ─► validate ─► binary COPY into stage tables ─► duplicates & references
//!         ─► set-based merge + history ─► mass-deletion hold ─► commit with the cursor
//! ```
//!
//! A run holds a session advisory lock on its source (two runs of one source never
//! overlap, across processes) and does all its writes in one transaction on a dedicated
//! connection: if the process dies, the connection closes, PostgreSQL rolls back, and the
//! next run marks the abandoned run `failed`. A dry run does everything, reports the diff,
//! and rolls back.
//!
//! ```no_run
//! # async fn demo(pool: deadpool_postgres::Pool) -> Result<(), Box<dyn std::error::Error>> {
//! use conpere_core::engine::{Batch, Coverage, Engine, Mode, NoProgress, RunRequest};
//! use conpere_synth::{SynthConfig, University};
//! let university = University::generate(SynthConfig::new(7, 50));
//! let items: Vec<_> = university.records().map(Into::into).collect();
//! let batches = futures::stream::iter([Ok::<_, String>(Batch { items, ..Batch::default() })]);
//! let run = Engine::new(pool).start(RunRequest::full("files", "canonical", Coverage::all())).await?;
//! let report = run.apply(batches, &NoProgress, None).await?;
//! println!("{} inserted", report.totals.inserted);
//! # Ok(()) }
//! ```

mod checks;
mod empty_table;
mod error;
mod fingerprint;
mod held;
mod lock;
mod merge;
mod open;
mod phases;
mod repeats;
mod report;
mod request;
mod run;
mod stage;
pub(crate) mod table;

pub use conpere_model::{Batch, FailureKind, Mode, ReadAt, ReadError};
use deadpool_postgres::{Object, Pool};
pub use error::{pg_message, EngineError};
pub use lock::hostname;
pub use open::OpenSource;
pub use phases::Phases;
pub use report::{Counts, RunReport, RunStatus};
pub use request::{Coverage, HoldPolicy, NoProgress, Progress, RunRequest};
pub use run::Run;
use std::sync::Arc;

use lock::{lock_source, mark_abandoned, register_source, try_lock, watch_client, RUN_LOCK_CLASS};

/// The engine: starts runs, approves and rejects held ones.
#[derive(Clone)]
pub struct Engine {
    pool: Pool,
    hook: Option<Arc<dyn CommitHook>>,
}

/// Work that commits with a run's changes or not at all: called in the run's transaction,
/// after its changes and before its commit, when the run applies (not when it is held,
/// fails or is a dry run). The binary gives the refresh of the learning contracts: the
/// engine knows no contract.
pub trait CommitHook: Send + Sync {
    /// Does the work of run `run_id` on `client`, inside the run's transaction; an error
    /// fails the run, nothing of it applied.
    fn before_commit<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
        run_id: i64,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

impl Engine {
    /// An engine on the store behind `pool` (migrated).
    pub fn new(pool: Pool) -> Engine {
        Engine { pool, hook: None }
    }

    /// The same engine, calling `hook` in every applied run's transaction.
    pub fn with_commit_hook(self, hook: Arc<dyn CommitHook>) -> Engine {
        Engine {
            hook: Some(hook),
            ..self
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Records a run of `request` refused before it could start, for `why` (a source
    /// that cannot be listed, a manifest that refuses the drop): `runs list` then shows
    /// every night, the nights nothing could be read included. Returns its id.
    pub async fn refused(&self, request: &RunRequest, why: &str) -> Result<i64, EngineError> {
        let client = self.pool.get().await?;
        let source_id = register_source(&client, &request.source, &request.source_kind).await?;
        let row = client
            .query_one(
                "INSERT INTO sync_run (source_id, status, mode, dry_run, finished_at, error, \
                 hostname, pid) VALUES ($1, 'refused', $2, $3, now(), $4, $5, $6) RETURNING id",
                &[
                    &source_id,
                    &request.mode.as_str(),
                    &request.dry_run,
                    &why,
                    &hostname(),
                    &(std::process::id() as i32),
                ],
            )
            .await
            .map_err(EngineError::db("recording the refused run"))?;
        Ok(row.get(0))
    }

    /// Opens `source` for a run: registers it, takes its lock (refused with
    /// [`EngineError::Busy`] while another run holds it) and reads its cursor, once, under
    /// that lock. The sync asks its adapter whether anything is new since that cursor
    /// before it starts a run ([`OpenSource::start`]); dropping the [`OpenSource`]
    /// releases the lock without recording a run.
    pub async fn open(&self, source: &str, source_kind: &str) -> Result<OpenSource, EngineError> {
        // Detached from the pool: if the run is dropped mid-way, the connection closes
        // and PostgreSQL rolls back and unlocks; a pooled one would keep both.
        let client = Object::take(self.pool.get().await?);
        watch_client(&client).await?;
        let source_id = register_source(&client, source, source_kind).await?;
        lock_source(&client, source_id, source).await?;
        let cursor = client
            .query_opt(
                "SELECT cursor FROM source_cursor WHERE source_id = $1",
                &[&source_id],
            )
            .await
            .map_err(EngineError::db("reading the cursor"))?
            .map(|r| r.get::<_, serde_json::Value>(0));
        Ok(OpenSource {
            client,
            source_id,
            name: source.to_string(),
            hook: self.hook.clone(),
            cursor,
        })
    }

    /// Starts a run: opens its source ([`Engine::open`]) and starts the run there.
    pub async fn start(&self, request: RunRequest) -> Result<Run, EngineError> {
        let open = self.open(&request.source, &request.source_kind).await?;
        open.start(request).await
    }

    /// Whether a run of `source` could start now: the database answers, and no run of the
    /// source holds its lock (else [`EngineError::Busy`], naming it). For an operator's
    /// "run it now", answered before anything is started; a run started right after may
    /// still find the source taken by a scheduled one, and says so the same way.
    pub async fn check_free(&self, source: &str) -> Result<(), EngineError> {
        let client = self.pool.get().await?;
        let id = client
            .query_opt("SELECT id FROM source WHERE name = $1", &[&source])
            .await
            .map_err(EngineError::db("reading the source"))?;
        let Some(id) = id.map(|row| row.get::<_, i32>(0)) else {
            return Ok(()); // never run: nothing can hold it
        };
        lock_source(&client, id, source).await?;
        client
            .execute("SELECT pg_advisory_unlock($1, $2)", &[&RUN_LOCK_CLASS, &id])
            .await
            .map_err(EngineError::db("unlocking the source"))?;
        Ok(())
    }

    /// Marks `failed` the runs left `running` by a process that stopped (killed, timed
    /// out, power cut) and returns their ids. A source whose lock is held has a live run:
    /// its runs are left alone. `conpere serve` calls this at start-up, so an abandoned
    /// run shows as failed at once rather than at its source's next run.
    pub async fn reap_abandoned(&self) -> Result<Vec<i64>, EngineError> {
        let client = Object::take(self.pool.get().await?);
        let sources: Vec<i32> = client
            .query(
                "SELECT DISTINCT source_id FROM sync_run WHERE status = 'running'",
                &[],
            )
            .await
            .map_err(EngineError::db("finding abandoned runs"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut reaped = Vec::new();
        for source_id in sources {
            if !try_lock(&client, source_id).await? {
                continue;
            }
            let marked = mark_abandoned(&client, source_id).await;
            client
                .execute(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&RUN_LOCK_CLASS, &source_id],
                )
                .await
                .map_err(EngineError::db("unlocking the source"))?;
            reaped.extend(marked?);
        }
        Ok(reaped)
    }
}
