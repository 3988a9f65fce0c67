//! A drop's manifest (OneRoster's `manifest.csv`): `propertyName,value` rows that say
//! which format version the drop is and, per file, whether it is there whole (`bulk`),
//! as changes (`delta`) or not at all (`absent`).

use crate::encoding::Encoding;
use crate::format::{Input, Manifest, Reference};
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
/// property, is `bulk`; an input the manifest does not name is `absent`).
pub fn presence(
    properties: &BTreeMap<String, String>,
    manifest: &Manifest,
    input: &Input,
) -> Result<Presence, ConnectorError> {
    let Some(name) = &input.name else {
        return Ok(Presence::Bulk);
    };
    said(properties, manifest, name).map(|said| said.unwrap_or(Presence::Absent))
}

/// What the manifest says of a reference's file: named by its file name without the
/// extension (`academicSessions.csv` → `file.academicSessions`), else by the reference's
/// name; `bulk` when the manifest does not name it (a reference is read whole unless
/// told otherwise).
pub fn reference_presence(
    properties: &BTreeMap<String, String>,
    manifest: &Manifest,
    reference: &Reference,
) -> Result<Presence, ConnectorError> {
    let files = &reference.files;
    let stem = if files.contains(['*', '?', '[']) {
        &reference.name
    } else {
        files
            .rsplit_once('.')
            .map_or(files.as_str(), |(stem, _)| stem)
    };
    said(properties, manifest, stem).map(|said| said.unwrap_or(Presence::Bulk))
}

/// The manifest's `bulk`, `delta` or `absent` for the file called `name`, if it says.
fn said(
    properties: &BTreeMap<String, String>,
    manifest: &Manifest,
    name: &str,
) -> Result<Option<Presence>, ConnectorError> {
    let Some(template) = &manifest.input_property else {
        return Ok(Some(Presence::Bulk));
    };
    let property = template.replace("{name}", name);
    match properties.get(&property).map(String::as_str) {
        Some("bulk") => Ok(Some(Presence::Bulk)),
        Some("delta") => Ok(Some(Presence::Delta)),
        Some("absent") => Ok(Some(Presence::Absent)),
        None => Ok(None),
        Some(other) => Err(ConnectorError::failed(
            format!("reading {}", manifest.file),
            format!("`{property}` is {other:?}: expected bulk, delta or absent"),
        )),
    }
}
