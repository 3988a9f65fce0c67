//! `kind = "apogee"`: the [`Connector`] over Apogée's web services.
//!
//! * `check` fetches each service's `?wsdl`, reports which of the operations conpere
//!   needs it publishes (and other versions of them: the Apogée version shows there),
//!   fails when one is missing or a service cannot be reached, then makes one cheap
//!   authenticated call.
//! * `discover` declares students, structure, registrations and enrolments; a full read
//!   only when `steps = ["*"]`.
//! * `read` streams batches (see [`crate::read`]).

use crate::client::{ApogeeClient, Call, CallError, Operation, Service, PROBE_STUDENT};
use crate::config::{ApogeeConfig, StepScope, SPEC};
use crate::read::{self, ReadPlan};
use conpere_connectors::{
    BatchStream, Capabilities, CheckReport, ConfigError, Connector, ConnectorError, ConnectorSpec,
    Factory, FromSource, ReadRequest, SourceConfig,
};
use conpere_model::Kind;
use conpere_model::Mode;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Builds [`ApogeeConnector`]s.
pub type ApogeeFactory = Factory<ApogeeConnector>;

impl FromSource for ApogeeConnector {
    const SPEC: &'static ConnectorSpec = &SPEC;

    fn from_source(source: &SourceConfig) -> Result<ApogeeConnector, ConfigError> {
        ApogeeConnector::new(ApogeeConfig::from_source(source)?)
    }
}

/// Reads an Apogée instance through its web services, read-only.
#[derive(Debug, Clone)]
pub struct ApogeeConnector {
    config: Arc<ApogeeConfig>,
    client: ApogeeClient,
}

impl ApogeeConnector {
    /// A connector for a checked configuration (contacts nothing).
    pub fn new(config: ApogeeConfig) -> Result<ApogeeConnector, ConfigError> {
        let client = ApogeeClient::new(&config)?;
        Ok(ApogeeConnector {
            config: Arc::new(config),
            client,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ApogeeConfig {
        &self.config
    }

    /// The client (its request counters, for tests and benchmarks).
    pub fn client(&self) -> &ApogeeClient {
        &self.client
    }

    /// Checks one service's WSDL: a report line, and the problems found.
    async fn check_service(&self, service: Service) -> Result<ServiceFeatures, ConnectorError> {
        let published = self.client.wsdl_operations(service).await?;
        Ok(ServiceFeatures::new(service, &published))
    }

    /// One authenticated call that reads nothing: a student number that cannot exist.
    async fn probe(&self) -> Result<String, ConnectorError> {
        let call = Call::directory_identifiers(PROBE_STUDENT);
        match self.client.call(&call).await {
            // "No data" or "no such student": either way Apogée accepted the account.
            Ok(_) | Err(CallError::BadInput { .. }) => Ok(format!(
                "authenticated call {} answered (account `{}`)",
                call.operation(),
                self.client
                    .username(Service::EtudiantMetier)
                    .unwrap_or_default()
            )),
            Err(CallError::Failed(error)) => Err(error),
        }
    }
}

#[async_trait::async_trait]
impl Connector for ApogeeConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let mut details = Vec::new();
        let mut missing = Vec::new();
        for service in Service::ALL {
            let features = self.check_service(service).await?;
            let url = self
                .client
                .url(service)
                .map(crate::client::shown_url)
                .unwrap_or_default();
            details.push(format!("{} at {url}", features.summary()));
            missing.extend(features.missing_messages());
        }
        if !missing.is_empty() {
            return Err(ConnectorError::failed(
                "checking Apogée's web services",
                missing.join("; "),
            ));
        }
        details.push(self.probe().await?);
        Ok(CheckReport { details })
    }

    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        Ok(Capabilities {
            kinds: vec![
                Kind::Student,
                Kind::Node,
                Kind::Edge,
                Kind::Registration,
                Kind::Enrolment,
            ],
            full: self.config.steps == StepScope::All,
            incremental: false,
            snapshot_kinds: Vec::new(),
            years: self.config.years.clone(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        accepted_mode(request.mode, &self.config.steps)?;
        let years = request
            .years
            .clone()
            .unwrap_or_else(|| self.config.years.clone());
        Ok(read::start(ReadPlan {
            client: self.client.clone(),
            config: Arc::clone(&self.config),
            years,
            batch_size: request.batch_size,
        }))
    }
}

/// Which reads make sense: with every step, a full snapshot; with listed steps, a
/// partial read whose records are upserts only (the engine asks for it as
/// "incremental", since the connector declares no full read) — never a full read, which
/// would delete every other step's records.
fn accepted_mode(mode: Mode, steps: &StepScope) -> Result<(), ConnectorError> {
    match (mode, steps) {
        (Mode::Full, StepScope::All) | (Mode::Incremental, StepScope::Listed(_)) => Ok(()),
        (Mode::Full, StepScope::Listed(_)) => Err(ConnectorError::Unsupported(
            "a full read of an Apogée source whose `steps` lists steps: it would delete the \
             records of every other step; set `steps = [\"*\"]` for full reads"
                .into(),
        )),
        (Mode::Incremental, StepScope::All) => Err(ConnectorError::Unsupported(
            "incremental reads of Apogée: its web services have no change feed; run a full read"
                .into(),
        )),
    }
}

/// What a service's WSDL publishes of the operations conpere needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFeatures {
    /// The service.
    pub service: Service,
    /// How many operations the WSDL publishes.
    pub published: usize,
    /// Needed operations it publishes.
    pub found: Vec<Operation>,
    /// Needed operations it does not publish, with the other versions it has of them
    /// (`recupererSE_v3` for `recupererSE_v4` on Apogée ≤ 6.40).
    pub missing: Vec<(Operation, Vec<String>)>,
    /// Other versions of the found operations (newer ones show a newer Apogée).
    pub other_versions: Vec<String>,
}

impl ServiceFeatures {
    /// Compares what the WSDL publishes with what conpere needs of `service`.
    pub fn new(service: Service, published: &BTreeSet<String>) -> ServiceFeatures {
        let mut features = ServiceFeatures {
            service,
            published: published.len(),
            found: Vec::new(),
            missing: Vec::new(),
            other_versions: Vec::new(),
        };
        for operation in service.operations() {
            let versions: Vec<String> = published
                .iter()
                .filter(|name| *name != operation.name() && same_base(name, operation.name()))
                .cloned()
                .collect();
            if published.contains(operation.name()) {
                features.found.push(operation);
                features.other_versions.extend(versions);
            } else {
                features.missing.push((operation, versions));
            }
        }
        features
    }

    /// One line for `conpere check`.
    pub fn summary(&self) -> String {
        let found: Vec<&str> = self.found.iter().map(|op| op.name()).collect();
        let mut line = format!(
            "{}: {} operations published; needed and found: {}",
            self.service,
            self.published,
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        );
        if !self.other_versions.is_empty() {
            line.push_str(&format!(
                " (other versions published: {})",
                self.other_versions.join(", ")
            ));
        }
        line
    }

    /// What to tell the operator about each missing operation.
    pub fn missing_messages(&self) -> Vec<String> {
        let service = self.service;
        self.missing
            .iter()
            .map(|(operation, versions)| {
                if versions.is_empty() {
                    format!(
                        "{service} does not publish {}: check that `base_url` (or \
                         `services.{service}`) points at Apogée's {service} service",
                        operation.name()
                    )
                } else {
                    format!(
                        "{service} publishes {} but not {}, which conpere reads: this Apogée's \
                         web services are of another version than the 6.50 contract; upgrade \
                         them, or point `services.{service}` at an instance that has it",
                        versions.join(", "),
                        operation.name()
                    )
                }
            })
            .collect()
    }
}

/// Whether two operation names are versions of one operation (`recupererSE_v3`,
/// `recupererSE_v4`, `recupererSE`), ignoring case.
fn same_base(a: &str, b: &str) -> bool {
    base_name(a).eq_ignore_ascii_case(base_name(b))
}

/// The name without its `_vN` suffix.
fn base_name(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, version))
            if version.len() > 1
                && version.starts_with(['v', 'V'])
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn features_of_a_current_offre_formation() {
        let features = ServiceFeatures::new(
            Service::OffreFormationMetier,
            &set(&["recupererSE_v3", "recupererSE_v4", "recupererGroupe_v3"]),
        );
        assert_eq!(features.found, [Operation::RecupererSeV4]);
        assert!(features.missing.is_empty());
        let summary = features.summary();
        assert!(
            summary.contains("recupererSE_v4")
                && summary.contains("other versions published: recupererSE_v3"),
            "{summary}"
        );
    }

