//! Contracts made from the synced store.
//!
//! One contract per (source, year, student) that has a registration; one section per
//! registration. The registrations of the contracts in scope (the students a run touched,
//! or everyone) are numbered by contract; each block of contracts is read by one query
//! (registrations, their enrolments and nodes, in key order), assembled with the course
//! structure held in memory ([`structure`]) into contents and flags ([`assemble`]),
//! sealed (RFC 8785 text and hash) and written back with binary COPY; a few set-based
//! statements then merge them. Nothing loops over students with round trips, memory
//! holds one block and the structure, and a refresh with nothing new changes nothing.
//!
//! A contract is never deleted: a registration cancelled (or gone) in the SIS closes its
//! section, with a reason. While a contract is a draft, a refresh rewrites its draft;
//! later states are left alone (their amendments are the lifecycle's).

mod assemble;
mod structure;
mod write;

use crate::catalogue::Catalogue;
use crate::rules::Rules;
use crate::ContractsError;
use assemble::{Context, ContractRows};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use structure::Structure;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// What a generation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Contracts in scope.
    pub computed: u64,
    /// New contracts (version 1, a draft).
    pub created: u64,
    /// Drafts (proposals, open amendments) whose content changed: a new version.
    pub refreshed: u64,
    /// Signed or validated contracts whose content changed: an amendment opened
    /// (`sis_change`).
    pub amended: u64,
    /// `sis_change` amendments withdrawn, the SIS having gone back.
    pub withdrawn: u64,
}

/// Which contracts a generation computes.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Those of the students run `run_id` touched (its history rows); while the run's
    /// source has no contract yet, every student of the source.
    Run(i64),
    /// Every contract, or every contract of one year.
    All {
        /// Only this academic year.
        year: Option<i32>,
    },
}

/// Contracts are read, assembled and written this many at a time.
const BLOCK: i64 = 500;

/// From this many contracts in scope, the tables read are analyzed first.
const ANALYZE_FROM: u64 = 1_000;

/// Creates or refreshes the contracts of the students run `run_id` touched, on `client`
/// inside the run's transaction (all of its source's, while the source has none).
pub async fn refresh(
    client: &Client,
    run_id: i64,
    catalogue: &Catalogue,
    rules: &Rules,
) -> Result<Generated, ContractsError> {
    generate_in(client, Scope::Run(run_id), catalogue, rules).await
}

/// Creates or refreshes every contract (of `year`), in a transaction of its own. The
/// session then has used temporary tables: give it a connection that does not go back to
/// a pool a sync draws from (a sync sets its session's temporary buffers first).
pub async fn generate(
    client: &Client,
    year: Option<i32>,
    catalogue: &Catalogue,
    rules: &Rules,
) -> Result<Generated, ContractsError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(ContractsError::db("starting the generation"))?;
    match generate_in(client, Scope::All { year }, catalogue, rules).await {
        Ok(generated) => {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(ContractsError::db("committing the generation"))?;
            Ok(generated)
        }
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

/// [`refresh`] as the engine's commit hook: the binary gives it to the engine, so that
/// every applied run refreshes its contracts in its own transaction.
pub struct RefreshHook {
    /// The measures catalogue.
    pub catalogue: Catalogue,
    /// The flag rules.
    pub rules: Rules,
}

impl conpere_core::engine::CommitHook for RefreshHook {
    fn before_commit<'a>(
        &'a self,
        client: &'a Client,
        run_id: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let generated = refresh(client, run_id, &self.catalogue, &self.rules)
                .await
                .map_err(|e| format!("refreshing the learning contracts: {e}"))?;
            tracing::info!(
                run_id,
                computed = generated.computed,
                created = generated.created,
                refreshed = generated.refreshed,
                "learning contracts refreshed"
            );
            Ok(())
        })
    }
}

