//! OpenID Connect (`[auth] mode = "oidc"`); the pages' code flow is in [`crate::login`].
//! For API clients: a bearer JWT (`Authorization:
//! Bearer …`) is believed when the issuer's own key signed it — the key named by its
//! `kid` in the issuer's JWKS (found by discovery), the algorithm pinned to what that key
//! says (so `alg: none`, and HS256 keyed with the public key, are refused) — and its
//! issuer, audience, expiry and not-before are right. The JWKS is cached, and fetched
//! again for an unknown `kid` (a key rotation), at most once per [`REFRESH_EVERY`].

use crate::sessions::Identity;
use conpere_contracts::evidence::AuthKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The least time between two fetches of the JWKS for unknown keys.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// An OpenID Connect issuer, and what conpere accepts from it.
#[derive(Debug)]
pub struct Oidc {
    /// The issuer (`iss`), as its discovery document names it.
    pub issuer: String,
    /// The audience a bearer token must be for (`aud`).
    pub audience: String,
    /// The claim a login is read from (`preferred_username` by default, else `sub`).
    pub login_claim: String,
    /// The claim carrying the INE, if any.
    pub ine_claim: Option<String>,
    /// The least time between two fetches of the JWKS for unknown keys
    /// ([`REFRESH_EVERY`]).
    pub refresh_every: Duration,
    /// The pages' client (the code flow), when conpere has a public URL.
    pub browser: Option<crate::login::OidcClient>,
    pub(crate) http: reqwest::Client,
    keys: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    jwks_uri: Option<String>,
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

/// Why a bearer token was refused (each a 401), or could not be checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    /// Not a token conpere accepts; why, for the caller (no token in it).
    #[error("the bearer token is refused: {0}")]
    Refused(String),
    /// The issuer's discovery or keys cannot be read now.
    #[error("the identity provider cannot be reached: {0}")]
    Unavailable(String),
}

impl Oidc {
    /// The issuer at `issuer`, tokens for `audience`.
    pub fn new(
        issuer: &str,
        audience: &str,
        login_claim: Option<String>,
        ine_claim: Option<String>,
    ) -> Oidc {
        let http = crate::auth::provider_http();
        Oidc {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            login_claim: login_claim.unwrap_or_else(|| "preferred_username".into()),
            ine_claim,
            refresh_every: REFRESH_EVERY,
            browser: None,
            http,
            keys: Mutex::new(Keys::default()),
        }
    }

    async fn json(&self, url: &str) -> Result<Value, OidcError> {
        let unavailable = |e: reqwest::Error| OidcError::Unavailable(e.without_url().to_string());
        let response = self.http.get(url).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "HTTP {} from {url}",
                response.status()
            )));
        }
        let text = response.text().await.map_err(unavailable)?;
        serde_json::from_str(&text).map_err(|e| OidcError::Unavailable(format!("{url}: {e}")))
    }

    /// The issuer's discovery document.
    pub async fn discovery(&self) -> Result<Value, OidcError> {
        let document = self
            .json(&format!("{}/.well-known/openid-configuration", self.issuer))
            .await?;
        if document["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(&self.issuer) {
            return Err(OidcError::Unavailable(format!(
                "the discovery document names another issuer than {}",
                self.issuer
            )));
        }
        Ok(document)
    }

    /// The key `kid`: from the cached JWKS, else from a fresh one (at most once per
    /// [`REFRESH_EVERY`]).
    async fn key(&self, kid: &str) -> Result<Jwk, OidcError> {
        let mut keys = self.keys.lock().await;
        if let Some(found) = keys.set.as_ref().and_then(|set| set.find(kid)) {
            return Ok(found.clone());
        }
        if keys
            .fetched
            .is_some_and(|at| at.elapsed() < self.refresh_every)
        {
            return Err(OidcError::Refused(format!("no key {kid} at the issuer")));
        }
        let uri = match &keys.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let document = self.discovery().await?;
                let uri = (document["jwks_uri"].as_str())
                    .ok_or_else(|| OidcError::Unavailable("no jwks_uri in the discovery".into()))?;
                keys.jwks_uri = Some(uri.to_owned());
                uri.to_owned()
            }
        };
        keys.fetched = Some(Instant::now());
        let set: JwkSet = serde_json::from_value(self.json(&uri).await?)
            .map_err(|e| OidcError::Unavailable(format!("the JWKS: {e}")))?;
        let found = set.find(kid).cloned();
        keys.set = Some(set);
        found.ok_or_else(|| OidcError::Refused(format!("no key {kid} at the issuer")))
    }

    /// Who a bearer JWT says the caller is, once checked.
    pub async fn verify_bearer(&self, token: &str) -> Result<Identity, OidcError> {
        let refused = |why: &str| OidcError::Refused(why.to_owned());
        // `alg: none` (and any algorithm jsonwebtoken does not know) fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(&e.to_string()))?;
        let kid = header.kid.ok_or_else(|| refused("no kid in its header"))?;
        let key = self.key(&kid).await?;
        let algorithm = pinned_algorithm(&key)
            .ok_or_else(|| refused("the issuer's key has no usable algorithm"))?;
        if header.alg != algorithm {
            return Err(refused(&format!(
                "signed with {:?}, but the issuer's key {kid} is for {algorithm:?}",
                header.alg
            )));
        }
        let decoding = DecodingKey::from_jwk(&key).map_err(|e| refused(&e.to_string()))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .map_err(|e| refused(&e.to_string()))?
            .claims;
        self.identity(&claims)
            .ok_or_else(|| refused("no login in its claims"))
    }

    /// The identity of verified claims.
    pub fn identity(&self, claims: &Value) -> Option<Identity> {
        let text = |name: &str| claims[name].as_str().map(str::to_owned);
        let login = text(&self.login_claim).or_else(|| text("sub"))?;
        Some(Identity {
            login,
            mail: text("email"),
            ine: self.ine_claim.as_deref().and_then(text),
            auth: AuthKind::Oidc,
            idp: Some(self.issuer.clone()),
            session_index: None,
        })
    }
}

/// The claims of a JWT already verified (its payload, decoded).
pub fn payload(token: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The one algorithm a key is used with: its `alg` (if it fits its type), else RS256 for
/// an RSA key. Never an HMAC algorithm: an issuer's public key
/// is public, and HS256 keyed with it would let anyone sign.
fn pinned_algorithm(key: &Jwk) -> Option<Algorithm> {
    let Some(alg) = key.common.key_algorithm else {
        return matches!(key.algorithm, AlgorithmParameters::RSA(_)).then_some(Algorithm::RS256);
    };
    let from_alg = match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    };
    let fits = matches!(
        (&key.algorithm, from_alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
        ) | (
            AlgorithmParameters::RSA(_),
            Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    fits.then_some(from_alg)
}
