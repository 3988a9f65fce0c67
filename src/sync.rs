//! One sync of one source: connector → engine, the wiring shared by `conpere sync`,
//! `conpere demo` (and the daemon).

use conpere_connectors::{Capabilities, Connector, ReadRequest, RunEnd, Session, SourceConfig};
use conpere_core::engine::{
    Coverage, Engine, EngineError, HoldPolicy, Mode, Progress, RunReport, RunRequest, RunStatus,
};
use conpere_core::model::Kind;
use futures::StreamExt;
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
        Err(e) => return Err(refused(engine, source, options, &e.to_string()).await),
    };
    if !options.full {
        let quiet = match session.nothing_new().await {
            Ok(quiet) => quiet,
            Err(e) => return Err(refused(engine, source, options, &e.to_string()).await),
        };
        if let Some(why) = quiet {
            tracing::info!(source = %source.name, reason = %why, "nothing new: no run");
            return Ok(SyncOutcome::NothingNew(why));
        }
    }
    let capabilities = match connector.discover().await {
        Ok(capabilities) => capabilities,
        Err(e) => return Err(refused(engine, source, options, &e.to_string()).await),
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
            let message = format!("source `{}`: {e}", source.name);
            run.fail(&message).await?;
            tell(source, session, RunEnd::Refused(e.to_string()), options).await;
            anyhow::bail!("{message} (run failed, nothing applied)");
        }
    };
    let batches = batches.map(|b| b.map_err(|e| e.to_string()));
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
            if let EngineError::Read { message, .. } = &error {
                tell(source, session, RunEnd::Refused(message.clone()), options).await;
            }
            Err(error.into())
        }
    }
}

/// Records a run refused before it could start (so that `runs list` shows the night),
/// and the error to return.
async fn refused(
    engine: &Engine,
    source: &SourceConfig,
    options: &SyncOptions,
    why: &str,
) -> anyhow::Error {
    let mut request = RunRequest::full(&source.name, &source.common.kind, Coverage::none());
    request.dry_run = options.dry_run;
    match engine.refused(&request, why).await {
        Ok(id) => anyhow::anyhow!(
            "source `{}`: {why} (run #{id} refused, nothing read nor applied)",
            source.name
        ),
        Err(error) => anyhow::anyhow!(
            "source `{}`: {why} (and recording the refused run failed: {error})",
            source.name
        ),
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
