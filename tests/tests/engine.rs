//! The sync engine against a real PostgreSQL: idempotence, order independence, dry runs,
//! the mass-deletion hold, quarantine, locking.

use conpere_core::engine::{Batch, Coverage, Engine, NoProgress, RunRequest, RunStatus};
use conpere_core::model::{Item, Kind, Record, RecordKey, Rejected};
use conpere_tests::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;

fn full(source: &str) -> RunRequest {
    RunRequest::full(source, "canonical", Coverage::all())
}

#[tokio::test]
async fn the_same_snapshot_twice_writes_nothing_the_second_time() {
    let db = TestDatabase::new().await;
    let records = university(1, 120);
    let first = run(&db, full("s"), items(&records)).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    assert_eq!(first.totals.inserted as usize, records.len());
    assert_eq!(
        history_rows(&db, first.run_id).await as usize,
        records.len()
    );

    let second = run(&db, full("s"), items(&records)).await;
    assert_eq!(second.status, RunStatus::Succeeded);
    let t = second.totals;
    assert_eq!((t.inserted, t.updated, t.deleted), (0, 0, 0), "{t:?}");
    assert_eq!(t.unchanged as usize, records.len());
    assert_eq!(history_rows(&db, second.run_id).await, 0);
    let rewritten: i64 = scalar(
        &db,
        &format!(
            "SELECT count(*) FROM enrolment WHERE changed_run = {}",
            second.run_id
        ),
    )
    .await;
    assert_eq!(rewritten, 0, "unchanged rows must not be rewritten");
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &records),
        "export",
    );
}

/// A kind read exactly as stored skips its comparison (a sum of its content hashes says
/// so); what such a sum must not miss: records that trade contents, and a repeated copy.
#[tokio::test]
async fn records_that_trade_contents_or_repeat_are_not_taken_for_unchanged() {
    let db = TestDatabase::new().await;
    let records = university(3, 40);
    run(&db, full("s"), items(&records)).await;
    let mut traded = records.clone();
    let students: Vec<usize> = (traded.iter().enumerate())
        .filter(|(_, r)| r.kind() == Kind::Student)
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let names: Vec<String> = (students.iter())
        .map(|i| match &traded[*i] {
            Record::Student(s) => s.given_name.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_ne!(names[0], names[1], "two students with two given names");
    for (i, name) in students.iter().zip(names.iter().rev()) {
        if let Record::Student(s) = &mut traded[*i] {
            s.given_name = name.clone();
        }
    }
    let node = traded.iter().find(|r| r.kind() == Kind::Node).cloned();
    traded.push(node.expect("a node"));
    let report = run(&db, full("s"), items(&traded)).await;
    let (student, node) = (report.by_kind[&Kind::Student], report.by_kind[&Kind::Node]);
    assert_eq!((student.updated, student.inserted), (2, 0), "{student:?}");
    let nodes = records.iter().filter(|r| r.kind() == Kind::Node).count();
    assert_eq!((node.updated, node.quarantined), (0, 0), "{node:?}");
    assert_eq!(node.unchanged as usize, nodes, "the copy collapses");
    let stored: Vec<String> = (db.pool.get().await.unwrap())
        .query(
            "SELECT given_name FROM student WHERE student IN ($1, $2) ORDER BY student",
            &[&key_of(&traded[students[0]]), &key_of(&traded[students[1]])],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut expected = names.clone();
    if key_of(&traded[students[0]]) < key_of(&traded[students[1]]) {
        expected.reverse();
    }
    assert_eq!(stored, expected, "the traded names are stored");
}

fn key_of(record: &Record) -> String {
    match record {
        Record::Student(s) => s.student.clone(),
        _ => panic!("a student"),
    }
}

/// When every kind an enrolment refers to is read as stored, the enrolments' reference
/// checks look at the changed enrolments only, during the merge: an orphan among them is
/// still quarantined, and its stored version kept.
#[tokio::test]
async fn an_orphan_among_the_changed_records_of_a_re_sync_is_quarantined() {
    let db = TestDatabase::new().await;
    let records = university(4, 30);
    run(&db, full("s"), items(&records)).await;
    let mut next = records.clone();
    let mut enrolments = (next.iter_mut()).filter_map(|r| match r {
        Record::Enrolment(e) => Some(e),
        _ => None,
    });
    let changed = enrolments.next().expect("an enrolment");
    changed.exempted = !changed.exempted;
    let (mut no_registration, mut no_node) = (changed.clone(), changed.clone());
    no_registration.step = "VET:NOPE".into();
    no_node.node = "ELP:NOPE".into();
    let moved = enrolments.next().expect("a second enrolment");
    let stored_node = moved.node.clone();
    moved.node = "ELP:GONE".into();
    next.extend([no_registration, no_node].map(Record::Enrolment));
    // The second enrolment now refers to a node nobody has: a new key, an orphan; its
    // stored version is absent from the read, and deleted as any absent record.
    let report = run(&db, full("s"), items(&next)).await;
    let enrolment = report.by_kind[&Kind::Enrolment];
    assert_eq!(enrolment.quarantined, 3, "{enrolment:?}");
    assert_eq!(
        (enrolment.updated, enrolment.inserted),
        (1, 0),
        "{enrolment:?}"
    );
    for kind in [Kind::Student, Kind::Node, Kind::Registration] {
        assert_eq!(
            report.by_kind[&kind].unchanged,
            report.by_kind[&kind].staged
        );
    }
    let mut reasons = quarantine_reasons(&db, report.run_id).await;
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("refers to node") && reasons[0].contains("ELP:GONE"));
    assert!(reasons[1].contains("refers to node") && reasons[1].contains("ELP:NOPE"));
    assert!(reasons[2].contains("refers to registration") && reasons[2].contains("VET:NOPE"));
    let orphans: i64 = scalar(
        &db,
        "SELECT count(*) FROM enrolment WHERE node IN ('ELP:NOPE', 'ELP:GONE') \
         OR step = 'VET:NOPE'",
    )
    .await;
    assert_eq!(orphans, 0, "no orphan stored");
    assert_eq!(enrolment.deleted, 1, "the moved enrolment's stored version");
    let gone: i64 = scalar(
        &db,
        &format!("SELECT count(*) FROM enrolment WHERE node = '{stored_node}' AND deleted_at IS NOT NULL"),
    )
    .await;
    assert_eq!(gone, 1);
}

/// Fails every run it is given, after the run's changes.
struct FailingHook;

impl conpere_core::engine::CommitHook for FailingHook {
    fn before_commit<'a>(
        &'a self,
        _: &'a tokio_postgres::Client,
        _: i64,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("the hook fails".to_string()) })
    }
}

