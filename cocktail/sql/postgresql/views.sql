-- conpere view contract over Cocktail's schemas: reference SQL (PostgreSQL).
--
-- The five views conpere-cocktail reads by default (shipped/view-contract.toml): one per
-- canonical record kind, columns named as the canonical fields. They read GRHUM (people)
-- and SCOLARITE (LMD structure and registrations) and live in a schema `conpere` owned
-- by the DBA; conpere's read-only account only needs SELECT on them.
--
-- Installing (a DBA):
--   1. Create the schema `conpere` and the table `conpere.parametre` (below), owned by an
--      account that can read GRHUM and SCOLARITE; grant conpere's account SELECT on the
--      five views only.
--   2. Adjust the site filters by rows of `conpere.parametre`, not by editing the SQL:
--        res_code_exclu          a SCOL_INSCRIPTION_ETUDIANT.RES_CODE whose registrations
--                                (and their semester and EC registrations) are left out;
--                                one row per code ('Z', often also 'D', 'E', 'H', '1');
--        type_inscription_exclu  an IDIPL_TYPE_INSCRIPTION left out likewise ('3');
--        dispense_exclue         an IMREC_DISPENSE whose EC registrations are left out
--                                ('14'); any other non-null dispense reads as `exempted`.
--   3. Run this file, then `conpere check --source cocktail`. The views are unqualified in
--      the shipped mapping: either give conpere's account `conpere` first in its search
--      path (PostgreSQL: ConnSettings=SET search_path TO conpere,public; in the ODBC
--      connection string; Oracle: a synonym per view, or ALTER SESSION SET CURRENT_SCHEMA)
--      or write a mapping naming `CONPERE.V_CONPERE_STUDENT`…
--   4. Adjust to the site where it differs (a site that fills NOM_PATRONYMIQUE only for
--      married names, several student accounts per person, extra registration types…).
--
-- Oracle (Cocktail runs on Oracle): the same SQL, with these differences:
--   * `||` concatenates the same way, but '' IS NULL in Oracle: special_statuses is then
--     NULL, which conpere reads as no special status (same as '');
--   * TO_CHAR(d_naissance, 'YYYY-MM-DD') is the same (an Oracle DATE carries a time of
--     day: the format drops it); CAST(x AS VARCHAR(10)) is the same (or TO_CHAR(x));
--   * no `CREATE SCHEMA`/`IF NOT EXISTS`: create the CONPERE user and its table once, and
--     use `CREATE OR REPLACE VIEW` (as here);
--   * `false`/`true` are not SQL values before Oracle 23: write 0/1 (conpere reads 1/0,
--     O/N and true/false alike) — replace `true` by 1 and `false` by 0 in the views;
--   * table names may need the owner (GRHUM.INDIVIDU_ULR, SCOLARITE.SCOL_…), as here;
--   * `text` (conpere.parametre) is VARCHAR2(100) in Oracle; column aliases come back in
--     upper case, which conpere matches case-insensitively;
--   * the site-filter comparisons go through text (CAST(… AS VARCHAR(10))) on purpose:
--     RES_CODE and the parameter values are text, the other two codes are NUMBER.
--
-- Mapping (node ids are stable, prefixed by the Cocktail object they come from; the codes
-- are the Cocktail codes, unique within a year):
--   diploma   'DIP:' || FDIP_CODE  (SCOL_FORMATION_DIPLOME; one per year it has a parcours)
--   step      'PAR:' || MPAR_CODE  (SCOL_MAQUETTE_PARCOURS: the parcours of a year, the unit
--                                    of administrative registration)
--   semester  'SEM:' || MSEM_CODE  (SCOL_MAQUETTE_SEMESTRE)
--   unit      'UE:'  || MUE_CODE   (SCOL_MAQUETTE_UE, ects = MUE_POINTS)
--   element   'EC:'  || MEC_CODE   (SCOL_MAQUETTE_EC, ects = MEC_POINTS)
--   year      SCOL_FORMATION_ANNEE.FANN_DEBUT (the start year), never FANN_KEY
--   student   ETUD_NUMERO as text (a NUMBER: no leading zero)
-- Edges: diploma → step (from the parcours' specialisation; mandatory, no position),
-- step → semester (REPARTITION_SEM, position MSEM_ORDRE), semester → unit
-- (REPARTITION_UE, position MUE_ORDRE), unit → element (REPARTITION_EC, position
-- MEC_ORDRE, mandatory unless MTEC_CODE = 'C'); all mandatory but electives, no choice
-- ranges (Cocktail has no choice-list object: an elective EC is a 'C' link).
-- Registrations: one per SCOL_INSCRIPTION_ETUDIANT row not excluded by the site filters:
-- status 'active', regime 'other', main true, no special statuses (Cocktail keeps régime
-- and statuses in GARNUCHE: not read by this reference version).
-- Enrolments: the semester registrations (SCOL_INSCRIPTION_SEMESTRE) and the EC
-- registrations (SCOL_INSCRIPTION_EC) of those registrations, step = the registration's
-- parcours, via null, carried_over false, exempted = a dispense code (not the excluded
-- one) is set. UEs have no registration of their own in SCOLARITE: none are read.

CREATE SCHEMA IF NOT EXISTS conpere;

CREATE TABLE IF NOT EXISTS conpere.parametre (
    param_key text NOT NULL,
    param_value text NOT NULL
);

-- Students: ETUDIANT × INDIVIDU_ULR, with the student account (CPT_VLAN = 'E') if any.
CREATE OR REPLACE VIEW conpere.v_conpere_student AS
SELECT CAST(e.etud_numero AS VARCHAR(20)) AS student,
       e.etud_code_ine AS ine,
       COALESCE(i.nom_patronymique, i.nom_usuel) AS family_name,
       CASE WHEN i.nom_patronymique IS NOT NULL AND i.nom_usuel <> i.nom_patronymique
            THEN i.nom_usuel END AS usual_name,
       i.prenom AS given_name,
       TO_CHAR(i.d_naissance, 'YYYY-MM-DD') AS birth_date,
       c.cpt_email AS email,
       c.cpt_login AS login
FROM grhum.etudiant e
JOIN grhum.individu_ulr i ON i.no_individu = e.no_individu
LEFT JOIN (
    -- One student account per person (the smallest, if a site has several).
    SELECT no_individu, MIN(cpt_login) AS cpt_login, MIN(cpt_email) AS cpt_email
    FROM grhum.compte
    WHERE cpt_vlan = 'E'
    GROUP BY no_individu
) c ON c.no_individu = e.no_individu;

-- Nodes: diplomas (for each year one of their parcours exists), parcours, semesters,
-- UEs and ECs of every year.
CREATE OR REPLACE VIEW conpere.v_conpere_node AS
SELECT DISTINCT a.fann_debut AS year, 'DIP:' || d.fdip_code AS node, 'diploma' AS kind,
       d.fdip_code AS code, CAST(NULL AS VARCHAR(20)) AS version, d.fdip_libelle AS label,
       CAST(NULL AS NUMERIC) AS ects, CAST(NULL AS VARCHAR(20)) AS period
FROM scolarite.scol_maquette_parcours p
JOIN scolarite.scol_formation_annee a ON a.fann_key = p.fann_key
JOIN scolarite.scol_formation_specialisation s ON s.fspn_key = p.fspn_key
JOIN scolarite.scol_formation_diplome d ON d.fdip_code = s.fdip_code
UNION ALL
SELECT a.fann_debut, 'PAR:' || p.mpar_code, 'step', p.mpar_code, NULL, p.mpar_libelle,
       NULL, NULL
FROM scolarite.scol_maquette_parcours p
JOIN scolarite.scol_formation_annee a ON a.fann_key = p.fann_key
UNION ALL
SELECT a.fann_debut, 'SEM:' || m.msem_code, 'semester', m.msem_code, NULL, m.msem_libelle,
       NULL, NULL
FROM scolarite.scol_maquette_semestre m
JOIN scolarite.scol_formation_annee a ON a.fann_key = m.fann_key
UNION ALL
SELECT a.fann_debut, 'UE:' || u.mue_code, 'unit', u.mue_code, NULL, u.mue_libelle,
       u.mue_points, NULL
FROM scolarite.scol_maquette_ue u
JOIN scolarite.scol_formation_annee a ON a.fann_key = u.fann_key
UNION ALL
SELECT a.fann_debut, 'EC:' || ec.mec_code, 'element', ec.mec_code, NULL, ec.mec_libelle,
       ec.mec_points, NULL
FROM scolarite.scol_maquette_ec ec
JOIN scolarite.scol_formation_annee a ON a.fann_key = ec.fann_key;

-- Edges: the parcours' diploma, then the three link tables.
CREATE OR REPLACE VIEW conpere.v_conpere_edge AS
SELECT a.fann_debut AS year, 'DIP:' || s.fdip_code AS parent, 'PAR:' || p.mpar_code AS child,
       true AS mandatory, CAST(NULL AS INTEGER) AS min, CAST(NULL AS INTEGER) AS max,
       CAST(NULL AS INTEGER) AS position
FROM scolarite.scol_maquette_parcours p
JOIN scolarite.scol_formation_annee a ON a.fann_key = p.fann_key
JOIN scolarite.scol_formation_specialisation s ON s.fspn_key = p.fspn_key
UNION ALL
SELECT a.fann_debut, 'PAR:' || p.mpar_code, 'SEM:' || m.msem_code, true, NULL, NULL,
       r.msem_ordre
FROM scolarite.scol_maquette_repartition_sem r
JOIN scolarite.scol_formation_annee a ON a.fann_key = r.fann_key
JOIN scolarite.scol_maquette_parcours p ON p.mpar_key = r.mpar_key
JOIN scolarite.scol_maquette_semestre m ON m.msem_key = r.msem_key
UNION ALL
SELECT a.fann_debut, 'SEM:' || m.msem_code, 'UE:' || u.mue_code, true, NULL, NULL,
       r.mue_ordre
FROM scolarite.scol_maquette_repartition_ue r
JOIN scolarite.scol_formation_annee a ON a.fann_key = r.fann_key
JOIN scolarite.scol_maquette_semestre m ON m.msem_key = r.msem_key
JOIN scolarite.scol_maquette_ue u ON u.mue_key = r.mue_key
UNION ALL
SELECT a.fann_debut, 'UE:' || u.mue_code, 'EC:' || ec.mec_code,
       CASE WHEN r.mtec_code = 'C' THEN false ELSE true END, NULL, NULL, r.mec_ordre
FROM scolarite.scol_maquette_repartition_ec r
JOIN scolarite.scol_formation_annee a ON a.fann_key = r.fann_key
JOIN scolarite.scol_maquette_ue u ON u.mue_key = r.mue_key
JOIN scolarite.scol_maquette_ec ec ON ec.mec_key = r.mec_key;

-- The registrations the site filters keep (used by the two views below).
CREATE OR REPLACE VIEW conpere.v_conpere_inscription_retenue AS
SELECT i.*
FROM scolarite.scol_inscription_etudiant i
WHERE NOT EXISTS (SELECT 1 FROM conpere.parametre x
                  WHERE x.param_key = 'res_code_exclu' AND x.param_value = i.res_code)
  AND NOT EXISTS (SELECT 1 FROM conpere.parametre x
                  WHERE x.param_key = 'type_inscription_exclu'
                    AND x.param_value = CAST(i.idipl_type_inscription AS VARCHAR(10)));

CREATE OR REPLACE VIEW conpere.v_conpere_registration AS
SELECT a.fann_debut AS year, CAST(i.etud_numero AS VARCHAR(20)) AS student,
       'PAR:' || p.mpar_code AS step, 'DIP:' || s.fdip_code AS diploma,
       'active' AS status, 'other' AS regime, true AS main, '' AS special_statuses
FROM conpere.v_conpere_inscription_retenue i
JOIN scolarite.scol_formation_annee a ON a.fann_key = i.fann_key
JOIN scolarite.scol_maquette_parcours p ON p.mpar_key = i.mpar_key
JOIN scolarite.scol_formation_specialisation s ON s.fspn_key = i.fspn_key;

CREATE OR REPLACE VIEW conpere.v_conpere_enrolment AS
SELECT a.fann_debut AS year, CAST(i.etud_numero AS VARCHAR(20)) AS student,
       'PAR:' || p.mpar_code AS step, 'SEM:' || m.msem_code AS node,
       CAST(NULL AS VARCHAR(40)) AS via, false AS carried_over, false AS exempted
FROM scolarite.scol_inscription_semestre ism
JOIN conpere.v_conpere_inscription_retenue i
  ON i.idipl_numero = ism.idipl_numero AND i.fann_key = ism.fann_key
JOIN scolarite.scol_formation_annee a ON a.fann_key = i.fann_key
JOIN scolarite.scol_maquette_parcours p ON p.mpar_key = i.mpar_key
JOIN scolarite.scol_maquette_semestre m ON m.msem_key = ism.msem_key
UNION ALL
SELECT a.fann_debut, CAST(i.etud_numero AS VARCHAR(20)), 'PAR:' || p.mpar_code,
       'EC:' || ec.mec_code, NULL, false,
       CASE WHEN iec.imrec_dispense IS NOT NULL THEN true ELSE false END
FROM scolarite.scol_inscription_ec iec
JOIN conpere.v_conpere_inscription_retenue i
  ON i.idipl_numero = iec.idipl_numero AND i.fann_key = iec.fann_key
JOIN scolarite.scol_formation_annee a ON a.fann_key = i.fann_key
JOIN scolarite.scol_maquette_parcours p ON p.mpar_key = i.mpar_key
JOIN scolarite.scol_maquette_ec ec ON ec.mec_key = iec.mec_key
WHERE NOT EXISTS (SELECT 1 FROM conpere.parametre x
                  WHERE x.param_key = 'dispense_exclue'
                    AND x.param_value = CAST(iec.imrec_dispense AS VARCHAR(10)));
