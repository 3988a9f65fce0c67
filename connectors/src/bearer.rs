//! Bearer tokens for REST adapters: obtained from a login endpoint, kept until shortly
//! before they expire, renewed once for all concurrent callers.
//!
//! Written for Pégase's CAS v1 token flow, and generic enough for any service that hands
//! out a JWT for a username and password:
//!
//! * `POST <auth_url>` with the form `username=…&password=…&token=true`; success is
//!   **HTTP 201** with the raw JWT as the body (not JSON). Credentials travel in the body
//!   only: never in a URL, a log line, `Debug` output or an error message.
//! * The JWT's `exp` claim says when to renew (a margin before it, 60 s by default). The
//!   signature is not verified: conpere uses the token, the API verifies it. A token without
//!   a readable `exp` is kept for a conservative default lifetime (5 minutes).
//! * Concurrent callers share one renewal (single flight); when that renewal fails, the
//!   callers that were waiting for it get its error instead of each posting the password
//!   again (a wrong password repeated fifty times locks an account).
//! * [`BearerProvider::send`] adds the `Authorization` header to each attempt once the
//!   attempt has its turn on the client (a permit and the rate cap), not before: a request
//!   can wait for a permit, or back off after a 503, longer than a token lives, and must
//!   not then leave with a token that expired on the way. When the API still answers
//!   401/403, the token is renewed once and the request retried once.
//!
//! The token request goes through the adapter's [`HttpClient`], so the concurrency bound,
//! the rate cap and the retries of transient failures (5xx, 429, network) cover it too.
//! It goes on the permit of the attempt that needs the token (a [`Turn`]): waiting for
//! another permit while every permit waits for the token would wait forever. A request
//! carrying the bearer token gets none of that client's own [`crate::http::Auth`]
//! credentials.
//!
//! ```no_run
//! use conpere_connectors::bearer::{BearerProvider, BearerSettings};
//! use conpere_connectors::http::{HttpClient, HttpSettings, Outcome, RequestSpec, Url};
//! use conpere_connectors::SourceConfig;
//!
//! # async fn run(config: SourceConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpClient::new(&HttpSettings::default())?;
//! let settings = BearerSettings::new(
//!     Url::parse("https://authn-app.univ.pc-scol.fr/cas/v1/tickets")?,
//!     "svc-conpere",
//!     config.required_secret("password")?,
//! );
//! let tokens = BearerProvider::new(settings, client)?;
//! let url = Url::parse("https://ref.univ.pc-scol.fr/api/ref/v1/etablissements")?;
//! let response = tokens
//!     .send(RequestSpec::get(url, "REF établissements"), Outcome::by_status)
//!     .await?;
//! println!("{} bytes", response.body.len());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tokio::sync::Mutex;

use crate::config::Secret;
use crate::connector::ConnectorError;
use crate::http::{
    Authorizer, HttpClient, HttpError, Outcome, RequestSpec, Response, SendError, StatusCode, Turn,
    Url,
};
use conpere_model::FailureKind;

/// Default renew margin: a token is renewed this long before its `exp`.
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// Default lifetime of a token whose `exp` cannot be read: short, so that an unknown
/// lifetime costs a few extra logins rather than a run of refused requests.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The operation label of the token request, in [`HttpClient`] logs and errors.
const TOKEN_OPERATION: &str = "bearer token request";

/// Where and as whom to get tokens. `Debug` hides the password.
///
/// ```
/// use conpere_connectors::bearer::{BearerSettings, DEFAULT_RENEW_MARGIN};
/// use conpere_connectors::http::Url;
/// use conpere_connectors::SourceConfig;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("password");
/// # std::fs::write(&path, "hunter2").unwrap();
/// # let toml = format!("[sources.pegase]\nkind = \"pegase\"\npassword_file = {:?}\n", path);
/// let config = SourceConfig::from_toml("pegase", &toml).unwrap();
/// let settings = BearerSettings::new(
///     Url::parse("https://authn-app.univ.pc-scol.fr/cas/v1/tickets").unwrap(),
///     "svc-conpere",
///     config.required_secret("password").unwrap(),
/// );
/// assert_eq!(settings.renew_margin, DEFAULT_RENEW_MARGIN);
/// assert!(!format!("{settings:?}").contains("hunter2"));
/// ```
#[derive(Clone, Debug)]
pub struct BearerSettings {
    /// The token endpoint, used exactly as given (no trailing slash added or removed), e.g.
    /// `https://authn-app.<env>.pc-scol.fr/cas/v1/tickets`.
    pub auth_url: Url,
    /// The service account.
    pub username: String,
    /// Its password, resolved from `password_env` / `password_file`.
    pub password: Secret,
    /// How long before `exp` a token is renewed; default [`DEFAULT_RENEW_MARGIN`]. Capped at
    /// half the token's lifetime, so that a short-lived token is still used.
    pub renew_margin: Duration,
    /// How long a token without a readable `exp` is kept; default [`DEFAULT_LIFETIME`].
    pub default_lifetime: Duration,
}

impl BearerSettings {
    /// Settings with the default renew margin and default lifetime.
    pub fn new(auth_url: Url, username: impl Into<String>, password: Secret) -> BearerSettings {
        BearerSettings {
            auth_url,
            username: username.into(),
            password,
            renew_margin: DEFAULT_RENEW_MARGIN,
            default_lifetime: DEFAULT_LIFETIME,
        }
    }
}

