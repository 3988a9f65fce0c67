//! The read flow: Apogée's web services → a stream of canonical batches.
//!
//! 1. per year, `recupererSE_v4` → the first-level structure (emitted at once) and the
//!    year's steps;
//! 2. per (year, step in scope), `recupererListeEtudiants` → the set of student
//!    numbers, each with the years it was listed in (a student listed under several
//!    steps is read once);
//! 3. per student, `concurrency` students at a time: `recupererInfosAdmEtu_v4` and
//!    `recupererIdentifiantsEtudiant_v2` once, then per year `recupererIAEtapes_v3` and
//!    `recupererIAAnnuelles_v2`, then the pedagogical contract of each registration that
//!    is not cancelled;
//! 4. the structure below the first level, gathered from the contracts (each node and
//!    edge once per year), at the end, with a note per status code that no table maps
//!    (each code is also logged once, when first met).
//!
//! Memory holds the structure and the student numbers, never the enrolments: a
//! student's records go into a batch as soon as they are read, and batches wait in a
//! channel two deep. A `technical.parameter.*` fault for a student quarantines that
//! student (their stored records are kept) and the read goes on; any other failure,
//! after the HTTP client's retries, ends the stream with an error: the engine then fails
//! the run and applies nothing.

use crate::client::{ApogeeClient, Call, CallError};
use crate::codes::{StepCode, UnmappedCode};
use crate::config::{ApogeeConfig, StepScope};
use crate::mapping::{self, DeeperStructure, Structure, StudentYear};
use conpere_connectors::batches::{self, BatchSender, Stopped};
use conpere_connectors::{BatchStream, ConnectorError};
use conpere_model::{Item, Kind, Record, Registration, RegistrationStatus, Rejected};
use futures::{stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What one read covers.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// The client (shares the source's HTTP client: concurrency and rate cap).
    pub client: ApogeeClient,
    /// The source's configuration (steps, code tables, concurrency).
    pub config: Arc<ApogeeConfig>,
    /// Academic years to read.
    pub years: Vec<i32>,
    /// Items per batch.
    pub batch_size: usize,
}

/// Starts reading in a task and returns the stream of its batches. The last batch
/// carries no cursor: Apogée's web services have no change feed.
pub fn start(plan: ReadPlan) -> BatchStream {
    let (mut out, batches) = batches::channel(plan.batch_size);
    tokio::spawn(async move {
        match read(&plan, &mut out).await {
            Ok(()) => {
                if let Ok(items) = out.finish(None).await {
                    tracing::info!(items, "Apogée read complete");
                }
            }
            Err(Halt::Failed(error)) => {
                tracing::error!(%error, "Apogée read failed");
                out.fail(error).await;
            }
            Err(Halt::Stopped) => {}
        }
    });
    batches
}

/// Why reading stopped early.
enum Halt {
    /// A failure the run must know about.
    Failed(ConnectorError),
    /// The run stopped listening: nothing to report to anyone.
    Stopped,
}

impl From<ConnectorError> for Halt {
    fn from(error: ConnectorError) -> Halt {
        Halt::Failed(error)
    }
}

impl From<CallError> for Halt {
    fn from(error: CallError) -> Halt {
        Halt::Failed(error.into())
    }
}

impl From<Stopped> for Halt {
    fn from(_: Stopped) -> Halt {
        Halt::Stopped
    }
}

/// Students to read: number → the years they were listed in.
type Students = BTreeMap<String, BTreeSet<i32>>;

