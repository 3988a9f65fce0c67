//! The Apogée simulator over real HTTP: its answers are checked against the published
//! XSDs with `xmllint` (so the simulator cannot drift from the contract), and its
//! authentication, WSDL serving, refusals, fault injection and counters are exercised.
//!
//! Needs the published contract (`shared/specs/apogee/wsdl`, or `CONPERE_APOGEE_SPECS`)
//! and `xmllint` (Debian/Ubuntu: `libxml2-utils`); both missing is a failure, not a skip.

use conpere_apogee::simulator::{self, InjectedFault, Simulator, SimulatorConfig, SoapFaults};
use conpere_connectors::http::{
    header, HttpClient, HttpSettings, Outcome, RequestSpec, Response, StatusCode, Url,
};
use conpere_connectors::soap::{self, FaultKind, Param, SoapError};
use conpere_connectors::xml::XmlError;
use conpere_model::{Record, Regime, Registration, RegistrationStatus};
use conpere_synth::{HardCases, SynthConfig, University};
mod common;

use common::{between, contains, specs, Validator};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SEED: u64 = 7;
const STUDENTS: usize = 30;
const USER: &str = "ws-test";
const PASSWORD: &str = "s3cret";
const NS_PREFIX: &str = "gouv.education.apogee.commun.servicesmetiers.";

// ---------------------------------------------------------------------------------------
// The university and the simulator
// ---------------------------------------------------------------------------------------

/// A generated university, with one student given every special status so that each
/// optional DTO of the contract is written at least once whatever the seed.
struct Fixture {
    records: Vec<Record>,
    hard: HardCases,
    /// The student given every status (and a usual name, no INE, a pending registration).
    special: String,
    /// The student whose name holds "œ", outside Latin-1.
    ligature: String,
}

fn fixture() -> Fixture {
    let university = University::generate(SynthConfig::new(SEED, STUDENTS));
    let hard = university
        .hard_cases()
        .expect("30 students have every hard case");
    let mut records: Vec<Record> = university.records().collect();
    let special = records
        .iter()
        .filter_map(|r| match r {
            Record::Student(s) => Some(s.student.clone()),
            _ => None,
        })
        .nth(5)
        .expect("a sixth student");
    for record in &mut records {
        match record {
            Record::Student(s) if s.student == special => {
                s.usual_name = Some("Dupont-Œuvrard".into());
                s.ine = None;
            }
            Record::Registration(r) if r.student == special => give_every_status(r),
            _ => {}
        }
    }
    let ligature = records
        .iter()
        .find_map(|r| match r {
            Record::Student(s) if s.family_name.contains('œ') => Some(s.student.clone()),
            _ => None,
        })
        .expect("student 3 is named Cœurderoy");
    Fixture {
        records,
        hard,
        special,
        ligature,
    }
}

fn give_every_status(registration: &mut Registration) {
    registration.special_statuses = [
        "disability",
        "distance",
        "employed",
        "high_level_athlete",
        "other:ERASMUS",
    ]
    .map(String::from)
    .to_vec();
    registration.regime = Regime::Other;
    if registration.year == 2024 {
        registration.status = RegistrationStatus::Pending;
    }
}

async fn start(records: Vec<Record>, specs_dir: Option<PathBuf>) -> Simulator {
    simulator::start(SimulatorConfig {
        records,
        username: USER.into(),
        password: PASSWORD.into(),
        specs_dir,
    })
    .await
    .expect("the simulator starts")
}

/// A client that never retries, so every request the test sends is one the server sees.
fn client() -> HttpClient {
    let settings = HttpSettings {
        retries: 0,
        concurrency: 16,
        ..HttpSettings::default()
    };
    HttpClient::builder(&settings)
        .auth(conpere_connectors::http::Auth::basic(USER, PASSWORD))
        .build()
        .expect("client")
}

/// One SOAP call, whatever the status.
async fn call(sim: &Simulator, service: &str, operation: &str, params: &[Param]) -> Response {
    let body = soap::envelope(&format!("{NS_PREFIX}{service}"), operation, params);
    post(sim, service, operation, body).await
}

