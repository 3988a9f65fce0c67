//! What this adapter declares it reads, as a function of the canonical records a source
//! holds: the round-trip tests compare the export of a sync with `readable(generated)`.
//!
//! It is the README's "What the adapter declares it reads" in code: students,
//! registrations and enrolments in full; the structure as `recupererSE_v4` shows it
//! (diplomas, steps, the step's first-level elements and choice lists with their
//! options) plus, below the first level, the nodes and edges some student of the year is
//! registered in (seen through the pedagogical registrations) — without the edge
//! positions, choice ranges and periods the contract does not carry there. Results are
//! not read. Special statuses as the default code tables give them: an `other:<code>`
//! status exists only where a university maps its code so, which the defaults do not.

use conpere_core::model::{Edge, Kind, Node, NodeKind, Record, Registration};
use std::collections::BTreeSet;

/// The part of `records` the Apogée adapter can read back, as it reads it.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let first_level = first_level_nodes(records);
    let enrolled: BTreeSet<(i32, &str)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Enrolment(e) => Some((e.year, e.node.as_str())),
            _ => None,
        })
        .collect();
    let deep_and_enrolled = |year: i32, node: &str| {
        enrolled.contains(&(year, node)) && !first_level.contains(&(year, node.to_string()))
    };
    records
        .iter()
        .filter_map(|record| match record {
            Record::Result(_) => None,
            Record::Node(n) if is_elp(n) && !first_level.contains(&(n.year, n.node.clone())) => {
                deep_and_enrolled(n.year, &n.node).then(|| {
                    Record::Node(Node {
                        period: None,
                        ..n.clone()
                    })
                })
            }
            Record::Edge(e) => edge(e, &first_level, &deep_and_enrolled),
            Record::Registration(r) => Some(Record::Registration(Registration {
                special_statuses: (r.special_statuses.iter())
                    .filter(|status| !status.starts_with("other:"))
                    .cloned()
                    .collect(),
                ..r.clone()
            })),
            other => Some(other.clone()),
        })
        .collect()
}

fn is_elp(node: &Node) -> bool {
    !matches!(
        node.kind,
        NodeKind::Diploma | NodeKind::Step | NodeKind::Choice
    )
}

/// (year, node) of the elements directly under a step or a choice list.
fn first_level_nodes(records: &[Record]) -> BTreeSet<(i32, String)> {
    let parents: BTreeSet<(i32, &str)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Node(n) if matches!(n.kind, NodeKind::Step | NodeKind::Choice) => {
                Some((n.year, n.node.as_str()))
            }
            _ => None,
        })
        .collect();
    records
        .iter()
        .filter_map(|r| match r {
            Record::Edge(e) if parents.contains(&(e.year, e.parent.as_str())) => {
                Some((e.year, e.child.clone()))
            }
            _ => None,
        })
        .collect()
}

fn edge(
    e: &Edge,
    first_level: &BTreeSet<(i32, String)>,
    deep_and_enrolled: &impl Fn(i32, &str) -> bool,
) -> Option<Record> {
    let to_first_level = first_level.contains(&(e.year, e.child.clone()));
    if to_first_level {
        // Step → list: the range lives in the database, not in the contract.
        let choice = e.child.starts_with("LSE:");
        return Some(Record::Edge(Edge {
            min: if choice { None } else { e.min },
            max: if choice { None } else { e.max },
            ..e.clone()
        }));
    }
    if e.parent.starts_with("VDI:") {
        return Some(Record::Edge(e.clone()));
    }
    deep_and_enrolled(e.year, &e.child).then(|| {
        Record::Edge(Edge {
            position: None,
            min: None,
            max: None,
            ..e.clone()
        })
    })
}

/// The kinds the adapter reads.
pub const KINDS: [Kind; 5] = [
    Kind::Student,
    Kind::Node,
    Kind::Edge,
    Kind::Registration,
    Kind::Enrolment,
];