    #[test]
    fn an_older_apogee_is_named() {
        let features = ServiceFeatures::new(
            Service::OffreFormationMetier,
            &set(&["recupererSE_v3", "recupererSE_v2"]),
        );
        let messages = features.missing_messages();
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].contains("publishes recupererSE_v2, recupererSE_v3 but not recupererSE_v4"),
            "{}",
            messages[0]
        );
        let empty = ServiceFeatures::new(Service::EtudiantMetier, &BTreeSet::new());
        let messages = empty.missing_messages();
        assert_eq!(messages.len(), 3);
        assert!(
            messages[0].contains("services.EtudiantMetier"),
            "{}",
            messages[0]
        );
    }

    #[test]
    fn version_suffixes() {
        assert_eq!(base_name("recupererSE_v4"), "recupererSE");
        assert_eq!(base_name("recupererIAAnnuelles_v2"), "recupererIAAnnuelles");
        assert_eq!(
            base_name("recupererListeEtudiants"),
            "recupererListeEtudiants"
        );
        assert_eq!(base_name("a_b"), "a_b");
        assert!(same_base(
            "recupererInfosAdmEtu_v3",
            "recupererInfosAdmEtu_v4"
        ));
        assert!(!same_base(
            "recupererIAEtapes_v3",
            "recupererIAAnnuelles_v2"
        ));
    }

    #[test]
    fn modes_follow_the_step_scope() {
        let listed = StepScope::Listed(Vec::new());
        assert!(accepted_mode(Mode::Full, &StepScope::All).is_ok());
        assert!(accepted_mode(Mode::Incremental, &listed).is_ok());
        let message = accepted_mode(Mode::Full, &listed).unwrap_err().to_string();
        assert!(message.contains("steps = [\"*\"]"), "{message}");
        let message = accepted_mode(Mode::Incremental, &StepScope::All)
            .unwrap_err()
            .to_string();
        assert!(message.contains("change feed"), "{message}");
    }
}
