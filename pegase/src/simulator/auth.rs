//! The simulator's tokens: the credentials that get one, the JWTs issued and their
//! expiry; every data route wants one as a bearer token, unexpired.

use super::http::{now, ApiError};
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The credentials that get a token, and the tokens issued with their expiry.
/// (No `Debug`: it holds the password and live tokens.)
pub(crate) struct Tokens {
    pub username: String,
    pub password: String,
    lifetime: Duration,
    issued: Mutex<HashMap<String, i64>>,
    serial: AtomicU64,
}

impl Tokens {
    /// Tokens for these credentials, each valid `lifetime`.
    pub(crate) fn new(username: String, password: String, lifetime: Duration) -> Tokens {
        Tokens {
            username,
            password,
            lifetime,
            issued: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(0),
        }
    }

    /// A new JWT. Its signature is not a real one: the simulator recognises its tokens by
    /// remembering them, which is all a client can observe.
    pub(crate) fn issue(&self) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let issued_at = now();
        // `exp` is whole seconds: rounded up, so that a token issued late in a second still
        // lives its whole lifetime (one issued at 13.999 s with `exp` 14 would live 1 ms).
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let expiry = issued_at.saturating_add(lifetime).saturating_add(1);
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
        let payload = serde_json::json!({
            "sub": self.username, "iss": "conpere-pegase-simulator",
            "iat": issued_at, "exp": expiry, "jti": serial,
        });
        let signature = super::codes::uuid_for(&format!("{serial}|{issued_at}"));
        let token = [header.to_string(), payload.to_string(), signature]
            .map(|part| URL_SAFE_NO_PAD.encode(part))
            .join(".");
        self.lock().insert(token.clone(), expiry);
        token
    }

    /// Whether the request carries a live token: 401 when missing, malformed or unknown,
    /// 403 when expired (Pégase's CHC and COC answer so).
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("jeton absent ou mal formé"))?;
        let expiry = self.lock().get(token.trim()).copied();
        match expiry {
            None => Err(unauthorized("jeton inconnu")),
            Some(expiry) if expiry <= now() => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "token.expire",
                "jeton expiré",
            )),
            Some(_) => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "token.invalide", message)
}
