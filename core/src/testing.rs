//! Throw-away databases for test suites, on one shared embedded PostgreSQL server.
//!
//! The first test of a process starts (or reuses) the test cluster, in
//! `$CONPERE_TEST_PG_DIR` or `<tmp>/conpere-test-pg-<uid>`; it keeps running after the
//! tests so the next run starts at once (`pg_ctl stop -D <dir>/data` stops it). Each test
//! gets its own database, cloned from a migrated template, so tests run in parallel and
//! never see each other's data. Databases of test processes that are gone are dropped
//! when the next process starts.
//!
//! ```no_run
//! # async fn t() {
//! let db = conpere_core::testing::TestDatabase::new().await;
//! let client = db.pool.get().await.unwrap();
//! client.execute("SELECT 1", &[]).await.unwrap();
//! # }
//! ```

use crate::db;
use crate::embedded::{EmbeddedOptions, EmbeddedServer};
use deadpool_postgres::Pool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::OnceCell;

static SERVER: OnceCell<EmbeddedServer> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where the shared test cluster lives.
pub fn test_cluster_dir() -> PathBuf {
    match std::env::var_os("CONPERE_TEST_PG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            std::env::temp_dir().join(format!("conpere-test-pg-{}", nix::unistd::Uid::current()))
        }
    }
}

/// The shared test server, started on first use.
pub async fn server() -> &'static EmbeddedServer {
    SERVER
        .get_or_init(|| async {
            let server = EmbeddedServer::start(EmbeddedOptions {
                dir: test_cluster_dir(),
                bin_dir: None,
                stop_on_exit: false,
                fast_unsafe: true,
            })
            .await
            .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL server: {e}"));
            drop_orphan_databases(&server).await;
            server
        })
        .await
}

/// A database of one test, migrated, with a pool on it.
pub struct TestDatabase {
    /// A pool on the database.
    pub pool: Pool,
    /// Database name.
    pub name: String,
    /// Connection string (key=value form) for `[database] url` of a child process.
    pub connection_string: String,
}

impl TestDatabase {
    /// Creates a fresh, migrated database. Panics with the reason when it cannot: this is
    /// for tests.
    pub async fn new() -> TestDatabase {
        let server = server().await;
        let template = ensure_template(server).await;
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin_client(server).await;
        let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
        // A template briefly still "in use" by a just-closed session makes CREATE fail.
        for attempt in 0.. {
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if attempt < 50 => {
                    tracing::debug!("retrying {sql}: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot create test database {name}: {e}"),
            }
        }
        let pool = db::pool(server.config(&name), 8).expect("test pool");
        TestDatabase {
            pool,
            connection_string: server.connection_string(&name),
            name,
        }
    }
}

async fn admin_client(server: &EmbeddedServer) -> tokio_postgres::Client {
    let (client, connection) = server
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    tokio::spawn(connection);
    client
}

/// Creates the migrated template of the current schema once (across processes: an
/// advisory lock serializes creators), under a name derived from the migrations.
async fn ensure_template(server: &EmbeddedServer) -> String {
    let name = format!("conpere_tpl_{:016x}", db::schema_fingerprint());
    let admin = admin_client(server).await;
    admin
        .batch_execute("SELECT pg_advisory_lock(1668247152, 1953524736)")
        .await
        .expect("template lock");
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("template lookup")
        .is_some();
    if !exists {
        // Built under a temporary name and renamed when complete, so a crash midway never
        // leaves a half-migrated template behind the real name.
        let building = format!("{name}_building");
        // One statement per call: several in one simple query form an implicit
        // transaction, where CREATE/DROP DATABASE are refused.
        for sql in [
            format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            format!("CREATE DATABASE {building}"),
        ] {
            admin.batch_execute(&sql).await.expect("create template");
        }
        {
            let pool = db::pool(server.config(&building), 2).expect("template pool");
            db::migrate(&pool)
                .await
                .unwrap_or_else(|e| panic!("migrating the test template: {e}"));
            pool.close();
        }
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{building}'"
            ))
            .await
            .expect("template sessions");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
            .await
            .expect("rename template");
    }
    admin
        .batch_execute("SELECT pg_advisory_unlock(1668247152, 1953524736)")
        .await
        .expect("template unlock");
    name
}

/// Drops `t_<pid>_<n>` databases whose test process no longer exists.
async fn drop_orphan_databases(server: &EmbeddedServer) {
    let admin = admin_client(server).await;
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}
