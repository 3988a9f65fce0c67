//! # A small OpenID Connect provider for the tests: [`OidcProvider`]
//!
//! Real HTTP on `127.0.0.1` (a free port): its discovery document at
//! `/.well-known/openid-configuration`, its keys at `/jwks` (RSA, generated at start: no
//! private key is kept in the repository), and tokens it signs for the tests
//! ([`OidcProvider::token`]) — or that it did not sign properly, to be refused: another
//! key's, `alg: none`, HS256 keyed with its public key. And the code flow: `/authorize`
//! logs the browser in at once as [`OidcProvider::log_in_as`] says and sends it back with
//! a code; `/token` gives the ID token for a code once, to the client whose secret it is
//! (HTTP Basic), with the PKCE verifier of the code's S256 challenge.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
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
    key: Arc<SigningKey>,
    flows: Arc<Mutex<Flows>>,
}

/// The code flow's memory.
#[derive(Default)]
struct Flows {
    /// Who logs in at `/authorize`.
    login: String,
    /// The registered client: id and secret.
    client: (String, String),
    /// Codes given and not yet exchanged: code → the authorization request's parameters.
    codes: HashMap<String, BTreeMap<String, String>>,
}

/// What `/authorize` and `/token` share.
#[derive(Clone)]
struct Flow {
    issuer: String,
    key: Arc<SigningKey>,
    flows: Arc<Mutex<Flows>>,
}

impl OidcProvider {
    /// A provider with one key.
    pub async fn start() -> OidcProvider {
        let key = Arc::new(SigningKey::generate("provider-1"));
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
        let flows = Arc::new(Mutex::new(Flows::default()));
        let flow = Flow {
            issuer: issuer.clone(),
            key: Arc::clone(&key),
            flows: Arc::clone(&flows),
        };
        let app = app.merge(
            Router::new()
                .route("/authorize", get(authorize))
                .route("/token", post(token))
                .with_state(flow),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        OidcProvider {
            issuer,
            keys,
            fetches,
            key,
            flows,
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

    /// Registers the client `id` with `secret`, and who logs in at `/authorize`.
    pub fn register(&self, id: &str, secret: &str, login: &str) {
        let mut flows = self.flows.lock().unwrap();
        flows.client = (id.to_owned(), secret.to_owned());
        flows.login = login.to_owned();
    }

    /// Who logs in at `/authorize` from now on.
    pub fn log_in_as(&self, login: &str) {
        self.flows.lock().unwrap().login = login.to_owned();
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

async fn authorize(
    State(flow): State<Flow>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
    let mut flows = flow.flows.lock().unwrap();
    let complete = query.get("response_type").map(String::as_str) == Some("code")
        && query.get("client_id") == Some(&flows.client.0)
        && query.get("code_challenge_method").map(String::as_str) == Some("S256")
        && query.contains_key("code_challenge")
        && query.contains_key("nonce");
    if !complete {
        return (
            StatusCode::BAD_REQUEST,
            "an incomplete authorization request",
        )
            .into_response();
    }
    let code = format!("code-{:016x}", rand::random::<u64>());
    let mut pending = query.clone();
    pending.insert("login".into(), flows.login.clone());
    flows.codes.insert(code.clone(), pending);
    let state = query.get("state").cloned().unwrap_or_default();
    let location = format!("{redirect}?code={code}&state={state}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(
    State(flow): State<Flow>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let refuse =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    let mut flows = flow.flows.lock().unwrap();
    let (id, secret) = flows.client.clone();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(basic.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let Some(pending) = form.get("code").and_then(|c| flows.codes.remove(c)) else {
        return refuse("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if Some(&challenge) != pending.get("code_challenge")
        || form.get("redirect_uri") != pending.get("redirect_uri")
    {
        return refuse("invalid_grant");
    }
    let login = &pending["login"];
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": flow.issuer, "aud": id, "sub": format!("sub-{login}"), "preferred_username": login,
        "email": format!("{login}@univ.example.fr"), "nonce": pending["nonce"],
        "iat": now, "exp": now + 300,
    });
    Json(json!({
        "access_token": format!("at-{:016x}", rand::random::<u64>()),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": flow.key.sign(&claims),
    }))
    .into_response()
}
