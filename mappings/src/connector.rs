//! `kind = "export"`: a directory receiving an SIS's exports every night, read through a
//! mapping file.
//!
//! ```toml
//! [sources.nightly-export]
//! kind = "export"
//! path = "/srv/exports/scolarite"   # the drop directory
//! mapping = "canonical-csv"         # a shipped mapping, or the path of a mapping file
//! mode = "snapshot"                 # each drop is the whole source; "changes": deltas
//! ready_marker = "DONE"             # complete once this file is there (else stable_seconds)
//! stable_seconds = 60               # … once no file changed for this long
//! encoding = "iso-8859-1"           # overrides the mapping's
//! tables = { regimes = { "FI" = "initial" } }   # entries added to the mapping's tables
//! archive = "/srv/exports/archive"  # applied drops moved to archive/applied/…, refused
//!                                   # ones to archive/failed/… with the reason
//! ```
//!
//! A run reads a drop only when it is complete, and never the same content twice: the
//! drop's fingerprint (content hashes) is the cursor, committed with the data, and a
//! sync finds "nothing new" while it matches. A drop that is much smaller than the
//! previous one is a snapshot that deletes much: the engine holds it for a person.

use crate::drop_dir::{self, DropFile, Fingerprint, Readiness, Role};
use crate::encoding::Encoding;
use crate::expr::Tables;
use crate::format::{MappingFile, Reference};
use crate::manifest::{self, Presence};
use crate::mapping::Outcome;
use crate::memory::{self, ReferenceMemory, ReferenceRows};
use crate::readers::{self, ErrorScope, Format, ReadError, Rows};
use conpere_connectors::batches::{self, BatchSender};
use conpere_connectors::canonical::FileMode;
use conpere_connectors::files;
use conpere_connectors::{
    BatchStream, Capabilities, CheckReport, ConfigError, Connector, ConnectorError, ConnectorSpec,
    Factory, FieldSpec, FromSource, ReadRequest, RunEnd, Session, SourceConfig,
};
use conpere_model::{Item, Kind, Rejected};
use conpere_model::{Mode, ReadAt};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The configuration keys of an export source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    kind: "export",
    description: "a drop directory of CSV, XML or JSON Lines exports, read through a mapping file",
    fields: &[
        FieldSpec::new(
            "path",
            true,
            false,
            "the drop directory",
            "\"/srv/exports/scolarite\"",
        ),
        FieldSpec::new(
            "mapping",
            true,
            false,
            "a shipped mapping (canonical-csv) or the path of a mapping file",
            "\"canonical-csv\"",
        ),
        FieldSpec::new(
            "mode",
            false,
            false,
            "an override of what the drop's manifest says (without a manifest, every file \
             is whole): \"snapshot\": every file must be whole (a delta is refused); \
             \"changes\": every file carries changes and tombstones",
            "\"changes\"",
        ),
        FieldSpec::new(
            "ready_marker",
            false,
            false,
            "a file whose presence (newer than the drop's files) says the drop is complete",
            "\"DONE\"",
        ),
        FieldSpec::new(
            "stable_seconds",
            false,
            false,
            "without a marker, a drop is complete once no file changed for this long \
             (default 60)",
            "60",
        ),
        FieldSpec::new(
            "encoding",
            false,
            false,
            "encoding of every file, over the mapping's: utf-8, iso-8859-1, iso-8859-15, \
             windows-1252",
            "\"iso-8859-1\"",
        ),
        FieldSpec::new(
            "archive",
            false,
            false,
            "where drops go once read: applied/<time>-<hash>/ when applied, failed/<time>-<hash>/ \
             (with reason.txt) when refused; without it they stay in place",
            "\"/srv/exports/archive\"",
        ),
        FieldSpec::new(
            "max_record_bytes",
            false,
            false,
            "longest record read (a line, a CSV row, an XML record; default 1 MiB): a longer \
             one is quarantined without being held in memory",
            "1048576",
        ),
        FieldSpec::new(
            "tables",
            false,
            false,
            "code-table entries added to (or replacing those of) the mapping's tables",
            "{ regimes = { \"FI\" = \"initial\" } }",
        ),
    ],
    shared_fields: &[],
};

