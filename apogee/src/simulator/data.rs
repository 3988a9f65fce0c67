//! The canonical records the simulator serves, indexed the way Apogée's operations look
//! them up (by student, by year, by step, by structure parent and child).

use conpere_model::{CourseResult, Edge, Enrolment, Node, NodeKind, Record, Registration, Student};
use std::collections::{BTreeMap, HashMap};

/// The canonical status a student's `handicap` carries.
const DISABILITY: &str = "disability";

/// Apogée numbers individuals (`COD_IND`) apart from students (`COD_ETU`); the
/// simulator numbers them from here, in record order.
const FIRST_COD_IND: u64 = 100_001;

/// Everything the simulator serves.
#[derive(Debug, Default)]
pub(crate) struct Dataset {
    students: Vec<StudentEntry>,
    by_cod_etu: HashMap<String, usize>,
    by_ine: HashMap<String, usize>,
    registrations: Vec<RegistrationEntry>,
    /// Registration indices per student, in (year, record) order.
    by_student: HashMap<String, Vec<usize>>,
    /// Registration indices per year, in record order.
    by_year: BTreeMap<i32, Vec<usize>>,
    /// Enrolments per (year, student, step id), in record order.
    enrolments: HashMap<(i32, String, String), Vec<Enrolment>>,
    /// Results per (year, student, node id).
    results: HashMap<(i32, String, String), Vec<CourseResult>>,
    structures: BTreeMap<i32, Structure>,
}

/// A student and what Apogée knows of them beyond the canonical record.
#[derive(Debug)]
pub(crate) struct StudentEntry {
    pub record: Student,
    /// `COD_IND`, the individual number.
    pub cod_ind: u64,
    /// Whether any registration carries `disability` (Apogée records it once, on the
    /// individual: `handicap`).
    pub disability: bool,
}

/// A registration with its step and diploma resolved to Apogée codes.
#[derive(Debug)]
pub(crate) struct RegistrationEntry {
    pub record: Registration,
    pub step: Versioned,
    pub diploma: Option<Versioned>,
}

/// A VDI or VET: code, version and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Versioned {
    pub code: String,
    pub version: String,
    pub label: String,
}

/// The course structure of one year.
#[derive(Debug, Default)]
pub(crate) struct Structure {
    nodes: HashMap<String, Node>,
    /// Child edges per parent, by position (unpositioned last, then record order).
    children: HashMap<String, Vec<Edge>>,
    /// Parent ids per child, in record order.
    parents: HashMap<String, Vec<String>>,
    /// Diploma node ids, in record order.
    diplomas: Vec<String>,
}

impl StudentEntry {
    /// The student's rank in record order.
    fn rank(&self) -> u64 {
        self.cod_ind - FIRST_COD_IND
    }

    /// Whether the student's years carry a profile code that no default table maps (an
    /// institution's own profile), when no canonical status gives them a profile: what
    /// the canonical model cannot hold, but an Apogée has. One student in seven, the
    /// second one among them.
    pub fn has_unmapped_profile(&self) -> bool {
        self.rank() % 7 == 1
    }

    /// Whether the student's dates are sent as UTC instants (as Axis serialises a
    /// `java.util.Date`), not with the Paris offset: two students in three, the first
    /// one among them.
    pub fn sends_utc_instants(&self) -> bool {
        self.rank() % 3 != 2
    }

    /// Whether a student who is not employed says so with a work quota of `0` (the others
    /// have no `quotiteTrav`): one student in two.
    pub fn declares_no_work(&self) -> bool {
        self.rank().is_multiple_of(2)
    }
}

