//! `conpere serve`, as an operations team runs it: two daemons on one store with a
//! schedule every two seconds run each scheduled run exactly once and never two at once
//! over a minute of ticks; both answer `/health`, `/ready` and `/metrics` (Prometheus text
//! whose counters move with the runs); SIGTERM stops them cleanly, letting a run finish
//! within `shutdown_grace_seconds` and abandoning it (nothing applied) past that; a daemon
//! killed mid-run leaves the store intact, and the restarted one marks the abandoned run
//! failed and runs the next one through.

use super::pegase::{export, pegase_site, sync, PASSWORD_VARIABLE};
use super::{assert_code, Site};
use conpere_core::model::{Record, RegistrationStatus};
use conpere_pegase::projection;
use conpere_pegase::simulator::{InjectedFault, Simulator};
use conpere_tests::{assert_same_export, export_text, scalar};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A daemon child process, the address it listens on and what it wrote on stderr so far
/// (drained by a thread, so that a chatty daemon never blocks on a full pipe).
pub(super) struct Daemon {
    child: Child,
    pub(super) address: String,
    stderr: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// What the daemon logged so far.
    pub(super) fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills the daemon if it still runs, then everything it logged.
    fn kill_and_log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.log()
    }
}

/// A daemon left running by a failed test does not outlive it.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(site: &Site) -> Daemon {
    start_with(site, &[])
}

/// A daemon with `env` added to its environment.
pub(super) fn start_with(site: &Site, env: &[(&str, &str)]) -> Daemon {
    start_serving(site, &[], env)
}

/// A daemon with `args` after `serve --listen 127.0.0.1:0`, `env` added to its
/// environment.
pub(super) fn start_serving(site: &Site, args: &[&str], env: &[(&str, &str)]) -> Daemon {
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let mut command = site.command(&[&serve[..], args].concat());
    command.envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start conpere serve");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&stderr);
    let drain = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let mut daemon = Daemon {
        child,
        address: String::new(),
        stderr,
        drain: Some(drain),
    };
    match line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
    {
        Some(address) => daemon.address = address.to_string(),
        None => panic!("no address in {line:?}:\n{}", daemon.kill_and_log()),
    }
    daemon
}

/// The status line and body of `GET path`.
fn get(address: &str, path: &str) -> String {
    request(address, "GET", path, None)
}

