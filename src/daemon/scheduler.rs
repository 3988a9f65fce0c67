//! One task per scheduled source: sleep until the next due time, claim it (once across
//! daemons), run the sync, repeat; at start-up, the run missed while down (`catch_up`).

use crate::config::{CatchUp, Config};
use crate::schedule::Schedule;
use crate::store::Store;
use crate::sync::{run_source, SyncOptions, SyncOutcome};
use chrono::{DateTime, Utc};
use conpere_connectors::{Connector, SourceConfig};
use conpere_core::claims;
use conpere_core::engine::{Engine, NoProgress};
use std::sync::Arc;
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
                self.claim_and_run(&context.store, missed).await;
            }
        }
        while let Some(due) = self.schedule.next_after(after) {
            let wait = (due - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = context.stopped.wait_for(|stop| *stop) => return,
            }
            if *context.stopped.borrow() {
                return;
            }
            self.claim_and_run(&context.store, due).await;
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

    /// Claims the run due at `due`; runs it when this daemon won the claim.
    async fn claim_and_run(&self, store: &Store, due: DateTime<Utc>) {
        let name = &self.source.name;
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
        let engine = Engine::new(store.pool.clone());
        let outcome = run_source(
            &engine,
            &self.source,
            self.connector.as_ref(),
            &SyncOptions::default(),
            &NoProgress,
            None,
        )
        .await;
        match outcome {
            Ok(SyncOutcome::Ran(report)) => {
                tracing::info!(source = %name, run = report.run_id, status = report.status.as_str(), "scheduled run ended");
                if let Err(error) = claims::attach_run(&store.pool, name, due, report.run_id).await
                {
                    tracing::warn!(source = %name, %error, "cannot record the run of a claim");
                }
            }
            Ok(SyncOutcome::NothingNew(why)) => {
                tracing::info!(source = %name, reason = %why, "nothing new: no run");
            }
            Err(error) => {
                tracing::error!(source = %name, error = %format!("{error:#}"), "scheduled run failed")
            }
        }
    }
}