#[derive(Deserialize)]
struct Settings {
    path: PathBuf,
    mapping: String,
    #[serde(default)]
    mode: Option<FileMode>,
    #[serde(default)]
    ready_marker: Option<String>,
    #[serde(default = "default_stable")]
    stable_seconds: u64,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    tables: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    archive: Option<PathBuf>,
    #[serde(default = "files::default_max_record_bytes")]
    max_record_bytes: usize,
}

fn default_stable() -> u64 {
    60
}

/// Builds [`ExportConnector`]s.
pub type ExportFactory = Factory<ExportConnector>;

impl FromSource for ExportConnector {
    const SPEC: &'static ConnectorSpec = &SPEC;

    /// The connector of `source`: its mapping loaded and checked (a shipped one by name,
    /// else a file), contacting nothing.
    fn from_source(source: &SourceConfig) -> Result<ExportConnector, ConfigError> {
        let settings: Settings = source.settings()?;
        let mut mapping = load_mapping(&settings.mapping).map_err(|e| source.invalid(e))?;
        if mapping.reads_sql() {
            return Err(source.invalid(format!(
                "mapping `{}` reads SQL views: use it in a SQL source (kind = \"cocktail\")",
                mapping.name
            )));
        }
        if let Some(encoding) = &settings.encoding {
            let encoding: Encoding = encoding
                .parse()
                .map_err(|e| source.invalid(format!("`encoding`: {e}")))?;
            mapping.read_every_file_in(encoding);
        }
        for (table, entries) in settings.tables {
            mapping.tables.entry(table).or_default().extend(entries);
        }
        files::check_max_record_bytes(settings.max_record_bytes).map_err(|e| source.invalid(e))?;
        let readiness = match settings.ready_marker {
            Some(marker) => Readiness::Marker(marker),
            None => Readiness::Stable(Duration::from_secs(settings.stable_seconds)),
        };
        Ok(ExportConnector {
            dir: settings.path,
            mapping: Arc::new(mapping),
            mode: settings.mode,
            readiness,
            archive: settings.archive,
            max_record_bytes: settings.max_record_bytes,
            memory: source.state_dir().map(memory::path_in),
        })
    }
}

/// Reads the drops of a directory through a mapping.
#[derive(Debug, Clone)]
pub struct ExportConnector {
    dir: PathBuf,
    mapping: Arc<MappingFile>,
    /// The configured override of the manifest, if any.
    mode: Option<FileMode>,
    readiness: Readiness,
    archive: Option<PathBuf>,
    /// The longest record read; a longer one is quarantined, not held.
    max_record_bytes: usize,
    /// Where the rows of the reference files are remembered between drops (in the
    /// source's state directory), if anywhere.
    memory: Option<PathBuf>,
}

impl ExportConnector {
    /// The drop's files to read, and how each input is read (see
    /// [`ExportConnector::to_read`]).
    fn files(&self) -> Result<(Vec<DropFile>, Plan), ConnectorError> {
        self.to_read(drop_dir::list(&self.dir, &self.mapping)?)
    }

    /// Of the `files` listed, those to read — the manifest, references and the inputs the
    /// plan does not say absent — and the plan. An input read whole must have a file (a
    /// missing one would read as "everything of that kind is gone").
    fn to_read(&self, mut files: Vec<DropFile>) -> Result<(Vec<DropFile>, Plan), ConnectorError> {
        let plan = self.plan(&files)?;
        files.retain(|f| !matches!(f.role, Role::Input(i) if plan.of(i) == Presence::Absent));
        // A reference without a file is an empty table: the rows that look it up are
        // quarantined, saying which row they name (a manifest may say a file is absent).
        let has = |role: Role| files.iter().any(|f| f.role == role);
        for (index, input) in self.mapping.inputs.iter().enumerate() {
            if plan.of(index) == Presence::Bulk && !has(Role::Input(index)) {
                let what = format!("{} input", input.kind);
                return Err(self.incomplete(&input.files, &what, input.line));
            }
        }
        Ok((files, plan))
    }

