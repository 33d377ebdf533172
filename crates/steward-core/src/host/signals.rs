//! SIGINT and SIGTERM: the operator's way to stop the host, and to stop it
//! *now* when a graceful shutdown hangs.
//!
//! Listened for on the watchdog's own thread (see `watchdog.rs`), so that a
//! signal is seen even while every runtime thread is blocked.
//!
//! - First signal: graceful shutdown, bounded by the shutdown timeout (also
//!   when the host was already stopping by itself, after a `StopHost`
//!   failure: one `docker stop` must not cut that shutdown short).
//! - A second signal, or any signal after the host returned: the process
//!   exits at once, without waiting for services, with the shell's code for
//!   death by that signal: 130 for SIGINT, 143 for SIGTERM.
//! - Except a repeat within [`SAME_REQUEST`] of the signal that started the
//!   shutdown: one stop is often delivered twice (GNU `timeout` signals the
//!   child and then its process group; a terminal's Ctrl-C reaches every
//!   process of the foreground group), and must not turn a graceful stop
//!   into an abrupt exit. It is logged and ignored.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::HostHandle;
use crate::sync::LockExt;

/// A signal this soon after the one that started the shutdown is taken as
/// the same request delivered twice. Far shorter than a person takes to
/// decide a shutdown hangs and signal again.
const SAME_REQUEST: Duration = Duration::from_millis(500);

/// When the signal that started the latest shutdown arrived. Per process,
/// like signals themselves (a late repeat may reach the process after its
/// host returned).
static STARTED_BY: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether `signal` repeats the one that started the shutdown; logs it if so.
fn is_repeat(signal: Received) -> bool {
    let Some(first) = *STARTED_BY.lock_or_recover() else {
        return false;
    };
    let after = first.elapsed();
    if after >= SAME_REQUEST {
        return false;
    }
    let name = signal.name();
    tracing::info!(
        signal = name,
        after_ms = after.as_millis() as u64,
        "received {name} again {} ms after the first: taken as the same request; send it again to exit at once",
        after.as_millis()
    );
    true
}

/// Exit code after a second SIGINT (128 + 2, the shell convention).
pub(crate) const EXIT_SECOND_SIGINT: i32 = 130;
/// Exit code after a second SIGTERM (128 + 15, the shell convention).
pub(crate) const EXIT_SECOND_SIGTERM: i32 = 143;

/// A received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    Interrupt,
    Terminate,
}

impl Received {
    fn name(self) -> &'static str {
        match self {
            Received::Interrupt => "SIGINT",
            Received::Terminate => "SIGTERM",
        }
    }

    fn exit_code(self) -> i32 {
        match self {
            Received::Interrupt => EXIT_SECOND_SIGINT,
            Received::Terminate => EXIT_SECOND_SIGTERM,
        }
    }
}

/// Registered listeners. Registering before the host's services start means
/// no signal can arrive unheard and kill the process by its default action.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the listeners; needs a runtime with IO enabled.
    pub(crate) fn listen() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal; pending forever if the listeners closed.
    pub(crate) async fn recv(&mut self) -> Received {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.term.recv() => Received::Terminate,
                Some(()) = self.int.recv() => Received::Interrupt,
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Received::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Acts on a signal: starts the graceful shutdown, or ends the process if a
/// signal already started one (`again`).
pub(crate) fn on_signal(signal: Received, host: &HostHandle, again: bool) {
    let name = signal.name();
    if again && is_repeat(signal) {
        return;
    }
    if again {
        let code = signal.exit_code();
        tracing::error!(
            signal = name,
            code,
            "received {name} again during shutdown: exiting now with code {code}, without waiting for services to stop"
        );
        std::process::exit(code);
    }
    if host.is_shutting_down() {
        tracing::info!(
            signal = name,
            "received {name} while already shutting down; a second one exits at once"
        );
    } else {
        tracing::info!(signal = name, "received {name}, shutting down");
    }
    *STARTED_BY.lock_or_recover() = Some(Instant::now());
    host.shutdown();
}

/// A signal after the host returned (its `main` hangs in cleanup): ends the
/// process at once.
pub(crate) fn on_signal_after_return(signal: Received) {
    if is_repeat(signal) {
        return;
    }
    let name = signal.name();
    let code = signal.exit_code();
    tracing::error!(
        signal = name,
        code,
        "received {name} after the host stopped: exiting now with code {code}"
    );
    std::process::exit(code);
}
