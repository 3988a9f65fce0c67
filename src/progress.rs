//! Progress of a run on the terminal: a spinner with counts when stderr is a terminal,
//! plain log lines otherwise (cron mails, CI logs, journald).

use conpere_core::engine::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Progress for the terminal or for logs.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    last_logged: AtomicU64,
}

/// Plain mode logs a line every this many staged items.
const LOG_EVERY: u64 = 100_000;

impl RunProgress {
    /// Chooses the form from stderr.
    pub fn new(source: &str) -> RunProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}: {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(source.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        RunProgress {
            bar,
            last_logged: AtomicU64::new(0),
        }
    }

    /// Removes the spinner before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for RunProgress {
    fn staged(&self, total: u64) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{total} items read and staged")),
            None => {
                let last = self.last_logged.load(Ordering::Relaxed);
                if total >= last + LOG_EVERY {
                    self.last_logged.store(total, Ordering::Relaxed);
                    tracing::info!(staged = total, "reading");
                }
            }
        }
    }

    fn phase(&self, phase: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(phase.to_string()),
            None => tracing::info!("{phase}"),
        }
    }
}
