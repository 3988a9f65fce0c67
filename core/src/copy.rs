//! Binary `COPY … FROM STDIN` written in large chunks: the one writer of every bulk path
//! (staging, quarantine, contracts, evidence).
//!
//! `tokio-postgres`'s own `BinaryCopyInWriter` hands the connection a message every 4 KB:
//! at a million rows, 25 000 wake-ups of the connection task and of the server each, which
//! on two cores cost more than the rows themselves. Here rows are encoded into a buffer
//! sent every [`CHUNK`] bytes: a few hundred messages.

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use std::pin::Pin;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, CopyInSink};

/// Bytes encoded before they are sent: large enough that a message costs nothing, small
/// enough that memory stays flat and the server starts at once.
pub const CHUNK: usize = 256 * 1024;

/// Why a COPY failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The server refused the statement or the data.
    #[error("{}", crate::engine::pg_message(.0))]
    Db(#[from] tokio_postgres::Error),
    /// A value could not be encoded as its column's type.
    #[error("a value does not fit column {column} ({ty}): {error}")]
    Encode {
        /// The column's position, from 1.
        column: usize,
        /// Its type.
        ty: Type,
        /// What the encoder said.
        error: Box<dyn std::error::Error + Sync + Send>,
    },
}

/// A binary COPY in progress: [`write`](Self::write) its rows, then
/// [`finish`](Self::finish) it.
pub struct CopyWriter {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    types: Vec<Type>,
    buffer: BytesMut,
}

impl CopyWriter {
    /// Starts `statement` (a `COPY … FROM STDIN BINARY` of columns of `types`) on `client`.
    pub async fn start(
        client: &Client,
        statement: &str,
        types: &[Type],
    ) -> Result<CopyWriter, CopyError> {
        Ok(CopyWriter::new(client.copy_in(statement).await?, types))
    }

    /// Writes into `sink`, a `COPY … FROM STDIN BINARY` of columns of `types` begun by
    /// `copy_in` (of a client or a transaction).
    pub fn new(sink: CopyInSink<Bytes>, types: &[Type]) -> CopyWriter {
        let mut buffer = BytesMut::with_capacity(CHUNK + CHUNK / 8);
        // The header: signature, flags, no extension.
        buffer.put_slice(b"PGCOPY\n\xff\r\n\0");
        buffer.put_i32(0);
        buffer.put_i32(0);
        CopyWriter {
            sink: Box::pin(sink),
            types: types.to_vec(),
            buffer,
        }
    }

    /// Encodes one row, its values in column order; sends the buffer once it holds a chunk.
    pub async fn write(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), CopyError> {
        self.encode(values)?;
        if self.buffer.len() >= CHUNK {
            let chunk = self.buffer.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }

    /// Sends what is left and ends the COPY. Returns the rows the server copied.
    pub async fn finish(mut self) -> Result<u64, CopyError> {
        self.buffer.put_i16(-1);
        let rest = self.buffer.split().freeze();
        self.sink.send(rest).await?;
        Ok(self.sink.as_mut().finish().await?)
    }

    fn encode(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), CopyError> {
        assert_eq!(values.len(), self.types.len(), "one value per column");
        self.buffer.put_i16(values.len() as i16);
        for (index, (value, ty)) in values.iter().zip(&self.types).enumerate() {
            // The length goes before the value: reserved, then written once known.
            let at = self.buffer.len();
            self.buffer.put_i32(0);
            let length = match value.to_sql_checked(ty, &mut self.buffer) {
                Ok(IsNull::No) => (self.buffer.len() - at - 4) as i32,
                Ok(IsNull::Yes) => -1,
                Err(error) => {
                    return Err(CopyError::Encode {
                        column: index + 1,
                        ty: ty.clone(),
                        error,
                    })
                }
            };
            self.buffer[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    const TYPES: [Type; 3] = [Type::INT8, Type::TEXT, Type::FLOAT8];

    /// Rows enough for several chunks, nulls among them, read back as they were written.
    #[tokio::test]
    async fn rows_are_copied_as_written_across_chunks() {
        let db = TestDatabase::new().await;
        let client = db.pool.get().await.unwrap();
        client
            .batch_execute("CREATE TEMP TABLE copied (id bigint, label text, ects float8)")
            .await
            .unwrap();
        let rows: Vec<(i64, Option<String>, Option<f64>)> = (0..20_000)
            .map(|i| {
                let label = (i % 7 != 0).then(|| format!("élément {i} {}", "x".repeat(i % 50)));
                (i as i64, label, (i % 3 != 0).then_some(i as f64 / 2.0))
            })
            .collect();
        let statement = "COPY copied (id, label, ects) FROM STDIN BINARY";
        let mut writer = CopyWriter::start(&client, statement, &TYPES).await.unwrap();
        for (id, label, ects) in &rows {
            writer.write(&[id, label, ects]).await.unwrap();
        }
        assert!(rows.len() * 30 > 2 * CHUNK, "the rows fill several chunks");
        assert_eq!(writer.finish().await.unwrap(), rows.len() as u64);
        let read: Vec<(i64, Option<String>, Option<f64>)> = client
            .query("SELECT id, label, ects FROM copied ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        assert_eq!(read, rows);
    }

    /// A value of the wrong type is refused before anything is sent, naming its column.
    #[tokio::test]
    async fn a_value_that_does_not_fit_its_column_is_named() {
        let db = TestDatabase::new().await;
        let client = db.pool.get().await.unwrap();
        client
            .batch_execute("CREATE TEMP TABLE copied (id bigint, label text, ects float8)")
            .await
            .unwrap();
        let statement = "COPY copied (id, label, ects) FROM STDIN BINARY";
        let mut writer = CopyWriter::start(&client, statement, &TYPES).await.unwrap();
        let error = writer.write(&[&1_i64, &2_i32, &0.5_f64]).await.unwrap_err();
        assert!(
            matches!(error, CopyError::Encode { column: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("column 2 (text)"), "{error}");
        drop(writer);
        // The COPY was abandoned: the connection goes on.
        let count: i64 = client
            .query_one("SELECT count(*) FROM copied", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 0);
    }
}
