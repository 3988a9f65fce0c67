//! The `/api/v1` contracts API (conpere-web) over real HTTP, against the real embedded
//! PostgreSQL: trusted-header authentication, what each role sees (a student asking for
//! another's contract gets 404), keyset pages, the lifecycle with a stale hash refused
//! (409 and the current hash), and the public hash check revealing nothing personal.

use conpere_contracts::catalogue::Catalogue;
use conpere_contracts::rules::Rules;
use conpere_contracts::RefreshHook;
use conpere_core::engine::{Batch, Coverage, Engine, NoProgress, RunRequest};
use conpere_tests::contract_data::{flag_cases, lines, student};
use conpere_tests::TestDatabase;
use conpere_web::auth::HeaderAuth;
use conpere_web::roles::{RolesSettings, StudentMatch};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const SECRET: &str = "proxy-secret-for-tests";

struct Server {
    _db: TestDatabase,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// The flag cases synced (PLAIN and SPECIAL with logins), served on a free port.
    async fn start() -> Server {
        let db = TestDatabase::new().await;
        let hook = RefreshHook {
            catalogue: Catalogue::default(),
            rules: Rules::default(),
        };
        let engine = Engine::new(db.pool.clone()).with_commit_hook(Arc::new(hook));
        let with_login = |id: &str, login: &str| {
            student(id).replace(r#""login":null"#, &format!(r#""login":"{login}""#))
        };
        let data = flag_cases()
            .replace(&student("PLAIN"), &with_login("PLAIN", "plain"))
            .replace(&student("SPECIAL"), &with_login("SPECIAL", "special"));
        let run = engine
            .start(RunRequest::full("s", "canonical", Coverage::all()))
            .await
            .unwrap();
        let batch = Batch {
            items: lines(&data),
            ..Default::default()
        };
        run.apply(
            futures::stream::iter([Ok::<_, String>(batch)]),
            &NoProgress,
            None,
        )
        .await
        .unwrap();
        let roles = RolesSettings {
            admins: vec!["admin-dsi".into()],
            scolarite: vec!["scol".into()],
            directeurs: BTreeMap::from([
                ("dir-a".into(), vec!["VET:A/1".into()]),
                ("dir-b".into(), vec!["VET:B/1".into()]),
            ]),
        };
        let api = Arc::new(conpere_web::Api {
            pool: db.pool.clone(),
            auth: HeaderAuth {
                user_header: "X-Remote-User".into(),
                secret_header: "X-Proxy-Secret".into(),
                secret: SECRET.into(),
            },
            roles,
            student_match: StudentMatch::Login,
            catalogue: Catalogue::default(),
            rules: Rules::default(),
        });
        let app = axum::Router::new().nest("/api/v1", conpere_web::router(api));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            _db: db,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, login: Option<&str>, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(login) = login {
            request = request
                .header("X-Remote-User", login)
                .header("X-Proxy-Secret", SECRET);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, parse(response.text().await.unwrap()))
    }

    async fn post(&self, login: &str, path: &str, body: Value) -> (u16, Value) {
        let response = (self.http.post(format!("{}{path}", self.base)))
            .header("X-Remote-User", login)
            .header("X-Proxy-Secret", SECRET)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, parse(response.text().await.unwrap()))
    }

    /// Every contract `login` sees, page by page (`limit` a page).
    async fn all(&self, login: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = self
                .get(Some(login), &format!("/contracts?limit={limit}{cursor}"))
                .await;
            assert_eq!(status, 200, "{page}");
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    }
}