impl Dataset {
    /// Indexes `records`, their structure in Apogée's shape (every child of a step in
    /// one of its lists: [`crate::projection::in_lists`]); results are kept for
    /// `resultatsElp`, every kind is accepted.
    pub(crate) fn new(records: impl IntoIterator<Item = Record>) -> Dataset {
        let mut data = Dataset::default();
        let mut registrations = Vec::new();
        for record in crate::projection::in_lists(records) {
            match record {
                Record::Student(student) => data.add_student(student),
                Record::Node(node) => data.structure_mut(node.year).add_node(node),
                Record::Edge(edge) => data.structure_mut(edge.year).add_edge(edge),
                Record::Registration(registration) => registrations.push(registration),
                Record::Enrolment(enrolment) => data.add_enrolment(enrolment),
                Record::Result(result) => data.add_result(result),
            }
        }
        data.structures.values_mut().for_each(Structure::sort);
        // Registrations last: their steps and diplomas are resolved against the structure.
        registrations
            .into_iter()
            .for_each(|r| data.add_registration(r));
        data.sort_registrations();
        data
    }

    fn add_student(&mut self, record: Student) {
        let index = self.students.len();
        self.by_cod_etu.insert(record.student.clone(), index);
        if let Some(ine) = &record.ine {
            self.by_ine.insert(ine.to_ascii_uppercase(), index);
        }
        self.students.push(StudentEntry {
            record,
            cod_ind: FIRST_COD_IND + index as u64,
            disability: false,
        });
    }

    fn structure_mut(&mut self, year: i32) -> &mut Structure {
        self.structures.entry(year).or_default()
    }

    fn add_enrolment(&mut self, enrolment: Enrolment) {
        let key = (
            enrolment.year,
            enrolment.student.clone(),
            enrolment.step.clone(),
        );
        self.enrolments.entry(key).or_default().push(enrolment);
    }

    fn add_result(&mut self, result: CourseResult) {
        let key = (result.year, result.student.clone(), result.node.clone());
        self.results.entry(key).or_default().push(result);
    }

    fn add_registration(&mut self, record: Registration) {
        let structure = self.structures.get(&record.year);
        let resolve = |id: &str| versioned(structure.and_then(|s| s.node(id)), id);
        let entry = RegistrationEntry {
            step: resolve(&record.step),
            diploma: record.diploma.as_deref().map(resolve),
            record,
        };
        let index = self.registrations.len();
        let student = entry.record.student.clone();
        if entry
            .record
            .special_statuses
            .iter()
            .any(|s| s == DISABILITY)
        {
            if let Some(&s) = self.by_cod_etu.get(&student) {
                self.students[s].disability = true;
            }
        }
        self.by_year
            .entry(entry.record.year)
            .or_default()
            .push(index);
        self.by_student.entry(student).or_default().push(index);
        self.registrations.push(entry);
    }

    /// Puts each student's registrations in year order (stable: record order within a
    /// year), as Apogée lists them.
    fn sort_registrations(&mut self) {
        let registrations = &self.registrations;
        for indices in self.by_student.values_mut() {
            indices.sort_by_key(|&i| registrations.get(i).map(|r| r.record.year));
        }
    }

    /// A student by number.
    pub(crate) fn student(&self, cod_etu: &str) -> Option<&StudentEntry> {
        self.by_cod_etu.get(cod_etu).map(|&i| &self.students[i])
    }

    /// A student by INE (case-insensitive, as Apogée upper-cases it).
    pub(crate) fn student_by_ine(&self, ine: &str) -> Option<&StudentEntry> {
        self.by_ine
            .get(&ine.to_ascii_uppercase())
            .map(|&i| &self.students[i])
    }

    /// A student's registrations, year by year.
    pub(crate) fn registrations_of(
        &self,
        cod_etu: &str,
    ) -> impl Iterator<Item = &RegistrationEntry> {
        self.indexed(self.by_student.get(cod_etu))
    }

    /// The registrations of a year, in record order.
    pub(crate) fn registrations_in(&self, year: i32) -> impl Iterator<Item = &RegistrationEntry> {
        self.indexed(self.by_year.get(&year))
    }

