//! Sealed contracts into the store: new contracts written once, by binary COPY straight
//! into `contract` and `contract_version`; drafts whose content or flags changed staged
//! and rewritten by one statement at the end; the rest untouched.
//!
//! A generation holds `contract` in SHARE ROW EXCLUSIVE mode from its start (see
//! [`lock`]), so the contracts it finds missing are still missing when it writes them.

use super::assemble::{Current, Sealed};
use crate::ContractsError;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// Serialises generations (and the refreshes of concurrent syncs) with one another, and
/// with the lifecycle's writes; readers are not blocked.
pub(crate) async fn lock(client: &Client) -> Result<(), ContractsError> {
    client
        .batch_execute(
            "LOCK TABLE contract IN SHARE ROW EXCLUSIVE MODE; \
             CREATE TEMP TABLE contract_computed (contract_id bigint, flags text[], \
             content text, hash text) ON COMMIT DROP",
        )
        .await
        .map_err(ContractsError::db("preparing the generation"))
}

/// What became of a block.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub created: u64,
    pub staged: u64,
}

/// Writes a block: new contracts at once, changed drafts staged.
pub(crate) async fn block(
    client: &Client,
    block: Vec<(Option<Current>, Sealed)>,
    run: Option<i64>,
) -> Result<Written, ContractsError> {
    let mut new = Vec::new();
    let mut changed = Vec::new();
    for (current, sealed) in block {
        match current {
            None => new.push(sealed),
            Some(c) if c.state == "draft" && (c.hash != sealed.hash || c.flags != sealed.flags) => {
                changed.push((c.id, sealed))
            }
            Some(_) => {}
        }
    }
    if new.is_empty() && changed.is_empty() {
        return Ok(Written::default());
    }
    let written = Written {
        created: new.len() as u64,
        staged: changed.len() as u64,
    };
    if !new.is_empty() {
        create(client, &new, run).await?;
    }
    if !changed.is_empty() {
        stage(client, &changed).await?;
    }
    Ok(written)
}

/// New contracts: ids from the sequence, then the contract rows and their version 1.
async fn create(client: &Client, new: &[Sealed], run: Option<i64>) -> Result<(), ContractsError> {
    let failed = ContractsError::db("writing the new contracts");
    let ids: Vec<i64> = client
        .query(
            "SELECT nextval(pg_get_serial_sequence('contract', 'id')) \
             FROM generate_series(1, $1::int)",
            &[&(new.len() as i32)],
        )
        .await
        .map_err(&failed)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    copy(
        client,
        "COPY contract (id, source_id, year, student, flags, refreshed_run) FROM STDIN BINARY",
        &[
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::INT8,
        ],
        (ids.iter().zip(new)).map(|(id, c)| -> [&(dyn ToSql + Sync); 6] {
            [id, &c.source_id, &c.year, &c.student, &c.flags, &run]
        }),
    )
    .await?;
    copy(
        client,
        "COPY contract_version (contract_id, version, hash, content) FROM STDIN BINARY",
        &[Type::INT8, Type::INT4, Type::TEXT, Type::TEXT],
        (ids.iter().zip(new))
            .map(|(id, c)| -> [&(dyn ToSql + Sync); 4] { [id, &1i32, &c.hash, &c.content] }),
    )
    .await
}

/// Drafts to rewrite, into `contract_computed`.
async fn stage(client: &Client, changed: &[(i64, Sealed)]) -> Result<(), ContractsError> {
    copy(
        client,
        "COPY contract_computed (contract_id, flags, content, hash) FROM STDIN BINARY",
        &[Type::INT8, Type::TEXT_ARRAY, Type::TEXT, Type::TEXT],
        changed
            .iter()
            .map(|(id, c)| -> [&(dyn ToSql + Sync); 4] { [id, &c.flags, &c.content, &c.hash] }),
    )
    .await
}

/// Rewrites the staged drafts: their current version's content and hash, their flags.
pub(crate) async fn rewrite_drafts(
    client: &Client,
    run: Option<i64>,
) -> Result<(), ContractsError> {
    client
        .execute(
            "WITH versions AS ( \
               UPDATE contract_version v SET hash = c.hash, content = c.content, \
                      created_at = now() \
               FROM contract k JOIN contract_computed c ON c.contract_id = k.id \
               WHERE v.contract_id = k.id AND v.version = k.version AND v.hash <> c.hash) \
             UPDATE contract k SET flags = c.flags, updated_at = now(), refreshed_run = $1 \
             FROM contract_computed c WHERE c.contract_id = k.id",
            &[&run],
        )
        .await
        .map_err(ContractsError::db("rewriting the drafts"))?;
    Ok(())
}

/// One binary COPY of `rows`.
async fn copy<'a, const N: usize>(
    client: &Client,
    statement: &str,
    types: &[Type],
    rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
) -> Result<(), ContractsError> {
    let failed = ContractsError::db("writing the contracts");
    let sink = client.copy_in(statement).await.map_err(&failed)?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for row in rows {
        writer.as_mut().write(&row).await.map_err(&failed)?;
    }
    writer.finish().await.map_err(&failed)?;
    Ok(())
}
