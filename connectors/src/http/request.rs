//! One request (what to send, its operation label for messages) and its response, and
//! how a response is judged ([`Outcome`]): an answer, worth a retry, or a failure.

use std::fmt;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::auth::Auth;
use super::mask::log_path;
use super::{Method, StatusCode, Url};

/// What the caller's classifier decides about a response.
///
/// 401 and 403 never reach the classifier: they are always [`HttpError::AuthRefused`](super::HttpError::AuthRefused).
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
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Vec<u8>>,
    pub(super) operation: String,
    /// This request's own credentials, over the client's.
    pub(super) auth: Option<Auth>,
    /// The URL is itself a secret (a webhook's carries its token): never shown.
    pub(super) secret_url: bool,
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
    pub(super) fn log_path(&self) -> String {
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
