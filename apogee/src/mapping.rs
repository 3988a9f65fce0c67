//! From Apogée's responses to canonical records: pure functions, no I/O.
//!
//! Everything here follows the mapping of this crate's README (the contract between the
//! adapter and its simulator). Inputs are response wrappers
//! ([`conpere_connectors::xml::Element`], `None` when Apogée answered "no data"); element
//! names are matched ASCII case-insensitively and unknown elements are ignored, because
//! Apogée versions change the case of names and add fields. Response records are taken
//! as *every* child of the wrapper whatever its name: `recupererIAAnnuelles_v2` names
//! them `recupererIAAnnuellesReturn_v2`, other versions differ again.
//!
//! A part of a response that cannot become a record (a structure item without its
//! code, a registration in an unknown state…) becomes an [`Item::Rejected`] with the
//! XML fragment as its payload; the rest goes on.

use crate::codes::{diploma_id, elp_id, list_id, CodeTables, StatusCode, StepCode, UnmappedCode};
use crate::services::{Operation, Subject};
use chrono::NaiveDate;
use conpere_connectors::soap::{self, Param};
use conpere_connectors::xml::Element;
use conpere_model::{
    Edge, Enrolment, Item, KeyPart, Kind, Node, NodeKind, Record, RecordKey, Registration,
    RegistrationStatus, Rejected, Student,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Apogée's "yes" in every `tem…` flag and `etapePremiere`.
const YES: &str = "O";

// ---------------------------------------------------------------------------------------
// Small readers shared by the mappings
// ---------------------------------------------------------------------------------------

/// The records of a response: every child of its wrapper (none for "no data").
fn records(wrapper: Option<&Element>) -> impl Iterator<Item = &Element> {
    wrapper.into_iter().flat_map(|w| w.children.iter())
}

/// The `item`s of the `Tableau…` list at `path` under `parent`.
fn items<'a>(parent: &'a Element, path: &[&str]) -> impl Iterator<Item = &'a Element> {
    parent
        .path(path)
        .into_iter()
        .flat_map(|list| list.children_named("item"))
}

/// The trimmed text at `path`, `None` when absent, nil or blank.
fn text_at<'a>(element: &'a Element, path: &[&str]) -> Option<&'a str> {
    element.path(path).and_then(Element::value)
}

/// Whether a flag at `path` is `O`.
fn flag(element: &Element, path: &[&str]) -> bool {
    text_at(element, path).is_some_and(|v| v.eq_ignore_ascii_case(YES))
}

/// Whether the child `name` is present with some content (a DTO such as `handicap` or
/// `sportifHautNiveau`: nil or empty means absent).
fn present(element: &Element, name: &str) -> bool {
    element
        .child(name)
        .is_some_and(|child| !child.is_nil() && has_content(child))
}

fn has_content(element: &Element) -> bool {
    element.value().is_some() || element.children.iter().any(has_content)
}

