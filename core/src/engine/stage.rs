//! Staging: every batch goes into per-kind temporary tables with binary COPY, after the
//! model's own checks. Nothing is merged here; the stage is the run's whole snapshot.

use super::table::{
    content_hash, key_hash, key_values, record_key_hash, record_values, TableSpec, Value,
};
use super::{Counts, EngineError};
use crate::model::{Item, Kind, Record, RecordKey, Rejected};
use futures::pin_mut;
use std::collections::BTreeMap;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// One staged row.
enum StageRow {
    Record(Record, i64),
    Tombstone(RecordKey),
    /// A key whose input was rejected: the stored record is kept as it is.
    HeldBack(RecordKey),
}

/// Feeds batches into the stage tables of one run.
pub(crate) struct Stager<'c> {
    client: &'c Client,
    run_id: i64,
    source_id: i32,
    /// Whether rejected input is written to quarantine (not when replaying a held run,
    /// whose rejects were quarantined when it was read).
    record_rejects: bool,
    pub counts: BTreeMap<Kind, Counts>,
    /// Rejects whose kind could not be told.
    pub unknown_quarantined: u64,
    /// What the adapter said for the summary ([`Item::Note`]).
    pub notes: Vec<String>,
    pub total_staged: u64,
}

impl<'c> Stager<'c> {
    /// Creates the stage tables (dropped at the end of the transaction).
    pub async fn new(
        client: &'c Client,
        run_id: i64,
        source_id: i32,
        record_rejects: bool,
    ) -> Result<Stager<'c>, EngineError> {
        for kind in Kind::ALL {
            client
                .batch_execute(&TableSpec::of(kind).stage_ddl())
                .await
                .map_err(EngineError::db("creating the stage tables"))?;
        }
        Ok(Stager {
            client,
            run_id,
            source_id,
            record_rejects,
            counts: BTreeMap::new(),
            unknown_quarantined: 0,
            notes: Vec::new(),
            total_staged: 0,
        })
    }

    /// Validates and stages one batch.
    pub async fn stage(&mut self, items: Vec<Item>) -> Result<(), EngineError> {
        let mut rows: BTreeMap<Kind, Vec<StageRow>> = BTreeMap::new();
        let mut rejects = Vec::new();
        for item in items {
            match item {
                Item::Record(mut record) => {
                    record.normalize();
                    if let Err(reason) = record.validate_key() {
                        // No key, no stored version to keep: the engine defers the
                        // deletions of this kind instead (see `Unread`).
                        rejects.push(Rejected {
                            kind: Some(record.kind()),
                            key: None,
                            reason,
                            location: None,
                            payload: serde_json::to_string(&record).expect("records serialize"),
                        });
                        continue;
                    }
                    match record.validate() {
                        Ok(()) => {
                            let hash = content_hash(&record);
                            rows.entry(record.kind())
                                .or_default()
                                .push(StageRow::Record(record, hash));
                        }
                        Err(reason) => {
                            let key = record.key();
                            rows.entry(key.kind)
                                .or_default()
                                .push(StageRow::HeldBack(key.clone()));
                            rejects.push(Rejected {
                                kind: Some(record.kind()),
                                key: Some(key),
                                reason,
                                location: None,
                                payload: serde_json::to_string(&record).expect("records serialize"),
                            });
                        }
                    }
                }
                Item::Tombstone(key) => match key.problem() {
                    None => rows
                        .entry(key.kind)
                        .or_default()
                        .push(StageRow::Tombstone(key)),
                    Some(reason) => rejects.push(Rejected {
                        kind: Some(key.kind),
                        key: None,
                        reason: format!("a deletion whose key is unusable: {reason}"),
                        location: None,
                        payload: key_text(&key),
                    }),
                },
                Item::Note(note) => self.notes.push(note),
                Item::Rejected(mut rejected) => {
                    if rejected.key.as_ref().is_some_and(|k| k.problem().is_some()) {
                        rejected.key = None;
                    }
                    if let Some(key) = &rejected.key {
                        rows.entry(key.kind)
                            .or_default()
                            .push(StageRow::HeldBack(key.clone()));
                    }
                    rejects.push(rejected);
                }
            }
        }
        for (kind, kind_rows) in rows {
            self.copy_kind(kind, &kind_rows).await?;
        }
        if self.record_rejects && !rejects.is_empty() {
            self.quarantine(&rejects).await?;
        }
        for rejected in &rejects {
            match rejected.kind {
                Some(kind) => self.counts.entry(kind).or_default().quarantined += 1,
                None => self.unknown_quarantined += 1,
            }
        }
        Ok(())
    }

    async fn copy_kind(&mut self, kind: Kind, rows: &[StageRow]) -> Result<(), EngineError> {
        let spec = TableSpec::of(kind);
        let sink = self
            .client
            .copy_in(&spec.stage_copy())
            .await
            .map_err(EngineError::db("staging (COPY)"))?;
        let writer = BinaryCopyInWriter::new(sink, &spec.stage_types());
        pin_mut!(writer);
        let mut values: Vec<Value<'_>> = Vec::with_capacity(16);
        for row in rows {
            values.clear();
            let (hash, key, tombstone, skip) = match row {
                StageRow::Record(record, hash) => {
                    values.extend(record_values(record));
                    let (year, texts) = record.key_refs();
                    (*hash, key_hash(year, &texts), false, false)
                }
                StageRow::Tombstone(key) => {
                    values.extend(key_values(key));
                    (0, record_key_hash(key), true, false)
                }
                StageRow::HeldBack(key) => {
                    values.extend(key_values(key));
                    (0, record_key_hash(key), false, true)
                }
            };
            values.extend([
                Value::BigInt(hash),
                Value::BigInt(key),
                Value::Bool(tombstone),
                Value::Bool(skip),
            ]);
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            writer
                .as_mut()
                .write(&refs)
                .await
                .map_err(EngineError::db("staging (COPY)"))?;
        }
        writer
            .finish()
            .await
            .map_err(EngineError::db("staging (COPY)"))?;
        let counts = self.counts.entry(kind).or_default();
        counts.staged += rows.len() as u64;
        self.total_staged += rows.len() as u64;
        Ok(())
    }

    async fn quarantine(&self, rejects: &[Rejected]) -> Result<(), EngineError> {
        let sink = self
            .client
            .copy_in(
                "COPY quarantine (run_id, source_id, kind, key, reason, location, payload) \
                 FROM STDIN BINARY",
            )
            .await
            .map_err(EngineError::db("writing quarantine"))?;
        let types = [
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for rejected in rejects {
            let kind = rejected.kind.map(|k| k.as_str());
            let key = rejected.key.as_ref().map(key_text);
            let location = rejected.location.as_deref().map(without_nul);
            writer
                .as_mut()
                .write(&[
                    &self.run_id,
                    &self.source_id,
                    &kind,
                    &key,
                    &without_nul(&rejected.reason),
                    &location,
                    &without_nul(&rejected.payload),
                ])
                .await
                .map_err(EngineError::db("writing quarantine"))?;
        }
        writer
            .finish()
            .await
            .map_err(EngineError::db("writing quarantine"))?;
        Ok(())
    }
}

/// Text for quarantine, where a NUL character cannot go: shown as `\u0000`.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    match text.contains('\0') {
        true => std::borrow::Cow::Owned(text.replace('\0', "\\u0000")),
        false => std::borrow::Cow::Borrowed(text),
    }
}

/// The same readable form as the SQL `key_text` (`2024 / 21901234 / VET:L2INF/120`).
fn key_text(key: &RecordKey) -> String {
    key.parts
        .iter()
        .map(|p| match p {
            crate::model::KeyPart::Year(y) => y.to_string(),
            crate::model::KeyPart::Text(s) => s.clone(),
        })
        .collect::<Vec<_>>()
        .join(" / ")
}
