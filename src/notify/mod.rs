//! Notifications: telling operators when a run fails or is held — and, if they ask, when
//! a source recovers — by webhook or e-mail, with the run's summary and what to do.
//!
//! Channels are named once (`[notifications.<name>]`, see [`settings`]); each source
//! lists the ones it tells (`notify = ["ops"]`), else `[server] notify` applies. A
//! [`Notifier`] is built when the daemon starts, so a missing secret or a bad address
//! stops it at once rather than on the night something fails. Each delivery attempt is
//! recorded in the store (`conpere_core::notifications`): the admin API shows who was
//! told about a run, `/metrics` counts failed deliveries, and a recovery is announced only
//! after a failure was.
//!
//! A notice that cannot be delivered is logged and counted, never retried past its
//! channel's own retries: the run it is about is already recorded either way.

mod email;
mod message;
pub mod settings;
mod webhook;

pub use message::{Notice, Origin, Trigger};
use settings::{ChannelSettings, Event};

use crate::config::{secret_setting, usage, Config};
use chrono::{DateTime, Utc};
use conpere_connectors::SourceConfig;
use conpere_core::notifications::{self, Delivery};
use conpere_core::runs;
use deadpool_postgres::Pool;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a run of a source ended, with its retries, as the daemon saw it.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Applied (succeeded, possibly with warnings).
    Applied {
        /// The run.
        run_id: i64,
    },
    /// Held for a person.
    Held {
        /// The run.
        run_id: i64,
    },
    /// Failed, nothing applied.
    Failed {
        /// The run, when one was recorded.
        run_id: Option<i64>,
        /// Why.
        error: String,
        /// Whether the same run may succeed later (a source that was down), rather than
        /// fail the same way (a refused account, a damaged drop): only then is it retried.
        retryable: bool,
    },
    /// The source had nothing new: no run.
    NothingNew,
    /// Another run of the source held it: this attempt did not start (no run recorded,
    /// nothing to tell: the other run's end is told).
    Busy,
}

impl Ending {
    /// The run recorded, if any.
    pub fn run_id(&self) -> Option<i64> {
        match self {
            Ending::Applied { run_id } | Ending::Held { run_id } => Some(*run_id),
            Ending::Failed { run_id, .. } => *run_id,
            Ending::NothingNew | Ending::Busy => None,
        }
    }
}

/// What the notifier is told after a run.
#[derive(Debug, Clone)]
pub struct RunEnded<'a> {
    /// The source.
    pub source: &'a SourceConfig,
    /// How it ended.
    pub ending: Ending,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// What started it.
    pub trigger: Trigger,
    /// The source's next scheduled run.
    pub next_run: Option<DateTime<Utc>>,
}

enum Transport {
    Webhook(webhook::Webhook),
    Email(email::Email),
}

struct Channel {
    events: Vec<Event>,
    repeat_after: chrono::Duration,
    transport: Transport,
}

/// The configured channels, built and checked, ready to send.
pub struct Channels {
    channels: BTreeMap<String, Channel>,
    defaults: Vec<String>,
    origin: Origin,
}

impl Channels {
    /// Builds every channel (secrets read, addresses checked) and checks that every
    /// source names only channels that exist.
    pub fn new(config: &Config) -> anyhow::Result<Channels> {
        let mut channels = BTreeMap::new();
        for (name, settings) in &config.notifications {
            let channel = channel(name, settings).map_err(|e| usage(format!("{e:#}")))?;
            channels.insert(name.clone(), channel);
        }
        let known = |list: &[String], whose: &str| -> anyhow::Result<()> {
            match list.iter().find(|n| !channels.contains_key(*n)) {
                Some(unknown) => Err(usage(format!(
                    "{whose}: `notify` names the channel `{unknown}`, which is not configured; \
                     add a [notifications.{unknown}] table (kind = \"webhook\" or \"email\"){}",
                    if channels.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " or use one of {}",
                            channels.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    }
                ))),
                None => Ok(()),
            }
        };
        let defaults = config.server.notify.clone().unwrap_or_default();
        known(&defaults, "[server]")?;
        for name in &config.source_names {
            let source = config.source(name)?;
            if let Some(list) = &source.common.notify {
                known(list, &format!("[sources.{name}]"))?;
            }
        }
        Ok(Channels {
            channels,
            defaults,
            origin: Origin {
                institution: config.institution.name.clone(),
                host: conpere_core::engine::hostname(),
                public_url: config.server.public_url.clone(),
            },
        })
    }

    /// The channel names.
    pub fn names(&self) -> Vec<String> {
        self.channels.keys().cloned().collect()
    }

    /// The channels `source` tells.
    fn routes<'a>(&'a self, source: &'a SourceConfig) -> &'a [String] {
        source.common.notify.as_deref().unwrap_or(&self.defaults)
    }

    /// Sends `notice` through channel `name`; the error, if the channel refused it.
    pub async fn send_to(&self, name: &str, notice: &Notice) -> anyhow::Result<()> {
        let channel = self
            .channels
            .get(name)
            .ok_or_else(|| usage(format!("no channel [notifications.{name}]")))?;
        match &channel.transport {
            Transport::Webhook(webhook) => webhook.send(&notice.json(&self.origin)).await,
            Transport::Email(email) => {
                email
                    .send(&notice.subject(&self.origin), notice.text(&self.origin))
                    .await
            }
        }
    }
}

