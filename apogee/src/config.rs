//! The settings of an Apogée source (`kind = "apogee"`), typed and checked.
//!
//! ```toml
//! [sources.apogee]
//! kind = "apogee"
//! years = [2024]
//! base_url = "https://apogee.example.fr/wsapogee/services"   # service URL = base_url/<Service>
//! username = "ws-conpere"
//! password_env = "APOGEE_WS_PASSWORD"
//! steps = ["*"]                      # or ["L2INF/120", …]: a partial read, which never deletes
//! concurrency = 4                    # and every other HTTP setting (timeouts, retries, ca_file…)
//!
//! [sources.apogee.services]          # a URL per service, when they do not follow base_url
//! PedagogiqueMetier = "https://apo-ws.univ.fr/pedagogiqueMetier"
//!
//! [sources.apogee.headers_env]       # secret headers (API gateway keys): name = variable
//! "X-Gravitee-Api-Key" = "APOGEE_GATEWAY_KEY"
//!
//! [sources.apogee.regimes]           # code tables, merged over the defaults
//! "4" = "continuing"
//! ```
//!
//! A service may have its own account: `etudiant_metier_username` with
//! `etudiant_metier_password_env` (or `_file`), and likewise `offre_formation_metier_`,
//! `administratif_metier_` and `pedagogique_metier_`.

use crate::codes::{CodeTables, StepCode};
use crate::services::Service;
use conpere_connectors::http::{http_url, HttpSettings, Url};
use conpere_connectors::{ConfigError, ConnectorSpec, FieldSpec, Secret, SourceConfig};
use conpere_model::{NodeKind, Regime, RegistrationStatus};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A service's own account: the username key.
const fn service_username(name: &'static str, service: &'static str) -> FieldSpec {
    FieldSpec::new(name, false, false, service, "\"ws-conpere-ped\"")
}

/// A service's own account: the password key (a secret).
const fn service_password(name: &'static str, service: &'static str) -> FieldSpec {
    FieldSpec::new(name, false, true, service, "\"APOGEE_PED_PASSWORD\"")
}