/// An `xsd:decimal` (credits), tolerating a decimal comma; `None` when unreadable.
fn decimal(text: Option<&str>) -> Option<f64> {
    let value = text?.replace(',', ".").parse::<f64>().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// The XML fragment of an element, for a quarantine payload (attributes such as
/// `xsi:nil` are not kept).
pub fn payload(element: &Element) -> String {
    soap::params_xml(&[as_param(element)])
}

fn as_param(element: &Element) -> Param {
    if element.children.is_empty() {
        Param::text(element.name.clone(), element.text.clone())
    } else {
        Param::nested(
            element.name.clone(),
            element.children.iter().map(as_param).collect(),
        )
    }
}

/// A part of a response that cannot become a record, located by the call it came from.
fn rejection(
    kind: Kind,
    key: Option<RecordKey>,
    reason: String,
    operation: Operation,
    subject: &Subject,
    element: &Element,
) -> Rejected {
    Rejected {
        kind: Some(kind),
        key,
        reason,
        location: Some(format!("{operation} ({subject})")),
        payload: payload(element),
    }
}

/// [`rejection`], as an item.
fn rejected(
    kind: Kind,
    key: Option<RecordKey>,
    reason: String,
    operation: Operation,
    subject: &Subject,
    element: &Element,
) -> Item {
    Item::Rejected(rejection(kind, key, reason, operation, subject, element))
}

/// The key of a student record.
pub fn student_key(student: &str) -> RecordKey {
    RecordKey {
        kind: Kind::Student,
        parts: vec![KeyPart::Text(student.to_string())],
    }
}

fn registration_key(year: i32, student: &str, step: &str) -> RecordKey {
    RecordKey {
        kind: Kind::Registration,
        parts: vec![
            KeyPart::Year(year),
            KeyPart::Text(student.to_string()),
            KeyPart::Text(step.to_string()),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// Structure of a year: OffreFormationMetier.recupererSE_v4
// ---------------------------------------------------------------------------------------

/// What `recupererSE_v4` says about a year: its first-level nodes and edges (to emit),
/// its steps, and what the reader needs later (choice lists of each step, known nodes).
#[derive(Debug, Clone, Default)]
pub struct Structure {
    /// Academic year.
    pub year: i32,
    /// Nodes and edges (and rejected parts), deduplicated. The reader takes them out to
    /// emit them; the rest of the structure stays for enrolments.
    pub items: Vec<Item>,
    /// The steps (VET) of the year, in response order, each once.
    pub steps: Vec<StepCode>,
    /// Step id → element id → the choice list of that step holding the element.
    choices: HashMap<String, HashMap<String, String>>,
    /// Ids of the nodes emitted from `recupererSE_v4`.
    nodes: HashSet<String>,
}

impl Structure {
    /// The choice list (node id) through which `element` is taken in `step`, if any.
    pub fn via(&self, step: &str, element: &str) -> Option<&str> {
        self.choices
            .get(step)
            .and_then(|elements| elements.get(element))
            .map(String::as_str)
    }

    /// Whether `recupererSE_v4` gave this node (it then has a period and wins over
    /// what the pedagogical registrations say of it).
    pub fn has_node(&self, node: &str) -> bool {
        self.nodes.contains(node)
    }
}

/// How a list hangs from its step (`typListElp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// `O`: the step's mandatory elements (a node of kind `other`).
    Mandatory,
    /// `X`: a mandatory choice.
    Choice,
    /// `F`: an optional choice.
    Optional,
}

impl ListKind {
    fn of(code: Option<&str>) -> ListKind {
        match code.map(str::to_ascii_uppercase).as_deref() {
            Some("O") => ListKind::Mandatory,
            Some("X") => ListKind::Choice,
            Some("F") => ListKind::Optional,
            other => {
                // Keep the list's elements rather than lose them: an optional choice
                // claims the least.
                tracing::warn!(
                    typ_list_elp = other.unwrap_or(""),
                    "unknown typListElp in recupererSE_v4; read as an optional list (F)"
                );
                ListKind::Optional
            }
        }
    }
}

/// The structure of `year` from the `recupererSE_v4` response wrapper (`None`: Apogée
/// has no structure for that year).
pub fn structure(year: i32, se: Option<&Element>, tables: &CodeTables) -> Structure {
    let mut builder = StructureBuilder {
        structure: Structure {
            year,
            ..Structure::default()
        },
        tables,
        edges: HashSet::new(),
        subject: Subject::year(year),
    };
    for diploma in records(se) {
        builder.diploma(diploma);
    }
    builder.structure
}

struct StructureBuilder<'t> {
    structure: Structure,
    tables: &'t CodeTables,
    edges: HashSet<(String, String)>,
    subject: Subject,
}

impl StructureBuilder<'_> {
    fn node(&mut self, node: Node) {
        if self.structure.nodes.insert(node.node.clone()) {
            self.structure.items.push(Record::Node(node).into());
        }
    }

    fn edge(&mut self, parent: &str, child: &str, mandatory: bool, position: Option<i32>) {
        if self.edges.insert((parent.to_string(), child.to_string())) {
            self.structure.items.push(
                Record::Edge(Edge {
                    year: self.structure.year,
                    parent: parent.to_string(),
                    child: child.to_string(),
                    mandatory,
                    min: None,
                    max: None,
                    position,
                })
                .into(),
            );
        }
    }

    fn reject(&mut self, what: &str, element: &Element) {
        let item = rejected(
            Kind::Node,
            None,
            format!("{what} is missing: this part of the course structure cannot be keyed"),
            Operation::RecupererSeV4,
            &self.subject,
            element,
        );
        self.structure.items.push(item);
    }

    /// `recupererSE_v4Return` (DiplomeDTO4): each diploma version.
    fn diploma(&mut self, diploma: &Element) {
        let Some(code) = diploma.text_of("codDip") else {
            return self.reject("codDip", diploma);
        };
        for version in items(diploma, &["listVersionDiplome"]) {
            self.diploma_version(code, version);
        }
    }

    fn diploma_version(&mut self, code: &str, version: &Element) {
        let Some(number) = version.text_of("codVrsVdi") else {
            return self.reject("codVrsVdi", version);
        };
        let id = diploma_id(code, number);
        self.node(Node {
            year: self.structure.year,
            node: id.clone(),
            kind: NodeKind::Diploma,
            code: code.to_string(),
            version: Some(number.to_string()),
            label: version.text_of("libWebVdi").unwrap_or(code).to_string(),
            ects: decimal(version.text_of("credits")),
            period: None,
        });
        let mut position = 0;
        for step in items(version, &["offreFormation", "listEtape"]) {
            let Some(step_code) = step.text_of("codEtp") else {
                self.reject("codEtp", step);
                continue;
            };
            for step_version in items(step, &["listVersionEtape"]) {
                let Some(number) = step_version.text_of("codVrsVet") else {
                    self.reject("codVrsVet", step_version);
                    continue;
                };
                position += 1;
                let step = StepCode::new(step_code, number);
                self.edge(&id, &step.id(), true, Some(position));
                self.step(step, step_version);
            }
        }
    }

    /// A step version (VersionEtapeDTO4), once even when several diplomas hold it.
    fn step(&mut self, step: StepCode, version: &Element) {
        let id = step.id();
        if self.structure.nodes.contains(&id) {
            return;
        }
        self.node(Node {
            year: self.structure.year,
            node: id.clone(),
            kind: NodeKind::Step,
            code: step.code.clone(),
            version: Some(step.version.clone()),
            label: version
                .text_of("libWebVet")
                .unwrap_or(&step.code)
                .to_string(),
            ects: decimal(version.text_of("credits")),
            period: None,
        });
        self.structure.steps.push(step);
        // Every list is a node, whatever its type: the step's edges point at its lists
        // (positions in response order), a list's edges at its elements.
        let mut position = 0;
        for list in items(version, &["listListeElementPedagogi"]) {
            let kind = ListKind::of(list.text_of("typListElp"));
            if self.list(&id, list, kind, position + 1) {
                position += 1;
            }
        }
    }

    /// A list of the step: its node (`other` for a mandatory list, `choice` for the
    /// others), its edge from the step, its elements. `false` when the list has no code.
    fn list(&mut self, step: &str, list: &Element, kind: ListKind, position: i32) -> bool {
        let Some(code) = list.text_of("codListElp") else {
            self.reject("codListElp", list);
            return false;
        };
        let id = list_id(code);
        self.node(Node {
            year: self.structure.year,
            node: id.clone(),
            kind: match kind {
                ListKind::Mandatory => NodeKind::Other,
                ListKind::Choice | ListKind::Optional => NodeKind::Choice,
            },
            code: code.to_string(),
            version: None,
            label: list.text_of("libListElp").unwrap_or(code).to_string(),
            ects: None,
            period: None,
        });
        self.edge(step, &id, kind != ListKind::Optional, Some(position));
        let mut rank = 0;
        for element in items(list, &["listElementPedagogi"]) {
            let Some(child) = self.element(element) else {
                continue;
            };
            rank += 1;
            self.edge(&id, &child, kind == ListKind::Mandatory, Some(rank));
            if kind != ListKind::Mandatory {
                self.structure
                    .choices
                    .entry(step.to_string())
                    .or_default()
                    .entry(child)
                    .or_insert_with(|| id.clone());
            }
        }
        true
    }

    /// A first-level element (ElementPedagogiDTO3); its id, `None` without a code.
    fn element(&mut self, element: &Element) -> Option<String> {
        let Some(code) = element.text_of("codElp") else {
            self.reject("codElp", element);
            return None;
        };
        let id = elp_id(code);
        self.node(Node {
            year: self.structure.year,
            node: id.clone(),
            kind: self.tables.elp_nature(element.text_of("codNatureElp")),
            code: code.to_string(),
            version: None,
            label: element.text_of("libElp").unwrap_or(code).to_string(),
            ects: decimal(element.text_of("credits")),
            period: element.text_of("codPeriode").map(str::to_string),
        });
        Some(id)
    }
}

// ---------------------------------------------------------------------------------------
// Students: EtudiantMetier
// ---------------------------------------------------------------------------------------

/// The student numbers of a `recupererListeEtudiants` response (`etudiant/codEtu`,
/// kept as received), in response order.
pub fn student_numbers(list: Option<&Element>) -> Vec<String> {
    records(list)
        .filter_map(|student| student.text_of("codEtu"))
        .map(str::to_string)
        .collect()
}

/// A student as Apogée describes them, and what their registrations inherit.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// The canonical student record.
    pub student: Student,
    /// `handicap` is present: every registration of the student carries `disability`.
    pub disability: bool,
}

