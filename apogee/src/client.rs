//! The Apogée web-service client, read-only by construction.
//!
//! [`Operation`] lists the seven operations conpere reads — and nothing else: a
//! [`Call`] can only be built by its constructors, one per operation, with the
//! parameters this crate's README fixes, and [`ApogeeClient::call`] only sends `Call`s.
//! No write operation (`mettreAJour*`, `CreationSEMetier`, `OpiMetier`) nor
//! `recupererNumeroSecuriteSociale` can be expressed, which the tests check.
//!
//! Transport is [`conpere_connectors::http::HttpClient`] (bounded concurrency, rate cap,
//! retries with backoff and jitter); SOAP envelopes and faults are
//! [`conpere_connectors::soap`]'s. Apogée answers "no data" with a
//! `technical.data.nullretrieve.*` fault (→ `Ok(None)`) and a bad input with a
//! `technical.parameter.*` fault (→ [`CallError::BadInput`], for the reader to
//! quarantine); any other fault, HTTP 5xx or transport error is retried, then fails.

use crate::codes::StepCode;
use crate::config::{ApogeeConfig, Endpoint};
pub use crate::services::{Operation, Service, Subject, PROBE_STUDENT};
use conpere_connectors::http::header::{self, HeaderName, HeaderValue};
use conpere_connectors::http::{Auth, HttpClient, HttpStats, Outcome, RequestSpec, Response, Url};
use conpere_connectors::soap::{self, Fault, FaultKind, Param, SoapError, SoapResponse};
use conpere_connectors::xml::{self, Element};
use conpere_connectors::{ConfigError, ConnectorError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;

/// One request to Apogée: an operation of the allow-list and the parameters the
/// README fixes for it. Only the constructors below make one.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    operation: Operation,
    params: Vec<Param>,
    subject: Subject,
}

impl Call {
    /// `recupererSE_v4`: the whole structure of `year` (`_seCritere`: `codAnu` = year,
    /// diploma, step and element codes `tous`).
    pub fn structure(year: i32) -> Call {
        let criteria = [
            ("codAnu", year.to_string()),
            ("codDip", "tous".into()),
            ("codVrsVdi", "tous".into()),
            ("codEtp", "tous".into()),
            ("codVrsVet", "tous".into()),
            ("codElp", "tous".into()),
        ];
        Call {
            operation: Operation::RecupererSeV4,
            params: vec![Param::nested(
                "_seCritere",
                criteria
                    .into_iter()
                    .map(|(name, value)| Param::text(name, value))
                    .collect(),
            )],
            subject: Subject::year(year),
        }
    }

    /// `recupererListeEtudiants`: the students of `step` in `year`.
    pub fn students_of_step(year: i32, step: &StepCode) -> Call {
        let step_item = Param::nested(
            "item",
            vec![
                Param::text("code", step.code.clone()),
                Param::text("listVersion", step.version.clone()),
            ],
        );
        Call {
            operation: Operation::RecupererListeEtudiants,
            params: vec![Param::nested(
                "_parametres",
                vec![
                    Param::text("annee", year.to_string()),
                    Param::nested("listEtapes", vec![step_item]),
                ],
            )],
            subject: Subject::year(year).at_step(step),
        }
    }

    /// `recupererInfosAdmEtu_v4(_codEtu)`: civil status.
    pub fn administrative_identity(student: &str) -> Call {
        Call {
            operation: Operation::RecupererInfosAdmEtuV4,
            params: vec![Param::text("_codEtu", student)],
            subject: Subject::student(student),
        }
    }

    /// `recupererIdentifiantsEtudiant_v2(_codEtu, _temoinRecupAnnu = O)`: directory
    /// e-mail and login.
    pub fn directory_identifiers(student: &str) -> Call {
        Call {
            operation: Operation::RecupererIdentifiantsEtudiantV2,
            params: vec![
                Param::text("_codEtu", student),
                Param::text("_temoinRecupAnnu", "O"),
            ],
            subject: Subject::student(student),
        }
    }

    /// `recupererIAEtapes_v3(_codEtu, _annee)`: step registrations of every state.
    pub fn step_registrations(student: &str, year: i32) -> Call {
        Call {
            operation: Operation::RecupererIaEtapesV3,
            params: student_year(student, "_annee", year),
            subject: Subject::student(student).in_year(year),
        }
    }

