//! What every request goes through before a handler, so that every refusal is the API's
//! JSON error ([`crate::error`]) rather than an empty body or PostgreSQL's message: a URL
//! over 8 KiB is 414, headers over 16 KiB 431, a NUL character in the URL or in a JSON body
//! (which no text column can hold) 400, a body over [`crate::MAX_BODY`] 413, a request
//! not answered within its time 503 `timeout`; an unknown route 404 and a known one with
//! another method 405.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The longest URL accepted.
pub const MAX_URI: usize = 8 * 1024;

/// The most header bytes accepted (names and values).
pub const MAX_HEADERS: usize = 16 * 1024;

/// Refuses what no handler should see.
pub async fn check(request: Request, next: Next) -> Response {
    let uri = request.uri().to_string();
    if uri.len() > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URL is over {MAX_URI} bytes"),
        )
        .into_response();
    }
    let headers: usize = (request.headers().iter())
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADERS {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the headers are over {MAX_HEADERS} bytes"),
        )
        .into_response();
    }
    // A NUL can only reach a URL percent-encoded.
    if uri.contains("%00") {
        return bad_request("a NUL character (%00) in the URL").into_response();
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {} bytes", crate::MAX_BODY),
            )
            .into_response()
        }
    };
    // And a JSON body only as an escape.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        return bad_request("a NUL character (\\u0000) in the body").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Answers 503 `timeout` for a request not answered within `limit`.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                seconds = limit.as_secs(),
                "a request was not answered in time"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("not answered within {} s", limit.as_secs()),
            )
            .into_response()
        }
    }
}

/// 404 for a route that does not exist.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such route (see /api/v1/openapi.json)")
}

/// 405 for a route that exists with other methods.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method (see /api/v1/openapi.json)",
    )
}
