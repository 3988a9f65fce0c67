//! Writes canonical records as a 1EdTech OneRoster 1.1 CSV bulk package, and says what
//! the shipped OneRoster mapping (`oneroster-1.1.toml`) reads back from it.
//!
//! The package ([`write_drop`]) is UTF-8, `,`-separated, one header row per file, LF line
//! ends, fields quoted only when they must be; files and columns in the order of the
//! OneRoster 1.1 CSV binding. Status and dateLastModified stay blank (a bulk file). The
//! mapping of canonical records onto OneRoster:
//!
//! | OneRoster | canonical | sourcedId |
//! |---|---|---|
//! | org | the university (one `school`) | `ORG-1` |
//! | academicSession (`schoolYear`) | an academic year `y` | `AY-{y}` |
//! | course | a step node of a year | `{y}\|{step}` |
//! | class | a node enrolled under a step | `{y}\|{step}\|{node}` |
//! | user, demographics | a student | `U-{student}` |
//! | enrollment | an enrolment | `{y}\|{student}\|{step}\|{node}` |
//!
//! OneRoster carries less than the canonical model, so what comes back ([`readable`]) is
//! the part of the records it can hold: tests of the mapping compare with it.

use chrono::NaiveDate;
use conpere_model::{
    export_order, Edge, Enrolment, Node, NodeKind, Record, Regime, Registration,
    RegistrationStatus, Student,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The sourcedId of the one org of a package.
const ORG: &str = "ORG-1";

/// `manifest.csv`, in the order of the OneRoster 1.1 CSV binding.
const MANIFEST: [(&str, &str); 17] = [
    ("manifest.version", "1.0"),
    ("oneroster.version", "1.1"),
    ("file.academicSessions", "bulk"),
    ("file.categories", "absent"),
    ("file.classes", "bulk"),
    ("file.classResources", "absent"),
    ("file.courses", "bulk"),
    ("file.courseResources", "absent"),
    ("file.demographics", "bulk"),
    ("file.enrollments", "bulk"),
    ("file.lineItems", "absent"),
    ("file.orgs", "bulk"),
    ("file.resources", "absent"),
    ("file.results", "absent"),
    ("file.users", "bulk"),
    ("source.systemName", "conpere"),
    ("source.systemCode", "synth"),
];

const ORGS: [&str; 7] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "name",
    "type",
    "identifier",
    "parentSourcedId",
];

const ACADEMIC_SESSIONS: [&str; 9] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "type",
    "startDate",
    "endDate",
    "parentSourcedId",
    "schoolYear",
];

const COURSES: [&str; 10] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "schoolYearSourcedId",
    "title",
    "courseCode",
    "grades",
    "orgSourcedId",
    "subjects",
    "subjectCodes",
];

const CLASSES: [&str; 14] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "grades",
    "courseSourcedId",
    "classCode",
    "classType",
    "location",
    "schoolSourcedId",
    "termSourcedIds",
    "subjects",
    "subjectCodes",
    "periods",
];

const USERS: [&str; 18] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
];

const DEMOGRAPHICS: [&str; 16] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "birthDate",
    "sex",
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
    "countryOfBirthCode",
    "stateOfBirthAbbreviation",
    "cityOfBirth",
    "publicSchoolResidenceStatus",
];

const ENROLLMENTS: [&str; 10] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "classSourcedId",
    "schoolSourcedId",
    "userSourcedId",
    "role",
    "primary",
    "beginDate",
    "endDate",
];

/// An enrolment's key: year, student, step, node.
type EnrolmentKey<'a> = (i32, &'a str, &'a str, &'a str);

/// A class: year, step, node.
type ClassKey<'a> = (i32, &'a str, &'a str);

/// What the package is made of, gathered from the records in one pass and sorted (the
/// files' rows come out in this order). A key seen twice counts once: its first record.
#[derive(Default)]
struct Index<'a> {
    years: BTreeSet<i32>,
    nodes: BTreeMap<(i32, &'a str), &'a Node>,
    students: BTreeMap<&'a str, &'a Student>,
    enrolments: BTreeSet<EnrolmentKey<'a>>,
}

