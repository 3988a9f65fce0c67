//! `conpere simulate apogee`: a generated university served by the Apogée simulator until
//! interrupted. The first line printed is the base URL, so scripts (and `conpere bench
//! --apogee`) can read it.

use crate::cli::{SimulateArgs, SimulatedSis};
use conpere_apogee::simulator::{self, InjectedFault, SimulatorConfig};
use conpere_core::synth::{SynthConfig, University};
use std::io::Write;

/// Serves until Ctrl-C or SIGTERM (or, when asked, the end of standard input: the parent
/// process that started it is gone).
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<i32> {
    let SimulatedSis::Apogee = args.sis;
    let university = University::generate(SynthConfig::new(args.seed, args.students));
    let apogee = simulator::start(SimulatorConfig::new(university.records())).await?;
    if args.latency_ms > 0 {
        apogee
            .faults()
            .inject(InjectedFault::latency(args.latency_ms));
    }
    // A simulator's fixed credentials are no secret: print them so they can be used.
    let (username, password) = apogee.credentials();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", apogee.base_url())?;
    writeln!(
        out,
        "simulated Apogée: {} students, years {:?}, user `{username}`, password `{password}`; \
         Ctrl-C to stop",
        args.students,
        university.config().years
    )?;
    out.flush()?;
    drop(out);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let watch_stdin = args.exit_on_stdin_close;
    let stdin_closed = tokio::task::spawn_blocking(move || {
        if watch_stdin {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        } else {
            std::thread::park();
        }
    });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = stdin_closed => {}
    }
    let stats = apogee.stats();
    eprintln!(
        "served {} requests (at most {} at once)",
        stats.total, stats.max_in_flight
    );
    apogee.shutdown().await;
    Ok(super::exit::OK)
}
