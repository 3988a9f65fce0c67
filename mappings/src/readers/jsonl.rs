//! JSON Lines reader: one JSON object per line, flattened into named text values.
//!
//! Lines are read one at a time into a reused buffer, at most `max_record_bytes` of each
//! (a longer line is quarantined, read past without being held), and decoded strictly in
//! the declared encoding (a wrong encoding refuses the file). Values are kept as JSON text until they are
//! scalars ([`RawValue`]), so numbers reach the mapping exactly as written (`12.50`,
//! `1e3`, a 25-digit number), not as re-printed floating-point values.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufReader, Read};
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ReadError, Unmarked};
use crate::encoding::Encoding;
use crate::row::{Location, Row};
use conpere_connectors::files::{read_line, Line};

/// The rows of a JSON Lines stream whose byte order mark was already handled.
pub(super) fn rows<R: Read + Send + 'static>(
    reader: Unmarked<R>,
    file: Arc<str>,
    encoding: Encoding,
    max_record_bytes: usize,
) -> impl Iterator<Item = Result<Row, ReadError>> + Send {
    JsonLinesRows {
        reader: BufReader::new(reader),
        file,
        encoding,
        max_record_bytes,
        line: 0,
        buffer: Vec::new(),
    }
}

/// The state of a JSON Lines read: the reader, the line number, a reused line buffer.
struct JsonLinesRows<R> {
    reader: BufReader<R>,
    file: Arc<str>,
    encoding: Encoding,
    max_record_bytes: usize,
    /// The 1-based number of the last line read.
    line: u64,
    buffer: Vec<u8>,
}

impl<R: Read> Iterator for JsonLinesRows<R> {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            match read_line(&mut self.reader, &mut self.buffer, self.max_record_bytes) {
                Ok(Line::End) => return None,
                Ok(Line::Read) => self.line += 1,
                Ok(Line::TooLong(length)) => {
                    self.line += 1;
                    let location = Location::new(self.file.clone(), self.line);
                    return Some(Err(ReadError::row(
                        location,
                        format!(
                            "the line is {length} bytes long, over the limit of {} \
                             (max_record_bytes): it is read past, not held",
                            self.max_record_bytes
                        ),
                    )));
                }
                Err(error) => return Some(Err(ReadError::io(&self.file, self.line + 1, &error))),
            }
            let bytes = trim_line_end(&self.buffer);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(self.read_row(bytes));
        }
    }
}

impl<R> JsonLinesRows<R> {
    /// Decodes (a wrong encoding refuses the file) and parses one non-blank line.
    fn read_row(&self, bytes: &[u8]) -> Result<Row, ReadError> {
        let location = Location::new(self.file.clone(), self.line);
        match self.encoding.decode(bytes) {
            Ok(text) => parse_line(location, text),
            Err(error) => Err(ReadError::file(location, format!("the line is {error}"))),
        }
    }
}

/// The line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses one decoded line into a row; not JSON, or not an object, spoils the row.
fn parse_line(location: Location, text: Cow<'_, str>) -> Result<Row, ReadError> {
    let value: &RawValue =
        serde_json::from_str(&text).map_err(|error| not_json(&location, &error))?;
    if !value.get().starts_with('{') {
        let found = describe(value.get());
        return Err(ReadError::row(
            location,
            format!(
                "the line holds {found}, not an object: each line must be one JSON object {{…}}"
            ),
        ));
    }
    let mut fields = Vec::new();
    flatten("", value, &mut fields).map_err(|error| not_json(&location, &error))?;
    Ok(Row::new(location, fields, text.into_owned()))
}

/// The Row error for a line that is not valid JSON, with the column of the problem.
fn not_json(location: &Location, error: &serde_json::Error) -> ReadError {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    ReadError::row(
        location.clone(),
        format!(
            "the line is not valid JSON ({message} at column {}): each line must be one JSON \
             object {{…}}",
            error.column()
        ),
    )
}

/// What kind of JSON value `text` is, for error messages.
fn describe(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Appends the scalars of `value` to `fields` under `prefix` (objects `a.b`, arrays `a.0`).
fn flatten(
    prefix: &str,
    value: &RawValue,
    fields: &mut Vec<(Arc<str>, String)>,
) -> Result<(), serde_json::Error> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let Members(members) = serde_json::from_str(text)?;
            for (key, member) in members {
                flatten(&join(prefix, &key), member, fields)?;
            }
        }
        Some(b'[') => {
            let elements: Vec<&RawValue> = serde_json::from_str(text)?;
            for (index, element) in elements.into_iter().enumerate() {
                flatten(&join(prefix, &index.to_string()), element, fields)?;
            }
        }
        Some(b'"') => fields.push((prefix.into(), serde_json::from_str(text)?)),
        Some(b'n') => {}
        _ => fields.push((prefix.into(), text.to_string())),
    }
    Ok(())
}