/// The whole response to `method path`, with a bearer `token` when given.
pub(super) fn request(address: &str, method: &str, path: &str, token: Option<&str>) -> String {
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
pub(super) fn metric(address: &str, series: &str) -> f64 {
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
pub(super) fn stop(daemon: Daemon, within: Duration) -> Option<i32> {
    terminate(daemon, within).0
}

/// SIGTERM, then the exit code and everything the daemon logged, to its last line (it
/// must stop within `within`).
pub(super) fn stop_logged(mut daemon: Daemon, within: Duration) -> (Option<i32>, String) {
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            started.elapsed() < within,
            "the daemon did not stop within {within:?}:\n{}",
            daemon.kill_and_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(drain) = daemon.drain.take() {
        let _ = drain.join();
    }
    (code, daemon.log())
}

/// SIGTERM, then the exit code and how long the daemon took to exit (it must stop within
/// `within`).
fn terminate(daemon: Daemon, within: Duration) -> (Option<i32>, Duration) {
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_exit(daemon, within)
}

/// The exit code of a daemon already told to stop, and how long it took to exit from now
/// (it must stop within `within`).
fn wait_exit(mut daemon: Daemon, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the daemon did not stop within {within:?}:\n{}",
        daemon.kill_and_log()
    );
}

#[tokio::test]
async fn two_daemons_run_each_scheduled_run_once_and_stop_on_sigterm() {
    let site = Site::new().await;
    site.write_input(&conpere_tests::university(61, 20));
    site.write_config("schedule = \"*/2 * * * * *\"\n");
    let begun = Instant::now();
    let daemons = [start(&site), start(&site)];
    let listening = Instant::now();
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
    // Over a minute of ticks.
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(begun.elapsed())).await;
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
    let stopping = Instant::now();
    // Both told at once, so that neither ticks alone while the other stops.
    for daemon in &daemons {
        nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    }
    for daemon in daemons {
        assert_eq!(wait_exit(daemon, Duration::from_secs(30)).0, Some(0));
    }
    let stopped = Instant::now();

    // One claim per due time (every even second) between the daemons' start and their
    // stop, give or take the one at each end.
    let claims: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM schedule_claim WHERE source = 'files'",
    )
    .await;
    let (shortest, longest) = (stopping - listening, stopped - begun);
    let expected = (shortest.as_secs() as i64 / 2 - 1)..=(longest.as_secs() as i64 / 2 + 1);
    eprintln!("{claims} claims in {shortest:?} to {longest:?}, expected {expected:?}");
    assert!(
        expected.contains(&claims),
        "{claims} runs claimed in {shortest:?} to {longest:?} of a 2 s schedule, \
         expected {expected:?}"
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
    let token = "s3cret-admin-token-of-32-characters-at-least";
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

/// What `conpere export --source pegase` gives once the store holds `records`.
fn expected_export(records: &[Record]) -> String {
    export_text("pegase", &projection::readable(records))
}

/// A site whose source `pegase` reads a simulated Pégase serving a university of
/// `students`, one request at a time, every two seconds when a daemon runs; with `server`
/// lines in a `[server]` table. Synced once: returns the site, the simulator, the records
/// and the store's export then.
async fn synced_pegase_site(
    seed: u64,
    students: usize,
    server: &str,
) -> (Site, Simulator, Vec<Record>, String) {
    let records = conpere_tests::university(seed, students);
    let (site, pegase) = pegase_site(&records, Duration::from_secs(600)).await;
    let mut config = std::fs::read_to_string(site.config()).unwrap();
    let table = config
        .find("\n[sources.pegase]\n")
        .expect("[sources.pegase]");
    assert_eq!(
        config.rfind("\n["),
        Some(table),
        "[sources.pegase] is the last table:\n{config}"
    );
    assert!(config.ends_with('\n'), "{config}");
    config.push_str("schedule = \"*/2 * * * * *\"\nconcurrency = 1\n");
    if !server.is_empty() {
        config = config.replacen(
            "[sources.pegase]",
            &format!("[server]\n{server}\n[sources.pegase]"),
            1,
        );
    }
    std::fs::write(site.config(), config).unwrap();
    assert_code(&sync(&site, &pegase), 0);
    let baseline = export(&site);
    assert_same_export(&baseline, &expected_export(&records), "the first sync");
    (site, pegase, records, baseline)
}

/// Overnight, `wanted` active registrations gain a special status in Pégase; `records`
/// follow. A run applied after this changes the export.
fn change_registrations(pegase: &Simulator, records: &mut [Record], wanted: usize) {
    let mut changed = Vec::new();
    pegase.update_registrations(|r| {
        if changed.len() >= wanted || r.status != RegistrationStatus::Active {
            return false;
        }
        r.special_statuses.push("other:PRF777".into());
        changed.push(r.clone());
        true
    });
    assert_eq!(changed.len(), wanted);
    for record in records {
        if let Record::Registration(g) = record {
            if let Some(new) = changed
                .iter()
                .find(|c| c.student == g.student && c.year == g.year && c.step == g.step)
            {
                *g = new.clone();
            }
        }
    }
}

/// Waits (up to `within`) until `daemon` runs a sync; its run id.
async fn running_run(site: &Site, daemon: &mut Daemon, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let running: i64 = scalar(
            &site.db,
            "SELECT coalesce(max(id), 0) FROM sync_run WHERE status = 'running'",
        )
        .await;
        if running > 0 {
            return running;
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("the daemon ended ({status}):\n{}", daemon.kill_and_log());
        }
        if Instant::now() > deadline {
            panic!(
                "no run started within {within:?}:\n{}",
                daemon.kill_and_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The status of run `id`.
async fn run_status(site: &Site, id: i64) -> String {
    scalar(
        &site.db,
        &format!("SELECT status FROM sync_run WHERE id = {id}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_run_leaves_the_store_intact_and_the_restarted_one_runs_through() {
    let (site, pegase, mut records, baseline) = synced_pegase_site(71, 40, "").await;
    // Overnight changes: a run applied shows them in the export.
    change_registrations(&pegase, &mut records, 3);
    // Slower answers: a run (some 300 requests) lasts several seconds.
    pegase.faults().inject(InjectedFault::latency(20));
    let password = pegase.credentials().1.to_string();
    let env = [(PASSWORD_VARIABLE, password.as_str())];
    let begun = Instant::now();
    let mut daemon = start_with(&site, &env);
    let killed = running_run(&site, &mut daemon, Duration::from_secs(20)).await;
    // Killed well into its reading: past the registrations and the structure.
    let requests = pegase.stats().total;
    let deadline = Instant::now() + Duration::from_secs(20);
    while pegase.stats().total < requests + 100 {
        assert!(Instant::now() < deadline, "{:?}", pegase.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = daemon.child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{status}:\n{}",
        daemon.kill_and_log()
    );
    eprintln!(
        "killed run {killed} after {:?}, {} requests",
        begun.elapsed(),
        pegase.stats().total - requests
    );
    assert_eq!(
        run_status(&site, killed).await,
        "running",
        "the run ended before the kill: make it slower"
    );
    assert_same_export(&export(&site), &baseline, "the store after the kill");

    // The restarted daemon: the killed run is marked failed, the next run succeeds.
    pegase.faults().clear();
    let restarted = Instant::now();
    let mut daemon = start_with(&site, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let next: i64 = loop {
        let next: i64 = scalar(
            &site.db,
            &format!(
                "SELECT coalesce(min(id), 0) FROM sync_run WHERE id > {killed} \
                 AND status = 'succeeded'"
            ),
        )
        .await;
        if next > 0 {
            break next;
        }
        if Instant::now() > deadline {
            panic!(
                "no run succeeded after the restart:\n{}",
                daemon.kill_and_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "run {next} succeeded {:?} after the restart",
        restarted.elapsed()
    );
    let (status, error): (String, String) = {
        let client = site.db.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT status, coalesce(error, '') FROM sync_run WHERE id = $1",
                &[&killed],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(status, "failed", "the killed run");
    assert!(
        error.starts_with("abandoned"),
        "the killed run's error: {error}"
    );
    let others: i64 = scalar(
        &site.db,
        &format!("SELECT count(*) FROM sync_run WHERE id > {killed} AND id < {next}"),
    )
    .await;
    assert_eq!(others, 0, "runs between the killed one and the next");
    assert_same_export(
        &export(&site),
        &expected_export(&records),
        "the store after the next run",
    );
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
}

/// A synced Pégase site with three registrations changed since, answering each request
/// after `latency_ms`, and a daemon (`shutdown_grace_seconds = grace`) in the middle of
/// a run: the site, its simulator, the records now served, the export before the run,
/// the daemon and the run's id.
async fn daemon_in_a_run(
    seed: u64,
    grace: u64,
    latency_ms: u64,
) -> (Site, Simulator, Vec<Record>, String, Daemon, i64) {
    let (site, pegase, mut records, baseline) =
        synced_pegase_site(seed, 40, &format!("shutdown_grace_seconds = {grace}\n")).await;
    change_registrations(&pegase, &mut records, 3);
    pegase.faults().inject(InjectedFault::latency(latency_ms));
    let password = pegase.credentials().1.to_string();
    let mut daemon = start_with(&site, &[(PASSWORD_VARIABLE, password.as_str())]);
    let run = running_run(&site, &mut daemon, Duration::from_secs(20)).await;
    assert_eq!(
        run_status(&site, run).await,
        "running",
        "the run ended before SIGTERM"
    );
    (site, pegase, records, baseline, daemon, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_abandons_a_run_longer_than_the_grace_and_applies_nothing() {
    // A run (some 300 requests) takes well over the two seconds of grace.
    let (site, _pegase, _records, baseline, daemon, run) = daemon_in_a_run(72, 2, 400).await;
    let (code, took) = terminate(daemon, Duration::from_secs(12));
    eprintln!("stopped {took:?} after SIGTERM, run {run} cut short");
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_millis(1900),
        "the run in progress was not given its grace: stopped after {took:?}"
    );
    // The daemon marked the run it abandoned before exiting.
    assert_eq!(run_status(&site, run).await, "failed", "the abandoned run");
    let error: String = scalar(
        &site.db,
        &format!("SELECT error FROM sync_run WHERE id = {run}"),
    )
    .await;
    assert!(error.starts_with("abandoned"), "{error}");
    let later: i64 = scalar(
        &site.db,
        &format!("SELECT count(*) FROM sync_run WHERE id > {run}"),
    )
    .await;
    assert_eq!(later, 0, "a run started after SIGTERM");
    let history: i64 = scalar(
        &site.db,
        &format!("SELECT count(*) FROM history WHERE run_id >= {run}"),
    )
    .await;
    assert_eq!(history, 0, "the abandoned run wrote history");
    assert_same_export(&export(&site), &baseline, "the store after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_run_within_the_grace_finish() {
    // A run (some 300 requests) takes a second or two.
    let (site, _pegase, records, _, daemon, run) = daemon_in_a_run(73, 30, 5).await;
    let (code, took) = terminate(daemon, Duration::from_secs(40));
    eprintln!("stopped {took:?} after SIGTERM, run {run} finished");
    assert_eq!(code, Some(0));
    assert_eq!(run_status(&site, run).await, "succeeded");
    let later: i64 = scalar(
        &site.db,
        &format!("SELECT count(*) FROM sync_run WHERE id > {run}"),
    )
    .await;
    assert_eq!(later, 0, "a run started after SIGTERM");
    assert_same_export(
        &export(&site),
        &expected_export(&records),
        "the store after the stop",
    );
}
