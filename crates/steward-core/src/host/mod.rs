//! The host: builds, starts, supervises and stops named services.
//!
//! - [`builder`]: registration and configuration checks.
//! - [`supervisor`]: one task per service running init, run, failure policy.
//! - [`shutdown`]: the ordered, time-bounded stop.

mod builder;
mod exit;
mod service_config;
mod shutdown;
mod signals;
mod stop_order;
mod supervisor;
mod watch_config;
mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use builder::HostBuilder;
pub use exit::{ExitStatus, Failure, FailureKind};
pub use service_config::ServiceConfig;

use crate::HostStatus;
use crate::blocking::BlockingPool;
use crate::channel::ChannelShared;
use crate::status::{self, Slot};
use crate::sync::LockExt;

/// A built host, ready to [`run`](Host::run).
///
/// ```no_run
/// use std::time::Duration;
/// use steward_core::Host;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = Host::builder();
/// builder.periodic("tick", Duration::from_secs(1), |_ctx| async { Ok(()) })?;
/// let host = builder.build()?;
/// let status = host.run().await; // until SIGINT/SIGTERM or a shutdown handle
/// std::process::exit(status.code().into());
/// # }
/// ```
pub struct Host {
    shared: Arc<HostShared>,
    services: Vec<builder::Registered>,
    handle_signals: bool,
    watch: watch_config::WatchConfig,
}

impl Host {
    /// Starts configuring a host.
    ///
    /// ```
    /// let builder = steward_core::Host::builder();
    /// ```
    pub fn builder() -> HostBuilder {
        HostBuilder::new()
    }

    /// A handle for reading status and requesting shutdown, usable from
    /// anywhere while the host runs.
    ///
    /// ```
    /// # fn demo(host: steward_core::Host) {
    /// let handle = host.handle();
    /// // later, from another task: handle.shutdown();
    /// # }
    /// ```
    pub fn handle(&self) -> HostHandle {
        HostHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs every service until shutdown is requested (SIGINT, SIGTERM,
    /// [`HostHandle::shutdown`], or a failure under `StopHost`), then stops
    /// them (producers before their consumers, otherwise in reverse order of
    /// registration) within the shutdown timeout.
    ///
    /// ```no_run
    /// # async fn demo(host: steward_core::Host) {
    /// let status = host.run().await;
    /// # }
    /// ```
    pub async fn run(self) -> ExitStatus {
        let handle = self.handle();
        // Signals, blocked services and the exit bound are watched from a
        // thread of their own (see watchdog.rs).
        let watchdog = watchdog::arm(&handle, &self.watch, self.handle_signals);
        let running = supervisor::start_all(self.services, &handle);
        tracing::info!(services = running.len(), "host started");
        // Owns the services from here on: if this future is dropped (a
        // `select!` in main took another branch), its drop still stops them.
        // The watchdog goes with it, so signals and the exit bound keep
        // working during a stop that outlives this future.
        let stopper = shutdown::Stopper::new(handle.clone(), running, watchdog);
        handle.shared.shutdown.cancelled().await;
        stopper.stop().await
    }
}

/// Shared state of a running host.
pub(crate) struct HostShared {
    pub(crate) slots: Arc<[Arc<Slot>]>,
    pub(crate) channels: Vec<Arc<ChannelShared>>,
    /// Notified when a draining consumer starts waiting on its senders.
    pub(crate) progress: Arc<tokio::sync::Notify>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) shutting_down: AtomicBool,
    /// Every failure of the run so far, in order; the exit status is made
    /// from it.
    pub(crate) failures: Mutex<Vec<Failure>>,
    pub(crate) shutdown_timeout: Duration,
    /// When the services still running are aborted: set when shutdown
    /// begins (see `HostHandle::stop_deadline`).
    pub(crate) stop_deadline: std::sync::OnceLock<tokio::time::Instant>,
    pub(crate) blocking: BlockingPool,
}

/// A cheap, clonable handle on a host: status snapshots and shutdown.
///
/// ```
/// # async fn demo(handle: steward_core::HostHandle) {
/// let status = handle.status();
/// if !status.live { handle.shutdown(); }
/// # }
/// ```
#[derive(Clone)]
pub struct HostHandle {
    pub(crate) shared: Arc<HostShared>,
}

impl HostHandle {
    /// A snapshot of every service and channel, with liveness and readiness.
    ///
    /// ```
    /// # fn demo(handle: steward_core::HostHandle) {
    /// let ready = handle.status().ready;
    /// # }
    /// ```
    pub fn status(&self) -> HostStatus {
        status::snapshot(
            &self.shared.slots,
            &self.shared.channels,
            self.is_shutting_down(),
        )
    }

    /// Asks the host to shut down gracefully. Returns at once.
    ///
    /// ```
    /// # fn demo(handle: steward_core::HostHandle) { handle.shutdown(); }
    /// ```
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// True once shutdown was requested.
    ///
    /// ```
    /// # fn demo(handle: steward_core::HostHandle) { let stopping = handle.is_shutting_down(); }
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Relaxed) || self.shared.shutdown.is_cancelled()
    }

    /// Completes when shutdown is requested.
    ///
    /// ```
    /// # async fn demo(handle: steward_core::HostHandle) { handle.shutdown_requested().await; }
    /// ```
    pub async fn shutdown_requested(&self) {
        self.shared.shutdown.cancelled().await
    }

    /// The configured shutdown timeout.
    ///
    /// ```
    /// # fn demo(handle: steward_core::HostHandle) { let t = handle.shutdown_timeout(); }
    /// ```
    pub fn shutdown_timeout(&self) -> Duration {
        self.shared.shutdown_timeout
    }

    /// When the host will abort the services still running, once shutdown
    /// has begun (`None` before): the whole stop sequence shares one
    /// deadline, so a service stopped late has only what is left of the
    /// shutdown timeout, not all of it. A service that drains work uses it
    /// to finish in time.
    ///
    /// ```
    /// # fn demo(handle: steward_core::HostHandle) {
    /// if let Some(at) = handle.stop_deadline() {
    ///     let left = at.saturating_duration_since(tokio::time::Instant::now());
    /// }
    /// # }
    /// ```
    pub fn stop_deadline(&self) -> Option<tokio::time::Instant> {
        self.shared.stop_deadline.get().copied()
    }

    pub(crate) fn blocking(&self) -> &BlockingPool {
        &self.shared.blocking
    }

    /// Records that a service's failure stops the host, then starts shutdown.
    pub(crate) fn fail(&self, service: &str, error: &str) {
        self.record_failure(service, FailureKind::StoppedHost, error.to_string());
        self.shutdown();
    }

    /// Adds a failure to the ones the exit status will name.
    pub(crate) fn record_failure(&self, name: &str, kind: FailureKind, message: String) {
        self.shared.failures.lock_or_recover().push(Failure {
            name: name.to_string(),
            kind,
            message,
        });
    }

    /// Every failure recorded so far.
    pub(crate) fn failures(&self) -> Vec<Failure> {
        self.shared.failures.lock_or_recover().clone()
    }
}

impl std::fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostHandle")
            .field("services", &self.shared.slots.len())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("services", &self.services.len())
            .finish()
    }
}
