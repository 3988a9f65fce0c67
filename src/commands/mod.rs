//! One function per subcommand; each returns the process exit code.

pub mod bench;
pub mod bench_api;
pub mod bench_apogee;
pub mod bench_export;
pub mod bench_pegase;
mod bench_sis;
pub mod contracts;
pub mod demo;
pub mod notify;
pub mod secret_file;
pub mod simulate;

use crate::cli::{CheckArgs, DbCommand, ExportArgs, InitArgs, RunsCommand, SyncArgs};
use crate::config::{usage, Config};
use crate::progress::RunProgress;
use crate::report;
use crate::schedule::Schedule;
use crate::store::{Schema, Store};
use crate::sync::{run_source, SyncOptions, SyncOutcome};
use anyhow::Context;
use conpere_core::engine::RunStatus;
use conpere_core::export::{export, ExportFilter};
use conpere_core::{db, runs};
use std::io::Write;
use std::path::Path;

/// Exit codes (DESIGN.md).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A run failed.
    pub const FAILED: i32 = 1;
    /// Usage or configuration error.
    pub const USAGE: i32 = 2;
    /// A run is held for approval.
    pub const HELD: i32 = 3;
}

/// The exit code of a run's status.
pub fn status_code(status: RunStatus) -> i32 {
    match status {
        RunStatus::Succeeded | RunStatus::SucceededWithWarnings => exit::OK,
        RunStatus::Held => exit::HELD,
        RunStatus::Failed | RunStatus::Rejected | RunStatus::Refused | RunStatus::Running => {
            exit::FAILED
        }
    }
}

/// `conpere sync`.
pub async fn sync(config: &Config, args: SyncArgs) -> anyhow::Result<i32> {
    let name = config.default_source(args.source.as_deref())?;
    let source = config.source(&name)?;
    let connector = crate::registry()
        .build(&source)
        .map_err(|e| usage(e.to_string()))?;
    let store = Store::open(config, Schema::Ready).await?;
    let engine = store.engine();
    let options = SyncOptions {
        years: (!args.years.is_empty()).then(|| args.years.clone()),
        full: args.full,
        dry_run: args.dry_run,
    };
    let mut diff_out = open_diff(args.diff.as_deref())?;
    let progress = RunProgress::new(&name);
    let diff = diff_out
        .as_mut()
        .map(|d| d.as_mut() as &mut (dyn Write + Send));
    // Ctrl-C (or SIGTERM) drops the run: its connection closes and PostgreSQL rolls it back.
    let outcome = tokio::select! {
        outcome = run_source(&engine, &source, connector.as_ref(), &options, &progress, diff) => Some(outcome),
        _ = crate::signals::stop_requested() => None,
    };
    progress.finish();
    let code = match outcome {
        None => {
            eprintln!("interrupted: the run is abandoned and nothing of it is applied");
            130
        }
        Some(Ok(SyncOutcome::Ran(report))) => {
            print!("{}", report::summary(&report));
            status_code(report.status)
        }
        Some(Ok(SyncOutcome::NothingNew(why))) => {
            println!("source `{name}`: nothing new, no run ({why})");
            exit::OK
        }
        Some(Err(e)) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<crate::config::UsageError>()) {
                exit::USAGE
            } else {
                exit::FAILED
            }
        }
    };
    if let Some(mut out) = diff_out {
        out.flush()?;
    }
    store.close().await;
    Ok(code)
}

fn open_diff(path: Option<&Path>) -> anyhow::Result<Option<Box<dyn Write + Send>>> {
    Ok(match path {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
    })
}

/// `conpere runs …`.
pub async fn runs(config: &Config, command: RunsCommand) -> anyhow::Result<i32> {
    let store = Store::open(config, Schema::Ready).await?;
    let code = runs_on(&store, command).await;
    store.close().await;
    code
}

