//! The daemon's HTTP surface, hardened (real daemon, real sockets): slow and idle clients
//! are dropped and cannot starve `/health`; every refusal is the API's JSON error; the
//! unauthenticated routes reveal no internals; a run that cannot start says so and starts
//! nothing; headers; the admin token's strength; the audit log.

use super::serve::{request, start_with, stop, stop_logged, Daemon};
use super::{assert_code, Site};
use conpere_core::engine::{Coverage, Engine, RunRequest};
use conpere_tests::scalar;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A token of the strength the daemon asks for.
const TOKEN: &str = "0123456789abcdef0123456789abcdef-ops";
const TOKEN_VARIABLE: &str = "CONPERE_TEST_OPS_TOKEN";

/// A daemon with the admin API (`admin_name = "ops-team"`) and `server` lines more.
fn daemon(site: &Site, server: &str) -> Daemon {
    site.write_input(&conpere_tests::university(64, 8));
    let config = std::fs::read_to_string(site.config()).unwrap();
    let section = format!(
        "[server]\nadmin_token_env = \"{TOKEN_VARIABLE}\"\nadmin_name = \"ops-team\"\n{server}\n\
         [sources.files]"
    );
    std::fs::write(
        site.config(),
        config.replacen("[sources.files]", &section, 1),
    )
    .unwrap();
    start_with(site, &[(TOKEN_VARIABLE, TOKEN), ("CONPERE_LOG", "info")])
}

