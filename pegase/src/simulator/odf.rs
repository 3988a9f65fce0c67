//! ODF ext v1 (no published spec: the shapes of `specs/notes/pegase-odf-ext-v1.md`):
//! periods, maquette objects, their details and the maquette trees.

use super::codes::{object_type, odf_class, odf_object_kind, uuid_for};
use super::data::{object_id, Structure};
use super::http::{ApiError, PageInfo, Paging, Params};
use super::state::Shared;
use super::Period;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use conpere_model::{Node, NodeKind};
use serde_json::{json, Value};

/// Page size when the client sends none, and the largest accepted.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1_000;

/// The query string of a route, or why it did not decode.
type QueryResult = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// A paged envelope `{items, totalElements, totalPages, taille, page}`.
fn envelope(info: PageInfo, items: Vec<Value>) -> Json<Value> {
    let mut body = json!(info);
    body["items"] = Value::Array(items);
    Json(body)
}

/// The UUID of a period.
pub(crate) fn period_id(period: &Period) -> String {
    uuid_for(&format!("periode|{}", period.code))
}

/// `GET /api/odf/ext/v1/etablissement/{cs}/espaces`: the configured periods.
pub(crate) async fn spaces(
    State(state): State<Shared>,
    Path(cs): Path<String>,
    query: QueryResult,
) -> Result<Json<Value>, ApiError> {
    state.check_structure(&cs)?;
    let params = Params::from_query(query)?;
    let paging = Paging::read(&params, MAX_PAGE, Some(DEFAULT_PAGE))?;
    // Only periods exist here: a filter on sandboxes finds none.
    let periods: Vec<&Period> = match params.get("type") {
        Some(kind) if kind != "PERIODE" => Vec::new(),
        _ => state.periods.iter().collect(),
    };
    let (info, page) = paging.slice(periods);
    Ok(envelope(info, page.into_iter().map(space).collect()))
}

fn space(period: &Period) -> Value {
    let label = format!("Période {}-{}", period.year, period.year + 1);
    json!({
        "id": period_id(period), "code": period.code, "libelle": label,
        "libelleLong": label, "libelleAffichage": label, "typeEspace": "PERIODE",
        "type": "FORMATION", "active": true, "anneeUniversitaire": period.year,
        "validite": {
            "dateDebut": format!("{}-09-01", period.year),
            "dateFin": format!("{}-08-31", period.year + 1),
        },
    })
}

/// `GET …/objets-maquette?espace=&typeObjetMaquette=…`: the objects of a period, all
/// kinds unless filtered (both `OBJET-FORMATION` and `OBJET_FORMATION` accepted).
pub(crate) async fn objects(
    State(state): State<Shared>,
    Path(cs): Path<String>,
    query: QueryResult,
) -> Result<Json<Value>, ApiError> {
    state.check_structure(&cs)?;
    let params = Params::from_query(query)?;
    let paging = Paging::read(&params, MAX_PAGE, Some(DEFAULT_PAGE))?;
    let space = params
        .get("espace")
        .ok_or_else(|| ApiError::bad_request("notNull", "espace est obligatoire"))?;
    let period = state
        .periods
        .iter()
        .find(|p| period_id(p) == space)
        .ok_or_else(|| ApiError::not_found("espace.inconnu", format!("espace {space} inconnu")))?;
    let kinds: Vec<String> = params
        .all("typeObjetMaquette")
        .map(|k| k.replace('_', "-"))
        .collect();
    let nodes: Vec<&Node> = state
        .data
        .years
        .get(&period.year)
        .into_iter()
        .flat_map(|s| s.nodes.values())
        .filter(|n| kinds.is_empty() || kinds.iter().any(|k| k == odf_object_kind(n.kind)))
        .collect();
    let (info, page) = paging.slice(nodes);
    let items = page
        .into_iter()
        .map(|n| summary(&state, period, n))
        .collect();
    Ok(envelope(info, items))
}

