//! `OffreFormationMetier.recupererSE_v4`: the course structure of a year, as far down as
//! Apogée's answer goes (the step's first-level lists and their elements).
//!
//! Canonical structure → Apogée: diplomas and steps become `DiplomeDTO4` › versions ›
//! `EtapeDTO4` › versions, steps in edge-position order. The dataset holds the structure
//! in Apogée's shape (every child of a step is a list: `projection::in_lists`), so each
//! child of a step becomes a `ListeElementPedagogiDTO3` in position order, holding its
//! elements: `typListElp = O` for a list of kind `other` (mandatory elements), `X` for a
//! choice whose edge is mandatory, `F` for an optional one. Nothing below the first level
//! is written: `ElementPedagogiDTO3` has no child lists.

use super::codes;
use super::data::{Dataset, Structure};
use super::dto::Dto;
use super::format;
use super::layouts;
use super::params::{OpFault, Params};
use conpere_model::{Node, NodeKind};

/// `recupererSE_v4(_seCritere)`.
///
/// `codAnu`: the year (omitted or `tous`: the most recent one). `codDip`, `codVrsVdi`,
/// `codEtp`, `codVrsVet`: a code filters, `tous` / `aucun` / omitted do not. `codElp`:
/// `aucun` leaves the lists out, a code keeps only that element (and the lists holding
/// it). The other criteria are not simulated.
pub(crate) fn recuperer_se(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let criteria = request.required_nested("_seCritere", "seCritere")?;
    let query = Query::read(criteria, data)?;
    let structure = data
        .structure(query.year)
        .ok_or_else(|| no_offer(query.year))?;
    let diplomas = group_by_code(structure.diplomas().filter(|d| {
        Query::matches(query.diploma, &d.code) && Query::matches(query.diploma_version, version(d))
    }));
    let answer: Vec<Dto> = diplomas
        .into_iter()
        .filter_map(|(code, versions)| diplome(structure, &query, code, &versions))
        .collect();
    if answer.is_empty() {
        return Err(no_offer(query.year));
    }
    Ok(answer)
}

fn no_offer(year: i32) -> OpFault {
    OpFault::no_data(
        "recupererse",
        format!("aucune structure d'enseignement pour ces critères en {year}"),
    )
}

/// What `_seCritere` asks for.
struct Query<'a> {
    year: i32,
    diploma: Option<&'a str>,
    diploma_version: Option<&'a str>,
    step: Option<&'a str>,
    step_version: Option<&'a str>,
    elements: Elements<'a>,
}

/// The `codElp` criterion.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elements<'a> {
    All,
    None,
    Only(&'a str),
}

impl<'a> Query<'a> {
    fn read(criteria: Params<'a>, data: &Dataset) -> Result<Query<'a>, OpFault> {
        let year = match criteria.filter("codAnu") {
            Some(_) => criteria.year("codAnu", "codAnu")?,
            None => data
                .latest_year()
                .ok_or_else(|| OpFault::no_data("recupererse", "aucune année universitaire"))?,
        };
        let code = |name: &str| {
            criteria
                .filter(name)
                .filter(|v| !v.eq_ignore_ascii_case("aucun"))
        };
        let elements = match criteria.filter("codElp") {
            None => Elements::All,
            Some(v) if v.eq_ignore_ascii_case("aucun") => Elements::None,
            Some(v) => Elements::Only(v),
        };
        Ok(Query {
            year,
            diploma: code("codDip"),
            diploma_version: code("codVrsVdi"),
            step: code("codEtp"),
            step_version: code("codVrsVet"),
            elements,
        })
    }

    fn matches(filter: Option<&str>, value: &str) -> bool {
        filter.is_none_or(|f| f == value)
    }

    fn filters_steps(&self) -> bool {
        self.step.is_some() || self.step_version.is_some()
    }
}

fn version(node: &Node) -> &str {
    node.version.as_deref().unwrap_or_default()
}

/// Nodes grouped by code, in order of first appearance (a code's versions together).
fn group_by_code<'n>(nodes: impl Iterator<Item = &'n Node>) -> Vec<(&'n str, Vec<&'n Node>)> {
    let mut groups: Vec<(&str, Vec<&Node>)> = Vec::new();
    for node in nodes {
        match groups.iter_mut().find(|(code, _)| *code == node.code) {
            Some((_, versions)) => versions.push(node),
            None => groups.push((&node.code, vec![node])),
        }
    }
    groups
}

