//! A contract's life: proposed by a directeur d'études, signed by the student, validated,
//! refused (with a reason, back to a draft), amended; every action an event of the
//! evidence chain, in the same transaction.
//!
//! States (DESIGN.md): `draft` → `proposed` → `signed` → `validated`; `refused` by either
//! party, with a reason, which is a draft again; `closed` when the year is over. A
//! validated version stays in force while an amendment (a new version with a reason
//! code) goes the same way and then replaces it. Each action names the hash of the
//! version the person saw: a stale one is [`ContractsError::Stale`] and changes nothing.
//! Actions on one contract are serialised by a row lock: of two racing validations, one
//! is recorded and the other finds the contract validated.

use crate::catalogue::Catalogue;
use crate::content;
use crate::evidence::{self, Actor, NewEvent, Role};
use crate::rules::Rules;
use crate::ContractsError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::{Client, Transaction};

/// An action on the version being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A directeur d'études proposes the draft to the student.
    Propose,
    /// The student signs the proposed version.
    Sign,
    /// A directeur d'études validates the signed version: it comes into force.
    Validate,
    /// Either party refuses a proposed or signed version, with a reason.
    Refuse,
}

impl Action {
    /// Its name in events and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Propose => "propose",
            Action::Sign => "sign",
            Action::Validate => "validate",
            Action::Refuse => "refuse",
        }
    }

    /// Who may take it.
    fn roles(self) -> &'static [Role] {
        match self {
            Action::Propose | Action::Validate => &[Role::Directeur, Role::Admin],
            Action::Sign => &[Role::Student],
            Action::Refuse => &[Role::Student, Role::Directeur, Role::Admin],
        }
    }

    /// The states it applies to, and the state it leads to.
    fn transition(self) -> (&'static [&'static str], &'static str) {
        match self {
            Action::Propose => (&["draft", "refused"], "proposed"),
            Action::Sign => (&["proposed"], "signed"),
            Action::Validate => (&["signed"], "validated"),
            Action::Refuse => (&["proposed", "signed"], "refused"),
        }
    }
}

/// The actions possible in `state` (for errors that teach).
pub fn allowed(state: &str) -> &'static [&'static str] {
    match state {
        "draft" | "refused" => &["edit", "propose"],
        "proposed" => &["sign", "refuse"],
        "signed" => &["validate", "refuse"],
        "validated" => &["amend"],
        _ => &[],
    }
}

/// What the person saw and said.
#[derive(Debug, Clone, Copy, Default)]
pub struct Said<'a> {
    /// The hash of the version they saw.
    pub seen_hash: &'a str,
    /// Why (required to refuse).
    pub reason: Option<&'a str>,
    /// The consent text shown before signing (required to sign).
    pub consent_text: Option<&'a str>,
    /// The steps a directeur acts for: a validation covers the contract's sections in
    /// these steps (a double licence has a directeur per section). `None`: every section
    /// (an administrator, the command line).
    pub for_steps: Option<&'a [String]>,
}

/// A contract's head after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The contract.
    pub id: i64,
    /// Its state.
    pub state: String,
    /// The version worked on.
    pub version: i32,
    /// Its hash.
    pub hash: String,
    /// The validated version in force, if any.
    pub in_force: Option<i32>,
    /// The version an open amendment departs from.
    pub amendment_of: Option<i32>,
    /// Events in its evidence chain.
    pub events: i32,
    /// The sections (by step) still to be validated by their directeur, when a contract
    /// with several is validated section by section.
    pub awaiting: Vec<String>,
}

/// A support measure as a contract holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// Its catalogue code.
    pub code: String,
    /// Details for this student (hours, dates…).
    pub details: Option<String>,
    /// Its French label, from the catalogue.
    pub label: String,
    /// Who proposed it: a login, or `rule:special_status`.
    pub proposed_by: String,
}

/// A measure to set: a catalogue code and its details.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MeasureInput {
    /// The catalogue code.
    pub code: String,
    /// Details for this student.
    #[serde(default)]
    pub details: Option<String>,
}

