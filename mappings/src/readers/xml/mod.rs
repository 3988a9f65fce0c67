//! XML reader: quick-xml's streaming [`Reader`] driven by a small state machine that
//! collects the fields of one record element at a time.
//!
//! * Memory: the open elements' names (the path from the root) and the current record's
//!   fields and source text; never the document.
//! * Safety: a DTD (`<!DOCTYPE`) anywhere refuses the file (no entity expansion, so no
//!   "billion laughs" and no external entities); entity references other than the five
//!   predefined ones (`&lt; &gt; &amp; &apos; &quot;`) and character references refuse it
//!   too.
//! * Encoding: markup is parsed on raw bytes (every declared encoding is ASCII-compatible)
//!   and names, text and attribute values are decoded strictly in the **declared** encoding.
//!   An XML declaration naming another encoding refuses the file: one of the two is wrong.
//! * Lines: the bytes quick-xml consumes pass through [`Tracked`], which counts newlines as
//!   they go and keeps the current event's bytes, so any offset within the current event
//!   has its line without rescanning the file.
//! * Bounded records: [`Tracked`] hides the part of a text, attribute value or CDATA
//!   section beyond `max_record_bytes` (see [`source`]), and a record whose source is longer
//!   than the limit stops collecting as soon as it is: either way the record is a Row
//!   error, read past without being held whole.
//! * Integrity: malformed XML and a document that ends inside an element (truncated) refuse
//!   the file: a partial document must not be applied as if it were the whole export.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use quick_xml::escape::{unescape, EscapeError};
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::Reader;

mod source;

use super::{count_newlines, ReadError, Unmarked, XmlOptions};
use crate::encoding::Encoding;
use crate::row::{Location, Row};
use source::{Oversized, Tracked};

/// The rows of an XML stream whose byte order mark was already handled; fails if the record
/// path is empty.
pub(super) fn rows<R: Read + Send + 'static>(
    reader: Unmarked<R>,
    file: Arc<str>,
    options: &XmlOptions,
    encoding: Encoding,
    max_record_bytes: usize,
) -> Result<XmlRows<R>, ReadError> {
    let target = Target::parse(&options.record).ok_or_else(|| {
        ReadError::file(
            Location::new(file.clone(), 0),
            format!(
                "the record element `{}` is not a name nor a path of names: write the path \
                 from the root such as \"export/etudiants/etudiant\", or a bare name such as \
                 \"etudiant\"",
                options.record
            ),
        )
    })?;
    Ok(XmlRows {
        reader: Reader::from_reader(Tracked::new(reader, max_record_bytes)),
        max_record_bytes,
        buf: Vec::new(),
        file,
        encoding,
        target,
        open: Vec::new(),
        record: None,
        root_seen: false,
        event_line: 1,
        event_offset: 0,
        event_source: 0,
        done: false,
    })
}

/// Which elements are records (see [`XmlOptions::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Elements at exactly this path of names from the root.
    Path(Vec<String>),
    /// Elements of this name at any depth, outside other records.
    Name(String),
}

impl Target {
    /// A path if `record` holds a `/` (a leading one is allowed), else a bare name; `None`
    /// if empty or with an empty segment.
    fn parse(record: &str) -> Option<Target> {
        let record = record.trim();
        if !record.contains('/') {
            return (!record.is_empty()).then(|| Target::Name(record.to_string()));
        }
        let path = record.strip_prefix('/').unwrap_or(record);
        let names: Vec<String> = path.split('/').map(str::to_string).collect();
        (!names.iter().any(String::is_empty)).then_some(Target::Path(names))
    }

    /// Whether an element `name` whose ancestors are `open` is a record.
    fn matches(&self, open: &[Open], name: &str) -> bool {
        match self {
            Target::Name(target) => target == name,
            Target::Path(path) => {
                path.len() == open.len() + 1
                    && path.last().is_some_and(|last| last == name)
                    && open
                        .iter()
                        .zip(path)
                        .all(|(element, step)| element.name == *step)
            }
        }
    }
}

/// An open element: its name and the line of its start tag.
struct Open {
    name: String,
    line: u64,
}

