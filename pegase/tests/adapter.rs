//! The Pégase adapter against its simulator: full and incremental reads give exactly the
//! records the README's mapping promises, the token is renewed mid-run, wrong credentials
//! fail `check` clearly, only GETs (plus token POSTs) are sent, and the conformance kit
//! passes.

use conpere_connectors::conformance::{read_all, Conformance};
use conpere_connectors::{Connector, ConnectorFactory, ReadRequest, SourceConfig};
use conpere_model::Mode;
use conpere_model::{Item, Record, RegistrationStatus};
use conpere_pegase::simulator::{
    self, routes, BearerFaults, InjectedFault, Simulator, SimulatorConfig,
};
use conpere_pegase::{projection, PegaseFactory};
use conpere_synth::{SynthConfig, University};
use std::collections::BTreeSet;
use std::time::Duration;

const STUDENTS: usize = 60;

fn records() -> Vec<Record> {
    University::generate(SynthConfig::new(7, STUDENTS))
        .records()
        .collect()
}

async fn start(records: &[Record], token_lifetime: Duration) -> Simulator {
    let mut config = SimulatorConfig::new(records.iter().cloned());
    config.token_lifetime = token_lifetime;
    simulator::start(config).await.expect("simulator starts")
}

/// A source for `pegase`, its password in the environment variable `variable`.
fn source(pegase: &Simulator, variable: &str, password: &str, extra: &str) -> SourceConfig {
    std::env::set_var(variable, password);
    let periods: Vec<String> = pegase
        .periods()
        .iter()
        .map(|p| format!("\"{}\"", p.code))
        .collect();
    let toml = format!(
        "[sources.pegase]\nkind = \"pegase\"\nauth_url = \"{}\"\nbase_url = \"{}\"\n\
         periods = [{}]\nusername = \"{}\"\npassword_env = \"{variable}\"\n\
         retry_initial_delay_ms = 10\n{extra}",
        pegase.token_url(),
        pegase.base_url(),
        periods.join(", "),
        pegase.credentials().0,
    );
    SourceConfig::from_toml("pegase", &toml).expect("valid TOML")
}

fn connector(source: &SourceConfig) -> Box<dyn Connector> {
    PegaseFactory::new().build(source).expect("builds")
}

fn request(mode: Mode, cursor: Option<serde_json::Value>) -> ReadRequest {
    ReadRequest {
        mode,
        years: None,
        cursor,
        batch_size: 50,
    }
}

/// What the adapter must give: the README's mapping, as `projection::readable` states it.
fn expected(records: &[Record]) -> Vec<String> {
    let mut expected: Vec<String> = projection::readable(records)
        .iter()
        .map(canonical)
        .collect();
    expected.sort();
    expected
}

/// A record as a comparable string, special statuses sorted (the engine stores them so).
fn canonical(record: &Record) -> String {
    let mut record = record.clone();
    if let Record::Registration(r) = &mut record {
        r.special_statuses.sort();
    }
    format!("{record:?}")
}

/// Asserts equality, showing only the differences.
fn assert_same(read: Vec<String>, expected: Vec<String>) {
    let read_set: BTreeSet<&String> = read.iter().collect();
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    let extra: Vec<_> = read_set.difference(&expected_set).collect();
    let missing: Vec<_> = expected_set.difference(&read_set).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:#?}\nmissing {missing:#?}"
    );
    assert_eq!(read.len(), expected.len(), "duplicates read");
}

fn read_records(items: &[Item]) -> Vec<String> {
    let mut read: Vec<String> = items
        .iter()
        .map(|item| match item {
            Item::Record(record) => canonical(record),
            other => panic!("unexpected item {other:?}"),
        })
        .collect();
    read.sort();
    read
}

