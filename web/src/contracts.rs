//! The contract routes of `/api/v1` (DESIGN.md's table), each scoped to what the caller
//! may see: a contract outside it is 404, never 403, so that nothing is revealed.

use crate::audit;
use crate::error::ApiError;
use crate::page::{PageOrder, PageRequest};
use crate::roles::{User, VISIBLE_SQL};
use crate::Api;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use conpere_contracts::evidence::{Actor, Role};
use conpere_contracts::lifecycle::{self, Action, Said};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// The routes, relative to `/api/v1`.
pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/me", get(me))
        .route("/contracts", get(list))
        .route("/contracts/{id}", get(one))
        .route("/contracts/validate", post(crate::changes::validate_all))
        .route("/contracts/{id}/versions", get(crate::history::versions))
        .route("/contracts/{id}/versions/{n}", get(crate::history::version))
        .route("/contracts/{id}/diff", get(crate::history::changes))
        .route("/contracts/{id}/evidence", get(crate::history::evidence))
        .route("/contracts/{id}/draft", put(crate::changes::draft))
        .route("/contracts/{id}/amendments", post(crate::changes::amend))
        .route("/contracts/{id}/{action}", post(act))
        .route(
            "/students/{student}/contracts",
            get(crate::students::contracts),
        )
        .route("/measures", get(measures))
        .route("/verify/{hash}", get(verify_hash))
        .route("/openapi.json", get(crate::openapi::document))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "people", responses((status = 200, description = "the caller: `{id, roles, students, steps}`"), (status = 401, description = "not authenticated"), (status = 403, description = "nobody known")))]
pub async fn me(user: User) -> Json<Value> {
    let students: Vec<Value> = (user.students.iter())
        .map(|(source, student)| json!({ "source_id": source, "student": student }))
        .collect();
    Json(json!({
        "id": user.login,
        "roles": user.roles(),
        "students": students,
        "steps": user.steps,
    }))
}

/// `GET /contracts` filters and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub(crate) year: Option<i32>,
    pub(crate) step: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) flagged: Option<bool>,
    pub(crate) flag: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) order: Option<String>,
    pub(crate) q: Option<String>,
    pub(crate) cursor: Option<String>,
    pub(crate) limit: Option<i64>,
}

/// The columns of a contract summary ([`summary`] reads them).
pub(crate) const COLUMNS: &str = "k.id, s.name, k.year, k.student, k.state, k.flags, k.version, \
    k.hash, k.in_force, k.amendment_of";

/// The table a summary is read from.
pub(crate) const FROM: &str = "FROM contract k JOIN source s ON s.id = k.source_id";

/// A contract summary from a row of [`COLUMNS`].
pub(crate) fn summary(row: &tokio_postgres::Row) -> Value {
    json!({
        "id": row.get::<_, i64>(0),
        "source": row.get::<_, String>(1),
        "year": row.get::<_, i32>(2),
        "student": row.get::<_, String>(3),
        "state": row.get::<_, String>(4),
        "flags": row.get::<_, Vec<String>>(5),
        "version": row.get::<_, i32>(6),
        "version_hash": row.get::<_, String>(7),
        "in_force": row.get::<_, Option<i32>>(8),
        "amendment_of": row.get::<_, Option<i32>>(9),
    })
}

