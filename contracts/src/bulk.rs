//! Bulk validation: a directeur d'études validates every signed standard contract of a
//! step (or a list of contracts) at once, each contract's signed hash checked.
//!
//! One read classifies the contracts selected; one event per contract to validate is
//! sealed after its chain's head as read; one statement validates them, each only if its
//! head is still the one read (a version check in the UPDATE: a contract that moved
//! meanwhile is skipped as stale); and the events of those it validated are copied into
//! their chains, all carrying the bulk action's id. What is skipped is counted by reason:
//! not signed, specific, stale (the signed version is no longer the current one, or not
//! the one the directeur saw), not the directeur's step, a section in another
//! directeur's step or already validated (a double licence: each directeur validates
//! their own section, contract by contract).

use crate::evidence::{self, Actor, Role};
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
    /// Each contract skipped, and why (by id).
    pub skipped_contracts: Vec<(i64, String)>,
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
/// A contract with a section in another directeur's step (a double licence): each
/// directeur validates their own section, contract by contract.
pub const SHARED: &str = "a section is another directeur's";
/// A contract one of whose sections is validated already: the rest is validated contract
/// by contract.
pub const PARTLY_VALIDATED: &str = "partly validated";

/// The whole bulk validation, one statement: the contracts selected classified (a
/// signed contract's signature is its last event: any later action changes its state),
/// an event built for each to validate — its RFC 8785 text assembled in field order
/// (action, actor, at, bulk, client, contract, seq, version, version_hash: those of
/// `evidence::EventText`), PostgreSQL's JSON string escapes being RFC 8785's — and
/// chained after the head as read; the contracts validated only if their head is still
/// that one (a version check: one that moved meanwhile is stale); the events of those
/// validated appended (the UPDATE returns what they need: CTEs joined to one another
/// have no index); each contract skipped with its reason (`stale` before or during the
/// statement), then the count validated.
///
/// $1 ids, $2 year, $3 step, $4 the directeur's steps, $5 standard only, $6 the hashes
/// seen (with $1), $7 the actor's text, $8 the instant's text, $9 the bulk id, $10 the
/// client's text, $11 the instant.
const BULK_SQL: &str = "\
WITH candidate AS ( \
  SELECT k.id, k.version, k.events, k.head_hash, k.hash, \
    CASE WHEN NOT ($4::text[] IS NULL OR EXISTS (SELECT 1 FROM registration r \
                WHERE r.source_id = k.source_id AND r.year = k.year \
                  AND r.student = k.student AND r.step = ANY($4) AND r.deleted_at IS NULL)) \
           THEN 'not the directeur''s step' \
         WHEN k.state <> 'signed' THEN 'not signed' \
         WHEN $4::text[] IS NOT NULL AND EXISTS (SELECT 1 FROM registration r \
                WHERE r.source_id = k.source_id AND r.year = k.year \
                  AND r.student = k.student AND r.deleted_at IS NULL \
                  AND NOT r.step = ANY($4)) THEN 'a section is another directeur''s' \
         WHEN e.action = 'validate' THEN 'partly validated' \
         WHEN $5::bool AND cardinality(k.flags) > 0 THEN 'specific' \
         WHEN e.action IS DISTINCT FROM 'sign' OR e.version_hash <> k.hash \
              OR seen.hash <> k.hash THEN 'stale' \
    END AS skip \
  FROM contract k \
  LEFT JOIN contract_event e ON e.contract_id = k.id AND e.seq = k.events \
  LEFT JOIN unnest($1::bigint[], $6::text[]) AS seen (id, hash) ON seen.id = k.id \
  WHERE CASE WHEN $1::bigint[] IS NOT NULL THEN k.id = ANY($1) \
             ELSE k.year = $2 AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM registration r \
                WHERE r.source_id = k.source_id AND r.year = k.year \
                  AND r.student = k.student AND r.step = $3)) END \
), event AS ( \
  SELECT c.id, c.events + 1 AS seq, c.version, c.hash AS version_hash, \
         c.head_hash AS prev_hash, \
         '{\"action\":\"validate\",\"actor\":' || $7::text || ',\"at\":' || to_json($8::text) \
         || ',\"bulk\":' || $9::bigint || ',\"client\":' || $10::text || ',\"contract\":' || c.id \
         || ',\"seq\":' || (c.events + 1) || ',\"version\":' || c.version \
         || ',\"version_hash\":' || to_json(c.hash) || '}' AS text \
  FROM candidate c WHERE c.skip IS NULL \
), chained AS ( \
  SELECT e.*, 'sha256:' || encode(sha256(convert_to(e.prev_hash || E'\\n' || e.text, 'UTF8')), \
         'hex') AS hash FROM event e \
), validated AS ( \
  UPDATE contract k SET state = 'validated', in_force = k.version, amendment_of = NULL, \
         events = c.seq, head_hash = c.hash, updated_at = now() \
  FROM chained c WHERE k.id = c.id AND k.head_hash = c.prev_hash AND k.state = 'signed' \
  RETURNING c.* \
), logged AS ( \
  INSERT INTO contract_event (contract_id, seq, action, at, version, version_hash, bulk_id, \
                              event, prev_hash, hash) \
  SELECT id, seq, 'validate', $11::timestamptz, version, version_hash, $9, text, prev_hash, \
         hash FROM validated \
  RETURNING 1 \
) \
SELECT skip, id, 0::bigint FROM candidate WHERE skip IS NOT NULL \
UNION ALL SELECT 'stale', c.id, 0 FROM chained c WHERE NOT EXISTS \
  (SELECT 1 FROM validated v WHERE v.id = c.id) \
UNION ALL SELECT NULL, NULL, count(*) FROM logged";