fn summary(state: &Shared, period: &Period, node: &Node) -> Value {
    let shared = state
        .data
        .years
        .get(&node.year)
        .is_some_and(|s| is_shared(s, &node.node));
    json!({
        "id": object_id(node.year, &node.node), "code": node.node,
        "typeObjetMaquette": odf_object_kind(node.kind), "typeObjetFormation": type_of(node),
        "libelle": node.label, "libelleLong": node.label, "espaceLibelle": period.code,
        "mutualise": shared, "valideInAnyContexte": true, "periodeActive": true,
    })
}

/// The object type, `null` for groupements (they have none).
fn type_of(node: &Node) -> Value {
    match node.kind {
        NodeKind::Choice => Value::Null,
        kind => json!({"code": object_type(kind)}),
    }
}

fn is_shared(structure: &Structure, node: &str) -> bool {
    structure.parents.get(node).is_some_and(|p| p.len() > 1)
}

/// The node behind an object UUID, or a 404.
fn lookup<'a>(state: &'a Shared, id: &str) -> Result<(&'a Structure, &'a Node), ApiError> {
    state
        .data
        .objects
        .get(id)
        .and_then(|(year, node)| {
            let structure = state.data.years.get(year)?;
            Some((structure, structure.nodes.get(node)?))
        })
        .ok_or_else(|| ApiError::not_found("objet.inconnu", format!("objet {id} inconnu")))
}

/// `GET …/objets-maquette/{id}`: the detail, with the descriptors the tree lacks (ECTS,
/// choice range of a groupement, taken from the edge leading to it).
pub(crate) async fn object(
    State(state): State<Shared>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.check_structure(&cs)?;
    let (structure, node) = lookup(&state, &id)?;
    let children: Vec<Value> = structure
        .children
        .get(&node.node)
        .into_iter()
        .flatten()
        .map(|e| json!({"id": object_id(e.year, &e.child), "obligatoire": e.mandatory}))
        .collect();
    let mut descriptors = json!({
        "libelle": node.label, "libelleLong": node.label,
        "typeObjetMaquette": odf_object_kind(node.kind),
    });
    if node.kind == NodeKind::Choice {
        let range = structure.parents.get(&node.node).and_then(|p| p.first());
        descriptors["plageDeChoix"] = json!({
            "min": range.and_then(|e| e.min), "max": range.and_then(|e| e.max),
        });
    } else {
        descriptors["ects"] = json!(node.ects);
        descriptors["type"] = type_of(node);
    }
    let space = state
        .periods
        .iter()
        .find(|p| p.year == node.year)
        .map(period_id);
    Ok(Json(json!({
        "id": id, "code": node.node, "typeObjetMaquette": odf_object_kind(node.kind),
        "espace": space, "mutualise": is_shared(structure, &node.node),
        "enfants": children, "contextes": [], "descripteursObjetMaquette": descriptors,
    })))
}

/// `GET …/maquette/{id}`: the tree under an object, `{racine}`.
pub(crate) async fn tree(
    State(state): State<Shared>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.check_structure(&cs)?;
    let (structure, node) = lookup(&state, &id)?;
    Ok(Json(
        json!({"racine": structure_of(structure, node, &node.node)}),
    ))
}

/// An `ObjetMaquetteStructure`, recursively; `context` is the path of codes from the
/// root, which identifies the context (a mutualised object has one per parent).
fn structure_of(structure: &Structure, node: &Node, context: &str) -> Value {
    let children: Vec<Value> = structure
        .children
        .get(&node.node)
        .into_iter()
        .flatten()
        .filter_map(|edge| {
            let child = structure.nodes.get(&edge.child)?;
            let context = format!("{context}>{}", child.node);
            Some(json!({
                "id": object_id(edge.year, &edge.child), "obligatoire": edge.mandatory,
                "objetMaquette": structure_of(structure, child, &context),
            }))
        })
        .collect();
    json!({
        "id": object_id(node.year, &node.node), "contexteId": uuid_for(&format!("{}|{context}", node.year)),
        "classe": odf_class(node.kind), "type": object_type(node.kind), "code": node.node,
        "libelle": node.label, "pia": {"actif": node.kind == NodeKind::Step}, "valide": true,
        "mutualise": is_shared(structure, &node.node), "ects": node.ects, "enfants": children,
    })
}
