//! Canonical values → Apogée codes: the README's code tables (`regimes`, `iae_states`,
//! `profiles`, `elp_natures`) read backwards, with the labels Apogée sends next to them.

use conpere_model::{NodeKind, Regime, RegistrationStatus};

/// `regimeIns`: `codRgi`, `libRgi`.
pub(crate) fn regime(regime: Regime) -> (&'static str, &'static str) {
    match regime {
        Regime::Initial => ("1", "Formation initiale"),
        Regime::Continuing => ("2", "Formation continue"),
        Regime::Apprenticeship => ("3", "Apprentissage"),
        // Any code outside 1–3 reads back as `other`.
        Regime::Other => ("9", "Autre régime"),
    }
}

/// `etatIae`: `codeEtatIAE`, `libEtatIAE`.
pub(crate) fn iae_state(status: RegistrationStatus) -> (&'static str, &'static str) {
    match status {
        RegistrationStatus::Active => ("E", "En cours"),
        RegistrationStatus::Cancelled => ("A", "Annulée"),
        RegistrationStatus::Pending => ("P", "En attente"),
    }
}

/// Whether a registration in `state` answers a pedagogical-contract request filtered on
/// `_codEtaIae` letters. `P` is the README's pending state, which the real Apogée does
/// not have (its IAE states are E, A and R): a pending registration is one "en cours"
/// whose file is not complete, so `E` selects it too.
pub(crate) fn iae_state_selected(state: &str, selected: &super::params::States) -> bool {
    selected.contains(state) || (state == "P" && selected.contains("E"))
}

/// `etatIaa` of a year: `E` (en cours) while one registration of the year is not
/// cancelled, `A` (annulée) otherwise.
pub(crate) fn iaa_state(all_cancelled: bool) -> (&'static str, &'static str) {
    if all_cancelled {
        ("A", "Annulée")
    } else {
        ("E", "En cours")
    }
}

/// `profil` (`ProfilEtuDTO`): `code`, `libelle` of a canonical profile status, `None` for
/// statuses Apogée carries elsewhere. `other:<code>` gives `<code>` back.
pub(crate) fn profile(status: &str) -> Option<(String, String)> {
    let known = match status {
        "artist" => Some(("ART", "Artiste")),
        "carer" => Some(("AID", "Aidant familial")),
        "elected_representative" => Some(("ELU", "Élu étudiant")),
        "civic_service" => Some(("SCV", "Service civique")),
        _ => None,
    };
    if let Some((code, label)) = known {
        return Some((code.to_owned(), label.to_owned()));
    }
    let code = status.strip_prefix("other:")?.trim();
    (!code.is_empty()).then(|| (code.to_owned(), code.to_owned()))
}

/// `profil` of a year without a special profile: Apogée's ordinary profile, which the
/// adapter's `profiles` table maps to no status.
pub(crate) const ORDINARY_PROFILE: (&str, &str) = ("NO", "Normal");

/// A profile of an institution's own, which no default table maps: the adapter stores no
/// status for it and counts it in the run summary.
pub(crate) const UNMAPPED_PROFILE: (&str, &str) = ("ECH", "Étudiant en échange");

/// `quotiteTrav` of a student who declared no work: the adapter's `work_quotas` maps it
/// to no status.
pub(crate) const NOT_EMPLOYED: (&str, &str) = ("0", "Sans activité professionnelle");

/// `sportifHautNiveau` (`SpoHautNivDTO`): `codSportif`, `libelle`.
pub(crate) const HIGH_LEVEL_ATHLETE: (&str, &str) = ("SHN", "Sportif de haut niveau");

/// `quotiteTrav` (`QuotiteTravDTO`): `codeQuotite`, `libQuotite` of an employed student.
pub(crate) const EMPLOYED: (&str, &str) = ("1", "Temps complet");

/// `handicap` (`TypHandicapCourtDTO`): `codeHandicap`, `libHandicap`.
pub(crate) const DISABILITY: (&str, &str) = ("AUT", "Autre trouble");

/// `codNatureElp` / `libNatureElp` (offer of training) and `codNel` / `libNel`
/// (pedagogical contract) of a node kind. Kinds without an ELP nature of their own get
/// `AUT`, which the adapter's `elp_natures` table reads back as `other`.
pub(crate) fn elp_nature(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Semester => ("SEM", "Semestre"),
        NodeKind::Unit => ("UE", "Unité d'enseignement"),
        NodeKind::Element => ("EC", "Élément constitutif"),
        NodeKind::Diploma | NodeKind::Step | NodeKind::Choice | NodeKind::Other => ("AUT", "Autre"),
    }
}

/// `typListElp` of a list hanging from a step: `O` for the step's mandatory elements,
/// `X` for a mandatory choice, `F` for an optional one.
pub(crate) fn list_type(choice: bool, mandatory: bool) -> &'static str {
    match (choice, mandatory) {
        (false, _) => "O",
        (true, true) => "X",
        (true, false) => "F",
    }
}

/// `typResultat.codTre` / `libTre` of an exemption (the README's `exemption_results`).
pub(crate) const EXEMPTED: (&str, &str) = ("DIS", "Dispensé");

/// `typResultat` of an element acquired in an earlier year and carried over.
pub(crate) const ACQUIRED: (&str, &str) = ("ADM", "Admis");

/// `etatDelib` of a result the jury has settled.
pub(crate) const DELIBERATED: (&str, &str) = ("T", "Terminée");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::params::States;

    #[test]
    fn profiles_invert_the_readme_table() {
        assert_eq!(profile("artist").unwrap().0, "ART");
        assert_eq!(profile("carer").unwrap().0, "AID");
        assert_eq!(profile("elected_representative").unwrap().0, "ELU");
        assert_eq!(profile("civic_service").unwrap().0, "SCV");
        assert_eq!(profile("other:ERASMUS").unwrap().0, "ERASMUS");
        assert_eq!(profile("employed"), None);
        assert_eq!(profile("other: "), None);
    }

    #[test]
    fn pending_registrations_count_as_en_cours() {
        let e = States::Only("E".into());
        assert!(iae_state_selected("E", &e));
        assert!(iae_state_selected("P", &e));
        assert!(!iae_state_selected("A", &e));
        assert!(!iae_state_selected("P", &States::Only("A".into())));
    }
}
