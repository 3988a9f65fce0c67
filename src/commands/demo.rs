//! `conpere demo`: a first run on a fresh machine, end to end, with nothing to configure:
//! a generated university served by two simulated SIS speaking their real contracts over
//! HTTP — Apogée's SOAP web services and Pégase's REST APIs — each synced through its
//! adapter into the embedded store as a source of its own.

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::progress::RunProgress;
use crate::report;
use crate::store::{embedded_dir, Schema, Store};
use crate::sync::{run_source, SyncOptions};
use anyhow::Context;
use conpere_connectors::simulation::RequestStats;
use conpere_connectors::SourceConfig;
use conpere_contracts::view;
use conpere_core::export::{export, ExportFilter};
use conpere_core::model::{export_order, to_export_line, Record};
use conpere_synth::{HardCases, SynthConfig, University};
use std::path::{Path, PathBuf};

pub const DATABASE: &str = "conpere_demo";

/// A simulated SIS of the demo, running.
enum Simulated {
    Apogee(conpere_apogee::simulator::Simulator),
    Pegase(conpere_pegase::simulator::Simulator),
}

impl Simulated {
    /// The source name (also the kind).
    fn name(&self) -> &'static str {
        match self {
            Simulated::Apogee(_) => "apogee",
            Simulated::Pegase(_) => "pegase",
        }
    }

    /// What it is, for the reader.
    fn describe(&self) -> String {
        match self {
            Simulated::Apogee(apogee) => format!(
                "a simulated Apogée (SOAP web services, contract 6.50.73) at {}",
                apogee.base_url()
            ),
            Simulated::Pegase(pegase) => format!(
                "a simulated Pégase (REST APIs INS, ODF, CHC behind a CAS token) at {}",
                pegase.base_url()
            ),
        }
    }

    fn credentials(&self) -> (&str, &str) {
        match self {
            Simulated::Apogee(apogee) => apogee.credentials(),
            Simulated::Pegase(pegase) => pegase.credentials(),
        }
    }

    /// The source's settings but for its credentials.
    fn settings(&self, years: &[i32]) -> String {
        match self {
            Simulated::Apogee(apogee) => {
                let years: Vec<String> = years.iter().map(i32::to_string).collect();
                format!(
                    "base_url = {:?}\nyears = [{}]\n",
                    apogee.base_url(),
                    years.join(", ")
                )
            }
            Simulated::Pegase(pegase) => {
                let periods: Vec<String> = pegase
                    .periods()
                    .iter()
                    .map(|p| format!("{:?}", p.code))
                    .collect();
                format!(
                    "auth_url = {:?}\nbase_url = {:?}\nperiods = [{}]\n",
                    pegase.token_url(),
                    pegase.base_url(),
                    periods.join(", ")
                )
            }
        }
    }

    fn stats(&self) -> RequestStats {
        match self {
            Simulated::Apogee(apogee) => apogee.stats(),
            Simulated::Pegase(pegase) => pegase.stats().common,
        }
    }

    /// The part of the generated university its contract carries.
    fn readable(&self, records: &[Record]) -> Vec<Record> {
        match self {
            Simulated::Apogee(_) => conpere_apogee::projection::readable(records),
            Simulated::Pegase(_) => conpere_pegase::projection::readable(records),
        }
    }

    async fn shutdown(self) {
        match self {
            Simulated::Apogee(apogee) => apogee.shutdown().await,
            Simulated::Pegase(pegase) => pegase.shutdown().await,
        }
    }
}

