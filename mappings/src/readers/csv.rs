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

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use super::{count_newlines, CsvOptions, ReadError, Unmarked};
use crate::encoding::Encoding;
use crate::row::{Location, Row};

/// The rows of a CSV stream whose byte order mark was already handled; a record longer
/// than `max_record_bytes` is a Row error, read past without being held.
pub(super) fn rows<R: Read + Send + 'static>(
    reader: Unmarked<R>,
    file: Arc<str>,
    options: CsvOptions,
    encoding: Encoding,
    max_record_bytes: usize,
) -> CsvRows<R> {
    let parser = ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .build();
    CsvRows {
        input: BufReader::with_capacity(64 * 1024, reader),
        parser,
        file,
        options,
        encoding,
        max_record_bytes,
        names: Vec::new(),
        expected: None,
        fields: Fields::default(),
        started: false,
    }
}

/// The state of a CSV read: the input, the parser, the column names, the field count.
pub(super) struct CsvRows<R: Read> {
    input: BufReader<Unmarked<R>>,
    /// csv-core's parser: it writes fields into buffers the caller sizes, so a record
    /// over the limit can be read past without growing them.
    parser: Reader,
    file: Arc<str>,
    options: CsvOptions,
    encoding: Encoding,
    max_record_bytes: usize,
    /// The header's names, or the column numbers seen so far without a header.
    names: Vec<Arc<str>>,
    /// The number of fields every record must have: the header's, or the first record's.
    expected: Option<usize>,
    /// The fields of the current record; reused for every record.
    fields: Fields,
    started: bool,
}

/// The unescaped fields of one record: their bytes end to end, and where each ends.
#[derive(Default)]
struct Fields {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
}

impl Fields {
    /// The number of fields.
    fn len(&self) -> usize {
        self.len
    }

    /// Field `index` (0-based).
    fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends[..self.len].get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        self.bytes.get(start..end)
    }

    /// Every field, in order.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).filter_map(|index| self.get(index))
    }
}

