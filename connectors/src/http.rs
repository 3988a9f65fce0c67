//! The HTTP client every web-service adapter uses to talk to a production SIS politely
//! and safely.
//!
//! A university's Apogée or Pégase serves its own staff first: conpere must never be the
//! reason the registration office waits. So one [`HttpClient`] per source:
//!
//! * keeps at most `concurrency` requests in flight (a permit is held only while a request
//!   is on the wire, never during a backoff sleep) and, optionally, at most
//!   `requests_per_second` new attempts per second;
//! * retries what is worth retrying — transport errors, timeouts, bodies cut short, HTTP 5xx,
//!   HTTP 429 (honouring `Retry-After`) and whatever the caller's classifier says — with
//!   exponential backoff and jitter, and gives up with an error that names the operation,
//!   the number of attempts, the last error and what to check;
//! * never retries an authentication refusal (401/403): hammering a directory with a wrong
//!   password locks accounts;
//! * with an [`Authorizer`] (a bearer token), gives each attempt its `Authorization`
//!   header once the attempt has its permit, so that a token that expired while the
//!   request queued or backed off is renewed first ([`HttpClient::send_authorized`]);
//! * reads bodies fully but never beyond `max_body_bytes`;
//! * trusts an extra CA bundle (`ca_file`) and presents a client certificate
//!   (`client_cert_file`) when the institution requires them;
//! * never writes credentials, header values, bodies or query strings to logs, `Debug`
//!   output or error messages (URL path segments that look like identifiers are masked too).
//!
//! Proxies: the `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment variables are honoured.
//!
//! ```no_run
//! use conpere_connectors::http::{Auth, HttpClient, HttpSettings, Outcome, RequestSpec, Url};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = HttpSettings::default();
//! let client = HttpClient::builder(&settings)
//!     .auth(Auth::basic("ws-conpere", "password from password_env"))
//!     .header("X-Gateway-Key", "key resolved from key_env")
//!     .build()?;
//! let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier")?;
//! let request = RequestSpec::post(url, "EtudiantMetier.recupererIAEtapes_v3 (student ******34)")
//!     .body("<soapenv:Envelope>…</soapenv:Envelope>");
//! let response = client.send(request, Outcome::by_status).await?;
//! println!("{} bytes", response.body.len());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::connector::ConnectorError;
use crate::spec::FieldSpec;
use conpere_model::FailureKind;

/// Re-exported so adapters need no direct `reqwest` dependency.
pub use reqwest::header;
/// Re-exported so adapters need no direct `reqwest` dependency.
pub use reqwest::{Method, StatusCode, Url};

/// Default cap on a response body: 64 MiB (Apogée and Pégase answers are a few MB at most).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Upper bound on `concurrency`: far above what any SIS tolerates, low enough to catch typos.
const MAX_CONCURRENCY: usize = 1024;

/// HTTP settings of a web-service source, to embed in an adapter's settings with
/// `#[serde(flatten)]`; every key has a sensible default.
///
/// Header values in `headers` are sent as given; secrets (API-gateway keys) must not be
/// written in the configuration file: the adapter resolves them from `*_env` / `*_file`
/// and passes them to [`HttpClientBuilder::header`]. `Debug` shows header names only.
///
/// ```
/// use conpere_connectors::http::HttpSettings;
/// use conpere_connectors::SourceConfig;
///
/// #[derive(serde::Deserialize)]
/// struct ApogeeSettings {
///     base_url: String,
///     #[serde(flatten)]
///     http: HttpSettings,
/// }
/// let config = SourceConfig::from_toml("apogee", r#"
///     [sources.apogee]
///     kind = "apogee"
///     base_url = "https://apogee.example.fr/wsapogee/services"
///     concurrency = 2
///     requests_per_second = 5
/// "#).unwrap();
/// let settings: ApogeeSettings = config.settings().unwrap();
/// assert_eq!(settings.http.concurrency, 2);
/// assert_eq!(settings.http.requests_per_second, Some(5.0));
/// assert_eq!(settings.http.retries, 4); // default
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Seconds to establish a connection (TCP + TLS); default 10.
    pub connect_timeout: f64,
    /// Seconds for a whole attempt, body included; default 120 (some Apogée calls are slow).
    pub request_timeout: f64,
    /// Requests in flight at once; default 4.
    pub concurrency: usize,
    /// New attempts per second, spread evenly (no bursts); default: no cap.
    pub requests_per_second: Option<f64>,
    /// Retries after the first attempt; default 4 (so at most 5 attempts).
    pub retries: u32,
    /// First backoff delay in milliseconds; doubled at each retry; default 500.
    pub retry_initial_delay_ms: u64,
    /// Longest wait between two attempts in milliseconds, `Retry-After` included; default 30 000.
    pub retry_max_delay_ms: u64,
    /// Largest response body accepted, in bytes; default 64 MiB.
    pub max_body_bytes: u64,
    /// Extra PEM bundle of CA certificates to trust (an institution's internal CA).
    pub ca_file: Option<PathBuf>,
    /// PEM file with a client certificate (chain) and its private key, for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// Extra headers sent with every request (non-secret ones: secrets go through
    /// [`HttpClientBuilder::header`]).
    pub headers: BTreeMap<String, String>,
    /// `User-Agent` header; default `conpere/<version>`, so the SIS team can find us in logs.
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: 10.0,
            request_timeout: 120.0,
            concurrency: 4,
            requests_per_second: None,
            retries: 4,
            retry_initial_delay_ms: 500,
            retry_max_delay_ms: 30_000,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            ca_file: None,
            client_cert_file: None,
            headers: BTreeMap::new(),
            user_agent: concat!("conpere/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be gateway keys: show names only.
        f.debug_struct("HttpSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("concurrency", &self.concurrency)
            .field("requests_per_second", &self.requests_per_second)
            .field("retries", &self.retries)
            .field("retry_initial_delay_ms", &self.retry_initial_delay_ms)
            .field("retry_max_delay_ms", &self.retry_max_delay_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

const fn field(name: &'static str, help: &'static str, example: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required: false,
        secret: false,
        help,
        example,
    }
}

impl HttpSettings {
    /// The keys of [`HttpSettings`], for an adapter's [`crate::ConnectorSpec`] (so the
    /// registry accepts them and `conpere init` documents them).
    ///
    /// ```
    /// use conpere_connectors::http::HttpSettings;
    /// assert!(HttpSettings::FIELDS.iter().any(|f| f.name == "concurrency"));
    /// ```
    pub const FIELDS: &'static [FieldSpec] = &[
        field("connect_timeout", "seconds to connect (TCP + TLS)", "10"),
        field(
            "request_timeout",
            "seconds for one whole request, body included",
            "120",
        ),
        field("concurrency", "requests in flight at once", "4"),
        field(
            "requests_per_second",
            "cap on new requests per second (none by default)",
            "5",
        ),
        field(
            "retries",
            "retries after a transient failure (5xx, 429, timeout)",
            "4",
        ),
        field(
            "retry_initial_delay_ms",
            "first wait before a retry, doubled each time",
            "500",
        ),
        field(
            "retry_max_delay_ms",
            "longest wait between two attempts",
            "30000",
        ),
        field(
            "max_body_bytes",
            "largest response body accepted",
            "67108864",
        ),
        field(
            "ca_file",
            "extra PEM bundle of CA certificates to trust",
            "\"/etc/ssl/univ-ca.pem\"",
        ),
        field(
            "client_cert_file",
            "PEM client certificate and private key (mutual TLS)",
            "\"/etc/conpere/client.pem\"",
        ),
        field(
            "headers",
            "extra non-secret headers sent with every request",
            "{ \"X-Tenant\" = \"univ-exemple\" }",
        ),
        field(
            "user_agent",
            "User-Agent header",
            "\"conpere (DSI Université Exemple)\"",
        ),
    ];

    /// Checks the values, with an error naming the key and the accepted range.
    ///
    /// ```
    /// use conpere_connectors::http::HttpSettings;
    /// let settings = HttpSettings { concurrency: 0, ..HttpSettings::default() };
    /// assert!(settings.validate().unwrap_err().to_string().contains("concurrency"));
    /// ```
    pub fn validate(&self) -> Result<(), HttpError> {
        seconds("connect_timeout", self.connect_timeout)?;
        seconds("request_timeout", self.request_timeout)?;
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(invalid(
                "concurrency",
                format!(
                    "must be between 1 and {MAX_CONCURRENCY}, not {}",
                    self.concurrency
                ),
            ));
        }
        if let Some(rate) = self.requests_per_second {
            rate_period(rate)?;
        }
        if self.retry_initial_delay_ms == 0 {
            return Err(invalid(
                "retry_initial_delay_ms",
                "must be at least 1: retrying at once would hammer a struggling SIS".into(),
            ));
        }
        if self.retry_max_delay_ms < self.retry_initial_delay_ms {
            return Err(invalid(
                "retry_max_delay_ms",
                format!(
                    "({}) must not be below retry_initial_delay_ms ({})",
                    self.retry_max_delay_ms, self.retry_initial_delay_ms
                ),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be at least 1".into()));
        }
        Ok(())
    }
}

fn invalid(key: &'static str, message: String) -> HttpError {
    HttpError::Settings { key, message }
}

fn seconds(key: &'static str, value: f64) -> Result<Duration, HttpError> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(invalid(
            key,
            format!("must be a positive number of seconds, not {value}"),
        )),
    }
}

