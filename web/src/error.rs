//! API errors as DESIGN.md writes them: `{"error": {"code", "message"}}`, with the status
//! that fits; nothing internal (no SQL, no stack) ever reaches the body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use conpere_contracts::ContractsError;
use serde_json::{json, Value};

/// An error answered to a caller.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code (`not_found`, `stale`, …).
    pub code: &'static str,
    /// What a person reads.
    pub message: String,
    /// More, for some codes (the current hash of a stale contract).
    pub extra: Option<Value>,
}

impl ApiError {
    /// An error without extra fields.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// 401: no identity, or a wrong one.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: a role that may not.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing there, or nothing this caller may know of.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: the store does not answer (the details go to the log, not to the caller).
    pub fn unavailable(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "the store failed an API request");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(Value::Object(extra)) = self.extra {
            error.as_object_mut().expect("an object").extend(extra);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<ContractsError> for ApiError {
    fn from(error: ContractsError) -> ApiError {
        match &error {
            ContractsError::NotFound(_) => ApiError::not_found(error.to_string()),
            ContractsError::Forbidden { .. } => ApiError::forbidden(error.to_string()),
            ContractsError::Stale { current_hash, .. } => ApiError {
                extra: Some(json!({ "current_hash": current_hash })),
                ..ApiError::new(StatusCode::CONFLICT, "stale", error.to_string())
            },
            ContractsError::WrongState { state, allowed, .. } => ApiError {
                extra: Some(json!({ "state": state, "allowed": allowed })),
                ..ApiError::new(StatusCode::CONFLICT, "wrong_state", error.to_string())
            },
            ContractsError::AlreadyValidated { awaiting, .. } => ApiError {
                extra: Some(json!({ "awaiting": awaiting })),
                ..ApiError::new(StatusCode::CONFLICT, "already_validated", error.to_string())
            },
            ContractsError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                error.to_string(),
            ),
            ContractsError::Db { .. } | ContractsError::Copy { .. } | ContractsError::Config(_) => {
                ApiError::unavailable(error)
            }
        }
    }
}
