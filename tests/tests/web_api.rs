//! The `/api/v1` contracts API (conpere-web) over real HTTP, against the real embedded
//! PostgreSQL: trusted-header authentication, what each role sees (a student asking for
//! another's contract gets 404), keyset pages, the lifecycle with a stale hash refused
//! (409 and the current hash), and the public hash check revealing nothing personal.

use conpere_core::engine::Engine;
use conpere_tests::contract_data::{enrolment, flag_cases, student};
use conpere_tests::{web, TestDatabase};
use conpere_web::auth::{Authentication, HeaderAuth};
use conpere_web::roles::RolesSettings;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const SECRET: &str = "proxy-secret-for-tests";

struct Server {
    db: TestDatabase,
    engine: Engine,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// The flag cases synced (PLAIN and SPECIAL with logins), served on a free port.
    async fn start() -> Server {
        let logins = [
            ("PLAIN", "plain"),
            ("SPECIAL", "special"),
            ("DOUBLE", "double"),
        ];
        let (db, engine) = web::contract_store(&logins).await;
        let roles = RolesSettings {
            admins: vec!["admin-dsi".into()],
            scolarite: vec!["scol".into()],
            directeurs: BTreeMap::from([
                ("dir-a".into(), vec!["VET:A/1".into()]),
                ("dir-b".into(), vec!["VET:B/1".into()]),
            ]),
            ..RolesSettings::default()
        };
        let auth = Authentication::Header(HeaderAuth {
            user_header: "X-Remote-User".into(),
            secret_header: "X-Proxy-Secret".into(),
            secret: SECRET.into(),
        });
        let (listener, root) = web::listener().await;
        web::serve(listener, web::api(&db, auth, roles));
        let base = format!("{root}/api/v1");
        Server {
            db,
            engine,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// A request as the proxy sends it (`login`: with the secret; none: anonymous), with
    /// a JSON body when given; the status and the JSON answer.
    async fn send(
        &self,
        method: reqwest::Method,
        login: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(login) = login {
            request = request
                .header("X-Remote-User", login)
                .header("X-Proxy-Secret", SECRET);
        }
        if let Some(body) = body {
            request = (request.header("content-type", "application/json")).body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, parse(response.text().await.unwrap()))
    }

    async fn get(&self, login: Option<&str>, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, login, path, None).await
    }

    async fn post(&self, login: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, Some(login), path, Some(body))
            .await
    }

