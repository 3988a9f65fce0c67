//! CSV reader: BurntSushi's `csv` on raw bytes ([`ByteRecord`]), each field decoded strictly
//! in the declared encoding, the record's source text kept for quarantine.
//!
//! # Broken quotes
//!
//! The csv crate is permissive: a quote that is never closed does not fail, it makes the
//! field swallow every following line up to the end of the file (or up to the next stray
//! quote), and the reader reports one big record. Applying what comes after such a quote
//! would be applying garbage, so the file is refused when the quoting shows it cannot be
//! trusted. Each record's source bytes are scanned with the csv crate's own quoting rules
//! (a quote opens a quoted field only as a field's first byte, `""` inside is a quote, a
//! quote followed by anything else closes the field and the rest is appended) and:
//!
//! 1. a record that **ends inside a quoted field** (only possible at end of file) refuses
//!    the file, naming the line where that quote opened: the quote swallowed the rest of
//!    the file (or the file is truncated);
//! 2. a record whose quoted field **spans lines** and which has the **wrong number of
//!    fields** or **text after a closing quote** refuses the file, naming the line where the
//!    quote opened: a quote was closed somewhere else than intended, so the lines it
//!    swallowed (and possibly the rest of the file) were read wrong;
//! 3. otherwise, text after a closing quote on a single line (`"abc"def`) or a wrong number
//!    of fields only spoils the row (Row scope: the next line starts a fresh record).

use std::io::Read;
use std::sync::Arc;

use ::csv::{ByteRecord, Reader, ReaderBuilder};

use super::{count_newlines, CsvOptions, ReadError, Unmarked};
use crate::encoding::Encoding;
use crate::row::{Location, Row};

/// The rows of a CSV stream whose byte order mark was already handled.
pub(super) fn rows<R: Read + Send + 'static>(
    reader: Unmarked<R>,
    file: Arc<str>,
    options: CsvOptions,
    encoding: Encoding,
) -> impl Iterator<Item = Result<Row, ReadError>> + Send {
    let reader = ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(Recorder::new(reader));
    CsvRows {
        reader,
        file,
        options,
        encoding,
        names: Vec::new(),
        expected: None,
        record: ByteRecord::new(),
        started: false,
    }
}

/// The state of a CSV read: the reader, the column names, the expected field count.
struct CsvRows<R: Read> {
    reader: Reader<Recorder<Unmarked<R>>>,
    file: Arc<str>,
    options: CsvOptions,
    encoding: Encoding,
    /// The header's names, or the column numbers seen so far without a header.
    names: Vec<Arc<str>>,
    /// The number of fields every record must have: the header's, or the first record's.
    expected: Option<usize>,
    /// Reused for every record.
    record: ByteRecord,
    started: bool,
}

