//! The set-based merge of one kind's stage into its table.
//!
//! One join of the stage with the stored records classifies every difference into a
//! small `delta` table (`insert`, `restore`, `update`, `delete`); unchanged records (same
//! content hash) never leave the join. Each class is then applied with one statement
//! that also writes its history rows (typed `<kind>_record` values: cheap to write).

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

/// Merges the stage of `kind` into its table.
pub(crate) async fn merge_kind(
    client: &Client,
    kind: Kind,
    coverage: &Coverage,
    params: &[&(dyn ToSql + Sync)],
) -> Result<KindMerge, EngineError> {
    let spec = TableSpec::of(kind);
    let mut merge = KindMerge::default();
    let changes = client
        .execute(
            &delta_sql(spec, &covered_sql(coverage, kind, "t")),
            &params[1..],
        )
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    if changes > 0 {
        client
            .batch_execute("ANALYZE delta")
            .await
            .map_err(EngineError::db("comparing with the store"))?;
        let ops = op_counts(client).await?;
        let count = |op: &str| ops.get(op).copied().unwrap_or(0);
        if count("insert") > 0 {
            for (year, _, n) in query(client, &insert_sql(spec), params).await? {
                *merge.inserted.entry(year).or_default() += n;
            }
        }
        let (changed, gone) = (count("update") + count("restore"), count("delete"));
        if count("insert") > 0 && changed + gone > 0 {
            // The table's statistics predate the rows just inserted: planned on them, the
            // update below can take the new rows for a handful and loop over the delta
            // for each (measured: minutes at 300 000 rows instead of a second).
            client
                .batch_execute(&format!("ANALYZE {}", spec.table()))
                .await
                .map_err(EngineError::db("merging"))?;
        }
        if changed > 0 {
            for (year, op, n) in query(client, &update_sql(spec), params).await? {
                match op.as_str() {
                    "restore" => *merge.inserted.entry(year).or_default() += n,
                    _ => merge.updated += n,
                }
            }
        }
        if gone > 0 {
            for (year, _, n) in query(client, &delete_sql(spec), params).await? {
                *merge.deleted.entry(year).or_default() += n;
            }
        }
    }
    client
        .batch_execute("DROP TABLE delta")
        .await
        .map_err(EngineError::db("merging"))?;
    Ok(merge)
}

