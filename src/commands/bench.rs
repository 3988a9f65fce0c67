//! `conpere bench`: the engine against a plain binary COPY of the same rows, in the same
//! run on the same server, so the ratios hold on a noisy shared machine.

use crate::cli::BenchArgs;
use crate::config::Config;
use crate::store::{Schema, Store};
use conpere_core::bench::{peak_rss_kib, FloorInput};
use conpere_core::engine::{Batch, Coverage, Engine, NoProgress, RunReport, RunRequest};
use conpere_core::model::{Item, Kind, Record};
use conpere_synth::{students_for_enrolments, SynthConfig, University};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 5000;

/// Runs the benchmark and prints its figures.
pub async fn bench(config: &Config, args: BenchArgs) -> anyhow::Result<i32> {
    if args.contracts {
        return measure_contracts(config, &args)
            .await
            .map(|()| super::exit::OK);
    }
    measure(config, &args).await?;
    Ok(super::exit::OK)
}

/// A university of about `enrolments` enrolments (the other records come with them).
pub(crate) fn university(seed: u64, enrolments: usize) -> Arc<University> {
    Arc::new(University::generate(SynthConfig::new(
        seed,
        students_for_enrolments(enrolments, 2).max(10),
    )))
}

/// The university's records in batches, generated on their own thread as an adapter
/// reads on its own task, two batches ahead at most; each record through `change`.
fn batches(
    u: &Arc<University>,
    change: fn(usize, &mut Record),
) -> impl futures::Stream<Item = Result<Batch, std::convert::Infallible>> + Send {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let u = Arc::clone(u);
    tokio::task::spawn_blocking(move || {
        let mut records = u.records().enumerate().map(|(i, mut record)| {
            change(i, &mut record);
            Item::Record(record)
        });
        loop {
            let items: Vec<Item> = records.by_ref().take(BATCH).collect();
            let batch = Batch {
                items,
                ..Batch::default()
            };
            if batch.items.is_empty() || sender.blocking_send(Ok(batch)).is_err() {
                return;
            }
        }
    });
    futures::stream::unfold(receiver, |mut rx| async {
        rx.recv().await.map(|b| (b, rx))
    })
}

/// No change: the university as generated.
fn unchanged(_: usize, _: &mut Record) {}

/// One enrolment in a hundred changed (its exemption), the 1 % a night brings.
fn one_percent(index: usize, record: &mut Record) {
    if let Record::Enrolment(enrolment) = record {
        if index.is_multiple_of(100) {
            enrolment.exempted = !enrolment.exempted;
        }
    }
}

async fn engine_run(
    engine: &Engine,
    source: &str,
    u: &Arc<University>,
    change: fn(usize, &mut Record),
) -> anyhow::Result<(Duration, RunReport)> {
    let started = Instant::now();
    let run = engine
        .start(RunRequest::full(source, "bench", Coverage::all()))
        .await?;
    let report = run.apply(batches(u, change), &NoProgress, None).await?;
    Ok((started.elapsed(), report))
}

fn count(u: &University, kind: Kind) -> usize {
    u.records().filter(|r: &Record| r.kind() == kind).count()
}

/// Rounds of the measurement: each a fresh database, its own floor and engine runs.
const ROUNDS: usize = 3;

/// One round: the floor, and each engine run with its time, report and ratio.
struct Round {
    floor: Duration,
    runs: Vec<(Duration, RunReport)>,
}

/// The engine runs of a round, and their targets against the floor.
const RUNS: [(&str, f64); 3] = [
    ("first full load", 3.0),
    ("unchanged re-sync", 1.5),
    ("re-sync, 1 % changed", 1.7),
];