async fn runs_on(store: &Store, command: RunsCommand) -> anyhow::Result<i32> {
    let engine = store.engine();
    match command {
        RunsCommand::List {
            source,
            held,
            limit,
        } => {
            let status = held.then_some(RunStatus::Held);
            let list = runs::list(&store.pool, source.as_deref(), status, limit).await?;
            println!(
                "{:>6}  {:<16} {:<24} {:<11} {:<20} {:>9} {:>9} {:>9} {:>11}",
                "run",
                "source",
                "status",
                "mode",
                "started (UTC)",
                "inserted",
                "updated",
                "deleted",
                "quarantined"
            );
            for r in list {
                let status = if r.dry_run {
                    format!("{} (dry)", r.status)
                } else {
                    r.status.to_string()
                };
                println!(
                    "{:>6}  {:<16} {:<24} {:<11} {:<20} {:>9} {:>9} {:>9} {:>11}",
                    r.id,
                    r.source,
                    status,
                    r.mode,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    r.totals.inserted,
                    r.totals.updated,
                    r.totals.deleted,
                    r.totals.quarantined
                );
            }
            Ok(exit::OK)
        }
        RunsCommand::Show { id, quarantine } => show_run(store, id, quarantine).await,
        RunsCommand::Approve { id, by } => {
            let progress = RunProgress::new(&format!("run #{id}"));
            let report = engine.approve(id, &by, &progress).await;
            progress.finish();
            let report = report?;
            println!("Approved by {by}.");
            print!("{}", report::summary(&report));
            Ok(status_code(report.status))
        }
        RunsCommand::Reject { id, by } => {
            engine.reject(id, &by).await?;
            println!("Run #{id} rejected by {by}: nothing of it was applied.");
            Ok(exit::OK)
        }
    }
}

async fn show_run(store: &Store, id: i64, quarantine: i64) -> anyhow::Result<i32> {
    let Some(detail) = runs::show(&store.pool, id, quarantine).await? else {
        return Err(usage(format!(
            "there is no run #{id} (see `conpere runs list`)"
        )));
    };
    let s = &detail.summary;
    let dry = if s.dry_run { " (dry run)" } else { "" };
    println!("Run #{} of source `{}`: {}{dry}", s.id, s.source, s.status);
    println!("mode: {}", s.mode);
    println!("started: {}", s.started_at.format("%Y-%m-%d %H:%M:%S UTC"));
    if let Some(f) = s.finished_at {
        println!("finished: {}", f.format("%Y-%m-%d %H:%M:%S UTC"));
    }
    if let Some(by) = &s.decided_by {
        println!("decided by: {by}");
    }
    if let Some(e) = &s.error {
        println!("error: {e}");
    }
    if let Some(h) = &s.hold_reason {
        println!("held: {h}");
    }
    println!("\n{}", report::counts_table(&detail.by_kind, &s.totals));
    for note in &s.notes {
        println!("\n{note}");
    }
    if !s.deferred.is_empty() {
        print!("\n{}", report::deferred_lines(&s.deferred));
    }
    if !detail.quarantine.is_empty() {
        println!("\nquarantined (first {}):", detail.quarantine.len());
        for q in &detail.quarantine {
            println!(
                "- {} {} at {}: {}\n    {}",
                q.kind.as_deref().unwrap_or("?"),
                q.key.as_deref().unwrap_or("(no key)"),
                q.location.as_deref().unwrap_or("-"),
                q.reason,
                q.payload.chars().take(300).collect::<String>()
            );
        }
    }
    Ok(if s.status == RunStatus::Held {
        exit::HELD
    } else {
        exit::OK
    })
}

/// `conpere export`.
pub async fn export_command(config: &Config, args: ExportArgs) -> anyhow::Result<i32> {
    let store = Store::open(config, Schema::Ready).await?;
    let filter = ExportFilter {
        source: args.source,
        year: args.year,
    };
    let outcome = match &args.out {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            export(&store.pool, &filter, &mut out)
                .await
                .map_err(anyhow::Error::from)
        }
        Some(path) => export_to_file(&store, &filter, path).await,
    };
    store.close().await;
    let count = outcome?;
    if let Some(path) = args.out {
        eprintln!("{count} records written to {}", path.display());
    }
    Ok(exit::OK)
}

/// Writes beside the target, then renames: readers never see half an export.
async fn export_to_file(store: &Store, filter: &ExportFilter, path: &Path) -> anyhow::Result<u64> {
    let tmp = path.with_extension("jsonl.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let count = export(&store.pool, filter, &mut out).await?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(count)
}

/// `conpere db …`.
pub async fn db_command(config: &Config, command: DbCommand) -> anyhow::Result<i32> {
    let store = Store::open(config, Schema::AsIs).await?;
    let outcome = match command {
        DbCommand::Migrate => db::migrate(&store.pool).await.map(|applied| {
            if applied.is_empty() {
                println!("The schema of {} is current.", store.description);
            }
            for m in applied {
                println!("applied V{}__{}", m.version, m.name);
            }
        }),
        DbCommand::Status => db::status(&store.pool).await.map(|all| {
            for m in all {
                let state = if m.applied { "applied" } else { "pending" };
                println!("V{}__{:<40} {state}", m.version, m.name);
            }
        }),
    };
    store.close().await;
    outcome?;
    Ok(exit::OK)
}

/// `conpere init`.
pub fn init(args: InitArgs) -> anyhow::Result<i32> {
    if args.out.exists() && !args.force {
        return Err(usage(format!(
            "{} exists; use --force to overwrite it",
            args.out.display()
        )));
    }
    let registry = crate::registry();
    let mut text = String::from(include_str!("../../conpere.example.toml"));
    for kind in registry.kinds() {
        if let Some(spec) = registry.spec(kind) {
            text.push('\n');
            text.push_str(
                &spec
                    .example_toml(&format!("example-{kind}"))
                    .lines()
                    .map(|l| match l.starts_with('#') {
                        true => format!("{l}\n"),
                        false => format!("# {l}\n"),
                    })
                    .collect::<String>(),
            );
        }
    }
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "Wrote {}. Uncomment a [sources.*] table, then run `conpere check`.",
        args.out.display()
    );
    Ok(exit::OK)
}