/// Only the token route and the read routes were called (the adapter's API client sends
/// only GETs; the simulator serves only GET on the data routes, so every data request
/// was a GET).
fn assert_read_only(pegase: &Simulator) {
    let stats = pegase.stats();
    let routes_seen: BTreeSet<&str> = stats.requests.keys().map(String::as_str).collect();
    let allowed = BTreeSet::from([
        routes::TOKEN,
        routes::INS_FLUX,
        routes::ODF_SPACES,
        routes::ODF_OBJECTS,
        routes::ODF_OBJECT,
        routes::ODF_TREE,
        routes::CHC_OBJECT_CURSUS,
        routes::CHC_TYPE_CURSUS,
    ]);
    assert!(routes_seen.is_subset(&allowed), "{routes_seen:?}");
    assert!(
        stats.requests.contains_key(routes::ODF_TREE),
        "{routes_seen:?}"
    );
}

#[tokio::test]
async fn a_full_read_returns_exactly_the_served_records() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_FULL",
        pegase.credentials().1,
        "",
    );
    let (items, cursor) = read_all(connector(&source).as_ref(), request(Mode::Full, None))
        .await
        .expect("full read");
    assert_same(read_records(&items), expected(&records));
    assert!(cursor.is_some());
    assert_read_only(&pegase);
    assert_eq!(pegase.stats().tokens_issued, 1);
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(1)).await;
    pegase
        .faults()
        .inject(InjectedFault::latency(400).on_route(routes::INS_FLUX));
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_EXPIRY",
        pegase.credentials().1,
        "",
    );
    let connector = connector(&source);
    let mut items = Vec::new();
    // Small pages make a run long enough to outlive several tokens.
    for _ in 0..2 {
        items = read_all(connector.as_ref(), request(Mode::Full, None))
            .await
            .expect("the run completes")
            .0;
    }
    assert_same(read_records(&items), expected(&records));
    assert!(pegase.stats().tokens_issued >= 2, "{:?}", pegase.stats());
    assert_read_only(&pegase);
}

#[tokio::test]
async fn wrong_credentials_fail_check_clearly() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(&pegase, "CONPERE_TEST_PEGASE_WRONG", "not-the-password", "");
    let message = connector(&source).check().await.unwrap_err().to_string();
    assert!(message.contains(pegase.credentials().0), "{message}");
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test]
async fn check_passes_and_reads_one_entry_per_period() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_CHECK",
        pegase.credentials().1,
        "",
    );
    let report = connector(&source).check().await.expect("check passes");
    assert_eq!(report.details.len(), 1 + pegase.periods().len());
    assert_eq!(
        pegase.stats().requests[routes::INS_FLUX],
        pegase.periods().len() as u64
    );
}

/// The university, its simulator, a connector to it (password in `variable`) and the
/// cursor of a first, full read.
async fn read_once(
    variable: &str,
) -> (
    Vec<Record>,
    Simulator,
    Box<dyn Connector>,
    Option<serde_json::Value>,
) {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(&pegase, variable, pegase.credentials().1, "");
    let connector = connector(&source);
    let (_, cursor) = read_all(connector.as_ref(), request(Mode::Full, None))
        .await
        .expect("full read");
    (records, pegase, connector, cursor)
}

#[tokio::test]
async fn an_incremental_read_returns_exactly_the_changes() {
    let (records, pegase, connector, cursor) = read_once("CONPERE_TEST_PEGASE_INCR").await;
    let mut cancelled = Vec::new();
    pegase.update_registrations(|r| {
        if cancelled.len() < 3 && r.status == RegistrationStatus::Active {
            r.status = RegistrationStatus::Cancelled;
            cancelled.push(canonical(&Record::Registration(r.clone())));
            return true;
        }
        false
    });
    cancelled.sort();
    assert_eq!(cancelled.len(), 3);
    let (items, _) = read_all(connector.as_ref(), request(Mode::Incremental, cursor))
        .await
        .expect("incremental read");
    let registrations: Vec<String> = read_records(&items)
        .into_iter()
        .filter(|r| r.starts_with("Registration"))
        .collect();
    assert_eq!(registrations, cancelled);
    assert!(registrations.iter().all(|r| r.contains("Cancelled")));
    // No change feed for the structure and the choices: they are read whole every time.
    let whole = |records: Vec<String>| -> Vec<String> {
        let snapshot = ["Node", "Edge", "Enrolment"];
        records
            .into_iter()
            .filter(|r| snapshot.iter().any(|k| r.starts_with(k)))
            .collect()
    };
    assert_eq!(whole(read_records(&items)), whole(expected(&records)));
    assert_read_only(&pegase);
}