/// The spacing between two attempts for a requests-per-second cap.
fn rate_period(rate: f64) -> Result<Duration, HttpError> {
    let period = (rate.is_finite() && rate > 0.0)
        .then(|| Duration::try_from_secs_f64(1.0 / rate).ok())
        .flatten()
        .filter(|period| !period.is_zero());
    period.ok_or_else(|| {
        invalid(
            "requests_per_second",
            format!("must be a positive number (e.g. 5 or 0.5), not {rate}"),
        )
    })
}

/// How the client authenticates. `Debug` never shows the credentials.
///
/// `#[non_exhaustive]`: other schemes may join `Basic` (bearer tokens are handled by
/// [`crate::bearer`], which sets the header per request).
///
/// ```
/// use conpere_connectors::http::Auth;
/// let auth = Auth::basic("ws-conpere", "hunter2");
/// assert!(!format!("{auth:?}").contains("hunter2"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// HTTP Basic authentication (Apogée web services behind Tomcat or a gateway).
    Basic {
        /// Account name.
        username: String,
        /// Its password, resolved from `password_env` / `password_file`.
        password: String,
    },
}

impl Auth {
    /// Basic authentication.
    ///
    /// ```
    /// use conpere_connectors::http::Auth;
    /// let auth = Auth::basic("ws-conpere", "hunter2");
    /// # drop(auth);
    /// ```
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            // reqwest marks the header sensitive, so its own Debug hides it too.
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Auth::Basic(***)"),
        }
    }
}

/// What the caller's classifier decides about a response.
///
/// 401 and 403 never reach the classifier: they are always [`HttpError::AuthRefused`].
///
/// ```
/// use conpere_connectors::http::{Outcome, Response};
/// // A SOAP adapter: "no data" faults are answers, other faults are worth a retry.
/// fn classify(response: &Response) -> Outcome {
///     let body = String::from_utf8_lossy(&response.body);
///     if body.contains("technical.data.nullretrieve") {
///         Outcome::Done
///     } else if response.status.is_server_error() {
///         Outcome::Retry("SOAP fault".into())
///     } else {
///         Outcome::by_status(response)
///     }
/// }
/// # drop(classify);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The response is the answer: hand it to the caller, whatever its status.
    Done,
    /// A transient failure (why): try again after a backoff.
    Retry(String),
    /// A permanent failure (why, and what to do): stop now.
    Fail(String),
}

impl Outcome {
    /// The classification by HTTP status alone: 2xx done; 429 and 5xx retried; anything else
    /// (3xx left unfollowed, 4xx) failed.
    ///
    /// ```
    /// use conpere_connectors::http::{Outcome, Response, StatusCode};
    /// let response = Response::new(StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    /// assert!(matches!(Outcome::by_status(&response), Outcome::Retry(_)));
    /// ```
    pub fn by_status(response: &Response) -> Outcome {
        let status = response.status;
        if status.is_success() {
            Outcome::Done
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            Outcome::Retry("the server is rate-limiting conpere".into())
        } else if status.is_server_error() {
            Outcome::Retry("server error".into())
        } else if status == StatusCode::NOT_FOUND {
            Outcome::Fail("check the URL (base_url and service path)".into())
        } else if status.is_redirection() {
            Outcome::Fail("redirected: set the URL to the address it redirects to".into())
        } else {
            Outcome::Fail(
                "the server refused the request: check the configured URL and parameters".into(),
            )
        }
    }
}

/// `text` as an http(s) URL, or why it is not one (without the text itself, which may be
/// a secret: the caller names the setting).
///
/// ```
/// use conpere_connectors::http::http_url;
/// assert!(http_url(" https://sis.example.fr/ws ").is_ok());
/// assert!(http_url("ftp://sis.example.fr").unwrap_err().contains("`ftp`"));
/// ```
pub fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("the scheme is `{other}`, expected https (or http)")),
    }
}

/// One request to send: method, URL, headers, body and an operation label.
///
/// The label names the call in errors and logs, so write it for an operator and mask
/// identifiers in it (`EtudiantMetier.recupererIAEtapes_v3 (student ******34)`). The body
/// is kept so that a retry can resend it.
///
/// ```
/// use conpere_connectors::http::{header, RequestSpec, Url};
/// let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier").unwrap();
/// let request = RequestSpec::post(url, "EtudiantMetier.recupererListeEtudiants")
///     .header(header::CONTENT_TYPE, header::HeaderValue::from_static("text/xml; charset=utf-8"))
///     .body("<soapenv:Envelope/>");
/// assert_eq!(request.operation(), "EtudiantMetier.recupererListeEtudiants");
/// ```
#[derive(Clone)]
pub struct RequestSpec {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    operation: String,
    /// This request's own credentials, over the client's.
    auth: Option<Auth>,
    /// The URL is itself a secret (a webhook's carries its token): never shown.
    secret_url: bool,
}

impl RequestSpec {
    /// A request without headers or body.
    ///
    /// ```
    /// use conpere_connectors::http::{Method, RequestSpec, Url};
    /// let url = Url::parse("https://sis.example.fr/api/periodes").unwrap();
    /// let request = RequestSpec::new(Method::GET, url, "listing periods");
    /// # drop(request);
    /// ```
    pub fn new(method: Method, url: Url, operation: impl Into<String>) -> RequestSpec {
        RequestSpec {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            operation: operation.into(),
            auth: None,
            secret_url: false,
        }
    }

    /// Authenticates this request with `auth` instead of the client's: one client (one
    /// concurrency bound, one rate cap) can then serve services that each have their own
    /// account.
    ///
    /// ```
    /// use conpere_connectors::http::{Auth, RequestSpec, Url};
    /// let url = Url::parse("https://apogee.example.fr/wsapogee/services/PedagogiqueMetier").unwrap();
    /// let request = RequestSpec::post(url, "call").auth(Auth::basic("ws-ped", "hunter2"));
    /// assert!(!format!("{request:?}").contains("hunter2"));
    /// ```
    pub fn auth(mut self, auth: Auth) -> RequestSpec {
        self.auth = Some(auth);
        self
    }

    /// A GET request.
    ///
    /// ```
    /// use conpere_connectors::http::{RequestSpec, Url};
    /// let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier?wsdl").unwrap();
    /// let request = RequestSpec::get(url, "EtudiantMetier WSDL");
    /// # drop(request);
    /// ```
    pub fn get(url: Url, operation: impl Into<String>) -> RequestSpec {
        RequestSpec::new(Method::GET, url, operation)
    }

    /// A POST request.
    ///
    /// ```
    /// use conpere_connectors::http::{RequestSpec, Url};
    /// let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier").unwrap();
    /// let request = RequestSpec::post(url, "EtudiantMetier.recupererListeEtudiants").body("<x/>");
    /// # drop(request);
    /// ```
    pub fn post(url: Url, operation: impl Into<String>) -> RequestSpec {
        RequestSpec::new(Method::POST, url, operation)
    }

