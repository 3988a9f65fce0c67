//! The `conpere` binary end to end, as an operator runs it: real child processes on a
//! test database of the embedded server, canonical files as the source.

use conpere_core::model::Record;
use conpere_tests::{
    assert_same_export, export_text, scalar, university, write_canonical, TestDatabase,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod api;
mod export;
mod notify;
mod oneroster;
mod ops;
mod pegase;
mod serve;
mod sql;

/// A configured conpere: a test database, an input directory, a conpere.toml.
struct Site {
    dir: tempfile::TempDir,
    db: TestDatabase,
}

impl Site {
    async fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            db: TestDatabase::new().await,
        };
        std::fs::create_dir(site.input()).unwrap();
        site.write_config("");
        site
    }

    fn input(&self) -> PathBuf {
        self.dir.path().join("input")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("conpere.toml")
    }

    /// conpere.toml with the test database and a canonical source `files`, plus `extra`
    /// lines in that source's table.
    fn write_config(&self, extra: &str) {
        let text = format!(
            "[database]\nurl = {:?}\n\n[sources.files]\nkind = \"canonical\"\npath = {:?}\n{extra}",
            self.db.connection_string,
            self.input().display().to_string()
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn write_input(&self, records: &[Record]) {
        write_canonical(&self.input().join("university.jsonl"), "files", records);
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conpere"));
        command
            .args(args)
            .env("CONPERE_CONFIG", self.config())
            .env("CONPERE_DATA_DIR", self.dir.path().join("data"))
            .env_remove("CONPERE_LOG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run conpere")
    }

    fn export(&self) -> String {
        self.export_of("files")
    }

    /// `conpere export --source <source>` through a file, as text.
    fn export_of(&self, source: &str) -> String {
        let out = self.dir.path().join(format!("{source}.jsonl"));
        let output = self.run(&["export", "--source", source, "--out", out.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        std::fs::read_to_string(out).unwrap()
    }
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_code(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
}

/// The README's first command: both simulated SIS synced, both exports as their
/// contracts promise.
#[tokio::test]
async fn the_demo_syncs_apogee_and_pegase_and_both_exports_check_out() {
    let site = Site::new().await;
    let output = site.run(&["demo", "--students", "30"]);
    assert_code(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for source in ["apogee", "pegase"] {
        assert!(
            stdout.contains(&format!("Source `{source}`"))
                && stdout.contains(&format!("of source `{source}`: succeeded")),
            "{}",
            text(&output)
        );
    }
    assert_eq!(stdout.matches("carries it: yes").count(), 2, "{stdout}");
    // A plain student has no special status; an Apogée step points at its lists.
    assert_eq!(
        stdout.matches("\"special_statuses\":[]").count(),
        2,
        "{stdout}"
    );
    let apogee = &stdout[..stdout.find("Source `pegase`").unwrap_or(stdout.len())];
    assert!(apogee.contains("\"child\":\"LSE:"), "{apogee}");
}

/// A machine with Rust and no PostgreSQL server: the demo, and every command that needs
/// the embedded server, say the one command that installs it, and exit 2.
#[test]
fn without_the_postgresql_server_each_command_says_what_to_install_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let no_server = dir.path().join("no-postgresql-here");
    std::fs::create_dir(&no_server).unwrap();
    let config = dir.path().join("conpere.toml");
    let input = dir.path().join("input");
    let source = format!("[sources.files]\nkind = \"canonical\"\npath = {input:?}\n");
    std::fs::write(&config, source).unwrap();
    let install = if Path::new("/etc/debian_version").exists() {
        "\n\n    apt-get install postgresql\n\n"
    } else {
        "Install them:"
    };
    for args in [
        &["demo", "--students", "3"][..],
        &["sync", "--source", "files"],
        &["db", "status"],
        &["runs", "list"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_conpere"))
            .args(args)
            .env("CONPERE_CONFIG", &config)
            .env("CONPERE_DATA_DIR", dir.path().join("data"))
            .env("CONPERE_DATABASE__PG_BIN_DIR", &no_server)
            .env_remove("CONPERE_DATABASE__URL")
            .stdin(Stdio::null())
            .output()
            .expect("run conpere");
        assert_code(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(install), "{args:?}: {}", text(&output));
    }
}

#[tokio::test]
async fn sync_then_export_gives_the_input_back() {
    let site = Site::new().await;
    let records = university(11, 80);
    site.write_input(&records);
    let output = site.run(&["sync", "--source", "files"]);
    assert_code(&output, 0);
    assert!(text(&output).contains("succeeded"), "{}", text(&output));
    let input = std::fs::read_to_string(site.input().join("university.jsonl")).unwrap();
    assert_same_export(&site.export(), &input, "export");

    // Again, with the source chosen by default (the only one): nothing changes.
    let output = site.run(&["sync", "--full"]);
    assert_code(&output, 0);
    let total = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with("total"))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        &total[2..5],
        ["0", "0", "0"],
        "inserted, updated, deleted: {total:?}"
    );
    let listed = site.run(&["runs", "list"]);
    assert_code(&listed, 0);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        3,
        "{}",
        text(&listed)
    );
}

#[tokio::test]
async fn a_killed_sync_leaves_the_previous_state_and_the_next_run_completes() {
    let site = Site::new().await;
    // Tonight's university replaces last night's entirely: no deletion hold here.
    site.write_config("deletion_hold = 1.0\n");
    let before = university(12, 40);
    site.write_input(&before);
    assert_code(&site.run(&["sync"]), 0);

    let after = university(13, 3000);
    site.write_input(&after);
    let mut child = site
        .command(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it in the middle of its run: while it is copying records into its stage.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let copying: i64 = scalar(
            &site.db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'COPY stage_%'",
        )
        .await;
        if copying > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started copying");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "the child finished before it could be killed: make the input larger"
    );
    let state: String = scalar(
        &site.db,
        "SELECT status FROM sync_run ORDER BY id DESC LIMIT 1",
    )
    .await;
    assert_eq!(state, "running", "the killed run was not caught mid-way");

    assert_same_export(
        &site.export(),
        &export_text("files", &before),
        "the killed run applied something",
    );

    // The server notices the vanished client within seconds and releases the lock.
    let deadline = Instant::now() + Duration::from_secs(30);
    let output = loop {
        let output = site.run(&["sync"]);
        if output.status.code() == Some(0) || Instant::now() > deadline {
            break output;
        }
        assert!(text(&output).contains("in progress"), "{}", text(&output));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_code(&output, 0);
    assert_same_export(&site.export(), &export_text("files", &after), "export");
    let abandoned: String = scalar(&site.db, "SELECT error FROM sync_run WHERE id = 2").await;
    assert!(abandoned.starts_with("abandoned"), "{abandoned}");
}

fn drop_every_third_registration(records: &[Record]) -> Vec<Record> {
    let mut n = 0;
    let dropped: Vec<(i32, String, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Registration(x) => {
                n += 1;
                (n % 3 == 0).then(|| (x.year, x.student.clone(), x.step.clone()))
            }
            _ => None,
        })
        .collect();
    records
        .iter()
        .filter(|r| match r {
            Record::Registration(x) => {
                !dropped.contains(&(x.year, x.student.clone(), x.step.clone()))
            }
            Record::Enrolment(x) => !dropped.contains(&(x.year, x.student.clone(), x.step.clone())),
            _ => true,
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_held_run_exits_3_and_is_approved_from_the_command_line() {
    let site = Site::new().await;
    let records = university(14, 120);
    site.write_input(&records);
    assert_code(&site.run(&["sync"]), 0);
    let complete = site.export();

    let partial = drop_every_third_registration(&records);
    site.write_input(&partial);
    let held = site.run(&["sync"]);
    assert_code(&held, 3);
    assert!(
        text(&held).contains("conpere runs approve 2"),
        "{}",
        text(&held)
    );
    assert_same_export(&site.export(), &complete, "export");
    assert_code(&site.run(&["runs", "show", "2"]), 3);
    assert_code(&site.run(&["runs", "approve", "2", "--by", "dsi"]), 0);
    assert_same_export(&site.export(), &export_text("files", &partial), "export");
    assert_code(&site.run(&["runs", "approve", "2"]), 1);
}

#[tokio::test]
async fn a_dry_run_writes_the_diff_and_applies_nothing() {
    let site = Site::new().await;
    site.write_input(&university(15, 30));
    let diff = site.dir.path().join("diff.jsonl");
    let output = site.run(&["sync", "--dry-run", "--diff", diff.to_str().unwrap()]);
    assert_code(&output, 0);
    assert!(text(&output).contains("dry run"), "{}", text(&output));
    let lines = std::fs::read_to_string(&diff).unwrap();
    assert!(lines.lines().count() > 100);
    assert!(lines.lines().all(|l| l.contains("\"op\":\"insert\"")));
    assert_same_export(&site.export(), "", "export");
}

#[tokio::test]
async fn bad_lines_are_quarantined_with_their_file_and_line() {
    let site = Site::new().await;
    let records = university(16, 30);
    site.write_input(&records);
    let extra = site.input().join("zz-extra.jsonl");
    std::fs::write(
        &extra,
        "{\"type\":\"student\",\"student\":\"0099\",\"family_name\":\"Noël\",\"given_name\":\"Zoé\",\"birth_date\":\"31/02/2004\"}\n\
         {\"type\":\"student\",\"student\":\n",
    )
    .unwrap();
    let output = site.run(&["sync"]);
    assert_code(&output, 0);
    assert!(
        text(&output).contains("2 record(s) quarantined"),
        "{}",
        text(&output)
    );
    let shown = site.run(&["runs", "show", "1"]);
    assert_code(&shown, 0);
    let shown = text(&shown);
    assert!(
        shown.contains("zz-extra.jsonl:1") && shown.contains("zz-extra.jsonl:2"),
        "{shown}"
    );
    assert_same_export(&site.export(), &export_text("files", &records), "export");
}

/// A night with an unreadable line defers the deletions it cannot vouch for, and says
/// so; a night whose drop cannot even be listed is recorded as refused.
#[tokio::test]
async fn deferred_deletions_are_shown_and_a_refused_night_is_recorded() {
    let site = Site::new().await;
    let records = university(17, 20);
    site.write_input(&records);
    assert_code(&site.run(&["sync"]), 0);
    let first = records
        .iter()
        .position(|r| r.kind() == conpere_core::model::Kind::Student)
        .unwrap();
    let mut tonight = records.clone();
    let gone = tonight.remove(first);
    site.write_input(&tonight);
    std::fs::write(
        site.input().join("zz-cut.jsonl"),
        "{\"type\":\"student\",\"student\":\"00\n",
    )
    .unwrap();
    let output = site.run(&["sync"]);
    assert_code(&output, 0);
    let said = "1 deletion of student deferred: 1 line of zz-cut.jsonl could not be read \
                with its key";
    assert!(text(&output).contains(said), "{}", text(&output));
    let shown = text(&site.run(&["runs", "show", "2"]));
    assert!(shown.contains(said), "{shown}");
    assert!(site
        .export()
        .contains(&conpere_core::model::to_export_line("files", &gone)));

    std::fs::remove_dir_all(site.input()).unwrap();
    let output = site.run(&["sync"]);
    assert_code(&output, 1);
    assert!(
        stderr_of(&output).contains("(run #3 refused, nothing read nor applied)"),
        "{}",
        text(&output)
    );
    let listed = text(&site.run(&["runs", "list"]));
    assert!(listed.contains("refused"), "{listed}");
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn configuration_errors_name_the_file_the_key_and_the_fix() {
    let site = Site::new().await;
    site.write_config("paht = \"/tmp\"\n");
    let output = site.run(&["sync"]);
    assert_code(&output, 2);
    let message = stderr_of(&output);
    assert!(
        message.contains("paht")
            && message.contains("conpere.toml")
            && message.contains("known keys"),
        "{message}"
    );

    site.write_config("deletion_hold = \"ten percent\"\n");
    let output = site.run(&["sync"]);
    assert_code(&output, 2);
    assert!(
        stderr_of(&output).contains("deletion_hold"),
        "{}",
        text(&output)
    );

    std::fs::write(
        site.config(),
        format!(
            "[database]\nurl = {:?}\npassword_env = \"CONPERE_TEST_NO_SUCH_VARIABLE\"\n",
            site.db.connection_string
        ),
    )
    .unwrap();
    let output = site.run(&["db", "status"]);
    assert_code(&output, 2);
    assert!(
        stderr_of(&output).contains("CONPERE_TEST_NO_SUCH_VARIABLE"),
        "{}",
        text(&output)
    );

    let missing = Path::new("/nonexistent/conpere.toml");
    let output = site
        .command(&["sync"])
        .env("CONPERE_CONFIG", missing)
        .output()
        .unwrap();
    assert_code(&output, 2);
    assert!(
        stderr_of(&output).contains("conpere init"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn init_writes_a_configuration_that_check_accepts() {
    let site = Site::new().await;
    let path = site.dir.path().join("new.toml");
    let output = site.run(&["init", "--out", path.to_str().unwrap()]);
    assert_code(&output, 0);
    assert_code(&site.run(&["init", "--out", path.to_str().unwrap()]), 2);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("kind = \"canonical\""), "{written}");
    // The written file parses; check reports its (embedded) database and no source.
    let output = site
        .command(&["check"])
        .env("CONPERE_CONFIG", &path)
        .env("CONPERE_DATABASE__URL", &site.db.connection_string)
        .output()
        .unwrap();
    assert_code(&output, 0);
    assert!(
        text(&output).contains("no source configured"),
        "{}",
        text(&output)
    );
    let output = site.run(&["check"]);
    assert_code(&output, 0);
    assert!(
        text(&output).contains("ok      source `files`"),
        "{}",
        text(&output)
    );
}

// ---------------------------------------------------------------------------------------
// Apogée, through its simulator
// ---------------------------------------------------------------------------------------

use conpere_apogee::projection;
use conpere_apogee::simulator::{self, InjectedFault, Simulator, SimulatorConfig};

const APOGEE_PASSWORD_VARIABLE: &str = "CONPERE_TEST_APOGEE_PASSWORD";

/// A site whose source `apogee` reads a simulated Apogée serving `records`.
async fn apogee_site(records: &[Record]) -> (Site, Simulator) {
    let site = Site::new().await;
    let apogee = simulator::start(SimulatorConfig::new(records.to_vec()))
        .await
        .expect("the simulator starts");
    let text = format!(
        "[database]\nurl = {:?}\n\n[sources.apogee]\nkind = \"apogee\"\nbase_url = {:?}\n\
         username = {:?}\npassword_env = \"{APOGEE_PASSWORD_VARIABLE}\"\nyears = [2023, 2024]\n\
         retry_initial_delay_ms = 5\nretry_max_delay_ms = 20\nretries = 2\nrequest_timeout = 20\n",
        site.db.connection_string,
        apogee.base_url(),
        apogee.credentials().0,
    );
    std::fs::write(site.config(), text).unwrap();
    (site, apogee)
}

fn with_password(site: &Site, apogee: &Simulator, args: &[&str]) -> Output {
    site.command(args)
        .env(APOGEE_PASSWORD_VARIABLE, apogee.credentials().1)
        .output()
        .unwrap()
}

// The simulator runs in this process while the test waits on a child process: it needs
// a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apogee_sync_then_export_equals_what_apogee_carries_of_the_university() {
    let records = university(21, 40);
    let (site, apogee) = apogee_site(&records).await;
    let output = with_password(&site, &apogee, &["sync", "--source", "apogee"]);
    assert_code(&output, 0);
    assert_same_export(
        &site.export_of("apogee"),
        &export_text("apogee", &projection::readable(&records)),
        "apogee export",
    );
    // Read-only toward Apogée: nothing but the seven read operations was asked.
    for operation in apogee.operations_called() {
        assert!(operation.starts_with("recuperer"), "{operation}");
    }
    // A second night, nothing changed.
    let output = with_password(&site, &apogee, &["sync", "--source", "apogee"]);
    assert_code(&output, 0);
    assert!(text(&output).contains("succeeded"), "{}", text(&output));
    let history: i64 = scalar(&site.db, "SELECT count(*) FROM history WHERE run_id = 2").await;
    assert_eq!(history, 0);
}

// The simulator runs in this process while the test waits on a child process: it needs
// a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_apogee_fails_the_run_and_applies_nothing() {
    let records = university(22, 30);
    let (site, apogee) = apogee_site(&records).await;
    assert_code(&with_password(&site, &apogee, &["sync"]), 0);
    let before = site.export_of("apogee");

    apogee
        .faults()
        .inject(InjectedFault::server_error().on_operation("recupererIAEtapes_v3"));
    let output = with_password(&site, &apogee, &["sync"]);
    assert_code(&output, 1);
    let message = text(&output);
    assert!(
        message.contains("AdministratifMetier") && message.contains("recupererIAEtapes_v3"),
        "{message}"
    );
    assert!(message.contains("nothing was applied"), "{message}");
    assert_same_export(
        &site.export_of("apogee"),
        &before,
        "a failed run applied something",
    );
    let status: String = scalar(
        &site.db,
        "SELECT status FROM sync_run ORDER BY id DESC LIMIT 1",
    )
    .await;
    assert_eq!(status, "failed");

    apogee.faults().clear();
    assert_code(&with_password(&site, &apogee, &["sync"]), 0);
}

// The simulator runs in this process while the test waits on a child process: it needs
// a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tells_wrong_apogee_credentials_apart() {
    let records = university(23, 10);
    let (site, apogee) = apogee_site(&records).await;
    let output = with_password(&site, &apogee, &["check", "--source", "apogee"]);
    assert_code(&output, 0);
    assert!(
        text(&output).contains("recupererSE_v4"),
        "{}",
        text(&output)
    );
    let output = site
        .command(&["check", "--source", "apogee"])
        .env(APOGEE_PASSWORD_VARIABLE, "not-the-password")
        .output()
        .unwrap();
    assert_code(&output, 1);
    assert!(
        text(&output).contains("authentication refused"),
        "{}",
        text(&output)
    );
    let output = site
        .command(&["check", "--source", "apogee"])
        .output()
        .unwrap();
    assert_code(&output, 2);
    assert!(
        text(&output).contains(APOGEE_PASSWORD_VARIABLE),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn check_shows_the_next_scheduled_run_and_refuses_a_bad_schedule() {
    let site = Site::new().await;
    site.write_config("schedule = \"0 30 2 * * *\"\n");
    let output = site.run(&["check", "--source", "files"]);
    assert_code(&output, 0);
    let out = text(&output);
    assert!(
        out.contains("next run") && out.contains("02:30:00"),
        "{out}"
    );
    site.write_config("schedule = \"30 2 * * *\"\n");
    let output = site.run(&["check", "--source", "files"]);
    assert_code(&output, 2);
    assert!(text(&output).contains("seconds"), "{}", text(&output));
}