/// A bearer token. Cheap to clone; `Debug` shows its expiry, never the token.
///
/// ```no_run
/// use conpere_connectors::bearer::BearerProvider;
/// # async fn run(tokens: BearerProvider) -> Result<(), Box<dyn std::error::Error>> {
/// let token = tokens.token().await?;
/// let value = token.header_value(); // "Bearer eyJ…", marked sensitive
/// assert!(value.is_sensitive());
/// println!("{token:?} expires at {:?}", token.expires_at());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerToken {
    /// `Bearer <jwt>`, marked sensitive so that `Debug` of a header map hides it.
    header: HeaderValue,
    expires_at: SystemTime,
    /// Tells tokens apart without comparing secrets: the n-th token this provider obtained.
    serial: u64,
}

impl BearerToken {
    /// The `Authorization` header value, `Bearer <token>`, marked sensitive.
    pub fn header_value(&self) -> HeaderValue {
        self.header.clone()
    }

    /// When the token expires: its `exp` claim, or when the default lifetime ends.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .field("serial", &self.serial)
            .finish()
    }
}

/// Counters since the provider was built (shared by its clones), for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BearerStats {
    /// Tokens obtained from the token endpoint.
    pub tokens_obtained: u64,
    /// Token requests that failed (each may have made several attempts).
    pub token_failures: u64,
    /// Requests an API refused (401/403) and that were retried with a renewed token.
    pub refusals_renewed: u64,
}

/// Errors of the bearer-token provider. None carries the password or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The settings cannot work.
    #[error("bearer token settings: {message}")]
    Settings {
        /// What is wrong and what to do.
        message: String,
    },
    /// The token endpoint refused the credentials (HTTP 400, 401 or 403). Never retried:
    /// repeating a wrong password can lock the account.
    #[error(
        "{TOKEN_OPERATION} to {auth_url}: the credentials of `{username}` were refused \
         (HTTP {status}); check the username and password_env (or password_file), and that \
         the account is not locked or expired"
    )]
    CredentialsRefused {
        /// The token endpoint, without query string.
        auth_url: String,
        /// The account.
        username: String,
        /// 400, 401 or 403.
        status: StatusCode,
    },
    /// The token request failed otherwise (after the client's retries, when worth retrying).
    #[error("{TOKEN_OPERATION} to {auth_url} failed{}: {reason}", status_text(*.status))]
    TokenRequest {
        /// The token endpoint, without query string.
        auth_url: String,
        /// The last HTTP status, when the last attempt got a response.
        status: Option<StatusCode>,
        /// What went wrong and what to check.
        reason: String,
    },
    /// The endpoint answered 201 but its body is not a usable token.
    #[error(
        "{TOKEN_OPERATION} to {auth_url}: the 201 answer is not a bearer token ({reason}); \
         check that auth_url is the token endpoint (for Pégase: \
         https://authn-app.<env>.pc-scol.fr/cas/v1/tickets, no trailing slash)"
    )]
    BadToken {
        /// The token endpoint, without query string.
        auth_url: String,
        /// What is wrong with the body (never the body itself).
        reason: String,
    },
    /// The API refused a token obtained right after an earlier refusal: the login works,
    /// so the account lacks rights on this API, or the API trusts another token issuer.
    #[error(
        "{operation}: the API refused a freshly renewed bearer token (HTTP {status}); the \
         login of `{username}` works, so check that this account has rights on this API \
         (and, for Pégase, that the API and auth_url belong to the same environment)"
    )]
    TokenRefused {
        /// The operation label of the API request.
        operation: String,
        /// 401 or 403.
        status: StatusCode,
        /// The account.
        username: String,
    },
    /// The API request itself failed (not an authentication problem).
    #[error(transparent)]
    Http(#[from] HttpError),
}

fn status_text(status: Option<StatusCode>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl BearerError {
    /// A copy of a token-request error, for the callers that waited on the failed request.
    /// `None` for the other kinds, which never come from a token request.
    fn replay(&self) -> Option<BearerError> {
        Some(match self {
            BearerError::CredentialsRefused {
                auth_url,
                username,
                status,
            } => BearerError::CredentialsRefused {
                auth_url: auth_url.clone(),
                username: username.clone(),
                status: *status,
            },
            BearerError::TokenRequest {
                auth_url,
                status,
                reason,
            } => BearerError::TokenRequest {
                auth_url: auth_url.clone(),
                status: *status,
                reason: reason.clone(),
            },
            BearerError::BadToken { auth_url, reason } => BearerError::BadToken {
                auth_url: auth_url.clone(),
                reason: reason.clone(),
            },
            _ => return None,
        })
    }
}

impl From<BearerError> for ConnectorError {
    /// Keeps the operation (the API call, or the token request) and the advice.
    fn from(error: BearerError) -> ConnectorError {
        match error {
            BearerError::Http(error) => ConnectorError::from(error),
            BearerError::TokenRefused { ref operation, .. } => {
                let operation = operation.clone();
                let text = error.to_string();
                let message = text
                    .strip_prefix(&format!("{operation}: "))
                    .map(str::to_string)
                    .unwrap_or(text);
                ConnectorError::of(FailureKind::Refused, operation, message)
            }
            other => {
                let kind = match &other {
                    BearerError::Settings { .. } => FailureKind::Configuration,
                    BearerError::CredentialsRefused { .. } => FailureKind::Refused,
                    BearerError::BadToken { .. } => FailureKind::BadData,
                    _ => FailureKind::Unavailable,
                };
                ConnectorError::of(kind, TOKEN_OPERATION, other)
            }
        }
    }
}

/// Gets, caches and renews bearer tokens for one source. Cheap to clone; clones share the
/// cached token and the counters.
///
/// ```no_run
/// use conpere_connectors::bearer::{BearerProvider, BearerSettings};
/// use conpere_connectors::http::{HttpClient, HttpSettings, Url};
/// use conpere_connectors::Secret;
/// # async fn run(password: Secret) -> Result<(), Box<dyn std::error::Error>> {
/// let client = HttpClient::new(&HttpSettings::default())?;
/// let url = Url::parse("https://authn-app.univ.pc-scol.fr/cas/v1/tickets")?;
/// let tokens = BearerProvider::new(BearerSettings::new(url, "svc-conpere", password), client)?;
/// let token = tokens.token().await?;
/// # drop(token); Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerProvider {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BearerSettings,
    client: HttpClient,
    /// The token endpoint for errors and logs: no query, no user info.
    shown_url: String,
    /// The cache; holding the lock while renewing is what makes renewal single-flight.
    state: Mutex<State>,
    /// Token requests finished so far; read before waiting for the lock, it tells a caller
    /// whether a request finished (and maybe failed) while it waited.
    requests_done: AtomicU64,
    tokens_obtained: AtomicU64,
    token_failures: AtomicU64,
    refusals_renewed: AtomicU64,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The last token request's error and its number in `requests_done`.
    failure: Option<(u64, BearerError)>,
}

