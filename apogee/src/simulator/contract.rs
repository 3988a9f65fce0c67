//! `PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6`: a registration's
//! pedagogical contract, one item per element the student is enrolled in.
//!
//! Canonical → Apogée: each enrolment in an ELP becomes an item; its `codElpSup` is the
//! node's parent in the structure when that parent is an ELP (preferring one the student
//! is enrolled in, for elements shared by several parents), and `rngElp` its depth below
//! the step (1 = directly in one of the step's lists). `resultatsElp` holds an item of the
//! previous year for a carried-over enrolment (acquired then), a `DIS` item for an
//! exempted one and one item per canonical result. Enrolments in nodes that are not ELPs
//! have no Apogée form and are not written.

use super::codes;
use super::data::{elp_code, Dataset, RegistrationEntry, Structure};
use super::dto::Dto;
use super::format;
use super::layouts;
use super::params::{OpFault, Params};
use super::students::registrations_of;
use conpere_model::{CourseResult, Enrolment, Node, NodeKind};
use std::collections::HashSet;

/// Deepest `codElpSup` chain followed: a structure deeper than this (or a cycle in
/// malformed records) stops counting instead of looping.
const MAX_DEPTH: usize = 32;

/// `recupererContratPedagogiqueResultatElpEpr_v6(_codEtu, _codAnu, _codEtp, _codVrsVet,
/// _sourceRes, _etatDelib, _codSes, _typeRes, _codEtaIae)`.
///
/// `_codAnu` is required; `_codEtp` / `_codVrsVet` select the registration (omitted or
/// `tous`: every step of the year); `_codEtaIae` filters on the registration's state
/// letters (see [`codes::iae_state_selected`]). `_sourceRes`, `_etatDelib`, `_codSes` and
/// `_typeRes` are accepted and not interpreted: every result is written.
pub(crate) fn contrat(data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
    let cod_etu = request.cod_etu()?;
    let year = request.year("_codAnu", "codAnu")?;
    let (step, version) = (request.filter("_codEtp"), request.filter("_codVrsVet"));
    let states = request.states("_codEtaIae");
    let structure = data.structure(year);
    let items: Vec<Dto> = registrations_of(data, cod_etu)?
        .filter(|r| r.record.year == year)
        .filter(|r| step.is_none_or(|s| s == r.step.code))
        .filter(|r| version.is_none_or(|v| v == r.step.version))
        .filter(|r| codes::iae_state_selected(codes::iae_state(r.record.status).0, &states))
        .flat_map(|registration| {
            let contract = Contract::new(data, structure, registration);
            contract.items()
        })
        .collect();
    if items.is_empty() {
        return Err(OpFault::no_data(
            "findIP",
            format!("aucune inscription pédagogique pour l'étudiant {cod_etu} en {year}"),
        ));
    }
    Ok(items)
}

/// One registration's contract being written.
struct Contract<'d> {
    data: &'d Dataset,
    structure: Option<&'d Structure>,
    registration: &'d RegistrationEntry,
    enrolments: &'d [Enrolment],
    /// The node ids the student is enrolled in, to pick the right parent.
    enrolled: HashSet<&'d str>,
}