/// The locked head of a contract and its current version.
struct Locked {
    head: Head,
    head_hash: String,
    content: String,
    reason: Option<String>,
    measures: Option<Value>,
}

async fn lock(tx: &Transaction<'_>, id: i64) -> Result<Locked, ContractsError> {
    let row = tx
        .query_opt(
            "SELECT k.state, k.version, v.hash, k.in_force, k.amendment_of, k.events, \
                    k.head_hash, v.content, v.reason, k.measures \
             FROM contract k JOIN contract_version v ON v.contract_id = k.id \
              AND v.version = k.version WHERE k.id = $1 FOR UPDATE OF k",
            &[&id],
        )
        .await
        .map_err(ContractsError::db("reading the contract"))?
        .ok_or(ContractsError::NotFound(id))?;
    Ok(Locked {
        head: Head {
            id,
            state: row.get(0),
            version: row.get(1),
            hash: row.get(2),
            in_force: row.get(3),
            amendment_of: row.get(4),
            events: row.get(5),
            awaiting: Vec::new(),
        },
        head_hash: row.get(6),
        content: row.get(7),
        reason: row.get(8),
        measures: row.get(9),
    })
}

fn check_role(action: &'static str, actor: &Actor, roles: &[Role]) -> Result<(), ContractsError> {
    match roles.contains(&actor.role) {
        true => Ok(()),
        false => Err(ContractsError::Forbidden {
            action,
            role: actor.role.as_str(),
        }),
    }
}

fn check_state(head: &Head, action: &'static str, from: &[&str]) -> Result<(), ContractsError> {
    match from.contains(&head.state.as_str()) {
        true => Ok(()),
        false => Err(ContractsError::WrongState {
            id: head.id,
            state: head.state.clone(),
            action,
            allowed: allowed(&head.state),
        }),
    }
}

fn check_seen(head: &Head, seen: &str) -> Result<(), ContractsError> {
    match seen == head.hash {
        true => Ok(()),
        false => Err(ContractsError::Stale {
            id: head.id,
            current_hash: head.hash.clone(),
        }),
    }
}

/// Takes `action` on contract `id` as `actor`, who saw the version of `said.seen_hash`.
pub async fn act(
    client: &mut Client,
    id: i64,
    action: Action,
    actor: &Actor,
    said: Said<'_>,
) -> Result<Head, ContractsError> {
    let name = action.as_str();
    check_role(name, actor, action.roles())?;
    let reason = said.reason.map(str::trim).filter(|r| !r.is_empty());
    if action == Action::Refuse && reason.is_none() {
        return Err(ContractsError::Invalid("a refusal needs a reason".into()));
    }
    let consent = said.consent_text.map(str::trim).filter(|c| !c.is_empty());
    if action == Action::Sign && consent.is_none() {
        return Err(ContractsError::Invalid(
            "a signature records the consent text the student was shown".into(),
        ));
    }
    let tx = begin(client).await?;
    let locked = lock(&tx, id).await?;
    check_seen(&locked.head, said.seen_hash)?;
    let (from, to) = action.transition();
    check_state(&locked.head, name, from)?;
    let covered = match action {
        Action::Validate => sections_validated(&tx, &locked, actor, said.for_steps).await?,
        _ => Validation::default(),
    };
    let to = if covered.awaiting.is_empty() {
        to
    } else {
        "signed"
    };
    let event = NewEvent {
        action: name,
        actor,
        at: evidence::now(),
        version: locked.head.version,
        version_hash: &locked.head.hash,
        reason,
        consent_text: if action == Action::Sign {
            consent
        } else {
            None
        },
        bulk: None,
        steps: covered.steps.as_deref(),
    };
    let sealed = event.seal(id, locked.head.events + 1, &locked.head_hash);
    evidence::write(copy_events(&tx).await?, std::slice::from_ref(&sealed)).await?;
    let validated = to == "validated";
    tx.execute(
        "UPDATE contract SET state = $2, events = $3, head_hash = $4, updated_at = now(), \
                in_force = CASE WHEN $5 THEN version ELSE in_force END, \
                amendment_of = CASE WHEN $5 THEN NULL ELSE amendment_of END \
         WHERE id = $1",
        &[&id, &to, &sealed.seq, &sealed.hash, &validated],
    )
    .await
    .map_err(ContractsError::db("recording the action"))?;
    commit(tx).await?;
    let mut head = locked.head;
    head.state = to.to_owned();
    head.events = sealed.seq;
    head.awaiting = covered.awaiting;
    if validated {
        head.in_force = Some(head.version);
        head.amendment_of = None;
    }
    Ok(head)
}

