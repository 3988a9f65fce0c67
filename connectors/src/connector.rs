//! The `Connector` trait: what every adapter implements.

use conpere_model::{Batch, FailureKind, Mode, ReadError};
use conpere_model::{Item, Kind};
use futures::stream::BoxStream;

use crate::config::{ConfigError, SourceConfig};
use crate::spec::ConnectorSpec;

/// Errors of a connector. Messages name the operation and what to do; they never carry
/// secrets and mask personal identifiers. A failed read keeps its [`FailureKind`] from the
/// adapter to the engine ([`ReadError`]) and the scheduler, which tries again only what
/// may succeed later.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An operation against the source failed.
    #[error(transparent)]
    Failed(#[from] ReadError),
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connector cannot do what was asked.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl ConnectorError {
    /// A failed operation of no more precise kind ([`FailureKind::Other`]).
    pub fn failed(operation: impl Into<String>, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::of(FailureKind::Other, operation, message)
    }

    /// What the source gave cannot be applied: the same read fails the same way.
    pub fn bad_data(
        operation: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> ConnectorError {
        ConnectorError::of(FailureKind::BadData, operation, message)
    }

    /// A failed operation of `kind`.
    pub fn of(
        kind: FailureKind,
        operation: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> ConnectorError {
        ConnectorError::Failed(ReadError::new(kind, operation, message))
    }

    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            ConnectorError::Failed(error) => error.kind,
            ConnectorError::Config(_) => FailureKind::Configuration,
            ConnectorError::Unsupported(_) => FailureKind::Configuration,
        }
    }
}

/// What the engine records of a connector's failure: the same words, the same kind.
impl From<ConnectorError> for ReadError {
    fn from(error: ConnectorError) -> ReadError {
        match error {
            ConnectorError::Failed(error) => error,
            other => ReadError::new(other.kind(), "reading the source", other),
        }
    }
}

/// Builds connectors of one kind from their configuration (registered in a
/// [`Registry`](crate::Registry) under its spec's kind).
pub trait ConnectorFactory: Send + Sync {
    /// The spec of the connectors it builds.
    fn spec(&self) -> &'static ConnectorSpec;

    /// Builds a connector for `source` (already checked for unknown keys). Reads
    /// settings and secrets; does not contact the source.
    fn build(&self, source: &SourceConfig) -> Result<Box<dyn Connector>, ConfigError>;
}

/// A connector built from its source's configuration: what every adapter implements
/// beside [`Connector`], so that one [`Factory`] builds any of them.
pub trait FromSource: Connector + Sized + 'static {
    /// The spec of its kind (`kind`, keys, help).
    const SPEC: &'static ConnectorSpec;

    /// The connector of `source` (already checked for unknown keys): reads settings and
    /// secrets, loads what it needs (a mapping), contacts nothing.
    fn from_source(source: &SourceConfig) -> Result<Self, ConfigError>;
}

/// The factory of connectors of type `C`, registered with
/// [`Registry::add`](crate::Registry::add).
pub struct Factory<C>(std::marker::PhantomData<fn() -> C>);

impl<C> Factory<C> {
    /// The factory.
    pub const fn new() -> Factory<C> {
        Factory(std::marker::PhantomData)
    }
}

impl<C> Default for Factory<C> {
    fn default() -> Self {
        Factory::new()
    }
}

impl<C: FromSource> ConnectorFactory for Factory<C> {
    fn spec(&self) -> &'static ConnectorSpec {
        C::SPEC
    }

    fn build(&self, source: &SourceConfig) -> Result<Box<dyn Connector>, ConfigError> {
        Ok(Box::new(C::from_source(source)?))
    }
}

/// How a run that read a source ended (see [`Session::ended`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Applied: what was read is in the store.
    Applied,
    /// Held for a person's decision: nothing is applied yet.
    Held,
    /// Refused because of what was read (a damaged file…): nothing applied; the message.
    Refused(String),
}

/// What `check` verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// One line per thing verified (`reached …`, `found 3 files`, `Apogée 6.50 features: …`).
    pub details: Vec<String>,
}

