//! A source's lock: one run of a source at a time, across processes (a session
//! advisory lock on a connection of its own), the cursor read under it, runs left
//! `running` by a dead process marked failed.

use super::error::EngineError;
use deadpool_postgres::ClientWrapper;

/// Advisory-lock namespace of source runs ('conp', then the source id).
pub(super) const RUN_LOCK_CLASS: i32 = 0x636f_6e70;

/// Prepares a run's session: the server notices a vanished client even in the middle of
/// a long statement (a killed run's locks go within seconds, not when the statement would
/// have ended), and stage tables get room in memory (the default 8 MB of temporary
/// buffers makes a million-row stage go through the disk).
pub(super) async fn watch_client(client: &ClientWrapper) -> Result<(), EngineError> {
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

pub(super) async fn register_source(
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
pub(super) async fn mark_abandoned(
    client: &ClientWrapper,
    source_id: i32,
) -> Result<Vec<i64>, EngineError> {
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
pub(super) async fn try_lock(client: &ClientWrapper, source_id: i32) -> Result<bool, EngineError> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&RUN_LOCK_CLASS, &source_id],
        )
        .await
        .map_err(EngineError::db("locking the source"))?
        .get(0))
}

pub(super) async fn lock_source(
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
