//! A Cocktail-shaped database for tests: the minimal GRHUM + SCOLARITE schema of
//! `sql/fixture/schema.sql`, the reference views of `sql/postgresql/views.sql`, and the
//! rows that store canonical records (of a generated university, say) the way Cocktail
//! would — the inverse of the views' mapping, for what the views can carry
//! ([`crate::projection`] says exactly what comes back).
//!
//! [`script`] gives it all as one SQL script, to run on an empty PostgreSQL database with
//! `batch_execute` (this crate does not depend on a PostgreSQL client):
//!
//! ```ignore
//! client.batch_execute(&conpere_cocktail::fixture::script(&records)).await?;
//! ```
//!
//! Storing choices: ETUD_NUMERO is the student number as a number; NOM_PATRONYMIQUE the
//! family name and NOM_USUEL the usual name (or the family name); a student account
//! (CPT_VLAN `E`) when the student has a login or an e-mail; one SCOL_FORMATION_ANNEE per
//! year (FANN_KEY = year − 1990, FANN_DEBUT = year); one diploma and one specialisation
//! per diploma code; a parcours per step and year; cancelled registrations with
//! RES_CODE `Z` (excluded by the site filters), the others without RES_CODE,
//! IDIPL_TYPE_INSCRIPTION 1 (main) or 2; an exempted element with IMREC_DISPENSE 1.

use crate::projection::Carried;
use conpere_model::{Kind, NodeKind, Record, RegistrationStatus};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

/// The fixture schema (GRHUM, SCOLARITE, and `conpere.parametre` with the site filters).
pub const SCHEMA: &str = include_str!("../sql/fixture/schema.sql");

/// The reference views (PostgreSQL).
pub const VIEWS: &str = include_str!("../sql/postgresql/views.sql");

/// FANN_KEY of a year (deliberately not the year: the views must read FANN_DEBUT).
pub fn fann_key(year: i32) -> i32 {
    year - 1990
}

/// A SQL string literal (standard_conforming_strings, PostgreSQL's default).
fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn opt_text(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".to_string(), text)
}

