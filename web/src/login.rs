//! Logging in and out of a browser session, with CAS or OpenID Connect:
//!
//! * `GET /auth/login?next=/path` sends the browser to the identity provider, remembering
//!   where to come back to (a path of conpere's only);
//! * `GET /auth/cas?ticket=…` (CAS) or `GET /auth/oidc?code=…&state=…` (OIDC), where the
//!   provider sends it back: the ticket validated ([`crate::cas`]), or the state checked,
//!   the code exchanged with its PKCE verifier and the ID token verified with its nonce
//!   (`openidconnect`); then the session id renewed (no session fixation), the caller's
//!   [`Identity`] kept in the session, and back to `next`;
//! * `POST /auth/cas`, the CAS server's single logout: the session its ticket opened ends;
//! * `GET` or `POST /auth/logout`: the session ends here, then at the provider.

use crate::audit;
use crate::auth::{same, Authentication};
use crate::cas::{self, Cas, CasError};
use crate::error::ApiError;
use crate::oidc::Oidc;
use crate::sessions::{digest, BrowserSessions, Identity, PgSessions, IDENTITY};
use crate::Api;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use conpere_contracts::evidence::AuthKind;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_sessions::Session;

/// The CAS mode's settings.
#[derive(Debug, Clone)]
pub struct CasLogin {
    /// The CAS server.
    pub cas: Cas,
    /// The browser sessions.
    pub sessions: BrowserSessions,
}

impl CasLogin {
    /// CAS at `cas_url` for the conpere at `public_url` ([`BrowserSessions::new`]).
    pub fn new(
        cas_url: &str,
        public_url: &str,
        ine_attribute: Option<String>,
        idle_hours: u64,
    ) -> Result<CasLogin, String> {
        Ok(CasLogin {
            cas: Cas::new(cas_url, public_url, ine_attribute),
            sessions: BrowserSessions::new(public_url, idle_hours)?,
        })
    }
}

/// The OpenID Connect client of the pages (the code flow with PKCE).
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// conpere's client id.
    pub client_id: String,
    /// Its secret, for a confidential client (none: a public client, PKCE alone).
    pub client_secret: Option<String>,
    /// The browser sessions.
    pub sessions: BrowserSessions,
    /// The provider's discovery, when fetched.
    discovery: Arc<tokio::sync::Mutex<Option<(std::time::Instant, CoreProviderMetadata)>>>,
}

impl OidcClient {
    /// conpere's client `client_id` (with `client_secret` for a confidential client).
    pub fn new(
        client_id: String,
        client_secret: Option<String>,
        sessions: BrowserSessions,
    ) -> OidcClient {
        OidcClient {
            client_id,
            client_secret,
            sessions,
            discovery: Arc::default(),
        }
    }

    fn redirect_uri(&self) -> String {
        format!("{}/auth/oidc", self.sessions.public_url)
    }
}

/// The demo's login: a person to pick among those offered (`conpere demo --serve`).
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// The browser sessions (on localhost).
    pub sessions: BrowserSessions,
    /// Who may be picked: login and what they are.
    pub people: Vec<(String, String)>,
}