async fn measure(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    // A tenth of the size first: peak memory after it versus after the full size shows
    // whether memory grows with N. The same runs as a round's (a first load, an unchanged
    // re-sync, a 1 % re-sync), so that only N differs: the unchanged re-sync peaks a few
    // MiB above the first load.
    let small = university(args.seed + 1, args.enrolments / 10);
    let store = Store::open_database(config, "conpere_bench", true, Schema::Ready).await?;
    engine_run(&store.engine(), "bench", &small, unchanged).await?;
    engine_run(&store.engine(), "bench", &small, unchanged).await?;
    engine_run(&store.engine(), "bench", &small, one_percent).await?;
    store.close().await;
    let rss_small = peak_rss_kib();

    let u = university(args.seed, args.enrolments);
    let rows = u.records().count();
    let floor_input = FloorInput::write(u.records(), unlinked_file()?)?;
    println!(
        "conpere bench: {} enrolments ({} students, {rows} records in all), batches of \
         {BATCH}, {ROUNDS} rounds each in a fresh database; the floor: a plain binary COPY of \
         the {} enrolment rows into a table with their primary key and nothing else",
        count(&u, Kind::Enrolment),
        u.config().students,
        floor_input.rows,
    );
    let mut rounds = Vec::new();
    let mut rss_large = 0;
    for _ in 0..ROUNDS {
        let store = Store::open_database(config, "conpere_bench", true, Schema::Ready).await?;
        let round = measure_round(&store, &u, &floor_input, rows).await;
        store.close().await;
        rounds.push(round?);
        if rss_large == 0 {
            rss_large = peak_rss_kib();
        }
    }
    print_rounds(&rounds, rows);
    println!(
        "peak memory of conpere: {} MiB after N/10, {} MiB after N ({:.2}×: flat means streaming; \
         target within 15 %)",
        rss_small / 1024,
        rss_large / 1024,
        rss_large as f64 / rss_small.max(1) as f64
    );
    Ok(())
}

/// The floor, then the engine's first load, unchanged re-sync and 1 % re-sync (with the
/// contract refresh, as `conpere sync` runs), each checked.
async fn measure_round(
    store: &Store,
    u: &Arc<University>,
    floor_input: &FloorInput,
    rows: usize,
) -> anyhow::Result<Round> {
    let started = Instant::now();
    let copied = floor_input.copy(&store.pool).await?;
    let floor = started.elapsed();
    anyhow::ensure!(copied == floor_input.rows, "the floor copied {copied} rows");
    settle(store).await?;
    let engine = store.engine();
    let first = engine_run(&engine, "bench", u, unchanged).await?;
    settle(store).await?;
    anyhow::ensure!(
        first.1.totals.inserted as usize == rows,
        "first load inserted {} of {rows}",
        first.1.totals.inserted
    );
    let again = engine_run(&engine, "bench", u, unchanged).await?;
    anyhow::ensure!(
        again.1.totals.unchanged as usize == rows,
        "re-sync left {} of {rows} unchanged",
        again.1.totals.unchanged
    );
    settle(store).await?;
    let changed = engine_run(&engine, "bench", u, one_percent).await?;
    let expected = (floor_input.rows as usize).div_ceil(100);
    anyhow::ensure!(
        changed.1.totals.updated as usize >= expected / 2,
        "the 1 % re-sync updated {} records",
        changed.1.totals.updated
    );
    Ok(Round {
        floor,
        runs: vec![first, again, changed],
    })
}

/// Settles the store between two measured runs, untimed, as the hours between two
/// nights do: the vacuum and statistics the last run's writes call for (else autovacuum
/// takes them up at a moment of its choosing, inside the next measured run, on the same
/// cores: the 1 % re-sync's ratio spread over 1.8–3.0×), then a checkpoint of the pages
/// they dirtied.
async fn settle(store: &Store) -> anyhow::Result<()> {
    let client = store.pool.get().await?;
    client.batch_execute("VACUUM (ANALYZE)").await?;
    // A server conpere does not run may not let it checkpoint (pg_checkpoint): the
    // background writes then fall in the next run, as they would.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        tracing::warn!("the bench cannot checkpoint between its runs: {e}");
    }
    Ok(())
}