/// The configuration keys of an Apogée source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    kind: "apogee",
    description: "Apogée (Amue) SOAP web services, read-only: structure, students, registrations",
    fields: &[
        FieldSpec::new(
            "base_url",
            true,
            false,
            "URL under which the services live: each is called at <base_url>/<Service>",
            "\"https://apogee.example.fr/wsapogee/services\"",
        ),
        FieldSpec::new(
            "services",
            false,
            false,
            "a URL per service when it does not follow base_url (OffreFormationMetier, \
             EtudiantMetier, AdministratifMetier, PedagogiqueMetier)",
            "{ PedagogiqueMetier = \"https://apo-ws.univ.fr/pedagogiqueMetier\" }",
        ),
        FieldSpec::new(
            "username",
            true,
            false,
            "web-service account (HTTP Basic) used for every service without its own",
            "\"ws-conpere\"",
        ),
        FieldSpec::new(
            "password",
            true,
            true,
            "password of `username`",
            "\"APOGEE_WS_PASSWORD\"",
        ),
        service_username(
            "offre_formation_metier_username",
            "own account for OffreFormationMetier (with offre_formation_metier_password_env)",
        ),
        service_password(
            "offre_formation_metier_password",
            "password of offre_formation_metier_username",
        ),
        service_username(
            "etudiant_metier_username",
            "own account for EtudiantMetier (with etudiant_metier_password_env)",
        ),
        service_password(
            "etudiant_metier_password",
            "password of etudiant_metier_username",
        ),
        service_username(
            "administratif_metier_username",
            "own account for AdministratifMetier (with administratif_metier_password_env)",
        ),
        service_password(
            "administratif_metier_password",
            "password of administratif_metier_username",
        ),
        service_username(
            "pedagogique_metier_username",
            "own account for PedagogiqueMetier (with pedagogique_metier_password_env)",
        ),
        service_password(
            "pedagogique_metier_password",
            "password of pedagogique_metier_username",
        ),
        FieldSpec::new(
            "headers_env",
            false,
            false,
            "secret headers (API-gateway keys): header name = environment variable holding its value",
            "{ \"X-Gravitee-Api-Key\" = \"APOGEE_GATEWAY_KEY\" }",
        ),
        FieldSpec::new(
            "headers_file",
            false,
            false,
            "secret headers: header name = file holding its value",
            "{ \"X-Gravitee-Api-Key\" = \"/etc/conpere/gateway-key\" }",
        ),
        FieldSpec::new(
            "steps",
            false,
            false,
            "steps to read, as COD_ETP/COD_VRS_VET, or [\"*\"] for every step of the year \
             (a list makes the read partial: it never deletes)",
            "[\"*\"]",
        ),
        FieldSpec::new(
            "regimes",
            false,
            false,
            "régime codes (codRgi) → initial, continuing, apprenticeship or other; merged \
             over the defaults 1, 2, 3",
            "{ \"4\" = \"continuing\" }",
        ),
        FieldSpec::new(
            "iae_states",
            false,
            false,
            "step-registration states (codeEtatIAE) → active, cancelled or pending; merged \
             over the defaults E, A, R, P",
            "{ \"S\" = \"cancelled\" }",
        ),
        FieldSpec::new(
            "profiles",
            false,
            false,
            "profile codes (profil/code) → special statuses, \"\" for none; merged over the \
             defaults NO (none: the ordinary profile), ART, AID, ELU, SCV. A code of no entry \
             gives no status and is counted in the run summary",
            "{ \"ERA\" = \"other:ERA\" }",
        ),
        FieldSpec::new(
            "work_quotas",
            false,
            false,
            "work quota codes (quotiteTrav/codeQuotite) → special statuses, \"\" for none; \
             merged over the defaults 0 (none: not employed), 1 and 2 (employed). A code of no \
             entry gives no status and is counted in the run summary",
            "{ \"3\" = \"employed\" }",
        ),
        FieldSpec::new(
            "elp_natures",
            false,
            false,
            "element natures (codNatureElp) → semester, unit, element or other; merged over \
             the defaults SEM, UE, EC, MAT",
            "{ \"ECUE\" = \"element\" }",
        ),
        FieldSpec::new(
            "exemption_results",
            false,
            false,
            "result types (codTre) that mean \"exempted\"; replaces the default list",
            "[\"DIS\"]",
        ),
    ],
    shared_fields: &[HttpSettings::FIELDS],
};

fn default_steps() -> Vec<String> {
    vec![ALL_STEPS.to_string()]
}

/// The `steps` value meaning every step of the year.
const ALL_STEPS: &str = "*";

/// The settings as written (before checks and secret resolution).
#[derive(Deserialize)]
struct RawSettings {
    base_url: String,
    #[serde(default)]
    services: BTreeMap<String, String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    offre_formation_metier_username: Option<String>,
    #[serde(default)]
    etudiant_metier_username: Option<String>,
    #[serde(default)]
    administratif_metier_username: Option<String>,
    #[serde(default)]
    pedagogique_metier_username: Option<String>,
    #[serde(default)]
    headers_env: BTreeMap<String, String>,
    #[serde(default)]
    headers_file: BTreeMap<String, PathBuf>,
    #[serde(default = "default_steps")]
    steps: Vec<String>,
    #[serde(default)]
    regimes: BTreeMap<String, Regime>,
    #[serde(default)]
    iae_states: BTreeMap<String, RegistrationStatus>,
    #[serde(default)]
    profiles: BTreeMap<String, String>,
    #[serde(default)]
    work_quotas: BTreeMap<String, String>,
    #[serde(default)]
    elp_natures: BTreeMap<String, NodeKind>,
    #[serde(default)]
    exemption_results: Option<Vec<String>>,
    #[serde(flatten)]
    http: HttpSettings,
}