/// One record as read: where it starts, its source text (without the line terminator).
struct Record {
    line: u64,
    raw: Vec<u8>,
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            if self.options.header {
                if let Err(error) = self.read_header()? {
                    return Some(Err(error));
                }
            }
        }
        let record = match self.read_record()? {
            Ok(record) => record,
            Err(error) => return Some(Err(error)),
        };
        Some(self.build_row(record))
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the next record into `self.record`; `None` at the end of the file.
    fn read_record(&mut self) -> Option<Result<Record, ReadError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                let reason = format!("cannot read the file: {error}");
                return Some(Err(ReadError::file(self.location(line), reason)));
            }
        }
        let (line, start) = self
            .record
            .position()
            .map_or((0, 0), |p| (p.line(), p.byte()));
        let end = self.reader.position().byte();
        let recorder = self.reader.get_mut();
        let (skipped_lines, raw) = trim_record(recorder.slice(start, end));
        let record = Record {
            line: line + skipped_lines,
            raw: raw.to_vec(),
        };
        recorder.release(end);
        Some(Ok(record))
    }

    /// Reads the header row and keeps its decoded names; `None` for an empty file.
    fn read_header(&mut self) -> Option<Result<(), ReadError>> {
        let record = match self.read_record()? {
            Ok(record) => record,
            Err(error) => return Some(Err(error)),
        };
        Some(self.check_header(&record))
    }

    /// Checks the header's quoting and decodes its names.
    fn check_header(&mut self, record: &Record) -> Result<(), ReadError> {
        let quoting = scan_quotes(&record.raw, &self.options);
        if let Some(opened) = quoting.unterminated {
            return Err(self.unterminated(record, opened));
        }
        let mut names: Vec<Arc<str>> = Vec::with_capacity(self.record.len());
        for (index, bytes) in self.record.iter().enumerate() {
            let name = self.decode(record, index, "the header", bytes)?;
            if let Some(first) = names.iter().position(|n| **n == *name) {
                return Err(ReadError::file(
                    self.location(record.line),
                    format!(
                        "the header names column `{name}` twice (fields {} and {}): which one \
                         is meant cannot be told; fix the export",
                        first + 1,
                        index + 1
                    ),
                ));
            }
            names.push(Arc::from(name));
        }
        if let [only] = names.as_slice() {
            if let Some(seems) = other_delimiter(only, self.options.delimiter) {
                return Err(ReadError::file(
                    self.location(record.line),
                    format!(
                        "the header reads as one column (`{only}`) with the delimiter {:?}; \
                         it seems to use {seems:?}: set delimiter = {:?} for this input",
                        char::from(self.options.delimiter),
                        seems.to_string()
                    ),
                ));
            }
        }
        self.expected = Some(names.len());
        self.names = names;
        Ok(())
    }

    /// Checks the record's quoting and field count, then decodes its fields into a row.
    fn build_row(&mut self, record: Record) -> Result<Row, ReadError> {
        let expected = *self.expected.get_or_insert(self.record.len());
        self.check_quoting(&record, expected)?;
        let mut fields = Vec::with_capacity(self.record.len());
        for index in 0..self.record.len() {
            let name = self.name(index);
            let bytes = self.record.get(index).unwrap_or_default();
            let value = self.decode(&record, index, &format!("column \"{name}\""), bytes)?;
            fields.push((name, value));
        }
        let raw = self.decode_raw(&record)?;
        Ok(Row::new(self.location(record.line), fields, raw))
    }

    /// Applies the broken-quote rules of the module documentation and the field count.
    fn check_quoting(&self, record: &Record, expected: usize) -> Result<(), ReadError> {
        let quoting = scan_quotes(&record.raw, &self.options);
        if let Some(opened) = quoting.unterminated {
            return Err(self.unterminated(record, opened));
        }
        let found = self.record.len();
        let miscounted = found != expected;
        if let Some(opened) = quoting.multiline {
            if miscounted || quoting.stray.is_some() {
                let what = if miscounted {
                    format!("has {found} field(s) where {expected} are expected")
                } else {
                    "has text after a closing quote".to_string()
                };
                return Err(self.misquoted(record, opened, &what));
            }
        }
        if let Some((_, field)) = quoting.stray {
            return Err(self.stray_text(record, field));
        }
        if miscounted {
            return Err(self.miscounted(record, found, expected));
        }
        Ok(())
    }

    /// The name of column `index` (0-based): the header's, or its 1-based number.
    fn name(&mut self, index: usize) -> Arc<str> {
        while self.names.len() <= index {
            self.names
                .push(Arc::from((self.names.len() + 1).to_string()));
        }
        self.names[index].clone()
    }

    /// Decodes one field strictly; a wrong encoding refuses the file at the field's line.
    fn decode(
        &self,
        record: &Record,
        index: usize,
        what: &str,
        bytes: &[u8],
    ) -> Result<String, ReadError> {
        self.encoding
            .decode(bytes)
            .map(|text| text.into_owned())
            .map_err(|error| {
                let before: u64 = (0..index)
                    .filter_map(|i| self.record.get(i))
                    .chain(bytes.get(..error.offset))
                    .map(count_newlines)
                    .sum();
                let reason = format!("{what} (field {}) is {error}", index + 1);
                ReadError::file(self.location(record.line + before), reason)
            })
    }

    /// The record's source text; its fields decoded, so it decodes too.
    fn decode_raw(&self, record: &Record) -> Result<String, ReadError> {
        self.encoding
            .decode(&record.raw)
            .map(|text| text.into_owned())
            .map_err(|error| {
                ReadError::file(self.location(record.line), format!("the line is {error}"))
            })
    }

    /// A location in this file at `line`.
    fn location(&self, line: u64) -> Location {
        Location::new(self.file.clone(), line)
    }

    /// Rule 1: a quote still open at the end of the file.
    fn unterminated(&self, record: &Record, opened: u64) -> ReadError {
        let swallowed = count_newlines(&record.raw) - opened;
        ReadError::file(
            self.location(record.line + opened),
            format!(
                "the quoted field opened on this line is never closed: it runs to the end of \
                 the file ({swallowed} more line(s) swallowed), so the file is refused. Close \
                 the quote; a quote inside a quoted field is written twice (\"\")"
            ),
        )
    }

    /// Rule 2: a multi-line quoted field in a record that does not add up.
    fn misquoted(&self, record: &Record, opened: u64, what: &str) -> ReadError {
        ReadError::file(
            self.location(record.line + opened),
            format!(
                "a quoted field opened on this line runs over the next line(s), and the record \
                 starting at line {} then {what}: a quote is probably not closed where it \
                 should be, so the lines after it cannot be trusted and the file is refused. \
                 Check the quotes on this line",
                record.line
            ),
        )
    }

    /// Rule 3: text after a closing quote on one line.
    fn stray_text(&self, record: &Record, field: usize) -> ReadError {
        ReadError::row(
            self.location(record.line),
            format!(
                "field {} has text after its closing quote (like `\"abc\"def`): a quote inside \
                 a quoted field must be written twice (\"\")",
                field + 1
            ),
        )
    }

    /// A row with a different number of fields than the header (or the first row).
    fn miscounted(&self, record: &Record, found: usize, expected: usize) -> ReadError {
        let reference = if self.options.header {
            let names: Vec<&str> = self.names.iter().map(|n| &**n).collect();
            format!("the header has {expected} ({})", names.join(", "))
        } else {
            format!("the first row has {expected}")
        };
        ReadError::row(
            self.location(record.line),
            format!(
                "this row has {found} field(s) where {reference}: a delimiter is missing or \
                 extra in this row (the delimiter is {:?})",
                char::from(self.options.delimiter)
            ),
        )
    }
}

