//! # conpere-model
//!
//! The canonical, SIS-neutral model (DESIGN.md, "Canonical model"), and what an adapter
//! hands the engine ([`Batch`], [`Mode`], [`ReadAt`]). It knows no store and no SIS: the
//! adapters depend on this crate and not on `conpere-core`, so that the compiler keeps them
//! from reaching the store.
//!
//! Every adapter turns what its SIS says into these records; the engine stores them; the
//! export writes them back out as JSON Lines. Field names here *are* the export's field
//! names, so renaming one is a breaking change of a user-facing interface.
//!
//! ```
//! use conpere_model::{Record, Student};
//! let line = r#"{"type":"student","student":"21901234","ine":null,"family_name":"Lefèvre",
//!   "usual_name":null,"given_name":"Zoé","birth_date":"2004-02-29","email":null,"login":null}"#;
//! let record: Record = serde_json::from_str(line).unwrap();
//! assert_eq!(record.kind().as_str(), "student");
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
pub mod mask;

mod read_error;

pub use batch::{Batch, Mode, ReadAt};
pub use read_error::{FailureKind, ReadError};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of canonical record, in the order the engine merges them (a registration needs
/// its student, an enrolment its registration, an edge its nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A person (`student` record).
    Student,
    /// A course-structure node (diploma, step, semester, unit, element, choice…).
    Node,
    /// A parent → child link of the course structure.
    Edge,
    /// An administrative registration (inscription administrative) to a step.
    Registration,
    /// A pedagogical registration (inscription pédagogique) to a node of a step.
    Enrolment,
    /// A grade or outcome for a node and session (optional capability).
    Result,
}

impl Kind {
    /// All kinds, in merge order.
    pub const ALL: [Kind; 6] = [
        Kind::Student,
        Kind::Node,
        Kind::Edge,
        Kind::Registration,
        Kind::Enrolment,
        Kind::Result,
    ];

    /// The `"type"` value of the export format.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Student => "student",
            Kind::Node => "node",
            Kind::Edge => "edge",
            Kind::Registration => "registration",
            Kind::Enrolment => "enrolment",
            Kind::Result => "result",
        }
    }

    /// Parses an export `"type"` value.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether records of this kind belong to an academic year (all but students).
    pub fn is_year_scoped(self) -> bool {
        self != Kind::Student
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person, keyed by the SIS student number (kept as a string: leading zeros matter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Student {
    /// SIS student number (Apogée COD_ETU, Pégase codeApprenant, Cocktail ETUD_NUMERO).
    pub student: String,
    /// National student identifier; links the same person across sources.
    pub ine: Option<String>,
    /// Birth family name.
    pub family_name: String,
    /// Usual name, when it differs.
    pub usual_name: Option<String>,
    /// First given name.
    pub given_name: String,
    /// Birth date (a calendar date: no time, no time zone).
    pub birth_date: Option<NaiveDate>,
    /// Institutional e-mail address.
    pub email: Option<String>,
    /// Institutional login.
    pub login: Option<String>,
}

/// The kind of a course-structure node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Diploma (Apogée VDI).
    Diploma,
    /// Step, the unit of administrative registration (Apogée VET).
    Step,
    /// Semester.
    Semester,
    /// Teaching unit (UE).
    Unit,
    /// Course element (EC, matière).
    Element,
    /// A choice list: its children are options (Apogée LSE, Pégase plage de choix).
    Choice,
    /// Anything else the SIS models.
    Other,
}

impl NodeKind {
    /// The export value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Diploma => "diploma",
            NodeKind::Step => "step",
            NodeKind::Semester => "semester",
            NodeKind::Unit => "unit",
            NodeKind::Element => "element",
            NodeKind::Choice => "choice",
            NodeKind::Other => "other",
        }
    }
}

