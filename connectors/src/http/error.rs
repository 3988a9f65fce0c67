//! What can go wrong with HTTP, each error naming the operation and what to check,
//! and its [`FailureKind`] once it becomes a connector error.

use std::path::PathBuf;

use super::StatusCode;
use crate::connector::ConnectorError;
use conpere_model::FailureKind;

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
    /// A response the classifier (or [`Outcome::by_status`](super::Outcome::by_status)) called a permanent failure.
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

pub(super) fn attempts_text(attempts: u32) -> String {
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

/// An error and its sources, de-duplicated (hyper repeats messages along the chain).
pub(super) fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