fn opt_number(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

/// Rows of one table, written as one INSERT per 500 rows.
struct Table {
    name: &'static str,
    columns: &'static str,
    rows: Vec<String>,
}

impl Table {
    fn new(name: &'static str, columns: &'static str) -> Self {
        Table {
            name,
            columns,
            rows: Vec::new(),
        }
    }

    fn write(&self, sql: &mut String) {
        for chunk in self.rows.chunks(500) {
            let _ = writeln!(
                sql,
                "INSERT INTO {} ({}) VALUES\n  {};",
                self.name,
                self.columns,
                chunk.join(",\n  ")
            );
        }
    }
}

/// The whole fixture: schema, views, then the rows storing `records` (results and what
/// the views cannot carry are left out).
///
/// # Panics
///
/// On a student number that is not a number (a Cocktail ETUD_NUMERO is one).
pub fn script(records: &[Record]) -> String {
    let carried = Carried::of(records);
    let mut individus = Table::new(
        "grhum.individu_ulr",
        "no_individu, nom_usuel, nom_patronymique, prenom, d_naissance",
    );
    let mut etudiants = Table::new("grhum.etudiant", "etud_numero, no_individu, etud_code_ine");
    let mut comptes = Table::new(
        "grhum.compte",
        "no_individu, cpt_login, cpt_email, cpt_vlan",
    );
    let mut annees = Table::new("scolarite.scol_formation_annee", "fann_key, fann_debut");
    let mut diplomes = Table::new(
        "scolarite.scol_formation_diplome",
        "fdip_code, fdip_libelle",
    );
    let mut specialisations = Table::new(
        "scolarite.scol_formation_specialisation",
        "fspn_key, fdip_code, fspn_libelle",
    );
    let mut parcours = Table::new(
        "scolarite.scol_maquette_parcours",
        "mpar_key, fspn_key, mpar_code, mpar_libelle, fann_key",
    );
    let mut semestres = Table::new(
        "scolarite.scol_maquette_semestre",
        "msem_key, msem_code, msem_libelle, fann_key",
    );
    let mut ues = Table::new(
        "scolarite.scol_maquette_ue",
        "mue_key, mue_code, mue_libelle, mue_points, fann_key",
    );
    let mut ecs = Table::new(
        "scolarite.scol_maquette_ec",
        "mec_key, mec_code, mec_libelle, mec_points, fann_key",
    );
    let mut rep_sem = Table::new(
        "scolarite.scol_maquette_repartition_sem",
        "mpar_key, msem_key, fann_key, msem_ordre",
    );
    let mut rep_ue = Table::new(
        "scolarite.scol_maquette_repartition_ue",
        "msem_key, mue_key, fann_key, mue_ordre",
    );
    let mut rep_ec = Table::new(
        "scolarite.scol_maquette_repartition_ec",
        "mue_key, mec_key, fann_key, mec_ordre, mtec_code",
    );
    let mut inscriptions = Table::new(
        "scolarite.scol_inscription_etudiant",
        "idipl_numero, fann_key, etud_numero, no_individu, fspn_key, mpar_key, \
         idipl_type_inscription, res_code",
    );
    let mut insc_sem = Table::new(
        "scolarite.scol_inscription_semestre",
        "idipl_numero, msem_key, fann_key",
    );
    let mut insc_ec = Table::new(
        "scolarite.scol_inscription_ec",
        "idipl_numero, mec_key, fann_key, imrec_dispense",
    );

    // Keys: every table's own numbering, from 1.
    let mut years = BTreeSet::new();
    let mut fspn: HashMap<&str, i32> = HashMap::new();
    let mut node_key: HashMap<(i32, &str), i32> = HashMap::new();
    let mut individu: HashMap<&str, (i32, i32)> = HashMap::new();
    let mut idipl: HashMap<(i32, &str, &str), i32> = HashMap::new();

    for r in records {
        if let Record::Node(n) = r {
            let Some((kind, code)) = carried.keeps(n.year, &n.node) else {
                continue;
            };
            years.insert(n.year);
            let key = node_key.len() as i32 + 1;
            node_key.insert((n.year, n.node.as_str()), key);
            let fann = fann_key(n.year);
            let row = match kind {
                NodeKind::Step => {
                    let diploma = carried.step_diploma[&(n.year, n.node.as_str())];
                    let (_, dip_code) = carried.nodes[&(n.year, diploma)];
                    let next = fspn.len() as i32 + 1;
                    let spec = *fspn.entry(dip_code).or_insert_with(|| {
                        let label = carried.diploma_label[dip_code];
                        diplomes
                            .rows
                            .push(format!("({}, {})", text(dip_code), text(label)));
                        specialisations.rows.push(format!(
                            "({next}, {}, {})",
                            text(dip_code),
                            text(label)
                        ));
                        next
                    });
                    parcours.rows.push(format!(
                        "({key}, {spec}, {}, {}, {fann})",
                        text(code),
                        text(&n.label)
                    ));
                    continue;
                }
                NodeKind::Semester => &mut semestres,
                NodeKind::Unit => &mut ues,
                NodeKind::Element => &mut ecs,
                NodeKind::Diploma | NodeKind::Choice | NodeKind::Other => continue,
            };
            let points = if kind == NodeKind::Semester {
                String::new()
            } else {
                format!("{}, ", opt_number(n.ects))
            };
            row.rows.push(format!(
                "({key}, {}, {}, {points}{fann})",
                text(code),
                text(&n.label)
            ));
        }
    }

    // Students, then edges, registrations and enrolments (each needs the keys before it).
    let by_kind = [
        Kind::Student,
        Kind::Edge,
        Kind::Registration,
        Kind::Enrolment,
    ]
    .into_iter()
    .flat_map(|kind| records.iter().filter(move |r| r.kind() == kind));
    for r in by_kind {
        match r {
            Record::Student(s) => {
                let number: i32 = s.student.parse().unwrap_or_else(|_| {
                    panic!("fixture: student number {} is not a number", s.student)
                });
                let no = individu.len() as i32 + 1;
                individu.insert(s.student.as_str(), (no, number));
                individus.rows.push(format!(
                    "({no}, {}, {}, {}, {})",
                    text(s.usual_name.as_deref().unwrap_or(&s.family_name)),
                    text(&s.family_name),
                    text(&s.given_name),
                    opt_text(s.birth_date.map(|d| d.to_string()).as_deref())
                ));
                etudiants
                    .rows
                    .push(format!("({number}, {no}, {})", opt_text(s.ine.as_deref())));
                if s.login.is_some() || s.email.is_some() {
                    comptes.rows.push(format!(
                        "({no}, {}, {}, 'E')",
                        opt_text(s.login.as_deref()),
                        opt_text(s.email.as_deref())
                    ));
                }
            }
            Record::Edge(e) => {
                let Some((parent, _)) = carried.link(e) else {
                    continue;
                };
                let p = node_key[&(e.year, e.parent.as_str())];
                let c = node_key[&(e.year, e.child.as_str())];
                let (fann, ordre) = (fann_key(e.year), opt_number(e.position));
                match parent {
                    NodeKind::Step => rep_sem.rows.push(format!("({p}, {c}, {fann}, {ordre})")),
                    NodeKind::Semester => rep_ue.rows.push(format!("({p}, {c}, {fann}, {ordre})")),
                    _ => rep_ec.rows.push(format!(
                        "({p}, {c}, {fann}, {ordre}, '{}')",
                        if e.mandatory { 'O' } else { 'C' }
                    )),
                }
            }
            Record::Registration(g) => {
                let Some(&mpar) = node_key.get(&(g.year, g.step.as_str())) else {
                    continue;
                };
                let diploma = carried.step_diploma[&(g.year, g.step.as_str())];
                let (_, dip_code) = carried.nodes[&(g.year, diploma)];
                let (no, number) = individu[g.student.as_str()];
                let numero = idipl.len() as i32 + 1;
                idipl.insert((g.year, g.student.as_str(), g.step.as_str()), numero);
                let res_code = if g.status == RegistrationStatus::Cancelled {
                    "'Z'"
                } else {
                    "NULL"
                };
                inscriptions.rows.push(format!(
                    "({numero}, {}, {number}, {no}, {}, {mpar}, {}, {res_code})",
                    fann_key(g.year),
                    fspn[dip_code],
                    if g.main { 1 } else { 2 }
                ));
            }
            Record::Enrolment(e) => {
                let Some(&numero) = idipl.get(&(e.year, e.student.as_str(), e.step.as_str()))
                else {
                    continue;
                };
                let Some((kind, _)) = carried.keeps(e.year, &e.node) else {
                    continue;
                };
                let key = node_key[&(e.year, e.node.as_str())];
                let fann = fann_key(e.year);
                match kind {
                    NodeKind::Semester => insc_sem.rows.push(format!("({numero}, {key}, {fann})")),
                    NodeKind::Element => insc_ec.rows.push(format!(
                        "({numero}, {key}, {fann}, {})",
                        if e.exempted { "1" } else { "NULL" }
                    )),
                    _ => {}
                }
            }
            Record::Node(_) | Record::Result(_) => {}
        }
    }
    for year in &years {
        annees.rows.push(format!("({}, {year})", fann_key(*year)));
    }

    let mut sql = format!("{SCHEMA}\n{VIEWS}\n");
    for table in [
        &individus,
        &etudiants,
        &comptes,
        &annees,
        &diplomes,
        &specialisations,
        &parcours,
        &semestres,
        &ues,
        &ecs,
        &rep_sem,
        &rep_ue,
        &rep_ec,
        &inscriptions,
        &insc_sem,
        &insc_ec,
    ] {
        table.write(&mut sql);
    }
    sql
}
