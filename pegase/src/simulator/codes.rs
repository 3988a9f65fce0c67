//! Code tables between the canonical model and Pégase's codes, as the README's
//! "Mapping" section states them (the adapter reads them backwards).

use conpere_model::{NodeKind, Regime, RegistrationStatus};

/// `regime` of the INS feed: the régime's BCN code (SISE `REGIMEINSCR`).
pub(crate) fn regime_code(regime: Regime) -> &'static str {
    match regime {
        Regime::Initial => "10",
        Regime::Apprenticeship => "12",
        Regime::Continuing => "21",
        Regime::Other => "11",
    }
}

/// `statutInscription` of the INS feed; `None` for a registration the feed does not
/// carry (a pending one: the feed lists validated or cancelled registrations, and the
/// published enum has no other value).
pub(crate) fn status_code(status: RegistrationStatus) -> Option<&'static str> {
    match status {
        RegistrationStatus::Active => Some("valide"),
        RegistrationStatus::Cancelled => Some("annulee"),
        RegistrationStatus::Pending => None,
    }
}

/// The `profilsExonerants` code carrying a canonical special status (`other:<code>`
/// carries `<code>` itself), with its label.
pub(crate) fn special_status_profile(status: &str) -> (String, String) {
    let known = match status {
        "employed" => Some(("PRF001", "Étudiant salarié")),
        "high_level_athlete" => Some(("PRF002", "Sportif de haut niveau")),
        "disability" => Some(("PRF003", "Étudiant en situation de handicap")),
        "artist" => Some(("PRF004", "Artiste de haut niveau")),
        "carer" => Some(("PRF005", "Étudiant aidant")),
        "elected_representative" => Some(("PRF006", "Élu étudiant")),
        "civic_service" => Some(("PRF007", "Service civique")),
        "multi_degree" => Some(("PRF008", "Double cursus")),
        "distance" => Some(("PRF009", "Enseignement à distance")),
        _ => None,
    };
    match known {
        Some((code, label)) => (code.to_owned(), label.to_owned()),
        None => {
            let code = status.strip_prefix("other:").unwrap_or(status);
            (code.to_owned(), code.to_owned())
        }
    }
}

/// The type of maquette object of a node kind (`typeObjetFormation` code, `type` of the
/// ODF tree, `typeObjet` of the CHC route); a choice list is a groupement, not typed.
pub(crate) fn object_type(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Diploma => "FORMATION",
        NodeKind::Step => "ANNEE",
        NodeKind::Semester => "SEMESTRE",
        NodeKind::Unit => "UE",
        NodeKind::Element => "EC",
        NodeKind::Choice => "GROUPEMENT",
        NodeKind::Other => "AUTRE",
    }
}

/// The short and long labels of an object type.
pub(crate) fn object_type_labels(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Diploma => ("Formation", "Formation"),
        NodeKind::Step => ("Année", "Année de formation"),
        NodeKind::Semester => ("Semestre", "Semestre"),
        NodeKind::Unit => ("UE", "UNITE D'ENSEIGNEMENT"),
        NodeKind::Element => ("EC", "ELEMENT CONSTITUTIF"),
        NodeKind::Choice => ("Groupement", "Groupement"),
        NodeKind::Other => ("Autre", "Autre objet de formation"),
    }
}

/// The ODF `classe` of a node in a maquette tree.
pub(crate) fn odf_class(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Diploma => "FORMATION",
        NodeKind::Choice => "GROUPEMENT",
        _ => "OBJET_FORMATION",
    }
}

/// The ODF `typeObjetMaquette` of a node (summary and detail spell it with a hyphen).
pub(crate) fn odf_object_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Diploma => "FORMATION",
        NodeKind::Choice => "GROUPEMENT",
        _ => "OBJET-FORMATION",
    }
}

/// A stable UUID-shaped identifier for `name` (Pégase identifies periods, objects and
/// paths by UUIDs; the same name always gets the same one, so ids are stable across
/// restarts without storing them). Two FNV-1a hashes make the 128 bits; version 8.
pub(crate) fn uuid_for(name: &str) -> String {
    let hash = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x6c62_272e_07bb_0142));
    let a = (a & !0xf000) | 0x8000; // version 8 (custom)
    let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_distinct_and_well_formed() {
        let a = uuid_for("2024|VET:L2INF/120");
        assert_eq!(a, uuid_for("2024|VET:L2INF/120"));
        assert_ne!(a, uuid_for("2023|VET:L2INF/120"));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "8");
    }
}
