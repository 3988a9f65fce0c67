//! Rows into the store by binary COPY: the one writer loop the generation, the evidence
//! and the versions share.

use crate::ContractsError;
use conpere_core::copy::CopyWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::CopyInSink;

/// Writes `rows` (of `types`) into `sink`, a `COPY … FROM STDIN BINARY` begun on the
/// client or transaction they belong to; `context` names the work in errors.
pub(crate) async fn rows<'a, const N: usize>(
    sink: CopyInSink<bytes::Bytes>,
    types: &[Type],
    rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
    context: &'static str,
) -> Result<(), ContractsError> {
    let failed = ContractsError::copy(context);
    let mut writer = CopyWriter::new(sink, types);
    for row in rows {
        writer.write(row).await.map_err(&failed)?;
    }
    writer.finish().await.map_err(&failed)?;
    Ok(())
}
