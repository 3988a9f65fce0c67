//! `conpere simulate apogee|pegase`: a generated university served by a simulated SIS
//! until interrupted. The first line printed is the base URL, so scripts (and `conpere
//! bench --apogee|--pegase`) can read it.
//!
//! With `--exit-on-stdin-close`, standard input is also a control channel for the process
//! that started the simulator: one [`ControlCommand`] a line, answered by one line on
//! standard output (`error: …` when it cannot be done). Its end stops the simulator: the
//! parent is gone.

use crate::cli::{SimulateArgs, SimulatedSis};
use conpere_apogee::simulator as apogee;
use conpere_connectors::simulation::RequestStats;
use conpere_core::model::{Registration, RegistrationStatus};
use conpere_pegase::simulator as pegase;
use conpere_synth::{SynthConfig, University};
use std::io::{BufRead, Write};
use tokio::sync::mpsc;

/// Serves until Ctrl-C, SIGTERM or (when asked) the end of standard input.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<i32> {
    let university = University::generate(SynthConfig::new(args.seed, args.students));
    match args.sis {
        SimulatedSis::Apogee => simulate_apogee(&args, &university).await?,
        SimulatedSis::Pegase => simulate_pegase(&args, &university).await?,
    }
    Ok(super::exit::OK)
}

async fn simulate_apogee(args: &SimulateArgs, university: &University) -> anyhow::Result<()> {
    let apogee = apogee::start(apogee::SimulatorConfig::new(university.records())).await?;
    if args.latency_ms > 0 {
        let latency = apogee::InjectedFault::latency(args.latency_ms);
        apogee.faults().inject(latency);
    }
    // A simulator's fixed credentials are no secret: print them so they can be used.
    let (username, password) = apogee.credentials();
    announce(
        &apogee.base_url(),
        &format!(
            "simulated Apogée: {} students, years {:?}, user `{username}`, password `{password}`",
            args.students,
            university.config().years
        ),
    )?;
    serve_until_stopped(args.exit_on_stdin_close, |command| match command {
        ControlCommand::ChangeRegistrations { .. } => {
            Err("the simulated Apogée cannot change registrations".to_string())
        }
    })
    .await?;
    report_served(&apogee.stats());
    apogee.shutdown().await;
    Ok(())
}

async fn simulate_pegase(args: &SimulateArgs, university: &University) -> anyhow::Result<()> {
    let pegase = pegase::start(pegase::SimulatorConfig::new(university.records())).await?;
    if args.latency_ms > 0 {
        let latency = pegase::InjectedFault::latency(args.latency_ms);
        pegase.faults().inject(latency);
    }
    let (username, password) = pegase.credentials();
    let periods: Vec<&str> = pegase.periods().iter().map(|p| p.code.as_str()).collect();
    announce(
        &pegase.base_url(),
        &format!(
            "simulated Pégase: {} students, token at {}, structure {}, periods {periods:?}, \
             user `{username}`, password `{password}`",
            args.students,
            pegase.token_url(),
            pegase.structure()
        ),
    )?;
    serve_until_stopped(args.exit_on_stdin_close, |command| match command {
        ControlCommand::ChangeRegistrations { per_mille } => {
            let changed = pegase.update_registrations(change_registrations(per_mille));
            Ok(format!("changed {changed}"))
        }
    })
    .await?;
    report_served(&pegase.stats());
    pegase.shutdown().await;
    Ok(())
}

/// The base URL alone on the first line (what a parent process reads), then `details` for
/// people.
fn announce(base_url: &str, details: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{base_url}")?;
    writeln!(out, "{details}; Ctrl-C to stop")?;
    out.flush()
}

fn report_served(stats: &RequestStats) {
    eprintln!(
        "served {} requests (at most {} at once)",
        stats.total, stats.max_in_flight
    );
}

/// What the process that started the simulator can ask of it while it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCommand {
    /// `change-registrations <per-mille>`: change that share of the registrations, as
    /// between two nightly syncs; answered by `changed <n>`.
    ChangeRegistrations {
        /// Registrations changed per thousand (0 to 1000).
        per_mille: u32,
    },
}