/// What one validation covers. A contract's sections are each validated by a directeur
/// of their step: a double licence has two sections and two directeurs, and comes into
/// force when both have validated the signed version.
#[derive(Debug, Default)]
struct Validation {
    /// The steps this validation covers, recorded in its event when the contract has
    /// several sections (none: the whole contract).
    steps: Option<Vec<String>>,
    /// The steps still awaited after it.
    awaiting: Vec<String>,
}

/// The sections of the signed version that `actor`, acting for `for_steps`, validates
/// now, and those still awaited; refused when none of theirs is left to validate.
async fn sections_validated(
    tx: &Transaction<'_>,
    locked: &Locked,
    actor: &Actor,
    for_steps: Option<&[String]>,
) -> Result<Validation, ContractsError> {
    let all = section_steps(&locked.content);
    if all.len() < 2 && for_steps.is_none_or(|f| all.iter().all(|s| f.contains(s))) {
        return Ok(Validation::default());
    }
    let done = validated_since_signature(tx, locked.head.id).await?;
    let open: Vec<String> = all.into_iter().filter(|s| !done.contains(s)).collect();
    let theirs = |step: &String| for_steps.is_none_or(|f| f.contains(step));
    let (mine, awaiting): (Vec<String>, Vec<String>) = open.into_iter().partition(theirs);
    if mine.is_empty() {
        return Err(match done.iter().any(theirs) {
            true => ContractsError::AlreadyValidated {
                id: locked.head.id,
                awaiting,
            },
            false => ContractsError::Forbidden {
                action: "validate",
                role: actor.role.as_str(),
            },
        });
    }
    Ok(Validation {
        steps: Some(mine),
        awaiting,
    })
}

/// The steps of a version's sections, sorted, once each.
fn section_steps(content: &str) -> Vec<String> {
    let content: Value = serde_json::from_str(content).expect("stored content is JSON");
    let mut steps: Vec<String> = (content["sections"].as_array().into_iter().flatten())
        .filter_map(|section| section["step"].as_str().map(str::to_owned))
        .collect();
    steps.sort();
    steps.dedup();
    steps
}

/// The steps validated since the contract's last signature (section by section).
async fn validated_since_signature(
    tx: &Transaction<'_>,
    id: i64,
) -> Result<Vec<String>, ContractsError> {
    let rows = tx
        .query(
            "SELECT event FROM contract_event WHERE contract_id = $1 AND action = 'validate' \
               AND seq > (SELECT coalesce(max(seq), 0) FROM contract_event \
                          WHERE contract_id = $1 AND action = 'sign')",
            &[&id],
        )
        .await
        .map_err(ContractsError::db("reading the validations"))?;
    let mut steps = Vec::new();
    for row in rows {
        let event: Value = serde_json::from_str(row.get(0)).expect("stored events are JSON");
        let covered = event["steps"].as_array().into_iter().flatten();
        steps.extend(covered.filter_map(|s| s.as_str().map(str::to_owned)));
    }
    Ok(steps)
}

/// Sets the measures and objectives of a draft (or of an open amendment's draft): a new
/// version when the content changes.
pub async fn set_draft(
    client: &mut Client,
    id: i64,
    actor: &Actor,
    catalogue: &Catalogue,
    measures: &[MeasureInput],
    objectives: &[String],
) -> Result<Head, ContractsError> {
    check_role("edit", actor, &[Role::Directeur, Role::Admin])?;
    let tx = begin(client).await?;
    let locked = lock(&tx, id).await?;
    check_state(&locked.head, "edit", &["draft", "refused"])?;
    let measures = resolve(catalogue, measures, actor, locked.measures.as_ref())?;
    let reason = locked
        .reason
        .clone()
        .filter(|_| locked.head.amendment_of.is_some());
    let head = new_version(
        &tx,
        &locked,
        actor,
        "edit",
        reason.as_deref(),
        &measures,
        objectives,
    )
    .await?;
    commit(tx).await?;
    Ok(head)
}