    /// Sets a header (replacing any earlier value of that name).
    ///
    /// ```
    /// use conpere_connectors::http::{header, RequestSpec, Url};
    /// let url = Url::parse("https://sis.example.fr/ws").unwrap();
    /// let request = RequestSpec::post(url, "call")
    ///     .header(header::HeaderName::from_static("soapaction"), header::HeaderValue::from_static("\"\""));
    /// # drop(request);
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> RequestSpec {
        self.headers.insert(name, value);
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// use conpere_connectors::http::{RequestSpec, Url};
    /// let url = Url::parse("https://sis.example.fr/ws").unwrap();
    /// let request = RequestSpec::post(url, "call").body(b"<x/>".to_vec());
    /// # drop(request);
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RequestSpec {
        self.body = Some(body.into());
        self
    }

    /// Marks the URL as a secret (a chat webhook's URL carries its token): logs and
    /// `Debug` then show `<secret URL>` instead of its path.
    ///
    /// ```
    /// use conpere_connectors::http::{RequestSpec, Url};
    /// let url = Url::parse("https://chat.example.fr/hooks/x7kq9rj3pbnw8").unwrap();
    /// let request = RequestSpec::post(url, "webhook `ops`").secret_url();
    /// assert!(!format!("{request:?}").contains("x7kq9rj3pbnw8"));
    /// ```
    pub fn secret_url(mut self) -> RequestSpec {
        self.secret_url = true;
        self
    }

    /// The URL's path as logs may show it.
    fn log_path(&self) -> String {
        if self.secret_url {
            "<secret URL>".into()
        } else {
            log_path(&self.url)
        }
    }

    /// The operation label.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

impl fmt::Debug for RequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No query string, no header values, no body: they may carry identifiers.
        f.debug_struct("RequestSpec")
            .field("method", &self.method)
            .field("path", &self.log_path())
            .field("operation", &self.operation)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// A response read in full. `Debug` shows the status, content type and size, never the body.
///
/// ```
/// use conpere_connectors::http::{Response, StatusCode};
/// let response = Response::new(StatusCode::OK, b"<ok/>".to_vec());
/// assert_eq!(response.body, b"<ok/>");
/// assert_eq!(response.content_type(), None);
/// ```
#[derive(Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response without headers (classifier tests, simulators).
    ///
    /// ```
    /// use conpere_connectors::http::{Response, StatusCode};
    /// let response = Response::new(StatusCode::INTERNAL_SERVER_ERROR, b"<fault/>".to_vec());
    /// assert!(response.status.is_server_error());
    /// ```
    pub fn new(status: StatusCode, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body,
        }
    }

    /// The `Content-Type` header, when present and readable (it names the charset to decode with).
    ///
    /// ```
    /// use conpere_connectors::http::{header, Response, StatusCode};
    /// let mut response = Response::new(StatusCode::OK, Vec::new());
    /// response.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/xml; charset=ISO-8859-15"));
    /// assert_eq!(response.content_type(), Some("text/xml; charset=ISO-8859-15"));
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_type", &self.content_type())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Counters since the client was built (shared by its clones), for benchmarks and tests.
///
/// ```
/// use conpere_connectors::http::{HttpClient, HttpSettings};
/// let client = HttpClient::new(&HttpSettings::default()).unwrap();
/// assert_eq!(client.stats().requests, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Attempts put on the wire (first attempts and retries).
    pub requests: u64,
    /// Of those, retries.
    pub retries: u64,
    /// Calls to [`HttpClient::send`] that ended in an error.
    pub failures: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Attempts that had to wait for the `requests_per_second` cap.
    pub rate_limited: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    bytes_received: AtomicU64,
    rate_limited: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        // Plain counters: no ordering with other memory is needed.
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HttpStats {
        HttpStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }
}

/// Errors of the HTTP client. Each names the operation (or the setting) and what to do;
/// none carries credentials, header values, bodies or query strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A setting is out of range.
    #[error("HTTP settings: `{key}` {message}")]
    Settings {
        /// The key.
        key: &'static str,
        /// What is wrong and the accepted values.
        message: String,
    },
    /// The `ca_file` bundle cannot be used.
    #[error(
        "HTTP settings: the CA bundle {} (`ca_file`) cannot be used: {reason}; it must be a PEM \
         file readable by conpere holding one or more `-----BEGIN CERTIFICATE-----` blocks",
        path.display()
    )]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The `client_cert_file` cannot be used.
    #[error(
        "HTTP settings: the client certificate {} (`client_cert_file`) cannot be used: {reason}; \
         it must be a PEM file readable by conpere holding the certificate (chain) and its \
         private key (PKCS#8, RSA or EC)",
        path.display()
    )]
    ClientCert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An extra header cannot be sent (its value is never shown).
    #[error("HTTP settings: header `{name}`: {reason}")]
    Header {
        /// The header name as configured.
        name: String,
        /// Why.
        reason: String,
    },
    /// The underlying client could not be built.
    #[error("HTTP settings: the HTTP client cannot be built: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
    /// The request cannot be sent at all (unsupported URL scheme, redirect loop…).
    #[error("{operation}: the request cannot be sent: {reason}; check the configured URL")]
    Request {
        /// The operation label.
        operation: String,
        /// Why.
        reason: String,
    },
    /// The server refused the credentials (401) or the account's rights (403). Never retried
    /// here: repeating a wrong password can lock the account.
    #[error(
        "{operation}: authentication refused (HTTP {status}): check username and password_env \
         (or password_file), and that this account may call this service"
    )]
    AuthRefused {
        /// The operation label.
        operation: String,
        /// 401 or 403.
        status: StatusCode,
    },
    /// A response the classifier (or [`Outcome::by_status`]) called a permanent failure.
    #[error("{operation}: HTTP {status}, not retried: {reason}")]
    Rejected {
        /// The operation label.
        operation: String,
        /// The status.
        status: StatusCode,
        /// The classifier's reason.
        reason: String,
    },
    /// The body is larger than `max_body_bytes`.
    #[error(
        "{operation}: the response body exceeds {limit} bytes (`max_body_bytes`); raise \
         max_body_bytes if the SIS really sends that much, or narrow the request"
    )]
    BodyTooLarge {
        /// The operation label.
        operation: String,
        /// The cap.
        limit: u64,
    },
    /// Every attempt failed with a transient error.
    #[error(
        "{operation}: gave up after {}; last error: {last}. Check the URL, the credentials \
         and the network path to the SIS (proxy, firewall, IP allow-list); the SIS may also be \
         down or overloaded: try again later, or raise `retries` / `retry_max_delay_ms`",
        attempts_text(*.attempts)
    )]
    GaveUp {
        /// The operation label.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// The last error (status or transport error).
        last: String,
        /// The last status, when the last attempt got a response.
        status: Option<StatusCode>,
    },
}

fn attempts_text(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    }
}

impl HttpError {
    /// The kind of failure: a source that gave up after retries is unavailable, a refusal
    /// (401/403, or a status the classifier calls permanent) is not tried again, a
    /// setting is the configuration's.
    pub fn kind(&self) -> FailureKind {
        match self {
            HttpError::GaveUp { .. } => FailureKind::Unavailable,
            HttpError::AuthRefused { .. } | HttpError::Rejected { .. } => FailureKind::Refused,
            HttpError::BodyTooLarge { .. } => FailureKind::BadData,
            HttpError::Settings { .. }
            | HttpError::CaFile { .. }
            | HttpError::ClientCert { .. }
            | HttpError::Header { .. }
            | HttpError::Client { .. }
            | HttpError::Request { .. } => FailureKind::Configuration,
        }
    }

    /// The operation label, for errors about a request.
    ///
    /// ```
    /// use conpere_connectors::http::{HttpError, StatusCode};
    /// let error = HttpError::AuthRefused { operation: "WSDL".into(), status: StatusCode::UNAUTHORIZED };
    /// assert_eq!(error.operation(), Some("WSDL"));
    /// ```
    pub fn operation(&self) -> Option<&str> {
        match self {
            HttpError::Request { operation, .. }
            | HttpError::AuthRefused { operation, .. }
            | HttpError::Rejected { operation, .. }
            | HttpError::BodyTooLarge { operation, .. }
            | HttpError::GaveUp { operation, .. } => Some(operation),
            _ => None,
        }
    }
}

impl From<HttpError> for ConnectorError {
    /// Keeps the operation and the advice, without repeating the operation in the message.
    fn from(error: HttpError) -> ConnectorError {
        let operation = error
            .operation()
            .unwrap_or("setting up the HTTP client")
            .to_string();
        let text = error.to_string();
        let message = text
            .strip_prefix(&format!("{operation}: "))
            .map(str::to_string)
            .unwrap_or(text);
        ConnectorError::of(error.kind(), operation, message)
    }
}

/// Builds an [`HttpClient`] with credentials and secret headers, resolved by the adapter.
///
/// ```
/// use conpere_connectors::http::{Auth, HttpClient, HttpSettings};
/// let client = HttpClient::builder(&HttpSettings::default())
///     .auth(Auth::basic("ws-conpere", "hunter2"))
///     .header("X-Gateway-Key", "k3y")
///     .build()
///     .unwrap();
/// assert!(!format!("{client:?}").contains("k3y"));
/// ```
pub struct HttpClientBuilder {
    settings: HttpSettings,
    auth: Option<Auth>,
    secret_headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .secret_headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        f.debug_struct("HttpClientBuilder")
            .field("settings", &self.settings)
            .field("auth", &self.auth)
            .field("secret_headers", &names)
            .finish()
    }
}

impl HttpClientBuilder {
    /// Authenticates every request.
    pub fn auth(mut self, auth: Auth) -> HttpClientBuilder {
        self.auth = Some(auth);
        self
    }

    /// Adds a header sent with every request whose value is a secret (an API-gateway key
    /// the adapter resolved from `*_env` / `*_file`): it is marked sensitive and never
    /// shown. It replaces a header of the same name from the settings.
    pub fn header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> HttpClientBuilder {
        self.secret_headers.push((name.into(), value.into()));
        self
    }

