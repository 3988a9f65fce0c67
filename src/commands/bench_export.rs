//! `conpere bench --export`: a canonical-csv export drop of a generated university
//! (windows-1252, `;`, decimal commas) synced through the export source, against a plain
//! binary COPY of the same rows in the same run, and peak memory after a drop ten times
//! smaller: streaming means memory does not grow with the file.

use super::bench::university;
use crate::cli::BenchArgs;
use crate::config::Config;
use crate::store::{embedded_dir, Schema, Store};
use crate::sync::{run_source, SyncOptions};
use conpere_connectors::{FromSource, SourceConfig};
use conpere_core::bench::{baseline_copy, peak_rss_kib};
use conpere_core::engine::{Engine, NoProgress, RunReport};
use conpere_mappings::canonical_csv::write_drop;
use conpere_mappings::connector::ExportConnector;
use conpere_mappings::encoding::Encoding;
use conpere_synth::University;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs the benchmark and prints its figures.
pub async fn bench(config: &Config, args: BenchArgs) -> anyhow::Result<i32> {
    let store = Store::open_database(config, "conpere_bench_export", true, Schema::Ready).await?;
    let outcome = measure(config, &store, &args).await;
    store.close().await;
    outcome?;
    Ok(super::exit::OK)
}

/// A fresh drop directory `name` holding `university` as canonical-csv; its size.
fn write(config: &Config, name: &str, university: &University) -> anyhow::Result<(PathBuf, u64)> {
    let dir = embedded_dir(config).with_file_name("bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let files = write_drop(&dir, university.records(), Encoding::Windows1252)?;
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()?;
    Ok((dir, bytes))
}

/// One sync of the drop in `dir` as source `name`; its duration and report.
async fn sync(engine: &Engine, name: &str, dir: &Path) -> anyhow::Result<(Duration, RunReport)> {
    let toml = format!(
        "[sources.{name}]\nkind = \"export\"\npath = {:?}\nmapping = \"canonical-csv\"\n\
         encoding = \"windows-1252\"\nstable_seconds = 0\nbatch_size = 5000\n",
        dir.display().to_string()
    );
    let source = SourceConfig::from_toml(name, &toml)?;
    let connector = ExportConnector::from_source(&source)?;
    let started = Instant::now();
    let outcome = run_source(
        engine,
        &source,
        &connector,
        &SyncOptions::default(),
        &NoProgress,
        None,
    )
    .await?;
    Ok((started.elapsed(), outcome.report()?))
}

async fn measure(config: &Config, store: &Store, args: &BenchArgs) -> anyhow::Result<()> {
    let engine = Engine::new(store.pool.clone());
    let small = university(args.seed + 1, args.enrolments / 10);
    let (dir, _) = write(config, "export-small", &small)?;
    sync(&engine, "bench-export-small", &dir).await?;
    let rss_small = peak_rss_kib();

    let u = university(args.seed, args.enrolments);
    let (dir, bytes) = write(config, "export", &u)?;
    let started = Instant::now();
    let rows = baseline_copy(&store.pool, u.records()).await? as usize;
    let copy = started.elapsed();
    println!(
        "conpere bench --export: {rows} rows in {:.0} MB of canonical-csv (windows-1252, `;`, \
         decimal commas), {} students",
        bytes as f64 / 1e6,
        u.config().students
    );
    let (took, report) = sync(&engine, "bench-export", &dir).await?;
    anyhow::ensure!(
        report.totals.inserted as usize == rows,
        "the sync inserted {} of {rows} rows",
        report.totals.inserted
    );
    let rss_large = peak_rss_kib();
    println!(
        "plain binary COPY of the same rows         {:>8.2} s   1.00×   {:>9.0} rows/s",
        copy.as_secs_f64(),
        rows as f64 / copy.as_secs_f64()
    );
    println!(
        "export drop: read, map, stage, check, merge {:>7.2} s   {:.2}×   {:>9.0} rows/s",
        took.as_secs_f64(),
        took.as_secs_f64() / copy.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    println!(
        "peak memory of conpere: {} MiB after a drop of N/10, {} MiB after N ({:.2}×: flat \
         means streaming)",
        rss_small / 1024,
        rss_large / 1024,
        rss_large as f64 / rss_small.max(1) as f64
    );
    Ok(())
}