/// The delimiter a header read as one column seems to use instead of `delimiter`: the
/// most frequent of `;`, `,`, tab and `|` in it.
fn other_delimiter(header: &str, delimiter: u8) -> Option<char> {
    [';', ',', '\t', '|']
        .into_iter()
        .filter(|c| *c as u32 != u32::from(delimiter))
        .map(|c| (header.matches(c).count(), c))
        .filter(|(count, _)| *count > 0)
        .max()
        .map(|(_, c)| c)
}

/// Drops the line terminator(s) the csv reader counts with a record: a leftover `\n` of a
/// `\r\n` and skipped blank lines before it, the terminator after it. Returns the number of
/// lines skipped before the record and the record's bytes.
fn trim_record(bytes: &[u8]) -> (u64, &[u8]) {
    let is_eol = |b: &u8| *b == b'\n' || *b == b'\r';
    let start = bytes.iter().position(|b| !is_eol(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_eol(b))
        .map_or(start, |i| i + 1);
    let skipped = count_newlines(&bytes[..start]);
    (skipped, &bytes[start..end.max(start)])
}

/// The number of `\n` bytes in `bytes`.
/// What a record's quoting looks like; lines are 0-based offsets from the record's line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Quoting {
    /// The record ends inside a quoted field opened on this line.
    unterminated: Option<u64>,
    /// A quoted field opened on this line spans more than one line.
    multiline: Option<u64>,
    /// Text follows a closing quote, on this line in this (0-based) field.
    stray: Option<(u64, usize)>,
}

