//! Sealed contracts into the store, each change with its event in the contract's evidence
//! chain, all by binary COPY and one set-based UPDATE:
//!
//! * a new contract: its row, version 1 (a draft) and a `generate` event;
//! * a draft (or a proposal, or an open amendment) whose content changed: the next
//!   version, back to a draft, and a `refresh` event;
//! * a signed or validated contract whose content changed: never edited; an amendment
//!   opens, the next version with reason `sis_change`, and an `amend` event;
//! * a `sis_change` amendment nobody acted on, whose SIS went back to the version it
//!   amends: withdrawn, with a `withdraw` event;
//! * flags that changed: the head only.
//!
//! A generation holds `contract` in SHARE ROW EXCLUSIVE mode from its start (see
//! [`lock`]): what it read of a contract is what it writes after.

use super::assemble::{Current, Sealed};
use crate::evidence::{self, Actor, NewEvent, GENESIS};
use crate::ContractsError;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// Serialises generations (and the refreshes of concurrent syncs) with one another and
/// with the lifecycle's actions; readers are not blocked.
pub(crate) async fn lock(client: &Client) -> Result<(), ContractsError> {
    client
        .batch_execute(
            "LOCK TABLE contract IN SHARE ROW EXCLUSIVE MODE; \
             CREATE TEMP TABLE contract_computed (contract_id bigint, version int, \
             hash text, state text, amendment_of int, flags text[], events int, \
             head_hash text) ON COMMIT DROP",
        )
        .await
        .map_err(ContractsError::db("preparing the generation"))
}

/// What became of a block.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub created: u64,
    pub refreshed: u64,
    pub amended: u64,
    pub withdrawn: u64,
}

/// A new version of an existing contract.
struct NextVersion {
    contract: i64,
    version: i32,
    hash: String,
    content: String,
    reason: Option<String>,
}

/// A contract head as it will be.
struct HeadUpdate {
    contract: i64,
    version: i32,
    hash: String,
    state: String,
    amendment_of: Option<i32>,
    flags: Vec<String>,
    events: i32,
    head_hash: String,
}

/// What a block writes.
#[derive(Default)]
struct Plan {
    new: Vec<Sealed>,
    versions: Vec<NextVersion>,
    events: Vec<evidence::Sealed>,
    heads: Vec<HeadUpdate>,
    written: Written,
}

/// Writes a block.
pub(crate) async fn block(
    client: &Client,
    block: Vec<(Option<Current>, Sealed)>,
    run: Option<i64>,
) -> Result<Written, ContractsError> {
    if block.is_empty() {
        return Ok(Written::default());
    }
    let at = evidence::now();
    let system = Actor::system();
    let mut plan = Plan::default();
    for (current, sealed) in block {
        match current {
            None => plan.new.push(sealed),
            Some(current) => plan.change(current, sealed, at, &system),
        }
    }
    plan.written.created = plan.new.len() as u64;
    if !plan.new.is_empty() {
        create(client, &plan.new, run, at, &system).await?;
    }
    let versions: Vec<VersionRow> = (plan.versions.iter())
        .map(|v| (&v.contract, &v.version, &v.hash, &v.content, &v.reason))
        .collect();
    copy_versions(client, &versions, at).await?;
    if !plan.events.is_empty() {
        write_events(client, &plan.events).await?;
    }
    if !plan.heads.is_empty() {
        copy(
            client,
            "COPY contract_computed (contract_id, version, hash, state, amendment_of, flags, \
             events, head_hash) FROM STDIN BINARY",
            &[
                Type::INT8,
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::INT4,
                Type::TEXT_ARRAY,
                Type::INT4,
                Type::TEXT,
            ],
            plan.heads.iter().map(|h| -> [&(dyn ToSql + Sync); 8] {
                [
                    &h.contract,
                    &h.version,
                    &h.hash,
                    &h.state,
                    &h.amendment_of,
                    &h.flags,
                    &h.events,
                    &h.head_hash,
                ]
            }),
        )
        .await?;
    }
    Ok(plan.written)
}

