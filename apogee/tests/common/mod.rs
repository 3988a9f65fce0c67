//! What the Apogée tests share: the published contract and validation against it.
//!
//! Needs the published contract (`shared/specs/apogee/wsdl`, or `CONPERE_APOGEE_SPECS`)
//! and `xmllint` (Debian/Ubuntu: `libxml2-utils`); both missing is a failure, not a skip.

#![allow(dead_code)] // each test file uses part of it

use conpere_apogee::simulator::default_specs_dir;
use conpere_connectors::http::Response;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The published contract's directory.
pub fn specs() -> PathBuf {
    default_specs_dir().expect(
        "the published Apogée contract is needed: check out shared/specs next to the \
         workspace or set CONPERE_APOGEE_SPECS",
    )
}

// ---------------------------------------------------------------------------------------

/// Validates Body contents against the schema of a service's abstract WSDL.
///
/// The abstract WSDL's `<wsdl:types>` holds an `<xsd:schema>` declaring the wrapper
/// elements and importing the DTO schemas (`../schemas/…`); it uses prefixes declared on
/// `<wsdl:definitions>`. The driver schema is that `<schema>` element with those
/// declarations copied onto it and the imports made absolute.
pub struct Validator {
    dir: tempfile::TempDir,
    specs: PathBuf,
    /// Instances to validate, per service, as (file, what it is).
    pending: BTreeMap<String, Vec<(PathBuf, String)>>,
}

impl Validator {
    pub fn new() -> Validator {
        Validator {
            dir: tempfile::tempdir().expect("temp dir"),
            specs: specs(),
            pending: BTreeMap::new(),
        }
    }

    /// Queues the Body content (response wrapper or fault detail) of `response`.
    pub fn add(&mut self, service: &str, what: &str, response: &Response) {
        self.add_document(service, what, &response.body);
    }

    /// Queues the Body content (response wrapper or fault detail) of a SOAP document.
    pub fn add_document(&mut self, service: &str, what: &str, document: &[u8]) {
        let instance = body_element(document).unwrap_or_else(|| {
            panic!(
                "{what}: no element in the SOAP Body: {}",
                String::from_utf8_lossy(document)
            )
        });
        let path = self
            .dir
            .path()
            .join(format!("instance-{}.xml", self.count()));
        std::fs::write(&path, instance).expect("write instance");
        self.pending
            .entry(service.to_owned())
            .or_default()
            .push((path, what.to_owned()));
    }

    fn count(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Runs xmllint on everything queued; panics with its report on any error.
    pub fn check(&mut self) {
        for (service, instances) in std::mem::take(&mut self.pending) {
            let schema = self.driver_schema(&service);
            let output = Command::new("xmllint")
                .arg("--noout")
                .arg("--nonet")
                .arg("--schema")
                .arg(&schema)
                .args(instances.iter().map(|(path, _)| path))
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "xmllint is required to check the simulator against the XSDs \
                         (Debian/Ubuntu: apt-get install libxml2-utils): {e}"
                    )
                });
            let report = String::from_utf8_lossy(&output.stderr);
            let named: Vec<String> = instances
                .iter()
                .map(|(path, what)| format!("{} = {what}", path.display()))
                .collect();
            assert!(
                output.status.success() && !report.contains("error"),
                "{service}: responses do not validate against the published XSDs:\n{report}\n{}",
                named.join("\n")
            );
            assert_eq!(
                report.matches(" validates").count(),
                instances.len(),
                "{report}"
            );
        }
    }

    fn driver_schema(&self, service: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{service}.xsd"));
        if !path.exists() {
            let wsdl_path = self.specs.join("abstract").join(format!("{service}.wsdl"));
            let bytes = std::fs::read(&wsdl_path).expect("abstract WSDL");
            let (wsdl, _, _) = encoding_rs::ISO_8859_15.decode(&bytes);
            let schema = driver_schema_text(&wsdl, &self.specs.join("schemas"));
            std::fs::write(&path, schema).expect("write driver schema");
        }
        path
    }
}

/// The `<schema>` of the WSDL's types, standalone (see [`Validator`]).
fn driver_schema_text(wsdl: &str, schemas: &Path) -> String {
    let definitions = between(wsdl, "<wsdl:definitions", ">").expect("wsdl:definitions");
    let declarations: Vec<&str> = definitions
        .split_whitespace()
        .filter(|attribute| attribute.starts_with("xmlns:"))
        .collect();
    let start = wsdl.find("<schema").expect("a schema in wsdl:types");
    let end = wsdl.find("</schema>").expect("</schema>") + "</schema>".len();
    let schema = &wsdl[start..end];
    let schema = schema.replacen("<schema", &format!("<schema {}", declarations.join(" ")), 1);
    let schema = schema.replace(
        "schemaLocation=\"../schemas/",
        &format!("schemaLocation=\"{}/", schemas.display()),
    );
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{schema}")
}

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = from + text[from..].find(end)?;
    Some(&text[from..to])
}

/// The element inside the SOAP Body (or inside a Fault's `detail`), as a standalone
/// document in the body's own encoding. Works on bytes: the markers are ASCII.
fn body_element(body: &[u8]) -> Option<Vec<u8>> {
    let (open, close): (&[u8], &[u8]) = if contains(body, b"<soapenv:Fault>") {
        (b"<detail>", b"</detail>")
    } else {
        (b"<soapenv:Body>", b"</soapenv:Body>")
    };
    let start = find(body, open)? + open.len();
    let end = find(body, close)?;
    let declaration_end = find(body, b"?>")? + 2;
    let mut document = body[..declaration_end].to_vec();
    document.extend_from_slice(body.get(start..end)?);
    Some(document)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}
