//! The conformance kit on the built-in canonical adapter, and its incremental cursor.

use conpere_connectors::canonical::CanonicalFactory;
use conpere_connectors::conformance::{read_all, Conformance};
use conpere_connectors::{ReadRequest, Registry, SourceConfig};
use conpere_model::Mode;
use conpere_model::{to_export_line, Item};
use conpere_synth::{SynthConfig, University};
use std::io::Write;
use std::path::Path;

fn source(path: &Path, mode: &str) -> SourceConfig {
    SourceConfig::from_toml(
        "files",
        &format!(
            "[sources.files]\nkind = \"canonical\"\nmode = \"{mode}\"\npath = {:?}\n",
            path.display().to_string()
        ),
    )
    .unwrap()
}

fn write(path: &Path, lines: &[String]) {
    let mut file = std::fs::File::create(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

fn university_lines(seed: u64, students: usize) -> Vec<String> {
    University::generate(SynthConfig::new(seed, students))
        .records()
        .map(|r| to_export_line("files", &r))
        .collect()
}

#[tokio::test]
async fn the_canonical_adapter_passes_the_conformance_kit_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.jsonl"), &university_lines(1, 40));
    for mode in ["snapshot", "changes"] {
        let report = Conformance {
            factory: &CanonicalFactory::new(),
            valid: source(dir.path(), mode),
            broken: vec![source(&dir.path().join("missing"), mode)],
        }
        .run()
        .await
        .unwrap_or_else(|failure| panic!("{mode}: {failure}"));
        assert!(report.records > 1000, "{report:?}");
    }
}

#[tokio::test]
async fn in_changes_mode_only_new_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.jsonl"), &university_lines(2, 10));
    let connector = Registry::with_builtin()
        .build(&source(dir.path(), "changes"))
        .unwrap();
    let full = ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 100,
    };
    let (items, cursor) = read_all(connector.as_ref(), full.clone()).await.unwrap();
    assert!(items.len() > 100);

    write(
        &dir.path().join("b.jsonl"),
        &[
            r#"{"type":"registration","year":2024,"student":"1","step":"VET:X/1","deleted":true}"#
                .to_string(),
        ],
    );
    let incremental = ReadRequest {
        mode: Mode::Incremental,
        cursor,
        ..full.clone()
    };
    let (items, _) = read_all(connector.as_ref(), incremental).await.unwrap();
    assert_eq!(items.len(), 1);
    assert!(matches!(&items[0], Item::Tombstone(k) if k.year() == Some(2024)));

    let only_2023 = ReadRequest {
        years: Some(vec![2023]),
        ..full
    };
    let (items, _) = read_all(connector.as_ref(), only_2023).await.unwrap();
    assert!(items.iter().all(|i| match i {
        Item::Record(r) => r.year().is_none_or(|y| y == 2023),
        Item::Tombstone(k) => k.year() == Some(2023),
        Item::Rejected(_) | Item::Note(_) => true,
    }));
}

#[tokio::test]
async fn a_snapshot_source_never_reads_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.jsonl"), &university_lines(3, 10));
    let connector = Registry::with_builtin()
        .build(&source(dir.path(), "snapshot"))
        .unwrap();
    assert!(!connector.discover().await.unwrap().incremental);
}
