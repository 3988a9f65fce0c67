//! The client and its retry loop: permits for concurrency, the rate cap, backoff with
//! jitter and `Retry-After`, bodies read within their cap, counters; transport errors
//! described without secrets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::DefaultDirectRateLimiter;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::Semaphore;

use super::auth::Auth;
use super::error::describe_chain;
use super::error::HttpError;
use super::request::{Outcome, RequestSpec, Response};
use super::settings::HttpSettings;
use super::tls::{rate_limiter, reqwest_client};
use super::{header, StatusCode, Url};

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
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) bytes_received: AtomicU64,
    pub(super) rate_limited: AtomicU64,
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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) client: reqwest::Client,
    pub(super) auth: Option<Auth>,
    /// For `Debug` only: the values stay in the reqwest client, marked sensitive.
    pub(super) secret_header_names: Vec<String>,
    pub(super) permits: Semaphore,
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    pub(super) backoff: ExponentialBuilder,
    pub(super) max_delay: Duration,
    pub(super) max_body: u64,
    pub(super) settings: HttpSettings,
    pub(super) counters: Counters,
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

/// The result of a send without an authorizer, whose errors can only be HTTP errors.
pub(super) fn http_only(
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
pub(super) enum Failure {
    /// Worth another attempt.
    Retry(Retryable),
    /// Stop now.
    Fatal(HttpError),
}

pub(super) struct Retryable {
    pub(super) reason: String,
    pub(super) status: Option<StatusCode>,
    pub(super) retry_after: Option<Duration>,
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

    pub(super) async fn send_with_retries<F, A>(
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
pub(super) fn judge<F>(
    request: &RequestSpec,
    response: Response,
    classify: &F,
) -> Result<Response, Failure>
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
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(super) fn log_attempt(
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
pub(super) fn describe_transport(error: &reqwest::Error, settings: &HttpSettings) -> String {
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
    pub(super) settings: HttpSettings,
    pub(super) auth: Option<Auth>,
    pub(super) secret_headers: Vec<(String, String)>,
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
pub(super) enum NoAuthorizer {}

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
    pub(super) client: &'a HttpClient,
    pub(super) _permit: tokio::sync::SemaphorePermit<'a>,
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
