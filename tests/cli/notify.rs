//! Notifications, as an operations team relies on them: a scheduled run that fails is
//! told once, after its retries, by webhook (retried on a 503) and e-mail, with what to
//! do; its recovery is told to the channel that asked; a held run triggered through the
//! admin API is told with the commands to decide it; `conpere notify --test` shows which
//! channel works. The webhook's URL, a secret, never shows in the daemon's logs.

use super::serve::{metric, request, start_with, stop, Daemon};
use super::{assert_code, text, Site};
use conpere_core::model::Record;
use conpere_mappings::canonical_csv::write_drop;
use conpere_mappings::encoding::Encoding;
use conpere_tests::scalar;
use conpere_tests::smtp::SmtpSink;
use conpere_tests::webhook::{ReceivedRequest, WebhookReceiver};
use std::time::{Duration, Instant};

const URL_VARIABLE: &str = "CONPERE_TEST_WEBHOOK_URL";
const TOKEN_VARIABLE: &str = "CONPERE_TEST_WEBHOOK_TOKEN";
const ADMIN_VARIABLE: &str = "CONPERE_TEST_NOTIFY_ADMIN_TOKEN";
const ADMIN_TOKEN: &str = "notify-admin-token-0123456789abcdef";
const SMTP_PASSWORD_VARIABLE: &str = "CONPERE_TEST_SMTP_PASSWORD";
/// The secret part of the webhook's URL, which must never be logged.
const URL_SECRET: &str = "hooks/T0K3N-s3cr3t";