/// A new file in the temporary directory, already unlinked: it is gone when closed,
/// whatever happens.
fn unlinked_file() -> std::io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("conpere-bench-floor-{}", std::process::id()));
    let file = (std::fs::OpenOptions::new())
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The median of `values` and their spread (min, max).
fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn print_rounds(rounds: &[Round], rows: usize) {
    let (floor, low, high) = median(rounds.iter().map(|r| r.floor.as_secs_f64()).collect());
    println!("floor: plain binary COPY       {floor:>6.2} s  (spread {low:.2}–{high:.2})   1.00×");
    for (i, (name, target)) in RUNS.iter().enumerate() {
        let seconds = median(rounds.iter().map(|r| r.runs[i].0.as_secs_f64()).collect());
        let ratios = rounds
            .iter()
            .map(|r| r.runs[i].0.as_secs_f64() / r.floor.as_secs_f64());
        let (ratio, low, high) = median(ratios.collect());
        println!(
            "engine, {name:<22} {:>6.2} s  {ratio:.2}× (spread {low:.2}–{high:.2}×, target ≤ {target}×)  {:.0} rows/s",
            seconds.0,
            rows as f64 / seconds.0
        );
        // The sync's own share: the contract refresh runs in the same transaction, timed
        // apart.
        let without = rounds.iter().map(|r| {
            let (elapsed, report) = &r.runs[i];
            (*elapsed - report.phases.of("refresh")).as_secs_f64() / r.floor.as_secs_f64()
        });
        let (ratio, low, high) = median(without.collect());
        println!("    without the contract refresh: {ratio:.2}× (spread {low:.2}–{high:.2}×)");
        // The phases of the median round of this run.
        let mut by_time: Vec<&Round> = rounds.iter().collect();
        by_time.sort_by_key(|r| r.runs[i].0);
        let phases = &by_time[by_time.len() / 2].runs[i].1.phases;
        println!("    phases: {phases}");
    }
}

/// The generation of every contract against the first full load it follows, at N/10
/// then N, each in a database of its own (peak memory after each: flat means the
/// generation streams).
async fn measure_contracts(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let (catalogue, rules) = (
        conpere_contracts::catalogue::Catalogue::default(),
        conpere_contracts::rules::Rules::default(),
    );
    let mut rss = Vec::new();
    for (database, enrolments) in [
        ("conpere_bench_small", args.enrolments / 10),
        ("conpere_bench", args.enrolments),
    ] {
        let store = Store::open_database(config, database, true, Schema::Ready).await?;
        let mut measured =
            measure_generation(&store, args.seed, enrolments, &catalogue, &rules).await;
        rss.push(peak_rss_kib());
        if measured.is_ok() && database == "conpere_bench" {
            measured = super::bench_api::measure_api_latency(&store).await;
        }
        if measured.is_ok() && database == "conpere_bench" {
            measured = measure_bulk_validation(&store, BULK_CONTRACTS).await;
        }
        store.close().await;
        measured?;
    }
    println!(
        "peak memory of conpere: {} MiB after N/10, {} MiB after N ({:.2}×: flat means streaming)",
        rss[0] / 1024,
        rss[1] / 1024,
        rss[1] as f64 / rss[0].max(1) as f64
    );
    Ok(())
}

/// A first full load of a university of about `enrolments` enrolments by the plain
/// engine, then the generation of every contract, timed and printed.
async fn measure_generation(
    store: &Store,
    seed: u64,
    enrolments: usize,
    catalogue: &conpere_contracts::catalogue::Catalogue,
    rules: &conpere_contracts::rules::Rules,
) -> anyhow::Result<()> {
    let engine = Engine::new(store.pool.clone());
    let u = university(seed, enrolments);
    let (load, report) = engine_run(&engine, "bench", &u, unchanged).await?;
    // Out of the pool: the generation's temporary tables stay with this connection.
    let client = deadpool_postgres::Object::take(store.pool.get().await?);
    let started = Instant::now();
    let generated = conpere_contracts::generate::generate(&client, None, catalogue, rules).await?;
    let generation = started.elapsed();
    println!(
        "{} students, {} records: first full load {:.2} s; every contract generated \
         ({} new) {:.2} s = {:.2}× the load (target ≤ 0.5×)",
        u.config().students,
        report.totals.inserted,
        load.as_secs_f64(),
        generated.created,
        generation.as_secs_f64(),
        generation.as_secs_f64() / load.as_secs_f64()
    );
    let started = Instant::now();
    let again = conpere_contracts::generate::generate(&client, None, catalogue, rules).await?;
    anyhow::ensure!(
        again.created + again.refreshed == 0,
        "a second generation changed {} contracts",
        again.created + again.refreshed
    );
    println!(
        "    the same again (nothing changed) {:.2} s = {:.2}× the load",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() / load.as_secs_f64()
    );
    Ok(())
}

