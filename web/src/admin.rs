//! The admin API under `/api/v1/`, for operators and their tools: list runs, show one
//! (counts, error, quarantined records), start a run of a source now, approve or reject a
//! held run. Every call needs `Authorization: Bearer <token>`; without a configured token
//! every call is refused (401), so an admin API is never open by accident.
//!
//! Starting a run needs the SIS connectors, which this crate does not know: it goes
//! through [`Operator`], which the binary implements.

use crate::audit;
use crate::auth::same;
use crate::error::ApiError;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{HeaderValue, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conpere_core::engine::{Engine, EngineError, NoProgress};
use conpere_core::notifications;
use conpere_core::runs::{self, RunSummary};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the binary does for the admin API: what needs the sources and their connectors.
#[async_trait::async_trait]
pub trait Operator: Send + Sync {
    /// Starts a run of the source named `source` in the background, once it is known that
    /// it can start (the source exists and is usable, the database answers, no run of it
    /// is in progress); its outcome shows in the run list (and is notified like a
    /// scheduled run's). A refusal starts and records nothing.
    async fn start_run(&self, source: &str) -> Result<(), StartError>;

    /// The sync engine on the store, with what an applied run triggers (the contracts'
    /// refresh), to decide on a held run.
    fn engine(&self) -> Engine;
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No source of that name is configured (404).
    #[error("{0}")]
    UnknownSource(String),
    /// The source's configuration cannot build its connector (422).
    #[error("{0}")]
    Unusable(String),
    /// A run of the source is in progress (409).
    #[error("{0}")]
    Busy(String),
    /// The store does not answer (503; the details go to the log).
    #[error("{0}")]
    Unavailable(String),
}

/// What the admin handlers share.
pub struct Admin {
    /// The store's pool.
    pub pool: deadpool_postgres::Pool,
    /// The expected bearer token; `None`: the admin API refuses everything.
    pub token: Option<String>,
    /// Who the token stands for: the caller in the audit log, `decided_by` of the runs
    /// it decides on.
    pub name: String,
    /// Starts runs and decides on held ones.
    pub operator: Arc<dyn Operator>,
}

/// The admin routes, to nest under `/api/v1`.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/approve", post(approve))
        .route("/runs/{id}/reject", post(reject))
        .route("/sources/{name}/run", post(start))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&admin),
            authorize,
        ))
        .with_state(admin)
}

/// Refuses calls without the right bearer token (compared in constant time; the scheme
/// `Bearer` in any case), with `WWW-Authenticate: Bearer` and an audit line.
async fn authorize(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let given = crate::auth::bearer(request.headers());
    let why = match (&admin.token, given) {
        (Some(expected), Some(given)) if same(expected.as_bytes(), given.as_bytes()) => {
            return next.run(request).await
        }
        (None, _) => "the admin API is disabled: set [server] admin_token_env or admin_token_file",
        (Some(_), None) => "a valid `Authorization: Bearer <token>` header is required",
        (Some(_), Some(_)) => "the bearer token is not the admin token",
    };
    audit::refused(request.method().as_str(), request.uri().path(), why);
    let mut response = ApiError::unauthenticated(why).into_response();
    let challenge = HeaderValue::from_static("Bearer realm=\"conpere admin API\"");
    response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    response
}

fn summary(run: &RunSummary) -> Value {
    json!({
        "id": run.id, "source": run.source, "status": run.status.as_str(), "mode": run.mode,
        "dry_run": run.dry_run, "started_at": run.started_at, "finished_at": run.finished_at,
        "totals": run.totals, "error": run.error, "hold_reason": run.hold_reason,
        "decided_by": run.decided_by,
    })
}

/// `GET /runs`'s query.
#[derive(Deserialize)]
pub struct ListQuery {
    /// Only this source's runs.
    pub source: Option<String>,
    /// How many (50 by default, at most 1000).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "admin", params(("source" = Option<String>, Query, description = "one source's runs"), ("limit" = Option<i64>, Query, description = "how many, newest first (50; at most 1000)")), responses((status = 200, description = "runs, newest first: `[{id, source, status, mode, dry_run, started_at, finished_at, totals, error, hold_reason, decided_by}]`"), (status = 401, description = "no valid bearer token")))]
pub async fn list(
    State(admin): State<Arc<Admin>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let list = runs::list(&admin.pool, query.source.as_deref(), None, limit)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(Value::Array(list.iter().map(summary).collect())))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "admin", params(("id" = i64, Path, description = "the run")), responses((status = 200, description = "the run, its counts by kind, its first 100 quarantined records and its notifications"), (status = 401, description = "no valid bearer token"), (status = 404, description = "no such run")))]