/// A student from `recupererInfosAdmEtu_v4` and `recupererIdentifiantsEtudiant_v2`
/// (wrappers; `None` for "no data"). An `Err` is what to quarantine instead (boxed:
/// the rare path).
pub fn person(
    student: &str,
    infos: Option<&Element>,
    identifiers: Option<&Element>,
    zone: chrono_tz::Tz,
) -> Result<Person, Box<Rejected>> {
    let subject = Subject::student(student);
    let operation = Operation::RecupererInfosAdmEtuV4;
    let reject = |reason: String, element: &Element| {
        Box::new(rejection(
            Kind::Student,
            Some(student_key(student)),
            reason,
            operation,
            &subject,
            element,
        ))
    };
    let Some(record) = records(infos).next() else {
        return Err(Box::new(Rejected {
            kind: Some(Kind::Student),
            key: Some(student_key(student)),
            reason: format!(
                "{operation} has no data for a student that recupererListeEtudiants lists; \
                 the stored student is kept"
            ),
            location: Some(format!("{operation} ({subject})")),
            payload: String::new(),
        }));
    };
    let Some(family_name) = record.text_of("nomPatronymique") else {
        return Err(reject("nomPatronymique is empty".into(), record));
    };
    let birth_date = match record.text_of("dateNaissance") {
        None => None,
        Some(text) => match date_in(text, zone) {
            Some(date) => Some(date),
            None => {
                return Err(reject(
                    format!(
                        "dateNaissance `{text}` is not a date (expected an xsd:dateTime such \
                         as 2004-06-30T22:00:00.000Z or 2004-07-01T00:00:00+02:00, or a date)"
                    ),
                    record,
                ))
            }
        },
    };
    let identifiers = records(identifiers).next();
    let directory = |name: &str| {
        identifiers
            .and_then(|i| i.text_of(name))
            .map(str::to_string)
    };
    Ok(Person {
        student: Student {
            student: student.to_string(),
            ine: record.text_of("numeroINE").map(str::to_string),
            family_name: family_name.to_string(),
            usual_name: record.text_of("nomUsuel").map(str::to_string),
            given_name: record.text_of("prenom1").unwrap_or_default().to_string(),
            birth_date,
            email: directory("emailAnnuaire"),
            login: directory("loginAnnuaire"),
        },
        disability: present(record, "handicap"),
    })
}

/// The calendar date of an Apogée date, in the institution's time zone `zone`.
///
/// * An `xsd:dateTime` with an offset or `Z` is an instant: Axis serialises a
///   `java.util.Date` at local midnight in UTC, so `2004-06-30T22:00:00.000Z` is 1 July
///   2004 in Paris. The instant is taken in `zone`, then its date.
/// * An `xsd:dateTime` without an offset is local: its date as written.
/// * An `xsd:date` (with or without an offset) and Apogée's input form `dd/MM/yyyy` are
///   dates already: as written.
///
/// ```
/// use conpere_apogee::mapping::date_in;
/// let paris = chrono_tz::Europe::Paris;
/// assert_eq!(date_in("2004-06-30T22:00:00.000Z", paris).unwrap().to_string(), "2004-07-01");
/// assert_eq!(date_in("2004-02-29T00:00:00+01:00", paris).unwrap().to_string(), "2004-02-29");
/// ```
pub fn date_in(text: &str, zone: chrono_tz::Tz) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some((date, _)) = text.split_once('T') {
        if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(instant.with_timezone(&zone).date_naive());
        }
        return chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|local| local.date())
            .filter(|local| local.to_string() == date);
    }
    // `2004-02-29+01:00` (a date with an offset) keeps its first ten characters.
    let date = text.get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(date, "%d/%m/%Y"))
        .ok()
}

// ---------------------------------------------------------------------------------------
// Registrations: AdministratifMetier
// ---------------------------------------------------------------------------------------

/// Who and when a year of registrations is read for.
#[derive(Debug, Clone, Copy)]
pub struct StudentYear<'a> {
    /// Academic year.
    pub year: i32,
    /// Student number.
    pub student: &'a str,
    /// The student has a `handicap`: `disability` on every registration.
    pub disability: bool,
}

/// What `recupererIAAnnuelles_v2` says of a year: régime and special statuses.
#[derive(Debug, Clone, Default, PartialEq)]
struct Annual {
    regime: Option<String>,
    statuses: Vec<String>,
    /// Codes that no table maps.
    unmapped: Vec<UnmappedCode>,
}

/// The annual registration of `year` (the record whose `anneeIAA` is the year, else the
/// first).
fn annual(iaa: Option<&Element>, year: i32, tables: &CodeTables) -> Annual {
    let year_text = year.to_string();
    let record = records(iaa)
        .find(|r| r.text_of("anneeIAA") == Some(year_text.as_str()))
        .or_else(|| records(iaa).next());
    let Some(record) = record else {
        return Annual::default();
    };
    let mut annual = Annual {
        regime: text_at(record, &["regimeIns", "codRgi"]).map(str::to_string),
        ..Annual::default()
    };
    if present(record, "sportifHautNiveau") {
        annual.statuses.push("high_level_athlete".to_string());
    }
    let codes = [
        text_at(record, &["quotiteTrav", "codeQuotite"]).map(|c| tables.work_quota(c)),
        text_at(record, &["profil", "code"]).map(|c| tables.profile(c)),
    ];
    for code in codes.into_iter().flatten() {
        match code {
            StatusCode::Status(status) => annual.statuses.push(status),
            StatusCode::None => {}
            StatusCode::Unmapped(unmapped) => annual.unmapped.push(unmapped),
        }
    }
    annual
}

/// One step registration of `recupererIAEtapes_v3`, read.
struct StepRow<'e> {
    step: StepCode,
    registration: Option<Registration>,
    element: &'e Element,
    state: Option<&'e str>,
}

/// The registrations of one student and year.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct YearRegistrations {
    /// One registration per step, with the step's code.
    pub registrations: Vec<(StepCode, Registration)>,
    /// Rows that could not become registrations.
    pub rejected: Vec<Item>,
    /// Status codes of the year that no table maps (no status was given for them).
    pub unmapped: Vec<UnmappedCode>,
}

/// The registrations of a student for a year, from the `recupererIAEtapes_v3` and
/// `recupererIAAnnuelles_v2` wrappers: one per step (an active one wins over a pending
/// or cancelled one of the same step); a row that cannot be read (no step code, a state
/// missing from `iae_states`) is rejected.
pub fn registrations(
    who: StudentYear<'_>,
    iae: Option<&Element>,
    iaa: Option<&Element>,
    tables: &CodeTables,
) -> YearRegistrations {
    let subject = Subject::student(who.student).in_year(who.year);
    let annual = annual(iaa, who.year, tables);
    let mut read = YearRegistrations::default();
    let mut rows: Vec<StepRow<'_>> = Vec::new();
    for element in records(iae) {
        match step_row(who, element, &annual, tables) {
            Some(row) => rows.push(row),
            None => read.rejected.push(rejected(
                Kind::Registration,
                None,
                "etape/codeEtp or etape/versionEtp is missing: the registration cannot be keyed"
                    .into(),
                Operation::RecupererIaEtapesV3,
                &subject,
                element,
            )),
        }
    }
    let mut chosen: BTreeMap<StepCode, Registration> = BTreeMap::new();
    for row in &rows {
        let Some(registration) = row.registration.clone() else {
            read.rejected.push(unknown_state(who, row, &subject));
            continue;
        };
        let better = chosen
            .get(&row.step)
            .is_none_or(|kept| rank(registration.status) < rank(kept.status));
        if better {
            chosen.insert(row.step.clone(), registration);
        }
    }
    read.registrations = chosen.into_iter().collect();
    if !read.registrations.is_empty() {
        read.unmapped = annual.unmapped;
    }
    read
}