/// `text` sent as is; the whole answer (the connection closed by the server).
fn raw(address: &str, text: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(text).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path` with the admin token and `extra` header lines.
fn get_with(address: &str, path: &str, extra: &str) -> String {
    let text =
        format!("GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n");
    raw(address, text.as_bytes())
}

/// The status and the `error.code` of a JSON error answer (asserting it is one).
fn error_of(answer: &str) -> (u16, String) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "not JSON: {answer}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    let code = body["error"]["code"].as_str().expect("an error code");
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, code.to_string())
}

/// Whether the server closes `stream` within `within` (it reads end of file).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).is_ok()
}

#[tokio::test]
async fn slow_and_idle_clients_are_dropped_and_cannot_starve_health() {
    // 500 sockets here and as many in the daemon: more than a default soft limit allows
    // this process with its other tests.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let site = Site::new().await;
    let daemon = daemon(&site, "header_timeout_seconds = 1\n");
    let address = daemon.address.clone();

    // Headers half sent: dropped after the header timeout.
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let began = Instant::now();
    assert!(closed_within(&mut slow, Duration::from_secs(5)));
    assert!(
        began.elapsed() >= Duration::from_millis(800),
        "{:?}",
        began.elapsed()
    );
    // A kept-alive connection, idle after its answer: dropped too.
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
    // A connection that sends nothing: dropped.
    let mut silent = TcpStream::connect(&address).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));

    // 500 idle sockets open: /health still answers at once.
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let began = Instant::now();
    let health = request(&address, "GET", "/health", None);
    assert!(health.starts_with("HTTP/1.0 200"), "{health}");
    assert!(
        began.elapsed() < Duration::from_millis(900),
        "{:?}",
        began.elapsed()
    );
    drop(idle);
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
}

#[tokio::test]
async fn every_refusal_is_a_json_error_and_nothing_internal_is_said() {
    let site = Site::new().await;
    let daemon = daemon(&site, "");
    let address = daemon.address.clone();
    let long_url = format!("/api/v1/runs?source={}", "a".repeat(9000));
    let big_header = format!("X-Filler: {}\r\n", "b".repeat(17_000));
    let cases = [
        (get_with(&address, "/nowhere", ""), 404, "not_found"),
        (
            get_with(&address, "/api/v1/runs/1/approve", ""),
            405,
            "method_not_allowed",
        ),
        (get_with(&address, &long_url, ""), 414, "uri_too_long"),
        (
            get_with(&address, "/api/v1/runs", &big_header),
            431,
            "headers_too_large",
        ),
        (
            get_with(&address, "/api/v1/runs?source=a%00b", ""),
            400,
            "bad_request",
        ),
        (
            request(&address, "POST", "/api/v1/runs/999/approve", Some(TOKEN)),
            404,
            "not_found",
        ),
        (
            request(&address, "POST", "/api/v1/runs/999/reject", Some(TOKEN)),
            404,
            "not_found",
        ),
        (
            request(&address, "GET", "/api/v1/runs", None),
            401,
            "unauthenticated",
        ),
    ];
    for (answer, status, code) in cases {
        assert_eq!(error_of(&answer), (status, code.to_string()), "{answer}");
        assert!(answer.contains("nosniff"), "{answer}");
    }
    // The 401 says how to authenticate; the scheme is matched in any case.
    let refused = request(&address, "GET", "/api/v1/runs", Some("not-the-token"));
    assert!(refused.contains("www-authenticate: Bearer"), "{refused}");
    let lower = raw(
        &address,
        format!("GET /api/v1/runs HTTP/1.0\r\nAuthorization: bearer {TOKEN}\r\n\r\n").as_bytes(),
    );
    assert!(lower.starts_with("HTTP/1.0 200"), "{lower}");
    assert!(lower.contains("cache-control: no-store"), "{lower}");

    // Runs exist; then the store fails under the routes that need no login: a status,
    // nothing of PostgreSQL's message; the run detail says its notifications failed
    // rather than showing none.
    assert_code(&site.run(&["sync", "--source", "files"]), 0);
    let client = site.db.pool.get().await.unwrap();
    client
        .batch_execute("ALTER TABLE notification RENAME TO notification_away")
        .await
        .unwrap();
    let metrics = request(&address, "GET", "/metrics", None);
    let detail = request(&address, "GET", "/api/v1/runs/1", Some(TOKEN));
    client
        .batch_execute("ALTER TABLE notification_away RENAME TO notification")
        .await
        .unwrap();
    assert!(metrics.starts_with("HTTP/1.0 503"), "{metrics}");
    assert_eq!(
        error_of(&detail),
        (503, "unavailable".to_string()),
        "{detail}"
    );
    for answer in [&metrics, &detail] {
        assert!(
            !answer.contains("notification") && !answer.contains("relation"),
            "internals in an answer: {answer}"
        );
    }
    let log = stop_and_log(daemon);
    assert!(
        log.contains("notification"),
        "the cause is in the log:\n{log}"
    );
}

#[tokio::test]
async fn a_run_that_cannot_start_says_so_and_starts_nothing() {
    let site = Site::new().await;
    let daemon = daemon(&site, "");
    let address = daemon.address.clone();
    // A run of the source in progress (holding its lock).
    let engine = Engine::new(site.db.pool.clone());
    let running = engine
        .start(RunRequest::full("files", "canonical", Coverage::all()))
        .await
        .unwrap();
    let answer = request(&address, "POST", "/api/v1/sources/files/run", Some(TOKEN));
    assert_eq!(error_of(&answer), (409, "busy".to_string()), "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs: i64 = scalar(&site.db, "SELECT count(*) FROM sync_run").await;
    assert_eq!(runs, 1, "a refused trigger recorded a run");
    drop(running);
    // The store failing under the check: 503, nothing recorded, the cause in the log only.
    let client = site.db.pool.get().await.unwrap();
    client
        .batch_execute("ALTER TABLE source RENAME TO source_away")
        .await
        .unwrap();
    let answer = request(&address, "POST", "/api/v1/sources/files/run", Some(TOKEN));
    client
        .batch_execute("ALTER TABLE source_away RENAME TO source")
        .await
        .unwrap();
    assert_eq!(
        error_of(&answer),
        (503, "unavailable".to_string()),
        "{answer}"
    );
    assert!(
        !answer.contains("source_away") && !answer.contains("relation"),
        "{answer}"
    );
    let runs: i64 = scalar(&site.db, "SELECT count(*) FROM sync_run").await;
    assert_eq!(runs, 1, "a refused trigger recorded a run");

    // Once it is free, the same call starts a run (202), audited with the token's name.
    let mut answer = String::new();
    for _ in 0..50 {
        answer = request(&address, "POST", "/api/v1/sources/files/run", Some(TOKEN));
        if answer.starts_with("HTTP/1.0 202") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("HTTP/1.0 202"), "{answer}");
    let log = stop_and_log(daemon);
    for line in [
        "caller=\"ops-team\" action=\"start_run\" on=\"source files\" outcome=\"busy\"",
        "caller=\"ops-team\" action=\"start_run\" on=\"source files\" outcome=\"unavailable\"",
        "caller=\"ops-team\" action=\"start_run\" on=\"source files\" outcome=\"ok\"",
    ] {
        assert!(log.contains(line), "no audit line {line}:\n{log}");
    }
    assert!(!log.contains(TOKEN), "the token in the log:\n{log}");
}

/// A held run superseded by a newer applied one cannot be approved (409); rejected, it
/// records the token's name as who decided, in the run and in the audit log.
#[tokio::test]
async fn held_runs_are_decided_in_the_name_of_the_token() {
    let site = Site::new().await;
    let daemon = daemon(&site, "");
    let address = daemon.address.clone();
    let whole = conpere_tests::university(65, 40);
    site.write_input(&whole);
    assert_code(&site.run(&["sync", "--source", "files"]), 0);
    // Half the students gone: held. Then the whole again: applied, after it.
    site.write_input(&conpere_tests::university(65, 20));
    site.run(&["sync", "--source", "files"]);
    site.write_input(&whole);
    assert_code(&site.run(&["sync", "--source", "files"]), 0);
    let held: i64 = scalar(&site.db, "SELECT id FROM sync_run WHERE status = 'held'").await;

    let approved = request(
        &address,
        "POST",
        &format!("/api/v1/runs/{held}/approve"),
        Some(TOKEN),
    );
    assert_eq!(
        error_of(&approved),
        (409, "superseded".to_string()),
        "{approved}"
    );
    let rejected = request(
        &address,
        "POST",
        &format!("/api/v1/runs/{held}/reject"),
        Some(TOKEN),
    );
    assert!(rejected.starts_with("HTTP/1.0 200"), "{rejected}");
    let decided_by: String = scalar(
        &site.db,
        &format!("SELECT decided_by FROM sync_run WHERE id = {held}"),
    )
    .await;
    assert_eq!(decided_by, "ops-team");
    let log = stop_and_log(daemon);
    for (action, outcome) in [("approve", "superseded"), ("reject", "ok")] {
        let line = format!(
            "caller=\"ops-team\" action=\"{action}\" on=\"run #{held}\" outcome=\"{outcome}\""
        );
        assert!(log.contains(&line), "no audit line {line}:\n{log}");
    }
}

#[tokio::test]
async fn a_weak_or_blank_admin_token_is_refused_at_start() {
    let site = Site::new().await;
    let config = std::fs::read_to_string(site.config()).unwrap();
    let section = format!("[server]\nadmin_token_env = \"{TOKEN_VARIABLE}\"\n\n[sources.files]");
    std::fs::write(
        site.config(),
        config.replacen("[sources.files]", &section, 1),
    )
    .unwrap();
    for (token, says) in [("short-token", "fewer than 32"), ("   ", "blank")] {
        let output = (site.command(&["serve", "--listen", "127.0.0.1:0"]))
            .env(TOKEN_VARIABLE, token)
            .output()
            .unwrap();
        assert_code(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(says) && stderr.contains("/dev/urandom"),
            "{stderr}"
        );
    }
}

/// Stops the daemon and returns everything it logged.
fn stop_and_log(daemon: Daemon) -> String {
    let (code, log) = stop_logged(daemon, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    log
}
