//! Streaming readers that turn an export file (CSV, JSON Lines, XML) into [`Row`]s.
//!
//! Every reader holds one row at a time (plus I/O buffers), whatever the file's size, and
//! decodes text strictly with the **declared** [`Encoding`]. Problems come in two scopes
//! ([`ErrorScope`]):
//!
//! * **Row**: this row cannot be read (a CSV row with a missing column, a JSON line that is
//!   not an object). The caller quarantines it and goes on.
//! * **File**: the file as a whole cannot be trusted (wrong encoding, a CSV quote that is
//!   never closed, truncated or malformed XML, a DTD). Nothing of the file may be applied,
//!   and the iterator ends after yielding the error.
//!
//! A UTF-8 byte order mark at the start of a file is skipped when the declared encoding is
//! UTF-8; any byte order mark in a file declared otherwise is a File error (the file is
//! not in the declared encoding).

mod csv;
mod jsonl;
mod xml;

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use crate::encoding::Encoding;
use crate::row::{Location, Row};

/// The format of an export file and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Delimiter-separated values, with or without a header row.
    Csv(CsvOptions),
    /// One JSON object per line; blank lines are skipped.
    JsonLines,
    /// An XML document whose record elements are read one at a time.
    Xml(XmlOptions),
    /// A SQL view, read by a SQL source (`kind = "cocktail"`), not from a file.
    Sql(SqlOptions),
}

/// Which view a SQL input reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlOptions {
    /// The view (or table), possibly schema-qualified: `SCOLARITE.V_CONPERE_STUDENT`.
    /// Checked to be a plain identifier when the mapping loads: it is written into the
    /// query, so it must not be able to carry SQL.
    pub view: String,
}

impl SqlOptions {
    /// Whether `name` is a plain, possibly schema-qualified identifier.
    pub fn is_identifier(name: &str) -> bool {
        !name.is_empty()
            && name.split('.').all(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            })
    }
}

/// How a CSV file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field delimiter: `b','`, `b';'` (French spreadsheets) or `b'\t'`.
    pub delimiter: u8,
    /// The quote character; a quote inside a quoted field is written twice.
    pub quote: u8,
    /// Whether the first record names the columns. Without one, columns are named `"1"`,
    /// `"2"`… (1-based).
    pub header: bool,
}

impl Default for CsvOptions {
    /// RFC 4180: comma, double quote, a header row.
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            header: true,
        }
    }
}

/// Which elements of an XML document are records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlOptions {
    /// The record element. With a `/`, a path of element names from the root, e.g.
    /// `"export/etudiants/etudiant"` (a leading `/` is allowed): only elements at exactly
    /// that path are records, and a document whose root is not the path's first name is
    /// refused (a wrong mapping must not read as an empty export). Without a `/`, a bare
    /// name such as `"etudiant"`: every element of that name at any depth is a record,
    /// except inside another record (where it is a field of that record). Names are
    /// compared as written in the document, namespace prefix included.
    pub record: String,
}

/// Line breaks in `bytes`: how many lines a piece of a file spans, for `file:line`.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

impl XmlOptions {
    /// Options reading the records at `record` (a path from the root, or a bare name).
    pub fn new(record: impl Into<String>) -> Self {
        XmlOptions {
            record: record.into(),
        }
    }
}

/// Whether a [`ReadError`] spoils one row or the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorScope {
    /// Only this row is unreadable: quarantine it and go on with the next one.
    Row,
    /// The file cannot be trusted: nothing of it may be applied. No row follows.
    File,
}

/// A problem reading an export, where it is, and whether it spoils a row or the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct ReadError {
    /// The file and the line the problem is on (line 0: the whole file).
    pub location: Location,
    /// What is wrong, what was expected and what to do, in a sentence or two.
    pub reason: String,
    /// Quarantine the row, or refuse the file.
    pub scope: ErrorScope,
}

impl ReadError {
    /// A problem that spoils only the row at `location`.
    pub fn row(location: Location, reason: impl Into<String>) -> Self {
        ReadError {
            location,
            reason: reason.into(),
            scope: ErrorScope::Row,
        }
    }

