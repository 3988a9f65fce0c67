//! The Apogée adapter against the simulated Apogée: a generated university read back
//! through the web services, faults retried or quarantined, concurrency bounded, and
//! nothing but the seven read operations called.

use conpere_apogee::client::Operation;
use conpere_apogee::connector::ApogeeFactory;
use conpere_apogee::projection;
use conpere_apogee::simulator::{self, InjectedFault, Simulator, SimulatorConfig, SoapFaults};
use conpere_connectors::conformance::{read_all, Conformance};
use conpere_connectors::{Connector, ConnectorError, ConnectorFactory, ReadRequest, SourceConfig};
use conpere_model::Mode;
use conpere_model::{export_order, Edge, Item, Kind, Node, NodeKind, Record, Rejected};
use conpere_synth::{SynthConfig, University};

/// The variable holding the simulator's password for every test (all use the default).
const PASSWORD_VARIABLE: &str = "CONPERE_TEST_APOGEE_SIMULATOR_PASSWORD";

async fn simulated(students: usize) -> (Vec<Record>, Simulator) {
    let university = University::generate(SynthConfig::new(20_240, students));
    let records: Vec<Record> = university.records().collect();
    let apogee = simulator::start(SimulatorConfig::new(records.clone()))
        .await
        .expect("the simulator starts");
    (records, apogee)
}

/// A source on the simulator; retries are fast so fault tests stay quick.
fn source(apogee: &Simulator, extra: &str) -> SourceConfig {
    let (username, password) = apogee.credentials();
    std::env::set_var(PASSWORD_VARIABLE, password);
    SourceConfig::from_toml(
        "apogee",
        &format!(
            "[sources.apogee]\nkind = \"apogee\"\nyears = [2023, 2024]\nbase_url = \"{}\"\n\
             username = \"{username}\"\npassword_env = \"{PASSWORD_VARIABLE}\"\n\
             retry_initial_delay_ms = 5\nretry_max_delay_ms = 20\n{extra}",
            apogee.base_url()
        ),
    )
    .expect("the test configuration parses")
}

fn connector(source: &SourceConfig) -> Box<dyn Connector> {
    ApogeeFactory::new()
        .build(source)
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn read(connector: &dyn Connector) -> Result<Vec<Item>, ConnectorError> {
    let request = ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 97,
    };
    read_all(connector, request).await.map(|(items, _)| items)
}

fn sorted(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
    let mut records: Vec<Record> = records.into_iter().collect();
    records.iter_mut().for_each(Record::normalize);
    records.sort_by(export_order);
    records
}

fn records_of(items: &[Item]) -> Vec<Record> {
    sorted(items.iter().filter_map(|item| match item {
        Item::Record(record) => Some(record.clone()),
        _ => None,
    }))
}

fn rejects(items: &[Item]) -> Vec<&Rejected> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Rejected(rejected) => Some(rejected),
            _ => None,
        })
        .collect()
}

/// Equal record lists, or a message naming the first difference (not two huge dumps).
fn assert_same(read: &[Record], expected: &[Record]) {
    if read == expected {
        return;
    }
    let missing = expected.iter().find(|r| !read.contains(r));
    let extra = read.iter().find(|r| !expected.contains(r));
    panic!(
        "read {} records, expected {}; first expected record not read: {missing:?}; first \
         record read that was not expected: {extra:?}",
        read.len(),
        expected.len()
    );
}

fn student_of(record: &Record) -> Option<&str> {
    match record {
        Record::Student(r) => Some(&r.student),
        Record::Registration(r) => Some(&r.student),
        Record::Enrolment(r) => Some(&r.student),
        Record::Result(r) => Some(&r.student),
        Record::Node(_) | Record::Edge(_) => None,
    }
}

