//! The shipped OneRoster 1.1 mapping: a generated university written as a OneRoster CSV
//! package reads back as `oneroster::readable` says; the manifest is honoured.

use conpere_connectors::conformance::read_all;
use conpere_connectors::{Connector, ConnectorFactory, ReadRequest, SourceConfig};
use conpere_mappings::connector::ExportFactory;
use conpere_mappings::encoding::Encoding;
use conpere_mappings::oneroster;
use conpere_model::Mode;
use conpere_model::{export_order, Item, Kind, Record};
use conpere_synth::{SynthConfig, University};
use std::path::Path;

fn connector(dir: &Path, extra: &str) -> Box<dyn Connector> {
    let toml = format!(
        "[sources.roster]\nkind = \"export\"\npath = {:?}\nmapping = \"oneroster-1.1\"\n\
         stable_seconds = 0\n{extra}",
        dir.display().to_string()
    );
    ExportFactory::new()
        .build(&SourceConfig::from_toml("roster", &toml).unwrap())
        .unwrap()
}

fn full() -> ReadRequest {
    ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 200,
    }
}

/// Records in export order, as comparable text.
fn sorted(mut records: Vec<Record>) -> Vec<String> {
    records.sort_by(export_order);
    records.dedup();
    records.iter().map(|r| format!("{r:?}")).collect()
}

fn package(students: usize) -> (tempfile::TempDir, Vec<Record>) {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Record> = University::generate(SynthConfig::new(61, students))
        .records()
        .collect();
    oneroster::write_drop(dir.path(), &records).unwrap();
    (dir, records)
}

#[tokio::test]
async fn a_oneroster_package_reads_back_as_the_mapping_promises() {
    let (dir, records) = package(40);
    let (items, _) = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap();
    let read: Vec<Record> = items
        .iter()
        .map(|item| match item {
            Item::Record(record) => record.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected = oneroster::readable(&records);
    assert!(!expected.is_empty());
    let (read, expected) = (sorted(read), sorted(expected));
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !read.contains(e))
        .take(3)
        .collect();
    let extra: Vec<_> = read
        .iter()
        .filter(|r| !expected.contains(r))
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
}

/// Rewrites the manifest's `property` to `value`.
fn set_manifest(dir: &Path, property: &str, value: &str) {
    let path = dir.join("manifest.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed: Vec<String> = text
        .lines()
        .map(|l| match l.split_once(',') {
            Some((p, _)) if p == property => format!("{p},{value}"),
            _ => l.to_string(),
        })
        .collect();
    std::fs::write(&path, changed.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn the_manifest_is_honoured() {
    let (dir, _) = package(10);
    set_manifest(dir.path(), "oneroster.version", "1.2");
    let message = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("manifest.csv") && message.contains("1.2"),
        "{message}"
    );

    // A delta file: the drop is read as changes, the kinds of whole files still whole,
    // unless the source insists that every file is whole.
    set_manifest(dir.path(), "oneroster.version", "1.1");
    set_manifest(dir.path(), "file.enrollments", "delta");
    let capabilities = connector(dir.path(), "").discover().await.unwrap();
    assert!(capabilities.incremental && !capabilities.full);
    assert_eq!(
        capabilities.snapshot_kinds,
        [Kind::Edge, Kind::Node, Kind::Student],
        "registrations and enrolments come from the delta"
    );
    let (items, _) = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap();
    let Some(Item::Note(note)) = items.first() else {
        panic!(
            "the run says how the files were read first: {:?}",
            items.first()
        );
    };
    assert!(note.contains("enrollments.csv delta"), "{note}");
    let snapshot = connector(dir.path(), "mode = \"snapshot\"\n");
    let message = read_all(snapshot.as_ref(), full())
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("sets `mode = \"snapshot\"`"), "{message}");

    // Absent: not read, not required, and its kinds left alone.
    set_manifest(dir.path(), "file.enrollments", "absent");
    std::fs::remove_file(dir.path().join("enrollments.csv")).unwrap();
    let capabilities = connector(dir.path(), "").discover().await.unwrap();
    assert!(!capabilities.snapshot_kinds.contains(&Kind::Enrolment));
    let (items, _) = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap();
    assert!(items.iter().all(|i| !matches!(
        i,
        Item::Record(Record::Enrolment(_)) | Item::Record(Record::Registration(_))
    )));
    assert!(items
        .iter()
        .any(|i| matches!(i, Item::Record(Record::Student(_)))));
}

#[tokio::test]
async fn the_sources_encoding_applies_to_the_reference_files_too() {
    let (dir, _) = package(20);
    let utf8 = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap()
        .0;
    // The whole package re-encoded in windows-1252, as an older SIS export would be.
    let mut accented_references = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !text.is_ascii() && ["classes.csv", "courses.csv"].contains(&name.as_str()) {
                accented_references += 1;
            }
            let encoded = Encoding::Windows1252.encode(&text).unwrap();
            std::fs::write(&path, encoded).unwrap();
        }
    }
    assert!(accented_references > 0, "no accent in the reference files");
    let windows = read_all(
        connector(dir.path(), "encoding = \"windows-1252\"\n").as_ref(),
        full(),
    )
    .await
    .expect("every file read as windows-1252")
    .0;
    assert_eq!(format!("{windows:?}"), format!("{utf8:?}"));
}

// A first drop that is a delta, with nothing remembered of earlier ones: a row naming a
// user its users.csv does not carry cannot be keyed, and says why (it is not taken for
// a user that does not exist).
#[tokio::test]
async fn a_delta_reference_with_nothing_remembered_is_not_trusted_to_be_whole() {
    let (dir, _) = package(10);
    set_manifest(dir.path(), "file.users", "delta");
    let users = dir.path().join("users.csv");
    let text = std::fs::read_to_string(&users).unwrap();
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&users, kept.join("\n") + "\n").unwrap();
    let (items, _) = read_all(connector(dir.path(), "").as_ref(), full())
        .await
        .unwrap();
    let said = "but users.csv is a delta (manifest): it holds only the rows that changed";
    let rejected = items.iter().filter(|item| {
        matches!(item, Item::Rejected(r) if r.reason.contains(said) && r.reason.contains("no row of reference `users` has the key"))
    });
    assert!(
        rejected.count() > 0,
        "{:?}",
        items.iter().find(|i| matches!(i, Item::Rejected(_)))
    );
}