impl Plan {
    /// What an existing contract's new computation changes.
    fn change(&mut self, c: Current, sealed: Sealed, at: DateTime<Utc>, system: &Actor) {
        if c.state == "closed" {
            return;
        }
        let untouched_sis_amendment = c.state == "draft"
            && c.reason.as_deref() == Some("sis_change")
            && c.amendment_of.is_some_and(|base| c.version == base + 1);
        if untouched_sis_amendment && c.base_hash.as_deref() == Some(sealed.hash.as_str()) {
            let base = c.amendment_of.expect("an amendment");
            let state = if c.in_force == Some(base) {
                "validated"
            } else {
                "signed"
            };
            let event = NewEvent {
                action: "withdraw",
                actor: system,
                at,
                version: c.version,
                version_hash: &c.hash,
                reason: Some("the SIS went back to the version in force before anyone acted"),
                consent_text: None,
                bulk: None,
                steps: None,
            };
            let base_hash = c.base_hash.clone().expect("an amendment's base");
            self.push_event(&c, event, (base, base_hash), state, None, sealed.flags);
            self.written.withdrawn += 1;
            return;
        }
        if sealed.hash == c.hash {
            if sealed.flags != c.flags {
                self.heads.push(HeadUpdate {
                    contract: c.id,
                    version: c.version,
                    hash: c.hash,
                    state: c.state,
                    amendment_of: c.amendment_of,
                    flags: sealed.flags,
                    events: c.events,
                    head_hash: c.head_hash,
                });
            }
            return;
        }
        let refresh =
            c.amendment_of.is_some() || !matches!(c.state.as_str(), "signed" | "validated");
        let (action, amendment_of, version_reason) = match refresh {
            // A draft, a proposal or an open amendment follows the SIS (a proposal goes
            // back to a draft: nobody signs a path that is no longer the student's).
            true => (
                "refresh",
                c.amendment_of,
                c.reason.clone().filter(|_| c.amendment_of.is_some()),
            ),
            // What a student signed is never edited: an amendment opens.
            false => ("amend", Some(c.version), Some("sis_change".to_string())),
        };
        let version = c.version + 1;
        // A version's creating event carries the version's reason: `verify` binds them.
        let event = NewEvent {
            action,
            actor: system,
            at,
            version,
            version_hash: &sealed.hash,
            reason: version_reason.as_deref(),
            consent_text: None,
            bulk: None,
            steps: None,
        };
        let head = (version, sealed.hash.clone());
        self.push_event(&c, event, head, "draft", amendment_of, sealed.flags.clone());
        self.versions.push(NextVersion {
            contract: c.id,
            version,
            hash: sealed.hash,
            content: sealed.content,
            reason: version_reason,
        });
        match action {
            "amend" => self.written.amended += 1,
            _ => self.written.refreshed += 1,
        }
    }

    /// The event, sealed after the contract's chain, and the head it leads to.
    fn push_event(
        &mut self,
        c: &Current,
        event: NewEvent<'_>,
        (version, hash): (i32, String),
        state: &str,
        amendment_of: Option<i32>,
        flags: Vec<String>,
    ) {
        let sealed = event.seal(c.id, c.events + 1, &c.head_hash);
        self.heads.push(HeadUpdate {
            contract: c.id,
            version,
            hash,
            state: state.to_owned(),
            amendment_of,
            flags,
            events: sealed.seq,
            head_hash: sealed.hash.clone(),
        });
        self.events.push(sealed);
    }
}

