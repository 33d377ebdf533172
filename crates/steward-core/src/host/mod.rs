//! The host: builds, starts, supervises and stops named services.
//!
//! - [`builder`]: registration and configuration checks.
//! - [`supervisor`]: one task per service running init, run, failure policy.
//! - [`shutdown`]: the ordered, time-bounded stop.

mod builder;
mod shutdown;
mod signals;
mod supervisor;
mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use builder::{HostBuilder, ServiceConfig};

use crate::HostStatus;
use crate::blocking::BlockingPool;
use crate::status::{self, ChannelShared, Slot};

/// How the host ended; convert it into a process exit code.
///
/// ```
/// use steward_core::ExitStatus;
/// assert_eq!(ExitStatus::Clean.code(), 0);
/// let code: std::process::ExitCode = ExitStatus::Clean.into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// Asked to stop, and every service stopped in time.
    Clean,
    /// A service with [`FailurePolicy::StopHost`](crate::FailurePolicy::StopHost) failed.
    ServiceFailed {
        /// The failing service.
        service: String,
        /// Its error.
        error: String,
    },
    /// These services did not stop within the shutdown timeout and were aborted.
    ShutdownTimedOut {
        /// The services that were aborted.
        services: Vec<String>,
    },
}

impl ExitStatus {
    /// 0 when clean, 1 when a service stopped the host, 2 when shutdown
    /// timed out.
    ///
    /// ```
    /// let s = steward_core::ExitStatus::ShutdownTimedOut { services: vec!["slow".into()] };
    /// assert_eq!(s.code(), 2);
    /// ```
    pub fn code(&self) -> u8 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::ServiceFailed { .. } => 1,
            ExitStatus::ShutdownTimedOut { .. } => 2,
        }
    }

    /// True for [`ExitStatus::Clean`].
    ///
    /// ```
    /// assert!(steward_core::ExitStatus::Clean.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        *self == ExitStatus::Clean
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

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
    watch: watchdog::WatchConfig,
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
    /// them in reverse order of registration within the shutdown timeout.
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
        handle.shared.shutdown.cancelled().await;
        let status = shutdown::stop_all(&handle, running).await;
        watchdog.host_returned();
        status
    }
}

/// Shared state of a running host.
pub(crate) struct HostShared {
    pub(crate) slots: Vec<Arc<Slot>>,
    pub(crate) channels: Vec<Arc<ChannelShared>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) failure: Mutex<Option<ExitStatus>>,
    pub(crate) shutdown_timeout: Duration,
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

    pub(crate) fn blocking(&self) -> &BlockingPool {
        &self.shared.blocking
    }

    /// Records that a service's failure stops the host, then starts shutdown.
    pub(crate) fn fail(&self, service: &str, error: &str) {
        let mut failure = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(ExitStatus::ServiceFailed {
                service: service.to_string(),
                error: error.to_string(),
            });
        }
        drop(failure);
        self.shutdown();
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
