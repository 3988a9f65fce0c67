//! The contract store's database: connection pool and schema migrations.
//!
//! The schema lives in `core/migrations/V<n>__<name>.sql` and is embedded in the binary
//! (refinery), so `conpere db migrate` needs nothing but the binary.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

mod embedded_migrations {
    refinery::embed_migrations!("migrations");
}

/// Advisory-lock key serializing migrations across processes ('conp', 'migr').
const MIGRATION_LOCK: (i32, i32) = (0x636f_6e70, 0x6d69_6772);

/// Errors of the store's plumbing (connecting, migrating).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The pool could not give a connection.
    #[error("cannot connect to the database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Build(String),
}

/// Builds a connection pool for `config` (at most `size` connections).
pub fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, DbError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // Verified: a connection whose server went away is replaced, not handed out.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(2))
        .build()
        .map_err(|e| DbError::Build(e.to_string()))
}

/// One migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// Version number (the `n` of `V<n>__name.sql`).
    pub version: i32,
    /// Name.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// Applies the pending migrations; returns the versions applied now. Safe to call from
/// several processes at once (an advisory lock serializes them).
pub async fn migrate(pool: &Pool) -> Result<Vec<MigrationState>, DbError> {
    let mut conn = pool.get().await?;
    conn.execute(
        "SELECT pg_advisory_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let outcome = embedded_migrations::migrations::runner()
        .set_grouped(true)
        .run_async(client)
        .await;
    conn.execute(
        "SELECT pg_advisory_unlock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await?;
    let report = outcome?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| MigrationState {
            version: m.version() as i32,
            name: m.name().to_string(),
            applied: true,
        })
        .collect())
}

/// Every embedded migration and whether the database has applied it.
pub async fn status(pool: &Pool) -> Result<Vec<MigrationState>, DbError> {
    let mut conn = pool.get().await?;
    // A database never migrated has no history table: everything is pending.
    let migrated: bool = conn
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    let client: &mut tokio_postgres::Client = &mut conn;
    let runner = embedded_migrations::migrations::runner();
    let applied = if migrated {
        runner.get_applied_migrations_async(client).await?
    } else {
        Vec::new()
    };
    Ok(runner
        .get_migrations()
        .iter()
        .map(|m| MigrationState {
            version: m.version() as i32,
            name: m.name().to_string(),
            applied: applied.iter().any(|a| a.version() == m.version()),
        })
        .collect())
}

/// Whether every embedded migration is applied.
pub async fn is_current(pool: &Pool) -> Result<bool, DbError> {
    Ok(status(pool).await?.iter().all(|m| m.applied))
}

/// A fingerprint of the embedded migrations (versions and names), used to name template
/// databases in tests so a schema change never reuses a stale template.
pub fn schema_fingerprint() -> u64 {
    let mut text = String::new();
    for m in embedded_migrations::migrations::runner().get_migrations() {
        text.push_str(&format!("{}:{}:{};", m.version(), m.name(), m.checksum()));
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}
