//! Contracts as the command line lists, shows and exports them.

use crate::rules;
use crate::ContractsError;
use serde_json::{json, Value};
use std::fmt::Write as _;
use tokio_postgres::Client;

/// Which contracts to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Of this academic year.
    pub year: Option<i32>,
    /// With a section of this step.
    pub step: Option<String>,
    /// Only those with a flag (specific), or only those without (standard).
    pub flagged: Option<bool>,
    /// In this state.
    pub state: Option<String>,
}

/// A contract as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Its id.
    pub id: i64,
    /// Its source's name.
    pub source: String,
    /// Academic year.
    pub year: i32,
    /// Student number.
    pub student: String,
    /// draft, proposed, …
    pub state: String,
    /// Flags (none: standard).
    pub flags: Vec<String>,
    /// Current version number.
    pub version: i32,
    /// Its hash.
    pub hash: String,
    /// The validated version in force, if any.
    pub in_force: Option<i32>,
    /// The version an open amendment departs from.
    pub amendment_of: Option<i32>,
}

/// A contract with its current version's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// What is listed of it.
    pub summary: Summary,
    /// The content, as its canonical text (what the hash is computed from).
    pub content: String,
}

const SUMMARY: &str =
    "SELECT k.id, s.name, k.year, k.student, k.state, k.flags, k.version, v.hash, \
    v.content, k.in_force, k.amendment_of FROM contract k JOIN source s ON s.id = k.source_id \
    JOIN contract_version v ON v.contract_id = k.id AND v.version = k.version";

fn contract(row: &tokio_postgres::Row) -> Contract {
    Contract {
        summary: Summary {
            id: row.get(0),
            source: row.get(1),
            year: row.get(2),
            student: row.get(3),
            state: row.get(4),
            flags: row.get(5),
            version: row.get(6),
            hash: row.get(7),
            in_force: row.get(9),
            amendment_of: row.get(10),
        },
        content: row.get(8),
    }
}

/// The contracts `filter` selects, by year, student and source.
pub async fn list(client: &Client, filter: &Filter) -> Result<Vec<Summary>, ContractsError> {
    let rows = client
        .query(
            &format!(
                "{SUMMARY} WHERE ($1::int IS NULL OR k.year = $1) \
                 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM registration r \
                      WHERE r.source_id = k.source_id AND r.year = k.year \
                        AND r.student = k.student AND r.step = $2)) \
                 AND ($3::bool IS NULL OR (cardinality(k.flags) > 0) = $3) \
                 AND ($4::text IS NULL OR k.state = $4) \
                 ORDER BY k.year, k.student, s.name"
            ),
            &[&filter.year, &filter.step, &filter.flagged, &filter.state],
        )
        .await
        .map_err(ContractsError::db("listing the contracts"))?;
    Ok(rows.iter().map(|row| contract(row).summary).collect())
}

/// Who acts next in `state`.
pub fn next_step(state: &str) -> &'static str {
    match state {
        "draft" => "the directeur d'études edits and proposes it",
        "refused" => "the directeur d'études edits and proposes it again",
        "proposed" => "the student signs or refuses it",
        "signed" => "the directeur d'études validates or refuses it",
        "validated" => "nobody: it is in force (an amendment may be opened)",
        _ => "nobody: the year is over",
    }
}

/// One contract with its current version.
pub async fn get(client: &Client, id: i64) -> Result<Contract, ContractsError> {
    let row = client
        .query_opt(&format!("{SUMMARY} WHERE k.id = $1"), &[&id])
        .await
        .map_err(ContractsError::db("reading the contract"))?
        .ok_or(ContractsError::NotFound(id))?;
    Ok(contract(&row))
}