pub async fn show(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let detail = runs::show(&admin.pool, id, 100)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no run #{id}")))?;
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
    let told = notifications::of_run(&admin.pool, id)
        .await
        .map_err(ApiError::unavailable)?;
    body["notifications"] = told
        .iter()
        .map(|n| {
            json!({"event": n.event, "channel": n.channel, "delivered": n.delivered,
                   "error": n.error})
        })
        .collect();
    Ok(Json(body))
}

/// Starts a run of the source now (202); its outcome shows in the run list.
#[utoipa::path(post, path = "/api/v1/sources/{name}/run", tag = "admin", params(("name" = String, Path, description = "the source, as configured")), responses((status = 202, description = "started: its outcome shows in the run list"), (status = 401, description = "no valid bearer token"), (status = 404, description = "no such source"), (status = 409, description = "a run of the source is in progress: nothing started"), (status = 422, description = "the source's configuration cannot be used"), (status = 503, description = "the database does not answer: nothing started")))]
pub async fn start(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let started = admin.operator.start_run(&name).await;
    let outcome = match &started {
        Ok(()) => "ok",
        Err(StartError::UnknownSource(_)) => "not_found",
        Err(StartError::Unusable(_)) => "invalid",
        Err(StartError::Busy(_)) => "busy",
        Err(StartError::Unavailable(_)) => "unavailable",
    };
    audit::action(&admin.name, "start_run", &format!("source {name}"), outcome);
    started.map_err(|error| match error {
        StartError::UnknownSource(message) => ApiError::not_found(message),
        StartError::Unusable(message) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
        StartError::Busy(message) => ApiError::new(StatusCode::CONFLICT, "busy", message),
        StartError::Unavailable(message) => ApiError::unavailable(message),
    })?;
    let body = Json(json!({ "source": name, "started": true }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/approve", tag = "admin", params(("id" = i64, Path, description = "the held run")), responses((status = 200, description = "applied: `{run, status}`"), (status = 401, description = "no valid bearer token"), (status = 404, description = "no such run"), (status = 409, description = "not held, or superseded by a newer applied run")))]
pub async fn approve(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let engine = admin.operator.engine();
    let decided = engine.approve(id, &admin.name, &NoProgress).await;
    let report = audited(&admin, "approve", id, decided)?;
    Ok(Json(
        json!({ "run": report.run_id, "status": report.status.as_str() }),
    ))
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/reject", tag = "admin", params(("id" = i64, Path, description = "the held run")), responses((status = 200, description = "rejected: nothing of it applied"), (status = 401, description = "no valid bearer token"), (status = 404, description = "no such run"), (status = 409, description = "not held")))]
pub async fn reject(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let engine = admin.operator.engine();
    let decided = engine.reject(id, &admin.name).await;
    audited(&admin, "reject", id, decided)?;
    Ok(Json(json!({ "run": id, "status": "rejected" })))
}

/// A decision on run `id`, written to the audit log, its error as the API says it.
fn audited<T>(
    admin: &Admin,
    action: &str,
    id: i64,
    decided: Result<T, EngineError>,
) -> Result<T, ApiError> {
    let on = format!("run #{id}");
    audit::outcome(&admin.name, action, &on, decided.map_err(decision_failure))
}

/// A run that is not held, or superseded, cannot be decided on (409); an unknown one is
/// 404; anything else is the store's.
fn decision_failure(error: EngineError) -> ApiError {
    match error {
        EngineError::NotHeld { .. } => {
            ApiError::new(StatusCode::CONFLICT, "not_held", error.to_string())
        }
        EngineError::Superseded { .. } => {
            ApiError::new(StatusCode::CONFLICT, "superseded", error.to_string())
        }
        EngineError::NoSuchRun(_) => ApiError::not_found(error.to_string()),
        EngineError::Busy { .. } => ApiError::new(StatusCode::CONFLICT, "busy", error.to_string()),
        _ => ApiError::unavailable(error),
    }
}
