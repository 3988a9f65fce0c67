//! Changes people make to contracts over HTTP: a draft's measures and objectives, an
//! amendment opened, and bulk validation — each the domain's function, with the caller's
//! role checked against the contract.

use crate::audit;
use crate::contracts::{actor, body_of, editor_role, head_json, visible};
use crate::error::ApiError;
use crate::roles::User;
use crate::Api;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use conpere_contracts::bulk::{self, BulkValidation, Seen, Selection};
use conpere_contracts::evidence::Role;
use conpere_contracts::lifecycle::{self, Amendment, MeasureInput};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// `PUT /contracts/{id}/draft`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    /// Catalogue measures: `{code, details?}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    measures: Vec<MeasureInput>,
    /// Free-text objectives.
    #[serde(default)]
    objectives: Vec<String>,
}

/// Sets the measures and objectives of a draft (or of an open amendment's): a directeur
/// of one of the contract's steps, or an administrator.
#[utoipa::path(put, path = "/api/v1/contracts/{id}/draft", tag = "lifecycle", params(("id" = i64, Path, description = "contract id")), request_body = DraftBody, responses((status = 200, description = "the new head (a new version)"), (status = 403, description = "not a directeur of its steps"), (status = 409, description = "not a draft"), (status = 422, description = "an unknown measure, a malformed body")))]
pub async fn draft(
    State(api): State<Arc<Api>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<DraftBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let head = match body_of(body) {
        Ok(body) => edit(&api, &user, &headers, id, &body.measures, &body.objectives).await?,
        Err(refused) => audit::outcome(
            &user.login,
            "edit",
            &format!("contract #{id}"),
            Err(refused),
        )?,
    };
    Ok(head_json(&head))
}

/// `user` sets the measures and objectives of contract `id`'s draft, audited: the API
/// and the pages' form share it.
pub(crate) async fn edit(
    api: &Api,
    user: &User,
    headers: &HeaderMap,
    id: i64,
    measures: &[MeasureInput],
    objectives: &[String],
) -> Result<lifecycle::Head, ApiError> {
    let taken = async {
        let seen = visible(api, user, id).await?;
        let role = editor_role(user, &seen, "edit")?;
        let actor = actor(user, role, headers);
        let mut client = api.client().await?;
        let head = lifecycle::set_draft(
            &mut client,
            id,
            &actor,
            &api.catalogue,
            measures,
            objectives,
        )
        .await?;
        Ok::<_, ApiError>(head)
    };
    audit::outcome(&user.login, "edit", &format!("contract #{id}"), taken.await)
}

/// `POST /contracts/{id}/amendments`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentBody {
    /// A reason code of `[contracts] amendment_reasons`.
    reason: String,
    /// The amendment's measures (default: those in force).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    measures: Option<Vec<MeasureInput>>,
    /// Its objectives (default: those in force).
    #[serde(default)]
    objectives: Option<Vec<String>>,
}

/// Opens an amendment: the contract's student, a directeur of one of its steps, or an
/// administrator.
#[utoipa::path(post, path = "/api/v1/contracts/{id}/amendments", tag = "lifecycle", params(("id" = i64, Path, description = "contract id")), request_body = AmendmentBody, responses((status = 200, description = "the amendment's head"), (status = 409, description = "not validated"), (status = 422, description = "an unknown reason code")))]
pub async fn amend(
    State(api): State<Arc<Api>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<AmendmentBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let head = match body_of(body) {
        Ok(body) => {
            let amendment = Amendment {
                reason: &body.reason,
                measures: body.measures.as_deref(),
                objectives: body.objectives.as_deref(),
            };
            open(&api, &user, &headers, id, amendment).await?
        }
        Err(refused) => audit::outcome(
            &user.login,
            "amend",
            &format!("contract #{id}"),
            Err(refused),
        )?,
    };
    Ok(head_json(&head))
}

/// `user` opens an amendment of contract `id`, audited: the contract's student, a
/// directeur of one of its steps, or an administrator. The API and the pages' form share
/// it.
pub(crate) async fn open(
    api: &Api,
    user: &User,
    headers: &HeaderMap,
    id: i64,
    amendment: Amendment<'_>,
) -> Result<lifecycle::Head, ApiError> {
    let taken = async {
        let seen = visible(api, user, id).await?;
        let role = match (seen.is_student, seen.is_directeur) {
            (_, true) => Role::Directeur,
            (true, false) => Role::Student,
            _ if user.admin => Role::Admin,
            _ => {
                return Err(ApiError::forbidden(format!(
                    "{} may not amend this contract",
                    user.login
                )))
            }
        };
        let actor = actor(user, role, headers);
        let mut client = api.client().await?;
        let head = lifecycle::open_amendment(
            &mut client,
            id,
            &actor,
            &api.rules,
            &api.catalogue,
            amendment,
        )
        .await?;
        Ok::<_, ApiError>(head)
    };
    audit::outcome(
        &user.login,
        "amend",
        &format!("contract #{id}"),
        taken.await,
    )
}

/// `POST /contracts/validate`'s body: a year (and step), or ids.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    year: Option<i32>,
    step: Option<String>,
    ids: Option<Vec<i64>>,
    #[serde(default = "yes")]
    standard_only: bool,
}

fn yes() -> bool {
    true
}

/// Bulk validation by a directeur (their steps only) or an administrator: counts.
#[utoipa::path(post, path = "/api/v1/contracts/validate", tag = "lifecycle", request_body = BulkBody, responses((status = 200, description = "`{bulk_id, validated, skipped: {reason: count}}`"), (status = 403, description = "not a directeur"), (status = 422, description = "neither year nor ids, or both")))]
pub async fn validate_all(
    State(api): State<Arc<Api>>,
    user: User,
    headers: HeaderMap,
    body: Result<Json<BulkBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let taken = async {
        let body = body_of(body)?;
        let (role, steps) = match (user.admin, user.steps.is_empty()) {
            (true, _) => (Role::Admin, None),
            (false, false) => (Role::Directeur, Some(user.steps.clone())),
            (false, true) => {
                return Err(ApiError::forbidden("only a directeur d'études validates"))
            }
        };
        let selection = match (body.ids, body.year) {
            (Some(ids), None) => {
                Selection::Contracts(ids.into_iter().map(|id| Seen { id, hash: None }).collect())
            }
            (None, Some(year)) => Selection::Year {
                year,
                step: body.step,
            },
            _ => {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "give either `year` (and `step`) or `ids`",
                ))
            }
        };
        let bulk = BulkValidation {
            selection,
            standard_only: body.standard_only,
            steps,
        };
        let mut client = api.client().await?;
        let report = bulk::validate(&mut client, &bulk, &actor(&user, role, &headers)).await?;
        Ok::<_, ApiError>(report)
    };
    let report = audit::outcome(
        &user.login,
        "validate_all",
        "contracts in bulk",
        taken.await,
    )?;
    Ok(Json(json!({
        "bulk_id": report.bulk_id,
        "validated": report.validated,
        "skipped": report.skipped,
    })))
}
