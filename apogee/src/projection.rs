//! What this adapter declares it reads, as a function of the canonical records a source
//! holds: the round-trip tests compare the export of a sync with `readable(generated)`.
//!
//! It is the README's "What the adapter declares it reads" in code. The structure comes
//! in Apogée's shape ([`in_lists`]: every child of a step hangs from one of its lists),
//! as `recupererSE_v4` shows it (diplomas, steps, the step's lists and their elements)
//! plus, below the first level, the nodes and edges some student of the year is
//! registered in (seen through the pedagogical registrations) — without the edge
//! positions, choice ranges and periods the contract does not carry there. Students,
//! registrations and enrolments in full, special statuses as the default code tables give
//! them: an `other:<code>` status exists only where a university maps its code so, which
//! the defaults do not. Results are not read.

use conpere_model::{Edge, Kind, Node, NodeKind, Record, Registration};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Suffix of the code of a step's mandatory list, when the records have none.
pub const MANDATORY_LIST_SUFFIX: &str = "OBL";

/// The part of `records` the Apogée adapter can read back, as it reads it.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let records = in_lists(records.iter().cloned());
    let first_level = first_level_nodes(&records);
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

/// The Apogée shape of a canonical structure: every child of a step hangs from one of
/// the step's lists (DESIGN.md: every Apogée list is a node). A step's children that are
/// not lists (`LSE:` nodes) go, in position order, into the step's mandatory list
/// (`typListElp = O`): a node of kind `other`, code `<step code>OBL`, label
/// `Tronc commun — <step label>`, the step's first list; its elements are mandatory and
/// numbered from 1, and the step's other lists are numbered after it. Records already in
/// that shape come back unchanged; other records are untouched.
pub fn in_lists(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
    let records: Vec<Record> = records.into_iter().collect();
    // Each step's code and label, for its mandatory list.
    let steps: HashMap<(i32, String), (String, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Node(n) if n.kind == NodeKind::Step => {
                Some(((n.year, n.node.clone()), (n.code.clone(), n.label.clone())))
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::with_capacity(records.len());
    let mut from_steps: BTreeMap<(i32, String), Vec<Edge>> = BTreeMap::new();
    for record in records {
        match record {
            Record::Edge(e) if steps.contains_key(&(e.year, e.parent.clone())) => {
                from_steps
                    .entry((e.year, e.parent.clone()))
                    .or_default()
                    .push(e);
            }
            other => out.push(other),
        }
    }
    for ((year, step), mut edges) in from_steps {
        edges.sort_by_key(|e| (e.position.is_none(), e.position));
        let (lists, loose): (Vec<Edge>, Vec<Edge>) =
            edges.into_iter().partition(|e| is_list(&e.child));
        let mut position = 0;
        if !loose.is_empty() {
            let (step_code, step_label) = &steps[&(year, step.clone())];
            let code = format!("{step_code}{MANDATORY_LIST_SUFFIX}");
            let list = format!("LSE:{code}");
            out.push(Record::Node(Node {
                year,
                node: list.clone(),
                kind: NodeKind::Other,
                code,
                version: None,
                label: format!("Tronc commun — {step_label}"),
                ects: None,
                period: None,
            }));
            position += 1;
            out.push(Record::Edge(list_edge(year, &step, &list, true, position)));
            for (rank, element) in (1..).zip(&loose) {
                out.push(Record::Edge(list_edge(
                    year,
                    &list,
                    &element.child,
                    true,
                    rank,
                )));
            }
        }
        for list in lists {
            position += 1;
            out.push(Record::Edge(Edge {
                position: Some(position),
                ..list
            }));
        }
    }
    out
}

/// An edge of a list: no range (Apogée's lists carry none in the contract).
fn list_edge(year: i32, parent: &str, child: &str, mandatory: bool, position: i32) -> Edge {
    Edge {
        year,
        parent: parent.to_string(),
        child: child.to_string(),
        mandatory,
        min: None,
        max: None,
        position: Some(position),
    }
}

/// Whether a node id is a list's (`LSE:<codListElp>`).
fn is_list(node: &str) -> bool {
    node.starts_with("LSE:")
}

fn is_elp(node: &Node) -> bool {
    !matches!(node.kind, NodeKind::Diploma | NodeKind::Step) && !is_list(&node.node)
}

/// (year, node) of the elements of a step's lists: what `recupererSE_v4` shows.
fn first_level_nodes(records: &[Record]) -> BTreeSet<(i32, String)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Edge(e) if is_list(&e.parent) => Some((e.year, e.child.clone())),
            _ => None,
        })
        .collect()
}

fn edge(
    e: &Edge,
    first_level: &BTreeSet<(i32, String)>,
    deep_and_enrolled: &impl Fn(i32, &str) -> bool,
) -> Option<Record> {
    if is_list(&e.child) {
        // Step → list: the range lives in the database, not in the contract.
        return Some(Record::Edge(Edge {
            min: None,
            max: None,
            ..e.clone()
        }));
    }
    if e.parent.starts_with("VDI:") || first_level.contains(&(e.year, e.child.clone())) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_synth::{SynthConfig, University};

    fn sorted(mut records: Vec<Record>) -> Vec<String> {
        let mut lines: Vec<String> = records.iter_mut().map(|r| format!("{r:?}")).collect();
        lines.sort();
        lines
    }

    #[test]
    fn in_lists_puts_a_steps_children_in_lists_once() {
        let records: Vec<Record> = University::generate(SynthConfig::new(7, 5))
            .records()
            .collect();
        let shaped = in_lists(records);
        assert_eq!(
            sorted(in_lists(shaped.clone())),
            sorted(shaped.clone()),
            "idempotent"
        );
        let step_to_element = shaped.iter().any(
            |r| matches!(r, Record::Edge(e) if e.parent.starts_with("VET:") && !is_list(&e.child)),
        );
        assert!(!step_to_element);
        let list = shaped.iter().find_map(|r| match r {
            Record::Node(n) if n.node.ends_with(MANDATORY_LIST_SUFFIX) => Some(n),
            _ => None,
        });
        let list = list.expect("a mandatory list");
        assert_eq!(list.kind, NodeKind::Other);
        assert!(list.label.starts_with("Tronc commun — "), "{}", list.label);
        let positions: Vec<Option<i32>> = (shaped.iter())
            .filter_map(|r| match r {
                Record::Edge(e) if e.parent == list.node => Some(e.position),
                _ => None,
            })
            .collect();
        assert_eq!(positions.first(), Some(&Some(1)));
    }
}
