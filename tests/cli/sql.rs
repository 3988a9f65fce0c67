//! The SQL-view source through the binary: a Cocktail-shaped database on the test server
//! with the reference views, read through the PostgreSQL ODBC driver by `conpere sync`;
//! `conpere export` equals what the views carry of the generated university.

use super::{assert_code, Site};
use conpere_cocktail::{fixture, odbc, projection};
use conpere_core::model::{Kind, Record};
use conpere_tests::{assert_same_export, export_text};

const CONNECTION_VARIABLE: &str = "CONPERE_TEST_COCKTAIL_ODBC";

#[tokio::test]
async fn cocktail_sync_then_export_equals_what_the_reference_views_carry() {
    let site = Site::new().await;
    let records: Vec<Record> = conpere_tests::university(91, 30)
        .into_iter()
        .filter(|r| r.kind() != Kind::Result)
        .collect();
    let client = site.db.pool.get().await.unwrap();
    client
        .batch_execute(&fixture::script(&records))
        .await
        .unwrap();
    drop(client);
    let config = format!(
        "[database]\nurl = {:?}\n\n[sources.cocktail]\nkind = \"cocktail\"\n\
         connection_env = \"{CONNECTION_VARIABLE}\"\n",
        site.db.connection_string
    );
    std::fs::write(site.config(), config).unwrap();
    let run = |args: &[&str]| {
        site.command(args)
            .env(
                CONNECTION_VARIABLE,
                odbc::postgresql_connection_string(
                    &site.db.connection_string,
                    Some("SET search_path TO conpere,public;"),
                ),
            )
            .output()
            .unwrap()
    };
    assert_code(&run(&["check", "--source", "cocktail"]), 0);
    assert_code(&run(&["sync", "--source", "cocktail"]), 0);
    assert_same_export(
        &site.export_of("cocktail"),
        &export_text("cocktail", &projection::readable(&records)),
        "cocktail export",
    );
}
