//! `kind = "pegase"`: the settings of a Pégase source, read from its
//! `[sources.<name>]` table and checked before anything is contacted.
//!
//! ```toml
//! [sources.pegase]
//! kind = "pegase"
//! auth_url = "https://authn-app.univ.pc-scol.fr/cas/v1/tickets"
//! base_url = "https://{module}.univ.pc-scol.fr"
//! periods = ["PER-2024"]
//! username = "svc-conpere"
//! password_env = "PEGASE_PASSWORD"
//! ```

use crate::codes::{Adjustment, CodeTables};
use conpere_connectors::http::{http_url, HttpSettings, Url};
use conpere_connectors::{ConfigError, ConnectorSpec, FieldSpec, Secret, SourceConfig};
use conpere_model::{NodeKind, Regime};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The configuration keys of a Pégase source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    kind: "pegase",
    description: "Pégase (PC-Scol) REST APIs, read-only: students and registrations (INS feed), \
                  course structure (ODF), pedagogical choices (CHC)",
    fields: &[
        FieldSpec::new(
            "auth_url",
            true,
            false,
            "CAS v1 token endpoint, used as given (no trailing slash)",
            "\"https://authn-app.univ.pc-scol.fr/cas/v1/tickets\"",
        ),
        FieldSpec::new(
            "base_url",
            true,
            false,
            "URL of the modules' hosts; `{module}` is replaced by the module name (`ins`, \
             `odf`, `chc`)",
            "\"https://{module}.univ.pc-scol.fr\"",
        ),
        FieldSpec::new(
            "modules",
            false,
            false,
            "per-module base URLs overriding base_url (module name → URL)",
            "{ ins = \"https://ins.univ.pc-scol.fr\", odf = \"https://odf.univ.pc-scol.fr\" }",
        ),
        FieldSpec::new(
            "structure",
            false,
            false,
            "codeStructure of the institution (default ETAB00)",
            "\"ETAB00\"",
        ),
        FieldSpec::new(
            "periods",
            true,
            false,
            "codes of the periods (espaces of type PERIODE) to read",
            "[\"PER-2024\"]",
        ),
        FieldSpec::new(
            "username",
            true,
            false,
            "service account that obtains the bearer token",
            "\"svc-conpere\"",
        ),
        FieldSpec::new(
            "password",
            true,
            true,
            "the service account's password",
            "\"PEGASE_PASSWORD\"",
        ),
        FieldSpec::new(
            "regimes",
            false,
            false,
            "BCN régime code → initial, continuing, apprenticeship or other; merged over \
             10 initial, 11 other, 12 apprenticeship, 21 continuing",
            "{ \"13\" = \"continuing\" }",
        ),
        FieldSpec::new(
            "special_statuses",
            false,
            false,
            "profilsExonerants code → canonical special status; merged over PRF001 employed \
             … PRF009 distance (any other code c is read as other:c)",
            "{ \"PRF010\" = \"employed\" }",
        ),
        FieldSpec::new(
            "object_types",
            false,
            false,
            "ODF object type code → step, semester, unit, element or other; merged over \
             ANNEE step, SEMESTRE semester, UE unit, EC element (any other type is other)",
            "{ PARCOURS = \"other\", BLOC = \"unit\" }",
        ),
        FieldSpec::new(
            "adjustments",
            false,
            false,
            "CHC aménagement code → exempted or carried_over; merged over TAM001 exempted, \
             TAM002 carried_over (other codes change nothing)",
            "{ TAM004 = \"exempted\" }",
        ),
        FieldSpec::new(
            "choices_by",
            false,
            false,
            "CHC cursus read per object (default, bounded answers) or per object type \
             (fewer, larger answers)",
            "\"object\"",
        ),
        FieldSpec::new(
            "incremental_scope",
            false,
            false,
            "what an incremental run reads: the feed's changes plus the structure and the \
             choices whole (all, default), or the feed's changes only (registrations: a few \
             requests; structure and choices then change on full runs)",
            "\"all\"",
        ),
        FieldSpec::new(
            "incremental_overlap_seconds",
            false,
            false,
            "incremental reads start this long before the last modification seen (default 300)",
            "300",
        ),
        FieldSpec::new(
            "window_days",
            false,
            false,
            "an incremental backlog is read in windows of this many days (default 7)",
            "7",
        ),
    ],
    shared_fields: &[HttpSettings::FIELDS],
};