    async fn put(&self, login: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, Some(login), path, Some(body))
            .await
    }

    /// Every contract `login` sees, page by page (`limit` a page).
    async fn all(&self, login: &str, limit: usize) -> Vec<Value> {
        self.all_in(login, limit, "id").await
    }

    /// Every contract `login` sees, page by page in `order`.
    async fn all_in(&self, login: &str, limit: usize, order: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/contracts?limit={limit}&order={order}{cursor}");
            let (status, page) = self.get(Some(login), &path).await;
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
    // Specific contracts first, page by page: each once, the standard one last.
    let ranked = server.all_in("scol", 2, "specific_first").await;
    assert_eq!(students(&ranked), students(&all));
    let standard = |c: &Value| c["flags"].as_array().unwrap().is_empty();
    let first_standard = ranked.iter().position(standard).unwrap();
    assert!(ranked[first_standard..].iter().all(standard), "{ranked:?}");
    assert!(ranked[first_standard..]
        .iter()
        .any(|c| c["student"] == "PLAIN"));
    assert!(first_standard > 0, "some contracts are specific");
    let (status, _) = server
        .get(Some("scol"), "/contracts?order=specific_first&cursor=12")
        .await;
    assert_eq!(status, 422, "an id cursor is not one of this order's");
    let (_, employed) = server.get(Some("scol"), "/contracts?status=employed").await;
    assert_eq!(
        students(employed["items"].as_array().unwrap()),
        ["SPECIAL/2024"]
    );

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

impl Server {
    /// The data the server was started with.
    fn data(&self) -> String {
        Server::data_text()
    }

    /// The flag cases, PLAIN and SPECIAL with logins.
    fn data_text() -> String {
        let with_login = |id: &str, login: &str| {
            student(id).replace(r#""login":null"#, &format!(r#""login":"{login}""#))
        };
        flag_cases()
            .replace(&student("PLAIN"), &with_login("PLAIN", "plain"))
            .replace(&student("SPECIAL"), &with_login("SPECIAL", "special"))
    }

    async fn id_of(&self, student: &str) -> i64 {
        let all = self.all("scol", 50).await;
        let found = all
            .iter()
            .find(|c| c["student"] == student && c["year"] == 2024);
        found.unwrap()["id"].as_i64().unwrap()
    }
}

/// Every route, for every kind of caller, on a contract that is theirs and on one that is
/// not: the status, and never another student's number in the body. A route added to the
/// API without a row here fails `every_route_is_in_the_matrix`.
#[tokio::test]
async fn the_role_matrix() {
    let server = Server::start().await;
    let plain = server.id_of("PLAIN").await; // student `plain`, step A (dir-a)
    let double = server.id_of("DOUBLE").await; // steps A and B (dir-a, dir-b)
                                               // (caller, whose contract, expected status) for each read route.
    type Row = (&'static str, &'static str, i64, u16);
    let reads: Vec<Row> = vec![
        ("plain", "own", plain, 200),
        ("special", "another student's", plain, 404),
        ("dir-a", "their step's", plain, 200),
        ("dir-b", "another step's", plain, 404),
        ("dir-b", "their step's", double, 200),
        ("scol", "any", plain, 200),
        ("admin-dsi", "any", plain, 200),
        ("stranger", "any", plain, 403),
    ];
    let routes = [
        "",
        "/versions",
        "/versions/1",
        "/diff?from=1&to=1",
        "/evidence",
    ];
    for route in routes {
        for (caller, whose, id, expected) in &reads {
            let (status, body) = server
                .get(Some(caller), &format!("/contracts/{id}{route}"))
                .await;
            assert_eq!(
                status, *expected,
                "GET /contracts/{{id}}{route} by {caller} on {whose}: {body}"
            );
            if *expected != 200 {
                assert!(
                    !body.to_string().contains("PLAIN"),
                    "{caller} {route}: {body}"
                );
            }
        }
        // Anonymous: 401.
        let (status, _) = server
            .get(None, &format!("/contracts/{plain}{route}"))
            .await;
        assert_eq!(status, 401, "{route}");
    }
    // Lists never carry another's contract: a student sees only their own, under every
    // filter.
    for filter in [
        "",
        "?year=2024",
        "?flagged=true",
        "?state=draft",
        "?step=VET:A/1",
        "?q=S",
        "?limit=1",
    ] {
        let (status, page) = server
            .get(Some("special"), &format!("/contracts{filter}"))
            .await;
        assert_eq!(status, 200);
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["student"], "SPECIAL", "{filter}: {page}");
        }
    }
    // A person's contracts: themself, a directeur of their step, the scolarité; another
    // student gets 404.
    for (caller, expected) in [
        ("plain", 200),
        ("dir-a", 200),
        ("scol", 200),
        ("special", 404),
        ("dir-b", 404),
    ] {
        let (status, body) = server.get(Some(caller), "/students/PLAIN/contracts").await;
        assert_eq!(status, expected, "{caller}: {body}");
    }
    // Writes: edit a draft (directeur of the step or admin), amend (not a draft: 409 for
    // those allowed), bulk validation (directeurs and admins).
    let measures =
        json!({ "measures": [{ "code": "tutorat", "details": "1 h" }], "objectives": [] });
    for (caller, expected) in [
        ("plain", 403),
        ("dir-b", 404),
        ("scol", 403),
        ("dir-a", 200),
    ] {
        let (status, body) = server
            .put(
                caller,
                &format!("/contracts/{plain}/draft"),
                measures.clone(),
            )
            .await;
        assert_eq!(status, expected, "PUT draft by {caller}: {body}");
    }
    let amendment = json!({ "reason": "measure_added" });
    for (caller, expected) in [
        ("special", 404),
        ("plain", 409),
        ("dir-a", 409),
        ("admin-dsi", 409),
    ] {
        let (status, body) = server
            .post(
                caller,
                &format!("/contracts/{plain}/amendments"),
                amendment.clone(),
            )
            .await;
        assert_eq!(status, expected, "amend by {caller}: {body}");
    }
    let bulk = json!({ "year": 2024 });
    for (caller, expected) in [
        ("plain", 403),
        ("scol", 403),
        ("dir-a", 200),
        ("admin-dsi", 200),
    ] {
        let (status, body) = server
            .post(caller, "/contracts/validate", bulk.clone())
            .await;
        assert_eq!(status, expected, "bulk by {caller}: {body}");
    }
    let (status, body) = server
        .post(
            "dir-a",
            "/contracts/validate",
            json!({ "year": 2024, "ids": [1] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_sis_change_is_amended_and_validated_over_http() {
    let server = Server::start().await;
    let id = server.id_of("PLAIN").await;
    let path = |action: &str| format!("/contracts/{id}/{action}");
    let hash = |c: &Value| c["version_hash"].clone();
    let (_, contract) = server.get(Some("plain"), &format!("/contracts/{id}")).await;
    let v1 = hash(&contract);
    let sign = |h: &Value| json!({ "version_hash": h, "consent_text": "Je signe ce contrat." });
    server
        .post("dir-a", &path("propose"), json!({ "version_hash": v1 }))
        .await;
    server.post("plain", &path("sign"), sign(&v1)).await;
    let (status, _) = server
        .post("dir-a", &path("validate"), json!({ "version_hash": v1 }))
        .await;
    assert_eq!(status, 200);

    // The SIS moves PLAIN to option 2: an amendment, `sis_change`, version 1 in force.
    let moved = server.data().replace(
        &enrolment(2024, "PLAIN", "VET:A/1", "ELP:O1", Some("LSE:AOPT"), false),
        &enrolment(2024, "PLAIN", "VET:A/1", "ELP:O2", Some("LSE:AOPT"), false),
    );
    web::sync(&server.engine, &moved).await;
    let (_, opened) = server.get(Some("plain"), &format!("/contracts/{id}")).await;
    assert_eq!(
        (
            opened["state"].as_str(),
            opened["version"].as_i64(),
            opened["in_force"].as_i64(),
            opened["amendment_of"].as_i64()
        ),
        (Some("draft"), Some(2), Some(1), Some(1)),
        "{opened}"
    );
    let v2 = hash(&opened);
    // The directeur adds a measure to the amendment.
    let (status, edited) = server
        .put("dir-a", &path("draft"), json!({ "measures": [{ "code": "accompagnement_reorientation" }], "objectives": ["Changer de mention"] }))
        .await;
    assert_eq!(status, 200, "{edited}");
    let v3 = hash(&edited);
    assert_ne!(v2, v3);
    // The student signs what they saw: the version before the edit is stale.
    server
        .post("dir-a", &path("propose"), json!({ "version_hash": v3 }))
        .await;
    let (status, stale) = server.post("plain", &path("sign"), sign(&v2)).await;
    assert_eq!((status, &stale["error"]["current_hash"]), (409, &v3));
    server.post("plain", &path("sign"), sign(&v3)).await;
    let (status, done) = server
        .post("dir-a", &path("validate"), json!({ "version_hash": v3 }))
        .await;
    assert_eq!((status, done["in_force"].as_i64()), (200, Some(3)));

    // Versions, the diff, the evidence.
    let (_, versions) = server.get(Some("plain"), &path("versions")).await;
    let states: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["superseded", "superseded", "validated"]);
    assert_eq!(versions[1]["reason"], "sis_change");
    let (_, changes) = server
        .get(Some("plain"), &format!("/contracts/{id}/diff?from=1&to=3"))
        .await;
    assert_eq!(
        changes["measures_added"][0]["code"],
        "accompagnement_reorientation"
    );
    assert_eq!(changes["elements_added"][0]["node"], "ELP:O2");
    assert_eq!(changes["elements_removed"][0]["node"], "ELP:O1");
    assert_eq!(changes["reason"], "sis_change");
    let (_, evidence) = server.get(Some("scol"), &path("evidence")).await;
    let actions: Vec<&str> = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "generate", "propose", "sign", "validate", "amend", "edit", "propose", "sign",
            "validate"
        ]
    );
    let signer = &evidence[7]["actor"];
    assert_eq!(
        (
            signer["id"].as_str(),
            signer["auth"].as_str(),
            signer["role"].as_str()
        ),
        (Some("plain"), Some("header"), Some("student"))
    );
    assert!(
        !evidence.to_string().contains(SECRET),
        "the proxy's secret is in the evidence"
    );
    assert_eq!(evidence[4]["reason"], "sis_change");
    let client = server.db.pool.get().await.unwrap();
    let report = conpere_contracts::verify::verify(&client, None)
        .await
        .unwrap();
    assert!(report.breaks.is_empty(), "{:?}", report.breaks);
}

/// A double licence (steps A and B): each directeur validates their own section, and the
/// contract comes into force with the second; a bulk validation leaves it to them.
#[tokio::test]
async fn each_directeur_of_a_double_licence_validates_their_own_section() {
    let server = Server::start().await;
    let id = server.id_of("DOUBLE").await;
    let path = |action: &str| format!("/contracts/{id}/{action}");
    let (_, contract) = server.get(Some("dir-b"), &format!("/contracts/{id}")).await;
    let body = json!({ "version_hash": contract["version_hash"] });
    assert_eq!(
        server.post("dir-a", &path("propose"), body.clone()).await.0,
        200
    );
    let signing = json!({ "version_hash": contract["version_hash"], "consent_text": "Je signe." });
    assert_eq!(server.post("double", &path("sign"), signing).await.0, 200);

    // In bulk, neither directeur validates it: a section is the other's.
    let (status, report) = server
        .post("dir-a", "/contracts/validate", json!({ "ids": [id] }))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["validated"], &report["skipped"]),
        (&json!(0), &json!({ "a section is another directeur's": 1 }))
    );

    // B's directeur validates B's section: still signed, awaiting A's.
    let (status, half) = server.post("dir-b", &path("validate"), body.clone()).await;
    assert_eq!(status, 200, "{half}");
    assert_eq!(
        (&half["state"], &half["awaiting"], &half["in_force"]),
        (&json!("signed"), &json!(["VET:A/1"]), &Value::Null)
    );
    let (status, again) = server.post("dir-b", &path("validate"), body.clone()).await;
    assert_eq!(
        (status, &again["error"]["code"], &again["error"]["awaiting"]),
        (409, &json!("already_validated"), &json!(["VET:A/1"]))
    );
    // An administrator's bulk validation leaves a half-validated contract alone too.
    let (_, report) = server
        .post("admin-dsi", "/contracts/validate", json!({ "ids": [id] }))
        .await;
    assert_eq!(report["skipped"], json!({ "partly validated": 1 }));

    // A's directeur validates A's: in force.
    let (status, whole) = server.post("dir-a", &path("validate"), body.clone()).await;
    assert_eq!(
        (
            status,
            &whole["state"],
            &whole["awaiting"],
            &whole["in_force"]
        ),
        (200, &json!("validated"), &json!([]), &json!(1))
    );
    let (_, evidence) = server.get(Some("scol"), &path("evidence")).await;
    let validations: Vec<(&Value, &Value)> = (evidence.as_array().unwrap().iter())
        .filter(|e| e["action"] == "validate")
        .map(|e| (&e["actor"]["id"], &e["steps"]))
        .collect();
    assert_eq!(
        validations,
        [
            (&json!("dir-b"), &json!(["VET:B/1"])),
            (&json!("dir-a"), &json!(["VET:A/1"]))
        ]
    );
    let client = server.db.pool.get().await.unwrap();
    let report = conpere_contracts::verify::verify(&client, None)
        .await
        .unwrap();
    assert!(report.breaks.is_empty(), "{:?}", report.breaks);
}