/// The channels and the store: tells how runs ended and records each delivery.
pub struct Notifier {
    channels: Channels,
    pool: Pool,
}

impl Notifier {
    /// The notifier of `config`'s channels (see [`Channels::new`]), recording in `pool`.
    pub fn new(config: &Config, pool: Pool) -> anyhow::Result<Notifier> {
        Ok(Notifier {
            channels: Channels::new(config)?,
            pool,
        })
    }

    /// Tells the source's channels how a run ended, when the ending is worth telling:
    /// a failure, a hold, or a success after a notified failure (for channels that asked).
    pub async fn run_ended(&self, ended: RunEnded<'_>) {
        if self.channels.routes(ended.source).is_empty() {
            return;
        }
        match self.notice(&ended).await {
            Ok(Some(notice)) => self.send(ended.source, &notice).await,
            Ok(None) => {}
            Err(error) => {
                tracing::error!(source = %ended.source.name, error = %format!("{error:#}"), "cannot prepare the notification")
            }
        }
    }

    /// The notice to send about `ended`, if any.
    async fn notice(&self, ended: &RunEnded<'_>) -> anyhow::Result<Option<Notice>> {
        let source = &ended.source.name;
        let (event, run_id, error) = match &ended.ending {
            Ending::NothingNew | Ending::Busy => return Ok(None),
            Ending::Failed { run_id, error, .. } => (Event::Failed, *run_id, Some(error.clone())),
            Ending::Held { run_id } => (Event::Held, Some(*run_id), None),
            Ending::Applied { run_id } => (Event::Recovered, Some(*run_id), None),
        };
        let mut failing_since = None;
        if event == Event::Recovered {
            match notifications::last_event(&self.pool, source, None).await? {
                Some((last, at)) if last == Event::Failed.as_str() => failing_since = Some(at),
                _ => return Ok(None),
            }
        }
        let run = match run_id {
            Some(id) => runs::show(&self.pool, id, 0).await?.map(|d| d.summary),
            None => None,
        };
        Ok(Some(Notice {
            event,
            source: source.clone(),
            source_kind: ended.source.common.kind.clone(),
            trigger: ended.trigger,
            attempts: ended.attempts,
            run,
            error,
            next_run: ended.next_run,
            failing_since,
        }))
    }

    /// Sends `notice` to each of the source's channels that wants it, all at once, and
    /// records each delivery.
    async fn send(&self, source: &SourceConfig, notice: &Notice) {
        let mut wanted = Vec::new();
        for name in self.channels.routes(source) {
            if self.wants(name, notice).await {
                wanted.push(name);
            }
        }
        let deliveries = wanted.into_iter().map(|name| self.deliver(name, notice));
        futures::future::join_all(deliveries).await;
    }