/// Which of two registrations of one step to keep: active, then pending, then cancelled.
fn rank(status: RegistrationStatus) -> u8 {
    match status {
        RegistrationStatus::Active => 0,
        RegistrationStatus::Pending => 1,
        RegistrationStatus::Cancelled => 2,
    }
}

fn step_row<'e>(
    who: StudentYear<'_>,
    element: &'e Element,
    annual: &Annual,
    tables: &CodeTables,
) -> Option<StepRow<'e>> {
    let step = StepCode::new(
        text_at(element, &["etape", "codeEtp"])?,
        text_at(element, &["etape", "versionEtp"])?,
    );
    let state = text_at(element, &["etatIae", "codeEtatIAE"]);
    let registration = state.and_then(|s| tables.iae_states.get(s)).map(|status| {
        let diploma = text_at(element, &["diplome", "codeDiplome"]).and_then(|code| {
            text_at(element, &["diplome", "versionDiplome"])
                .map(|version| diploma_id(code, version))
        });
        let mut statuses = annual.statuses.clone();
        if flag(element, &["inscriptionTeleEnseignement"]) {
            statuses.push("distance".into());
        }
        if who.disability {
            statuses.push("disability".into());
        }
        statuses.sort();
        statuses.dedup();
        // The annual régime; the step's own `regimeIns` when there is no annual one.
        let regime = annual
            .regime
            .as_deref()
            .or_else(|| text_at(element, &["regimeIns", "codRgi"]));
        Registration {
            year: who.year,
            student: who.student.to_string(),
            step: step.id(),
            diploma,
            status: *status,
            regime: tables.regime(regime),
            main: flag(element, &["etapePremiere"]),
            special_statuses: statuses,
        }
    });
    Some(StepRow {
        step,
        registration,
        element,
        state,
    })
}

fn unknown_state(who: StudentYear<'_>, row: &StepRow<'_>, subject: &Subject) -> Item {
    let reason = match row.state {
        Some(state) => format!(
            "registration state `{state}` (etatIae/codeEtatIAE) is not in `iae_states`; add \
             it to the source's `iae_states` table (e.g. {state} = \"active\"); the stored \
             registration is kept"
        ),
        None => "etatIae/codeEtatIAE is missing; the stored registration is kept".to_string(),
    };
    rejected(
        Kind::Registration,
        Some(registration_key(who.year, who.student, &row.step.id())),
        reason,
        Operation::RecupererIaEtapesV3,
        subject,
        row.element,
    )
}

// ---------------------------------------------------------------------------------------
// Pedagogical registrations: PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6
// ---------------------------------------------------------------------------------------

/// What one registration's pedagogical contract gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contract {
    /// Enrolments (one per element, deduplicated) and rejected items.
    pub items: Vec<Item>,
    /// Structure below the first level seen through `codElpSup`: nodes and edges, for
    /// [`DeeperStructure::add`].
    pub deeper: Vec<Record>,
}

/// The enrolments of one registration (`step`, `year`) from the IP response wrapper.
pub fn contract(
    who: StudentYear<'_>,
    step: &StepCode,
    ip: Option<&Element>,
    structure: &Structure,
    tables: &CodeTables,
) -> Contract {
    let step_id = step.id();
    let mut contract = Contract::default();
    let mut enrolments: BTreeMap<String, Enrolment> = BTreeMap::new();
    for item in records(ip) {
        let Some(code) = text_at(item, &["elp", "codElp"]) else {
            let subject = Subject::student(who.student)
                .in_year(who.year)
                .at_step(step);
            contract.items.push(rejected(
                Kind::Enrolment,
                None,
                "elp/codElp is missing: the enrolment cannot be keyed".into(),
                Operation::RecupererContratPedagogiqueResultatElpEprV6,
                &subject,
                item,
            ));
            continue;
        };
        let node = elp_id(code);
        let (carried_over, exempted) = result_flags(item, who.year, tables);
        let enrolment = enrolments.entry(node.clone()).or_insert_with(|| Enrolment {
            year: who.year,
            student: who.student.to_string(),
            step: step_id.clone(),
            via: structure.via(&step_id, &node).map(str::to_string),
            node: node.clone(),
            carried_over: false,
            exempted: false,
        });
        // An element listed twice (two places of the tree) is one enrolment.
        enrolment.carried_over |= carried_over;
        enrolment.exempted |= exempted;
        if let Some(parent) = item.text_of("codElpSup").filter(|p| p.trim() != code) {
            contract
                .deeper
                .extend(deeper_records(who.year, parent, code, item));
        }
    }
    contract.items.extend(
        enrolments
            .into_values()
            .map(|e| Item::Record(Record::Enrolment(e))),
    );
    contract
}

/// (carried over, exempted) from an IP item's `resultatsElp/item`s.
fn result_flags(item: &Element, year: i32, tables: &CodeTables) -> (bool, bool) {
    let mut carried_over = false;
    let mut exempted = false;
    for result in items(item, &["resultatsElp"]) {
        // Acquired another year: `codAnu` names that year.
        carried_over |= result
            .text_of("codAnu")
            .and_then(|y| y.parse::<i32>().ok())
            .is_some_and(|y| y != year);
        exempted |=
            text_at(result, &["typResultat", "codTre"]).is_some_and(|c| tables.is_exemption(c));
    }
    (carried_over, exempted)
}

/// The edge `ELP:<codElpSup>` → `ELP:<codElp>` and the child's node.
fn deeper_records(year: i32, parent: &str, code: &str, item: &Element) -> [Record; 2] {
    let kind = if flag(item, &["elp", "natureElp", "temSemestre"]) {
        NodeKind::Semester
    } else if flag(item, &["elp", "natureElp", "temUe"]) {
        NodeKind::Unit
    } else {
        NodeKind::Element
    };
    let child = elp_id(code);
    [
        Record::Node(Node {
            year,
            node: child.clone(),
            kind,
            code: code.to_string(),
            version: None,
            label: text_at(item, &["elp", "libElp"])
                .unwrap_or(code)
                .to_string(),
            ects: decimal(text_at(item, &["elp", "nbrCrdElp"])),
            period: None,
        }),
        Record::Edge(Edge {
            year,
            parent: elp_id(parent),
            child,
            mandatory: true,
            min: None,
            max: None,
            position: None,
        }),
    ]
}

/// The structure below the first level, gathered from every student's contract: each
/// node and edge once per year (memory grows with the structure, not with enrolments).
#[derive(Debug, Clone, Default)]
pub struct DeeperStructure {
    nodes: BTreeMap<(i32, String), Node>,
    edges: BTreeMap<(i32, String, String), Edge>,
}

impl DeeperStructure {
    /// Adds what a contract saw; nodes `recupererSE_v4` already gave are left to it
    /// (its version has the period).
    pub fn add(&mut self, records: Vec<Record>, structure: &Structure) {
        for record in records {
            match record {
                Record::Node(node) if !structure.has_node(&node.node) => {
                    self.nodes
                        .entry((node.year, node.node.clone()))
                        .or_insert(node);
                }
                Record::Edge(edge) => {
                    self.edges
                        .entry((edge.year, edge.parent.clone(), edge.child.clone()))
                        .or_insert(edge);
                }
                _ => {}
            }
        }
    }

