//! A contract's content and flags, assembled from its registrations and enrolments (one
//! block's rows) and the course structure.
//!
//! This is where the contract's meaning lives (DESIGN.md, "Learning contracts"): which
//! parent a node is shown under, which period a unit's ECTS count in, and when each flag
//! is raised. The content is serialised straight from typed values whose fields are
//! declared in RFC 8785 order ([`content::canonical_typed`]).

use super::structure::{ParentEdge, Structure, YearStructure};
use crate::catalogue::Catalogue;
use crate::content::{self, Utf16Sorted};
use crate::lifecycle::Measure;
use crate::rules::Rules;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio_postgres::Row;

/// A registration in scope, with its live enrolments.
#[derive(Debug)]
pub(crate) struct Registration {
    pub step: String,
    pub diploma: Option<String>,
    pub main: bool,
    pub regime: String,
    pub status: String,
    /// Still in the SIS (not deleted).
    pub present: bool,
    pub special_statuses: Vec<String>,
    /// The same step was registered in an earlier year.
    pub repeater: bool,
    pub enrolments: Vec<Enrolment>,
}

impl Registration {
    /// Puts the enrolments in node order (as `COLLATE "C"`), whatever order they were
    /// read in: what is computed from them in turn stays the same (sums of ECTS too,
    /// which floating-point addition makes depend on the order).
    fn put_in_node_order(&mut self) {
        (self.enrolments).sort_unstable_by(|a, b| a.node.cmp(&b.node));
    }

    /// Neither deleted nor cancelled: its section is open.
    fn open(&self) -> bool {
        self.present && self.status != "cancelled"
    }
}

/// A live enrolment.
#[derive(Debug)]
pub(crate) struct Enrolment {
    pub node: String,
    pub via: Option<String>,
    pub carried_over: bool,
    pub exempted: bool,
}

/// A contract as the store holds it.
#[derive(Debug)]
pub(crate) struct Current {
    pub id: i64,
    pub state: String,
    pub flags: Vec<String>,
    /// The version worked on, and its hash.
    pub version: i32,
    pub hash: String,
    /// Its evidence chain: events, and the last one's hash.
    pub events: i32,
    pub head_hash: String,
    pub in_force: Option<i32>,
    /// The version an open amendment departs from, and its hash.
    pub amendment_of: Option<i32>,
    pub base_hash: Option<String>,
    /// The current version's reason (an amendment's).
    pub reason: Option<String>,
    /// The measures and objectives people set (JSON), when they have.
    pub measures: Option<String>,
    pub objectives: Option<String>,
}

/// The rows of one contract.
#[derive(Debug)]
pub(crate) struct ContractRows {
    pub source_id: i32,
    pub year: i32,
    pub student: String,
    pub registrations: Vec<Registration>,
    /// The stored contract, when there is one.
    pub current: Option<Current>,
}

impl ContractRows {
    /// Groups a block's registrations (columns of `REGISTRATIONS_SQL`) and enrolments
    /// (`ENROLMENTS_SQL`), both ordered by contract and step, into contracts.
    pub fn group(registrations: &[Row], enrolments: &[Row]) -> Vec<ContractRows> {
        let mut contracts: Vec<(i64, ContractRows)> = Vec::new();
        let mut enrolments = enrolments.iter().peekable();
        for row in registrations {
            let ord: i64 = row.get(0);
            if contracts.last().is_none_or(|(last, _)| *last != ord) {
                let current = row.get::<_, Option<i64>>(12).map(|id| Current {
                    id,
                    state: row.get(13),
                    flags: row.get(14),
                    hash: row.get(15),
                    version: row.get(16),
                    events: row.get(17),
                    head_hash: row.get(18),
                    in_force: row.get(19),
                    amendment_of: row.get(20),
                    reason: row.get(21),
                    base_hash: row.get(22),
                    measures: row.get(23),
                    objectives: row.get(24),
                });
                let contract = ContractRows {
                    source_id: row.get(1),
                    year: row.get(2),
                    student: row.get(3),
                    registrations: Vec::new(),
                    current,
                };
                contracts.push((ord, contract));
            }
            let mut registration = Registration {
                step: row.get(4),
                diploma: row.get(5),
                main: row.get(6),
                regime: row.get(7),
                status: row.get(8),
                present: row.get(9),
                special_statuses: row.get(10),
                repeater: row.get(11),
                enrolments: Vec::new(),
            };
            while let Some(e) = enrolments
                .next_if(|e| e.get::<_, i64>(0) == ord && e.get::<_, &str>(1) == registration.step)
            {
                registration.enrolments.push(Enrolment {
                    node: e.get(2),
                    via: e.get(3),
                    carried_over: e.get(4),
                    exempted: e.get(5),
                });
            }
            registration.put_in_node_order();
            let (_, contract) = contracts.last_mut().expect("pushed above");
            contract.registrations.push(registration);
        }
        contracts.into_iter().map(|(_, c)| c).collect()
    }
}