struct Cached {
    token: BearerToken,
    /// Monotonic, so that a wall-clock jump neither keeps a stale token nor drops a good one.
    renew_at: Instant,
}

impl fmt::Debug for BearerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerProvider")
            .field("auth_url", &self.inner.shown_url)
            .field("username", &self.inner.settings.username)
            .field("stats", &self.stats())
            .finish()
    }
}

impl BearerProvider {
    /// A provider getting tokens through `client` (share the adapter's client, so that its
    /// concurrency bound and rate cap cover the token requests too). No request is made yet.
    ///
    /// Fails when the username or password is empty, or the URL is not HTTP(S).
    pub fn new(
        settings: BearerSettings,
        client: HttpClient,
    ) -> Result<BearerProvider, BearerError> {
        validate(&settings)?;
        let shown_url = shown_url(&settings.auth_url);
        Ok(BearerProvider {
            inner: Arc::new(Inner {
                settings,
                client,
                shown_url,
                state: Mutex::new(State::default()),
                requests_done: AtomicU64::new(0),
                tokens_obtained: AtomicU64::new(0),
                token_failures: AtomicU64::new(0),
                refusals_renewed: AtomicU64::new(0),
            }),
        })
    }

    /// Counters since the provider was built.
    pub fn stats(&self) -> BearerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BearerStats {
            tokens_obtained: load(&self.inner.tokens_obtained),
            token_failures: load(&self.inner.token_failures),
            refusals_renewed: load(&self.inner.refusals_renewed),
        }
    }

    /// The current token: the cached one until its renew time, else a new one. Waits for
    /// a permit of the provider's client first, as every request does.
    ///
    /// Concurrent callers share one token request; if it fails, those that waited for it
    /// get its error without posting the credentials again.
    pub async fn token(&self) -> Result<BearerToken, BearerError> {
        let seen = self.requests_done();
        let turn = self.inner.client.turn().await;
        self.token_on(&turn, seen).await
    }

    /// Token requests finished so far. A caller reads it before it waits (for a permit,
    /// then for the cache's lock): a request that finished, and failed, since then is
    /// one it waited for, whose error it shares.
    fn requests_done(&self) -> u64 {
        self.inner.requests_done.load(Ordering::Acquire)
    }

    /// [`token`](BearerProvider::token) for an attempt that holds `turn`, of a caller
    /// that started waiting when `seen` token requests were done: a token request goes on
    /// that turn. Always a permit first, then the cache's lock: callers that wait for the
    /// lock hold permits, so the lock's holder must not wait for one.
    async fn token_on(&self, turn: &Turn<'_>, seen: u64) -> Result<BearerToken, BearerError> {
        let mut state = self.inner.state.lock().await;
        if let Some(cached) = &state.cached {
            if Instant::now() < cached.renew_at {
                return Ok(cached.token.clone());
            }
        }
        if let Some((request, error)) = &state.failure {
            if *request > seen {
                if let Some(error) = error.replay() {
                    return Err(error);
                }
            }
        }
        let result = self.request_token(turn).await;
        let request = self.inner.requests_done.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(cached) => {
                let token = cached.token.clone();
                *state = State {
                    cached: Some(cached),
                    failure: None,
                };
                Ok(token)
            }
            Err(error) => {
                self.inner.token_failures.fetch_add(1, Ordering::Relaxed);
                state.cached = None;
                state.failure = error.replay().map(|copy| (request, copy));
                Err(error)
            }
        }
    }

    /// Drops `token` from the cache if it is still the cached one; call it when a request
    /// with that token got 401/403. Concurrent refusals of the same token thus cause one
    /// renewal, not one each.
    pub async fn invalidate(&self, token: &BearerToken) {
        let mut state = self.inner.state.lock().await;
        if state
            .cached
            .as_ref()
            .is_some_and(|cached| cached.token.serial == token.serial)
        {
            tracing::debug!(auth_url = %self.inner.shown_url, "bearer token refused; dropped");
            state.cached = None;
        }
    }

    /// Sends `request` through the provider's client with the `Authorization: Bearer …`
    /// header, worked out for each attempt once it has its turn (see the module's docs).
    ///
    /// On 401/403 the token is renewed once and the request retried once: tokens can be
    /// revoked or expire early. A second refusal is [`BearerError::TokenRefused`]. Other
    /// failures are those of [`HttpClient::send`], as [`BearerError::Http`].
    ///
    /// ```no_run
    /// use conpere_connectors::bearer::BearerProvider;
    /// use conpere_connectors::http::{Outcome, RequestSpec, Url};
    /// # async fn run(tokens: BearerProvider) -> Result<(), Box<dyn std::error::Error>> {
    /// let url = Url::parse("https://ins.univ.pc-scol.fr/api/ins/v5/etablissements/ETAB00/periodes")?;
    /// let response = tokens
    ///     .send(RequestSpec::get(url, "INS périodes"), Outcome::by_status)
    ///     .await?;
    /// # drop(response); Ok(()) }
    /// ```
    pub async fn send<F>(&self, request: RequestSpec, classify: F) -> Result<Response, BearerError>
    where
        F: Fn(&Response) -> Outcome,
    {
        let client = &self.inner.client;
        let first = Carrier::new(self);
        let status = match client
            .send_authorized(request.clone(), &classify, &first)
            .await
        {
            Err(SendError::Http(HttpError::AuthRefused { status, .. })) => status,
            other => return other.map_err(BearerError::from),
        };
        tracing::info!(
            operation = %request.operation(),
            %status,
            "the API refused the bearer token; renewing it and retrying once"
        );
        self.inner.refusals_renewed.fetch_add(1, Ordering::Relaxed);
        if let Some(refused) = first.carried() {
            self.invalidate(&refused).await;
        }
        let retry = Carrier::new(self);
        match client.send_authorized(request, &classify, &retry).await {
            Err(SendError::Http(HttpError::AuthRefused { operation, status })) => {
                Err(BearerError::TokenRefused {
                    operation,
                    status,
                    username: self.inner.settings.username.clone(),
                })
            }
            other => other.map_err(BearerError::from),
        }
    }

    /// One token request (with the client's retries of transient failures).
    async fn request_token(&self, turn: &Turn<'_>) -> Result<Cached, BearerError> {
        let settings = &self.inner.settings;
        let request = RequestSpec::post(settings.auth_url.clone(), TOKEN_OPERATION)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(login_form(&settings.username, &settings.password));
        // The turn is one of the provider's client: the token goes on its permit.
        let response = turn
            .send(request, classify_token_answer)
            .await
            .map_err(|error| self.request_error(error))?;
        if is_credentials_refusal(response.status) {
            return Err(self.credentials_refused(response.status));
        }
        let cached = self.parse_token(&response.body)?;
        let serial = self.inner.tokens_obtained.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(
            auth_url = %self.inner.shown_url,
            username = %settings.username,
            serial,
            renew_in_s = cached.renew_at.saturating_duration_since(Instant::now()).as_secs(),
            "bearer token obtained"
        );
        Ok(Cached {
            token: BearerToken {
                serial,
                ..cached.token
            },
            ..cached
        })
    }

    /// Reads the token and its expiry from a 201 body.
    fn parse_token(&self, body: &[u8]) -> Result<Cached, BearerError> {
        let bad = |reason: &str| BearerError::BadToken {
            auth_url: self.inner.shown_url.clone(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8 text"))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(bad("the body is empty"));
        }
        if token.contains(|c: char| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            return Err(bad(
                "the body holds spaces or non-ASCII characters, like an HTML page; the \
                 endpoint may not support `token=true`",
            ));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| bad("the body holds characters a header cannot carry"))?;
        header.set_sensitive(true);
        let (expires_at, renew_at) = self.lifetime(token);
        Ok(Cached {
            token: BearerToken {
                header,
                expires_at,
                serial: 0,
            },
            renew_at,
        })
    }

    /// When the token expires and when to renew it.
    fn lifetime(&self, token: &str) -> (SystemTime, Instant) {
        let settings = &self.inner.settings;
        let now = SystemTime::now();
        let received = Instant::now();
        let by_default = |why: &str| {
            tracing::debug!(
                auth_url = %self.inner.shown_url,
                why,
                lifetime_s = settings.default_lifetime.as_secs(),
                "bearer token without a usable `exp`; keeping it for the default lifetime"
            );
            (
                now + settings.default_lifetime,
                received + settings.default_lifetime,
            )
        };
        let expires_at = match jwt_expiry(token) {
            Ok(expires_at) => expires_at,
            Err(why) => return by_default(why),
        };
        match expires_at.duration_since(now) {
            Ok(left) if !left.is_zero() => {
                // A margin longer than the token's life would renew it at every call.
                let margin = settings.renew_margin.min(left / 2);
                (expires_at, received + (left - margin))
            }
            // Already expired by our clock, yet just issued: our clock is probably ahead.
            // Let the API judge (a refusal renews once) rather than renew at every call.
            _ => by_default("`exp` is already past: is this host's clock right?"),
        }
    }

    fn request_error(&self, error: HttpError) -> BearerError {
        let auth_url = self.inner.shown_url.clone();
        let (status, reason) = match &error {
            HttpError::AuthRefused { status, .. } => return self.credentials_refused(*status),
            HttpError::Rejected { status, .. } => (Some(*status), error.to_string()),
            HttpError::GaveUp { status, .. } => (*status, error.to_string()),
            _ => (None, error.to_string()),
        };
        // The client's message starts with the operation label, which ours repeats.
        let reason = reason
            .strip_prefix(&format!("{TOKEN_OPERATION}: "))
            .map(str::to_string)
            .unwrap_or(reason);
        BearerError::TokenRequest {
            auth_url,
            status,
            reason,
        }
    }

    fn credentials_refused(&self, status: StatusCode) -> BearerError {
        BearerError::CredentialsRefused {
            auth_url: self.inner.shown_url.clone(),
            username: self.inner.settings.username.clone(),
            status,
        }
    }
}

