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

mod auth;
mod client;
mod error;
mod mask;
mod request;
mod settings;
#[cfg(test)]
mod tests;
mod tls;

/// Re-exported so adapters need no direct `reqwest` dependency.
pub use reqwest::header;
/// Re-exported so adapters need no direct `reqwest` dependency.
pub use reqwest::{Method, StatusCode, Url};

pub use auth::Auth;
pub use client::{Authorizer, HttpClient, HttpClientBuilder, HttpStats, SendError, Turn};
pub use error::HttpError;
pub use request::{http_url, Outcome, RequestSpec, Response};
pub use settings::{HttpSettings, DEFAULT_MAX_BODY_BYTES};
