//! The field order of every Apogée DTO the simulator fills, taken from the published XSDs.
//!
//! Each DTO is an `xsd:sequence` of elements that are all `nillable` and all required
//! (no `minOccurs="0"`): a response must carry every field, in this order, either with a
//! value or as `xsi:nil="true"`. [`Layout::xsd`] names the schema (under
//! `specs/apogee/wsdl/schemas/`) each list was read from; a test compares every layout
//! with its schema so the two cannot drift apart.

/// The ordered fields of one DTO (`complexType`) of the published contract.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The `complexType` name.
    pub name: &'static str,
    /// The schema defining it, relative to the `schemas/` directory of the specs (read
    /// by the test comparing layouts with their schemas).
    #[cfg_attr(not(test), allow(dead_code))]
    pub xsd: &'static str,
    /// Its elements, in `xsd:sequence` order.
    pub fields: &'static [&'static str],
}

/// Every layout, for the test that checks them against the schemas.
#[cfg(test)]
pub(crate) const ALL: &[&Layout] = &[
    &ETUDIANT_DTO2,
    &INFO_ADM_ETU_DTO4,
    &TYP_HANDICAP_COURT_DTO,
    &IDENTIFIANTS_ETUDIANT_DTO2,
    &INS_ADM_ETP_DTO3,
    &DIPLOME_DTO,
    &ETAPE_DTO,
    &ETAT_IAA_DTO,
    &ETAT_IAE_DTO,
    &REGIME_INS_DTO,
    &INS_ADM_ANU_DTO2,
    &PROFIL_ETU_DTO,
    &QUOTITE_TRAV_DTO,
    &SPO_HAUT_NIV_DTO,
    &DIPLOME_DTO4,
    &VERSION_DIPLOME_DTO4,
    &OFFRE_FORMATION_DTO4,
    &ETAPE_DTO4,
    &VERSION_ETAPE_DTO4,
    &LISTE_ELEMENT_PEDAGOGI_DTO3,
    &ELEMENT_PEDAGOGI_DTO3,
    &CONTRAT_PEDAGOGIQUE_RESULTAT_ELP_EPR_DTO5,
    &ELEMENT_PEDAGOGI_DTO5,
    &NATURE_ELP_DTO,
    &RESULTAT_ELP_DTO3,
    &SESSION_DTO,
    &TYP_RESULTAT_DTO,
    &ETAT_DELIB_DTO,
];

/// `EtudiantDTO2`.
pub(crate) const ETUDIANT_DTO2: Layout = Layout {
    name: "EtudiantDTO2",
    xsd: "etudiant/EtudiantDTO2.xsd",
    fields: &["codEtu", "nom", "prenom", "dateNaissance", "numeroIne"],
};

/// `InfoAdmEtuDTO4`.
pub(crate) const INFO_ADM_ETU_DTO4: Layout = Layout {
    name: "InfoAdmEtuDTO4",
    xsd: "etudiant/InfoAdmEtuDTO4.xsd",
    fields: &[
        "anneePremiereInscEnsSup",
        "anneePremiereInscEtb",
        "anneePremiereInscEtr",
        "anneePremiereInscUniv",
        "listeBacs",
        "listeBlocages",
        "dateNaissance",
        "departementNaissance",
        "etbPremiereInscUniv",
        "handicap",
        "libVilleNaissance",
        "nationaliteDTO",
        "nomPatronymique",
        "nomUsuel",
        "numBoursier",
        "numEtu",
        "numeroINE",
        "paysNaissance",
        "prenom1",
        "prenom2",
        "prenom3",
        "prenomEtatCivil",
        "sexe",
        "sexEtatCivil",
        "situationFamiliale",
        "situationMilitaire",
        "temoinDateNaissEstimee",
        "temoinSitMilEnRegle",
    ],
};

/// `TypHandicapCourtDTO`.
pub(crate) const TYP_HANDICAP_COURT_DTO: Layout = Layout {
    name: "TypHandicapCourtDTO",
    xsd: "etudiant/TypHandicapCourtDTO.xsd",
    fields: &["codeHandicap", "libHandicap", "libThp"],
};

/// `IdentifiantsEtudiantDTO2`.
pub(crate) const IDENTIFIANTS_ETUDIANT_DTO2: Layout = Layout {
    name: "IdentifiantsEtudiantDTO2",
    xsd: "etudiant/IdentifiantsEtudiantDTO2.xsd",
    fields: &[
        "codEtu",
        "codInd",
        "emailAnnuaire",
        "loginAnnuaire",
        "numBoursier",
        "numeroINE",
    ],
};