/// One record as read: where it starts, its source text, what its quoting looks like.
struct Record {
    line: u64,
    /// The source text without line terminators around it; empty if over the limit.
    raw: Vec<u8>,
    /// Its length in bytes, when over the limit (then `raw` and the fields are not held).
    too_long: Option<u64>,
    quoting: Quoting,
    /// Its number of fields.
    found: usize,
    /// The line breaks within it.
    lines: u64,
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
    /// Reads the next record into `self.fields`; `None` at the end of the file. Past
    /// `max_record_bytes`, the rest of the record goes through a scratch buffer: only its
    /// length and quoting are kept.
    fn read_record(&mut self) -> Option<Result<Record, ReadError>> {
        let start_line = self.parser.line();
        let mut scanner = QuoteScanner::new(self.options);
        let mut raw = Vec::new();
        let mut length = 0u64;
        let mut scratch = ([0u8; 4096], [0usize; 64]);
        let (mut written, mut ended) = (0, 0);
        loop {
            let over = length > self.max_record_bytes as u64;
            let input = match self.input.fill_buf() {
                Ok(input) => input,
                Err(error) => {
                    return Some(Err(ReadError::io(&self.file, start_line, &error)));
                }
            };
            let fields = &mut self.fields;
            let (result, read, wrote, ends) = if over {
                self.parser
                    .read_record(input, &mut scratch.0, &mut scratch.1)
            } else {
                fields
                    .bytes
                    .resize(fields.bytes.len().max(written + 1024), 0);
                fields.ends.resize(fields.ends.len().max(ended + 16), 0);
                self.parser.read_record(
                    input,
                    &mut fields.bytes[written..],
                    &mut fields.ends[ended..],
                )
            };
            let consumed = &input[..read];
            scanner.feed(consumed);
            length += read as u64;
            let held = length <= self.max_record_bytes as u64;
            if held {
                raw.extend_from_slice(consumed);
                (written, ended) = (written + wrote, ended + ends);
            } else if !over {
                raw = Vec::new();
            }
            self.input.consume(read);
            match result {
                // Within the limit the field buffers grow (doubling); past it, the scratch
                // buffers are reused as they are.
                ReadRecordResult::OutputFull if held => {
                    let room = self.fields.bytes.len() * 2;
                    self.fields.bytes.resize(room, 0);
                }
                ReadRecordResult::OutputEndsFull if held => {
                    let room = self.fields.ends.len() * 2;
                    self.fields.ends.resize(room, 0);
                }
                ReadRecordResult::InputEmpty
                | ReadRecordResult::OutputFull
                | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return None,
            }
        }
        self.fields.len = ended;
        let scan = scanner.finish();
        let too_long = (length > self.max_record_bytes as u64).then_some(length);
        let found = match too_long {
            Some(_) => scan.fields,
            None => ended,
        };
        let raw = match too_long {
            Some(_) => Vec::new(),
            None => trim_record(&raw).1.to_vec(),
        };
        Some(Ok(Record {
            line: start_line + scan.skipped,
            raw,
            too_long,
            quoting: scan.quoting,
            found,
            lines: scan.lines,
        }))
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
        if let Some(opened) = record.quoting.unterminated {
            return Err(self.unterminated(record, opened));
        }
        if let Some(length) = record.too_long {
            return Err(ReadError::file(
                self.location(record.line),
                format!("the header {}", self.over_the_limit(length)),
            ));
        }
        let mut names: Vec<Arc<str>> = Vec::with_capacity(self.fields.len());
        for (index, bytes) in self.fields.iter().enumerate() {
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
        let expected = *self.expected.get_or_insert(record.found);
        self.check_quoting(&record, expected)?;
        if let Some(length) = record.too_long {
            return Err(ReadError::row(
                self.location(record.line),
                format!("the row {}", self.over_the_limit(length)),
            ));
        }
        let mut fields = Vec::with_capacity(self.fields.len());
        for index in 0..self.fields.len() {
            let name = self.name(index);
            let bytes = self.fields.get(index).unwrap_or_default();
            let value = self.decode(&record, index, &format!("column \"{name}\""), bytes)?;
            fields.push((name, value));
        }
        let raw = self.decode_raw(&record)?;
        Ok(Row::new(self.location(record.line), fields, raw))
    }

    /// Applies the broken-quote rules of the module documentation and the field count.
    fn check_quoting(&self, record: &Record, expected: usize) -> Result<(), ReadError> {
        let quoting = &record.quoting;
        if let Some(opened) = quoting.unterminated {
            return Err(self.unterminated(record, opened));
        }
        let found = record.found;
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
                    .filter_map(|i| self.fields.get(i))
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

    /// What is said of a record of `length` bytes, over the limit.
    fn over_the_limit(&self, length: u64) -> String {
        format!(
            "is {length} bytes long, over the limit of {} (max_record_bytes): it is read \
             past, not held",
            self.max_record_bytes
        )
    }

    /// Rule 1: a quote still open at the end of the file.
    fn unterminated(&self, record: &Record, opened: u64) -> ReadError {
        let swallowed = record.lines - opened;
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

/// What a record's quoting looks like; lines are 0-based offsets from the record's line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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

/// What [`QuoteScanner::finish`] found of one record.
struct Scan {
    /// Blank lines (and the `\n` of a `\r\n`) before the record.
    skipped: u64,
    quoting: Quoting,
    /// The number of fields.
    fields: usize,
    /// The line breaks within the record.
    lines: u64,
}

/// Scans a record's source bytes as they are read, in constant memory, with the csv
/// crate's quoting rules (no escape character, `""` doubling). The line terminators around
/// the record are not part of it: leading ones are counted as skipped lines, and trailing
/// ones are undone by going back to the state before them.
struct QuoteScanner {
    options: CsvOptions,
    /// Whether a byte of the record itself was seen.
    started: bool,
    skipped: u64,
    at: Position,
    /// Where the scan was before the line terminators just seen, if the last byte was one.
    before_terminators: Option<Position>,
}

/// Where a [`QuoteScanner`] is in a record.
#[derive(Clone, Copy)]
struct Position {
    state: State,
    /// Line breaks so far (0-based line within the record).
    line: u64,
    /// Delimiters outside quotes so far (0-based field).
    field: usize,
    /// The line the last quoted field opened on.
    opened: u64,
    quoting: Quoting,
}

impl QuoteScanner {
    /// A scanner at the start of a record.
    fn new(options: CsvOptions) -> Self {
        QuoteScanner {
            options,
            started: false,
            skipped: 0,
            at: Position {
                state: State::StartField,
                line: 0,
                field: 0,
                opened: 0,
                quoting: Quoting::default(),
            },
            before_terminators: None,
        }
    }

    /// Scans the next bytes of the record.
    fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let terminator = byte == b'\n' || byte == b'\r';
            if !self.started {
                if !terminator {
                    self.started = true;
                } else {
                    self.skipped += u64::from(byte == b'\n');
                    continue;
                }
            }
            if !terminator {
                self.before_terminators = None;
            } else if self.before_terminators.is_none() {
                self.before_terminators = Some(self.at);
            }
            self.at.step(byte, &self.options);
        }
    }

    /// What the record's bytes showed, its final terminators left out.
    fn finish(self) -> Scan {
        let at = self.before_terminators.unwrap_or(self.at);
        let mut quoting = at.quoting;
        if at.state == State::InQuoted {
            quoting.unterminated = Some(at.opened);
        }
        Scan {
            skipped: self.skipped,
            quoting,
            fields: at.field + 1,
            lines: at.line,
        }
    }
}

impl Position {
    /// Moves over one byte.
    fn step(&mut self, byte: u8, options: &CsvOptions) {
        self.state = match self.state {
            State::StartField if byte == options.quote => {
                self.opened = self.line;
                State::InQuoted
            }
            State::StartField | State::InField if byte == options.delimiter => State::StartField,
            State::StartField | State::InField => State::InField,
            State::InQuoted if byte == options.quote => State::QuoteInQuoted,
            State::InQuoted => {
                if byte == b'\n' && self.quoting.multiline.is_none() {
                    self.quoting.multiline = Some(self.opened);
                }
                State::InQuoted
            }
            State::QuoteInQuoted if byte == options.quote => State::InQuoted,
            State::QuoteInQuoted if byte == options.delimiter => State::StartField,
            State::QuoteInQuoted => {
                self.quoting.stray.get_or_insert((self.line, self.field));
                State::InField
            }
        };
        if self.state == State::StartField {
            self.field += 1;
        }
        if byte == b'\n' {
            self.line += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ErrorScope, Format};
    use super::*;

    /// The reader itself (its buffers in view) on `data`, `;`-separated with a header.
    fn limited(data: String, max_record_bytes: usize) -> CsvRows<std::io::Cursor<Vec<u8>>> {
        let input = std::io::Cursor::new(Vec::new()).chain(std::io::Cursor::new(data.into()));
        let options = CsvOptions {
            delimiter: b';',
            ..CsvOptions::default()
        };
        rows(
            input,
            "e.csv".into(),
            options,
            Encoding::Utf8,
            max_record_bytes,
        )
    }

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
        let scan_quotes = |raw: &[u8], options: &CsvOptions| {
            let mut scanner = QuoteScanner::new(*options);
            scanner.feed(raw);
            scanner.finish().quoting
        };
        assert_eq!(scan_quotes(b"a,\"b\"\"c\",d", &options), Quoting::default());
        assert_eq!(scan_quotes(b"a,b\"c,d", &options), Quoting::default());
        let open = scan_quotes(b"a,\"b\nc", &options);
        assert_eq!((open.unterminated, open.multiline), (Some(0), Some(0)));
        assert_eq!(scan_quotes(b"a,\"b\"c", &options).stray, Some((0, 1)));
    }

    #[test]
    fn a_row_over_the_limit_is_read_past_without_being_held() {
        let long = "x".repeat(3 * 1024 * 1024);
        let data = format!("id;note\n1;a\n2;\"{long}\n{long}\"\n3;\"b\"\n");
        let mut rows = limited(data, 4096);
        assert_eq!(rows.next().unwrap().unwrap().get("note"), Some("a"));
        let error = rows.next().unwrap().unwrap_err();
        assert_eq!((error.scope, error.location.line), (ErrorScope::Row, 3));
        assert!(
            error.reason.contains(
                "the row is 6291462 bytes long, over the limit of 4096 (max_record_bytes)"
            ),
            "{error}"
        );
        assert!(
            rows.fields.bytes.len() <= 2 * 4096,
            "{}",
            rows.fields.bytes.len()
        );
        let next = rows.next().unwrap().unwrap();
        assert_eq!((next.get("note"), next.location.line), (Some("b"), 5));
        assert!(rows.next().is_none());
    }

    #[test]
    fn a_quote_left_open_in_a_row_over_the_limit_still_refuses_the_file() {
        let long = "x".repeat(10_000);
        let data = format!("id;note\n1;\"{long}\n2;b\n");
        let items: Vec<_> = limited(data, 4096).collect();
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 2));
        assert!(error.reason.contains("1 more line(s)"), "{error}");
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
            conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap();
        rows.map(|row| row.map(|_| ()).unwrap()).count()
    }
}
