//! Mapping files: TOML that says, for each record kind, where its rows come from and how
//! each canonical field is computed from a row. Loaded and checked whole before any
//! export is read ([`MappingFile::parse`]); every error names the mapping file and line.
//!
//! ```toml
//! name = "canonical-csv"
//! description = "one CSV file per canonical record kind"
//! encoding = "utf-8"                 # of every input, unless the input or the source says
//!
//! [tables.regimes]                   # code tables for lookup(x, regimes)
//! "10" = "initial"
//!
//! [manifest]                         # optional: a propertyName,value file of the drop
//! file = "manifest.csv"
//! require = { "oneroster.version" = "1.1" }
//! input_property = "file.{name}"     # per named input: bulk | delta | absent
//!
//! [[references]]                     # another file of the drop, looked up by key:
//! name = "classes"                   # lookup(classSourcedId, classes.courseSourcedId)
//! files = "classes.csv"
//! format = "csv"
//! key = "sourcedId"
//! columns = ["courseSourcedId", "classCode"]
//!
//! [[inputs]]
//! name = "users"                     # optional, for the manifest
//! kind = "student"                   # the canonical record kind produced
//! files = "students*.csv"            # a file name or glob, in the drop directory
//! format = "csv"                     # csv | jsonl | xml | sql (with `view`, for SQL sources)
//! delimiter = ";"                    # csv: delimiter, quote, header (default true)
//! # record = "export/etudiant"      # xml: path of the record element
//! expect = "in(statut, 'actif', 'test')"   # rows for which this is false are quarantined
//! filter = "ne(statut, 'test')"      # rows for which this is false are skipped
//! tombstone = "eq(status, 'tobedeleted')"   # rows for which this is true delete the record
//! modified = "dateLastModified"             # when the source last changed the record
//! [inputs.fields]                    # canonical field = expression (see `expr`)
//! student = "numero"
//! family_name = "trim(nom)"
//! birth_date = "date(naissance, '%d/%m/%Y')"
//! ```

use crate::encoding::Encoding;
use crate::expr::{Expr, Tables};
use crate::fields::{self, Field};
use crate::readers::{CsvOptions, Format, SqlOptions, XmlOptions};
use conpere_model::Kind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// A mapping file, checked: every expression parsed, every field known.
#[derive(Debug, Clone)]
pub struct MappingFile {
    /// Where it was read from (a path, or `shipped:<name>`), for messages.
    pub origin: String,
    /// Its name.
    pub name: String,
    /// Code tables.
    pub tables: Tables,
    /// Where each kind's rows come from, in file order.
    pub inputs: Vec<Input>,
    /// Other files of the drop, loaded first and looked up by key.
    pub references: Vec<Reference>,
    /// The drop's manifest, when the format has one.
    pub manifest: Option<Manifest>,
}

/// A file of the drop whose rows other rows look up by key (a dimension: classes,
/// courses, sessions). Its `columns` become the code tables `<name>.<column>`, key →
/// value; it is held in memory, so it should be the small side of a join.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The mapping line where it starts.
    pub line: usize,
    /// Its name in expressions.
    pub name: String,
    /// File name or glob.
    pub files: String,
    /// How the files are read.
    pub format: Format,
    /// Their encoding.
    pub encoding: Encoding,
    /// The column whose value identifies a row.
    pub key: String,
    /// The columns looked up.
    pub columns: Vec<String>,
}

/// A `propertyName,value` CSV file of the drop that says what the drop holds
/// (OneRoster's `manifest.csv`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Its file name.
    pub file: String,
    /// Properties that must have these values (the format's version).
    #[serde(default)]
    pub require: BTreeMap<String, String>,
    /// The property giving each named input's presence (`{name}` replaced):
    /// `bulk`, `delta` or `absent`.
    #[serde(default)]
    pub input_property: Option<String>,
}