impl RawSettings {
    fn service_username(&self, service: Service) -> Option<&str> {
        match service {
            Service::OffreFormationMetier => self.offre_formation_metier_username.as_deref(),
            Service::EtudiantMetier => self.etudiant_metier_username.as_deref(),
            Service::AdministratifMetier => self.administratif_metier_username.as_deref(),
            Service::PedagogiqueMetier => self.pedagogique_metier_username.as_deref(),
        }
    }
}

/// Which steps a read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepScope {
    /// Every step `recupererSE_v4` gives for the year: a full read.
    All,
    /// These steps only: a partial read, which never deletes.
    Listed(Vec<StepCode>),
}

impl StepScope {
    /// Whether registrations to `step` are in scope.
    pub fn covers(&self, step: &StepCode) -> bool {
        match self {
            StepScope::All => true,
            StepScope::Listed(steps) => steps.contains(step),
        }
    }
}

/// Where and as whom one service is called.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The service.
    pub service: Service,
    /// Its URL.
    pub url: Url,
    /// HTTP Basic account.
    pub username: String,
    /// Its password.
    pub password: Secret,
}

/// Headers whose values are secrets (API-gateway keys). `Debug` shows names only.
#[derive(Clone, Default)]
pub struct SecretHeaders(Vec<(String, String)>);

