//! The command line (clap).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// conpere: learning contracts (contrats pédagogiques) kept in sync with the student
/// information system.
#[derive(Debug, Parser)]
#[command(name = "conpere", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./conpere.toml when present).
    #[arg(long, global = true, env = "CONPERE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CONPERE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (log shippers, logrotate-friendly).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// First run: embedded PostgreSQL, a generated university, a full sync, a summary.
    Demo(DemoArgs),
    /// Write a commented conpere.toml.
    Init(InitArgs),
    /// Validate the configuration and test each source's connection (read-only).
    Check(CheckArgs),
    /// Run one sync of a source.
    Sync(SyncArgs),
    /// Run history; approve or reject held runs.
    Runs(RunsArgs),
    /// Write the canonical JSON Lines export.
    Export(ExportArgs),
    /// Learning contracts: generate, list, show, export.
    Contracts(ContractsArgs),
    /// Schema management.
    Db(DbArgs),
    /// Measure the engine against a plain binary COPY of the same rows (or, with
    /// --apogee or --pegase, syncs through that adapter against its simulated SIS).
    Bench(BenchArgs),
    /// Serve a generated university from a simulated SIS, to try a configuration
    /// against (`conpere check`, `conpere sync`) without touching a real one.
    Simulate(SimulateArgs),
    /// Run the daemon: each source on its schedule, HTTP health endpoints, until
    /// SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Send a test notice through the notification channels, to see they work.
    Notify(NotifyArgs),
}

/// `conpere notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Send a test notice (the only action for now: required, so that the command is
    /// never run by mistake).
    #[arg(long, required = true)]
    pub test: bool,
    /// Only this channel (`[notifications.<name>]`); default: every channel.
    #[arg(long)]
    pub channel: Option<String>,
}

/// `conpere serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address of the HTTP endpoints (over `[server] listen`; port 0: any free one).
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve the contracts `conpere demo` left (its database on the embedded server), to
    /// try the API; no source is scheduled.
    #[arg(long)]
    pub demo: bool,
}

/// `conpere simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The SIS to simulate.
    #[arg(value_enum)]
    pub sis: SimulatedSis,
    /// Students of the generated university.
    #[arg(long, default_value_t = 200)]
    pub students: usize,
    /// Seed of the generated university.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// Latency added to every response, in milliseconds (a production SIS is not instant).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Stop when standard input closes (for a parent process that runs the simulator),
    /// and read control commands from it, one a line (`change-registrations <per-mille>`).
    #[arg(long, hide = true)]
    pub exit_on_stdin_close: bool,
}

/// Simulated SIS.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SimulatedSis {
    /// Apogée's SOAP web services.
    Apogee,
    /// Pégase's REST APIs (CAS token, INS, CHC, ODF).
    Pegase,
}

/// `conpere demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Students of the generated university.
    #[arg(long, default_value_t = 200)]
    pub students: usize,
    /// Seed of the generated university.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// Then serve the pages on the demo's contracts, with a demo-only login page to pick
    /// a student or a directeur (no password), until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// `conpere init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write (default: ./conpere.toml).
    #[arg(long, default_value = "conpere.toml")]
    pub out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `conpere check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
}

/// `conpere sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The source to sync (optional when only one is configured).
    #[arg(long)]
    pub source: Option<String>,
    /// Only this academic year (start year: 2024 means 2024-2025); repeatable.
    #[arg(long = "year")]
    pub years: Vec<i32>,
    /// Read a whole snapshot even when the source can read changes only.
    #[arg(long)]
    pub full: bool,
    /// Compute and report the changes; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write the changes as JSON lines to this file (`-`: stdout).
    #[arg(long, requires = "dry_run")]
    pub diff: Option<PathBuf>,
}

/// `conpere runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// What to do with runs.
    #[command(subcommand)]
    pub command: RunsCommand,
}

