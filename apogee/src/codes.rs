//! Apogée's codes as conpere reads them: a step's composite code, the ids of the nodes
//! Apogée's codes become (DESIGN.md's `VDI:`, `VET:`, `LSE:`, `ELP:`), and the code tables
//! (regimes, registration states, profiles, work quotas, element natures) that turn an
//! institution's codes into canonical values, configurable per source.

use conpere_model::{is_special_status, NodeKind, Regime, RegistrationStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A step version (VET): Apogée's composite key (`COD_ETP`, `COD_VRS_VET`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepCode {
    /// `codEtp` (`L2INF`).
    pub code: String,
    /// `codVrsVet` (`120`), kept as the string received.
    pub version: String,
}

impl StepCode {
    /// A step version from its parts, trimmed.
    pub fn new(code: &str, version: &str) -> StepCode {
        StepCode {
            code: code.trim().to_string(),
            version: version.trim().to_string(),
        }
    }

    /// Parses `L2INF/120` (the form of the `steps` setting); `None` when either part is
    /// missing.
    ///
    /// ```
    /// use conpere_apogee::codes::StepCode;
    /// assert_eq!(StepCode::parse("L2INF/120").unwrap().id(), "VET:L2INF/120");
    /// assert!(StepCode::parse("L2INF").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<StepCode> {
        let (code, version) = text.split_once('/')?;
        let step = StepCode::new(code, version);
        (!step.code.is_empty() && !step.version.is_empty() && !step.version.contains('/'))
            .then_some(step)
    }

    /// The canonical node id, `VET:<code>/<version>`.
    pub fn id(&self) -> String {
        format!("VET:{}/{}", self.code, self.version)
    }
}

impl fmt::Display for StepCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code, self.version)
    }
}

/// The node id of a diploma version, `VDI:<codDip>/<codVrsVdi>`.
pub fn diploma_id(code: &str, version: &str) -> String {
    format!("VDI:{}/{}", code.trim(), version.trim())
}

/// The node id of an element list, `LSE:<codListElp>`.
pub fn list_id(code: &str) -> String {
    format!("LSE:{}", code.trim())
}

/// The node id of a pedagogical element, `ELP:<codElp>`.
pub fn elp_id(code: &str) -> String {
    format!("ELP:{}", code.trim())
}

/// The configurable code tables that turn Apogée codes into canonical values. Their
/// defaults are the README's.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeTables {
    /// `regimeIns.codRgi` → régime; an absent code gives `other`.
    pub regimes: BTreeMap<String, Regime>,
    /// `etatIae.codeEtatIAE` → registration status; an absent code rejects the
    /// registration (the stored one is kept) until the table names it.
    pub iae_states: BTreeMap<String, RegistrationStatus>,
    /// `profil.code` → special status, or `""` for none (the ordinary profile `NO`). A
    /// code absent from the table gives no status and is counted in the run summary.
    pub profiles: BTreeMap<String, String>,
    /// `quotiteTrav.codeQuotite` → special status, or `""` for none (`0`: not employed).
    /// A code absent from the table gives no status and is counted in the run summary.
    pub work_quotas: BTreeMap<String, String>,
    /// `codNatureElp` (first-level elements) → node kind; an absent code gives `other`.
    pub elp_natures: BTreeMap<String, NodeKind>,
    /// `typResultat.codTre` values that mean "exempted" (dispense).
    pub exemption_results: BTreeSet<String>,
}

impl Default for CodeTables {
    fn default() -> Self {
        let table = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        CodeTables {
            regimes: BTreeMap::from([
                ("1".into(), Regime::Initial),
                ("2".into(), Regime::Continuing),
                ("3".into(), Regime::Apprenticeship),
            ]),
            iae_states: BTreeMap::from([
                ("E".into(), RegistrationStatus::Active),
                ("A".into(), RegistrationStatus::Cancelled),
                ("R".into(), RegistrationStatus::Cancelled),
                ("P".into(), RegistrationStatus::Pending),
            ]),
            profiles: table(&[
                ("NO", ""),
                ("ART", "artist"),
                ("AID", "carer"),
                ("ELU", "elected_representative"),
                ("SCV", "civic_service"),
            ]),
            work_quotas: table(&[("0", ""), ("1", "employed"), ("2", "employed")]),
            elp_natures: BTreeMap::from([
                ("SEM".into(), NodeKind::Semester),
                ("UE".into(), NodeKind::Unit),
                ("EC".into(), NodeKind::Element),
                ("MAT".into(), NodeKind::Element),
            ]),
            exemption_results: BTreeSet::from(["DIS".to_string()]),
        }
    }
}

impl CodeTables {
    /// The régime of a `codRgi`.
    pub fn regime(&self, code: Option<&str>) -> Regime {
        code.and_then(|c| self.regimes.get(c))
            .copied()
            .unwrap_or(Regime::Other)
    }

    /// The special status of a `profil.code` (see [`StatusCode`]).
    pub fn profile(&self, code: &str) -> StatusCode {
        StatusCode::of(&self.profiles, "profiles", code)
    }

    /// The special status of a `quotiteTrav.codeQuotite` (see [`StatusCode`]).
    pub fn work_quota(&self, code: &str) -> StatusCode {
        StatusCode::of(&self.work_quotas, "work_quotas", code)
    }

    /// The node kind of a first-level element's `codNatureElp`.
    pub fn elp_nature(&self, code: Option<&str>) -> NodeKind {
        code.and_then(|c| self.elp_natures.get(c))
            .copied()
            .unwrap_or(NodeKind::Other)
    }

    /// Whether a result type means the element was exempted.
    pub fn is_exemption(&self, code: &str) -> bool {
        self.exemption_results.contains(code)
    }

    /// Problems with configured values (a profile mapped to a non-canonical status…).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let statuses = [
            ("profiles", &self.profiles),
            ("work_quotas", &self.work_quotas),
        ];
        for (name, table) in statuses {
            for (code, status) in table {
                if !status.is_empty() && !is_special_status(status) {
                    problems.push(format!(
                        "`{name}`: `{code}` maps to `{status}`, which is not a canonical \
                         special status (employed, high_level_athlete, disability, artist, \
                         carer, elected_representative, civic_service, multi_degree, \
                         distance, or other:<code>; \"\" for none)"
                    ));
                }
            }
        }
        for (code, kind) in &self.elp_natures {
            if !matches!(
                kind,
                NodeKind::Semester | NodeKind::Unit | NodeKind::Element | NodeKind::Other
            ) {
                problems.push(format!(
                    "`elp_natures`: `{code}` maps to `{}`; an element is a semester, unit, \
                     element or other",
                    kind.as_str()
                ));
            }
        }
        problems
    }
}

/// What a status code table says of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCode {
    /// The code means this special status.
    Status(String),
    /// The code means no special status (mapped to `""`: the ordinary profile).
    None,
    /// The table does not have the code: no status, and the code is counted in the run
    /// summary so that someone maps it.
    Unmapped(UnmappedCode),
}

impl StatusCode {
    fn of(table: &BTreeMap<String, String>, name: &'static str, code: &str) -> StatusCode {
        match table.get(code).map(String::as_str) {
            Some("") => StatusCode::None,
            Some(status) => StatusCode::Status(status.to_string()),
            None => StatusCode::Unmapped(UnmappedCode {
                table: name,
                code: code.to_string(),
            }),
        }
    }
}

/// A code that a status table of the source does not map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnmappedCode {
    /// The table (`profiles`, `work_quotas`).
    pub table: &'static str,
    /// The code as Apogée sent it.
    pub code: String,
}
