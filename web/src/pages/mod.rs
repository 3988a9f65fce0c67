//! The pages people use in a browser, served by `conpere serve` beside the API, on the
//! same authentication, roles and domain functions (no second path to the data):
//! server-rendered HTML (maud, checked at compile time), every action a plain form (no
//! JavaScript needed), French first and English ([`i18n`]), accessible ([`layout`]),
//! under a strict Content-Security-Policy (nothing inline, nothing from elsewhere; framed
//! by the same origin only).
//!
//! * [`contracts`]: a person's contracts, one contract (its path, statuses, measures,
//!   state and who acts next), signing it after reading the consent text, refusing it
//!   with a reason;
//! * errors: a page per status that says what to do next, in the person's language.

pub mod bulk;
pub mod contracts;
pub mod i18n;
pub mod layout;

use crate::error::ApiError;
use crate::Api;
use axum::http::header::{HeaderValue, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::{Lang, LANG_COOKIE};
use maud::{html, Markup};
use std::sync::Arc;

/// The pages' settings (`[server] frame_ancestors`).
#[derive(Debug, Clone, Default)]
pub struct PagesSettings {
    /// The origins that may frame the pages besides conpere itself (the ENT's, e.g.
    /// `https://ent.univ.fr`); none by default.
    pub frame_ancestors: Vec<String>,
}

impl PagesSettings {
    /// What the pages allow the browser: conpere's own style sheet and forms, no script
    /// inline or from elsewhere, framed by conpere itself and the configured origins only.
    pub fn csp(&self) -> String {
        let mut ancestors = String::from("'self'");
        for origin in &self.frame_ancestors {
            ancestors.push(' ');
            ancestors.push_str(origin);
        }
        format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             base-uri 'none'; frame-ancestors {ancestors}"
        )
    }
}

/// The pages' routes (with the session layer of the modes that have sessions).
pub fn routes(api: Arc<Api>) -> Router {
    let layer = api.auth.browser().map(|s| s.layer(api.pool.clone()));
    let csp = HeaderValue::from_str(&api.pages.csp()).expect("origins are header-safe");
    let routes = Router::new()
        .route("/", get(contracts::home))
        .route("/contracts/{id}", get(contracts::contract))
        .route("/contracts/{id}/draft", post(contracts::edit))
        .route("/contracts/{id}/amend", post(contracts::amend))
        .route("/contracts/{id}/{action}", post(contracts::act))
        .route("/validate", get(bulk::confirm).post(bulk::validate))
        .with_state(api)
        .route("/assets/conpere.css", get(style_sheet))
        .layer(axum::middleware::from_fn_with_state(csp, page_headers));
    match layer {
        Some(layer) => routes.layer(layer),
        None => routes,
    }
}

async fn style_sheet() -> Response {
    let css = include_str!("../../assets/conpere.css");
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

/// The CSP on every page; a language asked with `?lang=` kept in a cookie.
async fn page_headers(
    axum::extract::State(csp): axum::extract::State<HeaderValue>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let asked = (request.uri().query().unwrap_or(""))
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
        .and_then(Lang::from_tag);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, csp);
    if let Some(lang) = asked {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

/// An unknown path: for a browser asking for a page outside the API, the "not found"
/// page in its language (under the strictest CSP); otherwise the API's JSON error.
pub async fn unknown(lang: Lang, request: Request<axum::body::Body>) -> Response {
    let wants_page = !request.uri().path().starts_with("/api/")
        && (request.headers().get(axum::http::header::ACCEPT))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_page {
        return crate::guard::no_route().await.into_response();
    }
    let error = ApiError::not_found("no such page");
    let mut response = PageError::new(lang, error).into_response();
    let csp = PagesSettings::default().csp();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// An error as a page: what happened and what to do next, in the person's language;
/// for a contract changed meanwhile, the way to its new version.
pub struct PageError {
    /// The page's language.
    pub lang: Lang,
    /// What went wrong.
    pub error: ApiError,
    /// The contract concerned, when there is one.
    pub contract: Option<i64>,
}

impl PageError {
    /// `error` on a page in `lang`.
    pub fn new(lang: Lang, error: ApiError) -> PageError {
        PageError {
            lang,
            error,
            contract: None,
        }
    }
}

impl PageError {
    /// What turns an error about contract `id` into a page in `lang` (with the way to
    /// the contract's new version, for a conflict).
    pub fn on_contract(lang: Lang, id: i64) -> impl Fn(ApiError) -> PageError + Copy {
        move |error| PageError {
            lang,
            error,
            contract: Some(id),
        }
    }
}

/// A form (or query) as sent, or 422 "the form is incomplete" when it cannot be read.
pub(crate) fn filled<T, Rejection>(input: Result<T, Rejection>) -> Result<T, ApiError> {
    input.map_err(|_| incomplete())
}

/// 422: a form missing a field, or with one the page did not offer.
pub(crate) fn incomplete() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "the form is incomplete",
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let lang = self.lang;
        let status = self.error.status;
        let (what, todo) = match status.as_u16() {
            401 => ("error-401", "error-401-do"),
            403 => ("error-403", "error-403-do"),
            404 => ("error-404", "error-404-do"),
            409 => ("error-409", "error-409-do"),
            400 | 413 | 422 => ("error-422", "error-422-do"),
            _ => ("error-other", "error-other-do"),
        };
        let next: Markup = match (status, self.contract) {
            (StatusCode::UNAUTHORIZED, _) => {
                html! { a href="/auth/login" { (lang.t("error-login")) } }
            }
            (StatusCode::CONFLICT, Some(id)) => {
                html! { a href={ "/contracts/" (id) } { (lang.t_with("home-open", &[("id", id.to_string())])) } }
            }
            _ => html! { a href="/" { (lang.t("error-back")) } },
        };
        let body = html! {
            div.error role="alert" {
                p { (lang.t(what)) }
                p { (lang.t(todo)) }
            }
            p { (next) }
        };
        (status, layout::page(lang, &lang.t("error-title"), body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::PagesSettings;

    #[test]
    fn the_pages_are_framed_by_conpere_and_the_origins_configured_only() {
        let alone = PagesSettings::default().csp();
        assert!(alone.contains("frame-ancestors 'self'") && alone.contains("default-src 'none'"));
        let ent = PagesSettings {
            frame_ancestors: vec!["https://ent.univ.fr".into()],
        };
        assert!(ent
            .csp()
            .ends_with("frame-ancestors 'self' https://ent.univ.fr"));
    }
}
