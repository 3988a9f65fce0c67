//! What changed between two versions of a contract, as a person reads it: elements and
//! measures added and removed, statuses, the ECTS per period before and after, and the
//! reason of the later version.

use crate::ContractsError;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tokio_postgres::Client;

/// An element of a path, as a diff names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Element {
    /// The section's step.
    pub step: String,
    /// The node's code.
    pub node: String,
    /// Its label.
    pub label: String,
}

/// A measure, as a diff names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MeasureRef {
    /// Its code.
    pub code: String,
    /// Its label.
    pub label: String,
    /// Its details.
    pub details: Option<String>,
}

/// The changes from one version to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    /// The earlier version.
    pub from: i32,
    /// The later version.
    pub to: i32,
    /// The later version's reason (an amendment's).
    pub reason: Option<String>,
    /// Elements followed in `to` and not in `from`.
    pub elements_added: Vec<Element>,
    /// Elements followed in `from` and not in `to`.
    pub elements_removed: Vec<Element>,
    /// Measures in `to` and not in `from` (or with other details).
    pub measures_added: Vec<MeasureRef>,
    /// Measures in `from` and not in `to` (or with other details).
    pub measures_removed: Vec<MeasureRef>,
    /// Special statuses gained.
    pub statuses_added: Vec<String>,
    /// Special statuses lost.
    pub statuses_removed: Vec<String>,
    /// ECTS per period of each section, before.
    pub ects_before: BTreeMap<String, BTreeMap<String, f64>>,
    /// ECTS per period of each section, after.
    pub ects_after: BTreeMap<String, BTreeMap<String, f64>>,
    /// Objectives, before and after, when they changed.
    pub objectives: Option<(Vec<String>, Vec<String>)>,
}

/// The diff of contract `id` from version `from` to version `to`.
pub async fn diff(client: &Client, id: i64, from: i32, to: i32) -> Result<Diff, ContractsError> {
    let rows = client
        .query(
            "SELECT version, content, reason FROM contract_version \
             WHERE contract_id = $1 AND version = ANY($2)",
            &[&id, &vec![from, to]],
        )
        .await
        .map_err(ContractsError::db("reading the versions"))?;
    let find = |n: i32| {
        rows.iter()
            .find(|r| r.get::<_, i32>(0) == n)
            .ok_or_else(|| ContractsError::Invalid(format!("contract #{id} has no version {n}")))
    };
    let (before, after) = (find(from)?, find(to)?);
    let parse = |row: &tokio_postgres::Row| -> Value {
        serde_json::from_str(row.get::<_, &str>(1)).expect("stored content is JSON")
    };
    let mut diff = between(&parse(before), &parse(after));
    diff.from = from;
    diff.to = to;
    diff.reason = after.get(2);
    Ok(diff)
}

/// The changes from content `before` to content `after`.
pub fn between(before: &Value, after: &Value) -> Diff {
    let (elements_added, elements_removed) = added_removed(elements(before), elements(after));
    let (measures_added, measures_removed) = added_removed(measures(before), measures(after));
    let (statuses_added, statuses_removed) = added_removed(
        strings(&before["special_statuses"]),
        strings(&after["special_statuses"]),
    );
    let objectives = (
        strings(&before["objectives"]),
        strings(&after["objectives"]),
    );
    Diff {
        elements_added,
        elements_removed,
        measures_added,
        measures_removed,
        statuses_added,
        statuses_removed,
        ects_before: ects(before),
        ects_after: ects(after),
        objectives: (objectives.0 != objectives.1).then(|| {
            (
                objectives.0.into_iter().collect(),
                objectives.1.into_iter().collect(),
            )
        }),
        ..Diff::default()
    }
}

fn added_removed<T: Ord + Clone>(before: BTreeSet<T>, after: BTreeSet<T>) -> (Vec<T>, Vec<T>) {
    (
        after.difference(&before).cloned().collect(),
        before.difference(&after).cloned().collect(),
    )
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn sections(content: &Value) -> impl Iterator<Item = &Value> {
    content["sections"].as_array().into_iter().flatten()
}

fn elements(content: &Value) -> BTreeSet<Element> {
    sections(content)
        .filter(|s| s["status"] == "open")
        .flat_map(|s| {
            let step = text(&s["step"]);
            (s["path"].as_array().into_iter().flatten()).map(move |e| Element {
                step: step.clone(),
                node: text(&e["node"]),
                label: text(&e["label"]),
            })
        })
        .collect()
}

fn measures(content: &Value) -> BTreeSet<MeasureRef> {
    (content["measures"].as_array().into_iter().flatten())
        .map(|m| MeasureRef {
            code: text(&m["code"]),
            label: text(&m["label"]),
            details: m["details"].as_str().map(str::to_owned),
        })
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    (value.as_array().into_iter().flatten()).map(text).collect()
}

fn ects(content: &Value) -> BTreeMap<String, BTreeMap<String, f64>> {
    sections(content)
        .map(|s| {
            let per_period = (s["ects_per_period"].as_object().into_iter().flatten())
                .map(|(period, ects)| (period.clone(), ects.as_f64().unwrap_or_default()))
                .collect();
            (text(&s["step"]), per_period)
        })
        .collect()
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = self
            .reason
            .as_deref()
            .map_or(String::new(), |r| format!(" ({r})"));
        writeln!(f, "version {} → version {}{reason}", self.from, self.to)?;
        for e in &self.elements_added {
            writeln!(f, "  + {} {} ({})", e.node, e.label, e.step)?;
        }
        for e in &self.elements_removed {
            writeln!(f, "  - {} {} ({})", e.node, e.label, e.step)?;
        }
        for m in &self.measures_added {
            writeln!(f, "  + measure {} ({}){}", m.label, m.code, details(m))?;
        }
        for m in &self.measures_removed {
            writeln!(f, "  - measure {} ({}){}", m.label, m.code, details(m))?;
        }
        for s in &self.statuses_added {
            writeln!(f, "  + special status {s}")?;
        }
        for s in &self.statuses_removed {
            writeln!(f, "  - special status {s}")?;
        }
        for (step, after) in &self.ects_after {
            let before = self.ects_before.get(step);
            if before != Some(after) {
                writeln!(
                    f,
                    "  ECTS per period of {step}: {} → {}",
                    periods(before),
                    periods(Some(after))
                )?;
            }
        }
        if let Some((before, after)) = &self.objectives {
            writeln!(f, "  objectives: {before:?} → {after:?}")?;
        }
        Ok(())
    }
}

fn details(m: &MeasureRef) -> String {
    m.details
        .as_deref()
        .map_or(String::new(), |d| format!(": {d}"))
}

fn periods(ects: Option<&BTreeMap<String, f64>>) -> String {
    match ects {
        Some(ects) if !ects.is_empty() => {
            let parts: Vec<String> = ects.iter().map(|(p, e)| format!("{p} {e}")).collect();
            parts.join(", ")
        }
        _ => "none".into(),
    }
}
