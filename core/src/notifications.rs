//! The record of notifications sent about runs (`conpere serve` tells operators when a
//! run fails or is held). Each delivery attempt to a channel is a row: the admin API and
//! `/metrics` read them, and whether a source's last notice was a failure decides whether
//! its next success is announced as a recovery, whichever daemon sent that failure.

use crate::engine::EngineError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

/// One delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Source the notice was about.
    pub source: String,
    /// The run, when one was started.
    pub run_id: Option<i64>,
    /// `failed`, `held` or `recovered`.
    pub event: String,
    /// The channel's name (`[notifications.<name>]`).
    pub channel: String,
    /// Whether the channel accepted it.
    pub delivered: bool,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// Records a delivery attempt.
pub async fn record(pool: &Pool, delivery: &Delivery) -> Result<(), EngineError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO notification (source, run_id, event, channel, delivered, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &delivery.source,
                &delivery.run_id,
                &delivery.event,
                &delivery.channel,
                &delivery.delivered,
                &delivery.error,
            ],
        )
        .await
        .map_err(EngineError::db("recording a notification"))?;
    Ok(())
}

/// The event of the latest notice about `source` (on `channel` only, when given) and
/// when it was sent, if any.
pub async fn last_event(
    pool: &Pool,
    source: &str,
    channel: Option<&str>,
) -> Result<Option<(String, DateTime<Utc>)>, EngineError> {
    let client = pool.get().await?;
    Ok(client
        .query_opt(
            "SELECT event, sent_at FROM notification WHERE source = $1 \
             AND ($2::text IS NULL OR channel = $2) ORDER BY id DESC LIMIT 1",
            &[&source, &channel],
        )
        .await
        .map_err(EngineError::db("reading the last notification"))?
        .map(|row| (row.get(0), row.get(1))))
}

/// The delivery attempts about run `run_id`, oldest first.
pub async fn of_run(pool: &Pool, run_id: i64) -> Result<Vec<Delivery>, EngineError> {
    let client = pool.get().await?;
    Ok(client
        .query(
            "SELECT source, run_id, event, channel, delivered, error FROM notification \
             WHERE run_id = $1 ORDER BY id",
            &[&run_id],
        )
        .await
        .map_err(EngineError::db("reading notifications"))?
        .iter()
        .map(|row| Delivery {
            source: row.get(0),
            run_id: row.get(1),
            event: row.get(2),
            channel: row.get(3),
            delivered: row.get(4),
            error: row.get(5),
        })
        .collect())
}
