//! # conpere-web: the HTTP surface
//!
//! Everything `conpere serve` answers over HTTP, put together by [`app`]:
//!
//! * the `/api/v1` learning-contracts API (DESIGN.md, "HTTP API"): [`auth`] says who
//!   calls, [`roles`] what they are and may see, [`contracts`] the routes (and reading
//!   them), [`history`] versions, diffs and evidence, [`changes`] drafts, amendments and
//!   bulk validation, [`students`] a person's contracts, [`error`] how failures are
//!   answered, [`openapi`] the document;
//! * the admin API ([`admin`]: runs, held runs, a run started now) behind a bearer token;
//! * `/health`, `/ready` and `/metrics` ([`health`]);
//! * one log line per request ([`access`]), identifiers masked.
//!
//! No SIS here: the domain is `conpere-contracts` over the store, and what needs a
//! connector (starting a run) goes through [`admin::Operator`], which the binary
//! implements.

#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod cas;
pub mod changes;
pub mod contracts;
pub mod csrf;
pub mod error;
pub mod guard;
pub mod health;
pub mod history;
pub mod login;
pub mod oidc;
pub mod openapi;
pub mod page;
pub mod pages;
pub mod roles;
pub mod server;
pub mod sessions;
pub mod students;

use conpere_contracts::catalogue::Catalogue;
use conpere_contracts::rules::Rules;
use error::ApiError;
use roles::{RolesSettings, StudentMatch};
use std::sync::Arc;

/// What every handler shares.
pub struct Api {
    /// The store's pool.
    pub pool: deadpool_postgres::Pool,
    /// How callers are authenticated.
    pub auth: auth::Authentication,
    /// `[roles]`.
    pub roles: RolesSettings,
    /// How a login finds its student.
    pub student_match: StudentMatch,
    /// The measures catalogue.
    pub catalogue: Catalogue,
    /// The flag rules and amendment reasons.
    pub rules: Rules,
    /// The pages' settings.
    pub pages: pages::PagesSettings,
}

pub use server::{serve, Limits};

/// Everything the daemon serves over HTTP.
pub struct Surface {
    /// The store's pool (for `/ready` and `/metrics`).
    pub pool: deadpool_postgres::Pool,
    /// The admin API.
    pub admin: Arc<admin::Admin>,
    /// The contracts API; `None` without `[auth]` (it is then not served).
    pub contracts: Option<Arc<Api>>,
    /// Timeouts and bounds.
    pub limits: Limits,
}

/// The whole application: operations endpoints at the root, the admin and contracts APIs
/// under `/api/v1`, every request guarded ([`guard`]) and logged ([`access`]).
pub fn app(surface: Surface) -> axum::Router {
    let mut v1 = admin::router(surface.admin);
    let mut root = health::routes(surface.pool);
    if let Some(api) = surface.contracts {
        root = root.merge(browser(&api));
        v1 = v1.merge(router(api));
    }
    harden(root.nest("/api/v1", v1), surface.limits)
}

/// The contracts API alone under `/api/v1`, guarded as in [`app`] (for tests and
/// `conpere bench`).
pub fn contracts_app(api: Arc<Api>, limits: Limits) -> axum::Router {
    let root = browser(&api).nest("/api/v1", router(api));
    harden(root, limits)
}

/// The browser's `/auth` routes (login, logout), in the modes that have sessions.
fn browser(api: &Arc<Api>) -> axum::Router {
    login::routes(Arc::clone(api)).merge(pages::routes(Arc::clone(api)))
}

/// What every route goes through: errors for unknown routes (a page for a browser, JSON
/// otherwise) and methods, the guard,
/// the request deadline, the security headers, the access log.
fn harden(routes: axum::Router, limits: Limits) -> axum::Router {
    use axum::middleware::{from_fn, from_fn_with_state, map_response};
    routes
        .fallback(pages::unknown)
        .method_not_allowed_fallback(guard::wrong_method)
        .layer(from_fn(guard::check))
        .layer(from_fn_with_state(limits.request, guard::deadline))
        .layer(map_response(security_headers))
        .layer(from_fn(access::log))
}

/// The largest request body accepted: the API's bodies are a hash, a reason, a few
/// measures.
pub const MAX_BODY: usize = 64 * 1024;

/// The `/api/v1` contract routes, to nest under `/api/v1`, bodies bounded; with the
/// session layer in the modes that have sessions.
pub fn router(api: Arc<Api>) -> axum::Router {
    let session = (api.auth.browser()).map(|sessions| sessions.layer(api.pool.clone()));
    let routes = contracts::routes()
        .with_state(api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY));
    match session {
        Some(layer) => routes.layer(layer),
        None => routes,
    }
}

/// Every answer: never sniffed as another type, never cached (authenticated answers carry
/// student numbers, names, birth dates), its URL never sent to another site as a
/// referrer. `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
/// `Origin: null` with conpere's own forms, which the CSRF check must then refuse (found
/// by the browser tests).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{HeaderValue, CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

impl Api {
    /// A connection of the pool, or 503.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, ApiError> {
        self.pool.get().await.map_err(ApiError::unavailable)
    }
}