/// `InsAdmEtpDTO3`.
pub(crate) const INS_ADM_ETP_DTO3: Layout = Layout {
    name: "InsAdmEtpDTO3",
    xsd: "administratif/InsAdmEtpDTO3.xsd",
    fields: &[
        "anneeIAE",
        "bourse",
        "cge",
        "composante",
        "dateIAE",
        "diplome",
        "etape",
        "etapePremiere",
        "etatIaa",
        "etatIae",
        "regimeIns",
        "codeInscriptionPayee",
        "inscriptionPayee",
        "inscriptionTeleEnseignement",
        "listeSpecialiteSISE",
        "nbrInscriptionCycle",
        "nbrInscriptionDiplome",
        "nbrInscriptionEtape",
        "numBoursier",
        "profilEtudiant",
        "temoinInscriptionIaWeb",
        "temoinPI",
        "temoinVes",
        "temoinVapp",
        "temoinVae",
        "catOuiSi",
        "cursusAmg",
    ],
};

/// `DiplomeDTO`.
pub(crate) const DIPLOME_DTO: Layout = Layout {
    name: "DiplomeDTO",
    xsd: "administratif/DiplomeDTO.xsd",
    fields: &[
        "codeDiplome",
        "libLongDiplome",
        "libVdi",
        "libWebVdi",
        "versionDiplome",
    ],
};

/// `EtapeDTO`.
pub(crate) const ETAPE_DTO: Layout = Layout {
    name: "EtapeDTO",
    xsd: "administratif/EtapeDTO.xsd",
    fields: &["codeEtp", "libLongEtp", "libWebVet", "versionEtp"],
};

/// `EtatIAADTO`.
pub(crate) const ETAT_IAA_DTO: Layout = Layout {
    name: "EtatIAADTO",
    xsd: "administratif/EtatIAADTO.xsd",
    fields: &["codeEtatIAA", "libEtatIAA", "temDosIAA"],
};

/// `EtatIAEDTO`.
pub(crate) const ETAT_IAE_DTO: Layout = Layout {
    name: "EtatIAEDTO",
    xsd: "administratif/EtatIAEDTO.xsd",
    fields: &["codeEtatIAE", "libEtatIAE"],
};

/// `RegimeInsDTO`.
pub(crate) const REGIME_INS_DTO: Layout = Layout {
    name: "RegimeInsDTO",
    xsd: "administratif/RegimeInsDTO.xsd",
    fields: &["codRgi", "libRgi"],
};

/// `InsAdmAnuDTO2`.
pub(crate) const INS_ADM_ANU_DTO2: Layout = Layout {
    name: "InsAdmAnuDTO2",
    xsd: "administratif/InsAdmAnuDTO2.xsd",
    fields: &[
        "aideFinanciere",
        "anneeDernierDiplome",
        "anneeDernierEtbFreq",
        "anneeIAA",
        "autreEtbAnneeEnCours",
        "maintienInscAnneeEnCours",
        "catSocProfChefFamille",
        "catSocProfEtu",
        "codeTransfertDossier",
        "dateIAA",
        "departementDernierDiplomeExt",
        "departementDernierEtbFreq",
        "departementEtbAnneeEnCours",
        "departementEtbAnneePrec",
        "dernierEtbFreq",
        "domaineActiviteProf",
        "etatIaa",
        "etbAnneePrec",
        "etbDernierDiplomeExt",
        "libTransfertDossier",
        "paysDernierDiplomeExt",
        "paysDernierEtbFreq",
        "paysEtbAnneePrec",
        "prgEchange",
        "profil",
        "quotiteTrav",
        "regimeIns",
        "situationSociale",
        "situationAnneePrec",
        "sportifHautNiveau",
        "statut",
        "temRgmAmgEtuIAA",
        "temoinAffiliationSS",
        "cpam",
        "temoinAyantDroitAuto",
        "typeAutreEtbAnneeEnCours",
        "typeDernierDiplomeExt",
        "typeEtbDernierEtbFreq",
        "typeSISEDernierDiplomeExt",
    ],
};

/// `ProfilEtuDTO`.
pub(crate) const PROFIL_ETU_DTO: Layout = Layout {
    name: "ProfilEtuDTO",
    xsd: "administratif/ProfilEtuDTO.xsd",
    fields: &["code", "libelle", "libelleWeb"],
};

/// `QuotiteTravDTO`.
pub(crate) const QUOTITE_TRAV_DTO: Layout = Layout {
    name: "QuotiteTravDTO",
    xsd: "administratif/QuotiteTravDTO.xsd",
    fields: &["codeQuotite", "libQuotite", "libWebQuotite"],
};