fn validate(settings: &BearerSettings) -> Result<(), BearerError> {
    let fail = |message: &str| {
        Err(BearerError::Settings {
            message: message.to_string(),
        })
    };
    if !matches!(settings.auth_url.scheme(), "https" | "http") {
        return fail(
            "auth_url must be an https:// URL (http:// only for a local test server: the \
             password travels in the request body)",
        );
    }
    if settings.username.trim().is_empty() {
        return fail("the username is empty");
    }
    if settings.password.expose().is_empty() {
        return fail("the password is empty: check password_env (or password_file)");
    }
    if settings.default_lifetime.is_zero() {
        return fail("the default token lifetime must be positive");
    }
    Ok(())
}

/// 201 is the answer; 400/401/403 mean refused credentials (401/403 never reach a
/// classifier); other successes are wrong endpoints; the rest by status (5xx/429 retried).
fn classify_token_answer(response: &Response) -> Outcome {
    let status = response.status;
    if status == StatusCode::CREATED || is_credentials_refusal(status) {
        Outcome::Done
    } else if status.is_success() {
        Outcome::Fail(format!(
            "expected 201 Created with a token, got {status}: check that auth_url is the token \
             endpoint"
        ))
    } else {
        Outcome::by_status(response)
    }
}

fn is_credentials_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

