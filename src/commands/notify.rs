//! `conpere notify --test`: a test notice through each notification channel (or one),
//! so that an operator sees a webhook or an SMTP set-up work before the night something
//! fails. Needs no database; exit 0 when every channel accepted it, 1 otherwise.

use super::exit;
use crate::cli::NotifyArgs;
use crate::config::{usage, Config};
use crate::notify::settings::Event;
use crate::notify::{Channels, Notice, Trigger};

/// `conpere notify --test [--channel NAME]`.
pub async fn notify(config: &Config, args: NotifyArgs) -> anyhow::Result<i32> {
    let channels = Channels::new(config)?;
    let names = match &args.channel {
        Some(name) if channels.names().contains(name) => vec![name.clone()],
        Some(name) => {
            return Err(usage(format!(
                "no channel [notifications.{name}]; configured: {}",
                list(&channels.names())
            )))
        }
        None if channels.names().is_empty() => {
            return Err(usage(
                "no notification channel is configured: add a [notifications.<name>] table \
                 (kind = \"webhook\" or \"email\"; see the README, \"Running conpere in production\")",
            ))
        }
        None => channels.names(),
    };
    let notice = Notice {
        event: Event::Failed,
        source: "test".into(),
        source_kind: "test".into(),
        trigger: Trigger::Test,
        attempts: 1,
        run: None,
        error: Some("none: this is a test notice".into()),
        next_run: None,
        failing_since: None,
    };
    let mut code = exit::OK;
    for name in names {
        match channels.send_to(&name, &notice).await {
            Ok(()) => println!("[notifications.{name}]: delivered"),
            Err(error) => {
                println!("[notifications.{name}]: NOT delivered: {error:#}");
                code = exit::FAILED;
            }
        }
    }
    Ok(code)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