/// A contract's evidence: (seq, event text, hash), in order.
pub async fn events(
    client: &Client,
    id: i64,
) -> Result<Vec<(i32, String, String)>, ContractsError> {
    let rows = client
        .query(
            "SELECT seq, event, hash FROM contract_event WHERE contract_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(ContractsError::db("reading the evidence"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Every contract, one JSON object per line (the hand-off format of `contracts export`):
/// `{id, source, year, student, state, flags, version: {number, hash, content}}`, where
/// `content` is the canonical text the hash is the SHA-256 of.
pub async fn export(client: &Client, out: &mut dyn std::io::Write) -> Result<u64, ContractsError> {
    let rows = client
        .query(
            &format!("{SUMMARY} ORDER BY k.year, k.student, s.name"),
            &[],
        )
        .await
        .map_err(ContractsError::db("exporting the contracts"))?;
    for row in &rows {
        let c = contract(row);
        let line = json!({
            "id": c.summary.id,
            "source": c.summary.source,
            "year": c.summary.year,
            "student": c.summary.student,
            "state": c.summary.state,
            "flags": c.summary.flags,
            "version": { "number": c.summary.version, "hash": c.summary.hash, "content": c.content },
        });
        writeln!(out, "{line}")
            .map_err(|e| ContractsError::Config(format!("writing the export: {e}")))?;
    }
    Ok(rows.len() as u64)
}

/// A contract as `contracts show` prints it: its sections' paths as trees with the ECTS
/// per period, its statuses, flags and measures.
pub fn show(contract: &Contract) -> String {
    let s = &contract.summary;
    let content: Value = serde_json::from_str(&contract.content).unwrap_or(Value::Null);
    let mut out = String::new();
    let kind = if s.flags.is_empty() {
        "standard"
    } else {
        "specific"
    };
    let _ = writeln!(
        out,
        "Contract #{} — student {} — {}-{} — source {}\nstate: {} · version {} · {}\n{kind}",
        s.id,
        s.student,
        s.year,
        s.year + 1,
        s.source,
        s.state,
        s.version,
        s.hash
    );
    if let Some(base) = s.amendment_of {
        let _ = writeln!(out, "an amendment of version {base}");
    }
    if let Some(in_force) = s.in_force {
        let _ = writeln!(out, "in force: version {in_force}");
    }
    let _ = writeln!(out, "next: {}", next_step(&s.state));
    for flag in &s.flags {
        let _ = writeln!(out, "  flag {flag}: {}", rules::meaning(flag));
    }
    let statuses = strings(&content["special_statuses"]);
    let said = if statuses.is_empty() {
        "none".to_string()
    } else {
        statuses.join(", ")
    };
    let _ = writeln!(out, "special statuses: {said}");
    for section in content["sections"].as_array().into_iter().flatten() {
        show_section(&mut out, section);
    }
    let measures = content["measures"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(
        out,
        "measures:{}",
        if measures.is_empty() { " none" } else { "" }
    );
    for m in &measures {
        let _ = writeln!(
            out,
            "  - {} ({}; proposed by {})",
            m["label"].as_str().unwrap_or_default(),
            m["code"].as_str().unwrap_or_default(),
            m["proposed_by"].as_str().unwrap_or_default()
        );
    }
    out
}

fn strings(value: &Value) -> Vec<String> {
    (value.as_array().into_iter().flatten())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A section: its registration, its path as a tree, its ECTS per period.
fn show_section(out: &mut String, section: &Value) {
    let text = |key: &str| section[key].as_str().unwrap_or("-").to_string();
    let main = if section["main"].as_bool() == Some(true) {
        "main"
    } else {
        "second"
    };
    let _ = writeln!(
        out,
        "\nsection {} ({}, {main}, régime {}) — {}",
        text("step"),
        text("diploma"),
        text("regime"),
        text("status")
    );
    if let Some(reason) = section["closed_reason"].as_str() {
        let _ = writeln!(out, "  closed: {reason}");
    }
    let path = section["path"].as_array().cloned().unwrap_or_default();
    let step = text("step");
    let nodes: Vec<&str> = path.iter().filter_map(|n| n["node"].as_str()).collect();
    let roots = path.iter().filter(|n| {
        let parent = n["parent"].as_str().unwrap_or_default();
        parent == step || !nodes.contains(&parent)
    });
    for node in roots {
        show_node(out, node, &path, 1);
    }
    if let Some(periods) = section["ects_per_period"].as_object() {
        let per: Vec<String> = (periods.iter())
            .map(|(period, ects)| format!("{period} {}", number(ects)))
            .collect();
        let _ = writeln!(out, "  ECTS per period: {}", per.join(", "));
    }
}

fn show_node(out: &mut String, node: &Value, path: &[Value], depth: usize) {
    let id = node["node"].as_str().unwrap_or_default();
    let mut notes = Vec::new();
    if let Some(ects) = node.get("ects").filter(|e| !e.is_null()) {
        notes.push(format!("{} ECTS", number(ects)));
    }
    if let Some(period) = node["period"].as_str() {
        notes.push(period.to_string());
    }
    if let Some(via) = node["via"].as_str() {
        notes.push(format!("chosen in {via}"));
    }
    if node["carried_over"].as_bool() == Some(true) {
        notes.push("carried over".into());
    }
    if node["exempted"].as_bool() == Some(true) {
        notes.push("exempted".into());
    }
    let _ = writeln!(
        out,
        "{}{} {} [{}]{}",
        "  ".repeat(depth),
        id,
        node["label"].as_str().unwrap_or_default(),
        node["kind"].as_str().unwrap_or("-"),
        if notes.is_empty() {
            String::new()
        } else {
            format!(" — {}", notes.join(", "))
        }
    );
    let children = path.iter().filter(|n| n["parent"].as_str() == Some(id));
    for child in children.take(200) {
        if depth < 12 {
            show_node(out, child, path, depth + 1);
        }
    }
}

/// A number as JSON writes it, without a trailing `.0`.
fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{}", n as i64),
        Some(n) => n.to_string(),
        None => value.to_string(),
    }
}
