//! What the SQL-source tests share: the university the views serve, a source reading
//! them, a full read, and records as comparable text.

// Each test file uses some of these helpers, not all.
#![allow(dead_code)]

use conpere_cocktail::CocktailFactory;
use conpere_connectors::conformance::read_all;
use conpere_connectors::{ConnectorFactory, ReadRequest, SourceConfig};
use conpere_model::Mode;
use conpere_model::{export_order, Item, Kind, Record};
use conpere_synth::{SynthConfig, University};

/// A generated university without results (no view carries them).
pub fn university(seed: u64) -> Vec<Record> {
    University::generate(SynthConfig::new(seed, 30))
        .records()
        .filter(|r| r.kind() != Kind::Result)
        .collect()
}

/// A SQL source whose ODBC connection string is in the environment variable `variable`.
pub fn source(variable: &str, connection: &str) -> SourceConfig {
    std::env::set_var(variable, connection);
    let toml =
        format!("[sources.cocktail]\nkind = \"cocktail\"\nconnection_env = \"{variable}\"\n");
    SourceConfig::from_toml("cocktail", &toml).unwrap()
}

/// A full read in batches of 100.
pub fn full() -> ReadRequest {
    ReadRequest {
        mode: Mode::Full,
        years: None,
        cursor: None,
        batch_size: 100,
    }
}

/// What `source` reads in full, after its `check` passed: records only.
pub async fn read_checked(source: &SourceConfig) -> Vec<Record> {
    let connector = CocktailFactory::new().build(source).unwrap();
    connector.check().await.unwrap_or_else(|e| panic!("{e}"));
    let (items, _) = read_all(connector.as_ref(), full()).await.unwrap();
    items
        .into_iter()
        .map(|item| match item {
            Item::Record(r) => r,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Records as sorted comparable text (special statuses sorted, as the engine keeps them).
pub fn sorted(records: impl IntoIterator<Item = Record>) -> Vec<String> {
    let mut records: Vec<Record> = records
        .into_iter()
        .map(|mut r| {
            if let Record::Registration(g) = &mut r {
                g.special_statuses.sort();
            }
            r
        })
        .collect();
    records.sort_by(export_order);
    records.iter().map(|r| format!("{r:?}")).collect()
}
