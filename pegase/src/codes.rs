//! Pégase's codes as conpere reads them: the code tables (regimes, profiles, object
//! types, aménagements…) that turn a tenant's codes into canonical values, configurable
//! per source, as Apogée's are in its crate's `codes`.

use conpere_model::{NodeKind, Regime};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a CHC aménagement says of an enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// Exempted (dispense).
    Exempted,
    /// Carried over from a previous year (acquis).
    CarriedOver,
}

/// Code tables from Pégase codes to canonical values (README "Mapping").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTables {
    /// BCN régime code → régime; an unknown code is read as [`Regime::Other`].
    pub regimes: BTreeMap<String, Regime>,
    /// `profilsExonerants` code → special status; an unknown code `c` is `other:c`.
    pub special_statuses: BTreeMap<String, String>,
    /// ODF object type code → node kind (objects of the `OBJET_FORMATION` class); an
    /// unknown type is [`NodeKind::Other`].
    pub object_types: BTreeMap<String, NodeKind>,
    /// CHC aménagement code → what it says of an enrolment; other codes change nothing.
    pub adjustments: BTreeMap<String, Adjustment>,
}

impl Default for CodeTables {
    fn default() -> CodeTables {
        let regimes = [
            ("10", Regime::Initial),
            ("11", Regime::Other),
            ("12", Regime::Apprenticeship),
            ("21", Regime::Continuing),
        ];
        let statuses = [
            ("PRF001", "employed"),
            ("PRF002", "high_level_athlete"),
            ("PRF003", "disability"),
            ("PRF004", "artist"),
            ("PRF005", "carer"),
            ("PRF006", "elected_representative"),
            ("PRF007", "civic_service"),
            ("PRF008", "multi_degree"),
            ("PRF009", "distance"),
        ];
        let object_types = [
            ("ANNEE", NodeKind::Step),
            ("SEMESTRE", NodeKind::Semester),
            ("UE", NodeKind::Unit),
            ("EC", NodeKind::Element),
        ];
        let adjustments = [
            ("TAM001", Adjustment::Exempted),
            ("TAM002", Adjustment::CarriedOver),
        ];
        CodeTables {
            regimes: regimes.map(|(c, r)| (c.to_string(), r)).into(),
            special_statuses: statuses.map(|(c, s)| (c.to_string(), s.to_string())).into(),
            object_types: object_types.map(|(c, k)| (c.to_string(), k)).into(),
            adjustments: adjustments.map(|(c, a)| (c.to_string(), a)).into(),
        }
    }
}

impl CodeTables {
    /// The régime of a BCN code.
    pub fn regime(&self, code: &str) -> Regime {
        self.regimes
            .get(code.trim())
            .copied()
            .unwrap_or(Regime::Other)
    }

    /// The node kind of an ODF object: its class (`FORMATION`, `GROUPEMENT`,
    /// `OBJET_FORMATION` or `OBJET-FORMATION`), then its type through the table.
    pub fn node_kind(&self, class: Option<&str>, object_type: Option<&str>) -> NodeKind {
        match class.map(str::trim) {
            Some("FORMATION") => NodeKind::Diploma,
            Some("GROUPEMENT") => NodeKind::Choice,
            _ => object_type
                .and_then(|t| self.object_types.get(t.trim()).copied())
                .unwrap_or(NodeKind::Other),
        }
    }

    /// The special status of a profile code (kept open: `other:<code>` when unknown).
    pub fn special_status(&self, code: &str) -> String {
        let code = code.trim();
        self.special_statuses
            .get(code)
            .cloned()
            .unwrap_or_else(|| format!("other:{code}"))
    }
}
