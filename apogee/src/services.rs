//! The Apogée web services and operations conpere calls (an allow-list of reads), and
//! what a call is about, for messages: the vocabulary the client, the configuration and
//! the mapping share.

use crate::codes::StepCode;
use conpere_model::mask::Masked;
use std::fmt;

/// Prefix of every Apogée service namespace.
pub(crate) const NAMESPACE_PREFIX: &str = "gouv.education.apogee.commun.servicesmetiers.";

/// A student number no Apogée can hold (`COD_ETU` is a positive number): `check`'s
/// authenticated probe asks for it and expects "no data".
pub const PROBE_STUDENT: &str = "0";

/// The Apogée web services conpere reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Course structure (`recupererSE_v4`).
    OffreFormationMetier,
    /// Students.
    EtudiantMetier,
    /// Administrative registrations.
    AdministratifMetier,
    /// Pedagogical registrations.
    PedagogiqueMetier,
}

impl Service {
    /// Every service used, in reading order.
    pub const ALL: [Service; 4] = [
        Service::OffreFormationMetier,
        Service::EtudiantMetier,
        Service::AdministratifMetier,
        Service::PedagogiqueMetier,
    ];

    /// The service name, last segment of its URL (`EtudiantMetier`).
    pub fn name(self) -> &'static str {
        match self {
            Service::OffreFormationMetier => "OffreFormationMetier",
            Service::EtudiantMetier => "EtudiantMetier",
            Service::AdministratifMetier => "AdministratifMetier",
            Service::PedagogiqueMetier => "PedagogiqueMetier",
        }
    }

    /// The namespace of its wrapper elements
    /// (`gouv.education.apogee.commun.servicesmetiers.EtudiantMetier`).
    pub fn namespace(self) -> String {
        format!("{NAMESPACE_PREFIX}{}", self.name())
    }

    /// The prefix of its per-service configuration keys (`etudiant_metier` →
    /// `etudiant_metier_username`, `etudiant_metier_password_env`).
    pub fn config_prefix(self) -> &'static str {
        match self {
            Service::OffreFormationMetier => "offre_formation_metier",
            Service::EtudiantMetier => "etudiant_metier",
            Service::AdministratifMetier => "administratif_metier",
            Service::PedagogiqueMetier => "pedagogique_metier",
        }
    }

    /// The service named `name` (exact spelling, as in URLs and the `services` table).
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The operations of this service conpere calls.
    pub fn operations(self) -> impl Iterator<Item = Operation> {
        Operation::ALL
            .into_iter()
            .filter(move |op| op.service() == self)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The allow-list: the only operations conpere ever calls, all of them reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `OffreFormationMetier.recupererSE_v4`: the course structure of a year.
    RecupererSeV4,
    /// `EtudiantMetier.recupererListeEtudiants`: the students of a step.
    RecupererListeEtudiants,
    /// `EtudiantMetier.recupererInfosAdmEtu_v4`: civil status of a student.
    RecupererInfosAdmEtuV4,
    /// `EtudiantMetier.recupererIdentifiantsEtudiant_v2`: directory e-mail and login.
    RecupererIdentifiantsEtudiantV2,
    /// `AdministratifMetier.recupererIAEtapes_v3`: step registrations of a year.
    RecupererIaEtapesV3,
    /// `AdministratifMetier.recupererIAAnnuelles_v2`: annual registration (régime, statuses).
    RecupererIaAnnuellesV2,
    /// `PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6`: pedagogical
    /// registrations of a step registration.
    RecupererContratPedagogiqueResultatElpEprV6,
}

impl Operation {
    /// Every operation of the allow-list.
    pub const ALL: [Operation; 7] = [
        Operation::RecupererSeV4,
        Operation::RecupererListeEtudiants,
        Operation::RecupererInfosAdmEtuV4,
        Operation::RecupererIdentifiantsEtudiantV2,
        Operation::RecupererIaEtapesV3,
        Operation::RecupererIaAnnuellesV2,
        Operation::RecupererContratPedagogiqueResultatElpEprV6,
    ];

    /// The service that offers it.
    pub fn service(self) -> Service {
        match self {
            Operation::RecupererSeV4 => Service::OffreFormationMetier,
            Operation::RecupererListeEtudiants
            | Operation::RecupererInfosAdmEtuV4
            | Operation::RecupererIdentifiantsEtudiantV2 => Service::EtudiantMetier,
            Operation::RecupererIaEtapesV3 | Operation::RecupererIaAnnuellesV2 => {
                Service::AdministratifMetier
            }
            Operation::RecupererContratPedagogiqueResultatElpEprV6 => Service::PedagogiqueMetier,
        }
    }

    /// The operation name, as in the WSDL and the wrapper element.
    pub fn name(self) -> &'static str {
        match self {
            Operation::RecupererSeV4 => "recupererSE_v4",
            Operation::RecupererListeEtudiants => "recupererListeEtudiants",
            Operation::RecupererInfosAdmEtuV4 => "recupererInfosAdmEtu_v4",
            Operation::RecupererIdentifiantsEtudiantV2 => "recupererIdentifiantsEtudiant_v2",
            Operation::RecupererIaEtapesV3 => "recupererIAEtapes_v3",
            Operation::RecupererIaAnnuellesV2 => "recupererIAAnnuelles_v2",
            Operation::RecupererContratPedagogiqueResultatElpEprV6 => {
                "recupererContratPedagogiqueResultatElpEpr_v6"
            }
        }
    }
}

impl fmt::Display for Operation {
    /// `Service.operation`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service(), self.name())
    }
}

/// What a call is about, for messages and logs: the student (masked), the year, the
/// step. Displays as `student ******34, year 2024, step L2INF/120`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    student: Option<String>,
    year: Option<i32>,
    step: Option<StepCode>,
}

impl Subject {
    /// About a student.
    pub fn student(student: &str) -> Subject {
        Subject {
            student: Some(student.to_string()),
            ..Subject::default()
        }
    }

    /// About a year.
    pub fn year(year: i32) -> Subject {
        Subject {
            year: Some(year),
            ..Subject::default()
        }
    }

    /// The same, within `year`.
    pub fn in_year(mut self, year: i32) -> Subject {
        self.year = Some(year);
        self
    }

    /// The same, at `step`.
    pub fn at_step(mut self, step: &StepCode) -> Subject {
        self.step = Some(step.clone());
        self
    }

    /// The student number, unmasked (for the reader's record keys).
    pub fn student_number(&self) -> Option<&str> {
        self.student.as_deref()
    }

    /// `text` with the student's number masked, for messages built from what Apogée
    /// says (a fault may quote the number it refused).
    pub fn mask(&self, text: &str) -> String {
        match self.student.as_deref() {
            Some(student) if student.chars().count() >= 4 => {
                text.replace(student, &Masked(student).to_string())
            }
            _ => text.to_string(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(student) = &self.student {
            parts.push(format!("student {}", Masked(student)));
        }
        if let Some(year) = self.year {
            parts.push(format!("year {year}"));
        }
        if let Some(step) = &self.step {
            parts.push(format!("step {step}"));
        }
        f.write_str(&parts.join(", "))
    }
}