/// `SpoHautNivDTO`.
pub(crate) const SPO_HAUT_NIV_DTO: Layout = Layout {
    name: "SpoHautNivDTO",
    xsd: "administratif/SpoHautNivDTO.xsd",
    fields: &["codSportif", "libelle", "libelleWeb"],
};

/// `DiplomeDTO4`.
pub(crate) const DIPLOME_DTO4: Layout = Layout {
    name: "DiplomeDTO4",
    xsd: "offreformation/recupererse/DiplomeDTO4.xsd",
    fields: &[
        "codDip",
        "cycle",
        "libDip",
        "listGroupeDiplome",
        "listVersionDiplome",
        "natureDiplome",
        "niveauInterministeriel",
        "secteurDisciplinaire",
        "temOuvertRecrutement",
        "etbHab",
        "cmpAcc",
        "temOuvertValidation",
        "typeDiplome",
    ],
};

/// `VersionDiplomeDTO4`.
pub(crate) const VERSION_DIPLOME_DTO4: Layout = Layout {
    name: "VersionDiplomeDTO4",
    xsd: "offreformation/recupererse/VersionDiplomeDTO4.xsd",
    fields: &[
        "codCursusLmd",
        "listHistoRncp",
        "codVrsVdi",
        "credits",
        "ecoleDoctorale",
        "libCourtVdi",
        "libWebVdi",
        "respVdi",
        "comue",
        "temOffCom",
        "temOffDeloc",
        "offreFormation",
    ],
};

/// `OffreFormationDTO4`.
pub(crate) const OFFRE_FORMATION_DTO4: Layout = Layout {
    name: "OffreFormationDTO4",
    xsd: "offreformation/recupererse/OffreFormationDTO4.xsd",
    fields: &[
        "listChampDisciplinaire",
        "codFinalite",
        "codMention",
        "codParcoursType",
        "codSpecialite",
        "habilitation",
        "libFinalite",
        "libMention",
        "libParcoursType",
        "libSpecialite",
        "listDomaineFormation",
        "refSise",
        "listEtape",
        "temEnSveFinalite",
        "temEnSveMention",
        "temEnSveParcoursType",
        "temEnSveSpecialite",
    ],
};

/// `EtapeDTO4`.
pub(crate) const ETAPE_DTO4: Layout = Layout {
    name: "EtapeDTO4",
    xsd: "offreformation/recupererse/EtapeDTO4.xsd",
    fields: &[
        "codEtp",
        "libCourtEtp",
        "libEtp",
        "actionLolf",
        "listComposanteCentreGestion",
        "listVersionEtape",
        "temOuvertRecrutement",
        "temOuvertValidation",
        "temOuvertDrtBrs",
        "temOuvDrtBrs",
    ],
};

/// `VersionEtapeDTO4`.
pub(crate) const VERSION_ETAPE_DTO4: Layout = Layout {
    name: "VersionEtapeDTO4",
    xsd: "offreformation/recupererse/VersionEtapeDTO4.xsd",
    fields: &[
        "centreInsPedADistance",
        "codVrsVet",
        "commentaireVrsEtp",
        "composante",
        "convention",
        "credits",
        "duree",
        "cursusAmg",
        "libWebVet",
        "listRegime",
        "listCentreInsPedagogiVet",
        "listListeElementPedagogi",
        "temEnSveDuree",
        "temTeleEns",
        "volume",
        "codSisDaaMin",
        "codSisDaaMax",
        "temHebVet",
        "codParcoursType",
        "libParcoursType",
        "temEnSveParcoursType",
    ],
};

/// `ListeElementPedagogiDTO3`.
pub(crate) const LISTE_ELEMENT_PEDAGOGI_DTO3: Layout = Layout {
    name: "ListeElementPedagogiDTO3",
    xsd: "offreformation/recupererse/ListeElementPedagogiDTO3.xsd",
    fields: &[
        "codListElp",
        "libCourtListElp",
        "libListElp",
        "listElementPedagogi",
        "statut",
        "temTraitementPRC",
        "typListElp",
    ],
};

/// `ElementPedagogiDTO3`.
pub(crate) const ELEMENT_PEDAGOGI_DTO3: Layout = Layout {
    name: "ElementPedagogiDTO3",
    xsd: "offreformation/recupererse/ElementPedagogiDTO3.xsd",
    fields: &[
        "capaciteElp",
        "codElp",
        "codPeriode",
        "composante",
        "credits",
        "dateCreation",
        "dateDebutIP",
        "dateFinIP",
        "dateModif",
        "descElp",
        "libCourtElp",
        "libElp",
        "codNatureElp",
        "libNatureElp",
        "libPeriode",
        "libStatut",
        "lieu",
        "listRespElp",
        "listCentreInsPedagogi",
        "listComposante",
        "listElementPrerequis",
        "listTypePopulation",
        "listVersionEtapeADistance",
        "motifSusp",
        "temEnSveNature",
        "temEnSvePeriode",
        "temEnsADistance",
        "temHorsEtb",
        "temMcc",
        "temSusp",
        "uniteVolume",
        "volume",
        "temStage",
    ],
};