/// A contract computed and sealed.
pub(crate) struct Sealed {
    pub source_id: i32,
    pub year: i32,
    pub student: String,
    pub flags: Vec<String>,
    pub content: String,
    pub hash: String,
}

/// What assembling needs besides the rows.
pub(crate) struct Context<'a> {
    pub structure: &'a Structure,
    pub catalogue: &'a Catalogue,
    pub rules: &'a Rules,
    /// Source names by id.
    pub sources: &'a HashMap<i32, String>,
}

// The content of a version (DESIGN.md). Fields are declared in RFC 8785 order (their
// names are ASCII, so by byte): the serialisation is canonical as written.

#[derive(Serialize)]
struct Content<'a> {
    contract: ContractKey<'a>,
    measures: Vec<Measure>,
    objectives: Vec<String>,
    sections: Vec<Section<'a>>,
    special_statuses: &'a [String],
}

#[derive(Serialize)]
struct ContractKey<'a> {
    source: Option<&'a str>,
    student: &'a str,
    year: i32,
}

#[derive(Serialize)]
struct Section<'a> {
    closed_reason: Option<&'static str>,
    diploma: Option<&'a str>,
    ects_per_period: Utf16Sorted<f64>,
    main: bool,
    path: Vec<Element<'a>>,
    regime: &'a str,
    status: &'static str,
    step: &'a str,
}

#[derive(Serialize)]
struct Element<'a> {
    carried_over: bool,
    ects: Option<f64>,
    exempted: bool,
    kind: Option<&'a str>,
    label: &'a str,
    node: &'a str,
    parent: Option<&'a str>,
    period: Option<&'a str>,
    via: Option<&'a str>,
}

impl Context<'_> {
    /// The contract's content (sealed) and its flags, with the stored contract.
    pub fn seal(&self, mut contract: ContractRows) -> (Option<Current>, Sealed) {
        contract
            .registrations
            .sort_by(|a, b| b.main.cmp(&a.main).then_with(|| a.step.cmp(&b.step)));
        let structure = self.structure.year(contract.source_id, contract.year);
        let registrations = &contract.registrations;
        let sections: Vec<Section> = (registrations.iter())
            .map(|r| section(r, structure))
            .collect();
        let statuses: Vec<String> = (registrations.iter())
            .filter(|r| r.open())
            .flat_map(|r| r.special_statuses.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let flags = self.flags(registrations, structure, &sections, &statuses);
        let content = Content {
            contract: ContractKey {
                source: self.sources.get(&contract.source_id).map(String::as_str),
                student: &contract.student,
                year: contract.year,
            },
            measures: self.measures(&contract, &statuses),
            objectives: (contract.current.as_ref())
                .and_then(|c| c.objectives.as_deref())
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default(),
            sections,
            special_statuses: &statuses,
        };
        let text = content::canonical_typed(&content);
        let hash = content::hash(&text);
        let sealed = Sealed {
            source_id: contract.source_id,
            year: contract.year,
            student: contract.student,
            flags,
            content: text,
            hash,
        };
        (contract.current, sealed)
    }

    /// The measures people set, once they have; until then the catalogue's suggestions
    /// for the student's statuses.
    fn measures(&self, contract: &ContractRows, statuses: &[String]) -> Vec<Measure> {
        let set = (contract.current.as_ref())
            .and_then(|c| c.measures.as_deref())
            .and_then(|text| serde_json::from_str(text).ok());
        set.unwrap_or_else(|| {
            (self.catalogue.suggested(statuses).into_iter())
                .map(|m| Measure {
                    code: m.code.clone(),
                    details: None,
                    label: m.label_fr.clone(),
                    proposed_by: "rule:special_status".into(),
                })
                .collect()
        })
    }

    /// The flags raised, in [`crate::rules::FLAGS`] order, of those that apply.
    fn flags(
        &self,
        registrations: &[Registration],
        structure: &YearStructure,
        sections: &[Section],
        statuses: &[String],
    ) -> Vec<String> {
        let open = || registrations.iter().filter(|r| r.open());
        let max_period_ects = (registrations.iter().zip(sections))
            .filter(|(r, _)| r.open())
            .flat_map(|(_, s)| s.ects_per_period.0.iter().map(|(_, ects)| *ects))
            .fold(0.0, f64::max);
        let raised = [
            !statuses.is_empty(),
            open().count() >= 2,
            open().any(|r| r.repeater),
            (registrations.iter()).any(|r| r.enrolments.iter().any(|e| e.carried_over)),
            (registrations.iter())
                .any(|r| r.present && r.status == "active" && r.enrolments.is_empty()),
            open().any(|r| breaks_a_choice(r, structure)),
            max_period_ects > self.rules.ects_limit,
        ];
        (crate::rules::FLAGS.iter().zip(raised))
            .filter(|(flag, raised)| *raised && self.rules.flags.iter().any(|f| f == *flag))
            .map(|(flag, _)| flag.to_string())
            .collect()
    }
}

