//! The reference SQL of the view contract for Cocktail's schemas (`sql/postgresql/
//! views.sql`) over a Cocktail-shaped fixture (`sql/fixture/schema.sql`) filled from a
//! generated university, read through the PostgreSQL ODBC driver with the shipped
//! view-contract mapping: the read is exactly what `projection::readable` says the views
//! give back, the site filters (`conpere.parametre`) leave out what they exclude, and an
//! elective EC link reads as not mandatory.

mod common;

use common::{read_checked, sorted, source};
use conpere_cocktail::{fixture, odbc, projection};
use conpere_core::testing::TestDatabase;
use conpere_model::{Edge, Kind, Record, RegistrationStatus};

/// A generated university without results, stored in a Cocktail-shaped database.
async fn cocktail() -> (Vec<Record>, TestDatabase) {
    let records = common::university(81);
    let db = TestDatabase::new().await;
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute(&fixture::script(&records))
        .await
        .unwrap_or_else(|e| panic!("fixture: {e}"));
    drop(client);
    (records, db)
}

/// Everything the default view contract reads from `db`.
async fn read(db: &TestDatabase, variable: &str) -> Vec<Record> {
    let connection = odbc::postgresql_connection_string(
        &db.connection_string,
        Some("SET search_path TO conpere,public;"),
    );
    read_checked(&source(variable, &connection)).await
}

fn count(records: &[Record], kind: Kind) -> usize {
    records.iter().filter(|r| r.kind() == kind).count()
}

#[tokio::test]
async fn the_reference_views_read_back_as_projected() {
    let (records, db) = cocktail().await;
    let read = read(&db, "CONPERE_TEST_ODBC_REFERENCE").await;
    let expected = projection::readable(&records);
    // Every kind is there, and the hard cases that survive the mapping.
    for kind in [
        Kind::Student,
        Kind::Node,
        Kind::Edge,
        Kind::Registration,
        Kind::Enrolment,
    ] {
        assert!(count(&expected, kind) > 0, "no {kind} expected");
    }
    assert!(expected
        .iter()
        .any(|r| matches!(r, Record::Enrolment(e) if e.exempted)));
    let cancelled = records
        .iter()
        .filter(
            |r| matches!(r, Record::Registration(g) if g.status == RegistrationStatus::Cancelled),
        )
        .count();
    assert!(cancelled > 0, "the university has a cancelled registration");
    assert_eq!(
        count(&expected, Kind::Registration) + cancelled,
        count(&records, Kind::Registration),
        "cancelled registrations (RES_CODE Z) are the only ones left out"
    );
    assert_eq!(sorted(read), sorted(expected));
}

#[tokio::test]
async fn the_site_filters_leave_out_what_they_exclude_and_electives_read_as_such() {
    let (records, db) = cocktail().await;
    let expected = projection::readable(&records);
    // The first registration read, excluded by its RES_CODE; and an EC registration with
    // the excluded dispense code, in another registration.
    let Some(Record::Registration(excluded)) =
        expected.iter().find(|r| r.kind() == Kind::Registration)
    else {
        unreachable!("registrations are expected")
    };
    let Some(Record::Enrolment(dispensed)) = expected.iter().find(|r| {
        matches!(r, Record::Enrolment(e) if e.node.starts_with("EC:")
            && (e.year, &e.student, &e.step) != (excluded.year, &excluded.student, &excluded.step))
    }) else {
        unreachable!("element enrolments are expected")
    };
    let client = db.pool.get().await.unwrap();
    let registration = "SELECT i.idipl_numero FROM scolarite.scol_inscription_etudiant i
        JOIN scolarite.scol_formation_annee a ON a.fann_key = i.fann_key
        JOIN scolarite.scol_maquette_parcours p ON p.mpar_key = i.mpar_key
        WHERE a.fann_debut = $1 AND i.etud_numero::text = $2 AND 'PAR:' || p.mpar_code = $3";
    let updated = client
        .execute(
            &format!(
                "UPDATE scolarite.scol_inscription_etudiant SET res_code = 'Z'
                 WHERE idipl_numero IN ({registration})"
            ),
            &[&excluded.year, &excluded.student, &excluded.step],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let updated = client
        .execute(
            &format!(
                "UPDATE scolarite.scol_inscription_ec SET imrec_dispense = 14
                 WHERE idipl_numero IN ({registration})
                   AND mec_key IN (SELECT mec_key FROM scolarite.scol_maquette_ec
                                   WHERE 'EC:' || mec_code = $4)"
            ),
            &[
                &dispensed.year,
                &dispensed.student,
                &dispensed.step,
                &dispensed.node,
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    // And an elective EC (MTEC_CODE 'C'): the generated university has none.
    let Some(Record::Edge(elective)) = expected
        .iter()
        .find(|r| matches!(r, Record::Edge(e) if e.child.starts_with("EC:")))
    else {
        unreachable!("unit → element edges are expected")
    };
    let updated = client
        .execute(
            "UPDATE scolarite.scol_maquette_repartition_ec r SET mtec_code = 'C'
             FROM scolarite.scol_formation_annee a, scolarite.scol_maquette_ue u,
                  scolarite.scol_maquette_ec ec
             WHERE a.fann_key = r.fann_key AND u.mue_key = r.mue_key AND ec.mec_key = r.mec_key
               AND a.fann_debut = $1 AND 'UE:' || u.mue_code = $2 AND 'EC:' || ec.mec_code = $3",
            &[&elective.year, &elective.parent, &elective.child],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    drop(client);

    let read = read(&db, "CONPERE_TEST_ODBC_FILTERS").await;
    let in_excluded = |r: &Record| match r {
        Record::Registration(g) => {
            (g.year, &g.student, &g.step) == (excluded.year, &excluded.student, &excluded.step)
        }
        Record::Enrolment(e) => {
            (e.year, &e.student, &e.step) == (excluded.year, &excluded.student, &excluded.step)
        }
        _ => false,
    };
    assert!(!read.iter().any(in_excluded), "RES_CODE Z is read");
    assert!(
        !read
            .iter()
            .any(|r| matches!(r, Record::Enrolment(e) if e == dispensed)),
        "the excluded dispense is read"
    );
    let rest = expected
        .iter()
        .filter(|r| !in_excluded(r) && !matches!(r, Record::Enrolment(e) if e == dispensed))
        .map(|r| match r {
            Record::Edge(e) if e == elective => Record::Edge(Edge {
                mandatory: false,
                ..e.clone()
            }),
            other => other.clone(),
        });
    let expected_enrolments = expected
        .iter()
        .filter(|r| matches!(r, Record::Enrolment(_)) && in_excluded(r))
        .count();
    assert!(
        expected_enrolments > 0,
        "the excluded registration had enrolments"
    );
    assert_eq!(sorted(read), sorted(rest));
}
