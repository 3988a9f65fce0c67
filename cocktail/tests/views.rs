//! The SQL source against real views on the embedded PostgreSQL, read through the
//! PostgreSQL ODBC driver (`odbc-postgresql`, installed by `.ci/run`; the driver manager
//! is built into conpere): the view contract over a generated university reads back as
//! that university (results aside), `check` names a missing column and a driver that is
//! not installed, and a connection that fails says what to check without showing the
//! connection string.

mod common;

use common::{read_checked, sorted, source};
use conpere_cocktail::{odbc, CocktailFactory};
use conpere_connectors::conformance::Conformance;
use conpere_connectors::{ConnectorFactory, SourceConfig};
use conpere_core::testing::TestDatabase;
use conpere_model::{to_export_line, Kind, Record};

/// The fixture: one table per kind, typed as a SIS would type it, and the contract's
/// views over them.
const SCHEMA: &str = "
CREATE TABLE fixture_student (student text, ine text, family_name text, usual_name text,
    given_name text, birth_date date, email text, login text);
CREATE TABLE fixture_node (year int, node text, kind text, code text, version text,
    label text, ects numeric, period text);
CREATE TABLE fixture_edge (year int, parent text, child text, mandatory boolean, min int,
    max int, position int);
CREATE TABLE fixture_registration (year int, student text, step text, diploma text,
    status text, regime text, main boolean, special_statuses text[]);
CREATE TABLE fixture_enrolment (year int, student text, step text, node text, via text,
    carried_over boolean, exempted boolean);
CREATE VIEW V_CONPERE_STUDENT AS SELECT * FROM fixture_student;
CREATE VIEW V_CONPERE_NODE AS SELECT * FROM fixture_node;
CREATE VIEW V_CONPERE_EDGE AS SELECT * FROM fixture_edge;
CREATE VIEW V_CONPERE_REGISTRATION AS SELECT year, student, step, diploma, status, regime,
    main, array_to_string(special_statuses, '|') AS special_statuses FROM fixture_registration;
CREATE VIEW V_CONPERE_ENROLMENT AS SELECT * FROM fixture_enrolment;
";

/// The records the views serve: a generated university without results.
fn university() -> Vec<Record> {
    common::university(71)
}

async fn fixture(records: &[Record]) -> TestDatabase {
    let db = TestDatabase::new().await;
    let client = db.pool.get().await.unwrap();
    client.batch_execute(SCHEMA).await.unwrap();
    for kind in [
        Kind::Student,
        Kind::Node,
        Kind::Edge,
        Kind::Registration,
        Kind::Enrolment,
    ] {
        let lines: Vec<String> = records
            .iter()
            .filter(|r| r.kind() == kind)
            .map(|r| to_export_line("s", r))
            .collect();
        let sql = format!(
            "INSERT INTO fixture_{kind} SELECT * FROM json_populate_recordset(null::fixture_{kind}, $1::text::json)"
        );
        client
            .execute(&sql, &[&format!("[{}]", lines.join(","))])
            .await
            .unwrap();
    }
    db
}

#[tokio::test]
async fn the_view_contract_reads_back_as_the_university() {
    let records = university();
    let db = fixture(&records).await;
    let source = source(
        "CONPERE_TEST_ODBC_READ",
        &odbc::postgresql_connection_string(&db.connection_string, None),
    );
    let connector = CocktailFactory::new().build(&source).unwrap();
    let report = connector.check().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.details.len(), 6, "{:?}", report.details);
    let read = read_checked(&source).await;
    assert_eq!(sorted(read), sorted(records));
}

/// The error `check` gives for `source`.
async fn check_error(source: &SourceConfig) -> String {
    let connector = CocktailFactory::new().build(source).unwrap();
    connector.check().await.unwrap_err().to_string()
}

#[tokio::test]
async fn check_names_a_missing_column_and_a_failed_connection_keeps_its_secret() {
    let db = fixture(&university()).await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute(
            "DROP VIEW V_CONPERE_STUDENT; CREATE VIEW V_CONPERE_STUDENT AS SELECT student, ine,
             family_name, usual_name, given_name AS prenom, birth_date, email, login
             FROM fixture_student",
        )
        .await
        .unwrap();
    let source = source(
        "CONPERE_TEST_ODBC_CHECK",
        &odbc::postgresql_connection_string(&db.connection_string, None),
    );
    let message = check_error(&source).await;
    assert!(
        message.contains("given_name") && message.contains("prenom"),
        "{message}"
    );

    let secret = "Driver={No Such Driver};Server=x;Pwd=hunter2;";
    let source = self::source("CONPERE_TEST_ODBC_BAD", secret);
    let message = check_error(&source).await;
    assert!(
        message.contains("`No Such Driver` is not installed")
            && message.contains("PostgreSQL Unicode")
            && message.contains("odbcinst -q -d")
            && !message.contains("hunter2"),
        "{message}"
    );
}