/// A first load into an empty table drops its indexes and builds them after the rows,
/// into new files (the table and its history truncated: written without WAL); a load
/// that fails leaves them as they were.
#[tokio::test]
async fn a_first_load_builds_the_indexes_after_the_rows_and_a_failed_one_keeps_them() {
    let db = TestDatabase::new().await;
    let indexes = "SELECT string_agg(indexname || ': ' || indexdef, E'\\n' ORDER BY indexname) \
                   FROM pg_indexes WHERE tablename = 'enrolment'";
    let key_oid = "SELECT 'enrolment_pkey'::regclass::oid::bigint";
    let files = "SELECT pg_relation_filenode('enrolment')::bigint * 1000000 \
                 + pg_relation_filenode('enrolment_history')::bigint";
    let (definitions, oid): (String, i64) =
        (scalar(&db, indexes).await, scalar(&db, key_oid).await);
    let empty_files: i64 = scalar(&db, files).await;
    assert_eq!(scalar::<String>(&db, "SHOW wal_level").await, "minimal");
    let records = university(5, 400);
    let enrolments = records
        .iter()
        .filter(|r| r.kind() == Kind::Enrolment)
        .count();
    assert!(
        enrolments > 10_000,
        "{enrolments} enrolments: too few to drop an index"
    );

    let failing = Engine::new(db.pool.clone()).with_commit_hook(std::sync::Arc::new(FailingHook));
    let started = failing.start(full("s")).await.unwrap();
    let stream = futures::stream::iter(batches(items(&records), 700));
    let error = started.apply(stream, &NoProgress, None).await.unwrap_err();
    assert!(error.to_string().contains("the hook fails"), "{error}");
    assert_eq!(scalar::<String>(&db, indexes).await, definitions);
    assert_eq!(
        scalar::<i64>(&db, key_oid).await,
        oid,
        "the drop rolled back"
    );
    assert_eq!(
        scalar::<i64>(&db, files).await,
        empty_files,
        "the same files"
    );
    assert_eq!(
        scalar::<i64>(&db, "SELECT count(*) FROM enrolment").await,
        0
    );

    let report = run(&db, full("s"), items(&records)).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(
        report.by_kind[&Kind::Enrolment].inserted as usize,
        enrolments
    );
    assert_eq!(
        scalar::<String>(&db, indexes).await,
        definitions,
        "the same indexes"
    );
    assert_ne!(
        scalar::<i64>(&db, key_oid).await,
        oid,
        "built again after the rows"
    );
    let loaded_files: i64 = scalar(&db, files).await;
    assert_ne!(
        loaded_files / 1000000,
        empty_files / 1000000,
        "the table truncated"
    );
    assert_ne!(
        loaded_files % 1000000,
        empty_files % 1000000,
        "its history truncated"
    );
    assert_eq!(
        history_rows(&db, report.run_id).await as usize,
        records.len(),
        "a history row for each insert"
    );
    let repeated = db
        .pool
        .get()
        .await
        .unwrap()
        .batch_execute("INSERT INTO enrolment SELECT * FROM enrolment LIMIT 1")
        .await;
    assert!(repeated.is_err(), "the primary key holds");
    // A second source's first load finds the table holding rows: its indexes stay.
    let oid: i64 = scalar(&db, key_oid).await;
    run(&db, full("t"), items(&records)).await;
    assert_eq!(scalar::<i64>(&db, key_oid).await, oid);
    assert_eq!(
        scalar::<i64>(&db, files).await,
        loaded_files,
        "nothing truncated"
    );
    assert_same_export(
        &exported(&db, Some("t")).await,
        &export_text("t", &records),
        "export",
    );
}