    /// Nodes then edges, as items.
    pub fn into_items(self) -> impl Iterator<Item = Item> {
        let nodes = self.nodes.into_values().map(Record::Node);
        let edges = self.edges.into_values().map(Record::Edge);
        nodes.chain(edges).map(Item::Record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_connectors::xml;
    use conpere_model::Regime;

    fn parse(xml_text: &str) -> Element {
        xml::parse(xml_text.as_bytes(), None).expect("test XML parses")
    }

    fn records_of(items: &[Item]) -> Vec<&Record> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Record(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn node<'a>(items: &'a [Item], id: &str) -> &'a Node {
        records_of(items)
            .into_iter()
            .find_map(|r| match r {
                Record::Node(n) if n.node == id => Some(n),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn edge<'a>(items: &'a [Item], parent: &str, child: &str) -> &'a Edge {
        records_of(items)
            .into_iter()
            .find_map(|r| match r {
                Record::Edge(e) if e.parent == parent && e.child == child => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no edge {parent} → {child}"))
    }

    /// One diploma, one step with a mandatory list (2 semesters), a choice list and an
    /// optional list; names in mixed case as other Apogée versions write them.
    const SE: &str = r#"<recupererSE_v4Response>
      <recupererSE_v4Return><codDip>LIC-INF</codDip><libDip>ignored</libDip>
        <listVersionDiplome><item><codVrsVdi>120</codVrsVdi><libWebVdi>Licence Informatique</libWebVdi><credits>180</credits>
          <offreFormation><listEtape><item><codEtp>L1INF</codEtp><listVersionEtape><item>
              <codVrsVet>120</codVrsVet><LibWebVet>L1 Informatique</LibWebVet><credits>60</credits>
              <unknownNewField>x</unknownNewField>
            </item></listVersionEtape></item>
            <item><codEtp>L2INF</codEtp><listVersionEtape><item>
              <codVrsVet>120</codVrsVet><libWebVet>Licence 2e année Informatique — Génie</libWebVet><credits>60.0</credits>
              <ListListeElementPedagogi>
                <item><codListElp>L2INFOBL</codListElp><typListElp>O</typListElp>
                  <listElementPedagogi>
                    <item><codElp>INFS3</codElp><libElp>Semestre 3 — Informatique</libElp><codNatureElp>SEM</codNatureElp><credits>30</credits><codPeriode>S3</codPeriode></item>
                    <item><codElp>INFS4</codElp><libElp>Semestre 4</libElp><codNatureElp>SEM</codNatureElp><credits>30</credits><codPeriode>S4</codPeriode></item>
                  </listElementPedagogi></item>
                <item><codListElp>INF3OUV</codListElp><libListElp>UE d'ouverture — semestre 3</libListElp><typListElp>X</typListElp>
                  <listElementPedagogi>
                    <item><codElp>INF3O1</codElp><libElp>Œnologie</libElp><codNatureElp>UE</codNatureElp><credits>3</credits><codPeriode>S3</codPeriode></item>
                    <item><codElp>UELIBRE3</codElp><libElp>Pratique sportive</libElp><codNatureElp>UE</codNatureElp><credits>3,5</credits></item>
                  </listElementPedagogi></item>
                <item><codListElp>INF4FAC</codListElp><libListElp>Bonus</libListElp><typListElp>F</typListElp>
                  <listElementPedagogi>
                    <item><codElp>INF4B</codElp><libElp>Bonus sport</libElp><codNatureElp>XYZ</codNatureElp></item>
                  </listElementPedagogi></item>
              </ListListeElementPedagogi>
            </item></listVersionEtape></item>
          </listEtape></offreFormation>
        </item></listVersionDiplome>
      </recupererSE_v4Return>
    </recupererSE_v4Response>"#;

    fn se_structure() -> Structure {
        structure(2024, Some(&parse(SE)), &CodeTables::default())
    }

    #[test]
    fn diploma_and_steps_with_positions() {
        let s = se_structure();
        let diploma = node(&s.items, "VDI:LIC-INF/120");
        assert_eq!(diploma.kind, NodeKind::Diploma);
        assert_eq!(
            (diploma.code.as_str(), diploma.version.as_deref()),
            ("LIC-INF", Some("120"))
        );
        assert_eq!(diploma.label, "Licence Informatique");
        assert_eq!(diploma.ects, Some(180.0));
        let l1 = node(&s.items, "VET:L1INF/120");
        assert_eq!(l1.label, "L1 Informatique", "case-insensitive names");
        let l2 = node(&s.items, "VET:L2INF/120");
        assert_eq!(l2.label, "Licence 2e année Informatique — Génie");
        assert_eq!(l2.ects, Some(60.0));
        let first = edge(&s.items, "VDI:LIC-INF/120", "VET:L1INF/120");
        let second = edge(&s.items, "VDI:LIC-INF/120", "VET:L2INF/120");
        assert!(first.mandatory && second.mandatory);
        assert_eq!((first.position, second.position), (Some(1), Some(2)));
        assert_eq!(
            s.steps,
            [StepCode::new("L1INF", "120"), StepCode::new("L2INF", "120")]
        );
    }

    #[test]
    fn every_list_is_a_node_between_its_step_and_its_elements() {
        let s = se_structure();
        let mandatory = node(&s.items, "LSE:L2INFOBL");
        assert_eq!(
            mandatory.kind,
            NodeKind::Other,
            "an O list is a node of kind other"
        );
        assert_eq!(mandatory.label, "L2INFOBL", "no label: its code");
        let sem = node(&s.items, "ELP:INFS3");
        assert_eq!(sem.kind, NodeKind::Semester);
        assert_eq!(sem.period.as_deref(), Some("S3"));
        assert_eq!(sem.ects, Some(30.0));
        let step = "VET:L2INF/120";
        let to_list = edge(&s.items, step, "LSE:L2INFOBL");
        assert!(to_list.mandatory);
        assert_eq!(
            (to_list.position, to_list.min, to_list.max),
            (Some(1), None, None)
        );
        let e = edge(&s.items, "LSE:L2INFOBL", "ELP:INFS3");
        assert!(e.mandatory, "the elements of an O list are mandatory");
        assert_eq!(e.position, Some(1));
        assert_eq!(
            edge(&s.items, "LSE:L2INFOBL", "ELP:INFS4").position,
            Some(2)
        );
        let flattened = records_of(&s.items).into_iter().any(
            |r| matches!(&r, Record::Edge(e) if e.parent == step && e.child.starts_with("ELP:")),
        );
        assert!(!flattened, "a step's edges point at its lists only");

        let choice = node(&s.items, "LSE:INF3OUV");
        assert_eq!(choice.kind, NodeKind::Choice);
        assert_eq!(choice.label, "UE d'ouverture — semestre 3");
        assert_eq!(
            (choice.version.as_ref(), choice.ects, choice.period.as_ref()),
            (None, None, None)
        );
        let to_choice = edge(&s.items, step, "LSE:INF3OUV");
        assert!(to_choice.mandatory, "X is a mandatory choice");
        assert_eq!(
            (to_choice.min, to_choice.max, to_choice.position),
            (None, None, Some(2))
        );
        let to_optional = edge(&s.items, step, "LSE:INF4FAC");
        assert!(!to_optional.mandatory, "F is optional");
        assert_eq!(to_optional.position, Some(3));

        let option = edge(&s.items, "LSE:INF3OUV", "ELP:UELIBRE3");
        assert!(!option.mandatory);
        assert_eq!(option.position, Some(2));
        assert_eq!(node(&s.items, "ELP:INF3O1").label, "Œnologie");
        assert_eq!(
            node(&s.items, "ELP:UELIBRE3").ects,
            Some(3.5),
            "decimal comma"
        );
        assert_eq!(
            node(&s.items, "ELP:INF4B").kind,
            NodeKind::Other,
            "unknown nature"
        );
        assert_eq!(s.via(step, "ELP:UELIBRE3"), Some("LSE:INF3OUV"));
        assert_eq!(s.via(step, "ELP:INFS3"), None, "not through a choice");
    }

    #[test]
    fn a_step_under_two_diplomas_is_read_once() {
        let twice = format!(
            "<r>{}{}</r>",
            SE.replace("<recupererSE_v4Response>", "")
                .replace("</recupererSE_v4Response>", ""),
            SE.replace("<recupererSE_v4Response>", "")
                .replace("</recupererSE_v4Response>", "")
                .replace("LIC-INF", "DOUBLE")
        );
        let s = structure(2024, Some(&parse(&twice)), &CodeTables::default());
        let mut ids: Vec<String> = records_of(&s.items)
            .iter()
            .map(|r| r.key().to_string())
            .collect();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), total, "no duplicate record");
        edge(&s.items, "VDI:DOUBLE/120", "VET:L2INF/120");
        assert_eq!(s.steps.len(), 2);
    }

    #[test]
    fn structure_parts_without_code_are_rejected_and_the_rest_read() {
        let xml_text = "<r><recupererSE_v4Return><libDip>sans code</libDip></recupererSE_v4Return>\
             <recupererSE_v4Return><codDip>D</codDip><listVersionDiplome><item><codVrsVdi>1</codVrsVdi>\
             </item></listVersionDiplome></recupererSE_v4Return></r>";
        let s = structure(2024, Some(&parse(xml_text)), &CodeTables::default());
        let rejected: Vec<&Rejected> = s
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Rejected(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].reason.contains("codDip"),
            "{}",
            rejected[0].reason
        );
        assert_eq!(
            rejected[0].location.as_deref(),
            Some("OffreFormationMetier.recupererSE_v4 (year 2024)")
        );
        assert!(rejected[0].payload.contains("<libDip>sans code</libDip>"));
        assert_eq!(
            node(&s.items, "VDI:D/1").label,
            "D",
            "label falls back to the code"
        );
        assert!(structure(2024, None, &CodeTables::default())
            .items
            .is_empty());
    }

    #[test]
    fn student_numbers_are_kept_as_received() {
        let list = parse(
            "<r><etudiant><codEtu>0042</codEtu><nom>X</nom></etudiant>\
             <Etudiant><CODETU> 21901234 </CODETU></Etudiant><etudiant><nom>sans</nom></etudiant></r>",
        );
        assert_eq!(student_numbers(Some(&list)), ["0042", "21901234"]);
        assert!(student_numbers(None).is_empty());
    }

    const PARIS: chrono_tz::Tz = chrono_tz::Europe::Paris;

    const INFOS: &str = "<recupererInfosAdmEtu_v4Response><recupererInfosAdmEtu_v4Return>\
        <nomPatronymique>LEFÈVRE-NOËL</nomPatronymique><nomUsuel xsi:nil=\"true\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/><prenom1>Zoé</prenom1>\
        <prenom2>Çécile</prenom2><dateNaissance>2004-02-29T00:00:00+01:00</dateNaissance>\
        <NumeroIne>0123456789A</NumeroIne><handicap><codeHandicap>MOT</codeHandicap></handicap>\
        </recupererInfosAdmEtu_v4Return></recupererInfosAdmEtu_v4Response>";

    #[test]
    fn a_student_from_infos_and_identifiers() {
        let ids = parse(
            "<r><recupererIdentifiantsEtudiant_v2Return><codEtu>21901234</codEtu>\
             <emailAnnuaire>zoe.lefevre-noel@etu.univ.fr</emailAnnuaire><loginAnnuaire>zlefevre</loginAnnuaire>\
             </recupererIdentifiantsEtudiant_v2Return></r>",
        );
        let person = person("21901234", Some(&parse(INFOS)), Some(&ids), PARIS).unwrap();
        let s = &person.student;
        assert_eq!(s.family_name, "LEFÈVRE-NOËL");
        assert_eq!(s.usual_name, None, "nil usual name");
        assert_eq!(s.given_name, "Zoé");
        assert_eq!(s.ine.as_deref(), Some("0123456789A"));
        assert_eq!(s.birth_date, NaiveDate::from_ymd_opt(2004, 2, 29));
        assert_eq!(s.email.as_deref(), Some("zoe.lefevre-noel@etu.univ.fr"));
        assert_eq!(s.login.as_deref(), Some("zlefevre"));
        assert!(person.disability);

        let without = person_without_handicap();
        assert!(!without.disability);
        assert_eq!(without.student.email, None, "no identifiers: no email");
    }

    fn person_without_handicap() -> Person {
        let infos = INFOS
            .replace(
                "<handicap><codeHandicap>MOT</codeHandicap></handicap>",
                "<handicap/>",
            )
            .replace("<nomUsuel", "<nomUsuel>MARTIN</nomUsuel><x");
        let p = person("21901234", Some(&parse(&infos)), None, PARIS).unwrap();
        assert_eq!(p.student.usual_name.as_deref(), Some("MARTIN"));
        p
    }

    #[test]
    fn dates_sent_as_instants_are_taken_in_the_institutions_time_zone() {
        let paris = chrono_tz::Europe::Paris;
        for (text, expected) in [
            ("2004-06-30T22:00:00.000Z", "2004-07-01"),
            ("2004-02-28T23:00:00Z", "2004-02-29"),
            ("2004-02-29T00:00:00+01:00", "2004-02-29"),
            ("2004-07-14T00:00:00+02:00", "2004-07-14"),
            ("2004-07-14T00:00:00", "2004-07-14"),
            ("2004-07-14T00:00:00.000", "2004-07-14"),
            ("2004-07-14", "2004-07-14"),
            ("2004-07-14+02:00", "2004-07-14"),
            ("14/07/2004", "2004-07-14"),
        ] {
            assert_eq!(
                date_in(text, paris).map(|d| d.to_string()).as_deref(),
                Some(expected),
                "{text}"
            );
        }
        // Another institution, another date for the same instant.
        let reunion = chrono_tz::Indian::Reunion;
        assert_eq!(
            date_in("2004-06-30T20:00:00.000Z", reunion).map(|d| d.to_string()),
            Some("2004-07-01".into())
        );
        assert_eq!(
            date_in("2004-06-30T20:00:00.000Z", paris).map(|d| d.to_string()),
            Some("2004-06-30".into())
        );
        for bad in [
            "29/02/2005",
            "hier",
            "2004-02-30T00:00:00Z",
            "2004-07-14T25:00:00",
        ] {
            assert_eq!(date_in(bad, paris), None, "{bad}");
        }
    }

    #[test]
    fn an_unreadable_student_is_rejected_with_its_key() {
        let bad = INFOS.replace("2004-02-29T00:00:00+01:00", "29 février");
        let r = person("21901234", Some(&parse(&bad)), None, PARIS).unwrap_err();
        assert_eq!(r.key, Some(student_key("21901234")));
        assert!(r.reason.contains("dateNaissance"), "{}", r.reason);
        assert_eq!(
            r.location.as_deref(),
            Some("EtudiantMetier.recupererInfosAdmEtu_v4 (student ******34)")
        );
        let r = person("21901234", None, None, PARIS).unwrap_err();
        assert_eq!(r.kind, Some(Kind::Student));
        let no_name = INFOS.replace("LEFÈVRE-NOËL", " ");
        assert!(person("21901234", Some(&parse(&no_name)), None, PARIS).is_err());
    }

    fn iae(rows: &[(&str, &str, &str, &str)]) -> Element {
        let rows: String = rows
            .iter()
            .map(|(step, state, main, tele)| {
                format!(
                    "<recupererIAEtapes_v3Return><anneeIAE>2024</anneeIAE>\
                     <diplome><codeDiplome>LIC-{step}</codeDiplome><versionDiplome>120</versionDiplome></diplome>\
                     <etape><codeEtp>{step}</codeEtp><versionEtp>120</versionEtp></etape>\
                     <etatIae><codeEtatIAE>{state}</codeEtatIAE></etatIae>\
                     <regimeIns><codRgi>3</codRgi></regimeIns>\
                     <etapePremiere>{main}</etapePremiere><inscriptionTeleEnseignement>{tele}</inscriptionTeleEnseignement>\
                     </recupererIAEtapes_v3Return>"
                )
            })
            .collect();
        parse(&format!(
            "<recupererIAEtapes_v3Response>{rows}</recupererIAEtapes_v3Response>"
        ))
    }

    const IAA: &str = "<recupererIAAnnuellesResponse_v2><recupererIAAnnuellesReturn_v2>\
        <anneeIAA>2024</anneeIAA><regimeIns><codRgi>2</codRgi></regimeIns>\
        <sportifHautNiveau><codSportif>A</codSportif></sportifHautNiveau>\
        <quotiteTrav><codeQuotite>1</codeQuotite></quotiteTrav><profil><code>ELU</code></profil>\
        </recupererIAAnnuellesReturn_v2></recupererIAAnnuellesResponse_v2>";

    fn regs(read: &YearRegistrations) -> Vec<&Registration> {
        read.registrations.iter().map(|(_, r)| r).collect()
    }

    const WHO: StudentYear<'static> = StudentYear {
        year: 2024,
        student: "21901234",
        disability: false,
    };