/// The settings as written (before checks and secret resolution).
#[derive(Deserialize)]
struct RawSettings {
    auth_url: String,
    base_url: String,
    #[serde(default)]
    modules: BTreeMap<String, String>,
    #[serde(default = "default_structure")]
    structure: String,
    #[serde(default)]
    periods: Vec<String>,
    username: String,
    #[serde(default)]
    regimes: BTreeMap<String, Regime>,
    #[serde(default)]
    special_statuses: BTreeMap<String, String>,
    #[serde(default)]
    object_types: BTreeMap<String, NodeKind>,
    #[serde(default)]
    adjustments: BTreeMap<String, Adjustment>,
    #[serde(default)]
    choices_by: ChoicesBy,
    #[serde(default)]
    incremental_scope: IncrementalScope,
    #[serde(default = "default_overlap")]
    incremental_overlap_seconds: u32,
    #[serde(default = "default_window_days")]
    window_days: u32,
    #[serde(flatten)]
    http: HttpSettings,
}

fn default_structure() -> String {
    "ETAB00".to_string()
}
fn default_overlap() -> u32 {
    300
}
fn default_window_days() -> u32 {
    7
}

/// The Pégase modules this adapter reads: registrations.
pub const MODULE_INS: &str = "ins";
/// Course structure.
pub const MODULE_ODF: &str = "odf";
/// Pedagogical choices.
pub const MODULE_CHC: &str = "chc";
/// Every module read.
pub const MODULES: [&str; 3] = [MODULE_INS, MODULE_ODF, MODULE_CHC];

/// What an incremental run reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncrementalScope {
    /// The feed's changes, and the structure and choices whole (Pégase has no change
    /// feed for them): what they no longer hold is deleted, as in a full run.
    #[default]
    All,
    /// The feed's changes only: a handful of requests, for frequent runs; the structure
    /// and the choices are left as they are until the next full run.
    Registrations,
}

/// How the CHC cursus are read (both are bulk: never one learner at a time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoicesBy {
    /// `objet-formation/{cs}/{per}/{code}/cursus` for each object of the structure:
    /// more requests, each answer bounded by one object's learners.
    #[default]
    Object,
    /// `type-objet-formation/{cs}/{per}/{type}/cursus` for each object type: a few
    /// requests, each answer holding every learner of a type (large tenants: large).
    Type,
}

/// A checked Pégase configuration, secrets resolved. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct PegaseConfig {
    /// The CAS token endpoint.
    pub auth_url: Url,
    /// Base URL of the INS module.
    pub ins_url: Url,
    /// Base URL of the ODF module.
    pub odf_url: Url,
    /// Base URL of the CHC module.
    pub chc_url: Url,
    /// How the CHC cursus are read.
    pub choices_by: ChoicesBy,
    /// What an incremental run reads.
    pub incremental_scope: IncrementalScope,
    /// `codeStructure`.
    pub structure: String,
    /// Period codes to read.
    pub periods: Vec<String>,
    /// Service account.
    pub username: String,
    /// Its password.
    pub password: Secret,
    /// Code tables, defaults merged with the configured entries.
    pub tables: CodeTables,
    /// Incremental re-read overlap, in seconds.
    pub overlap_seconds: i64,
    /// Width of an incremental window, in seconds.
    pub window_seconds: i64,
    /// HTTP settings.
    pub http: HttpSettings,
}

impl PegaseConfig {
    /// Reads and checks `source`; resolves the password. Contacts nothing.
    pub fn from_source(source: &SourceConfig) -> Result<PegaseConfig, ConfigError> {
        let raw: RawSettings = source.settings()?;
        let invalid = |message: String| source.invalid(message);
        raw.http.validate().map_err(|e| invalid(e.to_string()))?;
        let periods: Vec<String> = raw.periods.iter().map(|p| p.trim().to_string()).collect();
        if periods.is_empty() || periods.iter().any(String::is_empty) {
            return Err(invalid(
                "`periods` is required: list the codes of the Pégase periods to read \
                 (e.g. `periods = [\"PER-2024\"]`, as ODF's espaces of type PERIODE name them)"
                    .into(),
            ));
        }
        if let Some(unknown) = raw.modules.keys().find(|m| !MODULES.contains(&m.as_str())) {
            return Err(invalid(format!(
                "`modules.{unknown}` is not a module this adapter reads (it reads {})",
                MODULES.join(", ")
            )));
        }
        if raw.window_days == 0 {
            return Err(invalid("`window_days` must be at least 1".into()));
        }
        let mut tables = CodeTables::default();
        tables.regimes.extend(raw.regimes.clone());
        tables.special_statuses.extend(raw.special_statuses.clone());
        tables.object_types.extend(raw.object_types.clone());
        tables.adjustments.extend(raw.adjustments.clone());
        Ok(PegaseConfig {
            auth_url: parse_url("auth_url", &raw.auth_url).map_err(invalid)?,
            ins_url: module_url(&raw, MODULE_INS).map_err(invalid)?,
            odf_url: module_url(&raw, MODULE_ODF).map_err(invalid)?,
            chc_url: module_url(&raw, MODULE_CHC).map_err(invalid)?,
            choices_by: raw.choices_by,
            incremental_scope: raw.incremental_scope,
            structure: raw.structure.trim().to_string(),
            periods,
            username: raw.username.clone(),
            password: source.required_secret("password")?,
            tables,
            overlap_seconds: i64::from(raw.incremental_overlap_seconds),
            window_seconds: i64::from(raw.window_days) * 86_400,
            http: raw.http,
        })
    }
}