/// A registration with enrolments whose step has a choice whose range the number of
/// elements taken through it is outside.
fn breaks_a_choice(registration: &Registration, structure: &YearStructure) -> bool {
    if registration.enrolments.is_empty() {
        return false;
    }
    structure.choices(&registration.step).iter().any(|choice| {
        let taken = (registration.enrolments.iter())
            .filter(|e| e.via.as_deref() == Some(choice.child.as_str()))
            .count() as i64;
        let (min, max) = (choice.min.unwrap_or(0), choice.max.unwrap_or(i32::MAX));
        taken < i64::from(min) || taken > i64::from(max)
    })
}

/// A registration's section: its status, path and ECTS per period.
fn section<'a>(registration: &'a Registration, structure: &'a YearStructure) -> Section<'a> {
    let closed_reason = if !registration.present {
        Some("the registration is no longer in the SIS")
    } else if registration.status == "cancelled" {
        Some("the registration was cancelled in the SIS")
    } else {
        None
    };
    let enrolled: HashSet<&str> = (registration.enrolments.iter())
        .map(|e| e.node.as_str())
        .collect();
    let mut path: Vec<(Option<i32>, Element)> = (registration.enrolments.iter())
        .map(|e| {
            let parent = shown_under(e, &registration.step, &enrolled, structure);
            let node = structure.node(&e.node);
            let element = Element {
                carried_over: e.carried_over,
                ects: node.and_then(|n| n.ects),
                exempted: e.exempted,
                kind: node.map(|n| n.kind.as_str()),
                label: node.map_or(e.node.as_str(), |n| n.label.as_str()),
                node: &e.node,
                parent: parent.map(|p| p.parent.as_str()),
                period: node.and_then(|n| n.period.as_deref()),
                via: e.via.as_deref(),
            };
            (parent.and_then(|p| p.position), element)
        })
        .collect();
    // Positions first, in order; then the nodes without one, by code.
    path.sort_by(|(a, x), (b, y)| (a.is_none(), a, x.node).cmp(&(b.is_none(), b, y.node)));
    Section {
        closed_reason,
        diploma: registration.diploma.as_deref(),
        ects_per_period: ects_per_period(registration, structure),
        main: registration.main,
        path: path.into_iter().map(|(_, element)| element).collect(),
        regime: &registration.regime,
        status: if closed_reason.is_none() {
            "open"
        } else {
            "closed"
        },
        step: &registration.step,
    }
}

/// The parent an enrolled node is shown under: the list it was chosen through, else a
/// parent the student is also enrolled in, else the step itself, else the first by code.
fn shown_under<'s>(
    enrolment: &Enrolment,
    step: &str,
    enrolled: &HashSet<&str>,
    structure: &'s YearStructure,
) -> Option<&'s ParentEdge> {
    structure
        .parents(&enrolment.node)
        .iter()
        .min_by_key(|edge| {
            (
                enrolment.via.as_deref() != Some(edge.parent.as_str()),
                !enrolled.contains(edge.parent.as_str()),
                edge.parent != step,
                edge.parent.as_str(),
            )
        })
}

/// The ECTS of the units a section's student is enrolled in, summed per period: the
/// unit's own period, else its first parent's (by code) that has one.
fn ects_per_period(registration: &Registration, structure: &YearStructure) -> Utf16Sorted<f64> {
    let mut per_period: Vec<(String, f64)> = Vec::new();
    for e in &registration.enrolments {
        let Some(node) = structure.node(&e.node) else {
            continue;
        };
        let (true, Some(ects)) = (node.kind == "unit", node.ects) else {
            continue;
        };
        let period = (node.period.as_deref()).or_else(|| {
            (structure.parents(&e.node).iter()).find_map(|edge| edge.parent_period.as_deref())
        });
        let Some(period) = period else {
            continue;
        };
        match per_period.iter_mut().find(|(p, _)| p == period) {
            Some((_, total)) => *total += ects,
            None => per_period.push((period.to_owned(), ects)),
        }
    }
    Utf16Sorted(per_period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sections_ects_are_the_same_whatever_order_its_enrolments_are_read_in() {
        // Summed in reading order, 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last
        // bit, and so would the content's hash.
        let structure = YearStructure::with_units(&[("A", 0.1), ("B", 0.2), ("C", 0.3)], "S1");
        let summed = |order: &[&str]| {
            let mut registration = Registration {
                step: "STEP".into(),
                diploma: None,
                main: true,
                regime: "initial".into(),
                status: "active".into(),
                present: true,
                special_statuses: Vec::new(),
                repeater: false,
                enrolments: (order.iter())
                    .map(|node| Enrolment {
                        node: node.to_string(),
                        via: None,
                        carried_over: false,
                        exempted: false,
                    })
                    .collect(),
            };
            registration.put_in_node_order();
            ects_per_period(&registration, &structure).0
        };
        let in_order = summed(&["A", "B", "C"]);
        assert_eq!(in_order, vec![("S1".to_string(), 0.1 + 0.2 + 0.3)]);
        assert_eq!(summed(&["C", "B", "A"]), in_order);
        assert_eq!(summed(&["B", "C", "A"]), in_order);
    }
}
