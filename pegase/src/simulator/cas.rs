//! The CAS v1 token route: `POST /cas/v1/tickets` gives a JWT ([`super::auth`]).

use super::auth::unauthorized;
use super::http::ApiError;
use super::state::Shared;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// `POST /cas/v1/tickets`: 201 with the raw JWT for the right `username`/`password` and
/// `token=true`, 401 otherwise.
pub(crate) async fn issue(
    State(state): State<Shared>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return ApiError::bad_request("requete.invalide", "formulaire attendu").into_response();
    };
    let tokens = &state.tokens;
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("token") != Some("true") {
        return ApiError::bad_request("token", "token=true attendu").into_response();
    }
    if field("username") != Some(&tokens.username) || field("password") != Some(&tokens.password) {
        state.counters.unauthorized();
        return unauthorized("identifiants refusés").into_response();
    }
    state.counters.token_issued();
    (StatusCode::CREATED, tokens.issue()).into_response()
}