/// One input: rows of one kind of record.
#[derive(Debug, Clone)]
pub struct Input {
    /// The mapping line where it starts (`[[inputs]]`).
    pub line: usize,
    /// Its name, for the manifest (`users`, `enrollments`).
    pub name: Option<String>,
    /// The record kind produced.
    pub kind: Kind,
    /// File name or glob, relative to the drop directory.
    pub files: String,
    /// How the files are read.
    pub format: Format,
    /// Their encoding.
    pub encoding: Encoding,
    /// Rows this is false for are quarantined: values the input does not expect, which
    /// the filter must not silently skip (checked first).
    pub expect: Option<FieldExpr>,
    /// Rows this is false for are skipped (and counted per value, for the summary).
    pub filter: Option<FieldExpr>,
    /// Rows this is true for are tombstones of the record they key.
    pub tombstone: Option<Expr>,
    /// When the source last changed the row's record (an RFC 3339 instant, or a date):
    /// a record or tombstone older than the stored version does not overwrite it.
    pub modified: Option<FieldExpr>,
    /// Canonical field → how it is computed, in model order.
    pub fields: Vec<(&'static Field, FieldExpr)>,
}

/// The expression of a field, with its source text for messages.
#[derive(Debug, Clone)]
pub struct FieldExpr {
    /// Parsed.
    pub expr: Expr,
    /// As written.
    pub text: String,
}

/// A mapping file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {message}")]
pub struct MappingError {
    /// The file.
    pub origin: String,
    /// The line (1-based).
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    name: String,
    /// For the people who read the mapping: accepted, not used.
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    encoding: Option<Spanned<String>>,
    #[serde(default)]
    tables: Tables,
    #[serde(default)]
    inputs: Vec<Spanned<RawInput>>,
    #[serde(default)]
    references: Vec<Spanned<RawReference>>,
    #[serde(default)]
    manifest: Option<Manifest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    name: String,
    key: String,
    columns: Vec<String>,
    #[serde(default)]
    files: String,
    #[serde(default)]
    view: Option<String>,
    format: Spanned<String>,
    #[serde(default)]
    encoding: Option<Spanned<String>>,
    #[serde(default)]
    delimiter: Option<Spanned<String>>,
    #[serde(default)]
    quote: Option<Spanned<String>>,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    record: Option<String>,
}

/// How files are read, as written in an input or a reference (serde's `flatten` would
/// lose the spans that give errors their line).
struct RawRead<'a> {
    files: &'a str,
    view: &'a Option<String>,
    format: &'a Spanned<String>,
    delimiter: &'a Option<Spanned<String>>,
    quote: &'a Option<Spanned<String>>,
    header: bool,
    record: &'a Option<String>,
}

macro_rules! raw_read {
    ($raw:expr) => {
        RawRead {
            files: &$raw.files,
            view: &$raw.view,
            format: &$raw.format,
            delimiter: &$raw.delimiter,
            quote: &$raw.quote,
            header: $raw.header,
            record: &$raw.record,
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    #[serde(default)]
    name: Option<String>,
    kind: Spanned<String>,
    #[serde(default)]
    files: String,
    #[serde(default)]
    view: Option<String>,
    format: Spanned<String>,
    #[serde(default)]
    encoding: Option<Spanned<String>>,
    #[serde(default)]
    delimiter: Option<Spanned<String>>,
    #[serde(default)]
    quote: Option<Spanned<String>>,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    expect: Option<Spanned<String>>,
    #[serde(default)]
    filter: Option<Spanned<String>>,
    #[serde(default)]
    tombstone: Option<Spanned<String>>,
    #[serde(default)]
    modified: Option<Spanned<String>>,
    fields: BTreeMap<Spanned<String>, Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// Reads spans back as lines.
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: std::ops::Range<usize>, message: impl fmt::Display) -> MappingError {
        MappingError {
            origin: self.origin.to_string(),
            line: self.line(span.start),
            message: message.to_string(),
        }
    }
}

impl MappingFile {
    /// The record kinds the inputs produce, each once.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = self.inputs.iter().map(|i| i.kind).collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        kinds
    }

    /// Whether an input or a reference reads a SQL view (the mapping is then for a SQL
    /// source, not for file drops).
    pub fn reads_sql(&self) -> bool {
        self.inputs
            .iter()
            .any(|i| matches!(i.format, Format::Sql(_)))
            || self
                .references
                .iter()
                .any(|r| matches!(r.format, Format::Sql(_)))
    }

    /// Reads every file of the drop — inputs and references — in `encoding`, whatever the
    /// mapping says (a source's `encoding` setting).
    pub fn read_every_file_in(&mut self, encoding: Encoding) {
        for input in &mut self.inputs {
            input.encoding = encoding;
        }
        for reference in &mut self.references {
            reference.encoding = encoding;
        }
    }

    /// Parses and checks the mapping `text` read from `origin`.
    pub fn parse(origin: &str, text: &str) -> Result<MappingFile, MappingError> {
        let source = Source { origin, text };
        let raw: RawMapping = toml::from_str(text).map_err(|e| MappingError {
            origin: origin.to_string(),
            line: e.span().map_or(1, |s| source.line(s.start)),
            message: e.message().to_string(),
        })?;
        let encoding = match &raw.encoding {
            Some(e) => parse_encoding(&source, e)?,
            None => Encoding::Utf8,
        };
        let references = raw
            .references
            .iter()
            .map(|reference| check_reference(&source, reference, encoding))
            .collect::<Result<Vec<_>, _>>()?;
        // A reference's columns are looked up as code tables, filled when a drop is read.
        let mut tables = raw.tables;
        for reference in &references {
            for column in &reference.columns {
                tables.insert(format!("{}.{column}", reference.name), BTreeMap::new());
            }
        }
        let inputs = raw
            .inputs
            .iter()
            .map(|input| check_input(&source, input, encoding, &tables))
            .collect::<Result<Vec<_>, _>>()?;
        if inputs.is_empty() {
            return Err(source.error(0..0, "the mapping has no [[inputs]]: nothing to read"));
        }
        Ok(MappingFile {
            origin: origin.to_string(),
            name: raw.name,
            tables,
            inputs,
            references,
            manifest: raw.manifest,
        })
    }
}

