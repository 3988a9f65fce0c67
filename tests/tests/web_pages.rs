//! The pages over real HTTP (behind the trusted proxy's header), against the real store:
//! a student's contracts and contract in French or English, the strict CSP, the consent
//! text shown before signing and recorded as shown, a form without its box ticked or
//! with a stale hash answered by a page that says what to do, another student's contract
//! a 404 page that reveals nothing, a form from another site refused.

use conpere_tests::{web, TestDatabase};
use conpere_web::auth::{Authentication, HeaderAuth};
use conpere_web::roles::RolesSettings;
use std::collections::BTreeMap;
use std::sync::Arc;

const SECRET: &str = "pages-proxy-secret";

/// The consent text the French pages show.
const CONSENT: &str = "J'ai lu ce contrat pédagogique et je m'engage à le respecter.";

struct Site {
    db: TestDatabase,
    root: String,
    http: reqwest::Client,
}

impl Site {
    async fn start() -> Site {
        let logins = [("PLAIN", "plain"), ("SPECIAL", "special")];
        let (db, _) = web::contract_store(&logins).await;
        let auth = Authentication::Header(HeaderAuth {
            user_header: "X-Remote-User".into(),
            secret_header: "X-Proxy-Secret".into(),
            secret: SECRET.into(),
        });
        let roles = RolesSettings {
            directeurs: BTreeMap::from([("dir-a".into(), vec!["VET:A/1".into()])]),
            ..RolesSettings::default()
        };
        let (listener, root) = web::listener().await;
        web::serve(listener, web::api(&db, auth, roles));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Site { db, root, http }
    }

    fn as_user(&self, request: reqwest::RequestBuilder, login: &str) -> reqwest::RequestBuilder {
        request
            .header("X-Remote-User", login)
            .header("X-Proxy-Secret", SECRET)
    }

