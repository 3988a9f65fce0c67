//! Opening the contract store: a configured server (`[database] url`) or the embedded
//! one, with the schema policy of the command.

use crate::config::{usage, Config};
use anyhow::{anyhow, bail, Context};
use conpere_contracts::RefreshHook;
use conpere_core::db;
use conpere_core::embedded::{default_data_dir, EmbeddedOptions, EmbeddedServer};
use conpere_core::engine::{CommitHook, Engine};
use deadpool_postgres::Pool;
use std::path::PathBuf;
use std::sync::Arc;

/// What to do with the schema on opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations on the embedded server; on a configured server, refuse
    /// to work on an outdated schema (upgrades there are the DBA's `conpere db migrate`).
    Ready,
    /// Leave the schema alone (`db status`, `db migrate`).
    AsIs,
}

/// An open store.
pub struct Store {
    /// Connection pool.
    pub pool: Pool,
    /// What every applied run does before its commit: refresh the learning contracts.
    hook: Arc<dyn CommitHook>,
    embedded: Option<EmbeddedServer>,
    /// Where it is, for messages.
    pub description: String,
}

impl Store {
    /// Opens the store of `config` (database `conpere`).
    pub async fn open(config: &Config, schema: Schema) -> anyhow::Result<Store> {
        Store::open_database(config, "conpere", false, schema).await
    }

    /// Opens database `name`: of the configured server, or of the embedded one (created
    /// if missing, recreated empty when `fresh`).
    pub async fn open_database(
        config: &Config,
        name: &str,
        fresh: bool,
        schema: Schema,
    ) -> anyhow::Result<Store> {
        let size = config.database.pool_size.unwrap_or(8);
        let (catalogue, rules) = config.contract_rules()?;
        let hook: Arc<dyn CommitHook> = Arc::new(RefreshHook { catalogue, rules });
        let store = match &config.database.url {
            Some(url) => {
                let mut pg: tokio_postgres::Config = url
                    .parse()
                    .map_err(|e| usage(format!("[database] url: {e}")))?;
                if let Some(password) = config.database_password()? {
                    pg.password(password);
                }
                Store {
                    pool: db::pool(pg, size)?,
                    hook,
                    embedded: None,
                    description: "the configured PostgreSQL server".into(),
                }
            }
            None => {
                let server = start_embedded(config).await?;
                if fresh {
                    server.drop_database(name).await?;
                }
                server.ensure_database(name).await?;
                Store {
                    pool: db::pool(server.config(name), size)?,
                    hook,
                    description: format!("the embedded PostgreSQL in {}", server.dir().display()),
                    embedded: Some(server),
                }
            }
        };
        if schema == Schema::Ready {
            store.ready().await?;
        }
        Ok(store)
    }

    /// The sync engine on this store: every applied run refreshes the learning contracts
    /// of the students it touched, in its own transaction.
    pub fn engine(&self) -> Engine {
        Engine::new(self.pool.clone()).with_commit_hook(Arc::clone(&self.hook))
    }

    async fn ready(&self) -> anyhow::Result<()> {
        if self.embedded.is_some() {
            db::migrate(&self.pool)
                .await
                .with_context(|| format!("migrating {}", self.description))?;
            return Ok(());
        }
        let current = db::is_current(&self.pool).await.map_err(|e| {
            anyhow!(
                "cannot read the schema version of {}: {e}",
                self.description
            )
        })?;
        if !current {
            bail!(
                "the database schema is not current: run `conpere db migrate` (after a backup) \
                 and try again"
            );
        }
        Ok(())
    }

    /// Whether this is the embedded server (its schema is migrated on first use).
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Closes the pool and stops the embedded server if no other conpere process uses it.
    pub async fn close(self) {
        self.pool.close();
        if let Some(server) = self.embedded {
            if let Err(e) = server.stop().await {
                tracing::warn!("stopping the embedded PostgreSQL: {e}");
            }
        }
    }
}

/// The cluster directory of the embedded server.
pub fn embedded_dir(config: &Config) -> PathBuf {
    config
        .database
        .data_dir
        .clone()
        .unwrap_or_else(default_data_dir)
        .join("postgres")
}

async fn start_embedded(config: &Config) -> anyhow::Result<EmbeddedServer> {
    let mut options = EmbeddedOptions::new(embedded_dir(config));
    options.bin_dir = config.database.pg_bin_dir.clone();
    Ok(EmbeddedServer::start(options).await?)
}
