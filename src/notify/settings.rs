//! `[notifications.<name>]`: a channel operators are told through, as written in
//! conpere.toml. Secrets (a webhook's URL, which carries its token; an SMTP password)
//! come from the environment or a file, never from the file itself.

use serde::Deserialize;
use std::path::PathBuf;

/// One channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelSettings {
    /// A JSON POST to a URL (Mattermost, Rocket.Chat, Slack, an alert manager, a ticketing
    /// system…).
    Webhook(WebhookSettings),
    /// An e-mail through an SMTP server.
    Email(EmailSettings),
}

impl ChannelSettings {
    /// The events this channel is told about.
    pub fn events(&self) -> &[Event] {
        match self {
            ChannelSettings::Webhook(w) => &w.events,
            ChannelSettings::Email(e) => &e.events,
        }
    }

    /// How long a source that keeps failing is not told about again on this channel.
    pub fn repeat_after(&self) -> chrono::Duration {
        let hours = match self {
            ChannelSettings::Webhook(w) => w.repeat_after_hours,
            ChannelSettings::Email(e) => e.repeat_after_hours,
        };
        chrono::Duration::milliseconds((hours.max(0.0) * 3_600_000.0) as i64)
    }
}

fn default_repeat_after_hours() -> f64 {
    12.0
}

/// What happened to a run, as notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The run failed (after its retries): nothing of it was applied.
    Failed,
    /// The run is held for a person to approve or reject.
    Held,
    /// A run succeeded after a failure was notified.
    Recovered,
}

impl Event {
    /// The name used in configuration, payloads and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failed => "failed",
            Event::Held => "held",
            Event::Recovered => "recovered",
        }
    }
}

fn default_events() -> Vec<Event> {
    vec![Event::Failed, Event::Held]
}

/// `kind = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Refused: a webhook URL carries its token; see `url_env` and `url_file`.
    pub url: Option<String>,
    /// Environment variable holding the URL.
    pub url_env: Option<String>,
    /// File holding the URL.
    pub url_file: Option<PathBuf>,
    /// Environment variable holding a bearer token sent as `Authorization: Bearer`.
    pub token_env: Option<String>,
    /// File holding that token.
    pub token_file: Option<PathBuf>,
    /// What to tell (default: `["failed", "held"]`).
    #[serde(default = "default_events")]
    pub events: Vec<Event>,
    /// Time allowed for each POST, in seconds (default 10).
    pub timeout_seconds: Option<u64>,
    /// A source still failing is told again only this many hours after the failure last
    /// told (default 12: once a night for a nightly schedule, twice a day at most for a
    /// frequent one); 0 tells every failure.
    #[serde(default = "default_repeat_after_hours")]
    pub repeat_after_hours: f64,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// A plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network (port 25).
    None,
}

impl SmtpSecurity {
    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// `kind = "email"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server's host name.
    pub smtp_host: String,
    /// Its port (default: from `security`).
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Login, when the server wants one.
    pub username: Option<String>,
    /// Refused: see `password_env` and `password_file`.
    pub password: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Sender, e.g. `conpere <conpere@univ.example.fr>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// What to tell (default: `["failed", "held"]`).
    #[serde(default = "default_events")]
    pub events: Vec<Event>,
    /// Time allowed for sending, in seconds (default 30).
    pub timeout_seconds: Option<u64>,
    /// As for a webhook: a source still failing is told again only after this many hours
    /// (default 12; 0 tells every failure).
    #[serde(default = "default_repeat_after_hours")]
    pub repeat_after_hours: f64,
}
