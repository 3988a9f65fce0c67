//! `EtudiantMetier`: who is registered, and who they are.

use super::codes;
use super::data::{Dataset, RegistrationEntry, StudentEntry, Versioned};
use super::dto::Dto;
use super::format;
use super::layouts;
use super::params::{OpFault, Params};
use chrono::NaiveDate;
use std::collections::HashSet;

/// `recupererListeEtudiants(_parametres)`: every student with a step registration of
/// `annee` (whatever its state) in the listed steps and diplomas (`listEtapes/item`,
/// `listDiplomes/item`: `code`, optional `listVersion`s; no list = no filter), each once,
/// in registration order. The other criteria of `EtudiantCritereDTO` are not simulated.
pub(crate) fn liste_etudiants(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let criteria = request.required_nested("_parametres", "parametres")?;
    let year = criteria.year("annee", "annee")?;
    let steps = CodeFilter::read(criteria, "listEtapes");
    let diplomas = CodeFilter::read(criteria, "listDiplomes");
    let mut seen = HashSet::new();
    let students: Vec<Dto> = data
        .registrations_in(year)
        .filter(|r| steps.matches(Some(&r.step)) && diplomas.matches(r.diploma.as_ref()))
        .filter(|r| seen.insert(r.record.student.as_str()))
        .filter_map(|r| data.student(&r.record.student))
        .map(etudiant)
        .collect();
    if students.is_empty() {
        return Err(OpFault::no_data(
            "etudiant",
            format!("aucun étudiant inscrit en {year} pour ces critères"),
        ));
    }
    Ok(students)
}

/// `EtudiantDTO2`: the listing's short form.
fn etudiant(student: &StudentEntry) -> Dto {
    let record = &student.record;
    let name = record.usual_name.as_deref().unwrap_or(&record.family_name);
    Dto::new(&layouts::ETUDIANT_DTO2)
        .text("codEtu", record.student.as_str())
        .text("nom", name)
        .text("prenom", record.given_name.as_str())
        .maybe("dateNaissance", record.birth_date.map(format::french_date))
        .maybe("numeroIne", record.ine.as_deref())
}

/// `listEtapes` / `listDiplomes` of the criteria: (code, versions) pairs.
struct CodeFilter(Vec<(String, Vec<String>)>);

impl CodeFilter {
    fn read(criteria: Params, list: &str) -> CodeFilter {
        let items = criteria
            .nested(list)
            .into_iter()
            .flat_map(|list| list.repeated("item"))
            .filter_map(|item| {
                let code = item.text("code")?.to_owned();
                let versions = item
                    .repeated("listVersion")
                    .filter_map(|v| v.value())
                    .map(str::to_owned)
                    .collect();
                Some((code, versions))
            })
            .collect();
        CodeFilter(items)
    }

    /// No items: everything matches; otherwise one item must match code and version.
    fn matches(&self, object: Option<&Versioned>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        object.is_some_and(|object| {
            self.0.iter().any(|(code, versions)| {
                *code == object.code && (versions.is_empty() || versions.contains(&object.version))
            })
        })
    }
}

/// `recupererInfosAdmEtu_v4(_codEtu)`: civil status (`InfoAdmEtuDTO4`).
pub(crate) fn infos_adm_etu(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let student = known_student(data, request.cod_etu()?)?;
    let record = &student.record;
    let handicap = student.disability.then(|| {
        Dto::new(&layouts::TYP_HANDICAP_COURT_DTO)
            .text("codeHandicap", codes::DISABILITY.0)
            .text("libHandicap", codes::DISABILITY.1)
    });
    Ok(vec![Dto::new(&layouts::INFO_ADM_ETU_DTO4)
        .maybe(
            "dateNaissance",
            record.birth_date.and_then(birth_date(student)),
        )
        .maybe_dto("handicap", handicap)
        .text("nomPatronymique", record.family_name.as_str())
        .maybe("nomUsuel", record.usual_name.as_deref())
        .maybe("numEtu", format::int(&record.student))
        .maybe("numeroINE", record.ine.as_deref())
        .text("prenom1", record.given_name.as_str())])
}

/// How `dateNaissance` is written for `student`: a UTC instant as Axis serialises it, or
/// local midnight with its offset.
fn birth_date(student: &StudentEntry) -> fn(NaiveDate) -> Option<String> {
    match student.sends_utc_instants() {
        true => format::axis_instant,
        false => format::midnight_in_paris,
    }
}

/// `recupererIdentifiantsEtudiant_v2`: the student's numbers and, when
/// `_temoinRecupAnnu = O`, their directory e-mail and login. Looked up by `_codEtu`, else
/// by `_numINE`; the other search parameters are not simulated.
pub(crate) fn identifiants(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let student = match (request.text("_codEtu"), request.text("_numINE")) {
        (None, Some(ine)) => data
            .student_by_ine(ine)
            .ok_or_else(|| unknown("INE", ine))?,
        _ => known_student(data, request.cod_etu()?)?,
    };
    let record = &student.record;
    let directory = request.text("_temoinRecupAnnu") == Some("O");
    Ok(vec![Dto::new(&layouts::IDENTIFIANTS_ETUDIANT_DTO2)
        .maybe("codEtu", format::int(&record.student))
        .text("codInd", student.cod_ind.to_string())
        .maybe(
            "emailAnnuaire",
            record.email.as_deref().filter(|_| directory),
        )
        .maybe(
            "loginAnnuaire",
            record.login.as_deref().filter(|_| directory),
        )
        .maybe("numeroINE", record.ine.as_deref())])
}

/// The student `cod_etu`, or the "no such student" fault.
pub(crate) fn known_student<'d>(
    data: &'d Dataset,
    cod_etu: &str,
) -> Result<&'d StudentEntry, OpFault> {
    data.student(cod_etu)
        .ok_or_else(|| unknown("numéro", cod_etu))
}

fn unknown(what: &str, value: &str) -> OpFault {
    OpFault::no_data(
        "etudiant",
        format!("aucun étudiant pour ce {what} : {value}"),
    )
}

/// The registrations of a student, for the operations that need the student to exist.
pub(crate) fn registrations_of<'d>(
    data: &'d Dataset,
    cod_etu: &str,
) -> Result<impl Iterator<Item = &'d RegistrationEntry>, OpFault> {
    known_student(data, cod_etu)?;
    Ok(data.registrations_of(cod_etu))
}
