//! The operations the simulator serves, with the element names the abstract WSDLs give
//! their responses.

use super::contract;
use super::data::Dataset;
use super::dto::Dto;
use super::offer;
use super::params::{OpFault, Params};
use super::registrations;
use super::students;

/// Namespace prefix of every Apogée business service; the service name completes it.
pub(crate) const NAMESPACE_PREFIX: &str = "gouv.education.apogee.commun.servicesmetiers.";

/// The namespace of a service (`gouv.education.apogee.commun.servicesmetiers.EtudiantMetier`).
pub(crate) fn namespace(service: &str) -> String {
    format!("{NAMESPACE_PREFIX}{service}")
}

/// The services whose operations the simulator answers.
pub(crate) const SERVICES: [&str; 4] = [
    "EtudiantMetier",
    "AdministratifMetier",
    "PedagogiqueMetier",
    "OffreFormationMetier",
];

/// Builds the records of a response from the request's parameters.
type Handler = fn(&Dataset, Params) -> Result<Vec<Dto>, OpFault>;

/// One served operation.
pub(crate) struct Operation {
    /// The service it belongs to.
    pub service: &'static str,
    /// Its name (the request wrapper).
    pub name: &'static str,
    /// The response wrapper element (`…Response`, or `…Response_v2` where the WSDL says so).
    pub response: &'static str,
    /// The element of each record in the response.
    pub record: &'static str,
    handler: Handler,
}

impl Operation {
    /// Runs the operation.
    pub(crate) fn answer(&self, data: &Dataset, request: Params) -> Result<Vec<Dto>, OpFault> {
        (self.handler)(data, request)
    }
}

/// The seven read operations the adapter uses, and only those: everything else (every
/// `mettreAJour*`, `recupererNumeroSecuriteSociale`, `CreationSEMetier`, `OpiMetier`…) is
/// refused, so a test notices an adapter calling anything else.
pub(crate) const OPERATIONS: [Operation; 7] = [
    Operation {
        service: "OffreFormationMetier",
        name: "recupererSE_v4",
        response: "recupererSE_v4Response",
        record: "recupererSE_v4Return",
        handler: offer::recuperer_se,
    },
    Operation {
        service: "EtudiantMetier",
        name: "recupererListeEtudiants",
        response: "recupererListeEtudiantsResponse",
        record: "etudiant",
        handler: students::liste_etudiants,
    },
    Operation {
        service: "EtudiantMetier",
        name: "recupererInfosAdmEtu_v4",
        response: "recupererInfosAdmEtu_v4Response",
        record: "recupererInfosAdmEtu_v4Return",
        handler: students::infos_adm_etu,
    },
    Operation {
        service: "EtudiantMetier",
        name: "recupererIdentifiantsEtudiant_v2",
        response: "recupererIdentifiantsEtudiant_v2Response",
        record: "recupererIdentifiantsEtudiant_v2Return",
        handler: students::identifiants,
    },
    Operation {
        service: "AdministratifMetier",
        name: "recupererIAEtapes_v3",
        response: "recupererIAEtapes_v3Response",
        record: "recupererIAEtapes_v3Return",
        handler: registrations::ia_etapes,
    },
    Operation {
        service: "AdministratifMetier",
        name: "recupererIAAnnuelles_v2",
        response: "recupererIAAnnuellesResponse_v2",
        record: "recupererIAAnnuellesReturn_v2",
        handler: registrations::ia_annuelles,
    },
    Operation {
        service: "PedagogiqueMetier",
        name: "recupererContratPedagogiqueResultatElpEpr_v6",
        response: "recupererContratPedagogiqueResultatElpEpr_v6Response",
        record: "recupererContratPedagogiqueResultatElpEpr_v6Return",
        handler: contract::contrat,
    },
];

/// The served operation `name` of `service` (exact names: SOAP element names are
/// case-sensitive).
pub(crate) fn find(service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|op| op.service == service && op.name == name)
}

/// The operations served by `service`.
pub(crate) fn of_service(service: &str) -> impl Iterator<Item = &'static Operation> + '_ {
    OPERATIONS.iter().filter(move |op| op.service == service)
}
