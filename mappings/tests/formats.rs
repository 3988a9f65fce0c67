//! A home-grown export through a mapping file written for it: students in an ISO-8859-1
//! XML file, registrations in JSON Lines, with a filter, code tables and a tombstone; an
//! XML bomb in the drop refuses it whole.

use conpere_connectors::conformance::read_all;
use conpere_connectors::{ConnectorFactory, ReadRequest, SourceConfig};
use conpere_mappings::connector::ExportFactory;
use conpere_mappings::encoding::Encoding;
use conpere_model::Mode;
use conpere_model::{Item, Record, Regime, RegistrationStatus};
use std::path::Path;

const MAPPING: &str = r#"
name = "scolarix"
description = "the nightly export of a home-grown SIS"
encoding = "utf-8"

[tables.regimes]
FI = "initial"
FC = "continuing"

[tables.etats]
V = "active"
A = "cancelled"

[[inputs]]
kind = "student"
files = "etudiants.xml"
format = "xml"
record = "export/etudiants/etudiant"
encoding = "iso-8859-1"
filter = "ne(@type, 'test')"
[inputs.fields]
student = "@numero"
family_name = "upper(trim(nom))"
given_name = "prenom"
birth_date = "date(naissance, '%d/%m/%Y')"
ine = "default(ine, '')"

[[inputs]]
kind = "registration"
files = "inscriptions-*.jsonl"
format = "jsonl"
tombstone = "eq(etat, 'S')"
[inputs.fields]
year = "annee"
student = "etudiant.numero"
step = "concat('VET:', etape.code, '/', etape.version)"
status = "lookup(etat, etats, 'pending')"
regime = "lookup(regime, regimes)"
main = "bool(default(principale, 'O'))"
special_statuses = "split(statuts, ',')"
"#;

const STUDENTS: &str = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>
<export>
  <etudiants>
    <etudiant numero=\"00042\" type=\"normal\">
      <nom> Lefèvre </nom><prenom>Hélène</prenom><naissance>17/05/2004</naissance>
    </etudiant>
    <etudiant numero=\"99999\" type=\"test\"><nom>Test</nom><prenom>T</prenom></etudiant>
    <etudiant numero=\"00043\" type=\"normal\">
      <nom>Ngô</nom><prenom>Zoé</prenom><naissance>31/02/2004</naissance>
    </etudiant>
  </etudiants>
</export>
";

const REGISTRATIONS: &str = r#"{"annee": 2024, "etudiant": {"numero": "00042"}, "etape": {"code": "L1INF", "version": 120}, "etat": "V", "regime": "FC", "statuts": "employed, disability"}
{"annee": 2024, "etudiant": {"numero": "00043"}, "etape": {"code": "L1INF", "version": 120}, "etat": "A", "regime": "FI", "principale": "N"}
{"annee": 2023, "etudiant": {"numero": "00043"}, "etape": {"code": "L1INF", "version": 120}, "etat": "S", "regime": "FI"}
"#;

fn drop_dir(students: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scolarix.toml"), MAPPING).unwrap();
    std::fs::write(dir.path().join("etudiants.xml"), students).unwrap();
    std::fs::write(dir.path().join("inscriptions-2024.jsonl"), REGISTRATIONS).unwrap();
    dir
}

fn source(dir: &Path) -> SourceConfig {
    let toml = format!(
        "[sources.scolarix]\nkind = \"export\"\npath = {:?}\nmapping = {:?}\n\
         stable_seconds = 0\n",
        dir.display().to_string(),
        dir.join("scolarix.toml").display().to_string()
    );
    SourceConfig::from_toml("scolarix", &toml).unwrap()
}

fn full() -> ReadRequest {
    ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 10,
    }
}

#[tokio::test]
async fn xml_and_json_lines_map_through_a_home_grown_mapping() {
    let students = Encoding::Iso8859_1.encode(STUDENTS).unwrap().into_owned();
    let dir = drop_dir(&students);
    let connector = ExportFactory::new().build(&source(dir.path())).unwrap();
    let (items, _) = read_all(connector.as_ref(), full()).await.unwrap();

    let student = items.iter().find_map(|i| match i {
        Item::Record(Record::Student(s)) if s.student == "00042" => Some(s),
        _ => None,
    });
    let student = student.expect("student 00042");
    assert_eq!(
        (student.family_name.as_str(), student.given_name.as_str()),
        ("LEFÈVRE", "Hélène")
    );
    assert_eq!(
        student.birth_date.map(|d| d.to_string()).as_deref(),
        Some("2004-05-17")
    );
    assert!(!items
        .iter()
        .any(|i| matches!(i, Item::Record(Record::Student(s)) if s.student == "99999")));

    // 31/02 is no date: that student is quarantined, naming file, line and field.
    let rejected = items.iter().find_map(|i| match i {
        Item::Rejected(r) => Some(r),
        _ => None,
    });
    let rejected = rejected.expect("a quarantined student");
    assert_eq!(rejected.location.as_deref(), Some("etudiants.xml:8"));
    assert!(rejected.reason.contains("birth_date") && rejected.payload.contains("Zoé"));

    let registrations: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Record(Record::Registration(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(registrations.len(), 2);
    let first = registrations.iter().find(|r| r.student == "00042").unwrap();
    assert_eq!(first.step, "VET:L1INF/120");
    assert_eq!(
        (first.regime, first.status, first.main),
        (Regime::Continuing, RegistrationStatus::Active, true)
    );
    assert_eq!(first.special_statuses, ["employed", "disability"]);
    let second = registrations.iter().find(|r| r.student == "00043").unwrap();
    assert_eq!(
        (second.status, second.main),
        (RegistrationStatus::Cancelled, false)
    );
    assert!(items
        .iter()
        .any(|i| matches!(i, Item::Tombstone(k) if k.to_string().contains("2023"))));
}

#[tokio::test]
async fn an_xml_bomb_refuses_the_drop() {
    let bomb = b"<?xml version=\"1.0\"?>
<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\">]>
<export><etudiants><etudiant numero=\"1\"><nom>&lol2;</nom></etudiant></etudiants></export>
";
    let dir = drop_dir(bomb);
    let connector = ExportFactory::new().build(&source(dir.path())).unwrap();
    let message = read_all(connector.as_ref(), full())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("etudiants.xml:2") && message.contains("DTD"),
        "{message}"
    );
    assert!(
        message.contains("nothing of this drop is applied"),
        "{message}"
    );
}