/// Each route `web` serves has its row in `the_role_matrix` (this list is checked against
/// the router's own).
#[test]
fn every_route_is_in_the_matrix() {
    let source = include_str!("../../web/src/contracts.rs");
    let served: Vec<&str> = (source.split(".route(").skip(1))
        .map(|call| call.split('"').nth(1).unwrap())
        .collect();
    let covered = [
        "/me",
        "/contracts",
        "/contracts/validate",
        "/contracts/{id}",
        "/contracts/{id}/versions",
        "/contracts/{id}/versions/{n}",
        "/contracts/{id}/diff",
        "/contracts/{id}/evidence",
        "/contracts/{id}/draft",
        "/contracts/{id}/amendments",
        "/contracts/{id}/{action}",
        "/students/{student}/contracts",
        "/measures",
        "/verify/{hash}",
        "/openapi.json",
    ];
    for route in &served {
        assert!(
            covered.contains(route),
            "{route} is served but no test covers it"
        );
    }
    assert_eq!(served.len(), covered.len(), "{served:?}");
}

/// The OpenAPI document is served without login, is OpenAPI 3, lists every route the
/// router serves (each `{param}` of a path declared as a path parameter, each operation
/// with responses), and nothing else.
#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = Server::start().await;
    let (status, document) = server.get(None, "/openapi.json").await;
    assert_eq!(status, 200);
    // An OpenAPI 3.1 document, by the OAI's own schema.
    let schema: Value = serde_json::from_str(include_str!(
        "../fixtures/openapi/oas-3.1-schema-2022-10-07.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = (validator.iter_errors(&document))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not OpenAPI 3.1: {errors:#?}");
    // The schema check can fail: a document without `info` is refused.
    let mut broken = document.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));
    let paths = document["paths"].as_object().unwrap();
    let source = [
        include_str!("../../web/src/contracts.rs"),
        include_str!("../../web/src/admin.rs"),
    ]
    .concat();
    let served: Vec<String> = (source.split(".route(").skip(1))
        .map(|call| call.split('"').nth(1).unwrap())
        .filter(|route| *route != "/openapi.json")
        .map(|route| format!("/api/v1{route}"))
        .collect();
    for route in &served {
        assert!(
            paths.contains_key(route),
            "{route} is served but not documented"
        );
    }
    assert_eq!(
        paths.len(),
        served.len(),
        "documented but not served: {:?}",
        paths.keys()
    );
    for (path, item) in paths {
        let declared: Vec<&str> = path
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap())
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                ["get", "post", "put"].contains(&method.as_str()),
                "{path} {method}"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{path} {method} has no responses");
            let in_path: Vec<&str> = (operation["parameters"].as_array().into_iter().flatten())
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for name in &declared {
                assert!(
                    in_path.contains(name),
                    "{path} {method}: {{{name}}} not declared"
                );
            }
        }
    }
}

/// Bodies are bounded (413, said in JSON), malformed ones are 422 naming the field, and
/// every answer is kept out of caches and from being sniffed.
#[tokio::test]
async fn bodies_are_bounded_and_answers_carry_safe_headers() {
    let server = Server::start().await;
    let id = server.id_of("PLAIN").await;
    let huge = json!({ "version_hash": "x".repeat(100_000) });
    let (status, body) = server
        .post("dir-a", &format!("/contracts/{id}/propose"), huge)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );
    let wrong = json!({ "version_hash": 42 });
    let (status, body) = server
        .post("dir-a", &format!("/contracts/{id}/propose"), wrong)
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version_hash"),
        "{body}"
    );
    let response = (server.http.get(format!("{}/contracts", server.base)))
        .header("X-Remote-User", "scol")
        .header("X-Proxy-Secret", SECRET)
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    let unauthenticated = server
        .http
        .get(format!("{}/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.headers()["cache-control"], "no-store");
}
