//! Pedagogical choices from CHC ext v1, in bulk (README "Mapping"): the learners of each
//! object of a period's structure (`objet-formation/…/{code}/cursus`, the default) or of
//! each object type (`type-objet-formation/…/{type}/cursus`) — never one learner at a
//! time, which takes seconds per learner in production.
//!
//! Each answer entry is an object reached by a `chemin` (`formation>année>…>object`) and
//! its learners; the period's structure tells which code of the chemin is the step and
//! which is the choice list the object was taken through.

use crate::api::{module_url, PegaseApi};
use crate::codes::{Adjustment, CodeTables};
use crate::config::ChoicesBy;
use crate::mapping;
use crate::structure::{PeriodSpace, PeriodStructure};
use conpere_connectors::http::Url;
use conpere_connectors::ConnectorError;
use conpere_model::{Enrolment, Item, Kind, NodeKind, Record};
use serde::Deserialize;
use serde_json::Value;

/// The CHC ext module of one institution.
#[derive(Debug, Clone)]
pub struct ChcClient {
    api: PegaseApi,
    base: Url,
    structure: String,
}

/// One entry of a cursus answer: an object by one chemin, and its learners.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursus {
    objet_formation: CursusObject,
    /// Parsed one by one, so that a bad learner is rejected alone.
    #[serde(default)]
    liste_apprenants: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct CursusObject {
    code: String,
    #[serde(default)]
    chemin: Option<String>,
}

/// A learner of an entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Learner {
    /// A string: its leading zeros are significant (a number is refused, not guessed).
    code_apprenant: String,
    #[serde(default)]
    amenagements: Option<Vec<Aménagement>>,
}

#[derive(Debug, Deserialize)]
struct Aménagement {
    code: String,
}

/// What to ask CHC for, for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The learners of one object, by code.
    Object(String),
    /// The learners of every object of a type.
    Type(String),
}

impl ChcClient {
    /// The CHC module at `base`, for institution `structure`.
    pub fn new(api: PegaseApi, base: Url, structure: &str) -> ChcClient {
        ChcClient {
            api,
            base,
            structure: structure.to_string(),
        }
    }

    /// The entries of `target` in `period`.
    pub async fn cursus(
        &self,
        period: &str,
        target: &Target,
    ) -> Result<Vec<Cursus>, ConnectorError> {
        let (route, value) = match target {
            Target::Object(code) => ("/api/ext/chc/v1/objet-formation", code),
            Target::Type(kind) => ("/api/ext/chc/v1/type-objet-formation", kind),
        };
        let segments = [self.structure.as_str(), period, value.as_str(), "cursus"];
        let url = module_url(&self.base, route, &segments)?;
        let operation = format!("CHC cursus of {target} (period {period})");
        self.api.get(url, operation, "a list of cursus").await
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Object(code) => write!(f, "object {code}"),
            Target::Type(kind) => write!(f, "type {kind}"),
        }
    }
}

/// The requests that cover a period's choices: every object below the steps, or every
/// object type the table maps to something other than a step.
pub fn targets(by: ChoicesBy, structure: &PeriodStructure, tables: &CodeTables) -> Vec<Target> {
    match by {
        ChoicesBy::Object => structure
            .nodes
            .values()
            .filter(|n| {
                !matches!(
                    n.kind,
                    NodeKind::Diploma | NodeKind::Step | NodeKind::Choice
                )
            })
            .map(|n| Target::Object(n.node.clone()))
            .collect(),
        ChoicesBy::Type => tables
            .object_types
            .iter()
            .filter(|(_, kind)| **kind != NodeKind::Step)
            .map(|(code, _)| Target::Type(code.clone()))
            .collect(),
    }
}

/// The enrolments of one cursus entry (rejects for what cannot be read).
pub fn enrolments(
    entry: &Cursus,
    period: &PeriodSpace,
    structure: &PeriodStructure,
    tables: &CodeTables,
) -> Vec<Item> {
    let node = entry.objet_formation.code.trim();
    let location = format!("CHC cursus of object {node} (period {})", period.code);
    let path = match place(node, entry.objet_formation.chemin.as_deref(), structure) {
        Ok(path) => path,
        Err(reason) => {
            let payload = serde_json::json!({"objetFormation": {"code": node,
                "chemin": entry.objet_formation.chemin}});
            return vec![reject(reason, &location, &payload)];
        }
    };
    entry
        .liste_apprenants
        .iter()
        .map(|raw| match Learner::deserialize(raw) {
            Ok(learner) => {
                Record::Enrolment(enrolment(&learner, node, &path, period, tables)).into()
            }
            Err(e) => reject(format!("a learner cannot be read: {e}"), &location, raw),
        })
        .collect()
}

