//! # conpere-tests: the end-to-end test harness
//!
//! Helpers shared by the end-to-end tests: fresh databases on the shared embedded test
//! server ([`TestDatabase`]), generated universities written as canonical files, runs
//! driven through the engine, exports read back. The tests themselves are in
//! `tests/tests/` (engine and connectors, in-process) and `tests/cli/` (the `conpere`
//! binary as a child process; compiled as an integration test of the root package so
//! that Cargo builds the binary first).

use conpere_core::engine::{Batch, Engine, NoProgress, RunReport, RunRequest};
use conpere_core::export::{export, ExportFilter};
use conpere_core::model::{export_order, to_export_line, Item, Record};
use conpere_synth::{SynthConfig, University};
use std::io::Write;
use std::path::Path;

pub use conpere_core::testing::TestDatabase;

pub mod browser;
pub mod cas;
pub mod contract_data;
pub mod oidc;
pub mod smtp;
pub mod web;
pub mod webhook;

/// The records of a generated university, in export order.
pub fn university(seed: u64, students: usize) -> Vec<Record> {
    let mut records: Vec<Record> = University::generate(SynthConfig::new(seed, students))
        .records()
        .collect();
    records.sort_by(export_order);
    records
}

/// `records` as export lines of `source` (what `conpere export` prints for them).
pub fn export_text(source: &str, records: &[Record]) -> String {
    let mut sorted = records.to_vec();
    sorted.sort_by(export_order);
    sorted
        .iter()
        .map(|r| format!("{}\n", to_export_line(source, r)))
        .collect()
}

/// Writes `records` as a canonical file.
pub fn write_canonical(path: &Path, source: &str, records: &[Record]) {
    let mut file = std::fs::File::create(path).expect("create canonical file");
    file.write_all(export_text(source, records).as_bytes())
        .expect("write canonical file");
}

/// Items in batches of `size`.
pub fn batches(items: Vec<Item>, size: usize) -> Vec<Result<Batch, String>> {
    items
        .chunks(size)
        .map(|c| {
            Ok(Batch {
                items: c.to_vec(),
                ..Batch::default()
            })
        })
        .collect()
}

/// One run of `request` over `items`, through the engine.
pub async fn run(db: &TestDatabase, request: RunRequest, items: Vec<Item>) -> RunReport {
    let engine = Engine::new(db.pool.clone());
    let run = engine.start(request).await.expect("start run");
    run.apply(
        futures::stream::iter(batches(items, 700)),
        &NoProgress,
        None,
    )
    .await
    .expect("apply run")
}

/// Records as items.
pub fn items(records: &[Record]) -> Vec<Item> {
    records.iter().cloned().map(Item::Record).collect()
}

/// The export of one source (or all), as text.
pub async fn exported(db: &TestDatabase, source: Option<&str>) -> String {
    let mut out = Vec::new();
    let filter = ExportFilter {
        source: source.map(str::to_string),
        year: None,
    };
    export(&db.pool, &filter, &mut out).await.expect("export");
    String::from_utf8(out).expect("export is UTF-8")
}

/// History rows written by a run.
pub async fn history_rows(db: &TestDatabase, run_id: i64) -> i64 {
    let client = db.pool.get().await.expect("connection");
    client
        .query_one("SELECT count(*) FROM history WHERE run_id = $1", &[&run_id])
        .await
        .expect("count history")
        .get(0)
}

/// The reasons of a run's quarantined rows, in the order they were quarantined.
pub async fn quarantine_reasons(db: &TestDatabase, run_id: i64) -> Vec<String> {
    let client = db.pool.get().await.expect("connection");
    client
        .query(
            "SELECT reason FROM quarantine WHERE run_id = $1 ORDER BY id",
            &[&run_id],
        )
        .await
        .expect("read quarantine")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// One value of a SQL query (tests inspect the store directly).
pub async fn scalar<T>(db: &TestDatabase, sql: &str) -> T
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let client = db.pool.get().await.expect("connection");
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Asserts two exports are equal, reporting sizes and the first difference rather than
/// megabytes of text.
#[track_caller]
pub fn assert_same_export(actual: &str, expected: &str, what: &str) {
    if actual == expected {
        return;
    }
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
    let first = a
        .iter()
        .zip(&e)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(e.len()));
    panic!(
        "{what}: exports differ ({} lines vs {} expected); first difference at line {}:\n  actual:   {}\n  expected: {}",
        a.len(),
        e.len(),
        first + 1,
        a.get(first).unwrap_or(&"(end)"),
        e.get(first).unwrap_or(&"(end)"),
    );
}

/// Records of any source that refer to what the store does not hold live (a registration
/// without its student, an enrolment without its registration or node, an edge without
/// one of its nodes): the store must never hold one.
pub async fn orphans(db: &TestDatabase) -> i64 {
    scalar(
        db,
        "SELECT (SELECT count(*) FROM registration c WHERE c.deleted_at IS NULL AND NOT EXISTS \
           (SELECT 1 FROM student p WHERE p.source_id = c.source_id AND p.student = c.student \
            AND p.deleted_at IS NULL)) \
         + (SELECT count(*) FROM enrolment c WHERE c.deleted_at IS NULL AND (NOT EXISTS \
           (SELECT 1 FROM registration p WHERE p.source_id = c.source_id AND p.year = c.year \
            AND p.student = c.student AND p.step = c.step AND p.deleted_at IS NULL) OR NOT EXISTS \
           (SELECT 1 FROM node p WHERE p.source_id = c.source_id AND p.year = c.year \
            AND p.node = c.node AND p.deleted_at IS NULL))) \
         + (SELECT count(*) FROM edge c WHERE c.deleted_at IS NULL AND (NOT EXISTS \
           (SELECT 1 FROM node p WHERE p.source_id = c.source_id AND p.year = c.year \
            AND p.node = c.parent AND p.deleted_at IS NULL) OR NOT EXISTS \
           (SELECT 1 FROM node p WHERE p.source_id = c.source_id AND p.year = c.year \
            AND p.node = c.child AND p.deleted_at IS NULL)))",
    )
    .await
}