    /// A problem that spoils the whole file (reported at `location`).
    pub fn file(location: Location, reason: impl Into<String>) -> Self {
        ReadError {
            location,
            reason: reason.into(),
            scope: ErrorScope::File,
        }
    }

    /// An I/O error while reading `file` at `line`: the file is refused (a partial read
    /// must not be applied as if it were the whole file).
    pub(crate) fn io(file: &Arc<str>, line: u64, error: &io::Error) -> Self {
        ReadError::file(
            Location::new(file.clone(), line),
            format!("cannot read the file: {error}"),
        )
    }

    /// Whether the whole file is refused.
    pub fn is_file_scope(&self) -> bool {
        self.scope == ErrorScope::File
    }
}

/// The rows of one file, in file order; ends after a File-scope error.
pub type Rows = Box<dyn Iterator<Item = Result<Row, ReadError>> + Send>;

/// Opens the file at `path` and reads it as `format` in `encoding`, streaming.
///
/// `display_name` is how the file is named in locations and errors (usually its name
/// relative to the drop directory). A record (line, row, record element) longer than
/// `max_record_bytes` is a Row error, read past without being held whole. Fails only if
/// the file cannot be opened or starts with a byte order mark that contradicts
/// `encoding`; every other problem comes as a row.
pub fn open(
    path: &Path,
    display_name: &str,
    format: &Format,
    encoding: Encoding,
    max_record_bytes: usize,
) -> Result<Rows, ReadError> {
    let file = File::open(path).map_err(|error| {
        ReadError::file(
            Location::new(display_name.into(), 0),
            format!("cannot open {}: {error}", path.display()),
        )
    })?;
    from_reader(file, display_name, format, encoding, max_record_bytes)
}

/// Reads `reader` as `format` in `encoding`, streaming: the same as [`open`] for data that
/// is not a file (tests, in-memory data, network bodies).
pub fn from_reader(
    reader: impl Read + Send + 'static,
    display_name: &str,
    format: &Format,
    encoding: Encoding,
    max_record_bytes: usize,
) -> Result<Rows, ReadError> {
    let file: Arc<str> = display_name.into();
    let reader = skip_bom(reader, &file, encoding)?;
    let rows: Rows = match format {
        Format::Csv(options) => Box::new(csv::rows(
            reader,
            file,
            *options,
            encoding,
            max_record_bytes,
        )),
        Format::JsonLines => Box::new(jsonl::rows(reader, file, encoding, max_record_bytes)),
        Format::Xml(options) => Box::new(xml::rows(
            reader,
            file,
            options,
            encoding,
            max_record_bytes,
        )?),
        Format::Sql(options) => {
            return Err(ReadError::file(
                Location::new(file, 0),
                format!(
                    "view {} is read by a SQL source (kind = \"cocktail\"), not from a file",
                    options.view
                ),
            ))
        }
    };
    Ok(Box::new(StopAfterFileError { rows, done: false }))
}

/// A reader whose byte order mark, if any, has been checked and skipped.
pub(crate) type Unmarked<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// Reads the first bytes of `reader` and skips a UTF-8 byte order mark when `encoding` is
/// UTF-8; refuses a byte order mark that contradicts the declared encoding.
fn skip_bom<R: Read>(
    mut reader: R,
    file: &Arc<str>,
    encoding: Encoding,
) -> Result<Unmarked<R>, ReadError> {
    let mut head = Vec::with_capacity(3);
    (&mut reader)
        .take(3)
        .read_to_end(&mut head)
        .map_err(|error| ReadError::io(file, 0, &error))?;
    let found = if head.starts_with(b"\xEF\xBB\xBF") {
        Some("UTF-8")
    } else if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        Some("UTF-16")
    } else {
        None
    };
    match found {
        Some("UTF-8") if encoding == Encoding::Utf8 => head.clear(),
        Some(bom) => return Err(bom_contradicts(file, bom, encoding)),
        None => {}
    }
    Ok(Cursor::new(head).chain(reader))
}