impl SecretHeaders {
    /// (name, value) pairs, for the one place that sends them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl fmt::Debug for SecretHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// The checked configuration of an Apogée source, secrets resolved.
#[derive(Debug, Clone)]
pub struct ApogeeConfig {
    /// The source's name.
    pub source: String,
    /// Academic years to read when the run does not say (`years`, required).
    pub years: Vec<i32>,
    /// Steps to read.
    pub steps: StepScope,
    /// One per service, in [`Service::ALL`] order.
    pub endpoints: Vec<Endpoint>,
    /// Secret headers from `headers_env` / `headers_file`.
    pub secret_headers: SecretHeaders,
    /// HTTP settings (concurrency, rate cap, timeouts, retries, CA bundle…).
    pub http: HttpSettings,
    /// Code tables, defaults merged with the configured entries.
    pub tables: CodeTables,
    /// The institution's time zone, in which dates sent as instants are read.
    pub timezone: chrono_tz::Tz,
}

impl ApogeeConfig {
    /// Reads and checks `source`; resolves secrets. Contacts nothing.
    pub fn from_source(source: &SourceConfig) -> Result<ApogeeConfig, ConfigError> {
        let raw: RawSettings = source.settings()?;
        let invalid = |message: String| source.invalid(message);
        raw.http.validate().map_err(|e| invalid(e.to_string()))?;
        let years =
            match &source.common.years {
                Some(years) if !years.is_empty() => years.clone(),
                _ => return Err(invalid(
                    "`years` is required for an Apogée source (e.g. `years = [2024]`): its web \
                     services cannot list the years they serve"
                        .into(),
                )),
            };
        Ok(ApogeeConfig {
            source: source.name.clone(),
            years,
            steps: step_scope(&raw.steps).map_err(invalid)?,
            endpoints: endpoints(source, &raw)?,
            secret_headers: secret_headers(source, &raw)?,
            tables: tables(&raw).map_err(invalid)?,
            timezone: source.institution_timezone()?,
            http: raw.http,
        })
    }
}

fn step_scope(steps: &[String]) -> Result<StepScope, String> {
    let all = steps.iter().any(|s| s.trim() == ALL_STEPS);
    match (all, steps.len()) {
        (true, 1) => return Ok(StepScope::All),
        (true, _) => {
            return Err(
                "`steps`: \"*\" (every step) cannot be mixed with step codes; write either \
                 [\"*\"] or a list such as [\"L2INF/120\"]"
                    .into(),
            )
        }
        (false, 0) => {
            return Err("`steps` is empty: write [\"*\"] for every step of the year".into())
        }
        _ => {}
    }
    let mut listed = Vec::new();
    for text in steps {
        let step = StepCode::parse(text).ok_or_else(|| {
            format!(
                "`steps`: `{text}` is not a step version: write it as COD_ETP/COD_VRS_VET \
                 (e.g. \"L2INF/120\"), or use [\"*\"] for every step of the year"
            )
        })?;
        if !listed.contains(&step) {
            listed.push(step);
        }
    }
    Ok(StepScope::Listed(listed))
}

fn endpoints(source: &SourceConfig, raw: &RawSettings) -> Result<Vec<Endpoint>, ConfigError> {
    let invalid = |message: String| source.invalid(message);
    if let Some(unknown) = raw
        .services
        .keys()
        .find(|k| Service::from_name(k).is_none())
    {
        return Err(invalid(format!(
            "`services`: unknown service `{unknown}`; the services conpere calls are {}",
            Service::ALL.map(Service::name).join(", ")
        )));
    }
    let base = raw.base_url.trim().trim_end_matches('/');
    // Every URL first: a malformed table is reported before any secret is looked up.
    let mut urls = Vec::new();
    for service in Service::ALL {
        let (key, text) = match raw.services.get(service.name()) {
            Some(url) => (format!("services.{service}"), url.trim().to_string()),
            None => ("base_url".to_string(), format!("{base}/{}", service.name())),
        };
        let url = http_url(&text)
            .map_err(|reason| invalid(format!("`{key}`: {text} is not a usable URL: {reason}")))?;
        urls.push((service, url));
    }
    let mut default_password = None;
    let mut endpoints = Vec::new();
    for (service, url) in urls {
        let (username, password) = credentials(source, raw, service, &mut default_password)?;
        endpoints.push(Endpoint {
            service,
            url,
            username,
            password,
        });
    }
    Ok(endpoints)
}

/// The service's own account, else the source's (whose password is resolved once).
fn credentials(
    source: &SourceConfig,
    raw: &RawSettings,
    service: Service,
    default_password: &mut Option<Secret>,
) -> Result<(String, Secret), ConfigError> {
    let prefix = service.config_prefix();
    let own_password = source.secret(&format!("{prefix}_password"))?;
    match (raw.service_username(service), own_password) {
        (Some(username), Some(password)) => Ok((username.to_string(), password)),
        (Some(_), None) => Err(ConfigError::NoSecret {
            source_name: source.name.clone(),
            key: format!("{prefix}_password"),
        }),
        (None, Some(_)) => Err(source.invalid(format!(
            "`{prefix}_password_env` (or `_file`) is set without `{prefix}_username`: set the \
             account it belongs to"
        ))),
        (None, None) => {
            let username = raw.username.clone().ok_or_else(|| {
                source.invalid(format!(
                    "`username` is required (the web-service account), unless every service \
                     has its own (`{prefix}_username`…)"
                ))
            })?;
            let password = match default_password {
                Some(password) => password.clone(),
                None => default_password
                    .insert(source.required_secret("password")?)
                    .clone(),
            };
            Ok((username, password))
        }
    }
}

/// Resolves `headers_env` and `headers_file`.
fn secret_headers(source: &SourceConfig, raw: &RawSettings) -> Result<SecretHeaders, ConfigError> {
    let mut headers = Vec::new();
    for (name, variable) in &raw.headers_env {
        let value = std::env::var(variable).ok().filter(|v| !v.is_empty());
        let value = value.ok_or_else(|| {
            source.invalid(format!(
                "header `{name}` is read from the environment variable {variable} \
                 (`headers_env`), which is not set; export {variable} before running conpere"
            ))
        })?;
        headers.push((name.clone(), value));
    }
    for (name, path) in &raw.headers_file {
        let value = std::fs::read_to_string(path).map_err(|e| {
            source.invalid(format!(
                "header `{name}` is read from {} (`headers_file`), which cannot be read: {e}",
                path.display()
            ))
        })?;
        headers.push((
            name.clone(),
            value.trim_end_matches(['\n', '\r']).to_string(),
        ));
    }
    Ok(SecretHeaders(headers))
}

/// The README's tables with the configured entries merged over them.
fn tables(raw: &RawSettings) -> Result<CodeTables, String> {
    let mut tables = CodeTables::default();
    tables.regimes.extend(raw.regimes.clone());
    tables.iae_states.extend(raw.iae_states.clone());
    tables.profiles.extend(raw.profiles.clone());
    tables.work_quotas.extend(raw.work_quotas.clone());
    tables.elp_natures.extend(raw.elp_natures.clone());
    if let Some(codes) = &raw.exemption_results {
        tables.exemption_results = codes.iter().map(|c| c.trim().to_string()).collect();
    }
    let problems = tables.problems();
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::StatusCode;
    use conpere_connectors::Registry;

    const BASE: &str = "[sources.apogee]\nkind = \"apogee\"\nyears = [2024]\n\
        base_url = \"https://apogee.example.fr/wsapogee/services/\"\nusername = \"ws-conpere\"\n";

    fn source(extra: &str) -> SourceConfig {
        SourceConfig::from_toml("apogee", &format!("{BASE}{extra}")).unwrap()
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        registry.add::<crate::ApogeeConnector>();
        registry
    }

    fn error(extra: &str) -> String {
        ApogeeConfig::from_source(&source(extra))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults() {
        std::env::set_var("CONPERE_TEST_APOGEE_PW_DEFAULTS", "hunter2");
        let config = ApogeeConfig::from_source(&source(
            "password_env = \"CONPERE_TEST_APOGEE_PW_DEFAULTS\"\n",
        ))
        .unwrap();
        assert_eq!(config.steps, StepScope::All);
        assert_eq!(config.years, [2024]);
        assert_eq!(config.http.concurrency, 4);
        assert_eq!(config.tables, CodeTables::default());
        let urls: Vec<String> = config.endpoints.iter().map(|e| e.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://apogee.example.fr/wsapogee/services/OffreFormationMetier",
                "https://apogee.example.fr/wsapogee/services/EtudiantMetier",
                "https://apogee.example.fr/wsapogee/services/AdministratifMetier",
                "https://apogee.example.fr/wsapogee/services/PedagogiqueMetier",
            ]
        );
        assert!(config.endpoints.iter().all(|e| e.username == "ws-conpere"));
        assert_eq!(config.endpoints[0].password.expose(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(SPEC.problems().is_empty(), "{:?}", SPEC.problems());
    }

    #[test]
    fn every_key_is_documented_and_settings_follow_the_spec() {
        let accepted = SPEC.accepted_keys();
        for service in Service::ALL {
            let prefix = service.config_prefix();
            assert!(accepted.contains(&format!("{prefix}_username")), "{prefix}");
            assert!(
                accepted.contains(&format!("{prefix}_password_env")),
                "{prefix}"
            );
        }
        for key in [
            "concurrency",
            "requests_per_second",
            "ca_file",
            "headers",
            "steps",
        ] {
            assert!(accepted.contains(&key.to_string()), "{key}");
        }
        assert!(SPEC.example_toml("apogee").contains("password_env"));
    }

    #[test]
    fn an_inline_secret_is_refused_through_the_registry() {
        let inline = source("password = \"hunter2\"\n");
        let message = registry().build(&inline).err().unwrap().to_string();
        assert!(message.contains("password_env"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let inline = source("password_env = \"X\"\netudiant_metier_password = \"hunter2\"\n");
        let message = registry().build(&inline).err().unwrap().to_string();
        assert!(
            message.contains("etudiant_metier_password_env"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_through_the_registry() {
        let typo = source("password_env = \"X\"\nsteps_ = [\"*\"]\n");
        let message = registry().build(&typo).err().unwrap().to_string();
        assert!(
            message.contains("steps_") && message.contains("known keys"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_password_or_variable_is_named() {
        assert!(error("").contains("password_env"));
        let message = error("password_env = \"CONPERE_TEST_APOGEE_UNSET\"\n");
        assert!(message.contains("CONPERE_TEST_APOGEE_UNSET"), "{message}");
    }

    #[test]
    fn steps_are_checked() {
        let pw = "password_env = \"CONPERE_TEST_APOGEE_PW_STEPS\"\n";
        std::env::set_var("CONPERE_TEST_APOGEE_PW_STEPS", "x");
        let config = ApogeeConfig::from_source(&source(&format!(
            "{pw}steps = [\"L2INF/120\", \"L3INF/120\", \"L2INF/120\"]\n"
        )))
        .unwrap();
        let StepScope::Listed(steps) = &config.steps else {
            panic!("{:?}", config.steps)
        };
        assert_eq!(steps.len(), 2);
        assert!(config.steps.covers(&StepCode::new("L3INF", "120")));
        assert!(!config.steps.covers(&StepCode::new("L1INF", "120")));
        assert!(error(&format!("{pw}steps = [\"L2INF\"]\n")).contains("COD_ETP/COD_VRS_VET"));
        assert!(error(&format!("{pw}steps = [\"*\", \"L2INF/120\"]\n")).contains("mixed"));
        assert!(error(&format!("{pw}steps = []\n")).contains("empty"));
    }

    #[test]
    fn years_are_required() {
        let config = SourceConfig::from_toml(
            "apogee",
            "[sources.apogee]\nkind = \"apogee\"\nbase_url = \"https://a.fr/ws\"\nusername = \"u\"\n\
             password_env = \"X\"\n",
        )
        .unwrap();
        let message = ApogeeConfig::from_source(&config).unwrap_err().to_string();
        assert!(message.contains("years = [2024]"), "{message}");
    }

    #[test]
    fn services_and_their_own_accounts() {
        std::env::set_var("CONPERE_TEST_APOGEE_PW_SVC", "main");
        std::env::set_var("CONPERE_TEST_APOGEE_PW_PED", "ped");
        let config = ApogeeConfig::from_source(&source(
            "password_env = \"CONPERE_TEST_APOGEE_PW_SVC\"\n\
             pedagogique_metier_username = \"ws-ped\"\n\
             pedagogique_metier_password_env = \"CONPERE_TEST_APOGEE_PW_PED\"\n\
             [sources.apogee.services]\nPedagogiqueMetier = \"https://apo-ws.univ.fr/pedagogiqueMetier\"\n",
        ))
        .unwrap();
        let ped = &config.endpoints[3];
        assert_eq!(ped.service, Service::PedagogiqueMetier);
        assert_eq!(ped.url.as_str(), "https://apo-ws.univ.fr/pedagogiqueMetier");
        assert_eq!(
            (ped.username.as_str(), ped.password.expose()),
            ("ws-ped", "ped")
        );
        assert_eq!(config.endpoints[1].password.expose(), "main");

        let message =
            error("password_env = \"X\"\n[sources.apogee.services]\nEtudiant = \"https://x\"\n");
        assert!(message.contains("unknown service `Etudiant`"), "{message}");
        let message = error(
            "password_env = \"X\"\n[sources.apogee.services]\nEtudiantMetier = \"ftp://x\"\n",
        );
        assert!(message.contains("services.EtudiantMetier"), "{message}");
        let message = error(
            "password_env = \"CONPERE_TEST_APOGEE_PW_SVC\"\netudiant_metier_username = \"u2\"\n",
        );
        assert!(
            message.contains("etudiant_metier_password_env"),
            "{message}"
        );
    }

    #[test]
    fn secret_headers_come_from_the_environment_or_a_file() {
        std::env::set_var("CONPERE_TEST_APOGEE_PW_HDR", "x");
        std::env::set_var("CONPERE_TEST_APOGEE_KEY", "k3y");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenant");
        std::fs::write(&file, "univ\n").unwrap();
        let config = ApogeeConfig::from_source(&source(&format!(
            "password_env = \"CONPERE_TEST_APOGEE_PW_HDR\"\n\
             headers_env = {{ \"X-Gravitee-Api-Key\" = \"CONPERE_TEST_APOGEE_KEY\" }}\n\
             headers_file = {{ \"X-Tenant\" = \"{}\" }}\n",
            file.display()
        )))
        .unwrap();
        let headers: Vec<(&str, &str)> = config.secret_headers.iter().collect();
        assert_eq!(
            headers,
            [("X-Gravitee-Api-Key", "k3y"), ("X-Tenant", "univ")]
        );
        assert!(!format!("{config:?}").contains("k3y"));
        let message = error(
            "password_env = \"CONPERE_TEST_APOGEE_PW_HDR\"\n\
             headers_env = { \"X-Key\" = \"CONPERE_TEST_APOGEE_UNSET_KEY\" }\n",
        );
        assert!(
            message.contains("CONPERE_TEST_APOGEE_UNSET_KEY") && message.contains("X-Key"),
            "{message}"
        );
    }

    #[test]
    fn code_tables_merge_over_the_defaults() {
        std::env::set_var("CONPERE_TEST_APOGEE_PW_TABLES", "x");
        let pw = "password_env = \"CONPERE_TEST_APOGEE_PW_TABLES\"\n";
        let config = ApogeeConfig::from_source(&source(&format!(
            "{pw}regimes = {{ \"4\" = \"continuing\", \"1\" = \"other\" }}\n\
             iae_states = {{ \"S\" = \"cancelled\" }}\nprofiles = {{ \"SAL\" = \"employed\" }}\n\
             work_quotas = {{ \"1\" = \"\" }}\n\
             elp_natures = {{ \"ECUE\" = \"element\" }}\nexemption_results = [\"DIS\", \"VAC\"]\n"
        )))
        .unwrap();
        let t = &config.tables;
        assert_eq!(t.regime(Some("4")), Regime::Continuing);
        assert_eq!(t.regime(Some("1")), Regime::Other);
        assert_eq!(t.regime(Some("2")), Regime::Continuing, "defaults stay");
        assert_eq!(t.iae_states.get("S"), Some(&RegistrationStatus::Cancelled));
        let status = |s: &str| StatusCode::Status(s.into());
        assert_eq!(t.profile("SAL"), status("employed"));
        assert_eq!(t.profile("ART"), status("artist"));
        assert_eq!(t.profile("NO"), StatusCode::None, "the ordinary profile");
        assert_eq!(
            t.work_quota("1"),
            StatusCode::None,
            "configured over the default"
        );
        assert_eq!(t.work_quota("2"), status("employed"));
        assert!(matches!(t.profile("ECH"), StatusCode::Unmapped(_)));
        assert_eq!(t.elp_nature(Some("ECUE")), NodeKind::Element);
        assert!(t.is_exemption("VAC") && t.is_exemption("DIS"));

        assert!(
            error(&format!("{pw}profiles = {{ \"X\" = \"superhero\" }}\n")).contains("superhero")
        );
        assert!(
            error(&format!("{pw}elp_natures = {{ \"X\" = \"diploma\" }}\n"))
                .contains("elp_natures")
        );
        assert!(error(&format!("{pw}regimes = {{ \"1\" = \"initiale\" }}\n")).contains("regimes"));
    }

    #[test]
    fn http_settings_are_validated() {
        let message = error("password_env = \"X\"\nconcurrency = 0\n");
        assert!(message.contains("concurrency"), "{message}");
    }
}