/// Where an object sits: its step and the choice list it was taken through.
#[derive(Debug, PartialEq, Eq)]
struct Placement {
    step: String,
    via: Option<String>,
}

/// Reads the chemin with the structure: the step is its code of kind step, `via` the last
/// choice list before the object.
fn place(
    node: &str,
    chemin: Option<&str>,
    structure: &PeriodStructure,
) -> Result<Placement, String> {
    let chemin = chemin.unwrap_or_default();
    let mut codes: Vec<&str> = chemin.split('>').map(str::trim).collect();
    if codes.last() == Some(&node) {
        codes.pop();
    }
    let step = codes
        .iter()
        .find(|c| structure.kind(c) == Some(NodeKind::Step))
        .ok_or_else(|| {
            format!(
                "chemin `{chemin}` has no step: none of its codes is an object whose type \
                 maps to `step` in the period's structure (see `object_types`)"
            )
        })?;
    let via = codes
        .iter()
        .rev()
        .find(|c| structure.kind(c) == Some(NodeKind::Choice));
    Ok(Placement {
        step: step.to_string(),
        via: via.map(|v| v.to_string()),
    })
}

fn enrolment(
    learner: &Learner,
    node: &str,
    path: &Placement,
    period: &PeriodSpace,
    tables: &CodeTables,
) -> Enrolment {
    let said = |wanted: Adjustment| {
        learner
            .amenagements
            .iter()
            .flatten()
            .any(|a| tables.adjustments.get(a.code.trim()) == Some(&wanted))
    };
    Enrolment {
        year: period.year,
        student: learner.code_apprenant.clone(),
        step: path.step.clone(),
        node: node.to_string(),
        via: path.via.clone(),
        carried_over: said(Adjustment::CarriedOver),
        exempted: said(Adjustment::Exempted),
    }
}

fn reject(reason: String, location: &str, payload: &Value) -> Item {
    Item::Rejected(mapping::rejected(
        Kind::Enrolment,
        reason,
        location,
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::Node;
    use serde_json::json;

    fn structure() -> PeriodStructure {
        let mut structure = PeriodStructure::default();
        for (code, kind) in [
            ("F", NodeKind::Diploma),
            ("A1", NodeKind::Step),
            ("G", NodeKind::Choice),
            ("UE", NodeKind::Unit),
        ] {
            structure.nodes.insert(
                code.to_string(),
                Node {
                    year: 2024,
                    node: code.to_string(),
                    kind,
                    code: code.to_string(),
                    version: None,
                    label: String::new(),
                    ects: None,
                    period: None,
                },
            );
        }
        structure
    }

    fn period() -> PeriodSpace {
        PeriodSpace {
            id: "u".into(),
            code: "PER-2024".into(),
            year: 2024,
        }
    }

    #[test]
    fn an_entry_gives_one_enrolment_per_learner_with_step_via_and_adjustments() {
        let entry: Cursus = serde_json::from_value(json!({
            "objetFormation": {"code": "UE", "chemin": "F>A1>G>UE", "extra": 1},
            "listeApprenants": [
                {"codeApprenant": "00042", "amenagements": [{"code": "TAM001", "priseEnCompte": "x"}]},
                {"codeApprenant": "00043", "amenagements": null},
                {"codeApprenant": 44, "amenagements": []},
            ]
        }))
        .unwrap();
        let items = enrolments(&entry, &period(), &structure(), &CodeTables::default());
        let Item::Record(Record::Enrolment(first)) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(first.student, "00042");
        assert_eq!(
            (first.step.as_str(), first.via.as_deref()),
            ("A1", Some("G"))
        );
        assert!(first.exempted && !first.carried_over);
        assert!(matches!(&items[1], Item::Record(Record::Enrolment(e)) if !e.exempted));
        assert!(
            matches!(&items[2], Item::Rejected(r) if r.reason.contains("learner")),
            "{:?}",
            items[2]
        );
    }

    #[test]
    fn a_chemin_without_a_known_step_is_rejected_with_the_reason() {
        let reason = place("UE", Some("X>Y>UE"), &structure()).unwrap_err();
        assert!(reason.contains("object_types"), "{reason}");
        let placed = place("UE", Some("F > A1 > UE"), &structure()).unwrap();
        assert_eq!(placed.via, None);
    }
}
