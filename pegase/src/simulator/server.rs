//! The HTTP side: routes and the common layer (counting, faults, bearer check).

use super::faults::{self, Injection};
use super::http::ApiError;
use super::state::Shared;
use super::{cas, chc, ins, odf, routes};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Every route, behind the common layer.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(routes::TOKEN, post(cas::issue))
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
