//! The admin API under `/api/v1/`, for operators and their tools: list runs, show one
//! (counts, error, quarantined records), trigger a run of a source now, approve or reject
//! a held run. Every call needs `Authorization: Bearer <token>`, the token coming from
//! `[server] admin_token_env` or `admin_token_file`; without a configured token every
//! call is refused (401), so an admin API is never open by accident.

use super::scheduler;
use crate::config::Config;
use crate::notify::{Notifier, RunEnded, Trigger};
use crate::store::Store;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conpere_core::engine::{EngineError, NoProgress};
use conpere_core::notifications;
use conpere_core::runs::{self, RunSummary};
use conpere_web::auth::same;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the admin handlers share.
pub struct Admin {
    /// The configuration (to build a source's connector when triggered).
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<Store>,
    /// The expected bearer token; `None`: the admin API refuses everything.
    pub token: Option<String>,
    /// Tells a triggered run's failure or hold, like a scheduled one's.
    pub notifier: Arc<Notifier>,
}

/// The token of `[server]`: from the environment variable or the file named there.
pub fn token(config: &Config) -> anyhow::Result<Option<String>> {
    let server = &config.server;
    let token = crate::config::secret_setting(
        "[server] admin_token",
        server.admin_token_env.as_ref(),
        server.admin_token_file.as_ref(),
    )?;
    Ok(token
        .map(|t| t.expose().trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// The `/api/v1` routes.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/approve", post(approve))
        .route("/runs/{id}/reject", post(reject))
        .route("/sources/{name}/run", post(trigger))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&admin),
            authorize,
        ))
        .with_state(admin)
}

/// Refuses calls without the right bearer token.
async fn authorize(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&admin.token, given) {
        (Some(expected), Some(given)) if same(expected.as_bytes(), given.trim().as_bytes()) => {
            next.run(request).await
        }
        (None, _) => {
            refuse("the admin API is disabled: set [server] admin_token_env or admin_token_file")
        }
        _ => refuse("a valid `Authorization: Bearer <token>` header is required"),
    }
}

/// Compares in time independent of where the first difference is.
fn refuse(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response()
}

fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn summary(run: &RunSummary) -> Value {
    json!({
        "id": run.id, "source": run.source, "status": run.status.as_str(), "mode": run.mode,
        "dry_run": run.dry_run, "started_at": run.started_at, "finished_at": run.finished_at,
        "totals": run.totals, "error": run.error, "hold_reason": run.hold_reason,
        "decided_by": run.decided_by,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    source: Option<String>,
    limit: Option<i64>,
}

async fn list(State(admin): State<Arc<Admin>>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    match runs::list(&admin.store.pool, query.source.as_deref(), None, limit).await {
        Ok(list) => Json(Value::Array(list.iter().map(summary).collect())).into_response(),
        Err(error) => failure(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

async fn show(State(admin): State<Arc<Admin>>, Path(id): Path<i64>) -> Response {
    match runs::show(&admin.store.pool, id, 100).await {
        Ok(Some(detail)) => {
            let mut body = summary(&detail.summary);
            body["by_kind"] = json!(detail.by_kind);
            body["quarantine"] = detail
                .quarantine
                .iter()
                .map(|q| {
                    json!({"kind": q.kind, "key": q.key, "reason": q.reason,
                           "location": q.location, "payload": q.payload})
                })
                .collect();
            let told = notifications::of_run(&admin.store.pool, id)
                .await
                .unwrap_or_default();
            body["notifications"] = told
                .iter()
                .map(|n| {
                    json!({"event": n.event, "channel": n.channel, "delivered": n.delivered,
                           "error": n.error})
                })
                .collect();
            Json(body).into_response()
        }
        Ok(None) => failure(StatusCode::NOT_FOUND, format!("no run #{id}")),
        Err(error) => failure(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}

/// Starts a run of the source now (202); its outcome shows in the run list.
async fn trigger(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    let source = match admin.config.source(&name) {
        Ok(source) => source,
        Err(error) => return failure(StatusCode::NOT_FOUND, format!("{error:#}")),
    };
    let connector = match crate::registry().build(&source) {
        Ok(connector) => connector,
        Err(error) => return failure(StatusCode::UNPROCESSABLE_ENTITY, error),
    };
    let (store, notifier) = (Arc::clone(&admin.store), Arc::clone(&admin.notifier));
    let next_run = scheduler::next_run(&admin.config, &source);
    tokio::spawn(async move {
        let ending = scheduler::attempt(&store, &source, connector.as_ref()).await;
        let ended = RunEnded {
            source: &source,
            ending,
            attempts: 1,
            trigger: Trigger::AdminApi,
            next_run,
        };
        notifier.run_ended(ended).await;
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({ "source": name, "started": true })),
    )
        .into_response()
}

async fn approve(State(admin): State<Arc<Admin>>, Path(id): Path<i64>) -> Response {
    let engine = admin.store.engine();
    match engine.approve(id, "admin API", &NoProgress).await {
        Ok(report) => {
            Json(json!({ "run": report.run_id, "status": report.status.as_str() })).into_response()
        }
        Err(error) => decision_failure(error),
    }
}

async fn reject(State(admin): State<Arc<Admin>>, Path(id): Path<i64>) -> Response {
    let engine = admin.store.engine();
    match engine.reject(id, "admin API").await {
        Ok(()) => Json(json!({ "run": id, "status": "rejected" })).into_response(),
        Err(error) => decision_failure(error),
    }
}

fn decision_failure(error: EngineError) -> Response {
    let status = match error {
        EngineError::NotHeld { .. } => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    failure(status, error)
}
