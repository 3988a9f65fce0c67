//! The set-based merge of one kind's stage into its table.
//!
//! The stage rows that no live stored record has as they are are classified against the
//! store into a small `delta_<kind>` table (`insert`, `restore`, `update`, `delete`,
//! `stale`), with the stored records a full read lacks (`absent`) when counting cannot
//! rule them out ([`classify`]). Each class is then applied with one statement that also
//! writes its history rows (typed `<kind>_record` values: cheap to write).
//!
//! Inserts and updates go parents first ([`merge_kind`]); deletions go children first,
//! once every kind is merged ([`delete_kind`]), so that a record is deleted only when no
//! live record still refers to it. With the reference checks (a record is written only
//! when what it refers to is staged or kept), the store never holds an orphan.

use super::checks::{check_changed_references, check_staged_references, covered_sql, REFERENCES};
use super::empty_table;
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
    /// Deletions not applied: the read could not vouch for them (a line of this kind
    /// whose key could not be read).
    pub deferred_unread: u64,
    /// Deletions not applied: live records still refer to them.
    pub deferred_referenced: u64,
    /// Records and tombstones not applied: older than the stored version (by the source's
    /// own modification time).
    pub stale: u64,
    /// Nothing was stored: every live staged record was inserted, none is unchanged.
    pub first_load: bool,
    /// Records quarantined by the reference checks run during the merge.
    pub quarantined: u64,
    /// Stage rows stored as they are, when the classification counted them.
    pub unchanged: Option<u64>,
    /// Time spent building the indexes of a table loaded empty.
    pub index_build: std::time::Duration,
    /// Deletions classified, for [`delete_kind`]: records absent from a full read, and
    /// tombstones.
    absent: u64,
    tombstoned: u64,
}

/// The delta table of `kind`.
pub(crate) fn delta(kind: Kind) -> String {
    format!("delta_{kind}")
}

