//! OpenID Connect bearer tokens over real HTTP both ways (conpere-web and a provider with
//! discovery and a JWKS, `conpere_tests::oidc`): a token the issuer signed for conpere is
//! believed, acts without any CSRF token, and its action's evidence says `oidc` and the
//! issuer; one with the wrong issuer, the wrong audience, expired, not yet valid,
//! `alg: none`, another key, HS256 keyed with the public key: each 401. A rotated key is
//! fetched; unknown keys do not make conpere fetch the JWKS more than the bound allows.

use conpere_tests::oidc::{hmac_signed, unsigned, OidcProvider, SigningKey};
use conpere_tests::{web, TestDatabase};
use conpere_web::auth::Authentication;
use conpere_web::login::OidcClient;
use conpere_web::oidc::Oidc;
use conpere_web::roles::RolesSettings;
use conpere_web::sessions::BrowserSessions;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

struct Site {
    _db: TestDatabase,
    base: String,
    http: reqwest::Client,
}

impl Site {
    /// PLAIN (login `plain`) synced; the API believing `provider`'s tokens for `conpere`.
    async fn start(provider: &OidcProvider, refresh_every: Duration) -> Site {
        Site::serve(provider, refresh_every, false).await
    }

    /// The same, and the pages' login by the code flow (client `conpere-pages`).
    async fn with_pages(provider: &OidcProvider) -> Site {
        provider.register("conpere-pages", "pages-secret", "plain");
        Site::serve(provider, Duration::from_secs(30), true).await
    }