/// The query of a page of contract summaries: `$1..$4` the caller's scope
/// ([`User::scope`]), `$5` the id the page starts after, `$6` year, `$7` step, `$8` state,
/// `$9` flagged, `$10` the search, `$11` the page size plus one (to tell whether more
/// follow), `$12` a flag, `$13` a special status; in [`PageOrder::SpecificFirst`], `$14`
/// whether the page starts among the standard contracts. Public so that `conpere bench`
/// times the very query the API runs.
pub fn page_sql(order: PageOrder) -> String {
    let (after, order_by) = match order {
        PageOrder::Id => ("k.id > $5", "k.id"),
        PageOrder::SpecificFirst => (
            "(cardinality(k.flags) = 0, k.id) > ($14::bool, $5)",
            "cardinality(k.flags) = 0, k.id",
        ),
    };
    format!(
        "SELECT {COLUMNS} {FROM} WHERE {VISIBLE_SQL} AND {after} \
           AND ($6::int IS NULL OR k.year = $6) \
           AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM registration r \
                WHERE r.source_id = k.source_id AND r.year = k.year \
                  AND r.student = k.student AND r.step = $7)) \
           AND ($8::text IS NULL OR k.state = $8) \
           AND ($9::bool IS NULL OR (cardinality(k.flags) > 0) = $9) \
           AND ($10::text IS NULL OR k.student LIKE $10 || '%' OR EXISTS (SELECT 1 FROM student t \
                WHERE t.source_id = k.source_id AND t.student = k.student \
                  AND lower(t.family_name) LIKE '%' || lower($10) || '%')) \
           AND ($12::text IS NULL OR $12 = ANY (k.flags)) \
           AND ($13::text IS NULL OR EXISTS (SELECT 1 FROM registration r \
                WHERE r.source_id = k.source_id AND r.year = k.year \
                  AND r.student = k.student AND $13 = ANY (r.special_statuses))) \
         ORDER BY {order_by} LIMIT $11"
    )
}

/// The query of one contract the caller may see: its summary, its current content, and
/// whether the caller is its student or directs one of its steps; `$1..$4` the caller's
/// scope ([`User::scope`]), `$5` the id. Public for `conpere bench`, as [`page_sql`].
pub fn contract_sql() -> String {
    format!(
        "SELECT {COLUMNS}, v.content, \
           EXISTS (SELECT 1 FROM unnest($3::int[], $4::text[]) AS me (source_id, student) \
             WHERE me.source_id = k.source_id AND me.student = k.student), \
           EXISTS (SELECT 1 FROM registration r WHERE r.source_id = k.source_id \
             AND r.year = k.year AND r.student = k.student AND r.step = ANY($2::text[])) \
         {FROM} JOIN contract_version v ON v.contract_id = k.id AND v.version = k.version \
         WHERE {VISIBLE_SQL} AND k.id = $5"
    )
}

/// A page of the contracts the caller may see, by id: `next_cursor` continues after the
/// last one, so a page never repeats nor skips a contract inserted meanwhile.
#[utoipa::path(get, path = "/api/v1/contracts", tag = "contracts", params(("year" = Option<i32>, Query, description = "academic year"), ("step" = Option<String>, Query, description = "with a section of this step"), ("state" = Option<String>, Query, description = "draft, proposed, signed, validated, refused, closed"), ("flagged" = Option<bool>, Query, description = "specific (true) or standard (false)"), ("flag" = Option<String>, Query, description = "with this flag"), ("status" = Option<String>, Query, description = "with this special status"), ("order" = Option<String>, Query, description = "`id` (default) or `specific_first`"), ("q" = Option<String>, Query, description = "student number prefix or family name"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"), ("limit" = Option<i64>, Query, description = "page size, 1 to 200 (50)")), responses((status = 200, description = "`{items, next_cursor}`: contract summaries the caller may see"), (status = 401, description = "not authenticated"), (status = 422, description = "a bad cursor")))]
pub async fn list(
    State(api): State<Arc<Api>>,
    user: User,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let order = match query.order.as_deref() {
        None | Some("id") => PageOrder::Id,
        Some("specific_first") => PageOrder::SpecificFirst,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("order={other}: id or specific_first"),
            ))
        }
    };
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit, order)?;
    let fetched = read_page(&api, &user, &query, page).await?;
    Ok(Json(page.answer(fetched)))
}

