//! `GET /metrics`: Prometheus text, computed from the store at each scrape — so every
//! daemon sharing a store reports the same figures, and a restart loses nothing.
//!
//! * `conpere_runs_total{source,status}`: runs by outcome (dry runs aside);
//! * `conpere_records_total{source,change}`: records inserted, updated, deleted and
//!   quarantined by applied runs;
//! * `conpere_last_success_timestamp_seconds{source}`: when the last applied run ended;
//! * `conpere_last_run_duration_seconds{source}`: how long the last finished run took;
//! * `conpere_held_runs{source}`: runs waiting for a person (`conpere runs approve`);
//! * `conpere_notifications_total{channel,event,outcome}`: notices delivered or not —
//!   alert on `outcome="failed"`: nobody was told of a failure.

use crate::store::Store;
use anyhow::Context;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

/// The metrics text.
pub async fn render(store: &Store) -> anyhow::Result<String> {
    let client = store.pool.get().await.context("connecting to the store")?;
    let query = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .with_context(|| sql.to_string())
        }
    };
    let mut registry = Registry::default();

    let runs = Family::<Labels, Counter>::default();
    for row in query(RUNS).await? {
        let labels = vec![("source".into(), row.get(0)), ("status".into(), row.get(1))];
        runs.get_or_create(&labels)
            .inc_by(row.get::<_, i64>(2) as u64);
    }
    registry.register("conpere_runs", "Runs by source and outcome", runs);

    let records = Family::<Labels, Counter>::default();
    for row in query(RECORDS).await? {
        for (index, change) in ["inserted", "updated", "deleted", "quarantined"]
            .iter()
            .enumerate()
        {
            let labels = vec![
                ("source".into(), row.get(0)),
                ("change".into(), change.to_string()),
            ];
            let value: i64 = row.get::<_, Option<i64>>(index + 1).unwrap_or(0);
            records.get_or_create(&labels).inc_by(value as u64);
        }
    }
    registry.register(
        "conpere_records",
        "Records changed by applied runs",
        records,
    );

    let notices = Family::<Labels, Counter>::default();
    for row in query(NOTIFICATIONS).await? {
        let labels = vec![
            ("channel".into(), row.get(0)),
            ("event".into(), row.get(1)),
            ("outcome".into(), row.get(2)),
        ];
        notices
            .get_or_create(&labels)
            .inc_by(row.get::<_, i64>(3) as u64);
    }
    registry.register(
        "conpere_notifications",
        "Notifications by channel, event and outcome (delivered or failed)",
        notices,
    );

    let gauges: [(&str, &str, &'static str); 3] = [
        (
            "conpere_last_success_timestamp_seconds",
            "When the last applied run ended (Unix time)",
            LAST_SUCCESS,
        ),
        (
            "conpere_last_run_duration_seconds",
            "How long the last finished run took",
            LAST_DURATION,
        ),
        (
            "conpere_held_runs",
            "Runs held for a person's decision",
            HELD,
        ),
    ];
    for (name, help, sql) in gauges {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for row in query(sql).await? {
            let labels = vec![("source".to_string(), row.get::<_, String>(0))];
            family.get_or_create(&labels).set(row.get::<_, f64>(1));
        }
        registry.register(name, help, family);
    }
    let mut text = String::new();
    encode(&mut text, &registry).context("encoding the metrics")?;
    Ok(text)
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
