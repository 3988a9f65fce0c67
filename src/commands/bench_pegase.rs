//! `conpere bench --pegase`: a full sync of a generated university through the Pégase
//! adapter, then two incremental ones, each after 1 % of the registrations changed — the
//! default scope (the feed's changes, structure and choices whole) and
//! `incremental_scope = "registrations"` (the feed's changes only) — against a simulated
//! Pégase running in its own process (so the CPU measured is conpere's alone), with a
//! latency per response like a production server's. The ratios say what reading changes
//! saves a run.

use super::bench_sis::{
    bench_source, measured_sync, print_figures, run_bench, SimulatorProcess, SyncFigures,
};
use crate::cli::{BenchArgs, SimulatedSis};
use crate::config::Config;
use crate::store::Store;
use anyhow::Context;
use conpere_core::engine::Engine;
use conpere_pegase::simulator::{
    self, routes, DEFAULT_PASSWORD, DEFAULT_STRUCTURE, DEFAULT_USERNAME,
};
use conpere_pegase::{PegaseConfig, PegaseConnector};
use conpere_synth::SynthConfig;

/// Registrations changed between the two syncs, per thousand.
const CHANGED_PER_MILLE: u32 = 10;

/// Runs the benchmark and prints its figures.
pub async fn bench(config: &Config, args: BenchArgs) -> anyhow::Result<i32> {
    run_bench(
        config,
        &args,
        SimulatedSis::Pegase,
        async |store, simulator| measure(config, store, &args, simulator).await,
    )
    .await
}

/// The settings of the simulator's source: every module under its one base URL, one
/// period a year of the generated university (the simulator's default `PER-<year>`).
fn settings(args: &BenchArgs, base_url: &str) -> String {
    let periods: Vec<String> = SynthConfig::new(args.seed, args.students)
        .years
        .iter()
        .map(|year| simulator::default_period_code(*year))
        .collect();
    let auth_url = format!("{base_url}{}", routes::TOKEN);
    format!(
        "auth_url = {auth_url:?}\nbase_url = {base_url:?}\nstructure = {DEFAULT_STRUCTURE:?}\n\
         periods = {periods:?}\nusername = {DEFAULT_USERNAME:?}\n"
    )
}

async fn measure(
    config: &Config,
    store: &Store,
    args: &BenchArgs,
    simulator: &mut SimulatorProcess,
) -> anyhow::Result<()> {
    let engine = Engine::new(store.pool.clone());
    let mut syncs = Vec::new();
    let mut changed = Vec::new();
    for (label, scope) in [
        ("full", "all"),
        ("incremental", "all"),
        ("incr. feed", "registrations"),
    ] {
        if !syncs.is_empty() {
            changed.push(change_registrations(simulator)?);
        }
        let settings = format!(
            "{}incremental_scope = {scope:?}\n",
            settings(args, &simulator.base_url)
        );
        let source = bench_source(config, args, "pegase", &settings, DEFAULT_PASSWORD)?;
        let connector = PegaseConnector::new(PegaseConfig::from_source(&source)?, &source)?;
        let requests_sent = || connector.client().stats().requests;
        syncs.push(measured_sync(label, &engine, &source, &connector, requests_sent).await?);
    }
    let ratio = |sync: &SyncFigures| sync.wall.as_secs_f64() / syncs[0].wall.as_secs_f64();
    let ratios = format!("{:.3} and {:.3}", ratio(&syncs[1]), ratio(&syncs[2]));
    print_figures("conpere bench --pegase", args, &syncs);
    println!(
        "registrations changed before each incremental sync ({CHANGED_PER_MILLE} ‰): {changed:?}; \
         incremental ÷ full wall time: {ratios}"
    );
    Ok(())
}

/// Has the simulator change [`CHANGED_PER_MILLE`] ‰ of its registrations; returns how
/// many it changed.
fn change_registrations(simulator: &mut SimulatorProcess) -> anyhow::Result<u64> {
    let answer = simulator.command(&format!("change-registrations {CHANGED_PER_MILLE}"))?;
    answer
        .strip_prefix("changed ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("the simulator answered {answer:?} to change-registrations"))
}