/// The provider as the authorizer of one request's attempts. It remembers the token the
/// last attempt carried, so that a refusal drops that token and no newer one.
struct Carrier<'a> {
    provider: &'a BearerProvider,
    /// Token requests done when the request started.
    seen: u64,
    carried: std::sync::Mutex<Option<BearerToken>>,
}

impl<'a> Carrier<'a> {
    fn new(provider: &'a BearerProvider) -> Carrier<'a> {
        Carrier {
            provider,
            seen: provider.requests_done(),
            carried: std::sync::Mutex::new(None),
        }
    }

    fn carried(&self) -> Option<BearerToken> {
        let carried = self.carried.lock();
        carried.unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl Authorizer for Carrier<'_> {
    type Error = BearerError;

    async fn authorization(&self, turn: &Turn<'_>) -> Result<HeaderValue, BearerError> {
        let token = self.provider.token_on(turn, self.seen).await?;
        let header = token.header_value();
        let mut carried = self.carried.lock().unwrap_or_else(|e| e.into_inner());
        *carried = Some(token);
        Ok(header)
    }
}

impl From<SendError<BearerError>> for BearerError {
    fn from(error: SendError<BearerError>) -> BearerError {
        match error {
            SendError::Http(error) => BearerError::Http(error),
            SendError::Authorization(error) => error,
        }
    }
}

/// The URL for errors and logs: no user info, query or fragment.
fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have user info, which then have none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// The login form: `username=…&password=…&token=true`.
fn login_form(username: &str, password: &Secret) -> Vec<u8> {
    let mut form = String::from("username=");
    form_encode(username, &mut form);
    form.push_str("&password=");
    form_encode(password.expose(), &mut form);
    form.push_str("&token=true");
    form.into_bytes()
}

/// `application/x-www-form-urlencoded` encoding of one value (WHATWG URL standard): ASCII
/// letters, digits and `*-._` as is, space as `+`, every other UTF-8 byte as `%XX`.
fn form_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0F)]));
            }
        }
    }
}

