//! Bad input never loses data: a corpus of canonical drops, each the valid drop with one
//! realistic corruption (one row of the table below), synced over a store that holds the
//! valid drop. For each: nothing stored is deleted or changed, no orphan appears, the run
//! says `succeeded_with_warnings`, and the quarantine names the file, the line and, where
//! there is one, the field. Then a property: any single-line corruption (cut, flipped
//! byte, dropped field, changed type) changes nothing but what that line still says; and
//! any single-row corruption of a OneRoster package changes only records that row names.

use conpere_connectors::canonical::{CanonicalConnector, FileMode};
use conpere_connectors::{Connector, ReadRequest};
use conpere_core::engine::{Coverage, Engine, Mode, NoProgress, RunReport, RunRequest, RunStatus};
use conpere_core::model::{parse_line, to_export_line, Item, Kind, Record};
use conpere_tests::*;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use std::path::Path;

const FILE: &str = "university.jsonl";

/// One corruption: which line it hits (the first of `kind`, or the last line of the
/// file), what it does to it, and the field the quarantine must name.
struct Corruption {
    name: &'static str,
    line: Target,
    mutate: fn(&[u8]) -> Vec<u8>,
    field: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Target {
    FirstOf(Kind),
    Last,
}

/// `line` with `insert` put right after the first `after`.
fn after(line: &[u8], after: &str, insert: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let at = text
        .find(after)
        .unwrap_or_else(|| panic!("no {after} in {text}"))
        + after.len();
    [&line[..at], insert, &line[at..]].concat()
}

/// `line` with the JSON value of `field` replaced by `value` (raw JSON text).
fn replace_value(line: &[u8], field: &str, value: &str) -> Vec<u8> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).expect("a valid line");
    object.insert(field.into(), serde_json::Value::Null);
    let text = serde_json::to_string(&object).unwrap();
    text.replacen(
        &format!("\"{field}\":null"),
        &format!("\"{field}\":{value}"),
        1,
    )
    .into_bytes()
}