#[tokio::test]
async fn input_order_does_not_matter_and_a_dry_run_diff_applies_to_the_snapshot() {
    let db = TestDatabase::new().await;
    let before = university(2, 100);
    run(&db, full("s"), items(&before)).await;

    // The next night: another generation of the same university (changed content,
    // deletions, additions), shuffled.
    let mut after = university(3, 110);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    after.shuffle(&mut rng);

    let engine = Engine::new(db.pool.clone());
    let mut request = full("s");
    request.dry_run = true;
    request.hold.max_delete_share = 1.0;
    let mut diff = Vec::new();
    let dry = engine.start(request).await.unwrap();
    let report = dry
        .apply(
            futures::stream::iter(batches(items(&after), 333)),
            &NoProgress,
            Some(&mut diff),
        )
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(
        exported(&db, Some("s")).await,
        export_text("s", &before),
        "dry run applied something"
    );

    // Apply the diff to the previous snapshot by hand: it must give the new snapshot.
    let mut state: std::collections::BTreeMap<String, serde_json::Value> = before
        .iter()
        .map(|r| (r.key().to_string(), serde_json::to_value(r).unwrap()))
        .collect();
    let changes = String::from_utf8(diff).unwrap();
    assert!(!changes.is_empty());
    for line in changes.lines() {
        let change: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = Kind::parse(change["type"].as_str().unwrap()).unwrap();
        let key = RecordKey::from_json(kind, &change["key"])
            .unwrap()
            .to_string();
        match change["op"].as_str().unwrap() {
            "delete" => assert!(state.remove(&key).is_some(), "deleting absent {key}"),
            _ => {
                let mut after = change["after"].clone();
                after["type"] = kind.as_str().into();
                let record: Record = serde_json::from_value(after).unwrap();
                state.insert(key, serde_json::to_value(record).unwrap());
            }
        }
    }
    let patched: Vec<Record> = state
        .into_values()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_eq!(export_text("s", &patched), export_text("s", &after));

    // And applying for real, in another order, gives that snapshot too.
    after.reverse();
    let mut request = full("s");
    request.hold.max_delete_share = 1.0;
    let applied = run(&db, request, items(&after)).await;
    assert_eq!(applied.totals.inserted, report.totals.inserted);
    assert_eq!(applied.totals.updated, report.totals.updated);
    assert_eq!(applied.totals.deleted, report.totals.deleted);
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &after),
        "export",
    );
}

/// The snapshot without 30 % of the registrations of one year (and their enrolments).
fn without_registrations(records: &[Record], year: i32) -> Vec<Record> {
    let dropped: std::collections::BTreeSet<(String, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Registration(reg) if reg.year == year => {
                Some((reg.student.clone(), reg.step.clone()))
            }
            _ => None,
        })
        .enumerate()
        .filter(|(i, _)| i % 10 < 3)
        .map(|(_, key)| key)
        .collect();
    records
        .iter()
        .filter(|r| match r {
            Record::Registration(x) if x.year == year => {
                !dropped.contains(&(x.student.clone(), x.step.clone()))
            }
            Record::Enrolment(x) if x.year == year => {
                !dropped.contains(&(x.student.clone(), x.step.clone()))
            }
            _ => true,
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_snapshot_missing_30_percent_of_a_scope_is_held_until_decided() {
    let db = TestDatabase::new().await;
    let records = university(4, 150);
    run(&db, full("s"), items(&records)).await;
    let complete = exported(&db, Some("s")).await;

    let partial = without_registrations(&records, 2024);
    let held = run(&db, full("s"), items(&partial)).await;
    assert_eq!(held.status, RunStatus::Held);
    let reason = held.hold_reason.clone().unwrap();
    assert!(reason.contains("registration records of 2024"), "{reason}");
    assert_eq!(
        exported(&db, Some("s")).await,
        complete,
        "a held run applied something"
    );
    assert_eq!(history_rows(&db, held.run_id).await, 0);

    let engine = Engine::new(db.pool.clone());
    engine.reject(held.run_id, "tester").await.unwrap();
    assert_eq!(
        exported(&db, Some("s")).await,
        complete,
        "reject changed the store"
    );
    assert!(engine
        .approve(held.run_id, "tester", &NoProgress)
        .await
        .is_err());

    let held_again = run(&db, full("s"), items(&partial)).await;
    assert_eq!(held_again.status, RunStatus::Held);
    let approved = engine
        .approve(held_again.run_id, "tester", &NoProgress)
        .await
        .unwrap();
    assert_eq!(approved.status, RunStatus::Succeeded, "{approved:?}");
    assert!(approved.totals.deleted > 0);
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &partial),
        "export",
    );
    let decided_by: String = scalar(
        &db,
        &format!(
            "SELECT decided_by FROM sync_run WHERE id = {}",
            held_again.run_id
        ),
    )
    .await;
    assert_eq!(decided_by, "tester");
}