    /// How each input is read in this drop: what the manifest says (every input whole
    /// without one), under the configured override; and what it says of each reference.
    fn plan(&self, files: &[DropFile]) -> Result<Plan, ConnectorError> {
        let said = self.manifest_says(files)?;
        let presences = (said.presences.into_iter().enumerate())
            .map(|(index, presence)| match (self.mode, presence) {
                (Some(FileMode::Changes), Presence::Bulk) => Ok(Presence::Delta),
                (Some(FileMode::Snapshot), Presence::Delta) => Err(self.delta_refused(index)),
                (_, presence) => Ok(presence),
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            presences,
            references: said.references,
        })
    }

    /// What the drop's manifest says of each input's and reference's file (every file
    /// whole without a manifest).
    fn manifest_says(&self, files: &[DropFile]) -> Result<Plan, ConnectorError> {
        let mapping = &self.mapping;
        let Some(manifest) = &mapping.manifest else {
            return Ok(Plan::whole(mapping));
        };
        let file = files
            .iter()
            .find(|f| f.role == Role::Manifest)
            .ok_or_else(|| self.incomplete(&manifest.file, "manifest", 1))?;
        let properties = manifest::read(&file.path, manifest)?;
        Ok(Plan {
            presences: (mapping.inputs.iter())
                .map(|input| manifest::presence(&properties, manifest, input))
                .collect::<Result<_, _>>()?,
            references: (mapping.references.iter())
                .map(|reference| manifest::reference_presence(&properties, manifest, reference))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A delta file where the configuration says every file is whole.
    fn delta_refused(&self, input: usize) -> ConnectorError {
        let manifest = self
            .mapping
            .manifest
            .as_ref()
            .map_or("the manifest", |m| &m.file);
        ConnectorError::failed(
            format!("reading {manifest}"),
            format!(
                "it says the {} file is a delta, but this source sets `mode = \"snapshot\"` \
                 (every file whole): remove the setting to let the manifest decide",
                self.mapping.inputs[input].name.as_deref().unwrap_or("?")
            ),
        )
    }

    fn incomplete(&self, pattern: &str, what: &str, line: usize) -> ConnectorError {
        ConnectorError::failed(
            format!("reading the drop in {}", self.dir.display()),
            format!(
                "no file matches `{pattern}` ({what}, {}:{line}): the drop is incomplete, and \
                 reading it would lose or delete what that file holds",
                self.mapping.origin
            ),
        )
    }
}

/// How each input of the mapping is read in one drop, by input index, and what the
/// manifest says of each reference's file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    presences: Vec<Presence>,
    references: Vec<Presence>,
}

impl Plan {
    /// Every file whole.
    fn whole(mapping: &MappingFile) -> Plan {
        Plan {
            presences: vec![Presence::Bulk; mapping.inputs.len()],
            references: vec![Presence::Bulk; mapping.references.len()],
        }
    }

    /// Why a reference does not hold every row it could be asked for (its file is a
    /// delta or absent), if it does not.
    fn partial_reference(&self, index: usize, reference: &Reference) -> Option<String> {
        match self
            .references
            .get(index)
            .copied()
            .unwrap_or(Presence::Bulk)
        {
            Presence::Bulk => None,
            Presence::Delta => Some(format!(
                "{} is a delta (manifest): it holds only the rows that changed",
                reference.files
            )),
            Presence::Absent => Some(format!(
                "{} is absent from this drop (manifest)",
                reference.files
            )),
        }
    }

    /// How input `index` is read.
    fn of(&self, index: usize) -> Presence {
        self.presences
            .get(index)
            .copied()
            .unwrap_or(Presence::Absent)
    }

    /// The kinds every input of which is read whole: what they do not hold is deleted.
    fn whole_kinds(&self, mapping: &MappingFile) -> Vec<Kind> {
        let mut kinds = mapping.kinds();
        kinds.retain(|kind| {
            (mapping.inputs.iter().enumerate())
                .filter(|(_, input)| input.kind == *kind)
                .all(|(index, _)| self.of(index) == Presence::Bulk)
        });
        kinds
    }

    /// How each file was read, for the run's summary: `users.csv bulk, enrollments.csv
    /// delta, demographics.csv absent (left alone)`; `None` when every file was whole.
    fn note(&self, mapping: &MappingFile) -> Option<String> {
        if self.presences.iter().all(|p| *p == Presence::Bulk) {
            return None;
        }
        let mut said: Vec<String> = Vec::new();
        for (index, input) in mapping.inputs.iter().enumerate() {
            let how = match self.of(index) {
                Presence::Bulk => "bulk (whole: what it lacks is deleted)",
                Presence::Delta => "delta (changes and tombstones; rows it lacks are left alone)",
                Presence::Absent => "absent (its records are left alone)",
            };
            let entry = format!("{} {how}", input.files);
            if !said.contains(&entry) {
                said.push(entry);
            }
        }
        Some(format!("files read as: {}", said.join("; ")))
    }
}

/// The rows of a drop file.
fn open(
    file: &DropFile,
    format: &Format,
    encoding: Encoding,
    max_record_bytes: usize,
) -> Result<Rows, ConnectorError> {
    readers::open(&file.path, &file.name, format, encoding, max_record_bytes)
        .map_err(|e| ConnectorError::failed(format!("reading {}", file.name), e))
}

/// A file-level problem: the whole drop is refused.
fn refused(file: &DropFile, error: &ReadError) -> ConnectorError {
    ConnectorError::failed(
        format!("reading {}", file.name),
        format!("{error}; nothing of this drop is applied"),
    )
}

/// Where a drop goes once its run ended: applied or failed (held drops stay).
fn archive_outcome(end: &RunEnd) -> Option<&'static str> {
    match end {
        RunEnd::Applied => Some("applied"),
        RunEnd::Refused(_) => Some("failed"),
        RunEnd::Held => None,
    }
}

/// A shipped mapping by name, else a mapping file by path.
fn load_mapping(name: &str) -> Result<MappingFile, String> {
    if let Some(text) = crate::shipped::get(name) {
        return MappingFile::parse(&format!("shipped:{name}"), text).map_err(|e| e.to_string());
    }
    let text = std::fs::read_to_string(name).map_err(|e| {
        format!(
            "`mapping = {name:?}` is neither a shipped mapping ({}) nor a readable file: {e}",
            crate::shipped::names().join(", ")
        )
    })?;
    MappingFile::parse(name, &text).map_err(|e| e.to_string())
}

#[async_trait::async_trait]
impl Connector for ExportConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let (files, _) = self.files()?;
        let mut details = vec![format!(
            "mapping `{}` ({}): {} input(s)",
            self.mapping.name,
            self.mapping.origin,
            self.mapping.inputs.len()
        )];
        for (index, input) in self.mapping.inputs.iter().enumerate() {
            let names: Vec<&str> = files
                .iter()
                .filter(|f| f.role == Role::Input(index))
                .map(|f| f.name.as_str())
                .collect();
            details.push(format!(
                "{}: `{}` matches {}",
                input.kind,
                input.files,
                if names.is_empty() {
                    "no file".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
        if let Some(why) = drop_dir::incomplete(&self.dir, &files, &self.readiness) {
            details.push(format!("the drop is not complete yet: {why}"));
        }
        Ok(CheckReport { details })
    }

    /// What this drop can be read as: a full read when every input's file is whole, else
    /// a read of changes in which the kinds whose every input is whole are still read
    /// whole (what they do not hold is deleted), and a kind whose file is absent is left
    /// alone.
    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        let kinds = self.mapping.kinds();
        let listed = drop_dir::list(&self.dir, &self.mapping)?;
        let plan = match listed.is_empty() {
            // No drop yet: what the configuration says.
            true => Plan::whole(&self.mapping),
            false => self.plan(&listed)?,
        };
        let whole = plan.whole_kinds(&self.mapping);
        let everything_whole = self.mode != Some(FileMode::Changes) && whole.len() == kinds.len();
        Ok(Capabilities {
            full: everything_whole,
            incremental: !everything_whole,
            snapshot_kinds: whole,
            kinds,
            years: Vec::new(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        ExportSession::new(self, request.cursor.clone())
            .read(request)
            .await
    }

    async fn open<'a>(
        &'a self,
        cursor: Option<serde_json::Value>,
    ) -> Result<Box<dyn Session + 'a>, ConnectorError> {
        Ok(Box::new(ExportSession::new(self, cursor)))
    }
}

/// One sync of a drop directory: the drop's fingerprint, hashed once for `nothing_new`
/// and the `read` after it, what the read read (for `ended` to archive exactly those
/// files) and the references it leaves (remembered once its run is applied).
struct ExportSession<'a> {
    connector: &'a ExportConnector,
    cursor: Option<serde_json::Value>,
    /// The last fingerprint computed, with the files' names, sizes and modification times
    /// it was computed from: reused while they are the same.
    hashed: Option<(Vec<FileStamp>, Fingerprint)>,
    /// What the read read.
    read: Option<Fingerprint>,
    /// The references as the read leaves them, sent by the reading task.
    references: Option<oneshot::Receiver<ReferenceMemory>>,
}

/// A file's name, size and modification time.
type FileStamp = (String, u64, std::time::SystemTime);

impl<'a> ExportSession<'a> {
    fn new(connector: &'a ExportConnector, cursor: Option<serde_json::Value>) -> Self {
        ExportSession {
            connector,
            cursor,
            hashed: None,
            read: None,
            references: None,
        }
    }

    /// The drop's fingerprint, hashed once per session for the same files.
    async fn fingerprint(&mut self, files: &[DropFile]) -> Result<Fingerprint, ConnectorError> {
        let stamps: Vec<FileStamp> = files
            .iter()
            .map(|f| (f.name.clone(), f.len, f.modified))
            .collect();
        if let Some((hashed, fingerprint)) = &self.hashed {
            if *hashed == stamps {
                return Ok(fingerprint.clone());
            }
        }
        let fingerprint = drop_dir::fingerprint(files).await?;
        self.hashed = Some((stamps, fingerprint.clone()));
        Ok(fingerprint)
    }
}

#[async_trait::async_trait]
impl Session for ExportSession<'_> {
    fn cursor(&self) -> Option<&serde_json::Value> {
        self.cursor.as_ref()
    }

    async fn nothing_new(&mut self) -> Result<Option<String>, ConnectorError> {
        let connector = self.connector;
        // An empty inbox is the usual state between drops (once archived): nothing new.
        // A drop missing some input's file is an error (`files`), not a quiet night.
        let listed = drop_dir::list(&connector.dir, &connector.mapping)?;
        if listed.is_empty() {
            return Ok(Some(format!("no drop in {}", connector.dir.display())));
        }
        let (files, _) = connector.to_read(listed)?;
        if let Some(why) = drop_dir::incomplete(&connector.dir, &files, &connector.readiness) {
            return Ok(Some(why));
        }
        let applied = Fingerprint::from_cursor(self.cursor.as_ref());
        let current = self.fingerprint(&files).await?;
        Ok((applied.as_ref() == Some(&current))
            .then(|| "this drop (same content) was already applied".to_string()))
    }

    async fn read(&mut self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let connector = self.connector;
        let (files, plan) = connector.files()?;
        if let Some(why) = drop_dir::incomplete(&connector.dir, &files, &connector.readiness) {
            return Err(ConnectorError::failed("reading the drop", why));
        }
        let fingerprint = self.fingerprint(&files).await?;
        if request.mode == Mode::Incremental
            && Fingerprint::from_cursor(request.cursor.as_ref()).as_ref() == Some(&fingerprint)
        {
            return Err(ConnectorError::failed(
                "reading the drop",
                "this drop of changes was already applied: applying it again could undo \
                 later changes",
            ));
        }
        let cursor = serde_json::to_value(&fingerprint)
            .map_err(|e| ConnectorError::failed("writing the cursor", e))?;
        self.read = Some(fingerprint);
        let (references, left) = oneshot::channel();
        self.references = Some(left);
        let (sender, stream) = batches::channel(request.batch_size);
        let remembered = match &connector.memory {
            Some(path) => ReferenceMemory::load(path),
            None => ReferenceMemory::default(),
        };
        let reading = DropReading {
            note: plan.note(&connector.mapping),
            plan,
            remembered,
            references: Some(references),
            mapping: Arc::clone(&connector.mapping),
            files,
            request,
            max_record_bytes: connector.max_record_bytes,
        };
        tokio::task::spawn_blocking(move || reading.run(sender, cursor));
        Ok(stream)
    }

    async fn ended(self: Box<Self>, end: &RunEnd) -> Result<(), ConnectorError> {
        let connector = self.connector;
        let left = self.references.and_then(|mut left| left.try_recv().ok());
        if let (Some(path), Some(references), RunEnd::Applied) = (&connector.memory, left, end) {
            references.save(path)?;
        }
        let (Some(archive), Some(read), Some(outcome)) =
            (&connector.archive, self.read, archive_outcome(end))
        else {
            return Ok(());
        };
        let moved = drop_dir::archive(
            &connector.dir,
            archive,
            outcome,
            &read,
            &connector.readiness,
        )
        .await?;
        if let RunEnd::Refused(reason) = end {
            std::fs::write(moved.join("reason.txt"), format!("{reason}\n"))
                .map_err(|e| ConnectorError::failed(format!("writing {}", moved.display()), e))?;
        }
        tracing::info!(to = %moved.display(), "drop archived");
        Ok(())
    }
}

/// What a drop's files say of one reference.
#[derive(Default)]
struct ReadReference {
    /// Key → the looked-up columns and where the row is.
    rows: BTreeMap<String, (Vec<Option<String>>, String)>,
    /// Keys on two rows with different values, and where.
    conflicts: BTreeMap<String, String>,
    unreadable: Unreadable,
}

/// The rows of a reference file that could not be read with their key: any of them may be
/// the row a lookup misses.
#[derive(Default)]
struct Unreadable {
    locations: Vec<String>,
    count: usize,
}

impl Unreadable {
    /// The row at `location` could not be read.
    fn add(&mut self, location: String) {
        self.count += 1;
        if self.locations.len() < 3 {
            self.locations.push(location);
        }
    }

