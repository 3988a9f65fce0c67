//! The pages in a real browser: headless Chromium (`conpere_tests::browser`) against the
//! pages served over real HTTP with CAS login (the test CAS server), on the real store.
//!
//! A directeur d'études and a student go through a contract's year: the directeur sets
//! measures and objectives and proposes; the student reads the consent text and signs;
//! the directeur validates, opens an amendment, ends one measure and adds another, and
//! proposes it; the student reads what changes and signs; the directeur validates their
//! step in one action after a confirmation page. Then the student's pages are crawled.
//!
//! The same year runs with JavaScript on (axe-core on every page reached, failing on any
//! serious or critical violation; screenshots for the README) and with JavaScript off
//! (every action is a plain form). On every page of the student's, no other student's
//! name or number is shown.

use conpere_tests::browser::{Chromium, Tab};
use conpere_tests::cas::CasServer;
use conpere_tests::contract_data::{flag_cases, student};
use conpere_tests::{web, TestDatabase};
use conpere_web::auth::Authentication;
use conpere_web::login::CasLogin;
use conpere_web::roles::RolesSettings;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The students of the flag cases, each with a family name of their own.
const PEOPLE: [(&str, &str); 8] = [
    ("PLAIN", "Arnaud"),
    ("SPECIAL", "Blanchard"),
    ("DOUBLE", "Chevalier"),
    ("REPEAT", "Dumas"),
    ("CARRIED", "Esnault"),
    ("MISSING", "Fournier"),
    ("CHOICE", "Gauthier"),
    ("HEAVY", "Hubert"),
];

struct Site {
    db: TestDatabase,
    cas: CasServer,
    root: String,
    chromium: Chromium,
}

