//! Contracts made from the synced store.
//!
//! One contract per (source, year, student) that has a registration; one section per
//! registration. The content of each contract is computed by one set-based query over the
//! store for every contract in scope (the students a run touched, or everyone), read
//! through a cursor in blocks; each block's contents are sealed (RFC 8785 text and hash,
//! suggested measures added) and written back with binary COPY, then merged by a few
//! set-based statements. Nothing loops over students with round trips, and a refresh
//! with nothing new changes nothing.
//!
//! A contract is never deleted: a registration cancelled (or gone) in the SIS closes its
//! section, with a reason. While a contract is a draft, a refresh rewrites its draft;
//! later states are left alone (their amendments are the lifecycle's).

use crate::catalogue::Catalogue;
use crate::content;
use crate::rules::Rules;
use crate::ContractsError;
use futures::future::BoxFuture;
use futures::pin_mut;
use serde_json::{json, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// What a generation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Contracts in scope.
    pub computed: u64,
    /// New contracts (version 1, a draft).
    pub created: u64,
    /// Drafts whose content or flags changed.
    pub refreshed: u64,
}

/// Which contracts a generation computes.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Those of the students run `run_id` touched (its history rows).
    Run(i64),
    /// Every contract, or every contract of one year.
    All {
        /// Only this academic year.
        year: Option<i32>,
    },
}

/// Contracts are computed and written this many at a time.
const BLOCK: i64 = 2_000;

/// From this many contracts in scope, the tables read are analyzed first.
const ANALYZE_FROM: u64 = 1_000;

/// Creates or refreshes the contracts of the students run `run_id` touched, on `client`
/// inside the run's transaction.
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

/// Any generation, in the transaction `client` is in (generation uses a cursor and
/// temporary tables dropped at its end).
async fn generate_in(
    client: &Client,
    scope: Scope,
    catalogue: &Catalogue,
    rules: &Rules,
) -> Result<Generated, ContractsError> {
    client
        .batch_execute(
            "CREATE TEMP TABLE contract_scope (source_id int, year int, student text COLLATE \"C\") \
             ON COMMIT DROP; \
             CREATE TEMP TABLE contract_computed (source_id int, year int, student text COLLATE \"C\", \
             flags text[], content text, hash text) ON COMMIT DROP",
        )
        .await
        .map_err(ContractsError::db("preparing the generation"))?;
    let contracts = fill_scope(client, scope).await?;
    // Many contracts at once follow a load (a first sync, whose refresh runs in its own
    // transaction, before any autovacuum): without fresh statistics the planner takes the
    // tables for empty and scans them once per contract. A nightly refresh of a few
    // contracts reads tables whose statistics are current: it skips the cost.
    if contracts >= ANALYZE_FROM {
        client
            .batch_execute("ANALYZE registration, enrolment, node, edge")
            .await
            .map_err(ContractsError::db("preparing the generation"))?;
    }
    let limit = rules.ects_limit;
    client
        .execute(
            &format!("DECLARE contract_rows NO SCROLL CURSOR FOR {CONTENT_SQL}"),
            &[&limit],
        )
        .await
        .map_err(ContractsError::db("computing the contracts"))?;
    let mut generated = Generated::default();
    loop {
        let rows = client
            .query(&format!("FETCH {BLOCK} FROM contract_rows"), &[])
            .await
            .map_err(ContractsError::db("computing the contracts"))?;
        if rows.is_empty() {
            break;
        }
        generated.computed += rows.len() as u64;
        let sealed: Vec<Sealed> = rows.iter().map(|row| seal(row, catalogue, rules)).collect();
        write_block(client, &sealed).await?;
    }
    client
        .batch_execute("CLOSE contract_rows")
        .await
        .map_err(ContractsError::db("computing the contracts"))?;
    let run = match scope {
        Scope::Run(run_id) => Some(run_id),
        Scope::All { .. } => None,
    };
    let (created, refreshed) = merge(client, run).await?;
    generated.created = created;
    generated.refreshed = refreshed;
    client
        .batch_execute("DROP TABLE contract_scope, contract_computed")
        .await
        .map_err(ContractsError::db("finishing the generation"))?;
    Ok(generated)
}

/// The (source, year, student) in scope.
async fn fill_scope(client: &Client, scope: Scope) -> Result<u64, ContractsError> {
    let fill = |e| ContractsError::db("finding the contracts to compute")(e);
    let contracts = match scope {
        Scope::All { year } => client
            .execute(
                "INSERT INTO contract_scope SELECT DISTINCT source_id, year, student \
                 FROM registration WHERE $1::int IS NULL OR year = $1",
                &[&year],
            )
            .await
            .map_err(fill)?,
        Scope::Run(run_id) => client
            .execute(TOUCHED_SQL, &[&run_id])
            .await
            .map_err(fill)?,
    };
    client
        .batch_execute("ANALYZE contract_scope")
        .await
        .map_err(fill)?;
    Ok(contracts)
}