    /// `recupererIAAnnuelles_v2(_codEtu, _annee)`: the annual registration.
    pub fn annual_registration(student: &str, year: i32) -> Call {
        Call {
            operation: Operation::RecupererIaAnnuellesV2,
            params: student_year(student, "_annee", year),
            subject: Subject::student(student).in_year(year),
        }
    }

    /// `recupererContratPedagogiqueResultatElpEpr_v6`: the pedagogical registrations of
    /// the student's registration to `step` in `year` (`_sourceRes = Apogee`,
    /// `_codSes = toutes`, `_typeRes = tous`, `_codEtaIae = E`).
    pub fn pedagogical_contract(student: &str, year: i32, step: &StepCode) -> Call {
        let mut params = student_year(student, "_codAnu", year);
        params.extend([
            Param::text("_codEtp", step.code.clone()),
            Param::text("_codVrsVet", step.version.clone()),
            Param::text("_sourceRes", "Apogee"),
            Param::text("_codSes", "toutes"),
            Param::text("_typeRes", "tous"),
            Param::text("_codEtaIae", "E"),
        ]);
        Call {
            operation: Operation::RecupererContratPedagogiqueResultatElpEprV6,
            params,
            subject: Subject::student(student).in_year(year).at_step(step),
        }
    }

    /// The operation called.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// What the call is about.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// `Service.operation (subject)`: the label of errors, logs and quarantine locations.
    pub fn label(&self) -> String {
        format!("{} ({})", self.operation, self.subject)
    }

    /// The SOAP envelope sent.
    pub fn envelope(&self) -> String {
        soap::envelope(
            &self.operation.service().namespace(),
            self.operation.name(),
            &self.params,
        )
    }
}

fn student_year(student: &str, year_param: &'static str, year: i32) -> Vec<Param> {
    vec![
        Param::text("_codEtu", student),
        Param::text(year_param, year.to_string()),
    ]
}