impl<'a> Index<'a> {
    fn new(records: &'a [Record]) -> Self {
        let mut index = Index::default();
        for record in records {
            index.years.extend(record.year());
            match record {
                Record::Student(s) => {
                    index.students.entry(s.student.as_str()).or_insert(s);
                }
                Record::Node(n) => {
                    index.nodes.entry((n.year, n.node.as_str())).or_insert(n);
                }
                Record::Enrolment(e) => {
                    index
                        .enrolments
                        .insert((e.year, &e.student, &e.step, &e.node));
                }
                _ => {}
            }
        }
        index
    }

    /// The step nodes (kind `step`), by year then id.
    fn steps(&self) -> impl Iterator<Item = &'a Node> + '_ {
        self.nodes
            .values()
            .copied()
            .filter(|n| n.kind == NodeKind::Step)
    }

    /// The label of node `id` of `year`; blank when there is no such node.
    fn label(&self, year: i32, id: &str) -> &'a str {
        self.nodes.get(&(year, id)).map_or("", |n| n.label.as_str())
    }

    /// The distinct (year, step, node) of the enrolments: the classes.
    fn classes(&self) -> BTreeSet<ClassKey<'a>> {
        self.enrolments
            .iter()
            .map(|&(year, _, step, node)| (year, step, node))
            .collect()
    }
}

/// Writes `records` into `dir` as a OneRoster 1.1 CSV bulk package: `manifest.csv`, then
/// `orgs.csv`, `academicSessions.csv`, `courses.csv`, `classes.csv`, `users.csv`,
/// `demographics.csv` and `enrollments.csv` (every file written, with its header, even
/// when empty); returns the files in that order.
///
/// Rows are sorted (by year, then ids compared byte-wise), so the same records always give
/// the same bytes. Only students, nodes (every step becomes a course, even one nobody is
/// enrolled in; other nodes only lend their labels to classes) and enrolments are used,
/// plus the year of every year-scoped record (one session each); registrations, edges and
/// results have no place in the package.
pub fn write_drop(dir: &Path, records: &[Record]) -> std::io::Result<Vec<PathBuf>> {
    let index = Index::new(records);
    Ok(vec![
        write_file(
            dir,
            "manifest.csv",
            ["propertyName", "value"],
            manifest_rows(),
        )?,
        write_file(dir, "orgs.csv", ORGS, [org_row()])?,
        write_file(
            dir,
            "academicSessions.csv",
            ACADEMIC_SESSIONS,
            session_rows(&index),
        )?,
        write_file(dir, "courses.csv", COURSES, course_rows(&index))?,
        write_file(dir, "classes.csv", CLASSES, class_rows(&index))?,
        write_file(dir, "users.csv", USERS, user_rows(&index))?,
        write_file(
            dir,
            "demographics.csv",
            DEMOGRAPHICS,
            demographic_rows(&index),
        )?,
        write_file(dir, "enrollments.csv", ENROLLMENTS, enrollment_rows(&index))?,
    ])
}

/// Writes one file: its header, then its rows (as many cells as the header: the type
/// says so).
fn write_file<const N: usize>(
    dir: &Path,
    name: &str,
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let mut out = csv::WriterBuilder::new()
        .delimiter(b',')
        .quote(b'"')
        .double_quote(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_path(&path)?;
    out.write_record(header)?;
    for row in rows {
        out.write_record(&row)?;
    }
    out.flush()?;
    Ok(path)
}

fn manifest_rows() -> impl Iterator<Item = [String; 2]> {
    MANIFEST
        .into_iter()
        .map(|(name, value)| [name.to_string(), value.to_string()])
}

fn org_row() -> [String; 7] {
    cells([ORG, "", "", "Université", "school", "ETAB00", ""])
}

/// One `schoolYear` session per academic year (OneRoster's schoolYear is the ending year).
fn session_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 9]> + 'a {
    index.years.iter().map(|&year| {
        let next = i64::from(year) + 1;
        [
            session_id(year),
            String::new(),
            String::new(),
            format!("{year}-{next}"),
            "schoolYear".into(),
            format!("{year}-09-01"),
            format!("{next}-08-31"),
            String::new(),
            next.to_string(),
        ]
    })
}

/// One course per step node of a year.
fn course_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 10]> + 'a {
    index.steps().map(|step| {
        [
            course_id(step.year, &step.node),
            String::new(),
            String::new(),
            session_id(step.year),
            step.label.clone(),
            step.node.clone(),
            String::new(),
            ORG.into(),
            String::new(),
            String::new(),
        ]
    })
}