/// The summaries of a page of the contracts `user` may see, filtered by `query` (one
/// more than the page, for [`PageRequest::answer`]): the API's list and the pages' share it.
pub(crate) async fn read_page(
    api: &Api,
    user: &User,
    query: &ListQuery,
    page: PageRequest,
) -> Result<Vec<Value>, ApiError> {
    let (all, steps, sources, students) = user.scope();
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let fetch = page.fetch();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &all,
        &steps,
        &sources,
        &students,
        &page.after,
        &query.year,
        &query.step,
        &query.state,
        &query.flagged,
        &q,
        &fetch,
        &query.flag,
        &query.status,
    ];
    let after_standard = page.after_standard.unwrap_or(false);
    if page.order == PageOrder::SpecificFirst {
        params.push(&after_standard);
    }
    let client = api.client().await?;
    let rows = client
        .query(&page_sql(page.order), &params)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(rows.iter().map(summary).collect())
}

/// A contract the caller may see, with what the caller is to it.
pub(crate) struct Seen {
    /// Its summary, as listed.
    pub summary: Value,
    /// Its current version's content.
    pub content: Value,
    /// The caller is its student.
    pub is_student: bool,
    /// The caller directs one of its steps.
    pub is_directeur: bool,
}

/// The contract `id` if the caller may see it (else 404), in one query: its summary,
/// its current content, and what the caller is to it.
pub(crate) async fn visible(api: &Api, user: &User, id: i64) -> Result<Seen, ApiError> {
    let (all, steps, sources, students) = user.scope();
    let client = api.client().await?;
    let sql = contract_sql();
    let row = client
        .query_opt(&sql, &[&all, &steps, &sources, &students, &id])
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no contract #{id}")))?;
    Ok(Seen {
        summary: summary(&row),
        content: serde_json::from_str(row.get::<_, &str>(10)).unwrap_or(Value::Null),
        is_student: row.get(11),
        is_directeur: row.get(12),
    })
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}", tag = "contracts", params(("id" = i64, Path, description = "contract id")), responses((status = 200, description = "`{id, year, student, state, version, version_hash, in_force, sections, special_statuses, flags, measures, objectives, amendment_of}`"), (status = 404, description = "no such contract the caller may see")))]
pub async fn one(
    State(api): State<Arc<Api>>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let Seen {
        summary: mut contract,
        content,
        ..
    } = visible(&api, &user, id).await?;
    let fields = contract.as_object_mut().expect("an object");
    for field in ["sections", "special_statuses", "measures", "objectives"] {
        fields.insert(field.into(), content[field].clone());
    }
    Ok(Json(contract))
}

/// `POST /contracts/{id}/{propose|sign|validate|refuse}`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The hash of the version the person saw.
    pub(crate) version_hash: String,
    /// Why (required to refuse).
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// The consent text shown to the student (required to sign).
    #[serde(default)]
    pub(crate) consent_text: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/{action}", tag = "lifecycle", params(("id" = i64, Path, description = "contract id"), ("action" = String, Path, description = "propose, sign, validate or refuse")), request_body = ActionBody, responses((status = 200, description = "the contract's new head"), (status = 403, description = "the caller may not take this action"), (status = 404, description = "no such contract the caller may see"), (status = 409, description = "a stale hash (`current_hash`) or the wrong state (`state`, `allowed`)"), (status = 422, description = "a malformed body, a missing reason or consent text")))]
pub async fn act(
    State(api): State<Arc<Api>>,
    user: User,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let action = match action.as_str() {
        "propose" => Action::Propose,
        "sign" => Action::Sign,
        "validate" => Action::Validate,
        "refuse" => Action::Refuse,
        _ => return Err(ApiError::not_found(format!("no action `{action}`"))),
    };
    let body = body_of(body);
    let head = match body {
        Ok(body) => take(&api, &user, &headers, id, action, &body).await?,
        Err(refused) => audit::outcome(
            &user.login,
            action.as_str(),
            &format!("contract #{id}"),
            Err(refused),
        )?,
    };
    Ok(head_json(&head))
}

