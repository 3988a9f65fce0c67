//! One task per scheduled source: sleep until the next due time, claim it (once across
//! daemons), run the sync, repeat; at start-up, the run missed while down (`catch_up`).

use crate::config::{CatchUp, Config};
use crate::notify::{Ending, Notifier, RunEnded, Trigger};
use crate::schedule::Schedule;
use crate::store::Store;
use crate::sync::{failure_kind, run_source, SyncOptions, SyncOutcome};
use chrono::{DateTime, Utc};
use conpere_connectors::{Connector, SourceConfig};
use conpere_core::engine::{hostname, Engine, EngineError, FailureKind, NoProgress, RunStatus};
use conpere_core::{claims, runs};
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
    /// Where failures and holds are told.
    pub notifier: Arc<Notifier>,
}

/// The sources that have a `schedule`, checked (a bad schedule or source stops the
/// daemon at start-up rather than failing every night).
pub fn scheduled_sources(config: &Config) -> anyhow::Result<Vec<ScheduledSource>> {
    let registry = crate::registry();
    let mut scheduled = Vec::new();
    for name in &config.source_names {
        let source = config.source(name)?;
        let Some(schedule) = Schedule::of_source(&source, &config.institution.timezone)
            .map_err(|e| anyhow::anyhow!("source `{name}`: `schedule`: {e}"))?
        else {
            continue;
        };
        let connector = registry.build(&source)?;
        scheduled.push(ScheduledSource {
            source,
            schedule,
            connector,
        });
    }
    Ok(scheduled)
}

/// The next scheduled run of `source`, if it has a (valid) schedule.
pub fn next_run(config: &Config, source: &SourceConfig) -> Option<DateTime<Utc>> {
    Schedule::of_source(source, &config.institution.timezone)
        .ok()??
        .next_after(Utc::now())
}

/// This daemon's name in claims: host and process.
fn claimant() -> String {
    format!("{}:{}", hostname(), std::process::id())
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
    /// failed run again `run_retries` times, `run_retry_delay_seconds` apart, then tells
    /// the source's notification channels how it ended.
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
        let mut attempts = 0;
        let ending = loop {
            attempts += 1;
            let ending = attempt(store, &self.source, self.connector.as_ref()).await;
            if let Some(run_id) = ending.run_id() {
                if let Err(error) = claims::attach_run(&store.pool, name, due, run_id).await {
                    tracing::warn!(source = %name, %error, "cannot record the run of a claim");
                }
            }
            let retryable = matches!(
                ending,
                Ending::Failed {
                    retryable: true,
                    ..
                }
            );
            if !retryable || attempts > common.run_retries {
                if let Ending::Failed {
                    retryable: false, ..
                } = ending
                {
                    tracing::info!(source = %name, "not tried again: the same run would fail the same way");
                }
                break ending;
            }
            tracing::info!(source = %name, attempt = attempts + 1, "trying the failed run again");
            if !pause(&mut stopped, delay).await {
                break ending;
            }
        };
        let ended = RunEnded {
            source: &self.source,
            ending,
            attempts,
            trigger: Trigger::Schedule(due),
            next_run: self.schedule.next_after(Utc::now()),
        };
        context.notifier.run_ended(ended).await;
    }
}

/// One run of `source` within its `run_timeout_seconds`, and how it ended.
pub async fn attempt(store: &Store, source: &SourceConfig, connector: &dyn Connector) -> Ending {
    let name = &source.name;
    let engine = store.engine();
    let before = latest_run(store, name).await;
    let options = SyncOptions::default();
    let run = run_source(&engine, source, connector, &options, &NoProgress, None);
    let limit = Duration::from_secs(source.common.run_timeout_seconds);
    // Past the limit the run is dropped: its connection closes, PostgreSQL rolls it back,
    // and the run is marked failed (reaped).
    let outcome = match tokio::time::timeout(limit, run).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let error = format!(
                "timed out after {} s (run_timeout_seconds): abandoned, nothing applied",
                limit.as_secs()
            );
            tracing::error!(source = %name, %error, "run timed out");
            reap_soon(&engine).await;
            let run_id = latest_run(store, name)
                .await
                .filter(|id| Some(*id) != before);
            return Ending::Failed {
                run_id,
                error,
                retryable: true,
            };
        }
    };
    match outcome {
        Ok(SyncOutcome::Ran(report)) => {
            tracing::info!(source = %name, run = report.run_id, status = report.status.as_str(), "run ended");
            let run_id = report.run_id;
            match report.status {
                RunStatus::Held => Ending::Held { run_id },
                RunStatus::Succeeded | RunStatus::SucceededWithWarnings => {
                    Ending::Applied { run_id }
                }
                other => Ending::Failed {
                    run_id: Some(run_id),
                    error: format!("the run ended {}", other.as_str()),
                    retryable: true,
                },
            }
        }
        Ok(SyncOutcome::NothingNew(why)) => {
            tracing::info!(source = %name, reason = %why, "nothing new: no run");
            Ending::NothingNew
        }
        Err(error) if is_busy(&error) => {
            tracing::warn!(source = %name, error = %format!("{error:#}"), "not started: the source is busy");
            Ending::Busy
        }
        Err(error) => {
            // A source that was down may answer later; one that refused the account or sent
            // what cannot be applied fails the same way until someone acts.
            let retryable = failure_kind(&error).is_none_or(FailureKind::retryable);
            let error = format!("{error:#}");
            tracing::error!(source = %name, %error, "run failed");
            let run_id = latest_run(store, name)
                .await
                .filter(|id| Some(*id) != before);
            Ending::Failed {
                run_id,
                error,
                retryable,
            }
        }
    }
}

/// Whether an attempt failed only because another run of the source held it.
fn is_busy(error: &anyhow::Error) -> bool {
    (error.chain()).any(|e| matches!(e.downcast_ref(), Some(EngineError::Busy { .. })))
}

/// The id of the latest run of `source` (to find the run an attempt recorded, if any,
/// when it failed with an error rather than a report).
async fn latest_run(store: &Store, source: &str) -> Option<i64> {
    runs::list(&store.pool, Some(source), None, 1)
        .await
        .ok()?
        .first()
        .map(|run| run.id)
}

/// Marks a dropped run failed once PostgreSQL has seen its connection close (it takes a
/// moment); if it has not yet, the source's next run will.
pub async fn reap_soon(engine: &Engine) {
    for _ in 0..10 {
        match engine.reap_abandoned().await {
            Ok(reaped) if !reaped.is_empty() => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(error) => {
                tracing::warn!(%error, "cannot mark abandoned runs");
                return;
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
