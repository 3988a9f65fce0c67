//! What `conpere bench --apogee` and `conpere bench --pegase` share: the simulated SIS in
//! a child process (so the CPU measured is conpere's alone), the fresh bench database,
//! the source with its password file, a measured sync and the table of figures.

use crate::cli::{BenchArgs, SimulatedSis};
use crate::config::Config;
use crate::progress::RunProgress;
use crate::store::{embedded_dir, Schema, Store};
use anyhow::{bail, Context};
use clap::ValueEnum;
use conpere_connectors::{Connector, SourceConfig};
use conpere_core::bench::peak_rss_kib;
use conpere_core::engine::{Engine, RunReport};
use nix::sys::resource::{getrusage, UsageWho};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// `conpere simulate <sis> --exit-on-stdin-close` as a child process, and the pipes to
/// it: its standard input is its control channel, and closing it (dropping this) stops
/// it.
pub struct SimulatorProcess {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    /// The SIS simulated, as `conpere simulate` names it.
    pub name: String,
    /// The base URL it serves, its first line of output.
    pub base_url: String,
}

impl SimulatorProcess {
    /// Starts the simulator with the benchmark's university and latency; returns once it
    /// serves (it has printed its base URL).
    pub fn start(sis: SimulatedSis, args: &BenchArgs) -> anyhow::Result<SimulatorProcess> {
        let name = sis.to_possible_value().context("simulated SIS name")?;
        let name = name.get_name().to_string();
        let mut child = spawn_simulate(&name, args)?;
        let mut simulator = SimulatorProcess {
            commands: child.stdin.take().context("simulator input")?,
            answers: BufReader::new(child.stdout.take().context("simulator output")?),
            child,
            name,
            base_url: String::new(),
        };
        simulator.base_url = simulator.read_line()?;
        if !simulator.base_url.starts_with("http://") {
            bail!(
                "the simulated {} did not start (it printed {:?})",
                simulator.name,
                simulator.base_url
            );
        }
        // The second line, for people, holds nothing a benchmark needs.
        simulator.read_line()?;
        Ok(simulator)
    }

    /// Sends one control line (see `conpere simulate`) and returns the answer line.
    pub fn command(&mut self, line: &str) -> anyhow::Result<String> {
        writeln!(self.commands, "{line}")?;
        self.commands.flush()?;
        let answer = self.read_line()?;
        match answer.strip_prefix("error: ") {
            Some(reason) => bail!("the simulator refused `{line}`: {reason}"),
            None => Ok(answer),
        }
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.answers.read_line(&mut line)? == 0 {
            bail!("the simulator stopped");
        }
        Ok(line.trim().to_string())
    }
}

/// `conpere simulate <name>` with its standard input and output piped to this process.
fn spawn_simulate(name: &str, args: &BenchArgs) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the conpere binary")?;
    Command::new(exe)
        .args(["simulate", name, "--exit-on-stdin-close"])
        .args(["--students", &args.students.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--latency-ms", &args.latency_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the simulated {name}"))
}