    /// `demographics.csv:12 could not be read`, with at most three locations; `None` when
    /// every row was read.
    fn said(&self) -> Option<String> {
        let listed = self.locations.join(", ");
        match self.count {
            0 => None,
            1 => Some(format!("the row at {listed} could not be read")),
            n if n == self.locations.len() => {
                Some(format!("the rows at {listed} could not be read"))
            }
            n => Some(format!(
                "{n} rows could not be read ({listed} and {} more)",
                n - self.locations.len()
            )),
        }
    }
}

/// The blocking task that reads a drop's files in order and sends batches.
struct DropReading {
    /// How the files are read, when not all whole: said first, in the run's notes.
    note: Option<String>,
    plan: Plan,
    /// The reference rows remembered from earlier drops.
    remembered: ReferenceMemory,
    /// Where to send the references as this read leaves them (to be remembered once
    /// the run is applied).
    references: Option<oneshot::Sender<ReferenceMemory>>,
    mapping: Arc<MappingFile>,
    files: Vec<DropFile>,
    request: ReadRequest,
    max_record_bytes: usize,
}

impl DropReading {
    /// Reads, sending batches through `out`; the last one carries `cursor`. Once the run
    /// stopped listening, sending fails and so does the read: nobody gets that error.
    fn run(mut self, mut out: BatchSender, cursor: serde_json::Value) {
        if let Some(note) = &self.note {
            if out.push_blocking(Item::Note(note.clone())).is_err() {
                return; // the run stopped listening
            }
        }
        let read = self.tables().and_then(|(tables, references)| {
            if let Some(sender) = self.references.take() {
                let _ = sender.send(references); // the session may be gone: nothing to keep
            }
            self.files.iter().try_for_each(|file| match file.role {
                Role::Input(input) => self.read_file(file, input, &tables, &mut out),
                _ => Ok(()),
            })
        });
        match read {
            Ok(()) => {
                let _ = out.finish_blocking(Some(cursor));
            }
            Err(error) => out.fail_blocking(error),
        }
    }

