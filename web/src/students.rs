//! `GET /students/{student}/contracts`: every year's contract of one person, their student
//! records linked across sources by INE — for the student themself, a directeur (the
//! contracts in their steps) and the scolarité.

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
    let rows = client
        .query(
            &format!(
                "WITH person AS ( \
                   SELECT source_id, student, ine FROM student WHERE student = $5 \
                   UNION SELECT s.source_id, s.student, s.ine FROM student s \
                   JOIN student p ON p.student = $5 AND p.ine IS NOT NULL AND s.ine = p.ine) \
                 SELECT k.id, src.name, k.year, k.student, k.state, k.flags, k.version, k.hash \
                 FROM contract k JOIN source src ON src.id = k.source_id \
                 JOIN (SELECT DISTINCT source_id, student FROM person) p \
                   ON p.source_id = k.source_id AND p.student = k.student \
                 WHERE {VISIBLE_SQL} ORDER BY k.year, src.name"
            ),
            &[&all, &steps, &sources, &students, &student],
        )
        .await
        .map_err(ApiError::unavailable)?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!(
            "no contract of student {student}"
        )));
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i64>(0),
                "source": r.get::<_, String>(1),
                "year": r.get::<_, i32>(2),
                "student": r.get::<_, String>(3),
                "state": r.get::<_, String>(4),
                "flags": r.get::<_, Vec<String>>(5),
                "version": r.get::<_, i32>(6),
                "version_hash": r.get::<_, String>(7),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
