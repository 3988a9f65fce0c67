//! A source opened for a run: its lock held, its cursor read under it, ready to start
//! the run once the adapter said there is something new.

use super::error::EngineError;
use super::lock::{hostname, mark_abandoned};
use super::request::RunRequest;
use super::run::{Run, RunContext};
use super::CommitHook;
use deadpool_postgres::ClientWrapper;
use std::sync::Arc;

/// A source this process holds the lock of, with its cursor (see [`Engine::open`](super::Engine::open)).
pub struct OpenSource {
    pub(super) client: ClientWrapper,
    pub(super) source_id: i32,
    pub(super) name: String,
    pub(super) hook: Option<Arc<dyn CommitHook>>,
    pub(super) cursor: Option<serde_json::Value>,
}

impl OpenSource {
    /// The source's cursor from its last applied run, read under the lock.
    pub fn cursor(&self) -> Option<&serde_json::Value> {
        self.cursor.as_ref()
    }

    /// Records the run as `running` (runs of the source left `running` by a process that
    /// died are marked failed first) and returns it, ready for [`Run::apply`].
    pub async fn start(self, request: RunRequest) -> Result<Run, EngineError> {
        assert_eq!(
            request.source, self.name,
            "a run of the source that was opened"
        );
        let OpenSource {
            client,
            source_id,
            hook,
            cursor,
            ..
        } = self;
        mark_abandoned(&client, source_id).await?;
        let years = request.coverage.years.clone();
        let kinds: Vec<&str> = request.coverage.kinds.iter().map(|k| k.as_str()).collect();
        let row = client
            .query_one(
                "INSERT INTO sync_run (source_id, status, mode, dry_run, years, kinds, hostname, pid) \
                 VALUES ($1, 'running', $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &source_id,
                    &request.mode.as_str(),
                    &request.dry_run,
                    &years,
                    &kinds,
                    &hostname(),
                    &(std::process::id() as i32),
                ],
            )
            .await
            .map_err(EngineError::db("recording the run"))?;
        Ok(Run {
            client,
            ctx: RunContext {
                run_id: row.get(0),
                source_id,
                request,
                approval: None,
                hook,
            },
            cursor,
        })
    }
}