const CORRUPTIONS: &[Corruption] = &[
    Corruption {
        name: "a line cut off mid-record",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| l[..l.len() / 2].to_vec(),
        field: None,
    },
    Corruption {
        name: "the last line cut off, without its newline",
        line: Target::Last,
        mutate: |l| l[..l.len() / 2].to_vec(),
        field: None,
    },
    Corruption {
        name: "invalid UTF-8",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| after(l, "\"family_name\":\"", b"\xff\xfe"),
        field: None,
    },
    Corruption {
        name: "Latin-1 bytes",
        line: Target::FirstOf(Kind::Registration),
        mutate: |l| after(l, "\"step\":\"", b"\xe9l\xe8ve"),
        field: None,
    },
    Corruption {
        name: "a lone surrogate",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| after(l, "\"given_name\":\"", br"\ud800"),
        field: None,
    },
    Corruption {
        name: "bare NaN",
        line: Target::FirstOf(Kind::Node),
        mutate: |l| replace_value(l, "ects", "NaN"),
        field: None,
    },
    Corruption {
        name: "a number out of range (1e400)",
        line: Target::FirstOf(Kind::Node),
        mutate: |l| replace_value(l, "ects", "1e400"),
        field: None,
    },
    Corruption {
        name: "the year as a string",
        line: Target::FirstOf(Kind::Registration),
        mutate: |l| replace_value(l, "year", "\"2024\""),
        field: Some("year"),
    },
    Corruption {
        name: "null in a key field",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| replace_value(l, "student", "null"),
        field: Some("student"),
    },
    Corruption {
        name: "an empty key field",
        line: Target::FirstOf(Kind::Enrolment),
        mutate: |l| replace_value(l, "node", "\"  \""),
        field: Some("node"),
    },
    Corruption {
        name: "a NUL character (escaped) in a field",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| after(l, "\"family_name\":\"", br"\u0000"),
        field: Some("family_name"),
    },
    Corruption {
        name: "a NUL character (raw) in a field",
        line: Target::FirstOf(Kind::Node),
        mutate: |l| after(l, "\"label\":\"", b"\0"),
        field: None,
    },
    Corruption {
        name: "a NUL character in a key field",
        line: Target::FirstOf(Kind::Registration),
        mutate: |l| after(l, "\"step\":\"", br"\u0000"),
        field: Some("step"),
    },
    Corruption {
        name: "an impossible date",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| replace_value(l, "birth_date", "\"2024-02-30\""),
        field: Some("birth_date \"2024-02-30\" is not a date"),
    },
    Corruption {
        name: "a date out of range",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| replace_value(l, "birth_date", "\"0001-01-01\""),
        field: Some("birth_date 0001-01-01 is out of range"),
    },
    Corruption {
        name: "an unknown type",
        line: Target::FirstOf(Kind::Edge),
        mutate: |l| {
            String::from_utf8_lossy(l)
                .replacen("\"edge\"", "\"egde\"", 1)
                .into_bytes()
        },
        field: Some("type"),
    },
    Corruption {
        name: "a line over the size limit (3 MB)",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| after(l, "\"family_name\":\"", &vec![b'x'; 3 << 20]),
        field: Some("over the limit of 1048576 (max_record_bytes)"),
    },
    Corruption {
        name: "a member twice",
        line: Target::FirstOf(Kind::Student),
        mutate: |l| after(l, "{", br#""student":"someone-else","#),
        field: Some("member `student` appears twice"),
    },
    Corruption {
        name: "not an object",
        line: Target::FirstOf(Kind::Enrolment),
        mutate: |_| b"[1, 2, 3]".to_vec(),
        field: None,
    },
];

/// The valid drop's lines, without their newlines.
fn valid_lines(records: &[Record]) -> Vec<Vec<u8>> {
    export_text("s", records)
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

fn write_drop(dir: &Path, lines: &[Vec<u8>], final_newline: bool) {
    let mut bytes = lines.join(&b'\n');
    if final_newline {
        bytes.push(b'\n');
    }
    std::fs::write(dir.join(FILE), bytes).unwrap();
}

/// A full read of `connector` applied as a run of source `name`, batches as they come
/// (with where their items were read); the error of a read that is refused.
async fn sync_through(
    db: &TestDatabase,
    connector: &dyn Connector,
    name: &str,
    kind: &str,
) -> Result<RunReport, String> {
    let request = ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 500,
    };
    let engine = Engine::new(db.pool.clone());
    let run = engine
        .start(RunRequest::full(name, kind, Coverage::all()))
        .await
        .unwrap();
    let batches = connector.read(request).await.map_err(|e| e.to_string())?;
    let batches = batches.map(|batch| batch.map_err(|e| e.to_string()));
    run.apply(batches, &NoProgress, None)
        .await
        .map_err(|e| e.to_string())
}

/// A full sync of the drop in `dir`, through the canonical adapter.
async fn sync(db: &TestDatabase, dir: &Path) -> RunReport {
    let connector = CanonicalConnector::new(dir.join(FILE), FileMode::Snapshot);
    sync_through(db, &connector, "s", "canonical")
        .await
        .unwrap()
}

/// A corrupted drop's run: applied with warnings, the store of `source` as `valid` says,
/// and no orphan.
async fn assert_kept(db: &TestDatabase, source: &str, report: &RunReport, valid: &str, name: &str) {
    assert_eq!(
        report.status,
        RunStatus::SucceededWithWarnings,
        "{name}: {report:?}"
    );
    assert_same_export(&exported(db, Some(source)).await, valid, name);
    assert_eq!(orphans(db).await, 0, "{name}");
}

/// The run's quarantine: (location, reason).
async fn quarantine(db: &TestDatabase, run_id: i64) -> Vec<(Option<String>, String)> {
    let client = db.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT location, reason FROM quarantine WHERE run_id = $1 ORDER BY id",
            &[&run_id],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn target_index(lines: &[Vec<u8>], target: Target) -> usize {
    match target {
        Target::Last => lines.len() - 1,
        Target::FirstOf(kind) => lines
            .iter()
            .position(|l| {
                let text = String::from_utf8_lossy(l);
                text.starts_with(&format!("{{\"type\":\"{kind}\""))
            })
            .unwrap_or_else(|| panic!("no {kind} line")),
    }
}

#[tokio::test]
async fn each_corruption_of_a_canonical_drop_keeps_the_store_and_names_where() {
    let records = university(21, 25);
    let lines = valid_lines(&records);
    let valid = export_text("s", &records);
    for corruption in CORRUPTIONS {
        let db = TestDatabase::new().await;
        let dir = tempfile::tempdir().unwrap();
        write_drop(dir.path(), &lines, true);
        assert_eq!(sync(&db, dir.path()).await.status, RunStatus::Succeeded);

        let index = target_index(&lines, corruption.line);
        let mut corrupted = lines.clone();
        corrupted[index] = (corruption.mutate)(&lines[index]);
        write_drop(dir.path(), &corrupted, index + 1 < lines.len());
        let report = sync(&db, dir.path()).await;
        let name = corruption.name;
        assert_kept(&db, "s", &report, &valid, name).await;
        let quarantined = quarantine(&db, report.run_id).await;
        let [(location, reason)] = quarantined.as_slice() else {
            panic!("{name}: one quarantined line expected, got {quarantined:?}")
        };
        let line = format!("{FILE}:{}", index + 1);
        assert!(
            location.as_deref().is_some_and(|l| l.ends_with(&line)),
            "{name}: {location:?}, expected {line}"
        );
        if let Some(field) = corruption.field {
            assert!(reason.contains(field), "{name}: {reason}");
        }
    }
}

#[tokio::test]
async fn a_byte_order_mark_is_skipped() {
    let records = university(22, 10);
    let lines = valid_lines(&records);
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), &lines, true);
    sync(&db, dir.path()).await;
    let mut with_bom = lines.clone();
    with_bom[0] = [b"\xEF\xBB\xBF".as_slice(), &lines[0]].concat();
    write_drop(dir.path(), &with_bom, true);
    let report = sync(&db, dir.path()).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.totals.unchanged as usize, records.len());
}

