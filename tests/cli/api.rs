//! The README's walk-through of the contracts API, as a user runs it after `demo`: `serve
//! --demo` behind a (simulated) authenticating proxy; a directeur lists and proposes
//! contract #1, its student signs it, the directeur validates it, anyone checks its hash.
//! The daemon's log names no student number, and never the proxy's secret.

use super::serve::{start_serving, stop_logged};
use super::{assert_code, Site};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

const SECRET: &str = "walkthrough-proxy-secret";

/// The README's configuration of the walk-through.
const CONFIG: &str = r#"[auth]
mode = "header"
secret_env = "CONPERE_PROXY_SECRET"

[roles]
directeurs = { "dupont" = ["VET:L1SOC/120"] }
"#;

/// `method path` as the proxy sends it for `login` (none: anonymous, no secret), with a
/// JSON body when given: the status and the JSON answer.
fn call(
    address: &str,
    method: &str,
    path: &str,
    login: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let who = login
        .map(|l| format!("X-Remote-User: {l}\r\nX-Proxy-Secret: {SECRET}\r\n"))
        .unwrap_or_default();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n{who}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_readme_walkthrough_lists_proposes_signs_and_validates_after_demo() {
    let site = Site::new().await;
    // As a user would: no [database], the embedded server in the data directory (the
    // test's own: the shared test server's `conpere_demo` belongs to the demo's test).
    std::fs::write(site.config(), CONFIG).unwrap();
    assert_code(&site.run(&["demo", "--students", "30"]), 0);
    let env = [("CONPERE_PROXY_SECRET", SECRET), ("CONPERE_LOG", "info")];
    let daemon = start_serving(&site, &["--demo"], &env);
    let address = daemon.address.clone();
    let call = |method, path: &str, login, body| call(&address, method, path, login, body);

    // The directeur lists their step's contracts of 2023; #1 is the first.
    let (status, page) = call(
        "GET",
        "/api/v1/contracts?year=2023&limit=2",
        Some("dupont"),
        None,
    );
    assert_eq!(status, 200, "{page}");
    let first = &page["items"][0];
    assert_eq!(
        (&first["id"], &first["student"], &first["state"]),
        (&json!(1), &json!("01578413"), &json!("draft"))
    );
    assert!(page["next_cursor"].is_string(), "{page}");
    let hash = first["version_hash"].clone();
    let seen = json!({ "version_hash": hash });

    // Without the proxy's secret, nobody.
    let (status, _) = call("GET", "/api/v1/contracts", None, None);
    assert_eq!(status, 401);

    let (status, proposed) = call(
        "POST",
        "/api/v1/contracts/1/propose",
        Some("dupont"),
        Some(seen.clone()),
    );
    assert_eq!(
        (status, &proposed["state"]),
        (200, &json!("proposed")),
        "{proposed}"
    );
    let signing =
        json!({ "version_hash": hash, "consent_text": "J'ai lu et j'accepte ce contrat." });
    let (status, signed) = call(
        "POST",
        "/api/v1/contracts/1/sign",
        Some("coeurdem"),
        Some(signing),
    );
    assert_eq!(
        (status, &signed["state"]),
        (200, &json!("signed")),
        "{signed}"
    );
    let (status, validated) = call(
        "POST",
        "/api/v1/contracts/1/validate",
        Some("dupont"),
        Some(seen),
    );
    assert_eq!(
        (status, &validated["state"], &validated["in_force"]),
        (200, &json!("validated"), &json!(1))
    );
    let (status, checked) = call(
        "GET",
        &format!("/api/v1/verify/{}", hash.as_str().unwrap()),
        None,
        None,
    );
    assert_eq!(
        (status, checked),
        (
            200,
            json!({ "exists": true, "year": 2023, "state": "validated", "in_force": true })
        )
    );
    let (status, theirs) = call(
        "GET",
        "/api/v1/students/01578413/contracts",
        Some("dupont"),
        None,
    );
    assert_eq!(status, 200, "{theirs}");

    // Every request in the log; the student number masked, the secret nowhere.
    let (code, log) = stop_logged(daemon, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("/api/v1/contracts/1/validate") && log.contains("status=200"),
        "{log}"
    );
    assert!(log.contains("/api/v1/students/******13/contracts"), "{log}");
    assert!(
        !log.contains("01578413"),
        "a student number in the log:\n{log}"
    );
    assert!(
        !log.contains(SECRET),
        "the proxy's secret in the log:\n{log}"
    );
    // Each action in the audit log: who, what, on what, how it ended.
    for (caller, action) in [
        ("dupont", "propose"),
        ("coeurdem", "sign"),
        ("dupont", "validate"),
    ] {
        let line =
            format!("caller=\"{caller}\" action=\"{action}\" on=\"contract #1\" outcome=\"ok\"");
        assert!(log.contains(&line), "no audit line {line}:\n{log}");
    }
    assert!(
        log.contains("audit: refused"),
        "the request without the secret:\n{log}"
    );
}
