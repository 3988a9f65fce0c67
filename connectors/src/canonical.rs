//! `kind = "canonical"`: reads files in the canonical JSON Lines format — what
//! `conpere export` writes — so an export round-trips, and any tool that can write that
//! format can feed conpere.
//!
//! ```toml
//! [sources.files]
//! kind = "canonical"
//! path = "/srv/conpere/canonical"   # one .jsonl file, or a directory of them
//! ```
//!
//! What the files mean is the operator's to say, with `mode`:
//!
//! * `mode = "snapshot"` (default): the files are the whole state of the source. Every
//!   run is a **full** read: what is absent is deleted (behind the mass-deletion hold).
//! * `mode = "changes"`: the directory receives change files. A run reads only the files
//!   whose content it has not read before (the cursor keeps each file's SHA-256): their
//!   records are upserts, and a line
//!   `{"type":"registration","year":2024,"student":"…","step":"…","deleted":true}` is a
//!   tombstone. `conpere sync --full` still reads everything as a snapshot.
//! * A line that does not parse is rejected with `file:line` and its text, and the
//!   stored version of that record (when its key is readable) is kept as it is. When its
//!   key is not readable, the engine defers the deletions of its kind (of every kind, when
//!   not even its type is readable): the read cannot vouch for them.
//! * A byte order mark at the start of a file is skipped.

use crate::batches::{self, BatchSender};
use crate::config::{ConfigError, SourceConfig};
use crate::connector::{
    BatchStream, Capabilities, CheckReport, Connector, ConnectorError, Factory, FromSource,
    ReadRequest,
};
use crate::files::{self, read_line, Line};
use crate::spec::{ConnectorSpec, FieldSpec};
use conpere_model::{parse_line, Item, Kind, Rejected};
use conpere_model::{Mode, ReadAt};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

static SPEC: ConnectorSpec = ConnectorSpec {
    kind: "canonical",
    description: "Canonical JSON Lines files (the `conpere export` format)",
    fields: &[
        FieldSpec {
            name: "path",
            required: true,
            secret: false,
            help: "a .jsonl file, or a directory whose *.jsonl files are read in name order",
            example: "\"/srv/conpere/canonical\"",
        },
        FieldSpec {
            name: "max_record_bytes",
            required: false,
            secret: false,
            help: "longest line read (default 1 MiB): a longer one is quarantined without being \
                   held in memory",
            example: "1048576",
        },
        FieldSpec {
            name: "mode",
            required: false,
            secret: false,
            help:
                "\"snapshot\": the files are the whole source; \"changes\": new files carry changes",
            example: "\"snapshot\"",
        },
    ],
    shared_fields: &[],
};

/// Longest payload kept in quarantine for one rejected line.
const MAX_PAYLOAD: usize = 64 * 1024;

/// What the files of a canonical source mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    /// The files are the whole state of the source.
    #[default]
    Snapshot,
    /// New files carry changes (upserts and tombstones).
    Changes,
}

#[derive(Debug, Deserialize)]
struct Settings {
    path: PathBuf,
    #[serde(default)]
    mode: FileMode,
    #[serde(default = "files::default_max_record_bytes")]
    max_record_bytes: usize,
}

/// Builds [`CanonicalConnector`]s.
pub type CanonicalFactory = Factory<CanonicalConnector>;

impl FromSource for CanonicalConnector {
    const SPEC: &'static ConnectorSpec = &SPEC;

    fn from_source(source: &SourceConfig) -> Result<CanonicalConnector, ConfigError> {
        let settings: Settings = source.settings()?;
        files::check_max_record_bytes(settings.max_record_bytes).map_err(|e| source.invalid(e))?;
        Ok(CanonicalConnector {
            path: settings.path,
            mode: settings.mode,
            max_record_bytes: settings.max_record_bytes,
        })
    }
}

/// Reads canonical JSON Lines files.
#[derive(Debug, Clone)]
pub struct CanonicalConnector {
    path: PathBuf,
    mode: FileMode,
    max_record_bytes: usize,
}

impl CanonicalConnector {
    /// A connector on `path` (a file or a directory) whose files mean `mode`.
    pub fn new(path: impl Into<PathBuf>, mode: FileMode) -> CanonicalConnector {
        CanonicalConnector {
            path: path.into(),
            mode,
            max_record_bytes: files::DEFAULT_MAX_RECORD_BYTES,
        }
    }

    /// The same, with another longest line than 1 MiB.
    pub fn with_max_record_bytes(self, max_record_bytes: usize) -> CanonicalConnector {
        CanonicalConnector {
            max_record_bytes,
            ..self
        }
    }

