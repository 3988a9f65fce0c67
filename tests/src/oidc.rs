//! # A small OpenID Connect provider for the tests: [`OidcProvider`]
//!
//! Real HTTP on `127.0.0.1` (a free port): its discovery document at
//! `/.well-known/openid-configuration`, its keys at `/jwks` (RSA, generated at start: no
//! private key is kept in the repository), and tokens it signs for the tests
//! ([`OidcProvider::token`]) — or that it did not sign properly, to be refused: another
//! key's, `alg: none`, HS256 keyed with its public key.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// A signing key and its JWK.
pub struct SigningKey {
    /// Its `kid`.
    pub kid: String,
    encoding: EncodingKey,
    /// Its public JWK.
    pub jwk: Value,
    /// The public modulus' bytes (what an attacker would key HS256 with).
    pub public_bytes: Vec<u8>,
}

impl SigningKey {
    /// A new RSA key named `kid`.
    pub fn generate(kid: &str) -> SigningKey {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA key");
        let der = private.to_pkcs1_der().expect("DER");
        let public = private.to_public_key();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        SigningKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
            }),
            public_bytes: public.n().to_bytes_be(),
        }
    }

    /// `claims` signed RS256 with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("a token")
    }
}

/// A provider, running.
pub struct OidcProvider {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
    key: SigningKey,
}

impl OidcProvider {
    /// A provider with one key.
    pub async fn start() -> OidcProvider {
        let key = SigningKey::generate("provider-1");
        let keys = Arc::new(Mutex::new(vec![key.jwk.clone()]));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            )
            .route("/jwks", get(jwks))
            .with_state((Arc::clone(&keys), Arc::clone(&fetches)));
        tokio::spawn(async move { axum::serve(listener, app).await });
        OidcProvider {
            issuer,
            keys,
            fetches,
            key,
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its current key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// How many times its JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Publishes `key` in the JWKS too (a rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// Claims for `login`, for `audience`, valid from a minute ago for an hour.
    pub fn claims(&self, login: &str, audience: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer, "aud": audience, "sub": format!("sub-{login}"),
            "preferred_username": login, "iat": now, "nbf": now - 60, "exp": now + 3600,
        })
    }

    /// `claims` signed by the provider.
    pub fn token(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }
}

type Published = (Arc<Mutex<Vec<Value>>>, Arc<std::sync::atomic::AtomicUsize>);

async fn jwks(State((keys, fetches)): State<Published>) -> Json<Value> {
    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Json(json!({ "keys": *keys.lock().unwrap() }))
}

/// A token with `alg: none` and no signature.
pub fn unsigned(claims: &Value, kid: &str) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(&header), part(claims))
}

/// A token signed HS256 with `secret` (an attacker's trick: the provider's public key
/// bytes as an HMAC secret), naming the provider's `kid`.
pub fn hmac_signed(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("a token")
}