/// Why a call gave no answer.
#[derive(Debug)]
pub enum CallError {
    /// Apogée refused the input (`technical.parameter.*`): retrying will not help; the
    /// reader quarantines the student concerned and goes on.
    BadInput {
        /// `Service.operation (subject)`.
        label: String,
        /// What the call was about.
        subject: Subject,
        /// The fault as received (boxed: it is the rare path, and large).
        fault: Box<Fault>,
    },
    /// Anything else, after retries: the message names the service, the operation, the
    /// (masked) student or step, and what to check.
    Failed(ConnectorError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::BadInput {
                label,
                subject,
                fault,
            } => write!(f, "{label}: {}", refused(subject, fault)),
            CallError::Failed(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

impl From<CallError> for ConnectorError {
    fn from(error: CallError) -> ConnectorError {
        match error {
            CallError::Failed(error) => error,
            CallError::BadInput {
                label,
                subject,
                fault,
            } => ConnectorError::failed(label, refused(&subject, &fault)),
        }
    }
}

/// The message of a bad-input fault, the student number masked.
fn refused(subject: &Subject, fault: &Fault) -> String {
    format!(
        "Apogée refused the input: {}",
        subject.mask(&fault.to_string())
    )
}

/// What the classifier parsed of the last response, so the body is parsed once.
type Parsed = Option<Result<SoapResponse, SoapError>>;

/// The client of one Apogée source: one URL and one `Authorization` per service, one
/// [`HttpClient`] (so concurrency and the rate cap hold across services). Cheap to
/// clone.
#[derive(Clone)]
pub struct ApogeeClient {
    http: HttpClient,
    endpoints: BTreeMap<Service, ServiceEndpoint>,
}

/// Where and as whom one service is called.
#[derive(Clone)]
struct ServiceEndpoint {
    url: Url,
    /// Set per request because credentials may differ by service while the HTTP
    /// client (its concurrency bound) is shared.
    auth: Auth,
    username: String,
}

impl fmt::Debug for ApogeeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: BTreeMap<&str, String> = self
            .endpoints
            .iter()
            .map(|(service, endpoint)| (service.name(), endpoint.url.to_string()))
            .collect();
        f.debug_struct("ApogeeClient")
            .field("http", &self.http)
            .field("endpoints", &urls)
            .finish()
    }
}

impl ApogeeClient {
    /// The client of a resolved configuration (reads the CA bundle; contacts nothing).
    pub fn new(config: &ApogeeConfig) -> Result<ApogeeClient, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            source_name: config.source.clone(),
            message,
        };
        let mut builder = HttpClient::builder(&config.http);
        for (name, value) in config.secret_headers.iter() {
            builder = builder.header(name, value);
        }
        let http = builder.build().map_err(|e| invalid(e.to_string()))?;
        let endpoints = config
            .endpoints
            .iter()
            .map(|endpoint| (endpoint.service, service_endpoint(endpoint)))
            .collect();
        Ok(ApogeeClient { http, endpoints })
    }

    /// Request counters (attempts, retries…) since the client was built.
    pub fn stats(&self) -> HttpStats {
        self.http.stats()
    }

    /// The URL of `service`.
    pub fn url(&self, service: Service) -> Option<&Url> {
        self.endpoints.get(&service).map(|e| &e.url)
    }

    /// The account `service` is called as.
    pub fn username(&self, service: Service) -> Option<&str> {
        self.endpoints.get(&service).map(|e| e.username.as_str())
    }

    fn endpoint(&self, service: Service) -> Result<&ServiceEndpoint, ConnectorError> {
        // Every service has an endpoint (the configuration resolves all four): a miss
        // is a bug, reported rather than panicking.
        self.endpoints.get(&service).ok_or_else(|| {
            ConnectorError::failed(
                service.name(),
                "no URL configured for this service (internal error)",
            )
        })
    }

    /// Sends `call`: `Ok(Some(wrapper))` with the response wrapper, `Ok(None)` when
    /// Apogée says "no data" (`technical.data.nullretrieve.*`), [`CallError::BadInput`]
    /// for `technical.parameter.*`, [`CallError::Failed`] when retries are exhausted or
    /// the failure is permanent (authentication refused, wrong URL…).
    pub async fn call(&self, call: &Call) -> Result<Option<Element>, CallError> {
        let endpoint = self
            .endpoint(call.operation.service())
            .map_err(CallError::Failed)?;
        let request = RequestSpec::post(endpoint.url.clone(), call.label())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static(soap::CONTENT_TYPE),
            )
            .header(
                HeaderName::from_static("soapaction"),
                HeaderValue::from_static(soap::SOAP_ACTION),
            )
            .auth(endpoint.auth.clone())
            .body(call.envelope());
        let parsed: Mutex<Parsed> = Mutex::new(None);
        let classify = |response: &Response| {
            let (outcome, result) = classify(response, call);
            *parsed.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            outcome
        };
        let sent = self.http.send(request, classify).await;
        let parsed = parsed.into_inner().unwrap_or_else(|p| p.into_inner());
        match (sent, parsed) {
            (Err(error), _) => Err(CallError::Failed(masked(error.into(), &call.subject))),
            (Ok(_), Some(result)) => answer(call, result),
            (Ok(_), None) => Err(CallError::Failed(ConnectorError::failed(
                call.label(),
                "no response was classified (internal error)",
            ))),
        }
    }

    /// The operation names `service`'s WSDL (`<url>?wsdl`) publishes.
    pub async fn wsdl_operations(
        &self,
        service: Service,
    ) -> Result<BTreeSet<String>, ConnectorError> {
        let endpoint = self.endpoint(service)?;
        let mut url = endpoint.url.clone();
        url.set_query(Some("wsdl"));
        let label = format!("{service} WSDL ({})", shown_url(&url));
        let request = RequestSpec::get(url, label.clone()).auth(endpoint.auth.clone());
        let response = self.http.send(request, Outcome::by_status).await?;
        let root = xml::parse(&response.body, response.content_type()).map_err(|e| {
            ConnectorError::failed(
                label,
                format!("the WSDL is not readable XML ({e}); check the URL of this service"),
            )
        })?;
        Ok(published_operations(&root))
    }
}

/// A URL for messages: no credentials, no query string beyond `?wsdl`.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot hold credentials: nothing to hide then.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

fn service_endpoint(endpoint: &Endpoint) -> ServiceEndpoint {
    ServiceEndpoint {
        url: endpoint.url.clone(),
        auth: Auth::basic(endpoint.username.clone(), endpoint.password.expose()),
        username: endpoint.username.clone(),
    }
}