/// Where the scan is, with the csv crate's states (no escape character, `""` doubling).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: `""` or the closing quote.
    QuoteInQuoted,
}

/// Scans one record's source bytes (without its final terminator) for broken quoting.
fn scan_quotes(raw: &[u8], options: &CsvOptions) -> Quoting {
    let mut quoting = Quoting::default();
    if !raw.contains(&options.quote) {
        return quoting;
    }
    let (mut state, mut line, mut field, mut opened) = (State::StartField, 0, 0, 0);
    for &byte in raw {
        state = match state {
            State::StartField if byte == options.quote => {
                opened = line;
                State::InQuoted
            }
            State::StartField | State::InField if byte == options.delimiter => State::StartField,
            State::StartField | State::InField => State::InField,
            State::InQuoted if byte == options.quote => State::QuoteInQuoted,
            State::InQuoted => {
                if byte == b'\n' && quoting.multiline.is_none() {
                    quoting.multiline = Some(opened);
                }
                State::InQuoted
            }
            State::QuoteInQuoted if byte == options.quote => State::InQuoted,
            State::QuoteInQuoted if byte == options.delimiter => State::StartField,
            State::QuoteInQuoted => {
                quoting.stray.get_or_insert((line, field));
                State::InField
            }
        };
        if state == State::StartField {
            field += 1;
        }
        if byte == b'\n' {
            line += 1;
        }
    }
    if state == State::InQuoted {
        quoting.unterminated = Some(opened);
    }
    quoting
}

/// Keeps the bytes the csv reader reads, so a record's source text can be sliced out by
/// the byte offsets the reader reports. Holds at most one record plus the reader's
/// read-ahead: bytes before the last record are released.
struct Recorder<R> {
    inner: R,
    kept: Vec<u8>,
    /// Stream offset of `kept[0]`.
    kept_from: u64,
}

impl<R> Recorder<R> {
    /// Wraps `inner`, nothing consumed yet.
    fn new(inner: R) -> Self {
        Recorder {
            inner,
            kept: Vec::new(),
            kept_from: 0,
        }
    }

    /// The bytes at stream offsets `start..end` (empty if no longer kept).
    fn slice(&self, start: u64, end: u64) -> &[u8] {
        let from = start.saturating_sub(self.kept_from) as usize;
        let to = end.saturating_sub(self.kept_from) as usize;
        self.kept.get(from..to).unwrap_or_default()
    }