/// The driver manager is built into conpere (no unixODBC library needed to build or run
/// it), and still finds the drivers the system registered in /etc/odbcinst.ini.
#[test]
fn the_built_in_driver_manager_finds_the_systems_postgresql_driver() {
    let drivers = odbc::Database::new().unwrap().drivers().unwrap();
    assert!(
        drivers.iter().any(|d| d == "PostgreSQL Unicode"),
        "{drivers:?}"
    );
}

/// A site that names a DSN of its odbc.ini, whose driver Debian registered by bare file
/// name (`psqlodbcw.so`): the built-in driver manager finds the library all the same.
#[tokio::test]
async fn a_dsn_whose_driver_is_registered_by_file_name_reads() {
    let records = university();
    let db = fixture(&records).await;
    let settings = odbc::postgresql_connection_string(&db.connection_string, None);
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("odbc.ini");
    let mut dsn = String::from("[conpere_test_dsn]\nDriver = PostgreSQL Unicode\n");
    for part in settings.split(';').filter(|p| !p.starts_with("Driver=")) {
        if let Some((key, value)) = part.split_once('=') {
            dsn.push_str(&format!("{key} = {value}\n"));
        }
    }
    std::fs::write(&ini, dsn).unwrap();
    // Only this test names a DSN: the user's odbc.ini is its own.
    std::env::set_var("ODBCINI", &ini);
    let source = source("CONPERE_TEST_ODBC_DSN", "DSN=conpere_test_dsn");
    let read = read_checked(&source).await;
    assert_eq!(sorted(read), sorted(records));
}

/// A connection string naming a driver that is not installed: `check` names the driver
/// and where it comes from.
#[tokio::test]
async fn check_names_a_driver_that_is_not_installed_and_its_package() {
    for (connection, expected) in [
        (
            "Driver={PostgreSQL Unicode(x64)};Server=db;Pwd=hunter2;",
            "`PostgreSQL Unicode(x64)` is not installed",
        ),
        (
            "Driver={PostgreSQL Unicode(x64)};Server=db;Pwd=hunter2;",
            "apt-get install odbc-postgresql",
        ),
        (
            "DRIVER={Oracle 19 ODBC driver};DBQ=sis;PWD=hunter2",
            "Oracle Instant Client",
        ),
        (
            "Driver=/opt/oracle/libsqora.so.19.1;DBQ=sis;PWD=hunter2",
            "/opt/oracle/libsqora.so.19.1 (Driver= of the connection string) does not exist",
        ),
    ] {
        let source = source("CONPERE_TEST_ODBC_NO_DRIVER", connection);
        let message = check_error(&source).await;
        assert!(
            message.contains(expected) && !message.contains("hunter2"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn the_conformance_kit_passes() {
    let db = fixture(&university()).await;
    let report = Conformance {
        factory: &CocktailFactory::new(),
        valid: source(
            "CONPERE_TEST_ODBC_KIT",
            &odbc::postgresql_connection_string(&db.connection_string, None),
        ),
        broken: vec![source(
            "CONPERE_TEST_ODBC_KIT_BAD",
            "Driver={No Such Driver};",
        )],
    }
    .run()
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.records > 0);
}

#[test]
fn a_mapping_with_references_is_refused_rather_than_read_with_empty_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let contract = include_str!("../shipped/view-contract.toml");
    let mapping = format!(
        "{contract}\n[[references]]\nname = \"diplomas\"\nkey = \"code\"\n\
         columns = [\"label\"]\nformat = \"sql\"\nview = \"V_DIPLOMA\"\n"
    );
    let path = dir.path().join("with-references.toml");
    std::fs::write(&path, mapping).unwrap();
    std::env::set_var("CONPERE_TEST_ODBC_REFERENCES", "DSN=unused");
    let toml = format!(
        "[sources.cocktail]\nkind = \"cocktail\"\nconnection_env = \"CONPERE_TEST_ODBC_REFERENCES\"\n\
         mapping = {:?}\n",
        path.display().to_string()
    );
    let source = SourceConfig::from_toml("cocktail", &toml).unwrap();
    let Err(error) = CocktailFactory::new().build(&source) else {
        panic!("a mapping with references was accepted");
    };
    let error = error.to_string();
    assert!(
        error.contains("reference `diplomas`") && error.contains("join it in the view"),
        "{error}"
    );
}
