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
//! let batches = futures::stream::iter([Ok::<_, std::io::Error>(Batch { items, ..Batch::default() })]);
//! let run = Engine::new(pool).start(RunRequest::full("files", "canonical", Coverage::all())).await?;
//! let report = run.apply(batches, &NoProgress, None).await?;
//! println!("{} inserted", report.totals.inserted);
//! # Ok(()) }
//! ```

mod checks;
mod empty_table;
mod fingerprint;
mod merge;
mod phases;
mod repeats;
mod stage;
pub(crate) mod table;

use crate::model::{parse_line, Item, Kind, RecordKey, Rejected};
use checks::CheckPlan;
pub use conpere_model::{Batch, FailureKind, Mode, ReadAt, ReadError};
use deadpool_postgres::{ClientWrapper, Object, Pool};
use futures::{Stream, StreamExt};
use merge::KindMerge;
pub use phases::Phases;
use serde::{Deserialize, Serialize};
use stage::Stager;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// Advisory-lock namespace of source runs ('conp', then the source id).
const RUN_LOCK_CLASS: i32 = 0x636f_6e70;

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
    fn add(&mut self, other: &Counts) {
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

/// A source this process holds the lock of, with its cursor (see [`Engine::open`]).
pub struct OpenSource {
    client: ClientWrapper,
    source_id: i32,
    name: String,
    hook: Option<Arc<dyn CommitHook>>,
    cursor: Option<serde_json::Value>,
}

impl OpenSource {
    /// The source's cursor from its last applied run, read under the lock.
    pub fn cursor(&self) -> Option<&serde_json::Value> {
        self.cursor.as_ref()
    }

    /// Records the run as `running` (runs of the source left `running` by a process that
    /// died are marked failed first) and returns it, ready for [`Run::apply`].
    pub async fn start(self, request: RunRequest) -> Result<Run, EngineError> {
        assert_eq!(
            request.source, self.name,
            "a run of the source that was opened"
        );
        let OpenSource {
            client,
            source_id,
            hook,
            cursor,
            ..
        } = self;
        mark_abandoned(&client, source_id).await?;
        let years = request.coverage.years.clone();
        let kinds: Vec<&str> = request.coverage.kinds.iter().map(|k| k.as_str()).collect();
        let row = client
            .query_one(
                "INSERT INTO sync_run (source_id, status, mode, dry_run, years, kinds, hostname, pid) \
                 VALUES ($1, 'running', $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &source_id,
                    &request.mode.as_str(),
                    &request.dry_run,
                    &years,
                    &kinds,
                    &hostname(),
                    &(std::process::id() as i32),
                ],
            )
            .await
            .map_err(EngineError::db("recording the run"))?;
        Ok(Run {
            client,
            ctx: RunContext {
                run_id: row.get(0),
                source_id,
                request,
                approval: None,
                hook,
            },
            cursor,
        })
    }
}

/// Prepares a run's session: the server notices a vanished client even in the middle of
/// a long statement (a killed run's locks go within seconds, not when the statement would
/// have ended), and stage tables get room in memory (the default 8 MB of temporary
/// buffers makes a million-row stage go through the disk).
async fn watch_client(client: &ClientWrapper) -> Result<(), EngineError> {
    client
        .batch_execute("SET client_connection_check_interval = '1s'; SET temp_buffers = '256MB'")
        .await
        .map_err(EngineError::db("configuring the session"))
}

/// This machine's name, as runs record it (and daemons name themselves in claims and
/// notices); `unknown-host` when the system does not say.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

async fn register_source(
    client: &ClientWrapper,
    source: &str,
    source_kind: &str,
) -> Result<i32, EngineError> {
    let row = client
        .query_one(
            "INSERT INTO source (name, kind) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id, kind",
            &[&source, &source_kind],
        )
        .await
        .map_err(EngineError::db("registering the source"))?;
    let stored: String = row.get(1);
    if stored != source_kind {
        return Err(EngineError::KindChanged {
            name: source.to_string(),
            stored,
            configured: source_kind.to_string(),
        });
    }
    Ok(row.get(0))
}

