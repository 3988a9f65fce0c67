//! The served data: canonical records indexed the way the routes read them, and the
//! registrations' modification times (which tests move forward while the simulator runs).

use super::codes::uuid_for;
use conpere_model::{
    Edge, Enrolment, Node, NodeKind, Record, Registration, RegistrationStatus, Student,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A registration as served, with the epoch second of its last modification.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The canonical record.
    pub registration: Registration,
    /// `derniereModification`.
    pub modified: i64,
}

/// The course structure of one academic year.
#[derive(Debug, Default)]
pub(crate) struct Structure {
    /// Nodes by id.
    pub nodes: BTreeMap<String, Node>,
    /// Edges by parent id, in position order.
    pub children: HashMap<String, Vec<Edge>>,
    /// Edges by child id (a mutualised node has several).
    pub parents: HashMap<String, Vec<Edge>>,
}

impl Structure {
    /// The diploma a step belongs to (its first parent of kind diploma).
    pub(crate) fn diploma_of(&self, step: &str) -> Option<&Node> {
        self.parents
            .get(step)?
            .iter()
            .filter_map(|edge| self.nodes.get(&edge.parent))
            .find(|node| node.kind == NodeKind::Diploma)
    }

    /// The edge from `parent` to `child`.
    pub(crate) fn edge(&self, parent: &str, child: &str) -> Option<&Edge> {
        self.children.get(parent)?.iter().find(|e| e.child == child)
    }

    /// The node ids from `from` down to `target` (both included), passing through `via`
    /// when given: a mutualised node is reached by several paths, the choice list it was
    /// taken through tells which one.
    pub(crate) fn path(&self, from: &str, target: &str, via: Option<&str>) -> Option<Vec<String>> {
        let mut path = vec![from.to_owned()];
        self.descend(target, via, &mut path).then_some(path)
    }

    fn descend(&self, target: &str, via: Option<&str>, path: &mut Vec<String>) -> bool {
        let current = path.last().map(String::as_str).unwrap_or_default();
        if current == target {
            return via.is_none_or(|v| path.iter().any(|p| p == v));
        }
        for edge in self.children.get(current).into_iter().flatten() {
            path.push(edge.child.clone());
            if self.descend(target, via, path) {
                return true;
            }
            path.pop();
        }
        false
    }
}

/// Everything the simulator serves.
#[derive(Debug)]
pub(crate) struct Dataset {
    /// Students by number.
    pub students: HashMap<String, Student>,
    /// Structure by academic year.
    pub years: BTreeMap<i32, Structure>,
    /// Enrolments, in record order.
    pub enrolments: Vec<Enrolment>,
    /// Positions in `enrolments` by (year, node): CHC answers per object without a scan.
    by_node: HashMap<(i32, String), Vec<usize>>,
    /// ODF object UUID → (year, node id).
    pub objects: HashMap<String, (i32, String)>,
    registrations: Mutex<Vec<Served>>,
}

impl Dataset {
    /// Indexes `records`; the registrations were last modified between `latest - spread`
    /// and `latest`, in record order.
    pub(crate) fn new(records: Vec<Record>, latest: i64, spread: i64) -> Dataset {
        let total = records
            .iter()
            .filter(|r| matches!(r, Record::Registration(_)))
            .count()
            .max(1) as i64;
        let mut data = Dataset {
            students: HashMap::new(),
            years: BTreeMap::new(),
            enrolments: Vec::new(),
            by_node: HashMap::new(),
            objects: HashMap::new(),
            registrations: Mutex::new(Vec::new()),
        };
        let mut registrations = Vec::new();
        for record in records {
            match record {
                Record::Student(s) => {
                    data.students.insert(s.student.clone(), s);
                }
                Record::Node(n) => {
                    data.objects
                        .insert(object_id(n.year, &n.node), (n.year, n.node.clone()));
                    data.years
                        .entry(n.year)
                        .or_default()
                        .nodes
                        .insert(n.node.clone(), n);
                }
                Record::Edge(e) => data.add_edge(e),
                Record::Registration(registration) => {
                    let rank = registrations.len() as i64;
                    registrations.push(Served {
                        registration,
                        modified: latest - spread + spread * (rank + 1) / total,
                    })
                }
                Record::Enrolment(e) => data.enrolments.push(e),
                Record::Result(_) => {} // not served yet (COC publication is out of scope)
            }
        }
        for structure in data.years.values_mut() {
            for edges in structure.children.values_mut() {
                edges.sort_by_key(|e| e.position);
            }
        }
        data.keep_served_enrolments(&registrations);
        data.registrations = Mutex::new(registrations);
        data
    }

    /// Pégase has no pedagogical choices without an administrative registration, and the
    /// feed carries no pending ones (README "Mapping"): the enrolments of a pending
    /// registration are not served either.
    fn keep_served_enrolments(&mut self, registrations: &[Served]) {
        let served: HashSet<(i32, &str, &str)> = registrations
            .iter()
            .map(|s| &s.registration)
            .filter(|r| r.status != RegistrationStatus::Pending)
            .map(|r| (r.year, r.student.as_str(), r.step.as_str()))
            .collect();
        self.enrolments
            .retain(|e| served.contains(&(e.year, e.student.as_str(), e.step.as_str())));
        for (at, e) in self.enrolments.iter().enumerate() {
            self.by_node
                .entry((e.year, e.node.clone()))
                .or_default()
                .push(at);
        }
    }

    /// The enrolments of a year in `node`, in record order.
    pub(crate) fn enrolments_of(
        &self,
        year: i32,
        node: &str,
    ) -> impl Iterator<Item = &Enrolment> + '_ {
        self.by_node
            .get(&(year, node.to_string()))
            .into_iter()
            .flatten()
            .map(|&at| &self.enrolments[at])
    }

    fn add_edge(&mut self, edge: Edge) {
        let structure = self.years.entry(edge.year).or_default();
        structure
            .parents
            .entry(edge.child.clone())
            .or_default()
            .push(edge.clone());
        structure
            .children
            .entry(edge.parent.clone())
            .or_default()
            .push(edge);
    }

    /// The registrations, locked (even after a panic elsewhere: every change leaves the
    /// list consistent).
    pub(crate) fn registrations(&self) -> MutexGuard<'_, Vec<Served>> {
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The ODF UUID of a node of a year (the same code in two periods is two objects).
pub(crate) fn object_id(year: i32, node: &str) -> String {
    uuid_for(&format!("{year}|{node}"))
}