/// New contracts: ids from the sequence, then the contract rows, their version 1 and
/// their `generate` event.
async fn create(
    client: &Client,
    new: &[Sealed],
    run: Option<i64>,
    at: DateTime<Utc>,
    system: &Actor,
) -> Result<(), ContractsError> {
    let failed = ContractsError::db("writing the new contracts");
    // A range of ids drawn at once (one nextval per contract cost 0.13 s of a first load
    // at 49 000 contracts): only a generation draws them, one at a time (see [`lock`]).
    let count = new.len() as i64;
    let last: i64 = client
        .query_one(
            "SELECT setval(pg_get_serial_sequence('contract', 'id'), \
                           nextval(pg_get_serial_sequence('contract', 'id')) + $1 - 1)",
            &[&count],
        )
        .await
        .map_err(&failed)?
        .get(0);
    let ids: Vec<i64> = (last - count + 1..=last).collect();
    let events: Vec<evidence::Sealed> = (ids.iter().zip(new))
        .map(|(id, c)| {
            let event = NewEvent {
                action: "generate",
                actor: system,
                at,
                version: 1,
                version_hash: &c.hash,
                reason: None,
                consent_text: None,
                bulk: None,
                steps: None,
            };
            event.seal(*id, 1, GENESIS)
        })
        .collect();
    copy(
        client,
        "COPY contract (id, source_id, year, student, flags, refreshed_run, events, head_hash, \
         hash) FROM STDIN BINARY",
        &[
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
        ],
        (ids.iter().zip(new).zip(&events)).map(|((id, c), e)| -> [&(dyn ToSql + Sync); 9] {
            [
                id,
                &c.source_id,
                &c.year,
                &c.student,
                &c.flags,
                &run,
                &1i32,
                &e.hash,
                &c.hash,
            ]
        }),
    )
    .await?;
    let no_reason = None;
    let versions: Vec<VersionRow> = (ids.iter().zip(new))
        .map(|(id, c)| (id, &1, &c.hash, &c.content, &no_reason))
        .collect();
    copy_versions(client, &versions, at).await?;
    write_events(client, &events).await
}

/// A version to write: (contract, number, hash, content, reason).
type VersionRow<'a> = (&'a i64, &'a i32, &'a String, &'a String, &'a Option<String>);

/// New versions, all created at `at`.
async fn copy_versions(
    client: &Client,
    versions: &[VersionRow<'_>],
    at: DateTime<Utc>,
) -> Result<(), ContractsError> {
    if versions.is_empty() {
        return Ok(());
    }
    copy(
        client,
        "COPY contract_version (contract_id, version, hash, content, created_at, reason) \
         FROM STDIN BINARY",
        &[
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TEXT,
        ],
        versions.iter().map(
            |(id, n, hash, content, reason)| -> [&(dyn ToSql + Sync); 6] {
                [*id, *n, *hash, *content, &at, *reason]
            },
        ),
    )
    .await
}

async fn write_events(client: &Client, events: &[evidence::Sealed]) -> Result<(), ContractsError> {
    let sink = client
        .copy_in(evidence::COPY_EVENTS)
        .await
        .map_err(ContractsError::db("writing the evidence"))?;
    evidence::write(sink, events).await
}

/// Applies the staged heads: one statement for the whole generation.
pub(crate) async fn update_heads(client: &Client, run: Option<i64>) -> Result<(), ContractsError> {
    client
        .execute(
            "UPDATE contract k SET version = c.version, hash = c.hash, state = c.state, \
                    amendment_of = c.amendment_of, flags = c.flags, events = c.events, \
                    head_hash = c.head_hash, updated_at = now(), refreshed_run = $1 \
             FROM contract_computed c WHERE c.contract_id = k.id",
            &[&run],
        )
        .await
        .map_err(ContractsError::db("updating the contracts"))?;
    Ok(())
}

/// One binary COPY of `rows` on `client`.
async fn copy<'a, const N: usize>(
    client: &Client,
    statement: &str,
    types: &[Type],
    rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
) -> Result<(), ContractsError> {
    let sink =
        (client.copy_in(statement).await).map_err(ContractsError::db("writing the contracts"))?;
    crate::copy::rows(sink, types, rows, "writing the contracts").await
}
