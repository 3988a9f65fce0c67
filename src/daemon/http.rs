//! The daemon's HTTP endpoints: `GET /health` says the process answers; `GET /ready` that
//! it can do its job (the database answers and its schema is current), for a load
//! balancer or an orchestrator; `GET /metrics` the Prometheus text ([`super::metrics`]);
//! `/api/v1/…` the admin API ([`super::admin`]).

use crate::store::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::sync::watch;

/// Serves until `stopped` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    admin: Arc<super::admin::Admin>,
    api: Option<Arc<conpere_web::Api>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut v1 = super::admin::router(admin);
    if let Some(api) = api {
        v1 = v1.merge(conpere_web::router(api));
    }
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(store)
        .nest("/api/v1", v1);
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the HTTP endpoints stopped");
    }
}

async fn metrics(State(store): State<Arc<Store>>) -> (StatusCode, String) {
    match super::metrics::render(&store).await {
        Ok(text) => (StatusCode::OK, text),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("# the store does not answer: {error:#}\n"),
        ),
    }
}

async fn ready(State(store): State<Arc<Store>>) -> (StatusCode, String) {
    match conpere_core::db::status(&store.pool).await {
        Ok(all) if all.iter().all(|m| m.applied) => (StatusCode::OK, "ready\n".into()),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the schema is not current: run `conpere db migrate`\n".into(),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database does not answer: {error}\n"),
        ),
    }
}
