//! The workspace's dependency rule, read from the crates' manifests, so that a change
//! which breaks it fails here rather than in a review.
//!
//! * An adapter produces batches of canonical records; only the engine writes to the
//!   store. So no adapter depends on `conpere-core` (the store): they depend on
//!   `conpere-model`. (A test may: a dev-dependency is not the adapter.)
//! * `core` knows no SIS and no HTTP; `contracts` knows no HTTP and no SIS; `web` knows no
//!   SIS.

use std::collections::BTreeSet;
use std::path::Path;

/// The names of a crate's `[dependencies]` (not its dev-dependencies).
fn dependencies(krate: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let manifest: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|table| table.keys().cloned().collect())
        .unwrap_or_default()
}

/// The crates among `forbidden` that `krate` depends on.
fn reaches(krate: &str, forbidden: &[&str]) -> Vec<String> {
    let dependencies = dependencies(krate);
    forbidden
        .iter()
        .filter(|name| dependencies.contains(**name))
        .map(|name| name.to_string())
        .collect()
}

const ADAPTERS: [&str; 5] = ["connectors", "apogee", "pegase", "cocktail", "mappings"];
const SIS_CRATES: [&str; 5] = [
    "conpere-connectors",
    "conpere-apogee",
    "conpere-pegase",
    "conpere-cocktail",
    "conpere-mappings",
];
const HTTP_CRATES: [&str; 4] = ["axum", "hyper", "reqwest", "conpere-web"];

#[test]
fn no_adapter_reaches_the_store() {
    for adapter in ADAPTERS {
        assert!(
            dependencies(adapter).contains("conpere-model"),
            "{adapter} should take the canonical model from conpere-model"
        );
        let reached = reaches(
            adapter,
            &[
                "conpere-core",
                "tokio-postgres",
                "deadpool-postgres",
                "refinery",
            ],
        );
        assert!(
            reached.is_empty(),
            "the adapter crate `{adapter}` depends on {reached:?}: an adapter hands batches \
             to the engine and never reaches the store (use conpere-model)"
        );
    }
}

#[test]
fn the_model_and_the_generator_depend_on_no_other_part() {
    for krate in ["model", "synth"] {
        let reached = reaches(
            krate,
            &[&["conpere-core"], &SIS_CRATES[..], &HTTP_CRATES[..]].concat(),
        );
        assert!(reached.is_empty(), "{krate} depends on {reached:?}");
    }
}

#[test]
fn the_store_knows_no_sis_and_no_http() {
    for krate in ["core", "contracts"] {
        let reached = reaches(krate, &[&SIS_CRATES[..], &HTTP_CRATES[..]].concat());
        assert!(reached.is_empty(), "{krate} depends on {reached:?}");
    }
    let reached = reaches("web", &SIS_CRATES);
    assert!(reached.is_empty(), "web depends on {reached:?}");
}
