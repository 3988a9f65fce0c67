//! `AdministratifMetier`: administrative registrations, per step (IAE) and per year (IAA).
//!
//! Apogée splits what the canonical model keeps on each registration: the step, its
//! state, whether it is the main one and distance learning belong to the step
//! registration; the régime and the special statuses (athlete, employed, profile) to the
//! annual registration, shared by every step of the year. The simulator writes each
//! year's annual values from that year's registrations (the main one's régime, the union
//! of their statuses), and what a real Apogée adds that the canonical model does not hold:
//! the ordinary profile `NO` for a year without a special one, an institution's own
//! profile code that no default table maps for some students, a work quota `0` for some
//! students who do not work.

use super::codes;
use super::data::{Dataset, RegistrationEntry, StudentEntry, Versioned};
use super::dto::Dto;
use super::format;
use super::layouts;
use super::params::{OpFault, Params, Years};
use super::students::{known_student, registrations_of};
use chrono::NaiveDate;
use conpere_model::RegistrationStatus;

/// The canonical status carried by `inscriptionTeleEnseignement`.
const DISTANCE: &str = "distance";
/// The canonical status carried by `sportifHautNiveau`.
const HIGH_LEVEL_ATHLETE: &str = "high_level_athlete";
/// The canonical status carried by `quotiteTrav`.
const EMPLOYED: &str = "employed";

/// `recupererIAEtapes_v3(_codEtu, _annee, _etatIAA, _etatIAE)`: one
/// `InsAdmEtpDTO3` per step registration of the selected years and states.
pub(crate) fn ia_etapes(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let cod_etu = request.cod_etu()?;
    let years = request.years("_annee", "annee")?;
    let (iaa_states, iae_states) = (request.states("_etatIAA"), request.states("_etatIAE"));
    let steps: Vec<Dto> = annual_registrations(data, cod_etu, years)?
        .iter()
        .filter(|annual| iaa_states.contains(annual.state().0))
        .flat_map(|annual| {
            let iae_states = &iae_states;
            annual
                .registrations
                .iter()
                .filter(move |r| iae_states.contains(codes::iae_state(r.record.status).0))
                .map(move |r| ins_adm_etp(r, annual))
        })
        .collect();
    non_empty(steps, "findIAE", cod_etu)
}

/// `recupererIAAnnuelles_v2(_codEtu, _annee, _etatIAA)`: one `InsAdmAnuDTO2` per year.
pub(crate) fn ia_annuelles(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let cod_etu = request.cod_etu()?;
    let years = request.years("_annee", "annee")?;
    let states = request.states("_etatIAA");
    let student = known_student(data, cod_etu)?;
    let annuals: Vec<Dto> = annual_registrations(data, cod_etu, years)?
        .iter()
        .filter(|annual| states.contains(annual.state().0))
        .map(|annual| ins_adm_anu(annual, student))
        .collect();
    non_empty(annuals, "findIAA", cod_etu)
}

fn non_empty(dtos: Vec<Dto>, what: &'static str, cod_etu: &str) -> Result<Vec<Dto>, OpFault> {
    if dtos.is_empty() {
        return Err(OpFault::no_data(
            what,
            format!("aucune inscription administrative pour l'étudiant {cod_etu}"),
        ));
    }
    Ok(dtos)
}

/// One year of a student: its step registrations.
struct Annual<'d> {
    year: i32,
    registrations: Vec<&'d RegistrationEntry>,
}

impl Annual<'_> {
    /// The annual registration's state (`etatIaa`).
    fn state(&self) -> (&'static str, &'static str) {
        let all_cancelled = self
            .registrations
            .iter()
            .all(|r| r.record.status == RegistrationStatus::Cancelled);
        codes::iaa_state(all_cancelled)
    }

    /// The main registration (`etapePremiere`), else the first one.
    fn main(&self) -> Option<&RegistrationEntry> {
        let main = self.registrations.iter().find(|r| r.record.main);
        main.or(self.registrations.first()).copied()
    }

    /// Whether a registration of the year carries `status`.
    fn has(&self, status: &str) -> bool {
        self.registrations
            .iter()
            .any(|r| r.record.special_statuses.iter().any(|s| s == status))
    }

    /// The first profile status of the year (Apogée has one `profil` per year).
    fn profile(&self) -> Option<(String, String)> {
        self.registrations
            .iter()
            .flat_map(|r| &r.record.special_statuses)
            .find_map(|status| codes::profile(status))
    }
}

