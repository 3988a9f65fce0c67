//! CAS login over real HTTP both ways (conpere-web and a CAS 3.0 server, `conpere_tests::
//! cas`), sessions in the real store: login → session → API calls → the CAS server's
//! single logout ends it; a replayed ticket refused; the session id renewed at login; a
//! cross-site POST refused; the evidence records `cas` and the server, and the session
//! table holds no cookie value and no ticket.

use conpere_tests::cas::CasServer;
use conpere_tests::{web, TestDatabase};
use conpere_web::auth::Authentication;
use conpere_web::login::CasLogin;
use conpere_web::roles::RolesSettings;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Site {
    db: TestDatabase,
    cas: CasServer,
    base: String,
    http: reqwest::Client,
}

impl Site {
    async fn start() -> Site {
        let (db, _) = web::contract_store(&[("PLAIN", "plain")]).await;

        let cas = CasServer::start("plain", &[("mail", "plain@etu.univ.fr")]).await;
        let (listener, base) = web::listener().await;
        let login = CasLogin::new(cas.url(), &base, Some("supannCodeINE".into()), 8).unwrap();
        let roles = RolesSettings {
            directeurs: BTreeMap::from([("dir-a".into(), vec!["VET:A/1".into()])]),
            contact: Some("scolarite@univ.example.fr".into()),
            ..RolesSettings::default()
        };
        web::serve(
            listener,
            web::api(&db, Authentication::Cas(Arc::new(login)), roles),
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Site {
            db,
            cas,
            base,
            http,
        }
    }

    /// A whole CAS login as `user`: the session cookie at the end, and the one the
    /// browser had before the ticket came back.
    async fn log_in(&self, user: &str) -> (String, Option<String>) {
        self.cas.log_in_as(user);
        let start = self
            .get(&format!("{}/auth/login?next=/api/v1/me", self.base), None)
            .await;
        let before = web::session_cookie(&start);
        let at_cas = self.get(location(&start), None).await;
        assert_eq!(at_cas.status(), 302);
        let back = self.get(location(&at_cas), before.as_deref()).await;
        assert_eq!(back.status(), 303, "{:?}", back.headers());
        assert_eq!(location(&back), "/api/v1/me");
        let set = (back.headers().get_all(SET_COOKIE).iter())
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("conpere_session="))
            .expect("the session cookie")
            .to_ascii_lowercase();
        // Not `Secure` here only because the public URL is http on localhost.
        assert!(
            set.contains("httponly") && set.contains("samesite=lax"),
            "{set}"
        );
        (
            web::session_cookie(&back).expect("a session cookie"),
            before,
        )
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("conpere_session={cookie}"));
        }
        request.send().await.unwrap()
    }

    /// `GET /api/v1{path}` in the session: status and JSON.
    async fn api(&self, path: &str, cookie: &str) -> (u16, Value) {
        let response = self
            .get(&format!("{}/api/v1{path}", self.base), Some(cookie))
            .await;
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }

    /// `POST /api/v1{path}` in the session, from `origin` when given.
    async fn post(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut request = (self.http.post(format!("{}/api/v1{path}", self.base)))
            .header(COOKIE, format!("conpere_session={cookie}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn a_cas_login_opens_a_session_that_acts_and_single_logout_ends() {
    let site = Site::start().await;
    // A session long expired: the next login clears it.
    let client = site.db.pool.get().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO web_session (key, data, expires_at) \
             VALUES ('expired', '{}', now() - interval '1 day')",
        )
        .await
        .unwrap();
    let (student, before) = site.log_in("plain").await;
    let expired = client
        .query("SELECT 1 FROM web_session WHERE key = 'expired'", &[])
        .await
        .unwrap();
    assert!(expired.is_empty(), "an expired session was kept");
    assert_ne!(
        before.as_deref(),
        Some(student.as_str()),
        "the session id is renewed at login"
    );
    let (status, me) = site.api("/me", &student).await;
    assert_eq!(
        (status, &me["id"], &me["roles"]),
        (200, &json!("plain"), &json!(["student"]))
    );
    let (status, page) = site.api("/contracts", &student).await;
    assert_eq!(status, 200);
    let contract = &page["items"][0];
    let (id, hash) = (
        contract["id"].as_i64().unwrap(),
        contract["version_hash"].clone(),
    );

    // A replayed ticket: the CAS server refuses it, so does conpere.
    let first_ticket = site.cas.issued()[0].clone();
    let replay = site
        .get(
            &format!("{}/auth/cas?ticket={first_ticket}", site.base),
            None,
        )
        .await;
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("INVALID_TICKET"));
    // No session, no API.
    assert_eq!(site.api("/me", "not-a-session").await.0, 401);

    // The directeur proposes: from conpere's origin only.
    let (directeur, _) = site.log_in("dir-a").await;
    let seen = json!({ "version_hash": hash });
    let propose = format!("/contracts/{id}/propose");
    for origin in [None, Some("https://evil.example")] {
        let (status, refused) = site.post(&propose, &directeur, origin, seen.clone()).await;
        assert_eq!(
            (status, &refused["error"]["code"]),
            (403, &json!("csrf")),
            "{origin:?}"
        );
    }
    let ours = Some(site.base.as_str());
    let (status, proposed) = site.post(&propose, &directeur, ours, seen.clone()).await;
    assert_eq!(
        (status, &proposed["state"]),
        (200, &json!("proposed")),
        "{proposed}"
    );
    let signing = json!({ "version_hash": hash, "consent_text": "Je signe." });
    let (status, _) = site
        .post(&format!("/contracts/{id}/sign"), &student, ours, signing)
        .await;
    assert_eq!(status, 200);
    let (_, evidence) = site
        .api(&format!("/contracts/{id}/evidence"), &student)
        .await;
    let signer = &evidence.as_array().unwrap().last().unwrap()["actor"];
    assert_eq!(
        (&signer["id"], &signer["auth"], &signer["idp"]),
        (&json!("plain"), &json!("cas"), &json!(site.cas.url()))
    );

    // The session table: neither a cookie's value nor a ticket.
    let rows = client
        .query("SELECT key || data::text FROM web_session", &[])
        .await
        .unwrap();
    assert!(rows.len() >= 2);
    for row in rows {
        let stored: String = row.get(0);
        for secret in [student.clone(), directeur.clone()]
            .into_iter()
            .chain(site.cas.issued())
        {
            assert!(!stored.contains(&secret), "{secret} stored: {stored}");
        }
    }

    // The CAS server's single logout ends the student's session, and only it.
    let student_ticket = site.cas.issued()[0].clone();
    let request = format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"LR-1\" Version=\"2.0\" \
         IssueInstant=\"2026-12-06T10:00:00Z\"><saml:NameID>@NOT_USED@</saml:NameID>\
         <samlp:SessionIndex>{student_ticket}</samlp:SessionIndex></samlp:LogoutRequest>"
    );
    let logout = (site.http.post(format!("{}/auth/cas", site.base)))
        .form(&[("logoutRequest", request)])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_eq!(site.api("/me", &student).await.0, 401);
    assert_eq!(site.api("/me", &directeur).await.0, 200);

    // The directeur logs out: the session ends here, then at the CAS server.
    let out = site
        .get(&format!("{}/auth/logout", site.base), Some(&directeur))
        .await;
    assert_eq!(out.status(), 303);
    assert!(location(&out).starts_with(&format!("{}/logout?service=", site.cas.url())));
    assert_eq!(site.api("/me", &directeur).await.0, 401);
}

#[tokio::test]
async fn a_login_nobody_knows_gets_a_clear_refusal() {
    let site = Site::start().await;
    let (stranger, _) = site.log_in("nobody-here").await;
    let (status, refused) = site.api("/me", &stranger).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("forbidden"))
    );
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no role"));
}