/// One POST of `body` to a service, whatever the status.
async fn post(sim: &Simulator, service: &str, operation: &str, body: String) -> Response {
    let url = Url::parse(&format!("{}/{service}", sim.base_url())).expect("url");
    let request = RequestSpec::post(url, format!("{service}.{operation}"))
        .header(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(soap::CONTENT_TYPE),
        )
        .header(
            header::HeaderName::from_static("soapaction"),
            header::HeaderValue::from_static(soap::SOAP_ACTION),
        )
        .body(body);
    client()
        .send(request, |_| Outcome::Done)
        .await
        .expect("an HTTP answer")
}

async fn get(url: &str) -> Response {
    let url = Url::parse(url).expect("url");
    client()
        .send(RequestSpec::get(url, "GET"), |_| Outcome::Done)
        .await
        .expect("an HTTP answer")
}

fn text(name: &'static str, value: impl Into<String>) -> Param {
    Param::text(name, value)
}

/// The parsed answer of a successful call.
fn records_of(response: &Response, operation: &str) -> soap::SoapResponse {
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{operation}: {}",
        body_text(response)
    );
    soap::parse_response(&response.body, response.content_type(), operation)
        .unwrap_or_else(|e| panic!("{operation}: {e}"))
}

/// The fault of a failed call.
fn fault_of(response: &Response, operation: &str) -> soap::Fault {
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{operation}"
    );
    match soap::parse_response(&response.body, response.content_type(), operation) {
        Err(SoapError::Fault(fault)) => fault,
        other => panic!("{operation}: expected a fault, got {other:?}"),
    }
}

fn body_text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

// ---------------------------------------------------------------------------------------
// Requests the adapter sends (README)
// ---------------------------------------------------------------------------------------

fn se(year: &str, step: &str) -> Vec<Param> {
    vec![Param::nested(
        "_seCritere",
        vec![
            text("codAnu", year),
            text("codDip", "tous"),
            text("codEtp", step),
            text("codVrsVdi", "tous"),
            text("codVrsVet", "tous"),
            text("codElp", "tous"),
        ],
    )]
}

fn student_list(year: &str, steps: &[(&str, &str)]) -> Vec<Param> {
    let items = steps
        .iter()
        .map(|(code, version)| {
            Param::nested(
                "item",
                vec![text("code", *code), text("listVersion", *version)],
            )
        })
        .collect();
    vec![Param::nested(
        "_parametres",
        vec![text("annee", year), Param::nested("listEtapes", items)],
    )]
}

fn contract(student: &str, year: i32, step: &str) -> Vec<Param> {
    let (code, version) = step_code(step);
    vec![
        text("_codEtu", student),
        text("_codAnu", year.to_string()),
        text("_codEtp", code),
        text("_codVrsVet", version),
        text("_sourceRes", "Apogee"),
        text("_codSes", "toutes"),
        text("_typeRes", "tous"),
        text("_codEtaIae", "E"),
    ]
}

/// `VET:<code>/<version>` → (code, version).
fn step_code(step: &str) -> (&str, &str) {
    step.trim_start_matches("VET:")
        .split_once('/')
        .expect("VET:<code>/<version>")
}