/// `conpere runs …`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The latest runs.
    List {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Only held runs.
        #[arg(long)]
        held: bool,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run: counts per kind, error, quarantined records.
    Show {
        /// Run id.
        id: i64,
        /// How many quarantined records to print.
        #[arg(long, default_value_t = 20)]
        quarantine: i64,
    },
    /// Apply a held run as it was read.
    Approve {
        /// Run id.
        id: i64,
        /// Who decides (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
    /// Discard a held run.
    Reject {
        /// Run id.
        id: i64,
        /// Who decides (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
}

/// `conpere export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only this academic year.
    #[arg(long)]
    pub year: Option<i32>,
    /// Output file (default: stdout). Written to a temporary file, then renamed.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `conpere contracts`.
#[derive(Debug, Args)]
pub struct ContractsArgs {
    /// The contracts `conpere demo` left (its database on the embedded server), not
    /// the configured store's.
    #[arg(long)]
    pub demo: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: ContractsCommand,
}

/// `conpere contracts …`.
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Create or refresh every student's contract from the store (syncs do it for the
    /// students they touch).
    Generate {
        /// Only this academic year.
        #[arg(long)]
        year: Option<i32>,
    },
    /// List contracts: id, year, student, state, flags.
    List {
        /// Only this academic year.
        #[arg(long)]
        year: Option<i32>,
        /// Only those with a section of this step (`VET:L1INF/120`).
        #[arg(long)]
        step: Option<String>,
        /// Only specific contracts (with a flag).
        #[arg(long)]
        flagged: bool,
        /// Only contracts in this state (draft, proposed, signed, validated, refused, closed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one contract: its sections' paths with the ECTS per period, its statuses,
    /// flags and measures.
    Show {
        /// The contract's id (see `contracts list`).
        id: i64,
    },
    /// Write every contract as JSON Lines, one a line, with its current version's
    /// number, hash and the content the hash is computed from.
    Export {
        /// Output file (default: stdout). Written to a temporary file, then renamed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Set the measures and objectives of a draft (or of an open amendment): a new
    /// version, as a directeur d'études.
    Edit {
        /// The contract's id.
        id: i64,
        /// A measure of the catalogue, `code` or `code=details` (repeat; none: no measure).
        #[arg(long = "measure")]
        measures: Vec<String>,
        /// An objective (repeat).
        #[arg(long = "objective")]
        objectives: Vec<String>,
        /// Who acts (recorded in the evidence).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Propose the draft to the student, as a directeur d'études.
    Propose(ActionArgs),
    /// Sign the proposed version, as the student.
    Sign {
        #[command(flatten)]
        action: ActionArgs,
        /// The consent text the student was shown (recorded in the evidence).
        #[arg(long)]
        consent: String,
    },
    /// Validate the signed version (it comes into force), as a directeur d'études.
    Validate {
        #[command(flatten)]
        action: ActionArgs,
        /// Validate only the sections of this step, as its directeur (repeatable; a
        /// double licence has a directeur per section, and is in force once each has
        /// validated). Default: every section.
        #[arg(long = "section", value_name = "STEP")]
        sections: Vec<String>,
    },
    /// Refuse the proposed or signed version, with a reason: back to a draft.
    Refuse {
        #[command(flatten)]
        action: ActionArgs,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Open an amendment of the version in force, with a reason code.
    Amend {
        /// The contract's id.
        id: i64,
        /// path_change, measure_added, measure_ended, status_change, sis_change,
        /// reorientation (or as `[contracts] amendment_reasons` says).
        #[arg(long)]
        reason: String,
        /// The amendment's measures, `code` or `code=details` (repeat; none given: those
        /// in force).
        #[arg(long = "measure")]
        measures: Vec<String>,
        /// Its objectives (repeat; none given: those in force).
        #[arg(long = "objective")]
        objectives: Vec<String>,
        /// Who acts (recorded in the evidence).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Validate at once every signed contract of a year (and step), or those given,
    /// each contract's signed hash checked: how many, and why the others were skipped.
    ValidateAll {
        /// The academic year (with --step: its contracts with a section of that step).
        #[arg(long, required_unless_present = "ids")]
        year: Option<i32>,
        /// Only contracts with a section of this step.
        #[arg(long)]
        step: Option<String>,
        /// These contracts (comma-separated ids) instead of a year.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["year", "step"])]
        ids: Vec<i64>,
        /// Validate specific contracts too (default: standard ones only).
        #[arg(long)]
        specific_too: bool,
        /// Who acts (recorded in the evidence).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Close every contract of a year that is over: each gets a `close` event, and takes
    /// no action nor refresh after.
    Close {
        /// The academic year.
        #[arg(long)]
        year: i32,
        /// Who acts (recorded in the evidence).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// What changed between two versions: elements and measures added and removed, ECTS
    /// per period before and after, the reason.
    Diff {
        /// The contract's id.
        id: i64,
        /// The earlier version (default: the one before `--to`).
        #[arg(long)]
        from: Option<i32>,
        /// The later version (default: the current one).
        #[arg(long)]
        to: Option<i32>,
    },
    /// A contract's evidence: every event of its chain.
    Events {
        /// The contract's id.
        id: i64,
    },
    /// Recompute every evidence chain and version hash: exit 1 naming the first break of
    /// each broken contract, 0 when all hold.
    Verify {
        /// Only this contract.
        #[arg(long)]
        contract: Option<i64>,
    },
}

/// Who acts at the command line (recorded in the evidence as `auth: cli`).
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// The login recorded (default: $USER).
    #[arg(long = "as", value_name = "LOGIN")]
    pub login: Option<String>,
}

/// An action on the version a person saw.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The contract's id.
    pub id: i64,
    /// The hash of the version acted on, as `show` printed it (a stale one changes
    /// nothing).
    #[arg(long)]
    pub hash: String,
    /// Who acts (recorded in the evidence).
    #[command(flatten)]
    pub actor: ActorArgs,
    /// The role acted in, for `refuse` (student or directeur).
    #[arg(long, value_parser = ["student", "directeur"], default_value = "directeur")]
    pub role: String,
}

/// `conpere db`.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// What to do with the schema.
    #[command(subcommand)]
    pub command: DbCommand,
}

/// `conpere db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations.
    Migrate,
    /// List migrations and whether they are applied.
    Status,
}

/// `conpere bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Enrolments of the generated university (the other records come with them).
    #[arg(long, default_value_t = 1_000_000)]
    pub enrolments: usize,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Measure a full sync through the Apogée adapter against a simulated Apogée run in a
    /// separate process (so the figures are conpere's own CPU).
    #[arg(long, conflicts_with = "pegase")]
    pub apogee: bool,
    /// Measure a full sync, then an incremental one after 1 % of the registrations
    /// changed, through the Pégase adapter against a simulated Pégase run in a separate
    /// process (so the figures are conpere's own CPU).
    #[arg(long)]
    pub pegase: bool,
    /// Measure a sync of a canonical-csv export drop (`kind = "export"`) of the generated
    /// university (--enrolments), against a plain binary COPY of the same rows.
    #[arg(long, conflicts_with_all = ["apogee", "pegase"])]
    pub export: bool,
    /// Measure the generation of every learning contract after a first full load of the
    /// generated university (--enrolments), as a ratio to that load.
    #[arg(long, conflicts_with_all = ["apogee", "pegase", "export"])]
    pub contracts: bool,
    /// With --apogee or --pegase: students of the generated university.
    #[arg(long, default_value_t = 10_000)]
    pub students: usize,
    /// With --apogee or --pegase: latency of the simulated SIS per response, in
    /// milliseconds.
    #[arg(long, default_value_t = 5)]
    pub latency_ms: u64,
    /// With --apogee or --pegase: requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}
