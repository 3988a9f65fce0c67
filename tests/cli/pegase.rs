//! Pégase, through its simulator: `conpere sync` then `conpere export` equals what the
//! adapter declares it reads of the university, an incremental night touches exactly the
//! registrations changed, tokens expire mid-run, and `conpere check` tells wrong
//! credentials clearly.
//!
//! The simulator runs in this process while each test waits on a child process: the
//! tests need a worker thread of their own (`multi_thread`).

use super::{assert_code, text, Site};
use conpere_core::model::{to_export_line, Record, RegistrationStatus};
use conpere_pegase::projection;
use conpere_pegase::simulator::{
    self, routes, BearerFaults, InjectedFault, Simulator, SimulatorConfig,
};
use conpere_synth::{SynthConfig, University};
use conpere_tests::{assert_same_export, export_text, scalar};
use std::process::Output;
use std::time::Duration;

pub(super) const PASSWORD_VARIABLE: &str = "CONPERE_TEST_PEGASE_PASSWORD";

/// A site whose source `pegase` reads a simulated Pégase serving `records`.
pub(super) async fn pegase_site(records: &[Record], token_lifetime: Duration) -> (Site, Simulator) {
    let site = Site::new().await;
    let mut config = SimulatorConfig::new(records.to_vec());
    config.token_lifetime = token_lifetime;
    let pegase = simulator::start(config)
        .await
        .expect("the simulator starts");
    let periods: Vec<String> = pegase
        .periods()
        .iter()
        .map(|p| format!("{:?}", p.code))
        .collect();
    let text = format!(
        "[database]\nurl = {:?}\n\n[sources.pegase]\nkind = \"pegase\"\nauth_url = {:?}\n\
         base_url = {:?}\nperiods = [{}]\nusername = {:?}\npassword_env = \"{PASSWORD_VARIABLE}\"\n\
         retry_initial_delay_ms = 5\nretry_max_delay_ms = 20\nretries = 2\nrequest_timeout = 20\n",
        site.db.connection_string,
        pegase.token_url(),
        pegase.base_url(),
        periods.join(", "),
        pegase.credentials().0,
    );
    std::fs::write(site.config(), text).unwrap();
    (site, pegase)
}

fn with_password(site: &Site, password: &str, args: &[&str]) -> Output {
    site.command(args)
        .env(PASSWORD_VARIABLE, password)
        .output()
        .unwrap()
}

pub(super) fn sync(site: &Site, pegase: &Simulator) -> Output {
    with_password(
        site,
        pegase.credentials().1,
        &["sync", "--source", "pegase"],
    )
}

pub(super) fn export(site: &Site) -> String {
    site.export_of("pegase")
}

/// A generated university with every hard case, its records in export order.
fn university(seed: u64, students: usize) -> Vec<Record> {
    let university = University::generate(SynthConfig::new(seed, students));
    assert!(university.hard_cases().is_some(), "seed {seed}: hard cases");
    conpere_tests::university(seed, students)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pegase_sync_then_export_equals_what_pegase_carries_of_the_university() {
    let records = university(31, 40);
    let hard = University::generate(SynthConfig::new(31, 40))
        .hard_cases()
        .unwrap();
    // Tokens live one second and trees come slowly (0.6 s each, a few at a time): the
    // run outlives several tokens.
    let (site, pegase) = pegase_site(&records, Duration::from_secs(1)).await;
    pegase
        .faults()
        .inject(InjectedFault::latency(600).on_route(routes::ODF_TREE));
    let output = sync(&site, &pegase);
    assert_code(&output, 0);
    assert!(pegase.stats().tokens_issued >= 2, "{:?}", pegase.stats());
    let expected = export_text("pegase", &projection::readable(&records));
    let exported = export(&site);
    assert_same_export(&exported, &expected, "pegase export");
    // The hard cases made it: a secondary registration, a cancelled one, a leading zero,
    // an accented name.
    for key in hard
        .double_registration
        .iter()
        .chain([&hard.cancelled_registration])
    {
        let record = records.iter().find(|r| &r.key() == key).unwrap();
        let line = to_export_line("pegase", record);
        assert!(exported.contains(&line), "{line} missing");
    }
    assert!(exported.contains(&format!("\"{}\"", hard.leading_zero_student)));
    assert!(exported.contains(&format!("\"{}\"", hard.accented_student)));

    // A second night, nothing changed: an incremental run that writes nothing.
    pegase.faults().clear();
    let output = sync(&site, &pegase);
    assert_code(&output, 0);
    let mode: String = scalar(&site.db, "SELECT mode FROM sync_run WHERE id = 2").await;
    assert_eq!(mode, "incremental");
    let history: i64 = scalar(&site.db, "SELECT count(*) FROM history WHERE run_id = 2").await;
    assert_eq!(history, 0, "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_sync_touches_exactly_the_registrations_changed() {
    let mut records = university(32, 150);
    let (site, pegase) = pegase_site(&records, Duration::from_secs(60)).await;
    assert_code(&sync(&site, &pegase), 0);

    // 1 % of the registrations change: most gain a special status, one is cancelled.
    let registrations = records
        .iter()
        .filter(|r| matches!(r, Record::Registration(g) if g.status == RegistrationStatus::Active))
        .count();
    let wanted = registrations.div_ceil(100).max(2);
    let mut changed = Vec::new();
    pegase.update_registrations(|r| {
        if changed.len() >= wanted || r.status != RegistrationStatus::Active {
            return false;
        }
        if changed.is_empty() {
            r.status = RegistrationStatus::Cancelled;
        } else {
            r.special_statuses.push("other:PRF777".into());
        }
        changed.push(r.clone());
        true
    });
    assert_eq!(changed.len(), wanted);
    for record in &mut records {
        if let Record::Registration(g) = record {
            if let Some(new) = changed
                .iter()
                .find(|c| c.student == g.student && c.year == g.year && c.step == g.step)
            {
                *g = new.clone();
            }
        }
    }

    let output = sync(&site, &pegase);
    assert_code(&output, 0);
    let mode: String = scalar(&site.db, "SELECT mode FROM sync_run WHERE id = 2").await;
    assert_eq!(mode, "incremental");
    let history: i64 = scalar(&site.db, "SELECT count(*) FROM history WHERE run_id = 2").await;
    assert_eq!(
        history,
        wanted as i64,
        "history rows = changes\n{}",
        text(&output)
    );
    let updated: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM history WHERE run_id = 2 AND kind = 'registration'",
    )
    .await;
    assert_eq!(updated, wanted as i64);
    let cancelled: i64 = scalar(
        &site.db,
        "SELECT count(*) FROM history WHERE run_id = 2 AND after->>'status' = 'cancelled'",
    )
    .await;
    assert_eq!(cancelled, 1);
    assert_same_export(
        &export(&site),
        &export_text("pegase", &projection::readable(&records)),
        "export after the incremental night",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_clearly_on_wrong_pegase_credentials() {
    let records = university(33, 10);
    let (site, pegase) = pegase_site(&records, Duration::from_secs(60)).await;
    let output = with_password(
        &site,
        pegase.credentials().1,
        &["check", "--source", "pegase"],
    );
    assert_code(&output, 0);
    assert!(text(&output).contains("found in ODF"), "{}", text(&output));

    let output = with_password(&site, "not-the-password", &["check", "--source", "pegase"]);
    assert_code(&output, 1);
    let message = text(&output);
    assert!(
        message.contains("refused") && message.contains(pegase.credentials().0),
        "{message}"
    );
    assert!(!message.contains("not-the-password"), "{message}");
}