/// An amendment to open: its reason code and, optionally, new measures and objectives
/// (otherwise those in force).
#[derive(Debug, Clone, Copy)]
pub struct Amendment<'a> {
    /// The reason code (`[contracts] amendment_reasons`).
    pub reason: &'a str,
    /// The amendment's measures.
    pub measures: Option<&'a [MeasureInput]>,
    /// Its objectives.
    pub objectives: Option<&'a [String]>,
}

/// Opens an amendment of the version in force: a new version, a draft, with its reason.
pub async fn open_amendment(
    client: &mut Client,
    id: i64,
    actor: &Actor,
    rules: &Rules,
    catalogue: &Catalogue,
    amendment: Amendment<'_>,
) -> Result<Head, ContractsError> {
    let Amendment {
        reason,
        measures,
        objectives,
    } = amendment;
    check_role(
        "amend",
        actor,
        &[Role::Directeur, Role::Student, Role::Admin],
    )?;
    if !rules.amendment_reasons.iter().any(|r| r == reason) {
        return Err(ContractsError::Invalid(format!(
            "`{reason}` is not an amendment reason (known: {})",
            rules.amendment_reasons.join(", ")
        )));
    }
    let tx = begin(client).await?;
    let locked = lock(&tx, id).await?;
    check_state(&locked.head, "amend", &["validated"])?;
    let current: Value = serde_json::from_str(&locked.content).expect("stored content is JSON");
    let measures = match measures {
        Some(measures) => resolve(catalogue, measures, actor, Some(&current["measures"]))?,
        None => serde_json::from_value(current["measures"].clone()).unwrap_or_default(),
    };
    let objectives: Vec<String> = match objectives {
        Some(objectives) => objectives.to_vec(),
        None => serde_json::from_value(current["objectives"].clone()).unwrap_or_default(),
    };
    let mut locked = locked;
    locked.head.amendment_of = Some(locked.head.version);
    let head = new_version(
        &tx,
        &locked,
        actor,
        "amend",
        Some(reason),
        &measures,
        &objectives,
    )
    .await?;
    commit(tx).await?;
    Ok(head)
}

/// The measures to set, from the catalogue; a measure already held keeps who proposed it.
fn resolve(
    catalogue: &Catalogue,
    inputs: &[MeasureInput],
    actor: &Actor,
    held: Option<&Value>,
) -> Result<Vec<Measure>, ContractsError> {
    let held: Vec<Measure> = held
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    inputs
        .iter()
        .map(|input| {
            let entry = catalogue.measure(&input.code).ok_or_else(|| {
                let known: Vec<&str> = catalogue.measures.iter().map(|m| m.code.as_str()).collect();
                ContractsError::Invalid(format!(
                    "`{}` is not in the measures catalogue (known: {})",
                    input.code,
                    known.join(", ")
                ))
            })?;
            let proposed_by = (held.iter().find(|m| m.code == input.code))
                .map_or_else(|| actor.id.clone(), |m| m.proposed_by.clone());
            Ok(Measure {
                code: entry.code.clone(),
                details: input.details.clone().filter(|d| !d.trim().is_empty()),
                label: entry.label_fr.clone(),
                proposed_by,
            })
        })
        .collect()
}

