//! Trusted-header authentication (`[auth] mode = "header"`): behind an authenticating
//! reverse proxy, the login is in `user_header`, and the request is believed only when
//! `secret_header` carries the shared secret (compared in constant time). Anything else
//! is 401. The secret is never logged nor echoed.

use crate::error::ApiError;
use axum::http::HeaderMap;

/// `[auth]`: how callers of the contracts API (and, later, the pages) are authenticated.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `header` (behind an authenticating reverse proxy); `cas` and `oidc` are to come.
    pub mode: String,
    /// header: the header carrying the login (default `X-Remote-User`).
    pub user_header: Option<String>,
    /// header: the header carrying the proxy's shared secret (default `X-Proxy-Secret`).
    pub secret_header: Option<String>,
    /// header: the environment variable holding that secret (required).
    pub secret_env: Option<String>,
    /// How a login finds its student: `login` (default), `email` or `ine`.
    pub student_match: Option<crate::roles::StudentMatch>,
}

impl AuthSettings {
    /// The header mode, its secret read from the environment: a mode not built, or a
    /// missing secret, is refused with what to do.
    pub fn header(&self, env: impl Fn(&str) -> Option<String>) -> Result<HeaderAuth, String> {
        if self.mode != "header" {
            return Err(format!(
                "[auth] mode = \"{}\": only \"header\" is available in this version (CAS and \
                 OpenID Connect are to come)",
                self.mode
            ));
        }
        let Some(variable) = &self.secret_env else {
            return Err(
                "[auth] mode = \"header\" needs secret_env: the environment variable \
                        holding the secret the proxy sends, without which anyone could claim \
                        any login"
                    .into(),
            );
        };
        let secret = env(variable)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let Some(secret) = secret else {
            return Err(format!(
                "[auth] secret_env: the environment variable {variable} is not set (or empty); \
                 export it before starting conpere"
            ));
        };
        Ok(HeaderAuth {
            user_header: self
                .user_header
                .clone()
                .unwrap_or_else(|| "X-Remote-User".into()),
            secret_header: self
                .secret_header
                .clone()
                .unwrap_or_else(|| "X-Proxy-Secret".into()),
            secret,
        })
    }
}

/// The header mode's settings, the secret already read from its environment variable.
#[derive(Clone)]
pub struct HeaderAuth {
    /// The header carrying the login (e.g. `X-Remote-User`).
    pub user_header: String,
    /// The header carrying the shared secret (e.g. `X-Proxy-Secret`).
    pub secret_header: String,
    /// The shared secret.
    pub secret: String,
}

impl std::fmt::Debug for HeaderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderAuth")
            .field("user_header", &self.user_header)
            .field("secret_header", &self.secret_header)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl HeaderAuth {
    /// The login the proxy vouches for.
    pub fn login(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let secret = headers.get(&self.secret_header).map(|v| v.as_bytes());
        match secret {
            Some(given) if same(given, self.secret.as_bytes()) => {}
            Some(_) => return Err(ApiError::unauthenticated("the proxy's secret is wrong")),
            None => {
                return Err(ApiError::unauthenticated(
                    "this request did not come through the authenticating proxy",
                ))
            }
        }
        let login = headers
            .get(&self.user_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|l| !l.is_empty());
        login
            .map(str::to_owned)
            .ok_or_else(|| ApiError::unauthenticated(format!("no login in {}", self.user_header)))
    }
}

/// Whether two byte strings are equal, in a time that depends on their lengths only.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
