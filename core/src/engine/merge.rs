//! The set-based merge of one kind's stage into its table, writing one history row per
//! change in the same statement. Unchanged rows (same content hash) are not touched.

use super::checks::covered_sql;
use super::table::TableSpec;
use super::{Coverage, EngineError};
use crate::model::Kind;
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Per-year counts (`None` for year-less kinds).
pub(crate) type PerYear = BTreeMap<Option<i32>, u64>;

/// What merging one kind did.
#[derive(Debug, Default)]
pub(crate) struct KindMerge {
    /// New records, and deleted records that came back.
    pub inserted: PerYear,
    pub updated: u64,
    pub deleted: PerYear,
}

/// Inserts after which a table's statistics are refreshed within the run.
const REANALYZE_AFTER: u64 = 1000;

const HISTORY: &str =
    "INSERT INTO history (run_id, source_id, kind, op, key, student, before, after)";

/// Merges the stage of `kind` into its table.
pub(crate) async fn merge_kind(
    client: &Client,
    kind: Kind,
    coverage: &Coverage,
    params: &[&(dyn ToSql + Sync)],
) -> Result<KindMerge, EngineError> {
    let spec = TableSpec::of(kind);
    let mut merge = KindMerge::default();
    add_per_year(
        &mut merge.inserted,
        &query(client, &insert_sql(spec), params).await?,
    );
    if merge.inserted.values().sum::<u64>() >= REANALYZE_AFTER {
        // The planner still believes the table as small as before this transaction's
        // inserts; with that belief it picks nested loops that are quadratic here.
        client
            .batch_execute(&format!("ANALYZE {}", spec.table()))
            .await
            .map_err(EngineError::db("analyzing"))?;
    }
    for (year, restored, n) in update(client, spec, params).await? {
        if restored {
            *merge.inserted.entry(year).or_default() += n;
        } else {
            merge.updated += n;
        }
    }
    let covered = covered_sql(coverage, kind, "t");
    if covered != "false" {
        add_per_year(
            &mut merge.deleted,
            &query(client, &delete_absent_sql(spec, &covered), params).await?,
        );
    }
    add_per_year(
        &mut merge.deleted,
        &query(client, &tombstone_sql(spec), params).await?,
    );
    Ok(merge)
}

fn add_per_year(into: &mut PerYear, rows: &[(Option<i32>, u64)]) {
    for (year, n) in rows {
        *into.entry(*year).or_default() += n;
    }
}

async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<(Option<i32>, u64)>, EngineError> {
    let rows = client
        .query(sql, params)
        .await
        .map_err(EngineError::db("merging"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, Option<i32>>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

/// The history rows of the changes in CTE `from`, read through `alias`.
fn history_select(
    spec: &TableSpec,
    (from, alias): (&str, &str),
    op: &str,
    before: &str,
    after: &str,
) -> String {
    format!(
        "SELECT $1, $2, '{kind}', {op}, {key}, {student}, {before}, {after} FROM {from} {alias}",
        kind = spec.kind,
        key = spec.key_json(alias),
        student = spec.student_expr(alias),
    )
}

fn insert_sql(spec: &TableSpec) -> String {
    let (table, stage) = (spec.table(), spec.stage());
    format!(
        "WITH ins AS (INSERT INTO {table} (source_id, {cols}, hash, created_run, changed_run) \
         SELECT $2, {scols}, s.hash, $1, $1 FROM {stage} s \
         WHERE NOT s.tombstone AND NOT s.skip \
         AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.source_id = $2 AND {m}) RETURNING *), \
         h AS ({HISTORY} {hist}) \
         SELECT {year}, count(*) FROM ins GROUP BY 1",
        cols = spec.all_list(None),
        scols = spec.all_list(Some("s")),
        m = spec.key_match("t", "s"),
        hist = history_select(
            spec,
            ("ins", "ins"),
            "'insert'",
            "NULL",
            &spec.record_json("ins")
        ),
        year = spec.year_expr("ins"),
    )
}

async fn update(
    client: &Client,
    spec: &TableSpec,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<(Option<i32>, bool, u64)>, EngineError> {
    let (table, stage) = (spec.table(), spec.stage());
    let sets = spec
        .data
        .iter()
        .map(|c| format!("\"{n}\" = c.\"{n}\"", n = c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH changed AS (SELECT s.*, t.deleted_at IS NOT NULL AS restored, {before} AS before \
         FROM {stage} s JOIN {table} t ON t.source_id = $2 AND {m} \
         WHERE NOT s.tombstone AND NOT s.skip AND (t.hash <> s.hash OR t.deleted_at IS NOT NULL)), \
         upd AS (UPDATE {table} t SET {sets}, hash = c.hash, deleted_at = NULL, changed_run = $1 \
         FROM changed c WHERE t.source_id = $2 AND {mc}), \
         h AS ({HISTORY} {hist}) \
         SELECT {year}, c.restored, count(*) FROM changed c GROUP BY 1, 2",
        before = spec.record_json("t"),
        m = spec.key_match("t", "s"),
        mc = spec.key_match("t", "c"),
        hist = history_select(
            spec,
            ("changed", "c"),
            "CASE WHEN c.restored THEN 'insert' ELSE 'update' END",
            "CASE WHEN c.restored THEN NULL ELSE c.before END",
            &spec.record_json("c"),
        ),
        year = spec.year_expr("c"),
    );
    let rows = client
        .query(&sql, params)
        .await
        .map_err(EngineError::db("merging"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
        .collect())
}

fn deletion_tail(spec: &TableSpec) -> String {
    format!(
        "h AS ({HISTORY} {hist}) SELECT {year}, count(*) FROM gone GROUP BY 1",
        hist = history_select(
            spec,
            ("gone", "gone"),
            "'delete'",
            &spec.record_json("gone"),
            "NULL"
        ),
        year = spec.year_expr("gone"),
    )
}

/// Soft-deletes the stored records a full read covers but did not return. Held-back keys
/// (quarantined input) are in the stage, so they are not taken for absent.
fn delete_absent_sql(spec: &TableSpec, covered: &str) -> String {
    format!(
        "WITH gone AS (UPDATE {table} t SET deleted_at = now(), changed_run = $1 \
         WHERE t.source_id = $2 AND t.deleted_at IS NULL AND ({covered}) \
         AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {m} AND NOT s.tombstone) RETURNING t.*), {tail}",
        table = spec.table(),
        stage = spec.stage(),
        m = spec.key_match("s", "t"),
        tail = deletion_tail(spec),
    )
}

/// Soft-deletes the stored records named by tombstones.
fn tombstone_sql(spec: &TableSpec) -> String {
    format!(
        "WITH gone AS (UPDATE {table} t SET deleted_at = now(), changed_run = $1 FROM {stage} s \
         WHERE s.tombstone AND NOT s.skip AND t.source_id = $2 AND {m} AND t.deleted_at IS NULL \
         RETURNING t.*), {tail}",
        table = spec.table(),
        stage = spec.stage(),
        m = spec.key_match("t", "s"),
        tail = deletion_tail(spec),
    )
}
