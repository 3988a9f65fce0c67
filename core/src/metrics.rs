//! The figures `GET /metrics` reports, read from the store at each scrape — so every
//! daemon sharing a store reports the same, and a restart loses nothing. The daemon
//! renders them as Prometheus text; this module only knows the SQL.

use crate::db::DbError;
use deadpool_postgres::Pool;

/// Everything one scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    /// Runs by (source, status), dry runs aside.
    pub runs: Vec<(String, String, i64)>,
    /// Records changed by applied runs, by source: inserted, updated, deleted, quarantined.
    pub records: Vec<(String, [i64; 4])>,
    /// Notices by (channel, event, `delivered` or `failed`).
    pub notifications: Vec<(String, String, String, i64)>,
    /// When the last applied run of each source ended (Unix time).
    pub last_success: Vec<(String, f64)>,
    /// How long the last finished run of each source took, in seconds.
    pub last_duration: Vec<(String, f64)>,
    /// Runs held for a person's decision, by source.
    pub held: Vec<(String, f64)>,
}

/// Reads them.
pub async fn read(pool: &Pool) -> Result<StoreMetrics, DbError> {
    let client = pool.get().await?;
    let pairs = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, f64)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    Ok(StoreMetrics {
        runs: (client.query(RUNS, &[]).await?.iter())
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
        records: (client.query(RECORDS, &[]).await?.iter())
            .map(|r| {
                let n = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0);
                (r.get(0), [n(1), n(2), n(3), n(4)])
            })
            .collect(),
        notifications: (client.query(NOTIFICATIONS, &[]).await?.iter())
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect(),
        last_success: pairs(client.query(LAST_SUCCESS, &[]).await?),
        last_duration: pairs(client.query(LAST_DURATION, &[]).await?),
        held: pairs(client.query(HELD, &[]).await?),
    })
}

const RUNS: &str = "SELECT s.name::text, r.status, count(*) FROM sync_run r \
    JOIN source s ON s.id = r.source_id WHERE NOT r.dry_run GROUP BY 1, 2";

const RECORDS: &str = "SELECT s.name::text, sum(inserted)::bigint, sum(updated)::bigint, \
    sum(deleted)::bigint, sum(quarantined)::bigint FROM sync_run r \
    JOIN source s ON s.id = r.source_id \
    WHERE NOT r.dry_run AND r.status IN ('succeeded', 'succeeded_with_warnings') GROUP BY 1";

const LAST_SUCCESS: &str = "SELECT s.name::text, extract(epoch FROM max(r.finished_at))::float8 \
    FROM sync_run r JOIN source s ON s.id = r.source_id \
    WHERE NOT r.dry_run AND r.status IN ('succeeded', 'succeeded_with_warnings') GROUP BY 1";

const LAST_DURATION: &str = "SELECT DISTINCT ON (r.source_id) s.name::text, \
    extract(epoch FROM r.finished_at - r.started_at)::float8 FROM sync_run r \
    JOIN source s ON s.id = r.source_id WHERE r.finished_at IS NOT NULL \
    ORDER BY r.source_id, r.id DESC";

const NOTIFICATIONS: &str = "SELECT channel, event, \
    CASE WHEN delivered THEN 'delivered' ELSE 'failed' END, count(*) FROM notification \
    GROUP BY 1, 2, 3";

const HELD: &str = "SELECT s.name::text, count(*)::float8 FROM sync_run r \
    JOIN source s ON s.id = r.source_id WHERE r.status = 'held' GROUP BY 1";
