//! Helpers of the benchmarks: the baseline they compare the engine with, and memory.

use crate::engine::table::{record_values, TableSpec, Value};
use crate::engine::{pg_message, EngineError};
use crate::model::{Kind, Record};
use deadpool_postgres::Pool;
use futures::pin_mut;
use std::collections::BTreeMap;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

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
                .map_err(err)?;
        }
    }
    for (kind, chunk) in pending {
        total += copy_chunk(&client, kind, &chunk).await.map_err(err)?;
    }
    Ok(total)
}

async fn copy_chunk(
    client: &tokio_postgres::Client,
    kind: Kind,
    records: &[Record],
) -> Result<u64, tokio_postgres::Error> {
    let spec = TableSpec::of(kind);
    let sink = client
        .copy_in(&format!(
            "COPY baseline_{kind} ({}) FROM STDIN BINARY",
            spec.all_list(None)
        ))
        .await?;
    let types: Vec<_> = spec.columns().map(|c| c.ty.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for record in records {
        let values: Vec<Value<'_>> = record_values(record);
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
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