/// Replaces the drop in `site`'s input directory by `records` (a broken quote in
/// `nodes.csv` when `broken`).
fn write_input(site: &Site, records: Vec<Record>, broken: bool) {
    for entry in std::fs::read_dir(site.input()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    write_drop(&site.input(), records, Encoding::Utf8).unwrap();
    if broken {
        let nodes = site.input().join("nodes.csv");
        let mut bytes = std::fs::read(&nodes).unwrap();
        bytes.splice(0..0, b"\"".iter().copied());
        std::fs::write(&nodes, bytes).unwrap();
    }
}

/// conpere.toml: channels `chat` (webhook, every event, a failure told again after the
/// default 12 hours) and `dsi` (e-mail to `mail` with a login, failures and holds, every failure told),
/// and the export source `drop` telling both, with `source_extra`.
fn write_config(site: &Site, mail: &SmtpSink, server_extra: &str, source_extra: &str) {
    let text = format!(
        "[database]\nurl = {db:?}\n\n\
         [server]\nadmin_token_env = \"{ADMIN_VARIABLE}\"\npublic_url = \"https://conpere.univ.example.fr\"\n{server_extra}\n\
         [notifications.chat]\nkind = \"webhook\"\nurl_env = \"{URL_VARIABLE}\"\n\
         token_env = \"{TOKEN_VARIABLE}\"\nevents = [\"failed\", \"held\", \"recovered\"]\n\n\
         [notifications.dsi]\nkind = \"email\"\nsmtp_host = {host:?}\nsmtp_port = {port}\n\
         security = \"none\"\nfrom = \"conpere <conpere@univ.example.fr>\"\n\
         to = [\"dsi-scolarite@univ.example.fr\", \"astreinte@univ.example.fr\"]\n\
         username = \"conpere\"\npassword_env = \"{SMTP_PASSWORD_VARIABLE}\"\n\
         repeat_after_hours = 0\n\n\
         [sources.drop]\nkind = \"export\"\npath = {input:?}\nmapping = \"canonical-csv\"\n\
         encoding = \"utf-8\"\nstable_seconds = 0\nnotify = [\"chat\", \"dsi\"]\n{source_extra}",
        db = site.db.connection_string,
        host = mail.host(),
        port = mail.port(),
        input = site.input().display().to_string(),
    );
    std::fs::write(site.config(), text).unwrap();
}

fn environment(hooks: &WebhookReceiver) -> Vec<(&'static str, String)> {
    vec![
        (URL_VARIABLE, hooks.url(&format!("/{URL_SECRET}"))),
        (TOKEN_VARIABLE, "webhook-bearer".into()),
        (ADMIN_VARIABLE, ADMIN_TOKEN.into()),
        (SMTP_PASSWORD_VARIABLE, "mot de passe SMTP".into()),
    ]
}

fn start_daemon(site: &Site, hooks: &WebhookReceiver) -> Daemon {
    let mut env = environment(hooks);
    // Debug logs of the HTTP client too: the webhook's URL must not show even there.
    env.push(("CONPERE_LOG", "info,conpere_connectors=debug".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_with(site, &env)
}

/// The notices the webhook accepted (200), as JSON.
fn accepted(hooks: &WebhookReceiver) -> Vec<serde_json::Value> {
    hooks
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(ReceivedRequest::json)
        .collect()
}

/// Waits until the webhook accepted a notice of `event`.
async fn notice_of(hooks: &WebhookReceiver, event: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if let Some(notice) = accepted(hooks).into_iter().find(|n| n["event"] == event) {
            return notice;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no `{event}` notice; received: {:?}", hooks.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_told_once_after_its_retries_and_its_recovery_after() {
    let site = Site::new().await;
    let (hooks, mail) = (WebhookReceiver::start().await, SmtpSink::start().await);
    // The chat server is briefly down: the notice is sent again.
    hooks.fail_next(1, 503);
    write_input(&site, conpere_tests::university(71, 10), true);
    write_config(
        &site,
        &mail,
        "",
        "schedule = \"*/4 * * * * *\"\nrun_retries = 1\nrun_retry_delay_seconds = 1\n",
    );
    let daemon = start_daemon(&site, &hooks);

    let failed = notice_of(&hooks, "failed").await;
    assert_eq!(
        hooks.requests()[0].status,
        503,
        "the first POST was refused"
    );
    assert_eq!(
        hooks.requests()[0].header("authorization"),
        Some("Bearer webhook-bearer")
    );
    assert_eq!(failed["source"], "drop");
    assert_eq!(failed["trigger"], "schedule");
    assert_eq!(failed["attempts"], 2, "told after the retry, not before");
    let run_id = failed["run"]["id"].as_i64().expect("the failed run");
    assert_eq!(failed["run"]["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("nodes.csv"), "{error}");
    let steps = failed["what_to_do"].to_string();
    assert!(
        steps.contains("conpere check --source drop")
            && steps.contains("https://conpere.univ.example.fr/api/v1/sources/drop/run"),
        "{steps}"
    );
    let mails = mail.wait_for(1, Duration::from_secs(20)).await;
    let first = &mails[0];
    assert_eq!(
        first.auth,
        Some(("conpere".to_string(), "mot de passe SMTP".to_string())),
        "logged in to the SMTP server"
    );
    assert_eq!(
        first.to,
        ["dsi-scolarite@univ.example.fr", "astreinte@univ.example.fr"]
    );
    let subject = first.header("Subject").unwrap();
    assert!(
        subject.contains(&format!("source `drop`: run #{run_id} failed")),
        "{subject}"
    );
    let body = first.body();
    assert!(
        body.contains("What to do:") && body.contains(&format!("conpere runs show {run_id}")),
        "{body}"
    );

    // A second due run fails too: told again by e-mail (repeat_after_hours = 0), not to
    // the chat (told less than 12 hours ago).
    let deadline = Instant::now() + Duration::from_secs(30);
    while mail.messages().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mail.messages().len(), 2, "the second failure by e-mail");

    // The SIS export is fixed: the next run succeeds, and the chat (which asked) is told.
    write_input(&site, conpere_tests::university(71, 10), false);
    let recovered = notice_of(&hooks, "recovered").await;
    assert_eq!(recovered["run"]["status"], "succeeded");
    assert!(recovered["failing_since"].is_string());
    let delivered = metric(
        &daemon.address,
        "conpere_notifications_total{channel=\"chat\",event=\"failed\",outcome=\"delivered\"}",
    );
    let logs = daemon.log();
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
    assert!(!logs.contains(URL_SECRET), "the webhook URL was logged");

    // Each failed due run told once by e-mail, whatever its attempts; once to the chat.
    let notices = accepted(&hooks);
    let chat_failures = notices.iter().filter(|n| n["event"] == "failed").count();
    assert_eq!((chat_failures, delivered), (1, 1.0), "the chat told once");
    let told = mail.messages().len() as i64;
    let failed_runs: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM sync_run WHERE status = 'failed'",
    )
    .await;
    // Two attempts per told failure, plus perhaps the first attempt of the run that
    // recovered on its retry.
    assert!(
        failed_runs == 2 * told || failed_runs == 2 * told + 1,
        "{failed_runs} failed runs, {told} failures told by e-mail"
    );
    let undelivered: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM notification WHERE NOT delivered",
    )
    .await;
    assert_eq!(undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_is_told_with_the_commands_to_decide_it() {
    let site = Site::new().await;
    let (hooks, mail) = (WebhookReceiver::start().await, SmtpSink::start().await);
    write_config(&site, &mail, "", "");
    write_input(&site, conpere_tests::university(72, 40), false);
    assert_code(&site.run(&["sync", "--source", "drop"]), 0);
    // Half the students vanish from the next export: the run must wait for a person.
    write_input(&site, conpere_tests::university(72, 20), false);
    let daemon = start_daemon(&site, &hooks);
    let triggered = request(
        &daemon.address,
        "POST",
        "/api/v1/sources/drop/run",
        Some(ADMIN_TOKEN),
    );
    assert!(triggered.starts_with("HTTP/1.0 202"), "{triggered}");

    let held = notice_of(&hooks, "held").await;
    let run_id = held["run"]["id"].as_i64().unwrap();
    assert_eq!(held["trigger"], "admin_api");
    assert_eq!(held["run"]["status"], "held");
    assert!(held["run"]["hold_reason"].is_string());
    let text = held["text"].as_str().unwrap();
    for expected in [
        format!("conpere runs approve {run_id}"),
        format!("conpere runs reject {run_id}"),
        format!("https://conpere.univ.example.fr/api/v1/runs/{run_id}/approve"),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in {text}");
    }
    let mails = mail.wait_for(1, Duration::from_secs(20)).await;
    assert!(mails[0]
        .header("Subject")
        .unwrap()
        .contains(&format!("run #{run_id} held")));
    // The admin API shows who was told.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = request(
            &daemon.address,
            "GET",
            &format!("/api/v1/runs/{run_id}"),
            Some(ADMIN_TOKEN),
        );
        if shown.matches("\"delivered\":true").count() == 2 || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        shown.contains("\"channel\":\"chat\"") && shown.contains("\"channel\":\"dsi\""),
        "{shown}"
    );
    assert_eq!(stop(daemon, Duration::from_secs(30)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_says_which_channel_works() {
    let site = Site::new().await;
    let (hooks, mail) = (WebhookReceiver::start().await, SmtpSink::start().await);
    let refusing = SmtpSink::start_refusing("550 5.7.1 relaying denied").await;
    write_config(&site, &mail, "", "");
    let config = std::fs::read_to_string(site.config()).unwrap();
    let config = config.replacen(
        "[sources.drop]",
        &format!(
            "[notifications.relay]\nkind = \"email\"\nsmtp_host = {:?}\nsmtp_port = {}\n\
             security = \"none\"\nfrom = \"conpere@univ.example.fr\"\nto = [\"dsi@univ.example.fr\"]\n\n\
             [sources.drop]",
            refusing.host(),
            refusing.port()
        ),
        1,
    );
    std::fs::write(site.config(), config).unwrap();
    let env = environment(&hooks);
    let output = site
        .command(&["notify", "--test"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_code(&output, 1);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "[notifications.chat]: delivered",
        "[notifications.dsi]: delivered",
        "[notifications.relay]: NOT delivered",
        "relaying denied",
    ] {
        assert!(stdout.contains(expected), "{expected:?}: {}", text(&output));
    }
    assert_eq!(accepted(&hooks)[0]["trigger"], "test");
    assert!(mail.messages()[0]
        .header("Subject")
        .unwrap()
        .contains("(test notice)"));
    let one = site
        .command(&["notify", "--test", "--channel", "nope"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_code(&one, 2);
}