async fn read(plan: &ReadPlan, out: &mut BatchSender) -> Result<(), Halt> {
    let mut structures = HashMap::new();
    for &year in &plan.years {
        let mut structure = read_structure(plan, year).await?;
        out.extend(std::mem::take(&mut structure.items)).await?;
        structures.insert(year, structure);
    }
    let students = list_students(plan, &structures).await?;
    tracing::info!(students = students.len(), "Apogée: students to read");
    let empty = Structure::default();
    let structure_of = |year: i32| structures.get(&year).unwrap_or(&empty);
    let mut deeper = DeeperStructure::default();
    let mut unmapped = UnmappedCodes::default();
    let mut reads = stream::iter(students)
        .map(|(student, years)| read_student(plan, structure_of, student, years))
        .buffer_unordered(plan.config.http.concurrency.max(1));
    while let Some(read) = reads.next().await {
        let read = read?;
        for (year, records) in read.deeper {
            deeper.add(records, structure_of(year));
        }
        unmapped.count(read.unmapped);
        out.extend(read.items).await?;
    }
    out.extend(deeper.into_items()).await?;
    Ok(out.extend(unmapped.notes(&plan.config.source)).await?)
}

/// The status codes no table maps, with how many student-years carry each.
#[derive(Debug, Default)]
struct UnmappedCodes(BTreeMap<UnmappedCode, u64>);

impl UnmappedCodes {
    /// Counts `codes`; a code met for the first time is logged.
    fn count(&mut self, codes: Vec<UnmappedCode>) {
        for code in codes {
            let count = self.0.entry(code.clone()).or_default();
            if *count == 0 {
                tracing::warn!(
                    table = code.table,
                    code = %code.code,
                    "a status code is in no entry of its table: no special status is stored \
                     for it (counted in the run summary)"
                );
            }
            *count += 1;
        }
    }

    /// One summary note per code.
    fn notes(self, source: &str) -> Vec<Item> {
        self.0
            .into_iter()
            .map(|(unmapped, count)| {
                Item::Note(format!(
                    "{}: code `{}` is in no entry: {count} student-year(s) read without a \
                     special status for it; map it under [sources.{source}.{}] (\"\" for none)",
                    unmapped.table, unmapped.code, unmapped.table
                ))
            })
            .collect()
    }
}

/// The first-level structure of `year`.
async fn read_structure(plan: &ReadPlan, year: i32) -> Result<Structure, Halt> {
    let se = plan.client.call(&Call::structure(year)).await?;
    let structure = mapping::structure(year, se.as_ref(), &plan.config.tables);
    if se.is_none() {
        tracing::warn!(
            year,
            "Apogée has no course structure for this year (recupererSE_v4: no data)"
        );
    }
    tracing::info!(
        year,
        steps = structure.steps.len(),
        "Apogée: structure read"
    );
    Ok(structure)
}

/// The steps to list per year: the structure's, or the configured ones.
fn steps_in_scope(plan: &ReadPlan, structures: &HashMap<i32, Structure>) -> Vec<(i32, StepCode)> {
    let mut steps = Vec::new();
    for &year in &plan.years {
        let known = structures
            .get(&year)
            .map(|s| s.steps.as_slice())
            .unwrap_or(&[]);
        match &plan.config.steps {
            StepScope::All => steps.extend(known.iter().map(|step| (year, step.clone()))),
            StepScope::Listed(listed) => {
                for step in listed {
                    if !known.contains(step) {
                        tracing::warn!(
                            year,
                            step = %step,
                            "a step of `steps` is not in recupererSE_v4's structure of the year; \
                             its students are read anyway"
                        );
                    }
                    steps.push((year, step.clone()));
                }
            }
        }
    }
    steps
}

/// Every student listed under a step in scope, with the years they were listed in.
async fn list_students(
    plan: &ReadPlan,
    structures: &HashMap<i32, Structure>,
) -> Result<Students, Halt> {
    let mut students = Students::new();
    let mut listings = stream::iter(steps_in_scope(plan, structures))
        .map(|(year, step)| async move {
            let list = plan
                .client
                .call(&Call::students_of_step(year, &step))
                .await?;
            Ok::<_, CallError>((year, mapping::student_numbers(list.as_ref())))
        })
        .buffer_unordered(plan.config.http.concurrency.max(1));
    while let Some(listing) = listings.next().await {
        let (year, numbers) = listing?;
        for number in numbers {
            students.entry(number).or_default().insert(year);
        }
    }
    Ok(students)
}