/// `prefix.key`, or `key` at the top level.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// An object's members in the order written, values still as JSON text; a member twice
/// is an error, never "the last one wins".
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Collects an object's members without interpreting their values.
struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(String, &'de RawValue)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
            if members.iter().any(|(k, _)| *k == key) {
                return Err(serde::de::Error::custom(format!(
                    "member `{key}` appears twice: which one is meant cannot be told"
                )));
            }
            members.push((key, value));
        }
        Ok(Members(members))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{ErrorScope, Format};
    use super::*;

    fn read(data: &[u8], encoding: Encoding) -> Vec<Result<Row, ReadError>> {
        read_all("e.jsonl", data, &Format::JsonLines, encoding)
    }

    #[test]
    fn a_line_over_the_limit_spoils_its_row_only() {
        let long = format!(
            "{{\"id\":\"{}\"}}\n",
            "x".repeat(conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES)
        );
        let data = format!("{long}{{\"id\":\"2\"}}\n");
        let rows = read(data.as_bytes(), Encoding::Utf8);
        let error = rows[0].as_ref().unwrap_err();
        assert_eq!(error.scope, ErrorScope::Row);
        assert!(error.reason.contains("over the limit"), "{}", error.reason);
        assert_eq!(error.location.line, 1);
        assert_eq!(rows[1].as_ref().unwrap().get("id"), Some("2"));
    }

    #[test]
    fn a_member_twice_spoils_its_row() {
        let rows = read(
            b"{\"id\":\"1\",\"id\":\"2\"}\n{\"id\":\"3\"}\n",
            Encoding::Utf8,
        );
        let error = rows[0].as_ref().unwrap_err();
        assert_eq!(error.scope, ErrorScope::Row);
        assert!(
            error.reason.contains("member `id` appears twice"),
            "{}",
            error.reason
        );
        assert_eq!(rows[1].as_ref().unwrap().get("id"), Some("3"));
    }

    #[test]
    fn objects_are_flattened_with_dots_and_scalars_kept_as_written() {
        let data = r#"{"ine":"123","nom":"Hélène","ects":12.50,"big":12345678901234567890123,"boursier":true,"email":null,"adresse":{"ville":"Lyon"},"statuts":["SHN","SAL"],"ins":[{"etape":"L1"},{"etape":"L2"}]}"#.as_bytes();
        let rows = rows_of(read(data, Encoding::Utf8));
        let row = &rows[0];
        assert_eq!(row.get("nom"), Some("Hélène"));
        assert_eq!(row.get("ects"), Some("12.50"));
        assert_eq!(row.get("big"), Some("12345678901234567890123"));
        assert_eq!(row.get("boursier"), Some("true"));
        assert_eq!(row.get("email"), None);
        assert_eq!(row.get("adresse.ville"), Some("Lyon"));
        assert_eq!(row.get("statuts.1"), Some("SAL"));
        assert_eq!(row.get_all("statuts"), ["SHN", "SAL"]);
        assert_eq!(row.get("ins.1.etape"), Some("L2"));
        assert_eq!(row.raw(), std::str::from_utf8(data).unwrap());
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let rows = rows_of(read(
            b"\n{\"a\":\"1\"}\r\n   \n{\"a\":\"2\"}",
            Encoding::Utf8,
        ));
        let lines: Vec<u64> = rows.iter().map(|row| row.location.line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(rows[1].get("a"), Some("2"));
    }

    #[test]
    fn a_line_that_is_not_json_or_not_an_object_is_a_row_error() {
        let items = read(b"{\"a\":1}\n{\"a\":\n[1,2]\n{\"a\":3}\n", Encoding::Utf8);
        assert_eq!(items.len(), 4);
        let broken = items[1].as_ref().unwrap_err();
        assert_eq!((broken.scope, broken.location.line), (ErrorScope::Row, 2));
        assert!(broken.reason.contains("not valid JSON"), "{broken}");
        assert!(broken.reason.contains("at column"), "{broken}");
        let array = items[2].as_ref().unwrap_err();
        assert_eq!((array.scope, array.location.line), (ErrorScope::Row, 3));
        assert!(
            array.reason.contains("holds an array, not an object"),
            "{array}"
        );
        assert_eq!(items[3].as_ref().unwrap().get("a"), Some("3"));
    }

    #[test]
    fn a_wrong_encoding_refuses_the_file() {
        let data = b"{\"nom\":\"Dupont\"}\n{\"nom\":\"H\xe9l\xe8ne\"}\n{\"nom\":\"Z\"}\n";
        let items = read(data, Encoding::Utf8);
        assert_eq!(items.len(), 2);
        let error = last_error(&items);
        assert_eq!((error.scope, error.location.line), (ErrorScope::File, 2));
        assert!(
            error.reason.contains("is it iso-8859-1 or windows-1252?"),
            "{error}"
        );

        let rows = rows_of(read(data, Encoding::Iso8859_1));
        assert_eq!(rows[1].get("nom"), Some("Hélène"));
    }
}