#[tokio::test]
async fn invalid_records_are_quarantined_and_the_rest_lands() {
    let db = TestDatabase::new().await;
    let records = university(5, 60);
    let mut input = items(&records);
    let orphan = records
        .iter()
        .find_map(|r| match r {
            Record::Registration(reg) => {
                let mut reg = reg.clone();
                reg.student = "99999999".into();
                Some(Record::Registration(reg))
            }
            _ => None,
        })
        .unwrap();
    input.push(Item::Record(orphan));
    input.push(Item::Rejected(Rejected {
        kind: Some(Kind::Student),
        key: None,
        reason: "birth_date `31/02/2004` is not a date".into(),
        location: Some("students.jsonl:7".into()),
        payload: "{...}".into(),
    }));
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.status, RunStatus::SucceededWithWarnings);
    assert_eq!(report.totals.quarantined, 2);
    assert_eq!(report.totals.inserted as usize, records.len());
    let reasons = quarantine_reasons(&db, report.run_id).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("refers to student 99999999")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not a date")),
        "{reasons:?}"
    );
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &records),
        "export",
    );
}

#[tokio::test]
async fn a_bad_version_of_a_stored_record_keeps_the_stored_one() {
    let db = TestDatabase::new().await;
    let records = university(6, 40);
    run(&db, full("s"), items(&records)).await;
    // Tonight one registration comes back unreadable: it must not be deleted.
    let victim = records
        .iter()
        .find(|r| r.kind() == Kind::Registration)
        .unwrap()
        .key();
    let input: Vec<Item> = records
        .iter()
        .map(|r| {
            if r.key() == victim {
                Item::Rejected(Rejected {
                    kind: Some(Kind::Registration),
                    key: Some(victim.clone()),
                    reason: "unreadable".into(),
                    location: None,
                    payload: String::new(),
                })
            } else {
                Item::Record(r.clone())
            }
        })
        .collect();
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.totals.deleted, 0);
    assert_eq!(report.totals.quarantined, 1);
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &records),
        "export",
    );
}

#[tokio::test]
async fn conflicting_duplicates_are_quarantined_whatever_their_order() {
    let db = TestDatabase::new().await;
    let records = university(7, 30);
    let mut twisted = records.clone();
    let Some(Record::Student(student)) =
        records.iter().find(|r| r.kind() == Kind::Student).cloned()
    else {
        panic!("no student")
    };
    let mut other = student.clone();
    other.given_name = "Zoé-Anaïs".into();
    twisted.push(Record::Student(other));
    twisted.push(
        records
            .iter()
            .find(|r| r.kind() == Kind::Node)
            .unwrap()
            .clone(),
    ); // identical copy
    let report = run(&db, full("s"), items(&twisted)).await;
    assert_eq!(
        report.by_kind[&Kind::Student].quarantined,
        2,
        "both versions of the student"
    );
    assert_eq!(
        report.by_kind[&Kind::Node].quarantined,
        0,
        "an identical copy is not a conflict"
    );
    // The student is absent tonight (nothing stored before), so its registrations cascade.
    assert!(report.by_kind[&Kind::Registration].quarantined >= 1);
    let stored: i64 = scalar(
        &db,
        &format!(
            "SELECT count(*) FROM student WHERE student = '{}'",
            student.student
        ),
    )
    .await;
    assert_eq!(stored, 0);
}

/// A re-sync tells unchanged records by their content hash, and absent ones by counting
/// when it can: a record repeated (identically, or in two versions) must not make up for
/// one the read lacks.
#[tokio::test]
async fn a_repeated_record_does_not_hide_an_absent_one() {
    let db = TestDatabase::new().await;
    let records = university(8, 40);
    run(&db, full("s"), items(&records)).await;
    let enrolments: Vec<usize> = (records.iter().enumerate())
        .filter(|(_, r)| r.kind() == Kind::Enrolment)
        .map(|(i, _)| i)
        .take(4)
        .collect();
    let enrolment = |i: usize| match &records[enrolments[i]] {
        Record::Enrolment(e) => e.clone(),
        _ => unreachable!(),
    };
    let mut tonight: Vec<Record> = (records.iter().enumerate())
        .filter(|(i, _)| *i != enrolments[0])
        .map(|(_, r)| r.clone())
        .collect();
    for record in tonight.iter_mut() {
        if let Record::Enrolment(e) = record {
            if (&e.student, &e.node) == (&enrolment(1).student, &enrolment(1).node) {
                e.exempted = !e.exempted;
            }
        }
    }
    tonight.push(Record::Enrolment(enrolment(2)));
    let mut other_version = enrolment(3);
    other_version.carried_over = !other_version.carried_over;
    tonight.push(Record::Enrolment(other_version));

    let report = run(&db, full("s"), items(&tonight)).await;
    let counts = &report.by_kind[&Kind::Enrolment];
    assert_eq!(
        (
            counts.inserted,
            counts.updated,
            counts.deleted,
            counts.quarantined
        ),
        (0, 1, 1, 2),
        "{counts:?}"
    );
    let state = |i: usize| {
        let e = enrolment(i);
        format!(
            "SELECT (deleted_at IS NOT NULL)::text || ' ' || carried_over::text FROM enrolment \
             WHERE student = '{}' AND node = '{}' AND year = {} AND step = '{}'",
            e.student, e.node, e.year, e.step
        )
    };
    assert_eq!(
        scalar::<String>(&db, &state(0)).await,
        format!("true {}", enrolment(0).carried_over)
    );
    assert_eq!(
        scalar::<String>(&db, &state(2)).await,
        format!("false {}", enrolment(2).carried_over)
    );
    assert_eq!(
        scalar::<String>(&db, &state(3)).await,
        format!("false {}", enrolment(3).carried_over),
        "the stored version kept"
    );
}