/// What a connector can read (its `discover`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Record kinds it returns.
    pub kinds: Vec<Kind>,
    /// Whether it can read a whole snapshot.
    pub full: bool,
    /// Whether it can read changes since a cursor.
    pub incremental: bool,
    /// Kinds that even an incremental read returns whole, because the SIS has no change
    /// feed for them (Pégase's course structure and pedagogical choices): what such a read
    /// does not return is deleted, as in a full read. Empty for most sources.
    pub snapshot_kinds: Vec<Kind>,
    /// Academic years it can serve (empty when it cannot tell).
    pub years: Vec<i32>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Whole snapshot or changes since `cursor`.
    pub mode: Mode,
    /// Only these years (`None`: every year the source serves).
    pub years: Option<Vec<i32>>,
    /// Where the last applied run stopped (incremental reads).
    pub cursor: Option<serde_json::Value>,
    /// How many items per batch (bounds memory).
    pub batch_size: usize,
}

impl ReadRequest {
    /// Whether `item` is of a year the request asks for (year-less items always are).
    pub fn wants(&self, item: &Item) -> bool {
        let Some(years) = &self.years else {
            return true;
        };
        let year = match item {
            Item::Record(r) => r.year(),
            Item::Tombstone(k) => k.year(),
            Item::Note(_) => None,
            Item::Rejected(r) => r.key.as_ref().and_then(|k| k.year()),
        };
        year.is_none_or(|y| years.contains(&y))
    }
}

/// Batches of canonical items; the last batch carrying a cursor sets the new cursor.
pub type BatchStream = BoxStream<'static, Result<Batch, ConnectorError>>;

/// An adapter to one student information system (or file format).
///
/// Read-only toward the source, always: a connector never calls an operation that
/// writes. `read` must stream with bounded memory (batches of `batch_size`).
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The connector's self-description.
    fn spec(&self) -> &'static ConnectorSpec;

    /// Tests the connection and the configuration, reading as little as possible.
    async fn check(&self) -> Result<CheckReport, ConnectorError>;

    /// What it can read.
    async fn discover(&self) -> Result<Capabilities, ConnectorError>;

    /// Reads records (full snapshot or changes since the cursor) as a stream of batches.
    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError>;

    /// Opens one sync of this source from `cursor`, the last applied run's (read once by
    /// the engine, under the source's lock). What the source learns on the way — whether
    /// anything is new, what its read read, how the run ended — is carried by the
    /// [`Session`], not kept in the connector. Sources that learn nothing (most) keep the
    /// default: a session whose `read` is [`Connector::read`].
    async fn open<'a>(
        &'a self,
        cursor: Option<serde_json::Value>,
    ) -> Result<Box<dyn Session + 'a>, ConnectorError> {
        Ok(Box::new(ReadOnly {
            connector: self,
            cursor,
        }))
    }
}

/// One sync of one source, opened by [`Connector::open`] with the committed cursor: asked
/// whether anything is new, then (if so) read once, then told how the run ended.
#[async_trait::async_trait]
pub trait Session: Send {
    /// The cursor the session was opened with: the last applied run's.
    fn cursor(&self) -> Option<&serde_json::Value>;

    /// Why there is nothing to read since the session's cursor, if the source can tell:
    /// an export drop already applied, or not complete yet. The sync then starts no run.
    /// Sources that cannot tell (most) say `None`.
    async fn nothing_new(&mut self) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }

    /// Reads records, as [`Connector::read`] does; `request.cursor` is the session's.
    async fn read(&mut self, request: ReadRequest) -> Result<BatchStream, ConnectorError>;

    /// Told how the run that read this source ended, once it is committed or abandoned,
    /// for sources that act on it (an export drop archived once applied, set aside when
    /// refused). Most sources do nothing. An error here is logged: the run stands.
    async fn ended(self: Box<Self>, _end: &RunEnd) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// The session of a source that learns nothing between its steps.
struct ReadOnly<'a, C: ?Sized> {
    connector: &'a C,
    cursor: Option<serde_json::Value>,
}

#[async_trait::async_trait]
impl<C: Connector + ?Sized> Session for ReadOnly<'_, C> {
    fn cursor(&self) -> Option<&serde_json::Value> {
        self.cursor.as_ref()
    }

    async fn read(&mut self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        self.connector.read(request).await
    }
}