fn parse(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn students(items: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = (items.iter())
        .map(|c| format!("{}/{}", c["student"].as_str().unwrap(), c["year"]))
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn the_proxy_secret_is_required_and_every_role_sees_its_own() {
    let server = Server::start().await;
    // No proxy, a forged login without the secret, a wrong secret: 401.
    assert_eq!(server.get(None, "/me").await.0, 401);
    let forged = (server.http.get(format!("{}/me", server.base)))
        .header("X-Remote-User", "admin-dsi")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let wrong = (server.http.get(format!("{}/contracts", server.base)))
        .header("X-Remote-User", "admin-dsi")
        .header("X-Proxy-Secret", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let body = parse(wrong.text().await.unwrap());
    assert_eq!(body["error"]["code"], "unauthenticated");
    // A login that is nobody: 403, said clearly.
    let (status, body) = server.get(Some("stranger"), "/contracts").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    let (_, me) = server.get(Some("plain"), "/me").await;
    assert_eq!(me["roles"], json!(["student"]));
    // What each role sees, through pages of 4.
    let all = server.all("scol", 4).await;
    assert_eq!(all.len(), 9);
    assert_eq!(students(&server.all("admin-dsi", 2).await), students(&all));
    assert_eq!(students(&server.all("plain", 4).await), ["PLAIN/2024"]);
    assert_eq!(students(&server.all("dir-b", 4).await), ["DOUBLE/2024"]);
    assert_eq!(
        server.all("dir-a", 50).await.len(),
        9,
        "every 2024 and 2023 contract of A"
    );
    // Filters.
    let (_, flagged) = server
        .get(Some("scol"), "/contracts?flagged=false&year=2024")
        .await;
    assert_eq!(
        students(flagged["items"].as_array().unwrap()),
        ["PLAIN/2024"]
    );
    let (_, by_step) = server.get(Some("scol"), "/contracts?step=VET:B/1").await;
    assert_eq!(
        students(by_step["items"].as_array().unwrap()),
        ["DOUBLE/2024"]
    );
    let (_, searched) = server.get(Some("dir-b"), "/contracts?q=PLA").await;
    assert!(
        searched["items"].as_array().unwrap().is_empty(),
        "a search stays in scope"
    );
    let (status, _) = server.get(Some("scol"), "/contracts?cursor=zzz").await;
    assert_eq!(status, 422);

    // One contract: its student and the scolarité see it; another student gets 404 and
    // nothing of it; a directeur of another step too.
    let special = all.iter().find(|c| c["student"] == "SPECIAL").unwrap()["id"].clone();
    let path = format!("/contracts/{special}");
    let (status, body) = server.get(Some("special"), &path).await;
    assert_eq!(status, 200);
    assert_eq!(body["special_statuses"], json!(["employed"]));
    assert!(body["sections"].as_array().is_some_and(|s| !s.is_empty()));
    for outsider in ["plain", "dir-b"] {
        let (status, body) = server.get(Some(outsider), &path).await;
        assert_eq!(status, 404, "{outsider}");
        assert!(!body.to_string().contains("SPECIAL"), "{outsider}: {body}");
    }
}

#[tokio::test]
async fn a_contract_is_proposed_signed_and_validated_over_http() {
    let server = Server::start().await;
    let (_, page) = server.get(Some("plain"), "/contracts").await;
    let contract = page["items"][0].clone();
    let (id, hash) = (contract["id"].clone(), contract["version_hash"].clone());
    let path = |action: &str| format!("/contracts/{id}/{action}");

    // The student cannot propose; a directeur of another step cannot either (403); a
    // directeur of the contract's step can.
    let body = json!({ "version_hash": hash });
    assert_eq!(
        server.post("plain", &path("propose"), body.clone()).await.0,
        403
    );
    assert_eq!(
        server.post("dir-b", &path("propose"), body.clone()).await.0,
        404
    );
    let (status, proposed) = server.post("dir-a", &path("propose"), body.clone()).await;
    assert_eq!(
        (status, proposed["state"].as_str()),
        (200, Some("proposed"))
    );

    // A stale hash: 409 with the current one; a malformed body: 422.
    let stale = json!({ "version_hash": "sha256:0000", "consent_text": "Je signe." });
    let (status, refused) = server.post("plain", &path("sign"), stale).await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "stale");
    assert_eq!(refused["error"]["current_hash"], hash);
    let (status, _) = server
        .post("plain", &path("sign"), json!({ "hash": 1 }))
        .await;
    assert_eq!(status, 422);
    // Another student may not sign it (it is not theirs: 404).
    let signing = json!({ "version_hash": hash, "consent_text": "Je signe ce contrat." });
    assert_eq!(
        server
            .post("special", &path("sign"), signing.clone())
            .await
            .0,
        404
    );
    let (status, signed) = server.post("plain", &path("sign"), signing).await;
    assert_eq!((status, signed["state"].as_str()), (200, Some("signed")));
    // Validated twice: the second is a conflict naming the state.
    let (status, validated) = server.post("dir-a", &path("validate"), body.clone()).await;
    assert_eq!((status, validated["in_force"].as_i64()), (200, Some(1)));
    let (status, again) = server.post("dir-a", &path("validate"), body.clone()).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("wrong_state"))
    );

    // The public check: the hash exists, in force; nothing personal.
    let (status, checked) = server
        .get(None, &format!("/verify/{}", hash.as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        checked,
        json!({ "exists": true, "year": 2024, "state": "validated", "in_force": true })
    );
    let (_, unknown) = server.get(None, "/verify/sha256:0000").await;
    assert_eq!(unknown, json!({ "exists": false }));
    let (status, catalogue) = server.get(Some("plain"), "/measures").await;
    assert_eq!(status, 200);
    assert!(catalogue.to_string().contains("tutorat"));
}