/// The record being read: its fields so far and its source bytes.
struct Record {
    line: u64,
    /// Where its source starts (hidden bytes counted).
    source_start: u64,
    /// Whether it is over the limit: then it only follows the structure, holding nothing.
    too_long: bool,
    /// The record element and its open descendants, innermost last.
    frames: Vec<Frame>,
    /// `(name, value)` in document order; `None` for an element that turned out to hold
    /// only child elements (it has no value of its own).
    fields: Vec<Option<(Arc<str>, String)>>,
    /// The record's source bytes, from `<` of its start tag to `>` of its end tag.
    raw: Vec<u8>,
}

impl Record {
    /// Marks the record over the limit and lets go of what it held.
    fn set_too_long(&mut self) {
        self.too_long = true;
        self.raw = Vec::new();
        self.fields = Vec::new();
        for frame in &mut self.frames {
            *frame = Frame::bare();
        }
    }
}

/// An element open inside the record.
struct Frame {
    /// The field name of the element, relative to the record (`""` for the record).
    path: String,
    /// Where its value goes in [`Record::fields`] (`None` for the record element).
    slot: Option<usize>,
    text: String,
    has_children: bool,
}

impl Frame {
    /// A frame with no field of its own: the record element, or any element of a record
    /// over the limit.
    fn bare() -> Frame {
        Frame {
            path: String::new(),
            slot: None,
            text: String::new(),
            has_children: false,
        }
    }
}

/// The state of an XML read.
pub(super) struct XmlRows<R> {
    reader: Reader<Tracked<Unmarked<R>>>,
    max_record_bytes: usize,
    buf: Vec<u8>,
    file: Arc<str>,
    encoding: Encoding,
    target: Target,
    /// Every open element, root first.
    open: Vec<Open>,
    record: Option<Record>,
    root_seen: bool,
    /// Line and stream offset where the current event starts.
    event_line: u64,
    event_offset: u64,
    /// Where the current event starts in the source, hidden bytes counted.
    event_source: u64,
    done: bool,
}

/// What one event led to.
enum Step {
    Continue,
    Row(Row),
    End,
}

impl<R: Read> Iterator for XmlRows<R> {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let mut buf = std::mem::take(&mut self.buf);
            let step = self.step(&mut buf);
            self.buf = buf;
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::Row(row)) => return Some(Ok(row)),
                Ok(Step::End) => self.done = true,
                Err(error) => {
                    self.done = error.is_file_scope();
                    return Some(Err(error));
                }
            }
        }
        None
    }
}

impl<R: Read> XmlRows<R> {
    /// Reads and handles one event.
    fn step(&mut self, buf: &mut Vec<u8>) -> Result<Step, ReadError> {
        buf.clear();
        let tracked = self.reader.get_mut();
        tracked.event.clear();
        tracked.clipped = false;
        self.event_line = tracked.newlines + 1;
        self.event_offset = tracked.offset;
        self.event_source = tracked.source_offset();
        let event = self
            .reader
            .read_event_into(buf)
            .map_err(|error| self.parse_error(&error))?;
        // A clipped event holds the start of a data run only: it is not read, and the
        // record it is in is over the limit.
        let clipped = self.reader.get_ref().clipped;
        self.hold_event(clipped);
        match event {
            Event::Decl(decl) => self.check_declaration(&decl).map(|()| Step::Continue),
            Event::DocType(_) => Err(self.dtd()),
            Event::Start(start) => self.start(&start, clipped).map(|()| Step::Continue),
            Event::Empty(start) => {
                self.start(&start, clipped)?;
                self.end()
            }
            Event::End(_) => self.end(),
            Event::Text(_) | Event::CData(_) if clipped => Ok(Step::Continue),
            Event::Text(text) => {
                let text = self.decode_text(&text)?;
                self.text(&text).map(|()| Step::Continue)
            }
            Event::CData(data) => {
                let text = self.decode(&data)?;
                self.text(&text).map(|()| Step::Continue)
            }
            Event::Comment(_) | Event::PI(_) => Ok(Step::Continue),
            Event::Eof => self.finish(),
        }
    }

    /// Adds the current event's bytes to the record's source; a clipped event, or a
    /// source growing past the limit, makes the record over the limit instead.
    fn hold_event(&mut self, clipped: bool) {
        let event = &self.reader.get_ref().event;
        let Some(record) = self.record.as_mut().filter(|r| !r.too_long) else {
            return;
        };
        if clipped || record.raw.len() + event.len() > self.max_record_bytes {
            record.set_too_long();
        } else {
            record.raw.extend_from_slice(event);
        }
    }

