//! The `[sources.<name>]` HTTP settings every web-service adapter shares: timeouts,
//! concurrency, rate, retries, body cap, TLS files, extra headers; checked once, with
//! errors naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::HttpError;
use crate::spec::FieldSpec;

/// Default cap on a response body: 64 MiB (Apogée and Pégase answers are a few MB at most).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Upper bound on `concurrency`: far above what any SIS tolerates, low enough to catch typos.
pub(super) const MAX_CONCURRENCY: usize = 1024;

/// HTTP settings of a web-service source, to embed in an adapter's settings with
/// `#[serde(flatten)]`; every key has a sensible default.
///
/// Header values in `headers` are sent as given; secrets (API-gateway keys) must not be
/// written in the configuration file: the adapter resolves them from `*_env` / `*_file`
/// and passes them to [`HttpClientBuilder::header`](super::HttpClientBuilder::header). `Debug` shows header names only.
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
    /// [`HttpClientBuilder::header`](super::HttpClientBuilder::header)).
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

pub(super) const fn field(
    name: &'static str,
    help: &'static str,
    example: &'static str,
) -> FieldSpec {
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

pub(super) fn invalid(key: &'static str, message: String) -> HttpError {
    HttpError::Settings { key, message }
}

pub(super) fn seconds(key: &'static str, value: f64) -> Result<Duration, HttpError> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(invalid(
            key,
            format!("must be a positive number of seconds, not {value}"),
        )),
    }
}

/// The spacing between two attempts for a requests-per-second cap.
pub(super) fn rate_period(rate: f64) -> Result<Duration, HttpError> {
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
