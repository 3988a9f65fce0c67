//! The canonical export (DESIGN.md, "Canonical export"): JSON Lines, one record per line,
//! sorted by type name, then source name, then key (text compared byte-wise), deleted
//! records left out. This format is a user-facing interface: only ever add fields.

use crate::engine::pg_message;
use crate::engine::table::{record_from_row, TableSpec};
use crate::model::{to_export_line, Kind};
use deadpool_postgres::Pool;
use futures::StreamExt;
use std::io::Write;
use tokio_postgres::types::ToSql;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this academic year (students: those with a registration that year).
    pub year: Option<i32>,
}

/// Export failures.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error("export: database error: {0}")]
    Db(String),
    /// Writing the output failed.
    #[error("export: cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row does not fit the model (the store was changed by hand?).
    #[error("export: stored {kind} row does not fit the canonical model: {message}")]
    Corrupt {
        /// Record kind.
        kind: Kind,
        /// What is wrong.
        message: String,
    },
    /// The named source does not exist.
    #[error("export: there is no source named `{0}` in the store")]
    NoSuchSource(String),
}

fn db(e: tokio_postgres::Error) -> ExportError {
    ExportError::Db(pg_message(&e))
}

/// Writes the records matching `filter` to `out`; returns how many lines were written.
/// Rows stream from the server: memory does not grow with the store.
pub async fn export(
    pool: &Pool,
    filter: &ExportFilter,
    out: &mut (dyn Write + Send),
) -> Result<u64, ExportError> {
    let client = pool
        .get()
        .await
        .map_err(|e| ExportError::Db(e.to_string()))?;
    let sources: Vec<(i32, String)> = client
        .query(
            "SELECT id, name FROM source WHERE $1::text IS NULL OR name = $1 ORDER BY name",
            &[&filter.source],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if let (Some(name), true) = (&filter.source, sources.is_empty()) {
        return Err(ExportError::NoSuchSource(name.clone()));
    }
    let mut kinds = Kind::ALL;
    kinds.sort_by_key(|k| k.as_str());
    let mut written = 0;
    for kind in kinds {
        for (source_id, name) in &sources {
            written += export_kind(&client, kind, *source_id, name, filter.year, out).await?;
        }
    }
    out.flush()?;
    Ok(written)
}

fn export_sql(spec: &TableSpec) -> String {
    let year_filter = if spec.has_year() {
        "AND ($2::int IS NULL OR t.year = $2)".to_string()
    } else {
        "AND ($2::int IS NULL OR EXISTS (SELECT 1 FROM registration r WHERE r.source_id = t.source_id \
         AND r.student = t.student AND r.year = $2 AND r.deleted_at IS NULL))"
            .to_string()
    };
    format!(
        "SELECT {cols} FROM {table} t WHERE t.source_id = $1 AND t.deleted_at IS NULL {year_filter} \
         ORDER BY {keys}",
        cols = spec.all_list(Some("t")),
        table = spec.table(),
        keys = spec.key_list(Some("t")),
    )
}

async fn export_kind(
    client: &tokio_postgres::Client,
    kind: Kind,
    source_id: i32,
    source: &str,
    year: Option<i32>,
    out: &mut (dyn Write + Send),
) -> Result<u64, ExportError> {
    let spec = TableSpec::of(kind);
    let params: [&(dyn ToSql + Sync); 2] = [&source_id, &year];
    let rows = client
        .query_raw(&export_sql(spec), params)
        .await
        .map_err(db)?;
    futures::pin_mut!(rows);
    let mut written = 0;
    while let Some(row) = rows.next().await {
        let row = row.map_err(db)?;
        let record = record_from_row(kind, &row)
            .map_err(|message| ExportError::Corrupt { kind, message })?;
        writeln!(out, "{}", to_export_line(source, &record))?;
        written += 1;
    }
    Ok(written)
}
