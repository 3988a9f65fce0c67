//! The OpenAPI document of `/api/v1`, generated from the handlers' own annotations (so
//! that it cannot drift from the code), served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

/// The contracts API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "conpere /api/v1",
        description = "Learning contracts: read, act on, verify (DESIGN.md, HTTP API). \
                       Errors are `{\"error\": {\"code\", \"message\"}}`. The admin routes \
                       (tag `admin`) need `Authorization: Bearer <[server] admin token>`."
    ),
    paths(
        crate::contracts::me,
        crate::contracts::list,
        crate::contracts::one,
        crate::contracts::act,
        crate::contracts::measures,
        crate::contracts::verify_hash,
        crate::history::versions,
        crate::history::version,
        crate::history::changes,
        crate::history::evidence,
        crate::changes::draft,
        crate::changes::amend,
        crate::changes::validate_all,
        crate::students::contracts,
        crate::admin::list,
        crate::admin::show,
        crate::admin::start,
        crate::admin::approve,
        crate::admin::reject,
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