    /// Whether channel `name` wants `notice`: its event, and for a failure, not while the
    /// failure it was last told is younger than its `repeat_after_hours`.
    async fn wants(&self, name: &str, notice: &Notice) -> bool {
        let Some(channel) = self.channels.channels.get(name) else {
            return false;
        };
        if !channel.events.contains(&notice.event) {
            return false;
        }
        if notice.event != Event::Failed || channel.repeat_after.is_zero() {
            return true;
        }
        match notifications::last_event(&self.pool, &notice.source, Some(name)).await {
            Ok(Some((event, at)))
                if event == Event::Failed.as_str() && Utc::now() - at < channel.repeat_after =>
            {
                tracing::info!(source = %notice.source, channel = name, told_at = %at, "still failing: already told");
                false
            }
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(source = %notice.source, channel = name, %error, "cannot read the last notification: telling anyway");
                true
            }
        }
    }

    async fn deliver(&self, name: &str, notice: &Notice) {
        let result = self.channels.send_to(name, notice).await;
        let source = &notice.source;
        let event = notice.event.as_str();
        match &result {
            Ok(()) => tracing::info!(%source, channel = name, event, "notified"),
            Err(error) => {
                tracing::error!(%source, channel = name, event, error = %format!("{error:#}"), "notification not delivered")
            }
        }
        let delivery = Delivery {
            source: source.clone(),
            run_id: notice.run.as_ref().map(|r| r.id),
            event: event.to_string(),
            channel: name.to_string(),
            delivered: result.is_ok(),
            error: result.err().map(|e| format!("{e:#}")),
        };
        if let Err(error) = notifications::record(&self.pool, &delivery).await {
            tracing::warn!(%source, channel = name, %error, "cannot record the notification");
        }
    }
}