fn registrations(records: &[Record], student: &str) -> Vec<Registration> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Registration(r) if r.student == student => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn key_text(key: &conpere_model::RecordKey, index: usize) -> String {
    match &key.parts[index] {
        conpere_model::KeyPart::Text(text) => text.clone(),
        conpere_model::KeyPart::Year(year) => year.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_operation_answers_what_the_xsds_allow_for_the_hard_cases() {
    let fixture = fixture();
    let sim = start(fixture.records.clone(), Some(specs())).await;
    let mut validator = Validator::new();
    let hard = &fixture.hard;

    let repeated_step = key_text(&hard.repeater[0], 2);
    let repeated_code = step_code(&repeated_step).0;
    for (year, step) in [("2024", "tous"), ("2023", repeated_code), ("tous", "tous")] {
        let response = call(
            &sim,
            "OffreFormationMetier",
            "recupererSE_v4",
            &se(year, step),
        )
        .await;
        records_of(&response, "recupererSE_v4");
        validator.add(
            "OffreFormationMetier",
            &format!("SE {year} {step}"),
            &response,
        );
    }

    let double_step = key_text(&hard.double_registration[0], 2);
    let (code, version) = step_code(&double_step);
    for (year, steps) in [("2024", vec![(code, version)]), ("2023", vec![])] {
        let response = call(
            &sim,
            "EtudiantMetier",
            "recupererListeEtudiants",
            &student_list(year, &steps),
        )
        .await;
        records_of(&response, "recupererListeEtudiants");
        validator.add("EtudiantMetier", &format!("list {year}"), &response);
    }

    let students = [
        key_text(&hard.double_registration[0], 1),
        key_text(&hard.cancelled_registration, 1),
        key_text(&hard.repeater[0], 1),
        hard.accented_student.clone(),
        fixture.ligature.clone(),
        hard.leading_zero_student.clone(),
        fixture.special.clone(),
    ];
    for student in &students {
        check_student(&sim, &mut validator, &fixture.records, student).await;
    }
    validator.check();
}

/// Every per-student operation for one student, queued for validation.
async fn check_student(
    sim: &Simulator,
    validator: &mut Validator,
    records: &[Record],
    student: &str,
) {
    let calls: [(&str, &str, Vec<Param>); 3] = [
        (
            "EtudiantMetier",
            "recupererInfosAdmEtu_v4",
            vec![text("_codEtu", student)],
        ),
        (
            "EtudiantMetier",
            "recupererIdentifiantsEtudiant_v2",
            vec![text("_codEtu", student), text("_temoinRecupAnnu", "O")],
        ),
        (
            "AdministratifMetier",
            "recupererIAEtapes_v3",
            vec![text("_codEtu", student), text("_annee", "toutes")],
        ),
    ];
    for (service, operation, params) in calls {
        let response = call(sim, service, operation, &params).await;
        records_of(&response, operation);
        validator.add(service, &format!("{operation} {student}"), &response);
    }
    let registrations = registrations(records, student);
    for year in [2023, 2024] {
        if !registrations.iter().any(|r| r.year == year) {
            continue;
        }
        let params = [text("_codEtu", student), text("_annee", year.to_string())];
        let response = call(
            sim,
            "AdministratifMetier",
            "recupererIAAnnuelles_v2",
            &params,
        )
        .await;
        records_of(&response, "recupererIAAnnuelles_v2");
        validator.add(
            "AdministratifMetier",
            &format!("IAA {student} {year}"),
            &response,
        );
    }
    for registration in registrations
        .iter()
        .filter(|r| r.status != RegistrationStatus::Cancelled)
    {
        let params = contract(student, registration.year, &registration.step);
        let operation = "recupererContratPedagogiqueResultatElpEpr_v6";
        let response = call(sim, "PedagogiqueMetier", operation, &params).await;
        records_of(&response, operation);
        let what = format!(
            "contract {student} {} {}",
            registration.year, registration.step
        );
        validator.add("PedagogiqueMetier", &what, &response);
    }
}

#[tokio::test]
async fn answers_carry_the_readme_mapping() {
    let fixture = fixture();
    let sim = start(fixture.records.clone(), Some(specs())).await;
    let hard = &fixture.hard;

    // Double registration: two IAE, one of them first.
    let double = key_text(&hard.double_registration[0], 1);
    let params = [text("_codEtu", double.as_str()), text("_annee", "2023")];
    let response = call(&sim, "AdministratifMetier", "recupererIAEtapes_v3", &params).await;
    let answer = records_of(&response, "recupererIAEtapes_v3");
    let firsts: Vec<&str> = answer
        .records()
        .filter_map(|r| r.text_of("etapePremiere"))
        .collect();
    assert_eq!(firsts, ["O", "N"]);

    // Carried over: an item acquired the year before.
    let carried = &hard.carried_over_enrolment;
    let (student, step, node) = (
        key_text(carried, 1),
        key_text(carried, 2),
        key_text(carried, 3),
    );
    let year: i32 = key_text(carried, 0).parse().unwrap();
    let operation = "recupererContratPedagogiqueResultatElpEpr_v6";
    let response = call(
        &sim,
        "PedagogiqueMetier",
        operation,
        &contract(&student, year, &step),
    )
    .await;
    let answer = records_of(&response, operation);
    let item = answer
        .records()
        .find(|r| r.path(&["elp", "codElp"]).and_then(|e| e.value()) == node.strip_prefix("ELP:"))
        .expect("the carried-over element");
    let previous = (year - 1).to_string();
    assert_eq!(
        item.path(&["resultatsElp", "item"])
            .and_then(|i| i.text_of("codAnu")),
        Some(previous.as_str())
    );

    // Accents, ligatures and a birth date at midnight in Paris, in one of its two forms.
    let params = [text("_codEtu", fixture.ligature.as_str())];
    let response = call(&sim, "EtudiantMetier", "recupererInfosAdmEtu_v4", &params).await;
    let answer = records_of(&response, "recupererInfosAdmEtu_v4");
    let info = answer.records().next().unwrap();
    assert_eq!(info.text_of("nomPatronymique"), Some("Cœurderoy"));
    let birth = info.text_of("dateNaissance").unwrap();
    assert!(
        birth.ends_with("T00:00:00+01:00")
            || birth.ends_with("T00:00:00+02:00")
            || birth.ends_with("T23:00:00.000Z")
            || birth.ends_with("T22:00:00.000Z"),
        "{birth}"
    );

    // Every special status where the README puts it.
    let special = fixture.special.as_str();
    let response = call(
        &sim,
        "EtudiantMetier",
        "recupererInfosAdmEtu_v4",
        &[text("_codEtu", special)],
    )
    .await;
    let answer = records_of(&response, "recupererInfosAdmEtu_v4");
    let info = answer.records().next().unwrap();
    assert!(info.path(&["handicap", "codeHandicap"]).is_some());
    assert_eq!(info.text_of("nomUsuel"), Some("Dupont-Œuvrard"));
    assert!(info.child("numeroINE").unwrap().is_nil());
    let params = [text("_codEtu", special), text("_annee", "2024")];
    let response = call(
        &sim,
        "AdministratifMetier",
        "recupererIAAnnuelles_v2",
        &params,
    )
    .await;
    let answer = records_of(&response, "recupererIAAnnuelles_v2");
    let annual = answer.records().next().unwrap();
    assert_eq!(
        annual
            .path(&["regimeIns", "codRgi"])
            .and_then(|e| e.value()),
        Some("9")
    );
    assert_eq!(
        annual.path(&["profil", "code"]).and_then(|e| e.value()),
        Some("ERASMUS")
    );
    assert!(annual.path(&["sportifHautNiveau", "codSportif"]).is_some());
    assert!(annual.path(&["quotiteTrav", "codeQuotite"]).is_some());
    let response = call(&sim, "AdministratifMetier", "recupererIAEtapes_v3", &params).await;
    let answer = records_of(&response, "recupererIAEtapes_v3");
    let step = answer.records().next().unwrap();
    assert_eq!(
        step.path(&["etatIae", "codeEtatIAE"])
            .and_then(|e| e.value()),
        Some("P")
    );
    assert_eq!(step.text_of("inscriptionTeleEnseignement"), Some("O"));

    // The structure: a mandatory list first, then the choice lists.
    let step = key_text(&hard.double_registration[0], 2);
    let response = call(
        &sim,
        "OffreFormationMetier",
        "recupererSE_v4",
        &se("2024", step_code(&step).0),
    )
    .await;
    let answer = records_of(&response, "recupererSE_v4");
    let lists: Vec<&str> = answer
        .records()
        .flat_map(|d| {
            d.path(&[
                "listVersionDiplome",
                "item",
                "offreFormation",
                "listEtape",
                "item",
                "listVersionEtape",
                "item",
                "listListeElementPedagogi",
            ])
        })
        .flat_map(|l| l.children_named("item"))
        .filter_map(|l| l.text_of("typListElp"))
        .collect();
    assert_eq!(lists.first(), Some(&"O"), "{lists:?}");
    assert!(lists[1..].iter().all(|t| *t == "X"), "{lists:?}");
}

#[tokio::test]
async fn latin1_answers_are_valid_and_lose_nothing() {
    let fixture = fixture();
    let sim = start(fixture.records.clone(), Some(specs())).await;
    let mut validator = Validator::new();
    sim.faults().inject(InjectedFault::latin1());
    let student = fixture.ligature.as_str();

    let operation = "recupererInfosAdmEtu_v4";
    let response = call(
        &sim,
        "EtudiantMetier",
        operation,
        &[text("_codEtu", student)],
    )
    .await;
    assert_eq!(
        response.content_type(),
        Some("text/xml; charset=ISO-8859-1")
    );
    assert!(response
        .body
        .starts_with(br#"<?xml version="1.0" encoding="ISO-8859-1"?>"#));
    assert!(
        contains(&response.body, b"C&#339;urderoy"),
        "œ as a character reference"
    );
    assert!(
        std::str::from_utf8(&response.body).is_err(),
        "Latin-1 bytes, not UTF-8"
    );
    let answer = records_of(&response, operation);
    let info = answer.records().next().unwrap();
    assert_eq!(info.text_of("nomPatronymique"), Some("Cœurderoy"));
    validator.add("EtudiantMetier", "Latin-1 infos", &response);

    let response = call(
        &sim,
        "OffreFormationMetier",
        "recupererSE_v4",
        &se("2024", "tous"),
    )
    .await;
    records_of(&response, "recupererSE_v4");
    validator.add("OffreFormationMetier", "Latin-1 SE", &response);

    let response = call(
        &sim,
        "EtudiantMetier",
        operation,
        &[text("_codEtu", "99999999")],
    )
    .await;
    fault_of(&response, operation);
    validator.add("EtudiantMetier", "Latin-1 fault", &response);
    validator.check();
}

#[tokio::test]
async fn no_data_and_bad_input_are_faults_of_the_declared_shape() {
    let fixture = fixture();
    let sim = start(fixture.records, Some(specs())).await;
    let mut validator = Validator::new();

    let operation = "recupererInfosAdmEtu_v4";
    let response = call(
        &sim,
        "EtudiantMetier",
        operation,
        &[text("_codEtu", "99999999")],
    )
    .await;
    let fault = fault_of(&response, operation);
    assert_eq!(fault.kind(), FaultKind::NoData);
    assert!(
        fault.string.starts_with("technical.data.nullretrieve."),
        "{fault}"
    );
    validator.add("EtudiantMetier", "unknown student", &response);

    let response = call(
        &sim,
        "EtudiantMetier",
        operation,
        &[text("_codEtu", "12AB")],
    )
    .await;
    let fault = fault_of(&response, operation);
    assert_eq!(fault.string, "technical.parameter.noncoherentinput.codEtu");
    assert_eq!(fault.kind(), FaultKind::BadInput);

    let student = key_text(&fixture.hard.cancelled_registration, 1);
    let params = [text("_codEtu", student.as_str()), text("_annee", "1999")];
    let operation = "recupererIAAnnuelles_v2";
    let response = call(&sim, "AdministratifMetier", operation, &params).await;
    let fault = fault_of(&response, operation);
    assert_eq!(fault.string, "technical.data.nullretrieve.findIAA");
    validator.add("AdministratifMetier", "no IAA that year", &response);

    let params = [
        text("_codEtu", student.as_str()),
        text("_annee", "l'an dernier"),
    ];
    let response = call(&sim, "AdministratifMetier", operation, &params).await;
    assert_eq!(
        fault_of(&response, operation).string,
        "technical.parameter.noncoherentinput.annee"
    );

    // A cancelled registration has no pedagogical contract.
    let cancelled = &fixture.hard.cancelled_registration;
    let year: i32 = key_text(cancelled, 0).parse().unwrap();
    let operation = "recupererContratPedagogiqueResultatElpEpr_v6";
    let params = contract(&student, year, &key_text(cancelled, 2));
    let response = call(&sim, "PedagogiqueMetier", operation, &params).await;
    assert_eq!(fault_of(&response, operation).kind(), FaultKind::NoData);

    let response = call(
        &sim,
        "OffreFormationMetier",
        "recupererSE_v4",
        &se("1999", "tous"),
    )
    .await;
    assert_eq!(
        fault_of(&response, "recupererSE_v4").string,
        "technical.data.nullretrieve.recupererse"
    );
    validator.check();
}

#[tokio::test]
async fn unreadable_requests_get_a_fault_not_a_panic() {
    let sim = start(fixture().records, None).await;
    let nested = |inner: &str| {
        format!(
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
             <soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
        )
    };
    let bodies = [
        "not XML at all".to_owned(),
        "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>".to_owned(),
        nested("<ns:recupererSE_v4 xmlns:ns=\"x\"><_seCritere><codAnu>20"),
        nested("<ns:recupererSE_v4 xmlns:ns=\"x\"/>"),
        nested("<ns:recupererListeEtudiants xmlns:ns=\"x\"><_parametres/></ns:recupererListeEtudiants>"),
        nested(&"<a>".repeat(400)),
    ];
    for body in bodies {
        let response = post(&sim, "OffreFormationMetier", "?", body.clone()).await;
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        let error = soap::parse_response(&response.body, response.content_type(), "?").unwrap_err();
        let SoapError::Fault(fault) = error else {
            panic!("{body}: expected a fault, got {error:?}");
        };
        assert!(fault.string.starts_with("technical."), "{body}: {fault}");
    }
    let stats = sim.stats();
    assert_eq!(stats.requests.get("(unreadable)"), Some(&4), "{stats:?}");
    assert_eq!(stats.total, 6);
}

#[tokio::test]
async fn operations_outside_the_seven_are_refused_and_counted() {
    let sim = start(fixture().records, Some(specs())).await;
    let refused = [
        ("EtudiantMetier", "mettreAJourAdressesEtudiant"),
        ("EtudiantMetier", "recupererNumeroSecuriteSociale"),
        ("EtudiantMetier", "recupererAdressesEtudiant_v2"),
        ("CreationSEMetier", "creerSE"),
        ("OpiMetier", "mettreAJourDonneesOpi_v10"),
        // A served operation posted to the wrong service.
        ("EtudiantMetier", "recupererSE_v4"),
    ];
    for (service, operation) in refused {
        let response = call(&sim, service, operation, &[text("_codEtu", "1")]).await;
        let fault = fault_of(&response, operation);
        assert_eq!(
            fault.string, "technical.operation.notallowed",
            "{service}.{operation}"
        );
    }
    let stats = sim.stats();
    assert_eq!(stats.requests["mettreAJourAdressesEtudiant"], 1);
    assert_eq!(stats.requests["recupererSE_v4"], 1);
    assert_eq!(stats.total, 6);
    assert!(sim
        .operations_called()
        .contains(&"recupererNumeroSecuriteSociale".to_owned()));
}

/// A raw HTTP/1.1 exchange, to see the 401 and its headers as sent.
async fn raw_post(sim: &Simulator, authorization: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = soap::envelope(
        &format!("{NS_PREFIX}EtudiantMetier"),
        "recupererInfosAdmEtu_v4",
        &[],
    );
    let mut request = format!(
        "POST /services/EtudiantMetier HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        sim.address(),
        body.len()
    );
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = tokio::net::TcpStream::connect(sim.address()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn soap_calls_need_the_basic_credentials() {
    use base64::Engine as _;
    let sim = start(fixture().records, None).await;
    let basic = |credentials: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    };
    for authorization in [
        None,
        Some(basic("ws-test:wrong")),
        Some(basic("intrus:s3cret")),
    ] {
        let answer = raw_post(&sim, authorization.as_deref()).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{answer}"
        );
    }
    let answer = raw_post(&sim, Some(&basic("ws-test:s3cret"))).await;
    assert!(
        answer.starts_with("HTTP/1.1 500"),
        "an answer (a fault: no _codEtu): {answer}"
    );
    let stats = sim.stats();
    assert_eq!((stats.unauthorized, stats.total), (3, 4));
    assert_eq!(stats.requests.get("recupererInfosAdmEtu_v4"), Some(&1));
}

#[tokio::test]
async fn wsdl_is_served_with_its_address_and_its_imports_resolve() {
    let sim = start(fixture().records, Some(specs())).await;
    let wsdl_url = format!("{}/EtudiantMetier?wsdl", sim.base_url());
    let response = get(&wsdl_url).await;
    assert_eq!(response.status, StatusCode::OK);
    let wsdl = encoding_rs::ISO_8859_15
        .decode(&response.body)
        .0
        .into_owned();
    let address = format!("location=\"{}/EtudiantMetier\"", sim.base_url());
    assert!(wsdl.contains(&address), "{wsdl}");

    // Impl → abstract → schemas, each resolved relative to the document importing it.
    let import = between(&wsdl, "location=\"abstract/", "\"").expect("the abstract import");
    let abstract_url = Url::parse(&wsdl_url)
        .unwrap()
        .join(&format!("abstract/{import}"))
        .unwrap();
    let response = get(abstract_url.as_str()).await;
    assert_eq!(response.status, StatusCode::OK, "{abstract_url}");
    let abstract_wsdl = String::from_utf8_lossy(&response.body).into_owned();
    let schema = between(&abstract_wsdl, "schemaLocation=\"", "\"").expect("a schema import");
    let schema_url = abstract_url.join(schema).unwrap();
    let response = get(schema_url.as_str()).await;
    assert_eq!(response.status, StatusCode::OK, "{schema_url}");
    assert!(
        body_text(&response).contains("<complexType"),
        "{schema_url}"
    );
    assert!(
        schema_url.path().starts_with("/services/schemas/"),
        "{schema_url}"
    );

    let root_schemas = format!("http://{}/schemas/WebBaseException.xsd", sim.address());
    assert_eq!(get(&root_schemas).await.status, StatusCode::OK);
    let missing = format!("{}/abstract/Nope.wsdl", sim.base_url());
    assert_eq!(get(&missing).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_specs_a_generated_wsdl_lists_the_served_operations() {
    let sim = start(fixture().records, None).await;
    let response = get(&format!("{}/PedagogiqueMetier?wsdl", sim.base_url())).await;
    assert_eq!(response.status, StatusCode::OK);
    let wsdl = body_text(&response);
    assert!(wsdl.contains("name=\"recupererContratPedagogiqueResultatElpEpr_v6\""));
    assert!(wsdl.contains(&format!(
        "location=\"{}/PedagogiqueMetier\"",
        sim.base_url()
    )));
    let response = get(&format!(
        "{}/abstract/PedagogiqueMetier.wsdl",
        sim.base_url()
    ))
    .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn injected_faults_apply_where_and_as_often_as_asked() {
    let fixture = fixture();
    let sim = start(fixture.records, None).await;
    let student = fixture.hard.accented_student.clone();
    let other = fixture.special.clone();
    let operation = "recupererIAEtapes_v3";
    let params = |s: &str| vec![text("_codEtu", s), text("_annee", "toutes")];

    // HTTP 500 remoteerror, once, then normal again.
    sim.faults().inject(
        InjectedFault::server_error()
            .on_operation(operation)
            .times(1),
    );
    let response = call(&sim, "AdministratifMetier", operation, &params(&student)).await;
    let fault = fault_of(&response, operation);
    assert_eq!(
        (fault.string.as_str(), fault.kind()),
        ("technical.remoteerror", FaultKind::Other)
    );
    let response = call(&sim, "AdministratifMetier", operation, &params(&student)).await;
    records_of(&response, operation);

    // A SOAP fault for one student only.
    let bad = "technical.parameter.noncoherentinput.codEtu";
    sim.faults()
        .inject(InjectedFault::soap_fault(bad).for_student(student.as_str()));
    let response = call(&sim, "AdministratifMetier", operation, &params(&student)).await;
    assert_eq!(fault_of(&response, operation).string, bad);
    let response = call(&sim, "AdministratifMetier", operation, &params(&other)).await;
    records_of(&response, operation);
    sim.faults().clear();

    // A body cut in the middle, its Content-Length matching what was sent.
    sim.faults()
        .inject(InjectedFault::truncated_body().times(1));
    let response = call(&sim, "AdministratifMetier", operation, &params(&student)).await;
    let length = response
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    assert_eq!(length, Some(response.body.len().to_string().as_str()));
    let error =
        soap::parse_response(&response.body, response.content_type(), operation).unwrap_err();
    assert!(
        matches!(error, SoapError::Xml(XmlError::Truncated { .. })),
        "{error:?}"
    );

    // Latency on every response.
    sim.faults().inject(InjectedFault::latency(150));
    let started = Instant::now();
    let response = call(&sim, "AdministratifMetier", operation, &params(&student)).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    records_of(&response, operation);
    assert_eq!(sim.faults().active().len(), 1);
}

#[tokio::test]
async fn requests_in_flight_are_counted() {
    let fixture = fixture();
    let sim = start(fixture.records, None).await;
    sim.faults().inject(InjectedFault::latency(300));
    let student = fixture.hard.accented_student.as_str();
    let params = [text("_codEtu", student)];
    let calls = (0..6).map(|_| call(&sim, "EtudiantMetier", "recupererInfosAdmEtu_v4", &params));
    let responses = futures::future::join_all(calls).await;
    assert!(responses.iter().all(|r| r.status == StatusCode::OK));
    let stats = sim.stats();
    assert_eq!(stats.max_in_flight, 6, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.requests["recupererInfosAdmEtu_v4"], 6);
    sim.reset_stats();
    assert_eq!(sim.stats().max_in_flight, 0);
    sim.shutdown().await;
}