/// Generates a university, serves it from a simulated Apogée and a simulated Pégase,
/// syncs each into its own database of the store, shows what landed and checks each
/// export against what that SIS's contract can carry of the generated data.
pub async fn demo(config: &Config, args: DemoArgs) -> anyhow::Result<i32> {
    println!(
        "conpere demo: a generated university of {} students, served by a simulated Apogée \
         and a simulated Pégase, synced end to end.\n",
        args.students
    );
    let university = University::generate(SynthConfig::new(args.seed, args.students));
    let records: Vec<Record> = university.records().collect();
    let apogee = conpere_apogee::simulator::start(conpere_apogee::simulator::SimulatorConfig::new(
        records.clone(),
    ))
    .await?;
    let pegase = conpere_pegase::simulator::start(conpere_pegase::simulator::SimulatorConfig::new(
        records.clone(),
    ))
    .await?;
    let sis = [Simulated::Apogee(apogee), Simulated::Pegase(pegase)];
    let store = Store::open_database(config, DATABASE, true, Schema::Ready).await?;
    println!("Store: database `{DATABASE}` of {}\n", store.description);
    let mut all_equal = true;
    let mut outcome = Ok(());
    for (step, simulated) in sis.iter().enumerate() {
        match sync_and_show(config, &store, simulated, step + 1, &university, &records).await {
            Ok(same) => all_equal &= same,
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = show_contracts(&store).await;
    }
    store.close().await;
    for simulated in sis {
        simulated.shutdown().await;
    }
    outcome?;
    if let Some(cases) = university.hard_cases() {
        print_hard_cases(&cases);
    }
    println!(
        "\nNext: `cargo run -- contracts --demo list --flagged` lists the demo's specific \
         contracts, `cargo run -- contracts --demo show ID` shows one. `conpere init` writes a \
         conpere.toml to connect your own Apogée, Pégase (or canonical files); `conpere \
         check`, `conpere sync`, `conpere runs list`, `conpere export` and `conpere contracts` \
         then work on it."
    );
    if !all_equal {
        return Ok(super::exit::FAILED);
    }
    if args.serve {
        serve_pages(config, &args.listen).await?;
    }
    Ok(super::exit::OK)
}

/// `demo --serve`: the pages on the demo's contracts, on localhost, with the demo-only
/// login page (a few students and a directeur per large step, no password), until
/// Ctrl-C.
async fn serve_pages(config: &Config, listen: &str) -> anyhow::Result<()> {
    use conpere_web::auth::Authentication;
    use conpere_web::login::DemoLogin;
    use std::sync::Arc;
    let store = Store::open_database(config, DATABASE, false, Schema::Ready).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (--listen)"))?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let client = store.pool.get().await?;
    let students = client
        .query(
            "SELECT DISTINCT ON (s.login) s.login, s.student FROM student s \
             JOIN contract k ON k.source_id = s.source_id AND k.student = s.student \
             WHERE s.login IS NOT NULL AND s.deleted_at IS NULL ORDER BY s.login LIMIT 4",
            &[],
        )
        .await?;
    let steps = client
        .query(
            "SELECT step FROM registration WHERE deleted_at IS NULL \
             GROUP BY step ORDER BY count(*) DESC, step LIMIT 2",
            &[],
        )
        .await?;
    drop(client);
    let mut people: Vec<(String, String)> = (students.iter())
        .map(|r| (r.get(0), format!("étudiant {}", r.get::<_, String>(1))))
        .collect();
    let mut roles = conpere_web::roles::RolesSettings::default();
    for (n, row) in steps.iter().enumerate() {
        let (login, step) = (format!("directeur{}", n + 1), row.get::<_, String>(0));
        people.push((login.clone(), format!("directeur d'études de {step}")));
        roles.directeurs.insert(login, vec![step]);
    }
    let sessions =
        conpere_web::sessions::BrowserSessions::new(&public_url, 8).map_err(anyhow::Error::msg)?;
    let (catalogue, rules) = config.contract_rules()?;
    let api = Arc::new(conpere_web::Api {
        pool: store.pool.clone(),
        auth: Authentication::Demo(Arc::new(DemoLogin { sessions, people })),
        roles,
        student_match: conpere_web::roles::StudentMatch::Login,
        catalogue,
        rules,
        pages: Default::default(),
    });
    let limits = conpere_web::Limits::default();
    let app = conpere_web::contracts_app(api, limits);
    println!("\nThe pages: {public_url}/auth/login (demo login: pick a person). Ctrl-C stops.");
    std::io::Write::flush(&mut std::io::stdout())?;
    let stopped = async {
        let _ = crate::signals::stop_requested().await;
    };
    conpere_web::serve(listener, app, limits, stopped).await;
    store.close().await;
    println!("stopped.");
    Ok(())
}

/// The learning contracts the syncs generated: how many are standard and specific and
/// why, and one specific contract as `contracts show` prints it.
async fn show_contracts(store: &Store) -> anyhow::Result<()> {
    let client = store.pool.get().await?;
    let contracts = view::list(&client, &view::Filter::default()).await?;
    println!(
        "3. Learning contracts, generated by each sync for the students it touched: {}",
        contracts.len()
    );
    print!("{}", super::contracts::tally(&contracts));
    let specific = contracts.iter().find(|c| c.flags.len() >= 2);
    if let Some(specific) = specific.or_else(|| contracts.iter().find(|c| !c.flags.is_empty())) {
        println!(
            "\n   one specific contract (`conpere contracts show {}`):\n",
            specific.id
        );
        let shown = view::show(&view::get(&client, specific.id).await?);
        for line in shown.lines() {
            println!("   {line}");
        }
    }
    Ok(())
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
fn source_of(
    config: &Config,
    simulated: &Simulated,
    years: &[i32],
) -> anyhow::Result<SourceConfig> {
    let name = simulated.name();
    let (username, password) = simulated.credentials();
    let settings = format!("{}username = {username:?}\n", simulated.settings(years));
    super::secret_file::source_with_password_file(
        &demo_dir(config),
        name,
        name,
        &settings,
        password,
    )
}

/// What the store should hold of a source: the part of the generated university its
/// SIS's contract carries, as export lines.
fn expected_export(source: &str, mut expected: Vec<Record>) -> Vec<u8> {
    expected.sort_by(export_order);
    expected
        .iter()
        .map(|r| format!("{}\n", to_export_line(source, r)))
        .collect::<String>()
        .into_bytes()
}

/// Syncs one simulated SIS as a source, shows the run, and tells whether its export
/// equals what the SIS carries of the university.
async fn sync_and_show(
    config: &Config,
    store: &Store,
    simulated: &Simulated,
    step: usize,
    university: &University,
    records: &[Record],
) -> anyhow::Result<bool> {
    let name = simulated.name();
    println!("{step}. Source `{name}`: {}", simulated.describe());
    let source = source_of(config, simulated, &university.config().years)?;
    let connector = crate::registry().build(&source)?;
    let engine = store.engine();
    let progress = RunProgress::new(name);
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
    let report = report?.report()?;
    let stats = simulated.stats();
    println!(
        "   synced through its adapter ({} requests, at most {} at once):\n",
        stats.total, stats.max_in_flight
    );
    println!("{}", report::summary(&report));
    let mut exported = Vec::new();
    let filter = ExportFilter {
        source: Some(name.into()),
        year: None,
    };
    export(&store.pool, &filter, &mut exported).await?;
    let same = exported == expected_export(name, simulated.readable(records));
    println!(
        "   `conpere export --source {name}` equals the generated university as this SIS \
         carries it: {} ({} records)",
        if same { "yes" } else { "NO" },
        exported.iter().filter(|b| **b == b'\n').count()
    );
    show_examples(&exported);
    Ok(same)
}

/// Two lines of the export as examples: a registration without special status, and a
/// step's first edge (with Apogée, to the step's first list).
fn show_examples(exported: &[u8]) {
    let text = String::from_utf8_lossy(exported);
    let lines = || text.lines();
    let plain = lines().find(|l| l.contains("\"special_statuses\":[]"));
    let steps: Vec<String> = lines()
        .filter(|l| l.starts_with("{\"type\":\"node\"") && l.contains("\"kind\":\"step\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|node| Some(format!("\"parent\":{}", node.get("node")?)))
        .collect();
    let step_edge = lines().find(|l| {
        l.starts_with("{\"type\":\"edge\"") && steps.iter().any(|parent| l.contains(parent))
    });
    if let Some(line) = plain {
        println!("   a plain student's registration, as exported:\n     {line}");
    }
    if let Some(line) = step_edge {
        println!("   a step's first edge, as exported:\n     {line}");
    }
    println!();
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