impl ControlCommand {
    /// Reads one line of the control channel.
    pub fn parse(line: &str) -> Result<ControlCommand, String> {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["change-registrations", share] => match share.parse() {
                Ok(per_mille @ 0..=1000) => Ok(ControlCommand::ChangeRegistrations { per_mille }),
                _ => Err(format!("`{share}` is not a per-mille share (0 to 1000)")),
            },
            _ => Err(format!(
                "unknown command {line:?} (known: change-registrations <per-mille>)"
            )),
        }
    }
}

/// Changes `per_mille` ‰ of the registrations the feed carries (pending ones are not),
/// spread evenly over them, always the same ones for the same data: one in five of those
/// is cancelled when still active, the others gain or lose the special status
/// `employed` — the changes a nightly sync sees most.
fn change_registrations(per_mille: u32) -> impl FnMut(&mut Registration) -> bool {
    let (mut seen, mut changed) = (0_u64, 0_u64);
    move |registration| {
        if registration.status == RegistrationStatus::Pending {
            return false;
        }
        seen += 1;
        // The integer part of seen × share steps up once every 1000 / per_mille.
        if seen * u64::from(per_mille) / 1000 == (seen - 1) * u64::from(per_mille) / 1000 {
            return false;
        }
        changed += 1;
        if changed % 5 == 0 && registration.status == RegistrationStatus::Active {
            registration.status = RegistrationStatus::Cancelled;
        } else {
            toggle_employed(&mut registration.special_statuses);
        }
        true
    }
}

fn toggle_employed(special_statuses: &mut Vec<String>) {
    match special_statuses.iter().position(|s| s == "employed") {
        Some(at) => {
            special_statuses.remove(at);
        }
        None => special_statuses.push("employed".to_string()),
    }
}

/// Returns on Ctrl-C, SIGTERM or, when `watch_stdin`, the end of standard input; answers
/// each control line with `on_command` meanwhile.
async fn serve_until_stopped(
    watch_stdin: bool,
    mut on_command: impl FnMut(ControlCommand) -> Result<String, String>,
) -> anyhow::Result<()> {
    let stop = crate::signals::stop_requested();
    tokio::pin!(stop);
    let mut control = watch_stdin.then(stdin_lines);
    loop {
        let line = tokio::select! {
            stopped = &mut stop => return Ok(stopped?),
            line = next_line(&mut control) => line,
        };
        let Some(line) = line else {
            return Ok(());
        };
        let answer = ControlCommand::parse(&line)
            .and_then(&mut on_command)
            .unwrap_or_else(|reason| format!("error: {reason}"));
        let mut out = std::io::stdout().lock();
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
}

/// The lines of standard input, read on a thread of its own: a blocking read cannot be
/// cancelled, and a plain thread, unlike a blocking task of the runtime, does not hold
/// the process up when it exits.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// The next control line; `None` once standard input has ended; never, when it is not
/// watched.
async fn next_line(control: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match control {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_parse() {
        assert_eq!(
            ControlCommand::parse(" change-registrations 10\n"),
            Ok(ControlCommand::ChangeRegistrations { per_mille: 10 })
        );
        assert!(ControlCommand::parse("change-registrations 1001").is_err());
        assert!(ControlCommand::parse("stop").is_err());
    }

    #[test]
    fn change_registrations_changes_the_share_asked() {
        let university = University::generate(SynthConfig::new(3, 400));
        let mut registrations: Vec<Registration> = university
            .records()
            .filter_map(|r| match r {
                conpere_core::model::Record::Registration(r) => Some(r),
                _ => None,
            })
            .filter(|r| r.status != RegistrationStatus::Pending)
            .collect();
        let before = registrations.clone();
        let change = change_registrations(100);
        let changed = registrations.iter_mut().map(change).filter(|&c| c).count();
        assert_eq!(changed, before.len() / 10);
        let differing = before.iter().zip(&registrations).filter(|(a, b)| a != b);
        assert_eq!(differing.count(), changed);
        let cancelled = |all: &[Registration]| {
            all.iter()
                .filter(|r| r.status == RegistrationStatus::Cancelled)
                .count()
        };
        assert!(cancelled(&registrations) > cancelled(&before));
    }
}