/// `DiplomeDTO4`, `None` when none of its versions is selected.
fn diplome(structure: &Structure, query: &Query, code: &str, versions: &[&Node]) -> Option<Dto> {
    let label = versions.first().map(|d| d.label.as_str());
    let versions: Vec<Dto> = versions
        .iter()
        .filter_map(|vdi| version_diplome(structure, query, vdi))
        .collect();
    if versions.is_empty() {
        return None;
    }
    Some(
        Dto::new(&layouts::DIPLOME_DTO4)
            .text("codDip", code)
            .maybe("libDip", label)
            .items("listVersionDiplome", versions),
    )
}

/// `VersionDiplomeDTO4` with its steps; `None` when a step criterion leaves none.
fn version_diplome(structure: &Structure, query: &Query, vdi: &Node) -> Option<Dto> {
    let steps = structure
        .children(&vdi.node)
        .iter()
        .filter_map(|edge| structure.node(&edge.child))
        .filter(|node| node.kind == NodeKind::Step)
        .filter(|vet| {
            Query::matches(query.step, &vet.code)
                && Query::matches(query.step_version, version(vet))
        });
    let etapes: Vec<Dto> = group_by_code(steps)
        .into_iter()
        .map(|(code, versions)| etape(structure, query, code, &versions))
        .collect();
    if etapes.is_empty() && query.filters_steps() {
        return None;
    }
    let offer = Dto::new(&layouts::OFFRE_FORMATION_DTO4).items("listEtape", etapes);
    Some(
        Dto::new(&layouts::VERSION_DIPLOME_DTO4)
            .maybe("codVrsVdi", format::int(version(vdi)))
            .maybe("credits", format::decimal(vdi.ects))
            .text("libWebVdi", vdi.label.as_str())
            .dto("offreFormation", offer),
    )
}

/// `EtapeDTO4` with its versions.
fn etape(structure: &Structure, query: &Query, code: &str, versions: &[&Node]) -> Dto {
    let label = versions.first().map(|vet| vet.label.as_str());
    let versions = versions
        .iter()
        .map(|vet| {
            Dto::new(&layouts::VERSION_ETAPE_DTO4)
                .maybe("codVrsVet", format::int(version(vet)))
                .maybe("credits", format::decimal(vet.ects))
                .text("libWebVet", vet.label.as_str())
                .items("listListeElementPedagogi", lists(structure, query, vet))
        })
        .collect();
    Dto::new(&layouts::ETAPE_DTO4)
        .text("codEtp", code)
        .maybe("libEtp", label)
        .items("listVersionEtape", versions)
}

/// The step's lists, in position order.
fn lists(structure: &Structure, query: &Query, vet: &Node) -> Vec<Dto> {
    if query.elements == Elements::None {
        return Vec::new();
    }
    let mut lists = Vec::new();
    for edge in structure.children(&vet.node) {
        let Some(list) = structure.node(&edge.child) else {
            continue;
        };
        let elements = structure
            .children(&list.node)
            .iter()
            .filter_map(|element| structure.node(&element.child));
        let choice = list.kind == NodeKind::Choice;
        let kind = codes::list_type(choice, edge.mandatory);
        lists.extend(self::list(query, &list.code, &list.label, kind, elements));
    }
    lists
}

/// `ListeElementPedagogiDTO3`; `None` when an element criterion leaves it empty.
fn list<'n>(
    query: &Query,
    code: &str,
    label: &str,
    kind: &'static str,
    elements: impl Iterator<Item = &'n Node>,
) -> Option<Dto> {
    let elements: Vec<Dto> = elements
        .filter(|node| match query.elements {
            Elements::Only(code) => node.code == code,
            Elements::All | Elements::None => true,
        })
        .map(element)
        .collect();
    if elements.is_empty() && matches!(query.elements, Elements::Only(_)) {
        return None;
    }
    Some(
        Dto::new(&layouts::LISTE_ELEMENT_PEDAGOGI_DTO3)
            .text("codListElp", code)
            .text("libListElp", label)
            .items("listElementPedagogi", elements)
            .text("typListElp", kind),
    )
}

/// `ElementPedagogiDTO3`.
fn element(node: &Node) -> Dto {
    let (nature, nature_label) = codes::elp_nature(node.kind);
    Dto::new(&layouts::ELEMENT_PEDAGOGI_DTO3)
        .text("codElp", node.code.as_str())
        .maybe("codPeriode", node.period.as_deref())
        .maybe("credits", format::decimal(node.ects))
        .text("libElp", node.label.as_str())
        .text("codNatureElp", nature)
        .text("libNatureElp", nature_label)
        .text("temSusp", "N")
}