/// Writes the next version (the current content with these measures and objectives),
/// its event, and the head: a draft.
async fn new_version(
    tx: &Transaction<'_>,
    locked: &Locked,
    actor: &Actor,
    action: &'static str,
    reason: Option<&str>,
    measures: &[Measure],
    objectives: &[String],
) -> Result<Head, ContractsError> {
    let mut content: Value = serde_json::from_str(&locked.content).expect("stored content is JSON");
    content["measures"] = serde_json::to_value(measures).expect("measures serialise");
    content["objectives"] = serde_json::to_value(objectives).expect("objectives serialise");
    let (text, hash) = content::sealed(&content);
    let version = locked.head.version + 1;
    let at = evidence::now();
    let failed = ContractsError::db("writing the new version");
    tx.execute(
        "INSERT INTO contract_version (contract_id, version, hash, content, created_at, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&locked.head.id, &version, &hash, &text, &at, &reason],
    )
    .await
    .map_err(&failed)?;
    let event = NewEvent {
        action,
        actor,
        at,
        version,
        version_hash: &hash,
        reason,
        consent_text: None,
        bulk: None,
        steps: None,
    };
    let sealed = event.seal(locked.head.id, locked.head.events + 1, &locked.head_hash);
    evidence::write(copy_events(tx).await?, std::slice::from_ref(&sealed)).await?;
    let measures = serde_json::to_value(measures).expect("measures serialise");
    let objectives = serde_json::to_value(objectives).expect("objectives serialise");
    tx.execute(
        "UPDATE contract SET version = $2, hash = $8, state = 'draft', amendment_of = $3, \
                measures = $4, objectives = $5, events = $6, head_hash = $7, updated_at = now() \
         WHERE id = $1",
        &[
            &locked.head.id,
            &version,
            &locked.head.amendment_of,
            &measures,
            &objectives,
            &sealed.seq,
            &sealed.hash,
            &hash,
        ],
    )
    .await
    .map_err(&failed)?;
    Ok(Head {
        state: "draft".into(),
        version,
        hash,
        events: sealed.seq,
        ..locked.head.clone()
    })
}

async fn copy_events(
    tx: &Transaction<'_>,
) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>, ContractsError> {
    tx.copy_in(evidence::COPY_EVENTS)
        .await
        .map_err(ContractsError::db("writing the evidence"))
}

async fn begin(client: &mut Client) -> Result<Transaction<'_>, ContractsError> {
    client
        .transaction()
        .await
        .map_err(ContractsError::db("starting the action"))
}

async fn commit(tx: Transaction<'_>) -> Result<(), ContractsError> {
    tx.commit()
        .await
        .map_err(ContractsError::db("committing the action"))
}

/// Closes every contract of `year` not closed yet (the year is over): each gets a `close`
/// event; a closed contract takes no action and no refresh. Returns how many closed.
pub async fn close_year(
    client: &mut Client,
    year: i32,
    actor: &Actor,
) -> Result<u64, ContractsError> {
    check_role("close", actor, &[Role::Admin, Role::Scolarite])?;
    let failed = ContractsError::db("closing the year");
    let tx = begin(client).await?;
    let rows = tx
        .query(
            "SELECT id, version, hash, events, head_hash FROM contract \
             WHERE year = $1 AND state <> 'closed' ORDER BY id FOR UPDATE",
            &[&year],
        )
        .await
        .map_err(&failed)?;
    let at = evidence::now();
    let events: Vec<evidence::Sealed> = rows
        .iter()
        .map(|row| {
            let hash: String = row.get(2);
            let event = NewEvent {
                action: "close",
                actor,
                at,
                version: row.get(1),
                version_hash: &hash,
                reason: Some("the academic year is over"),
                consent_text: None,
                bulk: None,
                steps: None,
            };
            event.seal(row.get(0), row.get::<_, i32>(3) + 1, row.get(4))
        })
        .collect();
    if !events.is_empty() {
        evidence::write(copy_events(&tx).await?, &events).await?;
        let ids: Vec<i64> = events.iter().map(|e| e.contract).collect();
        let hashes: Vec<&str> = events.iter().map(|e| e.hash.as_str()).collect();
        tx.execute(
            "UPDATE contract k SET state = 'closed', events = k.events + 1, head_hash = u.hash, \
                    updated_at = now() \
             FROM unnest($1::bigint[], $2::text[]) AS u(id, hash) WHERE k.id = u.id",
            &[&ids, &hashes],
        )
        .await
        .map_err(&failed)?;
    }
    commit(tx).await?;
    Ok(events.len() as u64)
}