/// A course-structure node of one academic year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Academic year (start year: 2024 means 2024-2025).
    pub year: i32,
    /// Stable node id chosen by the adapter (e.g. `VET:L2INF/120`).
    pub node: String,
    /// What the node is.
    pub kind: NodeKind,
    /// The SIS code.
    pub code: String,
    /// The SIS version, when the SIS versions its objects.
    pub version: Option<String>,
    /// Human-readable label.
    pub label: String,
    /// ECTS credits.
    pub ects: Option<f64>,
    /// Teaching period (e.g. `S1`), when known.
    pub period: Option<String>,
}

/// A parent → child link of the course structure of one year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Academic year.
    pub year: i32,
    /// Parent node id.
    pub parent: String,
    /// Child node id.
    pub child: String,
    /// Whether the child is mandatory under its parent.
    pub mandatory: bool,
    /// Minimum number of children to choose (choice nodes).
    pub min: Option<i32>,
    /// Maximum number of children to choose (choice nodes).
    pub max: Option<i32>,
    /// Display position among siblings.
    pub position: Option<i32>,
}

/// Status of an administrative registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationStatus {
    /// Registered.
    Active,
    /// Cancelled (annulée): kept, not deleted, so the history shows it.
    Cancelled,
    /// Started but not complete.
    Pending,
}

impl RegistrationStatus {
    /// The export value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Active => "active",
            RegistrationStatus::Cancelled => "cancelled",
            RegistrationStatus::Pending => "pending",
        }
    }
}

/// Registration régime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Regime {
    /// Formation initiale.
    Initial,
    /// Formation continue.
    Continuing,
    /// Apprentissage.
    Apprenticeship,
    /// Anything else.
    Other,
}

impl Regime {
    /// The export value.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Initial => "initial",
            Regime::Continuing => "continuing",
            Regime::Apprenticeship => "apprenticeship",
            Regime::Other => "other",
        }
    }
}

/// The canonical special statuses (plus `other:<code>` for unmapped SIS codes).
pub const SPECIAL_STATUSES: [&str; 9] = [
    "employed",
    "high_level_athlete",
    "disability",
    "artist",
    "carer",
    "elected_representative",
    "civic_service",
    "multi_degree",
    "distance",
];

/// Whether `value` is a canonical special status (`employed`, … or `other:<code>`).
pub fn is_special_status(value: &str) -> bool {
    SPECIAL_STATUSES.contains(&value)
        || value
            .strip_prefix("other:")
            .is_some_and(|code| !code.trim().is_empty())
}

/// An administrative registration of a student to a step for a year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Academic year.
    pub year: i32,
    /// Student number.
    pub student: String,
    /// Step node id.
    pub step: String,
    /// Diploma node id.
    pub diploma: Option<String>,
    /// Registration status.
    pub status: RegistrationStatus,
    /// Régime.
    pub regime: Regime,
    /// Whether this is the student's main registration (a double licence has two).
    pub main: bool,
    /// Canonical special statuses, a set: the engine stores and exports them sorted.
    pub special_statuses: Vec<String>,
}

/// A pedagogical registration: a student follows `node` within their registration to `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    /// Academic year.
    pub year: i32,
    /// Student number.
    pub student: String,
    /// Step node id of the registration this enrolment belongs to.
    pub step: String,
    /// The node followed.
    pub node: String,
    /// The choice node it was taken through, if any.
    pub via: Option<String>,
    /// Carried over from a previous year (acquis, report).
    pub carried_over: bool,
    /// Exempted (dispense).
    pub exempted: bool,
}

/// A grade or outcome for a node and an examination session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CourseResult {
    /// Academic year.
    pub year: i32,
    /// Student number.
    pub student: String,
    /// Node graded.
    pub node: String,
    /// Session (`1`, `2`…).
    pub session: String,
    /// Grade.
    pub grade: Option<f64>,
    /// Scale of the grade (usually 20).
    pub scale: Option<f64>,
    /// Outcome code (`ADM`, `AJ`…).
    pub outcome: Option<String>,
    /// ECTS earned.
    pub ects_earned: Option<f64>,
}