#[tokio::test]
async fn a_read_limited_to_one_year_keeps_the_other_periods_changes_for_later() {
    let (_, pegase, connector, cursor) = read_once("CONPERE_TEST_PEGASE_YEARS").await;
    // One registration changes in each year.
    let mut changed: Vec<(i32, String)> = Vec::new();
    pegase.update_registrations(|r| {
        if r.status == RegistrationStatus::Active && !changed.iter().any(|(y, _)| *y == r.year) {
            r.status = RegistrationStatus::Cancelled;
            changed.push((r.year, canonical(&Record::Registration(r.clone()))));
            return true;
        }
        false
    });
    changed.sort();
    assert_eq!(changed.len(), 2, "{changed:?}");
    let registrations = |items: &[Item]| -> Vec<String> {
        read_records(items)
            .into_iter()
            .filter(|r| r.starts_with("Registration"))
            .collect()
    };
    let only_2024 = ReadRequest {
        years: Some(vec![2024]),
        ..request(Mode::Incremental, cursor)
    };
    let (items, cursor) = read_all(connector.as_ref(), only_2024)
        .await
        .expect("incremental read of 2024");
    assert_eq!(registrations(&items), [changed[1].1.clone()]);
    // The next read of every year still finds 2023's change: its period's position did
    // not move while it was not read.
    let (items, _) = read_all(connector.as_ref(), request(Mode::Incremental, cursor))
        .await
        .expect("incremental read of every year");
    assert_eq!(registrations(&items), [changed[0].1.clone()]);
}

#[tokio::test]
async fn a_backlog_is_walked_in_windows_of_pages_of_at_most_500() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_WINDOWS",
        pegase.credentials().1,
        "window_days = 8\n",
    );
    let periods: serde_json::Map<String, serde_json::Value> = pegase
        .periods()
        .iter()
        .map(|p| {
            // Older than every modification the simulator starts with.
            let mark = chrono::Utc::now().timestamp() - simulator::INITIAL_SPREAD_SECS - 2 * 86_400;
            (
                p.code.clone(),
                serde_json::json!({ "mark": mark, "seen": {} }),
            )
        })
        .collect();
    let cursor = serde_json::json!({ "periods": periods });
    let (items, _) = read_all(
        connector(&source).as_ref(),
        request(Mode::Incremental, Some(cursor)),
    )
    .await
    .expect("incremental read");
    // Everything was modified 1 to 31 days before the start: all of it is in the backlog
    // (and the simulator answers 400 to a `taille` above 500, so success shows the cap
    // held).
    assert_same(read_records(&items), expected(&records));
    // At least four eight-day windows per period (32 days plus the overlap).
    let feed_requests = pegase.stats().requests[routes::INS_FLUX];
    assert!(
        feed_requests >= 4 * pegase.periods().len() as u64,
        "{feed_requests}"
    );
}

#[tokio::test]
async fn a_plain_text_error_is_reported_with_its_correlation_id() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    pegase
        .faults()
        .inject(InjectedFault::server_error().on_route(routes::INS_FLUX));
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_500",
        pegase.credentials().1,
        "retries = 1\n",
    );
    let message = read_all(connector(&source).as_ref(), request(Mode::Full, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("500") && message.contains("correlationId"),
        "{message}"
    );
    assert!(message.contains("non-JSON"), "{message}");
}

#[tokio::test]
async fn the_conformance_kit_passes() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let valid = source(
        &pegase,
        "CONPERE_TEST_PEGASE_KIT",
        pegase.credentials().1,
        "",
    );
    let broken = source(&pegase, "CONPERE_TEST_PEGASE_KIT_BAD", "wrong", "");
    let report = Conformance {
        factory: &PegaseFactory::new(),
        valid,
        broken: vec![broken],
    }
    .run()
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.records > 0);
}