#[tokio::test]
async fn two_runs_of_one_source_never_overlap() {
    let db = TestDatabase::new().await;
    let engine = Engine::new(db.pool.clone());
    let first = engine.start(full("s")).await.unwrap();
    let second = engine.start(full("s")).await;
    let message = second
        .err()
        .expect("second run must be refused")
        .to_string();
    assert!(
        message.contains("in progress") && message.contains(&format!("#{}", first.id())),
        "{message}"
    );
    // Another source is independent.
    engine.start(full("other")).await.expect("other source");
    drop(first);
    // Dropping the run closes its connection: the lock goes with it, and the next run
    // marks the abandoned one failed.
    let mut third = None;
    for _ in 0..50 {
        if let Ok(run) = engine.start(full("s")).await {
            third = Some(run);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(third.is_some(), "lock not released");
    let abandoned: String = scalar(&db, "SELECT error FROM sync_run WHERE id = 1").await;
    assert!(abandoned.starts_with("abandoned"), "{abandoned}");
}

/// A sync asks its adapter whether anything is new from the cursor its run will start
/// from: the source is opened (locked, cursor read once) before the question, and a
/// source opened and let go records no run.
#[tokio::test]
async fn an_opened_source_holds_its_lock_and_the_cursor_its_run_starts_from() {
    let db = TestDatabase::new().await;
    let engine = Engine::new(db.pool.clone());
    let applied = |at: i64| {
        let batch = Batch {
            cursor: Some(serde_json::json!({ "at": at })),
            ..Batch::default()
        };
        futures::stream::iter([Ok::<_, String>(batch)])
    };
    let run = engine.start(full("s")).await.unwrap();
    run.apply(applied(1), &NoProgress, None).await.unwrap();

    let open = engine.open("s", "canonical").await.unwrap();
    assert_eq!(open.cursor(), Some(&serde_json::json!({ "at": 1 })));
    let busy = engine
        .start(full("s"))
        .await
        .err()
        .expect("the source is open");
    assert!(busy.to_string().contains("in progress"), "{busy}");
    let run = open.start(full("s")).await.unwrap();
    assert_eq!(run.cursor(), Some(&serde_json::json!({ "at": 1 })));
    run.apply(applied(2), &NoProgress, None).await.unwrap();

    let runs: i64 = scalar(&db, "SELECT count(*) FROM sync_run").await;
    let open = engine.open("s", "canonical").await.unwrap();
    assert_eq!(open.cursor(), Some(&serde_json::json!({ "at": 2 })));
    drop(open);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(open) = engine.open("s", "canonical").await {
            again = Some(open);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        again.is_some(),
        "the lock was not released with the open source"
    );
    let after: i64 = scalar(&db, "SELECT count(*) FROM sync_run").await;
    assert_eq!(after, runs, "opening a source records no run");
}

/// A run's times are the wall clock's: its duration is the time it took, here and in the
/// metrics (PostgreSQL's `now()` is its transaction's start: it said 1 ms of a 6 s run).
#[tokio::test]
async fn a_runs_duration_is_the_time_it_took() {
    use futures::StreamExt;
    use std::time::{Duration, Instant};
    let db = TestDatabase::new().await;
    let engine = Engine::new(db.pool.clone());
    let records = university(4, 20);
    let began = Instant::now();
    let run = engine.start(full("s")).await.unwrap();
    let slow = futures::stream::iter(batches(items(&records), 50)).then(|batch| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        batch
    });
    let report = run.apply(slow, &NoProgress, None).await.unwrap();
    let took = began.elapsed().as_secs_f64();
    let batches_sent = records.len().div_ceil(50) as f64;
    let recorded: f64 = scalar(
        &db,
        &format!(
            "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM sync_run \
             WHERE id = {}",
            report.run_id
        ),
    )
    .await;
    assert!(
        recorded >= 0.3 * batches_sent && recorded <= took,
        "recorded {recorded:.3} s for a run that took {took:.3} s ({batches_sent} batches of 0.3 s)"
    );
    let metrics = conpere_core::metrics::read(&db.pool).await.unwrap();
    assert_eq!(metrics.last_duration, [("s".to_string(), recorded)]);
}

#[tokio::test]
async fn reaping_marks_abandoned_runs_failed_and_leaves_live_ones_alone() {
    let db = TestDatabase::new().await;
    let engine = Engine::new(db.pool.clone());
    let live = engine.start(full("live")).await.unwrap();
    let abandoned = engine.start(full("gone")).await.unwrap();
    let abandoned_id = abandoned.id();
    drop(abandoned);
    // The dropped run's connection closes asynchronously: reap until it is seen.
    let mut reaped = Vec::new();
    for _ in 0..50 {
        reaped = engine.reap_abandoned().await.unwrap();
        if !reaped.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reaped, vec![abandoned_id]);
    let statuses: String = scalar(
        &db,
        "SELECT string_agg(status || ':' || coalesce(error, ''), ',' ORDER BY id) FROM sync_run",
    )
    .await;
    assert!(
        statuses.starts_with("running:,failed:abandoned"),
        "{statuses}"
    );
    // The live run still holds its lock, is not reaped, and can still finish.
    assert!(engine.reap_abandoned().await.unwrap().is_empty());
    let report = live
        .apply(
            futures::stream::iter(batches(vec![], 10)),
            &NoProgress,
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn incremental_runs_apply_changes_and_tombstones_only() {
    let db = TestDatabase::new().await;
    let records = university(8, 50);
    run(&db, full("s"), items(&records)).await;
    let registration = records
        .iter()
        .find(|r| r.kind() == Kind::Registration)
        .unwrap()
        .clone();
    let Record::Registration(mut changed) = registration.clone() else {
        unreachable!()
    };
    changed.special_statuses = vec!["employed".into()];
    let gone = records
        .iter()
        .rev()
        .find(|r| r.kind() == Kind::Enrolment)
        .unwrap()
        .key();
    let report = run(
        &db,
        RunRequest::incremental("s", "canonical"),
        vec![
            Item::Record(Record::Registration(changed)),
            Item::Tombstone(gone),
        ],
    )
    .await;
    let t = report.totals;
    assert_eq!((t.inserted, t.updated, t.deleted), (0, 1, 1), "{t:?}");
    assert_eq!(history_rows(&db, report.run_id).await, 2);
}

/// A run of one batch whose items were last changed in the source at `modified`.
async fn run_dated(
    db: &TestDatabase,
    request: RunRequest,
    dated: Vec<(Item, &str)>,
) -> conpere_core::engine::RunReport {
    let mut batch = conpere_core::engine::Batch::default();
    for (index, (item, modified)) in dated.into_iter().enumerate() {
        let instant = chrono::DateTime::parse_from_rfc3339(modified).unwrap();
        batch.modified.push((index as u32, instant.to_utc()));
        batch.items.push(item);
    }
    let engine = Engine::new(db.pool.clone());
    let run = engine.start(request).await.expect("start run");
    let batches = futures::stream::iter([Ok::<_, String>(batch)]);
    run.apply(batches, &NoProgress, None)
        .await
        .expect("apply run")
}

// A change or a tombstone older, by the source's own clock, than the stored version does
// not overwrite it: delivered late, it would undo a newer change. Counted as stale.
#[tokio::test]
async fn a_change_older_than_the_stored_version_is_not_applied() {
    let db = TestDatabase::new().await;
    let records = university(10, 5);
    let student = records
        .iter()
        .find(|r| r.kind() == Kind::Student)
        .unwrap()
        .clone();
    let Record::Student(mut newer) = student.clone() else {
        unreachable!()
    };
    newer.given_name = "Nouveau".into();
    let request = || RunRequest::incremental("s", "canonical");
    let stored = run_dated(
        &db,
        request(),
        vec![(
            Item::Record(Record::Student(newer.clone())),
            "2024-10-01T00:00:00Z",
        )],
    )
    .await;
    assert_eq!(stored.totals.inserted, 1);

    let mut older = newer.clone();
    older.given_name = "Ancien".into();
    let older = Item::Record(Record::Student(older));
    let late = run_dated(&db, request(), vec![(older, "2024-09-01T00:00:00Z")]).await;
    let t = late.totals;
    assert_eq!((t.updated, t.stale), (0, 1), "{late:?}");
    let said = "1 change(s) not applied (student 1): older, by the source's modification \
                time, than the version stored";
    assert_eq!(late.notes, [said]);
    let tombstone = Item::Tombstone(student.key());
    let late = run_dated(&db, request(), vec![(tombstone, "2024-09-15T00:00:00Z")]).await;
    assert_eq!((late.totals.deleted, late.totals.stale), (0, 1), "{late:?}");
    assert!(exported(&db, Some("s")).await.contains("Nouveau"));

    // A newer tombstone applies; a change older than it does not bring the record back.
    let gone = run_dated(
        &db,
        request(),
        vec![(Item::Tombstone(student.key()), "2024-11-01T00:00:00Z")],
    )
    .await;
    assert_eq!(gone.totals.deleted, 1);
    let back = run_dated(
        &db,
        request(),
        vec![(Item::Record(Record::Student(newer)), "2024-10-15T00:00:00Z")],
    )
    .await;
    assert_eq!(
        (back.totals.inserted, back.totals.stale),
        (0, 1),
        "{back:?}"
    );
    assert!(!exported(&db, Some("s")).await.contains("Nouveau"));
}

/// Pégase has a change feed for registrations only: its incremental reads return the
/// enrolments whole, and what they do not return is gone, while absent registrations stay.
#[tokio::test]
async fn an_incremental_run_deletes_what_is_absent_from_the_kinds_it_covers_whole() {
    let db = TestDatabase::new().await;
    let records = university(9, 40);
    run(&db, full("s"), items(&records)).await;
    let enrolments: Vec<Record> = records
        .iter()
        .filter(|r| r.kind() == Kind::Enrolment)
        .cloned()
        .collect();
    let kept = &enrolments[..enrolments.len() - 3];
    let mut request = RunRequest::incremental("s", "canonical");
    request.coverage = Coverage {
        kinds: vec![Kind::Enrolment],
        years: None,
    };
    let report = run(&db, request, items(kept)).await;
    let t = report.totals;
    assert_eq!((t.inserted, t.updated, t.deleted), (0, 0, 3), "{t:?}");
    let live = |kind: &str| format!("SELECT count(*) FROM {kind} WHERE deleted_at IS NULL");
    let registrations = records
        .iter()
        .filter(|r| r.kind() == Kind::Registration)
        .count();
    assert_eq!(
        scalar::<i64>(&db, &live("enrolment")).await,
        kept.len() as i64
    );
    assert_eq!(
        scalar::<i64>(&db, &live("registration")).await,
        registrations as i64,
        "absent registrations are not covered: they stay"
    );
}

/// A full read of one year covers that year only: what it lacks of that year is gone,
/// the other year and the year-less records stay (absent records looked for in a part of
/// the store, where counting cannot rule them out).
#[tokio::test]
async fn a_full_read_of_one_year_deletes_what_it_lacks_of_that_year_only() {
    let db = TestDatabase::new().await;
    let records = university(10, 40);
    run(&db, full("s"), items(&records)).await;
    let last = records
        .iter()
        .filter_map(Record::year)
        .max()
        .expect("years");
    let mut tonight: Vec<Record> = (records.iter())
        .filter(|r| r.year().is_none_or(|year| year == last))
        .cloned()
        .collect();
    let gone = (tonight.iter())
        .position(|r| r.kind() == Kind::Enrolment)
        .expect("an enrolment");
    tonight.remove(gone);
    let mut request = full("s");
    request.coverage.years = Some(vec![last]);
    let report = run(&db, request, items(&tonight)).await;
    let t = report.totals;
    assert_eq!((t.inserted, t.updated, t.deleted), (0, 0, 1), "{t:?}");
    let live: i64 = scalar(
        &db,
        "SELECT (SELECT count(*) FROM student WHERE deleted_at IS NULL) \
              + (SELECT count(*) FROM registration WHERE deleted_at IS NULL) \
              + (SELECT count(*) FROM enrolment WHERE deleted_at IS NULL) \
              + (SELECT count(*) FROM node WHERE deleted_at IS NULL) \
              + (SELECT count(*) FROM edge WHERE deleted_at IS NULL)",
    )
    .await;
    let stored = records.iter().filter(|r| r.kind() != Kind::Result).count();
    assert_eq!(
        live as usize,
        stored - 1,
        "only the enrolment it lacks is gone"
    );
}

#[tokio::test]
async fn a_student_who_could_not_be_read_keeps_everything_of_theirs() {
    let db = TestDatabase::new().await;
    let records = university(9, 40);
    run(&db, full("s"), items(&records)).await;
    let Some(Record::Student(victim)) = records.iter().find(|r| r.kind() == Kind::Student).cloned()
    else {
        panic!("no student")
    };
    // Tonight the adapter could not read this student: it rejects the student's key and
    // has nothing of theirs (registrations, enrolments).
    let belongs = |r: &Record| match r {
        Record::Student(x) => x.student == victim.student,
        Record::Registration(x) => x.student == victim.student,
        Record::Enrolment(x) => x.student == victim.student,
        _ => false,
    };
    let mut input: Vec<Item> = records
        .iter()
        .filter(|r| !belongs(r))
        .cloned()
        .map(Item::Record)
        .collect();
    input.push(Item::Rejected(Rejected {
        kind: Some(Kind::Student),
        key: Some(Record::Student(victim.clone()).key()),
        reason: "technical.parameter.noncoherentinput.codEtu".into(),
        location: Some("EtudiantMetier.recupererInfosAdmEtu_v4".into()),
        payload: String::new(),
    }));
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.totals.deleted, 0, "{:?}", report.by_kind);
    assert_same_export(
        &exported(&db, Some("s")).await,
        &export_text("s", &records),
        "export",
    );
}

/// The records of `records` that belong to the first student, and that student's key.
fn first_student(records: &[Record]) -> (String, Vec<Record>) {
    let Some(Record::Student(first)) = records.iter().find(|r| r.kind() == Kind::Student) else {
        panic!("no student")
    };
    let theirs = records
        .iter()
        .filter(|r| match r {
            Record::Student(x) => x.student == first.student,
            Record::Registration(x) => x.student == first.student,
            Record::Enrolment(x) => x.student == first.student,
            _ => false,
        })
        .cloned()
        .collect();
    (first.student.clone(), theirs)
}

/// A line whose key could not be read: `kind` when its type was readable.
fn unreadable(kind: Option<Kind>, location: &str) -> Item {
    Item::Rejected(Rejected {
        kind,
        key: None,
        reason: "the line is cut off mid-record".into(),
        location: Some(location.into()),
        payload: "{\"type\":\"student\",\"stud".into(),
    })
}

// A full read that could not read a line's key cannot vouch for the absence of any record
// of that line's kind: those deletions wait, everything else applies, and the run says so.
#[tokio::test]
async fn an_unreadable_line_defers_the_deletions_of_its_kind_and_nothing_else() {
    let db = TestDatabase::new().await;
    let records = university(11, 40);
    run(&db, full("s"), items(&records)).await;
    let (student, theirs) = first_student(&records);
    let mut input: Vec<Item> = records
        .iter()
        .filter(|r| !theirs.contains(r))
        .cloned()
        .map(Item::Record)
        .collect();
    input.push(unreadable(Some(Kind::Student), "/drop/students.jsonl:17"));
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.status, RunStatus::SucceededWithWarnings);
    let students = report.by_kind[&Kind::Student];
    assert_eq!(
        (students.deleted, students.deferred),
        (0, 1),
        "{students:?}"
    );
    let registrations = theirs
        .iter()
        .filter(|r| r.kind() == Kind::Registration)
        .count();
    assert_eq!(
        report.by_kind[&Kind::Registration].deleted as usize,
        registrations
    );
    assert_eq!(
        report.deferred,
        ["1 deletion of student deferred: 1 line of students.jsonl could not be read with its key"]
    );
    let kept: i64 = scalar(
        &db,
        &format!("SELECT count(*) FROM student WHERE student = '{student}' AND deleted_at IS NULL"),
    )
    .await;
    assert_eq!(kept, 1);
    assert_eq!(orphans(&db).await, 0);
    let (deferred, notes): (i64, Vec<String>) = {
        let client = db.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT deferred, deferred_notes FROM sync_run WHERE id = $1",
                &[&report.run_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((deferred, notes), (1, report.deferred.clone()));

    // A line whose very type could not be read vouches for no kind.
    let mut input: Vec<Item> = records
        .iter()
        .filter(|r| !theirs.contains(r))
        .cloned()
        .map(Item::Record)
        .collect();
    input.push(unreadable(None, "/drop/university.jsonl:3"));
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.totals.deleted, 0, "{:?}", report.by_kind);
    assert_eq!(report.by_kind[&Kind::Student].deferred, 1);
    assert_eq!(orphans(&db).await, 0);
}

// A record the source still refers to is not deleted, whether it is absent from a full
// read or named by a tombstone: its children would be orphans.
#[tokio::test]
async fn what_live_records_refer_to_is_never_deleted() {
    let db = TestDatabase::new().await;
    let records = university(12, 30);
    run(&db, full("s"), items(&records)).await;
    let (student, theirs) = first_student(&records);

    // Tonight's snapshot lacks the student but still has their registrations: those are
    // quarantined (their student is unknown) and kept, so the student is kept too.
    let input: Vec<Item> = records
        .iter()
        .filter(|r| !matches!(r, Record::Student(x) if x.student == student))
        .cloned()
        .map(Item::Record)
        .collect();
    let report = run(&db, full("s"), input).await;
    assert_eq!(report.by_kind[&Kind::Student].deleted, 0);
    assert_eq!(report.by_kind[&Kind::Student].deferred, 1);
    assert!(
        report.deferred[0].contains("still refer to them"),
        "{:?}",
        report.deferred
    );
    assert_eq!(orphans(&db).await, 0);

    // A tombstone of the student alone waits for their registrations to go…
    let student_key = theirs
        .iter()
        .find(|r| r.kind() == Kind::Student)
        .unwrap()
        .key();
    let report = run(
        &db,
        RunRequest::incremental("s", "canonical"),
        vec![Item::Tombstone(student_key.clone())],
    )
    .await;
    assert_eq!(report.by_kind[&Kind::Student].deferred, 1);
    assert_eq!(report.totals.deleted, 0);
    assert_eq!(orphans(&db).await, 0);

    // …and goes with them, children first, in one run.
    let tombstones: Vec<Item> = theirs.iter().map(|r| Item::Tombstone(r.key())).collect();
    let report = run(&db, RunRequest::incremental("s", "canonical"), tombstones).await;
    assert_eq!(report.totals.deleted as usize, theirs.len());
    assert_eq!(report.totals.deferred, 0);
    assert_eq!(orphans(&db).await, 0);
}