/// `ContratPedagogiqueResultatElpEprDTO5`.
pub(crate) const CONTRAT_PEDAGOGIQUE_RESULTAT_ELP_EPR_DTO5: Layout = Layout {
    name: "ContratPedagogiqueResultatElpEprDTO5",
    xsd: "pedagogique/ContratPedagogiqueResultatElpEprDTO5.xsd",
    fields: &[
        "cip",
        "codAnu",
        "codElpSup",
        "libEtatIae",
        "codTypIpe",
        "elp",
        "epreuvesElp",
        "fex",
        "resultatsElp",
        "groupes",
        "rngElp",
    ],
};

/// `ElementPedagogiDTO5`.
pub(crate) const ELEMENT_PEDAGOGI_DTO5: Layout = Layout {
    name: "ElementPedagogiDTO5",
    xsd: "pedagogique/ElementPedagogiDTO5.xsd",
    fields: &[
        "codElp",
        "libElp",
        "natureElp",
        "numPreElp",
        "temCtlValCadElp",
        "temElpTypeStage",
        "nbrCrdElp",
        "durConElp",
        "notMinConElp",
        "barMinConElp",
    ],
};

/// `NatureElpDTO`.
pub(crate) const NATURE_ELP_DTO: Layout = Layout {
    name: "NatureElpDTO",
    xsd: "pedagogique/NatureElpDTO.xsd",
    fields: &["codNel", "libNel", "temFictif", "temSemestre", "temUe"],
};

/// `ResultatElpDTO3`.
pub(crate) const RESULTAT_ELP_DTO3: Layout = Layout {
    name: "ResultatElpDTO3",
    xsd: "pedagogique/ResultatElpDTO3.xsd",
    fields: &[
        "barNotElp",
        "codAnu",
        "etatDelib",
        "lcc",
        "mention",
        "codEtaMndElp",
        "libEtaMndElp",
        "natureResultat",
        "nbrCrdElp",
        "nbrRngEtuElp",
        "codEtaRngElp",
        "libEtaRngElp",
        "nbrRngEtuElpTot",
        "notElp",
        "codEtaNotElp",
        "libEtaNotElp",
        "notPntJurElp",
        "session",
        "temResMeiNot",
        "typResultat",
        "codEtaResElp",
        "libEtaResElp",
        "temResEstComp",
        "temResSerComp",
        "libRvn",
        "typRvn",
        "libCmtTrv",
    ],
};

/// `SessionDTO`.
pub(crate) const SESSION_DTO: Layout = Layout {
    name: "SessionDTO",
    xsd: "pedagogique/SessionDTO.xsd",
    fields: &["codSes", "libSes"],
};

/// `TypResultatDTO`.
pub(crate) const TYP_RESULTAT_DTO: Layout = Layout {
    name: "TypResultatDTO",
    xsd: "pedagogique/TypResultatDTO.xsd",
    fields: &["codNegTre", "codTre", "libTre"],
};

/// `EtatDelibDTO`.
pub(crate) const ETAT_DELIB_DTO: Layout = Layout {
    name: "EtatDelibDTO",
    xsd: "pedagogique/EtatDelibDTO.xsd",
    fields: &["codEtaAvc", "libEtaAvc"],
};

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_connectors::xml::{self, Element};

    /// The element names of `complexType name` in the schema, in sequence order.
    fn sequence(schema: &Element, name: &str) -> Option<Vec<String>> {
        let complex = schema
            .children_named("complexType")
            .find(|c| c.attribute("name") == Some(name))?;
        let sequence = complex.child("sequence")?;
        let names = sequence
            .children_named("element")
            .filter_map(|e| e.attribute("name"))
            .map(str::to_owned)
            .collect();
        Some(names)
    }

    #[test]
    fn layouts_match_the_published_schemas() {
        let specs = crate::simulator::default_specs_dir().expect(
            "the published Apogée contract is needed: set CONPERE_APOGEE_SPECS or check out \
             shared/specs next to the workspace",
        );
        for layout in ALL {
            let path = specs.join("schemas").join(layout.xsd);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema = xml::parse(&bytes, None).unwrap();
            let fields = sequence(&schema, layout.name)
                .unwrap_or_else(|| panic!("{} not in {}", layout.name, layout.xsd));
            assert_eq!(layout.fields, fields, "{}", layout.name);
        }
    }
}