/// The contracts a run touched: its registrations and enrolments, and the enrolments in
/// the nodes and under the edges it changed (a label, a position, a choice's range).
const TOUCHED_SQL: &str = "\
INSERT INTO contract_scope \
SELECT source_id, (coalesce(h.after, h.before)).year, (coalesce(h.after, h.before)).student \
  FROM registration_history h WHERE h.run_id = $1 \
UNION \
SELECT source_id, (coalesce(h.after, h.before)).year, (coalesce(h.after, h.before)).student \
  FROM enrolment_history h WHERE h.run_id = $1 \
UNION \
SELECT e.source_id, e.year, e.student FROM node_history h JOIN enrolment e \
  ON e.source_id = h.source_id AND e.year = (coalesce(h.after, h.before)).year \
 AND e.node = (coalesce(h.after, h.before)).node WHERE h.run_id = $1 \
UNION \
SELECT e.source_id, e.year, e.student FROM edge_history h JOIN enrolment e \
  ON e.source_id = h.source_id AND e.year = (coalesce(h.after, h.before)).year \
 AND e.node = (coalesce(h.after, h.before)).child WHERE h.run_id = $1 \
UNION \
SELECT r.source_id, r.year, r.student FROM edge_history h JOIN registration r \
  ON r.source_id = h.source_id AND r.year = (coalesce(h.after, h.before)).year \
 AND r.step = (coalesce(h.after, h.before)).parent WHERE h.run_id = $1";

