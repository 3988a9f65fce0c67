//! Writes canonical records as a drop in the `canonical-csv` conventions (the shipped
//! mapping read backwards): one `;`-separated file per kind, decimal commas, dates as
//! dd/mm/yyyy, booleans O/N, lists joined by `|`, in a chosen encoding. Tests, the demo
//! and the benchmark make their drops with it; a deployment team can read it as the
//! reference of the format.

use crate::encoding::Encoding;
use crate::fields::{fields, Field, FieldType};
use conpere_model::{Kind, Record};
use std::collections::BTreeMap;
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
        let mut file = csv::WriterBuilder::new()
            .delimiter(b';')
            .terminator(csv::Terminator::CRLF)
            .from_path(&path)?;
        let header = fields(kind).iter().map(|f| f.name.to_string());
        write_row(&mut file, header, encoding)?;
        writers.insert(kind, (path, file));
    }
    for record in records {
        let (_, file) = writers
            .get_mut(&record.kind())
            .ok_or_else(|| std::io::Error::other("every kind has a file"))?;
        write_row(file, cells(&record)?, encoding)?;
    }
    let mut paths = Vec::new();
    for (_, (path, mut file)) in writers {
        file.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

/// The cells of a record, in the header's order.
fn cells(record: &Record) -> std::io::Result<impl Iterator<Item = String>> {
    let json = serde_json::to_value(record)?;
    let cells: Vec<String> = fields(record.kind())
        .iter()
        .map(|field| cell(field, json.get(field.name)))
        .collect();
    Ok(cells.into_iter())
}

/// One value in the canonical-csv conventions (the CSV writer quotes it when it must).
fn cell(field: &Field, value: Option<&serde_json::Value>) -> String {
    use serde_json::Value as Json;
    match (field.kind, value) {
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
    }
}

/// `YYYY-MM-DD` as `DD/MM/YYYY`.
fn french_date(iso: &str) -> String {
    match iso.split('-').collect::<Vec<_>>()[..] {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

/// One CSV row, each cell in `encoding`.
fn write_row(
    out: &mut csv::Writer<std::fs::File>,
    cells: impl Iterator<Item = String>,
    encoding: Encoding,
) -> std::io::Result<()> {
    let encoded = cells
        .map(|cell| {
            encoding
                .encode(&cell)
                .map(std::borrow::Cow::into_owned)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect::<std::io::Result<Vec<Vec<u8>>>>()?;
    out.write_record(&encoded)?;
    Ok(())
}