    /// The mapping's code tables, with the columns of its references loaded from the
    /// drop (`<reference>.<column>`: key → value), over the rows remembered from earlier
    /// drops when a file is a delta or absent ([`memory`]). A reference row that cannot
    /// be read, or has no key, is left out with a warning and said in
    /// `<reference>.#unreadable`: a lookup that misses may have missed that row, so it is
    /// an error even with a fallback, and the rows that make it are quarantined, saying
    /// so; the same for a delta or absent reference with nothing remembered. Two rows
    /// with one key and different values are a conflict, never "the last one wins": the
    /// key is left out of the reference and named in `<reference>.#conflicts` (with the
    /// two rows' locations), so that the rows that look it up are quarantined saying so.
    fn tables(&self) -> Result<(Tables, ReferenceMemory), ConnectorError> {
        let mut tables = self.mapping.tables.clone();
        let mut now = ReferenceMemory::default();
        for (index, reference) in self.mapping.references.iter().enumerate() {
            let read = self.read_reference(index, reference)?;
            let presence = self.plan.references.get(index).copied();
            let remembered = self.remembered.rows(reference);
            let mut rows = match (presence, remembered) {
                (Some(Presence::Delta | Presence::Absent), Some(rows)) => rows.clone(),
                (Some(Presence::Delta | Presence::Absent), None) => {
                    // Nothing remembered: a lookup that misses may name a row the drop
                    // lacks, and is an error even with a fallback.
                    let said = self.plan.partial_reference(index, reference);
                    let entry = BTreeMap::from([(String::new(), said.unwrap_or_default())]);
                    tables.insert(format!("{}.#unreadable", reference.name), entry);
                    ReferenceRows::new()
                }
                _ => ReferenceRows::new(),
            };
            for (key, (values, _)) in read.rows {
                rows.insert(key, values);
            }
            for key in read.conflicts.keys() {
                rows.remove(key);
            }
            for (key, values) in &rows {
                for (column, value) in reference.columns.iter().zip(values) {
                    if let Some(value) = value {
                        tables
                            .entry(format!("{}.{column}", reference.name))
                            .or_default()
                            .insert(key.clone(), value.clone());
                    }
                }
            }
            if !read.conflicts.is_empty() {
                tables.insert(format!("{}.#conflicts", reference.name), read.conflicts);
            }
            if let Some(said) = read.unreadable.said() {
                let entry = BTreeMap::from([(String::new(), said)]);
                tables.insert(format!("{}.#unreadable", reference.name), entry);
            }
            now.remember(reference, rows);
        }
        Ok((tables, now))
    }

