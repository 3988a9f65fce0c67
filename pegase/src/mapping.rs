//! From an INS feed entry (`VueInscription`) to canonical records, as the crate's
//! README ("Mapping") states: one entry per registration, the learner's fields repeated.

use crate::codes::CodeTables;
use chrono::NaiveDate;
use conpere_model::mask::Masked;
use conpere_model::{Kind, Registration, RegistrationStatus, Rejected, Student};
use serde::Deserialize;

/// The fields of a feed entry the adapter reads; every other field is ignored, and
/// missing optional ones get neutral values (the feed is not always complete).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Student number, a string: its leading zeros are significant.
    pub code_apprenant: String,
    /// National student identifier.
    #[serde(rename = "INE", default)]
    pub ine: Option<String>,
    /// Birth family name.
    #[serde(default)]
    pub nom_famille: String,
    /// Usual name, `""` when none.
    #[serde(default)]
    pub nom_usage: Option<String>,
    /// Given name.
    #[serde(default)]
    pub prenom: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub date_de_naissance: Option<String>,
    /// BCN régime code.
    #[serde(default)]
    pub regime: Option<String>,
    /// Profiles carrying special statuses.
    #[serde(default)]
    pub profils_exonerants: Vec<Coded>,
    /// `valide`, `annulee` (others kept open).
    #[serde(default)]
    pub statut_inscription: String,
    /// Main registration or a secondary one.
    #[serde(default = "yes")]
    pub inscription_principale: bool,
    /// Code of the formation (the diploma).
    #[serde(default)]
    pub formation: Option<String>,
    /// Academic year.
    pub annee_universitaire: i32,
    /// Period code.
    #[serde(default)]
    pub periode: String,
    /// Last modification, epoch seconds.
    #[serde(default)]
    pub derniere_modification: i64,
    /// Path of the registration, diploma first, target last.
    #[serde(default)]
    pub chemin: Vec<PathPart>,
}

fn yes() -> bool {
    true
}

/// An entry with a code (`profilsExonerants[]`).
#[derive(Debug, Clone, Deserialize)]
pub struct Coded {
    /// The code.
    pub code: String,
}

/// One object of a registration's `chemin`.
#[derive(Debug, Clone, Deserialize)]
pub struct PathPart {
    /// Object code (= canonical node id).
    pub code: String,
    /// Object type (`FORMATION`, `ANNEE`…).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Entry {
    /// The registration's identity in the feed: (codeApprenant, chemin, période), which the
    /// README says to deduplicate on.
    pub fn key(&self) -> String {
        let path: Vec<&str> = self.chemin.iter().map(|p| p.code.as_str()).collect();
        format!(
            "{}|{}|{}",
            self.code_apprenant,
            path.join(">"),
            self.periode
        )
    }

    /// The learner.
    pub fn student(&self) -> Student {
        Student {
            student: self.code_apprenant.clone(),
            ine: non_empty(self.ine.as_deref()),
            family_name: self.nom_famille.clone(),
            usual_name: non_empty(self.nom_usage.as_deref()),
            given_name: self.prenom.clone(),
            birth_date: self
                .date_de_naissance
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok()),
            email: None,
            login: None,
        }
    }

    /// The registration, or why it cannot be one (no `chemin`: no step to attach it to).
    pub fn registration(&self, tables: &CodeTables) -> Result<Registration, String> {
        let step = self.chemin.last().map(|p| p.code.clone()).ok_or_else(|| {
            format!(
                "registration of student {} in period {} has an empty `chemin`: no step to \
                 attach it to",
                Masked(&self.code_apprenant),
                self.periode
            )
        })?;
        let mut special_statuses: Vec<String> = self
            .profils_exonerants
            .iter()
            .map(|p| tables.special_status(&p.code))
            .collect();
        special_statuses.sort();
        special_statuses.dedup();
        Ok(Registration {
            year: self.annee_universitaire,
            student: self.code_apprenant.clone(),
            step,
            diploma: self.diploma(),
            status: status(&self.statut_inscription),
            regime: tables.regime(self.regime.as_deref().unwrap_or_default()),
            main: self.inscription_principale,
            special_statuses,
        })
    }

    /// The FORMATION element of the path, else `formation`, else the first element.
    fn diploma(&self) -> Option<String> {
        self.chemin
            .iter()
            .find(|p| p.kind.as_deref() == Some("FORMATION"))
            .map(|p| p.code.clone())
            .or_else(|| non_empty(self.formation.as_deref()))
            .or_else(|| self.chemin.first().map(|p| p.code.clone()))
    }
}

/// `statutInscription` → status. The published enum has `valide` and `annulee` only; a
/// value added later is read as pending (not a confirmed registration) rather than failing
/// the run, and logged so the mapping can be extended.
fn status(code: &str) -> RegistrationStatus {
    match code.trim() {
        "valide" => RegistrationStatus::Active,
        "annulee" => RegistrationStatus::Cancelled,
        other => {
            tracing::warn!(
                statut_inscription = other,
                "unknown statutInscription read as pending"
            );
            RegistrationStatus::Pending
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Something read that cannot be a record of `kind` (a feed entry, a learner of a
/// cursus), quarantined with its payload: the store is the place for it, never a log.
pub fn rejected(
    kind: Kind,
    reason: String,
    location: &str,
    payload: &serde_json::Value,
) -> Rejected {
    Rejected {
        kind: Some(kind),
        key: None,
        reason,
        location: Some(location.to_string()),
        payload: payload.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::Regime;
    use serde_json::json;

    fn entry(extra: serde_json::Value) -> Entry {
        let mut base = json!({
            "codeApprenant": "000123", "nomFamille": "Durand", "nomUsage": "", "prenom": "Léa",
            "dateDeNaissance": "2003-02-01", "regime": "12", "statutInscription": "annulee",
            "inscriptionPrincipale": false, "formation": "VDI:X/1", "anneeUniversitaire": 2024,
            "periode": "PER-2024", "derniereModification": 5,
            "profilsExonerants": [{"code": "PRF002"}, {"code": "ZZZ"}],
            "chemin": [{"code": "VDI:X/1", "type": "FORMATION"}, {"code": "VET:Y/1", "type": "ANNEE"}]
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn an_entry_maps_as_the_readme_says() {
        let e = entry(json!({}));
        let student = e.student();
        assert_eq!(student.student, "000123");
        assert_eq!(student.usual_name, None);
        let r = e.registration(&CodeTables::default()).unwrap();
        assert_eq!(
            (r.step.as_str(), r.diploma.as_deref()),
            ("VET:Y/1", Some("VDI:X/1"))
        );
        assert_eq!(
            (r.status, r.regime, r.main),
            (RegistrationStatus::Cancelled, Regime::Apprenticeship, false)
        );
        assert_eq!(r.special_statuses, ["high_level_athlete", "other:ZZZ"]);
    }

    #[test]
    fn unknown_values_stay_open_and_an_empty_path_is_explained() {
        let e = entry(json!({"statutInscription": "suspendue", "regime": "99", "chemin": []}));
        let message = e.registration(&CodeTables::default()).unwrap_err();
        assert!(
            message.contains("chemin") && !message.contains("000123"),
            "{message}"
        );
        assert_eq!(status("suspendue"), RegistrationStatus::Pending);
    }
}
