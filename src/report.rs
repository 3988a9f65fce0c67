//! Printing run outcomes: the summary table and what the operator should do next.

use conpere_core::engine::{Counts, RunReport, RunStatus};
use conpere_core::model::Kind;
use std::collections::BTreeMap;

fn row(label: &str, c: &Counts) -> String {
    format!(
        "{label:<14}{:>10}{:>10}{:>10}{:>10}{:>11}{:>13}",
        c.staged, c.inserted, c.updated, c.deleted, c.unchanged, c.quarantined
    )
}

/// The counts table: one line per kind, then the totals.
pub fn counts_table(by_kind: &BTreeMap<String, Counts>, totals: &Counts) -> String {
    let mut lines = vec![format!(
        "{:<14}{:>10}{:>10}{:>10}{:>10}{:>11}{:>13}",
        "kind", "read", "inserted", "updated", "deleted", "unchanged", "quarantined"
    )];
    for kind in Kind::ALL {
        if let Some(c) = by_kind.get(kind.as_str()) {
            lines.push(row(kind.as_str(), c));
        }
    }
    lines.push(row("total", totals));
    lines.join("\n")
}

/// The deletions a run did not apply, one line each, with what to do.
pub fn deferred_lines(deferred: &[String]) -> String {
    let mut out = String::new();
    for line in deferred {
        out.push_str(&format!("{line}.\n"));
    }
    out.push_str(
        "Deferred deletions are applied by the first run that reads the source whole \
         (fix or remove the unreadable lines).\n",
    );
    out
}

/// The summary printed at the end of `conpere sync`.
pub fn summary(report: &RunReport) -> String {
    let by_kind = report
        .by_kind
        .iter()
        .map(|(k, c)| (k.as_str().to_string(), *c))
        .collect();
    let dry = if report.dry_run {
        " (dry run: nothing applied)"
    } else {
        ""
    };
    let mut out = format!(
        "Run #{} of source `{}`: {}{dry}\n\n{}\n",
        report.run_id,
        report.source,
        report.status,
        counts_table(&by_kind, &report.totals)
    );
    out.push_str(&next_steps(report));
    out
}

fn next_steps(report: &RunReport) -> String {
    let id = report.run_id;
    let mut out = String::new();
    if report.status == RunStatus::Held {
        let reason = report.hold_reason.as_deref().unwrap_or("mass deletion");
        if report.dry_run {
            out.push_str(&format!("\nA real run would be held: it {reason}.\n"));
        } else {
            out.push_str(&format!(
                "\nHeld: this run {reason}. Nothing was applied.\n\
                 Review it with `conpere runs show {id}`, then `conpere runs approve {id}` \
                 or `conpere runs reject {id}`.\n"
            ));
        }
    }
    for note in &report.notes {
        out.push_str(&format!("\n{note}\n"));
    }
    if !report.deferred.is_empty() {
        out.push('\n');
        out.push_str(&deferred_lines(&report.deferred));
    }
    if report.totals.quarantined > 0 {
        out.push_str(&format!(
            "\n{} record(s) quarantined (the rest applied): `conpere runs show {id}` lists them \
             with their reason and location.\n",
            report.totals.quarantined
        ));
    }
    out
}
