//! CHC ext v1: the learners of each course object (`cursus` by object type or by object
//! code), from the canonical enrolments.

use super::codes::{object_type, object_type_labels};
use super::data::Structure;
use super::http::ApiError;
use super::state::Shared;
use axum::extract::{Path, State};
use axum::Json;
use conpere_model::{Enrolment, Node, Student};
use serde::Serialize;
use std::collections::BTreeMap;

/// One object and its learners (`CursusPourext`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Cursus {
    objet_formation: ObjetFormation,
    liste_apprenants: Vec<Apprenant>,
}

/// `ObjetFormationPourext`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjetFormation {
    code: String,
    libelle_court: String,
    libelle_long: String,
    type_objet_formation: TypeObjetFormation,
    caractere_obligatoire: bool,
    capacite_accueil: Option<i64>,
    chemin: String,
}

/// `TypeObjetFormation`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypeObjetFormation {
    code: &'static str,
    libelle_court: &'static str,
    libelle_long: &'static str,
}

/// `ApprenantPourext`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Apprenant {
    code_apprenant: String,
    nom_famille: String,
    prenom: String,
    date_naissance: String,
    amenagements: Vec<serde_json::Value>,
}

/// `GET …/type-objet-formation/{cs}/{codePeriode}/{typeObjet}/cursus`.
pub(crate) async fn by_type(
    State(state): State<Shared>,
    Path((cs, period, kind)): Path<(String, String, String)>,
) -> Result<Json<Vec<Cursus>>, ApiError> {
    cursus(&state, &cs, &period, |node| object_type(node.kind) == kind)
}

/// `GET …/objet-formation/{cs}/{codePeriode}/{codeObjetFormation}/cursus`.
pub(crate) async fn by_object(
    State(state): State<Shared>,
    Path((cs, period, code)): Path<(String, String, String)>,
) -> Result<Json<Vec<Cursus>>, ApiError> {
    cursus(&state, &cs, &period, |node| node.node == code)
}

/// The entries of the period's enrolments whose node `wanted` accepts: one per object and
/// path (a mutualised object reached through two choice lists gives two entries), sorted
/// by path, learners by name.
fn cursus(
    state: &Shared,
    cs: &str,
    period: &str,
    wanted: impl Fn(&Node) -> bool,
) -> Result<Json<Vec<Cursus>>, ApiError> {
    state.check_structure(cs)?;
    let year = state.period(period)?.year;
    let Some(structure) = state.data.years.get(&year) else {
        return Ok(Json(Vec::new()));
    };
    let mut entries: BTreeMap<String, Cursus> = BTreeMap::new();
    let enrolments = structure
        .nodes
        .values()
        .filter(|n| wanted(n))
        .flat_map(|n| state.data.enrolments_of(year, &n.node).map(move |e| (n, e)));
    for (node, enrolment) in enrolments {
        let (Some(path), Some(student)) = (
            chemin(structure, enrolment),
            state.data.students.get(&enrolment.student),
        ) else {
            continue;
        };
        let chemin = path.join(">");
        entries
            .entry(chemin.clone())
            .or_insert_with(|| entry(structure, node, &path, chemin))
            .liste_apprenants
            .push(apprenant(student, enrolment));
    }
    let mut list: Vec<Cursus> = entries.into_values().collect();
    for entry in &mut list {
        entry
            .liste_apprenants
            .sort_by(|a, b| (&a.nom_famille, &a.prenom).cmp(&(&b.nom_famille, &b.prenom)));
    }
    Ok(Json(list))
}

/// The codes from the formation down to the enrolled node, through the choice list it
/// was taken through.
fn chemin(structure: &Structure, enrolment: &Enrolment) -> Option<Vec<String>> {
    let diploma = structure.diploma_of(&enrolment.step)?;
    let mut path = vec![diploma.node.clone()];
    path.extend(structure.path(&enrolment.step, &enrolment.node, enrolment.via.as_deref())?);
    Some(path)
}

fn entry(structure: &Structure, node: &Node, path: &[String], chemin: String) -> Cursus {
    let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
    let mandatory = parent
        .and_then(|p| structure.edge(p, &node.node))
        .is_none_or(|e| e.mandatory);
    let (court, long) = object_type_labels(node.kind);
    Cursus {
        objet_formation: ObjetFormation {
            code: node.node.clone(),
            libelle_court: node.label.clone(),
            libelle_long: node.label.clone(),
            type_objet_formation: TypeObjetFormation {
                code: object_type(node.kind),
                libelle_court: court,
                libelle_long: long,
            },
            caractere_obligatoire: mandatory,
            capacite_accueil: None,
            chemin,
        },
        liste_apprenants: Vec::new(),
    }
}

/// A learner of an object; an exemption and a carried-over credit are the aménagements
/// `TAM001` and `TAM002` (README "Mapping").
fn apprenant(student: &Student, enrolment: &Enrolment) -> Apprenant {
    let adjustment = |code: &str, label: &str, taken: &str| {
        serde_json::json!({"code": code, "libelleAffichage": label,
                           "motif": "Décision jury", "priseEnCompte": taken})
    };
    let mut amenagements = Vec::new();
    if enrolment.exempted {
        amenagements.push(adjustment("TAM001", "Validation - Dispense", "Dispense"));
    }
    if enrolment.carried_over {
        amenagements.push(adjustment("TAM002", "Acquis antérieur", "Acquis"));
    }
    Apprenant {
        code_apprenant: student.student.clone(),
        nom_famille: student.family_name.clone(),
        prenom: student.given_name.clone(),
        date_naissance: student
            .birth_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        amenagements,
    }
}