    #[test]
    fn registrations_carry_status_regime_and_statuses() {
        let items = registrations(
            StudentYear {
                disability: true,
                ..WHO
            },
            Some(&iae(&[("L2INF", "E", "O", "O"), ("L2MAT", "P", "N", "N")])),
            Some(&parse(IAA)),
            &CodeTables::default(),
        );
        let regs = regs(&items);
        assert_eq!(regs.len(), 2);
        let inf = regs.iter().find(|r| r.step == "VET:L2INF/120").unwrap();
        assert_eq!(inf.diploma.as_deref(), Some("VDI:LIC-L2INF/120"));
        assert_eq!(inf.status, RegistrationStatus::Active);
        assert_eq!(inf.regime, Regime::Continuing, "the annual régime wins");
        assert!(inf.main);
        assert_eq!(
            inf.special_statuses,
            [
                "disability",
                "distance",
                "elected_representative",
                "employed",
                "high_level_athlete"
            ],
            "a second registration gives no status: `main` tells it"
        );
        let mat = regs.iter().find(|r| r.step == "VET:L2MAT/120").unwrap();
        assert_eq!(mat.status, RegistrationStatus::Pending);
        assert!(!mat.main);
        assert!(!mat.special_statuses.contains(&"distance".to_string()));
    }