/// What was read of one student.
#[derive(Debug, Default)]
struct StudentRead {
    items: Vec<Item>,
    /// (year, nodes and edges below the first level seen in a contract).
    deeper: Vec<(i32, Vec<Record>)>,
    /// Status codes of their years that no table maps.
    unmapped: Vec<UnmappedCode>,
}

/// Reads one student; a bad-input fault quarantines them instead.
async fn read_student<'s>(
    plan: &ReadPlan,
    structure_of: impl Fn(i32) -> &'s Structure,
    student: String,
    years: BTreeSet<i32>,
) -> Result<StudentRead, ConnectorError> {
    match student_records(plan, &structure_of, &student, &years).await {
        Ok(read) => Ok(read),
        Err(CallError::BadInput {
            label,
            subject,
            fault,
        }) => {
            tracing::warn!(call = %label, "Apogée refused the input; student quarantined, read goes on");
            Ok(StudentRead {
                items: vec![Item::Rejected(Rejected {
                    kind: Some(Kind::Student),
                    key: Some(mapping::student_key(&student)),
                    reason: format!(
                        "{label}: Apogée refused the input (`{}`); this student's records are \
                         not read this time and the stored ones are kept",
                        subject.mask(&fault.string)
                    ),
                    location: Some(label),
                    payload: fault.to_string(),
                })],
                ..StudentRead::default()
            })
        }
        Err(CallError::Failed(error)) => Err(error),
    }
}

async fn student_records<'s>(
    plan: &ReadPlan,
    structure_of: &impl Fn(i32) -> &'s Structure,
    student: &str,
    years: &BTreeSet<i32>,
) -> Result<StudentRead, CallError> {
    let client = &plan.client;
    let identity = Call::administrative_identity(student);
    let directory = Call::directory_identifiers(student);
    let (infos, identifiers) = tokio::join!(client.call(&identity), client.call(&directory));
    let zone = plan.config.timezone;
    let person = match mapping::person(student, infos?.as_ref(), identifiers?.as_ref(), zone) {
        Ok(person) => person,
        Err(rejected) => {
            return Ok(StudentRead {
                items: vec![Item::Rejected(*rejected)],
                ..StudentRead::default()
            })
        }
    };
    let mut read = StudentRead::default();
    read.items
        .push(Item::Record(Record::Student(person.student)));
    for &year in years {
        let who = StudentYear {
            year,
            student,
            disability: person.disability,
        };
        read_year(plan, structure_of(year), who, &mut read).await?;
    }
    Ok(read)
}

/// A student's registrations of one year, and the contracts of those not cancelled.
async fn read_year(
    plan: &ReadPlan,
    structure: &Structure,
    who: StudentYear<'_>,
    read: &mut StudentRead,
) -> Result<(), CallError> {
    let client = &plan.client;
    let steps = Call::step_registrations(who.student, who.year);
    let annual = Call::annual_registration(who.student, who.year);
    let (iae, iaa) = tokio::join!(client.call(&steps), client.call(&annual));
    let tables = &plan.config.tables;
    let year = mapping::registrations(who, iae?.as_ref(), iaa?.as_ref(), tables);
    read.items.extend(year.rejected);
    read.unmapped.extend(year.unmapped);
    for (step, registration) in year.registrations {
        // With listed steps, the others' registrations are outside this read.
        if !plan.config.steps.covers(&step) {
            continue;
        }
        if followed(&registration) {
            let call = Call::pedagogical_contract(who.student, who.year, &step);
            let ip = client.call(&call).await?;
            let contract = mapping::contract(who, &step, ip.as_ref(), structure, tables);
            read.items.extend(contract.items);
            read.deeper.push((who.year, contract.deeper));
        }
        read.items
            .push(Item::Record(Record::Registration(registration)));
    }
    Ok(())
}

/// Whether a registration has pedagogical registrations to read (README: every
/// registration that is not cancelled).
fn followed(registration: &Registration) -> bool {
    registration.status != RegistrationStatus::Cancelled
}