/// Sorts a response: "no data" and bad-input faults are answers (the caller reads the
/// fault), other faults and cut bodies are worth a retry, anything that is not SOAP on
/// a 2xx is a wrong URL. Returns the parse with the outcome, so the body is parsed once.
fn classify(response: &Response, call: &Call) -> (Outcome, Result<SoapResponse, SoapError>) {
    let parsed = soap::parse_response(
        &response.body,
        response.content_type(),
        call.operation.name(),
    );
    let success = response.status.is_success();
    let outcome = match &parsed {
        Ok(_) if success => Outcome::Done,
        Ok(_) => Outcome::by_status(response),
        Err(SoapError::Fault(fault)) => match fault.kind() {
            FaultKind::NoData | FaultKind::BadInput => Outcome::Done,
            FaultKind::Other => Outcome::Retry(call.subject.mask(&fault.to_string())),
        },
        // A body cut short (or mangled on the way) may come whole next time.
        Err(error @ SoapError::Xml(_)) => Outcome::Retry(error.to_string()),
        Err(error) if success => Outcome::Fail(format!(
            "{error}; the URL answers but not as Apogée's {} service: check `base_url` or \
             `services.{}`",
            call.operation.service(),
            call.operation.service()
        )),
        Err(_) => Outcome::by_status(response),
    };
    (outcome, parsed)
}

/// The answer of a response the classifier accepted.
fn answer(
    call: &Call,
    parsed: Result<SoapResponse, SoapError>,
) -> Result<Option<Element>, CallError> {
    match parsed {
        Ok(response) => Ok(Some(response.into_wrapper())),
        Err(SoapError::Fault(fault)) if fault.kind() == FaultKind::NoData => Ok(None),
        Err(SoapError::Fault(fault)) if fault.kind() == FaultKind::BadInput => {
            Err(CallError::BadInput {
                label: call.label(),
                subject: call.subject.clone(),
                fault: Box::new(fault),
            })
        }
        Err(error) => Err(CallError::Failed(ConnectorError::failed(
            call.label(),
            call.subject.mask(&error.to_string()),
        ))),
    }
}

/// A connector error with the subject's student number masked in its message (the
/// last fault Apogée sent is quoted and may hold it).
fn masked(error: ConnectorError, subject: &Subject) -> ConnectorError {
    match error {
        ConnectorError::Failed(mut failed) => {
            failed.message = subject.mask(&failed.message);
            ConnectorError::Failed(failed)
        }
        other => other,
    }
}

