//! The conformance kit every adapter crate runs on itself (modelled on Airbyte's
//! acceptance tests): the spec is sound, `check` passes on a working configuration and
//! fails on broken ones, `discover` declares something readable, two full reads give the
//! same records, and an incremental read from the cursor of a full read gives nothing new
//! (but the kinds it reads whole, unchanged).
//!
//! ```no_run
//! # async fn t(valid: conpere_connectors::SourceConfig, broken: conpere_connectors::SourceConfig) {
//! use conpere_connectors::{canonical::CanonicalFactory, conformance::Conformance};
//! let report = Conformance { factory: &CanonicalFactory::new(), valid, broken: vec![broken] }
//!     .run()
//!     .await
//!     .unwrap_or_else(|failure| panic!("{failure}"));
//! assert!(report.records > 0);
//! # }
//! ```

use crate::config::SourceConfig;
use crate::connector::ConnectorFactory;
use crate::connector::{Connector, ConnectorError, ReadRequest};
use conpere_model::Mode;
use conpere_model::{export_order, Item, Record};
use futures::StreamExt;

/// One conformance run.
pub struct Conformance<'a> {
    /// The adapter's factory.
    pub factory: &'a dyn ConnectorFactory,
    /// A configuration that works (its source is reachable and has data).
    pub valid: SourceConfig,
    /// Configurations that must fail `build` or `check` (wrong URL, wrong password…).
    pub broken: Vec<SourceConfig>,
}

/// What a passing run saw.
#[derive(Debug, Clone)]
pub struct ConformanceReport {
    /// Records of one full read.
    pub records: usize,
    /// The checks that passed, in words.
    pub passed: Vec<String>,
}

/// Reads everything `request` yields: the items and the last cursor.
pub async fn read_all(
    connector: &dyn Connector,
    request: ReadRequest,
) -> Result<(Vec<Item>, Option<serde_json::Value>), ConnectorError> {
    let mut stream = connector.read(request).await?;
    let mut items = Vec::new();
    let mut cursor = None;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        items.extend(batch.items);
        if batch.cursor.is_some() {
            cursor = batch.cursor;
        }
    }
    Ok((items, cursor))
}

fn full(cursor: Option<serde_json::Value>) -> ReadRequest {
    ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor,
        batch_size: 1000,
    }
}

fn sorted_records(items: &[Item]) -> Vec<Record> {
    let mut records: Vec<Record> = items
        .iter()
        .filter_map(|i| match i {
            Item::Record(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    records.sort_by(export_order);
    records
}

impl Conformance<'_> {
    /// Runs every check; the error names the first that failed.
    pub async fn run(&self) -> Result<ConformanceReport, String> {
        let mut passed = Vec::new();
        let spec = self.factory.spec();
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(format!("spec of `{}`: {}", spec.kind, problems.join("; ")));
        }
        passed.push("spec is sound".to_string());

        let connector = self
            .factory
            .build(&self.valid)
            .map_err(|e| format!("build with the valid configuration failed: {e}"))?;
        connector
            .check()
            .await
            .map_err(|e| format!("check with the valid configuration failed: {e}"))?;
        passed.push("check passes on a valid configuration".to_string());

        for broken in &self.broken {
            let outcome = match self.factory.build(broken) {
                Err(e) => Err(e.to_string()),
                Ok(c) => c.check().await.map(|_| ()).map_err(|e| e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    return Err(format!(
                        "check passed on a broken configuration: {broken:?}"
                    ))
                }
                Err(message) if message.trim().is_empty() => {
                    return Err("a broken configuration failed with an empty message".into())
                }
                Err(_) => {}
            }
        }
        passed.push(format!(
            "check fails on {} broken configuration(s)",
            self.broken.len()
        ));

        let capabilities = connector
            .discover()
            .await
            .map_err(|e| format!("discover failed: {e}"))?;
        if capabilities.kinds.is_empty() || !(capabilities.full || capabilities.incremental) {
            return Err(format!(
                "discover declares nothing readable: {capabilities:?}"
            ));
        }
        if let Some(kind) = capabilities
            .snapshot_kinds
            .iter()
            .find(|kind| !capabilities.kinds.contains(kind))
        {
            return Err(format!(
                "discover declares `{kind}` as read whole but not as read at all: {capabilities:?}"
            ));
        }
        passed.push("discover declares what it reads".to_string());

        let (first, cursor) = read_all(connector.as_ref(), full(None))
            .await
            .map_err(|e| format!("full read failed: {e}"))?;
        let (second, _) = read_all(connector.as_ref(), full(None))
            .await
            .map_err(|e| format!("second full read failed: {e}"))?;
        let records = sorted_records(&first);
        if records.is_empty() {
            return Err("a full read returned no record; give the kit a source with data".into());
        }
        if let Some(invalid) = records.iter().find_map(|r| r.validate().err()) {
            return Err(format!("a record read does not validate: {invalid}"));
        }
        if records != sorted_records(&second) {
            return Err("two full reads returned different records".into());
        }
        passed.push(format!(
            "two full reads return the same {} records",
            records.len()
        ));

        if capabilities.incremental {
            let (changes, _) = read_all(
                connector.as_ref(),
                ReadRequest {
                    mode: Mode::Incremental,
                    ..full(cursor)
                },
            )
            .await
            .map_err(|e| format!("incremental read failed: {e}"))?;
            // Kinds without a change feed come whole: exactly as the full read gave them.
            let snapshot = |r: &Record| capabilities.snapshot_kinds.contains(&r.kind());
            let (whole, news): (Vec<Record>, Vec<Record>) =
                sorted_records(&changes).into_iter().partition(snapshot);
            let tombstones = changes
                .iter()
                .filter(|i| matches!(i, Item::Tombstone(_)))
                .count();
            if !news.is_empty() || tombstones > 0 {
                return Err(format!(
                    "an incremental read from the cursor of a full read returned {} records \
                     and {tombstones} tombstones",
                    news.len()
                ));
            }
            let expected: Vec<Record> = records.iter().filter(|r| snapshot(r)).cloned().collect();
            if whole != expected {
                return Err(format!(
                    "an incremental read returned {} records of the kinds it reads whole, \
                     the full read {}",
                    whole.len(),
                    expected.len()
                ));
            }
            passed.push("incremental read from the latest cursor returns nothing new".to_string());
        }
        Ok(ConformanceReport {
            records: records.len(),
            passed,
        })
    }
}
