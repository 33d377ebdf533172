//! [`ServiceConfig`]: the per-service settings of a registration.

use std::time::Duration;

use super::builder::{Declared, Registered};
use crate::FailurePolicy;

/// Per-service settings, returned by [`HostBuilder::service`](crate::HostBuilder::service).
///
/// ```
/// # use std::time::Duration;
/// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
/// builder
///     .periodic("sync", Duration::from_secs(1), |_ctx| async { Ok(()) })?
///     .policy(steward_core::FailurePolicy::StopHost)
///     .init_timeout(Duration::from_secs(5));
/// # Ok(()) }
/// ```
pub struct ServiceConfig<'a> {
    pub(super) entry: &'a mut Registered,
    pub(super) declared: &'a mut Declared,
}

impl ServiceConfig<'_> {
    /// What happens when this service fails (default: restart with backoff).
    ///
    /// ```
    /// # fn demo(cfg: steward_core::ServiceConfig<'_>) {
    /// cfg.policy(steward_core::FailurePolicy::Ignore);
    /// # }
    /// ```
    pub fn policy(self, policy: FailurePolicy) -> Self {
        self.entry.policy = policy;
        self
    }

    /// How long this service's init may take before it counts as a failure.
    ///
    /// ```
    /// # fn demo(cfg: steward_core::ServiceConfig<'_>) {
    /// cfg.init_timeout(std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn init_timeout(self, timeout: Duration) -> Self {
        self.declared.init_timeout = Some(timeout);
        self
    }

    /// Says that this service may end by itself: its `run` returning
    /// `Ok(())` before shutdown is a normal end (state `Stopped`), not a
    /// failure. By default a service runs until the host stops it, and one
    /// that returns early is a failure handled by its policy, because a
    /// consumer whose stream ended quietly is the classic silent death.
    ///
    /// ```
    /// # use steward_core::{BoxError, Context, Service};
    /// struct Migrate;
    /// impl Service for Migrate {
    ///     async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
    ///         Ok(()) // done: the schema is up to date
    ///     }
    /// }
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// builder.service("migrate", Migrate)?.may_finish();
    /// # Ok(()) }
    /// ```
    pub fn may_finish(self) -> Self {
        self.entry.may_finish = true;
        self
    }

    /// Declares that this service beats (a tick of one of its
    /// [`Context::every`](crate::Context::every) tickers, or a
    /// [`Context::heartbeat`](crate::Context::heartbeat)) at least every
    /// `interval` while it runs. After three intervals without a beat it is
    /// `Unhealthy` and named by `/healthz`, although its state still says
    /// running: a loop stuck on a wait that never ends. Periodic services
    /// get their period as liveness interval unless they set another. A
    /// zero interval is refused by [`build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder, svc: impl steward_core::Service) -> Result<(), steward_core::ConfigError> {
    /// builder.service("poller", svc)?.liveness(std::time::Duration::from_secs(30));
    /// # Ok(()) }
    /// ```
    pub fn liveness(self, interval: Duration) -> Self {
        self.declared.liveness = Some(interval);
        self
    }

    /// Declares that this service sends to the channel named `channel`, so
    /// the host stops it before that channel's consumer. The host also
    /// learns this from use (a send inside the service's task); declaring
    /// it makes the order certain from the start and lets
    /// [`build`](crate::HostBuilder::build) refuse a cycle. Unknown names are
    /// refused by `build`.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// let (tx, rx) = builder.channel::<u64>("orders", 64)?;
    /// builder
    ///     .periodic("producer", std::time::Duration::from_secs(1), move |ctx| {
    ///         let tx = tx.clone();
    ///         async move { Ok(tx.send(1, &ctx).await?) }
    ///     })?
    ///     .sends_to("orders");
    /// # drop(rx);
    /// # Ok(()) }
    /// ```
    pub fn sends_to(self, channel: impl Into<String>) -> Self {
        self.declared.sends_to.push(channel.into());
        self
    }

    /// Declares that this service receives from the channel named
    /// `channel`: it stops after every producer of that channel. See
    /// [`sends_to`](ServiceConfig::sends_to).
    ///
    /// ```
    /// # use steward_core::{BoxError, Context, Receiver, Service};
    /// struct Consumer { rx: Receiver<u64> }
    /// impl Service for Consumer {
    ///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
    ///         while let Some(_n) = self.rx.recv(ctx).await {}
    ///         Ok(())
    ///     }
    /// }
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// let (tx, rx) = builder.channel::<u64>("orders", 64)?;
    /// builder.service("consumer", Consumer { rx })?.receives_from("orders");
    /// # drop(tx);
    /// # Ok(()) }
    /// ```
    pub fn receives_from(self, channel: impl Into<String>) -> Self {
        self.declared.receives_from.push(channel.into());
        self
    }
}
