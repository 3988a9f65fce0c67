//! What a source remembers of its reference files between drops.
//!
//! A OneRoster delta carries only what changed: its `enrollments.csv` names students and
//! classes that its `users.csv` and `classes.csv` (deltas too, or absent) do not carry.
//! A consumer must remember them. After each applied run, the rows of every reference
//! (key → the columns the mapping looks up) are written to a file in the source's state
//! directory; a delta reference is then read over the remembered rows (its rows replace
//! theirs), and an absent one is the remembered rows. Nothing is remembered without a
//! state directory, and a reference the mapping now reads with other columns starts
//! afresh: remembered rows are only ever what a drop said.

use crate::format::Reference;
use conpere_connectors::ConnectorError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The looked-up columns of a reference, by key (`None`: the row had no such column).
pub type ReferenceRows = BTreeMap<String, Vec<Option<String>>>;

/// The remembered rows of a source's references, by reference name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceMemory {
    references: BTreeMap<String, Remembered>,
}

/// One reference's remembered rows, with the columns they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Remembered {
    columns: Vec<String>,
    rows: ReferenceRows,
}

/// The file of the memory in a source's state directory.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("references.json")
}

impl ReferenceMemory {
    /// The memory saved at `path`; empty when there is none yet. A file that cannot be
    /// read is said and set aside: without it, a delta's lookups that miss are errors,
    /// so nothing wrong is applied.
    pub fn load(path: &Path) -> ReferenceMemory {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the references remembered cannot be read");
                return Self::default();
            }
        };
        serde_json::from_str(&text).unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error, "the references remembered are not readable JSON");
            Self::default()
        })
    }

    /// The rows remembered of `reference`, if it was read with the same columns.
    pub fn rows(&self, reference: &Reference) -> Option<&ReferenceRows> {
        let remembered = self.references.get(&reference.name)?;
        (remembered.columns == reference.columns).then_some(&remembered.rows)
    }

    /// Remembers `rows` as what `reference` holds now.
    pub fn remember(&mut self, reference: &Reference, rows: ReferenceRows) {
        let remembered = Remembered {
            columns: reference.columns.clone(),
            rows,
        };
        self.references.insert(reference.name.clone(), remembered);
    }

    /// Writes the memory to `path` whole or not at all (a temporary file renamed), its
    /// directory created if needed.
    pub fn save(&self, path: &Path) -> Result<(), ConnectorError> {
        let failed = |e: std::io::Error| {
            ConnectorError::failed(format!("remembering references in {}", path.display()), e)
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let text = serde_json::to_vec(self).map_err(|e| failed(std::io::Error::other(e)))?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(failed)?;
        std::fs::rename(&temporary, path).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;
    use crate::readers::{CsvOptions, Format};

    fn users(columns: &[&str]) -> Reference {
        Reference {
            line: 1,
            name: "users".into(),
            files: "users.csv".into(),
            format: Format::Csv(CsvOptions::default()),
            encoding: Encoding::Utf8,
            key: "sourcedId".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn remembered_rows_survive_a_save_and_a_change_of_columns_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir.path().join("roster"));
        assert_eq!(ReferenceMemory::load(&path), ReferenceMemory::default());
        let mut memory = ReferenceMemory::default();
        let rows = ReferenceRows::from([("U1".to_string(), vec![Some("2200001".to_string())])]);
        memory.remember(&users(&["identifier"]), rows.clone());
        memory.save(&path).unwrap();
        let loaded = ReferenceMemory::load(&path);
        assert_eq!(loaded.rows(&users(&["identifier"])), Some(&rows));
        assert_eq!(loaded.rows(&users(&["identifier", "email"])), None);
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(ReferenceMemory::load(&path), ReferenceMemory::default());
    }
}
