//! The reader against the published contract, not against this crate's simulator of it:
//! SOAP responses written by hand from the WSDL/XSD of Apogée WS 6.50.73
//! (`tests/fixtures`, every field of each DTO in the XSD's order, nil where the example
//! has no value), each validated against the published XSDs with `xmllint`, then read by
//! the mapping as the README says. The simulator shares the reader's assumptions; these
//! files do not.

mod common;

use common::Validator;
use conpere_apogee::codes::{CodeTables, StepCode, UnmappedCode};
use conpere_apogee::mapping::{self, StudentYear};
use conpere_connectors::soap::{self, SoapResponse};
use conpere_model::Registration;
use std::path::PathBuf;

/// (file, service, operation) of each hand-written response.
const FIXTURES: [(&str, &str, &str); 3] = [
    (
        "recupererInfosAdmEtu_v4.xml",
        "EtudiantMetier",
        "recupererInfosAdmEtu_v4",
    ),
    (
        "recupererIAEtapes_v3.xml",
        "AdministratifMetier",
        "recupererIAEtapes_v3",
    ),
    (
        "recupererIAAnnuelles_v2.xml",
        "AdministratifMetier",
        "recupererIAAnnuelles_v2",
    ),
];

fn bytes(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The parsed response of a fixture, decoded in the encoding it declares.
fn response(file: &str) -> SoapResponse {
    let (_, _, operation) = FIXTURES.iter().find(|(f, ..)| *f == file).unwrap();
    soap::parse_response(&bytes(file), None, operation).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_hand_written_responses_follow_the_published_xsds() {
    let mut validator = Validator::new();
    for (file, service, _) in FIXTURES {
        validator.add_document(service, file, &bytes(file));
    }
    validator.check();
}

#[test]
fn a_birth_date_sent_as_a_utc_instant_is_its_date_in_the_institutions_zone() {
    let infos = response("recupererInfosAdmEtu_v4.xml");
    let paris = chrono_tz::Europe::Paris;
    let person = mapping::person("22012345", Some(&infos.wrapper), None, paris).unwrap();
    // `2004-06-30T22:00:00.000Z`: midnight on 1 July in Paris, as Axis writes it.
    let birth = person.student.birth_date.map(|d| d.to_string());
    assert_eq!(birth.as_deref(), Some("2004-07-01"));
    assert_eq!(person.student.family_name, "BOURDIEU-LŒUILLET");
    assert_eq!(person.student.given_name, "Anaïs");
    assert_eq!(person.student.ine.as_deref(), Some("1234567890A"));
    assert_eq!(person.student.usual_name, None, "nil");
    assert!(!person.disability, "handicap is nil");
}

#[test]
fn statuses_come_from_the_code_tables_only() {
    let steps = response("recupererIAEtapes_v3.xml");
    let annual = response("recupererIAAnnuelles_v2.xml");
    let tables = CodeTables::default();
    let read = |year| {
        let who = StudentYear {
            year,
            student: "22012345",
            disability: false,
        };
        mapping::registrations(who, Some(&steps.wrapper), Some(&annual.wrapper), &tables)
    };
    let statuses = |registrations: &[(StepCode, Registration)]| -> Vec<Vec<String>> {
        (registrations.iter())
            .map(|(_, r)| r.special_statuses.clone())
            .collect()
    };

    // 2023: the ordinary profile `NO` and a work quota `0` (ISO-8859-1 labels): nothing,
    // on both registrations of the double licence.
    let plain = read(2023);
    assert_eq!(plain.registrations.len(), 2);
    assert_eq!(
        statuses(&plain.registrations),
        [Vec::<String>::new(), Vec::new()]
    );
    assert!(plain.unmapped.is_empty());
    let mains: Vec<bool> = plain.registrations.iter().map(|(_, r)| r.main).collect();
    assert_eq!(
        mains,
        [true, false],
        "the second registration is told by `main`"
    );

    // 2024: work quota `1` is employed; the profile `ECH` is in no table: no status,
    // counted.
    let employed = read(2024);
    assert_eq!(
        statuses(&employed.registrations),
        [["employed"], ["employed"]]
    );
    let unmapped = UnmappedCode {
        table: "profiles",
        code: "ECH".into(),
    };
    assert_eq!(employed.unmapped, [unmapped]);
}