/// The student's registrations of the selected years, grouped by year.
fn annual_registrations<'d>(
    data: &'d Dataset,
    cod_etu: &str,
    years: Years,
) -> Result<Vec<Annual<'d>>, OpFault> {
    let mut annuals: Vec<Annual<'d>> = Vec::new();
    for registration in registrations_of(data, cod_etu)? {
        let year = registration.record.year;
        if !years.contains(year) {
            continue;
        }
        match annuals.last_mut() {
            Some(annual) if annual.year == year => annual.registrations.push(registration),
            _ => annuals.push(Annual {
                year,
                registrations: vec![registration],
            }),
        }
    }
    Ok(annuals)
}

/// The date Apogée would show for a registration of `year`: the simulator has none, so
/// mid-July (the registration campaign), a fixed summer date.
fn registration_date(year: i32) -> Option<String> {
    NaiveDate::from_ymd_opt(year, 7, 15).and_then(format::midnight_in_paris)
}

/// `InsAdmEtpDTO3`.
fn ins_adm_etp(registration: &RegistrationEntry, annual: &Annual) -> Dto {
    let record = &registration.record;
    let (iae_code, iae_label) = codes::iae_state(record.status);
    let distance = record.special_statuses.iter().any(|s| s == DISTANCE);
    Dto::new(&layouts::INS_ADM_ETP_DTO3)
        .text("anneeIAE", record.year.to_string())
        .maybe("dateIAE", registration_date(record.year))
        .maybe_dto("diplome", registration.diploma.as_ref().map(diplome))
        .dto("etape", etape(&registration.step))
        .text("etapePremiere", format::temoin(record.main))
        .dto("etatIaa", etat_iaa(annual.state()))
        .dto(
            "etatIae",
            Dto::new(&layouts::ETAT_IAE_DTO)
                .text("codeEtatIAE", iae_code)
                .text("libEtatIAE", iae_label),
        )
        .dto("regimeIns", regime_ins(record.regime))
        .text("inscriptionTeleEnseignement", format::temoin(distance))
}

/// `InsAdmAnuDTO2`. Every year has a profile, the ordinary one (`NO`) when no status
/// calls for another; a work quota says employed, or for some students not employed.
fn ins_adm_anu(annual: &Annual, student: &StudentEntry) -> Dto {
    let (code, label) = annual.profile().unwrap_or_else(|| {
        let (code, label) = match student.has_unmapped_profile() {
            true => codes::UNMAPPED_PROFILE,
            false => codes::ORDINARY_PROFILE,
        };
        (code.to_owned(), label.to_owned())
    });
    let profile = Dto::new(&layouts::PROFIL_ETU_DTO)
        .text("code", code)
        .text("libelle", label);
    let quota = match (annual.has(EMPLOYED), student.declares_no_work()) {
        (true, _) => Some(codes::EMPLOYED),
        (false, true) => Some(codes::NOT_EMPLOYED),
        (false, false) => None,
    };
    let quota = quota.map(|(code, label)| {
        Dto::new(&layouts::QUOTITE_TRAV_DTO)
            .text("codeQuotite", code)
            .text("libQuotite", label)
    });
    let athlete = annual.has(HIGH_LEVEL_ATHLETE).then(|| {
        Dto::new(&layouts::SPO_HAUT_NIV_DTO)
            .text("codSportif", codes::HIGH_LEVEL_ATHLETE.0)
            .text("libelle", codes::HIGH_LEVEL_ATHLETE.1)
    });
    Dto::new(&layouts::INS_ADM_ANU_DTO2)
        .text("anneeIAA", annual.year.to_string())
        .maybe("dateIAA", registration_date(annual.year))
        .dto("etatIaa", etat_iaa(annual.state()))
        .dto("profil", profile)
        .maybe_dto("quotiteTrav", quota)
        .maybe_dto(
            "regimeIns",
            annual.main().map(|r| regime_ins(r.record.regime)),
        )
        .maybe_dto("sportifHautNiveau", athlete)
}

fn diplome(diploma: &Versioned) -> Dto {
    Dto::new(&layouts::DIPLOME_DTO)
        .text("codeDiplome", diploma.code.as_str())
        .text("libWebVdi", diploma.label.as_str())
        .text("versionDiplome", diploma.version.as_str())
}

fn etape(step: &Versioned) -> Dto {
    Dto::new(&layouts::ETAPE_DTO)
        .text("codeEtp", step.code.as_str())
        .text("libWebVet", step.label.as_str())
        .text("versionEtp", step.version.as_str())
}

fn etat_iaa((code, label): (&'static str, &'static str)) -> Dto {
    Dto::new(&layouts::ETAT_IAA_DTO)
        .text("codeEtatIAA", code)
        .text("libEtatIAA", label)
}

fn regime_ins(regime: conpere_model::Regime) -> Dto {
    let (code, label) = codes::regime(regime);
    Dto::new(&layouts::REGIME_INS_DTO)
        .text("codRgi", code)
        .text("libRgi", label)
}
