//! One task per scheduled source: sleep until the next due time, claim it (once across
//! daemons), run the sync, repeat; at start-up, the run missed while down (`catch_up`).

use crate::config::{CatchUp, Config};
use crate::schedule::Schedule;
use crate::store::Store;
use crate::sync::{run_source, SyncOptions, SyncOutcome};
use chrono::{DateTime, Utc};
use conpere_connectors::{Connector, SourceConfig};
use conpere_core::claims;
use conpere_core::engine::{Engine, NoProgress, RunStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A source with its schedule and its connector.
pub struct ScheduledSource {
    source: SourceConfig,
    schedule: Schedule,
    connector: Box<dyn Connector>,
}

/// What every scheduling task shares.
pub struct Context {
    /// The store.
    pub store: Arc<Store>,
    /// What to do with a run missed while down.
    pub catch_up: CatchUp,
    /// Turns true when the daemon stops.
    pub stopped: watch::Receiver<bool>,
}

/// The sources that have a `schedule`, checked (a bad schedule or source stops the
/// daemon at start-up rather than failing every night).
pub fn scheduled_sources(config: &Config) -> anyhow::Result<Vec<ScheduledSource>> {
    let registry = crate::registry();
    let mut scheduled = Vec::new();
    for name in &config.source_names {
        let source = config.source(name)?;
        let Some(expression) = source.common.schedule.clone() else {
            continue;
        };
        let schedule = Schedule::parse(&expression, &config.institution.timezone)
            .map_err(|e| anyhow::anyhow!("source `{name}`: `schedule`: {e}"))?;
        let connector = registry.build(&source)?;
        scheduled.push(ScheduledSource {
            source,
            schedule,
            connector,
        });
    }
    Ok(scheduled)
}

/// This daemon's name in claims: host and process.
fn claimant() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

impl ScheduledSource {
    /// The scheduling loop, until the daemon stops.
    pub async fn run(self, mut context: Context) {
        let name = self.source.name.clone();
        let mut after = Utc::now();
        if context.catch_up == CatchUp::Once {
            if let Some(missed) = self.missed(&context.store, after).await {
                tracing::info!(source = %name, due = %missed, "running the run missed while down");
                self.claim_and_run(&context, missed).await;
            }
        }
        while let Some(due) = self.schedule.next_after(after) {
            let wait = (due - Utc::now()).to_std().unwrap_or_default() + self.jitter();
            if !pause(&mut context.stopped, wait).await {
                return;
            }
            self.claim_and_run(&context, due).await;
            after = due;
        }
        tracing::warn!(source = %name, "the schedule has no future run");
    }

    /// The last run due before `now` that no daemon claimed, if the source ever ran on
    /// schedule (a first start does not run at once).
    async fn missed(&self, store: &Store, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let last = claims::last_claimed(&store.pool, &self.source.name)
            .await
            .ok()??;
        self.schedule.missed(last, now)
    }

    /// A random delay up to `jitter_seconds`.
    fn jitter(&self) -> Duration {
        let most = self.source.common.jitter_seconds;
        Duration::from_millis(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            0..=most * 1000,
        ))
    }

    /// Claims the run due at `due`; when this daemon won the claim, runs it, trying a
    /// failed run again `run_retries` times, `run_retry_delay_seconds` apart.
    async fn claim_and_run(&self, context: &Context, due: DateTime<Utc>) {
        let (name, store) = (&self.source.name, &context.store);
        match claims::claim(&store.pool, name, due, &claimant()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(source = %name, %due, "claimed by another daemon");
                return;
            }
            Err(error) => {
                tracing::error!(source = %name, %due, %error, "cannot claim the run");
                return;
            }
        }
        let common = &self.source.common;
        let delay = Duration::from_secs(common.run_retry_delay_seconds);
        let mut stopped = context.stopped.clone();
        for attempt in 0..=common.run_retries {
            if attempt > 0 {
                tracing::info!(source = %name, attempt, "trying the failed run again");
                if !pause(&mut stopped, delay).await {
                    return;
                }
            }
            if self.attempt(store, due).await {
                return;
            }
        }
    }

    /// One run within `run_timeout_seconds`; whether it needs no retry (it succeeded, was
    /// held for a person, or there was nothing new).
    async fn attempt(&self, store: &Store, due: DateTime<Utc>) -> bool {
        let name = &self.source.name;
        let engine = Engine::new(store.pool.clone());
        let options = SyncOptions::default();
        let run = run_source(
            &engine,
            &self.source,
            self.connector.as_ref(),
            &options,
            &NoProgress,
            None,
        );
        let limit = Duration::from_secs(self.source.common.run_timeout_seconds);
        // Past the limit the run is dropped: its connection closes, PostgreSQL rolls it
        // back, and the next run marks it failed.
        let Ok(outcome) = tokio::time::timeout(limit, run).await else {
            tracing::error!(source = %name, limit_seconds = limit.as_secs(), "scheduled run timed out: abandoned, nothing applied");
            return false;
        };
        match outcome {
            Ok(SyncOutcome::Ran(report)) => {
                tracing::info!(source = %name, run = report.run_id, status = report.status.as_str(), "scheduled run ended");
                if let Err(error) = claims::attach_run(&store.pool, name, due, report.run_id).await
                {
                    tracing::warn!(source = %name, %error, "cannot record the run of a claim");
                }
                report.status != RunStatus::Failed
            }
            Ok(SyncOutcome::NothingNew(why)) => {
                tracing::info!(source = %name, reason = %why, "nothing new: no run");
                true
            }
            Err(error) => {
                tracing::error!(source = %name, error = %format!("{error:#}"), "scheduled run failed");
                false
            }
        }
    }
}

/// Waits `wait`, unless the daemon stops first; whether to go on.
async fn pause(stopped: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stopped.wait_for(|stop| *stop) => false,
    };
    slept && !*stopped.borrow()
}