/// Any generation, in the transaction `client` is in (generation uses temporary tables
/// dropped at its end).
async fn generate_in(
    client: &Client,
    scope: Scope,
    catalogue: &Catalogue,
    rules: &Rules,
) -> Result<Generated, ContractsError> {
    let started = Instant::now();
    let run = match scope {
        Scope::Run(run_id) => Some(run_id),
        Scope::All { .. } => None,
    };
    client
        .batch_execute(
            "CREATE TEMP TABLE contract_scope (source_id int, year int, student text COLLATE \"C\") \
             ON COMMIT DROP",
        )
        .await
        .map_err(ContractsError::db("preparing the generation"))?;
    let in_scope = fill_scope(client, scope).await?;
    // A run that touched no student (an unchanged re-sync) takes no lock and reads no
    // structure: its commit stays as quick as before contracts existed.
    if in_scope == 0 {
        client
            .batch_execute("DROP TABLE contract_scope")
            .await
            .map_err(ContractsError::db("finishing the generation"))?;
        return Ok(Generated::default());
    }
    write::lock(client).await?;
    // A block's sort in memory; a block's enrolments are each read once, so memoizing
    // their lookups only costs. (Until the end of the transaction: a refresh ends its
    // run's.)
    client
        .batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL enable_memoize = off")
        .await
        .map_err(ContractsError::db("preparing the generation"))?;
    client
        .batch_execute(SCOPE_REGISTRATION_SQL)
        .await
        .map_err(ContractsError::db("finding the contracts to compute"))?;
    let contracts: i64 = client
        .query_one("SELECT coalesce(max(ord), 0) FROM scope_registration", &[])
        .await
        .map_err(ContractsError::db("finding the contracts to compute"))?
        .get(0);
    let context = Context {
        structure: &Structure::load(client).await?,
        catalogue,
        rules,
        sources: &source_names(client).await?,
    };
    let blocks = Blocks::prepare(client, contracts).await?;
    let mut generated = Generated::default();
    let mut phases = Phases {
        prepared: started.elapsed(),
        ..Phases::default()
    };
    // Three blocks in flight: the next one read and the last one written by PostgreSQL
    // while conpere seals this one.
    let mut rows = blocks.read(client, 0).await?;
    let mut unwritten = Vec::new();
    for first in (0..contracts).step_by(BLOCK as usize) {
        let (read, written, sealed) = futures::join!(
            blocks.read(client, first + BLOCK),
            write::block(client, std::mem::take(&mut unwritten), run),
            async {
                let lap = Instant::now();
                let sealed: Vec<_> = (ContractRows::group(&rows.0, &rows.1).into_iter())
                    .map(|contract| context.seal(contract))
                    .collect();
                phases.sealed += lap.elapsed();
                sealed
            }
        );
        rows = read?;
        generated.add(written?);
        generated.computed += sealed.len() as u64;
        unwritten = sealed;
    }
    generated.add(write::block(client, unwritten, run).await?);
    phases.blocks = started.elapsed() - phases.prepared;
    let lap = Instant::now();
    // The heads staged by the blocks (none: an update of nothing).
    write::update_heads(client, run).await?;
    phases.rewritten = lap.elapsed();
    client
        .batch_execute("DROP TABLE contract_scope, contract_computed, scope_registration")
        .await
        .map_err(ContractsError::db("finishing the generation"))?;
    tracing::debug!(
        contracts,
        prepare_ms = phases.prepared.as_millis() as u64,
        blocks_ms = phases.blocks.as_millis() as u64,
        seal_ms = phases.sealed.as_millis() as u64,
        rewrite_ms = phases.rewritten.as_millis() as u64,
        "contract generation phases"
    );
    Ok(generated)
}

/// Where a generation's time went.
#[derive(Debug, Default)]
struct Phases {
    /// Scope, statistics, structure.
    prepared: Duration,
    /// Reading, sealing and writing the blocks.
    blocks: Duration,
    /// Of which conpere's assembling, serialising and hashing (while PostgreSQL reads
    /// and writes).
    sealed: Duration,
    /// Staged drafts rewritten.
    rewritten: Duration,
}

/// The two queries that read a block of contracts.
struct Blocks {
    registrations: tokio_postgres::Statement,
    enrolments: tokio_postgres::Statement,
    contracts: i64,
}

impl Generated {
    /// Counts a block's writes.
    fn add(&mut self, written: write::Written) {
        self.created += written.created;
        self.refreshed += written.refreshed;
        self.amended += written.amended;
        self.withdrawn += written.withdrawn;
    }
}

impl Blocks {
    async fn prepare(client: &Client, contracts: i64) -> Result<Blocks, ContractsError> {
        let failed = ContractsError::db("computing the contracts");
        Ok(Blocks {
            registrations: client.prepare(REGISTRATIONS_SQL).await.map_err(&failed)?,
            enrolments: client.prepare(ENROLMENTS_SQL).await.map_err(&failed)?,
            contracts,
        })
    }

