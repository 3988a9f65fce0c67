//! What the admin API (`conpere_web::admin`) asks of the binary: start a run of a source
//! now, with the connector the registry builds from its configuration, and notify its
//! end like a scheduled run's.

use super::scheduler;
use crate::config::Config;
use crate::notify::{Notifier, RunEnded, Trigger};
use crate::store::Store;
use conpere_core::engine::{Engine, EngineError};
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

/// The shortest admin token accepted.
pub const MIN_TOKEN: usize = 32;

/// The admin token of `[server]`, from the environment variable or the file named there;
/// `None` when neither is configured (the admin API then refuses every call). A token
/// configured but blank, or shorter than [`MIN_TOKEN`] characters, is refused with how to
/// make one.
pub fn token(config: &Config) -> anyhow::Result<Option<String>> {
    let server = &config.server;
    let token = crate::config::secret_setting(
        "[server] admin_token",
        server.admin_token_env.as_ref(),
        server.admin_token_file.as_ref(),
    )?;
    let Some(token) = token.map(|t| t.expose().trim().to_string()) else {
        return Ok(None);
    };
    let make = "make one with `head -c 32 /dev/urandom | base64` (or `openssl rand -base64 32`)";
    if token.is_empty() {
        return Err(crate::config::usage(format!(
            "[server] admin_token: the token is blank; {make}, or remove admin_token_env and \
             admin_token_file to disable the admin API"
        )));
    }
    if token.chars().count() < MIN_TOKEN {
        return Err(crate::config::usage(format!(
            "[server] admin_token: the token has {} characters, fewer than {MIN_TOKEN}: it \
             could be guessed; {make}",
            token.chars().count()
        )));
    }
    Ok(Some(token))
}

#[async_trait::async_trait]
impl Operator for DaemonOperator {
    async fn start_run(&self, name: &str) -> Result<(), StartError> {
        let source = self
            .config
            .source(name)
            .map_err(|error| StartError::UnknownSource(format!("{error:#}")))?;
        let connector = crate::registry()
            .build(&source)
            .map_err(|error| StartError::Unusable(error.to_string()))?;
        // Refused now rather than failed later: a busy source or a database down starts
        // nothing, records nothing and notifies nobody.
        match self.store.engine().check_free(name).await {
            Ok(()) => {}
            Err(error @ EngineError::Busy { .. }) => {
                return Err(StartError::Busy(error.to_string()))
            }
            Err(error) => return Err(StartError::Unavailable(error.to_string())),
        }
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
