//! What a notice says: a subject, a plain-text body for people, a JSON document for
//! tools — each with the run's summary and what the operator should do next.
//!
//! Notices leave the system (mailboxes, chat rooms), so they carry counts, statuses and
//! error messages (already fit for logs: student numbers masked) but never a record, a
//! quarantined payload or a key; those stay in the store, behind `conpere runs show`.

use super::settings::Event;
use chrono::{DateTime, SecondsFormat, Utc};
use conpere_core::runs::RunSummary;
use serde_json::{json, Value};

/// Where a notice comes from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `[institution] name` (may be empty).
    pub institution: String,
    /// The host of the daemon that ran the run.
    pub host: String,
    /// `[server] public_url`, for links to the admin API.
    pub public_url: Option<String>,
}

/// What started the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The source's schedule, for the run due at this instant.
    Schedule(DateTime<Utc>),
    /// `POST /api/v1/sources/{name}/run`.
    AdminApi,
    /// `conpere notify --test`: no run at all.
    Test,
}

/// One notice about one source.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What happened.
    pub event: Event,
    /// The source's name.
    pub source: String,
    /// Its kind (`apogee`, `pegase`…).
    pub source_kind: String,
    /// What started the run.
    pub trigger: Trigger,
    /// How many times the run was tried (retries included).
    pub attempts: u32,
    /// The run, when one was recorded (a failure before the run started has none).
    pub run: Option<RunSummary>,
    /// Why it failed, as the daemon saw it.
    pub error: Option<String>,
    /// The source's next scheduled run.
    pub next_run: Option<DateTime<Utc>>,
    /// For a recovery: when the failure was notified.
    pub failing_since: Option<DateTime<Utc>>,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Notice {
    fn run_id(&self) -> Option<i64> {
        self.run.as_ref().map(|r| r.id)
    }

    fn link(&self, origin: &Origin, path: &str) -> Option<String> {
        let base = origin.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/api/v1{path}"))
    }

    /// The one-line subject.
    pub fn subject(&self, origin: &Origin) -> String {
        let prefix = if origin.institution.is_empty() {
            "[conpere]".to_string()
        } else {
            format!("[conpere {}]", origin.institution)
        };
        let run = self
            .run_id()
            .map(|id| format!("run #{id}"))
            .unwrap_or_else(|| "run".into());
        let what = match self.event {
            Event::Failed => format!("{run} failed, nothing applied"),
            Event::Held => format!("{run} held, waiting for a decision"),
            Event::Recovered => format!("{run} succeeded again"),
        };
        let test = if self.trigger == Trigger::Test {
            " (test notice)"
        } else {
            ""
        };
        format!("{prefix} source `{}`: {what}{test}", self.source)
    }

    /// What the operator should do, step by step.
    pub fn what_to_do(&self, origin: &Origin) -> Vec<String> {
        let source = &self.source;
        let api = |path: &str| {
            self.link(origin, path)
                .map(|url| format!(" (or POST {url})"))
                .unwrap_or_default()
        };
        let next = self
            .next_run
            .map(|t| format!("the next scheduled run, at {}, tries again", time(t)))
            .unwrap_or_else(|| "no run is scheduled".into());
        match (self.event, self.run_id()) {
            (_, _) if self.trigger == Trigger::Test => vec![
                "Nothing: this is a test notice sent by `conpere notify --test`; it shows the channel works.".into(),
            ],
            (Event::Failed, run) => {
                let mut steps = vec![format!(
                    "Nothing of this run was applied: the store still holds the last successful sync of `{source}`, and contracts based on it are unaffected."
                )];
                steps.push(format!(
                    "Read the error; `conpere check --source {source}` tests the configuration and the connection to the SIS without writing anything."
                ));
                if let Some(id) = run {
                    let url = self
                        .link(origin, &format!("/runs/{id}"))
                        .map(|u| format!(" (or GET {u})"))
                        .unwrap_or_default();
                    steps.push(format!("Details: `conpere runs show {id}`{url}."));
                }
                steps.push(format!(
                    "Once the cause is fixed, run it now with `conpere sync --source {source}`{}; otherwise {next}.",
                    api(&format!("/sources/{source}/run"))
                ));
                steps
            }
            (Event::Held, Some(id)) => vec![
                format!(
                    "Nothing of run #{id} is applied yet: it would delete more than `deletion_hold` allows, which usually means a cut-short export, a wrong year or a closed programme rather than real departures."
                ),
                format!("Look at what it would change: `conpere runs show {id}`."),
                format!(
                    "If the deletions are real, apply it: `conpere runs approve {id}`{}.",
                    api(&format!("/runs/{id}/approve"))
                ),
                format!(
                    "If not, discard it: `conpere runs reject {id}`{}, then fix the source; a later successful run makes this one obsolete.",
                    api(&format!("/runs/{id}/reject"))
                ),
            ],
            (Event::Held, None) => vec![format!("Look at the held runs: `conpere runs list --held --source {source}`.")],
            (Event::Recovered, _) => vec![format!(
                "Nothing: `{source}` synced successfully again and the store is up to date."
            )],
        }
    }

    /// The plain-text body of an e-mail.
    pub fn text(&self, origin: &Origin) -> String {
        let mut text = format!("{}\n\n", self.subject(origin));
        for (label, value) in self.facts(origin) {
            text.push_str(&format!("{label:<12} {value}\n"));
        }
        text.push_str("\nWhat to do:\n");
        for (n, step) in self.what_to_do(origin).iter().enumerate() {
            text.push_str(&format!("{}. {step}\n", n + 1));
        }
        text.push_str(&format!("\nSent by conpere serve on {}.\n", origin.host));
        text
    }

    /// The facts, as label and value, in reading order.
    fn facts(&self, origin: &Origin) -> Vec<(&'static str, String)> {
        let mut facts = vec![("Source:", format!("{} ({})", self.source, self.source_kind))];
        facts.push(("Started by:", self.trigger_text()));
        if self.attempts > 1 {
            facts.push(("Attempts:", self.attempts.to_string()));
        }
        if let Some(run) = &self.run {
            facts.push((
                "Run:",
                format!("#{} ({}, {})", run.id, run.status.as_str(), run.mode),
            ));
            facts.push(("Started:", time(run.started_at)));
            if let Some(finished) = run.finished_at {
                facts.push(("Finished:", time(finished)));
            }
            let t = &run.totals;
            facts.push((
                "Records:",
                format!(
                    "{} read, {} inserted, {} updated, {} deleted, {} unchanged, {} quarantined",
                    t.staged, t.inserted, t.updated, t.deleted, t.unchanged, t.quarantined
                ),
            ));
            if let Some(reason) = &run.hold_reason {
                facts.push(("Held:", reason.clone()));
            }
        }
        if let Some(error) = self.error() {
            facts.push(("Error:", error.to_string()));
        }
        if let Some(since) = self.failing_since {
            facts.push(("Failing since:", time(since)));
        }
        if let Some(next) = self.next_run {
            facts.push(("Next run:", time(next)));
        }
        if let Some(url) = self
            .run_id()
            .and_then(|id| self.link(origin, &format!("/runs/{id}")))
        {
            facts.push(("Details:", url));
        }
        facts
    }

    fn error(&self) -> Option<&str> {
        self.error
            .as_deref()
            .or_else(|| self.run.as_ref().and_then(|r| r.error.as_deref()))
    }

    fn trigger_text(&self) -> String {
        match self.trigger {
            Trigger::Schedule(due) => format!("schedule (due {})", time(due)),
            Trigger::AdminApi => "admin API".into(),
            Trigger::Test => "conpere notify --test".into(),
        }
    }

    /// The JSON document a webhook receives. `text` (subject and steps) lets chat tools
    /// that show only that field (Mattermost, Rocket.Chat, Slack) show something whole.
    pub fn json(&self, origin: &Origin) -> Value {
        let run = self.run.as_ref().map(|run| {
            json!({
                "id": run.id,
                "status": run.status.as_str(),
                "mode": run.mode,
                "started_at": time(run.started_at),
                "finished_at": run.finished_at.map(time),
                "totals": run.totals,
                "error": run.error,
                "hold_reason": run.hold_reason,
            })
        });
        let steps = self.what_to_do(origin);
        let mut text = format!("{}\n", self.subject(origin));
        if let Some(error) = self.error() {
            text.push_str(&format!("Error: {error}\n"));
        }
        for (n, step) in steps.iter().enumerate() {
            text.push_str(&format!("{}. {step}\n", n + 1));
        }
        let (trigger, due) = match self.trigger {
            Trigger::Schedule(due) => ("schedule", Some(time(due))),
            Trigger::AdminApi => ("admin_api", None),
            Trigger::Test => ("test", None),
        };
        json!({
            "event": self.event.as_str(),
            "source": self.source,
            "source_kind": self.source_kind,
            "institution": origin.institution,
            "host": origin.host,
            "trigger": trigger,
            "due_at": due,
            "attempts": self.attempts,
            "run": run,
            "error": self.error(),
            "failing_since": self.failing_since.map(time),
            "next_run": self.next_run.map(time),
            "link": self.run_id().and_then(|id| self.link(origin, &format!("/runs/{id}"))),
            "what_to_do": steps,
            "text": text,
        })
    }
}