/// Marks `failed` the runs of a source left `running`; the caller holds the source's
/// lock, so none of them is alive.
async fn mark_abandoned(client: &ClientWrapper, source_id: i32) -> Result<Vec<i64>, EngineError> {
    Ok(client
        .query(
            "UPDATE sync_run SET status = 'failed', finished_at = clock_timestamp(), error = \
             'abandoned: the process running it stopped before it finished; nothing was applied' \
             WHERE source_id = $1 AND status = 'running' RETURNING id",
            &[&source_id],
        )
        .await
        .map_err(EngineError::db("marking abandoned runs"))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Takes the run lock of a source if free (session-level: it goes with the connection).
async fn try_lock(client: &ClientWrapper, source_id: i32) -> Result<bool, EngineError> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&RUN_LOCK_CLASS, &source_id],
        )
        .await
        .map_err(EngineError::db("locking the source"))?
        .get(0))
}

async fn lock_source(
    client: &ClientWrapper,
    source_id: i32,
    source: &str,
) -> Result<(), EngineError> {
    if try_lock(client, source_id).await? {
        return Ok(());
    }
    let running = client
        .query_opt(
            "SELECT id FROM sync_run WHERE source_id = $1 AND status = 'running' ORDER BY id DESC LIMIT 1",
            &[&source_id],
        )
        .await
        .map_err(EngineError::db("locking the source"))?
        .map(|r| r.get(0));
    Err(EngineError::Busy {
        name: source.to_string(),
        running,
    })
}

struct RunContext {
    run_id: i64,
    source_id: i32,
    request: RunRequest,
    /// Set when replaying a held run approved by this person.
    approval: Option<String>,
    /// Called before the commit of an applied run.
    hook: Option<Arc<dyn CommitHook>>,
}

/// A started run, holding its source's lock.
pub struct Run {
    client: ClientWrapper,
    ctx: RunContext,
    cursor: Option<serde_json::Value>,
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

async fn execute<S, E>(
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
        // Statistics of stage tables only steer join choices: a small sample will do.
        .batch_execute(
            "BEGIN; SET LOCAL work_mem = '128MB'; SET LOCAL default_statistics_target = 10",
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
    let unchanged = (stager.fingerprints)
        .unchanged_kinds(client, &vouched, ctx.source_id)
        .await?;
    phases.end("compare");
    progress.phase("checking");
    let plans: BTreeMap<Kind, CheckPlan> = (Kind::ALL.into_iter())
        .map(|kind| (kind, checks::plan(kind, &unchanged)))
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
                merge::merge_kind(client, kind, staged, coverage, references, &params).await?
            }
        };
        merges.insert(kind, merge);
    }
    phases.end("merge");
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
        counts.unchanged = match (unchanged.contains(kind), merge.first_load) {
            (true, _) => stager.fingerprints.records(*kind),
            (false, true) => 0,
            (false, false) => live_staged(client, *kind)
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
struct Unread {
    /// Lines, and the file of the first one, per kind.
    by_kind: BTreeMap<Option<Kind>, (u64, String)>,
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
fn file_of(location: &str) -> String {
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
fn stale_note(by_kind: &BTreeMap<Kind, Counts>) -> Option<String> {
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
fn deferred_deletions(merges: &BTreeMap<Kind, KindMerge>, unread: &Unread) -> Vec<String> {
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
async fn live_staged(client: &ClientWrapper, kind: Kind) -> Result<u64, EngineError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE NOT tombstone AND NOT skip",
                table::TableSpec::of(kind).stage()
            ),
            &[],
        )
        .await
        .map_err(EngineError::db("counting"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Why the run must wait for an operator, if it must: the first scope where deletions
/// exceed the policy.
async fn hold_reason(
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

async fn live_count(
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
async fn write_diff(
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
async fn finish(
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
async fn keep_held_snapshot(client: &ClientWrapper, run_id: i64) -> Result<(), EngineError> {
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

/// A held run as stored.
struct HeldRun {
    source_id: i32,
    source: String,
    request: RunRequest,
    cursor: Option<serde_json::Value>,
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
fn held_batches(pool: Pool, run_id: i64) -> impl Stream<Item = Result<Batch, EngineError>> + Send {
    use futures::FutureExt;
    open_held_snapshot(pool, run_id).flatten_stream()
}

async fn open_held_snapshot(
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

fn held_item(what: &str, line: &str) -> Result<Item, EngineError> {
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
