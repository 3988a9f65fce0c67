//! `conpere bench --apogee`: a full sync of a generated university through the Apogée
//! adapter, against a simulated Apogée running in its own process (so the CPU measured
//! is conpere's alone), with a latency per response like a production server's.

use super::bench_sis::{bench_source, measured_sync, print_figures, run_bench};
use crate::cli::{BenchArgs, SimulatedSis};
use crate::config::Config;
use crate::store::Store;
use conpere_apogee::config::ApogeeConfig;
use conpere_apogee::connector::ApogeeConnector;
use conpere_apogee::simulator::{DEFAULT_PASSWORD, DEFAULT_USERNAME};
use conpere_core::engine::Engine;
use conpere_synth::SynthConfig;

/// Runs the benchmark and prints its figures.
pub async fn bench(config: &Config, args: BenchArgs) -> anyhow::Result<i32> {
    run_bench(
        config,
        &args,
        SimulatedSis::Apogee,
        async |store, simulator| measure(config, store, &args, &simulator.base_url).await,
    )
    .await
}

async fn measure(
    config: &Config,
    store: &Store,
    args: &BenchArgs,
    base_url: &str,
) -> anyhow::Result<()> {
    let years = SynthConfig::new(args.seed, args.students).years;
    let settings =
        format!("base_url = {base_url:?}\nusername = {DEFAULT_USERNAME:?}\nyears = {years:?}\n");
    let source = bench_source(config, args, "apogee", &settings, DEFAULT_PASSWORD)?;
    let connector = ApogeeConnector::new(ApogeeConfig::from_source(&source)?)?;
    let engine = Engine::new(store.pool.clone());
    let requests_sent = || connector.client().stats().requests;
    let full = measured_sync("full", &engine, &source, &connector, requests_sent).await?;
    print_figures("conpere bench --apogee", args, &[full]);
    Ok(())
}