/// The `name` of every `operation` element of a WSDL document (binding and port type
/// alike), whatever its prefix.
pub fn published_operations(root: &Element) -> BTreeSet<String> {
    let mut operations = BTreeSet::new();
    // An explicit stack: the parser bounds the depth, but no recursion is needed.
    let mut pending = vec![root];
    while let Some(element) = pending.pop() {
        if element.name.eq_ignore_ascii_case("operation") {
            if let Some(name) = element.attribute("name") {
                operations.insert(name.trim().to_string());
            }
        }
        pending.extend(element.children.iter());
    }
    operations
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_connectors::http::StatusCode;

    /// Operations conpere must never call, whatever the version (writes, the NIR).
    const FORBIDDEN_SERVICES: [&str; 2] = ["CreationSEMetier", "OpiMetier"];

    fn every_call() -> Vec<Call> {
        let step = StepCode::new("L2INF", "120");
        vec![
            Call::structure(2024),
            Call::students_of_step(2024, &step),
            Call::administrative_identity("21901234"),
            Call::directory_identifiers("21901234"),
            Call::step_registrations("21901234", 2024),
            Call::annual_registration("21901234", 2024),
            Call::pedagogical_contract("21901234", 2024, &step),
        ]
    }

    #[test]
    fn the_allow_list_is_exactly_the_seven_read_operations() {
        let names: BTreeSet<String> = Operation::ALL.iter().map(|op| op.to_string()).collect();
        let expected: BTreeSet<String> = [
            "OffreFormationMetier.recupererSE_v4",
            "EtudiantMetier.recupererListeEtudiants",
            "EtudiantMetier.recupererInfosAdmEtu_v4",
            "EtudiantMetier.recupererIdentifiantsEtudiant_v2",
            "AdministratifMetier.recupererIAEtapes_v3",
            "AdministratifMetier.recupererIAAnnuelles_v2",
            "PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, expected);
        for op in Operation::ALL {
            let name = op.name();
            assert!(name.starts_with("recuperer"), "{name} is not a read");
            assert!(
                !name.to_ascii_lowercase().starts_with("mettreajour"),
                "{name}"
            );
            assert_ne!(name, "recupererNumeroSecuriteSociale");
            assert!(!FORBIDDEN_SERVICES.contains(&op.service().name()), "{op}");
        }
        // Every call any constructor can make is on the list (a Call has no public
        // field: these constructors are the only way to make one).
        let calls = every_call();
        let called: BTreeSet<Operation> = calls.iter().map(Call::operation).collect();
        assert_eq!(called, Operation::ALL.into_iter().collect());
        for service in Service::ALL {
            assert!(service.operations().count() >= 1, "{service} is used");
            assert!(!FORBIDDEN_SERVICES.contains(&service.name()));
        }
    }

    fn wrapper_of(call: &Call) -> (String, Element, Element) {
        let envelope = call.envelope();
        let root = xml::parse(envelope.as_bytes(), None).unwrap();
        let (operation, wrapper) = soap::parse_request(envelope.as_bytes(), None).unwrap();
        (operation, wrapper, root)
    }

    fn texts(wrapper: &Element) -> Vec<(String, String)> {
        wrapper
            .children
            .iter()
            .map(|c| (c.name.clone(), c.text.clone()))
            .collect()
    }

    #[test]
    fn envelopes_are_qualified_only_at_the_wrapper() {
        for call in every_call() {
            let envelope = call.envelope();
            let service = call.operation().service();
            let expected = format!(
                "xmlns:ns=\"gouv.education.apogee.commun.servicesmetiers.{service}\"><soapenv:Header/>\
                 <soapenv:Body><ns:{}>",
                call.operation().name()
            );
            assert!(envelope.contains(&expected), "{envelope}");
            // Parameters are unqualified: no prefix anywhere but on the wrapper.
            let inner = envelope
                .split_once(&format!("<ns:{}>", call.operation().name()))
                .unwrap()
                .1;
            assert_eq!(inner.matches("<ns:").count(), 0, "{envelope}");
            let (operation, _, _) = wrapper_of(&call);
            assert_eq!(operation, call.operation().name());
        }
    }

    #[test]
    fn parameters_of_each_operation() {
        let step = StepCode::new("L2INF", "120");
        let (_, se, _) = wrapper_of(&Call::structure(2024));
        let criteria = se.child("_seCritere").unwrap();
        assert_eq!(
            texts(criteria),
            [
                ("codAnu", "2024"),
                ("codDip", "tous"),
                ("codVrsVdi", "tous"),
                ("codEtp", "tous"),
                ("codVrsVet", "tous"),
                ("codElp", "tous")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let (_, list, _) = wrapper_of(&Call::students_of_step(2024, &step));
        assert_eq!(list.text_of("_parametres"), None);
        let item = list.path(&["_parametres", "listEtapes", "item"]).unwrap();
        assert_eq!(list.path(&["_parametres", "annee"]).unwrap().text, "2024");
        assert_eq!(
            (item.text_of("code"), item.text_of("listVersion")),
            (Some("L2INF"), Some("120"))
        );

        let pairs = |call: Call| {
            let (_, wrapper, _) = wrapper_of(&call);
            texts(&wrapper)
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            pairs(Call::administrative_identity("21901234")),
            "_codEtu=21901234"
        );
        assert_eq!(
            pairs(Call::directory_identifiers("21901234")),
            "_codEtu=21901234 _temoinRecupAnnu=O"
        );
        assert_eq!(
            pairs(Call::step_registrations("21901234", 2024)),
            "_codEtu=21901234 _annee=2024"
        );
        assert_eq!(
            pairs(Call::annual_registration("21901234", 2024)),
            "_codEtu=21901234 _annee=2024"
        );
        assert_eq!(
            pairs(Call::pedagogical_contract("21901234", 2024, &step)),
            "_codEtu=21901234 _codAnu=2024 _codEtp=L2INF _codVrsVet=120 _sourceRes=Apogee \
             _codSes=toutes _typeRes=tous _codEtaIae=E"
        );
    }

    #[test]
    fn labels_name_service_operation_and_masked_subject() {
        let step = StepCode::new("L2INF", "120");
        assert_eq!(
            Call::administrative_identity("21901234").label(),
            "EtudiantMetier.recupererInfosAdmEtu_v4 (student ******34)"
        );
        assert_eq!(
            Call::pedagogical_contract("21901234", 2024, &step).label(),
            "PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6 (student ******34, year 2024, step L2INF/120)"
        );
        assert_eq!(
            Call::students_of_step(2024, &step).label(),
            "EtudiantMetier.recupererListeEtudiants (year 2024, step L2INF/120)"
        );
        let subject = Subject::student("21901234");
        assert_eq!(
            subject.mask("codEtu 21901234 inconnu"),
            "codEtu ******34 inconnu"
        );
    }

    fn response(status: StatusCode, body: String) -> Response {
        Response::new(status, body.into_bytes())
    }

    fn ns() -> String {
        Service::EtudiantMetier.namespace()
    }

    #[test]
    fn the_classifier_sorts_faults_and_bodies() {
        let call = Call::administrative_identity("21901234");
        let fault = |s: &str| {
            response(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::fault_envelope(&ns(), s, "codEtu 21901234"),
            )
        };
        let (outcome, parsed) = classify(&fault("technical.data.nullretrieve.etudiant"), &call);
        assert_eq!(outcome, Outcome::Done);
        assert!(matches!(answer(&call, parsed), Ok(None)));

        let (outcome, parsed) =
            classify(&fault("technical.parameter.noncoherentinput.codEtu"), &call);
        assert_eq!(outcome, Outcome::Done);
        let error = answer(&call, parsed).unwrap_err();
        assert!(matches!(error, CallError::BadInput { .. }));
        let message = error.to_string();
        assert!(
            message.contains("EtudiantMetier.recupererInfosAdmEtu_v4 (student ******34)"),
            "{message}"
        );
        assert!(!message.contains("21901234"), "{message}");

        let (outcome, _) = classify(&fault("java.lang.NullPointerException"), &call);
        let Outcome::Retry(reason) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.contains("NullPointerException") && !reason.contains("21901234"),
            "{reason}"
        );

        let ok = soap::response_envelope(
            &ns(),
            "recupererInfosAdmEtu_v4",
            "<recupererInfosAdmEtu_v4Return/>",
        );
        let (outcome, parsed) = classify(&response(StatusCode::OK, ok.clone()), &call);
        assert_eq!(outcome, Outcome::Done);
        assert!(matches!(answer(&call, parsed), Ok(Some(_))));

        let cut = ok[..ok.len() - 30].to_string();
        assert!(matches!(
            classify(&response(StatusCode::OK, cut), &call).0,
            Outcome::Retry(_)
        ));

        let page = "<html><body>Portail CAS</body></html>".to_string();
        let Outcome::Fail(reason) = classify(&response(StatusCode::OK, page.clone()), &call).0
        else {
            panic!("a login page on 200 is a wrong URL")
        };
        assert!(reason.contains("services.EtudiantMetier"), "{reason}");
        assert!(matches!(
            classify(&response(StatusCode::BAD_GATEWAY, page.clone()), &call).0,
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(&response(StatusCode::NOT_FOUND, page), &call).0,
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn wsdl_operations_are_found_whatever_the_prefix() {
        let wsdl = r#"<?xml version="1.0" encoding="ISO-8859-15"?>
            <wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/">
              <wsdl:portType name="P"><wsdl:operation name="recupererSE_v3"/></wsdl:portType>
              <wsdl:binding name="B"><wsdl:operation name="recupererSE_v4"><x:operation xmlns:x="urn:soap" soapAction=""/></wsdl:operation></wsdl:binding>
            </wsdl:definitions>"#;
        let root = xml::parse(wsdl.as_bytes(), None).unwrap();
        let found: Vec<String> = published_operations(&root).into_iter().collect();
        assert_eq!(found, ["recupererSE_v3", "recupererSE_v4"]);
    }

    #[test]
    fn services_and_prefixes() {
        for service in Service::ALL {
            assert_eq!(Service::from_name(service.name()), Some(service));
            assert!(service.namespace().ends_with(service.name()));
        }
        assert_eq!(Service::from_name("etudiantmetier"), None);
        let url = Url::parse("https://ws:secret@apogee.example.fr/ws/EtudiantMetier?wsdl").unwrap();
        assert_eq!(
            shown_url(&url),
            "https://apogee.example.fr/ws/EtudiantMetier?wsdl"
        );
    }
}