#[tokio::test]
async fn choices_read_by_object_type_equal_choices_read_by_object() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_BY_TYPE",
        pegase.credentials().1,
        "choices_by = \"type\"\n",
    );
    let (items, _) = read_all(connector(&source).as_ref(), request(Mode::Full, None))
        .await
        .expect("full read");
    assert_same(read_records(&items), expected(&records));
    let stats = pegase.stats();
    assert!(!stats.requests.contains_key(routes::CHC_OBJECT_CURSUS));
    // SEMESTRE, UE and EC, once per period.
    let by_type = stats.requests[routes::CHC_TYPE_CURSUS];
    assert_eq!(by_type, 3 * pegase.periods().len() as u64);
}

#[tokio::test]
async fn a_period_unknown_to_odf_fails_check_and_read_naming_it() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let mut source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_PERIOD",
        pegase.credentials().1,
        "",
    );
    let toml = format!(
        "[sources.pegase]\nkind = \"pegase\"\nauth_url = \"{}\"\nbase_url = \"{}\"\n\
         periods = [\"PER-1999\"]\nusername = \"{}\"\npassword_env = \"CONPERE_TEST_PEGASE_PERIOD\"\n",
        pegase.token_url(),
        pegase.base_url(),
        pegase.credentials().0,
    );
    source = SourceConfig::from_toml(&source.name, &toml).expect("valid TOML");
    let connector = connector(&source);
    let check = connector.check().await.unwrap_err().to_string();
    let read = read_all(connector.as_ref(), request(Mode::Full, None))
        .await
        .unwrap_err()
        .to_string();
    for message in [check, read] {
        assert!(
            message.contains("PER-1999") && message.contains(&pegase.periods()[0].code),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_incremental_read_of_registrations_only_leaves_structure_and_choices_alone() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_SCOPE",
        pegase.credentials().1,
        "incremental_scope = \"registrations\"\n",
    );
    let connector = connector(&source);
    let capabilities = connector.discover().await.expect("discover");
    assert!(capabilities.snapshot_kinds.is_empty());
    let (_, cursor) = read_all(connector.as_ref(), request(Mode::Full, None))
        .await
        .expect("full read");
    pegase.reset_stats();
    let changed = pegase.update_registrations(|r| {
        let change = r.student.ends_with('1');
        if change {
            r.special_statuses.push("other:PRF777".into());
        }
        change
    });
    assert!(changed > 0);
    let (items, _) = read_all(connector.as_ref(), request(Mode::Incremental, cursor))
        .await
        .expect("incremental read");
    let read = read_records(&items);
    assert!(read
        .iter()
        .all(|r| r.starts_with("Registration") || r.starts_with("Student")));
    assert_eq!(
        read.iter()
            .filter(|r| r.starts_with("Registration"))
            .count(),
        changed
    );
    let routes_seen: BTreeSet<String> = pegase.stats().requests.keys().cloned().collect();
    assert!(
        routes_seen
            .iter()
            .all(|r| r == routes::INS_FLUX || r == routes::ODF_SPACES),
        "{routes_seen:?}"
    );
}

#[tokio::test]
async fn a_body_cut_on_the_way_is_retried_and_a_lasting_cut_fails_naming_the_call() {
    let records = records();
    let pegase = start(&records, Duration::from_secs(60)).await;
    let source = source(
        &pegase,
        "CONPERE_TEST_PEGASE_CUT",
        pegase.credentials().1,
        "retries = 2\n",
    );
    let connector = connector(&source);
    pegase.faults().inject(
        InjectedFault::truncated_body()
            .on_route(routes::CHC_OBJECT_CURSUS)
            .times(1),
    );
    pegase.faults().inject(
        InjectedFault::truncated_body()
            .on_route(routes::ODF_TREE)
            .times(1),
    );
    let (items, _) = read_all(connector.as_ref(), request(Mode::Full, None))
        .await
        .expect("retried");
    assert_same(read_records(&items), expected(&records));

    pegase
        .faults()
        .inject(InjectedFault::truncated_body().on_route(routes::CHC_OBJECT_CURSUS));
    let message = read_all(connector.as_ref(), request(Mode::Full, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("CHC cursus") && message.contains("not complete JSON"),
        "{message}"
    );
}