    /// A start tag (or an empty element, whose end follows at once).
    fn start(&mut self, start: &BytesStart, clipped: bool) -> Result<(), ReadError> {
        let name = self.decode(start.name().as_ref())?.into_owned();
        let attributes = match clipped {
            true => Vec::new(),
            false => self.attributes(start)?,
        };
        if self.record.is_some() {
            self.child(&name, attributes);
        } else {
            self.check_root(&name)?;
            if self.target.matches(&self.open, &name) {
                self.begin_record(attributes, clipped);
            }
        }
        self.open.push(Open {
            name,
            line: self.event_line,
        });
        Ok(())
    }

    /// Starts a record at the current start tag, with its attributes as `@attr`.
    fn begin_record(&mut self, attributes: Vec<(String, String)>, clipped: bool) {
        let event = &self.reader.get_ref().event;
        let mut raw = Vec::with_capacity(event.len() + 1);
        if !event.starts_with(b"<") {
            // The `<` was consumed with the text before the tag.
            raw.push(b'<');
        }
        raw.extend_from_slice(event);
        let fields = attributes
            .into_iter()
            .map(|(key, value)| Some((Arc::from(format!("@{key}")), value)))
            .collect();
        let mut record = Record {
            line: self.event_line,
            source_start: self.event_source - u64::from(!event.starts_with(b"<")),
            too_long: false,
            frames: vec![Frame::bare()],
            fields,
            raw,
        };
        if clipped || record.raw.len() > self.max_record_bytes {
            record.set_too_long();
        }
        self.record = Some(record);
    }