/// One row per contract in scope: its sections (registration, path, ECTS per period),
/// special statuses and flags. `$1` is the ECTS limit of a period.
const CONTENT_SQL: &str = "\
SELECT s.source_id, s.year, s.student, src.name AS source, sec.sections, st.statuses, \
  array_remove(ARRAY[ \
    CASE WHEN cardinality(st.statuses) > 0 THEN 'special_status' END, \
    CASE WHEN sec.open_count >= 2 THEN 'double_registration' END, \
    CASE WHEN EXISTS (SELECT 1 FROM registration p JOIN registration r \
           ON r.source_id = p.source_id AND r.student = p.student AND r.step = p.step \
         WHERE r.source_id = s.source_id AND r.year = s.year AND r.student = s.student \
           AND r.deleted_at IS NULL AND r.status <> 'cancelled' \
           AND p.year < s.year AND p.deleted_at IS NULL) THEN 'repeater' END, \
    CASE WHEN EXISTS (SELECT 1 FROM enrolment e WHERE e.source_id = s.source_id \
           AND e.year = s.year AND e.student = s.student AND e.deleted_at IS NULL \
           AND e.carried_over) THEN 'carried_over' END, \
    CASE WHEN EXISTS (SELECT 1 FROM registration r WHERE r.source_id = s.source_id \
           AND r.year = s.year AND r.student = s.student AND r.deleted_at IS NULL \
           AND r.status = 'active' AND NOT EXISTS (SELECT 1 FROM enrolment e \
             WHERE e.source_id = r.source_id AND e.year = r.year AND e.student = r.student \
               AND e.step = r.step AND e.deleted_at IS NULL)) \
         THEN 'missing_pedagogical_registration' END, \
    CASE WHEN EXISTS (SELECT 1 FROM registration r JOIN edge c \
           ON c.source_id = r.source_id AND c.year = r.year AND c.parent = r.step \
          AND c.deleted_at IS NULL AND (c.min IS NOT NULL OR c.max IS NOT NULL) \
         WHERE r.source_id = s.source_id AND r.year = s.year AND r.student = s.student \
           AND r.deleted_at IS NULL AND r.status <> 'cancelled' \
           AND EXISTS (SELECT 1 FROM enrolment f WHERE f.source_id = r.source_id \
                  AND f.year = r.year AND f.student = r.student AND f.step = r.step \
                  AND f.deleted_at IS NULL) \
           AND (SELECT count(*) FROM enrolment e WHERE e.source_id = r.source_id \
                  AND e.year = r.year AND e.student = r.student AND e.step = r.step \
                  AND e.via = c.child AND e.deleted_at IS NULL) \
               NOT BETWEEN coalesce(c.min, 0) AND coalesce(c.max, 2147483647)) \
         THEN 'choice_rule' END, \
    CASE WHEN sec.max_period_ects > $1 THEN 'ects_over_limit' END \
  ], NULL) AS flags \
FROM contract_scope s \
JOIN source src ON src.id = s.source_id \
CROSS JOIN LATERAL ( \
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x) FILTER (WHERE x IS NOT NULL), '{}') AS statuses \
  FROM registration r LEFT JOIN LATERAL unnest(r.special_statuses) x ON true \
  WHERE r.source_id = s.source_id AND r.year = s.year AND r.student = s.student \
    AND r.deleted_at IS NULL AND r.status <> 'cancelled' \
) st \
CROSS JOIN LATERAL ( \
  SELECT coalesce(jsonb_agg(jsonb_build_object( \
           'step', r.step, 'diploma', r.diploma, 'main', r.main, 'regime', r.regime, \
           'status', CASE WHEN r.deleted_at IS NULL AND r.status <> 'cancelled' \
                          THEN 'open' ELSE 'closed' END, \
           'closed_reason', CASE WHEN r.deleted_at IS NOT NULL \
                                   THEN 'the registration is no longer in the SIS' \
                                 WHEN r.status = 'cancelled' \
                                   THEN 'the registration was cancelled in the SIS' END, \
           'path', p.path, 'ects_per_period', pe.ects) \
           ORDER BY r.main DESC, r.step), '[]') AS sections, \
         count(*) FILTER (WHERE r.deleted_at IS NULL AND r.status <> 'cancelled') AS open_count, \
         coalesce(max(pe.max_ects) FILTER (WHERE r.deleted_at IS NULL AND r.status <> 'cancelled'), 0) \
           AS max_period_ects \
  FROM registration r \
  CROSS JOIN LATERAL ( \
    SELECT coalesce(jsonb_object_agg(t.period, t.ects) FILTER (WHERE t.period IS NOT NULL), \
                    '{}') AS ects, \
           max(t.ects) FILTER (WHERE t.period IS NOT NULL) AS max_ects \
    FROM ( \
      SELECT coalesce(n2.period, pp.period) AS period, sum(n2.ects) AS ects \
      FROM enrolment e2 JOIN node n2 ON n2.source_id = e2.source_id AND n2.year = e2.year \
       AND n2.node = e2.node AND n2.deleted_at IS NULL AND n2.kind = 'unit' \
       AND n2.ects IS NOT NULL \
      LEFT JOIN LATERAL ( \
        SELECT np.period FROM edge ed JOIN node np ON np.source_id = ed.source_id \
           AND np.year = ed.year AND np.node = ed.parent AND np.deleted_at IS NULL \
        WHERE ed.source_id = e2.source_id AND ed.year = e2.year AND ed.child = e2.node \
          AND ed.deleted_at IS NULL AND np.period IS NOT NULL \
        ORDER BY ed.parent LIMIT 1) pp ON true \
      WHERE e2.source_id = r.source_id AND e2.year = r.year AND e2.student = r.student \
        AND e2.step = r.step AND e2.deleted_at IS NULL AND r.deleted_at IS NULL \
      GROUP BY 1) t \
  ) pe \
  CROSS JOIN LATERAL ( \
    SELECT coalesce(jsonb_agg(jsonb_build_object( \
             'node', e.node, 'parent', par.parent, 'label', coalesce(n.label, e.node), \
             'kind', n.kind, 'ects', n.ects, 'period', n.period, 'via', e.via, \
             'carried_over', e.carried_over, 'exempted', e.exempted) \
             ORDER BY par.position NULLS LAST, e.node), '[]') AS path \
    FROM enrolment e \
    LEFT JOIN node n ON n.source_id = e.source_id AND n.year = e.year AND n.node = e.node \
     AND n.deleted_at IS NULL \
    LEFT JOIN LATERAL ( \
      SELECT ed.parent, ed.position FROM edge ed \
      WHERE ed.source_id = e.source_id AND ed.year = e.year AND ed.child = e.node \
        AND ed.deleted_at IS NULL \
      ORDER BY (ed.parent = e.via) DESC NULLS LAST, \
               EXISTS (SELECT 1 FROM enrolment f WHERE f.source_id = e.source_id \
                 AND f.year = e.year AND f.student = e.student AND f.step = e.step \
                 AND f.node = ed.parent AND f.deleted_at IS NULL) DESC, \
               (ed.parent = e.step) DESC, ed.parent \
      LIMIT 1) par ON true \
    WHERE e.source_id = r.source_id AND e.year = r.year AND e.student = r.student \
      AND e.step = r.step AND e.deleted_at IS NULL AND r.deleted_at IS NULL \
  ) p \
  WHERE r.source_id = s.source_id AND r.year = s.year AND r.student = s.student \
) sec \
ORDER BY s.source_id, s.year, s.student";