    /// The registrations and enrolments of the block that starts after contract `first`
    /// (nothing past the last).
    async fn read(
        &self,
        client: &Client,
        first: i64,
    ) -> Result<(Vec<Row>, Vec<Row>), ContractsError> {
        if first >= self.contracts {
            return Ok((Vec::new(), Vec::new()));
        }
        let range: [&(dyn ToSql + Sync); 2] = [&first, &(first + BLOCK)];
        let failed = ContractsError::db("computing the contracts");
        futures::try_join!(
            client.query(&self.registrations, &range),
            client.query(&self.enrolments, &range),
        )
        .map_err(failed)
    }
}

/// Source names by id.
async fn source_names(client: &Client) -> Result<HashMap<i32, String>, ContractsError> {
    let rows = client
        .query("SELECT id, name FROM source", &[])
        .await
        .map_err(ContractsError::db("reading the sources"))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The (source, year, student) in scope.
async fn fill_scope(client: &Client, scope: Scope) -> Result<u64, ContractsError> {
    let fill = |e| ContractsError::db("finding the contracts to compute")(e);
    // The run whose touched students are in scope, when they are (its structure's
    // changes reach more of them).
    let (mut contracts, touched_by) = match scope {
        Scope::All { year } => (
            client
                .execute(
                    "INSERT INTO contract_scope SELECT DISTINCT source_id, year, student \
                     FROM registration WHERE $1::int IS NULL OR year = $1",
                    &[&year],
                )
                .await
                .map_err(fill)?,
            None,
        ),
        Scope::Run(run_id) => {
            let whole_source = client
                .execute(FIRST_OF_SOURCE_SQL, &[&run_id])
                .await
                .map_err(fill)?;
            match whole_source {
                0 => (
                    client
                        .execute(TOUCHED_SQL, &[&run_id])
                        .await
                        .map_err(fill)?,
                    Some(run_id),
                ),
                _ => (whole_source, None),
            }
        }
    };
    let analyzed = contracts >= ANALYZE_FROM;
    if analyzed {
        analyze_sources(client).await?;
    }
    if let Some(run_id) = touched_by {
        contracts += client
            .execute(TOUCHED_THROUGH_STRUCTURE_SQL, &[&run_id])
            .await
            .map_err(fill)?;
        if !analyzed && contracts >= ANALYZE_FROM {
            analyze_sources(client).await?;
        }
    }
    client
        .batch_execute("ANALYZE contract_scope")
        .await
        .map_err(fill)?;
    Ok(contracts)
}

/// Many contracts at once follow a load (a first sync, whose refresh runs in its own
/// transaction, before any autovacuum): without fresh statistics the planner takes the
/// tables for empty and scans them once per contract — or once per node a first load
/// inserted (measured: 80 s at 1M enrolments). A nightly refresh of a few contracts
/// reads tables whose statistics are current: it skips the cost.
async fn analyze_sources(client: &Client) -> Result<(), ContractsError> {
    client
        .batch_execute(
            "ANALYZE registration (source_id, year, student, step), \
             enrolment (source_id, year, student, step, node)",
        )
        .await
        .map_err(ContractsError::db("preparing the generation"))
}

/// Every contract of a run's source while the source has none yet (its first sync, or
/// its first since contracts exist): its registrations hold them all, and reading them
/// costs less than finding a first load's million enrolments in its history (0.25 s) and
/// following its structure (0.13 s). Inserts nothing once the source has a contract.
const FIRST_OF_SOURCE_SQL: &str = "\
WITH run AS (SELECT source_id FROM sync_run WHERE id = $1) \
INSERT INTO contract_scope \
SELECT DISTINCT r.source_id, r.year, r.student FROM registration r JOIN run USING (source_id) \
WHERE NOT EXISTS (SELECT 1 FROM contract k WHERE k.source_id = run.source_id)";

/// The contracts a run touched directly: its registrations and enrolments.
const TOUCHED_SQL: &str = "\
INSERT INTO contract_scope \
SELECT source_id, (coalesce(h.after, h.before)).year, (coalesce(h.after, h.before)).student \
  FROM registration_history h WHERE h.run_id = $1 \
UNION \
SELECT source_id, (coalesce(h.after, h.before)).year, (coalesce(h.after, h.before)).student \
  FROM enrolment_history h WHERE h.run_id = $1";

/// The contracts a run touched through the structure, not already in scope: the
/// enrolments in the nodes and under the edges it changed (a label, a position, a
/// choice's range). A node the run inserted is not followed, nor a new edge to such a
/// node: an enrolment in it is new or changed too (none can refer to a node that was not
/// live: the store keeps no orphan), so its contract is in scope already — and after a
/// first load, following every node or edge would read every enrolment again (measured:
/// 0.65 s of a first load at 1M enrolments).
const TOUCHED_THROUGH_STRUCTURE_SQL: &str = "\
INSERT INTO contract_scope \
(SELECT e.source_id, e.year, e.student FROM node_history h JOIN enrolment e \
  ON e.source_id = h.source_id AND e.year = (coalesce(h.after, h.before)).year \
 AND e.node = (coalesce(h.after, h.before)).node WHERE h.run_id = $1 AND h.op <> 'insert' \
UNION \
SELECT e.source_id, e.year, e.student FROM edge_history h JOIN enrolment e \
  ON e.source_id = h.source_id AND e.year = (coalesce(h.after, h.before)).year \
 AND e.node = (coalesce(h.after, h.before)).child WHERE h.run_id = $1 \
 AND NOT (h.op = 'insert' AND EXISTS (SELECT 1 FROM node_history n \
   WHERE n.run_id = $1 AND n.op = 'insert' AND n.source_id = h.source_id \
     AND (n.after).year = (h.after).year AND (n.after).node = (h.after).child)) \
UNION \
SELECT r.source_id, r.year, r.student FROM edge_history h JOIN registration r \
  ON r.source_id = h.source_id AND r.year = (coalesce(h.after, h.before)).year \
 AND r.step = (coalesce(h.after, h.before)).parent WHERE h.run_id = $1) \
EXCEPT SELECT source_id, year, student FROM contract_scope";

/// The registrations of the contracts in scope, numbered by contract (`ord`, in key
/// order) so that blocks of contracts are read by range; `repeater` when the student had
/// the same step in an earlier year; the stored contract and the hash of its current
/// version, when there is one.
const SCOPE_REGISTRATION_SQL: &str = "\
CREATE TEMP TABLE scope_registration ON COMMIT DROP AS \
SELECT dense_rank() OVER (ORDER BY r.source_id, r.year, r.student) AS ord, \
       r.source_id, r.year, r.student, r.step, r.diploma, r.main, r.regime, r.status, \
       r.deleted_at IS NULL AS present, r.special_statuses, \
       EXISTS (SELECT 1 FROM registration p WHERE p.source_id = r.source_id \
                  AND p.student = r.student AND p.step = r.step AND p.year < r.year \
                  AND p.deleted_at IS NULL) AS repeater, \
       k.id AS contract_id, k.state, k.flags, v.hash, k.version, k.events, k.head_hash, \
       k.in_force, k.amendment_of, v.reason, b.hash AS base_hash, k.measures::text, \
       k.objectives::text \
FROM contract_scope s JOIN registration r USING (source_id, year, student) \
LEFT JOIN contract k USING (source_id, year, student) \
LEFT JOIN contract_version v ON v.contract_id = k.id AND v.version = k.version \
LEFT JOIN contract_version b ON b.contract_id = k.id AND b.version = k.amendment_of; \
CREATE INDEX ON scope_registration (ord, step); \
ANALYZE scope_registration (ord, step, present, source_id, year, student)";

/// A block of contracts' registrations (`ord` in `($1, $2]`), as
/// `ContractRows::group` reads them.
const REGISTRATIONS_SQL: &str = "\
SELECT ord, source_id, year, student, step, diploma, main, regime, status, present, \
       special_statuses, repeater, contract_id, state, flags, hash, version, events, \
       head_hash, in_force, amendment_of, reason, base_hash, measures, objectives \
FROM scope_registration WHERE ord > $1 AND ord <= $2 ORDER BY ord, step";

/// The live enrolments under the present registrations of a block of contracts, in the
/// same order, then by node (`ContractRows::group` puts them in node order again, so
/// that nothing computed depends on this query's order). Ordered by registration only,
/// the query was faster alone in psql (no sort of the block's rows) but slower in the
/// run's transaction (the refresh's blocks 10 % longer, over six bench runs).
const ENROLMENTS_SQL: &str = "\
SELECT r.ord, r.step, e.node, e.via, e.carried_over, e.exempted \
FROM scope_registration r \
JOIN enrolment e ON e.source_id = r.source_id AND e.year = r.year \
 AND e.student = r.student AND e.step = r.step AND e.deleted_at IS NULL \
WHERE r.ord > $1 AND r.ord <= $2 AND r.present \
ORDER BY r.ord, r.step, e.node";