    /// Validates the settings, reads the CA bundle and client certificate, and builds the client.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let settings = &self.settings;
        settings.validate()?;
        let client = reqwest_client(settings, &self.secret_headers)?;
        let limiter = match settings.requests_per_second {
            Some(rate) => Some(rate_limiter(rate)?),
            None => None,
        };
        let max_delay = Duration::from_millis(settings.retry_max_delay_ms);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(settings.retry_initial_delay_ms))
            .with_max_delay(max_delay)
            .with_max_times(usize::try_from(settings.retries).unwrap_or(usize::MAX))
            .with_jitter();
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                auth: self.auth,
                secret_header_names: self
                    .secret_headers
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
                permits: Semaphore::new(settings.concurrency),
                limiter,
                backoff,
                max_delay,
                max_body: settings.max_body_bytes,
                settings: self.settings,
                counters: Counters::default(),
            }),
        })
    }
}

fn rate_limiter(rate: f64) -> Result<DefaultDirectRateLimiter, HttpError> {
    // One cell per period and a burst of one: attempts are spread evenly, never bunched.
    let quota = Quota::with_period(rate_period(rate)?)
        .ok_or_else(|| invalid("requests_per_second", format!("is too high ({rate})")))?;
    Ok(RateLimiter::direct(quota))
}

fn reqwest_client(
    settings: &HttpSettings,
    secret_headers: &[(String, String)],
) -> Result<reqwest::Client, HttpError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(seconds("connect_timeout", settings.connect_timeout)?)
        .timeout(seconds("request_timeout", settings.request_timeout)?)
        .default_headers(default_headers(settings, secret_headers)?);
    builder = builder.user_agent(user_agent(&settings.user_agent)?);
    if let Some(path) = &settings.ca_file {
        for certificate in ca_certificates(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(path) = &settings.client_cert_file {
        builder = builder.identity(client_identity(path)?);
    }
    builder.build().map_err(|error| HttpError::Client {
        reason: describe_chain(&error),
    })
}

fn user_agent(value: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(value).map_err(|_| {
        invalid(
            "user_agent",
            "holds characters a header cannot carry (control characters or non-ASCII)".into(),
        )
    })
}

fn default_headers(
    settings: &HttpSettings,
    secret_headers: &[(String, String)],
) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::new();
    let configured = settings
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()));
    let secrets = secret_headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    // Secrets come last so that they win over a configured header of the same name.
    for (name, value) in configured.chain(secrets) {
        let (name, value) = header_pair(name, value)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), HttpError> {
    let error = |reason: &str| HttpError::Header {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| error("not a valid header name (letters, digits and `-` only)"))?;
    let mut header_value = HeaderValue::from_str(value).map_err(|_| {
        error(
            "its value holds characters a header cannot carry (control characters or \
             non-ASCII); check the variable or file it is read from",
        )
    })?;
    // Any header may be a gateway key: keep it out of every Debug output.
    header_value.set_sensitive(true);
    Ok((header_name, header_value))
}

fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let error = |reason: String| HttpError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error(describe_chain(&e)))?;
    if certificates.is_empty() {
        return Err(error("no certificate found".into()));
    }
    // A malformed certificate only shows when a client is built: build a throwaway one
    // (without the built-in roots, so it is cheap) to name the file in the error.
    let mut probe = reqwest::Client::builder().tls_built_in_root_certs(false);
    for certificate in &certificates {
        probe = probe.add_root_certificate(certificate.clone());
    }
    probe
        .build()
        .map_err(|e| error(format!("invalid certificate: {}", describe_chain(&e))))?;
    Ok(certificates)
}

fn client_identity(path: &Path) -> Result<reqwest::Identity, HttpError> {
    let error = |reason: String| HttpError::ClientCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    reqwest::Identity::from_pem(&pem).map_err(|e| error(describe_chain(&e)))
}

/// The HTTP client of one source: bounded concurrency, optional rate cap, retries with
/// backoff, capped bodies, no secret in logs. Cheap to clone; clones share permits,
/// rate limiter, connections and counters.
///
/// ```no_run
/// use conpere_connectors::http::{HttpClient, HttpSettings, Url};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = HttpClient::new(&HttpSettings::default())?;
/// let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier?wsdl")?;
/// let wsdl = client.get(url, "EtudiantMetier WSDL").await?;
/// assert!(wsdl.status.is_success());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    auth: Option<Auth>,
    /// For `Debug` only: the values stay in the reqwest client, marked sensitive.
    secret_header_names: Vec<String>,
    permits: Semaphore,
    limiter: Option<DefaultDirectRateLimiter>,
    backoff: ExponentialBuilder,
    max_delay: Duration,
    max_body: u64,
    settings: HttpSettings,
    counters: Counters,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("settings", &self.inner.settings)
            .field("auth", &self.inner.auth)
            .field("secret_headers", &self.inner.secret_header_names)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Gives each attempt of a request its `Authorization` header once the attempt has its
/// turn, so that a credential that expires (a bearer token) is current when the request
/// leaves: a request can wait for a permit, or back off between attempts, longer than
/// a token lives. See [`HttpClient::send_authorized`].
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    /// Why no header could be given (the token endpoint refused, say).
    type Error: Send;

    /// The header for an attempt that holds `turn`. A request made to get it (a token
    /// request through the same client) must go through `turn`: the attempt's permit
    /// is taken, and waiting for another could wait forever.
    async fn authorization(&self, turn: &Turn<'_>) -> Result<HeaderValue, Self::Error>;
}

/// The authorizer of requests that bring their own credentials.
enum NoAuthorizer {}

#[async_trait::async_trait]
impl Authorizer for NoAuthorizer {
    type Error = std::convert::Infallible;

    async fn authorization(&self, _: &Turn<'_>) -> Result<HeaderValue, Self::Error> {
        match *self {}
    }
}

/// A request's turn on an [`HttpClient`]: one of its `concurrency` permits, held until
/// the turn is dropped.
pub struct Turn<'a> {
    client: &'a HttpClient,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Turn<'_> {
    /// Sends `request` as [`HttpClient::send`] does, through the client this turn belongs
    /// to and on this turn's permit (kept through its retries' backoff), instead of
    /// waiting for another.
    pub async fn send<F>(&self, request: RequestSpec, classify: F) -> Result<Response, HttpError>
    where
        F: Fn(&Response) -> Outcome,
    {
        let on_this_turn = Some(self);
        let result = (self.client)
            .send_with_retries(&request, &classify, None::<&NoAuthorizer>, on_this_turn)
            .await;
        http_only(result)
    }
}

/// The result of a send without an authorizer, whose errors can only be HTTP errors.
fn http_only(
    result: Result<Response, SendError<std::convert::Infallible>>,
) -> Result<Response, HttpError> {
    result.map_err(|error| match error {
        SendError::Http(error) => error,
        SendError::Authorization(never) => match never {},
    })
}

/// Why [`HttpClient::send_authorized`] failed.
#[derive(Debug)]
pub enum SendError<E> {
    /// The request failed (as [`HttpClient::send`] fails).
    Http(HttpError),
    /// The authorizer could not give a header: the request was not sent.
    Authorization(E),
}

/// Why an attempt did not produce the final answer.
enum Failure {
    /// Worth another attempt.
    Retry(Retryable),
    /// Stop now.
    Fatal(HttpError),
}

struct Retryable {
    reason: String,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
}

impl HttpClient {
    /// A client without authentication nor secret headers.
    ///
    /// ```
    /// use conpere_connectors::http::{HttpClient, HttpSettings};
    /// let client = HttpClient::new(&HttpSettings::default()).unwrap();
    /// # drop(client);
    /// ```
    pub fn new(settings: &HttpSettings) -> Result<HttpClient, HttpError> {
        HttpClient::builder(settings).build()
    }

    /// A builder, to add authentication and secret headers.
    ///
    /// ```
    /// use conpere_connectors::http::{Auth, HttpClient, HttpSettings};
    /// let client = HttpClient::builder(&HttpSettings::default())
    ///     .auth(Auth::basic("ws-conpere", "hunter2"))
    ///     .build()
    ///     .unwrap();
    /// # drop(client);
    /// ```
    pub fn builder(settings: &HttpSettings) -> HttpClientBuilder {
        HttpClientBuilder {
            settings: settings.clone(),
            auth: None,
            secret_headers: Vec::new(),
        }
    }

    /// Counters since the client was built.
    pub fn stats(&self) -> HttpStats {
        self.inner.counters.snapshot()
    }