    /// A page as `login` sees it, in the language `accept` asks: status, headers, HTML.
    async fn page(
        &self,
        login: &str,
        path: &str,
        accept: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let request = self.http.get(format!("{}{path}", self.root));
        let response = (self.as_user(request, login))
            .header("accept-language", accept)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// A form posted as `login` from `origin`.
    async fn form(
        &self,
        login: &str,
        path: &str,
        origin: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let request = self.http.post(format!("{}{path}", self.root));
        (self.as_user(request, login))
            .header("origin", origin)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// The student's signature form as the page sends it (the box ticked, the consent
    /// text shown), from conpere's origin.
    async fn sign(&self, login: &str, path: &str, hash: &str) -> reqwest::Response {
        let fields = [
            ("version_hash", hash),
            ("consent_text", CONSENT),
            ("read", "yes"),
        ];
        self.form(login, &format!("{path}/sign"), &self.root, &fields)
            .await
    }

    async fn contract_of(&self, student: &str) -> (i64, String) {
        let client = self.db.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT id, hash FROM contract WHERE student = $1 AND year = 2024",
                &[&student],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

#[tokio::test]
async fn a_student_reads_and_signs_their_contract_in_a_browser() {
    let site = Site::start().await;
    let (status, headers, home) = site.page("plain", "/", "fr-FR,fr;q=0.9").await;
    assert_eq!(status, 200, "{home}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(home.contains("<html lang=\"fr\"") && home.contains("Mes contrats pédagogiques"));
    assert!(
        home.contains("PLAIN") && !home.contains("SPECIAL"),
        "{home}"
    );
    let (_, _, english) = site.page("plain", "/", "en-GB,en;q=0.9").await;
    assert!(english.contains("<html lang=\"en\"") && english.contains("My learning contracts"));

    // Proposed by the directeur (through the API): the student sees the consent text and
    // the forms, each field with its label.
    let (id, hash) = site.contract_of("PLAIN").await;
    let propose = site
        .http
        .post(format!("{}/api/v1/contracts/{id}/propose", site.root));
    let proposed = (site.as_user(propose, "dir-a"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"version_hash":"{hash}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(proposed.status(), 200);
    let path = format!("/contracts/{id}");
    let (status, _, page) = site.page("plain", &path, "fr").await;
    assert_eq!(status, 200);
    for expected in [
        "J'ai lu ce contrat pédagogique et je m'engage à le respecter.",
        "<label for=\"read\">",
        "<label for=\"reason\">",
        "Parcours",
        &hash,
    ] {
        assert!(
            page.contains(expected),
            "{expected} not in the page:\n{page}"
        );
    }
    let consent = CONSENT;
    let ours = site.root.clone();
    let sign = format!("{path}/sign");

    // The box not ticked; a stale hash; a form from elsewhere: pages that say what to do.
    let unticked = site
        .form(
            "plain",
            &sign,
            &ours,
            &[("version_hash", &hash), ("consent_text", consent)],
        )
        .await;
    assert_eq!(unticked.status(), 422);
    assert!(unticked
        .text()
        .await
        .unwrap()
        .contains("Le formulaire est incomplet"));
    let stale = [
        ("version_hash", "sha256:0"),
        ("consent_text", consent),
        ("read", "yes"),
    ];
    let changed = site.form("plain", &sign, &ours, &stale).await;
    assert_eq!(changed.status(), 409);
    let changed = changed.text().await.unwrap();
    assert!(
        changed.contains("Quelqu'un a modifié ce contrat")
            && changed.contains(&format!("href=\"/contracts/{id}\""))
    );
    let fields = [
        ("version_hash", hash.as_str()),
        ("consent_text", consent),
        ("read", "yes"),
    ];
    let forged = site
        .form("plain", &sign, "https://evil.example", &fields)
        .await;
    assert_eq!(forged.status(), 403);

    // Signed: back to the contract, which says so; the evidence holds the text shown.
    let signed = site.form("plain", &sign, &ours, &fields).await;
    assert_eq!(signed.status(), 303);
    assert_eq!(
        signed.headers()["location"],
        format!("/contracts/{id}?done=sign").as_str()
    );
    let (_, _, after) = site.page("plain", &format!("{path}?done=sign"), "fr").await;
    assert!(
        after.contains("Le contrat est signé.") && after.contains("signé"),
        "{after}"
    );
    let client = site.db.pool.get().await.unwrap();
    let recorded: String = client
        .query_one(
            "SELECT event FROM contract_event WHERE contract_id = $1 AND action = 'sign'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(recorded.contains(consent), "{recorded}");
}

#[tokio::test]
async fn another_student_s_contract_and_no_login_are_pages_that_reveal_nothing() {
    let site = Site::start().await;
    let (id, _) = site.contract_of("SPECIAL").await;
    let (status, _, page) = site.page("plain", &format!("/contracts/{id}"), "fr").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("Cette page n'existe pas") && !page.contains("SPECIAL"),
        "{page}"
    );
    let anonymous = site
        .http
        .get(format!("{}/", site.root))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = anonymous.text().await.unwrap();
    assert!(page.contains("href=\"/auth/login\""), "{page}");
}

#[tokio::test]
async fn a_directeur_filters_proposes_and_validates_in_a_browser() {
    let site = Site::start().await;
    let (status, _, home) = site.page("dir-a", "/", "fr").await;
    assert_eq!(status, 200);
    for expected in [
        "<label for=\"step\">",
        "<label for=\"state\">",
        "<label for=\"kind\">",
        "<label for=\"q\">",
        "PLAIN",
    ] {
        assert!(home.contains(expected), "{expected} not in:\n{home}");
    }
    let (_, _, specific) = site.page("dir-a", "/?kind=specific&state=&q=", "fr").await;
    assert!(
        !specific.contains(">PLAIN<") && specific.contains("spécifique"),
        "{specific}"
    );
    // Specific contracts first, each saying why; a flag, a special status chosen.
    let specific_at = home.find(">SPECIAL<").unwrap();
    assert!(specific_at < home.find(">PLAIN<").unwrap(), "{home}");
    assert!(home.contains("spécifique (statut particulier)"), "{home}");
    let (_, _, employed) = site.page("dir-a", "/?status=employed", "fr").await;
    assert!(
        employed.contains(">SPECIAL<") && !employed.contains(">PLAIN<"),
        "{employed}"
    );
    assert!(employed.contains("<option value=\"employed\" selected>étudiant salarié</option>"));
    let (_, _, repeaters) = site.page("dir-a", "/?flag=repeater", "fr").await;
    assert!(
        repeaters.contains(">REPEAT<") && !repeaters.contains(">SPECIAL<"),
        "{repeaters}"
    );
    let (_, _, searched) = site.page("dir-a", "/?q=PLA", "fr").await;
    assert!(
        searched.contains(">PLAIN<") && !searched.contains(">SPECIAL<"),
        "{searched}"
    );

    let (id, first) = site.contract_of("PLAIN").await;
    let path = format!("/contracts/{id}");
    let (_, _, page) = site.page("dir-a", &path, "fr").await;
    assert!(
        page.contains(&format!("action=\"{path}/propose\"")),
        "{page}"
    );
    assert!(page.contains("<label for=\"objectives\">") && page.contains("name=\"measure\""));
    let ours = site.root.clone();
    // Measures from the catalogue and objectives: a new version.
    let fields = [
        ("measure", "tutorat"),
        ("details:tutorat", "1 h par semaine"),
        ("objectives", "Valider le S1\nAssister aux TD"),
    ];
    let edited = site
        .form("dir-a", &format!("{path}/draft"), &ours, &fields)
        .await;
    assert_eq!(
        edited.headers()["location"],
        format!("{path}?done=edit").as_str()
    );
    let (_, hash) = site.contract_of("PLAIN").await;
    assert_ne!(hash, first, "a new version");
    let (_, _, page) = site.page("dir-a", &path, "fr").await;
    assert!(
        page.contains("Tutorat — 1 h par semaine") && page.contains("<li>Assister aux TD</li>"),
        "{page}"
    );
    let proposed = site
        .form(
            "dir-a",
            &format!("{path}/propose"),
            &ours,
            &[("version_hash", &hash)],
        )
        .await;
    assert_eq!(
        proposed.headers()["location"],
        format!("{path}?done=propose").as_str()
    );
    assert_eq!(site.sign("plain", &path, &hash).await.status(), 303);
    let (_, _, page) = site.page("dir-a", &path, "fr").await;
    assert!(
        page.contains(&format!("action=\"{path}/validate\"")),
        "{page}"
    );
    let validated = site
        .form(
            "dir-a",
            &format!("{path}/validate"),
            &ours,
            &[("version_hash", &hash)],
        )
        .await;
    assert_eq!(validated.status(), 303);
    let (_, _, page) = site
        .page("dir-a", &format!("{path}?done=validate"), "fr")
        .await;
    assert!(
        page.contains("Le contrat est validé.") && page.contains("État : validé"),
        "{page}"
    );
    let (_, _, edited) = site.page("dir-a", &format!("{path}?done=edit"), "fr").await;
    assert!(edited.contains("Les mesures et objectifs sont enregistrés"));

    // An amendment opened from the page; on its draft, one measure ended and one added;
    // proposed: its student reads what it changes.
    assert!(page.contains(&format!("action=\"{path}/amend\"")), "{page}");
    let opened = site
        .form(
            "dir-a",
            &format!("{path}/amend"),
            &ours,
            &[("reason", "measure_added")],
        )
        .await;
    assert_eq!(
        opened.headers()["location"],
        format!("{path}?done=amend").as_str()
    );
    let (_, _, draft) = site
        .page("dir-a", &format!("{path}?done=amend"), "fr")
        .await;
    assert!(
        draft.contains("L'avenant est ouvert")
            && draft.contains(&format!("action=\"{path}/draft\"")),
        "{draft}"
    );
    let fields = [
        ("measure", "renforcement_disciplinaire"),
        ("objectives", "Valider le S1"),
    ];
    let edited = site
        .form("dir-a", &format!("{path}/draft"), &ours, &fields)
        .await;
    assert_eq!(edited.status(), 303);
    let (_, amended) = site.contract_of("PLAIN").await;
    let proposed = site
        .form(
            "dir-a",
            &format!("{path}/propose"),
            &ours,
            &[("version_hash", &amended)],
        )
        .await;
    assert_eq!(proposed.status(), 303);
    let (_, _, page) = site.page("plain", &path, "fr").await;
    for expected in [
        "Ce qui change par rapport au contrat en vigueur (version 2)",
        "Motif de l'avenant : mesure ajoutée",
        "Mesures ajoutées",
        "Renforcement",
        "Mesures retirées",
        "Tutorat",
        "J'ai lu ce contrat pédagogique",
    ] {
        assert!(page.contains(expected), "{expected} not in:\n{page}");
    }
}

#[tokio::test]
async fn a_directeur_validates_a_step_on_one_screen_after_seeing_what_will_be_done() {
    let site = Site::start().await;
    let (id, hash) = site.contract_of("PLAIN").await;
    let ours = site.root.clone();
    let path = format!("/contracts/{id}");
    site.form(
        "dir-a",
        &format!("{path}/propose"),
        &ours,
        &[("version_hash", &hash)],
    )
    .await;
    assert_eq!(site.sign("plain", &path, &hash).await.status(), 303);

    let (_, _, home) = site.page("dir-a", "/", "fr").await;
    assert!(home.contains("action=\"/validate\""), "{home}");
    let (status, _, confirm) = site
        .page("dir-a", "/validate?step=VET:A/1&year=2024", "fr")
        .await;
    assert_eq!(status, 200, "{confirm}");
    assert!(
        confirm
            .contains("1 contrat(s) signé(s) standard de l'étape VET:A/1 (2024) seront validés."),
        "{confirm}"
    );
    assert!(
        confirm.contains("pas signé") && confirm.contains("Valider ces 1 contrat(s)"),
        "{confirm}"
    );
    // Asking changed nothing.
    let client = site.db.pool.get().await.unwrap();
    let state = |client: deadpool_postgres::Object| async move {
        let row = client
            .query_one("SELECT state FROM contract WHERE id = $1", &[&id])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert_eq!(state(client).await, "signed");

    let done = site
        .form(
            "dir-a",
            "/validate",
            &ours,
            &[("step", "VET:A/1"), ("year", "2024")],
        )
        .await;
    assert_eq!(done.status(), 200);
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("1 contrat(s) validé(s)."));
    assert_eq!(state(site.db.pool.get().await.unwrap()).await, "validated");
    // Another directeur's step: refused.
    let (status, _, _) = site
        .page("dir-a", "/validate?step=VET:B/1&year=2024", "fr")
        .await;
    assert_eq!(status, 403);
}

/// The demo's login (no password) exists only for `conpere demo --serve`: offered people
/// only, from its own origin; in any other mode there is no such route.
#[tokio::test]
async fn the_demo_login_offers_its_people_only_and_exists_in_demo_mode_only() {
    let site = Site::start().await; // header mode
    let elsewhere = (site.http.post(format!("{}/auth/demo", site.root)))
        .header("origin", &site.root)
        .form(&[("login", "plain")])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404, "a demo login outside the demo");

    let (listener, root) = web::listener().await;
    let demo = conpere_web::login::DemoLogin {
        sessions: conpere_web::sessions::BrowserSessions::new(&root, 8).unwrap(),
        people: vec![("plain".into(), "étudiant PLAIN".into())],
    };
    let auth = Authentication::Demo(Arc::new(demo));
    web::serve(listener, web::api(&site.db, auth, RolesSettings::default()));
    let page = site
        .http
        .get(format!("{root}/auth/login"))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("étudiant PLAIN"));
    let pick = |login: &'static str, origin: String| {
        (site.http.post(format!("{root}/auth/demo")))
            .header("origin", origin)
            .form(&[("login", login)])
            .send()
    };
    assert_eq!(pick("special", root.clone()).await.unwrap().status(), 403);
    assert_eq!(
        pick("plain", "https://evil.example".into())
            .await
            .unwrap()
            .status(),
        403
    );
    let picked = pick("plain", root.clone()).await.unwrap();
    assert_eq!(picked.status(), 303);
    let cookie = web::session_cookie(&picked).unwrap();
    let home = (site.http.get(format!("{root}/")))
        .header("cookie", format!("conpere_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("PLAIN"));
}
