//! `conpere serve`, as an operations team runs it: two daemons on one store with a
//! schedule every two seconds run each scheduled run exactly once and never two at once;
//! both answer `/health`, `/ready` and `/metrics` (Prometheus text whose counters move
//! with the runs); SIGTERM stops them cleanly.

use super::Site;
use conpere_tests::scalar;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A daemon child process and the address it listens on.
struct Daemon {
    child: Child,
    address: String,
}

fn start(site: &Site) -> Daemon {
    let mut child = site
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start conpere serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Daemon { child, address }
}

/// The status line and body of `GET path`.
fn get(address: &str, path: &str) -> String {
    request(address, "GET", path, None)
}

/// The whole response to `method path`, with a bearer `token` when given.
fn request(address: &str, method: &str, path: &str, token: Option<&str>) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The value of `series` in `/metrics`, after checking every line is Prometheus text.
fn metric(address: &str, series: &str) -> f64 {
    let response = get(address, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let mut found = None;
    for line in body.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF" {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(name.starts_with("conpere_"), "{line}");
        if name == series {
            found = Some(value);
        }
    }
    found.unwrap_or_else(|| panic!("{series} not in:\n{body}"))
}

/// SIGTERM, then the exit code (the daemon must stop within `within`).
fn stop(mut daemon: Daemon, within: Duration) -> Option<i32> {
    let pid = nix::unistd::Pid::from_raw(daemon.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = daemon.child.kill();
    let mut stderr = String::new();
    let _ = daemon
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr);
    panic!("the daemon did not stop within {within:?}: {stderr}");
}

#[tokio::test]
async fn two_daemons_run_each_scheduled_run_once_and_stop_on_sigterm() {
    let site = Site::new().await;
    site.write_input(&conpere_tests::university(61, 20));
    site.write_config("schedule = \"*/2 * * * * *\"\n");
    let daemons = [start(&site), start(&site)];
    for daemon in &daemons {
        assert!(get(&daemon.address, "/health").starts_with("HTTP/1.0 200"));
        let ready = get(&daemon.address, "/ready");
        assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let early = metric(
        &daemons[0].address,
        "conpere_runs_total{source=\"files\",status=\"succeeded\"}",
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Both daemons report the store's figures, which moved with the runs.
    let late = metric(
        &daemons[1].address,
        "conpere_runs_total{source=\"files\",status=\"succeeded\"}",
    );
    assert!(late > early && early >= 1.0, "runs {early} then {late}");
    let inserted = metric(
        &daemons[0].address,
        "conpere_records_total{source=\"files\",change=\"inserted\"}",
    );
    assert!(inserted > 0.0);
    for daemon in daemons {
        assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
    }

    let claims: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM schedule_claim WHERE source = 'files'",
    )
    .await;
    assert!(
        (3..=6).contains(&claims),
        "{claims} runs claimed in 9 s of a 2 s schedule"
    );
    let runs: i64 = scalar(&site.db, "SELECT count(*) FROM sync_run").await;
    let claimed_runs: i64 = scalar(
        &site.db,
        "SELECT count(DISTINCT run_id) FROM schedule_claim WHERE run_id IS NOT NULL",
    )
    .await;
    assert_eq!((runs, claimed_runs), (claims, claims), "one run per claim");
    let overlapping: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM sync_run a JOIN sync_run b ON a.id < b.id \
         AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .await;
    assert_eq!(overlapping, 0, "two runs of the source at once");
    let failed: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM sync_run WHERE status <> 'succeeded'",
    )
    .await;
    assert_eq!(failed, 0);
}

const ADMIN_TOKEN_VARIABLE: &str = "CONPERE_TEST_ADMIN_TOKEN";

#[tokio::test]
async fn the_admin_api_refuses_calls_without_the_token_and_serves_those_with_it() {
    let site = Site::new().await;
    site.write_input(&conpere_tests::university(62, 10));
    let config = std::fs::read_to_string(site.config()).unwrap();
    let config = config.replacen(
        "[sources.files]",
        &format!("[server]\nadmin_token_env = \"{ADMIN_TOKEN_VARIABLE}\"\n\n[sources.files]"),
        1,
    );
    std::fs::write(site.config(), config).unwrap();
    let token = "s3cret-admin-token";
    std::env::set_var(ADMIN_TOKEN_VARIABLE, token);
    let daemon = start(&site);
    let address = daemon.address.clone();

    for given in [None, Some("wrong-token")] {
        for (method, path) in [
            ("GET", "/api/v1/runs"),
            ("POST", "/api/v1/sources/files/run"),
        ] {
            let response = request(&address, method, path, given);
            assert!(
                response.starts_with("HTTP/1.0 401"),
                "{method} {path}: {response}"
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs: i64 = scalar(&site.db, "SELECT count(*) FROM sync_run").await;
    assert_eq!(runs, 0, "a refused call triggered a run");

    let response = request(&address, "POST", "/api/v1/sources/files/run", Some(token));
    assert!(response.starts_with("HTTP/1.0 202"), "{response}");
    let started = Instant::now();
    let mut listed = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        listed = request(&address, "GET", "/api/v1/runs", Some(token));
        if listed.contains("\"succeeded\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        listed.contains("\"source\":\"files\"") && listed.contains("\"succeeded\""),
        "{listed}"
    );
    let shown = request(&address, "GET", "/api/v1/runs/1", Some(token));
    assert!(
        shown.starts_with("HTTP/1.0 200") && shown.contains("\"by_kind\""),
        "{shown}"
    );
    let reject = request(&address, "POST", "/api/v1/runs/1/reject", Some(token));
    assert!(
        reject.starts_with("HTTP/1.0 409"),
        "a succeeded run is not held: {reject}"
    );
    let unknown = request(&address, "POST", "/api/v1/sources/nope/run", Some(token));
    assert!(unknown.starts_with("HTTP/1.0 404"), "{unknown}");
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
}

#[tokio::test]
async fn a_failed_scheduled_run_is_tried_again_as_configured() {
    let site = Site::new().await;
    // An export drop with a broken quote: every attempt fails, nothing applied.
    let records = conpere_tests::university(63, 10);
    conpere_mappings::canonical_csv::write_drop(
        &site.input(),
        records,
        conpere_mappings::encoding::Encoding::Utf8,
    )
    .unwrap();
    let nodes = site.input().join("nodes.csv");
    let mut bytes = std::fs::read(&nodes).unwrap();
    bytes.splice(0..0, b"\"".iter().copied());
    std::fs::write(&nodes, bytes).unwrap();
    let config = format!(
        "[database]\nurl = {:?}\n\n[sources.drop]\nkind = \"export\"\npath = {:?}\n\
         mapping = \"canonical-csv\"\nencoding = \"utf-8\"\nstable_seconds = 0\n\
         schedule = \"*/3 * * * * *\"\nrun_retries = 1\nrun_retry_delay_seconds = 1\n",
        site.db.connection_string,
        site.input().display().to_string()
    );
    std::fs::write(site.config(), config).unwrap();
    let daemon = start(&site);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
    let claims: i64 = scalar(&site.db, "SELECT count(*) FROM schedule_claim").await;
    let failed: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM sync_run WHERE status = 'failed'",
    )
    .await;
    let other: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM sync_run WHERE status <> 'failed'",
    )
    .await;
    assert!(claims >= 2, "{claims} runs due in 7 s of a 3 s schedule");
    // Each due run: the first attempt and one retry (the last one may be cut by the stop).
    assert!(
        failed == 2 * claims || failed == 2 * claims - 1,
        "{claims} due, {failed} failed runs"
    );
    assert_eq!(other, 0);
}
