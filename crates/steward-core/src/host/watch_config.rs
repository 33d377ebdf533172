//! The watchdog's settings and the builder methods that set them.

use std::time::Duration;

use super::HostBuilder;
use crate::ConfigError;

const DEFAULT_BLOCKED_AFTER: Duration = Duration::from_secs(1);

/// The watchdog's settings, kept by the builder and the host.
#[derive(Debug, Clone)]
pub(crate) struct WatchConfig {
    pub(super) blocked_after: Duration,
    /// `None`: follow `handle_signals`.
    pub(super) hard_exit: Option<bool>,
    pub(super) panic_hook: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            blocked_after: DEFAULT_BLOCKED_AFTER,
            hard_exit: None,
            panic_hook: true,
        }
    }
}

impl HostBuilder {
    /// How long a service may hold a runtime thread inside one poll (a
    /// `std::thread::sleep`, a long synchronous loop) before the watchdog
    /// reports it blocked: an ERROR log naming it, `blocked` in its status,
    /// and the host not live (`/healthz` 503) until it yields. Default 1 s;
    /// zero is refused.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// builder.blocked_after(std::time::Duration::from_secs(5))?;
    /// assert!(builder.blocked_after(std::time::Duration::ZERO).is_err());
    /// # Ok(()) }
    /// ```
    pub fn blocked_after(&mut self, threshold: Duration) -> Result<&mut Self, ConfigError> {
        if threshold.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: "the blocked-thread threshold".to_string(),
            });
        }
        self.watch.blocked_after = threshold;
        Ok(self)
    }

    /// Whether the process is ended, with exit code 2, when shutdown has not
    /// finished by the shutdown timeout plus 2 s, or left work running
    /// (a service stuck in a blocking call, a [`Context::spawn_blocking`]
    /// closure that never returns): threads stuck that way would otherwise
    /// keep the process alive indefinitely. One ERROR line names what is
    /// stuck first.
    ///
    /// Default: on when the host handles signals ([`handle_signals`], on by
    /// default), since such a host owns its process; off otherwise. Turn it
    /// off when the host is embedded in a process that must outlive it, or in
    /// tests running many hosts in one process.
    ///
    /// [`Context::spawn_blocking`]: crate::Context::spawn_blocking
    /// [`handle_signals`]: HostBuilder::handle_signals
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// builder.hard_exit(false); // this process goes on after the host returns
    /// # }
    /// ```
    pub fn hard_exit(&mut self, on: bool) -> &mut Self {
        self.watch.hard_exit = Some(on);
        self
    }

    /// Whether [`Host::run`](crate::Host::run) installs Steward's panic hook
    /// (default true; installed once per process, never removed). It logs
    /// each panic as one ERROR line with its message and location, inside
    /// the current span (so it names the service), instead of Rust's stderr
    /// dump, and counts panics in tasks nobody supervises in
    /// [`HostStatus::unsupervised_panics`](crate::HostStatus::unsupervised_panics).
    /// With no tracing subscriber installed it keeps the previous hook's
    /// output, so a panic is never silent.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// builder.panic_hook(false); // keep a hook of your own
    /// # }
    /// ```
    pub fn panic_hook(&mut self, on: bool) -> &mut Self {
        self.watch.panic_hook = on;
        self
    }
}