impl<'d> Contract<'d> {
    fn new(
        data: &'d Dataset,
        structure: Option<&'d Structure>,
        registration: &'d RegistrationEntry,
    ) -> Contract<'d> {
        let enrolments = data.enrolments(&registration.record);
        Contract {
            data,
            structure,
            registration,
            enrolments,
            enrolled: enrolments.iter().map(|e| e.node.as_str()).collect(),
        }
    }

    fn items(&self) -> Vec<Dto> {
        self.enrolments
            .iter()
            .filter_map(|e| self.item(e))
            .collect()
    }

    /// `ContratPedagogiqueResultatElpEprDTO5`.
    fn item(&self, enrolment: &Enrolment) -> Option<Dto> {
        let code = elp_code(&enrolment.node)?;
        let node = self.structure.and_then(|s| s.node(&enrolment.node));
        let parent = self.parent(&enrolment.node).and_then(elp_code);
        let state_label = codes::iae_state(self.registration.record.status).1;
        Some(
            Dto::new(&layouts::CONTRAT_PEDAGOGIQUE_RESULTAT_ELP_EPR_DTO5)
                .text("codAnu", enrolment.year.to_string())
                .maybe("codElpSup", parent)
                .text("libEtatIae", state_label)
                .dto("elp", elp(code, node))
                .items("resultatsElp", self.results(enrolment, node))
                .text("rngElp", self.depth(&enrolment.node).to_string()),
        )
    }

    /// The ELP parent of `node` in the structure: one the student is enrolled in if
    /// there is one, else the first.
    fn parent(&self, node: &str) -> Option<&'d str> {
        let parents = self.structure?.parents(node);
        let elps = || parents.iter().filter(|p| elp_code(p).is_some());
        elps()
            .find(|p| self.enrolled.contains(p.as_str()))
            .or_else(|| elps().next())
            .map(String::as_str)
    }

    /// `rngElp`: 1 for an element directly below the step's lists, one more per ELP
    /// ancestor.
    fn depth(&self, node: &str) -> usize {
        let mut depth = 1;
        let mut current = node;
        while let Some(parent) = self.parent(current) {
            if depth >= MAX_DEPTH {
                break;
            }
            depth += 1;
            current = parent;
        }
        depth
    }

    /// `resultatsElp` items.
    fn results(&self, enrolment: &Enrolment, node: Option<&Node>) -> Vec<Dto> {
        let year = enrolment.year;
        let ects = node.and_then(|n| n.ects);
        let carried = enrolment.carried_over.then(|| {
            result_item(year - 1, codes::ACQUIRED)
                .maybe("nbrCrdElp", format::decimal(ects))
                .dto("session", session("1"))
        });
        let exempted = enrolment
            .exempted
            .then(|| result_item(year, codes::EXEMPTED));
        let graded = self
            .data
            .results(year, &enrolment.student, &enrolment.node)
            .iter()
            .map(graded_item);
        carried.into_iter().chain(exempted).chain(graded).collect()
    }
}

/// `ElementPedagogiDTO5` with its `NatureElpDTO`.
fn elp(code: &str, node: Option<&Node>) -> Dto {
    let kind = node.map_or(NodeKind::Element, |n| n.kind);
    let (nature, nature_label) = codes::elp_nature(kind);
    let nature = Dto::new(&layouts::NATURE_ELP_DTO)
        .text("codNel", nature)
        .text("libNel", nature_label)
        .text("temFictif", "N")
        .text("temSemestre", format::temoin(kind == NodeKind::Semester))
        .text("temUe", format::temoin(kind == NodeKind::Unit));
    Dto::new(&layouts::ELEMENT_PEDAGOGI_DTO5)
        .text("codElp", code)
        .text("libElp", node.map_or(code, |n| n.label.as_str()))
        .dto("natureElp", nature)
        .maybe("nbrCrdElp", format::decimal(node.and_then(|n| n.ects)))
}

/// A `ResultatElpDTO3` of `year` with its `typResultat`.
fn result_item(year: i32, (code, label): (&str, &str)) -> Dto {
    let kind = Dto::new(&layouts::TYP_RESULTAT_DTO)
        .text("codTre", code)
        .text("libTre", label);
    Dto::new(&layouts::RESULTAT_ELP_DTO3)
        .text("codAnu", year.to_string())
        .dto("typResultat", kind)
}

/// The `ResultatElpDTO3` of a canonical result.
fn graded_item(result: &CourseResult) -> Dto {
    let settled = Dto::new(&layouts::ETAT_DELIB_DTO)
        .text("codEtaAvc", codes::DELIBERATED.0)
        .text("libEtaAvc", codes::DELIBERATED.1);
    let outcome = result
        .outcome
        .as_deref()
        .map(|code| Dto::new(&layouts::TYP_RESULTAT_DTO).text("codTre", code));
    Dto::new(&layouts::RESULTAT_ELP_DTO3)
        .maybe("barNotElp", format::whole(result.scale))
        .text("codAnu", result.year.to_string())
        .dto("etatDelib", settled)
        .maybe("nbrCrdElp", format::decimal(result.ects_earned))
        .maybe("notElp", format::decimal(result.grade))
        .dto("session", session(&result.session))
        .maybe_dto("typResultat", outcome)
}

fn session(code: &str) -> Dto {
    Dto::new(&layouts::SESSION_DTO).text("codSes", code)
}
