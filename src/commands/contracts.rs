//! `conpere contracts generate | list | show | export`: the learning contracts of the
//! store (conpere-contracts), by hand.

use super::exit;
use crate::cli::{ContractsArgs, ContractsCommand};
use crate::config::Config;
use crate::store::{Schema, Store};
use anyhow::Context;
use conpere_contracts::generate::generate;
use conpere_contracts::view::{self, Filter};
use std::io::Write;
use std::path::Path;

/// Runs one `contracts` command.
pub async fn run(config: &Config, args: ContractsArgs) -> anyhow::Result<i32> {
    let store = match args.demo {
        true => Store::open_database(config, super::demo::DATABASE, false, Schema::Ready).await?,
        false => Store::open(config, Schema::Ready).await?,
    };
    let outcome = on(config, &store, args.command).await;
    store.close().await;
    outcome
}

async fn on(config: &Config, store: &Store, command: ContractsCommand) -> anyhow::Result<i32> {
    // Out of the pool: a generation's temporary tables must not follow the connection
    // into a sync (which sets its session's temporary buffers first).
    let client = deadpool_postgres::Object::take(store.pool.get().await?);
    match command {
        ContractsCommand::Generate { year } => {
            let (catalogue, rules) = config.contract_rules()?;
            let generated = generate(&client, year, &catalogue, &rules).await?;
            println!(
                "{} contract(s) computed: {} created, {} drafts refreshed",
                generated.computed, generated.created, generated.refreshed
            );
            print!(
                "{}",
                tally(
                    &view::list(
                        &client,
                        &Filter {
                            year,
                            ..Filter::default()
                        }
                    )
                    .await?
                )
            );
        }
        ContractsCommand::List {
            year,
            step,
            flagged,
            state,
        } => {
            let filter = Filter {
                year,
                step,
                flagged: flagged.then_some(true),
                state,
            };
            let contracts = view::list(&client, &filter).await?;
            println!(
                "{:>8}  {:<9}  {:<12}  {:<10}  flags",
                "id", "year", "student", "state"
            );
            for c in &contracts {
                let flags = if c.flags.is_empty() {
                    "standard".to_string()
                } else {
                    c.flags.join(", ")
                };
                println!(
                    "{:>8}  {}-{}  {:<12}  {:<10}  {flags}",
                    c.id,
                    c.year,
                    c.year + 1,
                    c.student,
                    c.state
                );
            }
            println!("{} contract(s)", contracts.len());
        }
        ContractsCommand::Show { id } => {
            let contract = view::get(&client, id).await?;
            print!("{}", view::show(&contract));
        }
        ContractsCommand::Export { out } => {
            let count = match &out {
                None => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout());
                    let count = view::export(&client, &mut stdout).await?;
                    stdout.flush()?;
                    count
                }
                Some(path) => export_to_file(&client, path).await?,
            };
            if let Some(path) = out {
                eprintln!("{count} contract(s) written to {}", path.display());
            }
        }
    }
    Ok(exit::OK)
}

/// How many contracts are standard and specific, and why (per flag).
pub fn tally(contracts: &[view::Summary]) -> String {
    let standard = contracts.iter().filter(|c| c.flags.is_empty()).count();
    let mut out = format!(
        "{standard} standard, {} specific\n",
        contracts.len() - standard
    );
    for flag in conpere_contracts::rules::FLAGS {
        let n = contracts
            .iter()
            .filter(|c| c.flags.iter().any(|f| f == flag))
            .count();
        if n > 0 {
            out.push_str(&format!(
                "  {flag}: {n} ({})\n",
                conpere_contracts::rules::meaning(flag)
            ));
        }
    }
    out
}

/// Writes beside the target, then renames: readers never see half an export.
async fn export_to_file(client: &tokio_postgres::Client, path: &Path) -> anyhow::Result<u64> {
    let tmp = path.with_extension("jsonl.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let count = view::export(client, &mut out).await?;
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(count)
}
