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
use tokio_postgres::types::{BorrowToSql, IsNull, Type};
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

/// Rows in the binary COPY format, in a buffer: its header, then each row as it is
/// pushed, then its trailer ([`end`](Self::end)). Taken a chunk at a time, to a COPY
/// ([`CopyWriter`]) or to a file (the bench's floor).
pub struct BinaryRows {
    types: Vec<Type>,
    buffer: BytesMut,
}

impl BinaryRows {
    /// The format's header, for columns of `types`.
    pub fn new(types: &[Type]) -> BinaryRows {
        let mut buffer = BytesMut::with_capacity(CHUNK + CHUNK / 8);
        // The signature, no flags, no header extension.
        buffer.put_slice(b"PGCOPY\n\xff\r\n\0");
        buffer.put_i32(0);
        buffer.put_i32(0);
        BinaryRows {
            types: types.to_vec(),
            buffer,
        }
    }

    /// Encodes one row, its values in column order. A value that does not fit its column
    /// leaves the buffer as it was.
    pub fn push<P: BorrowToSql>(
        &mut self,
        values: impl IntoIterator<Item = P, IntoIter: ExactSizeIterator>,
    ) -> Result<(), CopyError> {
        let values = values.into_iter();
        assert_eq!(values.len(), self.types.len(), "one value per column");
        let row_start = self.buffer.len();
        self.buffer.put_i16(self.types.len() as i16);
        for (index, (value, ty)) in values.zip(&self.types).enumerate() {
            // The length goes before the value: reserved, then written once known.
            let at = self.buffer.len();
            self.buffer.put_i32(0);
            let length = match value.borrow_to_sql().to_sql_checked(ty, &mut self.buffer) {
                Ok(IsNull::No) => (self.buffer.len() - at - 4) as i32,
                Ok(IsNull::Yes) => -1,
                Err(error) => {
                    self.buffer.truncate(row_start);
                    return Err(CopyError::Encode {
                        column: index + 1,
                        ty: ty.clone(),
                        error,
                    });
                }
            };
            self.buffer[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        Ok(())
    }

    /// Whether a chunk is encoded: time to take it.
    pub fn chunk_full(&self) -> bool {
        self.buffer.len() >= CHUNK
    }

    /// What is encoded, taken out of the buffer.
    pub fn take(&mut self) -> Bytes {
        self.buffer.split().freeze()
    }

    /// The trailer, after the last row.
    pub fn end(&mut self) {
        self.buffer.put_i16(-1);
    }
}

/// A binary COPY in progress: [`write`](Self::write) its rows, then
/// [`finish`](Self::finish) it.
pub struct CopyWriter {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    rows: BinaryRows,
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
        CopyWriter {
            sink: Box::pin(sink),
            rows: BinaryRows::new(types),
        }
    }

    /// Encodes one row, its values in column order (`&dyn ToSql` or values of one
    /// type); sends the buffer once it holds a chunk.
    pub async fn write<P: BorrowToSql>(
        &mut self,
        values: impl IntoIterator<Item = P, IntoIter: ExactSizeIterator>,
    ) -> Result<(), CopyError> {
        self.rows.push(values)?;
        if self.rows.chunk_full() {
            self.sink.send(self.rows.take()).await?;
        }
        Ok(())
    }

    /// Sends what is left and ends the COPY. Returns the rows the server copied.
    pub async fn finish(mut self) -> Result<u64, CopyError> {
        self.rows.end();
        self.sink.send(self.rows.take()).await?;
        Ok(self.sink.as_mut().finish().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;
    use tokio_postgres::types::ToSql;

    const TYPES: [Type; 3] = [Type::INT8, Type::TEXT, Type::FLOAT8];

    /// A test database's connection with an empty table of [`TYPES`] columns, and the
    /// COPY into it begun.
    async fn copy_into_empty_table() -> (TestDatabase, deadpool_postgres::Object, CopyWriter) {
        let db = TestDatabase::new().await;
        let client = db.pool.get().await.unwrap();
        client
            .batch_execute("CREATE TEMP TABLE copied (id bigint, label text, ects float8)")
            .await
            .unwrap();
        let statement = "COPY copied (id, label, ects) FROM STDIN BINARY";
        let writer = CopyWriter::start(&client, statement, &TYPES).await.unwrap();
        (db, client, writer)
    }

    /// The format PostgreSQL documents: header, a 16-bit field count per row, each value
    /// after its 32-bit length (-1 for NULL), a -1 trailer.
    #[test]
    fn rows_are_encoded_in_the_binary_copy_format() {
        let mut rows = BinaryRows::new(&TYPES);
        let row: [&(dyn ToSql + Sync); 3] = [&7_i64, &None::<String>, &0.5_f64];
        rows.push(row).unwrap();
        let refused: [&(dyn ToSql + Sync); 3] = [&1_i64, &2_i32, &0.5_f64];
        assert!(rows.push(refused).is_err());
        rows.end();
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend([0, 3]);
        expected.extend(8_i32.to_be_bytes());
        expected.extend(7_i64.to_be_bytes());
        expected.extend((-1_i32).to_be_bytes());
        expected.extend(8_i32.to_be_bytes());
        expected.extend(0.5_f64.to_be_bytes());
        expected.extend((-1_i16).to_be_bytes());
        assert_eq!(
            rows.take().to_vec(),
            expected,
            "the refused row left nothing"
        );
    }

    /// Rows enough for several chunks, nulls among them, read back as they were written.
    #[tokio::test]
    async fn rows_are_copied_as_written_across_chunks() {
        let (_db, client, mut writer) = copy_into_empty_table().await;
        let rows: Vec<(i64, Option<String>, Option<f64>)> = (0..20_000)
            .map(|i| {
                let label = (i % 7 != 0).then(|| format!("élément {i} {}", "x".repeat(i % 50)));
                (i as i64, label, (i % 3 != 0).then_some(i as f64 / 2.0))
            })
            .collect();
        for (id, label, ects) in &rows {
            let row: [&(dyn ToSql + Sync); 3] = [id, label, ects];
            writer.write(row).await.unwrap();
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
        let (_db, client, mut writer) = copy_into_empty_table().await;
        let row: [&(dyn ToSql + Sync); 3] = [&1_i64, &2_i32, &0.5_f64];
        let error = writer.write(row).await.unwrap_err();
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