/// One class per node enrolled under a step in a year.
fn class_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 14]> + 'a {
    index.classes().into_iter().map(move |(year, step, node)| {
        [
            class_id(year, step, node),
            String::new(),
            String::new(),
            index.label(year, node).to_string(),
            String::new(),
            course_id(year, step),
            node.to_string(),
            "scheduled".into(),
            String::new(),
            ORG.into(),
            session_id(year),
            String::new(),
            String::new(),
            String::new(),
        ]
    })
}

/// One user per student.
fn user_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 18]> + 'a {
    index.students.values().map(|s| {
        [
            user_id(&s.student),
            String::new(),
            String::new(),
            "true".into(),
            ORG.into(),
            "student".into(),
            s.login.clone().unwrap_or_default(),
            s.ine
                .as_ref()
                .map_or(String::new(), |ine| format!("{{INE:{ine}}}")),
            s.given_name.clone(),
            s.family_name.clone(),
            String::new(),
            s.student.clone(),
            s.email.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]
    })
}

/// One demographics row per student: only the birth date is known.
fn demographic_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 16]> + 'a {
    index.students.values().map(|s| {
        let birth = s.birth_date.as_ref().map_or(String::new(), iso_date);
        std::array::from_fn(|column| match column {
            0 => user_id(&s.student),
            3 => birth.clone(),
            _ => String::new(),
        })
    })
}

/// One enrollment per enrolment.
fn enrollment_rows<'a>(index: &'a Index<'_>) -> impl Iterator<Item = [String; 10]> + 'a {
    index.enrolments.iter().map(|&(year, student, step, node)| {
        [
            format!("{year}|{student}|{step}|{node}"),
            String::new(),
            String::new(),
            class_id(year, step, node),
            ORG.into(),
            user_id(student),
            "student".into(),
            "false".into(),
            String::new(),
            String::new(),
        ]
    })
}

fn cells<const N: usize>(values: [&str; N]) -> [String; N] {
    values.map(str::to_string)
}

fn session_id(year: i32) -> String {
    format!("AY-{year}")
}

fn course_id(year: i32, step: &str) -> String {
    format!("{year}|{step}")
}

fn class_id(year: i32, step: &str, node: &str) -> String {
    format!("{year}|{step}|{node}")
}

fn user_id(student: &str) -> String {
    format!("U-{student}")
}

fn iso_date(date: &NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// What the OneRoster mapping reads back from the package [`write_drop`] makes of
/// `records`, sorted with [`export_order`]: the contract of `oneroster-1.1.toml`.
///
/// - every student with at least one enrolment, without `usual_name` (OneRoster has one
///   family name);
/// - the step nodes (kind `step`) some enrolment names, and each enrolled node as a node
///   of kind `other` with its label (blank when the records have no such node); a node
///   that is both stays a step. Codes are the node ids; no version, ECTS or period;
/// - an edge step → node per distinct (year, step, node) enrolled, mandatory;
/// - a registration per distinct (year, student, step) enrolled: active, régime `other`,
///   main, no diploma nor special status;
/// - every enrolment, without `via`, neither carried over nor exempted.
///
/// No results, and nothing else of the records.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let index = Index::new(records);
    let mut out: Vec<Record> = readable_students(&index)
        .chain(readable_nodes(&index))
        .chain(readable_edges(&index))
        .chain(readable_registrations(&index))
        .chain(readable_enrolments(&index))
        .collect();
    out.sort_by(export_order);
    out
}

fn readable_students<'a>(index: &'a Index<'_>) -> impl Iterator<Item = Record> + 'a {
    let enrolled: BTreeSet<&str> = index.enrolments.iter().map(|e| e.1).collect();
    index
        .students
        .values()
        .filter(move |s| enrolled.contains(s.student.as_str()))
        .map(|s| {
            Record::Student(Student {
                usual_name: None,
                ..(*s).clone()
            })
        })
}

/// Every step (each is a course of `courses.csv`, enrolled in or not) first, so that a
/// node both a step and enrolled stays a step; then the enrolled nodes (the classes).
fn readable_nodes<'a>(index: &Index<'a>) -> impl Iterator<Item = Record> + 'a {
    let classes = index.classes();
    let mut nodes: BTreeMap<(i32, &'a str), Node> = BTreeMap::new();
    for step in index.steps() {
        let node = plain_node(step.year, &step.node, NodeKind::Step, &step.label);
        nodes.insert((step.year, &step.node), node);
    }
    for &(year, _, id) in &classes {
        nodes
            .entry((year, id))
            .or_insert_with(|| plain_node(year, id, NodeKind::Other, index.label(year, id)));
    }
    nodes.into_values().map(Record::Node)
}

