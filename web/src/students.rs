//! `GET /students/{student}/contracts`: every year's contract of one person, their student
//! records linked across sources by INE — for the student themself, a directeur (the
//! contracts in their steps) and the scolarité.

use crate::contracts::{summary, COLUMNS, FROM};
use crate::error::ApiError;
use crate::roles::{User, VISIBLE_SQL};
use crate::Api;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// The person's contracts the caller may see; none: 404.
#[utoipa::path(get, path = "/api/v1/students/{student}/contracts", tag = "people", params(("student" = String, Path, description = "student number")), responses((status = 200, description = "`{items}`: every year's contract of the person, across sources"), (status = 404, description = "none the caller may see")))]
pub async fn contracts(
    State(api): State<Arc<Api>>,
    user: User,
    Path(student): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (all, steps, sources, students) = user.scope();
    let client = api.client().await?;
    // The person: the records of this number, and those sharing an INE with one.
    let sql = format!(
        "SELECT {COLUMNS} {FROM} \
         WHERE {VISIBLE_SQL} AND (k.student = $5 OR EXISTS (SELECT 1 FROM student t \
           JOIN student p ON p.student = $5 AND p.ine = t.ine \
           WHERE t.source_id = k.source_id AND t.student = k.student)) \
         ORDER BY k.year, s.name"
    );
    let rows = client
        .query(&sql, &[&all, &steps, &sources, &students, &student])
        .await
        .map_err(ApiError::unavailable)?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!(
            "no contract of student {student}"
        )));
    }
    let items: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(json!({ "items": items })))
}