    /// GET `url`, classified by status ([`Outcome::by_status`]).
    ///
    /// ```no_run
    /// use conpere_connectors::http::{HttpClient, HttpSettings, Url};
    /// # async fn run(client: HttpClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let url = Url::parse("https://pegase.example.fr/api/health")?;
    /// let response = client.get(url, "Pégase health").await?;
    /// # drop(response); Ok(()) }
    /// ```
    pub async fn get(&self, url: Url, operation: impl Into<String>) -> Result<Response, HttpError> {
        self.send(RequestSpec::get(url, operation), Outcome::by_status)
            .await
    }

    /// Sends `request`, retrying transient failures, and returns the response `classify`
    /// accepts.
    ///
    /// 401/403 end at once with [`HttpError::AuthRefused`]. Every other response goes to
    /// `classify` ([`Outcome::by_status`] for plain status rules): `Done` returns it,
    /// `Retry` tries again after a backoff (honouring `Retry-After`, in seconds), `Fail`
    /// ends with [`HttpError::Rejected`]. Transport errors, timeouts and bodies cut short
    /// are retried. After `retries` retries, [`HttpError::GaveUp`].
    ///
    /// ```no_run
    /// use conpere_connectors::http::{HttpClient, Outcome, RequestSpec, Url};
    /// # async fn run(client: HttpClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let url = Url::parse("https://apogee.example.fr/wsapogee/services/EtudiantMetier")?;
    /// let request = RequestSpec::post(url, "EtudiantMetier.recupererIAEtapes_v3 (student ******34)")
    ///     .body("<soapenv:Envelope>…</soapenv:Envelope>");
    /// let response = client
    ///     .send(request, |response| {
    ///         if response.status.is_server_error()
    ///             && String::from_utf8_lossy(&response.body).contains("nullretrieve")
    ///         {
    ///             Outcome::Done // "no data" is an answer, not a failure
    ///         } else {
    ///             Outcome::by_status(response)
    ///         }
    ///     })
    ///     .await?;
    /// # drop(response); Ok(()) }
    /// ```
    pub async fn send<F>(&self, request: RequestSpec, classify: F) -> Result<Response, HttpError>
    where
        F: Fn(&Response) -> Outcome,
    {
        let result = self
            .send_with_retries(&request, &classify, None::<&NoAuthorizer>, None)
            .await;
        http_only(result)
    }

    /// Sends `request` as [`send`](HttpClient::send) does, with the `Authorization` header
    /// that `authorizer` gives each attempt once that attempt has its turn (a permit and
    /// the rate cap): a bearer token that expired while the request waited for a permit
    /// or backed off is renewed before the request leaves, not refused on arrival.
    pub async fn send_authorized<F, A>(
        &self,
        request: RequestSpec,
        classify: F,
        authorizer: &A,
    ) -> Result<Response, SendError<A::Error>>
    where
        F: Fn(&Response) -> Outcome,
        A: Authorizer,
    {
        self.send_with_retries(&request, &classify, Some(authorizer), None)
            .await
    }