/// One random corruption of a valid line: cut, a flipped byte, a dropped field, or a
/// field of another type.
fn corrupt(line: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    match rng.gen_range(0..4) {
        0 => line[..rng.gen_range(0..line.len())].to_vec(),
        1 => {
            let mut bytes = line.to_vec();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= 1 << rng.gen_range(0..8);
            bytes
        }
        2 | 3 => {
            let mut object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(line).unwrap();
            let fields: Vec<String> = object.keys().cloned().collect();
            let field = &fields[rng.gen_range(0..fields.len())];
            if rng.gen_bool(0.5) {
                object.remove(field);
            } else {
                let value = object[field].clone();
                object[field] = match value {
                    serde_json::Value::String(s) => s
                        .parse::<f64>()
                        .map_or_else(|_| serde_json::json!(s.len()), |_| serde_json::json!(true)),
                    serde_json::Value::Number(n) => serde_json::json!(n.to_string()),
                    serde_json::Value::Null => serde_json::json!([]),
                    serde_json::Value::Bool(b) => serde_json::json!(b.to_string()),
                    _ => serde_json::Value::Null,
                };
            }
            serde_json::to_vec(&object).unwrap()
        }
        _ => unreachable!(),
    }
}

/// The stored records as (key, line) pairs.
fn by_key(export: &str) -> std::collections::BTreeMap<String, String> {
    export
        .lines()
        .map(|line| {
            let Ok(Item::Record(record)) = parse_line(line) else {
                panic!("export line {line}")
            };
            (record.key().to_string(), line.to_string())
        })
        .collect()
}