/// Builds channel `name`.
fn channel(name: &str, settings: &ChannelSettings) -> anyhow::Result<Channel> {
    let what = |key: &str| format!("[notifications.{name}] {key}");
    let transport = match settings {
        ChannelSettings::Webhook(w) => {
            if w.url.is_some() {
                anyhow::bail!(
                    "[notifications.{name}]: a webhook URL carries its token, so it never goes in the file: \
                     put it in an environment variable and set url_env = \"VAR\", or in a file \
                     readable only by conpere and set url_file = \"/path\""
                );
            }
            let url = secret_setting(&what("url"), w.url_env.as_ref(), w.url_file.as_ref())?
                .ok_or_else(|| {
                    anyhow::anyhow!("[notifications.{name}]: set url_env or url_file")
                })?;
            let token =
                secret_setting(&what("token"), w.token_env.as_ref(), w.token_file.as_ref())?;
            let timeout = Duration::from_secs(w.timeout_seconds.unwrap_or(10));
            Transport::Webhook(webhook::Webhook::new(
                name,
                url.expose().trim(),
                token.as_ref().map(|t| t.expose().trim()),
                timeout,
            )?)
        }
        ChannelSettings::Email(e) => {
            if e.password.is_some() {
                anyhow::bail!(
                    "[notifications.{name}]: the SMTP password never goes in the file: set \
                     password_env = \"VAR\" or password_file = \"/path\""
                );
            }
            let password = secret_setting(
                &what("password"),
                e.password_env.as_ref(),
                e.password_file.as_ref(),
            )?;
            Transport::Email(email::Email::new(
                name,
                e,
                password.map(|p| p.expose().to_string()),
            )?)
        }
    };
    Ok(Channel {
        events: settings.events().to_vec(),
        repeat_after: settings.repeat_after(),
        transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use conpere_core::engine::{Counts, RunStatus};
    use conpere_core::runs::RunSummary;

    fn config(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conpere.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    fn refusal(text: &str) -> String {
        match config(text).and_then(|c| Channels::new(&c)) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn secrets_written_in_a_channel_are_refused() {
        let webhook = refusal(
            "[notifications.chat]\nkind = \"webhook\"\nurl = \"https://chat.example.fr/hooks/x7kq9\"\n",
        );
        assert!(
            webhook.contains("url_env") && !webhook.contains("x7kq9"),
            "{webhook}"
        );
        let email = refusal(
            "[notifications.dsi]\nkind = \"email\"\nsmtp_host = \"smtp\"\nfrom = \"a@b.fr\"\n\
             to = [\"c@d.fr\"]\nusername = \"u\"\npassword = \"hunter2\"\n",
        );
        assert!(email.contains("password_env"), "{email}");
    }

    #[test]
    fn channel_mistakes_are_named() {
        let unknown_key =
            refusal("[notifications.dsi]\nkind = \"email\"\nsmtp_hots = \"smtp\"\nfrom = \"a@b.fr\"\nto = []\n");
        assert!(unknown_key.contains("smtp_hots"), "{unknown_key}");
        let address = refusal(
            "[notifications.dsi]\nkind = \"email\"\nsmtp_host = \"smtp\"\nfrom = \"not an address\"\n\
             to = [\"c@d.fr\"]\n",
        );
        assert!(
            address.contains("[notifications.dsi]") && address.contains("`from`"),
            "{address}"
        );
        let unknown_channel = refusal(
            "[notifications.dsi]\nkind = \"email\"\nsmtp_host = \"smtp\"\nfrom = \"a@b.fr\"\n\
             to = [\"c@d.fr\"]\n\n\
             [sources.files]\nkind = \"canonical\"\npath = \"/tmp\"\nnotify = [\"dsii\"]\n",
        );
        assert!(
            unknown_channel.contains("[sources.files]")
                && unknown_channel.contains("`dsii`")
                && unknown_channel.contains("dsi"),
            "{unknown_channel}"
        );
        let missing_variable = refusal(
            "[notifications.chat]\nkind = \"webhook\"\nurl_env = \"CONPERE_TEST_NO_SUCH_VARIABLE\"\n",
        );
        assert!(
            missing_variable.contains("CONPERE_TEST_NO_SUCH_VARIABLE"),
            "{missing_variable}"
        );
    }

    fn origin() -> Origin {
        Origin {
            institution: "Université Exemple".into(),
            host: "conpere-1".into(),
            public_url: Some("https://conpere.univ.example.fr/".into()),
        }
    }

    fn held_run() -> RunSummary {
        RunSummary {
            id: 7,
            source: "apogee".into(),
            status: RunStatus::Held,
            mode: "full".into(),
            dry_run: false,
            started_at: Utc.with_ymd_and_hms(2026, 11, 29, 1, 30, 0).unwrap(),
            finished_at: None,
            totals: Counts {
                staged: 900,
                deleted: 120,
                unchanged: 780,
                ..Counts::default()
            },
            error: None,
            hold_reason: Some("would delete 120 of 1000 enrolments (12 %)".into()),
            decided_by: None,
            deferred: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_held_notice_says_how_to_decide() {
        let notice = Notice {
            event: Event::Held,
            source: "apogee".into(),
            source_kind: "apogee".into(),
            trigger: Trigger::Schedule(Utc.with_ymd_and_hms(2026, 11, 29, 1, 30, 0).unwrap()),
            attempts: 1,
            run: Some(held_run()),
            error: None,
            next_run: None,
            failing_since: None,
        };
        let text = notice.text(&origin());
        for expected in [
            "[conpere Université Exemple] source `apogee`: run #7 held",
            "would delete 120 of 1000 enrolments",
            "`conpere runs approve 7` (or POST https://conpere.univ.example.fr/api/v1/runs/7/approve)",
            "`conpere runs reject 7`",
            "120 deleted",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        let json = notice.json(&origin());
        assert_eq!(json["event"], "held");
        assert_eq!(json["run"]["id"], 7);
        assert_eq!(json["run"]["totals"]["deleted"], 120);
        assert_eq!(json["due_at"], "2026-11-29T01:30:00Z");
        assert!(json["text"].as_str().unwrap().contains("runs approve 7"));
        assert_eq!(json["what_to_do"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn a_failure_without_a_run_gives_the_error_and_the_way_to_retry() {
        let notice = Notice {
            event: Event::Failed,
            source: "pegase".into(),
            source_kind: "pegase".into(),
            trigger: Trigger::AdminApi,
            attempts: 3,
            run: None,
            error: Some("source `pegase`: could not connect".into()),
            next_run: Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0).unwrap()),
            failing_since: None,
        };
        let origin = Origin {
            public_url: None,
            ..origin()
        };
        let text = notice.text(&origin);
        for expected in [
            "run failed, nothing applied",
            "Attempts:    3",
            "could not connect",
            "conpere check --source pegase",
            "conpere sync --source pegase",
            "2026-11-30T01:30:00Z",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        assert!(
            !text.contains("runs show") && !text.contains("POST"),
            "{text}"
        );
        let json = notice.json(&origin);
        assert!(json["run"].is_null() && json["link"].is_null());
        assert_eq!(json["error"], "source `pegase`: could not connect");
    }
}