    /// Waits for a permit: the turn of one request on the wire. Requests sent through the
    /// turn ([`Turn::send`]) use its permit instead of waiting for another.
    pub async fn turn(&self) -> Turn<'_> {
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        Turn {
            client: self,
            _permit: permit,
        }
    }

    async fn send_with_retries<F, A>(
        &self,
        request: &RequestSpec,
        classify: &F,
        authorizer: Option<&A>,
        turn: Option<&Turn<'_>>,
    ) -> Result<Response, SendError<A::Error>>
    where
        F: Fn(&Response) -> Outcome,
        A: Authorizer,
    {
        let mut delays = self.inner.backoff.build();
        let mut attempt: u32 = 1;
        let result = loop {
            let outcome = match self.attempt(request, attempt, authorizer, turn).await {
                Ok(Ok(response)) => judge(request, response, classify),
                Ok(Err(failure)) => Err(failure),
                Err(error) => break Err(SendError::Authorization(error)),
            };
            let retryable = match outcome {
                Ok(response) => break Ok(response),
                Err(Failure::Fatal(error)) => break Err(SendError::Http(error)),
                Err(Failure::Retry(retryable)) => retryable,
            };
            let Some(backoff) = delays.next() else {
                break Err(SendError::Http(HttpError::GaveUp {
                    operation: request.operation.clone(),
                    attempts: attempt,
                    last: retryable.reason,
                    status: retryable.status,
                }));
            };
            self.pause(request, attempt, &retryable, backoff).await;
            attempt = attempt.saturating_add(1);
        };
        if result.is_err() {
            Counters::add(&self.inner.counters.failures, 1);
        }
        result
    }

    /// Sleeps before the next attempt, holding no permit (unless the request is sent
    /// through a [`Turn`], whose permit it keeps).
    async fn pause(
        &self,
        request: &RequestSpec,
        attempt: u32,
        retryable: &Retryable,
        backoff: Duration,
    ) {
        // Jitter may push the backoff past the cap; the server's Retry-After replaces it.
        let delay = retryable
            .retry_after
            .unwrap_or(backoff)
            .min(self.inner.max_delay);
        tracing::warn!(
            operation = %request.operation,
            path = %request.log_path(),
            attempt,
            reason = %retryable.reason,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "HTTP attempt failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }

    /// One attempt: a permit (unless `turn` holds one), the rate cap, the authorization,
    /// the exchange. The outer error is the authorizer's.
    async fn attempt<A: Authorizer>(
        &self,
        request: &RequestSpec,
        attempt: u32,
        authorizer: Option<&A>,
        turn: Option<&Turn<'_>>,
    ) -> Result<Result<Response, Failure>, A::Error> {
        // The permit bounds requests on the wire; it is released before any backoff sleep.
        // Taking it before the rate cap means a paced attempt goes out the moment the cap
        // allows, instead of being delayed again by a busy pool (and never adds load).
        let own_turn = match turn {
            Some(_) => None,
            None => Some(self.turn().await),
        };
        self.wait_for_rate().await;
        // Authorized last, so that the credential is current when the request leaves.
        let authorization = match (authorizer, turn.or(own_turn.as_ref())) {
            (Some(authorizer), Some(turn)) => Some(authorizer.authorization(turn).await?),
            _ => None,
        };
        let counters = &self.inner.counters;
        Counters::add(&counters.requests, 1);
        if attempt > 1 {
            Counters::add(&counters.retries, 1);
        }
        let started = Instant::now();
        let result = self.exchange(request, authorization).await;
        log_attempt(request, attempt, started.elapsed(), &result);
        Ok(result)
    }

    async fn wait_for_rate(&self) {
        let Some(limiter) = &self.inner.limiter else {
            return;
        };
        if limiter.check().is_err() {
            Counters::add(&self.inner.counters.rate_limited, 1);
            limiter.until_ready().await;
        }
    }

    async fn exchange(
        &self,
        request: &RequestSpec,
        authorization: Option<HeaderValue>,
    ) -> Result<Response, Failure> {
        let mut builder = self
            .inner
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        // An authorizer's header wins, then the request's own credentials; a request that
        // already carries an Authorization header (a bearer token) gets no other.
        let carries_its_own = request.headers.contains_key(header::AUTHORIZATION);
        if let Some(authorization) = authorization {
            builder = builder.header(header::AUTHORIZATION, authorization);
        } else if !carries_its_own {
            if let Some(auth) = request.auth.as_ref().or(self.inner.auth.as_ref()) {
                builder = auth.apply(builder);
            }
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder
            .send()
            .await
            .map_err(|error| self.transport_failure(request, error))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(request, response).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Reads the whole body, refusing it beyond `max_body_bytes` without buffering it.
    async fn read_body(
        &self,
        request: &RequestSpec,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, Failure> {
        let limit = self.inner.max_body;
        let too_large = || {
            Failure::Fatal(HttpError::BodyTooLarge {
                operation: request.operation.clone(),
                limit,
            })
        };
        let announced = response.content_length();
        if announced.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        // Pre-allocate what is announced, within reason: a lying header must not cost memory.
        let capacity = announced.unwrap_or(0).min(limit).min(8 * 1024 * 1024);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport_failure(request, error))?
        {
            Counters::add(&self.inner.counters.bytes_received, chunk.len() as u64);
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_failure(&self, request: &RequestSpec, error: reqwest::Error) -> Failure {
        // The URL may carry identifiers in its query string: drop it from the error.
        let error = error.without_url();
        let reason = describe_transport(&error, &self.inner.settings);
        if error.is_builder() || error.is_redirect() {
            return Failure::Fatal(HttpError::Request {
                operation: request.operation.clone(),
                reason,
            });
        }
        Failure::Retry(Retryable {
            reason,
            status: None,
            retry_after: None,
        })
    }
}

/// Applies the fixed rules (401/403), then the caller's classifier.
fn judge<F>(request: &RequestSpec, response: Response, classify: &F) -> Result<Response, Failure>
where
    F: Fn(&Response) -> Outcome,
{
    let status = response.status;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(Failure::Fatal(HttpError::AuthRefused {
            operation: request.operation.clone(),
            status,
        }));
    }
    match classify(&response) {
        Outcome::Done => Ok(response),
        Outcome::Retry(reason) => Err(Failure::Retry(Retryable {
            reason: format!("HTTP {status}: {reason}"),
            status: Some(status),
            retry_after: retry_after(&response.headers),
        })),
        Outcome::Fail(reason) => Err(Failure::Fatal(HttpError::Rejected {
            operation: request.operation.clone(),
            status,
            reason,
        })),
    }
}

/// `Retry-After` in seconds; the HTTP-date form is rare from SIS gateways and falls back
/// to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn log_attempt(
    request: &RequestSpec,
    attempt: u32,
    elapsed: Duration,
    result: &Result<Response, Failure>,
) {
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let status = match result {
        Ok(response) => response.status.as_u16().to_string(),
        Err(Failure::Retry(retryable)) => retryable.reason.clone(),
        Err(Failure::Fatal(error)) => error.to_string(),
    };
    tracing::debug!(
        operation = %request.operation,
        method = %request.method,
        path = %request.log_path(),
        attempt,
        status = %status,
        elapsed_ms,
        "HTTP attempt"
    );
}

/// A transport error for an operator: what kind of failure, then its causes.
fn describe_transport(error: &reqwest::Error, settings: &HttpSettings) -> String {
    let kind = if error.is_builder() {
        "invalid request".to_string()
    } else if error.is_redirect() {
        "redirect loop or too many redirects".to_string()
    } else if error.is_timeout() {
        format!(
            "timed out (connect_timeout {} s, request_timeout {} s)",
            settings.connect_timeout, settings.request_timeout
        )
    } else if error.is_connect() {
        "could not connect".to_string()
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the response body".to_string()
    } else {
        "the exchange failed".to_string()
    };
    format!("{kind}: {}", describe_chain(error))
}

/// An error and its sources, de-duplicated (hyper repeats messages along the chain).
fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// The URL path for logs: no query string, and segments that look like identifiers
/// (six digits or more: student numbers, INE) masked but for their last two characters.
fn log_path(url: &Url) -> String {
    url.path()
        .split('/')
        .map(mask_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn mask_segment(segment: &str) -> String {
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    if digits < 6 {
        return segment.to_string();
    }
    let chars: Vec<char> = segment.chars().collect();
    let kept = chars.len().saturating_sub(2);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < kept { '*' } else { *c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Router;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves `router` on 127.0.0.1 and returns its address.
    async fn serve(router: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        address
    }

    fn url(address: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{address}{path}")).unwrap()
    }

    /// Quick settings: tiny delays, so tests take milliseconds.
    fn fast() -> HttpSettings {
        HttpSettings {
            connect_timeout: 5.0,
            request_timeout: 10.0,
            retries: 3,
            retry_initial_delay_ms: 1,
            retry_max_delay_ms: 10,
            ..HttpSettings::default()
        }
    }

    /// A counter the handlers increment, and the number of hits so far.
    #[derive(Clone, Default)]
    struct Hits(Arc<AtomicUsize>);

    impl Hits {
        fn next(&self) -> usize {
            self.0.fetch_add(1, Ordering::SeqCst) + 1
        }
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A route answering `first` for the first `failures` hits, then 200 "ok".
    async fn flaky(
        failures: usize,
        first: StatusCode,
        extra: Option<(&'static str, &'static str)>,
    ) -> (SocketAddr, Hits) {
        let hits = Hits::default();
        let router = Router::new()
            .route(
                "/ws",
                get(move |State(hits): State<Hits>| async move {
                    let mut headers = AxumHeaders::new();
                    if let Some((name, value)) = extra {
                        headers.insert(name, HeaderValue::from_static(value));
                    }
                    if hits.next() <= failures {
                        (first, headers, "failing").into_response()
                    } else {
                        (StatusCode::OK, headers, "ok").into_response()
                    }
                }),
            )
            .with_state(hits.clone());
        (serve(router).await, hits)
    }

    #[tokio::test]
    async fn success_returns_status_headers_and_body() {
        let router = Router::new().route(
            "/ws",
            get(|| async { ([(CONTENT_TYPE, "text/xml; charset=ISO-8859-15")], "<ok/>") }),
        );
        let address = serve(router).await;
        let client = HttpClient::new(&fast()).unwrap();
        let response = client.get(url(address, "/ws"), "probe").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(
            response.content_type(),
            Some("text/xml; charset=ISO-8859-15")
        );
        assert_eq!(response.body, b"<ok/>");
        let stats = client.stats();
        assert_eq!(
            (
                stats.requests,
                stats.retries,
                stats.failures,
                stats.bytes_received
            ),
            (1, 0, 0, 5)
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_success() {
        let (address, hits) = flaky(2, StatusCode::INTERNAL_SERVER_ERROR, None).await;
        let client = HttpClient::new(&fast()).unwrap();
        let response = client.get(url(address, "/ws"), "probe").await.unwrap();
        assert_eq!(response.body, b"ok");
        assert_eq!(hits.count(), 3);
        let stats = client.stats();
        assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 0));
    }

    #[tokio::test]
    async fn gives_up_after_the_retries_naming_operation_and_attempts() {
        let (address, hits) = flaky(usize::MAX, StatusCode::SERVICE_UNAVAILABLE, None).await;
        let settings = HttpSettings {
            retries: 2,
            ..fast()
        };
        let client = HttpClient::new(&settings).unwrap();
        let operation = "EtudiantMetier.recupererIAEtapes_v3 (student ******34)";
        let error = client
            .get(url(address, "/ws"), operation)
            .await
            .unwrap_err();
        assert_eq!(hits.count(), 3);
        assert!(matches!(
            error,
            HttpError::GaveUp {
                attempts: 3,
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                ..
            }
        ));
        let message = error.to_string();
        for expected in [operation, "3 attempts", "503", "SIS may also be down"] {
            assert!(
                message.contains(expected),
                "{expected:?} missing from {message}"
            );
        }
        let stats = client.stats();
        assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 1));
    }

    #[tokio::test]
    async fn too_many_requests_honours_retry_after() {
        let (address, hits) =
            flaky(1, StatusCode::TOO_MANY_REQUESTS, Some(("retry-after", "1"))).await;
        let settings = HttpSettings {
            retry_max_delay_ms: 5_000,
            ..fast()
        };
        let client = HttpClient::new(&settings).unwrap();
        let started = Instant::now();
        client.get(url(address, "/ws"), "probe").await.unwrap();
        assert_eq!(hits.count(), 2);
        // The backoff alone would wait about 1 ms; the server asked for 1 s.
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn retry_after_is_capped_by_the_max_delay() {
        let (address, hits) = flaky(
            1,
            StatusCode::TOO_MANY_REQUESTS,
            Some(("retry-after", "3600")),
        )
        .await;
        let settings = HttpSettings {
            retry_max_delay_ms: 200,
            ..fast()
        };
        let client = HttpClient::new(&settings).unwrap();
        let started = Instant::now();
        let call = client.get(url(address, "/ws"), "probe");
        // Uncapped, this would wait an hour.
        tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hits.count(), 2);
        assert!(
            started.elapsed() >= Duration::from_millis(190),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let (address, hits) = flaky(usize::MAX, StatusCode::NOT_FOUND, None).await;
        let client = HttpClient::new(&fast()).unwrap();
        let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
        assert_eq!(hits.count(), 1);
        assert!(matches!(
            error,
            HttpError::Rejected {
                status: StatusCode::NOT_FOUND,
                ..
            }
        ));
        assert!(error.to_string().contains("check the URL"), "{error}");
    }

    const USERNAME: &str = "ws-conpere";
    const PASSWORD: &str = "s3cr3t-pw";
    /// base64("ws-conpere:s3cr3t-pw"), computed independently of reqwest.
    const EXPECTED_BASIC: &str = "Basic d3MtY29ucGVyZTpzM2NyM3QtcHc=";

    async fn guarded() -> (SocketAddr, Hits) {
        let hits = Hits::default();
        let router = Router::new()
            .route(
                "/ws",
                get(
                    |State(hits): State<Hits>, headers: AxumHeaders| async move {
                        hits.next();
                        let authorization =
                            headers.get("authorization").and_then(|v| v.to_str().ok());
                        if authorization == Some(EXPECTED_BASIC) {
                            StatusCode::OK
                        } else {
                            StatusCode::UNAUTHORIZED
                        }
                    },
                ),
            )
            .with_state(hits.clone());
        (serve(router).await, hits)
    }

    #[tokio::test]
    async fn basic_auth_is_sent_and_never_shown() {
        let (address, _) = guarded().await;
        let client = HttpClient::builder(&fast())
            .auth(Auth::basic(USERNAME, PASSWORD))
            .build()
            .unwrap();
        let response = client.get(url(address, "/ws"), "probe").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        let shown = format!("{client:?} {:?}", Auth::basic(USERNAME, PASSWORD));
        assert!(
            !shown.contains(PASSWORD) && !shown.contains(USERNAME),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_request_s_own_credentials_win_over_the_client_s() {
        let (address, _) = guarded().await;
        let client = HttpClient::builder(&fast())
            .auth(Auth::basic(USERNAME, "wrong-pw"))
            .build()
            .unwrap();
        let request =
            RequestSpec::get(url(address, "/ws"), "probe").auth(Auth::basic(USERNAME, PASSWORD));
        let response = client.send(request, Outcome::by_status).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        // A request carrying its own Authorization header (a bearer token) gets no other.
        let bearer = RequestSpec::get(url(address, "/ws"), "probe")
            .auth(Auth::basic(USERNAME, PASSWORD))
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        let error = client.send(bearer, Outcome::by_status).await.unwrap_err();
        assert!(matches!(error, HttpError::AuthRefused { .. }), "{error}");
    }

    #[tokio::test]
    async fn refused_credentials_are_not_retried_and_reported_as_auth() {
        let (address, hits) = guarded().await;
        let client = HttpClient::builder(&fast())
            .auth(Auth::basic(USERNAME, "wrong-pw"))
            .build()
            .unwrap();
        let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
        assert_eq!(hits.count(), 1);
        assert!(matches!(
            error,
            HttpError::AuthRefused {
                status: StatusCode::UNAUTHORIZED,
                ..
            }
        ));
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains("authentication refused") && shown.contains("password_env"),
            "{shown}"
        );
        assert!(
            !shown.contains("wrong-pw") && !shown.contains(USERNAME),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn extra_and_secret_headers_are_sent_and_never_shown() {
        let router = Router::new().route(
            "/ws",
            get(|headers: AxumHeaders| async move {
                let tenant = headers.get("x-tenant").is_some_and(|v| v == "univ-exemple");
                let key = headers
                    .get("x-gateway-key")
                    .is_some_and(|v| v == "k3y-s3cret");
                if tenant && key {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                }
            }),
        );
        let address = serve(router).await;
        let mut settings = fast();
        settings
            .headers
            .insert("X-Tenant".into(), "univ-exemple".into());
        let builder = HttpClient::builder(&settings).header("X-Gateway-Key", "k3y-s3cret");
        let shown = format!("{builder:?}");
        let client = builder.build().unwrap();
        client.get(url(address, "/ws"), "probe").await.unwrap();
        let shown = format!("{shown} {client:?} {settings:?}");
        assert!(
            !shown.contains("k3y-s3cret") && !shown.contains("univ-exemple"),
            "{shown}"
        );
        assert!(
            format!("{client:?}").contains("X-Gateway-Key"),
            "{client:?}"
        );
    }

    #[tokio::test]
    async fn invalid_header_value_is_named_but_not_shown() {
        let error = HttpClient::builder(&fast())
            .header("X-Gateway-Key", "line\nbreak-s3cret")
            .build()
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("X-Gateway-Key") && !message.contains("s3cret"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn concurrency_never_exceeds_the_bound() {
        #[derive(Clone, Default)]
        struct Load {
            in_flight: Arc<AtomicUsize>,
            max: Arc<AtomicUsize>,
        }
        let load = Load::default();
        let router = Router::new()
            .route(
                "/ws",
                get(|State(load): State<Load>| async move {
                    let now = load.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    load.max.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    load.in_flight.fetch_sub(1, Ordering::SeqCst);
                    "ok"
                }),
            )
            .with_state(load.clone());
        let address = serve(router).await;
        let client = HttpClient::new(&HttpSettings {
            concurrency: 3,
            ..fast()
        })
        .unwrap();
        let calls = (0..20).map(|i| {
            let client = client.clone();
            let url = url(address, "/ws");
            tokio::spawn(async move { client.get(url, format!("call {i}")).await })
        });
        for call in futures::future::join_all(calls).await {
            call.unwrap().unwrap();
        }
        let max = load.max.load(Ordering::SeqCst);
        assert!(max <= 3, "{max} requests in flight with a bound of 3");
        assert!(
            max >= 2,
            "the bound should still allow parallel requests (max {max})"
        );
        assert_eq!(client.stats().requests, 20);
    }

    #[tokio::test]
    async fn requests_per_second_spreads_attempts() {
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let router = Router::new()
            .route(
                "/ws",
                get(
                    |State(arrivals): State<Arc<Mutex<Vec<Instant>>>>| async move {
                        arrivals.lock().unwrap().push(Instant::now());
                        "ok"
                    },
                ),
            )
            .with_state(arrivals.clone());
        let address = serve(router).await;
        let settings = HttpSettings {
            requests_per_second: Some(20.0),
            concurrency: 10,
            ..fast()
        };
        let client = HttpClient::new(&settings).unwrap();
        let calls = (0..10).map(|i| client.get(url(address, "/ws"), format!("call {i}")));
        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }
        let arrivals = arrivals.lock().unwrap();
        let span = *arrivals.iter().max().unwrap() - *arrivals.iter().min().unwrap();
        // 10 attempts at 20 per second without burst: the last starts 9 × 50 ms after the
        // first. Only a lower bound is asserted, so a slow machine cannot make this fail.
        assert!(
            span >= Duration::from_millis(400),
            "10 requests within {span:?}"
        );
        // The limiter's own accounting: all ten were sent at once, so at most one went
        // through without waiting.
        assert!(client.stats().rate_limited >= 5, "{:?}", client.stats());
    }

    #[tokio::test]
    async fn body_over_the_cap_is_refused_with_or_without_length() {
        let router = Router::new()
            .route("/announced", get(|| async { vec![b'x'; 4096] }))
            .route(
                "/streamed",
                get(|| async {
                    let chunks =
                        (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024])));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            );
        let address = serve(router).await;
        let client = HttpClient::new(&HttpSettings {
            max_body_bytes: 2000,
            ..fast()
        })
        .unwrap();
        for path in ["/announced", "/streamed"] {
            let error = client.get(url(address, path), "big").await.unwrap_err();
            assert!(
                matches!(error, HttpError::BodyTooLarge { limit: 2000, .. }),
                "{path}: {error}"
            );
            assert!(error.to_string().contains("max_body_bytes"), "{error}");
        }
        // Neither was retried, and the streamed one stopped before reading everything.
        let stats = client.stats();
        assert_eq!(stats.requests, 2);
        assert!(stats.bytes_received < 4096, "{stats:?}");
    }

    #[tokio::test]
    async fn body_cut_short_is_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hits = Hits::default();
        let server_hits = hits.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buffer).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buffer[..n]);
                }
                let answer: &[u8] = if server_hits.next() == 1 {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwhole"
                };
                socket.write_all(answer).await.unwrap();
                // Dropping the socket closes the connection, cutting the first body short.
            }
        });
        let client = HttpClient::new(&fast()).unwrap();
        let response = client.get(url(address, "/ws"), "probe").await.unwrap();
        assert_eq!(response.body, b"whole");
        assert_eq!(hits.count(), 2);
    }

    #[tokio::test]
    async fn unreachable_server_gives_up_without_leaking_the_query() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let client = HttpClient::new(&HttpSettings {
            retries: 1,
            ..fast()
        })
        .unwrap();
        let target = url(address, "/ws/etudiants/21901234?codEtu=21901234");
        let error = client.get(target, "probe").await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("could not connect") && message.contains("2 attempts"),
            "{message}"
        );
        assert!(!message.contains("21901234"), "{message}");
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let router = Router::new().route(
            "/ws",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let address = serve(router).await;
        let settings = HttpSettings {
            request_timeout: 0.2,
            retries: 0,
            ..fast()
        };
        let client = HttpClient::new(&settings).unwrap();
        let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("timed out") && message.contains("1 attempt;"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn the_classifier_decides_done_retry_and_fail() {
        let hits = Hits::default();
        let router = Router::new()
            .route(
                "/soap",
                post(|State(hits): State<Hits>, body: String| async move {
                    let n = hits.next();
                    match body.as_str() {
                        "nodata" => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "technical.data.nullretrieve.etudiant",
                        ),
                        "flaky" if n == 1 => {
                            (StatusCode::INTERNAL_SERVER_ERROR, "technical.remoteerror")
                        }
                        "bad" => (
                            StatusCode::OK,
                            "technical.parameter.noncoherentinput.codEtu",
                        ),
                        _ => (StatusCode::OK, "<ok/>"),
                    }
                }),
            )
            .with_state(hits.clone());
        let address = serve(router).await;
        let client = HttpClient::new(&fast()).unwrap();
        let classify = |response: &Response| {
            let body = String::from_utf8_lossy(&response.body);
            if body.contains("nullretrieve") {
                Outcome::Done
            } else if body.contains("technical.parameter") {
                Outcome::Fail("SOAP fault technical.parameter: check the request".into())
            } else if response.status.is_server_error() {
                Outcome::Retry("SOAP fault".into())
            } else {
                Outcome::by_status(response)
            }
        };
        let send = |body: &'static str| {
            client.send(
                RequestSpec::post(url(address, "/soap"), body).body(body),
                classify,
            )
        };
        let flaky = send("flaky").await.unwrap();
        assert_eq!((flaky.body.as_slice(), hits.count()), (&b"<ok/>"[..], 2));
        let no_data = send("nodata").await.unwrap();
        assert_eq!(no_data.status, StatusCode::INTERNAL_SERVER_ERROR);
        let error = send("bad").await.unwrap_err();
        assert!(
            matches!(
                error,
                HttpError::Rejected {
                    status: StatusCode::OK,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(hits.count(), 4);
    }

    #[test]
    fn settings_have_defaults_and_flatten_into_an_adapter_config() {
        let defaults: HttpSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(defaults, HttpSettings::default());
        assert_eq!(
            (defaults.connect_timeout, defaults.request_timeout),
            (10.0, 120.0)
        );
        assert_eq!((defaults.concurrency, defaults.retries), (4, 4));
        assert_eq!(defaults.max_body_bytes, 64 * 1024 * 1024);

        #[derive(Deserialize)]
        struct Adapter {
            base_url: String,
            #[serde(flatten)]
            http: HttpSettings,
        }
        let config = crate::SourceConfig::from_toml(
            "apogee",
            r#"
            [sources.apogee]
            kind = "apogee"
            base_url = "https://apogee.example.fr/ws"
            request_timeout = 30
            requests_per_second = 2.5
            ca_file = "/etc/ssl/univ-ca.pem"
            headers = { "X-Tenant" = "univ" }
            "#,
        )
        .unwrap();
        let adapter: Adapter = config.settings().unwrap();
        assert_eq!(adapter.base_url, "https://apogee.example.fr/ws");
        assert_eq!(adapter.http.request_timeout, 30.0);
        assert_eq!(adapter.http.requests_per_second, Some(2.5));
        assert_eq!(
            adapter.http.ca_file,
            Some(PathBuf::from("/etc/ssl/univ-ca.pem"))
        );
        assert_eq!(
            adapter.http.headers.get("X-Tenant").map(String::as_str),
            Some("univ")
        );
        assert_eq!(adapter.http.concurrency, 4);
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let cases = [
            (
                HttpSettings {
                    concurrency: 0,
                    ..fast()
                },
                "concurrency",
            ),
            (
                HttpSettings {
                    requests_per_second: Some(0.0),
                    ..fast()
                },
                "requests_per_second",
            ),
            (
                HttpSettings {
                    requests_per_second: Some(f64::NAN),
                    ..fast()
                },
                "requests_per_second",
            ),
            (
                HttpSettings {
                    requests_per_second: Some(1e-300),
                    ..fast()
                },
                "requests_per_second",
            ),
            (
                HttpSettings {
                    request_timeout: -1.0,
                    ..fast()
                },
                "request_timeout",
            ),
            (
                HttpSettings {
                    retry_initial_delay_ms: 0,
                    ..fast()
                },
                "retry_initial_delay_ms",
            ),
            (
                HttpSettings {
                    retry_max_delay_ms: 0,
                    ..fast()
                },
                "retry_max_delay_ms",
            ),
            (
                HttpSettings {
                    user_agent: "a\nb".into(),
                    ..fast()
                },
                "user_agent",
            ),
        ];
        for (settings, key) in cases {
            let message = HttpClient::new(&settings).unwrap_err().to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    /// Two throwaway self-signed CA certificates (public data, no key).
    const CA_BUNDLE: &str = "\
-----BEGIN CERTIFICATE-----
MIIBkDCCATWgAwIBAgIUFLaRAyfNKtcpG02mKlNTPWo4E9EwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRY29ucGVyZSB0ZXN0IENBIDEwIBcNMjYxMTI4MjAyMTU1WhgP
MjEyNjExMDQyMDIxNTVaMBwxGjAYBgNVBAMMEWNvbnBlcmUgdGVzdCBDQSAxMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgkr/c01c/LQGvZPsKF6upgvHXgnYAYYn
/WzZ/AkuCNQdfZ4Sm0GboYUh4zjdFnKizNxDrUa68b0lGtXvS1Z7pqNTMFEwHQYD
VR0OBBYEFMAWPRCePqupvkUZ0fCGaExxNuDVMB8GA1UdIwQYMBaAFMAWPRCePqup
vkUZ0fCGaExxNuDVMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh
APrf0wqQpRsNBFrSFfFeqUg2Ypumqp70SUIVgauDUd81AiEA74WJyQo3PzTN27mA
e9mymd0p4ZdIMKxpwHGqCmjBf88=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUdrTEawHaZfnbvXBzt9kLyiGxYmgwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRY29ucGVyZSB0ZXN0IENBIDIwIBcNMjYxMTI4MjAyMTU1WhgP
MjEyNjExMDQyMDIxNTVaMBwxGjAYBgNVBAMMEWNvbnBlcmUgdGVzdCBDQSAyMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Zpdc/bkZv4swng4yaqmlv01YFBxnIZj
jvfOU5epDN5iLEKJMz7jLSLJB1ImFG2r/gyV1pTBlTMQI4MCxfcZPqNTMFEwHQYD
VR0OBBYEFFWxqam8pmkHZ1CkWlQx7UagxMfrMB8GA1UdIwQYMBaAFFWxqam8pmkH
Z1CkWlQx7UagxMfrMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg
FBrpL2MlXSYdJqq17ik0dKSQ1uinEfEigJHyNYm9fE4CIQC/C2l+iOx43jDw2hEp
IgAWWERESTMaFjqUXXQENuI+uQ==
-----END CERTIFICATE-----
";

    fn with_ca_file(contents: &str) -> (tempfile::TempDir, HttpSettings) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("univ-ca.pem");
        std::fs::write(&path, contents).unwrap();
        (
            dir,
            HttpSettings {
                ca_file: Some(path),
                ..fast()
            },
        )
    }

    #[test]
    fn a_ca_bundle_with_several_certificates_is_accepted() {
        let (_dir, settings) = with_ca_file(CA_BUNDLE);
        assert_eq!(
            ca_certificates(settings.ca_file.as_deref().unwrap())
                .unwrap()
                .len(),
            2
        );
        HttpClient::new(&settings).unwrap();
    }

    #[test]
    fn unusable_ca_files_are_named() {
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for contents in ["not a certificate\n", garbage] {
            let (_dir, settings) = with_ca_file(contents);
            let error = HttpClient::new(&settings).unwrap_err();
            assert!(
                matches!(error, HttpError::CaFile { .. }),
                "{contents:?}: {error}"
            );
            assert!(error.to_string().contains("univ-ca.pem"), "{error}");
        }
        let missing = HttpSettings {
            ca_file: Some("/nonexistent/univ-ca.pem".into()),
            ..fast()
        };
        let error = HttpClient::new(&missing).unwrap_err().to_string();
        assert!(
            error.contains("/nonexistent/univ-ca.pem") && error.contains("ca_file"),
            "{error}"
        );
    }

    #[test]
    fn a_client_certificate_without_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.pem");
        std::fs::write(&path, CA_BUNDLE).unwrap();
        let settings = HttpSettings {
            client_cert_file: Some(path),
            ..fast()
        };
        let error = HttpClient::new(&settings).unwrap_err().to_string();
        assert!(
            error.contains("client.pem") && error.contains("client_cert_file"),
            "{error}"
        );
    }

    #[test]
    fn logged_paths_have_no_query_and_masked_identifiers() {
        let url = Url::parse(
            "https://sis.example.fr/api/v3/apprenants/000123456/inscriptions/2024?ine=1234567890A",
        )
        .unwrap();
        assert_eq!(
            log_path(&url),
            "/api/v3/apprenants/*******56/inscriptions/2024"
        );
        let request = RequestSpec::get(url, "probe").body("secret body");
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("1234567890A") && !shown.contains("secret body"),
            "{shown}"
        );
    }

    #[test]
    fn connector_errors_keep_operation_and_advice() {
        let error = HttpError::AuthRefused {
            operation: "EtudiantMetier WSDL".into(),
            status: StatusCode::FORBIDDEN,
        };
        let ConnectorError::Failed(failed) = ConnectorError::from(error) else {
            panic!("not a Failed error");
        };
        assert_eq!(failed.operation, "EtudiantMetier WSDL");
        assert!(
            failed.message.starts_with("authentication refused"),
            "{failed}"
        );
        assert_eq!(failed.kind, FailureKind::Refused);
    }
}