impl Site {
    async fn start() -> Site {
        let db = TestDatabase::new().await;
        let mut data = flag_cases();
        for (id, name) in PEOPLE {
            let login = if id == "PLAIN" { "\"plain\"" } else { "null" };
            let named = (student(id).replace("\"Nom\"", &format!("\"{name}\"")))
                .replace(r#""login":null"#, &format!(r#""login":{login}"#));
            data = data.replace(&student(id), &named);
        }
        web::sync(&web::refreshing_engine(&db), &data).await;

        let cas = CasServer::start("plain", &[]).await;
        let (listener, root) = web::listener().await;
        let login = CasLogin::new(cas.url(), &root, None, 8).unwrap();
        let roles = RolesSettings {
            directeurs: BTreeMap::from([("dir-a".into(), vec!["VET:A/1".into()])]),
            ..RolesSettings::default()
        };
        web::serve(
            listener,
            web::api(&db, Authentication::Cas(Arc::new(login)), roles),
        );
        Site {
            db,
            cas,
            root,
            chromium: Chromium::start(),
        }
    }

    /// A browser logged in through CAS as `user`, on its home page.
    async fn log_in(&self, user: &str, javascript: bool) -> Tab {
        self.cas.log_in_as(user);
        let mut tab = self.chromium.open(&self.root, javascript, "fr-FR,fr").await;
        tab.goto("/auth/login?next=/").await;
        assert_eq!(tab.path().await, "/", "logged in, at home");
        tab
    }

    async fn contract_of(&self, student: &str) -> i64 {
        let client = self.db.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT id FROM contract WHERE student = $1 AND year = 2024",
                &[&student],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

/// Where the screenshots go: `CONPERE_SCREENSHOTS`, else Cargo's directory for tests.
fn screenshots() -> PathBuf {
    std::env::var_os("CONPERE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"))
}

/// The whole year of PLAIN's contract, and the crawl of its student's pages.
async fn a_contract_s_year(javascript: bool) {
    let site = Site::start().await;
    let id = site.contract_of("PLAIN").await;
    let other = site.contract_of("SPECIAL").await;
    let contract = format!("/contracts/{id}");
    let form = |action: &str| format!("{contract}/{action}");
    let shots = screenshots();
    let shoot = |name: &str| shots.join(format!("{name}.png"));

    // The directeur sets measures and objectives on the draft, and proposes it.
    let mut directeur = site.log_in("dir-a", javascript).await;
    assert!(directeur.text().await.contains("PLAIN"));
    if javascript {
        directeur.screenshot(&shoot("directeur-home")).await;
    }
    directeur.follow(&contract).await;
    directeur.tick("m-tutorat", true).await;
    directeur.fill("d-tutorat", "1 h par semaine").await;
    directeur
        .fill("objectives", "Valider le premier semestre")
        .await;
    directeur.press(&form("draft"), "Enregistrer").await;
    let page = directeur.text().await;
    let at = directeur.path().await;
    assert!(
        page.contains("Les mesures et objectifs sont enregistrés"),
        "{at}\n{page}"
    );
    directeur.press(&form("propose"), "Proposer").await;
    assert!(directeur.text().await.contains("Le contrat est proposé"));

    // The student reads it, the consent text first, and signs; another student's contract
    // is a page that reveals nothing.
    let mut student = site.log_in("plain", javascript).await;
    let others: Vec<String> = (PEOPLE.iter())
        .filter(|(id, _)| *id != "PLAIN")
        .flat_map(|(id, name)| [id.to_string(), name.to_string()])
        .collect();
    student.never_show(&others);
    student.goto("/").await;
    student.follow(&contract).await;
    let page = student.text().await;
    assert!(
        page.contains("J'ai lu ce contrat pédagogique et je m'engage à le respecter.")
            && page.contains("Tutorat — 1 h par semaine"),
        "{page}"
    );
    if javascript {
        student.screenshot(&shoot("student-contract")).await;
    }
    student.tick("read", true).await;
    student.press(&form("sign"), "Signer").await;
    assert!(student.text().await.contains("Le contrat est signé."));
    for elsewhere in [format!("/contracts/{other}"), "/nowhere".into()] {
        student.goto(&elsewhere).await;
        assert!(student.text().await.contains("Cette page n'existe pas"));
    }

    // Validated; an amendment opened: one measure ended, one added; proposed.
    directeur.goto(&contract).await;
    directeur.press(&form("validate"), "Valider").await;
    assert!(directeur.text().await.contains("Le contrat est validé."));
    directeur.choose("amend-reason", "measure_ended").await;
    directeur.press(&form("amend"), "Ouvrir l'avenant").await;
    assert!(directeur.text().await.contains("L'avenant est ouvert"));
    directeur.tick("m-tutorat", false).await;
    directeur.tick("m-renforcement_disciplinaire", true).await;
    directeur.press(&form("draft"), "Enregistrer").await;
    directeur.press(&form("propose"), "Proposer").await;

    // The student reads what the amendment changes, and signs it.
    student.goto(&contract).await;
    let page = student.text().await;
    for expected in [
        "Motif de l'avenant : mesure terminée",
        "Mesures ajoutées",
        "Mesures retirées",
        "Tutorat",
    ] {
        assert!(page.contains(expected), "{expected} not in:\n{page}");
    }
    if javascript {
        student.screenshot(&shoot("student-amendment")).await;
    }
    student.tick("read", true).await;
    student.press(&form("sign"), "Signer").await;

    // The directeur validates the step in one action, after seeing what will be done.
    directeur.goto("/").await;
    directeur.choose("bulk-step", "VET:A/1").await;
    directeur.fill("bulk-year", "2024").await;
    directeur
        .press("/validate", "Voir ce qui sera validé")
        .await;
    let confirm = directeur.text().await;
    assert!(
        confirm
            .contains("1 contrat(s) signé(s) standard de l'étape VET:A/1 (2024) seront validés.")
            && confirm.contains("pas signé"),
        "{confirm}"
    );
    if javascript {
        directeur.screenshot(&shoot("directeur-bulk")).await;
    }
    directeur
        .press("/validate", "Valider ces 1 contrat(s)")
        .await;
    assert!(directeur.text().await.contains("1 contrat(s) validé(s)."));
    directeur.goto(&contract).await;
    let page = directeur.text().await;
    assert!(
        page.contains("État : validé") && page.contains("Version 4"),
        "{page}"
    );
    if javascript {
        directeur.screenshot(&shoot("directeur-contract")).await;
    }

    // Every page the student reaches shows only their own; in English on asking.
    student.goto("/").await;
    let pages = student.crawl().await;
    assert!(pages.contains(&contract), "{pages:?}");
    student.goto("/").await;
    student.follow("?lang=en").await;
    assert!(student.text().await.contains("My learning contracts"));
    if javascript {
        let audited = (student.audited(), directeur.audited());
        assert!(
            audited.0 >= 13 && audited.1 >= 13,
            "{audited:?} pages checked"
        );
    }
    student.close().await;
    directeur.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_s_year_in_a_browser_checked_by_axe_core() {
    a_contract_s_year(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_s_year_in_a_browser_without_javascript() {
    a_contract_s_year(false).await;
}