/// One canonical record of any kind, tagged by `"type"` as in the export format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// A student.
    Student(Student),
    /// A structure node.
    Node(Node),
    /// A structure edge.
    Edge(Edge),
    /// An administrative registration.
    Registration(Registration),
    /// A pedagogical registration.
    Enrolment(Enrolment),
    /// A result.
    Result(CourseResult),
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Record::Student(_) => Kind::Student,
            Record::Node(_) => Kind::Node,
            Record::Edge(_) => Kind::Edge,
            Record::Registration(_) => Kind::Registration,
            Record::Enrolment(_) => Kind::Enrolment,
            Record::Result(_) => Kind::Result,
        }
    }

    /// The record's natural key (within its source).
    pub fn key(&self) -> RecordKey {
        let parts = match self {
            Record::Student(r) => vec![KeyPart::Text(r.student.clone())],
            Record::Node(r) => vec![KeyPart::Year(r.year), KeyPart::Text(r.node.clone())],
            Record::Edge(r) => vec![
                KeyPart::Year(r.year),
                KeyPart::Text(r.parent.clone()),
                KeyPart::Text(r.child.clone()),
            ],
            Record::Registration(r) => vec![
                KeyPart::Year(r.year),
                KeyPart::Text(r.student.clone()),
                KeyPart::Text(r.step.clone()),
            ],
            Record::Enrolment(r) => vec![
                KeyPart::Year(r.year),
                KeyPart::Text(r.student.clone()),
                KeyPart::Text(r.step.clone()),
                KeyPart::Text(r.node.clone()),
            ],
            Record::Result(r) => vec![
                KeyPart::Year(r.year),
                KeyPart::Text(r.student.clone()),
                KeyPart::Text(r.node.clone()),
                KeyPart::Text(r.session.clone()),
            ],
        };
        RecordKey {
            kind: self.kind(),
            parts,
        }
    }

    /// The key's year and text parts, borrowed (validation and staging run on every
    /// record: no copy of the key).
    pub fn key_refs(&self) -> (Option<i32>, Vec<&str>) {
        match self {
            Record::Student(r) => (None, vec![&r.student]),
            Record::Node(r) => (Some(r.year), vec![&r.node]),
            Record::Edge(r) => (Some(r.year), vec![&r.parent, &r.child]),
            Record::Registration(r) => (Some(r.year), vec![&r.student, &r.step]),
            Record::Enrolment(r) => (Some(r.year), vec![&r.student, &r.step, &r.node]),
            Record::Result(r) => (Some(r.year), vec![&r.student, &r.node, &r.session]),
        }
    }

    /// The academic year of a year-scoped record.
    pub fn year(&self) -> Option<i32> {
        match self {
            Record::Student(_) => None,
            Record::Node(r) => Some(r.year),
            Record::Edge(r) => Some(r.year),
            Record::Registration(r) => Some(r.year),
            Record::Enrolment(r) => Some(r.year),
            Record::Result(r) => Some(r.year),
        }
    }

    /// Puts the record in its canonical form: trims keys, sorts and de-duplicates the
    /// special statuses (a set). The engine calls this before hashing, so two spellings of
    /// the same content never count as a change.
    pub fn normalize(&mut self) {
        fn trim(s: &mut String) {
            if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
                *s = s.trim().to_string();
            }
        }
        match self {
            Record::Student(r) => trim(&mut r.student),
            Record::Node(r) => trim(&mut r.node),
            Record::Edge(r) => {
                trim(&mut r.parent);
                trim(&mut r.child);
            }
            Record::Registration(r) => {
                trim(&mut r.student);
                trim(&mut r.step);
                r.special_statuses.sort();
                r.special_statuses.dedup();
            }
            Record::Enrolment(r) => {
                trim(&mut r.student);
                trim(&mut r.step);
                trim(&mut r.node);
            }
            Record::Result(r) => {
                trim(&mut r.student);
                trim(&mut r.node);
                trim(&mut r.session);
            }
        }
    }

    /// Checks what the model itself requires (non-empty keys, known special statuses,
    /// sane numbers). Referential checks (a registration's student exists…) are the
    /// engine's, because they need the whole snapshot.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_key()?;
        self.validate_content()
    }

    /// [`validate`](Record::validate) but for the key, for a caller that checked it apart.
    pub fn validate_content(&self) -> Result<(), String> {
        if let Some(field) = self.first_text(|text| text.contains('\0')) {
            return Err(format!(
                "{}: {field} holds a NUL character (U+0000), which the store cannot hold",
                self.kind()
            ));
        }
        match self {
            Record::Student(r) => {
                if r.family_name.trim().is_empty() {
                    return Err("student: family_name is empty".into());
                }
                if let Some(date) = r.birth_date.filter(|d| !(1900..=2100).contains(&d.year())) {
                    return Err(format!(
                        "student: birth_date {date} is out of range (1900 to 2100)"
                    ));
                }
            }
            Record::Node(r) => {
                check_number("ects", r.ects)?;
            }
            Record::Edge(r) => {
                if r.parent == r.child {
                    return Err("edge: a node cannot be its own parent".into());
                }
                if let (Some(min), Some(max)) = (r.min, r.max) {
                    if min > max {
                        return Err(format!("edge: choice range min {min} > max {max}"));
                    }
                }
                if r.min.is_some_and(|m| m < 0) || r.max.is_some_and(|m| m < 0) {
                    return Err("edge: a choice range bound is negative".into());
                }
            }
            Record::Registration(r) => {
                if let Some(bad) = r.special_statuses.iter().find(|s| !is_special_status(s)) {
                    return Err(format!(
                        "registration: `{bad}` is not a canonical special status \
                         (expected one of {}, or other:<code>)",
                        SPECIAL_STATUSES.join(", ")
                    ));
                }
            }
            Record::Enrolment(_) => {}
            Record::Result(r) => {
                check_number("grade", r.grade)?;
                check_number("scale", r.scale)?;
                check_number("ects_earned", r.ects_earned)?;
            }
        }
        Ok(())
    }
}

