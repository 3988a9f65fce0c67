//! One sync of one source: connector → engine, the wiring shared by `conpere sync`,
//! `conpere demo` (and the daemon).

use conpere_connectors::{
    Capabilities, Connector, ConnectorError, ReadRequest, RunEnd, Session, SourceConfig,
};
use conpere_core::engine::{
    Coverage, Engine, EngineError, FailureKind, HoldPolicy, Mode, Progress, ReadError, RunReport,
    RunRequest, RunStatus,
};
use conpere_core::model::Kind;
use std::io::Write;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Years to read (overrides the source's `years`).
    pub years: Option<Vec<i32>>,
    /// Force a full read.
    pub full: bool,
    /// Apply nothing.
    pub dry_run: bool,
}

/// What a sync did.
#[derive(Debug)]
pub enum SyncOutcome {
    /// A run was made (whatever its status).
    Ran(Box<RunReport>),
    /// The source had nothing new since the last applied run, and said why: no run.
    NothingNew(String),
}

impl SyncOutcome {
    /// The run's report, for callers that need one (a demo, a benchmark).
    pub fn report(self) -> anyhow::Result<RunReport> {
        match self {
            SyncOutcome::Ran(report) => Ok(*report),
            SyncOutcome::NothingNew(why) => anyhow::bail!("no run: {why}"),
        }
    }
}

/// Runs one sync of `source` through `connector`, unless the source says it has nothing
/// new since the last applied run (a forced full read asks anyway).
pub async fn run_source(
    engine: &Engine,
    source: &SourceConfig,
    connector: &dyn Connector,
    options: &SyncOptions,
    progress: &dyn Progress,
    diff: Option<&mut (dyn Write + Send)>,
) -> anyhow::Result<SyncOutcome> {
    // The source's lock and cursor first: "anything new?" is asked from the cursor the
    // run will start from, and no other run of the source can commit in between.
    let open = engine.open(&source.name, &source.common.kind).await?;
    let mut session = match connector.open(open.cursor().cloned()).await {
        Ok(session) => session,
        Err(e) => return Err(refused(engine, source, options, e).await),
    };
    if !options.full {
        let quiet = match session.nothing_new().await {
            Ok(quiet) => quiet,
            Err(e) => return Err(refused(engine, source, options, e).await),
        };
        if let Some(why) = quiet {
            tracing::info!(source = %source.name, reason = %why, "nothing new: no run");
            return Ok(SyncOutcome::NothingNew(why));
        }
    }
    let capabilities = match connector.discover().await {
        Ok(capabilities) => capabilities,
        Err(e) => return Err(refused(engine, source, options, e).await),
    };
    let has_cursor = session.cursor().is_some();
    let mode = if capabilities.incremental && has_cursor && !options.full || !capabilities.full {
        Mode::Incremental
    } else {
        Mode::Full
    };
    let years = options
        .years
        .clone()
        .or_else(|| source.common.years.clone());
    let request = RunRequest {
        source: source.name.clone(),
        source_kind: source.common.kind.clone(),
        mode,
        coverage: Coverage {
            kinds: covered_kinds(&capabilities, mode),
            years: years.clone(),
        },
        dry_run: options.dry_run,
        hold: HoldPolicy {
            max_delete_share: source.common.deletion_hold,
            min_deletions: source.common.deletion_hold_min,
        },
    };
    tracing::info!(source = %source.name, mode = mode.as_str(), dry_run = options.dry_run, "sync starts");
    let run = open.start(request).await?;
    let read = ReadRequest {
        mode,
        years,
        cursor: session.cursor().cloned(),
        batch_size: source.common.batch_size.max(1),
    };
    let batches = match session.read(read).await {
        Ok(batches) => batches,
        Err(e) => {
            let failed = SourceFailed::new(source, e, "run failed, nothing applied");
            run.fail(&failed.to_string()).await?;
            tell(
                source,
                session,
                RunEnd::Refused(failed.error.to_string()),
                options,
            )
            .await;
            return Err(failed.into());
        }
    };
    match run.apply(batches, progress, diff).await {
        Ok(report) => {
            let end = match report.status {
                RunStatus::Held => Some(RunEnd::Held),
                RunStatus::Succeeded | RunStatus::SucceededWithWarnings => Some(RunEnd::Applied),
                _ => None,
            };
            if let Some(end) = end {
                tell(source, session, end, options).await;
            }
            Ok(SyncOutcome::Ran(Box::new(report)))
        }
        Err(error) => {
            if let EngineError::Read { error, .. } = &error {
                tell(source, session, RunEnd::Refused(error.to_string()), options).await;
            }
            Err(error.into())
        }
    }
}

