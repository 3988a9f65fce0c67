//! A contract's past, for whoever may see the contract: its versions, the changes between
//! two, and its evidence chain.

use crate::contracts::visible;
use crate::error::ApiError;
use crate::roles::User;
use crate::Api;
use axum::extract::{Path, Query, State};
use axum::Json;
use conpere_contracts::diff;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /contracts/{id}/versions`: every version, oldest first.
#[utoipa::path(get, path = "/api/v1/contracts/{id}/versions", tag = "contracts", params(("id" = i64, Path, description = "contract id")), responses((status = 200, description = "every version `{version, hash, state, created_at, reason, content}`"), (status = 404, description = "no such contract the caller may see")))]
pub async fn versions(
    State(api): State<Arc<Api>>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    visible(&api, &user, id).await?;
    Ok(Json(Value::Array(read(&api, id, None).await?)))
}

/// `GET /contracts/{id}/versions/{n}`.
#[utoipa::path(get, path = "/api/v1/contracts/{id}/versions/{n}", tag = "contracts", params(("id" = i64, Path, description = "contract id"), ("n" = i32, Path, description = "version number")), responses((status = 200, description = "one version"), (status = 404, description = "no such contract or version")))]
pub async fn version(
    State(api): State<Arc<Api>>,
    user: User,
    Path((id, n)): Path<(i64, i32)>,
) -> Result<Json<Value>, ApiError> {
    visible(&api, &user, id).await?;
    let mut found = read(&api, id, Some(n)).await?;
    found
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("contract #{id} has no version {n}")))
}

/// Versions as DESIGN.md shows them: `{version, hash, state, created_at, reason?,
/// content}`, the state being the contract's for its current version, `in_force`,
/// `withdrawn` or `superseded` for the others.
async fn read(api: &Api, id: i64, only: Option<i32>) -> Result<Vec<Value>, ApiError> {
    let client = api.client().await?;
    let rows = client
        .query(
            "SELECT v.version, v.hash, CASE WHEN v.version = k.version THEN k.state \
                      WHEN v.version = k.in_force THEN 'in_force' \
                      WHEN EXISTS (SELECT 1 FROM contract_event e WHERE e.contract_id = k.id \
                             AND e.action = 'withdraw' AND e.version = v.version) THEN 'withdrawn' \
                      ELSE 'superseded' END, \
                    v.created_at, v.reason, v.content \
             FROM contract_version v JOIN contract k ON k.id = v.contract_id \
             WHERE v.contract_id = $1 AND ($2::int IS NULL OR v.version = $2) ORDER BY v.version",
            &[&id, &only],
        )
        .await
        .map_err(ApiError::unavailable)?;
    Ok(rows
        .iter()
        .map(|r| {
            let at: chrono::DateTime<chrono::Utc> = r.get(3);
            json!({
                "version": r.get::<_, i32>(0),
                "hash": r.get::<_, String>(1),
                "state": r.get::<_, String>(2),
                "created_at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "reason": r.get::<_, Option<String>>(4),
                "content": serde_json::from_str::<Value>(r.get(5)).unwrap_or(Value::Null),
            })
        })
        .collect())
}

/// `GET /contracts/{id}/diff?from&to`.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: Option<i32>,
    to: Option<i32>,
}

/// The readable changes between two versions (default: the current one and the one
/// before).
#[utoipa::path(get, path = "/api/v1/contracts/{id}/diff", tag = "contracts", params(("id" = i64, Path, description = "contract id"), ("from" = Option<i32>, Query, description = "earlier version"), ("to" = Option<i32>, Query, description = "later version")), responses((status = 200, description = "elements, measures and statuses added and removed, ECTS per period before and after, the reason"), (status = 404, description = "no such contract the caller may see")))]
pub async fn changes(
    State(api): State<Arc<Api>>,
    user: User,
    Path(id): Path<i64>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let seen = visible(&api, &user, id).await?;
    let current = seen.summary["version"].as_i64().unwrap_or(1) as i32;
    let to = query.to.unwrap_or(current);
    let from = query.from.unwrap_or(to - 1).max(1);
    let client = api.client().await?;
    let changes = diff::diff(&client, id, from, to).await?;
    Ok(Json(serde_json::to_value(changes).unwrap_or(Value::Null)))
}

/// `GET /contracts/{id}/evidence`: the chain, each event with its hash and the previous.
#[utoipa::path(get, path = "/api/v1/contracts/{id}/evidence", tag = "contracts", params(("id" = i64, Path, description = "contract id")), responses((status = 200, description = "the hash-chained events"), (status = 404, description = "no such contract the caller may see")))]
pub async fn evidence(
    State(api): State<Arc<Api>>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    visible(&api, &user, id).await?;
    let client = api.client().await?;
    let rows = client
        .query(
            "SELECT event, prev_hash, hash FROM contract_event WHERE contract_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(ApiError::unavailable)?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut event: Value = serde_json::from_str(r.get(0)).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut event {
                fields.insert("prev_hash".into(), r.get::<_, String>(1).into());
                fields.insert("hash".into(), r.get::<_, String>(2).into());
            }
            event
        })
        .collect();
    Ok(Json(Value::Array(events)))
}