impl Record {
    /// The name of the first text field for which `test` holds (special statuses each
    /// tested), without allocating: it runs on every record of a sync.
    fn first_text(&self, test: impl Fn(&str) -> bool) -> Option<&'static str> {
        let check = |name: &'static str, text: &str| test(text).then_some(name);
        let optional = |name: &'static str, text: &Option<String>| {
            text.as_deref().and_then(|text| check(name, text))
        };
        match self {
            Record::Student(r) => check("student", &r.student)
                .or_else(|| check("family_name", &r.family_name))
                .or_else(|| check("given_name", &r.given_name))
                .or_else(|| optional("ine", &r.ine))
                .or_else(|| optional("usual_name", &r.usual_name))
                .or_else(|| optional("email", &r.email))
                .or_else(|| optional("login", &r.login)),
            Record::Node(r) => check("node", &r.node)
                .or_else(|| check("code", &r.code))
                .or_else(|| check("label", &r.label))
                .or_else(|| optional("version", &r.version))
                .or_else(|| optional("period", &r.period)),
            Record::Edge(r) => check("parent", &r.parent).or_else(|| check("child", &r.child)),
            Record::Registration(r) => check("student", &r.student)
                .or_else(|| check("step", &r.step))
                .or_else(|| optional("diploma", &r.diploma))
                .or_else(|| (r.special_statuses.iter()).find_map(|t| check("special_statuses", t))),
            Record::Enrolment(r) => check("student", &r.student)
                .or_else(|| check("step", &r.step))
                .or_else(|| check("node", &r.node))
                .or_else(|| optional("via", &r.via)),
            Record::Result(r) => check("student", &r.student)
                .or_else(|| check("node", &r.node))
                .or_else(|| check("session", &r.session))
                .or_else(|| optional("outcome", &r.outcome)),
        }
    }

    /// Whether the key can be told: no key field empty or holding a NUL character, the
    /// year in range. A record whose key cannot be told is no record of the store: the
    /// engine cannot keep its stored version, and a full read that met one cannot vouch
    /// for the absence of any record of its kind.
    pub fn validate_key(&self) -> Result<(), String> {
        let (year, texts) = self.key_refs();
        key_problem(self.kind(), year, &texts).map_or(Ok(()), Err)
    }
}

