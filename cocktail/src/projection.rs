//! What the reference views of `sql/postgresql/views.sql` give back for canonical records
//! loaded by [`crate::fixture`]: the records as conpere reads them through the view
//! contract, so that a test compares the read with [`readable`].
//!
//! The views carry less than the canonical model (their mapping is documented in the SQL):
//!
//! * node ids are re-derived from the Cocktail codes: `DIP:`, `PAR:`, `SEM:`, `UE:`, `EC:`
//!   followed by the node's code, whatever the id was (`VET:L2INF/120` → `PAR:L2INF`);
//! * choice lists and other kinds are not carried, nor the edges that touch them; a step is
//!   carried when it has a diploma (its first diploma parent, in record order), a diploma
//!   in the years where it has a step, with the label of its first node (a Cocktail
//!   diploma is not per year); versions, periods, and the ECTS of diplomas, steps and
//!   semesters are lost; diploma → step edges have no position; only unit → element
//!   edges can be elective;
//! * student numbers are numbers (no leading zero); a usual name equal to the family name
//!   reads as none;
//! * registrations: cancelled ones are stored with the excluded `RES_CODE` and not read;
//!   the others read as `active`, régime `other`, `main`, no special status, and the
//!   diploma of their step;
//! * enrolments: only those in semesters and elements of a registration that is read,
//!   without `via` or `carried_over`.

use conpere_model::{Edge, Enrolment, NodeKind, Record, Regime, RegistrationStatus};
use std::collections::{HashMap, HashSet};

/// The view's node id of a node of `kind` with Cocktail code `code`, if the views carry
/// that kind.
pub fn node_id(kind: NodeKind, code: &str) -> Option<String> {
    let prefix = match kind {
        NodeKind::Diploma => "DIP",
        NodeKind::Step => "PAR",
        NodeKind::Semester => "SEM",
        NodeKind::Unit => "UE",
        NodeKind::Element => "EC",
        NodeKind::Choice | NodeKind::Other => return None,
    };
    Some(format!("{prefix}:{code}"))
}

/// The student number as the views give it (a Cocktail ETUD_NUMERO is a number).
pub fn student_id(student: &str) -> String {
    match student.trim_start_matches('0') {
        "" => "0".to_string(),
        digits => digits.to_string(),
    }
}

/// What of the records the fixture can store, indexed by (year, canonical node id).
pub(crate) struct Carried<'a> {
    /// Kind and code of every node of a carried kind.
    pub nodes: HashMap<(i32, &'a str), (NodeKind, &'a str)>,
    /// The diploma id of every carried step (its first diploma parent).
    pub step_diploma: HashMap<(i32, &'a str), &'a str>,
    /// Label of each diploma code (its first node).
    pub diploma_label: HashMap<&'a str, &'a str>,
}

impl<'a> Carried<'a> {
    pub fn of(records: &'a [Record]) -> Self {
        let mut nodes = HashMap::new();
        let mut diploma_label = HashMap::new();
        for r in records {
            if let Record::Node(n) = r {
                if node_id(n.kind, &n.code).is_some() {
                    nodes.insert((n.year, n.node.as_str()), (n.kind, n.code.as_str()));
                }
                if n.kind == NodeKind::Diploma {
                    diploma_label
                        .entry(n.code.as_str())
                        .or_insert(n.label.as_str());
                }
            }
        }
        let mut step_diploma = HashMap::new();
        for r in records {
            if let Record::Edge(e) = r {
                let parent = nodes.get(&(e.year, e.parent.as_str())).map(|n| n.0);
                let child = nodes.get(&(e.year, e.child.as_str())).map(|n| n.0);
                if (parent, child) == (Some(NodeKind::Diploma), Some(NodeKind::Step)) {
                    step_diploma
                        .entry((e.year, e.child.as_str()))
                        .or_insert(e.parent.as_str());
                }
            }
        }
        Carried {
            nodes,
            step_diploma,
            diploma_label,
        }
    }

    /// Whether a node is stored: steps need a diploma, diplomas are stored through their
    /// steps.
    pub fn keeps(&self, year: i32, node: &str) -> Option<(NodeKind, &'a str)> {
        let (kind, code) = *self.nodes.get(&(year, node))?;
        match kind {
            NodeKind::Diploma => None,
            NodeKind::Step if !self.step_diploma.contains_key(&(year, node)) => None,
            _ => Some((kind, code)),
        }
    }

    /// The view id of a stored node.
    pub fn id(&self, year: i32, node: &str) -> Option<String> {
        let (kind, code) = self.keeps(year, node)?;
        node_id(kind, code)
    }