    /// The rows of reference `index` in this drop's files (none when it has no file).
    fn read_reference(
        &self,
        index: usize,
        reference: &Reference,
    ) -> Result<ReadReference, ConnectorError> {
        let mut read = ReadReference::default();
        let files = (self.files.iter()).filter(|f| f.role == Role::Reference(index));
        for file in files {
            let (format, encoding) = (&reference.format, reference.encoding);
            for row in open(file, format, encoding, self.max_record_bytes)? {
                let row = match row {
                    Ok(row) => row,
                    Err(error) if error.scope == ErrorScope::Row => {
                        tracing::warn!(%error, "a reference row cannot be read");
                        read.unreadable.add(error.location.to_string());
                        continue;
                    }
                    Err(error) => return Err(refused(file, &error)),
                };
                let Some(key) = row.get(&reference.key).map(str::trim) else {
                    tracing::warn!(at = %row.location, key = %reference.key, "reference row without its key");
                    read.unreadable.add(row.location.to_string());
                    continue;
                };
                let values: Vec<Option<String>> = (reference.columns.iter())
                    .map(|column| row.get(column).map(str::to_string))
                    .collect();
                match read.rows.get(key) {
                    None => {
                        read.rows
                            .insert(key.to_string(), (values, row.location.to_string()));
                    }
                    Some((first, _)) if *first == values => {}
                    Some((_, first_at)) => {
                        tracing::warn!(at = %row.location, key, "two reference rows with one key");
                        let both = format!("{first_at} and {}", row.location);
                        read.conflicts.entry(key.to_string()).or_insert(both);
                    }
                }
            }
        }
        Ok(read)
    }

