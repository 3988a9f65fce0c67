//! One read of a Pégase tenant, period by period: the registrations of the INS feed
//! (whole, or the changes since the cursor), then the course structure from ODF and the
//! pedagogical choices from CHC (always whole: Pégase has no change feed for them, so the
//! connector declares them as snapshot kinds and the engine deletes what they no longer
//! hold).
//!
//! Items travel to the engine in batches over a 2-deep channel, so memory stays bounded
//! by a batch, one period's structure and the answers in flight.

use crate::choices::{self, ChcClient};
use crate::config::{IncrementalScope, PegaseConfig};
use crate::feed::{Cursor, FeedClient, FeedWalk, PeriodCursor};
use crate::structure::{OdfClient, PeriodSpace, PeriodStructure};
use conpere_connectors::batches::{self, BatchSender};
use conpere_connectors::{BatchStream, ConnectorError};
use conpere_model::Mode;
use conpere_model::Record;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a read does.
pub struct ReadPlan {
    /// INS registration feed.
    pub feed: FeedClient,
    /// ODF course structure.
    pub odf: OdfClient,
    /// CHC pedagogical choices.
    pub chc: ChcClient,
    /// Settings.
    pub config: Arc<PegaseConfig>,
    /// Full or incremental (the feed only).
    pub mode: Mode,
    /// The previous position (incremental).
    pub cursor: Cursor,
    /// Only these academic years, when set.
    pub years: Option<Vec<i32>>,
    /// Items per batch.
    pub batch_size: usize,
}

/// Starts the reading task and returns the stream of its batches, the last one carrying
/// the new cursor. An error ends the stream (the engine then applies nothing).
pub fn start(plan: ReadPlan) -> BatchStream {
    let (mut out, batches) = batches::channel(plan.batch_size);
    tokio::spawn(async move {
        // The receiver may be gone (the run was abandoned): nothing left to tell.
        match run(&plan, &mut out).await {
            Ok(cursor) => {
                let _ = out.finish(Some(cursor)).await;
            }
            Err(error) => out.fail(error).await,
        }
    });
    batches
}

/// Reads every period; returns the new cursor, for the last batch.
async fn run(plan: &ReadPlan, out: &mut BatchSender) -> Result<serde_json::Value, ConnectorError> {
    let now = chrono::Utc::now().timestamp();
    let spaces = plan.odf.periods().await?;
    let mut feed = FeedWalk::new(&plan.feed, &plan.config);
    let mut cursor = Cursor::default();
    for code in &plan.config.periods {
        let space = period_space(&spaces, code, &plan.config.structure)?;
        let stored = plan.cursor.periods.get(code);
        // A period of a year not asked for is not read at all, and keeps its position:
        // advancing it would skip its changes at the next run that reads it.
        if !plan.years.as_ref().is_none_or(|y| y.contains(&space.year)) {
            if let Some(stored) = stored {
                cursor.periods.insert(code.clone(), stored.clone());
            }
            continue;
        }
        let previous = match plan.mode {
            Mode::Full => PeriodCursor::default(),
            Mode::Incremental => stored.cloned().unwrap_or_default(),
        };
        let next = feed.period(code, previous, now, out).await?;
        cursor.periods.insert(code.clone(), next);
        if plan.mode == Mode::Full || plan.config.incremental_scope == IncrementalScope::All {
            read_period(plan, space, out).await?;
        }
    }
    serde_json::to_value(&cursor)
        .map_err(|e| ConnectorError::failed("writing the Pégase cursor", e))
}

/// A configured period ODF knows, or an error listing those it does.
pub(crate) fn period_space<'a>(
    spaces: &'a BTreeMap<String, PeriodSpace>,
    code: &str,
    structure: &str,
) -> Result<&'a PeriodSpace, ConnectorError> {
    spaces.get(code).ok_or_else(|| {
        let known: Vec<&str> = spaces.keys().map(String::as_str).collect();
        ConnectorError::failed(
            "reading the ODF periods",
            format!(
                "period `{code}` is not an espace of type PERIODE of structure {structure} \
                 (it has: {}); fix `periods`",
                known.join(", ")
            ),
        )
    })
}

/// The structure and the choices of one period.
async fn read_period(
    plan: &ReadPlan,
    space: &PeriodSpace,
    out: &mut BatchSender,
) -> Result<(), ConnectorError> {
    let config = &plan.config;
    let concurrency = config.http.concurrency;
    let structure = plan.odf.read(space, &config.tables, concurrency).await?;
    for node in structure.nodes.values() {
        out.push(Record::Node(node.clone()).into()).await?;
    }
    for edge in structure.edges.values() {
        out.push(Record::Edge(edge.clone()).into()).await?;
    }
    read_choices(plan, space, &structure, out).await
}

/// The enrolments of a period, its CHC answers read concurrently (within the client's
/// bound) and consumed in order.
async fn read_choices(
    plan: &ReadPlan,
    space: &PeriodSpace,
    structure: &PeriodStructure,
    out: &mut BatchSender,
) -> Result<(), ConnectorError> {
    let config = &plan.config;
    let targets = choices::targets(config.choices_by, structure, &config.tables);
    let mut answers = futures::stream::iter(targets)
        .map(|target| async move { plan.chc.cursus(&space.code, &target).await })
        .buffered(config.http.concurrency.max(1));
    while let Some(answer) = answers.next().await {
        for entry in answer? {
            for item in choices::enrolments(&entry, space, structure, &config.tables) {
                out.push(item).await?;
            }
        }
    }
    Ok(())
}