// Whatever one line becomes, every other record stays as it was; the line's own record
// (and the one it now names, if its key changed) holds what the line says, or its
// stored version; and no orphan appears.
#[tokio::test]
async fn any_single_line_corruption_changes_only_what_that_line_still_says() {
    let records = university(23, 15);
    let lines = valid_lines(&records);
    let valid = by_key(&export_text("s", &records));
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    for case in 0..40 {
        write_drop(dir.path(), &lines, true);
        sync(&db, dir.path()).await;
        let index = rng.gen_range(0..lines.len());
        let mut corrupted = lines.clone();
        corrupted[index] = corrupt(&lines[index], &mut rng);
        write_drop(dir.path(), &corrupted, true);
        let mut report = sync(&db, dir.path()).await;
        if report.status == RunStatus::Held {
            // A changed key can drop a whole subtree from the snapshot: decide it.
            let engine = conpere_core::engine::Engine::new(db.pool.clone());
            report = engine
                .approve(report.run_id, "test", &conpere_core::engine::NoProgress)
                .await
                .unwrap();
        }
        let what = format!(
            "case {case}: line {} became {:?}",
            index + 1,
            String::from_utf8_lossy(&corrupted[index])
        );
        assert_eq!(orphans(&db).await, 0, "{what}");
        let stored = by_key(&exported(&db, Some("s")).await);
        let original = parse_line(std::str::from_utf8(&lines[index]).unwrap()).unwrap();
        let Item::Record(original) = original else {
            panic!()
        };
        let now_says = std::str::from_utf8(&corrupted[index])
            .ok()
            .and_then(|text| parse_line(text.trim()).ok())
            .and_then(|item| match item {
                Item::Record(mut r) => {
                    r.normalize();
                    r.validate().is_ok().then_some(r)
                }
                _ => None,
            });
        // The line's records hold their valid version, what the line now says, or (a
        // changed key, or a record the engine quarantined) nothing.
        let mut touched = vec![original.key().to_string()];
        let says = now_says.as_ref().map(|r| to_export_line("s", r));
        if let Some(record) = &now_says {
            touched.push(record.key().to_string());
        }
        for key in &touched {
            if let Some(line) = stored.get(key) {
                assert!(
                    Some(line) == valid.get(key) || Some(line) == says.as_ref(),
                    "{what}: {key} holds {line}"
                );
            }
        }
        for (key, line) in &valid {
            if !touched.contains(key) {
                assert_eq!(stored.get(key), Some(line), "{what}: {key}");
            }
        }
        for key in stored.keys() {
            assert!(
                valid.contains_key(key) || touched.contains(key),
                "{what}: {key} appeared"
            );
        }
        assert_ne!(report.status, RunStatus::Failed, "{what}");
    }
}

/// One corruption of a OneRoster package: a row of one file, changed.
struct RowCorruption {
    name: &'static str,
    file: &'static str,
    /// The row (1 is the header; the last row when `None`).
    row: Option<usize>,
    mutate: fn(&[u8], &[&str]) -> Vec<u8>,
    /// Whether the file then ends without a newline.
    cut: bool,
    /// What a quarantined row's reason names, when it is not the corrupted row itself
    /// (a looked-up value is quarantined with the row that looked it up).
    names: Option<&'static str>,
    /// Whether the whole read is refused (a file that is not in its declared encoding:
    /// reading on would garble every accented name), naming the file, line and column.
    refused: bool,
}

/// `row` with the cell of `column` (by header name) replaced by `value` (raw bytes).
fn with_cell(row: &[u8], header: &[&str], column: &str, value: &[u8]) -> Vec<u8> {
    let index = header.iter().position(|h| *h == column).unwrap();
    let cells: Vec<&[u8]> = row.split(|b| *b == b',').collect();
    assert_eq!(cells.len(), header.len(), "a row of plain cells");
    let mut out = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(if i == index { value } else { cell });
    }
    out
}