    /// The files to read, in name order.
    async fn files(&self) -> Result<Vec<PathBuf>, ConnectorError> {
        let operation = || format!("listing {}", self.path.display());
        let meta = tokio::fs::metadata(&self.path).await.map_err(|e| {
            ConnectorError::failed(operation(), format!("{e}; check `path` of this source"))
        })?;
        if meta.is_file() {
            return Ok(vec![self.path.clone()]);
        }
        let mut entries = tokio::fs::read_dir(&self.path)
            .await
            .map_err(|e| ConnectorError::failed(operation(), e))?;
        let root = tokio::fs::canonicalize(&self.path)
            .await
            .map_err(|e| ConnectorError::failed(operation(), e))?;
        let mut files = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| ConnectorError::failed(operation(), e))?
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
                inside(&root, &path)
                    .await
                    .map_err(|message| ConnectorError::failed(operation(), message))?;
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }
}

#[async_trait::async_trait]
impl Connector for CanonicalConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let files = self.files().await?;
        let mut bytes = 0;
        for file in &files {
            let meta = tokio::fs::File::open(file)
                .await
                .and_then(|_| std::fs::metadata(file))
                .map_err(|e| ConnectorError::failed(format!("opening {}", file.display()), e))?;
            bytes += meta.len();
        }
        Ok(CheckReport {
            details: vec![format!(
                "{} readable .jsonl file(s), {bytes} bytes, in {}",
                files.len(),
                self.path.display()
            )],
        })
    }

    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        // Which years the files hold is only known by reading them whole: not worth a
        // second pass over a large file before every sync, so the years are left open.
        self.files().await?;
        Ok(Capabilities {
            kinds: Kind::ALL.to_vec(),
            full: true,
            incremental: self.mode == FileMode::Changes,
            snapshot_kinds: Vec::new(),
            years: Vec::new(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let files = self.files().await?;
        let mut hashes = BTreeMap::new();
        for file in &files {
            hashes.insert(file_name(file), crate::files::sha256(file).await?);
        }
        let seen = seen_files(request.cursor.as_ref());
        let to_read: Vec<PathBuf> = files
            .into_iter()
            .filter(|f| match request.mode {
                Mode::Full => true,
                Mode::Incremental => seen.get(&file_name(f)) != hashes.get(&file_name(f)),
            })
            .collect();
        let cursor = serde_json::json!({ "files": hashes });
        let (sender, stream) = batches::channel(request.batch_size);
        let max = self.max_record_bytes;
        tokio::spawn(read_files(to_read, request, max, cursor, sender));
        Ok(stream)
    }
}

/// Refuses a file of the drop that is a symbolic link leading out of it (to
/// `/etc/passwd`, say): the drop is the drop.
async fn inside(root: &Path, path: &Path) -> Result<(), String> {
    let link = tokio::fs::symlink_metadata(path)
        .await
        .map_err(|e| e.to_string())?;
    if !link.file_type().is_symlink() {
        return Ok(());
    }
    let target = tokio::fs::canonicalize(path)
        .await
        .map_err(|e| e.to_string())?;
    match target.starts_with(root) {
        true => Ok(()),
        false => Err(format!(
            "{} is a symbolic link to {}, outside the drop directory: refused (copy the \
             file into the directory instead)",
            path.display(),
            target.display()
        )),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn seen_files(cursor: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    cursor
        .and_then(|c| c.get("files"))
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .unwrap_or_default()
}

/// The reading task: files → batches of `batch_size` items → channel (2 batches deep, so
/// memory stays bounded whatever the file sizes). The last batch carries the cursor.
async fn read_files(
    files: Vec<PathBuf>,
    request: ReadRequest,
    max_record_bytes: usize,
    cursor: serde_json::Value,
    mut out: BatchSender,
) {
    // Reading files blocks: on a blocking thread, as the other file readers do.
    let read = tokio::task::spawn_blocking(move || {
        for file in &files {
            // Once the run stopped listening, the error (`Stopped`) goes nowhere.
            if let Err(e) = read_file(file, &request, max_record_bytes, &mut out) {
                return out.fail_blocking(e);
            }
        }
        let _ = out.finish_blocking(Some(cursor));
    });
    // A panic ends the sender unfinished: the run then fails, applying nothing.
    let _ = read.await;
}

fn read_file(
    file: &Path,
    request: &ReadRequest,
    max_record_bytes: usize,
    out: &mut BatchSender,
) -> Result<(), ConnectorError> {
    let failed =
        |e: std::io::Error| ConnectorError::failed(format!("reading {}", file.display()), e);
    let opened = std::fs::File::open(file)
        .map_err(|e| ConnectorError::failed(format!("opening {}", file.display()), e))?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, opened);
    let mut buffer = Vec::new();
    let mut line_number = 0u64;
    // One name for every line of the file: items share it.
    let place: std::sync::Arc<str> = std::sync::Arc::from(file.display().to_string());
    loop {
        buffer.clear();
        let length = match read_line(&mut reader, &mut buffer, max_record_bytes).map_err(failed)? {
            Line::End => return Ok(()),
            Line::Read => None,
            Line::TooLong(length) => Some(length),
        };
        line_number += 1;
        let location = || format!("{}:{line_number}", file.display());
        let item = match length {
            Some(length) => Some(too_long(&buffer, length, max_record_bytes, location())),
            // A byte order mark some editors write at the start of a UTF-8 file.
            None if line_number == 1 => line_item(
                buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffer),
                location,
            ),
            None => line_item(&buffer, location),
        };
        if let Some(item) = item.filter(|item| request.wants(item)) {
            // Located, so that the engine's own checks name the line too.
            let read_at = ReadAt {
                place: std::sync::Arc::clone(&place),
                line: Some(line_number),
            };
            out.push_at_blocking(item, read_at)?;
        }
    }
}

/// A line over the limit: quarantined with its start, and its kind when the start says
/// it (`{"type":"student",…`), so that only that kind's deletions wait.
fn too_long(start: &[u8], length: u64, max: usize, location: String) -> Item {
    let head = String::from_utf8_lossy(&start[..start.len().min(4096)]).into_owned();
    let kind = head
        .split_once("\"type\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(kind, _)| Kind::parse(kind));
    Item::Rejected(Rejected {
        kind,
        key: None,
        reason: format!(
            "the line is {length} bytes long, over the limit of {max} (max_record_bytes); \
             only its start is kept here"
        ),
        location: Some(location),
        payload: head,
    })
}

/// The item of one raw line (`None` for a blank line).
fn line_item(raw: &[u8], location: impl Fn() -> String) -> Option<Item> {
    let reject = |kind, key, reason: String, payload: String| {
        let mut payload = payload;
        if payload.len() > MAX_PAYLOAD {
            let mut end = MAX_PAYLOAD;
            while !payload.is_char_boundary(end) {
                end -= 1;
            }
            payload.truncate(end);
        }
        Item::Rejected(Rejected {
            kind,
            key,
            reason,
            location: Some(location()),
            payload,
        })
    };
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text.trim_end_matches(['\n', '\r']),
        Err(e) => {
            return Some(reject(
                None,
                None,
                format!("not UTF-8 ({e}); canonical files are UTF-8"),
                String::from_utf8_lossy(raw).into_owned(),
            ))
        }
    };
    if text.trim().is_empty() {
        return None;
    }
    // Records are checked by the engine, which names this line (the item is located).
    Some(match parse_line(text) {
        Ok(item) => item,
        Err(e) => reject(e.kind, e.key, e.message, text.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_rejected_with_its_location() {
        let item = line_item(
            br#"{"type":"student","student":"0042","family_name":"No\u00ebl","given_name":"Zo\u00e9","birth_date":"31/02/2004"}"#,
            || "x.jsonl:7".into(),
        );
        let Some(Item::Rejected(rejected)) = item else {
            panic!("{item:?}")
        };
        assert_eq!(rejected.location.as_deref(), Some("x.jsonl:7"));
        assert_eq!(rejected.kind, Some(Kind::Student));
        assert!(rejected.key.is_some(), "the key stays readable");
        assert!(rejected.reason.contains("student"), "{}", rejected.reason);
    }

    #[tokio::test]
    async fn a_link_out_of_the_drop_is_refused_and_one_inside_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let line = r#"{"type":"student","student":"1","family_name":"A","given_name":"B"}"#;
        std::fs::write(dir.path().join("a.jsonl"), format!("{line}\n")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a.jsonl"), dir.path().join("b.jsonl")).unwrap();
        let connector = CanonicalConnector::new(dir.path(), FileMode::Snapshot);
        assert_eq!(connector.files().await.unwrap().len(), 2);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("c.jsonl")).unwrap();
        let error = connector.files().await.unwrap_err().to_string();
        assert!(
            error.contains("c.jsonl is a symbolic link to /etc/passwd, outside the drop"),
            "{error}"
        );
    }

    #[test]
    fn invalid_utf8_is_rejected_not_dropped() {
        let item = line_item(
            b"{\"type\":\"student\",\"family_name\":\"L\xe9on\"}\n",
            || "l:1".into(),
        );
        assert!(matches!(item, Some(Item::Rejected(r)) if r.reason.contains("UTF-8")));
        assert!(line_item(b"  \n", || "l:2".into()).is_none());
    }
}
