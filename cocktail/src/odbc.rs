//! Reading a view through ODBC, blocking (run it on a blocking thread): rows fetched in
//! bounded batches into text buffers, each handed over as a [`Row`] whose column names
//! are lower-cased (Oracle answers `STUDENT` for a column created as `student`).
//!
//! Read-only: the only statements sent are `SELECT * FROM <view>` (the view name is a
//! checked identifier, never a value); the account should be read-only too (README).

use crate::drivers;
use conpere_mappings::row::{Location, Row};
use odbc_api::buffers::TextRowSet;
use odbc_api::{Connection, ConnectionOptions, Cursor, Environment, ResultSetMetadata};
use std::sync::Arc;

/// Longest text value read (longer ones fail the read rather than being cut).
const MAX_TEXT: usize = 4096;

/// Rows fetched at a time, at most: the driver's buffer holds `MAX_TEXT` bytes per column
/// per row (about 1 MiB per column at 256 rows), whatever the engine's batch size.
const FETCH_ROWS: usize = 256;

/// What went wrong, with what to do.
pub type OdbcError = String;

/// The process's ODBC environment, through which every connection is opened.
#[derive(Clone, Copy)]
pub struct Database {
    environment: &'static Environment,
}

impl Database {
    /// The ODBC environment: unixODBC's driver manager, built into conpere, which reads
    /// the drivers the system registered (`/etc/odbcinst.ini`, or `$ODBCSYSINI`). One for
    /// the whole process, shared by every source and thread: the driver manager allows
    /// no more (two environments at once race in its unguarded state).
    pub fn new() -> Result<Database, OdbcError> {
        odbc_api::environment()
            .map(|environment| Database { environment })
            .map_err(|e| format!("the ODBC driver manager cannot start: {e}"))
    }

    /// The names of the drivers the system registered (`odbcinst -q -d` lists the same).
    pub fn drivers(&self) -> Result<Vec<String>, OdbcError> {
        let drivers = self
            .environment
            .drivers()
            .map_err(|e| format!("the registered ODBC drivers cannot be listed: {e}"))?;
        Ok(drivers.into_iter().map(|d| d.description).collect())
    }

    /// Connects with `connection_string` (a secret: it is never shown), naming its
    /// driver's library by full path where the system registered it by file name
    /// ([`drivers::with_driver_library`]). When the driver is not installed, the error
    /// says so, and which package provides it.
    pub fn connect(&self, connection_string: &str) -> Result<Connection<'_>, OdbcError> {
        let environment = self.environment;
        let resolved = drivers::with_driver_library(environment, connection_string);
        environment
            .connect_with_connection_string(&resolved, ConnectionOptions::default())
            .map_err(
                |e| match drivers::missing_driver(environment, connection_string) {
                    Some(missing) => missing,
                    None => format!(
                        "cannot connect with the configured connection string: {} (check the \
                         server, the account, and the driver name against `odbcinst -q -d`)",
                        without_secrets(&e.to_string())
                    ),
                },
            )
    }
}

/// Diagnostic text without the connection string (drivers sometimes echo it).
fn without_secrets(message: &str) -> String {
    message
        .split(';')
        .filter(|part| !part.to_ascii_lowercase().contains("pwd="))
        .filter(|part| !part.to_ascii_lowercase().contains("password="))
        .collect::<Vec<_>>()
        .join(";")
}

/// The ODBC connection string (PostgreSQL's driver, `PostgreSQL Unicode`) of the database
/// a libpq key=value `conninfo` names (`host=… port=… user=… dbname=…`; a unix socket
/// directory works as `host`), with `settings` run at connection (e.g.
/// `SET search_path TO conpere,public;`, for views in their own schema). For a site
/// whose SIS database is PostgreSQL, and for the tests on the embedded server.
pub fn postgresql_connection_string(conninfo: &str, settings: Option<&str>) -> String {
    let part = |key: &str| {
        conninfo
            .split_whitespace()
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .trim_matches('\'')
            .to_string()
    };
    let settings = settings
        .map(|s| format!("ConnSettings={s}"))
        .unwrap_or_default();
    format!(
        "Driver={{PostgreSQL Unicode}};Servername={};Port={};Database={};Username={};{settings}",
        part("host"),
        part("port"),
        part("dbname"),
        part("user")
    )
}

/// The column names of `view` (lower-cased), without reading any row.
pub fn columns(connection: &Connection<'_>, view: &str) -> Result<Vec<String>, OdbcError> {
    let query = format!("SELECT * FROM {view} WHERE 1 = 0");
    let failed = |e: odbc_api::Error| format!("{view}: {e}");
    match connection.execute(&query, (), None).map_err(failed)? {
        Some(mut cursor) => names(&mut cursor).map_err(failed),
        None => Ok(Vec::new()),
    }
}

fn names(cursor: &mut impl ResultSetMetadata) -> Result<Vec<String>, odbc_api::Error> {
    cursor
        .column_names()?
        .map(|name| name.map(|n| n.to_lowercase()))
        .collect()
}

/// Reads every row of `view`, `batch` rows at a time (at most 256), calling `each` on
/// each; stops at the first error `each` returns.
pub fn read_view(
    connection: &Connection<'_>,
    view: &str,
    batch: usize,
    mut each: impl FnMut(Row) -> Result<(), OdbcError>,
) -> Result<(), OdbcError> {
    let failed = |e: odbc_api::Error| format!("reading {view}: {e}");
    let query = format!("SELECT * FROM {view}");
    let Some(mut cursor) = connection.execute(&query, (), None).map_err(failed)? else {
        return Ok(());
    };
    let names: Vec<Arc<str>> = names(&mut cursor)
        .map_err(failed)?
        .into_iter()
        .map(Arc::from)
        .collect();
    let buffer = TextRowSet::for_cursor(batch.clamp(1, FETCH_ROWS), &mut cursor, Some(MAX_TEXT))
        .map_err(failed)?;
    let mut rows = cursor.bind_buffer(buffer).map_err(failed)?;
    let file: Arc<str> = Arc::from(view);
    let mut number = 0_u64;
    // A value longer than the buffer is an error, never a silently cut value.
    while let Some(fetched) = rows.fetch_with_truncation_check(true).map_err(failed)? {
        for index in 0..fetched.num_rows() {
            number += 1;
            let row = row(
                fetched,
                index,
                &names,
                Location::new(Arc::clone(&file), number),
            )?;
            each(row)?;
        }
    }
    Ok(())
}

/// One fetched row as a [`Row`]; NULL columns are absent.
fn row(
    fetched: &TextRowSet,
    index: usize,
    names: &[Arc<str>],
    location: Location,
) -> Result<Row, OdbcError> {
    let mut fields = Vec::with_capacity(names.len());
    let mut raw = String::new();
    for (column, name) in names.iter().enumerate() {
        let value = fetched
            .at_as_str(column, index)
            .map_err(|e| format!("{location}: column {name} is not UTF-8 text: {e}"))?;
        if let Some(value) = value {
            let separator = if raw.is_empty() { "" } else { "; " };
            raw.extend([separator, name, "=", value]);
            fields.push((Arc::clone(name), value.to_string()));
        }
    }
    Ok(Row::new(location, fields, raw))
}
