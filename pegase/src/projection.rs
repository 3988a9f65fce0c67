//! What this adapter declares it reads, as a function of the canonical records a tenant
//! holds: the round-trip tests compare the export of a sync with `readable(generated)`.
//!
//! It is the README's "Mapping" in code:
//!
//! * registrations that are not pending (the INS feed carries validated and cancelled
//!   ones only), and the students having one, without e-mail nor login (not in the feed);
//! * the enrolments of those registrations, exemptions and carried-over credits included
//!   (CHC aménagements);
//! * every node, its `code` being its id and without `version` or teaching `period`
//!   (Pégase objects are identified by one code and carry no period);
//! * every edge, the choice range only on edges into choice lists (a groupement's
//!   `plageDeChoix`), positions as ranks among siblings;
//! * no results.

use conpere_model::{Edge, Node, NodeKind, Record, RegistrationStatus};
use std::collections::BTreeSet;

/// The part of `records` the Pégase adapter reads back, as it reads it.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let registered: BTreeSet<(i32, &str, &str)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Registration(g) if g.status != RegistrationStatus::Pending => {
                Some((g.year, g.student.as_str(), g.step.as_str()))
            }
            _ => None,
        })
        .collect();
    let students: BTreeSet<&str> = registered.iter().map(|(_, s, _)| *s).collect();
    let choices: BTreeSet<(i32, &str)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Node(n) if n.kind == NodeKind::Choice => Some((n.year, n.node.as_str())),
            _ => None,
        })
        .collect();
    records
        .iter()
        .filter_map(|record| match record {
            Record::Student(s) => students.contains(s.student.as_str()).then(|| {
                let mut s = s.clone();
                (s.email, s.login) = (None, None);
                Record::Student(s)
            }),
            Record::Registration(g) => {
                (g.status != RegistrationStatus::Pending).then(|| Record::Registration(g.clone()))
            }
            Record::Enrolment(e) => registered
                .contains(&(e.year, e.student.as_str(), e.step.as_str()))
                .then(|| Record::Enrolment(e.clone())),
            Record::Node(n) => Some(Record::Node(Node {
                code: n.node.clone(),
                version: None,
                period: None,
                ..n.clone()
            })),
            Record::Edge(e) if !choices.contains(&(e.year, e.child.as_str())) => {
                Some(Record::Edge(Edge {
                    min: None,
                    max: None,
                    ..e.clone()
                }))
            }
            Record::Edge(e) => Some(Record::Edge(e.clone())),
            Record::Result(_) => None,
        })
        .collect()
}