    /// An element inside the record: a field `path` (value filled at its end) and its
    /// attributes `path/@attr`.
    fn child(&mut self, name: &str, attributes: Vec<(String, String)>) {
        let Some(record) = self.record.as_mut() else {
            return;
        };
        let Some(parent) = record.frames.last_mut() else {
            return;
        };
        parent.has_children = true;
        if record.too_long {
            record.frames.push(Frame::bare());
            return;
        }
        let path = if parent.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", parent.path)
        };
        let slot = record.fields.len();
        record
            .fields
            .push(Some((Arc::from(path.as_str()), String::new())));
        for (key, value) in attributes {
            record
                .fields
                .push(Some((Arc::from(format!("{path}/@{key}")), value)));
        }
        record.frames.push(Frame {
            path,
            slot: Some(slot),
            text: String::new(),
            has_children: false,
        });
    }

    /// An end tag: closes the element; closing the record yields its row.
    fn end(&mut self) -> Result<Step, ReadError> {
        self.open.pop();
        let Some(record) = self.record.as_mut() else {
            return Ok(Step::Continue);
        };
        if let Some(frame) = record.frames.pop() {
            close_frame(record, frame);
        }
        if !record.frames.is_empty() {
            return Ok(Step::Continue);
        }
        match self.record.take() {
            Some(record) => self.build_row(record).map(Step::Row),
            None => Ok(Step::Continue),
        }
    }

    /// Text inside the record goes to the innermost element; outside a record, text must be
    /// blank outside the root element.
    fn text(&mut self, text: &str) -> Result<(), ReadError> {
        if let Some(record) = self.record.as_mut() {
            if let Some(frame) = record.frames.last_mut().filter(|_| !record.too_long) {
                frame.text.push_str(text);
            }
            return Ok(());
        }
        if self.open.is_empty() && !text.chars().all(is_xml_space) {
            return Err(self.malformed("text outside the root element"));
        }
        Ok(())
    }

    /// The end of the input: an open element means a truncated document.
    fn finish(&mut self) -> Result<Step, ReadError> {
        if let Some(open) = self.open.last() {
            let line = self.reader.get_ref().newlines + 1;
            let within = match &self.record {
                Some(record) => format!(" (in the record starting at line {})", record.line),
                None => String::new(),
            };
            return Err(ReadError::file(
                self.location(line),
                format!(
                    "the document ends inside <{}> opened at line {}{within}: the file is \
                     truncated, so nothing of it is applied. Export it again",
                    open.name, open.line
                ),
            ));
        }
        if !self.root_seen {
            return Err(self.malformed("the file holds no XML element (is it empty?)"));
        }
        Ok(Step::End)
    }

    /// Builds the row of a completed record; one over the limit is a Row error.
    fn build_row(&self, record: Record) -> Result<Row, ReadError> {
        if record.too_long {
            let length = self.reader.get_ref().source_offset() - record.source_start;
            return Err(ReadError::row(
                self.location(record.line),
                format!(
                    "the record is {length} bytes long, over the limit of {} \
                     (max_record_bytes): it is read past, not held",
                    self.max_record_bytes
                ),
            ));
        }
        let raw = self.encoding.decode(&record.raw).map_err(|error| {
            ReadError::file(self.location(record.line), format!("the record is {error}"))
        })?;
        let fields = record.fields.into_iter().flatten().collect();
        Ok(Row::new(self.location(record.line), fields, compact(&raw)))
    }

    /// The root element must be the path's first name, and there is only one root.
    fn check_root(&mut self, name: &str) -> Result<(), ReadError> {
        if !self.open.is_empty() {
            return Ok(());
        }
        if self.root_seen {
            return Err(self.malformed(&format!(
                "a second root element <{name}>: an XML document has one root element"
            )));
        }
        self.root_seen = true;
        match &self.target {
            Target::Path(path) if path.first().is_some_and(|root| root != name) => {
                Err(ReadError::file(
                    self.location(self.event_line),
                    format!(
                        "the document's root element is <{name}> but the record path `{}` \
                         starts at <{}>: check the record path of the mapping",
                        path.join("/"),
                        path.first().map_or("", String::as_str)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// An XML declaration naming another encoding than the declared one refuses the file.
    fn check_declaration(&self, decl: &BytesDecl) -> Result<(), ReadError> {
        let Some(label) = decl.encoding() else {
            return Ok(());
        };
        let label = label.map_err(|error| self.malformed(&error.to_string()))?;
        let label = String::from_utf8_lossy(&label);
        let agrees = match label.parse::<Encoding>() {
            Ok(declared) => declared == self.encoding,
            // ASCII is a subset of every encoding read here.
            Err(_) => matches!(label.to_ascii_lowercase().as_str(), "us-ascii" | "ascii"),
        };
        if agrees {
            return Ok(());
        }
        Err(ReadError::file(
            self.location(self.event_line),
            format!(
                "the XML declaration says encoding=\"{label}\" but the source's declared \
                 encoding is {}: one of them is wrong. Declare the encoding the file is \
                 really written in",
                self.encoding
            ),
        ))
    }

    /// The element's attributes, decoded and unescaped.
    fn attributes(&self, start: &BytesStart) -> Result<Vec<(String, String)>, ReadError> {
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|error| self.malformed(&error.to_string()))?;
            let key = self.decode(attribute.key.as_ref())?.into_owned();
            let value = self.decode(&attribute.value)?;
            let value = self.unescape(&value)?;
            attributes.push((key, value));
        }
        Ok(attributes)
    }

    /// A text event decoded and unescaped.
    fn decode_text(&self, text: &[u8]) -> Result<String, ReadError> {
        let decoded = self.decode(text)?;
        self.unescape(&decoded)
    }

    /// Decodes bytes of the current event strictly; the line of a bad byte counts the
    /// newlines before it in `bytes` (exact for text, which starts its event).
    fn decode<'b>(&self, bytes: &'b [u8]) -> Result<Cow<'b, str>, ReadError> {
        self.encoding.decode(bytes).map_err(|error| {
            let before = bytes.get(..error.offset).unwrap_or_default();
            let line = self.event_line + count_newlines(before);
            ReadError::file(self.location(line), format!("the document is {error}"))
        })
    }

    /// Replaces the predefined entities and character references; any other entity
    /// refuses the file (it could only be declared in a DTD, which is refused).
    fn unescape(&self, text: &str) -> Result<String, ReadError> {
        unescape(text)
            .map(|text| text.into_owned())
            .map_err(|error| {
                let (at, reason) = match &error {
                    EscapeError::UnrecognizedEntity(range, name) => (
                        range.start,
                        format!(
                            "the entity reference &{name}; is refused: only the five predefined \
                             entities (&lt; &gt; &amp; &apos; &quot;) and character references \
                             (&#233; &#xE9;) are read, since other entities need a DTD, and DTDs \
                             are refused"
                        ),
                    ),
                    EscapeError::UnterminatedEntity(range) => (
                        range.start,
                        "malformed XML: a `&` that does not start an entity reference such as \
                         &amp; (a literal & is written &amp;)"
                            .to_string(),
                    ),
                    EscapeError::InvalidCharRef(error) => (
                        0,
                        format!("malformed XML: invalid character reference ({error})"),
                    ),
                };
                let line =
                    self.event_line + count_newlines(text.get(..at).unwrap_or_default().as_bytes());
                ReadError::file(self.location(line), reason)
            })
    }

    /// The error for a DTD: refused whatever it declares.
    fn dtd(&self) -> ReadError {
        ReadError::file(
            self.location(self.event_line),
            "DTDs are refused: entity expansion (billion laughs) and external entities make a \
             DTD a denial-of-service and data-leak risk, and an export needs none. Export the \
             file without its <!DOCTYPE …>",
        )
    }

    /// A parse error of quick-xml, at the line of the position it reports.
    fn parse_error(&self, error: &quick_xml::Error) -> ReadError {
        let tracked = self.reader.get_ref();
        let within = self
            .reader
            .error_position()
            .saturating_sub(self.event_offset) as usize;
        let before = tracked.event.get(..within).unwrap_or(&tracked.event);
        let line = self.event_line + count_newlines(before);
        let reason = match error {
            quick_xml::Error::Io(error) => {
                let inner = error.get_ref().and_then(|e| e.downcast_ref::<Oversized>());
                if let Some(oversized) = inner {
                    return ReadError::file(self.location(oversized.line), oversized.to_string());
                }
                format!("cannot read the file: {error}")
            }
            other => {
                format!("malformed XML ({other}): the file is refused; is it truncated or not XML?")
            }
        };
        ReadError::file(self.location(line), reason)
    }

    /// A File error for malformed XML at the current event.
    fn malformed(&self, what: &str) -> ReadError {
        ReadError::file(
            self.location(self.event_line),
            format!("malformed XML: {what}; the file is refused"),
        )
    }

    /// A location in this file at `line`.
    fn location(&self, line: u64) -> Location {
        Location::new(self.file.clone(), line)
    }
}

/// Gives a closed element its value: its trimmed text, except an element with children and
/// only blank text, which has none.
fn close_frame(record: &mut Record, frame: Frame) {
    let Some(slot) = frame.slot.and_then(|slot| record.fields.get_mut(slot)) else {
        return;
    };
    let text = frame.text.trim_matches(is_xml_space);
    if frame.has_children && text.is_empty() {
        *slot = None;
    } else if let Some((_, value)) = slot {
        *value = text.to_string();
    }
}

/// XML white space (not Unicode's: a no-break space is text).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The number of `\n` bytes in `bytes`.
/// The record's source on one line: indentation between tags removed, other line breaks
/// turned into a space.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lines = text.lines().map(|line| line.trim_matches(is_xml_space));
    for line in lines.filter(|line| !line.is_empty()) {
        if !out.is_empty() && !out.ends_with('>') && !line.starts_with('<') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ErrorScope, Format};
    use super::*;

    fn xml(record: &str) -> Format {
        Format::Xml(XmlOptions::new(record))
    }

    fn read(data: &[u8], record: &str, encoding: Encoding) -> Vec<Result<Row, ReadError>> {
        read_all("e.xml", data, &xml(record), encoding)
    }

    /// The reader itself (its buffers in view) on `data`, records `etudiant`.
    fn limited(data: String, max_record_bytes: usize) -> XmlRows<std::io::Cursor<Vec<u8>>> {
        let input = std::io::Cursor::new(Vec::new()).chain(std::io::Cursor::new(data.into()));
        let options = XmlOptions::new("etudiant");
        rows(
            input,
            "e.xml".into(),
            &options,
            Encoding::Utf8,
            max_record_bytes,
        )
        .unwrap()
    }

    /// The outcome of each record of `rows`: its `nom` and line, or its error's scope, line
    /// and reason.
    fn outcomes(rows: impl Iterator<Item = Result<Row, ReadError>>) -> Vec<String> {
        rows.map(|item| match item {
            Ok(row) => format!("{} at {}", row.get("nom").unwrap_or("-"), row.location.line),
            Err(error) => format!(
                "{:?} at {}: {}",
                error.scope, error.location.line, error.reason
            ),
        })
        .collect()
    }

    #[test]
    fn a_record_over_the_limit_is_read_past_without_being_held() {
        let long = format!("{}\n&amp;{}", "é".repeat(600_000), "x".repeat(600_000));
        let data = format!(
            "<export>\n<etudiant><nom>A</nom></etudiant>\n\
             <etudiant><nom>B</nom><note>{long}</note></etudiant>\n\
             <etudiant note=\"{long}\"><nom>C</nom></etudiant>\n\
             <etudiant><nom>D</nom><note><![CDATA[{long}]]]]></note></etudiant>\n\
             <etudiant><nom>E</nom>{}</etudiant>\n\
             <etudiant><nom>F &amp; G</nom><note>court</note></etudiant>\n</export>\n",
            "<n>12345678</n>".repeat(500),
        );
        let mut rows = limited(data, 4096);
        let mut seen = Vec::new();
        while let Some(item) = rows.next() {
            assert!(
                rows.buf.capacity() <= 2 * 4096 + 64 * 1024,
                "{}",
                rows.buf.capacity()
            );
            seen.extend(outcomes(std::iter::once(item)));
        }
        let over = |line, length| {
            format!(
                "Row at {line}: the record is {length} bytes long, over the limit of 4096 \
                 (max_record_bytes): it is read past, not held"
            )
        };
        assert_eq!(
            seen,
            [
                "A at 2".to_string(),
                over(3, 1_800_052),
                over(5, 1_800_047),
                over(7, 1_800_066),
                over(9, 7_533),
                "F & G at 10".to_string(),
            ]
        );
    }

    #[test]
    fn a_comment_or_a_tag_over_the_limit_refuses_the_file_at_its_line() {
        let comment = format!("<export>\n\n<!-- {} -->\n</export>\n", "x".repeat(5000));
        let tag = format!(
            "<export>\n<etudiant {}/></export>\n",
            (0..1000).map(|i| format!("a{i}='1' ")).collect::<String>()
        );
        for (data, what, line) in [(comment, "a comment", 3), (tag, "a tag", 2)] {
            let seen = outcomes(limited(data, 4096));
            assert_eq!(
                seen,
                [format!(
                    "File at {line}: {what} starting at line {line} is longer than 4096 bytes \
                     (max_record_bytes): it is not data, so it cannot be set aside, and the \
                     file is refused"
                )]
            );
        }
    }

    const EXPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- export nocturne -->
<export>
  <etudiants>
    <etudiant id="1">
      <nom>Dupont &amp; fils</nom>
      <prenom>
        Hélène
      </prenom>
      <adresse type="perso"><ville>Lyon</ville></adresse>
      <statut code="SHN"/>
      <statut code="SAL"/>
      <inscription><etape>L1</etape></inscription>
      <inscription><etape>L2</etape></inscription>
      <note><![CDATA[a < b]]></note>
      <vide/>
    </etudiant>
    <etudiant id="2"><nom>Martin</nom></etudiant>
  </etudiants>
</export>
"#;

    #[test]
    fn records_are_read_with_children_attributes_and_repeats() {
        let rows = rows_of(read(
            EXPORT.as_bytes(),
            "export/etudiants/etudiant",
            Encoding::Utf8,
        ));
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        assert_eq!(row.location.line, 5);
        assert_eq!(row.get("@id"), Some("1"));
        assert_eq!(row.get("nom"), Some("Dupont & fils"));
        assert_eq!(row.get("prenom"), Some("Hélène"));
        assert_eq!(row.get("adresse"), None);
        assert_eq!(row.get("adresse/@type"), Some("perso"));
        assert_eq!(row.get("adresse/ville"), Some("Lyon"));
        assert_eq!(row.get("statut/@code"), Some("SHN"));
        assert_eq!(row.get_all("statut/@code"), ["SHN", "SAL"]);
        assert_eq!(row.get_all("inscription/etape"), ["L1", "L2"]);
        assert_eq!(row.get("note"), Some("a < b"));
        assert_eq!(row.get("vide"), Some(""));
        assert_eq!(rows[1].location.line, 18);
        assert_eq!(
            rows[1].raw(),
            r#"<etudiant id="2"><nom>Martin</nom></etudiant>"#
        );
        assert!(
            row.raw().starts_with(
                r#"<etudiant id="1"><nom>Dupont &amp; fils</nom><prenom>Hélène</prenom>"#
            ),
            "{}",
            row.raw()
        );
        assert!(row.raw().ends_with("<vide/></etudiant>"), "{}", row.raw());
    }

    #[test]
    fn a_bare_name_matches_at_any_depth_and_a_wrong_root_is_refused() {
        let rows = rows_of(read(EXPORT.as_bytes(), "etudiant", Encoding::Utf8));
        assert_eq!(rows.len(), 2);
        let rows = rows_of(read(
            EXPORT.as_bytes(),
            "/export/etudiants/etudiant",
            Encoding::Utf8,
        ));
        assert_eq!(rows.len(), 2);
        let items = read(EXPORT.as_bytes(), "exports/etudiant", Encoding::Utf8);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 3));
        assert!(error.reason.contains("root element is <export>"), "{error}");
    }

    #[test]
    fn a_billion_laughs_dtd_is_refused() {
        let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz><lol>&lol3;</lol></lolz>"#;
        let items = read(bomb, "lolz/lol", Encoding::Utf8);
        assert_eq!(items.len(), 1);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 2));
        assert!(error
            .reason
            .starts_with("DTDs are refused: entity expansion (billion laughs)"));
    }

    #[test]
    fn an_undeclared_entity_is_refused_but_character_references_are_read() {
        let items = read(
            b"<r>\n<e><n>&#233;&#xE9;</n></e>\n<e><n>a\n&nbsp;</n></e></r>",
            "r/e",
            Encoding::Utf8,
        );
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().get("n"), Some("éé"));
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 4));
        assert!(error.reason.contains("&nbsp; is refused"), "{error}");
    }

    #[test]
    fn a_truncated_document_is_refused_naming_the_line() {
        let items = read(
            b"<r>\n<e><n>1</n></e>\n<e>\n<n>2</n>\n",
            "r/e",
            Encoding::Utf8,
        );
        assert!(items[0].is_ok());
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 5));
        assert!(
            error.reason.contains("ends inside <e> opened at line 3"),
            "{error}"
        );
        assert!(error.reason.contains("truncated"), "{error}");

        let items = read(b"<r>\n<e><n>1</n></e>\n<e a=\"x", "r/e", Encoding::Utf8);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 3));
    }

    #[test]
    fn malformed_xml_is_refused_with_its_line() {
        let items = read(
            b"<r>\n<e><n>1</n></e>\n<e><n>2</m></e>\n</r>",
            "r/e",
            Encoding::Utf8,
        );
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 3));
        assert!(error.reason.starts_with("malformed XML"), "{error}");
        let items = read(b"", "r/e", Encoding::Utf8);
        assert!(last_error(&items).reason.contains("no XML element"));
    }

    #[test]
    fn the_declared_encoding_decodes_and_a_contradicting_declaration_is_refused() {
        let latin1 =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<r><e><n>H\xe9l\xe8ne</n></e></r>";
        let rows = rows_of(read(latin1, "r/e", Encoding::Iso8859_1));
        assert_eq!(rows[0].get("n"), Some("Hélène"));
        assert_eq!(rows[0].raw(), "<e><n>Hélène</n></e>");

        let utf8 = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<r><e><n>Hélène</n></e></r>";
        let rows = rows_of(read(utf8.as_bytes(), "r/e", Encoding::Utf8));
        assert_eq!(rows[0].get("n"), Some("Hélène"));

        let items = read(latin1, "r/e", Encoding::Utf8);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 1));
        assert!(error.reason.contains("encoding=\"ISO-8859-1\""), "{error}");
        assert!(
            error.reason.contains("declared encoding is utf-8"),
            "{error}"
        );
    }

    #[test]
    fn latin1_bytes_in_an_undeclared_utf8_document_are_refused_at_their_line() {
        let items = read(
            b"<r>\n<e><n>a</n></e>\n<e>\n<n>H\xe9l\xe8ne</n></e></r>",
            "r/e",
            Encoding::Utf8,
        );
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 4));
        assert!(
            error.reason.contains("is it iso-8859-1 or windows-1252?"),
            "{error}"
        );
    }

    #[test]
    fn lines_are_counted_through_small_reads() {
        // A reader that returns one byte at a time: events straddle every buffer refill.
        struct Trickle(std::io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let len = out.len().min(1);
                self.0.read(&mut out[..len])
            }
        }
        let data = EXPORT.as_bytes().to_vec();
        let rows = super::super::from_reader(
            Trickle(std::io::Cursor::new(data)),
            "t.xml",
            &xml("etudiant"),
            Encoding::Utf8,
            conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap();
        let lines: Vec<u64> = rows.map(|row| row.unwrap().location.line).collect();
        assert_eq!(lines, [5, 18]);
    }
}