impl RecordKey {
    /// What makes this key unusable (see [`Record::validate_key`]), if anything.
    pub fn problem(&self) -> Option<String> {
        let year = self.parts.iter().find_map(|p| match p {
            KeyPart::Year(y) => Some(*y),
            KeyPart::Text(_) => None,
        });
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                KeyPart::Text(t) => Some(t.as_str()),
                KeyPart::Year(_) => None,
            })
            .collect();
        key_problem(self.kind, year, &texts)
    }
}

fn key_problem(kind: Kind, year: Option<i32>, texts: &[&str]) -> Option<String> {
    let names = RecordKey::field_names(kind)
        .iter()
        .filter(|n| **n != "year");
    for (name, text) in names.zip(texts) {
        if text.trim().is_empty() {
            return Some(format!("{kind}: key field `{name}` is empty"));
        }
        if text.contains('\0') {
            return Some(format!(
                "{kind}: key field `{name}` holds a NUL character (U+0000)"
            ));
        }
    }
    year.filter(|y| !(1900..=2200).contains(y))
        .map(|y| format!("{kind}: year {y} is out of range (expected the start year, e.g. 2024)"))
}

fn check_number(field: &str, value: Option<f64>) -> Result<(), String> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(format!("{field} {v} is not a valid number")),
        _ => Ok(()),
    }
}

/// One component of a natural key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    /// An academic year.
    Year(i32),
    /// A text identifier.
    Text(String),
}

/// The natural key of a record within its source: what a tombstone names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// Record kind.
    pub kind: Kind,
    /// Key fields, in the order of the kind's key (e.g. year, student, step).
    pub parts: Vec<KeyPart>,
}

impl RecordKey {
    /// Names of the key fields of `kind`, in order.
    pub fn field_names(kind: Kind) -> &'static [&'static str] {
        match kind {
            Kind::Student => &["student"],
            Kind::Node => &["year", "node"],
            Kind::Edge => &["year", "parent", "child"],
            Kind::Registration => &["year", "student", "step"],
            Kind::Enrolment => &["year", "student", "step", "node"],
            Kind::Result => &["year", "student", "node", "session"],
        }
    }

    /// Reads the key of a `kind` from a JSON object holding (at least) the key fields.
    pub fn from_json(kind: Kind, object: &serde_json::Value) -> Result<RecordKey, String> {
        let mut parts = Vec::new();
        for name in RecordKey::field_names(kind) {
            let value = object
                .get(*name)
                .ok_or_else(|| format!("{kind}: key field `{name}` is missing"))?;
            let part = if *name == "year" {
                let y = value
                    .as_i64()
                    .and_then(|y| i32::try_from(y).ok())
                    .ok_or_else(|| format!("{kind}: `year` must be an integer"))?;
                KeyPart::Year(y)
            } else {
                let s = value
                    .as_str()
                    .ok_or_else(|| format!("{kind}: `{name}` must be a string"))?;
                KeyPart::Text(s.trim().to_string())
            };
            parts.push(part);
        }
        Ok(RecordKey { kind, parts })
    }

    /// The key as a JSON object (field name → value), as stored in history and quarantine.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, part) in RecordKey::field_names(self.kind).iter().zip(&self.parts) {
            let value = match part {
                KeyPart::Year(y) => serde_json::Value::from(*y),
                KeyPart::Text(s) => serde_json::Value::from(s.as_str()),
            };
            map.insert((*name).to_string(), value);
        }
        serde_json::Value::Object(map)
    }

    /// The year of a year-scoped key.
    pub fn year(&self) -> Option<i32> {
        self.parts.iter().find_map(|p| match p {
            KeyPart::Year(y) => Some(*y),
            KeyPart::Text(_) => None,
        })
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        for part in &self.parts {
            match part {
                KeyPart::Year(y) => write!(f, " {y}")?,
                KeyPart::Text(s) => write!(f, " {s}")?,
            }
        }
        Ok(())
    }
}