const ROW_CORRUPTIONS: &[RowCorruption] = &[
    RowCorruption {
        name: "a users.csv row with a column too few",
        file: "users.csv",
        row: Some(2),
        mutate: |r, _| r[..r.iter().rposition(|b| *b == b',').unwrap()].to_vec(),
        cut: false,
        names: None,
        refused: false,
    },
    RowCorruption {
        name: "a users.csv row with a column too many",
        file: "users.csv",
        row: Some(2),
        mutate: |r, _| [r, b",extra"].concat(),
        cut: false,
        names: None,
        refused: false,
    },
    RowCorruption {
        name: "an impossible birthDate",
        file: "demographics.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "birthDate", b"2024-02-30"),
        cut: false,
        names: Some("field `birth_date` (`date(lookup(sourcedId, demographics.birthDate"),
        refused: false,
    },
    RowCorruption {
        name: "a demographics.csv row with a column too many",
        file: "demographics.csv",
        row: Some(2),
        mutate: |r, _| [r, b",extra"].concat(),
        cut: false,
        names: Some("demographics.csv:2 could not be read"),
        refused: false,
    },
    RowCorruption {
        name: "a birthDate of zeros",
        file: "demographics.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "birthDate", b"0000-00-00"),
        cut: false,
        names: Some("`0000-00-00` is not a date"),
        refused: false,
    },
    RowCorruption {
        name: "a role the specification does not have (Student)",
        file: "users.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "role", b"Student"),
        cut: false,
        names: None,
        refused: false,
    },
    RowCorruption {
        name: "a stray quote in a role",
        file: "users.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "role", b"stu\"dent"),
        cut: false,
        names: None,
        refused: false,
    },
    RowCorruption {
        name: "invalid UTF-8 in a name",
        file: "users.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "familyName", b"Dur\xff\xfeand"),
        cut: false,
        names: Some("users.csv:2: column \"familyName\" (field 10) is not valid UTF-8"),
        refused: true,
    },
    RowCorruption {
        name: "a name of 2 MiB, over the record size limit",
        file: "users.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "familyName", &[b'x'; 2 * 1024 * 1024]),
        cut: false,
        names: Some("bytes long, over the limit of 1048576 (max_record_bytes): it is read past"),
        refused: false,
    },
    RowCorruption {
        name: "a NUL byte in a name",
        file: "users.csv",
        row: Some(2),
        mutate: |r, h| with_cell(r, h, "familyName", b"Dur\0and"),
        cut: false,
        names: None,
        refused: false,
    },
    RowCorruption {
        name: "two classes.csv rows with one sourcedId and different values",
        file: "classes.csv",
        row: Some(2),
        mutate: |r, h| [r, b"\r\n", &with_cell(r, h, "classCode", b"OTHER-CODE")].concat(),
        cut: false,
        names: Some("has two rows with the key"),
        refused: false,
    },
    RowCorruption {
        name: "the last enrolment cut off, without its newline",
        file: "enrollments.csv",
        row: None,
        mutate: |r, _| r[..r.len() / 2].to_vec(),
        cut: true,
        names: None,
        refused: false,
    },
];

/// A full sync of the OneRoster package in `dir`, through the shipped mapping; the error
/// of a read that is refused (then no run is applied).
async fn sync_roster(db: &TestDatabase, dir: &Path) -> Result<RunReport, String> {
    use conpere_connectors::{ConnectorFactory, SourceConfig};
    let toml = format!(
        "[sources.roster]\nkind = \"export\"\npath = {:?}\nmapping = \"oneroster-1.1\"\n\
         stable_seconds = 0\n",
        dir.display().to_string()
    );
    let source = SourceConfig::from_toml("roster", &toml).unwrap();
    let connector = conpere_mappings::connector::ExportFactory::new()
        .build(&source)
        .unwrap();
    sync_through(db, connector.as_ref(), "roster", "export").await
}