fn parse_encoding(source: &Source, value: &Spanned<String>) -> Result<Encoding, MappingError> {
    value
        .get_ref()
        .parse()
        .map_err(|e| source.error(value.span(), e))
}

fn check_reference(
    source: &Source,
    reference: &Spanned<RawReference>,
    encoding: Encoding,
) -> Result<Reference, MappingError> {
    let raw = reference.get_ref();
    if raw.columns.is_empty() || raw.name.contains('.') {
        return Err(source.error(
            reference.span(),
            format!(
                "reference `{}` needs a name without `.` and the `columns` looked up",
                raw.name
            ),
        ));
    }
    Ok(Reference {
        line: source.line(reference.span().start),
        name: raw.name.clone(),
        files: raw.files.clone(),
        format: check_format(source, &raw_read!(raw))?,
        encoding: match &raw.encoding {
            Some(e) => parse_encoding(source, e)?,
            None => encoding,
        },
        key: raw.key.clone(),
        columns: raw.columns.clone(),
    })
}

fn check_input(
    source: &Source,
    input: &Spanned<RawInput>,
    encoding: Encoding,
    tables: &Tables,
) -> Result<Input, MappingError> {
    let raw = input.get_ref();
    let kind = Kind::parse(raw.kind.get_ref()).ok_or_else(|| {
        let known = Kind::ALL.map(Kind::as_str).join(", ");
        source.error(
            raw.kind.span(),
            format!("unknown kind `{}` (known: {known})", raw.kind.get_ref()),
        )
    })?;
    let format = check_format(source, &raw_read!(raw))?;
    let encoding = match &raw.encoding {
        Some(e) => parse_encoding(source, e)?,
        None => encoding,
    };
    let expression = |text: &Spanned<String>| {
        Expr::parse(text.get_ref(), tables).map_err(|e| source.error(text.span(), e))
    };
    let with_text = |text: &Spanned<String>| {
        expression(text).map(|expr| FieldExpr {
            expr,
            text: text.get_ref().clone(),
        })
    };
    Ok(Input {
        line: source.line(input.span().start),
        name: raw.name.clone(),
        kind,
        files: raw.files.clone(),
        format,
        encoding,
        expect: raw.expect.as_ref().map(&with_text).transpose()?,
        filter: raw.filter.as_ref().map(&with_text).transpose()?,
        tombstone: raw.tombstone.as_ref().map(expression).transpose()?,
        modified: raw.modified.as_ref().map(&with_text).transpose()?,
        fields: check_fields(source, kind, raw, tables, input.span())?,
    })
}

fn check_format(source: &Source, raw: &RawRead) -> Result<Format, MappingError> {
    let single_byte = |value: &Option<Spanned<String>>, default: u8| match value {
        None => Ok(default),
        Some(v) => match v.get_ref().as_bytes() {
            [b] => Ok(*b),
            _ if v.get_ref() == "\\t" => Ok(b'\t'),
            _ => Err(source.error(
                v.span(),
                format!("`{}` must be one ASCII character", v.get_ref()),
            )),
        },
    };
    let format = raw.format.get_ref().as_str();
    if format != "sql" && raw.files.is_empty() {
        return Err(source.error(
            raw.format.span(),
            format!("a {format} input needs `files`, the file name or glob it reads"),
        ));
    }
    match format {
        "sql" => {
            let view = raw.view.clone().unwrap_or_default();
            if !SqlOptions::is_identifier(&view) {
                return Err(source.error(
                    raw.format.span(),
                    format!(
                        "a sql input needs `view`, the name of the view it reads (letters, \
                         digits, `_`, `$`, schema-qualified with `.`), not {view:?}"
                    ),
                ));
            }
            Ok(Format::Sql(SqlOptions { view }))
        }
        "csv" => Ok(Format::Csv(CsvOptions {
            delimiter: single_byte(raw.delimiter, b',')?,
            quote: single_byte(raw.quote, b'"')?,
            header: raw.header,
        })),
        "jsonl" => Ok(Format::JsonLines),
        "xml" => {
            let record = raw.record.clone().ok_or_else(|| {
                source.error(
                    raw.format.span(),
                    "an xml input needs `record`, the path of the record element \
                     (e.g. \"export/etudiants/etudiant\")",
                )
            })?;
            Ok(Format::Xml(XmlOptions { record }))
        }
        other => Err(source.error(
            raw.format.span(),
            format!("unknown format `{other}` (known: csv, jsonl, xml, sql)"),
        )),
    }
}

