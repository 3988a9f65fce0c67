//! Scheduled runs claimed once across daemons: `conpere serve` on two servers reads the
//! same schedules, and each due run must happen exactly once. A claim is a row keyed by
//! (source, due instant); the daemon whose insert succeeds runs it. Claims outlive the
//! daemons, so one that starts late knows which run was last due.

use crate::engine::EngineError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

/// Claims the run of `source` due at `due_at` for `claimant` (host:pid); `true` when this
/// call won it, `false` when another daemon (or an earlier call) already had.
pub async fn claim(
    pool: &Pool,
    source: &str,
    due_at: DateTime<Utc>,
    claimant: &str,
) -> Result<bool, EngineError> {
    let client = pool.get().await?;
    let inserted = client
        .execute(
            "INSERT INTO schedule_claim (source, due_at, claimed_by) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&source, &due_at, &claimant],
        )
        .await
        .map_err(EngineError::db("claiming a scheduled run"))?;
    Ok(inserted == 1)
}

/// Records which run a claim became (for `runs show` and the metrics).
pub async fn attach_run(
    pool: &Pool,
    source: &str,
    due_at: DateTime<Utc>,
    run_id: i64,
) -> Result<(), EngineError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE schedule_claim SET run_id = $3 WHERE source = $1 AND due_at = $2",
            &[&source, &due_at, &run_id],
        )
        .await
        .map_err(EngineError::db("recording a scheduled run"))?;
    Ok(())
}

/// The latest due instant claimed for `source`, if any.
pub async fn last_claimed(pool: &Pool, source: &str) -> Result<Option<DateTime<Utc>>, EngineError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT max(due_at) FROM schedule_claim WHERE source = $1",
            &[&source],
        )
        .await
        .map_err(EngineError::db("reading scheduled runs"))?;
    Ok(row.get(0))
}
