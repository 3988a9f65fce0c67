//! The export source (`kind = "export"`) on real drop directories: a canonical-csv drop
//! in ISO-8859-1 with `;` and decimal commas reads back as the generated university;
//! a drop already applied or not complete is "nothing new"; malformed input is refused
//! or quarantined with its file and line; the conformance kit passes.

use conpere_connectors::conformance::{read_all, Conformance};
use conpere_connectors::{Connector, ConnectorFactory, ReadRequest, SourceConfig};
use conpere_mappings::canonical_csv::write_drop;
use conpere_mappings::connector::ExportFactory;
use conpere_mappings::encoding::Encoding;
use conpere_model::Mode;
use conpere_model::{Item, Record};
use conpere_synth::{SynthConfig, University};
use std::path::Path;

/// A generated university as an ISO-8859-1 SIS holds it: `œ` spelled `oe`, dashes as
/// `-` (Latin-1 has neither), with results.
fn university(students: usize) -> Vec<Record> {
    let config = SynthConfig {
        results: true,
        ..SynthConfig::new(41, students)
    };
    University::generate(config)
        .records()
        .map(|record| {
            let text = serde_json::to_string(&record).unwrap();
            let latin1 = text
                .replace('œ', "oe")
                .replace('Œ', "OE")
                .replace(['–', '—'], "-");
            serde_json::from_str(&latin1).unwrap()
        })
        .collect()
}

/// An export source on `dir` with the canonical-csv mapping, complete as soon as written
/// unless `extra` says otherwise.
fn source(dir: &Path, extra: &str) -> SourceConfig {
    let stable = if extra.contains("stable_seconds") {
        ""
    } else {
        "stable_seconds = 0\n"
    };
    let toml = format!(
        "[sources.drop]\nkind = \"export\"\npath = {:?}\nmapping = \"canonical-csv\"\n\
         {stable}{extra}",
        dir.display().to_string()
    );
    SourceConfig::from_toml("drop", &toml).expect("valid TOML")
}

fn connector(source: &SourceConfig) -> Box<dyn Connector> {
    ExportFactory::new().build(source).expect("builds")
}

fn full(cursor: Option<serde_json::Value>) -> ReadRequest {
    ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor,
        batch_size: 100,
    }
}

/// Records as sorted comparable strings (special statuses sorted, as the engine keeps
/// them).
fn canonical(records: impl IntoIterator<Item = Record>) -> Vec<String> {
    let mut lines: Vec<String> = records
        .into_iter()
        .map(|mut record| {
            if let Record::Registration(r) = &mut record {
                r.special_statuses.sort();
            }
            format!("{record:?}")
        })
        .collect();
    lines.sort();
    lines
}

fn records_of(items: &[Item]) -> Vec<Record> {
    items
        .iter()
        .map(|item| match item {
            Item::Record(record) => record.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// What a new session of `connector` from `cursor` says of the drop.
async fn nothing_new(
    connector: &dyn Connector,
    cursor: Option<serde_json::Value>,
) -> Option<String> {
    let mut session = connector.open(cursor).await.unwrap();
    session.nothing_new().await.unwrap()
}

#[tokio::test]
async fn a_latin1_canonical_csv_drop_reads_back_as_the_university() {
    let dir = tempfile::tempdir().unwrap();
    let records = university(40);
    write_drop(dir.path(), records.clone(), Encoding::Iso8859_1).unwrap();
    let students = std::fs::read(dir.path().join("students.csv")).unwrap();
    assert!(students.contains(&b';') && std::str::from_utf8(&students).is_err());
    let connector = connector(&source(dir.path(), ""));
    let (items, cursor) = read_all(connector.as_ref(), full(None)).await.unwrap();
    assert_eq!(canonical(records_of(&items)), canonical(records));

    // The same drop again: nothing new. A changed file: something new.
    assert!(nothing_new(connector.as_ref(), cursor.clone())
        .await
        .is_some());
    let path = dir.path().join("students.csv");
    let mut text = std::fs::read(&path).unwrap();
    text.truncate(text.len() / 2);
    let cut = text.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    std::fs::write(&path, &text[..cut]).unwrap();
    assert_eq!(nothing_new(connector.as_ref(), cursor).await, None);
}

#[tokio::test]
async fn the_same_university_in_windows_1252_keeps_its_ligatures() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Record> = University::generate(SynthConfig::new(42, 30))
        .records()
        .collect();
    write_drop(dir.path(), records.clone(), Encoding::Windows1252).unwrap();
    let source = source(dir.path(), "encoding = \"windows-1252\"\n");
    let (items, _) = read_all(connector(&source).as_ref(), full(None))
        .await
        .unwrap();
    assert_eq!(canonical(records_of(&items)), canonical(records));
    let error = conpere_mappings::encoding::Encoding::Iso8859_1
        .encode("Cœur")
        .unwrap_err();
    assert!(error.contains("œ"), "{error}");
}

#[tokio::test]
async fn an_incomplete_drop_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), university(5), Encoding::Iso8859_1).unwrap();
    let marked = connector(&source(dir.path(), "ready_marker = \"DONE\"\n"));
    let why = nothing_new(marked.as_ref(), None).await.unwrap();
    assert!(why.contains("DONE"), "{why}");
    std::fs::write(dir.path().join("DONE"), "").unwrap();
    assert_eq!(nothing_new(marked.as_ref(), None).await, None);

    let fresh = connector(&source(dir.path(), "stable_seconds = 3600\n"));
    let why = nothing_new(fresh.as_ref(), None).await.unwrap();
    assert!(why.contains("stable_seconds"), "{why}");

    std::fs::remove_file(dir.path().join("edges.csv")).unwrap();
    let message = read_all(connector(&source(dir.path(), "")).as_ref(), full(None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("edges.csv") && message.contains("lose or delete"),
        "{message}"
    );
}