    /// Forgets the bytes before stream offset `upto`, in amortised constant time.
    fn release(&mut self, upto: u64) {
        let done = upto.saturating_sub(self.kept_from) as usize;
        if done > 0 && done >= self.kept.len() / 2 {
            let done = done.min(self.kept.len());
            self.kept.drain(..done);
            self.kept_from += done as u64;
        }
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.kept.extend_from_slice(&buf[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ErrorScope, Format};
    use super::*;

    fn csv(delimiter: u8, header: bool) -> Format {
        Format::Csv(CsvOptions {
            delimiter,
            header,
            ..CsvOptions::default()
        })
    }

    fn read(data: &str, format: &Format) -> Vec<Result<Row, ReadError>> {
        read_all("e.csv", data.as_bytes(), format, Encoding::Utf8)
    }

    #[test]
    fn semicolon_comma_and_tab_delimiters() {
        for (delimiter, data) in [
            (b';', "nom;prenom\nDupont;Hélène\n"),
            (b',', "nom,prenom\nDupont,Hélène\n"),
            (b'\t', "nom\tprenom\nDupont\tHélène\n"),
        ] {
            let rows = rows_of(read(data, &csv(delimiter, true)));
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get("nom"), Some("Dupont"));
            assert_eq!(rows[0].get("prenom"), Some("Hélène"));
            assert_eq!(rows[0].location.to_string(), "e.csv:2");
        }
    }

    #[test]
    fn quoted_fields_hold_delimiters_doubled_quotes_and_newlines() {
        let data =
            "id;label;note\n1;\"a;b\";\"il a dit \"\"oui\"\"\"\n2;\"deux\nlignes\";x\n3;c;d\n";
        let rows = rows_of(read(data, &csv(b';', true)));
        assert_eq!(rows[0].get("label"), Some("a;b"));
        assert_eq!(rows[0].get("note"), Some("il a dit \"oui\""));
        assert_eq!(rows[1].get("label"), Some("deux\nlignes"));
        let lines: Vec<u64> = rows.iter().map(|row| row.location.line).collect();
        assert_eq!(lines, [2, 3, 5]);
        assert_eq!(rows[1].raw(), "2;\"deux\nlignes\";x");
    }

    #[test]
    fn a_header_with_a_column_twice_or_another_delimiter_refuses_the_file() {
        let errors: Vec<ReadError> = read("id;nom;id\n1;a;2\n", &csv(b';', true))
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(errors[0].scope, ErrorScope::File);
        assert!(
            errors[0]
                .reason
                .contains("column `id` twice (fields 1 and 3)"),
            "{}",
            errors[0].reason
        );
        let errors: Vec<ReadError> = read("id;nom;prenom\n1;a;b\n", &csv(b',', true))
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert!(
            errors[0]
                .reason
                .contains("it seems to use ';': set delimiter = \";\""),
            "{}",
            errors[0].reason
        );
        // A file of one column is one.
        assert_eq!(rows_of(read("id\n1\n", &csv(b',', true))).len(), 1);
    }

    #[test]
    fn without_header_columns_are_numbered_from_one() {
        let rows = rows_of(read("a,b\nc,d\n", &csv(b',', false)));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("1"), Some("a"));
        assert_eq!(rows[1].get("2"), Some("d"));
        assert_eq!(rows[0].names().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(rows[0].location.line, 1);
    }

    #[test]
    fn a_utf8_bom_is_stripped_from_the_first_column_name() {
        let data = "\u{feff}nom;ine\nDupont;123\n";
        let rows = rows_of(read(data, &csv(b';', true)));
        assert_eq!(rows[0].get("nom"), Some("Dupont"));
        assert_eq!(rows[0].names().next(), Some("nom"));
    }

    #[test]
    fn blank_lines_are_ignored_and_raw_is_the_line() {
        let data = "a,b\r\n1,2\r\n\r\n3,4\r\n\r\n";
        let rows = rows_of(read(data, &csv(b',', true)));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].location.line, 4);
        assert_eq!(rows[1].raw(), "3,4");
        assert_eq!(rows[1].get("b"), Some("4"));
    }

    #[test]
    fn a_row_with_a_wrong_field_count_is_a_row_error_and_reading_goes_on() {
        let items = read("nom;prenom;ine\nA;B\nC;D;E\n", &csv(b';', true));
        assert_eq!(items.len(), 2);
        let error = items[0].as_ref().unwrap_err();
        assert_eq!(error.scope, ErrorScope::Row);
        assert_eq!(error.location.line, 2);
        assert!(
            error.reason.contains("2 field(s) where the header has 3"),
            "{error}"
        );
        assert!(error.reason.contains("nom, prenom, ine"), "{error}");
        assert_eq!(items[1].as_ref().unwrap().get("ine"), Some("E"));
    }

    #[test]
    fn an_unclosed_quote_at_the_end_refuses_the_file_at_the_line_it_opened() {
        // The quote opened on line 3 swallows lines 4 and 5; the field count still matches.
        let items = read("a;b\n1;x\n2;\"oops\n3;y\n4;z\n", &csv(b';', true));
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!(error.scope, ErrorScope::File);
        assert_eq!(error.location.line, 3);
        assert!(error.reason.contains("never closed"), "{error}");
        assert!(error.reason.contains("2 more line(s)"), "{error}");
    }

    #[test]
    fn a_quote_closed_lines_later_with_a_wrong_count_refuses_the_file() {
        // The quote opened on line 2 is closed by the stray quote on line 3.
        let items = read("a;b;c\n1;\"x;y\n2;\"z;w\n3;u;v\n", &csv(b';', true));
        let error = last_error(&items);
        assert_eq!(error.scope, ErrorScope::File);
        assert_eq!(error.location.line, 2);
        assert!(
            error.reason.contains("then has text after a closing quote"),
            "{error}"
        );
        assert!(
            error.reason.contains("not closed where it should be"),
            "{error}"
        );

        // A multi-line quoted field in a record with too many fields.
        let items = read("a;b;c\n0;p;q\n1;\"x\n2\";y;z;w\n3;u;v\n", &csv(b';', true));
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 3));
        assert!(
            error
                .reason
                .contains("then has 5 field(s) where 3 are expected"),
            "{error}"
        );
    }

    #[test]
    fn text_after_a_closing_quote_on_one_line_is_a_row_error() {
        let items = read("a,b\n\"x\"y,1\n2,3\n", &csv(b',', true));
        let error = items[0].as_ref().unwrap_err();
        assert_eq!(error.scope, ErrorScope::Row);
        assert!(error
            .reason
            .contains("field 1 has text after its closing quote"));
        assert!(items[1].is_ok());
    }

    #[test]
    fn latin1_bytes_declared_utf8_refuse_the_file_at_the_first_bad_line() {
        let data = b"nom;prenom\nDupont;Jean\nMartin;H\xe9l\xe8ne\nDurand;Zo\xe9\n";
        let format = csv(b';', true);
        let items = read_all("l.csv", data, &format, Encoding::Utf8);
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!(error.scope, ErrorScope::File);
        assert_eq!(error.location.line, 3);
        let message = error.to_string();
        assert!(
            message.starts_with("l.csv:3: column \"prenom\""),
            "{message}"
        );
        assert!(message.contains("not valid UTF-8"), "{message}");
        assert!(message.contains("declared encoding is utf-8; is it iso-8859-1 or windows-1252?"));

        let rows = rows_of(read_all("l.csv", data, &format, Encoding::Iso8859_1));
        assert_eq!(rows[1].get("prenom"), Some("Hélène"));
        assert_eq!(rows[2].raw(), "Durand;Zoé");
    }

    #[test]
    fn the_quote_scan_follows_the_csv_crate() {
        let options = CsvOptions::default();
        assert_eq!(scan_quotes(b"a,\"b\"\"c\",d", &options), Quoting::default());
        assert_eq!(scan_quotes(b"a,b\"c,d", &options), Quoting::default());
        let open = scan_quotes(b"a,\"b\nc", &options);
        assert_eq!((open.unterminated, open.multiline), (Some(0), Some(0)));
        assert_eq!(scan_quotes(b"a,\"b\"c", &options).stray, Some((0, 1)));
    }

    #[test]
    fn two_hundred_thousand_rows_stream_through() {
        const ROWS: usize = 200_000;
        let mut data = String::with_capacity(ROWS * 32);
        data.push_str("ine;nom;prenom\n");
        for i in 0..ROWS {
            data.push_str(&format!("{i:011};Nom{i};Prénom\n"));
        }
        let rows = from_reader_count(data.into_bytes());
        assert_eq!(rows, ROWS);
    }

    fn from_reader_count(data: Vec<u8>) -> usize {
        let rows = super::super::from_reader(
            std::io::Cursor::new(data),
            "big.csv",
            &csv(b';', true),
            Encoding::Utf8,
        )
        .unwrap();
        rows.map(|row| row.map(|_| ()).unwrap()).count()
    }
}