/// The base URL of `module`: `modules.<module>`, else `base_url` with `{module}` replaced.
fn module_url(raw: &RawSettings, module: &str) -> Result<Url, String> {
    match raw.modules.get(module) {
        Some(url) => parse_url(&format!("modules.{module}"), url),
        None => parse_url("base_url", &raw.base_url.replace("{module}", module)),
    }
}

fn parse_url(key: &str, text: &str) -> Result<Url, String> {
    http_url(text).map_err(|reason| format!("`{key}` = {text:?} is not a usable URL: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[sources.p]\nkind = \"pegase\"\n\
        auth_url = \"https://authn-app.u.pc-scol.fr/cas/v1/tickets\"\n\
        base_url = \"https://{module}.u.pc-scol.fr\"\nusername = \"svc\"\n";

    fn config(extra: &str) -> Result<PegaseConfig, ConfigError> {
        std::env::set_var("CONPERE_TEST_PEGASE_PW", "hunter2");
        let toml = format!("{BASE}password_env = \"CONPERE_TEST_PEGASE_PW\"\n{extra}");
        PegaseConfig::from_source(&SourceConfig::from_toml("p", &toml).unwrap())
    }

    #[test]
    fn defaults_and_module_url() {
        let config = config("periods = [\"PER-2024\"]\n").unwrap();
        assert_eq!(config.ins_url.as_str(), "https://ins.u.pc-scol.fr/");
        assert_eq!(config.chc_url.as_str(), "https://chc.u.pc-scol.fr/");
        assert_eq!(config.choices_by, ChoicesBy::Object);
        assert_eq!(config.structure, "ETAB00");
        assert_eq!(
            (config.overlap_seconds, config.window_seconds),
            (300, 7 * 86_400)
        );
        assert_eq!(config.tables, CodeTables::default());
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(SPEC.problems().is_empty(), "{:?}", SPEC.problems());
    }

    #[test]
    fn module_override_and_tables_merge() {
        let config = config(
            "periods = [\"P\"]\nmodules = { ins = \"http://127.0.0.1:9\" }\n\
             regimes = { \"13\" = \"continuing\" }\n",
        )
        .unwrap();
        assert_eq!(config.ins_url.as_str(), "http://127.0.0.1:9/");
        assert_eq!(config.tables.regime("13"), Regime::Continuing);
        assert_eq!(config.tables.regime("10"), Regime::Initial);
        assert_eq!(config.tables.regime("99"), Regime::Other);
        assert_eq!(config.tables.special_status("PRF777"), "other:PRF777");
        let t = &config.tables;
        assert_eq!(
            t.node_kind(Some("OBJET-FORMATION"), Some("UE")),
            NodeKind::Unit
        );
        assert_eq!(
            t.node_kind(Some("OBJET_FORMATION"), Some("BLOC")),
            NodeKind::Other
        );
        assert_eq!(t.node_kind(Some("GROUPEMENT"), None), NodeKind::Choice);
    }

    #[test]
    fn periods_are_required() {
        let message = config("").unwrap_err().to_string();
        assert!(message.contains("periods"), "{message}");
    }

    #[test]
    fn every_settings_key_is_in_the_spec() {
        let accepted = SPEC.accepted_keys();
        for key in [
            "auth_url",
            "modules",
            "password_env",
            "window_days",
            "concurrency",
        ] {
            assert!(accepted.iter().any(|k| k == key), "{key}");
        }
    }
}