/// A contract computed and sealed.
struct Sealed {
    source_id: i32,
    year: i32,
    student: String,
    flags: Vec<String>,
    content: String,
    hash: String,
}

/// The content of one computed row, with the measures the catalogue suggests for its
/// statuses, sealed.
fn seal(row: &tokio_postgres::Row, catalogue: &Catalogue, rules: &Rules) -> Sealed {
    let (source_id, year, student): (i32, i32, String) = (row.get(0), row.get(1), row.get(2));
    let source: String = row.get(3);
    let sections: Value = row.get(4);
    let statuses: Vec<String> = row.get(5);
    let flags: Vec<String> = row.get(6);
    let measures: Vec<Value> = (catalogue.suggested(&statuses).iter())
        .map(|m| {
            json!({
                "code": m.code,
                "label": m.label_fr,
                "details": null,
                "proposed_by": "rule:special_status",
            })
        })
        .collect();
    let content = json!({
        "contract": { "source": source, "year": year, "student": student },
        "sections": sections,
        "special_statuses": statuses,
        "measures": measures,
        "objectives": [],
    });
    let (content, hash) = content::sealed(&content);
    Sealed {
        source_id,
        year,
        student,
        flags: flags
            .into_iter()
            .filter(|flag| rules.flags.contains(flag))
            .collect(),
        content,
        hash,
    }
}

/// COPYs a block of sealed contracts into `contract_computed`.
async fn write_block(client: &Client, block: &[Sealed]) -> Result<(), ContractsError> {
    let copy = client
        .copy_in(
            "COPY contract_computed (source_id, year, student, flags, content, hash) \
             FROM STDIN BINARY",
        )
        .await
        .map_err(ContractsError::db("writing the contracts"))?;
    let types = [
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::TEXT_ARRAY,
        Type::TEXT,
        Type::TEXT,
    ];
    let writer = BinaryCopyInWriter::new(copy, &types);
    pin_mut!(writer);
    for sealed in block {
        let values: [&(dyn ToSql + Sync); 6] = [
            &sealed.source_id,
            &sealed.year,
            &sealed.student,
            &sealed.flags,
            &sealed.content,
            &sealed.hash,
        ];
        writer
            .as_mut()
            .write(&values)
            .await
            .map_err(ContractsError::db("writing the contracts"))?;
    }
    writer
        .finish()
        .await
        .map_err(ContractsError::db("writing the contracts"))?;
    Ok(())
}

/// New contracts get version 1; drafts whose content or flags changed are rewritten.
/// Returns (created, refreshed).
async fn merge(client: &Client, run: Option<i64>) -> Result<(u64, u64), ContractsError> {
    let failed = ContractsError::db("merging the contracts");
    let created = client
        .execute(
            "WITH new AS (INSERT INTO contract (source_id, year, student, flags, refreshed_run) \
               SELECT c.source_id, c.year, c.student, c.flags, $1 FROM contract_computed c \
               ON CONFLICT (source_id, year, student) DO NOTHING \
               RETURNING id, source_id, year, student) \
             INSERT INTO contract_version (contract_id, version, hash, content) \
             SELECT new.id, 1, c.hash, c.content FROM new JOIN contract_computed c \
               ON c.source_id = new.source_id AND c.year = new.year AND c.student = new.student",
            &[&run],
        )
        .await
        .map_err(&failed)?;
    let refreshed = client
        .query_one(
            "WITH changed AS ( \
               UPDATE contract_version v SET hash = c.hash, content = c.content, \
                      created_at = now() \
               FROM contract k JOIN contract_computed c ON c.source_id = k.source_id \
                 AND c.year = k.year AND c.student = k.student \
               WHERE v.contract_id = k.id AND v.version = k.version AND k.state = 'draft' \
                 AND v.hash <> c.hash \
               RETURNING k.id), \
             flagged AS ( \
               UPDATE contract k SET flags = c.flags, updated_at = now(), refreshed_run = $1 \
               FROM contract_computed c WHERE c.source_id = k.source_id AND c.year = k.year \
                 AND c.student = k.student AND k.state = 'draft' \
                 AND (k.flags <> c.flags OR k.id IN (SELECT id FROM changed)) \
               RETURNING k.id) \
             SELECT count(*) FROM (SELECT id FROM changed UNION SELECT id FROM flagged) x",
            &[&run],
        )
        .await
        .map_err(&failed)?
        .get::<_, i64>(0) as u64;
    Ok((created, refreshed))
}