/// The source's `schedule`, when it has one, parsed in the institution's time zone; its
/// next run is shown.
fn check_schedule(config: &Config, name: &str) -> anyhow::Result<()> {
    let source = config.source(name)?;
    let zone = &config.institution.timezone;
    let Some(schedule) =
        Schedule::of_source(&source, zone).map_err(|e| usage(format!("`schedule`: {e}")))?
    else {
        return Ok(());
    };
    let expression = source.common.schedule.as_deref().unwrap_or_default();
    let next = schedule
        .next_after(chrono::Utc::now())
        .map(|t| {
            format!(
                "next run {}",
                schedule.local(t).format("%Y-%m-%d %H:%M:%S %Z")
            )
        })
        .unwrap_or_else(|| "never runs".into());
    println!("ok      source `{name}`: schedule `{expression}` ({zone}): {next}");
    Ok(())
}

/// `conpere check`.
pub async fn check(config: &Config, args: CheckArgs) -> anyhow::Result<i32> {
    let registry = crate::registry();
    let names = match &args.source {
        Some(name) => vec![name.clone()],
        None => config.source_names.clone(),
    };
    let mut code = exit::OK;
    let institution = &config.institution;
    println!(
        "ok      configuration: {} (institution `{}`, time zone {})",
        config
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults (no conpere.toml)".into()),
        institution.name,
        institution.timezone
    );
    match Store::open(config, Schema::AsIs).await {
        Ok(store) => {
            match db::status(&store.pool).await {
                Ok(all) if all.iter().all(|m| m.applied) => {
                    println!("ok      database: {} (schema current)", store.description)
                }
                Ok(_) if store.is_embedded() => println!(
                    "ok      database: {} (schema created or upgraded on first use)",
                    store.description
                ),
                Ok(_) => println!(
                    "warn    database: {} (schema not current: run `conpere db migrate`)",
                    store.description
                ),
                Err(e) => {
                    println!("FAILED  database: {e}");
                    code = exit::FAILED;
                }
            }
            store.close().await;
        }
        Err(e) => {
            println!("FAILED  database: {e:#}");
            code = exit::FAILED;
        }
    }
    match crate::notify::Channels::new(config) {
        Ok(channels) if channels.names().is_empty() => println!(
            "warn    notifications: no channel: nobody is told when a scheduled run fails or is held \
             (add a [notifications.<name>] table)"
        ),
        Ok(channels) => println!(
            "ok      notifications: {} (send a test notice with `conpere notify --test`)",
            channels.names().join(", ")
        ),
        Err(e) => {
            println!("FAILED  notifications: {e:#}");
            code = exit::USAGE;
        }
    }
    if names.is_empty() {
        println!("warn    no source configured: add a [sources.<name>] table (see `conpere init`)");
    }
    for name in names {
        if let Err(problem) = check_schedule(config, &name) {
            println!("FAILED  source `{name}`: {problem}");
            code = exit::USAGE;
            continue;
        }
        let built = config
            .source(&name)
            .and_then(|s| registry.build(&s).map_err(|e| usage(e.to_string())));
        let connector = match built {
            Ok(c) => c,
            Err(e) => {
                println!("FAILED  source `{name}`: {e:#}");
                code = exit::USAGE;
                continue;
            }
        };
        match connector.check().await {
            Ok(report) => println!(
                "ok      source `{name}`:\n          {}",
                report.details.join("\n          ")
            ),
            Err(e) => {
                println!("FAILED  source `{name}`: {e}");
                if code == exit::OK {
                    code = exit::FAILED;
                }
            }
        }
    }
    Ok(code)
}
