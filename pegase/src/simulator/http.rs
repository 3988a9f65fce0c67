//! The request and error types every route shares: Pégase's error body, query
//! parameters, paging; and the clock tokens and pages are dated by.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

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