/// Validates, as `actor`, the signed contracts `bulk` selects.
pub async fn validate(
    client: &mut Client,
    bulk: &BulkValidation,
    actor: &Actor,
) -> Result<BulkReport, ContractsError> {
    run(client, bulk, actor, true).await
}

/// What [`validate`] would do now, exactly: the same statement in a transaction rolled
/// back (for a page that asks before it validates).
pub async fn preview(
    client: &mut Client,
    bulk: &BulkValidation,
    actor: &Actor,
) -> Result<BulkReport, ContractsError> {
    run(client, bulk, actor, false).await
}

async fn run(
    client: &mut Client,
    bulk: &BulkValidation,
    actor: &Actor,
    apply: bool,
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
    let (ids, seen, year, step) = match &bulk.selection {
        Selection::Contracts(seen) => (
            Some(seen.iter().map(|s| s.id).collect::<Vec<_>>()),
            Some(seen.iter().map(|s| s.hash.clone()).collect::<Vec<_>>()),
            None,
            None,
        ),
        Selection::Year { year, step } => (None, None, Some(*year), step.clone()),
    };
    let at = evidence::now();
    let (actor_text, client_text) = evidence::actor_texts(actor);
    let rows = tx
        .query(
            BULK_SQL,
            &[
                &ids,
                &year,
                &step,
                &bulk.steps,
                &bulk.standard_only,
                &seen,
                &actor_text,
                &evidence::timestamp(at),
                &bulk_id,
                &client_text,
                &at,
            ],
        )
        .await
        .map_err(&failed)?;
    let mut report = BulkReport {
        bulk_id,
        ..BulkReport::default()
    };
    for row in rows {
        let (reason, id, count): (Option<String>, Option<i64>, i64) =
            (row.get(0), row.get(1), row.get(2));
        match (reason, id) {
            (Some(reason), Some(id)) => {
                *report.skipped.entry(reason.clone()).or_default() += 1;
                report.skipped_contracts.push((id, reason));
            }
            _ => report.validated = count as u64,
        }
    }
    match apply {
        true => tx.commit().await.map_err(&failed)?,
        false => tx.rollback().await.map_err(&failed)?,
    }
    Ok(report)
}