#[tokio::test]
async fn each_corruption_of_a_oneroster_package_keeps_the_store_and_names_where() {
    let records = university(24, 20);
    for corruption in ROW_CORRUPTIONS {
        let name = corruption.name;
        let db = TestDatabase::new().await;
        let dir = tempfile::tempdir().unwrap();
        conpere_mappings::oneroster::write_drop(dir.path(), &records).unwrap();
        let first = sync_roster(&db, dir.path()).await.unwrap();
        assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
        let valid = exported(&db, Some("roster")).await;

        let path = dir.path().join(corruption.file);
        let text = std::fs::read(&path).unwrap();
        let mut rows: Vec<Vec<u8>> = text
            .split(|b| *b == b'\n')
            .filter(|r| !r.is_empty())
            .map(|r| r.strip_suffix(b"\r").unwrap_or(r).to_vec())
            .collect();
        let header_row = String::from_utf8(rows[0].clone()).unwrap();
        let header: Vec<&str> = header_row.split(',').collect();
        let index = corruption.row.map_or(rows.len() - 1, |row| row - 1);
        rows[index] = (corruption.mutate)(&rows[index], &header);
        let mut bytes = rows.join(b"\r\n".as_slice());
        if !corruption.cut {
            bytes.extend_from_slice(b"\r\n");
        }
        std::fs::write(&path, bytes).unwrap();

        let report = match sync_roster(&db, dir.path()).await {
            Ok(report) => report,
            Err(refusal) => {
                assert!(corruption.refused, "{name}: refused: {refusal}");
                assert!(refusal.contains(corruption.names.unwrap()), "{refusal}");
                assert_same_export(&exported(&db, Some("roster")).await, &valid, name);
                continue;
            }
        };
        assert!(!corruption.refused, "{name}: not refused");
        assert_kept(&db, "roster", &report, &valid, name).await;
        let quarantined = quarantine(&db, report.run_id).await;
        let line = format!("{}:{}", corruption.file, index + 1);
        let named = |(location, reason): &(Option<String>, String)| match corruption.names {
            Some(names) => reason.contains(names),
            None => location.as_deref().is_some_and(|l| l.ends_with(&line)),
        };
        assert!(
            quarantined.iter().any(named),
            "{name}: nothing quarantined at {line}: {quarantined:?}"
        );
    }
}

/// The rows of a OneRoster file: its header's names, then each row's bytes (no newline).
fn csv_rows(dir: &Path, file: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let text = std::fs::read(dir.join(file)).unwrap();
    let mut rows: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|r| !r.is_empty())
        .map(|r| r.strip_suffix(b"\r").unwrap_or(r).to_vec())
        .collect();
    let header = String::from_utf8(rows.remove(0)).unwrap();
    (header.split(',').map(str::to_string).collect(), rows)
}

/// The values a OneRoster package's records are named by, from the ids its rows use:
/// a user's `identifier`, a class's `classCode` and its course's `courseCode`, a
/// course's `courseCode`.
struct RosterNames(std::collections::HashMap<String, Vec<String>>);

impl RosterNames {
    fn read(dir: &Path) -> RosterNames {
        let mut names: std::collections::HashMap<String, Vec<String>> = Default::default();
        let column = |file: &str, wanted: &[&str]| {
            let (header, rows) = csv_rows(dir, file);
            let at = |name: &str| header.iter().position(|h| h == name).unwrap();
            let rows: Vec<Vec<String>> = (rows.iter())
                .map(|r| {
                    String::from_utf8_lossy(r)
                        .split(',')
                        .map(str::to_string)
                        .collect()
                })
                .collect();
            rows.into_iter()
                .map(|cells| {
                    let values = wanted.iter().map(|w| cells[at(w)].clone()).collect();
                    (cells[at("sourcedId")].clone(), values)
                })
                .collect::<Vec<(String, Vec<String>)>>()
        };
        let courses = column("courses.csv", &["courseCode"]);
        let course_code: std::collections::HashMap<_, _> = courses.iter().cloned().collect();
        for (id, values) in column("classes.csv", &["classCode", "courseSourcedId"]) {
            let mut codes = vec![values[0].clone()];
            codes.extend(course_code.get(&values[1]).into_iter().flatten().cloned());
            names.insert(id, codes);
        }
        names.extend(courses);
        names.extend(column("users.csv", &["identifier"]));
        RosterNames(names)
    }

    /// What the records made from `row` are named by: its cells that are ids, looked up,
    /// and its cells that are names themselves.
    fn of_row(&self, row: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(row);
        let mut found = Vec::new();
        for cell in text.split(',').filter(|c| c.len() >= 4) {
            found.push(cell.to_string());
            found.extend(self.0.get(cell).into_iter().flatten().cloned());
        }
        found
    }
}