    async fn serve(provider: &OidcProvider, refresh_every: Duration, pages: bool) -> Site {
        let (db, _) = web::contract_store(&[("PLAIN", "plain")]).await;
        let (listener, root) = web::listener().await;
        let mut oidc = Oidc::new(provider.issuer(), "conpere", None, None);
        oidc.refresh_every = refresh_every;
        if pages {
            oidc.browser = Some(OidcClient::new(
                "conpere-pages".into(),
                Some("pages-secret".into()),
                BrowserSessions::new(&root, 8).unwrap(),
            ));
        }
        let roles = RolesSettings {
            directeurs: BTreeMap::from([("dir-a".into(), vec!["VET:A/1".into()])]),
            ..RolesSettings::default()
        };
        web::serve(
            listener,
            web::api(&db, Authentication::Oidc(Arc::new(oidc)), roles),
        );
        let base = format!("{root}/api/v1");
        Site {
            _db: db,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let request = match body {
            None => self.http.get(url),
            Some(body) => (self.http.post(url))
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        let response = request.bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn bearer_tokens_are_believed_only_as_the_issuer_signed_them_for_conpere() {
    let provider = OidcProvider::start().await;
    let site = Site::start(&provider, Duration::from_secs(30)).await;
    let good = provider.token(&provider.claims("plain", "conpere"));
    let (status, me) = site.send(&good, "/me", None).await;
    assert_eq!((status, &me["id"]), (200, &json!("plain")), "{me}");

    let now = chrono::Utc::now().timestamp();
    let with = |changes: Value| {
        let mut claims = provider.claims("plain", "conpere");
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let other = SigningKey::generate("provider-1");
    let kid = &provider.key().kid;
    let refused = [
        (
            "another issuer",
            provider.token(&with(json!({"iss": "https://idp.evil.example"}))),
        ),
        (
            "another audience",
            provider.token(&with(json!({"aud": "another-app"}))),
        ),
        (
            "expired",
            provider.token(&with(json!({"exp": now - 3600, "nbf": now - 7200}))),
        ),
        (
            "not yet valid",
            provider.token(&with(json!({"nbf": now + 3600}))),
        ),
        (
            "alg none",
            unsigned(&provider.claims("plain", "conpere"), kid),
        ),
        (
            "another key, same kid",
            other.sign(&provider.claims("plain", "conpere")),
        ),
        (
            "HS256 with the public key",
            hmac_signed(
                &provider.claims("plain", "conpere"),
                kid,
                &provider.key().public_bytes,
            ),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, token) in refused {
        let (status, body) = site.send(&token, "/me", None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &json!("unauthenticated")),
            "{what}: {body}"
        );
    }

    // Unknown keys: the JWKS is fetched again once, not once per token.
    let fetched = provider.jwks_fetches();
    let stranger = SigningKey::generate("stranger-1");
    for _ in 0..5 {
        let token = stranger.sign(&provider.claims("plain", "conpere"));
        assert_eq!(site.send(&token, "/me", None).await.0, 401);
    }
    assert!(
        provider.jwks_fetches() <= fetched + 1,
        "{} fetches",
        provider.jwks_fetches()
    );

    // An action with a bearer token: no CSRF check (no cookie), the evidence says oidc.
    let directeur = provider.token(&provider.claims("dir-a", "conpere"));
    let (_, page) = site.send(&good, "/contracts", None).await;
    let (id, hash) = (
        page["items"][0]["id"].clone(),
        page["items"][0]["version_hash"].clone(),
    );
    let seen = json!({ "version_hash": hash });
    let (status, _) = site
        .send(&directeur, &format!("/contracts/{id}/propose"), Some(seen))
        .await;
    assert_eq!(status, 200);
    let signing = json!({ "version_hash": hash, "consent_text": "Je signe." });
    let (status, _) = site
        .send(&good, &format!("/contracts/{id}/sign"), Some(signing))
        .await;
    assert_eq!(status, 200);
    let (_, evidence) = site
        .send(&good, &format!("/contracts/{id}/evidence"), None)
        .await;
    let signer = &evidence.as_array().unwrap().last().unwrap()["actor"];
    assert_eq!(
        (&signer["id"], &signer["auth"], &signer["idp"]),
        (&json!("plain"), &json!("oidc"), &json!(provider.issuer()))
    );
    assert!(
        !evidence.to_string().contains(&good),
        "a token in the evidence"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched() {
    let provider = OidcProvider::start().await;
    let site = Site::start(&provider, Duration::ZERO).await;
    let first = provider.token(&provider.claims("plain", "conpere"));
    assert_eq!(site.send(&first, "/me", None).await.0, 200);
    let rotated = SigningKey::generate("provider-2");
    provider.publish(&rotated);
    let token = rotated.sign(&provider.claims("plain", "conpere"));
    assert_eq!(site.send(&token, "/me", None).await.0, 200);
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The pages' login: the code flow with PKCE, state and nonce, through the provider.
#[tokio::test]
async fn the_pages_log_in_by_the_code_flow_with_pkce() {
    let provider = OidcProvider::start().await;
    let site = Site::with_pages(&provider).await;
    let root = site.base.trim_end_matches("/api/v1").to_owned();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String, cookie: Option<String>| {
        let mut request = browser.get(url);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("conpere_session={cookie}"));
        }
        request.send()
    };

    let start = get(format!("{root}/auth/login?next=/api/v1/contracts"), None)
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let to_provider = location(&start);
    for part in [
        "code_challenge=",
        "code_challenge_method=S256",
        "nonce=",
        "state=",
    ] {
        assert!(to_provider.contains(part), "{part} not in {to_provider}");
    }
    let before = web::session_cookie(&start).expect("a session for the flow");
    let at_provider = get(to_provider, None).await.unwrap();
    assert_eq!(at_provider.status(), 302);
    let callback = location(&at_provider);

    // The state of another session, or a forged one: refused.
    let forged = callback.replace("state=", "state=forged");
    let refused = get(forged, Some(before.clone())).await.unwrap();
    assert_eq!(refused.status(), 401);

    // Again, properly: logged in, a new session id, back where asked.
    let start = get(format!("{root}/auth/login?next=/api/v1/contracts"), None)
        .await
        .unwrap();
    let before = web::session_cookie(&start).unwrap();
    let callback = location(&get(location(&start), None).await.unwrap());
    let back = get(callback.clone(), Some(before.clone())).await.unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), "/api/v1/contracts");
    let session = web::session_cookie(&back).expect("a session");
    assert_ne!(session, before, "the session id is renewed at login");
    let me = get(format!("{root}/api/v1/me"), Some(session.clone()))
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = serde_json::from_str(&me.text().await.unwrap()).unwrap();
    assert_eq!(
        (&me["id"], &me["roles"]),
        (&json!("plain"), &json!(["student"]))
    );
    // The code again: nothing in progress any more.
    assert_eq!(
        get(callback, Some(session.clone())).await.unwrap().status(),
        401
    );

    // A session's POST from elsewhere: refused; logout ends the session.
    let post = (browser.post(format!("{root}/api/v1/contracts/1/sign")))
        .header(COOKIE, format!("conpere_session={session}"))
        .header("content-type", "application/json")
        .body(r#"{"version_hash":"sha256:0"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let out = get(format!("{root}/auth/logout"), Some(session.clone()))
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = get(format!("{root}/api/v1/me"), Some(session))
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}
