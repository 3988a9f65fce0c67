//! # What the tests of `conpere-web` share: a store with contracts, an API on it, served
//!
//! [`contract_store`] syncs the flag cases (`contract_data`) through an engine that
//! refreshes the contracts in each run, some students given logins; [`api`] is the API on
//! it with an authentication and roles (default catalogue, rules and pages); [`serve`]
//! serves it (the pages, `/auth` and `/api/v1`) on a free port of `127.0.0.1`;
//! [`session_cookie`] reads the session cookie a response sets.

use crate::contract_data::{flag_cases, lines, student};
use crate::TestDatabase;
use conpere_contracts::catalogue::Catalogue;
use conpere_contracts::rules::Rules;
use conpere_contracts::RefreshHook;
use conpere_core::engine::{Batch, Coverage, Engine, NoProgress, RunRequest};
use conpere_web::auth::Authentication;
use conpere_web::roles::{RolesSettings, StudentMatch};
use std::sync::Arc;

/// An engine on `db` whose applied runs refresh the contracts (default rules).
pub fn refreshing_engine(db: &TestDatabase) -> Engine {
    let hook = RefreshHook {
        catalogue: Catalogue::default(),
        rules: Rules::default(),
    };
    Engine::new(db.pool.clone()).with_commit_hook(Arc::new(hook))
}

/// A full run of source `s` with the canonical lines `data` (contracts refreshed in it).
pub async fn sync(engine: &Engine, data: &str) {
    let run = engine
        .start(RunRequest::full("s", "canonical", Coverage::all()))
        .await
        .unwrap();
    let batch = Batch {
        items: lines(data),
        ..Default::default()
    };
    let batches = futures::stream::iter([Ok::<_, String>(batch)]);
    run.apply(batches, &NoProgress, None).await.unwrap();
}

/// The flag cases synced, each student of `logins` (`(student, login)`) with that login.
pub async fn contract_store(logins: &[(&str, &str)]) -> (TestDatabase, Engine) {
    let db = TestDatabase::new().await;
    let engine = refreshing_engine(&db);
    let mut data = flag_cases();
    for (id, login) in logins {
        let with_login = student(id).replace(r#""login":null"#, &format!(r#""login":"{login}""#));
        data = data.replace(&student(id), &with_login);
    }
    sync(&engine, &data).await;
    (db, engine)
}

/// The API on `db` with `auth` and `roles`; students matched by login.
pub fn api(db: &TestDatabase, auth: Authentication, roles: RolesSettings) -> Arc<conpere_web::Api> {
    Arc::new(conpere_web::Api {
        pool: db.pool.clone(),
        auth,
        roles,
        student_match: StudentMatch::Login,
        catalogue: Catalogue::default(),
        rules: Rules::default(),
        pages: Default::default(),
    })
}

/// A free port of `127.0.0.1`, and its root URL (for a public URL known before the API).
pub async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    (listener, root)
}

/// Serves `api` (the pages, `/auth`, `/api/v1`) on `listener`, in the background.
pub fn serve(listener: tokio::net::TcpListener, api: Arc<conpere_web::Api>) {
    let limits = conpere_web::Limits::default();
    let app = conpere_web::contracts_app(api, limits);
    tokio::spawn(conpere_web::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
}

/// The value of the `conpere_session` cookie `response` sets, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    (response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter())
    .filter_map(|v| v.to_str().ok())
    .find_map(|c| c.strip_prefix("conpere_session="))
    .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    .filter(|c| !c.is_empty())
}