/// The error for a byte order mark that says the file is not in the declared encoding.
fn bom_contradicts(file: &Arc<str>, bom: &str, encoding: Encoding) -> ReadError {
    ReadError::file(
        Location::new(file.clone(), 1),
        format!(
            "the file starts with a {bom} byte order mark, so it is written in {bom}, but its \
             declared encoding is {encoding}; declare the encoding the file is written in \
             (conpere reads {})",
            crate::encoding::ACCEPTED_NAMES
        ),
    )
}

/// Ends the iteration after a File-scope error, whatever the reader would do next.
struct StopAfterFileError {
    rows: Rows,
    done: bool,
}

impl Iterator for StopAfterFileError {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.rows.next();
        match &item {
            None => self.done = true,
            Some(Err(error)) if error.is_file_scope() => self.done = true,
            Some(_) => {}
        }
        item
    }
}

/// Test helpers shared by the readers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Reads `data` as `format` in `encoding`, named `name`, collecting every item.
    pub fn read_all(
        name: &str,
        data: &[u8],
        format: &Format,
        encoding: Encoding,
    ) -> Vec<Result<Row, ReadError>> {
        let max = conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES;
        match from_reader(Cursor::new(data.to_vec()), name, format, encoding, max) {
            Ok(rows) => rows.collect(),
            Err(error) => vec![Err(error)],
        }
    }

    /// The rows of `items`, panicking (in a test) at the first error.
    pub fn rows_of(items: Vec<Result<Row, ReadError>>) -> Vec<Row> {
        items
            .into_iter()
            .map(|item| item.unwrap_or_else(|error| panic!("unexpected error: {error}")))
            .collect()
    }

    /// The single error among `items`, which must be the last item.
    pub fn last_error(items: &[Result<Row, ReadError>]) -> &ReadError {
        match items.last() {
            Some(Err(error)) => error,
            other => panic!("expected an error last, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_utf8_bom_is_skipped_when_the_encoding_is_utf8() {
        let items = read_all(
            "b.jsonl",
            b"\xEF\xBB\xBF{\"a\":1}\n",
            &Format::JsonLines,
            Encoding::Utf8,
        );
        assert_eq!(rows_of(items)[0].get("a"), Some("1"));
    }

    #[test]
    fn a_bom_that_contradicts_the_declared_encoding_refuses_the_file() {
        for (data, bom) in [
            (&b"\xEF\xBB\xBFa\n"[..], "UTF-8"),
            (&b"\xFF\xFEa\x00"[..], "UTF-16"),
        ] {
            let items = read_all(
                "b.csv",
                data,
                &Format::Csv(CsvOptions::default()),
                Encoding::Iso8859_1,
            );
            let error = last_error(&items);
            assert_eq!(error.scope, ErrorScope::File);
            assert!(
                error.reason.contains(&format!("{bom} byte order mark")),
                "{error}"
            );
            assert!(error.reason.contains("iso-8859-1"), "{error}");
        }
    }

    #[test]
    fn open_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        std::fs::write(&path, "a;b\n1;2\n").unwrap();
        let format = Format::Csv(CsvOptions {
            delimiter: b';',
            ..CsvOptions::default()
        });
        let max = conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES;
        let rows: Vec<_> = open(&path, "e.csv", &format, Encoding::Utf8, max)
            .unwrap()
            .collect();
        assert_eq!(rows.len(), 1);
        let missing = open(
            &dir.path().join("nope.csv"),
            "nope.csv",
            &format,
            Encoding::Utf8,
            max,
        );
        let error = missing.err().unwrap();
        assert_eq!(error.scope, ErrorScope::File);
        assert!(
            error.to_string().starts_with("nope.csv: cannot open"),
            "{error}"
        );
    }

    #[test]
    fn a_read_error_displays_file_line_reason() {
        let error = ReadError::row(Location::new("x.csv".into(), 4), "bad");
        assert_eq!(error.to_string(), "x.csv:4: bad");
    }
}
