//! Logging in and out of a browser session with CAS (`[auth] mode = "cas"`):
//!
//! * `GET /auth/login?next=/path` sends the browser to the CAS server, remembering where
//!   to come back to (a path of conpere's only);
//! * `GET /auth/cas?ticket=…`, where the CAS server sends it back: the ticket validated
//!   ([`crate::cas`]), the session id renewed (no session fixation) and the caller's
//!   [`Identity`] kept in the session; then back to `next`;
//! * `POST /auth/cas`, the CAS server's single logout: the session its ticket opened ends;
//! * `GET` or `POST /auth/logout`: the session ends here, then at the CAS server.

use crate::audit;
use crate::cas::{self, Cas, CasError};
use crate::error::ApiError;
use crate::sessions::{self, digest, Identity, PgSessions, IDENTITY};
use crate::Api;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use conpere_contracts::evidence::AuthKind;
use serde::Deserialize;
use std::sync::Arc;
use tower_sessions::Session;

/// The CAS mode's settings.
#[derive(Debug, Clone)]
pub struct CasLogin {
    /// The CAS server.
    pub cas: Cas,
    /// conpere's public URL (`[server] public_url`).
    pub public_url: String,
    /// Its origin, which state-changing requests of a session must come from.
    pub origin: String,
    /// Whether the session cookie is `Secure` (always, but for plain http on localhost).
    pub secure: bool,
    /// A session ends after this long without a request.
    pub idle: time::Duration,
}

impl CasLogin {
    /// CAS at `cas_url` for the conpere at `public_url`; refused when `public_url` is
    /// plain http anywhere but on this machine (the session cookie would travel in clear).
    pub fn new(
        cas_url: &str,
        public_url: &str,
        ine_attribute: Option<String>,
        idle_hours: u64,
    ) -> Result<CasLogin, String> {
        let origin = crate::csrf::origin_of(public_url);
        let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| origin == *l || origin.starts_with(&format!("{l}:")));
        let secure = origin.starts_with("https://");
        if !secure && !local {
            return Err(format!(
                "[server] public_url = \"{public_url}\": CAS sessions need https (plain http \
                 only on localhost), or the session cookie would travel in clear"
            ));
        }
        Ok(CasLogin {
            cas: Cas::new(cas_url, public_url, ine_attribute),
            public_url: public_url.trim_end_matches('/').to_owned(),
            origin,
            secure,
            idle: time::Duration::hours(idle_hours as i64),
        })
    }
}

/// The `/auth` routes, sessions in the store.
pub fn routes(api: Arc<Api>, login: &CasLogin) -> Router {
    let store = PgSessions::new(api.pool.clone());
    Router::new()
        .route("/auth/login", get(start))
        .route("/auth/cas", get(callback).post(single_logout))
        .route("/auth/logout", get(logout).post(logout))
        .with_state(api)
        .layer(sessions::layer(store, login.secure, login.idle))
}

/// The CAS settings of `api` (these routes exist only in CAS mode).
fn cas_of(api: &Api) -> &CasLogin {
    match &api.auth {
        crate::auth::Authentication::Cas(login) => login,
        _ => unreachable!("/auth routes exist in CAS mode only"),
    }
}

fn session_failed(error: tower_sessions::session::Error) -> ApiError {
    ApiError::unavailable(format!("the session store: {error}"))
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Where to come back to after a login: a path of conpere's, never another site.
fn local_path(next: Option<String>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
}

async fn start(
    State(api): State<Arc<Api>>,
    session: Session,
    Query(query): Query<Next>,
) -> Result<Response, ApiError> {
    if let Some(next) = local_path(query.next) {
        session.insert("next", next).await.map_err(session_failed)?;
    }
    Ok(Redirect::to(&cas_of(&api).cas.login_url()).into_response())
}

#[derive(Deserialize)]
struct Ticket {
    ticket: Option<String>,
}

async fn callback(
    State(api): State<Arc<Api>>,
    session: Session,
    Query(query): Query<Ticket>,
) -> Result<Response, ApiError> {
    let login = cas_of(&api);
    let Some(ticket) = query.ticket.filter(|t| !t.is_empty()) else {
        return Err(ApiError::unauthenticated(
            "no CAS ticket: log in at /auth/login",
        ));
    };
    let validated = match login.cas.validate(&ticket).await {
        Ok(validated) => validated,
        Err(CasError::Refused(code)) => {
            audit::refused("GET", "/auth/cas", &format!("CAS ticket refused ({code})"));
            return Err(ApiError::unauthenticated(format!(
                "the CAS server refused the ticket ({code}): log in again at /auth/login"
            )));
        }
        Err(error @ CasError::Unavailable(_)) => return Err(ApiError::unavailable(error)),
    };
    let attribute = |name: &str| validated.attributes.get(name).cloned();
    let identity = Identity {
        login: validated.user.clone(),
        mail: attribute("mail"),
        ine: (login.cas.ine_attribute.as_deref()).and_then(attribute),
        auth: AuthKind::Cas,
        idp: Some(login.cas.server.clone()),
        session_index: Some(digest(&ticket)),
    };
    let next: Option<String> = session.remove("next").await.map_err(session_failed)?;
    // A new id for the logged-in session: one planted before cannot be taken over.
    session.cycle_id().await.map_err(session_failed)?;
    session
        .insert(IDENTITY, &identity)
        .await
        .map_err(session_failed)?;
    audit::action(&identity.login, "login", "cas", "ok");
    Ok(Redirect::to(next.as_deref().unwrap_or("/api/v1/me")).into_response())
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(rename = "logoutRequest")]
    logout_request: String,
}

/// The CAS server's single logout: ends the session its ticket opened.
async fn single_logout(
    State(api): State<Arc<Api>>,
    Form(form): Form<LogoutForm>,
) -> Result<StatusCode, ApiError> {
    let Some(ticket) = cas::logout_ticket(&form.logout_request) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "logoutRequest: no SessionIndex",
        ));
    };
    let store = PgSessions::new(api.pool.clone());
    let ended = (store.end_cas_sessions(&digest(&ticket)).await)
        .map_err(|e| ApiError::unavailable(format!("the session store: {e}")))?;
    audit::action(
        "cas server",
        "single_logout",
        &format!("{ended} session(s)"),
        "ok",
    );
    Ok(StatusCode::OK)
}

async fn logout(State(api): State<Arc<Api>>, session: Session) -> Result<Response, ApiError> {
    let who: Option<Identity> = session.get(IDENTITY).await.map_err(session_failed)?;
    session.flush().await.map_err(session_failed)?;
    if let Some(who) = who {
        audit::action(&who.login, "logout", "cas", "ok");
    }
    let login = cas_of(&api);
    Ok(Redirect::to(&login.cas.logout_url(&login.public_url)).into_response())
}
