//! Being asked to stop: the one place that listens for it, so that the daemon, the
//! simulators, the demo's pages and an interactive sync stop alike.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves when conpere is asked to stop: SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C).
/// An error means the SIGTERM handler could not be installed.
pub async fn stop_requested() -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