/// Every mapped field exists for the kind, its expression parses, and every required
/// field without a default is mapped.
fn check_fields(
    source: &Source,
    kind: Kind,
    raw: &RawInput,
    tables: &Tables,
    span: std::ops::Range<usize>,
) -> Result<Vec<(&'static Field, FieldExpr)>, MappingError> {
    let mut mapped = Vec::new();
    for (name, text) in &raw.fields {
        let field = fields::field_of(kind, name.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = fields::fields(kind).iter().map(|f| f.name).collect();
            source.error(
                name.span(),
                format!(
                    "`{}` is not a field of a {kind} (its fields: {})",
                    name.get_ref(),
                    known.join(", ")
                ),
            )
        })?;
        let expr = Expr::parse(text.get_ref(), tables)
            .map_err(|e| source.error(text.span(), format!("field `{}`: {e}", name.get_ref())))?;
        mapped.push((
            field,
            FieldExpr {
                expr,
                text: text.get_ref().clone(),
            },
        ));
    }
    let missing: Vec<&str> = fields::fields(kind)
        .iter()
        .filter(|f| f.required && f.default.is_none())
        .filter(|f| !mapped.iter().any(|(m, _)| m.name == f.name))
        .map(|f| f.name)
        .collect();
    if !missing.is_empty() {
        return Err(source.error(
            span,
            format!(
                "the {kind} input does not map its required field(s) {} \
                 (give each an expression, or a constant such as 'active')",
                missing.join(", ")
            ),
        ));
    }
    mapped.sort_by_key(|(f, _)| fields::fields(kind).iter().position(|g| g.name == f.name));
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "test"
encoding = "iso-8859-1"

[tables.regimes]
"10" = "initial"

[[inputs]]
kind = "registration"
files = "inscriptions.csv"
format = "csv"
delimiter = ";"
[inputs.fields]
year = "annee"
student = "numero"
step = "etape"
status = "'active'"
regime = "lookup(regime, regimes, 'other')"
"#;

    #[test]
    fn a_good_mapping_loads_with_defaults_and_order() {
        let mapping = MappingFile::parse("test.toml", GOOD).unwrap();
        let input = &mapping.inputs[0];
        assert_eq!((input.kind, input.line), (Kind::Registration, 7));
        assert_eq!(input.encoding, Encoding::Iso8859_1);
        assert!(matches!(&input.format, Format::Csv(o) if o.delimiter == b';' && o.header));
        let names: Vec<&str> = input.fields.iter().map(|(f, _)| f.name).collect();
        assert_eq!(names, ["year", "student", "step", "status", "regime"]);
    }

    fn error(text: &str) -> String {
        MappingFile::parse("m.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_point_to_the_line_of_the_mapping() {
        let typo = GOOD.replace("lookup(regime, regimes, 'other')", "lookp(regime)");
        assert!(
            error(&typo).starts_with("m.toml:17: field `regime`: unknown function `lookp`"),
            "{}",
            error(&typo)
        );
        let unknown_field = GOOD.replace("status = ", "statut = ");
        let message = error(&unknown_field);
        assert!(
            message.starts_with("m.toml:16:") && message.contains("not a field of a registration"),
            "{message}"
        );
        let missing = GOOD.replace("step = \"etape\"\n", "");
        let message = error(&missing);
        assert!(
            message.starts_with("m.toml:7:") && message.contains("step"),
            "{message}"
        );
        let bad_kind = GOOD.replace("kind = \"registration\"", "kind = \"inscription\"");
        assert!(error(&bad_kind).starts_with("m.toml:8: unknown kind `inscription`"));
        let bad_key = GOOD.replace("files =", "file =");
        assert!(error(&bad_key).contains("m.toml:"), "{}", error(&bad_key));
        let bad_encoding = GOOD.replace("iso-8859-1", "ebcdic");
        assert!(
            error(&bad_encoding).starts_with("m.toml:2:"),
            "{}",
            error(&bad_encoding)
        );
        let no_table = GOOD.replace(
            "lookup(regime, regimes, 'other')",
            "lookup(regime, regimess)",
        );
        assert!(error(&no_table).contains("no code table `regimess`"));
    }
}
