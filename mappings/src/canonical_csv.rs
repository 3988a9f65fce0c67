//! Writes canonical records as a drop in the `canonical-csv` conventions (the shipped
//! mapping read backwards): one `;`-separated file per kind, decimal commas, dates as
//! dd/mm/yyyy, booleans O/N, lists joined by `|`, in a chosen encoding. Tests, the demo
//! and the benchmark make their drops with it; a deployment team can read it as the
//! reference of the format.

use crate::encoding::Encoding;
use crate::fields::{fields, Field, FieldType};
use conpere_core::model::{to_export_line, Kind, Record};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file of each kind in a canonical-csv drop.
pub fn file_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Student => "students.csv",
        Kind::Node => "nodes.csv",
        Kind::Edge => "edges.csv",
        Kind::Registration => "registrations.csv",
        Kind::Enrolment => "enrolments.csv",
        Kind::Result => "results.csv",
    }
}

/// Writes `records` into `dir` (one file per kind, every kind's file written, with its
/// header, even when empty); returns the files. A character the encoding cannot hold is
/// an error naming it (ISO-8859-1 has no `œ`: a Latin-1 SIS writes `oe`).
pub fn write_drop(
    dir: &Path,
    records: impl IntoIterator<Item = Record>,
    encoding: Encoding,
) -> std::io::Result<Vec<PathBuf>> {
    let mut writers = BTreeMap::new();
    for kind in Kind::ALL {
        let path = dir.join(file_name(kind));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let header: Vec<&str> = fields(kind).iter().map(|f| f.name).collect();
        write_line(&mut file, &header.join(";"), encoding)?;
        writers.insert(kind, (path, file));
    }
    for record in records {
        let (_, file) = writers
            .get_mut(&record.kind())
            .ok_or_else(|| std::io::Error::other("every kind has a file"))?;
        write_line(file, &line(&record), encoding)?;
    }
    let mut paths = Vec::new();
    for (_, (path, mut file)) in writers {
        file.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

/// The CSV line of a record, fields in the header's order.
fn line(record: &Record) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&to_export_line("", record)).unwrap_or_default();
    fields(record.kind())
        .iter()
        .map(|field| cell(field, json.get(field.name)))
        .collect::<Vec<_>>()
        .join(";")
}

/// One value in the canonical-csv conventions, quoted when it must be.
fn cell(field: &Field, value: Option<&serde_json::Value>) -> String {
    use serde_json::Value as Json;
    let text = match (field.kind, value) {
        (_, None | Some(Json::Null)) => String::new(),
        (FieldType::Boolean, Some(Json::Bool(b))) => if *b { "O" } else { "N" }.to_string(),
        (FieldType::Decimal, Some(Json::Number(n))) => n.to_string().replace('.', ","),
        (FieldType::Date, Some(Json::String(d))) => french_date(d),
        (FieldType::List, Some(Json::Array(items))) => items
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        (_, Some(Json::String(s))) => s.clone(),
        (_, Some(other)) => other.to_string(),
    };
    if text.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `YYYY-MM-DD` as `DD/MM/YYYY`.
fn french_date(iso: &str) -> String {
    match iso.split('-').collect::<Vec<_>>()[..] {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

fn write_line(out: &mut impl Write, line: &str, encoding: Encoding) -> std::io::Result<()> {
    let bytes = encoding
        .encode(line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    out.write_all(&bytes)?;
    out.write_all(b"\r\n")
}