/// Signed contracts validated at once by `measure_bulk_validation`.
const BULK_CONTRACTS: usize = 10_000;

/// Bulk validation of `count` signed contracts against a plain UPDATE of the same rows'
/// state (each in a transaction of its own, committed), in the same run.
async fn measure_bulk_validation(store: &Store, count: usize) -> anyhow::Result<()> {
    use conpere_contracts::bulk::{self, BulkValidation, Seen, Selection};
    use conpere_contracts::evidence::{Actor, Role};
    use conpere_contracts::lifecycle::{self, Action, Said};
    use futures::StreamExt;
    let client = store.pool.get().await?;
    let contracts: Vec<(i64, String, String)> = client
        .query(
            "SELECT k.id, v.hash, k.student FROM contract k JOIN contract_version v \
             ON v.contract_id = k.id AND v.version = k.version WHERE k.state = 'draft' \
             ORDER BY k.id LIMIT $1",
            &[&(count as i64)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    drop(client);
    anyhow::ensure!(
        contracts.len() == count,
        "only {} drafts to sign",
        contracts.len()
    );
    // Proposed and signed one by one, as people do, eight at a time.
    let directeur = Actor::cli("bench-directeur", Role::Directeur);
    let signed = futures::stream::iter(&contracts)
        .map(|(id, hash, student)| {
            let directeur = &directeur;
            async move {
                let mut client = store.pool.get().await?;
                let said = Said {
                    seen_hash: hash,
                    consent_text: Some("bench"),
                    ..Said::default()
                };
                lifecycle::act(&mut client, *id, Action::Propose, directeur, said).await?;
                let student = Actor::cli(student.clone(), Role::Student);
                lifecycle::act(&mut client, *id, Action::Sign, &student, said).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    signed.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let ids: Vec<i64> = contracts.iter().map(|(id, _, _)| *id).collect();

    // The floor: the same rows' state set, committed (as the validation is), then put
    // back, untimed.
    let client = store.pool.get().await?;
    let started = Instant::now();
    client.batch_execute("BEGIN").await?;
    let floor = client
        .execute(
            "UPDATE contract SET state = 'validated' WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    let plain = started.elapsed();
    anyhow::ensure!(
        floor as usize == count,
        "the plain UPDATE changed {floor} rows"
    );
    client
        .execute(
            "UPDATE contract SET state = 'signed' WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    client.batch_execute("VACUUM contract").await?;
    drop(client);

    let mut client = store.pool.get().await?;
    let selection = Selection::Contracts(ids.iter().map(|&id| Seen { id, hash: None }).collect());
    let validation = BulkValidation {
        selection,
        standard_only: false,
        steps: None,
    };
    let started = Instant::now();
    let report = bulk::validate(&mut client, &validation, &directeur).await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        report.validated as usize == count,
        "bulk validation validated {} of {count}: {:?}",
        report.validated,
        report.skipped
    );
    println!(
        "bulk validation of {count} signed contracts (hashes checked, one event each) \
         {:.3} s; plain UPDATE of their state {:.3} s: {:.2}× (target ≤ 3×)",
        elapsed.as_secs_f64(),
        plain.as_secs_f64(),
        elapsed.as_secs_f64() / plain.as_secs_f64()
    );
    Ok(())
}
