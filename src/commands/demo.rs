//! `conpere demo`: a first run on a fresh machine, end to end, with nothing to configure:
//! a generated university served by the Apogée simulator (the real SOAP contract over
//! HTTP), synced through the Apogée adapter into the embedded store.

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::progress::RunProgress;
use crate::report;
use crate::store::{embedded_dir, Schema, Store};
use crate::sync::{run_source, SyncOptions};
use anyhow::Context;
use conpere_apogee::projection;
use conpere_apogee::simulator::{self, Simulator, SimulatorConfig};
use conpere_connectors::SourceConfig;
use conpere_core::engine::Engine;
use conpere_core::export::{export, ExportFilter};
use conpere_core::model::{export_order, to_export_line, Record};
use conpere_core::synth::{HardCases, SynthConfig, University};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const SOURCE: &str = "apogee";
const DATABASE: &str = "conpere_demo";

/// Generates a university, serves it from a simulated Apogée, syncs it into its own
/// database of the store, shows what landed and checks the export against what the
/// Apogée contract can carry of the generated data.
pub async fn demo(config: &Config, args: DemoArgs) -> anyhow::Result<i32> {
    println!(
        "conpere demo: a generated university of {} students, served by a simulated Apogée, \
         synced end to end.\n",
        args.students
    );
    let university = University::generate(SynthConfig::new(args.seed, args.students));
    let records: Vec<Record> = university.records().collect();
    let apogee = simulator::start(SimulatorConfig::new(records.clone())).await?;
    println!(
        "1. A simulated Apogée (SOAP web services, contract 6.50.73) serves it at {}",
        apogee.base_url()
    );
    let store = Store::open_database(config, DATABASE, true, Schema::Ready).await?;
    println!("2. Store: database `{DATABASE}` of {}", store.description);
    let outcome = sync_and_show(config, &store, &apogee, &university, &records).await;
    store.close().await;
    apogee.shutdown().await;
    outcome
}

fn demo_dir(config: &Config) -> PathBuf {
    embedded_dir(config)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("demo")
}

/// The source configuration, its password in a file only conpere can read (secrets are
/// never written in a configuration).
fn apogee_source(
    config: &Config,
    apogee: &Simulator,
    years: &[i32],
) -> anyhow::Result<SourceConfig> {
    let dir = demo_dir(config);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let password_file = dir.join("apogee-password");
    let (username, password) = apogee.credentials();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&password_file)
        .with_context(|| format!("writing {}", password_file.display()))?;
    file.write_all(password.as_bytes())?;
    let years = years
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(SourceConfig::from_toml(
        SOURCE,
        &format!(
            "[sources.{SOURCE}]\nkind = \"apogee\"\nbase_url = {:?}\nusername = {username:?}\n\
             password_file = {:?}\nyears = [{years}]\n",
            apogee.base_url(),
            password_file.display().to_string()
        ),
    )?)
}

/// What the store should hold: the part of the generated university that Apogée's
/// contract carries, as export lines.
fn expected_export(records: &[Record]) -> Vec<u8> {
    let mut expected = projection::readable(records);
    expected.sort_by(export_order);
    expected
        .iter()
        .map(|r| format!("{}\n", to_export_line(SOURCE, r)))
        .collect::<String>()
        .into_bytes()
}

async fn sync_and_show(
    config: &Config,
    store: &Store,
    apogee: &Simulator,
    university: &University,
    records: &[Record],
) -> anyhow::Result<i32> {
    let source = apogee_source(config, apogee, &university.config().years)?;
    let connector = crate::registry().build(&source)?;
    let engine = Engine::new(store.pool.clone());
    let progress = RunProgress::new(SOURCE);
    let report = run_source(
        &engine,
        &source,
        connector.as_ref(),
        &SyncOptions::default(),
        &progress,
        None,
    )
    .await;
    progress.finish();
    let report = report?;
    let stats = apogee.stats();
    println!(
        "3. Synced through the Apogée adapter ({} SOAP requests, at most {} at once):\n",
        stats.total, stats.max_in_flight
    );
    println!("{}", report::summary(&report));

    let mut exported = Vec::new();
    let filter = ExportFilter {
        source: Some(SOURCE.into()),
        year: None,
    };
    export(&store.pool, &filter, &mut exported).await?;
    let same = exported == expected_export(records);
    println!(
        "4. `conpere export` equals the generated university as Apogée carries it: {} ({} records)",
        if same { "yes" } else { "NO" },
        exported.iter().filter(|b| **b == b'\n').count()
    );
    if let Some(cases) = university.hard_cases() {
        print_hard_cases(&cases);
    }
    println!(
        "\nNext: `conpere init` writes a conpere.toml to connect your own Apogée (or canonical \
         files); `conpere check`, `conpere sync`, `conpere runs list` and `conpere export` then \
         work on it."
    );
    Ok(if same {
        super::exit::OK
    } else {
        super::exit::FAILED
    })
}

fn print_hard_cases(cases: &HardCases) {
    println!("   hard cases the data holds, all round-tripped:");
    println!("   - accented names: student {}", cases.accented_student);
    println!(
        "   - a student number with a leading zero: {}",
        cases.leading_zero_student
    );
    println!(
        "   - a double registration: {} and {}",
        cases.double_registration[0], cases.double_registration[1]
    );
    println!(
        "   - a cancelled registration: {}",
        cases.cancelled_registration
    );
    println!(
        "   - a repeater: {} then {}",
        cases.repeater[0], cases.repeater[1]
    );
    println!(
        "   - a carried-over element: {}",
        cases.carried_over_enrolment
    );
    println!(
        "   - an option taken through a choice list: {}",
        cases.choice_enrolment
    );
}
