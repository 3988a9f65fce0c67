//! Who calls (`[auth]`): [`Authentication::Header`], behind an authenticating reverse
//! proxy — the login is in `user_header`, and the request is believed only when
//! `secret_header` carries the shared secret (compared in constant time), anything else
//! is 401, the secret never logged nor echoed; or [`Authentication::Cas`], browser
//! sessions opened by a CAS login ([`crate::login`]).

use crate::error::ApiError;
use axum::http::HeaderMap;

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// Behind an authenticating reverse proxy.
    Header(HeaderAuth),
    /// CAS 3.0 logins and browser sessions.
    Cas(std::sync::Arc<crate::login::CasLogin>),
    /// OpenID Connect: bearer JWTs of API clients.
    Oidc(std::sync::Arc<crate::oidc::Oidc>),
    /// `conpere demo --serve` only: a page to pick a person of the demo, no password.
    /// No configuration selects it.
    Demo(std::sync::Arc<crate::login::DemoLogin>),
}

impl Authentication {
    /// The browser sessions of the modes that have them (CAS; OIDC with a public URL).
    pub fn browser(&self) -> Option<&crate::sessions::BrowserSessions> {
        match self {
            Authentication::Header(_) => None,
            Authentication::Cas(login) => Some(&login.sessions),
            Authentication::Oidc(oidc) => oidc.browser.as_ref().map(|b| &b.sessions),
            Authentication::Demo(demo) => Some(&demo.sessions),
        }
    }
}

/// `[auth]`: how callers of the contracts API (and, later, the pages) are authenticated.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `header` (behind an authenticating reverse proxy), `cas` or `oidc`.
    pub mode: String,
    /// cas: the CAS server's base URL (`https://cas.univ.fr/cas`).
    pub cas_url: Option<String>,
    /// cas: the attribute carrying the INE (`supannCodeINE` in SUPANN), for
    /// `student_match = "ine"`.
    pub ine_attribute: Option<String>,
    /// cas, oidc: a session ends after this many hours without a request (default 8).
    pub session_idle_hours: Option<u64>,
    /// oidc: the issuer (`https://idp.univ.fr/realms/univ`), its discovery at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// oidc: conpere's client id at the issuer.
    pub client_id: Option<String>,
    /// oidc: the environment variable holding the client's secret (a confidential
    /// client; none: a public client, PKCE alone).
    pub client_secret_env: Option<String>,
    /// oidc: the audience bearer tokens must be for (default: the client id).
    pub audience: Option<String>,
    /// oidc: the claim a login is read from (default `preferred_username`, else `sub`).
    pub login_claim: Option<String>,
    /// oidc: the claim carrying the INE, for `student_match = "ine"`.
    pub ine_claim: Option<String>,
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
    /// The configured mode, ready: its secrets read from the environment (`env`), its URLs
    /// checked; what is missing is refused with what to do. `public_url` is `[server]
    /// public_url` (CAS sends the browser back there).
    pub fn build(
        &self,
        env: impl Fn(&str) -> Option<String>,
        public_url: Option<&str>,
    ) -> Result<Authentication, String> {
        match self.mode.as_str() {
            "header" => self.header(env).map(Authentication::Header),
            "cas" => {
                let Some(cas_url) = &self.cas_url else {
                    return Err(
                        "[auth] mode = \"cas\" needs cas_url, the CAS server's base URL \
                                (e.g. \"https://cas.univ.fr/cas\")"
                            .into(),
                    );
                };
                let Some(public_url) = public_url else {
                    return Err(
                        "[auth] mode = \"cas\" needs [server] public_url: the CAS server \
                                sends the browser back to <public_url>/auth/cas"
                            .into(),
                    );
                };
                let idle = self.session_idle_hours.unwrap_or(8);
                let login = crate::login::CasLogin::new(
                    cas_url,
                    public_url,
                    self.ine_attribute.clone(),
                    idle,
                )?;
                Ok(Authentication::Cas(std::sync::Arc::new(login)))
            }
            "oidc" => {
                let (Some(issuer), Some(client_id)) = (&self.issuer, &self.client_id) else {
                    return Err("[auth] mode = \"oidc\" needs issuer (its discovery is at \
                                <issuer>/.well-known/openid-configuration) and client_id"
                        .into());
                };
                let audience = self.audience.as_ref().unwrap_or(client_id);
                let mut oidc = crate::oidc::Oidc::new(
                    issuer,
                    audience,
                    self.login_claim.clone(),
                    self.ine_claim.clone(),
                );
                let client_secret = match &self.client_secret_env {
                    None => None,
                    Some(variable) => Some(
                        env(variable)
                            .filter(|s| !s.trim().is_empty())
                            .ok_or_else(|| {
                                format!(
                                    "[auth] client_secret_env: {variable} is not set (or empty)"
                                )
                            })?,
                    ),
                };
                // The pages' login needs the URL the provider sends the browser back to.
                if let Some(public_url) = public_url {
                    let idle = self.session_idle_hours.unwrap_or(8);
                    let sessions = crate::sessions::BrowserSessions::new(public_url, idle)?;
                    let client =
                        crate::login::OidcClient::new(client_id.clone(), client_secret, sessions);
                    oidc.browser = Some(client);
                }
                Ok(Authentication::Oidc(std::sync::Arc::new(oidc)))
            }
            "demo" => Err(
                "[auth] mode = \"demo\": the demo's login, without a password, \
                           exists only with `conpere demo --serve`"
                    .into(),
            ),
            other => Err(format!(
                "[auth] mode = \"{other}\": \"header\", \"cas\" or \"oidc\""
            )),
        }
    }

    /// The header mode, its secret read from the environment: a missing secret is
    /// refused with what to do.
    pub fn header(&self, env: impl Fn(&str) -> Option<String>) -> Result<HeaderAuth, String> {
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

/// The HTTP client conpere asks an identity provider with (CAS validation, OIDC
/// discovery, keys and tokens): 10 s at most, and no redirect followed (a redirect could
/// send conpere's request, and the code or ticket in it, elsewhere).
pub(crate) fn provider_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether two byte strings are equal, in a time that depends on their lengths only.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::AuthSettings;

    #[test]
    fn no_configuration_selects_the_demo_login() {
        let settings: AuthSettings = serde_json::from_str(r#"{"mode": "demo"}"#).unwrap();
        let refused = settings
            .build(|_| None, Some("http://127.0.0.1:8080"))
            .unwrap_err();
        assert!(refused.contains("conpere demo --serve"), "{refused}");
    }
}
