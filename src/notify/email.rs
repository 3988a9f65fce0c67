//! An e-mail channel: the notice as a plain-text message, through the institution's SMTP
//! server (`lettre`), over STARTTLS (default), TLS, or — for a relay on the same host —
//! a plain connection. The password comes from the environment or a file.

use super::settings::{EmailSettings, SmtpSecurity};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// A configured e-mail channel.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    /// The channel `name` of `settings`, with its resolved `password`.
    pub fn new(
        name: &str,
        settings: &EmailSettings,
        password: Option<String>,
    ) -> anyhow::Result<Email> {
        let fail = |message: String| anyhow::anyhow!("[notifications.{name}]: {message}");
        let mailbox = |key: &str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| {
                fail(format!(
                    "`{key}`: `{text}` is not an e-mail address ({e}); e.g. \"conpere <conpere@univ.example.fr>\""
                ))
            })
        };
        let from = mailbox("from", &settings.from)?;
        let to = settings
            .to
            .iter()
            .map(|address| mailbox("to", address))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if to.is_empty() {
            return Err(fail("`to` lists no recipient".into()));
        }
        let host = settings.smtp_host.as_str();
        let builder = match settings.security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| fail(format!("`smtp_host` {host}: {e}")))?;
        let timeout = Duration::from_secs(settings.timeout_seconds.unwrap_or(30));
        let mut builder = builder
            .port(
                settings
                    .smtp_port
                    .unwrap_or(settings.security.default_port()),
            )
            .timeout(Some(timeout));
        match (&settings.username, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (Some(_), None) => {
                return Err(fail(
                    "`username` is set but no password: set `password_env` or `password_file`"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(fail("a password is set but no `username`".into()));
            }
            (None, None) => {}
        }
        Ok(Email {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// Sends one message.
    pub async fn send(&self, subject: &str, body: String) -> anyhow::Result<()> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.body(body)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
        Ok(())
    }
}
