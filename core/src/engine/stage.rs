//! Staging: every batch goes into per-kind temporary tables with binary COPY, after the
//! model's own checks. Nothing is merged here; the stage is the run's whole snapshot.

use super::fingerprint::{self, Fingerprint};
use super::repeats::Repeats;
use super::table::{
    content_hash, key_hash, key_values, record_key_hash, record_values, TableSpec, Value,
};
use super::{Counts, EngineError, ReadAt};
use crate::copy::CopyWriter;
use crate::model::{Item, Kind, Record, RecordKey, Rejected};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// One staged row, and where it was read.
enum StageRow {
    Record(Record, i64, Origin),
    Tombstone(RecordKey, Origin),
    /// A key whose input was rejected: the stored record is kept as it is.
    HeldBack(RecordKey, Origin),
}

/// Where a staged row was read (a file of `stage_origin`, its id, and a line) and when
/// the source last changed it.
#[derive(Clone, Copy, Default)]
struct Origin {
    file: Option<i32>,
    line: Option<i32>,
    modified: Option<chrono::DateTime<chrono::Utc>>,
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
    /// The files (or other places) items were read from, by their id in `stage_origin`.
    origins: HashMap<String, i32>,
    /// The place of the last item located, and its id.
    last_place: Option<(Arc<str>, i32)>,
    pub total_staged: u64,
    /// The keys that may repeat in the stage, for the duplicate check.
    pub repeats: Repeats,
    /// Each kind's records summed up, to tell a kind read as stored.
    pub fingerprints: fingerprint::Staged,
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
        client
            .batch_execute(
                "CREATE TEMP TABLE stage_origin (id int PRIMARY KEY, name text NOT NULL) \
                 ON COMMIT DROP",
            )
            .await
            .map_err(EngineError::db("creating the stage tables"))?;
        Ok(Stager {
            client,
            run_id,
            source_id,
            record_rejects,
            counts: BTreeMap::new(),
            unknown_quarantined: 0,
            notes: Vec::new(),
            origins: HashMap::new(),
            last_place: None,
            total_staged: 0,
            repeats: Repeats::new(),
            fingerprints: fingerprint::Staged::default(),
        })
    }

    /// Validates and stages one batch, whose items were read at `locations` and last
    /// changed in the source at `modified` (both by index).
    pub async fn stage(
        &mut self,
        items: Vec<Item>,
        locations: Vec<(u32, ReadAt)>,
        modified: Vec<(u32, chrono::DateTime<chrono::Utc>)>,
    ) -> Result<(), EngineError> {
        let mut rows: BTreeMap<Kind, Vec<StageRow>> = BTreeMap::new();
        let mut rejects = Vec::new();
        let mut located = vec![None; items.len()];
        for (index, location) in locations {
            if let Some(slot) = located.get_mut(index as usize) {
                *slot = Some(location);
            }
        }
        let mut dated = vec![None; items.len()];
        for (index, instant) in modified {
            if let Some(slot) = dated.get_mut(index as usize) {
                *slot = Some(instant);
            }
        }
        for ((item, read_at), modified) in items.into_iter().zip(located).zip(dated) {
            let origin = Origin {
                modified,
                ..self.origin(read_at.as_ref()).await?
            };
            // Text only for the items that are quarantined.
            let location = || read_at.as_ref().map(ToString::to_string);
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
                            location: location(),
                            payload: serde_json::to_string(&record).expect("records serialize"),
                        });
                        continue;
                    }
                    // The key was checked just above.
                    match record.validate_content() {
                        Ok(()) => {
                            let hash = content_hash(&record);
                            rows.entry(record.kind())
                                .or_default()
                                .push(StageRow::Record(record, hash, origin));
                        }
                        Err(reason) => {
                            let key = record.key();
                            rows.entry(key.kind)
                                .or_default()
                                .push(StageRow::HeldBack(key.clone(), origin));
                            rejects.push(Rejected {
                                kind: Some(record.kind()),
                                key: Some(key),
                                reason,
                                location: location(),
                                payload: serde_json::to_string(&record).expect("records serialize"),
                            });
                        }
                    }
                }
                Item::Tombstone(key) => match key.problem() {
                    None => rows
                        .entry(key.kind)
                        .or_default()
                        .push(StageRow::Tombstone(key, origin)),
                    Some(reason) => rejects.push(Rejected {
                        kind: Some(key.kind),
                        key: None,
                        reason: format!("a deletion whose key is unusable: {reason}"),
                        location: location(),
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
                            .push(StageRow::HeldBack(key.clone(), origin));
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
        let failed = EngineError::copy("staging (COPY)");
        let mut writer = CopyWriter::start(self.client, &spec.stage_copy(), &spec.stage_types())
            .await
            .map_err(&failed)?;
        let mut values: Vec<Value<'_>> = Vec::with_capacity(16);
        // Summed up here, added to the run's once per batch.
        let (mut records, mut only_records) = (Fingerprint::default(), true);
        for row in rows {
            values.clear();
            let (hash, key, tombstone, skip, origin) = match row {
                StageRow::Record(record, hash, origin) => {
                    records.add(*hash);
                    values.extend(record_values(record));
                    let (year, texts) = record.key_refs();
                    (*hash, key_hash(year, &texts), false, false, origin)
                }
                StageRow::Tombstone(key, origin) => {
                    only_records = false;
                    values.extend(key_values(key));
                    (0, record_key_hash(key), true, false, origin)
                }
                StageRow::HeldBack(key, origin) => {
                    only_records = false;
                    values.extend(key_values(key));
                    (0, record_key_hash(key), false, true, origin)
                }
            };
            self.repeats.stage(kind, key);
            let int = |n: Option<i32>| n.map_or(Value::Null, Value::Int);
            values.extend([
                Value::BigInt(hash),
                Value::BigInt(key),
                Value::Bool(tombstone),
                Value::Bool(skip),
                int(origin.file),
                int(origin.line),
                origin.modified.map_or(Value::Null, Value::Instant),
            ]);
            writer.write(values.iter()).await.map_err(&failed)?;
        }
        writer.finish().await.map_err(&failed)?;
        self.fingerprints.add(kind, records, only_records);
        let counts = self.counts.entry(kind).or_default();
        counts.staged += rows.len() as u64;
        self.total_staged += rows.len() as u64;
        Ok(())
    }

    /// The origin of an item read at `read_at`: its place recorded once in
    /// `stage_origin`. The place of the previous item is tried first: a reader locates
    /// every item of a file with the same place.
    async fn origin(&mut self, read_at: Option<&ReadAt>) -> Result<Origin, EngineError> {
        let Some(read_at) = read_at else {
            return Ok(Origin::default());
        };
        let line = read_at.line.and_then(|line| i32::try_from(line).ok());
        let id = match &self.last_place {
            Some((place, id)) if Arc::ptr_eq(place, &read_at.place) => *id,
            _ => self.place_id(&read_at.place).await?,
        };
        Ok(Origin {
            file: Some(id),
            line,
            modified: None,
        })
    }

    /// The id of `place` in `stage_origin`, recorded there when new.
    async fn place_id(&mut self, place: &Arc<str>) -> Result<i32, EngineError> {
        let id = match self.origins.get(&**place) {
            Some(id) => *id,
            None => {
                let id = i32::try_from(self.origins.len()).unwrap_or(i32::MAX);
                self.client
                    .execute(
                        "INSERT INTO stage_origin (id, name) VALUES ($1, $2)",
                        &[&id, &without_nul(place)],
                    )
                    .await
                    .map_err(EngineError::db("staging"))?;
                self.origins.insert(place.to_string(), id);
                id
            }
        };
        self.last_place = Some((Arc::clone(place), id));
        Ok(id)
    }

    async fn quarantine(&self, rejects: &[Rejected]) -> Result<(), EngineError> {
        let failed = EngineError::copy("writing quarantine");
        let types = [
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut writer = CopyWriter::start(
            self.client,
            "COPY quarantine (run_id, source_id, kind, key, reason, location, payload) \
             FROM STDIN BINARY",
            &types,
        )
        .await
        .map_err(&failed)?;
        for rejected in rejects {
            let kind = rejected.kind.map(|k| k.as_str());
            let key = rejected.key.as_ref().map(key_text);
            let location = rejected.location.as_deref().map(without_nul);
            let row: [&(dyn ToSql + Sync); 7] = [
                &self.run_id,
                &self.source_id,
                &kind,
                &key,
                &without_nul(&rejected.reason),
                &location,
                &without_nul(&rejected.payload),
            ];
            writer.write(row).await.map_err(&failed)?;
        }
        writer.finish().await.map_err(&failed)?;
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