/// One random corruption of a CSV row: cut, a flipped bit, a cell dropped or doubled, or
/// a cell of another type.
fn corrupt_row(row: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let mut cells: Vec<Vec<u8>> = row.split(|b| *b == b',').map(<[u8]>::to_vec).collect();
    let cell = rng.gen_range(0..cells.len());
    match rng.gen_range(0..5) {
        0 => row[..rng.gen_range(0..row.len())].to_vec(),
        1 => {
            let mut bytes = row.to_vec();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= 1 << rng.gen_range(0..8);
            bytes
        }
        2 => {
            cells.remove(cell);
            cells.join(&b',')
        }
        3 => {
            cells.insert(cell, cells[cell].clone());
            cells.join(&b',')
        }
        _ => {
            cells[cell] = match rng.gen_range(0..3) {
                0 => b"".to_vec(),
                1 => b"12345".to_vec(),
                _ => b"tout autre chose".to_vec(),
            };
            cells.join(&b',')
        }
    }
}

// The property of the canonical drop, for a OneRoster package: whatever one row of
// users.csv, demographics.csv, classes.csv or enrollments.csv becomes, the run does not
// fail, no orphan appears, and every record that changes (or goes, or appears) is named by
// something that row says or said: its user, its class or course.
#[tokio::test]
async fn any_single_row_corruption_of_a_oneroster_package_changes_only_what_that_row_names() {
    let records = university(27, 12);
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    conpere_mappings::oneroster::write_drop(dir.path(), &records).unwrap();
    let names = RosterNames::read(dir.path());
    let valid_files: Vec<(String, Vec<u8>)> = (std::fs::read_dir(dir.path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2027);
    let mut valid = String::new();
    for case in 0..40 {
        for (name, bytes) in &valid_files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let restored = sync_roster(&db, dir.path()).await.unwrap();
        assert_ne!(
            restored.status,
            RunStatus::Failed,
            "case {case}: {restored:?}"
        );
        if case == 0 {
            valid = exported(&db, Some("roster")).await;
        }
        assert_same_export(&exported(&db, Some("roster")).await, &valid, "restored");

        let file = [
            "users.csv",
            "demographics.csv",
            "classes.csv",
            "enrollments.csv",
        ][rng.gen_range(0..4)];
        let (header, mut rows) = csv_rows(dir.path(), file);
        let index = rng.gen_range(0..rows.len());
        let original = rows[index].clone();
        rows[index] = corrupt_row(&original, &mut rng);
        let mut bytes = header.join(",").into_bytes();
        for row in &rows {
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(row);
        }
        bytes.extend_from_slice(b"\r\n");
        std::fs::write(dir.path().join(file), bytes).unwrap();
        let what = format!(
            "case {case}: {file}:{} became {:?}",
            index + 2,
            String::from_utf8_lossy(&rows[index])
        );

        let mut report = match sync_roster(&db, dir.path()).await {
            Ok(report) => report,
            Err(_refused) => {
                assert_same_export(&exported(&db, Some("roster")).await, &valid, &what);
                continue;
            }
        };
        if report.status == RunStatus::Held {
            let engine = Engine::new(db.pool.clone());
            report = engine
                .approve(report.run_id, "test", &NoProgress)
                .await
                .unwrap();
        }
        assert_ne!(report.status, RunStatus::Failed, "{what}: {report:?}");
        assert_eq!(orphans(&db).await, 0, "{what}");
        let mut named = names.of_row(&original);
        named.extend(names.of_row(&rows[index]));
        let stored = by_key(&exported(&db, Some("roster")).await);
        let before = by_key(&valid);
        let keys: std::collections::BTreeSet<&String> =
            stored.keys().chain(before.keys()).collect();
        for key in keys {
            let (now, then) = (stored.get(key), before.get(key));
            if now == then {
                continue;
            }
            let line = now.or(then).unwrap();
            assert!(
                named.iter().any(|name| line.contains(name.as_str())),
                "{what}: {key} changed ({then:?} → {now:?}), named by none of {named:?}"
            );
        }
    }
}

// Rows a mapping's filter skips are no loss, but they are said, per value: a drop whose
// users.csv suddenly holds no student would not pass unnoticed.
#[tokio::test]
async fn rows_a_filter_skips_are_counted_per_value_in_the_summary() {
    let records = university(25, 8);
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    conpere_mappings::oneroster::write_drop(dir.path(), &records).unwrap();
    let path = dir.path().join("users.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let student = text.lines().nth(1).unwrap().as_bytes();
    let mut extra = String::new();
    for (n, role) in ["teacher", "teacher", "guardian"].iter().enumerate() {
        let row = with_cell(student, &header, "role", role.as_bytes());
        let row = with_cell(&row, &header, "sourcedId", format!("extra-{n}").as_bytes());
        extra.push_str(&format!("{}\r\n", String::from_utf8(row).unwrap()));
    }
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    let report = sync_roster(&db, dir.path()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(
        report.notes,
        [
            "users.csv: 3 row(s) skipped by the filter `eq(role, 'student')` (role `guardian`: 1; \
          role `teacher`: 2)"
        ]
    );
    let client = db.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT notes FROM sync_run WHERE id = $1",
            &[&report.run_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<String>>(0), report.notes);
}

// The engine's own checks name the line too: two versions of one student, and a
// registration of a student the source does not have.
#[tokio::test]
async fn the_engines_own_quarantines_name_the_line() {
    let records = university(26, 10);
    let mut lines = valid_lines(&records);
    let student = target_index(&lines, Target::FirstOf(Kind::Student));
    let other_version = replace_value(&lines[student], "given_name", "\"Autre\"");
    let registration = target_index(&lines, Target::FirstOf(Kind::Registration));
    let unknown = replace_value(&lines[registration], "student", "\"nobody\"");
    lines.push(other_version);
    lines.push(unknown);
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), &lines, true);
    let report = sync(&db, dir.path()).await;
    assert_eq!(report.status, RunStatus::SucceededWithWarnings);
    let quarantined = quarantine(&db, report.run_id).await;
    let at = |line: usize| format!("{FILE}:{line}");
    let expected = [
        (at(student + 1), "conflicting versions"),
        (at(lines.len() - 1), "conflicting versions"),
        (at(lines.len()), "refers to student nobody"),
    ];
    for (line, reason) in expected {
        assert!(
            quarantined.iter().any(|(location, why)| {
                location.as_deref().is_some_and(|l| l.ends_with(&line)) && why.contains(reason)
            }),
            "{line} {reason}: {quarantined:?}"
        );
    }
}

// A held run, once approved, applies what was read as it was read: its quarantines (made
// when it was read, not again on approval) still name the file and the line.
#[tokio::test]
async fn an_approved_run_still_names_where_its_quarantines_were_read() {
    let records = university(28, 10);
    let lines = valid_lines(&records);
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), &lines, true);
    assert_eq!(sync(&db, dir.path()).await.status, RunStatus::Succeeded);

    // Every enrolment goes (a mass deletion: held), and a registration names a student
    // the source does not have.
    let is_enrolment = |line: &Vec<u8>| {
        let text = std::str::from_utf8(line).unwrap();
        matches!(parse_line(text), Ok(Item::Record(r)) if r.kind() == Kind::Enrolment)
    };
    let mut held: Vec<Vec<u8>> = lines.iter().filter(|l| !is_enrolment(l)).cloned().collect();
    let registration = target_index(&held, Target::FirstOf(Kind::Registration));
    held.push(replace_value(&held[registration], "student", "\"nobody\""));
    write_drop(dir.path(), &held, true);
    let report = sync(&db, dir.path()).await;
    assert_eq!(report.status, RunStatus::Held, "{report:?}");

    let engine = Engine::new(db.pool.clone());
    let approved = engine
        .approve(report.run_id, "test", &NoProgress)
        .await
        .unwrap();
    assert_eq!(approved.status, RunStatus::SucceededWithWarnings);
    let quarantined = quarantine(&db, report.run_id).await;
    let unknown = (quarantined.iter())
        .filter(|(_, why)| why.contains("refers to student nobody"))
        .collect::<Vec<_>>();
    let at = format!("{FILE}:{}", held.len());
    assert!(!unknown.is_empty(), "{quarantined:?}");
    for (location, _) in unknown {
        let named = location.as_deref().is_some_and(|l| l.ends_with(&at));
        assert!(named, "{quarantined:?}");
    }
    assert_eq!(orphans(&db).await, 0);
}