/// How many delta rows of each operation.
async fn op_counts(client: &Client) -> Result<std::collections::HashMap<String, i64>, EngineError> {
    let rows = client
        .query("SELECT op, count(*) FROM delta GROUP BY op", &[])
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<(Option<i32>, String, u64)>, EngineError> {
    let rows = client
        .query(sql, params)
        .await
        .map_err(EngineError::db("merging"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
        .collect())
}

/// `ROW(alias.col, …)::<kind>_record`: the typed record history stores.
fn record(spec: &TableSpec, alias: &str) -> String {
    format!("ROW({})::{}_record", spec.all_list(Some(alias)), spec.kind)
}

/// The differences between the stage and the stored records, classified.
///
/// A FULL join when the run covers stored records (a full read: stored and absent means
/// deleted), a LEFT join from the stage otherwise (incremental: only what was read).
/// Held-back stage rows (`skip`) match their stored record, so it is neither changed nor
/// taken for absent; a held-back student keeps what belongs to them. Its one parameter is
/// the source id.
fn delta_sql(spec: &TableSpec, covered: &str) -> String {
    let join = if covered == "false" {
        "LEFT JOIN"
    } else {
        "FULL JOIN"
    };
    let keys = spec
        .key
        .iter()
        .map(|c| format!("coalesce(s.\"{n}\", t.\"{n}\") AS \"{n}\"", n = c.name))
        .chain(spec.data.iter().map(|c| format!("s.\"{}\"", c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE TEMP TABLE delta ON COMMIT DROP AS \
         SELECT CASE WHEN s.tombstone IS NULL OR s.tombstone THEN 'delete' \
                     WHEN t.hash IS NULL THEN 'insert' \
                     WHEN t.deleted_at IS NOT NULL THEN 'restore' ELSE 'update' END AS op, \
                {keys}, s.hash, CASE WHEN t.hash IS NULL THEN NULL ELSE {before} END AS before \
         FROM {stage} s {join} (SELECT * FROM {table} WHERE source_id = $1) t ON {m} \
         WHERE (s.tombstone IS NULL AND t.deleted_at IS NULL AND ({covered}){kept}) \
            OR (s.tombstone AND NOT s.skip AND t.hash IS NOT NULL AND t.deleted_at IS NULL) \
            OR (NOT s.tombstone AND NOT s.skip \
                AND (t.hash IS NULL OR t.hash <> s.hash OR t.deleted_at IS NOT NULL))",
        before = record(spec, "t"),
        stage = spec.stage(),
        table = spec.table(),
        m = spec.key_match("s", "t"),
        kept = held_back_student(spec),
    )
}

/// For kinds that belong to a student: not while that student is held back. An adapter
/// that could not read a student rejects the student's key; what belongs to the student
/// (registrations, enrolments, results) is then absent from the read for the same reason,
/// and must be kept as stored, not deleted.
fn held_back_student(spec: &TableSpec) -> String {
    if spec.kind != Kind::Student && spec.key.iter().any(|c| c.name == "student") {
        " AND NOT EXISTS (SELECT 1 FROM stage_student h WHERE h.skip AND h.student = t.student)"
            .to_string()
    } else {
        String::new()
    }
}

fn insert_sql(spec: &TableSpec) -> String {
    let year = spec.year_expr(spec.table());
    format!(
        // History reads the delta itself: RETURNING whole rows would hold a copy of every
        // inserted record until the statement ends.
        "WITH ins AS (INSERT INTO {table} (source_id, {cols}, hash, created_run, changed_run) \
         SELECT $2, {dcols}, d.hash, $1, $1 FROM delta d WHERE d.op = 'insert' RETURNING {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, after) \
               SELECT $1, $2, 'insert', {after} FROM delta d WHERE d.op = 'insert') \
         SELECT year, 'insert', count(*) FROM ins GROUP BY 1",
        table = spec.table(),
        kind = spec.kind,
        cols = spec.all_list(None),
        dcols = spec.all_list(Some("d")),
        after = record(spec, "d"),
        year = year,
    )
}

/// Changed records, and deleted ones that came back (`restore`, an insert in history).
fn update_sql(spec: &TableSpec) -> String {
    let sets = spec
        .data
        .iter()
        .map(|c| format!("\"{n}\" = d.\"{n}\"", n = c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH upd AS (UPDATE {table} t SET {sets}, hash = d.hash, deleted_at = NULL, changed_run = $1 \
         FROM delta d WHERE d.op IN ('update', 'restore') AND t.source_id = $2 AND {m} \
         RETURNING d.op, d.before, {after} AS after, {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, before, after) \
               SELECT $1, $2, CASE op WHEN 'restore' THEN 'insert' ELSE 'update' END, \
               CASE op WHEN 'restore' THEN NULL ELSE before END, after FROM upd) \
         SELECT year, op, count(*) FROM upd GROUP BY 1, 2",
        table = spec.table(),
        kind = spec.kind,
        m = spec.key_match("t", "d"),
        after = record(spec, "t"),
        year = spec.year_expr("t"),
    )
}

/// Soft deletes: absent from a full read, or named by a tombstone.
fn delete_sql(spec: &TableSpec) -> String {
    format!(
        "WITH gone AS (UPDATE {table} t SET deleted_at = now(), changed_run = $1 \
         FROM delta d WHERE d.op = 'delete' AND t.source_id = $2 AND {m} \
         RETURNING d.before, {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, before) \
               SELECT $1, $2, 'delete', before FROM gone) \
         SELECT year, 'delete', count(*) FROM gone GROUP BY 1",
        table = spec.table(),
        kind = spec.kind,
        m = spec.key_match("t", "d"),
        year = spec.year_expr("t"),
    )
}