    /// The view id of the diploma of a step.
    pub fn diploma_of(&self, year: i32, step: &str) -> Option<String> {
        let diploma = self.step_diploma.get(&(year, step))?;
        let (kind, code) = self.nodes.get(&(year, *diploma))?;
        node_id(*kind, code)
    }

    /// Whether an edge is stored in a link table (the diploma → step edges are not: they
    /// come from the parcours).
    pub fn link(&self, e: &Edge) -> Option<(NodeKind, NodeKind)> {
        let (parent, _) = self.keeps(e.year, &e.parent)?;
        let (child, _) = self.keeps(e.year, &e.child)?;
        matches!(
            (parent, child),
            (NodeKind::Step, NodeKind::Semester)
                | (NodeKind::Semester, NodeKind::Unit)
                | (NodeKind::Unit, NodeKind::Element)
        )
        .then_some((parent, child))
    }
}

/// Exactly what the views give back for `records` once loaded by
/// [`crate::fixture::script`] (results are ignored), in no particular order.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let carried = Carried::of(records);
    let mut out = Vec::new();
    // Diplomas: one node per year that has a carried step.
    let mut diplomas = HashSet::new();
    for (&(year, _), &diploma) in &carried.step_diploma {
        let Some((_, code)) = carried.nodes.get(&(year, diploma)) else {
            continue;
        };
        if diplomas.insert((year, *code)) {
            out.push(Record::Node(conpere_model::Node {
                year,
                node: format!("DIP:{code}"),
                kind: NodeKind::Diploma,
                code: code.to_string(),
                version: None,
                label: carried.diploma_label[code].to_string(),
                ects: None,
                period: None,
            }));
        }
    }
    let mut registrations = HashSet::new();
    for r in records {
        match r {
            Record::Student(s) => {
                let mut s = s.clone();
                s.student = student_id(&s.student);
                s.usual_name = s.usual_name.filter(|u| *u != s.family_name);
                out.push(Record::Student(s));
            }
            Record::Node(n) => {
                if let Some(id) = carried.id(n.year, &n.node) {
                    let mut n = n.clone();
                    n.node = id;
                    n.version = None;
                    n.period = None;
                    if !matches!(n.kind, NodeKind::Unit | NodeKind::Element) {
                        n.ects = None;
                    }
                    out.push(Record::Node(n));
                }
            }
            Record::Edge(e) => {
                if let Some(diploma) = carried.diploma_of(e.year, &e.child) {
                    if carried.step_diploma.get(&(e.year, e.child.as_str()))
                        == Some(&e.parent.as_str())
                    {
                        out.push(Record::Edge(Edge {
                            year: e.year,
                            parent: diploma,
                            child: carried.id(e.year, &e.child).expect("a carried step"),
                            mandatory: true,
                            min: None,
                            max: None,
                            position: None,
                        }));
                    }
                } else if let Some((_, child)) = carried.link(e) {
                    out.push(Record::Edge(Edge {
                        year: e.year,
                        parent: carried.id(e.year, &e.parent).expect("a carried parent"),
                        child: carried.id(e.year, &e.child).expect("a carried child"),
                        mandatory: child != NodeKind::Element || e.mandatory,
                        min: None,
                        max: None,
                        position: e.position,
                    }));
                }
            }
            Record::Registration(g) => {
                if g.status == RegistrationStatus::Cancelled {
                    continue;
                }
                let (Some(step), Some(diploma)) = (
                    carried.id(g.year, &g.step),
                    carried.diploma_of(g.year, &g.step),
                ) else {
                    continue;
                };
                registrations.insert((g.year, g.student.as_str(), g.step.as_str()));
                let mut g = g.clone();
                g.student = student_id(&g.student);
                g.step = step;
                g.diploma = Some(diploma);
                g.status = RegistrationStatus::Active;
                g.regime = Regime::Other;
                g.main = true;
                g.special_statuses = Vec::new();
                out.push(Record::Registration(g));
            }
            Record::Enrolment(_) | Record::Result(_) => {}
        }
    }
    // Enrolments last: they need the set of registrations read.
    for r in records {
        if let Record::Enrolment(e) = r {
            if !registrations.contains(&(e.year, e.student.as_str(), e.step.as_str())) {
                continue;
            }
            let Some((kind, _)) = carried.keeps(e.year, &e.node) else {
                continue;
            };
            if !matches!(kind, NodeKind::Semester | NodeKind::Element) {
                continue;
            }
            out.push(Record::Enrolment(Enrolment {
                year: e.year,
                student: student_id(&e.student),
                step: carried.id(e.year, &e.step).expect("a carried step"),
                node: carried.id(e.year, &e.node).expect("a carried node"),
                via: None,
                carried_over: false,
                exempted: kind == NodeKind::Element && e.exempted,
            }));
        }
    }
    out
}