/// Classifies the stage of `kind` (`staged` records) against its table, then applies
/// its inserts and updates; its deletions wait in its delta table for [`delete_kind`].
/// `check_references`: the kind's reference checks wait for this merge, to look at the
/// records it inserts or changes only (on the coverage the read `vouches` for).
/// `stored_live`: the live stored records of the kind, when the run counted them.
pub(crate) async fn merge_kind(
    client: &Client,
    kind: Kind,
    staged: u64,
    coverage: &Coverage,
    check_references: Option<&Coverage>,
    stored_live: Option<u64>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<KindMerge, EngineError> {
    let spec = TableSpec::of(kind);
    let mut merge = KindMerge::default();
    if nothing_stored(client, spec, params[1]).await? {
        // A first load of this kind: every staged record is an insert, no deletion is
        // possible; the classification would copy the whole stage for nothing.
        if let Some(vouched) = check_references {
            merge.quarantined = check_staged_references(client, kind, vouched, params).await?;
        }
        let dropped = empty_table::prepare_load(client, spec, staged).await?;
        let rows = format!("{} d WHERE NOT d.tombstone AND NOT d.skip", spec.stage());
        for (year, _, n) in query(client, &insert_sql(spec, &rows), params).await? {
            *merge.inserted.entry(year).or_default() += n;
        }
        if let Some(dropped) = dropped {
            let started = std::time::Instant::now();
            dropped.build(client).await?;
            merge.index_build = started.elapsed();
        }
        merge.first_load = true;
        return Ok(merge);
    }
    let covered = covered_sql(coverage, kind, "t");
    let (changes, unchanged) = classify(client, spec, &covered, stored_live, &params[1..]).await?;
    merge.unchanged = unchanged;
    if changes == 0 {
        return Ok(merge);
    }
    client
        .batch_execute(&format!("ANALYZE {}", delta(kind)))
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    if let Some(vouched) = check_references {
        merge.quarantined =
            check_changed_references(client, kind, &delta(kind), vouched, params).await?;
    }
    let ops = op_counts(client, kind).await?;
    let count = |op: &str| ops.get(op).copied().unwrap_or(0);
    if count("insert") > 0 {
        let inserts = format!("{} d WHERE d.op = 'insert'", delta(kind));
        for (year, _, n) in query(client, &insert_sql(spec, &inserts), params).await? {
            *merge.inserted.entry(year).or_default() += n;
        }
    }
    merge.absent = count("absent") as u64;
    merge.stale = count("stale") as u64;
    merge.tombstoned = count("delete") as u64;
    let (changed, gone) = (
        count("update") + count("restore"),
        count("absent") + count("delete"),
    );
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
    Ok(merge)
}

/// Applies the deletions of `kind` that [`merge_kind`] classified, children first: those
/// of records absent from a full read all deferred when the read cannot vouch for them
/// (`unvouched`: a line of this kind could not be read with its key), and every one
/// deferred while a live record of another kind refers to it. Adds to `merge`.
pub(crate) async fn delete_kind(
    client: &Client,
    kind: Kind,
    unvouched: bool,
    merge: &mut KindMerge,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), EngineError> {
    let spec = TableSpec::of(kind);
    if unvouched && merge.absent > 0 {
        merge.deferred_unread += merge.absent;
        merge.absent = 0;
        let keep = format!("UPDATE {} SET op = 'keep' WHERE op = 'absent'", delta(kind));
        client
            .execute(&keep, &[])
            .await
            .map_err(EngineError::db("deferring deletions"))?;
    }
    if merge.absent + merge.tombstoned == 0 {
        return Ok(());
    }
    if let Some(referenced) = still_referenced_sql(kind) {
        merge.deferred_referenced += client
            .execute(&referenced, &params[1..])
            .await
            .map_err(EngineError::db("keeping what live records refer to"))?;
    }
    for (year, _, n) in query(client, &delete_sql(spec), params).await? {
        *merge.deleted.entry(year).or_default() += n;
    }
    Ok(())
}

/// Marks `keep` the deletions of `kind` that a live record (after the deletions of the
/// kinds that refer to it) still refers to; `None` when nothing refers to `kind`. Its
/// one parameter is the source id.
fn still_referenced_sql(kind: Kind) -> Option<String> {
    let referrers: Vec<String> = REFERENCES
        .iter()
        .filter(|r| r.parent == kind)
        .map(|r| {
            format!(
                "EXISTS (SELECT 1 FROM {child} c WHERE c.source_id = $1 \
                 AND c.deleted_at IS NULL AND {m})",
                child = TableSpec::of(r.child).table(),
                m = r.matches("d", "c"),
            )
        })
        .collect();
    (!referrers.is_empty()).then(|| {
        format!(
            "UPDATE {delta} d SET op = 'keep' WHERE d.op IN ('absent', 'delete') AND ({any})",
            delta = delta(kind),
            any = referrers.join(" OR "),
        )
    })
}

/// How many delta rows of each operation.
async fn op_counts(
    client: &Client,
    kind: Kind,
) -> Result<std::collections::HashMap<String, i64>, EngineError> {
    let sql = format!("SELECT op, count(*) FROM {} GROUP BY op", delta(kind));
    let rows = client
        .query(&sql, &[])
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

/// Fills the delta table of `spec`'s kind with the differences between its stage and the
/// stored records of the source (its one parameter); returns how many.
///
/// A stage row whose content hash a live stored record has is that record, unchanged
/// (the hash covers the key): for a full read, one anti-join on the hashes alone sets the
/// others apart (new, changed, restored records, and tombstones), which are then
/// classified against the store by key ([`changed_sql`]); an incremental read's stage is
/// classified by key whole. Joining the whole stage with the store by key
/// instead cost 1.0 s at 1M enrolments; this, 0.5 s.
///
/// Stored records absent from a full read (`covered`: which stored rows it covers) are
/// then looked for ([`absent_sql`]), unless counting proves there are none: when the
/// read covers every stored record of the kind, each live one has a stage row if they
/// number the unchanged stage rows plus the changed ones that found a live record (the
/// stage holds each key once outside its held-back rows, which only fail the proof).
/// Returns the delta's rows, and the unchanged stage rows when they were counted.
async fn classify(
    client: &Client,
    spec: &TableSpec,
    covered: &str,
    stored_live: Option<u64>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(u64, Option<u64>), EngineError> {
    let failed = EngineError::db("comparing with the store");
    // An incremental read stages what changed: its rows are joined by key as they are
    // (setting unchanged ones apart first would hash every stored record). A full read's
    // changed rows are set apart first, into a table whose statistics steer the join by
    // key (a handful of rows, probed in the primary key).
    let incremental = covered == "false";
    let rows = match incremental {
        true => format!("(SELECT * FROM {} WHERE NOT skip)", spec.stage()),
        false => {
            let changed = changed_table(spec.kind);
            (client.execute(&changed_rows_sql(spec), params).await).map_err(&failed)?;
            (client.batch_execute(&format!("ANALYZE {changed}")).await).map_err(&failed)?;
            changed
        }
    };
    let mut changes = (client.execute(&changed_sql(spec, &rows), params).await).map_err(&failed)?;
    if !incremental {
        (client.batch_execute(&format!("DROP TABLE {rows}")).await).map_err(&failed)?;
    }
    let counted = match covered {
        "true" => Some(count_read(client, spec, stored_live, params).await?),
        _ => None,
    };
    let absent_possible = match (covered, &counted) {
        ("false", _) => false,
        (_, Some(counted)) => !counted.every_stored_record_read,
        _ => true,
    };
    if absent_possible {
        changes += client
            .execute(&absent_sql(spec, covered), params)
            .await
            .map_err(&failed)?;
    }
    Ok((changes, counted.map(|c| c.unchanged)))
}

/// The temporary table of a kind's stage rows that are not stored as they are.
fn changed_table(kind: Kind) -> String {
    format!("changed_{kind}")
}

/// The stage rows that no live stored record has as they are: those whose content hash
/// none has, and tombstones. Held-back rows (`skip`) are left as stored.
fn changed_rows_sql(spec: &TableSpec) -> String {
    format!(
        "CREATE TEMP TABLE {changed} ON COMMIT DROP AS \
         SELECT * FROM {stage} s WHERE NOT s.skip AND NOT s.tombstone AND NOT EXISTS \
           (SELECT 1 FROM {table} u WHERE u.source_id = $1 AND u.hash = s.hash \
            AND u.deleted_at IS NULL) \
         UNION ALL SELECT * FROM {stage} s WHERE NOT s.skip AND s.tombstone",
        changed = changed_table(spec.kind),
        stage = spec.stage(),
        table = spec.table(),
    )
}

/// The stage rows of `rows` (the changed ones, or all those not held back) classified
/// against the stored records of the same key, into the delta table: `insert`,
/// `restore`, `update`, `delete` (a tombstone of a live record), `stale` (older than the
/// stored version); rows stored as they are, and tombstones of no live record, are left
/// out. `live`: a live stored record has the key; `tombstone`: the row is one. Its one
/// parameter is the source id.
fn changed_sql(spec: &TableSpec, rows: &str) -> String {
    format!(
        "CREATE TEMP TABLE {delta} ON COMMIT DROP AS \
         SELECT CASE WHEN s.modified < t.source_modified THEN 'stale' \
                     WHEN s.tombstone THEN 'delete' \
                     WHEN t.hash IS NULL THEN 'insert' \
                     WHEN t.deleted_at IS NOT NULL THEN 'restore' ELSE 'update' END AS op, \
                {cols}, s.hash, s.modified, \
                CASE WHEN t.hash IS NULL THEN NULL ELSE {before} END AS before, \
                s.tombstone, t.hash IS NOT NULL AND t.deleted_at IS NULL AS live \
         FROM {rows} s LEFT JOIN (SELECT * FROM {table} WHERE source_id = $1) t ON {m} \
         WHERE (s.tombstone AND t.hash IS NOT NULL AND t.deleted_at IS NULL) \
            OR (NOT s.tombstone AND (t.hash IS NULL OR t.hash <> s.hash OR t.deleted_at IS NOT NULL))",
        delta = delta(spec.kind),
        cols = spec.all_list(Some("s")),
        before = record(spec, "t"),
        table = spec.table(),
        m = spec.key_match("s", "t"),
    )
}

/// What counting the stage, the delta and the store tells (see [`classify`]).
struct ReadCounts {
    /// Live stage rows stored as they are: those not in the delta.
    unchanged: u64,
    /// Every live stored record has a stage row: the unchanged rows and the delta's rows
    /// that found a live record are as many as the live stored records.
    every_stored_record_read: bool,
}

/// Counts the live stage rows and the delta's, and the live stored records unless
/// `stored_live` has them.
async fn count_read(
    client: &Client,
    spec: &TableSpec,
    stored_live: Option<u64>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<ReadCounts, EngineError> {
    let (stored, params) = match stored_live {
        Some(rows) => (rows.to_string(), &params[..0]),
        None => (
            format!(
                "(SELECT count(*) FROM {} WHERE source_id = $1 AND deleted_at IS NULL)",
                spec.table()
            ),
            params,
        ),
    };
    let sql = format!(
        "SELECT {stored}::bigint, {staged}, \
                (SELECT count(*) FROM {delta} WHERE NOT tombstone), \
                (SELECT count(*) FROM {delta} WHERE live)",
        staged = spec.live_stage_count(),
        delta = delta(spec.kind),
    );
    let row = client
        .query_one(&sql, params)
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    let [stored, staged, changed, found]: [i64; 4] =
        [row.get(0), row.get(1), row.get(2), row.get(3)];
    Ok(ReadCounts {
        unchanged: (staged - changed) as u64,
        every_stored_record_read: stored == staged - changed + found,
    })
}

/// The live stored records that `covered` (SQL on alias `t`) says the read covers, and
/// that no stage row has the key of, into the delta as `absent`: not an unchanged row
/// (the same content hash), nor a changed one (in the delta), nor a held-back one.
/// Its one parameter is the source id.
fn absent_sql(spec: &TableSpec, covered: &str) -> String {
    format!(
        "INSERT INTO {delta} (op, {keys}, before, tombstone, live) \
         SELECT 'absent', {tkeys}, {before}, NULL, true FROM {table} t \
         WHERE t.source_id = $1 AND t.deleted_at IS NULL AND ({covered}){kept} \
           AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.hash = t.hash \
                           AND NOT s.skip AND NOT s.tombstone) \
           AND NOT EXISTS (SELECT 1 FROM {delta} d WHERE {dm}) \
           AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.skip AND {sm})",
        delta = delta(spec.kind),
        keys = spec.key_list(None),
        tkeys = spec.key_list(Some("t")),
        before = record(spec, "t"),
        table = spec.table(),
        stage = spec.stage(),
        kept = held_back_student(spec),
        dm = spec.key_match("d", "t"),
        sm = spec.key_match("s", "t"),
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

/// Whether the source has no record of this kind at all, not even a deleted one.
async fn nothing_stored(
    client: &Client,
    spec: &TableSpec,
    source_id: &(dyn ToSql + Sync),
) -> Result<bool, EngineError> {
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {} WHERE source_id = $1)",
        spec.table()
    );
    let row = client
        .query_one(&sql, &[source_id])
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    Ok(row.get(0))
}

/// The records of `rows` (`<table> d WHERE …`: the delta's inserts, or a first load's
/// whole stage, which has the same columns) inserted, each with its history row.
fn insert_sql(spec: &TableSpec, rows: &str) -> String {
    let year = spec.year_expr(spec.table());
    format!(
        // History reads the rows itself: RETURNING whole rows would hold a copy of every
        // inserted record until the statement ends.
        "WITH ins AS (INSERT INTO {table} (source_id, {cols}, hash, source_modified, created_run, changed_run) \
         SELECT $2, {dcols}, d.hash, d.modified, $1, $1 FROM {rows} RETURNING {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, after) \
               SELECT $1, $2, 'insert', {after} FROM {rows}) \
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
        "WITH upd AS (UPDATE {table} t SET {sets}, hash = d.hash, source_modified = d.modified, \
                      deleted_at = NULL, changed_run = $1 \
         FROM {delta} d WHERE d.op IN ('update', 'restore') AND t.source_id = $2 AND {m} \
         RETURNING d.op, d.before, {after} AS after, {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, before, after) \
               SELECT $1, $2, CASE op WHEN 'restore' THEN 'insert' ELSE 'update' END, \
               CASE op WHEN 'restore' THEN NULL ELSE before END, after FROM upd) \
         SELECT year, op, count(*) FROM upd GROUP BY 1, 2",
        table = spec.table(),
        delta = delta(spec.kind),
        kind = spec.kind,
        m = spec.key_match("t", "d"),
        after = record(spec, "t"),
        year = spec.year_expr("t"),
    )
}

/// Soft deletes: absent from a full read (`absent`), or named by a tombstone (`delete`).
fn delete_sql(spec: &TableSpec) -> String {
    format!(
        "WITH gone AS (UPDATE {table} t SET deleted_at = now(), source_modified = d.modified, \
                       changed_run = $1 \
         FROM {delta} d WHERE d.op IN ('absent', 'delete') AND t.source_id = $2 AND {m} \
         RETURNING d.before, {year} AS year), \
         h AS (INSERT INTO {kind}_history (run_id, source_id, op, before) \
               SELECT $1, $2, 'delete', before FROM gone) \
         SELECT year, 'delete', count(*) FROM gone GROUP BY 1",
        table = spec.table(),
        delta = delta(spec.kind),
        kind = spec.kind,
        m = spec.key_match("t", "d"),
        year = spec.year_expr("t"),
    )
}
