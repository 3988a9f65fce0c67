//! Learning contracts generated from the synced store (conpere-contracts), against the
//! real embedded PostgreSQL: sections per registration, each flag raised by its own case
//! and no other, a plain student's standard contract, idempotent refreshes, a cancelled
//! registration closing its section, and every version hash recomputed from its content.

use conpere_contracts::catalogue::Catalogue;
use conpere_contracts::content;
use conpere_contracts::generate::{generate, Generated};
use conpere_contracts::rules::Rules;
use conpere_contracts::view::{self, Filter};
use conpere_contracts::RefreshHook;
use conpere_core::engine::{Coverage, Engine, NoProgress, RunRequest};
use conpere_core::model::Item;
use conpere_tests::contract_data::{flag_cases, lines, registration};
use conpere_tests::*;
use std::sync::Arc;

fn full(source: &str) -> RunRequest {
    RunRequest::full(source, "canonical", Coverage::all())
}

async fn contracts(db: &TestDatabase) -> Vec<view::Summary> {
    let client = db.pool.get().await.unwrap();
    view::list(&client, &Filter::default()).await.unwrap()
}

async fn generate_all(db: &TestDatabase) -> Generated {
    let client = db.pool.get().await.unwrap();
    generate(&client, None, &Catalogue::default(), &Rules::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_flag_is_raised_by_its_case_and_no_other() {
    let db = TestDatabase::new().await;
    run(&db, full("s"), lines(&flag_cases())).await;
    let generated = generate_all(&db).await;
    assert_eq!(
        (generated.computed, generated.created),
        (9, 9),
        "{generated:?}"
    );
    let all = contracts(&db).await;
    let flags = |student: &str, year: i32| -> Vec<String> {
        (all.iter())
            .find(|c| c.student == student && c.year == year)
            .unwrap_or_else(|| panic!("no contract of {student} in {year}"))
            .flags
            .clone()
    };
    for (student, expected) in [
        ("PLAIN", vec![]),
        ("SPECIAL", vec!["special_status"]),
        ("DOUBLE", vec!["double_registration"]),
        ("REPEAT", vec!["repeater"]),
        ("CARRIED", vec!["carried_over"]),
        ("MISSING", vec!["missing_pedagogical_registration"]),
        ("CHOICE", vec!["choice_rule"]),
        ("HEAVY", vec!["ects_over_limit"]),
    ] {
        assert_eq!(flags(student, 2024), expected, "{student}");
    }
    assert!(
        flags("REPEAT", 2023).is_empty(),
        "the first year is no repeat"
    );
}

#[tokio::test]
async fn sections_paths_measures_and_hashes_are_as_designed() {
    let db = TestDatabase::new().await;
    run(&db, full("s"), lines(&flag_cases())).await;
    generate_all(&db).await;
    let client = db.pool.get().await.unwrap();
    let all = contracts(&db).await;
    let get = |student: &str| {
        all.iter()
            .find(|c| c.student == student && c.year == 2024)
            .unwrap()
    };

    // A double licence: one contract, two sections, the main one first.
    let double = view::get(&client, get("DOUBLE").id).await.unwrap();
    let content: serde_json::Value = serde_json::from_str(&double.content).unwrap();
    let steps: Vec<&str> = (content["sections"].as_array().unwrap().iter())
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["VET:A/1", "VET:B/1"]);

    let of_step_b = Filter {
        step: Some("VET:B/1".into()),
        ..Filter::default()
    };
    let listed: Vec<String> = (view::list(&client, &of_step_b).await.unwrap().into_iter())
        .map(|c| c.student)
        .collect();
    assert_eq!(
        listed,
        ["DOUBLE"],
        "only the contract with a section of step B"
    );

    // A plain student: standard, no measure; the path with its choice and its ECTS.
    let plain = view::get(&client, get("PLAIN").id).await.unwrap();
    assert!(plain.summary.flags.is_empty());
    let content: serde_json::Value = serde_json::from_str(&plain.content).unwrap();
    assert_eq!(content["measures"], serde_json::json!([]));
    assert_eq!(content["special_statuses"], serde_json::json!([]));
    let section = &content["sections"][0];
    assert_eq!(section["ects_per_period"], serde_json::json!({"S1": 9}));
    let option = (section["path"].as_array().unwrap().iter())
        .find(|n| n["node"] == "ELP:O1")
        .unwrap();
    assert_eq!(option["via"], "LSE:AOPT");
    assert_eq!(option["parent"], "LSE:AOPT");
    assert_eq!(option["label"], "Option 1");
    assert_eq!(section["status"], "open");
    let shown = view::show(&plain);
    assert!(
        shown.contains("standard") && shown.contains("ECTS per period: S1 9"),
        "{shown}"
    );

    // An employed student: the measures the catalogue suggests for the status.
    let special = view::get(&client, get("SPECIAL").id).await.unwrap();
    let content: serde_json::Value = serde_json::from_str(&special.content).unwrap();
    let codes: Vec<&str> = (content["measures"].as_array().unwrap().iter())
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["amenagement_emploi_du_temps", "dispense_assiduite"]);

    // Every version hash is the SHA-256 of its content's RFC 8785 text, recomputed here.
    let mut export = Vec::new();
    let exported = view::export(&client, &mut export).await.unwrap();
    assert_eq!(exported, 9);
    for line in String::from_utf8(export).unwrap().lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = line["version"]["content"].as_str().unwrap();
        assert_eq!(
            line["version"]["hash"].as_str().unwrap(),
            content::hash(text)
        );
        let reparsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            content::canonical(&reparsed),
            text,
            "the stored text is canonical"
        );
    }

    // Generating again changes nothing.
    let again = generate_all(&db).await;
    assert_eq!((again.created, again.refreshed), (0, 0), "{again:?}");
    let hashes: Vec<String> = contracts(&db).await.into_iter().map(|c| c.hash).collect();
    assert_eq!(
        hashes,
        all.iter().map(|c| c.hash.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn every_applied_run_refreshes_the_contracts_it_touched_in_its_transaction() {
    let db = TestDatabase::new().await;
    let hook = RefreshHook {
        catalogue: Catalogue::default(),
        rules: Rules::default(),
    };
    let engine = Engine::new(db.pool.clone()).with_commit_hook(Arc::new(hook));
    let sync = |items: Vec<Item>| {
        let engine = &engine;
        async move {
            let run = engine.start(full("s")).await.unwrap();
            let batches = futures::stream::iter([Ok::<_, String>(conpere_core::engine::Batch {
                items,
                ..Default::default()
            })]);
            run.apply(batches, &NoProgress, None).await.unwrap()
        }
    };
    sync(lines(&flag_cases())).await;
    let first = contracts(&db).await;
    assert_eq!(first.len(), 9, "made by the sync itself");

    // The same data again: no history, nothing touched, every hash as it was.
    sync(lines(&flag_cases())).await;
    assert_eq!(contracts(&db).await, first);

    // The second registration of the double licence cancelled in the SIS: its section
    // closes, with a reason; the contract stays, and loses its flag.
    let cancelled = flag_cases().replace(
        &registration(2024, "DOUBLE", "VET:B/1", false, "active", ""),
        &registration(2024, "DOUBLE", "VET:B/1", false, "cancelled", ""),
    );
    sync(lines(&cancelled)).await;
    let now = contracts(&db).await;
    assert_eq!(now.len(), 9);
    let double = now.iter().find(|c| c.student == "DOUBLE").unwrap();
    assert!(double.flags.is_empty(), "{double:?}");
    let client = db.pool.get().await.unwrap();
    let content: serde_json::Value =
        serde_json::from_str(&view::get(&client, double.id).await.unwrap().content).unwrap();
    let closed = &content["sections"][1];
    assert_eq!(closed["status"], "closed");
    assert_eq!(
        closed["closed_reason"],
        "the registration was cancelled in the SIS"
    );
    // Only that contract changed.
    let changed: Vec<&str> = (now.iter().zip(&first))
        .filter(|(a, b)| a.hash != b.hash)
        .map(|(a, _)| a.student.as_str())
        .collect();
    assert_eq!(changed, ["DOUBLE"]);

    // A course element renamed in 2024 (no registration nor enrolment changed): the
    // contracts of the students enrolled in it that year are refreshed, and no other.
    let a1 =
        r#""year":2024,"node":"ELP:A1","kind":"unit","code":"A1","version":null,"label":"Unit A1""#;
    let renamed = cancelled.replace(a1, &a1.replace("Unit A1", "Unité A1"));
    assert_ne!(renamed, cancelled);
    sync(lines(&renamed)).await;
    let after = contracts(&db).await;
    let mut refreshed: Vec<(&str, i32)> = (after.iter().zip(&now))
        .filter(|(a, b)| a.hash != b.hash)
        .map(|(a, _)| (a.student.as_str(), a.year))
        .collect();
    refreshed.sort();
    let expected = [
        "CARRIED", "CHOICE", "DOUBLE", "HEAVY", "PLAIN", "REPEAT", "SPECIAL",
    ];
    assert_eq!(refreshed, expected.map(|s| (s, 2024)));
}