#[tokio::test]
async fn a_university_round_trips_through_the_web_services() {
    let (generated, apogee) = simulated(30).await;
    let connector = connector(&source(&apogee, ""));

    let report = connector.check().await.unwrap_or_else(|e| panic!("{e}"));
    let details = report.details.join("\n");
    assert!(details.contains("recupererSE_v4"), "{details}");
    assert!(details.contains("authenticated call"), "{details}");

    let items = read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rejects(&items).is_empty(), "{:?}", rejects(&items));
    let expected = sorted(projection::readable(&generated));
    assert_same(&records_of(&items), &expected);
    // The comparison covers every kind read, the hard cases among them.
    for kind in projection::KINDS {
        assert!(
            expected.iter().any(|r| r.kind() == kind),
            "no {kind} expected"
        );
    }
    let deep_edge = expected.iter().any(
        |r| matches!(r, Record::Edge(e) if e.parent.starts_with("ELP:") && e.position.is_none()),
    );
    let via = expected
        .iter()
        .any(|r| matches!(r, Record::Enrolment(e) if e.via.is_some()));
    assert!(
        deep_edge && via,
        "structure below the first level and choices are compared"
    );
    // Every list is a node: each step points at lists only, among them its mandatory list
    // (kind other), which holds the step's semesters.
    let steps: Vec<&Node> = (expected.iter())
        .filter_map(|r| match r {
            Record::Node(n) if n.kind == NodeKind::Step => Some(n),
            _ => None,
        })
        .collect();
    for step in &steps {
        let children: Vec<&Edge> = (expected.iter())
            .filter_map(|r| match r {
                Record::Edge(e) if e.year == step.year && e.parent == step.node => Some(e),
                _ => None,
            })
            .collect();
        assert!(
            children.iter().all(|e| e.child.starts_with("LSE:")),
            "{children:?}"
        );
        let mandatory = format!("LSE:{}OBL", step.code);
        assert!(children.iter().any(|e| e.child == mandatory), "{mandatory}");
    }
    let mandatory_list = expected.iter().any(
        |r| matches!(r, Record::Node(n) if n.kind == NodeKind::Other && n.node.starts_with("LSE:")),
    );
    assert!(!steps.is_empty() && mandatory_list);
    // Statuses come from the code tables only: a plain student has none (ordinary profile
    // `NO`, work quota `0`, a second registration), and the profile codes no default
    // table maps are counted in the summary, not stored.
    let plain = expected
        .iter()
        .any(|r| matches!(r, Record::Registration(r) if r.special_statuses.is_empty() && !r.main));
    assert!(plain, "a plain second registration is compared");
    let notes: Vec<&String> = (items.iter())
        .filter_map(|item| match item {
            Item::Note(note) => Some(note),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("profiles: code `ECH` is in no entry: ")),
        "{notes:?}"
    );
    assert!(
        !notes
            .iter()
            .any(|n| n.contains("`NO`") || n.contains("work_quotas")),
        "{notes:?}"
    );

    let called = apogee.operations_called();
    let allowed: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    assert!(
        called.iter().all(|op| allowed.contains(&op.as_str())),
        "{called:?}"
    );
    apogee.shutdown().await;
}

#[tokio::test]
async fn the_conformance_kit_passes() {
    let (_, apogee) = simulated(12).await;
    let valid = source(&apogee, "");
    let wrong_url = SourceConfig::from_toml(
        "apogee",
        &format!(
            "[sources.apogee]\nkind = \"apogee\"\nyears = [2024]\nbase_url = \"{}/nowhere\"\n\
             username = \"ws-conpere\"\npassword_env = \"{PASSWORD_VARIABLE}\"\nretries = 0\n",
            apogee.base_url()
        ),
    )
    .unwrap();
    let report = Conformance {
        factory: &ApogeeFactory::new(),
        valid,
        broken: vec![wrong_url],
    }
    .run()
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.records > 0);
    apogee.shutdown().await;
}

#[tokio::test]
async fn transient_faults_are_retried() {
    let (generated, apogee) = simulated(10).await;
    let connector = connector(&source(&apogee, ""));
    let faults = apogee.faults();
    faults.inject(
        InjectedFault::server_error()
            .on_operation("recupererSE_v4")
            .times(1),
    );
    faults.inject(
        InjectedFault::server_error()
            .on_operation("recupererIAEtapes_v3")
            .times(1),
    );
    faults.inject(
        InjectedFault::truncated_body()
            .on_operation("recupererInfosAdmEtu_v4")
            .times(1),
    );
    faults.inject(InjectedFault::latin1().on_operation("recupererInfosAdmEtu_v4"));

    let items = read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rejects(&items).is_empty(), "{:?}", rejects(&items));
    assert_same(
        &records_of(&items),
        &sorted(projection::readable(&generated)),
    );
    // Two years, one structure each, plus the retried one.
    let stats = apogee.stats();
    assert_eq!(stats.requests.get("recupererSE_v4"), Some(&3), "{stats:?}");
    apogee.shutdown().await;
}

#[tokio::test]
async fn a_parameter_fault_quarantines_one_student_and_the_read_goes_on() {
    let (generated, apogee) = simulated(20).await;
    let connector = connector(&source(&apogee, ""));
    let victim = generated
        .iter()
        .find_map(|r| match r {
            Record::Student(s) => Some(s.student.clone()),
            _ => None,
        })
        .expect("a student");
    apogee.faults().inject(
        InjectedFault::soap_fault("technical.parameter.noncoherentinput.codEtu")
            .on_operation("recupererIAEtapes_v3")
            .for_student(&victim),
    );

    let items = read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rejected = rejects(&items);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let rejected = rejected[0];
    assert_eq!(rejected.kind, Some(Kind::Student));
    assert_eq!(
        rejected.key.as_ref().map(|k| k.to_string()),
        Some(format!("student {victim}"))
    );
    let location = rejected.location.as_deref().unwrap_or_default();
    assert!(
        location.starts_with("AdministratifMetier.recupererIAEtapes_v3 (student **"),
        "{location}"
    );
    assert!(!location.contains(&victim) && !rejected.reason.contains(&victim));
    assert!(
        rejected
            .payload
            .contains("technical.parameter.noncoherentinput.codEtu"),
        "{}",
        rejected.payload
    );

    // Everyone else's people records are read as usual; none of the victim's is.
    let people = |records: Vec<Record>| -> Vec<Record> {
        records
            .into_iter()
            .filter(|r| student_of(r).is_some_and(|s| s != victim))
            .collect()
    };
    let read = records_of(&items);
    assert!(read.iter().all(|r| student_of(r) != Some(victim.as_str())));
    assert_same(
        &people(read),
        &people(sorted(projection::readable(&generated))),
    );
    apogee.shutdown().await;
}

