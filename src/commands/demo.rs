//! `conpere demo`: a first run on a fresh machine, end to end, with nothing to configure.

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::progress::RunProgress;
use crate::report;
use crate::store::{embedded_dir, Schema, Store};
use crate::sync::{run_source, SyncOptions};
use anyhow::Context;
use conpere_connectors::SourceConfig;
use conpere_core::engine::Engine;
use conpere_core::export::{export, ExportFilter};
use conpere_core::model::{export_order, to_export_line, Record};
use conpere_core::synth::{SynthConfig, University};
use std::io::Write;
use std::path::{Path, PathBuf};

const SOURCE: &str = "demo";
const DATABASE: &str = "conpere_demo";

/// Generates a university, writes it as canonical files, syncs it into its own database
/// of the store, shows what landed and proves the export gives the input back.
pub async fn demo(config: &Config, args: DemoArgs) -> anyhow::Result<i32> {
    println!(
        "conpere demo: a generated university of {} students, synced end to end.\n",
        args.students
    );
    let university = University::generate(SynthConfig::new(args.seed, args.students));
    let dir = demo_dir(config);
    let file = write_university(&university, &dir)?;
    println!(
        "1. Wrote the university as canonical JSON Lines: {}",
        file.display()
    );

    let store = Store::open_database(config, DATABASE, true, Schema::Ready).await?;
    println!("2. Store: database `{DATABASE}` of {}", store.description);
    let outcome = sync_and_show(&store, &file, &university).await;
    store.close().await;
    outcome
}

fn demo_dir(config: &Config) -> PathBuf {
    embedded_dir(config)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("demo")
}

fn sorted_records(university: &University) -> Vec<Record> {
    let mut records: Vec<Record> = university.records().collect();
    records.sort_by(export_order);
    records
}

fn write_university(university: &University, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("university.jsonl");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    for record in sorted_records(university) {
        writeln!(out, "{}", to_export_line(SOURCE, &record))?;
    }
    out.flush()?;
    Ok(path)
}

async fn sync_and_show(store: &Store, file: &Path, university: &University) -> anyhow::Result<i32> {
    let source = SourceConfig::from_toml(
        SOURCE,
        &format!(
            "[sources.{SOURCE}]\nkind = \"canonical\"\npath = {:?}\n",
            file.display().to_string()
        ),
    )?;
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
    println!("3. Synced:\n");
    println!("{}", report::summary(&report));

    let mut exported = Vec::new();
    let filter = ExportFilter {
        source: Some(SOURCE.into()),
        year: None,
    };
    export(&store.pool, &filter, &mut exported).await?;
    let input = std::fs::read(file)?;
    println!(
        "4. `conpere export` gives the input back byte for byte: {} ({} records)",
        if exported == input { "yes" } else { "NO" },
        exported.iter().filter(|b| **b == b'\n').count()
    );
    if let Some(cases) = university.hard_cases() {
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
    println!(
        "\nNext: `conpere init` writes a conpere.toml to connect your own source; \
         `conpere sync`, `conpere runs list` and `conpere export` then work on it."
    );
    Ok(if exported == input {
        super::exit::OK
    } else {
        super::exit::FAILED
    })
}
