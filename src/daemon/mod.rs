//! `conpere serve`: the daemon that runs each source on its schedule, unattended.
//!
//! * one scheduling task per source with a `schedule` ([`scheduler`]): due times from
//!   [`crate::schedule`] (DST-safe), each run claimed once across daemons sharing the
//!   store (`conpere_core::claims`), never two runs of a source at once (the engine's
//!   advisory lock);
//! * HTTP (`conpere_web`): `GET /health` (alive), `GET /ready` (database reachable,
//!   schema current), `GET /metrics` (Prometheus text), the admin API under `/api/v1/`
//!   behind a bearer token (its runs started through [`operator`]), and the contracts API
//!   with an `[auth]` section;
//! * at start-up, runs left `running` by a killed process are marked failed;
//! * SIGTERM or SIGINT: no new run starts; a run in progress gets `shutdown_grace_seconds`
//!   to finish, else it is abandoned — its transaction rolls back, nothing of it applied;
//! * per source: a run timeout, retries of a failed run, start jitter; and notifications
//!   ([`crate::notify`]) when a run fails or is held, by webhook or e-mail.

mod operator;
mod scheduler;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::notify::Notifier;
use crate::store::{Schema, Store};
use anyhow::Context;
use scheduler::ScheduledSource;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The contracts API of `[auth]` (none without it: the daemon then serves the admin API
/// only, and says so).
fn contracts_api(config: &Config, store: &Store) -> anyhow::Result<Option<Arc<conpere_web::Api>>> {
    let Some(settings) = &config.auth else {
        tracing::info!("no [auth] section: the contracts API (/api/v1/contracts…) is not served");
        return Ok(None);
    };
    let public_url = config.server.public_url.as_deref();
    let auth = settings
        .build(|name| std::env::var(name).ok(), public_url)
        .map_err(crate::config::usage)?;
    let (catalogue, rules) = config.contract_rules()?;
    Ok(Some(Arc::new(conpere_web::Api {
        pool: store.pool.clone(),
        auth,
        roles: config.roles.clone(),
        student_match: settings.student_match.unwrap_or_default(),
        catalogue,
        rules,
        pages: pages_settings(config)?,
    })))
}

/// `[server] frame_ancestors` for the pages: origins only (a scheme and a host), so
/// that nothing else can slip into the Content-Security-Policy.
fn pages_settings(config: &Config) -> anyhow::Result<conpere_web::pages::PagesSettings> {
    let origins = config.server.frame_ancestors.clone().unwrap_or_default();
    for origin in &origins {
        let (scheme, host) = origin.split_once("://").unwrap_or(("", ""));
        let clean = |c: char| c.is_ascii_alphanumeric() || ".-:[]*".contains(c);
        if !matches!(scheme, "https" | "http") || host.is_empty() || !host.chars().all(clean) {
            return Err(crate::config::usage(format!(
                "[server] frame_ancestors: {origin:?} is not an origin such as \
                 \"https://ent.univ.fr\""
            )));
        }
    }
    Ok(conpere_web::pages::PagesSettings {
        frame_ancestors: origins,
    })
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<i32> {
    let (store, sources) = match args.demo {
        true => {
            let demo = crate::commands::demo::DATABASE;
            let store = Store::open_database(config, demo, false, Schema::Ready).await?;
            (store, Vec::new())
        }
        false => (
            Store::open(config, Schema::Ready).await?,
            scheduler::scheduled_sources(config)?,
        ),
    };
    let store = Arc::new(store);
    let notifier = Arc::new(Notifier::new(config, store.pool.clone())?);
    // Runs left `running` by a daemon that was killed show as failed from now on.
    match store.engine().reap_abandoned().await {
        Ok(reaped) if !reaped.is_empty() => {
            tracing::warn!(runs = ?reaped, "runs abandoned by a stopped process marked failed (nothing of them was applied)")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot mark abandoned runs"),
    }
    let listen = args
        .listen
        .or_else(|| config.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen} ([server] listen)"))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let operator = operator::DaemonOperator {
        config: Arc::new(config.clone()),
        store: Arc::clone(&store),
        notifier: Arc::clone(&notifier),
    };
    let limits = limits(config);
    raise_open_files(limits.max_connections);
    let app = conpere_web::app(conpere_web::Surface {
        pool: store.pool.clone(),
        admin: Arc::new(conpere_web::admin::Admin {
            pool: store.pool.clone(),
            token: operator::token(config)?,
            name: (config.server.admin_name.clone()).unwrap_or_else(|| "admin-token".into()),
            operator: Arc::new(operator),
        }),
        contracts: contracts_api(config, &store)?,
        limits,
    });
    let mut http_stopped = stopped.clone();
    let shutdown = async move {
        let _ = http_stopped.wait_for(|stop| *stop).await;
    };
    let server = tokio::spawn(conpere_web::serve(listener, app, limits, shutdown));
    // The first line says where the daemon listens (scripts and tests read it).
    println!(
        "conpere serve: listening on http://{address}, {} scheduled source(s)",
        sources.len()
    );
    std::io::stdout().flush()?;
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|source: ScheduledSource| {
            let context = scheduler::Context {
                store: Arc::clone(&store),
                catch_up: config.server.catch_up.unwrap_or_default(),
                stopped: stopped.clone(),
                notifier: Arc::clone(&notifier),
            };
            tokio::spawn(source.run(context))
        })
        .collect();
    crate::signals::stop_requested().await?;
    tracing::info!("stopping: no new run starts");
    let _ = stop.send(true);
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds.unwrap_or(60));
    if !finish(tasks, grace).await {
        // What was abandoned shows as failed at once, not at its source's next run.
        scheduler::reap_soon(&store.engine()).await;
    }
    let _ = server.await;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(super::commands::exit::OK)
}

/// `[server]`'s timeouts and bound on connections.
fn limits(config: &Config) -> conpere_web::Limits {
    let server = &config.server;
    let defaults = conpere_web::Limits::default();
    let seconds =
        |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
    conpere_web::Limits {
        header_read: seconds(server.header_timeout_seconds, defaults.header_read),
        request: seconds(server.request_timeout_seconds, defaults.request),
        max_connections: server.max_connections.unwrap_or(defaults.max_connections),
    }
}

/// Raises the soft limit of open files to the hard one: each connection is a file, and a
/// soft limit of 1 024 (or 64) would refuse connections long before `max_connections`.
/// Warns when even the hard limit leaves too few.
fn raise_open_files(connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_err() {
        tracing::warn!(soft, hard, "cannot raise the limit of open files");
    }
    // The connections, the database pool, the embedded server's pipes, the log.
    let needed = connections as u64 + 128;
    if hard < needed {
        tracing::warn!(
            limit = hard,
            needed,
            "the limit of open files is below [server] max_connections + 128: raise it \
             (LimitNOFILE= in the systemd unit) or lower max_connections"
        );
    }
}

/// Waits for the scheduling tasks (a run in progress finishes) up to `grace`, then
/// abandons what is left: dropping a run closes its connection and PostgreSQL rolls it
/// back. Whether every task finished in time.
async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>, grace: Duration) -> bool {
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "a run did not finish in time: abandoned, nothing of it applied"
        );
        for abort in aborts {
            abort.abort();
        }
        return false;
    }
    true
}