/// A node as OneRoster carries it: id, kind, label (the code is the id).
fn plain_node(year: i32, id: &str, kind: NodeKind, label: &str) -> Node {
    Node {
        year,
        node: id.to_string(),
        kind,
        code: id.to_string(),
        version: None,
        label: label.to_string(),
        ects: None,
        period: None,
    }
}

fn readable_edges<'a>(index: &Index<'a>) -> impl Iterator<Item = Record> + 'a {
    index.classes().into_iter().map(|(year, step, node)| {
        Record::Edge(Edge {
            year,
            parent: step.to_string(),
            child: node.to_string(),
            mandatory: true,
            min: None,
            max: None,
            position: None,
        })
    })
}

fn readable_registrations<'a>(index: &Index<'a>) -> impl Iterator<Item = Record> + 'a {
    let keys: BTreeSet<(i32, &'a str, &'a str)> = index
        .enrolments
        .iter()
        .map(|&(year, student, step, _)| (year, student, step))
        .collect();
    keys.into_iter().map(|(year, student, step)| {
        Record::Registration(Registration {
            year,
            student: student.to_string(),
            step: step.to_string(),
            diploma: None,
            status: RegistrationStatus::Active,
            regime: Regime::Other,
            main: true,
            special_statuses: vec![],
        })
    })
}

