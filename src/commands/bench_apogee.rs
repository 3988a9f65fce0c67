//! `conpere bench --apogee`: a full sync of a generated university through the Apogée
//! adapter, against a simulated Apogée running in its own process (so the CPU measured
//! is conpere's alone), with a latency per response like a production server's.

use crate::cli::BenchArgs;
use crate::config::Config;
use crate::progress::RunProgress;
use crate::store::{embedded_dir, Schema, Store};
use anyhow::{bail, Context};
use conpere_apogee::config::ApogeeConfig;
use conpere_apogee::connector::ApogeeConnector;
use conpere_apogee::simulator::{DEFAULT_PASSWORD, DEFAULT_USERNAME};
use conpere_connectors::SourceConfig;
use conpere_core::bench::peak_rss_kib;
use conpere_core::engine::Engine;
use nix::sys::resource::{getrusage, UsageWho};
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the benchmark and prints its figures.
pub async fn bench(config: &Config, args: BenchArgs) -> anyhow::Result<i32> {
    let (mut child, base_url) = start_simulator(&args)?;
    let store = Store::open_database(config, "conpere_bench_apogee", true, Schema::Ready).await?;
    let outcome = measure(config, &store, &args, &base_url).await;
    store.close().await;
    let _ = child.kill();
    let _ = child.wait();
    outcome?;
    Ok(super::exit::OK)
}

/// `conpere simulate apogee` as a child process; returns it and its base URL.
fn start_simulator(args: &BenchArgs) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("locating the conpere binary")?;
    let mut child = Command::new(exe)
        .args(["simulate", "apogee", "--exit-on-stdin-close"])
        .args(["--students", &args.students.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--latency-ms", &args.latency_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the simulated Apogée")?;
    let stdout = child.stdout.take().context("simulator output")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let url = line.trim().to_string();
    if !url.starts_with("http://") {
        let _ = child.kill();
        bail!("the simulated Apogée did not start (it printed {url:?})");
    }
    Ok((child, url))
}

fn source(config: &Config, args: &BenchArgs, base_url: &str) -> anyhow::Result<SourceConfig> {
    let dir = embedded_dir(config).with_file_name("bench");
    std::fs::create_dir_all(&dir)?;
    let password_file = dir.join("apogee-password");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&password_file)?
        .write_all(DEFAULT_PASSWORD.as_bytes())?;
    Ok(SourceConfig::from_toml(
        "apogee",
        &format!(
            "[sources.apogee]\nkind = \"apogee\"\nbase_url = {base_url:?}\nusername = {DEFAULT_USERNAME:?}\n\
             password_file = {:?}\nyears = [2023, 2024]\nconcurrency = {}\n",
            password_file.display().to_string(),
            args.concurrency
        ),
    )?)
}

fn cpu_time() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let (user, system) = (u.user_time(), u.system_time());
            Duration::from_secs((user.tv_sec() + system.tv_sec()) as u64)
                + Duration::from_micros((user.tv_usec() + system.tv_usec()) as u64)
        })
        .unwrap_or_default()
}

async fn measure(
    config: &Config,
    store: &Store,
    args: &BenchArgs,
    base_url: &str,
) -> anyhow::Result<()> {
    let source = source(config, args, base_url)?;
    let connector = ApogeeConnector::new(ApogeeConfig::from_source(&source)?)?;
    let engine = Engine::new(store.pool.clone());
    let progress = RunProgress::new("apogee");
    let (cpu, started) = (cpu_time(), Instant::now());
    let report = crate::sync::run_source(
        &engine,
        &source,
        &connector,
        &Default::default(),
        &progress,
        None,
    )
    .await;
    progress.finish();
    let report = report?;
    let (wall, cpu) = (started.elapsed(), cpu_time().saturating_sub(cpu));
    let requests = connector.client().stats().requests.max(1);
    let per_request = cpu / requests as u32;
    println!(
        "conpere bench --apogee: {} students, latency {} ms per response, {} requests in flight",
        args.students, args.latency_ms, args.concurrency
    );
    println!(
        "run #{} {}: {} records staged in {:.1} s",
        report.run_id,
        report.status,
        report.totals.staged,
        wall.as_secs_f64()
    );
    println!(
        "{requests} SOAP requests, {:.0} requests/s",
        requests as f64 / wall.as_secs_f64()
    );
    println!(
        "conpere CPU (adapter, engine and database client together): {:.2} s, {} µs per request \
         ({:.1}× below the simulated latency)",
        cpu.as_secs_f64(),
        per_request.as_micros(),
        Duration::from_millis(args.latency_ms).as_secs_f64() / per_request.as_secs_f64().max(1e-9)
    );
    println!("peak memory of conpere: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}