/// A record an adapter could not turn into a canonical record, or that failed validation:
/// stored in quarantine with its reason, where it came from and the raw payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The kind it would have been, when known.
    pub kind: Option<Kind>,
    /// Its key, when it could be read: the engine then keeps the stored version of that
    /// record as it is (a bad line never deletes the record it was meant to update).
    pub key: Option<RecordKey>,
    /// Why it was rejected, in words an operator can act on.
    pub reason: String,
    /// Where it came from: `file:line`, `Service.operation (student …)`, an URL path…
    pub location: Option<String>,
    /// The raw payload as received (a line, an XML fragment, a JSON object).
    pub payload: String,
}

/// What an adapter yields: records, tombstones (incremental deletions) and rejects.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A record as it is now in the source.
    Record(Record),
    /// A record that the source says is gone (incremental reads).
    Tombstone(RecordKey),
    /// Input that could not become a record.
    Rejected(Rejected),
    /// Something the run's summary should say that is no record (rows a mapping's filter
    /// skipped, per value; SIS codes no table maps): kept with the run, shown by `sync`
    /// and `runs show`.
    Note(String),
}

impl From<Record> for Item {
    fn from(record: Record) -> Self {
        Item::Record(record)
    }
}

/// Why a canonical line could not be read, with whatever could be read of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// The `type` of the line, when readable.
    pub kind: Option<Kind>,
    /// The key of the line, when readable.
    pub key: Option<RecordKey>,
    /// What is wrong, in words.
    pub message: String,
}

/// Parses one line of the canonical JSON Lines format: a record, or a tombstone when the
/// line carries `"deleted": true` and the key fields. Unknown fields (such as `source`)
/// are ignored, so files written by newer versions still read.
///
/// ```
/// use conpere_model::{parse_line, Item};
/// let tomb = parse_line(r#"{"type":"student","student":"0042","deleted":true}"#).unwrap();
/// assert!(matches!(tomb, Item::Tombstone(_)));
/// let bad = parse_line(r#"{"type":"student","student":"0042","birth_date":"31/02/2004"}"#);
/// assert!(bad.unwrap_err().message.contains("student"));
/// ```
pub fn parse_line(line: &str) -> Result<Item, LineError> {
    let Strict(value) = serde_json::from_str(line).map_err(|e| LineError {
        kind: None,
        key: None,
        message: format!("not a JSON object: {e}"),
    })?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .and_then(Kind::parse)
        .ok_or_else(|| LineError {
            kind: None,
            key: None,
            message: format!(
                "`type` is missing or unknown (expected one of {})",
                Kind::ALL.map(Kind::as_str).join(", ")
            ),
        })?;
    let key = RecordKey::from_json(kind, &value);
    if value.get("deleted").and_then(|d| d.as_bool()) == Some(true) {
        return key.map(Item::Tombstone).map_err(|message| LineError {
            kind: Some(kind),
            key: None,
            message,
        });
    }
    typed_record(kind, &value)
        .map(Item::Record)
        .map_err(|e| LineError {
            kind: Some(kind),
            key: key.ok(),
            message: field_error(kind, &value, &e),
        })
}

/// A JSON value in which no object has a member twice: `{"student":"1","student":"2"}`
/// is an error, never "the last one wins".
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "member `{key}` appears twice: which one is meant cannot be told"
                )));
            }
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