fn readable_enrolments<'a>(index: &'a Index<'_>) -> impl Iterator<Item = Record> + 'a {
    index.enrolments.iter().map(|&(year, student, step, node)| {
        Record::Enrolment(Enrolment {
            year,
            student: student.to_string(),
            step: step.to_string(),
            node: node.to_string(),
            via: None,
            carried_over: false,
            exempted: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::Kind;
    use conpere_synth::{SynthConfig, University};

    fn university() -> (University, Vec<Record>) {
        let university = University::generate(SynthConfig::new(3, 20));
        let records = university.records().collect();
        (university, records)
    }

    /// The header and rows of one file of a package.
    fn read(dir: &Path, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_path(dir.join(name)).unwrap();
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    fn enrolments(records: &[Record]) -> Vec<&Enrolment> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Enrolment(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn count(records: &[Record], kind: Kind) -> usize {
        records.iter().filter(|r| r.kind() == kind).count()
    }

    fn node(year: i32, id: &str, kind: NodeKind, label: &str) -> Record {
        Record::Node(plain_node(year, id, kind, label))
    }

    fn enrolment(year: i32, student: &str, step: &str, node: &str) -> Record {
        Record::Enrolment(Enrolment {
            year,
            student: student.into(),
            step: step.into(),
            node: node.into(),
            via: Some("LSE:X".into()),
            carried_over: true,
            exempted: false,
        })
    }

    fn student(id: &str, family_name: &str) -> Record {
        Record::Student(Student {
            student: id.into(),
            ine: Some("1234567890A".into()),
            family_name: family_name.into(),
            usual_name: Some("Dupont".into()),
            given_name: "Zoé".into(),
            birth_date: NaiveDate::from_ymd_opt(2004, 2, 29),
            email: None,
            login: Some("zoe.lefevre".into()),
        })
    }

    /// A small hand-made university: a label with a comma and quotes, a node enrolled
    /// under two steps, a step also enrolled as a node, a node with no record.
    fn small() -> Vec<Record> {
        vec![
            student("0042", "Lefèvre, dite « Œuvre »"),
            student("77", "Nobody"),
            node(2024, "VET:L1", NodeKind::Step, "Licence 1, \"parcours\" A"),
            node(2024, "VET:L2", NodeKind::Step, "Licence 2"),
            node(2024, "ELP:X", NodeKind::Element, "Algèbre, analyse"),
            enrolment(2024, "0042", "VET:L1", "ELP:X"),
            enrolment(2024, "0042", "VET:L2", "ELP:X"),
            enrolment(2024, "0042", "VET:L2", "VET:L1"),
            enrolment(2024, "0042", "VET:L2", "ELP:GHOST"),
        ]
    }

    #[test]
    fn package_has_the_files_and_headers_of_the_spec() {
        let (_, records) = university();
        let dir = tempfile::tempdir().unwrap();
        let files = write_drop(dir.path(), &records).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
        assert_eq!(
            names,
            [
                "manifest.csv",
                "orgs.csv",
                "academicSessions.csv",
                "courses.csv",
                "classes.csv",
                "users.csv",
                "demographics.csv",
                "enrollments.csv"
            ]
        );
        let (header, manifest) = read(dir.path(), "manifest.csv");
        assert_eq!(header, ["propertyName", "value"]);
        let expected: Vec<Vec<String>> = MANIFEST
            .iter()
            .map(|(k, v)| vec![k.to_string(), v.to_string()])
            .collect();
        assert_eq!(manifest, expected);
        for (name, columns) in [
            ("orgs.csv", &ORGS[..]),
            ("academicSessions.csv", &ACADEMIC_SESSIONS),
            ("courses.csv", &COURSES),
            ("classes.csv", &CLASSES),
            ("users.csv", &USERS),
            ("demographics.csv", &DEMOGRAPHICS),
            ("enrollments.csv", &ENROLLMENTS),
        ] {
            let (header, rows) = read(dir.path(), name);
            assert_eq!(header, columns, "{name}");
            assert!(rows.iter().all(|r| r.len() == columns.len()), "{name}");
        }
        assert_eq!(header_line(dir.path(), "users.csv"), USERS.join(","));
    }

    fn header_line(dir: &Path, name: &str) -> String {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        text.lines().next().unwrap().to_string()
    }

    #[test]
    fn package_rows_match_the_records() {
        let (university, records) = university();
        let dir = tempfile::tempdir().unwrap();
        write_drop(dir.path(), &records).unwrap();
        let (_, users) = read(dir.path(), "users.csv");
        let (_, enrollments) = read(dir.path(), "enrollments.csv");
        let (_, sessions) = read(dir.path(), "academicSessions.csv");
        let (_, demographics) = read(dir.path(), "demographics.csv");
        let (_, orgs) = read(dir.path(), "orgs.csv");
        assert_eq!(users.len(), count(&records, Kind::Student));
        assert_eq!(demographics.len(), users.len());
        assert_eq!(enrollments.len(), count(&records, Kind::Enrolment));
        let years: BTreeSet<_> = records.iter().filter_map(Record::year).collect();
        assert_eq!(sessions.len(), years.len());
        assert_eq!(
            sessions[0],
            [
                "AY-2023",
                "",
                "",
                "2023-2024",
                "schoolYear",
                "2023-09-01",
                "2024-08-31",
                "",
                "2024"
            ]
        );
        assert_eq!(
            orgs,
            [["ORG-1", "", "", "Université", "school", "ETAB00", ""]]
        );

        let hard = university.hard_cases().unwrap();
        let zero = users.iter().find(|u| u[11] == hard.leading_zero_student);
        assert_eq!(zero.unwrap()[0], format!("U-{}", hard.leading_zero_student));
        let accented = users
            .iter()
            .find(|u| u[11] == hard.accented_student)
            .unwrap();
        let original = records
            .iter()
            .find_map(|r| match r {
                Record::Student(s) if s.student == hard.accented_student => Some(s),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (&accented[8], &accented[9]),
            (&original.given_name, &original.family_name)
        );
        assert!(!(accented[8].is_ascii() && accented[9].is_ascii()));
    }

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        let dir = tempfile::tempdir().unwrap();
        write_drop(dir.path(), &small()).unwrap();
        let raw = std::fs::read_to_string(dir.path().join("classes.csv")).unwrap();
        assert!(!raw.contains('\r'));
        assert!(raw.contains(",\"Algèbre, analyse\","), "{raw}");
        let courses = std::fs::read_to_string(dir.path().join("courses.csv")).unwrap();
        assert!(
            courses.contains("\"Licence 1, \"\"parcours\"\" A\""),
            "{courses}"
        );
        assert!(courses.contains(",Licence 2,"), "{courses}");

        let (_, users) = read(dir.path(), "users.csv");
        assert_eq!(users[0][0], "U-0042");
        assert_eq!(users[0][6], "zoe.lefevre");
        assert_eq!(users[0][7], "{INE:1234567890A}");
        assert_eq!(users[0][9], "Lefèvre, dite « Œuvre »");
        assert_eq!(users[0][11], "0042");
        let (_, demographics) = read(dir.path(), "demographics.csv");
        assert_eq!(demographics[0][3], "2004-02-29");
        let (_, classes) = read(dir.path(), "classes.csv");
        let ghost = classes.iter().find(|c| c[6] == "ELP:GHOST").unwrap();
        assert_eq!(
            ghost[..7],
            [
                "2024|VET:L2|ELP:GHOST",
                "",
                "",
                "",
                "",
                "2024|VET:L2",
                "ELP:GHOST"
            ]
        );
        assert_eq!(
            ghost[7..],
            ["scheduled", "", "ORG-1", "AY-2024", "", "", ""]
        );
    }

    #[test]
    fn output_is_deterministic() {
        let mut records = small();
        let first = tempfile::tempdir().unwrap();
        write_drop(first.path(), &records).unwrap();
        records.reverse();
        let second = tempfile::tempdir().unwrap();
        for file in write_drop(second.path(), &records).unwrap() {
            let name = file.file_name().unwrap();
            let again = std::fs::read(first.path().join(name)).unwrap();
            assert_eq!(std::fs::read(&file).unwrap(), again, "{name:?}");
        }
    }

    #[test]
    fn readable_keeps_what_oneroster_carries() {
        let (_, records) = university();
        let back = readable(&records);
        let enrolled = enrolments(&records);
        let students: BTreeSet<&str> = enrolled.iter().map(|e| e.student.as_str()).collect();
        let classes: BTreeSet<_> = enrolled
            .iter()
            .map(|e| (e.year, &e.step, &e.node))
            .collect();
        let steps: BTreeSet<_> = enrolled.iter().map(|e| (e.year, &e.step)).collect();
        let nodes: BTreeSet<_> = enrolled.iter().map(|e| (e.year, &e.node)).collect();
        let registrations: BTreeSet<_> = enrolled
            .iter()
            .map(|e| (e.year, &e.student, &e.step))
            .collect();
        let with_enrolments = records
            .iter()
            .filter(|r| matches!(r, Record::Student(s) if students.contains(s.student.as_str())))
            .count();
        assert_eq!(count(&back, Kind::Student), with_enrolments);
        assert_eq!(count(&back, Kind::Edge), classes.len());
        assert_eq!(count(&back, Kind::Registration), registrations.len());
        assert_eq!(count(&back, Kind::Enrolment), enrolled.len());
        assert_eq!(count(&back, Kind::Result), 0);
        let step_nodes = back
            .iter()
            .filter(|r| matches!(r, Record::Node(n) if n.kind == NodeKind::Step))
            .count();
        assert_eq!(step_nodes, steps.len());
        assert_eq!(count(&back, Kind::Node), steps.union(&nodes).count());
        assert!(back.iter().all(|r| r.validate().is_ok()));
        assert!(back.windows(2).all(|w| export_order(&w[0], &w[1]).is_lt()));
    }

    #[test]
    fn readable_of_a_small_university() {
        let back = readable(&small());
        let node_of = |id: &str| {
            back.iter().find_map(|r| match r {
                Record::Node(n) if n.node == id => Some(n.clone()),
                _ => None,
            })
        };
        let l1 = node_of("VET:L1").unwrap();
        assert_eq!(
            (l1.kind, l1.label.as_str()),
            (NodeKind::Step, "Licence 1, \"parcours\" A")
        );
        let x = node_of("ELP:X").unwrap();
        assert_eq!(
            x,
            plain_node(2024, "ELP:X", NodeKind::Other, "Algèbre, analyse")
        );
        assert_eq!(node_of("ELP:GHOST").unwrap().label, "");
        assert_eq!(count(&back, Kind::Node), 4);
        assert_eq!(count(&back, Kind::Registration), 2);
        assert_eq!(count(&back, Kind::Edge), 4);
        let Some(Record::Student(s)) = back.iter().find(|r| r.kind() == Kind::Student) else {
            panic!("the enrolled student is read back");
        };
        assert_eq!((s.student.as_str(), s.usual_name.as_ref()), ("0042", None));
        assert_eq!(count(&back, Kind::Student), 1);
        assert!(enrolments(&back)
            .iter()
            .all(|e| e.via.is_none() && !e.carried_over));
    }
}
