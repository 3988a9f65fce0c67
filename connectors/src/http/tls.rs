//! The reqwest client an [`HttpClient`](super::HttpClient) is built on: its TLS material
//! (extra CA bundle, client certificate), default headers, user agent, and the rate
//! limiter.

use std::path::Path;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::describe_chain;
use super::error::HttpError;
use super::settings::{invalid, rate_period, seconds, HttpSettings};

pub(super) fn rate_limiter(rate: f64) -> Result<DefaultDirectRateLimiter, HttpError> {
    // One cell per period and a burst of one: attempts are spread evenly, never bunched.
    let quota = Quota::with_period(rate_period(rate)?)
        .ok_or_else(|| invalid("requests_per_second", format!("is too high ({rate})")))?;
    Ok(RateLimiter::direct(quota))
}

pub(super) fn reqwest_client(
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

pub(super) fn user_agent(value: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(value).map_err(|_| {
        invalid(
            "user_agent",
            "holds characters a header cannot carry (control characters or non-ASCII)".into(),
        )
    })
}

pub(super) fn default_headers(
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

pub(super) fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), HttpError> {
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

pub(super) fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
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

pub(super) fn client_identity(path: &Path) -> Result<reqwest::Identity, HttpError> {
    let error = |reason: String| HttpError::ClientCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    reqwest::Identity::from_pem(&pem).map_err(|e| error(describe_chain(&e)))
}
