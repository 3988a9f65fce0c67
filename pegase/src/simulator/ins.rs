//! INS ext v2: the registration feed `flux-inscriptions/pagine` (`VueInscriptions`).

use super::codes::{regime_code, special_status_profile, status_code, uuid_for};
use super::data::Served;
use super::http::{now, ApiError, PageInfo, Paging, Params};
use super::state::Shared;
use super::Period;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use conpere_model::{Node, Student};
use serde::Serialize;

/// The largest `taille` without photos.
const MAX_PAGE: usize = 500;

/// One page of the feed.
#[derive(Serialize)]
pub(crate) struct VueInscriptions {
    #[serde(flatten)]
    info: PageInfo,
    resultats: Vec<VueInscription>,
}

/// One registration of the feed (the fields of the published `VueInscription` this
/// simulator has data for, and the required ones with neutral values).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VueInscription {
    #[serde(rename = "UAI")]
    uai: String,
    id_apprenant: String,
    code_apprenant: String,
    #[serde(rename = "INE", skip_serializing_if = "Option::is_none")]
    ine: Option<String>,
    civilite: &'static str,
    nom_famille: String,
    nom_usage: String,
    prenom: String,
    date_de_naissance: String,
    nationalite: &'static str,
    droit_photo: bool,
    regime: &'static str,
    bourses: Vec<String>,
    profils_exonerants: Vec<Profile>,
    mobilite: &'static str,
    statut_paiement: &'static str,
    statut_inscription: &'static str,
    inscription_principale: bool,
    formation: String,
    annee_universitaire: i32,
    periode: String,
    date_inscription: String,
    derniere_modification: i64,
    derniere_modification_apprenant: i64,
    chemin: Vec<VueCheminCible>,
    adresses: Vec<serde_json::Value>,
    mels: Vec<serde_json::Value>,
    telephones: Vec<serde_json::Value>,
}

/// A `profilsExonerants` entry (carries a special status, see the README).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    code: String,
    libelle_long: String,
}

/// One object of the registration's path.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VueCheminCible {
    code: String,
    #[serde(rename = "type")]
    kind: &'static str,
    libelle_court: String,
    libelle_long: String,
    id_chemin: String,
    id_periode: String,
}

/// The feed's filters.
struct Window {
    since: i64,
    until: i64,
    period: Option<Period>,
    student: Option<String>,
}

impl Window {
    fn read(state: &Shared, params: &Params) -> Result<Window, ApiError> {
        let until = match params.int("jusqua")?.unwrap_or(0) {
            0 => i64::MAX,
            until => until,
        };
        let period = params
            .get("codePeriode")
            .map(|code| state.period(code).cloned())
            .transpose()?;
        Ok(Window {
            since: params.int("depuis")?.unwrap_or(0),
            until,
            period,
            student: params.get("codeApprenant").map(str::to_owned),
        })
    }

    /// `depuis` inclusive, `jusqua` exclusive.
    fn contains(&self, served: &Served) -> bool {
        let r = &served.registration;
        (self.since..self.until).contains(&served.modified)
            && self.period.as_ref().is_none_or(|p| p.year == r.year)
            && self.student.as_deref().is_none_or(|s| s == r.student)
    }
}

/// `GET /api/ins/ext/v2/gestion/flux-inscriptions/pagine`.
pub(crate) async fn flux(
    State(state): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<VueInscriptions>, ApiError> {
    let params = Params::from_query(query)?;
    let paging = Paging::read(&params, MAX_PAGE, None)?;
    let window = Window::read(&state, &params)?;
    let selected: Vec<Served> = state
        .data
        .registrations()
        .iter()
        .filter(|s| window.contains(s) && status_code(s.registration.status).is_some())
        .cloned()
        .collect();
    let (info, page) = paging.slice(selected);
    let resultats = page.iter().filter_map(|s| view(&state, s)).collect();
    Ok(Json(VueInscriptions { info, resultats }))
}

/// The feed entry of a registration; `None` when its student, period or nodes are
/// missing from the records (nothing sensible to serve).
fn view(state: &Shared, served: &Served) -> Option<VueInscription> {
    let r = &served.registration;
    let student = state.data.students.get(&r.student)?;
    let period = state.periods.iter().find(|p| p.year == r.year)?;
    let structure = state.data.years.get(&r.year)?;
    let step = structure.nodes.get(&r.step)?;
    let diploma = r
        .diploma
        .as_ref()
        .and_then(|d| structure.nodes.get(d))
        .or_else(|| structure.diploma_of(&r.step))?;
    let mut entry = identity(state, student, served.modified);
    entry.regime = regime_code(r.regime);
    entry.profils_exonerants = r
        .special_statuses
        .iter()
        .map(|s| special_status_profile(s))
        .map(|(code, libelle_long)| Profile { code, libelle_long })
        .collect();
    entry.statut_inscription = status_code(r.status)?;
    entry.inscription_principale = r.main;
    entry.formation = diploma.node.clone();
    entry.annee_universitaire = r.year;
    entry.periode = period.code.clone();
    entry.date_inscription = format!("{}-07-15T00:00:00", r.year);
    entry.chemin = [diploma, step]
        .into_iter()
        .map(|node| chemin_part(node, period))
        .collect();
    Some(entry)
}

/// The learner's part of an entry, the registration fields left neutral.
fn identity(state: &Shared, student: &Student, modified: i64) -> VueInscription {
    VueInscription {
        uai: state.uai.clone(),
        id_apprenant: uuid_for(&format!("apprenant|{}", student.student)),
        code_apprenant: student.student.clone(),
        ine: student.ine.clone(),
        // The canonical model has no civility: a fixed value, not to be read back.
        civilite: "F",
        nom_famille: student.family_name.clone(),
        nom_usage: student.usual_name.clone().unwrap_or_default(),
        prenom: student.given_name.clone(),
        date_de_naissance: student
            .birth_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        nationalite: "100",
        droit_photo: false,
        regime: "",
        bourses: Vec::new(),
        profils_exonerants: Vec::new(),
        mobilite: "SANS",
        statut_paiement: "paye",
        statut_inscription: "",
        inscription_principale: true,
        formation: String::new(),
        annee_universitaire: 0,
        periode: String::new(),
        date_inscription: String::new(),
        derniere_modification: modified,
        derniere_modification_apprenant: modified,
        chemin: Vec::new(),
        adresses: Vec::new(),
        mels: Vec::new(),
        telephones: Vec::new(),
    }
}

fn chemin_part(node: &Node, period: &Period) -> VueCheminCible {
    VueCheminCible {
        code: node.node.clone(),
        kind: super::codes::object_type(node.kind),
        libelle_court: node.label.clone(),
        libelle_long: node.label.clone(),
        id_chemin: super::data::object_id(node.year, &node.node),
        id_periode: uuid_for(&format!("periode|{}", period.code)),
    }
}

/// Marks the registrations `change` modified as modified now; how many it changed.
pub(crate) fn touch(
    state: &Shared,
    mut change: impl FnMut(&mut conpere_model::Registration) -> bool,
) -> usize {
    let at = now();
    let mut changed = 0;
    for served in state.data.registrations().iter_mut() {
        if change(&mut served.registration) {
            served.modified = at;
            changed += 1;
        }
    }
    changed
}