    /// Maps every row of `file` through input `index`; a file-level problem fails the
    /// whole read.
    fn read_file(
        &self,
        file: &DropFile,
        index: usize,
        tables: &Tables,
        out: &mut BatchSender,
    ) -> Result<(), ConnectorError> {
        let input = &self.mapping.inputs[index];
        // A file read both as an input and as a reference: its rows whose reference key
        // is in conflict are quarantined too (both of them, never "the last one wins").
        let also_references: Vec<_> = (self.mapping.references.iter())
            .filter(|r| r.files == input.files)
            .filter_map(|r| Some((&r.key, tables.get(&format!("{}.#conflicts", r.name))?)))
            .collect();
        // Rows the filter skipped, per the values it read.
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        for row in open(file, &input.format, input.encoding, self.max_record_bytes)? {
            let conflict = |row: &crate::row::Row| {
                also_references.iter().find_map(|(key, conflicts)| {
                    let value = row.get(key)?.trim();
                    Some(format!(
                        "this row's {key} `{value}` is also on another row ({}), with \
                         different values: which one is meant cannot be told; fix the drop",
                        conflicts.get(value)?
                    ))
                })
            };
            let location = row.as_ref().ok().map(|row| ReadAt {
                place: row.location.file.clone(),
                line: Some(row.location.line),
            });
            let conflicting = row.as_ref().ok().and_then(conflict);
            let mut modified = None;
            let item = match row {
                Ok(row) if conflicting.is_some() => {
                    input.quarantine(&row, conflicting.unwrap_or_default(), tables)
                }
                Ok(row) => match input.map(&row, tables) {
                    Outcome::Skipped => {
                        let values = (input.filter.as_ref())
                            .map(|filter| crate::mapping::values_read(filter, &row));
                        *skipped.entry(values.unwrap_or_default()).or_default() += 1;
                        continue;
                    }
                    Outcome::Item(item, when) => {
                        modified = when;
                        item
                    }
                },
                Err(error) if error.scope == ErrorScope::Row => Item::Rejected(Rejected {
                    kind: Some(input.kind),
                    key: None,
                    reason: error.reason.clone(),
                    location: Some(error.location.to_string()),
                    payload: String::new(),
                }),
                Err(error) => return Err(refused(file, &error)),
            };
            if self.request.wants(&item) {
                if let Some(instant) = modified {
                    out.modified_at(instant);
                }
                // Located, so that the engine's own checks name the row too.
                match location {
                    Some(location) => out.push_at_blocking(item, location)?,
                    None => out.push_blocking(item)?,
                }
            }
        }
        if let Some(filter) = input.filter.as_ref().filter(|_| !skipped.is_empty()) {
            let total: u64 = skipped.values().sum();
            let per_value: Vec<String> = (skipped.iter())
                .map(|(values, n)| format!("{values}: {n}"))
                .collect();
            let note = format!(
                "{}: {total} row(s) skipped by the filter `{}` ({})",
                file.name,
                filter.text,
                per_value.join("; ")
            );
            tracing::info!(file = %file.name, total, "rows skipped by the mapping's filter");
            out.push_blocking(Item::Note(note))?;
        }
        Ok(())
    }
}