    #[test]
    fn one_registration_alone_without_annual_data() {
        let items = registrations(
            WHO,
            Some(&iae(&[("L1INF", "A", "O", "N")])),
            None,
            &CodeTables::default(),
        );
        let regs = regs(&items);
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].status, RegistrationStatus::Cancelled);
        assert_eq!(
            regs[0].regime,
            Regime::Apprenticeship,
            "the step's régime as a fallback"
        );
        assert!(
            regs[0].special_statuses.is_empty(),
            "one step: no multi_degree"
        );
    }

    #[test]
    fn the_active_registration_of_a_step_wins_and_unknown_states_are_rejected() {
        let items = registrations(
            WHO,
            Some(&iae(&[
                ("L1INF", "A", "O", "N"),
                ("L1INF", "E", "O", "N"),
                ("L1MAT", "Z", "N", "N"),
            ])),
            None,
            &CodeTables::default(),
        );
        let regs = regs(&items);
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].status, RegistrationStatus::Active);
        assert!(regs[0].special_statuses.is_empty());
        let [Item::Rejected(r)] = items.rejected.as_slice() else {
            panic!("expected a reject");
        };
        assert!(
            r.reason.contains("`Z`") && r.reason.contains("iae_states"),
            "{}",
            r.reason
        );
        assert_eq!(
            r.key.as_ref().map(|k| k.to_string()).as_deref(),
            Some("registration 2024 21901234 VET:L1MAT/120")
        );
        assert_eq!(
            r.location.as_deref(),
            Some("AdministratifMetier.recupererIAEtapes_v3 (student ******34, year 2024)")
        );
    }

    #[test]
    fn profiles_and_regimes_follow_the_tables() {
        let mut tables = CodeTables::default();
        let unknown = IAA
            .replace("<code>ELU</code>", "<code>XYZ</code>")
            .replace("<codRgi>2</codRgi>", "<codRgi>9</codRgi>");
        let items = registrations(
            WHO,
            Some(&iae(&[("L1INF", "E", "O", "N")])),
            Some(&parse(&unknown)),
            &tables,
        );
        let r = regs(&items)[0].clone();
        assert_eq!(r.regime, Regime::Other);
        assert_eq!(r.special_statuses, ["employed", "high_level_athlete"]);
        let unmapped = UnmappedCode {
            table: "profiles",
            code: "XYZ".into(),
        };
        assert_eq!(items.unmapped, [unmapped]);
        tables.profiles.insert("XYZ".into(), "artist".into());
        tables.regimes.insert("9".into(), Regime::Initial);
        let items = registrations(
            WHO,
            Some(&iae(&[("L1INF", "E", "O", "N")])),
            Some(&parse(&unknown)),
            &tables,
        );
        let r = regs(&items)[0].clone();
        assert_eq!(r.regime, Regime::Initial);
        assert!(r.special_statuses.contains(&"artist".to_string()));
        assert!(tables.problems().is_empty());
        tables.profiles.insert("BAD".into(), "superhero".into());
        assert!(tables.problems()[0].contains("superhero"));
    }

    #[test]
    fn the_ordinary_profile_and_a_work_quota_of_zero_are_no_status() {
        let plain = IAA
            .replace("<code>ELU</code>", "<code>NO</code>")
            .replace(
                "<codeQuotite>1</codeQuotite>",
                "<codeQuotite>0</codeQuotite>",
            )
            .replace(
                "<sportifHautNiveau><codSportif>A</codSportif></sportifHautNiveau>",
                "",
            );
        let items = registrations(
            WHO,
            Some(&iae(&[("L1INF", "E", "O", "N"), ("L1MAT", "E", "N", "N")])),
            Some(&parse(&plain)),
            &CodeTables::default(),
        );
        for r in regs(&items) {
            assert!(r.special_statuses.is_empty(), "{r:?}");
        }
        assert!(items.unmapped.is_empty());
        let unknown_quota = plain.replace(
            "<codeQuotite>0</codeQuotite>",
            "<codeQuotite>7</codeQuotite>",
        );
        let items = registrations(
            WHO,
            Some(&iae(&[("L1INF", "E", "O", "N")])),
            Some(&parse(&unknown_quota)),
            &CodeTables::default(),
        );
        assert!(regs(&items)[0].special_statuses.is_empty());
        assert_eq!(items.unmapped[0].table, "work_quotas");
        assert_eq!(items.unmapped[0].code, "7");
    }

    fn ip_item(code: &str, sup: Option<&str>, nature: (&str, &str), results: &str) -> String {
        let sup = sup
            .map(|s| format!("<codElpSup>{s}</codElpSup>"))
            .unwrap_or_default();
        format!(
            "<recupererContratPedagogiqueResultatElpEpr_v6Return><codAnu>2024</codAnu>{sup}\
             <elp><codElp>{code}</codElp><libElp>Élément {code}</libElp><nbrCrdElp>6</nbrCrdElp>\
             <natureElp><temSemestre>{}</temSemestre><temUe>{}</temUe></natureElp></elp>\
             <resultatsElp>{results}</resultatsElp></recupererContratPedagogiqueResultatElpEpr_v6Return>",
            nature.0, nature.1
        )
    }

    #[test]
    fn enrolments_with_via_carried_over_and_exempted() {
        let s = se_structure();
        let step = StepCode::new("L2INF", "120");
        let ip = parse(&format!(
            "<r>{}{}{}{}{}{}</r>",
            ip_item("INFS3", None, ("O", "N"), ""),
            ip_item("INF3U1", Some("INFS3"), ("N", "O"), "<item><codAnu>2023</codAnu><typResultat><codTre>ADM</codTre></typResultat></item>"),
            ip_item("INF3U1A", Some("INF3U1"), ("N", "N"), "<item><typResultat><codTre>DIS</codTre></typResultat></item>"),
            ip_item("UELIBRE3", None, ("N", "O"), "<item><codAnu>2024</codAnu></item>"),
            ip_item("INF3U1A", Some("INF3U1"), ("N", "N"), ""),
            "<recupererContratPedagogiqueResultatElpEpr_v6Return><elp/></recupererContratPedagogiqueResultatElpEpr_v6Return>",
        ));
        let contract = contract(WHO, &step, Some(&ip), &s, &CodeTables::default());
        let enrolments: Vec<&Enrolment> = records_of(&contract.items)
            .into_iter()
            .filter_map(|r| match r {
                Record::Enrolment(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(enrolments.len(), 4, "INF3U1A once");
        let by = |node: &str| *enrolments.iter().find(|e| e.node == node).unwrap();
        assert_eq!(by("ELP:UELIBRE3").via.as_deref(), Some("LSE:INF3OUV"));
        assert!(!by("ELP:UELIBRE3").carried_over, "codAnu of the year");
        assert_eq!(by("ELP:INFS3").via, None);
        assert!(by("ELP:INF3U1").carried_over && !by("ELP:INF3U1").exempted);
        assert!(by("ELP:INF3U1A").exempted && !by("ELP:INF3U1A").carried_over);
        assert_eq!(by("ELP:INFS3").step, "VET:L2INF/120");
        assert_eq!(
            contract
                .items
                .iter()
                .filter(|i| matches!(i, Item::Rejected(_)))
                .count(),
            1,
            "the item without codElp"
        );

        let mut deeper = DeeperStructure::default();
        deeper.add(contract.deeper.clone(), &s);
        deeper.add(contract.deeper, &s);
        let items: Vec<Item> = deeper.into_items().collect();
        assert_eq!(items.len(), 4, "two nodes and two edges, once");
        let unit = node(&items, "ELP:INF3U1");
        assert_eq!(unit.kind, NodeKind::Unit);
        assert_eq!((unit.ects, unit.period.as_deref()), (Some(6.0), None));
        assert_eq!(unit.label, "Élément INF3U1");
        assert_eq!(node(&items, "ELP:INF3U1A").kind, NodeKind::Element);
        let e = edge(&items, "ELP:INFS3", "ELP:INF3U1");
        assert!(e.mandatory);
        assert_eq!((e.position, e.min, e.max), (None, None, None));
    }

    #[test]
    fn deeper_nodes_known_from_the_structure_are_not_repeated() {
        let s = se_structure();
        let ip = parse(&format!(
            "<r>{}</r>",
            ip_item("INFS4", Some("INFS3"), ("O", "N"), "")
        ));
        let contract = contract(
            WHO,
            &StepCode::new("L2INF", "120"),
            Some(&ip),
            &s,
            &CodeTables::default(),
        );
        let mut deeper = DeeperStructure::default();
        deeper.add(contract.deeper, &s);
        let items: Vec<Item> = deeper.into_items().collect();
        assert_eq!(items.len(), 1, "the edge only: {items:?}");
    }

    #[test]
    fn step_codes_and_ids() {
        let step = StepCode::parse(" L2INF / 120 ").unwrap();
        assert_eq!(step.to_string(), "L2INF/120");
        assert_eq!(step.id(), "VET:L2INF/120");
        for bad in ["L2INF", "/120", "L2INF/", "a/b/c"] {
            assert!(StepCode::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(diploma_id("LIC-INF", "120"), "VDI:LIC-INF/120");
        assert_eq!(list_id("INF3OUV"), "LSE:INF3OUV");
        assert_eq!(elp_id("INFS3"), "ELP:INFS3");
    }

    #[test]
    fn payload_renders_the_fragment() {
        let e = parse("<a><b>x &amp; y</b><c><d>é</d></c></a>");
        assert_eq!(payload(&e), "<a><b>x &amp; y</b><c><d>é</d></c></a>");
    }
}