/// The `/auth` routes of `api`'s mode (none in header mode, nor in OIDC without pages).
pub fn routes(api: Arc<Api>) -> Router {
    let Some(sessions) = api.auth.browser() else {
        return Router::new();
    };
    let layer = sessions.layer(api.pool.clone());
    let mut routes = Router::new()
        .route("/auth/login", get(start))
        .route("/auth/logout", get(logout).post(logout));
    routes = match &api.auth {
        Authentication::Cas(_) => routes.route("/auth/cas", get(cas_callback).post(single_logout)),
        Authentication::Demo(_) => routes.route("/auth/demo", axum::routing::post(demo_pick)),
        _ => routes.route("/auth/oidc", get(oidc_callback)),
    };
    routes.with_state(api).layer(layer)
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

/// What an OIDC login in progress keeps in the session until the provider sends the
/// browser back.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

const FLOW: &str = "oidc_flow";

async fn start(
    State(api): State<Arc<Api>>,
    session: Session,
    Query(query): Query<Next>,
) -> Result<Response, ApiError> {
    if let Some(next) = local_path(query.next) {
        session.insert("next", next).await.map_err(session_failed)?;
    }
    let url = match &api.auth {
        Authentication::Demo(demo) => return Ok(demo_page(demo).into_response()),
        Authentication::Cas(login) => login.cas.login_url(),
        Authentication::Oidc(oidc) => {
            let (url, flow) = authorization(oidc).await?;
            session.insert(FLOW, flow).await.map_err(session_failed)?;
            url
        }
        Authentication::Header(_) => unreachable!("no /auth routes in header mode"),
    };
    Ok(Redirect::to(&url).into_response())
}

/// The identity just proven: a new session id, the identity in it, back to `next`. Each
/// login also clears the sessions that expired (logins are few; expired rows would stay).
async fn logged_in(
    api: &Api,
    session: Session,
    identity: Identity,
    how: &str,
) -> Result<Response, ApiError> {
    if let Err(error) = PgSessions::new(api.pool.clone()).delete_expired().await {
        tracing::warn!(%error, "cannot delete expired sessions");
    }
    let next: Option<String> = session.remove("next").await.map_err(session_failed)?;
    // A new id for the logged-in session: one planted before cannot be taken over.
    session.cycle_id().await.map_err(session_failed)?;
    session
        .insert(IDENTITY, &identity)
        .await
        .map_err(session_failed)?;
    audit::action(&identity.login, "login", how, "ok");
    Ok(Redirect::to(next.as_deref().unwrap_or("/")).into_response())
}

fn refused_login(path: &str, why: String) -> ApiError {
    audit::refused("GET", path, &why);
    ApiError::unauthenticated(format!("{why}: log in again at /auth/login"))
}

#[derive(Deserialize)]
struct Ticket {
    ticket: Option<String>,
}

async fn cas_callback(
    State(api): State<Arc<Api>>,
    session: Session,
    Query(query): Query<Ticket>,
) -> Result<Response, ApiError> {
    let Authentication::Cas(login) = &api.auth else {
        unreachable!("a CAS route")
    };
    let Some(ticket) = query.ticket.filter(|t| !t.is_empty()) else {
        return Err(refused_login("/auth/cas", "no CAS ticket".into()));
    };
    let validated = match login.cas.validate(&ticket).await {
        Ok(validated) => validated,
        Err(CasError::Refused(code)) => {
            let why = format!("the CAS server refused the ticket ({code})");
            return Err(refused_login("/auth/cas", why));
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
    logged_in(&api, session, identity, "cas").await
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

/// An OpenID Connect client of a discovered provider (the type `from_provider_metadata`
/// gives: authorization endpoint set, token and user info endpoints as discovered).
type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long a provider's discovery (endpoints and keys) is kept before it is fetched
/// again: a rotated key or endpoint is seen within that time.
const DISCOVERY_KEPT: std::time::Duration = std::time::Duration::from_secs(300);

/// conpere's client at the provider, from its discovery (kept [`DISCOVERY_KEPT`]), and
/// the HTTP client that talks to it.
async fn provider(oidc: &Oidc) -> Result<(ProviderClient, reqwest::Client), ApiError> {
    let browser = browser_client(oidc);
    let http = oidc.http.clone();
    let mut kept = browser.discovery.lock().await;
    let metadata = match kept.as_ref() {
        Some((at, metadata)) if at.elapsed() < DISCOVERY_KEPT => metadata.clone(),
        _ => {
            let issuer = IssuerUrl::new(oidc.issuer.clone()).map_err(ApiError::unavailable)?;
            let metadata = CoreProviderMetadata::discover_async(issuer, &http)
                .await
                .map_err(|e| ApiError::unavailable(format!("the OIDC discovery: {e}")))?;
            *kept = Some((std::time::Instant::now(), metadata.clone()));
            metadata
        }
    };
    let redirect = RedirectUrl::new(browser.redirect_uri()).map_err(ApiError::unavailable)?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(browser.client_id.clone()),
        browser.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect);
    Ok((client, http))
}

fn browser_client(oidc: &Oidc) -> &OidcClient {
    oidc.browser
        .as_ref()
        .expect("/auth routes exist with a browser client only")
}

/// Where to send the browser, and what to keep until it comes back.
async fn authorization(oidc: &Oidc) -> Result<(String, Flow), ApiError> {
    let (client, _) = provider(oidc).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let flow = Flow {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    };
    Ok((url.to_string(), flow))
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn oidc_callback(
    State(api): State<Arc<Api>>,
    session: Session,
    Query(query): Query<Callback>,
) -> Result<Response, ApiError> {
    let Authentication::Oidc(oidc) = &api.auth else {
        unreachable!("an OIDC route")
    };
    let path = "/auth/oidc";
    let flow: Option<Flow> = session.remove(FLOW).await.map_err(session_failed)?;
    let Some(flow) = flow else {
        return Err(refused_login(
            path,
            "no login in progress in this session".into(),
        ));
    };
    if let Some(error) = query.error {
        return Err(refused_login(
            path,
            format!("the provider refused ({error})"),
        ));
    }
    let state = query.state.unwrap_or_default();
    if !same(state.as_bytes(), flow.state.as_bytes()) {
        return Err(refused_login(
            path,
            "the state is not this session's".into(),
        ));
    }
    let Some(code) = query.code else {
        return Err(refused_login(path, "no authorization code".into()));
    };
    let (client, http) = provider(oidc).await?;
    let exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| ApiError::unavailable(format!("the provider has no token endpoint: {e}")))?;
    let tokens = exchange
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
        .request_async(&http)
        .await
        .map_err(|e| refused_login(path, format!("the code was not exchanged ({e})")))?;
    let id_token = (tokens.id_token())
        .ok_or_else(|| refused_login(path, "no ID token from the provider".into()))?;
    id_token
        .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce))
        .map_err(|e| refused_login(path, format!("the ID token is refused ({e})")))?;
    // Verified: its claims, as the bearer tokens' are read.
    let claims = crate::oidc::payload(&id_token.to_string())
        .ok_or_else(|| refused_login(path, "an unreadable ID token".into()))?;
    let identity = (oidc.identity(&claims))
        .ok_or_else(|| refused_login(path, "no login in the ID token".into()))?;
    logged_in(&api, session, identity, "oidc").await
}

async fn logout(State(api): State<Arc<Api>>, session: Session) -> Result<Response, ApiError> {
    let who: Option<Identity> = session.get(IDENTITY).await.map_err(session_failed)?;
    session.flush().await.map_err(session_failed)?;
    if let Some(who) = &who {
        audit::action(&who.login, "logout", "session", "ok");
    }
    let back = api
        .auth
        .browser()
        .map(|s| s.public_url.clone())
        .unwrap_or_default();
    let url = match &api.auth {
        Authentication::Cas(login) => login.cas.logout_url(&back),
        Authentication::Demo(_) => "/auth/login".to_owned(),
        _ => back,
    };
    Ok(Redirect::to(&url).into_response())
}

/// The demo's login page: each person a button.
fn demo_page(demo: &DemoLogin) -> maud::Markup {
    let lang = crate::pages::i18n::Lang::Fr;
    let body = maud::html! {
        p { (lang.t("demo-intro")) }
        ul {
            @for (login, what) in &demo.people {
                li {
                    form method="post" action="/auth/demo" {
                        input type="hidden" name="login" value=(login);
                        button type="submit" { (login) " — " (what) }
                    }
                }
            }
        }
    };
    crate::pages::layout::page(lang, &lang.t("demo-title"), body)
}

#[derive(Deserialize)]
struct Pick {
    login: String,
}

/// `POST /auth/demo`: logged in as one of the people offered (none else).
async fn demo_pick(
    State(api): State<Arc<Api>>,
    headers: axum::http::HeaderMap,
    session: Session,
    Form(pick): Form<Pick>,
) -> Result<Response, ApiError> {
    let Authentication::Demo(demo) = &api.auth else {
        unreachable!("a demo route")
    };
    crate::csrf::check(
        &axum::http::Method::POST,
        &headers,
        Some(&demo.sessions.origin),
    )?;
    if !demo.people.iter().any(|(login, _)| *login == pick.login) {
        return Err(ApiError::forbidden("not a person of the demo"));
    }
    let identity = Identity {
        login: pick.login,
        mail: None,
        ine: None,
        auth: AuthKind::Demo,
        idp: None,
        session_index: None,
    };
    let response = logged_in(&api, session, identity, "demo").await?;
    Ok(response)
}