impl Drop for SimulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sis` simulated in a child process, opens a fresh database
/// `conpere_bench_<sis>`, and runs `measure` with both; the simulator stops and the store
/// closes whatever the outcome.
pub async fn run_bench(
    config: &Config,
    args: &BenchArgs,
    sis: SimulatedSis,
    measure: impl AsyncFnOnce(&Store, &mut SimulatorProcess) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    let mut simulator = SimulatorProcess::start(sis, args)?;
    let database = format!("conpere_bench_{}", simulator.name);
    let store = Store::open_database(config, &database, true, Schema::Ready).await?;
    let outcome = measure(&store, &mut simulator).await;
    store.close().await;
    drop(simulator);
    outcome?;
    Ok(super::exit::OK)
}

/// The source `kind` of a benchmark: `settings` (TOML lines) and what every benchmark
/// sets, the concurrency and the `password` given in a file as a production one would be.
pub fn bench_source(
    config: &Config,
    args: &BenchArgs,
    kind: &str,
    settings: &str,
    password: &str,
) -> anyhow::Result<SourceConfig> {
    let dir = embedded_dir(config).with_file_name("bench");
    let settings = format!("{settings}concurrency = {}\n", args.concurrency);
    super::secret_file::source_with_password_file(&dir, kind, kind, &settings, password)
}

/// The figures of one measured sync.
pub struct SyncFigures {
    /// What the sync was (`full`, `incremental`…).
    pub label: &'static str,
    /// The engine's report.
    pub report: RunReport,
    /// HTTP requests the adapter sent (retries included).
    pub requests: u64,
    /// Wall time.
    pub wall: Duration,
    /// CPU time of conpere (adapter, engine and database client together).
    pub cpu: Duration,
}

/// Runs one sync of `source` through `connector` and measures it; `requests_sent` reads
/// the adapter's HTTP request counter (it counts from the connector's start, so the
/// figure is a difference).
pub async fn measured_sync(
    label: &'static str,
    engine: &Engine,
    source: &SourceConfig,
    connector: &dyn Connector,
    requests_sent: impl Fn() -> u64,
) -> anyhow::Result<SyncFigures> {
    let progress = RunProgress::new(&source.name);
    let (cpu, started, requests) = (cpu_time(), Instant::now(), requests_sent());
    let options = Default::default();
    let report = crate::sync::run_source(engine, source, connector, &options, &progress, None)
        .await
        .with_context(|| format!("{label} sync"));
    let (wall, cpu) = (started.elapsed(), cpu_time().saturating_sub(cpu));
    progress.finish();
    Ok(SyncFigures {
        label,
        report: report?.report()?,
        requests: requests_sent() - requests,
        wall,
        cpu,
    })
}

/// User and system CPU time of this process so far (not of the simulator's).
fn cpu_time() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let (user, system) = (u.user_time(), u.system_time());
            Duration::from_secs((user.tv_sec() + system.tv_sec()) as u64)
                + Duration::from_micros((user.tv_usec() + system.tv_usec()) as u64)
        })
        .unwrap_or_default()
}

/// Prints `syncs` as a table under a title naming the benchmark and its settings, then
/// the peak memory of conpere.
pub fn print_figures(title: &str, args: &BenchArgs, syncs: &[SyncFigures]) {
    println!(
        "{title}: {} students, latency {} ms per response, {} requests in flight",
        args.students, args.latency_ms, args.concurrency
    );
    println!(
        "{:<12} {:>4} {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>7} {:>10} {:>10}",
        "sync",
        "run",
        "status",
        "staged",
        "inserted",
        "updated",
        "deleted",
        "requests",
        "wall s",
        "requests/s",
        "CPU s",
        "CPU/req µs",
        "latency÷CPU"
    );
    for sync in syncs {
        print_row(sync, Duration::from_millis(args.latency_ms));
    }
    println!(
        "CPU is conpere's alone (adapter, engine and database client together); \
         peak memory of conpere: {} MiB",
        peak_rss_kib() / 1024
    );
}

fn print_row(sync: &SyncFigures, latency: Duration) {
    let (totals, wall) = (&sync.report.totals, sync.wall.as_secs_f64());
    let per_request = sync.cpu / sync.requests.max(1) as u32;
    println!(
        "{:<12} {:>4} {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8.2} {:>10.0} {:>7.2} {:>10} {:>10.1}×",
        sync.label,
        sync.report.run_id,
        sync.report.status.as_str(),
        totals.staged,
        totals.inserted,
        totals.updated,
        totals.deleted,
        sync.requests,
        wall,
        sync.requests as f64 / wall.max(1e-9),
        sync.cpu.as_secs_f64(),
        per_request.as_micros(),
        latency.as_secs_f64() / per_request.as_secs_f64().max(1e-9)
    );
}