/// The `exp` claim of a JWT, read without verifying the signature: conpere uses the
/// token, the API verifies it. The error says why there is none (for a debug log).
fn jwt_expiry(token: &str) -> Result<SystemTime, &'static str> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a signed JWT (three dot-separated parts)");
    };
    // Padding is not allowed in JWTs, but tolerating it costs nothing.
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the JWT payload is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&json).map_err(|_| "the JWT payload is not JSON")?;
    let exp = claims
        .get("exp")
        .ok_or("the JWT has no `exp` claim")?
        .as_f64()
        .ok_or("the JWT's `exp` is not a number")?;
    Duration::try_from_secs_f64(exp)
        .ok()
        .and_then(|since_epoch| UNIX_EPOCH.checked_add(since_epoch))
        .ok_or("the JWT's `exp` is not a time")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpSettings;
    use crate::SourceConfig;
    use axum::extract::State as Shared;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Router;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;
    use tokio::net::TcpListener;

    const USER: &str = "svc-conpere";
    const PASSWORD: &str = "p&ss= wörd é+%";

    /// A CAS token endpoint and a protected API, with what they saw.
    #[derive(Default)]
    struct Server {
        /// `exp` of the tokens, in seconds from now; `None`: no `exp` claim.
        exp_in: Option<i64>,
        /// Delay before answering a token request (to overlap concurrent callers).
        delay: Duration,
        posts: AtomicUsize,
        api_calls: AtomicUsize,
        /// The API accepts tokens with this serial or later.
        oldest_accepted: AtomicUsize,
        bodies: std::sync::Mutex<Vec<String>>,
        /// Requests to `/api/held` that arrived; each waits for a `release`.
        held: AtomicUsize,
        release: tokio::sync::Notify,
        /// Requests to `/api/busy-once` that arrived (the first is answered 503).
        busy_once_calls: AtomicUsize,
        /// Requests that arrived with an expired token.
        expired_arrivals: AtomicUsize,
    }

    fn jwt(claims: serde_json::Value) -> String {
        let part = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let header = part(serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        format!("{header}.{}.c2lnbmF0dXJl", part(claims))
    }

    fn epoch_now() -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        i64::try_from(now.as_secs()).unwrap()
    }

    async fn cas(Shared(server): Shared<Arc<Server>>, body: String) -> axum::response::Response {
        let serial = server.posts.fetch_add(1, Ordering::SeqCst) + 1;
        server.bodies.lock().unwrap().push(body.clone());
        tokio::time::sleep(server.delay).await;
        // Decoded as a standard form parser would (`+` is a space, `%XX` a UTF-8 byte).
        let Ok(parsed) = Url::parse(&format!("http://cas.test/?{body}")) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let form: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("username") != Some(USER) || field("password") != Some(PASSWORD) {
            return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
        }
        let mut claims = serde_json::json!({ "sub": USER, "serial": serial });
        if let Some(exp_in) = server.exp_in {
            claims["exp"] = serde_json::json!(epoch_now() + exp_in);
        }
        (StatusCode::CREATED, format!("{}\n", jwt(claims))).into_response()
    }

    /// The serial of the token in `Authorization`, if it is a bearer JWT of ours.
    fn serial(headers: &HeaderMap) -> Option<usize> {
        let value = headers.get("authorization")?.to_str().ok()?;
        let payload = value.strip_prefix("Bearer ")?.split('.').nth(1)?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        usize::try_from(claims.get("serial")?.as_u64()?).ok()
    }

    async fn api(Shared(server): Shared<Arc<Server>>, headers: HeaderMap) -> impl IntoResponse {
        server.api_calls.fetch_add(1, Ordering::SeqCst);
        match serial(&headers) {
            Some(n) if n >= server.oldest_accepted.load(Ordering::SeqCst) => {
                (StatusCode::OK, "data")
            }
            _ => (StatusCode::UNAUTHORIZED, "invalid token"),
        }
    }

    /// 403 for a token past its `exp` on arrival (counted), as Pégase answers.
    fn refuse_expired(server: &Server, headers: &HeaderMap) -> Option<StatusCode> {
        let value = headers.get("authorization")?.to_str().ok()?;
        let exp = jwt_expiry(value.strip_prefix("Bearer ")?).ok()?;
        if SystemTime::now() < exp {
            return None;
        }
        server.expired_arrivals.fetch_add(1, Ordering::SeqCst);
        Some(StatusCode::FORBIDDEN)
    }

    /// Waits for the test's `release`, then answers.
    async fn held_api(Shared(server): Shared<Arc<Server>>) -> StatusCode {
        server.held.fetch_add(1, Ordering::SeqCst);
        server.release.notified().await;
        StatusCode::OK
    }

    /// The first call is 503 with `Retry-After: 2`; the others check the token's expiry.
    async fn busy_once_api(
        Shared(server): Shared<Arc<Server>>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        if server.busy_once_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let busy = [("retry-after", "2")];
            return (StatusCode::SERVICE_UNAVAILABLE, busy).into_response();
        }
        expiring_api(Shared(server), headers).await.into_response()
    }

    async fn expiring_api(Shared(server): Shared<Arc<Server>>, headers: HeaderMap) -> StatusCode {
        refuse_expired(&server, &headers).unwrap_or(StatusCode::OK)
    }

    async fn refusing_api(Shared(server): Shared<Arc<Server>>) -> impl IntoResponse {
        server.api_calls.fetch_add(1, Ordering::SeqCst);
        StatusCode::UNAUTHORIZED
    }

    async fn serve(server: Server) -> (SocketAddr, Arc<Server>) {
        let server = Arc::new(server);
        let router = Router::new()
            .route("/cas/v1/tickets", post(cas))
            .route("/cas400", post(|| async { StatusCode::BAD_REQUEST }))
            .route(
                "/cas503",
                post(|| async { StatusCode::SERVICE_UNAVAILABLE }),
            )
            .route(
                "/html",
                post(|| async { (StatusCode::CREATED, "<html> TGT </html>") }),
            )
            .route("/api/data", get(api))
            .route("/api/refusing", get(refusing_api))
            .route("/api/held", get(held_api))
            .route("/api/busy-once", get(busy_once_api))
            .route("/api/expiring", get(expiring_api))
            .with_state(server.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (address, server)
    }

    fn url(address: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{address}{path}")).unwrap()
    }

    fn client() -> HttpClient {
        HttpClient::new(&HttpSettings {
            retries: 2,
            retry_initial_delay_ms: 1,
            retry_max_delay_ms: 5,
            ..HttpSettings::default()
        })
        .unwrap()
    }

    /// A password as adapters get it: from a `password_file`.
    fn secret(value: &str) -> Secret {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, value).unwrap();
        let toml = format!("[sources.pegase]\nkind = \"pegase\"\npassword_file = {path:?}\n");
        let config = SourceConfig::from_toml("pegase", &toml).unwrap();
        config.required_secret("password").unwrap()
    }

    /// A provider whose client has `settings`.
    fn provider_with(address: SocketAddr, settings: HttpSettings) -> BearerProvider {
        let url = url(address, "/cas/v1/tickets");
        let bearer = BearerSettings::new(url, USER, secret(PASSWORD));
        BearerProvider::new(bearer, HttpClient::new(&settings).unwrap()).unwrap()
    }

    /// Sleeps until `token` is past its `exp`, by the API's clock and ours.
    async fn outlive(token: &BearerToken) {
        let left = token.expires_at().duration_since(SystemTime::now());
        tokio::time::sleep(left.unwrap_or_default() + Duration::from_millis(50)).await;
    }

    fn provider(address: SocketAddr, path: &str, password: &str) -> BearerProvider {
        let settings = BearerSettings::new(url(address, path), USER, secret(password));
        BearerProvider::new(settings, client()).unwrap()
    }

    fn with_exp(exp_in: i64) -> Server {
        Server {
            exp_in: Some(exp_in),
            ..Server::default()
        }
    }

    #[tokio::test]
    async fn a_201_jwt_is_obtained_and_cached_until_exp() {
        let (address, server) = serve(with_exp(3600)).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        let first = tokens.token().await.unwrap();
        let again = tokens.token().await.unwrap();
        assert_eq!(first.header_value(), again.header_value());
        assert!(first.header_value().is_sensitive());
        assert!(first
            .header_value()
            .to_str()
            .unwrap()
            .starts_with("Bearer ey"));
        let left = first
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left > Duration::from_secs(3500), "{left:?}");
        assert_eq!(server.posts.load(Ordering::SeqCst), 1);
        assert_eq!(tokens.stats().tokens_obtained, 1);
        let shown = format!("{first:?} {tokens:?}");
        assert!(!shown.contains("eyJ") && !shown.contains("ss="), "{shown}");
    }

    #[tokio::test]
    async fn the_form_is_percent_encoded() {
        let (address, server) = serve(with_exp(3600)).await;
        provider(address, "/cas/v1/tickets", PASSWORD)
            .token()
            .await
            .unwrap();
        let bodies = server.bodies.lock().unwrap().clone();
        assert_eq!(
            bodies,
            ["username=svc-conpere&password=p%26ss%3D+w%C3%B6rd+%C3%A9%2B%25&token=true"]
        );
    }

    #[tokio::test]
    async fn wrong_credentials_are_refused_once_without_the_password() {
        let (address, server) = serve(with_exp(3600)).await;
        let tokens = provider(address, "/cas/v1/tickets?tenant=univ", "hunter2");
        let error = tokens.token().await.unwrap_err();
        assert!(
            matches!(
                error,
                BearerError::CredentialsRefused {
                    status: StatusCode::UNAUTHORIZED,
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(USER) && message.contains("/cas/v1/tickets"),
            "{message}"
        );
        assert!(
            !message.contains("hunter2") && !message.contains("tenant"),
            "{message}"
        );
        assert!(!format!("{error:?} {tokens:?}").contains("hunter2"));
        assert_eq!(server.posts.load(Ordering::SeqCst), 1, "never retried");

        let error = provider(address, "/cas400", "hunter2")
            .token()
            .await
            .unwrap_err();
        assert!(
            matches!(error, BearerError::CredentialsRefused { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn concurrent_callers_waiting_on_a_refusal_share_it() {
        let server = Server {
            delay: Duration::from_millis(50),
            ..with_exp(3600)
        };
        let (address, server) = serve(server).await;
        let tokens = provider(address, "/cas/v1/tickets", "hunter2");
        let calls = (0..20).map(|_| tokens.token());
        let results = futures::future::join_all(calls).await;
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(BearerError::CredentialsRefused { .. }))));
        assert_eq!(server.posts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_named() {
        let (address, _) = serve(with_exp(3600)).await;
        let error = provider(address, "/cas503?tenant=univ", PASSWORD)
            .token()
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                BearerError::TokenRequest {
                    status: Some(StatusCode::SERVICE_UNAVAILABLE),
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("http://{address}/cas503 failed (HTTP 503"))
                && message.contains("3 attempts"),
            "{message}"
        );
        assert!(
            !message.contains("tenant") && !message.contains("ss="),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_201_that_is_not_a_token_is_named() {
        let (address, _) = serve(with_exp(3600)).await;
        let error = provider(address, "/html", PASSWORD)
            .token()
            .await
            .unwrap_err();
        assert!(matches!(error, BearerError::BadToken { .. }), "{error}");
        assert!(error.to_string().contains("token=true"), "{error}");
    }

    #[tokio::test]
    async fn a_token_is_renewed_once_it_expires() {
        let (address, server) = serve(with_exp(2)).await;
        let settings = BearerSettings {
            renew_margin: Duration::from_secs(1),
            ..BearerSettings::new(url(address, "/cas/v1/tickets"), USER, secret(PASSWORD))
        };
        let tokens = BearerProvider::new(settings, client()).unwrap();
        let first = tokens.token().await.unwrap();
        assert_eq!(tokens.token().await.unwrap().serial, first.serial);
        // `exp` is whole seconds: past it, whatever the rounding, the token must be renewed.
        tokio::time::sleep(
            first
                .expires_at()
                .duration_since(SystemTime::now())
                .unwrap(),
        )
        .await;
        let renewed = tokens.token().await.unwrap();
        assert_ne!(renewed.header_value(), first.header_value());
        assert_eq!(server.posts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn fifty_concurrent_callers_make_one_request() {
        let server = Server {
            delay: Duration::from_millis(50),
            ..with_exp(3600)
        };
        let (address, server) = serve(server).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        let calls = (0..50).map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await.unwrap() })
        });
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().serial == 1));
        assert_eq!(server.posts.load(Ordering::SeqCst), 1);
        assert_eq!(tokens.stats().tokens_obtained, 1);
    }

    #[tokio::test]
    async fn a_token_without_exp_gets_the_default_lifetime() {
        let (address, server) = serve(Server::default()).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        let token = tokens.token().await.unwrap();
        let left = token
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left <= DEFAULT_LIFETIME && left > DEFAULT_LIFETIME - Duration::from_secs(10));
        tokens.token().await.unwrap();
        assert_eq!(server.posts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn send_renews_a_refused_token_once_and_succeeds() {
        let (address, server) = serve(with_exp(3600)).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        tokens.token().await.unwrap();
        // The API now refuses token 1 (revoked, or expired earlier than its `exp` says).
        server.oldest_accepted.store(2, Ordering::SeqCst);
        let request = RequestSpec::get(url(address, "/api/data"), "REF data");
        let response = tokens.send(request, Outcome::by_status).await.unwrap();
        assert_eq!(response.body, b"data");
        assert_eq!(server.posts.load(Ordering::SeqCst), 2);
        assert_eq!(server.api_calls.load(Ordering::SeqCst), 2);
        assert_eq!(tokens.stats().refusals_renewed, 1);
    }

    #[tokio::test]
    async fn send_gives_up_after_one_renewal() {
        let (address, server) = serve(with_exp(3600)).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        let request = RequestSpec::get(url(address, "/api/refusing"), "REF refusing");
        let error = tokens.send(request, Outcome::by_status).await.unwrap_err();
        assert!(matches!(error, BearerError::TokenRefused { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.starts_with("REF refusing:")
                && message.contains("rights")
                && message.contains(USER),
            "{message}"
        );
        assert_eq!(server.posts.load(Ordering::SeqCst), 2);
        assert_eq!(server.api_calls.load(Ordering::SeqCst), 2);
        let ConnectorError::Failed(failed) = ConnectorError::from(error) else {
            panic!("not a Failed error");
        };
        assert_eq!(failed.operation, "REF refusing");
        assert_eq!(failed.kind, FailureKind::Refused, "not tried again");
    }

    #[tokio::test]
    async fn concurrent_refusals_of_one_token_renew_it_once() {
        let (address, server) = serve(with_exp(3600)).await;
        let tokens = provider(address, "/cas/v1/tickets", PASSWORD);
        tokens.token().await.unwrap();
        server.oldest_accepted.store(2, Ordering::SeqCst);
        let calls = (0..10).map(|_| {
            let request = RequestSpec::get(url(address, "/api/data"), "REF data");
            tokens.send(request, Outcome::by_status)
        });
        for result in futures::future::join_all(calls).await {
            assert_eq!(result.unwrap().body, b"data");
        }
        assert_eq!(server.posts.load(Ordering::SeqCst), 2);
    }

    // The race of a busy machine, held open: a token that was current when its request
    // was made expires while the request waits for a permit. The token must be checked
    // when the request gets its turn, not sent stale to be refused.
    #[tokio::test]
    async fn a_token_that_expires_while_its_request_waits_for_a_permit_is_renewed_first() {
        // Tokens live between 1 and 2 s (`exp` is whole seconds).
        let (address, server) = serve(with_exp(2)).await;
        let one_at_a_time = HttpSettings {
            concurrency: 1,
            ..HttpSettings::default()
        };
        let tokens = provider_with(address, one_at_a_time);
        let first = tokens.token().await.unwrap();
        let held = tokio::spawn({
            let tokens = tokens.clone();
            let request = RequestSpec::get(url(address, "/api/held"), "REF held");
            async move { tokens.send(request, Outcome::by_status).await }
        });
        while server.held.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The client's one permit is taken: this request waits, made while `first` is current.
        let waiting = tokio::spawn({
            let tokens = tokens.clone();
            let request = RequestSpec::get(url(address, "/api/expiring"), "REF expiring");
            async move { tokens.send(request, Outcome::by_status).await }
        });
        outlive(&first).await;
        server.release.notify_one();
        held.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap().status, StatusCode::OK);
        assert_eq!(server.expired_arrivals.load(Ordering::SeqCst), 0);
        assert_eq!(tokens.stats().refusals_renewed, 0);
        assert_eq!(tokens.stats().tokens_obtained, 2);
    }

    // The same race across a retry: the server asks to come back in 2 s, longer than the
    // token has left; the retry must carry a renewed token.
    #[tokio::test]
    async fn a_token_that_expires_while_its_request_backs_off_is_renewed_for_the_retry() {
        let (address, server) = serve(with_exp(2)).await;
        let patient = HttpSettings {
            retries: 2,
            retry_initial_delay_ms: 1,
            retry_max_delay_ms: 5_000,
            ..HttpSettings::default()
        };
        let tokens = provider_with(address, patient);
        let request = RequestSpec::get(url(address, "/api/busy-once"), "REF busy");
        let response = tokens.send(request, Outcome::by_status).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(server.busy_once_calls.load(Ordering::SeqCst), 2);
        assert_eq!(server.expired_arrivals.load(Ordering::SeqCst), 0);
        assert_eq!(tokens.stats().refusals_renewed, 0);
        assert_eq!(tokens.stats().tokens_obtained, 2);
    }

    // A renewal needs a permit, and every permit may be held by a request waiting for the
    // renewal: the token request goes on the permit of the attempt that needs it.
    #[tokio::test]
    async fn renewing_with_every_permit_taken_does_not_deadlock() {
        let (address, server) = serve(with_exp(3600)).await;
        let two_at_a_time = HttpSettings {
            concurrency: 2,
            ..HttpSettings::default()
        };
        let tokens = provider_with(address, two_at_a_time);
        let calls = (0..8).map(|_| {
            let request = RequestSpec::get(url(address, "/api/expiring"), "REF expiring");
            tokens.send(request, Outcome::by_status)
        });
        let all = futures::future::join_all(calls);
        let results = tokio::time::timeout(Duration::from_secs(30), all).await;
        for result in results.expect("no deadlock") {
            assert_eq!(result.unwrap().status, StatusCode::OK);
        }
        assert_eq!(server.posts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn jwt_expiry_reads_exp_without_verifying() {
        let token = jwt(serde_json::json!({"exp": 2_000_000_000}));
        let expected = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert_eq!(jwt_expiry(&token), Ok(expected));
        assert!(jwt_expiry(&jwt(serde_json::json!({"sub": "x"}))).is_err());
        assert!(jwt_expiry(&jwt(serde_json::json!({"exp": "soon"}))).is_err());
        assert!(jwt_expiry(&jwt(serde_json::json!({"exp": -5}))).is_err());
        assert!(jwt_expiry("opaque-token").is_err());
        assert!(jwt_expiry("a.!!!.c").is_err());
    }

    #[test]
    fn settings_are_checked() {
        let client = client();
        let url = Url::parse("ftp://cas.example.fr/tickets").unwrap();
        let settings = BearerSettings::new(url, USER, secret("x"));
        let error = BearerProvider::new(settings, client).unwrap_err();
        assert!(error.to_string().contains("https"), "{error}");
    }
}