/// Replaces the line `line` (1-based) of `file` in the drop.
fn break_line(dir: &Path, file: &str, line: usize, change: impl Fn(&str) -> String) {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).unwrap();
    let text = Encoding::Iso8859_1.decode(&bytes).unwrap().into_owned();
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    lines[line - 1] = change(&lines[line - 1]);
    let joined = lines.join("\r\n");
    std::fs::write(&path, Encoding::Iso8859_1.encode(&joined).unwrap()).unwrap();
}

/// Every item of a full read of the drop in `dir`.
async fn read_drop(dir: &Path) -> Vec<Item> {
    read_all(connector(&source(dir, "")).as_ref(), full(None))
        .await
        .unwrap()
        .0
}

/// The quarantined rows among `items`.
fn rejected(items: &[Item]) -> Vec<&conpere_model::Rejected> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Rejected(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_bad_date_quarantines_its_row_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let records = university(10);
    write_drop(dir.path(), records.clone(), Encoding::Iso8859_1).unwrap();
    break_line(dir.path(), "students.csv", 3, |l| l.replacen('/', "-", 1));
    let items = read_drop(dir.path()).await;
    let rejected = rejected(&items);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let reject = rejected[0];
    assert_eq!(reject.location.as_deref(), Some("students.csv:3"));
    assert!(reject.reason.contains("birth_date"), "{}", reject.reason);
    assert!(!reject.payload.is_empty());
    assert_eq!(items.len(), records.len());
}

#[tokio::test]
async fn structural_damage_refuses_the_whole_drop_naming_file_and_line() {
    type Change = fn(&str) -> String;
    let cases: [(&str, usize, Change, &str, &str); 2] = [
        ("nodes.csv", 4, |l| format!("\"{l}"), "", "nodes.csv:4"),
        (
            "students.csv",
            5,
            |l| format!("{l}é"),
            "encoding = \"utf-8\"\n",
            "not valid UTF-8",
        ),
    ];
    for (file, line, change, extra, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_drop(dir.path(), university(10), Encoding::Iso8859_1).unwrap();
        break_line(dir.path(), file, line, change);
        let message = read_all(connector(&source(dir.path(), extra)).as_ref(), full(None))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(expected) && message.contains(file),
            "{message}"
        );
        assert!(
            message.contains("nothing of this drop is applied"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_renamed_column_quarantines_every_row_naming_the_columns_it_has() {
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), university(10), Encoding::Iso8859_1).unwrap();
    break_line(dir.path(), "edges.csv", 1, |l| {
        l.replacen("parent", "parnet", 1)
    });
    let items = read_drop(dir.path()).await;
    let rejected = rejected(&items);
    assert!(!rejected.is_empty());
    assert!(rejected
        .iter()
        .all(|r| r.reason.contains("no column parent")
            && r.reason.contains("parnet")
            && r.location
                .as_deref()
                .is_some_and(|l| l.starts_with("edges.csv:"))));
}

#[tokio::test]
async fn the_conformance_kit_passes() {
    let dir = tempfile::tempdir().unwrap();
    write_drop(dir.path(), university(10), Encoding::Iso8859_1).unwrap();
    let broken = SourceConfig::from_toml(
        "drop",
        "[sources.drop]\nkind = \"export\"\npath = \"/nonexistent/drop\"\nmapping = \"canonical-csv\"\n",
    )
    .unwrap();
    let report = Conformance {
        factory: &ExportFactory::new(),
        valid: source(dir.path(), ""),
        broken: vec![broken],
    }
    .run()
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.records > 0);
}
