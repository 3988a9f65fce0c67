//! A drop's manifest (OneRoster's `manifest.csv`): `propertyName,value` rows that say
//! which format version the drop is and, per file, whether it is there whole (`bulk`),
//! as changes (`delta`) or not at all (`absent`).

use crate::encoding::Encoding;
use crate::format::{Input, Manifest};
use crate::readers::{self, CsvOptions, Format};
use conpere_connectors::ConnectorError;
use std::collections::BTreeMap;
use std::path::Path;

/// What the manifest says of an input's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The whole content.
    Bulk,
    /// Changes only.
    Delta,
    /// Not in this drop.
    Absent,
}

/// The properties of the manifest at `path`, checked against the mapping's requirements.
pub fn read(path: &Path, manifest: &Manifest) -> Result<BTreeMap<String, String>, ConnectorError> {
    let failed =
        |message: String| ConnectorError::failed(format!("reading {}", manifest.file), message);
    let format = Format::Csv(CsvOptions::default());
    let max = conpere_connectors::files::DEFAULT_MAX_RECORD_BYTES;
    let rows = readers::open(path, &manifest.file, &format, Encoding::Utf8, max)
        .map_err(|e| failed(e.to_string()))?;
    let mut properties = BTreeMap::new();
    for row in rows {
        let row = row.map_err(|e| failed(e.to_string()))?;
        if let (Some(name), Some(value)) = (row.get("propertyName"), row.get("value")) {
            properties.insert(name.trim().to_string(), value.trim().to_string());
        }
    }
    for (property, wanted) in &manifest.require {
        let found = properties.get(property).map(String::as_str);
        if found != Some(wanted.as_str()) {
            return Err(failed(format!(
                "`{property}` is {} where the mapping reads {wanted:?}: this drop is not in the \
                 format the mapping was written for",
                found.map_or("missing".to_string(), |f| format!("{f:?}"))
            )));
        }
    }
    Ok(properties)
}

/// What the manifest says of `input` (a nameless input, or a manifest without a per-input
/// property, is `bulk`).
pub fn presence(
    properties: &BTreeMap<String, String>,
    manifest: &Manifest,
    input: &Input,
) -> Result<Presence, ConnectorError> {
    let (Some(template), Some(name)) = (&manifest.input_property, &input.name) else {
        return Ok(Presence::Bulk);
    };
    let property = template.replace("{name}", name);
    match properties.get(&property).map(String::as_str) {
        Some("bulk") => Ok(Presence::Bulk),
        Some("delta") => Ok(Presence::Delta),
        Some("absent") | None => Ok(Presence::Absent),
        Some(other) => Err(ConnectorError::failed(
            format!("reading {}", manifest.file),
            format!("`{property}` is {other:?}: expected bulk, delta or absent"),
        )),
    }
}
