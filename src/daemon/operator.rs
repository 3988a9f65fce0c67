//! What the admin API (`conpere_web::admin`) asks of the binary: start a run of a source
//! now, with the connector the registry builds from its configuration, and notify its
//! end like a scheduled run's.

use super::scheduler;
use crate::config::Config;
use crate::notify::{Notifier, RunEnded, Trigger};
use crate::store::Store;
use conpere_core::engine::Engine;
use conpere_web::admin::{Operator, StartError};
use std::sync::Arc;

/// The daemon's [`Operator`].
pub struct DaemonOperator {
    /// The configuration (to build a source's connector).
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<Store>,
    /// Tells a started run's failure or hold, like a scheduled one's.
    pub notifier: Arc<Notifier>,
}

/// The admin token of `[server]`: from the environment variable or the file named there.
pub fn token(config: &Config) -> anyhow::Result<Option<String>> {
    let server = &config.server;
    let token = crate::config::secret_setting(
        "[server] admin_token",
        server.admin_token_env.as_ref(),
        server.admin_token_file.as_ref(),
    )?;
    Ok(token
        .map(|t| t.expose().trim().to_string())
        .filter(|t| !t.is_empty()))
}

impl Operator for DaemonOperator {
    fn start_run(&self, name: &str) -> Result<(), StartError> {
        let source = self
            .config
            .source(name)
            .map_err(|error| StartError::UnknownSource(format!("{error:#}")))?;
        let connector = crate::registry()
            .build(&source)
            .map_err(|error| StartError::Unusable(error.to_string()))?;
        let (store, notifier) = (Arc::clone(&self.store), Arc::clone(&self.notifier));
        let next_run = scheduler::next_run(&self.config, &source);
        tokio::spawn(async move {
            let ending = scheduler::attempt(&store, &source, connector.as_ref()).await;
            let ended = RunEnded {
                source: &source,
                ending,
                attempts: 1,
                trigger: Trigger::AdminApi,
                next_run,
            };
            notifier.run_ended(ended).await;
        });
        Ok(())
    }

    fn engine(&self) -> Engine {
        self.store.engine()
    }
}
