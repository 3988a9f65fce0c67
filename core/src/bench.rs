//! Helpers of the benchmarks: the floor and the baseline they compare the engine with,
//! and memory.

use crate::copy::{BinaryRows, CopyError, CopyWriter};
use crate::engine::table::{record_values, TableSpec};
use crate::engine::{pg_message, EngineError};
use crate::model::{Kind, Record};
use deadpool_postgres::Pool;
use futures::pin_mut;
use std::collections::BTreeMap;

/// The baseline: `records` loaded with a plain binary COPY into bare tables with the same
/// columns and primary keys as the store's (recreated empty first). Returns the row count.
pub async fn baseline_copy(
    pool: &Pool,
    records: impl Iterator<Item = Record>,
) -> Result<u64, EngineError> {
    let client = pool.get().await?;
    let err = |e: tokio_postgres::Error| EngineError::Db {
        context: "baseline COPY",
        message: pg_message(&e),
    };
    for kind in Kind::ALL {
        let spec = TableSpec::of(kind);
        let cols = spec
            .columns()
            .map(|c| format!("\"{}\" {}", c.name, c.sql))
            .collect::<Vec<_>>()
            .join(", ");
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS baseline_{kind}; \
                 CREATE TABLE baseline_{kind} ({cols}, PRIMARY KEY ({keys}))",
                keys = spec.key_list(None)
            ))
            .await
            .map_err(err)?;
    }
    // One COPY per kind and chunk of 5 000, the engine's batch size: group by kind.
    let mut total = 0;
    let mut pending: BTreeMap<Kind, Vec<Record>> = BTreeMap::new();
    for record in records {
        let kind = record.kind();
        let chunk = pending.entry(kind).or_default();
        chunk.push(record);
        if chunk.len() >= 5_000 {
            total += copy_chunk(&client, kind, &std::mem::take(chunk))
                .await
                .map_err(EngineError::copy("baseline COPY"))?;
        }
    }
    for (kind, chunk) in pending {
        total += copy_chunk(&client, kind, &chunk)
            .await
            .map_err(EngineError::copy("baseline COPY"))?;
    }
    Ok(total)
}

async fn copy_chunk(
    client: &tokio_postgres::Client,
    kind: Kind,
    records: &[Record],
) -> Result<u64, CopyError> {
    let spec = TableSpec::of(kind);
    let statement = format!(
        "COPY baseline_{kind} ({}) FROM STDIN BINARY",
        spec.all_list(None)
    );
    let types: Vec<_> = spec.columns().map(|c| c.ty.clone()).collect();
    let mut writer = CopyWriter::start(client, &statement, &types).await?;
    for record in records {
        writer.write(record_values(record).iter()).await?;
    }
    writer.finish().await
}

/// Peak resident memory of this process so far, in KiB (`VmHWM`; 0 where unknown).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The floor of a sync: the same enrolment rows loaded with a plain binary COPY into a
/// table with the same columns and primary key and nothing else. Its input is written
/// beforehand ([`FloorInput::write`], untimed) so that the floor times the COPY alone:
/// not the generation of the rows, nor their encoding.
pub struct FloorInput {
    file: std::fs::File,
    /// Enrolment rows in the file.
    pub rows: u64,
}

impl FloorInput {
    /// The enrolments of `records` as one binary COPY stream, in `file` (a temporary
    /// file, empty; the rows streamed: memory stays flat).
    pub fn write(
        records: impl Iterator<Item = Record>,
        file: std::fs::File,
    ) -> std::io::Result<FloorInput> {
        use std::io::Write;
        let mut out = &file;
        let spec = TableSpec::of(Kind::Enrolment);
        let types: Vec<_> = spec.columns().map(|c| c.ty.clone()).collect();
        // The engine's own encoding, a chunk at a time.
        let mut encoded = BinaryRows::new(&types);
        let mut rows = 0;
        for record in records.filter(|r| r.kind() == Kind::Enrolment) {
            encoded
                .push(record_values(&record).iter())
                .map_err(std::io::Error::other)?;
            if encoded.chunk_full() {
                out.write_all(&encoded.take())?;
            }
            rows += 1;
        }
        encoded.end();
        out.write_all(&encoded.take())?;
        Ok(FloorInput { file, rows })
    }

    /// The floor: `floor_enrolment` recreated empty, then the file's rows copied into it
    /// in one COPY, committed. Returns the rows copied.
    pub async fn copy(&self, pool: &Pool) -> Result<u64, EngineError> {
        use futures::SinkExt;
        use std::io::{Read, Seek};
        let client = pool.get().await?;
        let err = |e: tokio_postgres::Error| EngineError::Db {
            context: "the floor's COPY",
            message: pg_message(&e),
        };
        let spec = TableSpec::of(Kind::Enrolment);
        let cols = (spec.columns())
            .map(|c| format!("\"{}\" {}", c.name, c.sql))
            .collect::<Vec<_>>()
            .join(", ");
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS floor_enrolment; \
                 CREATE TABLE floor_enrolment ({cols}, PRIMARY KEY ({keys}))",
                keys = spec.key_list(None)
            ))
            .await
            .map_err(err)?;
        let sql = format!(
            "COPY floor_enrolment ({}) FROM STDIN BINARY",
            spec.all_list(None)
        );
        let sink = client.copy_in::<_, bytes::Bytes>(&sql).await.map_err(err)?;
        pin_mut!(sink);
        let input = |e: std::io::Error| EngineError::Db {
            context: "the floor's input",
            message: e.to_string(),
        };
        let mut file = self.file.try_clone().map_err(input)?;
        file.rewind().map_err(input)?;
        let mut chunk = vec![0; 1 << 20];
        loop {
            let read = file.read(&mut chunk).map_err(input)?;
            if read == 0 {
                break;
            }
            let bytes = bytes::Bytes::copy_from_slice(&chunk[..read]);
            sink.as_mut().send(bytes).await.map_err(err)?;
        }
        sink.finish().await.map_err(err)
    }
}
