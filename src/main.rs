//! `conpere`: the command line and (soon) the daemon. Wiring only: configuration, the
//! store, the registry of adapters, and one module per command.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod config;
mod daemon;
mod notify;
mod progress;
mod report;
mod schedule;
mod signals;
mod store;
mod sync;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use commands::exit;
use config::{Config, UsageError};
use conpere_connectors::{ConfigError, Registry};
use conpere_core::embedded::EmbeddedError;
use conpere_core::engine::EngineError;

/// Every connector kind conpere knows. Adding an SIS: one `add` line here.
pub fn registry() -> Registry {
    // canonical files (conpere_connectors::canonical) are built in.
    let mut registry = Registry::with_builtin();
    registry.add::<conpere_apogee::ApogeeConnector>();
    registry.add::<conpere_pegase::PegaseConnector>();
    registry.add::<conpere_mappings::ExportConnector>();
    registry.add::<conpere_cocktail::CocktailConnector>();
    registry
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONPERE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,conpere=info,conpere_core=info,conpere_web=info")
    });
    // Colours for a person at a terminal only: journald, files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Init(args) => return commands::init(args),
        Command::Simulate(args) => return commands::simulate::simulate(args).await,
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Demo(args) => commands::demo::demo(&config, args).await,
        Command::Init(_) | Command::Simulate(_) => unreachable!("handled above"),
        Command::Check(args) => commands::check(&config, args).await,
        Command::Sync(args) => commands::sync(&config, args).await,
        Command::Runs(args) => commands::runs(&config, args.command).await,
        Command::Export(args) => commands::export_command(&config, args).await,
        Command::Contracts(args) => commands::contracts::run(&config, args).await,
        Command::Db(args) => commands::db_command(&config, args.command).await,
        Command::Bench(args) if args.apogee => commands::bench_apogee::bench(&config, args).await,
        Command::Bench(args) if args.pegase => commands::bench_pegase::bench(&config, args).await,
        Command::Bench(args) if args.export => commands::bench_export::bench(&config, args).await,
        Command::Bench(args) => commands::bench::bench(&config, args).await,
        Command::Serve(args) => daemon::serve(&config, args).await,
        Command::Notify(args) => commands::notify::notify(&config, args).await,
    }
}

/// The exit code of an error: configuration and usage errors, and a machine without the
/// PostgreSQL server binaries, are 2; the rest 1.
fn error_code(error: &anyhow::Error) -> i32 {
    let usage = error.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<ConfigError>()
            || matches!(
                e.downcast_ref::<EngineError>(),
                Some(EngineError::KindChanged { .. })
            )
            // The machine lacks what conpere needs: the message says what to install.
            || matches!(
                e.downcast_ref::<EmbeddedError>(),
                Some(EmbeddedError::BinariesNotFound { .. })
            )
    });
    if usage {
        exit::USAGE
    } else {
        exit::FAILED
    }
}

/// jemalloc rather than glibc's allocator: glibc kept what each run had freed, so the
/// process's resident memory only grew, run after run (heaptrack: the same 27 MB of live
/// heap at the peak, in the contract refresh's blocks); jemalloc hands it back, and a
/// run's peak stays flat in the size of the read (`conpere bench`: 55 → 57 MiB from a
/// tenth of a million enrolments to a million), as fast. (mimalloc was as flat, at 95
/// MiB.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(exit::FAILED);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            error_code(&error)
        }
    };
    drop(runtime);
    std::process::exit(code);
}
