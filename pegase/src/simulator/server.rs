//! The HTTP side: routes, the common layer (counting, faults, bearer check), errors and
//! query parameters shared by every route.

use super::faults::{self, FaultControl, Injection};
use super::stats::Counters;
use super::{auth::Tokens, chc, data::Dataset, ins, odf, routes, Period};
use axum::body::Body;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// What every handler shares.
pub(crate) struct AppState {
    /// The served data.
    pub data: Dataset,
    /// `codeStructure` accepted in paths.
    pub structure: String,
    /// UAI of the institution (`UAI` of the feed).
    pub uai: String,
    /// Periods served.
    pub periods: Vec<Period>,
    /// Issued tokens and the credentials that get one.
    pub tokens: Tokens,
    /// Injected faults.
    pub faults: FaultControl,
    /// Counters.
    pub counters: Counters,
}

impl AppState {
    /// The period of this code, or a 404 naming it.
    pub(crate) fn period(&self, code: &str) -> Result<&Period, ApiError> {
        self.periods.iter().find(|p| p.code == code).ok_or_else(|| {
            ApiError::not_found("periode.inconnue", format!("période {code} inconnue"))
        })
    }

    /// A 404 unless `cs` is the configured structure.
    pub(crate) fn check_structure(&self, cs: &str) -> Result<(), ApiError> {
        if cs == self.structure {
            return Ok(());
        }
        Err(ApiError::not_found(
            "structure.inconnue",
            format!("structure {cs} inconnue"),
        ))
    }
}

/// Shared state as handlers receive it.
pub(crate) type Shared = Arc<AppState>;

/// Every route, behind the common layer.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(routes::TOKEN, post(super::auth::issue))
        .route(routes::INS_FLUX, get(ins::flux))
        .route(routes::CHC_TYPE_CURSUS, get(chc::by_type))
        .route(routes::CHC_OBJECT_CURSUS, get(chc::by_object))
        .route(routes::ODF_SPACES, get(odf::spaces))
        .route(routes::ODF_OBJECTS, get(odf::objects))
        .route(routes::ODF_OBJECT, get(odf::object))
        .route(routes::ODF_TREE, get(odf::tree))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), layer))
        .with_state(state)
}

/// Counting, the bearer check on arrival (every route but the token's: like any API, a
/// token valid when the request came is not refused for the time the answer takes),
/// injected latency and faults.
async fn layer(
    State(state): State<Shared>,
    route: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let route = route.as_str().to_owned();
    let _in_flight = state.counters.start(&route);
    let bearer = match route == routes::TOKEN {
        true => Ok(()),
        false => state.tokens.check(request.headers()),
    };
    let plan = faults::decide(&state.faults, &route);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let refused = match plan.failure {
        Some(Injection::ServerError) => return server_error(),
        Some(_) => Some(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token.expire",
            "jeton expiré",
        )),
        None => bearer.err(),
    };
    if let Some(error) = refused {
        state.counters.unauthorized();
        return error.into_response();
    }
    let response = next.run(request).await;
    if plan.truncate {
        return truncate(response).await;
    }
    response
}

/// The injected 500: a plain-text body, as older modules answer, with a correlation id.
fn server_error() -> Response {
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    let id = super::codes::uuid_for(&format!("{:?}", std::time::SystemTime::now()));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("correlationId", value);
    }
    response
}

/// The body cut in half (at a character boundary), `Content-Length` adjusted.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = text[..cut].to_owned();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(kept.len()));
    Response::from_parts(parts, Body::from(kept))
}

/// An error answer: the status and Pégase's error body
/// `{statusCode, errors:[{code, message}]}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    /// An error of any status.
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 400 for a bad parameter.
    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub(crate) fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "statusCode": self.status.as_u16(),
            "errors": [{"code": self.code, "message": self.message}],
        });
        (self.status, Json(body)).into_response()
    }
}

/// Query parameters in order, repeated ones kept (`typeObjetMaquette` is repeatable); a
/// query that does not decode is a 400, not axum's plain-text rejection.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// From the extractor's result.
    pub(crate) fn from_query(
        query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    ) -> Result<Params, ApiError> {
        query
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| ApiError::bad_request("requete.invalide", e.body_text()))
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as an integer, `None` when absent; 400 when not an integer.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ApiError::bad_request("pattern", format!("{name} doit être un entier : {v:?}"))
                })
            })
            .transpose()
    }
}

/// A requested page: `page` from 0, `taille` in 1..=max.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    page: usize,
    size: usize,
}

impl Paging {
    /// Reads `page` and `taille` (`default` when absent, a 400 when absent without a
    /// default, as the INS feed answers: "une pagination est obligatoire, taille limitée
    /// à 500"); an out-of-range `taille` is a 400.
    pub(crate) fn read(
        params: &Params,
        max: usize,
        default: Option<usize>,
    ) -> Result<Paging, ApiError> {
        let page = params.int("page")?.unwrap_or(0);
        let size = match (params.int("taille")?, default) {
            (Some(size), _) => size,
            (None, Some(default)) => i64::try_from(default).unwrap_or(i64::MAX),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "notNull",
                    "la pagination est obligatoire (taille)",
                ))
            }
        };
        let page =
            usize::try_from(page).map_err(|_| ApiError::bad_request("min", "page commence à 0"))?;
        match usize::try_from(size) {
            Ok(size) if (1..=max).contains(&size) => Ok(Paging { page, size }),
            _ => Err(ApiError::bad_request(
                "size",
                format!("taille doit être entre 1 et {max}"),
            )),
        }
    }

    /// The envelope counters and this page's items, from all matching `items`.
    pub(crate) fn slice<T>(self, items: Vec<T>) -> (PageInfo, Vec<T>) {
        let total = items.len();
        let info = PageInfo {
            page: self.page,
            taille: self.size,
            total_elements: total,
            total_pages: total.div_ceil(self.size),
        };
        let page = items
            .into_iter()
            .skip(self.page.saturating_mul(self.size))
            .take(self.size)
            .collect();
        (info, page)
    }
}

/// The counters of a paged envelope.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    /// The page number.
    pub page: usize,
    /// The page size asked for.
    pub taille: usize,
    /// Items over all pages.
    pub total_elements: usize,
    /// Number of pages.
    pub total_pages: usize,
}

/// Now, in epoch seconds.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
