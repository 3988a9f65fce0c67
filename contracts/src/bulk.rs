//! Bulk validation: a directeur d'études validates every signed standard contract of a
//! step (or a list of contracts) at once, each contract's signed hash checked.
//!
//! One read classifies the contracts selected; one event per contract to validate is
//! sealed after its chain's head as read; one statement validates them, each only if its
//! head is still the one read (a version check in the UPDATE: a contract that moved
//! meanwhile is skipped as stale); and the events of those it validated are copied into
//! their chains, all carrying the bulk action's id. What is skipped is counted by reason:
//! not signed, specific, stale (the signed version is no longer the current one, or not
//! the one the directeur saw), not the directeur's step.

use crate::evidence::{self, Actor, NewEvent, Role};
use crate::ContractsError;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Which contracts a bulk validation considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Those of a year, with a section of `step` when given.
    Year {
        /// The academic year.
        year: i32,
        /// The step.
        step: Option<String>,
    },
    /// These contracts, each with the hash of the version the directeur saw, when the
    /// list was made from what they saw (a different current version is stale).
    Contracts(Vec<Seen>),
}

/// A contract as the directeur saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The contract.
    pub id: i64,
    /// The hash of the version they saw.
    pub hash: Option<String>,
}

/// A bulk validation to take.
#[derive(Debug, Clone)]
pub struct BulkValidation {
    /// The contracts considered.
    pub selection: Selection,
    /// Only standard contracts (no flag): specific ones are skipped.
    pub standard_only: bool,
    /// The steps the directeur acts for (`None`: every step, as an administrator).
    pub steps: Option<Vec<String>>,
}

/// What a bulk validation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkReport {
    /// Its id, carried by each of its events.
    pub bulk_id: i64,
    /// Contracts validated.
    pub validated: u64,
    /// Contracts skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// The skip reasons, as reported.
pub const NOT_SIGNED: &str = "not signed";
/// A contract with a flag, when only standard ones are validated.
pub const SPECIFIC: &str = "specific";
/// A signed version that is no longer the current one, or a version the directeur saw
/// that is not the current one.
pub const STALE: &str = "stale";
/// A contract outside the directeur's steps.
pub const NOT_THEIR_STEP: &str = "not the directeur's step";

// The signed hash is that of the contract's last event, which a signed contract's
// signature is (any later action changes its state).
const CANDIDATES_SQL: &str = "\
SELECT k.id, k.state, cardinality(k.flags) > 0, k.version, v.hash, k.events, k.head_hash, \
       CASE WHEN e.action = 'sign' THEN e.version_hash END, \
       $4::text[] IS NULL OR EXISTS (SELECT 1 FROM registration r \
          WHERE r.source_id = k.source_id AND r.year = k.year AND r.student = k.student \
            AND r.step = ANY($4) AND r.deleted_at IS NULL) \
FROM contract k JOIN contract_version v ON v.contract_id = k.id AND v.version = k.version \
LEFT JOIN contract_event e ON e.contract_id = k.id AND e.seq = k.events \
WHERE CASE WHEN $1::bigint[] IS NOT NULL THEN k.id = ANY($1) \
           ELSE k.year = $2 AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM registration r \
              WHERE r.source_id = k.source_id AND r.year = k.year \
                AND r.student = k.student AND r.step = $3)) END \
ORDER BY k.id";

/// Validates, as `actor`, the signed contracts `bulk` selects.
pub async fn validate(
    client: &mut Client,
    bulk: &BulkValidation,
    actor: &Actor,
) -> Result<BulkReport, ContractsError> {
    if !matches!(actor.role, Role::Directeur | Role::Admin) {
        return Err(ContractsError::Forbidden {
            action: "validate",
            role: actor.role.as_str(),
        });
    }
    let failed = ContractsError::db("validating in bulk");
    let tx = client.transaction().await.map_err(&failed)?;
    let bulk_id: i64 = tx
        .query_one("SELECT nextval('contract_bulk_id')", &[])
        .await
        .map_err(&failed)?
        .get(0);
    let (ids, year, step) = match &bulk.selection {
        Selection::Contracts(seen) => (
            Some(seen.iter().map(|s| s.id).collect::<Vec<_>>()),
            None,
            None,
        ),
        Selection::Year { year, step } => (None, Some(*year), step.clone()),
    };
    let seen_hash = |id: i64| match &bulk.selection {
        Selection::Contracts(seen) => seen
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.hash.as_deref()),
        Selection::Year { .. } => None,
    };
    let started = std::time::Instant::now();
    let rows = tx
        .query(CANDIDATES_SQL, &[&ids, &year, &step, &bulk.steps])
        .await
        .map_err(&failed)?;
    let read_in = started.elapsed();
    let mut report = BulkReport {
        bulk_id,
        ..BulkReport::default()
    };
    let at = evidence::now();
    let mut events = Vec::new();
    for row in &rows {
        let (state, specific): (&str, bool) = (row.get(1), row.get(2));
        let (hash, signed): (String, Option<String>) = (row.get(4), row.get(7));
        let skip = if !row.get::<_, bool>(8) {
            Some(NOT_THEIR_STEP)
        } else if state != "signed" {
            Some(NOT_SIGNED)
        } else if bulk.standard_only && specific {
            Some(SPECIFIC)
        } else if signed.as_deref() != Some(hash.as_str())
            || seen_hash(row.get(0)).is_some_and(|seen| seen != hash)
        {
            Some(STALE)
        } else {
            None
        };
        if let Some(reason) = skip {
            *report.skipped.entry(reason.to_owned()).or_default() += 1;
            continue;
        }
        let (events_so_far, head_hash): (i32, String) = (row.get(5), row.get(6));
        let event = NewEvent {
            action: "validate",
            actor,
            at,
            version: row.get(3),
            version_hash: &hash,
            reason: None,
            consent_text: None,
            bulk: Some(bulk_id),
        };
        events.push(event.seal(row.get(0), events_so_far + 1, &head_hash));
    }
    let sealed = started.elapsed();
    if !events.is_empty() {
        let ids: Vec<i64> = events.iter().map(|e| e.contract).collect();
        let read: Vec<&str> = events.iter().map(|e| e.prev_hash.as_str()).collect();
        let hashes: Vec<&str> = events.iter().map(|e| e.hash.as_str()).collect();
        let validated: std::collections::HashSet<i64> = tx
            .query(
                "UPDATE contract k SET state = 'validated', in_force = k.version, \
                        amendment_of = NULL, events = k.events + 1, head_hash = u.hash, \
                        updated_at = now() \
                 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, read, hash) \
                 WHERE k.id = u.id AND k.head_hash = u.read AND k.state = 'signed' \
                 RETURNING k.id",
                &[&ids, &read, &hashes],
            )
            .await
            .map_err(&failed)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        tracing::debug!(
            read_ms = read_in.as_millis() as u64,
            seal_ms = (sealed - read_in).as_millis() as u64,
            update_ms = (started.elapsed() - sealed).as_millis() as u64,
            "bulk validation phases"
        );
        events.retain(|e| validated.contains(&e.contract));
        let moved = ids.len() - events.len();
        if moved > 0 {
            *report.skipped.entry(STALE.to_owned()).or_default() += moved as u64;
        }
        let sink = tx.copy_in(evidence::COPY_EVENTS).await.map_err(&failed)?;
        evidence::write(sink, &events).await?;
        report.validated = events.len() as u64;
    }
    tx.commit().await.map_err(&failed)?;
    Ok(report)
}
