//! SIGINT and SIGTERM: the operator's way to stop the host.

use tokio::task::JoinHandle;

use super::HostHandle;

/// Starts shutdown on SIGINT or SIGTERM.
pub(crate) fn watch_signals(host: HostHandle) -> JoinHandle<()> {
    tokio::spawn(async move {
        let name = wait_for_signal().await;
        match name {
            Ok(name) => tracing::info!(signal = name, "received {name}, shutting down"),
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for signals; stop the host with its handle");
                return;
            }
        }
        host.shutdown();
    })
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("Ctrl-C")
}
