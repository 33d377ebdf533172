//! The process's panic hook: one structured log line per panic, inside the
//! span the panic happened in, instead of Rust's stderr dump.
//!
//! Installed once per process by [`Host::run`](crate::Host::run) (see
//! [`HostBuilder::panic_hook`](crate::HostBuilder::panic_hook)). A panic in
//! code Steward catches (a service, a task-group child, a blocking call; see
//! `poll_mark.rs`) is logged with its location, and its catcher then logs what
//! it does about it. A panic anywhere else, typically a plain `tokio::spawn`
//! whose `JoinHandle` nobody awaits, would otherwise vanish: it is counted in
//! [`HostStatus::unsupervised_panics`](crate::HostStatus::unsupervised_panics)
//! and logged with a hint.

use std::panic::PanicHookInfo;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::poll_mark::in_handled_code;

/// A panic here is caught by Steward: inside a service's poll, a blocking
/// call, or a task that runs as a service (task-group children, `ctx.spawn`
/// children, job attempts).
fn supervised() -> bool {
    in_handled_code()
}

static UNSUPERVISED: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// Panics outside supervised code since the hook was installed.
pub(crate) fn unsupervised_panics() -> u64 {
    UNSUPERVISED.load(Ordering::Relaxed)
}

/// Installs the hook, once per process; later calls do nothing.
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // With nobody collecting logs, a log line would be lost: a panic
            // must never be silent, so the default dump stays.
            if tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>()) {
                if !supervised() {
                    UNSUPERVISED.fetch_add(1, Ordering::Relaxed);
                }
                return previous(info);
            }
            log_panic(info);
        }));
    });
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let message = crate::error::panic_message(info.payload());
    let location = info
        .location()
        .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
    if supervised() {
        tracing::error!(%location, "panic: {message}");
        return;
    }
    let count = UNSUPERVISED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::error!(
        %location,
        unsupervised_panics = count,
        "panic outside any supervised service or task: {message}; nothing will restart or report this work. \
         Run it with `ctx.spawn`, in a task group (`ctx.task_group`) or as a service so its failure is handled"
    );
}
