//! An export drop: the files of a drop directory that a mapping's inputs name, whether
//! the drop is complete, and its fingerprint (the content hashes that say whether it was
//! already applied).

use crate::format::MappingFile;
use conpere_connectors::files::{hex, sha256};
use conpere_connectors::ConnectorError;
use globset::Glob;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a file of a drop is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read by the mapping input of this index.
    Input(usize),
    /// Loaded by the reference of this index.
    Reference(usize),
    /// The drop's manifest.
    Manifest,
}

/// One file of a drop.
#[derive(Debug, Clone)]
pub struct DropFile {
    /// What it is for.
    pub role: Role,
    /// Where it is.
    pub path: PathBuf,
    /// Its name in the drop directory (messages, cursor).
    pub name: String,
    /// Last modification.
    pub modified: SystemTime,
    /// Size in bytes.
    pub len: u64,
}

/// When a drop counts as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A marker file (`DONE`, `manifest.ok`…) is present, newer than every file.
    Marker(String),
    /// No file changed for this long (the exporter writes them in place).
    Stable(Duration),
}

/// What identifies a drop's content: every file's SHA-256, and one hash over them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The hash of the whole drop.
    pub drop: String,
    /// File name → SHA-256 of its content.
    pub files: BTreeMap<String, String>,
}

/// The files of `dir` the mapping names: its manifest, its references' files, its
/// inputs' files, in mapping order, each glob's files by name.
pub fn list(dir: &Path, mapping: &MappingFile) -> Result<Vec<DropFile>, ConnectorError> {
    let entries = entries(dir)?;
    let mut globs: Vec<(Role, &str, usize)> = Vec::new();
    if let Some(manifest) = &mapping.manifest {
        globs.push((Role::Manifest, manifest.file.as_str(), 1));
    }
    for (index, reference) in mapping.references.iter().enumerate() {
        globs.push((
            Role::Reference(index),
            reference.files.as_str(),
            reference.line,
        ));
    }
    for (index, input) in mapping.inputs.iter().enumerate() {
        globs.push((Role::Input(index), input.files.as_str(), input.line));
    }
    let mut files = Vec::new();
    for (role, pattern, line) in globs {
        let glob = Glob::new(pattern)
            .map_err(|e| {
                ConnectorError::failed(
                    format!("{}:{line}", mapping.origin),
                    format!("`{pattern}` is not a valid glob: {e}"),
                )
            })?
            .compile_matcher();
        files.extend(entries.iter().filter(|(name, ..)| glob.is_match(name)).map(
            |(name, path, modified, len)| DropFile {
                role,
                path: path.clone(),
                name: name.clone(),
                modified: *modified,
                len: *len,
            },
        ));
    }
    Ok(files)
}

/// The regular files of `dir`: name, path, last modification, size; by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, SystemTime, u64)>, ConnectorError> {
    let listing = |e: std::io::Error| {
        ConnectorError::failed(
            format!("listing the drop directory {}", dir.display()),
            format!("{e}; check `path` and that conpere may read it"),
        )
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let metadata = entry.metadata().map_err(listing)?;
        if metadata.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let modified = metadata.modified().map_err(listing)?;
            entries.push((name, entry.path(), modified, metadata.len()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Why the drop is not complete yet, if it is not.
pub fn incomplete(dir: &Path, files: &[DropFile], readiness: &Readiness) -> Option<String> {
    let newest = files.iter().map(|f| f.modified).max()?;
    match readiness {
        Readiness::Marker(marker) => {
            let marked = std::fs::metadata(dir.join(marker)).and_then(|m| m.modified());
            match marked {
                Err(_) => Some(format!("the drop has no `{marker}` marker yet")),
                Ok(at) if at < newest => Some(format!(
                    "the `{marker}` marker is older than the drop's files: waiting for a new one"
                )),
                Ok(_) => None,
            }
        }
        Readiness::Stable(delay) => {
            let age = SystemTime::now().duration_since(newest).unwrap_or_default();
            (age < *delay).then(|| {
                format!(
                    "a file of the drop changed {}s ago: waiting until none changed for {}s \
                     (`stable_seconds`)",
                    age.as_secs(),
                    delay.as_secs()
                )
            })
        }
    }
}

/// The content hashes of `files`.
pub async fn fingerprint(files: &[DropFile]) -> Result<Fingerprint, ConnectorError> {
    let mut hashes = BTreeMap::new();
    for file in files {
        hashes.insert(file.name.clone(), sha256(&file.path).await?);
    }
    let mut whole = Sha256::new();
    for (name, hash) in &hashes {
        whole.update(format!("{name}\t{hash}\n"));
    }
    Ok(Fingerprint {
        drop: hex(&whole.finalize()),
        files: hashes,
    })
}

impl Fingerprint {
    /// The fingerprint a cursor recorded (none, or an unreadable one: a new drop).
    pub fn from_cursor(cursor: Option<&serde_json::Value>) -> Option<Fingerprint> {
        cursor.and_then(|c| serde_json::from_value(c.clone()).ok())
    }
}

/// Moves the files of `dir` whose content is the one `read` (and the ready marker) into
/// `archive/<outcome>/<time>-<hash>/`; returns that directory. Files that arrived or
/// changed since the read stay: they are the next drop.
pub async fn archive(
    dir: &Path,
    archive: &Path,
    outcome: &str,
    read: &Fingerprint,
    readiness: &Readiness,
) -> Result<PathBuf, ConnectorError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let short = read.drop.get(..12).unwrap_or(&read.drop);
    let target = archive.join(outcome).join(format!("{stamp}-{short}"));
    let failed = |what: &Path, e: std::io::Error| {
        ConnectorError::failed(format!("archiving the drop to {}", what.display()), e)
    };
    std::fs::create_dir_all(&target).map_err(|e| failed(&target, e))?;
    for (name, hash) in &read.files {
        let path = dir.join(name);
        if path.exists() && sha256(&path).await? == *hash {
            move_file(&path, &target.join(name)).map_err(|e| failed(&path, e))?;
        }
    }
    if let Readiness::Marker(marker) = readiness {
        let path = dir.join(marker);
        if path.exists() {
            move_file(&path, &target.join(marker)).map_err(|e| failed(&path, e))?;
        }
    }
    Ok(target)
}

/// Renames, or copies then removes across file systems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to).or_else(|_| {
        std::fs::copy(from, to)?;
        std::fs::remove_file(from)
    })
}
