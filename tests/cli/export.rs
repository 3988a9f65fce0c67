//! A file-drop source through the binary: `conpere sync` of a canonical-csv drop
//! (ISO-8859-1, `;`, decimal commas) then `conpere export` equals the generated
//! university; the same drop again is "nothing new" and makes no run; a damaged drop
//! fails the run and applies nothing.

use super::{assert_code, text, Site};
use conpere_core::model::Record;
use conpere_mappings::canonical_csv::write_drop;
use conpere_mappings::encoding::Encoding;
use conpere_tests::{assert_same_export, export_text, scalar};

/// A site whose source `drop` reads a canonical-csv drop directory (`extra`: more
/// settings of the source).
async fn drop_site(extra: &str) -> Site {
    let site = Site::new().await;
    let text = format!(
        "[database]\nurl = {:?}\n\n[sources.drop]\nkind = \"export\"\npath = {:?}\n\
         mapping = \"canonical-csv\"\nstable_seconds = 0\n{extra}",
        site.db.connection_string,
        site.input().display().to_string()
    );
    std::fs::write(site.config(), text).unwrap();
    site
}

/// A generated university as a Latin-1 SIS holds it (no `œ`, no long dashes).
fn latin1_university(seed: u64, students: usize) -> Vec<Record> {
    conpere_tests::university(seed, students)
        .into_iter()
        .map(|record| {
            let text = serde_json::to_string(&record)
                .unwrap()
                .replace('œ', "oe")
                .replace('Œ', "OE")
                .replace(['–', '—'], "-");
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_drop_syncs_once_and_its_export_equals_the_university() {
    let site = drop_site("").await;
    let records = latin1_university(51, 40);
    write_drop(&site.input(), records.clone(), Encoding::Iso8859_1).unwrap();
    let output = site.run(&["sync", "--source", "drop"]);
    assert_code(&output, 0);
    assert_same_export(
        &site.export_of("drop"),
        &export_text("drop", &records),
        "drop export",
    );

    let output = site.run(&["sync", "--source", "drop"]);
    assert_code(&output, 0);
    assert!(text(&output).contains("nothing new"), "{}", text(&output));
    let runs: i64 = scalar(&site.db, "SELECT count(*) FROM sync_run").await;
    assert_eq!(runs, 1);

    // Tonight's drop is damaged: the run fails, last night's contracts stay.
    let nodes = site.input().join("nodes.csv");
    let mut bytes = std::fs::read(&nodes).unwrap();
    bytes.splice(0..0, b"\"".iter().copied());
    std::fs::write(&nodes, bytes).unwrap();
    let output = site.run(&["sync", "--source", "drop"]);
    assert_code(&output, 1);
    assert!(text(&output).contains("nodes.csv:1"), "{}", text(&output));
    assert_same_export(
        &site.export_of("drop"),
        &export_text("drop", &records),
        "after a failed run",
    );
}

#[tokio::test]
async fn applied_and_refused_drops_are_archived_apart() {
    let archive = tempfile::tempdir().unwrap();
    let site = drop_site(&format!(
        "archive = {:?}\n",
        archive.path().display().to_string()
    ))
    .await;
    let records = latin1_university(52, 20);
    write_drop(&site.input(), records.clone(), Encoding::Iso8859_1).unwrap();
    assert_code(&site.run(&["sync", "--source", "drop"]), 0);
    let entries = |dir: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(archive.path().join(dir))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let applied = entries("applied");
    assert_eq!(applied.len(), 1);
    assert!(applied[0].join("students.csv").exists());
    assert_eq!(
        std::fs::read_dir(site.input()).unwrap().count(),
        0,
        "the drop left the inbox"
    );
    let output = site.run(&["sync", "--source", "drop"]);
    assert!(text(&output).contains("nothing new"), "{}", text(&output));

    // The next drop is damaged: refused, set aside with the reason, the store unchanged.
    write_drop(&site.input(), records.clone(), Encoding::Iso8859_1).unwrap();
    let nodes = site.input().join("nodes.csv");
    let mut bytes = std::fs::read(&nodes).unwrap();
    bytes.splice(0..0, b"\"".iter().copied());
    std::fs::write(&nodes, bytes).unwrap();
    assert_code(&site.run(&["sync", "--source", "drop"]), 1);
    let failed = entries("failed");
    assert_eq!(failed.len(), 1);
    let reason = std::fs::read_to_string(failed[0].join("reason.txt")).unwrap();
    assert!(reason.contains("nodes.csv:1"), "{reason}");
    assert_same_export(
        &site.export_of("drop"),
        &export_text("drop", &records),
        "after a refused drop",
    );
}

#[tokio::test]
async fn check_points_to_the_line_of_a_mapping_typo() {
    let site = drop_site("").await;
    let mapping = site.dir.path().join("my-sis.toml");
    let mapping_text = conpere_mappings::shipped::get("canonical-csv")
        .unwrap()
        .replace(
            "given_name = \"given_name\"",
            "given_name = \"trimm(given_name)\"",
        );
    std::fs::write(&mapping, &mapping_text).unwrap();
    let line = mapping_text
        .lines()
        .position(|l| l.contains("trimm("))
        .unwrap()
        + 1;
    let config = std::fs::read_to_string(site.config()).unwrap().replace(
        "\"canonical-csv\"",
        &format!("{:?}", mapping.display().to_string()),
    );
    std::fs::write(site.config(), config).unwrap();
    let output = site.run(&["check", "--source", "drop"]);
    assert_code(&output, 2);
    let message = text(&output);
    assert!(
        message.contains(&format!("my-sis.toml:{line}"))
            && message.contains("unknown function `trimm`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_oneroster_package_syncs_and_exports_what_the_mapping_reads() {
    let site = drop_site("").await;
    let config = std::fs::read_to_string(site.config())
        .unwrap()
        .replace("\"canonical-csv\"", "\"oneroster-1.1\"");
    std::fs::write(site.config(), config).unwrap();
    let records = conpere_tests::university(53, 30);
    conpere_mappings::oneroster::write_drop(&site.input(), &records).unwrap();
    assert_code(&site.run(&["sync", "--source", "drop"]), 0);
    assert_same_export(
        &site.export_of("drop"),
        &export_text("drop", &conpere_mappings::oneroster::readable(&records)),
        "oneroster export",
    );
}

#[tokio::test]
async fn a_drop_much_smaller_than_the_last_is_held_not_purged() {
    let site = drop_site("").await;
    let records = latin1_university(54, 40);
    write_drop(&site.input(), records.clone(), Encoding::Iso8859_1).unwrap();
    assert_code(&site.run(&["sync", "--source", "drop"]), 0);
    // Tonight's export stopped a quarter of the way through the students.
    let keep: std::collections::BTreeSet<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Student(s) => Some(s.student.clone()),
            _ => None,
        })
        .take(10)
        .collect();
    let smaller: Vec<Record> = records
        .iter()
        .filter(|r| match r {
            Record::Student(s) => keep.contains(&s.student),
            Record::Registration(g) => keep.contains(&g.student),
            Record::Enrolment(e) => keep.contains(&e.student),
            Record::Result(r) => keep.contains(&r.student),
            _ => true,
        })
        .cloned()
        .collect();
    write_drop(&site.input(), smaller, Encoding::Iso8859_1).unwrap();
    let output = site.run(&["sync", "--source", "drop"]);
    assert_code(&output, 3);
    assert_same_export(
        &site.export_of("drop"),
        &export_text("drop", &records),
        "while held",
    );
}