    fn indexed<'a>(
        &'a self,
        indices: Option<&'a Vec<usize>>,
    ) -> impl Iterator<Item = &'a RegistrationEntry> {
        indices
            .into_iter()
            .flatten()
            .filter_map(|&i| self.registrations.get(i))
    }

    /// The enrolments of one registration.
    pub(crate) fn enrolments(&self, registration: &Registration) -> &[Enrolment] {
        let key = (
            registration.year,
            registration.student.clone(),
            registration.step.clone(),
        );
        self.enrolments.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The results of a student for a node, a year.
    pub(crate) fn results(&self, year: i32, student: &str, node: &str) -> &[CourseResult] {
        let key = (year, student.to_owned(), node.to_owned());
        self.results.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The structure of a year.
    pub(crate) fn structure(&self, year: i32) -> Option<&Structure> {
        self.structures.get(&year)
    }

    /// The most recent year with a structure.
    pub(crate) fn latest_year(&self) -> Option<i32> {
        self.structures.keys().next_back().copied()
    }
}

impl Structure {
    fn add_node(&mut self, node: Node) {
        if node.kind == NodeKind::Diploma {
            self.diplomas.push(node.node.clone());
        }
        self.nodes.insert(node.node.clone(), node);
    }

    fn add_edge(&mut self, edge: Edge) {
        self.parents
            .entry(edge.child.clone())
            .or_default()
            .push(edge.parent.clone());
        self.children
            .entry(edge.parent.clone())
            .or_default()
            .push(edge);
    }

    fn sort(&mut self) {
        for edges in self.children.values_mut() {
            edges.sort_by_key(|e| e.position.unwrap_or(i32::MAX));
        }
    }

    /// A node by id.
    pub(crate) fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The child edges of a node, in position order.
    pub(crate) fn children(&self, parent: &str) -> &[Edge] {
        self.children.get(parent).map_or(&[], Vec::as_slice)
    }

    /// The parents of a node.
    pub(crate) fn parents(&self, child: &str) -> &[String] {
        self.parents.get(child).map_or(&[], Vec::as_slice)
    }

    /// The diplomas of the year, in record order.
    pub(crate) fn diplomas(&self) -> impl Iterator<Item = &Node> {
        self.diplomas.iter().filter_map(|id| self.nodes.get(id))
    }
}

/// The code and version of a node, from its record or, when the structure does not hold
/// it, from its id (`VET:L2INF/120`).
fn versioned(node: Option<&Node>, id: &str) -> Versioned {
    match node {
        Some(node) => Versioned {
            code: node.code.clone(),
            version: node.version.clone().unwrap_or_default(),
            label: node.label.clone(),
        },
        None => {
            let (code, version) = parse_versioned_id(id);
            Versioned {
                label: code.clone(),
                code,
                version,
            }
        }
    }
}

/// `VDI:<code>/<version>` or `VET:<code>/<version>` → (code, version).
fn parse_versioned_id(id: &str) -> (String, String) {
    let body = id.split_once(':').map_or(id, |(_, body)| body);
    match body.rsplit_once('/') {
        Some((code, version)) => (code.to_owned(), version.to_owned()),
        None => (body.to_owned(), String::new()),
    }
}

/// The ELP code of a node id (`ELP:<code>`), `None` for any other kind of id: only ELPs
/// are carried by the pedagogical operations.
pub(crate) fn elp_code(id: &str) -> Option<&str> {
    id.strip_prefix("ELP:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_code_and_version() {
        assert_eq!(
            parse_versioned_id("VET:L2INF/120"),
            ("L2INF".to_owned(), "120".to_owned())
        );
        assert_eq!(
            parse_versioned_id("VDI:LIC-INF"),
            ("LIC-INF".to_owned(), String::new())
        );
        assert_eq!(elp_code("ELP:INF1U1"), Some("INF1U1"));
        assert_eq!(elp_code("LSE:INF1OUV"), None);
    }
}