#[tokio::test]
async fn an_unexpected_soap_fault_is_retried_and_a_no_data_fault_is_empty() {
    let (generated, apogee) = simulated(10).await;
    let connector = connector(&source(&apogee, ""));
    // Another kind of fault (here a remote error of the service) is retried like a 500.
    apogee.faults().inject(
        InjectedFault::soap_fault("technical.remoteerror.database")
            .on_operation("recupererIAAnnuelles_v2")
            .times(2),
    );
    let items = read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_same(
        &records_of(&items),
        &sorted(projection::readable(&generated)),
    );

    // "No data" for one student's directory identifiers: no e-mail, no login, no error.
    let student = generated
        .iter()
        .find_map(|r| match r {
            Record::Student(s) if s.email.is_some() => Some(s.student.clone()),
            _ => None,
        })
        .expect("a student with an e-mail");
    apogee.faults().clear();
    apogee.faults().inject(
        InjectedFault::soap_fault("technical.data.nullretrieve.etudiant")
            .on_operation("recupererIdentifiantsEtudiant_v2")
            .for_student(&student),
    );
    let items = read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rejects(&items).is_empty(), "{:?}", rejects(&items));
    let read_back = records_of(&items)
        .into_iter()
        .find_map(|r| match r {
            Record::Student(s) if s.student == student => Some(s),
            _ => None,
        })
        .expect("the student is still read");
    assert_eq!((read_back.email, read_back.login), (None, None));
    apogee.shutdown().await;
}

#[tokio::test]
async fn a_lasting_failure_fails_the_read_with_a_message_that_names_the_call() {
    let (_, apogee) = simulated(5).await;
    let connector = connector(&source(&apogee, "retries = 1\n"));
    apogee
        .faults()
        .inject(InjectedFault::server_error().on_operation("recupererInfosAdmEtu_v4"));

    let error = read(connector.as_ref()).await.unwrap_err().to_string();
    assert!(
        error.contains("EtudiantMetier.recupererInfosAdmEtu_v4 (student ")
            && error.contains("2 attempts"),
        "{error}"
    );
    let digits = error
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    assert!(
        !digits.contains("0000"),
        "no student number in clear: {error}"
    );
    apogee.shutdown().await;
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    let (_, apogee) = simulated(16).await;
    let connector = connector(&source(&apogee, "concurrency = 3\n"));
    apogee.faults().inject(InjectedFault::latency(15));
    apogee.reset_stats();

    read(connector.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stats = apogee.stats();
    assert!(stats.max_in_flight <= 3, "{stats:?}");
    assert!(stats.max_in_flight >= 2, "the bound was reached: {stats:?}");
    apogee.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_such() {
    let (_, apogee) = simulated(3).await;
    std::env::set_var("CONPERE_TEST_APOGEE_WRONG_PASSWORD", "not-the-password");
    let source = SourceConfig::from_toml(
        "apogee",
        &format!(
            "[sources.apogee]\nkind = \"apogee\"\nyears = [2024]\nbase_url = \"{}\"\n\
             username = \"ws-conpere\"\npassword_env = \"CONPERE_TEST_APOGEE_WRONG_PASSWORD\"\n",
            apogee.base_url()
        ),
    )
    .unwrap();
    let error = connector(&source).check().await.unwrap_err().to_string();
    assert!(
        error.contains("authentication refused") && error.contains("password_env"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(
        apogee.stats().unauthorized <= 1,
        "never retried: {:?}",
        apogee.stats()
    );
    apogee.shutdown().await;
}

#[tokio::test]
async fn listed_steps_give_a_partial_read() {
    let (generated, apogee) = simulated(20).await;
    let step = generated
        .iter()
        .find_map(|r| match r {
            Record::Registration(r) if r.year == 2024 => Some(r.step.clone()),
            _ => None,
        })
        .expect("a registration in 2024");
    let code = step.trim_start_matches("VET:");
    let connector = connector(&source(&apogee, &format!("steps = [\"{code}\"]\n")));
    let capabilities = connector.discover().await.unwrap();
    assert!(!capabilities.full && !capabilities.incremental);
    assert!(
        read(connector.as_ref()).await.is_err(),
        "no full read of a partial scope"
    );

    let request = ReadRequest {
        mode: Mode::Incremental,
        years: Some(vec![2024]),
        cursor: None,
        batch_size: 50,
    };
    let (items, _) = read_all(connector.as_ref(), request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let registrations: Vec<Record> = records_of(&items)
        .into_iter()
        .filter(|r| matches!(r, Record::Registration(_)))
        .collect();
    assert!(!registrations.is_empty());
    assert!(registrations
        .iter()
        .all(|r| matches!(r, Record::Registration(r) if r.step == step && r.year == 2024)));
    apogee.shutdown().await;
}
