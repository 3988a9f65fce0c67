//! `conpere contracts …`: the learning contracts of the store (conpere-contracts) by
//! hand: generate, list, show, export; their lifecycle (edit, propose, sign, validate,
//! refuse, amend, validate-all); their diff, evidence and verification.

use super::exit;
use crate::cli::{ActionArgs, ActorArgs, ContractsArgs, ContractsCommand};
use crate::config::Config;
use crate::store::{Schema, Store};
use anyhow::Context;
use conpere_contracts::evidence::{Actor, Role};
use conpere_contracts::generate::generate;
use conpere_contracts::lifecycle::{self, Action, MeasureInput, Said};
use conpere_contracts::view::{self, Filter};
use conpere_contracts::{bulk, diff, verify, ContractsError};
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
    let mut client = deadpool_postgres::Object::take(store.pool.get().await?);
    match command {
        ContractsCommand::Generate { year } => {
            let (catalogue, rules) = config.contract_rules()?;
            let generated = generate(&client, year, &catalogue, &rules).await?;
            println!(
                "{} contract(s) computed: {} created, {} drafts refreshed, {} amendment(s) \
                 opened (sis_change), {} withdrawn",
                generated.computed,
                generated.created,
                generated.refreshed,
                generated.amended,
                generated.withdrawn
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
        ContractsCommand::Edit { .. }
        | ContractsCommand::Propose(_)
        | ContractsCommand::Sign { .. }
        | ContractsCommand::Validate { .. }
        | ContractsCommand::Refuse { .. }
        | ContractsCommand::Amend { .. }
        | ContractsCommand::ValidateAll { .. }
        | ContractsCommand::Close { .. } => {
            return lifecycle(config, &mut client, command).await;
        }
        ContractsCommand::Diff { id, from, to } => {
            let current = view::get(&client, id).await?.summary.version;
            let to = to.unwrap_or(current);
            let from = from.unwrap_or(to - 1).max(1);
            print!("{}", diff::diff(&client, id, from, to).await?);
        }
        ContractsCommand::Events { id } => {
            view::get(&client, id).await?;
            for (seq, text, hash) in view::events(&client, id).await? {
                println!("{seq:>4}  {hash}\n      {text}");
            }
        }
        ContractsCommand::Verify { contract } => {
            let report = verify::verify(&client, contract).await?;
            for broken in &report.breaks {
                println!("BROKEN {broken}");
            }
            println!(
                "{} contract(s), {} version(s), {} event(s) recomputed: {}",
                report.contracts,
                report.versions,
                report.events,
                match report.breaks.len() {
                    0 => "every chain and every version hash holds".to_string(),
                    n => format!("{n} contract(s) broken"),
                }
            );
            if !report.breaks.is_empty() {
                return Ok(exit::FAILED);
            }
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

/// The actions of the lifecycle: each one a transaction and an event of the evidence.
async fn lifecycle(
    config: &Config,
    client: &mut tokio_postgres::Client,
    command: ContractsCommand,
) -> anyhow::Result<i32> {
    let (catalogue, rules) = config.contract_rules()?;
    let outcome = match command {
        ContractsCommand::Edit {
            id,
            measures,
            objectives,
            actor,
        } => {
            let measures = measure_inputs(&measures);
            let actor = cli_actor(&actor, Role::Directeur);
            lifecycle::set_draft(client, id, &actor, &catalogue, &measures, &objectives).await
        }
        ContractsCommand::Amend {
            id,
            reason,
            measures,
            objectives,
            actor,
        } => {
            let measures = (!measures.is_empty()).then(|| measure_inputs(&measures));
            let objectives = (!objectives.is_empty()).then_some(objectives);
            let actor = cli_actor(&actor, Role::Directeur);
            let amendment = lifecycle::Amendment {
                reason: &reason,
                measures: measures.as_deref(),
                objectives: objectives.as_deref(),
            };
            lifecycle::open_amendment(client, id, &actor, &rules, &catalogue, amendment).await
        }
        ContractsCommand::Propose(a) => act(client, &a, Action::Propose, Said::default()).await,
        ContractsCommand::Validate { action, sections } => {
            let said = Said {
                for_steps: (!sections.is_empty()).then_some(sections.as_slice()),
                ..Said::default()
            };
            act(client, &action, Action::Validate, said).await
        }
        ContractsCommand::Sign { action, consent } => {
            let said = Said {
                consent_text: Some(&consent),
                ..Said::default()
            };
            act(client, &action, Action::Sign, said).await
        }
        ContractsCommand::Refuse { action, reason } => {
            let said = Said {
                reason: Some(&reason),
                ..Said::default()
            };
            act(client, &action, Action::Refuse, said).await
        }
        ContractsCommand::ValidateAll {
            year,
            step,
            ids,
            specific_too,
            actor,
        } => {
            let selection = match year {
                Some(year) if ids.is_empty() => bulk::Selection::Year { year, step },
                _ => bulk::Selection::Contracts(
                    ids.into_iter()
                        .map(|id| bulk::Seen { id, hash: None })
                        .collect(),
                ),
            };
            let bulk = bulk::BulkValidation {
                selection,
                standard_only: !specific_too,
                steps: None,
            };
            let report = bulk::validate(client, &bulk, &cli_actor(&actor, Role::Directeur)).await?;
            println!(
                "{} contract(s) validated (bulk #{})",
                report.validated, report.bulk_id
            );
            for (reason, n) in &report.skipped {
                println!("  skipped, {reason}: {n}");
            }
            return Ok(exit::OK);
        }
        ContractsCommand::Close { year, actor } => {
            let closed =
                lifecycle::close_year(client, year, &cli_actor(&actor, Role::Admin)).await?;
            println!("{closed} contract(s) of {year}-{} closed", year + 1);
            return Ok(exit::OK);
        }
        _ => unreachable!("lifecycle commands only"),
    };
    match outcome {
        Ok(head) => {
            println!(
                "contract #{} is {} · version {} · {}{}",
                head.id,
                head.state,
                head.version,
                head.hash,
                head.in_force
                    .map_or(String::new(), |v| format!(" · in force: version {v}"))
            );
            if !head.awaiting.is_empty() {
                println!("awaiting the validation of: {}", head.awaiting.join(", "));
            }
            println!("next: {}", view::next_step(&head.state));
            Ok(exit::OK)
        }
        // Refused actions change nothing: say why, and what is possible.
        Err(
            e @ (ContractsError::Stale { .. }
            | ContractsError::WrongState { .. }
            | ContractsError::AlreadyValidated { .. }
            | ContractsError::Forbidden { .. }
            | ContractsError::Invalid(_)
            | ContractsError::NotFound(_)),
        ) => {
            eprintln!("conpere: {e}");
            Ok(exit::FAILED)
        }
        Err(e) => Err(e.into()),
    }
}

async fn act(
    client: &mut tokio_postgres::Client,
    args: &ActionArgs,
    action: Action,
    said: Said<'_>,
) -> Result<lifecycle::Head, ContractsError> {
    let role = match (action, args.role.as_str()) {
        (Action::Sign, _) | (Action::Refuse, "student") => Role::Student,
        _ => Role::Directeur,
    };
    let said = Said {
        seen_hash: &args.hash,
        ..said
    };
    lifecycle::act(client, args.id, action, &cli_actor(&args.actor, role), said).await
}

/// The person at the command line: `--as`, else the system user.
fn cli_actor(args: &ActorArgs, role: Role) -> Actor {
    let login = (args.login.clone())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    Actor::cli(login, role)
}

/// `code` or `code=details`.
fn measure_inputs(measures: &[String]) -> Vec<MeasureInput> {
    measures
        .iter()
        .map(|m| match m.split_once('=') {
            Some((code, details)) => MeasureInput {
                code: code.trim().into(),
                details: Some(details.trim().into()),
            },
            None => MeasureInput {
                code: m.trim().into(),
                details: None,
            },
        })
        .collect()
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