/// A sync that failed because its source did: what the source said, with the kind of
/// failure (the scheduler tries again only what may succeed later), and what became of
/// the run.
#[derive(Debug)]
pub struct SourceFailed {
    /// The source's name.
    pub source: String,
    /// What the source said.
    pub error: ReadError,
    /// What became of the run (`run #3 refused, nothing read nor applied`).
    pub outcome: String,
}

impl SourceFailed {
    fn new(source: &SourceConfig, error: ConnectorError, outcome: &str) -> SourceFailed {
        SourceFailed {
            source: source.name.clone(),
            error: error.into(),
            outcome: outcome.to_string(),
        }
    }
}

impl std::fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source `{}`: {} ({})",
            self.source, self.error, self.outcome
        )
    }
}

impl std::error::Error for SourceFailed {}

/// The kind of the source's failure behind `error`, if a source failed.
pub fn failure_kind(error: &anyhow::Error) -> Option<FailureKind> {
    error.chain().find_map(|cause| {
        if let Some(failed) = cause.downcast_ref::<SourceFailed>() {
            return Some(failed.error.kind);
        }
        match cause.downcast_ref::<EngineError>() {
            Some(EngineError::Read { error, .. }) => Some(error.kind),
            _ => None,
        }
    })
}

/// Records a run refused before it could start (so that `runs list` shows the night),
/// and the error to return.
async fn refused(
    engine: &Engine,
    source: &SourceConfig,
    options: &SyncOptions,
    error: ConnectorError,
) -> anyhow::Error {
    let mut request = RunRequest::full(&source.name, &source.common.kind, Coverage::none());
    request.dry_run = options.dry_run;
    let why = error.to_string();
    match engine.refused(&request, &why).await {
        Ok(id) => {
            let outcome = format!("run #{id} refused, nothing read nor applied");
            SourceFailed::new(source, error, &outcome).into()
        }
        Err(store) => {
            let outcome = format!("and recording the refused run failed: {store}");
            SourceFailed::new(source, error, &outcome).into()
        }
    }
}

/// Tells the source's session how its run ended (not for dry runs: nothing happened).
async fn tell(
    source: &SourceConfig,
    session: Box<dyn Session + '_>,
    end: RunEnd,
    options: &SyncOptions,
) {
    if options.dry_run {
        return;
    }
    if let Err(error) = session.ended(&end).await {
        tracing::warn!(source = %source.name, %error, "after the run");
    }
}

/// The kinds a read returns whole: all it declares when full; when incremental, only
/// those the source has no change feed for.
fn covered_kinds(capabilities: &Capabilities, mode: Mode) -> Vec<Kind> {
    match mode {
        Mode::Full => capabilities.kinds.clone(),
        Mode::Incremental => capabilities
            .kinds
            .iter()
            .copied()
            .filter(|kind| capabilities.snapshot_kinds.contains(kind))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_connectors::http::{HttpError, StatusCode};

    /// The scheduler tries again a source that was down, not one that refused the account:
    /// the kind survives from the adapter's error through the engine and anyhow's chain.
    #[test]
    fn the_kind_of_a_sources_failure_survives_to_the_scheduler() {
        let refused = ConnectorError::from(HttpError::AuthRefused {
            operation: "INS apprenants".into(),
            status: StatusCode::UNAUTHORIZED,
        });
        let failed = SourceFailed {
            source: "pegase".into(),
            error: refused.into(),
            outcome: "run #3 refused, nothing read nor applied".into(),
        };
        let error = anyhow::Error::from(failed).context("scheduled run");
        assert_eq!(failure_kind(&error), Some(FailureKind::Refused));
        assert!(!FailureKind::Refused.retryable());

        let down = ConnectorError::from(HttpError::GaveUp {
            operation: "INS apprenants".into(),
            attempts: 4,
            last: "HTTP 503".into(),
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
        });
        let read = EngineError::Read {
            name: "pegase".into(),
            run_id: 4,
            error: down.into(),
        };
        let error = anyhow::Error::from(read);
        assert_eq!(failure_kind(&error), Some(FailureKind::Unavailable));
        assert!(
            error.to_string().contains("reading failed (unavailable)"),
            "{error}"
        );

        assert_eq!(failure_kind(&anyhow::anyhow!("the store is down")), None);
    }
}
