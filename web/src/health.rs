//! The operations endpoints, for a load balancer, an orchestrator and Prometheus:
//! `GET /health` says the process answers; `GET /ready` that it can do its job (the
//! database answers and its schema is current); `GET /metrics` the Prometheus text of the
//! figures the store gives at each scrape (`conpere_core::metrics`, where the SQL is) — so
//! every daemon sharing a store reports the same figures, and a restart loses nothing.
//! None of them needs a login, so none of them says more than a status: why the database
//! does not answer goes to the log.
//!
//! * `conpere_runs_total{source,status}`: runs by outcome (dry runs aside);
//! * `conpere_records_total{source,change}`: records inserted, updated, deleted and
//!   quarantined by applied runs;
//! * `conpere_last_success_timestamp_seconds{source}`: when the last applied run ended;
//! * `conpere_last_run_duration_seconds{source}`: how long the last finished run took;
//! * `conpere_held_runs{source}`: runs waiting for a person (`conpere runs approve`);
//! * `conpere_notifications_total{channel,event,outcome}`: notices delivered or not —
//!   alert on `outcome="failed"`: nobody was told of a failure.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use deadpool_postgres::Pool;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `/health`, `/ready` and `/metrics`, on the store's pool.
pub fn routes(pool: Pool) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(pool)
}

async fn ready(State(pool): State<Pool>) -> (StatusCode, &'static str) {
    match conpere_core::db::status(&pool).await {
        Ok(all) if all.iter().all(|m| m.applied) => (StatusCode::OK, "ready\n"),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the schema is not current: run `conpere db migrate`\n",
        ),
        Err(error) => {
            tracing::error!(%error, "/ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer (see the log)\n",
            )
        }
    }
}

async fn metrics(State(pool): State<Pool>) -> (StatusCode, String) {
    match render(&pool).await {
        Ok(text) => (StatusCode::OK, text),
        Err(error) => {
            tracing::error!(%error, "/metrics: the store's figures cannot be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "# the store does not answer (see the log)\n".into(),
            )
        }
    }
}

type Labels = Vec<(String, String)>;

/// The metrics text.
pub async fn render(pool: &Pool) -> Result<String, String> {
    let figures = conpere_core::metrics::read(pool)
        .await
        .map_err(|e| format!("reading the store's figures: {e}"))?;
    let mut registry = Registry::default();

    let runs = Family::<Labels, Counter>::default();
    for (source, status, count) in figures.runs {
        let labels = vec![("source".into(), source), ("status".into(), status)];
        runs.get_or_create(&labels).inc_by(count as u64);
    }
    registry.register("conpere_runs", "Runs by source and outcome", runs);

    let records = Family::<Labels, Counter>::default();
    for (source, counts) in figures.records {
        for (change, value) in ["inserted", "updated", "deleted", "quarantined"]
            .iter()
            .zip(counts)
        {
            let labels = vec![
                ("source".into(), source.clone()),
                ("change".into(), change.to_string()),
            ];
            records.get_or_create(&labels).inc_by(value as u64);
        }
    }
    registry.register(
        "conpere_records",
        "Records changed by applied runs",
        records,
    );

    let notices = Family::<Labels, Counter>::default();
    for (channel, event, outcome, count) in figures.notifications {
        let labels = vec![
            ("channel".into(), channel),
            ("event".into(), event),
            ("outcome".into(), outcome),
        ];
        notices.get_or_create(&labels).inc_by(count as u64);
    }
    registry.register(
        "conpere_notifications",
        "Notifications by channel, event and outcome (delivered or failed)",
        notices,
    );

    let gauges = [
        (
            "conpere_last_success_timestamp_seconds",
            "When the last applied run ended (Unix time)",
            figures.last_success,
        ),
        (
            "conpere_last_run_duration_seconds",
            "How long the last finished run took",
            figures.last_duration,
        ),
        (
            "conpere_held_runs",
            "Runs held for a person's decision",
            figures.held,
        ),
    ];
    for (name, help, values) in gauges {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (source, value) in values {
            family
                .get_or_create(&vec![("source".to_string(), source)])
                .set(value);
        }
        registry.register(name, help, family);
    }
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| format!("encoding the metrics: {e}"))?;
    Ok(text)
}