/// `user` takes `action` on contract `id` as `body` says, audited: the API's actions and
/// the pages' forms share it.
pub(crate) async fn take(
    api: &Api,
    user: &User,
    headers: &HeaderMap,
    id: i64,
    action: Action,
    body: &ActionBody,
) -> Result<lifecycle::Head, ApiError> {
    let taken = async {
        let seen = visible(api, user, id).await?;
        let role = role_for(user, &seen, action)?;
        let actor = actor(user, role, headers);
        let said = Said {
            seen_hash: &body.version_hash,
            reason: body.reason.as_deref(),
            consent_text: body.consent_text.as_deref(),
            // A directeur validates the sections in their steps (a double licence has two).
            for_steps: (role == Role::Directeur).then_some(user.steps.as_slice()),
        };
        let mut client = api.client().await?;
        Ok(lifecycle::act(&mut client, id, action, &actor, said).await?)
    };
    let on = format!("contract #{id}");
    audit::outcome(&user.login, action.as_str(), &on, taken.await)
}

/// The role `user` takes `action` in on a contract: its student signs and may refuse;
/// a directeur of one of its steps (or an administrator) proposes, validates, refuses.
fn role_for(user: &User, seen: &Seen, action: Action) -> Result<Role, ApiError> {
    match action {
        Action::Sign | Action::Refuse if seen.is_student => Ok(Role::Student),
        Action::Propose | Action::Validate | Action::Refuse if seen.is_directeur => {
            Ok(Role::Directeur)
        }
        Action::Propose | Action::Validate | Action::Refuse if user.admin => Ok(Role::Admin),
        _ => Err(ApiError::forbidden(format!(
            "{} may not {} this contract",
            user.login,
            action.as_str()
        ))),
    }
}

/// The role a directeur (of one of the contract's steps) or an administrator edits in.
pub(crate) fn editor_role(user: &User, seen: &Seen, what: &str) -> Result<Role, ApiError> {
    match (seen.is_directeur, user.admin) {
        (true, _) => Ok(Role::Directeur),
        (false, true) => Ok(Role::Admin),
        _ => Err(ApiError::forbidden(format!(
            "{} may not {what} this contract",
            user.login
        ))),
    }
}

/// The actor of a request: the login, the header mode, the client's User-Agent.
pub(crate) fn actor(user: &User, role: Role, headers: &HeaderMap) -> Actor {
    Actor {
        id: user.login.clone(),
        role,
        auth: user.auth,
        idp: user.idp.clone(),
        user_agent: (headers.get("user-agent"))
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(200).collect()),
    }
}

/// A JSON body, or 422 naming what is wrong with it.
pub(crate) fn body_of<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a request body is at most {} bytes", crate::MAX_BODY),
        ),
        _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.body_text()),
    })
}

pub(crate) fn head_json(head: &lifecycle::Head) -> Json<Value> {
    Json(json!({
        "id": head.id,
        "state": head.state,
        "version": head.version,
        "version_hash": head.hash,
        "in_force": head.in_force,
        "amendment_of": head.amendment_of,
        "awaiting": head.awaiting,
    }))
}

#[utoipa::path(get, path = "/api/v1/measures", tag = "catalogue", responses((status = 200, description = "the measures catalogue")))]
pub async fn measures(State(api): State<Arc<Api>>, _user: User) -> Json<Value> {
    Json(serde_json::to_value(&api.catalogue).unwrap_or(Value::Null))
}

/// Whether a version with this hash exists: its contract's year and state, nothing
/// personal. No login needed (a printed contract carries its hash).
#[utoipa::path(get, path = "/api/v1/verify/{hash}", tag = "public", params(("hash" = String, Path, description = "sha256:<hex> of a version")), responses((status = 200, description = "`{exists, year?, state?, in_force?}`, nothing personal; no login")))]
pub async fn verify_hash(
    State(api): State<Arc<Api>>,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let client = api.client().await?;
    let row = client
        .query_opt(
            "SELECT k.year, k.state, v.version, k.in_force = v.version FROM contract_version v \
             JOIN contract k ON k.id = v.contract_id WHERE v.hash = $1 LIMIT 1",
            &[&hash],
        )
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(match row {
        Some(r) => json!({
            "exists": true,
            "year": r.get::<_, i32>(0),
            "state": r.get::<_, String>(1),
            "in_force": r.get::<_, Option<bool>>(3).unwrap_or(false),
        }),
        None => json!({ "exists": false }),
    }))
}
