//! The catalogue of support measures a contract may hold, and the rule that suggests
//! some of them in a new contract's draft from the student's special statuses.
//!
//! conpere ships a default catalogue (`catalogue/measures.toml`); a university replaces it
//! with `[contracts] measures = "path.toml"` in the same format. A file that cannot be used
//! is refused with its path, line and reason.

use crate::ContractsError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The default catalogue.
const DEFAULT: &str = include_str!("../catalogue/measures.toml");

/// Who may propose a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proposer {
    /// The directeur d'études of the step.
    Directeur,
    /// The student.
    Student,
    /// The scolarité (registrar's office).
    Scolarite,
}

/// One support measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Stable identifier, stored in contracts.
    pub code: String,
    /// French label.
    pub label_fr: String,
    /// English label.
    pub label_en: String,
    /// `pedagogical`, `schedule`, `path` or `support`.
    pub category: String,
    /// Who may propose it.
    pub proposed_by: Vec<Proposer>,
    /// Whether it needs a supporting document.
    #[serde(default)]
    pub document: bool,
    /// Whether it needs an end date.
    #[serde(default)]
    pub deadline: bool,
    /// Special statuses for which a new contract's draft suggests it.
    #[serde(default)]
    pub suggested_for: Vec<String>,
}

/// The measures a university offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// In the catalogue's order.
    #[serde(rename = "measure")]
    pub measures: Vec<Measure>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::parse("the default catalogue", DEFAULT).expect("the shipped catalogue parses")
    }
}

impl Catalogue {
    /// The catalogue in the file at `path`.
    pub fn load(path: &Path) -> Result<Catalogue, ContractsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ContractsError::Config(format!("measures catalogue {}: {e}", path.display()))
        })?;
        Catalogue::parse(&path.display().to_string(), &text)
    }

    /// The catalogue written in `text` (named `origin` in errors).
    pub fn parse(origin: &str, text: &str) -> Result<Catalogue, ContractsError> {
        let catalogue: Catalogue = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let at = line.map_or(String::new(), |line| format!(":{line}"));
            ContractsError::Config(format!("measures catalogue {origin}{at}: {}", e.message()))
        })?;
        catalogue.check(origin)?;
        Ok(catalogue)
    }

    fn check(&self, origin: &str) -> Result<(), ContractsError> {
        let mut seen = std::collections::BTreeSet::new();
        for measure in &self.measures {
            let problem = if measure.code.trim().is_empty() {
                Some("a measure has an empty code".to_string())
            } else if !seen.insert(&measure.code) {
                Some(format!("the code `{}` is used twice", measure.code))
            } else if measure.proposed_by.is_empty() {
                Some(format!("`{}`: proposed_by names nobody", measure.code))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(ContractsError::Config(format!(
                    "measures catalogue {origin}: {problem}"
                )));
            }
        }
        Ok(())
    }

    /// The measure of `code`.
    pub fn measure(&self, code: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.code == code)
    }

    /// The measures a new contract's draft suggests for these special statuses, in the
    /// catalogue's order, each once.
    pub fn suggested(&self, statuses: &[String]) -> Vec<&Measure> {
        (self.measures.iter())
            .filter(|m| m.suggested_for.iter().any(|s| statuses.contains(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalogue_suggests_by_status() {
        let catalogue = Catalogue::default();
        assert!(catalogue.measures.len() >= 12);
        let codes = |statuses: &[&str]| -> Vec<String> {
            let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
            (catalogue.suggested(&statuses).iter())
                .map(|m| m.code.clone())
                .collect()
        };
        assert_eq!(
            codes(&["employed"]),
            ["amenagement_emploi_du_temps", "dispense_assiduite"]
        );
        assert_eq!(codes(&["disability"]), ["accompagnement_handicap"]);
        assert_eq!(codes(&["high_level_athlete"]), ["amenagement_sportif"]);
        assert!(codes(&[]).is_empty());
        assert_eq!(catalogue.measure("tutorat").unwrap().label_en, "Tutoring");
    }

    #[test]
    fn a_bad_catalogue_is_refused_with_its_line_and_reason() {
        let text = "[[measure]]\ncode = \"x\"\nlabel_fr = \"X\"\nlabel_en = \"X\"\n\
                    category = \"path\"\nproposed_by = [\"dean\"]\n";
        let error = Catalogue::parse("m.toml", text).unwrap_err().to_string();
        assert!(
            error.starts_with("measures catalogue m.toml:6: "),
            "{error}"
        );
        assert!(error.contains("dean"), "{error}");
        let twice = format!("{0}\n{0}", text.replace("dean", "student"));
        let error = Catalogue::parse("m.toml", &twice).unwrap_err().to_string();
        assert!(error.contains("the code `x` is used twice"), "{error}");
    }
}