/// The record of `kind` in `value`, read as that kind's struct (not through the tagged
/// enum, which would lose the path of a field that does not fit).
fn typed_record(
    kind: Kind,
    value: &serde_json::Value,
) -> Result<Record, serde_path_to_error::Error<serde_json::Error>> {
    use serde_path_to_error::deserialize as read;
    Ok(match kind {
        Kind::Student => Record::Student(read(value)?),
        Kind::Node => Record::Node(read(value)?),
        Kind::Edge => Record::Edge(read(value)?),
        Kind::Registration => Record::Registration(read(value)?),
        Kind::Enrolment => Record::Enrolment(read(value)?),
        Kind::Result => Record::Result(read(value)?),
    })
}

/// A line's field that does not fit the model, named with its value:
/// `student: birth_date "2024-02-30" does not fit: input is out of range`.
fn field_error(
    kind: Kind,
    line: &serde_json::Value,
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> String {
    let field = error.path().to_string();
    let value = line.get(field.as_str()).map(|v| {
        let mut text = v.to_string();
        if text.len() > 80 {
            let mut end = 80;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        text
    });
    match value {
        Some(value) if field.ends_with("date") => format!(
            "{kind}: {field} {value} is not a date (expected YYYY-MM-DD): {}",
            error.inner()
        ),
        Some(value) => format!("{kind}: {field} {value} does not fit: {}", error.inner()),
        None if field != "." => format!("{kind}: {field}: {}", error.inner()),
        None => format!("{kind} does not fit the canonical model: {}", error.inner()),
    }
}

/// Serializes a record as one export line: `type`, `source`, then its fields in model order.
pub fn to_export_line(source: &str, record: &Record) -> String {
    #[derive(Serialize)]
    struct Line<'a, T: Serialize> {
        #[serde(rename = "type")]
        kind: &'static str,
        source: &'a str,
        #[serde(flatten)]
        record: &'a T,
    }
    fn line<T: Serialize>(kind: Kind, source: &str, record: &T) -> String {
        serde_json::to_string(&Line {
            kind: kind.as_str(),
            source,
            record,
        })
        .expect("canonical records always serialize")
    }
    let kind = record.kind();
    match record {
        Record::Student(r) => line(kind, source, r),
        Record::Node(r) => line(kind, source, r),
        Record::Edge(r) => line(kind, source, r),
        Record::Registration(r) => line(kind, source, r),
        Record::Enrolment(r) => line(kind, source, r),
        Record::Result(r) => line(kind, source, r),
    }
}

/// The export sort order: by type name, then by key (text compared byte-wise).
pub fn export_order(a: &Record, b: &Record) -> std::cmp::Ordering {
    a.kind()
        .as_str()
        .cmp(b.kind().as_str())
        .then_with(|| a.key().parts.cmp(&b.key().parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Record {
        Record::Registration(Registration {
            year: 2024,
            student: "21901234".into(),
            step: "VET:L2INF/120".into(),
            diploma: Some("VDI:LIC-INF/120".into()),
            status: RegistrationStatus::Active,
            regime: Regime::Initial,
            main: true,
            special_statuses: vec!["employed".into()],
        })
    }

    #[test]
    fn export_line_matches_design_example() {
        let expected = r#"{"type":"registration","source":"apogee","year":2024,"student":"21901234","step":"VET:L2INF/120","diploma":"VDI:LIC-INF/120","status":"active","regime":"initial","main":true,"special_statuses":["employed"]}"#;
        assert_eq!(to_export_line("apogee", &registration()), expected);
        let back: Record = serde_json::from_str(expected).unwrap();
        assert_eq!(back, registration());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut r = registration();
        if let Record::Registration(reg) = &mut r {
            reg.special_statuses.push("astronaut".into());
        }
        let err = r.validate().unwrap_err();
        assert!(err.contains("astronaut"), "{err}");
        assert!(is_special_status("other:SHN2"));
        assert!(!is_special_status("other: "));
    }

    #[test]
    fn key_round_trips_through_json() {
        let key = registration().key();
        assert_eq!(
            RecordKey::from_json(Kind::Registration, &key.to_json()),
            Ok(key)
        );
    }
}
