//! The [`Service`] trait: what a long-running piece of work implements.

use std::future::Future;

use futures::future::BoxFuture;

use crate::{BoxError, ConfigError, Context, Section};

/// A named, long-running piece of work supervised by the [`Host`](crate::Host).
///
/// The host calls [`init`](Service::init) (bounded by the service's start-up
/// timeout), then [`run`](Service::run) until it returns or the service is
/// asked to stop through [`Context::token`], then [`on_stop`](Service::on_stop).
/// After a failure and a restart, the same value goes through `init` and `run`
/// again, so keep state that must survive restarts in `self`: configuration,
/// counters, a connection *pool*. Do not keep a connection or transaction
/// in `self` across units of work (failure 1 in `docs/seven-failures.md`):
/// one bad unit would poison every later one. Take one per unit from a
/// [`Scope`](crate::Scope) instead.
///
/// ```
/// use std::time::Duration;
/// use steward_core::{BoxError, Context, Scope, ScopeFactory, Service, UnitOutcome};
///
/// /// Stands for a pool of database connections.
/// struct Pool;
/// impl ScopeFactory for Pool {
///     type Resource = Vec<String>; // stands for a transaction
///     async fn acquire(&self) -> Result<Self::Resource, BoxError> { Ok(Vec::new()) }
///     async fn release(&self, tx: Self::Resource, outcome: UnitOutcome) {
///         // commit if outcome.is_success(), roll back otherwise
///         let _ = (tx, outcome);
///     }
/// }
///
/// struct Reporter {
///     scope: Scope<Pool>,
/// }
///
/// impl Service for Reporter {
///     async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
///         // Check the dependency is reachable once, then give the connection back.
///         self.scope.run(async |_tx: &mut Vec<String>| Ok(())).await?;
///         Ok(())
///     }
///
///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
///         let mut ticker = ctx.every(Duration::from_secs(60))?;
///         while ticker.tick().await.is_some() {
///             // One transaction per report, released however the unit ends.
///             self.scope
///                 .run_until_cancelled(ctx, async |tx: &mut Vec<String>| {
///                     tx.push("INSERT INTO reports ...".into());
///                     Ok(())
///                 })
///                 .await?;
///         }
///         Ok(()) // the ticker ended: we were asked to stop
///     }
/// }
/// ```
pub trait Service: Send + 'static {
    /// Whether the host stops this service after every other one, whatever
    /// the registration order. For services that report on the others, such
    /// as the HTTP server behind `/healthz` and `/readyz`: they keep
    /// answering (readiness 503 `shutting_down`) while the rest drains.
    ///
    /// ```
    /// # use steward_core::{BoxError, Context, Service};
    /// struct Probe;
    /// impl Service for Probe {
    ///     const STOPS_LAST: bool = true;
    ///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
    ///         ctx.cancelled().await;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    const STOPS_LAST: bool = false;

    /// Every mistake in the service's configuration, empty when there is
    /// none. [`HostBuilder::build`](crate::HostBuilder::build) calls it and
    /// refuses to build a host with a misconfigured service, naming it, so
    /// settings can be given without a `?` each and still fail before
    /// anything runs. The default finds nothing.
    ///
    /// ```
    /// # use steward_core::{BoxError, ConfigError, Context, Host, Service};
    /// struct Mailer { relay: String }
    /// impl Service for Mailer {
    ///     fn check(&self) -> Vec<ConfigError> {
    ///         if self.relay.is_empty() {
    ///             return vec![ConfigError::Invalid { what: "mailer", reason: "no relay host".into() }];
    ///         }
    ///         Vec::new()
    ///     }
    ///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
    ///         ctx.cancelled().await;
    ///         Ok(())
    ///     }
    /// }
    /// # fn main() -> Result<(), ConfigError> {
    /// let mut builder = Host::builder();
    /// builder.service("mailer", Mailer { relay: String::new() })?;
    /// assert!(matches!(builder.build(), Err(ConfigError::Service { .. })));
    /// # Ok(()) }
    /// ```
    fn check(&self) -> Vec<ConfigError> {
        Vec::new()
    }

    /// Takes the service's own keys from its table of
    /// [`Settings`](crate::Settings) (`[steward.services.<name>]`), when the
    /// host was given settings; called by
    /// [`HostBuilder::build`](crate::HostBuilder::build) before
    /// [`check`](Service::check). An unknown key or a bad value is an error
    /// naming it. The default takes none: any key but the host's (`policy`,
    /// `restart`, `init_timeout`) is refused.
    ///
    /// ```
    /// # use steward_core::{BoxError, ConfigError, Context, Section, Service};
    /// #[derive(serde::Deserialize)]
    /// struct MailerSettings { relay: Option<String> }
    /// struct Mailer { relay: String }
    /// impl Service for Mailer {
    ///     fn configure(&mut self, section: &Section) -> Result<(), ConfigError> {
    ///         let settings: MailerSettings = section.get()?;
    ///         if let Some(relay) = settings.relay {
    ///             self.relay = relay;
    ///         }
    ///         Ok(())
    ///     }
    ///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
    ///         ctx.cancelled().await;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn configure(&mut self, section: &Section) -> Result<(), ConfigError> {
        section.refuse_own_keys()
    }

    /// Makes sure the service can start: checks its configuration, validates
    /// that a dependency is reachable (one short unit of work through a
    /// [`Scope`](crate::Scope), released at once), warms a cache. It is not
    /// the place to open a connection to keep for the life of the service;
    /// `run` takes one per unit of work. Runs concurrently with every other
    /// service's init and never delays them; the host is not ready until
    /// every init has finished. The default does nothing.
    fn init(&mut self, ctx: &Context) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Does the service's work until it is asked to stop (see
    /// [`Context::token`]) or fails. An `Err` or a panic is a failure handled
    /// by the service's [`FailurePolicy`](crate::FailurePolicy).
    fn run(&mut self, ctx: &Context) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Runs once after `run` returned because of shutdown: the place to
    /// checkpoint or flush. It shares the host's shutdown timeout. The default
    /// does nothing.
    fn on_stop(&mut self, ctx: &Context) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

/// Object-safe form of [`Service`], so the host can hold services of
/// different types in one list.
pub(crate) trait DynService: Send + 'static {
    fn check(&self) -> Vec<ConfigError>;
    fn configure(&mut self, section: &Section) -> Result<(), ConfigError>;
    fn init<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>>;
    fn run<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>>;
    fn on_stop<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>>;
}

impl<S: Service> DynService for S {
    fn check(&self) -> Vec<ConfigError> {
        Service::check(self)
    }
    fn configure(&mut self, section: &Section) -> Result<(), ConfigError> {
        Service::configure(self, section)
    }
    fn init<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(Service::init(self, ctx))
    }
    fn run<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(Service::run(self, ctx))
    }
    fn on_stop<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(Service::on_stop(self, ctx))
    }
}
