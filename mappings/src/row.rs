//! One row of a proprietary export, whatever its format: named text values and where they
//! come from.
//!
//! Mappings see every format the same way: a [`Row`] is a list of `(name, value)` pairs in
//! the order of the source, names may repeat (repeated XML elements), and values are text
//! decoded from the declared encoding. Typing (dates, numbers, codes) is the mapping's job.

use std::fmt;
use std::sync::Arc;

/// Where a row comes from: the file name as given (displayed as is) and the 1-based line
/// where the row starts.
///
/// Line 0 means the file as a whole (an error before any line was read, such as a file that
/// cannot be opened); it is displayed as the file name alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file name as the caller gave it (usually relative to the drop directory).
    pub file: Arc<str>,
    /// 1-based line where the row (or the problem) starts; 0 for the whole file.
    pub line: u64,
}

impl Location {
    /// A location in `file` at 1-based `line` (0 for the whole file).
    pub fn new(file: Arc<str>, line: u64) -> Self {
        Location { file, line }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// One row of an export: named text values.
///
/// Names, by format:
/// * **CSV**: the header's names, or `"1"`, `"2"`… (1-based column numbers) when the file
///   has no header row. Every column is present (an empty cell is `Some("")`).
/// * **JSON Lines**: the object's fields flattened with `.`: nested objects `a.b`, array
///   elements `a.0`, `a.0.b`. Scalars as text: strings unescaped, numbers as written
///   (`12.50` stays `"12.50"`), `true`/`false`; `null` is absent.
/// * **XML**, relative to the record element: a child element's text `name` (whitespace
///   around the text trimmed), deeper `name/sub`, the record's attributes `@attr`, a
///   child's `name/@attr`. An element with child elements has a value only if it also holds
///   non-blank text; an empty leaf element (`<x/>`) is `Some("")`. Repeated children:
///   [`Row::get`] gives the first, [`Row::get_all`] all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the row starts.
    pub location: Location,
    fields: Vec<(Arc<str>, String)>,
    raw: String,
}

impl Row {
    /// A row of `fields` in source order; `raw` is its source text for quarantine.
    pub fn new(location: Location, fields: Vec<(Arc<str>, String)>, raw: String) -> Self {
        Row {
            location,
            fields,
            raw,
        }
    }

    /// The value of `name` (the first one when repeated); `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| &**field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated field, in source order: repeated XML elements, or the
    /// scalar elements of a JSON array `name` (its fields `name.0`, `name.1`…). Empty when
    /// absent.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let exact: Vec<&str> = self
            .fields
            .iter()
            .filter(|(field, _)| &**field == name)
            .map(|(_, value)| value.as_str())
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        self.fields
            .iter()
            .filter(|(field, _)| is_array_element(field, name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The names present in this row, in source order, each once (for error messages such
    /// as "the row has columns …").
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .enumerate()
            .filter(|(index, (name, _))| !self.fields[..*index].iter().any(|(n, _)| n == name))
            .map(|(_, (name, _))| &**name)
    }

    /// The row as source text, for quarantine: CSV the record's line(s) decoded, JSON Lines
    /// the line, XML the record element with the indentation between tags removed.
    pub fn raw(&self) -> String {
        self.raw.clone()
    }
}

/// Whether `field` is `name.N` (a direct element of the JSON array `name`).
fn is_array_element(field: &str, name: &str) -> bool {
    field
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, &str)]) -> Row {
        let fields = fields
            .iter()
            .map(|(name, value)| (Arc::from(*name), value.to_string()))
            .collect();
        Row::new(Location::new("f.csv".into(), 3), fields, "raw".into())
    }

    #[test]
    fn get_gives_the_first_value_and_none_when_absent() {
        let row = row(&[("a", "1"), ("b", ""), ("a", "2")]);
        assert_eq!(row.get("a"), Some("1"));
        assert_eq!(row.get("b"), Some(""));
        assert_eq!(row.get("c"), None);
    }

    #[test]
    fn get_all_gives_repeated_values_or_array_elements() {
        let row = row(&[
            ("a", "1"),
            ("t.0", "x"),
            ("a", "2"),
            ("t.1", "y"),
            ("t.1.z", "no"),
        ]);
        assert_eq!(row.get_all("a"), ["1", "2"]);
        assert_eq!(row.get_all("t"), ["x", "y"]);
        assert!(row.get_all("missing").is_empty());
    }

    #[test]
    fn names_are_listed_once_in_source_order() {
        let row = row(&[("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(row.names().collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn a_location_displays_as_file_colon_line() {
        assert_eq!(
            Location::new("x/y.csv".into(), 12).to_string(),
            "x/y.csv:12"
        );
        assert_eq!(Location::new("y.csv".into(), 0).to_string(), "y.csv");
    }
}
